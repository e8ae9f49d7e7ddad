//! `<config>/config.toml`: the console's settings. A missing file means defaults; a bad one is
//! refused with the file, line and what is wrong, before the terminal is taken over.
//!
//! ```toml
//! theme = "dark"              # dark | light | high-contrast | a name in <config>/themes | a path
//! clipboard = "auto"          # auto | osc52 | system
//! render = "auto"             # auto | sixel | kitty | halfblocks | sextants (live desktops)
//!
//! [keys]                      # action = key or [keys]; replaces that action's keys
//! quit = ["q", "ctrl-c"]
//! show_link = "L"
//! terminal_menu = "ctrl-b"    # the live terminal's way out (Ctrl-] by default)
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::clipboard::ClipboardMode;
use super::keymap::{KeyList, KeyOverrides};
use crate::paths::Paths;

/// The console's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub theme: Option<String>,
    pub clipboard: ClipboardMode,
    pub keys: KeyOverrides,
    /// How to draw live desktops; `--render` wins over it.
    pub render: Option<crate::render::RenderOverride>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} line {line}: {message}\n(fix or remove that line; the settings are described in the console's docs)"
    )]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

impl Config {
    /// Where the file lives.
    pub fn path(paths: &Paths) -> PathBuf {
        paths.config.join("config.toml")
    }

    /// Read the file; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parse the text of a config file (`path` is for messages only).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map_or(1, |span| super::theme::line_and_column(text, span.start).0);
            ConfigError::Invalid {
                path: path.to_owned(),
                line,
                message: e.message().trim().to_owned(),
            }
        })?;
        Ok(Config {
            render: match file.render.as_deref() {
                None => None,
                Some(name) => Some(name.parse().map_err(|message| {
                    ConfigError::Invalid {
                        path: path.to_owned(),
                        line: text
                            .lines()
                            .position(|l| l.trim_start().starts_with("render"))
                            .map_or(1, |i| i + 1),
                        message,
                    }
                })?),
            },
            theme: file.theme,
            clipboard: file.clipboard,
            keys: file
                .keys
                .into_iter()
                .map(|(action, KeyList(keys))| (action, keys))
                .collect(),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    theme: Option<String>,
    #[serde(default)]
    clipboard: ClipboardMode,
    render: Option<String>,
    #[serde(default)]
    keys: std::collections::BTreeMap<super::action::Action, KeyList>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::action::Action;
    use crate::console::keymap::{Keymap, Layer};
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/home/ann/.config/tether/config.toml"))
    }

    #[test]
    fn render_mode_from_config() {
        let config = parse("render = \"sixel\"\n").expect("valid");
        assert_eq!(config.render, Some(crate::render::RenderOverride::Sixel));
        let err = parse("theme = \"dark\"\nrender = \"braille\"\n").expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("line 2") && text.contains("unknown render mode"),
            "{text}"
        );
    }

    #[test]
    fn key_override_from_config_rebinds_the_action() {
        let config =
            parse("theme = \"light\"\nclipboard = \"osc52\"\n[keys]\nquit = [\"ctrl-q\"]\nshow_link = \"L\"\n")
                .expect("valid");
        assert_eq!(config.theme.as_deref(), Some("light"));
        assert_eq!(config.clipboard, ClipboardMode::Osc52);
        let keymap = Keymap::with_overrides(&config.keys);
        let press = |code, modifiers| KeyEvent::new(code, modifiers);
        assert_eq!(
            keymap.action(
                Layer::Main,
                &press(KeyCode::Char('q'), KeyModifiers::CONTROL)
            ),
            Some(Action::Quit)
        );
        assert_eq!(
            keymap.action(Layer::Main, &press(KeyCode::Char('q'), KeyModifiers::NONE)),
            None
        );
        assert_eq!(
            keymap.action(Layer::Main, &press(KeyCode::Char('L'), KeyModifiers::SHIFT)),
            Some(Action::ShowLink)
        );
        assert_eq!(
            keymap.action(Layer::Main, &press(KeyCode::Char('l'), KeyModifiers::NONE)),
            None
        );
    }

    #[test]
    fn the_live_terminal_menu_key_is_configurable() {
        let config = parse("[keys]\nterminal_menu = \"ctrl-b\"\n").expect("valid");
        let keymap = Keymap::with_overrides(&config.keys);
        let ctrl = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL);
        assert_eq!(
            keymap.action(Layer::Terminal, &ctrl('b')),
            Some(Action::TerminalMenu)
        );
        assert_eq!(keymap.action(Layer::Terminal, &ctrl(']')), None);
    }

    #[test]
    fn missing_file_is_the_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            Config::load(&dir.path().join("config.toml")).expect("default"),
            Config::default()
        );
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let cases = [
            ("theme = \"dark\"\n\n[keys]\nquitt = \"q\"\n", 4, "quitt"),
            ("[keys]\nquit = [\"q\", \"ctrl-cc\"]\n", 2, "ctrl-cc"),
            ("clipboard = \"xclip\"\n", 1, "xclip"),
            ("theme = \"dark\"\nthem = \"light\"\n", 2, "them"),
            ("theme = dark\n", 1, ""),
        ];
        for (text, line, needle) in cases {
            let err = parse(text).expect_err(text);
            let message = err.to_string();
            assert!(
                message.starts_with("/home/ann/.config/tether/config.toml line "),
                "{message}"
            );
            assert!(
                matches!(err, ConfigError::Invalid { line: l, .. } if l == line),
                "{text}: {message}"
            );
            assert!(message.contains(needle), "{text}: {message}");
        }
    }
}
