//! Keys to actions, per layer (the screen or dialog that has the keyboard). Each binding carries a
//! description: the footer hints and the `?` help are generated from this table, so they can't
//! drift from what the keys do.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::{Deserialize, Deserializer};

use super::action::Action;

/// One key with its modifiers, normalised so that `G` and `shift-g` are the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyCombo {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

impl KeyCombo {
    pub fn new(code: KeyCode, modifiers: KeyModifiers) -> Self {
        let mut modifiers =
            modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match code {
            // The character already says whether shift was down.
            KeyCode::Char(c) if modifiers.contains(KeyModifiers::SHIFT) => {
                modifiers.remove(KeyModifiers::SHIFT);
                KeyCode::Char(c.to_uppercase().next().unwrap_or(c))
            }
            KeyCode::BackTab => {
                modifiers.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            KeyCode::Tab if modifiers.contains(KeyModifiers::SHIFT) => {
                modifiers.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            // Terminals send Ctrl-\ ] ^ _ as the bytes of Ctrl-4 to Ctrl-7, and crossterm
            // reports them as the digits: one key, however it arrives.
            KeyCode::Char(c @ '4'..='7') if modifiers.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(match c {
                    '4' => '\\',
                    '5' => ']',
                    '6' => '^',
                    _ => '_',
                })
            }
            other => other,
        };
        Self { code, modifiers }
    }

    pub const fn plain(code: KeyCode) -> Self {
        Self {
            code,
            modifiers: KeyModifiers::NONE,
        }
    }

    pub const fn ctrl(c: char) -> Self {
        Self {
            code: KeyCode::Char(c),
            modifiers: KeyModifiers::CONTROL,
        }
    }

    pub fn from_event(event: &KeyEvent) -> Self {
        Self::new(event.code, event.modifiers)
    }

    /// A key that types a character into a text field (so text layers never bind it).
    pub fn is_printable(&self) -> bool {
        matches!(self.code, KeyCode::Char(_)) && (self.modifiers - KeyModifiers::SHIFT).is_empty()
    }
}

/// A key name in `config.toml` that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown key {0:?}: use a character (\"q\"), a name (enter, esc, tab, backtab, backspace, delete, up, down, \
     left, right, home, end, pgup, pgdn, space, f1..f12), optionally after ctrl-, alt- or shift-"
)]
pub struct KeyParseError(pub String);

impl FromStr for KeyCombo {
    type Err = KeyParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || KeyParseError(text.to_owned());
        let mut rest = text.trim();
        let mut modifiers = KeyModifiers::NONE;
        loop {
            let lower = rest.to_ascii_lowercase();
            let (prefix, modifier) = if lower.starts_with("ctrl-") {
                ("ctrl-", KeyModifiers::CONTROL)
            } else if lower.starts_with("alt-") {
                ("alt-", KeyModifiers::ALT)
            } else if lower.starts_with("shift-") {
                ("shift-", KeyModifiers::SHIFT)
            } else {
                break;
            };
            if rest.len() == prefix.len() {
                break; // "ctrl-" alone is not a key; let the name check below refuse it
            }
            modifiers |= modifier;
            rest = &rest[prefix.len()..];
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCode::Char(c),
            (None, _) => return Err(err()),
            _ => match rest.to_ascii_lowercase().as_str() {
                "enter" | "return" => KeyCode::Enter,
                "esc" | "escape" => KeyCode::Esc,
                "tab" => KeyCode::Tab,
                "backtab" => KeyCode::BackTab,
                "backspace" => KeyCode::Backspace,
                "delete" | "del" => KeyCode::Delete,
                "insert" | "ins" => KeyCode::Insert,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                "pgup" | "pageup" => KeyCode::PageUp,
                "pgdn" | "pagedown" => KeyCode::PageDown,
                "space" => KeyCode::Char(' '),
                name => match name.strip_prefix('f').and_then(|n| n.parse::<u8>().ok()) {
                    Some(n @ 1..=12) => KeyCode::F(n),
                    _ => return Err(err()),
                },
            },
        };
        Ok(Self::new(code, modifiers))
    }
}

impl<'de> Deserialize<'de> for KeyCombo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How a key is written for people: `Ctrl-C`, `↑`, `PgDn`, `q`.
impl fmt::Display for KeyCombo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            f.write_str("Ctrl-")?;
        }
        if self.modifiers.contains(KeyModifiers::ALT) {
            f.write_str("Alt-")?;
        }
        if self.modifiers.contains(KeyModifiers::SHIFT) {
            f.write_str("Shift-")?;
        }
        let ctrl = self.modifiers.contains(KeyModifiers::CONTROL);
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) if ctrl => write!(f, "{}", c.to_ascii_uppercase()),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("Shift-Tab"),
            KeyCode::Backspace => f.write_str("Backspace"),
            KeyCode::Delete => f.write_str("Del"),
            KeyCode::Insert => f.write_str("Ins"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::F(n) => write!(f, "F{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Who has the keyboard: a screen, or the dialog on top of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// The clients pane and the workstations table.
    Main,
    /// The team's open sessions.
    Sessions,
    /// A live terminal session, full screen: keys go to the remote shell.
    Terminal,
    /// The live terminal's menu (the escape key).
    TerminalMenu,
    /// Scrolling a live terminal's history.
    TerminalScroll,
    /// A live desktop, full screen: keys and mouse go to the remote screen.
    Desktop,
    /// The live desktop's menu (the escape key).
    DesktopMenu,
    /// A live terminal or desktop whose session ended: its last screen, until dismissed.
    SessionEnded,
    /// Typing a filter for the workstations table.
    Filter,
    /// Typing a workstation's passcode or password to connect.
    Secret,
    /// Waiting for the end user or the workstation to answer a connection.
    Connecting,
    /// A yes/no question (withdraw unattended access?).
    Confirm,
    /// The enrolment link dialog.
    Link,
    /// A dialog asking for a name (add client).
    Input,
    /// The login form.
    Login,
    /// "Trust this hub?" on first contact.
    Trust,
    /// The hub's certificate changed.
    Mismatch,
    /// The help overlay.
    Help,
    /// The user menu.
    UserMenu,
    /// "2FA is required: activate now or later?"
    TwoFactorOffer,
    /// 2FA enrolment: typing the code from the app.
    Enrol,
    /// An admin typing their password again for a 2FA change.
    AdminPassword,
    /// The users view (admins).
    Users,
    /// Adding a user: name, e-mail, role.
    UserAdd,
    /// A new user's enrolment code, shown once.
    UserAdded,
    /// Disable, remove or change the role of a user?
    UserConfirm,
    /// The audit log.
    Audit,
    /// Typing the audit log's filter.
    AuditFilter,
    /// Choosing support credentials' duration and scopes.
    CredentialsForm,
    /// New support credentials, shown once.
    CredentialsReveal,
    /// Support credentials for this target are already active.
    CredentialsActive,
    /// The one-time password dialog.
    Otp,
    /// Typing an emergency reason.
    OtpReason,
    /// Typing a one-time password to connect.
    OtpPrompt,
    /// The hub's outbox.
    Outbox,
    /// The team's support credentials, as a table.
    CredentialsList,
    /// "Revoke (or regenerate) these support credentials?"
    CredentialsConfirm,
}

impl Layer {
    /// Every layer, in the order the help lists them.
    pub const ALL: [Layer; 37] = [
        Layer::Main,
        Layer::Sessions,
        Layer::Terminal,
        Layer::TerminalMenu,
        Layer::TerminalScroll,
        Layer::Desktop,
        Layer::DesktopMenu,
        Layer::SessionEnded,
        Layer::Filter,
        Layer::Secret,
        Layer::Connecting,
        Layer::Confirm,
        Layer::Link,
        Layer::Input,
        Layer::Login,
        Layer::Trust,
        Layer::Mismatch,
        Layer::Help,
        Layer::UserMenu,
        Layer::TwoFactorOffer,
        Layer::Enrol,
        Layer::AdminPassword,
        Layer::Users,
        Layer::UserAdd,
        Layer::UserAdded,
        Layer::UserConfirm,
        Layer::Audit,
        Layer::AuditFilter,
        Layer::CredentialsForm,
        Layer::CredentialsReveal,
        Layer::CredentialsActive,
        Layer::Otp,
        Layer::OtpReason,
        Layer::OtpPrompt,
        Layer::Outbox,
        Layer::CredentialsList,
        Layer::CredentialsConfirm,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Layer::Main => "Clients and workstations",
            Layer::Sessions => "Sessions",
            Layer::Terminal => "Live terminal",
            Layer::TerminalMenu => "Live terminal menu",
            Layer::TerminalScroll => "Scrolling a live terminal",
            Layer::Desktop => "Live desktop",
            Layer::DesktopMenu => "Live desktop menu",
            Layer::SessionEnded => "A session that ended",
            Layer::Filter => "While filtering",
            Layer::Secret => "Passcode or password",
            Layer::Connecting => "While connecting",
            Layer::Confirm => "A question before a change (quit, unattended access, links, OTP)",
            Layer::Link => "Enrolment link",
            Layer::Input => "Add client",
            Layer::Login => "Login",
            Layer::Trust => "Trust a new hub",
            Layer::Mismatch => "Hub certificate changed",
            Layer::Help => "This help",
            Layer::UserMenu => "User menu",
            Layer::TwoFactorOffer => "Two-factor authentication required",
            Layer::Enrol => "Enable 2FA",
            Layer::AdminPassword => "Your password, for a 2FA change",
            Layer::Users => "Users (admins)",
            Layer::UserAdd => "Add a user",
            Layer::UserAdded => "A new user's enrolment code",
            Layer::UserConfirm => "Change a user",
            Layer::Audit => "Audit log",
            Layer::AuditFilter => "While filtering the audit log",
            Layer::CredentialsForm => "Support credentials",
            Layer::CredentialsReveal => "Support credentials, shown once",
            Layer::CredentialsActive => "Support credentials already active",
            Layer::Otp => "One-time password",
            Layer::OtpReason => "Emergency reason",
            Layer::OtpPrompt => "Typing a one-time password",
            Layer::Outbox => "Outbox",
            Layer::CredentialsList => "Support credentials list",
            Layer::CredentialsConfirm => "Revoke or regenerate support credentials",
        }
    }

    /// In these layers, printable keys type (into a field, or into the remote terminal)
    /// instead of running actions.
    pub fn is_text_entry(self) -> bool {
        matches!(
            self,
            Layer::Filter
                | Layer::Input
                | Layer::Login
                | Layer::Secret
                | Layer::OtpReason
                | Layer::OtpPrompt
                | Layer::Terminal
                | Layer::Desktop
                | Layer::Enrol
                | Layer::AdminPassword
                | Layer::AuditFilter
        )
    }
}

/// One line of the keymap: in `layer`, any of `keys` runs `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub layer: Layer,
    pub action: Action,
    pub keys: Vec<KeyCombo>,
    /// What the binding does, for the help.
    pub description: &'static str,
    /// Short label for the footer; bindings without one are listed only in the help.
    pub hint: Option<&'static str>,
}

impl Binding {
    /// The binding's keys as people read them: `k, ↑`.
    pub fn keys_label(&self) -> String {
        self.keys
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Rebindings from `config.toml`: action -> the keys that run it from now on.
pub type KeyOverrides = BTreeMap<Action, Vec<KeyCombo>>;

/// The whole keymap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    bindings: Vec<Binding>,
}

impl Default for Keymap {
    fn default() -> Self {
        use Action as A;
        use KeyCode as K;
        use Layer as L;
        let quit = KeyCombo::ctrl('c');
        let menu = KeyCombo::ctrl(']');
        let mut bindings = vec![
            b(L::Main, A::Quit, &[c('q'), quit], "Quit", Some("quit")),
            b(
                L::Main,
                A::Help,
                &[c('?')],
                "Show every key binding",
                Some("help"),
            ),
            b(
                L::Main,
                A::Connect,
                &[k(K::Enter)],
                "Connect to the selected workstation (in the clients pane: go to its table)",
                Some("connect"),
            ),
            b(
                L::Main,
                A::ConnectViewOnly,
                &[c('v')],
                "Connect to the selected workstation, view only",
                Some("view"),
            ),
            b(
                L::Main,
                A::Open,
                &[c('o')],
                "Open your session on the selected workstation",
                Some("open"),
            ),
            b(
                L::Main,
                A::RequestAccess,
                &[c('u')],
                "Ask the end user for unattended access",
                Some("unattended"),
            ),
            b(
                L::Main,
                A::WithdrawAccess,
                &[c('w')],
                "Withdraw unattended access (asks first)",
                Some("withdraw"),
            ),
            b(
                L::Main,
                A::EndSession,
                &[c('e')],
                "End your session on the selected workstation",
                Some("end"),
            ),
            b(
                L::Main,
                A::Sessions,
                &[c('s')],
                "Show the team's open sessions",
                Some("sessions"),
            ),
            b(
                L::Main,
                A::Filter,
                &[c('/')],
                "Filter workstations by hostname, user, OS or client",
                Some("filter"),
            ),
            b(
                L::Main,
                A::FocusNext,
                &[k(K::Tab)],
                "Focus the next pane",
                Some("pane"),
            ),
            b(
                L::Main,
                A::FocusPrev,
                &[k(K::BackTab)],
                "Focus the previous pane",
                None,
            ),
            b(
                L::Main,
                A::Up,
                &[c('k'), k(K::Up)],
                "Select the row above",
                None,
            ),
            b(
                L::Main,
                A::Down,
                &[c('j'), k(K::Down)],
                "Select the row below",
                None,
            ),
            b(L::Main, A::PageUp, &[k(K::PageUp)], "Move a page up", None),
            b(
                L::Main,
                A::PageDown,
                &[k(K::PageDown)],
                "Move a page down",
                None,
            ),
            b(
                L::Main,
                A::First,
                &[k(K::Home), c('g')],
                "Jump to the first row",
                None,
            ),
            b(
                L::Main,
                A::Last,
                &[k(K::End), c('G')],
                "Jump to the last row",
                None,
            ),
            b(L::Main, A::Cancel, &[k(K::Esc)], "Clear the filter", None),
            b(
                L::Main,
                A::AddClient,
                &[c('a')],
                "Add a client",
                Some("add client"),
            ),
            b(
                L::Main,
                A::ShowLink,
                &[c('l')],
                "The selected client's enrolment link: its valid one, or a new one (asks first)",
                Some("link"),
            ),
            b(
                L::Main,
                A::Refresh,
                &[c('r')],
                "Reload clients and workstations",
                Some("refresh"),
            ),
            b(
                L::Main,
                A::CycleTheme,
                &[c('t')],
                "Switch to the next colour theme",
                Some("theme"),
            ),
            b(
                L::Sessions,
                A::Open,
                &[c('o'), k(K::Enter)],
                "Open the selected session (yours)",
                Some("open"),
            ),
            b(
                L::Sessions,
                A::EndSession,
                &[c('e')],
                "End the selected session",
                Some("end session"),
            ),
            b(
                L::Sessions,
                A::Cancel,
                &[k(K::Esc), c('s')],
                "Back to the workstations",
                Some("back"),
            ),
            b(
                L::Sessions,
                A::First,
                &[k(K::Home), c('g')],
                "Jump to the first row",
                None,
            ),
            b(
                L::Sessions,
                A::Last,
                &[k(K::End), c('G')],
                "Jump to the last row",
                None,
            ),
            b(
                L::Sessions,
                A::Refresh,
                &[c('r')],
                "Reload the sessions, clients and workstations",
                Some("refresh"),
            ),
            b(
                L::Sessions,
                A::Help,
                &[c('?')],
                "Show every key binding",
                Some("help"),
            ),
            b(L::Sessions, A::Quit, &[c('q'), quit], "Quit", Some("quit")),
            b(
                L::SessionEnded,
                A::Confirm,
                &[k(K::Enter), k(K::Esc)],
                "Back to the list (every other key is ignored, so typing meant for the remote runs nothing here)",
                Some("back to list"),
            ),
            b(
                L::Terminal,
                A::TerminalMenu,
                &[menu],
                "Open the session menu; every other key goes to the remote shell",
                Some("menu"),
            ),
            b(
                L::TerminalMenu,
                A::Detach,
                &[c('d'), c('b')],
                "Back to the list; the session stays open",
                Some("back to list"),
            ),
            b(
                L::TerminalMenu,
                A::RequestAccess,
                &[c('u')],
                "Ask the end user for unattended access to this workstation",
                Some("unattended"),
            ),
            b(
                L::TerminalMenu,
                A::EndSession,
                &[c('e')],
                "End the session",
                Some("end session"),
            ),
            b(
                L::TerminalMenu,
                A::ScrollBack,
                &[c('s'), k(K::PageUp)],
                "Scroll back through the output",
                Some("scroll back"),
            ),
            b(
                L::TerminalMenu,
                A::Cancel,
                &[k(K::Esc)],
                "Back to the terminal",
                Some("cancel"),
            ),
            b(
                L::TerminalMenu,
                A::TerminalMenu,
                &[menu],
                "Close the menu (the menu key again)",
                None,
            ),
            b(
                L::TerminalMenu,
                A::Help,
                &[c('?')],
                "Show every key binding",
                None,
            ),
            b(
                L::TerminalMenu,
                A::Quit,
                &[c('q'), quit],
                "Quit the console; the session stays open",
                None,
            ),
            b(
                L::Desktop,
                A::TerminalMenu,
                &[menu],
                "Open the session menu; every other key and the mouse go to the remote screen",
                Some("menu"),
            ),
            b(
                L::DesktopMenu,
                A::RequestAccess,
                &[c('u')],
                "Ask the end user for unattended access to this workstation",
                Some("unattended"),
            ),
            b(
                L::DesktopMenu,
                A::Detach,
                &[c('d'), c('b')],
                "Back to the list; the session stays open",
                Some("back to list"),
            ),
            b(
                L::DesktopMenu,
                A::EndSession,
                &[c('e')],
                "End the session",
                Some("end session"),
            ),
            b(
                L::DesktopMenu,
                A::SwitchGlyphs,
                &[c('m')],
                "Next render mode (sixel, kitty, 3 kinds of text cells)",
                Some("mode"),
            ),
            b(
                L::DesktopMenu,
                A::ToggleViewOnly,
                &[c('v')],
                "View only: stop (or resume) sending keys and the mouse",
                Some("view only"),
            ),
            b(
                L::DesktopMenu,
                A::Screenshot,
                &[c('s')],
                "Save the remote screen as a PNG file",
                Some("screenshot"),
            ),
            b(
                L::DesktopMenu,
                A::SendCtrlAltDel,
                &[c('x')],
                "Send Ctrl-Alt-Del to the remote",
                Some("ctrl-alt-del"),
            ),
            b(
                L::DesktopMenu,
                A::Fit,
                &[c('f'), c('0')],
                "Fit: the whole screen, no zoom",
                Some("fit"),
            ),
            b(
                L::DesktopMenu,
                A::ZoomIn,
                &[c('+'), c('=')],
                "Zoom in (a larger picture; pan with the arrows)",
                Some("zoom in"),
            ),
            b(
                L::DesktopMenu,
                A::ZoomOut,
                &[c('-')],
                "Zoom out",
                Some("zoom out"),
            ),
            b(
                L::DesktopMenu,
                A::PanLeft,
                &[k(K::Left), c('h')],
                "Pan left when zoomed",
                None,
            ),
            b(
                L::DesktopMenu,
                A::PanRight,
                &[k(K::Right), c('l')],
                "Pan right when zoomed",
                None,
            ),
            b(
                L::DesktopMenu,
                A::Up,
                &[k(K::Up), c('k')],
                "Pan up when zoomed",
                None,
            ),
            b(
                L::DesktopMenu,
                A::Down,
                &[k(K::Down), c('j')],
                "Pan down when zoomed",
                None,
            ),
            b(
                L::DesktopMenu,
                A::Cancel,
                &[k(K::Esc)],
                "Back to the desktop",
                Some("cancel"),
            ),
            b(
                L::DesktopMenu,
                A::TerminalMenu,
                &[menu],
                "Close the menu (the menu key again)",
                None,
            ),
            b(
                L::DesktopMenu,
                A::Help,
                &[c('?')],
                "Show every key binding",
                None,
            ),
            b(
                L::DesktopMenu,
                A::Quit,
                &[c('q'), quit],
                "Quit the console; the session stays open",
                None,
            ),
            b(
                L::TerminalScroll,
                A::Up,
                &[c('k'), k(K::Up)],
                "Scroll up a line",
                None,
            ),
            b(
                L::TerminalScroll,
                A::Down,
                &[c('j'), k(K::Down)],
                "Scroll down a line",
                None,
            ),
            b(
                L::TerminalScroll,
                A::PageUp,
                &[k(K::PageUp)],
                "Scroll up a page",
                Some("page up"),
            ),
            b(
                L::TerminalScroll,
                A::PageDown,
                &[k(K::PageDown)],
                "Scroll down a page",
                Some("page down"),
            ),
            b(
                L::TerminalScroll,
                A::First,
                &[k(K::Home), c('g')],
                "The oldest line kept",
                None,
            ),
            b(
                L::TerminalScroll,
                A::Last,
                &[k(K::End), c('G')],
                "The newest line",
                None,
            ),
            b(
                L::TerminalScroll,
                A::Cancel,
                &[k(K::Esc), c('q')],
                "Back to the live terminal",
                Some("live"),
            ),
            b(
                L::Secret,
                A::Confirm,
                &[k(K::Enter)],
                "Connect with what you typed",
                Some("connect"),
            ),
            b(L::Secret, A::Cancel, &[k(K::Esc)], "Cancel", Some("cancel")),
            b(L::Secret, A::Quit, &[quit], "Quit", None),
            b(
                L::Connecting,
                A::Cancel,
                &[k(K::Esc)],
                "Stop waiting (a late acceptance is ended at once)",
                Some("stop waiting"),
            ),
            b(L::Connecting, A::Quit, &[quit], "Quit", None),
            b(
                L::Confirm,
                A::Yes,
                &[c('y'), k(K::Enter)],
                "Yes: do what the question says",
                Some("yes"),
            ),
            b(
                L::Confirm,
                A::No,
                &[c('n'), k(K::Esc)],
                "No: change nothing",
                Some("no"),
            ),
            b(L::Confirm, A::Quit, &[quit], "Quit", None),
            b(
                L::Filter,
                A::Confirm,
                &[k(K::Enter)],
                "Keep the filter and return to the table",
                Some("keep"),
            ),
            b(
                L::Filter,
                A::Cancel,
                &[k(K::Esc)],
                "Clear the filter",
                Some("clear"),
            ),
            b(L::Filter, A::Up, &[k(K::Up)], "Select the row above", None),
            b(
                L::Filter,
                A::Down,
                &[k(K::Down)],
                "Select the row below",
                None,
            ),
            b(L::Filter, A::Quit, &[quit], "Quit", None),
            b(
                L::Link,
                A::Copy,
                &[c('c'), c('y')],
                "Copy the link to the clipboard",
                Some("copy"),
            ),
            b(
                L::Link,
                A::IssueLink,
                &[c('n')],
                "Issue a new link (earlier links stay valid until they expire)",
                Some("new link"),
            ),
            b(
                L::Link,
                A::RevokeLink,
                &[c('x')],
                "Revoke this link (earlier links stay valid)",
                Some("revoke"),
            ),
            b(
                L::Link,
                A::Cancel,
                &[k(K::Esc), c('q'), k(K::Enter)],
                "Close the dialog",
                Some("close"),
            ),
            b(L::Link, A::Quit, &[quit], "Quit", None),
            b(
                L::Input,
                A::Confirm,
                &[k(K::Enter)],
                "Add the client",
                Some("add"),
            ),
            b(L::Input, A::Cancel, &[k(K::Esc)], "Cancel", Some("cancel")),
            b(L::Input, A::Quit, &[quit], "Quit", None),
            b(
                L::Login,
                A::Confirm,
                &[k(K::Enter)],
                "Next field; log in from the password field",
                Some("log in"),
            ),
            b(
                L::Login,
                A::FocusNext,
                &[k(K::Tab), k(K::Down)],
                "Next field",
                Some("next field"),
            ),
            b(
                L::Login,
                A::FocusPrev,
                &[k(K::BackTab), k(K::Up)],
                "Previous field",
                None,
            ),
            b(
                L::Login,
                A::Cancel,
                &[k(K::Esc)],
                "Stop waiting for the hub",
                None,
            ),
            b(L::Login, A::Quit, &[quit], "Quit", Some("quit")),
            b(
                L::Trust,
                A::Yes,
                &[c('y')],
                "Trust this hub's certificate and log in",
                Some("trust"),
            ),
            b(
                L::Trust,
                A::No,
                &[c('n'), k(K::Esc)],
                "Don't trust it; nothing is sent",
                Some("cancel"),
            ),
            b(L::Trust, A::Quit, &[quit], "Quit", None),
            b(
                L::Mismatch,
                A::Cancel,
                &[k(K::Esc), k(K::Enter), c('q')],
                "Close; no login is attempted",
                Some("close"),
            ),
            b(L::Mismatch, A::Quit, &[quit], "Quit", None),
            b(
                L::Help,
                A::Cancel,
                &[k(K::Esc), c('q'), c('?')],
                "Close the help",
                Some("close"),
            ),
            b(
                L::Help,
                A::Up,
                &[c('k'), k(K::Up)],
                "Scroll up",
                Some("scroll"),
            ),
            b(L::Help, A::Down, &[c('j'), k(K::Down)], "Scroll down", None),
            b(
                L::Help,
                A::PageUp,
                &[k(K::PageUp)],
                "Scroll a page up",
                None,
            ),
            b(
                L::Help,
                A::PageDown,
                &[k(K::PageDown)],
                "Scroll a page down",
                None,
            ),
            b(L::Help, A::Quit, &[quit], "Quit", None),
            b(
                L::Main,
                A::SupportCredentials,
                &[c('c')],
                "Support credentials for the selected workstation (in the clients pane: for all of the client's)",
                None,
            ),
            b(
                L::Login,
                A::GuestLogin,
                &[KeyCombo::ctrl('g')],
                "Switch between your account and a guest's support credentials",
                Some("guest"),
            ),
            b(
                L::CredentialsForm,
                A::Confirm,
                &[k(K::Enter)],
                "Issue the credentials",
                Some("issue"),
            ),
            b(
                L::CredentialsForm,
                A::Up,
                &[c('k'), k(K::Up)],
                "The choice above",
                None,
            ),
            b(
                L::CredentialsForm,
                A::Down,
                &[c('j'), k(K::Down)],
                "The choice below",
                None,
            ),
            b(
                L::CredentialsForm,
                A::Shorter,
                &[k(K::Left), c('h')],
                "A shorter preset duration (1, 4, 8, 24, 72 hours, 7 days)",
                None,
            ),
            b(
                L::CredentialsForm,
                A::Longer,
                &[k(K::Right), c('l')],
                "A longer preset duration",
                Some("duration"),
            ),
            b(
                L::CredentialsForm,
                A::HourLess,
                &[c('-')],
                "One hour less (a custom duration)",
                None,
            ),
            b(
                L::CredentialsForm,
                A::HourMore,
                &[c('+'), c('=')],
                "One hour more (a custom duration, up to 7 days)",
                None,
            ),
            b(
                L::CredentialsForm,
                A::Toggle,
                &[k(K::Char(' ')), c('x')],
                "Turn the focused scope on or off",
                Some("toggle"),
            ),
            b(
                L::CredentialsForm,
                A::Cancel,
                &[k(K::Esc), c('q')],
                "Close without issuing",
                Some("cancel"),
            ),
            b(L::CredentialsForm, A::Quit, &[quit], "Quit", None),
            b(
                L::CredentialsReveal,
                A::Copy,
                &[c('c'), c('y')],
                "Copy the whole block",
                Some("copy all"),
            ),
            b(
                L::CredentialsReveal,
                A::CopyHub,
                &[c('h')],
                "Copy the hub's address",
                Some("hub"),
            ),
            b(
                L::CredentialsReveal,
                A::CopyUser,
                &[c('u')],
                "Copy the user name",
                Some("user"),
            ),
            b(
                L::CredentialsReveal,
                A::CopyPassword,
                &[c('p')],
                "Copy the password",
                Some("password"),
            ),
            b(
                L::CredentialsReveal,
                A::CopyCode,
                &[c('s')],
                "Copy the security code",
                Some("code"),
            ),
            b(
                L::CredentialsReveal,
                A::CopyExpiry,
                &[c('e')],
                "Copy the expiry time",
                Some("expiry"),
            ),
            b(
                L::CredentialsReveal,
                A::Cancel,
                &[k(K::Esc), c('q')],
                "Close: the password and code can never be shown again",
                Some("close"),
            ),
            b(L::CredentialsReveal, A::Quit, &[quit], "Quit", None),
            b(
                L::CredentialsActive,
                A::RevokeCredentials,
                &[c('r')],
                "Revoke them: their guests are disconnected at once",
                Some("revoke"),
            ),
            b(
                L::CredentialsActive,
                A::RegenerateCredentials,
                &[c('g')],
                "Revoke them and issue new ones",
                Some("regenerate"),
            ),
            b(
                L::CredentialsActive,
                A::Cancel,
                &[k(K::Esc), c('c'), c('n')],
                "Keep them as they are",
                Some("cancel"),
            ),
            b(L::CredentialsActive, A::Quit, &[quit], "Quit", None),
        ];
        bindings.extend(credentials_list_bindings());
        bindings.extend(twofa_bindings());
        for layer in [
            L::Sessions,
            L::CredentialsList,
            L::UserMenu,
            L::Users,
            L::Audit,
        ] {
            bindings.extend(row_nav(layer));
        }
        // One-time passwords (issue 5).
        bindings.extend([
            b(
                L::Main,
                A::Otp,
                &[c('p')],
                "One-time password for the selected workstation: request, resend, emergency",
                Some("otp"),
            ),
            b(
                L::Main,
                A::RequireOtp,
                &[c('P')],
                "Require a one-time password for every connection to the selected workstation (in the clients pane: to every workstation of the selected client's group), or stop (admins)",
                None,
            ),
            b(
                L::Main,
                A::Outbox,
                &[c('O')],
                "The hub's outbox: one-time passwords it did not e-mail (admins)",
                None,
            ),
            b(
                L::Otp,
                A::OtpRequest,
                &[c('r')],
                "Request a new one-time password (e-mailed to you, else to the outbox)",
                Some("request"),
            ),
            b(
                L::Otp,
                A::OtpResend,
                &[c('s')],
                "Send your current one-time password again",
                Some("resend"),
            ),
            b(
                L::Otp,
                A::OtpEmergency,
                &[c('e')],
                "Emergency: ask the admins for one, with a reason",
                Some("emergency"),
            ),
            b(
                L::Otp,
                A::Cancel,
                &[k(K::Esc), c('q')],
                "Close",
                Some("close"),
            ),
            b(L::Otp, A::Quit, &[quit], "Quit", None),
            b(
                L::OtpReason,
                A::Confirm,
                &[k(K::Enter)],
                "Send the emergency request",
                Some("send"),
            ),
            b(L::OtpReason, A::Cancel, &[k(K::Esc)], "Back", Some("back")),
            b(L::OtpReason, A::Quit, &[quit], "Quit", None),
            b(
                L::OtpPrompt,
                A::Confirm,
                &[k(K::Enter)],
                "Connect with this one-time password",
                Some("connect"),
            ),
            b(
                L::OtpPrompt,
                A::Cancel,
                &[k(K::Esc)],
                "Cancel",
                Some("cancel"),
            ),
            b(L::OtpPrompt, A::Quit, &[quit], "Quit", None),
            b(
                L::Outbox,
                A::Up,
                &[c('k'), k(K::Up)],
                "Scroll up",
                Some("scroll"),
            ),
            b(
                L::Outbox,
                A::Down,
                &[c('j'), k(K::Down)],
                "Scroll down",
                None,
            ),
            b(L::Outbox, A::Refresh, &[c('r')], "Reload", Some("reload")),
            b(
                L::Outbox,
                A::Cancel,
                &[k(K::Esc), c('q'), c('O')],
                "Close",
                Some("close"),
            ),
            b(L::Outbox, A::Quit, &[quit], "Quit", None),
        ]);
        Self { bindings }
    }
}

impl Keymap {
    /// The default keymap with the user's rebindings applied.
    ///
    /// An override replaces the action's keys in every layer that binds the action. On the main
    /// screen the override wins over other bindings of the same key; in dialogs and text fields
    /// keys they already use, and printable keys in text fields, keep their meaning there.
    pub fn with_overrides(overrides: &KeyOverrides) -> Self {
        let mut keymap = Self::default();
        for (action, keys) in overrides {
            for layer in Layer::ALL {
                if !keymap
                    .bindings
                    .iter()
                    .any(|b| b.layer == layer && b.action == *action)
                {
                    continue;
                }
                let taken_elsewhere = |keymap: &Keymap, key: &KeyCombo| {
                    keymap
                        .bindings
                        .iter()
                        .any(|b| b.layer == layer && b.action != *action && b.keys.contains(key))
                };
                let keys: Vec<KeyCombo> = keys
                    .iter()
                    .copied()
                    .filter(|key| !(layer.is_text_entry() && key.is_printable()))
                    .filter(|key| layer == Layer::Main || !taken_elsewhere(&keymap, key))
                    .collect();
                // The live terminal's only way out is its menu key: never leave it without one.
                if matches!(layer, Layer::Terminal | Layer::Desktop) && keys.is_empty() {
                    continue;
                }
                for binding in keymap.bindings.iter_mut().filter(|b| b.layer == layer) {
                    if binding.action == *action {
                        binding.keys.clone_from(&keys);
                    } else {
                        binding.keys.retain(|key| !keys.contains(key));
                    }
                }
            }
        }
        keymap
    }

    /// The action `event` runs in `layer`, if any.
    pub fn action(&self, layer: Layer, event: &KeyEvent) -> Option<Action> {
        let key = KeyCombo::from_event(event);
        self.bindings
            .iter()
            .find(|b| b.layer == layer && b.keys.contains(&key))
            .map(|b| b.action)
    }

    /// The bindings of one layer, in the order they are listed.
    pub fn bindings(&self, layer: Layer) -> impl Iterator<Item = &Binding> {
        self.bindings.iter().filter(move |b| b.layer == layer)
    }

    /// Footer hints of a layer: (first key, short label), for bindings that have keys and a hint.
    pub fn hints(&self, layer: Layer) -> Vec<(String, &'static str)> {
        self.hint_actions(layer)
            .into_iter()
            .map(|(_, key, hint)| (key, hint))
            .collect()
    }

    /// Footer hints with the action each runs, so the footer can leave out what does not apply.
    pub fn hint_actions(&self, layer: Layer) -> Vec<(Action, String, &'static str)> {
        self.bindings(layer)
            .filter_map(|b| Some((b.action, b.keys.first()?.to_string(), b.hint?)))
            .collect()
    }

    /// The first key bound to `action` in `layer`, as people read it (for prose like "press l").
    pub fn key_for(&self, layer: Layer, action: Action) -> Option<String> {
        self.bindings(layer)
            .find(|b| b.action == action)
            .and_then(|b| b.keys.first())
            .map(ToString::to_string)
    }

    /// The help text: one section per layer, one row (keys, description) per bound binding.
    pub fn help(&self) -> Vec<(&'static str, Vec<(String, &'static str)>)> {
        Layer::ALL
            .iter()
            .map(|&layer| {
                let rows = self
                    .bindings(layer)
                    .filter(|b| !b.keys.is_empty())
                    .map(|b| (b.keys_label(), b.description))
                    .collect();
                (layer.title(), rows)
            })
            .collect()
    }
}

/// Issue 5: the user menu, 2FA dialogs, the users view and the audit log.
fn twofa_bindings() -> Vec<Binding> {
    use Action as A;
    use KeyCode as K;
    use Layer as L;
    let quit = KeyCombo::ctrl('c');
    vec![
        b(
            L::Main,
            A::UserMenu,
            &[c('m')],
            "User menu: Enable 2FA, audit log, users",
            Some("menu"),
        ),
        b(
            L::Main,
            A::Users,
            &[c('U')],
            "Users and their 2FA (admins)",
            None,
        ),
        b(L::Main, A::AuditLog, &[c('L')], "The audit log", None),
        b(L::Sessions, A::UserMenu, &[c('m')], "User menu", None),
        b(
            L::UserMenu,
            A::Confirm,
            &[k(K::Enter)],
            "Open the selected entry",
            Some("open"),
        ),
        b(
            L::UserMenu,
            A::Cancel,
            &[k(K::Esc), c('m')],
            "Close the menu",
            Some("close"),
        ),
        b(L::UserMenu, A::Quit, &[quit], "Quit", None),
        b(
            L::TwoFactorOffer,
            A::Yes,
            &[c('n'), k(K::Enter)],
            "Activate 2FA now",
            Some("activate now"),
        ),
        b(
            L::TwoFactorOffer,
            A::No,
            &[c('l'), k(K::Esc)],
            "Activate later (sessions stay refused)",
            Some("later"),
        ),
        b(L::TwoFactorOffer, A::Quit, &[quit], "Quit", None),
        b(
            L::Enrol,
            A::Confirm,
            &[k(K::Enter)],
            "Confirm with the code your app shows",
            Some("confirm"),
        ),
        b(
            L::Enrol,
            A::Cancel,
            &[k(K::Esc)],
            "Stop (2FA stays off)",
            Some("cancel"),
        ),
        b(L::Enrol, A::Quit, &[quit], "Quit", None),
        b(
            L::AdminPassword,
            A::Confirm,
            &[k(K::Enter)],
            "Make the change",
            Some("confirm"),
        ),
        b(
            L::AdminPassword,
            A::Cancel,
            &[k(K::Esc)],
            "Change nothing",
            Some("cancel"),
        ),
        b(L::AdminPassword, A::Quit, &[quit], "Quit", None),
        b(
            L::Users,
            A::ToggleRequired,
            &[c('x')],
            "Require 2FA for the selected user, or stop",
            Some("require"),
        ),
        b(
            L::Users,
            A::ToggleGlobal,
            &[c('A')],
            "Require 2FA for everyone, or stop",
            Some("all"),
        ),
        b(
            L::Users,
            A::ResetTwoFa,
            &[c('R')],
            "Reset the selected user's 2FA (a lost phone): off, or pending where required; their logins end",
            Some("reset"),
        ),
        b(
            L::Users,
            A::Refresh,
            &[c('r')],
            "Reload the users",
            Some("refresh"),
        ),
        b(
            L::Users,
            A::Cancel,
            &[k(K::Esc), c('U')],
            "Back to the workstations",
            Some("back"),
        ),
        b(
            L::Users,
            A::AddUser,
            &[c('a')],
            "Add a user to your team (they set their password with a one-time code)",
            Some("add"),
        ),
        b(
            L::Users,
            A::ChangeRole,
            &[c('o')],
            "Make the selected user admin, or technician (their consoles close)",
            None,
        ),
        b(
            L::Users,
            A::DisableUser,
            &[c('d')],
            "Disable the selected user (logins end, consoles close), or enable them",
            None,
        ),
        b(
            L::Users,
            A::RemoveUser,
            &[c('X')],
            "Remove the selected user for good (their name stays in the audit log)",
            None,
        ),
        b(
            L::UserAdd,
            A::Confirm,
            &[k(K::Enter)],
            "Add the user",
            Some("add"),
        ),
        b(
            L::UserAdd,
            A::FocusNext,
            &[k(K::Tab)],
            "Next field: name, e-mail, role",
            Some("next"),
        ),
        b(
            L::UserAdd,
            A::Toggle,
            &[c(' ')],
            "On the role: technician or admin",
            Some("role"),
        ),
        b(
            L::UserAdd,
            A::Cancel,
            &[k(K::Esc)],
            "Add nobody",
            Some("cancel"),
        ),
        b(L::UserAdd, A::Quit, &[quit], "Quit", None),
        b(
            L::UserAdded,
            A::Confirm,
            &[k(K::Enter), k(K::Esc)],
            "Close (the code is not shown again)",
            Some("close"),
        ),
        b(L::UserAdded, A::Quit, &[quit], "Quit", None),
        b(
            L::UserConfirm,
            A::Yes,
            &[c('y'), k(K::Enter)],
            "Make the change",
            Some("yes"),
        ),
        b(
            L::UserConfirm,
            A::No,
            &[c('n'), k(K::Esc)],
            "Change nothing",
            Some("no"),
        ),
        b(L::UserConfirm, A::Quit, &[quit], "Quit", None),
        b(L::Users, A::UserMenu, &[c('m')], "User menu", None),
        b(
            L::Users,
            A::Help,
            &[c('?')],
            "Show every key binding",
            Some("help"),
        ),
        b(L::Users, A::Quit, &[c('q'), quit], "Quit", None),
        b(
            L::Audit,
            A::Filter,
            &[c('/')],
            "Filter: user:NAME ws:HOST kind:KIND since:DATE until:DATE",
            Some("filter"),
        ),
        b(
            L::Audit,
            A::Refresh,
            &[c('r')],
            "Reload the audit log",
            Some("refresh"),
        ),
        b(
            L::Audit,
            A::Cancel,
            &[k(K::Esc), c('L')],
            "Back to the workstations",
            Some("back"),
        ),
        b(L::Audit, A::PageUp, &[k(K::PageUp)], "Move a page up", None),
        b(
            L::Audit,
            A::PageDown,
            &[k(K::PageDown)],
            "Move a page down",
            None,
        ),
        b(
            L::Audit,
            A::First,
            &[k(K::Home), c('g')],
            "Jump to the newest record",
            None,
        ),
        b(
            L::Audit,
            A::Last,
            &[k(K::End), c('G')],
            "Jump to the oldest record shown",
            None,
        ),
        b(L::Audit, A::UserMenu, &[c('m')], "User menu", None),
        b(
            L::Audit,
            A::Help,
            &[c('?')],
            "Show every key binding",
            Some("help"),
        ),
        b(L::Audit, A::Quit, &[c('q'), quit], "Quit", None),
        b(
            L::AuditFilter,
            A::Confirm,
            &[k(K::Enter)],
            "Apply the filter",
            Some("apply"),
        ),
        b(
            L::AuditFilter,
            A::Cancel,
            &[k(K::Esc)],
            "Stop editing (the filter stays)",
            Some("done"),
        ),
        b(L::AuditFilter, A::Quit, &[quit], "Quit", None),
    ]
}

/// A binding of the default keymap.
fn b(
    layer: Layer,
    action: Action,
    keys: &[KeyCombo],
    description: &'static str,
    hint: Option<&'static str>,
) -> Binding {
    Binding {
        layer,
        action,
        keys: keys.to_vec(),
        description,
        hint,
    }
}

/// A character key without modifiers.
fn c(ch: char) -> KeyCombo {
    KeyCombo::plain(KeyCode::Char(ch))
}

/// Any key without modifiers.
fn k(code: KeyCode) -> KeyCombo {
    KeyCombo::plain(code)
}

/// Up and down a list: the same keys on every list screen.
fn row_nav(layer: Layer) -> [Binding; 2] {
    [
        b(
            layer,
            Action::Up,
            &[c('k'), k(KeyCode::Up)],
            "Select the row above",
            None,
        ),
        b(
            layer,
            Action::Down,
            &[c('j'), k(KeyCode::Down)],
            "Select the row below",
            None,
        ),
    ]
}

/// The support credentials list (`C`) and its confirmation.
fn credentials_list_bindings() -> Vec<Binding> {
    use Action as A;
    use KeyCode as K;
    use Layer as L;
    let quit = KeyCombo::ctrl('c');
    vec![
        b(
            L::Main,
            A::CredentialsList,
            &[c('C')],
            "The team's support credentials: revoke or regenerate them",
            None,
        ),
        b(
            L::CredentialsList,
            A::RevokeCredentials,
            &[c('r')],
            "Revoke the selected credentials (asks first): their guests are disconnected at once",
            Some("revoke"),
        ),
        b(
            L::CredentialsList,
            A::RegenerateCredentials,
            &[c('g')],
            "Regenerate the selected credentials (asks first): new password and code, shown once",
            Some("regenerate"),
        ),
        b(
            L::CredentialsList,
            A::Refresh,
            &[c('R')],
            "Reload the support credentials",
            Some("refresh"),
        ),
        b(
            L::CredentialsList,
            A::Cancel,
            &[k(K::Esc), c('C')],
            "Back to the workstations",
            Some("back"),
        ),
        b(
            L::CredentialsList,
            A::First,
            &[k(K::Home)],
            "Jump to the newest credentials",
            None,
        ),
        b(
            L::CredentialsList,
            A::Last,
            &[k(K::End), c('G')],
            "Jump to the oldest credentials",
            None,
        ),
        b(
            L::CredentialsList,
            A::UserMenu,
            &[c('m')],
            "User menu",
            None,
        ),
        b(
            L::CredentialsList,
            A::Help,
            &[c('?')],
            "Show every key binding",
            Some("help"),
        ),
        b(L::CredentialsList, A::Quit, &[c('q'), quit], "Quit", None),
        b(
            L::CredentialsConfirm,
            A::Yes,
            &[c('y'), k(K::Enter)],
            "Yes: revoke (or regenerate) them",
            Some("yes"),
        ),
        b(
            L::CredentialsConfirm,
            A::Cancel,
            &[k(K::Esc), c('n')],
            "No: keep them as they are",
            Some("no"),
        ),
        b(L::CredentialsConfirm, A::Quit, &[quit], "Quit", None),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn parses_and_prints_keys() {
        let cases = [
            ("q", "q"),
            ("ctrl-c", "Ctrl-C"),
            ("Ctrl+x", "Ctrl-X"),
            ("G", "G"),
            ("shift-g", "G"),
            ("shift-tab", "Shift-Tab"),
            ("pgdn", "PgDn"),
            ("up", "↑"),
            ("space", "Space"),
            ("f5", "F5"),
            ("-", "-"),
        ];
        for (text, shown) in cases {
            let text = text.replace('+', "-");
            let combo: KeyCombo = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(combo.to_string(), shown, "{text}");
        }
        for bad in ["", "ctrl-", "enterr", "f13", "hyper-q"] {
            assert!(
                bad.parse::<KeyCombo>().is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn events_match_normalised_keys() {
        let keymap = Keymap::default();
        let shifted_g = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(keymap.action(Layer::Main, &shifted_g), Some(Action::Last));
        let backtab = KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT);
        assert_eq!(
            keymap.action(Layer::Main, &backtab),
            Some(Action::FocusPrev)
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        for layer in Layer::ALL {
            // In a live terminal Ctrl-C belongs to the remote shell; scrolling never quits.
            let expected = match layer {
                Layer::Terminal | Layer::TerminalScroll | Layer::Desktop | Layer::SessionEnded => {
                    None
                }
                _ => Some(Action::Quit),
            };
            assert_eq!(keymap.action(layer, &ctrl_c), expected, "{layer:?}");
        }
        assert_eq!(
            keymap.action(Layer::Main, &key(KeyCode::Char('c'))),
            Some(Action::SupportCredentials)
        );
        assert_eq!(
            keymap.action(Layer::Link, &key(KeyCode::Char('c'))),
            Some(Action::Copy)
        );
    }

    #[test]
    fn help_lists_every_binding() {
        let keymap = Keymap::default();
        let help = keymap.help();
        let titles: Vec<_> = help.iter().map(|(title, _)| *title).collect();
        for layer in Layer::ALL {
            assert!(
                titles.contains(&layer.title()),
                "{layer:?} missing from help"
            );
        }
        let rows: Vec<_> = help
            .iter()
            .flat_map(|(title, rows)| rows.iter().map(move |r| (*title, r)))
            .collect();
        for binding in &keymap.bindings {
            let title = binding.layer.title();
            assert!(
                rows.iter().any(|(t, (keys, desc))| *t == title
                    && *keys == binding.keys_label()
                    && *desc == binding.description),
                "{binding:?} missing from help"
            );
        }
        assert_eq!(rows.len(), keymap.bindings.len());
    }

    #[test]
    fn no_key_is_bound_twice_in_a_layer() {
        let keymap = Keymap::default();
        for layer in Layer::ALL {
            let keys: Vec<_> = keymap
                .bindings(layer)
                .flat_map(|b| b.keys.clone())
                .collect();
            for (i, key) in keys.iter().enumerate() {
                assert!(
                    !keys[i + 1..].contains(key),
                    "{key} bound twice in {layer:?}"
                );
            }
            if layer.is_text_entry() {
                assert!(
                    keys.iter().all(|k| !k.is_printable()),
                    "{layer:?} binds a printable key"
                );
            }
        }
    }

    #[test]
    fn overrides_rebind_and_keep_dialogs_working() {
        let mut overrides = KeyOverrides::new();
        overrides.insert(
            Action::Quit,
            vec!["x".parse().expect("key"), KeyCombo::ctrl('q')],
        );
        overrides.insert(Action::Help, vec!["f1".parse().expect("key")]);
        let keymap = Keymap::with_overrides(&overrides);

        assert_eq!(
            keymap.action(Layer::Main, &key(KeyCode::Char('x'))),
            Some(Action::Quit)
        );
        assert_eq!(
            keymap.action(Layer::Main, &key(KeyCode::Char('q'))),
            None,
            "old key unbound"
        );
        assert_eq!(
            keymap.action(Layer::Main, &key(KeyCode::F(1))),
            Some(Action::Help)
        );
        assert_eq!(keymap.action(Layer::Main, &key(KeyCode::Char('?'))), None);
        // In the link dialog `x` still revokes; Ctrl-Q quits there too.
        assert_eq!(
            keymap.action(Layer::Link, &key(KeyCode::Char('x'))),
            Some(Action::RevokeLink)
        );
        let ctrl_q = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::CONTROL);
        assert_eq!(keymap.action(Layer::Link, &ctrl_q), Some(Action::Quit));
        // In the login form `x` types; Ctrl-Q quits.
        assert_eq!(keymap.action(Layer::Login, &key(KeyCode::Char('x'))), None);
        assert_eq!(keymap.action(Layer::Login, &ctrl_q), Some(Action::Quit));
        // Help and footer follow the new keys.
        assert!(
            keymap
                .hints(Layer::Main)
                .contains(&("x".to_owned(), "quit"))
        );
        let main_help = &keymap.help()[0].1;
        assert!(main_help.contains(&("x, Ctrl-Q".to_owned(), "Quit")));
    }

    #[test]
    fn the_terminal_menu_key_arrives_either_way_and_can_be_rebound_but_not_lost() {
        let keymap = Keymap::default();
        // Legacy terminals send Ctrl-] as 0x1d, which crossterm reports as Ctrl-5.
        for event in [
            KeyEvent::new(KeyCode::Char(']'), KeyModifiers::CONTROL),
            KeyEvent::new(KeyCode::Char('5'), KeyModifiers::CONTROL),
        ] {
            assert_eq!(
                keymap.action(Layer::Terminal, &event),
                Some(Action::TerminalMenu)
            );
        }
        assert_eq!("ctrl-]".parse(), Ok(KeyCombo::ctrl(']')));
        assert_eq!(
            keymap.action(Layer::Terminal, &key(KeyCode::Char('q'))),
            None,
            "printable keys go to the remote"
        );

        let mut overrides = KeyOverrides::new();
        overrides.insert(Action::TerminalMenu, vec![KeyCombo::ctrl('b')]);
        let keymap = Keymap::with_overrides(&overrides);
        let ctrl_b = KeyEvent::new(KeyCode::Char('b'), KeyModifiers::CONTROL);
        let ctrl_bracket = KeyEvent::new(KeyCode::Char(']'), KeyModifiers::CONTROL);
        for layer in [Layer::Terminal, Layer::TerminalMenu] {
            assert_eq!(
                keymap.action(layer, &ctrl_b),
                Some(Action::TerminalMenu),
                "{layer:?}"
            );
            assert_eq!(keymap.action(layer, &ctrl_bracket), None, "{layer:?}");
        }
        assert!(
            keymap
                .hints(Layer::Terminal)
                .contains(&("Ctrl-B".to_owned(), "menu"))
        );

        // A printable key would type into the remote: refused, and the default stays.
        overrides.insert(Action::TerminalMenu, vec!["x".parse().expect("key")]);
        let keymap = Keymap::with_overrides(&overrides);
        assert_eq!(
            keymap.action(Layer::Terminal, &ctrl_bracket),
            Some(Action::TerminalMenu)
        );
        assert_eq!(
            keymap.action(Layer::Terminal, &key(KeyCode::Char('x'))),
            None
        );
    }

    #[test]
    fn override_on_main_screen_takes_the_key_from_another_action() {
        let mut overrides = KeyOverrides::new();
        overrides.insert(Action::Refresh, vec!["t".parse().expect("key")]);
        let keymap = Keymap::with_overrides(&overrides);
        assert_eq!(
            keymap.action(Layer::Main, &key(KeyCode::Char('t'))),
            Some(Action::Refresh)
        );
        assert!(
            !keymap
                .hints(Layer::Main)
                .iter()
                .any(|(_, hint)| *hint == "theme"),
            "theme lost its only key"
        );
    }
}

#[cfg(test)]
mod dump {
    use super::*;
    fn key_name(k: &KeyCombo) -> String {
        let mut s = String::new();
        if k.modifiers.contains(KeyModifiers::CONTROL) {
            s.push_str("ctrl-");
        }
        if k.modifiers.contains(KeyModifiers::ALT) {
            s.push_str("alt-");
        }
        if k.modifiers.contains(KeyModifiers::SHIFT) {
            s.push_str("shift-");
        }
        let name = match k.code {
            KeyCode::Char(' ') => "space".to_owned(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Enter => "enter".into(),
            KeyCode::Esc => "esc".into(),
            KeyCode::Tab => "tab".into(),
            KeyCode::BackTab => "backtab".into(),
            KeyCode::Backspace => "backspace".into(),
            KeyCode::Delete => "delete".into(),
            KeyCode::Insert => "insert".into(),
            KeyCode::Up => "up".into(),
            KeyCode::Down => "down".into(),
            KeyCode::Left => "left".into(),
            KeyCode::Right => "right".into(),
            KeyCode::Home => "home".into(),
            KeyCode::End => "end".into(),
            KeyCode::PageUp => "pgup".into(),
            KeyCode::PageDown => "pgdn".into(),
            KeyCode::F(n) => format!("f{n}"),
            other => panic!("{other:?}"),
        };
        s.push_str(&name);
        s
    }
    fn snake(name: &str) -> String {
        let mut out = String::new();
        for (i, c) in name.chars().enumerate() {
            if c.is_uppercase() {
                if i > 0 {
                    out.push('_');
                }
                out.extend(c.to_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }
    #[test]
    #[ignore]
    fn dump_default_keymap() {
        let keymap = Keymap::default();
        let mut out = String::new();
        for layer in Layer::ALL {
            out.push_str(&format!(
                "\n# {}\n[{}]\nkeymap = [\n",
                layer.title(),
                snake(&format!("{layer:?}"))
            ));
            for b in keymap.bindings(layer) {
                let on: Vec<String> = b
                    .keys
                    .iter()
                    .map(|k| format!("{:?}", key_name(k)))
                    .collect();
                let hint = b
                    .hint
                    .map(|h| format!(", hint = {h:?}"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "  {{ on = [{}], run = {:?}, desc = {:?}{hint} }},\n",
                    on.join(", "),
                    b.action.name(),
                    b.description
                ));
            }
            out.push_str("]\n");
        }
        std::fs::write("/tmp/keymap-dump.toml", out).unwrap();
    }
}
