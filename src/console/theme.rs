//! Colour themes with semantic roles: the UI asks for `Role::Danger`, never for red. Three themes
//! are compiled in from `themes/*.toml`; a user theme (a file path, or a name found in
//! `<config>/themes/NAME.toml`) overrides them and may leave out roles, which then come from
//! the theme it `inherits` (dark unless it says otherwise).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::{Deserialize, Deserializer};

/// What a piece of the screen means; themes map each role to a style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Ordinary text; its background (if set) fills the screen.
    Text,
    /// Secondary text: hints, offline rows, timestamps.
    Muted,
    /// Things to notice: "in session", the focused field's label.
    Accent,
    /// Titles of panes and dialogs.
    Title,
    /// The top bar.
    Header,
    Border,
    /// The border of the pane with the focus.
    BorderFocused,
    /// The selected row in the focused pane.
    Selected,
    /// The selected row in a pane without the focus.
    SelectedUnfocused,
    /// Column headings.
    TableHeader,
    /// Key names in the footer and the help.
    Key,
    /// Text fields.
    Input,
    /// Good news: online, copied, connected.
    Success,
    /// Needs attention: reconnecting, a new certificate.
    Warning,
    /// Errors and possible attacks.
    Danger,
}

impl Role {
    pub const ALL: [Role; 15] = [
        Role::Text,
        Role::Muted,
        Role::Accent,
        Role::Title,
        Role::Header,
        Role::Border,
        Role::BorderFocused,
        Role::Selected,
        Role::SelectedUnfocused,
        Role::TableHeader,
        Role::Key,
        Role::Input,
        Role::Success,
        Role::Warning,
        Role::Danger,
    ];
}

/// The compiled-in themes, in the order `t` cycles through them.
pub const BUILTIN: [(&str, &str); 3] = [
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
];

/// A theme that could not be loaded. Says which file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error("cannot read theme file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("theme {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("theme {origin} leaves out {missing:?}; built-in themes must define every role")]
    Incomplete { origin: String, missing: Vec<Role> },
    #[error(
        "no theme named {name:?}: built-in themes are dark, light and high-contrast; \
         or put your own at {}", dir.join(format!("{name}.toml")).display()
    )]
    Unknown { name: String, dir: PathBuf },
}

/// A resolved theme: a style for every role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme {
    pub name: String,
    styles: BTreeMap<Role, Style>,
}

impl Theme {
    /// The style for a role (every theme defines every role once loaded).
    pub fn style(&self, role: Role) -> Style {
        self.styles.get(&role).copied().unwrap_or_default()
    }

    /// A built-in theme by name.
    pub fn builtin(name: &str) -> Option<Theme> {
        let (name, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
        // Built-in files are checked by the tests, so a parse error here is a build mistake.
        Theme::parse(text, name, None).ok()
    }

    /// Parse a theme file. Roles it leaves out come from `base`; without a base, every role
    /// must be present.
    pub fn parse(text: &str, origin: &str, base: Option<&Theme>) -> Result<Theme, ThemeError> {
        let file: ThemeFile = toml::from_str(text).map_err(|e| ThemeError::Parse {
            origin: origin.to_owned(),
            message: describe(text, &e),
        })?;
        let mut styles = base.map(|b| b.styles.clone()).unwrap_or_default();
        for (role, spec) in file.roles {
            styles.insert(role, spec.style());
        }
        let missing: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| !styles.contains_key(r))
            .collect();
        if !missing.is_empty() {
            return Err(ThemeError::Incomplete {
                origin: origin.to_owned(),
                missing,
            });
        }
        Ok(Theme {
            name: file.name.unwrap_or_else(|| origin.to_owned()),
            styles,
        })
    }

    /// Load a user theme file; it inherits what it leaves out.
    pub fn load_file(path: &Path) -> Result<Theme, ThemeError> {
        let text = std::fs::read_to_string(path).map_err(|source| ThemeError::Read {
            path: path.to_owned(),
            source,
        })?;
        let origin = path.display().to_string();
        let file: ThemeFile = toml::from_str(&text).map_err(|e| ThemeError::Parse {
            origin: origin.clone(),
            message: describe(&text, &e),
        })?;
        let base_name = file.inherits.as_deref().unwrap_or("dark");
        let base = Theme::builtin(base_name).ok_or_else(|| ThemeError::Parse {
            origin: origin.clone(),
            message: format!("inherits = {base_name:?}, but the built-in themes are dark, light and high-contrast"),
        })?;
        let mut theme = Theme::parse(&text, &origin, Some(&base))?;
        if file.name.is_none() {
            theme.name = path
                .file_stem()
                .map_or(origin, |s| s.to_string_lossy().into_owned());
        }
        Ok(theme)
    }
}

/// The themes `t` cycles through, and which one is in use at start.
#[derive(Debug, Clone)]
pub struct Themes {
    pub list: Vec<Theme>,
    pub initial: usize,
}

impl Themes {
    /// The built-in themes plus the chosen one: `choice` is a built-in name, a name found in
    /// `<config_dir>/themes/`, or a path to a `.toml` file. User files win over built-ins.
    pub fn load(choice: Option<&str>, config_dir: &Path) -> Result<Themes, ThemeError> {
        let mut list = BUILTIN
            .iter()
            .map(|(name, text)| Theme::parse(text, name, None))
            .collect::<Result<Vec<Theme>, ThemeError>>()?;
        let choice = choice.unwrap_or("dark");
        let user_dir = config_dir.join("themes");
        let named = user_dir.join(format!("{choice}.toml"));
        let path = if choice.contains('/') || choice.ends_with(".toml") {
            Some(PathBuf::from(choice))
        } else if named.is_file() {
            Some(named)
        } else {
            None
        };
        let initial =
            match path {
                Some(path) => {
                    let theme = Theme::load_file(&path)?;
                    // A user theme named like a built-in replaces it.
                    match list.iter().position(|t| t.name == theme.name) {
                        Some(i) => {
                            list[i] = theme;
                            i
                        }
                        None => {
                            list.push(theme);
                            list.len() - 1
                        }
                    }
                }
                None => list.iter().position(|t| t.name == choice).ok_or_else(|| {
                    ThemeError::Unknown {
                        name: choice.to_owned(),
                        dir: user_dir,
                    }
                })?,
            };
        Ok(Themes { list, initial })
    }

    pub fn names(&self) -> Vec<String> {
        self.list.iter().map(|t| t.name.clone()).collect()
    }

    /// The theme at `index` (wrapping, so a stale index still draws). The list is never empty.
    pub fn get(&self, index: usize) -> &Theme {
        &self.list[index % self.list.len()]
    }
}

/// A TOML error as one line: where, then what.
pub(crate) fn describe(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let (line, column) = line_and_column(text, span.start);
            format!("line {line}, column {column}: {}", error.message())
        }
        None => error.message().to_owned(),
    }
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: Option<String>,
    /// The built-in theme that roles left out come from (user themes only).
    inherits: Option<String>,
    #[serde(default)]
    roles: BTreeMap<Role, StyleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StyleSpec {
    fg: Option<ColorSpec>,
    bg: Option<ColorSpec>,
    #[serde(default)]
    bold: bool,
    #[serde(default)]
    dim: bool,
    #[serde(default)]
    italic: bool,
    #[serde(default)]
    underlined: bool,
    #[serde(default)]
    reversed: bool,
}

impl StyleSpec {
    fn style(&self) -> Style {
        let mut style = Style::default();
        if let Some(ColorSpec(fg)) = self.fg {
            style = style.fg(fg);
        }
        if let Some(ColorSpec(bg)) = self.bg {
            style = style.bg(bg);
        }
        for (on, modifier) in [
            (self.bold, Modifier::BOLD),
            (self.dim, Modifier::DIM),
            (self.italic, Modifier::ITALIC),
            (self.underlined, Modifier::UNDERLINED),
            (self.reversed, Modifier::REVERSED),
        ] {
            if on {
                style = style.add_modifier(modifier);
            }
        }
        style
    }
}

struct ColorSpec(Color);

impl<'de> Deserialize<'de> for ColorSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Color::from_str(&text).map(ColorSpec).map_err(|_| {
            serde::de::Error::custom(format!(
                "unknown colour {text:?}: use a name (red, lightblue, gray ...), \"#rrggbb\" or 0-255"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_themes_parse_and_define_every_role() {
        for (name, text) in BUILTIN {
            let theme = Theme::parse(text, name, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(theme.name, name);
            for role in Role::ALL {
                assert!(theme.styles.contains_key(&role), "{name} lacks {role:?}");
            }
            // Semantic roles must be told apart.
            let fg = |role| theme.style(role).fg;
            assert_ne!(fg(Role::Success), fg(Role::Danger), "{name}");
            assert_ne!(fg(Role::Text), fg(Role::Muted), "{name}");
            assert_ne!(
                theme.style(Role::Selected),
                theme.style(Role::Text),
                "{name}"
            );
        }
    }

    #[test]
    fn incomplete_builtin_is_refused() {
        let err = Theme::parse("[roles]\ntext = { fg = \"red\" }\n", "partial", None)
            .expect_err("incomplete");
        assert!(
            matches!(err, ThemeError::Incomplete { ref missing, .. } if missing.contains(&Role::Danger))
        );
    }

    #[test]
    fn user_theme_by_name_inherits_and_overrides() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("themes")).expect("mkdir");
        std::fs::write(
            dir.path().join("themes/mine.toml"),
            "inherits = \"light\"\n[roles]\ndanger = { fg = \"#ff0000\", bold = true }\n",
        )
        .expect("write");
        let themes = Themes::load(Some("mine"), dir.path()).expect("load");
        let mine = themes.get(themes.initial);
        assert_eq!(mine.name, "mine");
        assert_eq!(mine.style(Role::Danger).fg, Some(Color::Rgb(255, 0, 0)));
        let light = Theme::builtin("light").expect("light");
        assert_eq!(mine.style(Role::Text), light.style(Role::Text));
        assert_eq!(
            themes.list.len(),
            4,
            "built-ins stay available to cycle through"
        );
    }

    #[test]
    fn bad_theme_says_where() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        std::fs::write(
            &path,
            "[roles]\ntext = { fg = \"#c0caf5\" }\nmuted = { fg = \"blurple\" }\n",
        )
        .expect("write");
        let err =
            Themes::load(Some(path.to_str().expect("utf-8")), dir.path()).expect_err("bad colour");
        let text = err.to_string();
        assert!(
            text.contains("bad.toml") && text.contains("line 3") && text.contains("blurple"),
            "{text}"
        );
        let err = Themes::load(Some("nope"), dir.path()).expect_err("unknown");
        assert!(
            err.to_string()
                .contains("built-in themes are dark, light and high-contrast")
        );
    }
}
