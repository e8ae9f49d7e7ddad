//! Copying to the technician's clipboard: the system clipboard (arboard) where there is one, else
//! OSC 52, which asks the terminal itself to set the clipboard: the way that works over SSH. Inside
//! tmux the sequence is written both plain (tmux with `set-clipboard on` keeps it) and wrapped
//! for passthrough (tmux with `allow-passthrough on` forwards it to the outer terminal).

use base64::Engine as _;
use serde::Deserialize;

/// Largest OSC 52 payload (base64 bytes) we write: terminals drop or truncate larger ones.
pub const OSC52_MAX_PAYLOAD: usize = 100_000;

/// How to copy, from `clipboard = ...` in `config.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClipboardMode {
    /// The system clipboard, or OSC 52 over SSH and where there is no system clipboard.
    #[default]
    Auto,
    /// Always through the terminal (OSC 52).
    Osc52,
    /// Always the system clipboard.
    System,
}

/// Which way a copy went, for the status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMethod {
    System,
    Osc52,
}

impl CopyMethod {
    pub fn status(self) -> &'static str {
        match self {
            CopyMethod::System => "Copied",
            CopyMethod::Osc52 => "Copied (OSC 52)",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClipboardError {
    #[error(
        "too large to copy through the terminal ({encoded} bytes encoded, limit {OSC52_MAX_PAYLOAD})"
    )]
    TooLarge { encoded: usize },
    #[error(
        "no system clipboard ({0}); set clipboard = \"osc52\" in config.toml to copy through the terminal"
    )]
    System(String),
}

/// What the environment says about the terminal we are drawing on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TerminalEnv {
    /// Running over SSH: the system clipboard here is not the technician's.
    pub ssh: bool,
    /// Running inside tmux.
    pub tmux: bool,
}

impl TerminalEnv {
    pub fn from_env() -> Self {
        let set = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        Self {
            ssh: set("SSH_TTY") || set("SSH_CONNECTION"),
            tmux: set("TMUX"),
        }
    }
}

/// The OSC 52 "set clipboard" sequence for `text` (write form only: never the `?` query, which
/// would let anything that prints to the terminal read the clipboard back).
pub fn osc52(text: &str) -> Result<String, ClipboardError> {
    let payload = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    if payload.len() > OSC52_MAX_PAYLOAD {
        return Err(ClipboardError::TooLarge {
            encoded: payload.len(),
        });
    }
    Ok(format!("\x1b]52;c;{payload}\x1b\\"))
}

/// Wrap a sequence in tmux's DCS passthrough: `ESC P tmux;` + sequence with ESC doubled + `ESC \`.
pub fn tmux_passthrough(sequence: &str) -> String {
    format!("\x1bPtmux;{}\x1b\\", sequence.replace('\x1b', "\x1b\x1b"))
}

/// Everything to write to the terminal to copy `text` with OSC 52 in `env`.
pub fn osc52_for(text: &str, env: TerminalEnv) -> Result<String, ClipboardError> {
    let plain = osc52(text)?;
    Ok(if env.tmux {
        let wrapped = tmux_passthrough(&plain);
        plain + &wrapped
    } else {
        plain
    })
}

/// The clipboard as the app uses it. OSC 52 bytes are queued, not written: the app writes them
/// after the frame, outside ratatui's buffer.
pub struct Clipboard {
    mode: ClipboardMode,
    env: TerminalEnv,
    // Kept alive: on X11 the copied text is served by this process for as long as it lives.
    system: Option<arboard::Clipboard>,
    pending: String,
}

impl Clipboard {
    pub fn new(mode: ClipboardMode, env: TerminalEnv) -> Self {
        Self {
            mode,
            env,
            system: None,
            pending: String::new(),
        }
    }

    pub fn copy(&mut self, text: &str) -> Result<CopyMethod, ClipboardError> {
        match self.mode {
            ClipboardMode::Osc52 => self.queue_osc52(text),
            ClipboardMode::System => self.copy_system(text),
            ClipboardMode::Auto if self.env.ssh => self.queue_osc52(text),
            ClipboardMode::Auto => self.copy_system(text).or_else(|err| {
                tracing::debug!("system clipboard unavailable, using OSC 52: {err}");
                self.queue_osc52(text)
            }),
        }
    }

    /// Escape sequences waiting to be written to the terminal.
    pub fn take_pending(&mut self) -> Option<String> {
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }

    fn queue_osc52(&mut self, text: &str) -> Result<CopyMethod, ClipboardError> {
        self.pending.push_str(&osc52_for(text, self.env)?);
        Ok(CopyMethod::Osc52)
    }

    fn copy_system(&mut self, text: &str) -> Result<CopyMethod, ClipboardError> {
        let system = match &mut self.system {
            Some(system) => system,
            None => self.system.insert(
                arboard::Clipboard::new().map_err(|e| ClipboardError::System(e.to_string()))?,
            ),
        };
        system
            .set_text(text)
            .map_err(|e| ClipboardError::System(e.to_string()))?;
        Ok(CopyMethod::System)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc52_encodes_text_as_base64_set_sequence() {
        let seq = osc52("tether://hub:7443/enrol/abc?fp=SHA256:00").expect("small");
        assert_eq!(
            seq,
            "\x1b]52;c;dGV0aGVyOi8vaHViOjc0NDMvZW5yb2wvYWJjP2ZwPVNIQTI1NjowMA==\x1b\\"
        );
        assert!(!seq.contains(";?"), "never the query form");
        assert_eq!(
            osc52("é").expect("small"),
            "\x1b]52;c;w6k=\x1b\\",
            "UTF-8 bytes are encoded"
        );
    }

    #[test]
    fn osc52_refuses_payloads_over_the_cap() {
        // 75_000 bytes encode to exactly 100_000 base64 bytes: the largest accepted.
        let fits = "a".repeat(75_000);
        assert_eq!(
            osc52(&fits).map(|s| s.len()),
            Ok(100_000 + "\x1b]52;c;\x1b\\".len())
        );
        let too_big = "a".repeat(75_001);
        assert_eq!(
            osc52(&too_big),
            Err(ClipboardError::TooLarge { encoded: 100_004 })
        );
    }

    #[test]
    fn tmux_gets_plain_and_passthrough_forms() {
        let plain = osc52("hi").expect("small");
        assert_eq!(
            osc52_for(
                "hi",
                TerminalEnv {
                    ssh: true,
                    tmux: false
                }
            )
            .expect("ok"),
            plain
        );
        let both = osc52_for(
            "hi",
            TerminalEnv {
                ssh: false,
                tmux: true,
            },
        )
        .expect("ok");
        assert_eq!(
            both,
            format!("{plain}\x1bPtmux;\x1b\x1b]52;c;aGk=\x1b\x1b\\\x1b\\")
        );
    }

    #[test]
    fn osc52_mode_queues_the_sequence_for_after_the_frame() {
        let mut clipboard = Clipboard::new(ClipboardMode::Osc52, TerminalEnv::default());
        assert_eq!(clipboard.take_pending(), None);
        assert_eq!(clipboard.copy("hi"), Ok(CopyMethod::Osc52));
        assert_eq!(
            clipboard.take_pending().as_deref(),
            Some("\x1b]52;c;aGk=\x1b\\")
        );
        assert_eq!(clipboard.take_pending(), None, "written once");
        // Over SSH, auto mode never touches the (remote) system clipboard.
        let mut clipboard = Clipboard::new(
            ClipboardMode::Auto,
            TerminalEnv {
                ssh: true,
                tmux: false,
            },
        );
        assert_eq!(clipboard.copy("hi"), Ok(CopyMethod::Osc52));
        assert!(clipboard.system.is_none());
    }
}
