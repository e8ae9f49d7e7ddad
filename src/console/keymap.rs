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

/// Who has the keyboard: a screen, or the dialog on top of it. The list of layers, their names in
/// the keymap file and their titles in the help are made from this one table.
macro_rules! layers {
    ($($(#[doc = $doc:literal])* $layer:ident = $name:literal, $title:literal;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Layer {
            $($(#[doc = $doc])* $layer,)*
        }

        impl Layer {
            /// Every layer, in the order the help lists them.
            pub const ALL: [Layer; [$($name),*].len()] = [$(Layer::$layer),*];

            /// The layer's table name in the keymap file.
            pub fn name(self) -> &'static str {
                match self {
                    $(Layer::$layer => $name,)*
                }
            }

            /// The layer's heading in the help.
            pub fn title(self) -> &'static str {
                match self {
                    $(Layer::$layer => $title,)*
                }
            }
        }
    };
}

layers! {
    /// The clients pane and the workstations table.
    Main = "main", "Clients and workstations";
    /// The team's open sessions.
    Sessions = "sessions", "Sessions";
    /// A live terminal session, full screen: keys go to the remote shell.
    Terminal = "terminal", "Live terminal";
    /// The live terminal's menu (the escape key).
    TerminalMenu = "terminal_menu", "Live terminal menu";
    /// Scrolling a live terminal's history.
    TerminalScroll = "terminal_scroll", "Scrolling a live terminal";
    /// A live desktop, full screen: keys and mouse go to the remote screen.
    Desktop = "desktop", "Live desktop";
    /// The live desktop's menu (the escape key).
    DesktopMenu = "desktop_menu", "Live desktop menu";
    /// A live terminal or desktop whose session ended: its last screen, until dismissed.
    SessionEnded = "session_ended", "A session that ended";
    /// Typing a filter for the workstations table.
    Filter = "filter", "While filtering";
    /// Typing a workstation's passcode or password to connect.
    Secret = "secret", "Passcode or password";
    /// Waiting for the end user or the workstation to answer a connection.
    Connecting = "connecting", "While connecting";
    /// A yes/no question (withdraw unattended access?).
    Confirm = "confirm", "A question before a change (quit, unattended access, links, OTP)";
    /// The enrolment link dialog.
    Link = "link", "Enrolment link";
    /// A dialog asking for a name (add client).
    Input = "input", "Add client";
    /// The login form.
    Login = "login", "Login";
    /// "Trust this hub?" on first contact.
    Trust = "trust", "Trust a new hub";
    /// The hub's certificate changed.
    Mismatch = "mismatch", "Hub certificate changed";
    /// The help overlay.
    Help = "help", "This help";
    /// The user menu.
    UserMenu = "user_menu", "User menu";
    /// "2FA is required: activate now or later?"
    TwoFactorOffer = "two_factor_offer", "Two-factor authentication required";
    /// 2FA enrolment: typing the code from the app.
    Enrol = "enrol", "Enable 2FA";
    /// An admin typing their password again for a 2FA change.
    AdminPassword = "admin_password", "Your password, for a 2FA change";
    /// The users view (admins).
    Users = "users", "Users (admins)";
    /// Adding a user: name, e-mail, role.
    UserAdd = "user_add", "Add a user";
    /// A new user's enrolment code, shown once.
    UserAdded = "user_added", "A new user's enrolment code";
    /// Disable, remove or change the role of a user?
    UserConfirm = "user_confirm", "Change a user";
    /// The audit log.
    Audit = "audit", "Audit log";
    /// Typing the audit log's filter.
    AuditFilter = "audit_filter", "While filtering the audit log";
    /// Choosing support credentials' duration and scopes.
    CredentialsForm = "credentials_form", "Support credentials";
    /// New support credentials, shown once.
    CredentialsReveal = "credentials_reveal", "Support credentials, shown once";
    /// Support credentials for this target are already active.
    CredentialsActive = "credentials_active", "Support credentials already active";
    /// The one-time password dialog.
    Otp = "otp", "One-time password";
    /// Typing an emergency reason.
    OtpReason = "otp_reason", "Emergency reason";
    /// Typing a one-time password to connect.
    OtpPrompt = "otp_prompt", "Typing a one-time password";
    /// The hub's outbox.
    Outbox = "outbox", "Outbox";
    /// The team's support credentials, as a table.
    CredentialsList = "credentials_list", "Support credentials list";
    /// "Revoke (or regenerate) these support credentials?"
    CredentialsConfirm = "credentials_confirm", "Revoke or regenerate support credentials";
}

impl Layer {
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

/// The default keymap, as data: compiled in, parsed once.
const DEFAULT_KEYMAP: &str = include_str!("keymap.toml");

/// A keymap file (the default, or the user's): one table per layer, each a list of bindings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerTable {
    keymap: Vec<Entry>,
}

/// One binding as written in a keymap file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    on: toml::Spanned<KeyList>,
    run: Action,
    /// Optional in the user's file: an override keeps the default's description.
    #[serde(default)]
    desc: Option<String>,
    #[serde(default)]
    hint: Option<String>,
}

/// One key (`"q"`) or several (`["q", "ctrl-c"]`).
pub struct KeyList(pub Vec<KeyCombo>);

impl<'de> Deserialize<'de> for KeyList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyListVisitor;
        impl<'de> serde::de::Visitor<'de> for KeyListVisitor {
            type Value = KeyList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key like \"q\" or a list of keys like [\"q\", \"ctrl-c\"]")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KeyList, E> {
                v.parse().map(|k| KeyList(vec![k])).map_err(E::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<KeyList, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = seq.next_element::<KeyCombo>()? {
                    keys.push(key);
                }
                Ok(KeyList(keys))
            }
        }
        deserializer.deserialize_any(KeyListVisitor)
    }
}

/// A layer's table name in a keymap file.
impl<'de> Deserialize<'de> for Layer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Layer::ALL
            .into_iter()
            .find(|layer| layer.name() == name)
            .ok_or_else(|| {
                let names: Vec<_> = Layer::ALL.iter().map(|l| l.name()).collect();
                serde::de::Error::custom(format!(
                    "unknown layer {name:?}; the layers are: {}",
                    names.join(", ")
                ))
            })
    }
}

/// A keymap file that could not be used: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} line {line}: {message}")]
pub struct KeymapError {
    pub path: String,
    pub line: usize,
    pub message: String,
}

/// One binding parsed from a file, its text owned.
struct Parsed {
    layer: Layer,
    action: Action,
    keys: Vec<KeyCombo>,
    desc: Option<String>,
    hint: Option<String>,
}

/// Parse a keymap file's text (`path` names it in errors). Printable keys in layers where the
/// user types are refused: they would never reach the action.
fn parse_file(text: &str, path: &str) -> Result<Vec<Parsed>, KeymapError> {
    let error = |line, message: String| KeymapError {
        path: path.to_owned(),
        line,
        message,
    };
    let tables: BTreeMap<Layer, LayerTable> = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map_or(1, |span| super::theme::line_and_column(text, span.start).0);
        error(line, e.message().trim().to_owned())
    })?;
    let mut parsed = Vec::new();
    for (layer, table) in tables {
        for entry in table.keymap {
            let line = super::theme::line_and_column(text, entry.on.span().start).0;
            let keys = entry.on.into_inner().0;
            if let Some(key) = keys
                .iter()
                .find(|k| layer.is_text_entry() && k.is_printable())
            {
                return Err(error(
                    line,
                    format!(
                        "{key} types in the {} layer ({}): bind a key with ctrl- or alt-, or a named key",
                        layer.name(),
                        layer.title()
                    ),
                ));
            }
            parsed.push(Parsed {
                layer,
                action: entry.run,
                keys,
                desc: entry.desc,
                hint: entry.hint,
            });
        }
    }
    Ok(parsed)
}

/// The default keymap's bindings, parsed once; the text they borrow lives as long as the
/// program.
static DEFAULT_BINDINGS: std::sync::LazyLock<Result<Vec<Parsed>, KeymapError>> =
    std::sync::LazyLock::new(|| parse_file(DEFAULT_KEYMAP, "the built-in keymap.toml"));

impl Default for Keymap {
    fn default() -> Self {
        match &*DEFAULT_BINDINGS {
            Ok(parsed) => Self {
                bindings: parsed
                    .iter()
                    .map(|p| Binding {
                        layer: p.layer,
                        action: p.action,
                        keys: p.keys.clone(),
                        description: p.desc.as_deref().unwrap_or(""),
                        hint: p.hint.as_deref(),
                    })
                    .collect(),
            },
            // A test parses the built-in file; should it ever fail, Ctrl-C still quits.
            Err(e) => {
                tracing::error!(%e, "the built-in keymap does not parse");
                Self {
                    bindings: Layer::ALL
                        .into_iter()
                        .map(|layer| Binding {
                            layer,
                            action: Action::Quit,
                            keys: vec![KeyCombo::ctrl('c')],
                            description: "Quit",
                            hint: Some("quit"),
                        })
                        .collect(),
                }
            }
        }
    }
}

impl Keymap {
    /// Where the user's keymap file lives.
    pub fn path(paths: &crate::paths::Paths) -> std::path::PathBuf {
        paths.config.join("keymap.toml")
    }

    /// The default keymap with the user's file applied; no file is the default. A bad file is
    /// refused whole with its line, so the caller can start with the default and say why.
    pub fn load(path: &std::path::Path) -> Result<Self, KeymapError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::default().with_user_file(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(KeymapError {
                path: path.display().to_string(),
                line: 0,
                message: format!("cannot read it: {e}"),
            }),
        }
    }

    /// Apply a user's keymap file: per layer, an entry for an action the layer binds replaces
    /// that binding's keys (and its description or hint, if given); one for another action adds
    /// a binding; keys an entry takes leave the layer's other bindings. The rest stays.
    pub fn with_user_file(mut self, text: &str, path: &str) -> Result<Self, KeymapError> {
        for entry in parse_file(text, path)? {
            // The user's words live as long as the console (read once, at start).
            let leak = |text: String| -> &'static str { Box::leak(text.into_boxed_str()) };
            for binding in self.bindings.iter_mut().filter(|b| b.layer == entry.layer) {
                if binding.action != entry.action {
                    binding.keys.retain(|key| !entry.keys.contains(key));
                }
            }
            let existing = self
                .bindings
                .iter_mut()
                .find(|b| b.layer == entry.layer && b.action == entry.action);
            match existing {
                Some(binding) => {
                    binding.keys = entry.keys;
                    if let Some(desc) = entry.desc {
                        binding.description = leak(desc);
                    }
                    if let Some(hint) = entry.hint {
                        binding.hint = Some(leak(hint));
                    }
                }
                None => self.bindings.push(Binding {
                    layer: entry.layer,
                    action: entry.action,
                    keys: entry.keys,
                    description: entry.desc.map_or(entry.action.name(), leak),
                    hint: entry.hint.map(leak),
                }),
            }
        }
        Ok(self)
    }

    /// The default keymap with the user's rebindings applied.
    ///
    /// An override replaces the action's keys in every layer that binds the action. On the main
    /// screen the override wins over other bindings of the same key; in dialogs and text fields
    /// keys they already use, and printable keys in text fields, keep their meaning there.
    pub fn with_overrides(overrides: &KeyOverrides) -> Self {
        Self::default().overridden(overrides)
    }

    /// This keymap with `config.toml`'s rebindings applied (see [`Keymap::with_overrides`]).
    pub fn overridden(self, overrides: &KeyOverrides) -> Self {
        let mut keymap = self;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn the_default_keymap_is_data_that_binds_every_action_once_per_layer() {
        let parsed = DEFAULT_BINDINGS
            .as_ref()
            .expect("the built-in keymap.toml parses");
        assert!(!parsed.is_empty());
        let keymap = Keymap::default();
        for action in Action::ALL {
            assert!(
                keymap
                    .bindings
                    .iter()
                    .any(|b| b.action == action && !b.keys.is_empty()),
                "{action:?} ({}) has no key in the default keymap",
                action.name()
            );
        }
        for binding in &keymap.bindings {
            assert!(!binding.description.is_empty(), "{binding:?} has no desc");
        }
        // Every layer has a table, and its name is unique (they are made from one list).
        let names: std::collections::BTreeSet<_> = Layer::ALL.iter().map(|l| l.name()).collect();
        assert_eq!(names.len(), Layer::ALL.len());
        for layer in Layer::ALL {
            assert!(
                DEFAULT_KEYMAP.contains(&format!("\n[{}]\n", layer.name())),
                "no [{}] table",
                layer.name()
            );
        }
    }

    fn user_file(text: &str) -> Result<Keymap, KeymapError> {
        Keymap::default().with_user_file(text, "/home/ann/.config/tether/keymap.toml")
    }

    #[test]
    fn a_user_file_overrides_one_binding_and_keeps_the_rest() {
        let keymap = user_file(
            "[main]\nkeymap = [\n  { on = [\"f2\"], run = \"show_link\", hint = \"links\" },\n]\n",
        )
        .expect("valid");
        let press = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        let f2 = KeyEvent::new(KeyCode::F(2), KeyModifiers::NONE);
        assert_eq!(keymap.action(Layer::Main, &f2), Some(Action::ShowLink));
        assert_eq!(
            keymap.action(Layer::Main, &press('l')),
            None,
            "old key gone"
        );
        // The rest of the layer, and other layers, as they were.
        let default = Keymap::default();
        for layer in Layer::ALL {
            for binding in default
                .bindings(layer)
                .filter(|b| b.action != Action::ShowLink)
            {
                let kept = keymap
                    .bindings(layer)
                    .find(|b| b.action == binding.action)
                    .expect("kept");
                assert_eq!(kept, binding);
            }
        }
        // The footer and the help follow; the description stays the default's.
        assert!(
            keymap
                .hints(Layer::Main)
                .contains(&("F2".to_owned(), "links"))
        );
        let link = keymap
            .bindings(Layer::Main)
            .find(|b| b.action == Action::ShowLink)
            .expect("bound");
        assert_eq!(
            link.description,
            default
                .bindings(Layer::Main)
                .find(|b| b.action == Action::ShowLink)
                .expect("default")
                .description
        );

        // A key taken from another action leaves it; a new action in a layer is added.
        let keymap = user_file(
            "[sessions]\nkeymap = [{ on = \"r\", run = \"user_menu\", desc = \"My menu\" }]\n",
        )
        .expect("valid");
        assert_eq!(
            keymap.action(Layer::Sessions, &press('r')),
            Some(Action::UserMenu)
        );
        assert!(
            keymap
                .bindings(Layer::Sessions)
                .any(|b| b.action == Action::Refresh && b.keys.is_empty())
        );
        assert!(keymap.help().iter().any(
            |(title, rows)| *title == "Sessions" && rows.contains(&("r".to_owned(), "My menu"))
        ));
    }

    #[test]
    fn a_bad_user_file_names_its_line_and_the_defaults_stay() {
        let cases = [
            (
                "[main]\nkeymap = [\n  { on = \"x\", run = \"quitt\" },\n]\n",
                3,
                "quitt",
            ),
            ("[mian]\nkeymap = []\n", 1, "unknown layer \"mian\""),
            (
                "[main]\nkeymap = [\n\n  { on = \"ctrl-cc\", run = \"quit\" },\n]\n",
                4,
                "ctrl-cc",
            ),
            (
                "[login]\nkeymap = [\n  { on = \"q\", run = \"quit\" },\n]\n",
                3,
                "types in the login layer",
            ),
            (
                "[main]\nkeymap = [{ on = \"x\", run = \"quit\", color = \"red\" }]\n",
                2,
                "color",
            ),
            ("[main]\nkeymap = [\n", 2, ""),
        ];
        for (text, line, needle) in cases {
            let err = user_file(text).expect_err(text);
            assert_eq!(err.line, line, "{text}: {err}");
            let message = err.to_string();
            assert!(
                message.starts_with(&format!(
                    "/home/ann/.config/tether/keymap.toml line {line}: "
                )),
                "{message}"
            );
            assert!(message.contains(needle), "{text}: {message}");
        }
        // Through the file: refused whole, so the caller starts with the defaults.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keymap.toml");
        assert_eq!(
            Keymap::load(&path),
            Ok(Keymap::default()),
            "no file: defaults"
        );
        std::fs::write(&path, cases[0].0).expect("write");
        let err = Keymap::load(&path).expect_err("refused");
        assert!(err.to_string().contains("keymap.toml line 3"), "{err}");
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
