//! The console's logic: `update(&mut State, Msg) -> Vec<Effect>`. Pure: it never awaits and does
//! no I/O; what must happen outside (send to the hub, copy, write the login store) comes back as
//! effects, and their outcomes come back as messages.

use chrono::{DateTime, Utc};
use crossterm::event::{KeyEvent, KeyEventKind};

use super::action::Action;
use super::clipboard::CopyMethod;
use super::keymap::Layer;
use super::net::{NetCommand, NetEvent};
use super::state::{
    Connection, Dialog, LinkDialog, LoginField, LoginPhase, Pane, Pending, Screen, Session, State,
    Status, StatusKind, TextInput,
};
use crate::client::store::StoredLogin;
use crate::protocol::{ConsoleReply, ConsoleRequest, ErrorCode, HubEvent, ProtocolError};

/// Everything that can happen to the console.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(KeyEvent),
    /// Text pasted into the terminal (bracketed paste).
    Paste(String),
    Net(NetEvent),
    /// A second passed; carries the time so the clock stays injected.
    Tick(DateTime<Utc>),
    Resize {
        width: u16,
        height: u16,
    },
    /// Answer to `Effect::LoadPin`.
    PinLoaded {
        hub: String,
        fingerprint: Option<String>,
    },
    /// Outcome of `Effect::Copy`.
    Copied(Result<CopyMethod, String>),
    /// An effect failed (writing the login store, the link task gone): shown in the status line.
    EffectFailed(String),
}

/// What `update` asks the app loop to do.
#[derive(Debug, Clone)]
pub enum Effect {
    Net(NetCommand),
    /// Look up the pinned fingerprint of a hub; answered with `Msg::PinLoaded`.
    LoadPin {
        hub: String,
    },
    /// Pin a hub's certificate (the technician said yes).
    Trust {
        hub: String,
        fingerprint: String,
    },
    SaveLogin(StoredLogin),
    ForgetLogin {
        hub: String,
    },
    /// Copy text to the clipboard; answered with `Msg::Copied`.
    Copy(String),
    Quit,
}

/// How the console starts, decided by the app from its options and the login store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Startup {
    /// A login made elsewhere (demo): resume with it, store nothing.
    Preset {
        hub: String,
        fingerprint: String,
        token: String,
    },
    /// A stored login: try it, fall back to the form prefilled with hub and user.
    Stored {
        hub: String,
        user: String,
        token: String,
        fingerprint: String,
    },
    /// The login form, prefilled where we know something.
    Form {
        hub: Option<String>,
        user: Option<String>,
    },
}

/// Put the console in its first state.
pub fn start(state: &mut State, startup: Startup) -> Vec<Effect> {
    state.dirty = true;
    match startup {
        Startup::Preset {
            hub,
            fingerprint,
            token,
        } => {
            state.login.hub = TextInput::new(hub.clone());
            resume(state, hub, fingerprint, token, false, false)
        }
        Startup::Stored {
            hub,
            user,
            token,
            fingerprint,
        } => {
            state.login.hub = TextInput::new(hub.clone());
            state.login.user = TextInput::new(user);
            state.login.field = LoginField::Password;
            resume(state, hub, fingerprint, token, true, true)
        }
        Startup::Form { hub, user } => {
            state.login.hub = TextInput::new(hub.unwrap_or_default());
            state.login.user = TextInput::new(user.unwrap_or_default());
            state.login.field = if state.login.hub.value.is_empty() {
                LoginField::Hub
            } else if state.login.user.value.is_empty() {
                LoginField::User
            } else {
                LoginField::Password
            };
            Vec::new()
        }
    }
}

fn resume(
    state: &mut State,
    hub: String,
    fingerprint: String,
    token: String,
    remember: bool,
    fallback: bool,
) -> Vec<Effect> {
    state.login.phase = LoginPhase::Resuming { fallback };
    state.connection = Connection::Connecting;
    state.session = Some(Session {
        hub: hub.clone(),
        fingerprint: fingerprint.clone(),
        user: None,
        remember,
    });
    vec![Effect::Net(NetCommand::Resume {
        hub,
        fingerprint,
        token,
    })]
}

/// Apply one message.
pub fn update(state: &mut State, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Key(key) if key.kind == KeyEventKind::Release => Vec::new(),
        Msg::Key(key) => on_key(state, &key),
        Msg::Paste(text) => {
            let locked = state.layer() == Layer::Login && state.login.phase.busy();
            if let Some(field) = text_field(state).filter(|_| !locked) {
                field.insert_str(&text);
                after_filter_edit(state);
                state.dirty = true;
            }
            Vec::new()
        }
        Msg::Net(event) => on_net(state, event),
        Msg::Tick(now) => {
            state.now = now;
            // Ages in the table change every second; the login screen has nothing that ages.
            if state.screen == Screen::Main {
                state.dirty = true;
            }
            if state
                .status
                .as_ref()
                .is_some_and(|s| s.kind != StatusKind::Error && (now - s.since).num_seconds() >= 10)
            {
                state.status = None;
                state.dirty = true;
            }
            Vec::new()
        }
        Msg::Resize { width, height } => {
            state.size = (width, height);
            scroll_into_view(state);
            state.dirty = true;
            Vec::new()
        }
        Msg::PinLoaded { hub, fingerprint } => on_pin_loaded(state, hub, fingerprint),
        Msg::Copied(Ok(method)) => {
            set_status(state, StatusKind::Success, method.status());
            Vec::new()
        }
        Msg::Copied(Err(error)) => {
            set_status(state, StatusKind::Error, format!("Copy failed: {error}"));
            Vec::new()
        }
        Msg::EffectFailed(error) => {
            set_status(state, StatusKind::Error, error);
            Vec::new()
        }
    }
}

fn set_status(state: &mut State, kind: StatusKind, text: impl Into<String>) {
    state.status = Some(Status {
        text: text.into(),
        kind,
        since: state.now,
    });
    state.dirty = true;
}

/// The text field that has the keyboard, if any.
fn text_field(state: &mut State) -> Option<&mut TextInput> {
    match state.layer() {
        Layer::Login => Some(match state.login.field {
            LoginField::Hub => &mut state.login.hub,
            LoginField::User => &mut state.login.user,
            LoginField::Password => &mut state.login.password,
        }),
        Layer::Filter => Some(&mut state.filter),
        Layer::Input => match &mut state.dialog {
            Some(Dialog::AddClient { name, .. }) => Some(name),
            _ => None,
        },
        _ => None,
    }
}

fn after_filter_edit(state: &mut State) {
    if state.layer() == Layer::Filter {
        fix_selection(state);
    }
}

fn on_key(state: &mut State, key: &KeyEvent) -> Vec<Effect> {
    let layer = state.layer();
    if let Some(action) = state.keymap.action(layer, key) {
        return on_action(state, layer, action);
    }
    // The login form is read-only while an attempt is under way.
    if layer == Layer::Login && state.login.phase.busy() {
        return Vec::new();
    }
    if let Some(field) = text_field(state)
        && field.edit(key)
    {
        after_filter_edit(state);
        if layer == Layer::Login {
            state.login.error = None;
        }
        state.dirty = true;
    }
    Vec::new()
}

fn quit(state: &mut State) -> Vec<Effect> {
    state.quitting = true;
    vec![Effect::Net(NetCommand::Shutdown), Effect::Quit]
}

fn on_action(state: &mut State, layer: Layer, action: Action) -> Vec<Effect> {
    if action == Action::Quit {
        return quit(state);
    }
    state.dirty = true;
    match layer {
        Layer::Main => on_main_action(state, action),
        Layer::Filter => {
            match action {
                Action::Confirm => state.filtering = false,
                Action::Cancel => {
                    state.filter.clear();
                    state.filtering = false;
                    fix_selection(state);
                }
                Action::Up | Action::Down => move_selection(state, Pane::Workstations, action),
                _ => {}
            }
            Vec::new()
        }
        Layer::Login => on_login_action(state, action),
        Layer::Trust => on_trust_action(state, action),
        Layer::Mismatch => {
            if action == Action::Cancel {
                state.dialog = None;
            }
            Vec::new()
        }
        Layer::Input => on_add_client_action(state, action),
        Layer::Link => on_link_action(state, action),
        Layer::Help => {
            let max_scroll = state.help_max_scroll();
            let page = state.size.1.saturating_sub(8).max(1);
            let Some(Dialog::Help { scroll }) = &mut state.dialog else {
                return Vec::new();
            };
            *scroll = match action {
                Action::Up => scroll.saturating_sub(1),
                Action::Down => scroll.saturating_add(1),
                Action::PageUp => scroll.saturating_sub(page),
                Action::PageDown => scroll.saturating_add(page),
                Action::Cancel | Action::Help => {
                    state.dialog = None;
                    return Vec::new();
                }
                _ => *scroll,
            }
            .min(max_scroll);
            Vec::new()
        }
    }
}

fn on_main_action(state: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::Help => state.dialog = Some(Dialog::Help { scroll: 0 }),
        Action::FocusNext | Action::FocusPrev => {
            state.focus = match state.focus {
                Pane::Clients => Pane::Workstations,
                Pane::Workstations => Pane::Clients,
            }
        }
        Action::Up
        | Action::Down
        | Action::PageUp
        | Action::PageDown
        | Action::First
        | Action::Last => {
            move_selection(state, state.focus, action);
        }
        Action::Filter => state.filtering = true,
        Action::Cancel if !state.filter.value.is_empty() => {
            state.filter.clear();
            fix_selection(state);
        }
        Action::AddClient => {
            state.dialog = Some(Dialog::AddClient {
                name: TextInput::default(),
                error: None,
            })
        }
        Action::ShowLink => return show_link(state),
        Action::Refresh => {
            set_status(state, StatusKind::Info, "Refreshing…");
            return refresh(state);
        }
        Action::CycleTheme => {
            state.theme = (state.theme + 1) % state.theme_names.len().max(1);
            let text = format!("Theme: {}", state.theme_name());
            set_status(state, StatusKind::Info, text);
        }
        _ => {}
    }
    Vec::new()
}

/// Move the selection of a pane by one, a page, or to an end.
fn move_selection(state: &mut State, pane: Pane, action: Action) {
    let (len, current) = match pane {
        Pane::Clients => (state.client_rows().len(), state.selected_client_row()),
        Pane::Workstations => {
            let rows = state.visible_workstations();
            (rows.len(), state.selected_row(&rows).unwrap_or(0))
        }
    };
    if len == 0 {
        return;
    }
    let page = state.page_rows();
    let last = len - 1;
    let target = match action {
        Action::Up => current.saturating_sub(1),
        Action::Down => (current + 1).min(last),
        Action::PageUp => current.saturating_sub(page),
        Action::PageDown => (current + page).min(last),
        Action::First => 0,
        Action::Last => last,
        _ => current,
    };
    match pane {
        Pane::Clients => {
            state.selected_client = target
                .checked_sub(1)
                .and_then(|i| state.clients.get(i))
                .map(|c| c.id.clone());
            fix_selection(state);
        }
        Pane::Workstations => {
            state.selected_workstation = state
                .visible_workstations()
                .get(target)
                .map(|w| w.id.clone());
            scroll_into_view(state);
        }
    }
}

/// Scroll the table just enough to show the selected row.
fn scroll_into_view(state: &mut State) {
    let rows = state.visible_workstations();
    let page = state.page_rows();
    let selected = state.selected_row(&rows).unwrap_or(0);
    let last_offset = rows.len().saturating_sub(page);
    let offset = state.table_offset.min(last_offset);
    state.table_offset = if selected < offset {
        selected
    } else if selected >= offset + page {
        selected + 1 - page
    } else {
        offset
    };
}

/// Keep the selected workstation among the visible rows (the first one if it left).
fn fix_selection(state: &mut State) {
    if state
        .selected_client
        .as_ref()
        .is_some_and(|id| !state.clients.iter().any(|c| &c.id == id))
    {
        state.selected_client = None;
    }
    let rows = state.visible_workstations();
    if state.selected_row(&rows).is_none() {
        state.selected_workstation = rows.first().map(|w| w.id.clone());
    }
    scroll_into_view(state);
}

fn request(state: &mut State, body: ConsoleRequest, pending: Pending) -> Effect {
    let id = state.next_request_id;
    state.next_request_id += 1;
    state.pending.insert(id, pending);
    Effect::Net(NetCommand::Request { id, body })
}

fn refresh(state: &mut State) -> Vec<Effect> {
    vec![
        request(state, ConsoleRequest::ListClients, Pending::ListClients),
        request(
            state,
            ConsoleRequest::ListWorkstations { client: None },
            Pending::ListWorkstations,
        ),
    ]
}

fn show_link(state: &mut State) -> Vec<Effect> {
    // The selected client, else the client of the selected workstation.
    let client = match &state.selected_client {
        Some(id) => state
            .clients
            .iter()
            .find(|c| &c.id == id)
            .map(|c| (c.id.clone(), c.name.clone())),
        None => {
            let rows = state.visible_workstations();
            state
                .selected_row(&rows)
                .map(|i| (rows[i].client_id.clone(), rows[i].client_name.clone()))
        }
    };
    let Some((client_id, client_name)) = client else {
        let add = state
            .keymap
            .key_for(Layer::Main, Action::AddClient)
            .unwrap_or_else(|| "a".into());
        set_status(
            state,
            StatusKind::Warning,
            format!("Select a client first (Tab to the clients pane), or press {add} to add one."),
        );
        return Vec::new();
    };
    state.dialog = Some(Dialog::Link(LinkDialog {
        client_id: client_id.clone(),
        client_name,
        link: None,
        revoking: false,
    }));
    vec![request(
        state,
        ConsoleRequest::CreateLink {
            client: client_id.clone(),
            valid_days: None,
        },
        Pending::CreateLink { client: client_id },
    )]
}

fn on_link_action(state: &mut State, action: Action) -> Vec<Effect> {
    let Some(Dialog::Link(dialog)) = &mut state.dialog else {
        return Vec::new();
    };
    match action {
        Action::Cancel => state.dialog = None,
        Action::Copy => match &dialog.link {
            Some((link, url)) if !link.revoked => return vec![Effect::Copy(url.clone())],
            Some(_) => set_status(
                state,
                StatusKind::Warning,
                "This link is revoked; close and press l for a new one.",
            ),
            None => set_status(
                state,
                StatusKind::Info,
                "The hub is still issuing the link…",
            ),
        },
        Action::RevokeLink => match &dialog.link {
            Some((link, _)) if !link.revoked && !dialog.revoking => {
                dialog.revoking = true;
                let link = link.id.clone();
                return vec![request(
                    state,
                    ConsoleRequest::RevokeLink { link: link.clone() },
                    Pending::RevokeLink { link },
                )];
            }
            _ => {}
        },
        _ => {}
    }
    Vec::new()
}

fn on_add_client_action(state: &mut State, action: Action) -> Vec<Effect> {
    let Some(Dialog::AddClient { name, error }) = &mut state.dialog else {
        return Vec::new();
    };
    match action {
        Action::Cancel => state.dialog = None,
        Action::Confirm => {
            let name = name.value.trim().to_owned();
            if name.is_empty() {
                *error = Some("Type the client's name (a company or a person).".to_owned());
                return Vec::new();
            }
            state.dialog = None;
            set_status(state, StatusKind::Info, format!("Adding client {name}…"));
            return vec![request(
                state,
                ConsoleRequest::AddClient { name: name.clone() },
                Pending::AddClient { name },
            )];
        }
        _ => {}
    }
    Vec::new()
}

// ---------------------------------------------------------------------------------------------
// Login

/// `host:port` -> `wss://host:port`; an explicit scheme (`ws://` on loopback) is kept.
pub fn normalize_hub(hub: &str) -> String {
    let hub = hub.trim().trim_end_matches('/');
    if hub.contains("://") {
        hub.to_owned()
    } else {
        format!("wss://{hub}")
    }
}

fn on_login_action(state: &mut State, action: Action) -> Vec<Effect> {
    let form = &mut state.login;
    match action {
        Action::FocusNext => form.field = form.field.next(),
        Action::FocusPrev => form.field = form.field.prev(),
        Action::Confirm if form.field != LoginField::Password => form.field = form.field.next(),
        Action::Confirm if !form.phase.busy() => return submit_login(state),
        Action::Cancel if form.phase.busy() => {
            // Replies to the abandoned attempt are ignored: they find no session.
            back_to_form(state, None);
            state.login.notice = Some("Stopped. Press Enter to try again.".to_owned());
        }
        _ => {}
    }
    Vec::new()
}

fn submit_login(state: &mut State) -> Vec<Effect> {
    let form = &mut state.login;
    let missing = [
        (
            LoginField::Hub,
            form.hub.value.trim().is_empty(),
            "Type the hub's address, like hub.example.org:7443.",
        ),
        (
            LoginField::User,
            form.user.value.trim().is_empty(),
            "Type your user name.",
        ),
        (
            LoginField::Password,
            form.password.value.is_empty(),
            "Type your password.",
        ),
    ];
    if let Some((field, _, message)) = missing.into_iter().find(|(_, empty, _)| *empty) {
        form.field = field;
        form.error = Some(message.to_owned());
        return Vec::new();
    }
    let hub = normalize_hub(&form.hub.value);
    form.hub = TextInput::new(hub.clone());
    form.error = None;
    form.notice = None;
    form.phase = LoginPhase::CheckingPin;
    vec![Effect::LoadPin { hub }]
}

fn on_pin_loaded(state: &mut State, hub: String, fingerprint: Option<String>) -> Vec<Effect> {
    if state.login.phase != LoginPhase::CheckingPin || normalize_hub(&state.login.hub.value) != hub
    {
        return Vec::new(); // an answer to an attempt since abandoned
    }
    state.dirty = true;
    state.connection = Connection::Connecting;
    match fingerprint {
        Some(fingerprint) => password_login(state, hub, fingerprint),
        None => {
            state.login.phase = LoginPhase::Probing;
            vec![Effect::Net(NetCommand::Probe { hub })]
        }
    }
}

fn password_login(state: &mut State, hub: String, fingerprint: String) -> Vec<Effect> {
    state.login.phase = LoginPhase::LoggingIn;
    state.session = Some(Session {
        hub: hub.clone(),
        fingerprint: fingerprint.clone(),
        user: None,
        remember: true,
    });
    vec![Effect::Net(NetCommand::Login {
        hub,
        fingerprint,
        user: state.login.user.value.trim().to_owned(),
        password: state.login.password.value.clone(),
    })]
}

fn on_trust_action(state: &mut State, action: Action) -> Vec<Effect> {
    let Some(Dialog::Trust { hub, fingerprint }) = state.dialog.clone() else {
        return Vec::new();
    };
    match action {
        Action::Yes => {
            state.dialog = None;
            let mut effects = vec![Effect::Trust {
                hub: hub.clone(),
                fingerprint: fingerprint.clone(),
            }];
            effects.extend(password_login(state, hub, fingerprint));
            effects
        }
        Action::No => {
            state.dialog = None;
            state.login.phase = LoginPhase::Editing;
            state.connection = Connection::Offline;
            state.login.notice = Some(format!("{hub} was not trusted; nothing was sent to it."));
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// Back to the login form after a failed or refused attempt.
fn back_to_form(state: &mut State, error: Option<String>) {
    state.screen = Screen::Login;
    state.login.phase = LoginPhase::Editing;
    state.login.password.clear();
    state.login.error = error;
    state.login.field = if state.login.user.value.is_empty() {
        LoginField::User
    } else {
        LoginField::Password
    };
    state.connection = Connection::Offline;
    state.session = None;
    state.pending.clear();
    state.dirty = true;
}

/// What to do next after an error, in a few words.
fn next_step(error: &ProtocolError) -> String {
    match error.code {
        ErrorCode::Unauthenticated | ErrorCode::Expired => "Log in again.".to_owned(),
        ErrorCode::InvalidCredentials => "Check the user name and password.".to_owned(),
        ErrorCode::Forbidden => "Ask an admin for access.".to_owned(),
        ErrorCode::NotFound => "Press r to refresh the lists.".to_owned(),
        ErrorCode::Conflict => "Choose another name.".to_owned(),
        ErrorCode::RateLimited => match error.retry_after_secs {
            Some(secs) => format!("Try again in {secs} s."),
            None => "Wait a little and try again.".to_owned(),
        },
        ErrorCode::VersionMismatch => "Use a console of the hub's version.".to_owned(),
        ErrorCode::TooLarge | ErrorCode::BadRequest => {
            "This is a bug; please report it.".to_owned()
        }
        ErrorCode::Internal => "The hub's log says more; try again later.".to_owned(),
    }
}

fn sentence(text: &str) -> String {
    let text = text.trim_end_matches('.');
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().chain(chars).collect::<String>() + "."
    })
}

fn on_net(state: &mut State, event: NetEvent) -> Vec<Effect> {
    state.dirty = true;
    match event {
        NetEvent::CertificateSeen { hub, fingerprint } => {
            if state.login.phase == LoginPhase::Probing {
                state.login.phase = LoginPhase::AwaitingTrust;
                state.dialog = Some(Dialog::Trust { hub, fingerprint });
            }
            Vec::new()
        }
        NetEvent::CertificateMismatch {
            hub,
            expected,
            seen,
        } => {
            back_to_form(
                state,
                Some(format!(
                    "Not logged in: {hub} presented a different certificate."
                )),
            );
            state.dialog = Some(Dialog::Mismatch {
                hub,
                expected,
                seen,
            });
            Vec::new()
        }
        NetEvent::ConnectFailed { hub, error } => {
            if state.screen == Screen::Login {
                let error = format!(
                    "Cannot reach {hub}: {error}. Check the address and that the hub runs, then press Enter."
                );
                // Nothing was refused: keep the password for the retry.
                let password = state.login.password.clone();
                back_to_form(state, Some(error));
                state.login.password = password;
                state.login.field = LoginField::Password;
            } else {
                set_status(
                    state,
                    StatusKind::Warning,
                    format!("Cannot reach the hub ({error}); retrying…"),
                );
            }
            Vec::new()
        }
        NetEvent::LoggedIn { .. } if state.session.is_none() => Vec::new(), // an abandoned attempt
        NetEvent::LoggedIn { user, token } => on_logged_in(state, user, token),
        NetEvent::LoginFailed { error } => {
            let fallback = matches!(state.login.phase, LoginPhase::Resuming { fallback: true });
            // The link task resumes by itself after a reconnect; a refusal then means the token died.
            let was_logged_in = state.screen == Screen::Main;
            let token_refused = matches!(
                error.code,
                ErrorCode::Expired | ErrorCode::Unauthenticated | ErrorCode::InvalidCredentials
            );
            let forget = state
                .session
                .as_ref()
                .filter(|s| s.remember && token_refused && (fallback || was_logged_in))
                .map(|s| Effect::ForgetLogin { hub: s.hub.clone() });
            if fallback {
                back_to_form(state, None);
                state.login.notice = Some(format!(
                    "Your saved login was refused ({}). Log in again.",
                    error.message
                ));
            } else {
                back_to_form(
                    state,
                    Some(format!(
                        "Login refused: {} {}",
                        sentence(&error.message),
                        next_step(&error)
                    )),
                );
            }
            forget.into_iter().collect()
        }
        NetEvent::Reply { id, result } => match state.pending.remove(&id) {
            Some(pending) => on_reply(state, pending, result),
            None => Vec::new(), // a reply to a request from before a reconnect
        },
        NetEvent::Event(HubEvent::Workstation { workstation }) => {
            match state
                .workstations
                .iter_mut()
                .find(|w| w.id == workstation.id)
            {
                Some(row) => *row = workstation,
                None => state.workstations.push(workstation),
            }
            fix_selection(state);
            Vec::new()
        }
        NetEvent::Event(HubEvent::Client { client }) => {
            upsert_client(state, client);
            Vec::new()
        }
        // Sessions arrive with the access-control work in the console.
        NetEvent::Event(HubEvent::Session { .. }) => Vec::new(),
        NetEvent::Disconnected { reason } => {
            if state.screen == Screen::Main {
                state.connection = Connection::Reconnecting {
                    reason: reason.clone(),
                };
                state.pending.clear();
                set_status(
                    state,
                    StatusKind::Warning,
                    format!("Connection lost ({reason}); reconnecting…"),
                );
            } else if state.login.phase.busy() {
                let password = state.login.password.clone();
                back_to_form(
                    state,
                    Some(format!(
                        "Connection lost: {reason}. Press Enter to try again."
                    )),
                );
                state.login.password = password;
            }
            Vec::new()
        }
    }
}

fn on_logged_in(
    state: &mut State,
    user: crate::protocol::UserInfo,
    token: Option<(String, DateTime<Utc>)>,
) -> Vec<Effect> {
    let reconnected = matches!(state.connection, Connection::Reconnecting { .. });
    state.screen = Screen::Main;
    state.connection = Connection::Connected;
    state.login.phase = LoginPhase::Editing;
    state.login.password.clear();
    state.login.error = None;
    let mut effects = Vec::new();
    if let Some(session) = &mut state.session {
        session.user = Some(user.clone());
        if let (Some((token, expires_at)), true) = (token, session.remember) {
            effects.push(Effect::SaveLogin(StoredLogin {
                hub: session.hub.clone(),
                user: user.name.clone(),
                token,
                expires_at,
            }));
        }
    }
    if reconnected {
        set_status(state, StatusKind::Success, "Reconnected.");
    } else {
        let help = state
            .keymap
            .key_for(Layer::Main, Action::Help)
            .unwrap_or_else(|| "?".into());
        set_status(
            state,
            StatusKind::Success,
            format!("Logged in as {}. Press {help} for help.", user.name),
        );
    }
    effects.extend(refresh(state));
    effects
}

fn upsert_client(state: &mut State, client: crate::protocol::ClientInfo) {
    match state.clients.iter_mut().find(|c| c.id == client.id) {
        Some(row) => {
            // A renamed client: its workstations show the new name too.
            for w in state
                .workstations
                .iter_mut()
                .filter(|w| w.client_id == client.id)
            {
                w.client_name.clone_from(&client.name);
            }
            *row = client;
        }
        None => state.clients.push(client),
    }
    state
        .clients
        .sort_by_cached_key(|c| (c.name.to_lowercase(), c.id.clone()));
}

fn on_reply(
    state: &mut State,
    pending: Pending,
    result: Result<ConsoleReply, ProtocolError>,
) -> Vec<Effect> {
    let error = match result {
        Ok(reply) => {
            on_reply_ok(state, pending, reply);
            return Vec::new();
        }
        Err(error) => error,
    };
    let what = match &pending {
        Pending::ListClients => "Loading clients".to_owned(),
        Pending::ListWorkstations => "Loading workstations".to_owned(),
        Pending::AddClient { name } => format!("Adding client {name}"),
        Pending::CreateLink { .. } => "Issuing the enrolment link".to_owned(),
        Pending::RevokeLink { .. } => "Revoking the link".to_owned(),
    };
    match (&pending, &mut state.dialog) {
        (Pending::CreateLink { client }, Some(Dialog::Link(d))) if &d.client_id == client => {
            state.dialog = None
        }
        (Pending::RevokeLink { .. }, Some(Dialog::Link(d))) => d.revoking = false,
        _ => {}
    }
    set_status(
        state,
        StatusKind::Error,
        format!(
            "{what} failed: {} {}",
            sentence(&error.message),
            next_step(&error)
        ),
    );
    Vec::new()
}

fn on_reply_ok(state: &mut State, pending: Pending, reply: ConsoleReply) {
    match (pending, reply) {
        (Pending::ListClients, ConsoleReply::Clients { clients }) => {
            state.clients = Vec::new();
            for client in clients {
                upsert_client(state, client);
            }
            fix_selection(state);
        }
        (Pending::ListWorkstations, ConsoleReply::Workstations { workstations }) => {
            state.workstations = workstations;
            fix_selection(state);
            if state
                .status
                .as_ref()
                .is_some_and(|s| s.text == "Refreshing…")
            {
                state.status = None;
            }
        }
        (Pending::AddClient { .. }, ConsoleReply::Client { client }) => {
            let link = state
                .keymap
                .key_for(Layer::Main, Action::ShowLink)
                .unwrap_or_else(|| "l".into());
            let text = format!(
                "Added client {}. Press {link} for its enrolment link.",
                client.name
            );
            state.selected_client = Some(client.id.clone());
            state.focus = Pane::Clients;
            upsert_client(state, client);
            fix_selection(state);
            set_status(state, StatusKind::Success, text);
        }
        (Pending::CreateLink { client }, ConsoleReply::Link { link, url }) => {
            if let Some(Dialog::Link(dialog)) = &mut state.dialog
                && dialog.client_id == client
            {
                dialog.link = Some((link, url));
            }
        }
        (Pending::RevokeLink { link: revoked }, ConsoleReply::Done) => {
            if let Some(Dialog::Link(dialog)) = &mut state.dialog {
                dialog.revoking = false;
                if let Some((link, _)) = &mut dialog.link
                    && link.id == revoked
                {
                    link.revoked = true;
                }
            }
            set_status(
                state,
                StatusKind::Success,
                "Link revoked: it can no longer enrol workstations.",
            );
        }
        (pending, reply) => {
            let text = format!(
                "The hub answered {pending:?} with {}; please report this bug.",
                reply_kind(&reply)
            );
            set_status(state, StatusKind::Error, text);
        }
    }
}

fn reply_kind(reply: &ConsoleReply) -> &'static str {
    match reply {
        ConsoleReply::LoggedIn { .. } => "logged_in",
        ConsoleReply::Resumed { .. } => "resumed",
        ConsoleReply::Clients { .. } => "clients",
        ConsoleReply::Client { .. } => "client",
        ConsoleReply::Link { .. } => "link",
        ConsoleReply::Links { .. } => "links",
        ConsoleReply::Workstations { .. } => "workstations",
        ConsoleReply::Audit { .. } => "audit",
        ConsoleReply::Workstation { .. } => "workstation",
        ConsoleReply::Session { .. } => "session",
        ConsoleReply::Sessions { .. } => "sessions",
        ConsoleReply::Groups { .. } => "groups",
        ConsoleReply::Done => "done",
    }
}

#[cfg(test)]
mod tests;
