//! The console's logic: `update(&mut State, Msg) -> Vec<Effect>`. Pure: it never awaits and does
//! no I/O; what must happen outside (send to the hub, copy, write the login store) comes back as
//! effects, and their outcomes come back as messages.

use chrono::{DateTime, Utc};
use crossterm::event::{KeyEvent, KeyEventKind, MouseEvent};

use super::action::Action;
use super::clipboard::CopyMethod;
use super::keymap::Layer;
use super::net::{NetCommand, NetEvent};
use super::state::{
    ConfirmDialog, Confirmed, ConnectingDialog, Connection, Countdown, Dialog, LinkDialog,
    LoginField, LoginPhase, Pane, Pending, Screen, SecretPrompt, Session, State, Status,
    StatusKind, TextInput, View, relative_age,
};
use crate::client::store::StoredLogin;
use crate::protocol::{
    ClientId, ConsoleReply, ConsoleRequest, Cursor, ErrorCode, HubEvent, LinkInfo, PageRequest,
    Presence, ProtocolError, Refusal, Secret, SecretRequirements, SessionInfo, UnattendedState,
    WorkstationId, WorkstationInfo,
};

/// Everything that can happen to the console.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(KeyEvent),
    /// The mouse, over a live desktop (captured only while one is open).
    Mouse(MouseEvent),
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
    /// Outcome of `Effect::SaveScreenshot`: the file written, or why not.
    ScreenshotSaved(Result<std::path::PathBuf, String>),
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
    /// Write a picture of a remote screen as a PNG into the screenshots folder, named after
    /// the workstation and the time; answered with `Msg::ScreenshotSaved`.
    SaveScreenshot {
        picture: crate::frame::Framebuffer,
        hostname: String,
        at: DateTime<Utc>,
    },
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
            state.preset_pin = Some((hub.clone(), fingerprint.clone()));
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
        Msg::Mouse(mouse) if state.layer() == Layer::Desktop => viewer::on_mouse(state, &mouse),
        Msg::Mouse(_) => Vec::new(),
        Msg::Paste(text) if state.layer() == Layer::Terminal => viewer::on_paste(state, &text),
        Msg::Paste(text) if state.layer() == Layer::Desktop => {
            viewer::on_desktop_paste(state, &text)
        }
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
            // Ages, spinners and countdowns change every second; the login screen has nothing
            // that ages, and a live terminal only its bytes/s.
            if state.screen == Screen::Main && state.viewer.is_none() {
                state.dirty = true;
            }
            let effects = viewer::on_tick(state);
            state.lockouts.retain(|_, until| *until > now);
            let over = state
                .status
                .as_ref()
                .and_then(|s| s.countdown.as_ref())
                .filter(|c| c.until <= now)
                .map(|c| c.then.clone());
            if let Some(text) = over {
                set_status(state, StatusKind::Info, text);
            } else if state
                .status
                .as_ref()
                .is_some_and(|s| s.kind != StatusKind::Error && (now - s.since).num_seconds() >= 10)
            {
                state.status = None;
                state.dirty = true;
            }
            effects
        }
        Msg::Resize { width, height } => {
            state.size = (width, height);
            scroll_into_view(state);
            state.dirty = true;
            viewer::resize(state)
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
        Msg::ScreenshotSaved(result) => viewer::on_screenshot_saved(state, result),
    }
}

fn set_status(state: &mut State, kind: StatusKind, text: impl Into<String>) {
    state.status = Some(Status {
        text: text.into(),
        kind,
        since: state.now,
        countdown: None,
    });
    state.dirty = true;
}

fn severity(kind: StatusKind) -> u8 {
    match kind {
        StatusKind::Info => 0,
        StatusKind::Success => 1,
        StatusKind::Warning => 2,
        StatusKind::Error => 3,
    }
}

/// News from the team (someone else's session ended, an end user answered): shown unless it
/// would hide something more serious from the last few seconds, or a running countdown.
fn notify(state: &mut State, kind: StatusKind, text: impl Into<String>) {
    let keep = state.status.as_ref().is_some_and(|current| {
        current.countdown.is_some()
            || (severity(current.kind) >= severity(StatusKind::Warning)
                && severity(current.kind) > severity(kind)
                && (state.now - current.since).num_seconds() < 10)
    });
    if !keep {
        set_status(state, kind, text);
    }
}

/// A lock-out after repeated wrong secrets, counting down in the status line.
fn lockout_status(state: &mut State, hostname: &str, until: DateTime<Utc>) {
    state.status = Some(Status {
        text: format!("{hostname}: locked after too many wrong secrets."),
        kind: StatusKind::Error,
        since: state.now,
        countdown: Some(Countdown {
            until,
            then: format!("The lock-out on {hostname} is over: you may connect again."),
        }),
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
            LoginField::Code => &mut state.login.code,
        }),
        Layer::Filter => Some(&mut state.filter),
        Layer::Input => match &mut state.dialog {
            Some(Dialog::AddClient { name, .. }) => Some(name),
            _ => None,
        },
        Layer::Secret => match &mut state.dialog {
            Some(Dialog::Secret(prompt)) => Some(&mut prompt.input),
            _ => None,
        },
        Layer::OtpPrompt => match &mut state.dialog {
            Some(Dialog::OtpPrompt(prompt)) => Some(&mut prompt.input),
            _ => None,
        },
        Layer::OtpReason => match &mut state.dialog {
            Some(Dialog::Otp(d)) => d.reason.as_mut(),
            _ => None,
        },
        Layer::UserAdd => users::text_field(state),
        _ => twofa::text_field(state),
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
    if layer == Layer::Terminal {
        return viewer::on_key(state, key);
    }
    if layer == Layer::Desktop {
        return viewer::on_desktop_key(state, key);
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
        if layer == Layer::Filter {
            return filter_on_hub(state);
        }
    }
    Vec::new()
}

/// While a large team's pages are still loading, the filter also asks the hub: the matches it
/// has not sent yet show at once instead of when the background load reaches them (the fleet
/// takes them by id, so the load later finds them already there).
fn filter_on_hub(state: &mut State) -> Vec<Effect> {
    // An answer to an earlier filter is of no use any more.
    state
        .pending
        .retain(|_, p| !matches!(p, Pending::FilterOnHub));
    if state.workstations_loading.is_none() || state.filter.value.trim().is_empty() {
        return Vec::new();
    }
    let body = ConsoleRequest::ListWorkstations {
        client: None,
        filter: Some(state.filter.value.clone()),
        page: PageRequest::first(),
    };
    vec![request(state, body, Pending::FilterOnHub)]
}

fn quit(state: &mut State) -> Vec<Effect> {
    state.quitting = true;
    vec![Effect::Net(NetCommand::Shutdown), Effect::Quit]
}

/// The quit key: at once, unless sessions of this technician are open (they stay open on the
/// hub, which may not be what was meant): then ask first. The quit key again in that question
/// quits.
fn ask_quit(state: &mut State) -> Vec<Effect> {
    let already_asked = matches!(
        &state.dialog,
        Some(Dialog::Confirm(ConfirmDialog {
            then: Confirmed::Quit,
            ..
        }))
    );
    let open: Vec<String> = state
        .sessions
        .iter()
        .filter(|s| s.ended_at.is_none() && state.is_mine(s))
        .map(|s| s.hostname.clone())
        .collect();
    if already_asked || open.is_empty() || state.screen != Screen::Main {
        return quit(state);
    }
    let text = match open.as_slice() {
        [one] => format!("Your session on {one} is open. Quit the console?"),
        many => format!(
            "{} sessions of yours are open ({}). Quit the console?",
            many.len(),
            many.join(", ")
        ),
    };
    state.dialog = Some(Dialog::Confirm(ConfirmDialog {
        title: "Quit?".to_owned(),
        text,
        warning: Some(
            "They stay open on the hub (the end users still see them) until you end them or they time out."
                .to_owned(),
        ),
        yes: "quit".to_owned(),
        then: Confirmed::Quit,
    }));
    state.dirty = true;
    Vec::new()
}

fn on_action(state: &mut State, layer: Layer, action: Action) -> Vec<Effect> {
    if action == Action::Quit {
        return ask_quit(state);
    }
    state.dirty = true;
    match layer {
        Layer::SessionEnded => {
            if action == Action::Confirm {
                viewer::dismiss_ended(state);
            }
            Vec::new()
        }
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
        Layer::Sessions => on_sessions_action(state, action),
        Layer::Terminal => viewer::on_terminal_action(state, action),
        Layer::TerminalMenu | Layer::DesktopMenu => viewer::on_menu_action(state, action),
        Layer::Desktop => viewer::on_terminal_action(state, action),
        Layer::TerminalScroll => viewer::on_scroll_action(state, action),
        Layer::Secret => on_secret_action(state, action),
        Layer::Connecting => on_connecting_action(state, action),
        Layer::Confirm => on_confirm_action(state, action),
        Layer::UserMenu
        | Layer::TwoFactorOffer
        | Layer::Enrol
        | Layer::AdminPassword
        | Layer::Users
        | Layer::Audit
        | Layer::AuditFilter => twofa::on_action(state, layer, action),
        Layer::CredentialsForm | Layer::CredentialsReveal | Layer::CredentialsActive => {
            credentials::on_action(state, action)
        }
        Layer::Otp | Layer::OtpReason | Layer::OtpPrompt | Layer::Outbox => {
            otp::on_action(state, layer, action)
        }
        Layer::CredentialsConfirm => credentials::on_action(state, action),
        Layer::CredentialsList => credential_list::on_action(state, action),
        Layer::UserAdd | Layer::UserAdded | Layer::UserConfirm => {
            users::on_action(state, layer, action)
        }
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
    if state.guest.is_some() && credentials::technician_only(action) {
        set_status(
            state,
            StatusKind::Warning,
            "Not available with support credentials: ask the technician who gave them to you.",
        );
        return Vec::new();
    }
    match action {
        Action::SupportCredentials => return credentials::open(state),
        Action::CredentialsList => return credential_list::open(state),
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
        // In the clients pane, Enter goes to that client's workstations.
        Action::Connect if state.focus == Pane::Clients => state.focus = Pane::Workstations,
        Action::Connect => return connect(state, false),
        Action::ConnectViewOnly => return connect(state, true),
        Action::RequestAccess => ask_request_access(state),
        Action::WithdrawAccess => ask_withdraw(state),
        Action::EndSession => return end_my_session(state),
        Action::Open => return open_my_session(state),
        Action::UserMenu | Action::Users | Action::AuditLog => {
            return twofa::on_view_action(state, action);
        }
        Action::Otp => return otp::open(state),
        Action::Outbox => return otp::open_outbox(state),
        Action::RequireOtp => otp::ask_toggle_required(state),
        Action::Sessions => {
            // The view opens on the newest session.
            state.view = View::Sessions;
            state.selected_session = None;
            fix_session_selection(state);
        }
        _ => {}
    }
    Vec::new()
}

// ---------------------------------------------------------------------------------------------
// Access: unattended access, connecting, sessions

/// The selected workstation, or a hint to select one.
fn selected_or_hint(state: &mut State) -> Option<WorkstationInfo> {
    let selected = state.selected().cloned();
    if selected.is_none() {
        set_status(
            state,
            StatusKind::Warning,
            "Select a workstation first (j/k to move, / to filter).",
        );
    }
    selected
}

fn offline_hint(state: &mut State, w: &WorkstationInfo, what: &str) {
    let seen = relative_age(state.now, w.last_seen);
    set_status(
        state,
        StatusKind::Warning,
        format!(
            "{} is offline (last seen {seen}): {what} when its agent is back online.",
            w.hostname
        ),
    );
}

fn connect(state: &mut State, view_only: bool) -> Vec<Effect> {
    let Some(w) = selected_or_hint(state) else {
        return Vec::new();
    };
    if w.presence == Presence::Offline {
        offline_hint(state, &w, "connect");
        return Vec::new();
    }
    // Still locked out: the hub would refuse; say how long instead of asking for the secret.
    if let Some(until) = state
        .lockouts
        .get(&w.id)
        .copied()
        .filter(|until| *until > state.now)
    {
        lockout_status(state, &w.hostname, until);
        return Vec::new();
    }
    // A guest's support credentials authorise the connection: nobody is asked.
    let attended = w.unattended != UnattendedState::Granted && state.guest.is_none();
    // A guest without the control scope gets view only whatever is asked (the hub enforces it).
    let view_only = view_only || state.guest.as_ref().is_some_and(|g| !g.scopes.control);
    // Asks for the one-time password and the secret where required, then connects.
    otp::connect_step(
        state,
        ConnectAttempt {
            workstation: w.id,
            hostname: w.hostname,
            requires: w.requires,
            view_only,
            attended,
        },
        None,
        None,
    )
}

/// What a connection attempt is about, without its secret.
struct ConnectAttempt {
    workstation: WorkstationId,
    hostname: String,
    requires: SecretRequirements,
    view_only: bool,
    attended: bool,
}

/// Send `Connect` and show the waiting dialog. The secret goes into the request only.
fn send_connect(
    state: &mut State,
    attempt: ConnectAttempt,
    secret: Option<Secret>,
    otp: Option<Secret>,
) -> Vec<Effect> {
    let id = state.next_request_id;
    state.dialog = Some(Dialog::Connecting(ConnectingDialog {
        request: id,
        hostname: attempt.hostname.clone(),
        view_only: attempt.view_only,
        attended: attempt.attended,
        since: state.now,
    }));
    vec![request(
        state,
        ConsoleRequest::Connect {
            workstation: attempt.workstation.clone(),
            secret,
            view_only: attempt.view_only,
            otp,
        },
        Pending::Connect {
            workstation: attempt.workstation,
            hostname: attempt.hostname,
            requires: attempt.requires,
            view_only: attempt.view_only,
            attended: attempt.attended,
            abandoned: false,
        },
    )]
}

fn on_secret_action(state: &mut State, action: Action) -> Vec<Effect> {
    let Some(Dialog::Secret(prompt)) = &mut state.dialog else {
        return Vec::new();
    };
    match action {
        // Dropping the prompt drops what was typed.
        Action::Cancel => state.dialog = None,
        Action::Confirm if prompt.input.value.is_empty() => {
            prompt.error = Some(format!(
                "Type the {} first, or press Esc to cancel.",
                secret_name(prompt.requires)
            ));
        }
        Action::Confirm => {
            let Some(Dialog::Secret(prompt)) = state.dialog.take() else {
                return Vec::new();
            };
            let attempt = ConnectAttempt {
                workstation: prompt.workstation,
                hostname: prompt.hostname,
                requires: prompt.requires,
                view_only: prompt.view_only,
                attended: prompt.attended,
            };
            // The typed value moves into the request: nothing of it stays in the state.
            let secret = Secret::from(prompt.input.value);
            return otp::connect_step(state, attempt, Some(secret), prompt.otp);
        }
        _ => {}
    }
    Vec::new()
}

/// "temporary passcode", "permanent password", "temporary passcode or permanent password".
pub fn secret_name(requires: SecretRequirements) -> &'static str {
    match (requires.passcode, requires.password) {
        (true, false) => "temporary passcode",
        (false, true) => "permanent password",
        _ => "temporary passcode or permanent password",
    }
}

fn on_connecting_action(state: &mut State, action: Action) -> Vec<Effect> {
    if action != Action::Cancel {
        return Vec::new();
    }
    let Some(Dialog::Connecting(dialog)) = state.dialog.take() else {
        return Vec::new();
    };
    if let Some(Pending::Connect { abandoned, .. }) = state.pending.get_mut(&dialog.request) {
        *abandoned = true;
    }
    let late = if dialog.attended {
        "if the end user accepts now"
    } else {
        "if the connection opens now"
    };
    set_status(
        state,
        StatusKind::Info,
        format!(
            "Stopped waiting for {}; {late}, that session is ended at once.",
            dialog.hostname
        ),
    );
    Vec::new()
}

/// `u` on a row: the end user gets a question on their screen, so ask first (when it would be
/// sent: an already granted or offline workstation only gets its hint).
fn ask_request_access(state: &mut State) {
    let Some(w) = selected_or_hint(state) else {
        return;
    };
    ask_request_access_to(state, &w);
}

/// Ask "ask the end user of `w`?" where the request would be sent; else say why not.
pub(super) fn ask_request_access_to(state: &mut State, w: &WorkstationInfo) {
    if !w.unattended.can_request() || w.presence == Presence::Offline {
        // Nothing would be sent: the hint says why.
        let _ = request_access_to(state, w.clone());
        return;
    }
    state.dialog = Some(Dialog::Confirm(ConfirmDialog {
        title: "Ask for unattended access?".to_owned(),
        text: format!(
            "Ask the end user of {} to allow unattended access for the whole team? A question appears on their screen.",
            display_name(state, w)
        ),
        warning: None,
        yes: "ask".to_owned(),
        then: Confirmed::RequestAccess {
            workstation: w.id.clone(),
        },
    }));
}

/// A workstation's hostname as typed by its agent, with its client (and a short id when
/// another workstation shows the same name) so two machines named alike can be told apart.
pub fn display_name(state: &State, w: &WorkstationInfo) -> String {
    let twin = state
        .workstations
        .view(None, "")
        .iter()
        .any(|o| o.id != w.id && o.hostname == w.hostname && o.client_id == w.client_id);
    if twin {
        let short: String = w.id.chars().take(6).collect();
        format!("{} ({}, #{short})", w.hostname, w.client_name)
    } else {
        format!("{} ({})", w.hostname, w.client_name)
    }
}

/// Ask for unattended access to `w` (from its row, or from inside a session on it).
pub(super) fn request_access_to(state: &mut State, w: WorkstationInfo) -> Vec<Effect> {
    match w.unattended {
        UnattendedState::Granted => {
            let withdraw = key_hint(state, Action::WithdrawAccess, "w");
            set_status(
                state,
                StatusKind::Info,
                format!(
                    "Unattended access to {} is already granted ({withdraw} withdraws it).",
                    w.hostname
                ),
            );
        }
        UnattendedState::Requested => set_status(
            state,
            StatusKind::Info,
            format!(
                "Already asked: waiting for the end user of {} to answer.",
                w.hostname
            ),
        ),
        _ if w.presence == Presence::Offline => {
            offline_hint(state, &w, "ask for unattended access")
        }
        _ => {
            set_status(
                state,
                StatusKind::Info,
                format!(
                    "Asking the end user of {} for unattended access…",
                    w.hostname
                ),
            );
            return vec![request(
                state,
                ConsoleRequest::RequestAccess {
                    workstation: w.id.clone(),
                },
                Pending::RequestAccess {
                    workstation: w.id,
                    hostname: w.hostname,
                },
            )];
        }
    }
    Vec::new()
}

fn ask_withdraw(state: &mut State) {
    let Some(w) = selected_or_hint(state) else {
        return;
    };
    match w.unattended {
        UnattendedState::Granted | UnattendedState::Requested => {
            let open = state
                .sessions
                .iter()
                .filter(|s| s.workstation_id == w.id && s.ended_at.is_none())
                .count();
            let name = display_name(state, &w);
            let text = if w.unattended == UnattendedState::Requested {
                format!(
                    "Withdraw the request for unattended access to {name}? The end user is no longer asked."
                )
            } else {
                format!(
                    "Withdraw unattended access to {name} for the whole team? Connecting then needs the end user to accept again."
                )
            };
            state.dialog = Some(Dialog::Confirm(ConfirmDialog {
                title: "Withdraw unattended access?".to_owned(),
                text,
                warning: Some(match open {
                    0 => "No session is open on it.".to_owned(),
                    1 => "The session open on it ends now.".to_owned(),
                    n => format!("The {n} sessions open on it end now."),
                }),
                yes: "withdraw".to_owned(),
                then: Confirmed::Withdraw {
                    workstation: w.id,
                    hostname: w.hostname,
                },
            }));
        }
        other => {
            let request = key_hint(state, Action::RequestAccess, "u");
            set_status(
                state,
                StatusKind::Info,
                format!(
                    "{} has no unattended access to withdraw (it is {}; {request} asks for it).",
                    w.hostname,
                    other.label()
                ),
            );
        }
    }
}

/// The confirmation dialog's answer: yes runs what it asked about, no closes it.
fn on_confirm_action(state: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::Yes => {
            let Some(Dialog::Confirm(dialog)) = state.dialog.take() else {
                return Vec::new();
            };
            confirmed(state, dialog.then)
        }
        Action::No | Action::Cancel => {
            state.dialog = None;
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// Do what a confirmation dialog asked about.
fn confirmed(state: &mut State, then: Confirmed) -> Vec<Effect> {
    match then {
        Confirmed::Quit => quit(state),
        Confirmed::Withdraw {
            workstation,
            hostname,
        } => {
            set_status(
                state,
                StatusKind::Info,
                format!("Withdrawing unattended access to {hostname}…"),
            );
            vec![request(
                state,
                ConsoleRequest::WithdrawAccess {
                    workstation: workstation.clone(),
                },
                Pending::WithdrawAccess {
                    workstation,
                    hostname,
                },
            )]
        }
        Confirmed::RequestAccess { workstation } => {
            match state.workstations.get(&workstation).cloned() {
                Some(w) => request_access_to(state, w),
                None => {
                    set_status(
                        state,
                        StatusKind::Warning,
                        "That workstation is no longer listed; nothing was asked.",
                    );
                    Vec::new()
                }
            }
        }
        Confirmed::RequireOtp {
            workstation,
            hostname,
            required,
        } => otp::set_required(state, workstation, hostname, required),
        Confirmed::GroupOtp { client, label } => otp::toggle_group(state, client, label),
        Confirmed::NewLink {
            client,
            client_name,
        } => issue_link(state, client, client_name),
        Confirmed::RevokeLink { mut dialog } => {
            let Some(link) = dialog.link.as_ref().map(|(l, _)| l.id.clone()) else {
                return Vec::new();
            };
            dialog.revoking = true;
            state.dialog = Some(Dialog::Link(dialog));
            vec![request(
                state,
                ConsoleRequest::RevokeLink { link: link.clone() },
                Pending::RevokeLink { link },
            )]
        }
    }
}

fn end_my_session(state: &mut State) -> Vec<Effect> {
    let Some(w) = selected_or_hint(state) else {
        return Vec::new();
    };
    match state.my_session_on(&w.id).cloned() {
        Some(session) => end_session(state, &session),
        None => {
            let sessions = key_hint(state, Action::Sessions, "s");
            set_status(
                state,
                StatusKind::Info,
                format!(
                    "You have no open session on {} ({sessions} shows the team's sessions).",
                    w.hostname
                ),
            );
            Vec::new()
        }
    }
}

/// `o`: the live terminal of this technician's session on the selected workstation.
fn open_my_session(state: &mut State) -> Vec<Effect> {
    let Some(w) = selected_or_hint(state) else {
        return Vec::new();
    };
    match state.my_session_on(&w.id).cloned() {
        Some(session) => viewer::open(state, session),
        None => {
            let connect = key_hint(state, Action::Connect, "Enter");
            set_status(
                state,
                StatusKind::Info,
                format!(
                    "You have no open session on {} ({connect} connects).",
                    w.hostname
                ),
            );
            Vec::new()
        }
    }
}

fn end_session(state: &mut State, session: &SessionInfo) -> Vec<Effect> {
    if !state.ending.contains(&session.id) {
        state.ending.push(session.id.clone());
    }
    set_status(
        state,
        StatusKind::Info,
        format!(
            "Ending the session on {} ({})…",
            session.hostname, session.technician.name
        ),
    );
    vec![request(
        state,
        ConsoleRequest::EndSession {
            session: session.id.clone(),
        },
        Pending::EndSession {
            session: session.id.clone(),
            hostname: session.hostname.clone(),
        },
    )]
}

fn on_sessions_action(state: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::Cancel | Action::Sessions => state.view = View::Workstations,
        Action::UserMenu => return twofa::on_view_action(state, action),
        Action::Help => state.dialog = Some(Dialog::Help { scroll: 0 }),
        Action::Refresh => {
            set_status(state, StatusKind::Info, "Refreshing…");
            return refresh(state);
        }
        Action::Up | Action::Down | Action::First | Action::Last => {
            let len = state.sessions.len();
            if len > 0 {
                let current = state.selected_session_row().unwrap_or(0);
                let target = match action {
                    Action::Up => current.saturating_sub(1),
                    Action::Down => (current + 1).min(len - 1),
                    Action::First => 0,
                    _ => len - 1,
                };
                state.selected_session = state.sessions.get(target).map(|s| s.id.clone());
            }
        }
        Action::EndSession => {
            let selected = state
                .selected_session_row()
                .and_then(|i| state.sessions.get(i))
                .cloned();
            match selected {
                Some(session) => return end_session(state, &session),
                None => set_status(state, StatusKind::Info, "No session is selected."),
            }
        }
        Action::Open => {
            let selected = state
                .selected_session_row()
                .and_then(|i| state.sessions.get(i))
                .cloned();
            match selected {
                Some(session) if state.is_mine(&session) => {
                    return viewer::open(state, session);
                }
                Some(session) => set_status(
                    state,
                    StatusKind::Info,
                    format!(
                        "That session is {}'s; you can open only your own.",
                        session.technician.name
                    ),
                ),
                None => set_status(state, StatusKind::Info, "No session is selected."),
            }
        }
        _ => {}
    }
    Vec::new()
}

/// Keep the sessions newest first and the selection on an existing one.
fn fix_session_selection(state: &mut State) {
    state
        .sessions
        .sort_by(|a, b| b.started_at.cmp(&a.started_at).then(a.id.cmp(&b.id)));
    if state.selected_session_row().is_none() {
        state.selected_session = state.sessions.first().map(|s| s.id.clone());
    }
}

/// The first key of an action on the main screen, for prose ("press u").
fn key_hint(state: &State, action: Action, fallback: &str) -> String {
    state
        .keymap
        .key_for(Layer::Main, action)
        .unwrap_or_else(|| fallback.into())
}

fn upsert_workstation(state: &mut State, workstation: WorkstationInfo) {
    state.workstations.upsert(workstation);
    fix_selection(state);
}

/// A workstation changed live: tell the team when its unattended access changed.
fn on_workstation_event(state: &mut State, workstation: WorkstationInfo) {
    let before = state
        .workstations
        .get(&workstation.id)
        .map(|w| w.unattended);
    let host = workstation.hostname.clone();
    let news = match (before, workstation.unattended) {
        (Some(a), b) if a == b => None,
        (Some(_), UnattendedState::Granted) => Some((
            StatusKind::Success,
            format!("The end user of {host} granted unattended access."),
        )),
        (Some(_), UnattendedState::Denied) => Some((
            StatusKind::Warning,
            format!("The end user of {host} denied unattended access."),
        )),
        (Some(_), UnattendedState::Revoked) => Some((
            StatusKind::Warning,
            format!("Unattended access to {host} was revoked on the workstation."),
        )),
        (Some(_), UnattendedState::Withdrawn) => Some((
            StatusKind::Info,
            format!("Unattended access to {host} was withdrawn."),
        )),
        (Some(_), UnattendedState::Requested) => Some((
            StatusKind::Info,
            format!("Unattended access to {host} requested; waiting for the end user."),
        )),
        _ => None,
    };
    upsert_workstation(state, workstation);
    if let Some((kind, text)) = news {
        notify(state, kind, text);
    }
}

/// A session started, or ended (then with why).
fn on_session_event(state: &mut State, session: SessionInfo) {
    let watched = viewer::on_session(state, &session);
    if session.ended_at.is_none() {
        match state.sessions.iter_mut().find(|s| s.id == session.id) {
            Some(row) => *row = session,
            None => state.sessions.push(session),
        }
        fix_session_selection(state);
        return;
    }
    state.sessions.retain(|s| s.id != session.id);
    fix_session_selection(state);
    let asked = state.ending.iter().position(|id| *id == session.id);
    if let Some(i) = asked {
        // This console asked: the reply to EndSession says so.
        state.ending.remove(i);
        return;
    }
    let reason = session
        .end_reason
        .clone()
        .unwrap_or_else(|| "no reason given".to_owned());
    if state.is_mine(&session) || watched {
        // Your own session, ended by someone or something else: it must not go unnoticed,
        // least of all when it closed the terminal you were typing into.
        let by_me = state
            .me()
            .is_some_and(|me| reason.ends_with(&format!("by {me}")));
        let kind = if by_me && !watched {
            StatusKind::Warning
        } else {
            StatusKind::Error
        };
        set_status(
            state,
            kind,
            format!("Your session on {} ended: {reason}.", session.hostname),
        );
    } else {
        notify(
            state,
            StatusKind::Info,
            format!(
                "Session on {} ({}) ended: {reason}.",
                session.hostname, session.technician.name
            ),
        );
    }
}

/// "unattended · passcode · view only": how a session was opened.
pub fn session_summary(session: &SessionInfo) -> String {
    let mut parts = vec![session.method.label().to_owned()];
    parts.extend(
        session
            .secrets
            .iter()
            .map(|k| secret_kind_label(*k).to_owned()),
    );
    parts.push(
        if session.view_only {
            "view only"
        } else {
            "control"
        }
        .to_owned(),
    );
    parts.join(" · ")
}

pub fn secret_kind_label(kind: crate::protocol::SecretKind) -> &'static str {
    match kind {
        crate::protocol::SecretKind::Passcode => "passcode",
        crate::protocol::SecretKind::Password => "password",
    }
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
            let id = state
                .visible_workstations()
                .get(target)
                .map(|w| w.id.clone());
            state.selected_workstation = id;
            scroll_into_view(state);
        }
    }
}

/// Scroll the table just enough to show the selected row.
fn scroll_into_view(state: &mut State) {
    let (len, selected) = {
        let rows = state.visible_workstations();
        (rows.len(), state.selected_row(&rows).unwrap_or(0))
    };
    let page = state.page_rows();
    let last_offset = len.saturating_sub(page);
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
    let first = {
        let rows = state.visible_workstations();
        match state.selected_row(&rows) {
            Some(_) => None,
            None => Some(rows.first().map(|w| w.id.clone())),
        }
    };
    if let Some(first) = first {
        state.selected_workstation = first;
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
    // Pages of an earlier load would mix into this one: their replies are dropped.
    state.pending.retain(|_, p| {
        !matches!(
            p,
            Pending::ListClients
                | Pending::ListWorkstations
                | Pending::ListSessions
                | Pending::MoreClients
                | Pending::MoreWorkstations
                | Pending::MoreSessions
        )
    });
    let first = PageRequest::first;
    vec![
        request(
            state,
            ConsoleRequest::ListClients { page: first() },
            Pending::ListClients,
        ),
        request(
            state,
            ConsoleRequest::ListWorkstations {
                client: None,
                filter: None,
                page: first(),
            },
            Pending::ListWorkstations,
        ),
        request(
            state,
            ConsoleRequest::ListSessions { page: first() },
            Pending::ListSessions,
        ),
    ]
}

/// The request for the page after `next` of a list being loaded, if there is one: the first
/// page shows at once, the rest arrive in the background.
fn next_page(state: &mut State, pending: Pending, next: Option<Cursor>) -> Vec<Effect> {
    let Some(cursor) = next else {
        return Vec::new();
    };
    let page = PageRequest::after(cursor);
    let body = match pending {
        Pending::MoreClients => ConsoleRequest::ListClients { page },
        Pending::MoreWorkstations => ConsoleRequest::ListWorkstations {
            client: None,
            filter: None,
            page,
        },
        Pending::MoreSessions => ConsoleRequest::ListSessions { page },
        _ => return Vec::new(),
    };
    vec![request(state, body, pending)]
}

fn show_link(state: &mut State) -> Vec<Effect> {
    // The selected client, else the client of the selected workstation.
    let client = match &state.selected_client {
        Some(id) => state
            .clients
            .iter()
            .find(|c| &c.id == id)
            .map(|c| (c.id.clone(), c.name.clone())),
        None => state
            .selected()
            .map(|w| (w.client_id.clone(), w.client_name.clone())),
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
    // The client's links first: its valid one is shown, and a new one is issued only on a
    // second, deliberate key (a stray `l` issued a link every time).
    state.dialog = Some(Dialog::Link(LinkDialog {
        client_id: client_id.clone(),
        client_name,
        link: None,
        loading: true,
        revoking: false,
    }));
    vec![request(
        state,
        ConsoleRequest::ListLinks {
            client: client_id.clone(),
            page: PageRequest::first(),
        },
        Pending::ListLinks { client: client_id },
    )]
}

/// Issue a new enrolment link (confirmed): the link dialog shows it as it arrives.
fn issue_link(state: &mut State, client: ClientId, client_name: String) -> Vec<Effect> {
    state.dialog = Some(Dialog::Link(LinkDialog {
        client_id: client.clone(),
        client_name,
        link: None,
        loading: true,
        revoking: false,
    }));
    vec![request(
        state,
        ConsoleRequest::CreateLink {
            client: client.clone(),
            valid_days: None,
        },
        Pending::CreateLink { client },
    )]
}

/// The newest link of a client that can still enrol: not revoked, not expired.
fn current_link(links: Vec<LinkInfo>, now: DateTime<Utc>) -> Option<LinkInfo> {
    links
        .into_iter()
        .filter(|l| !l.revoked && l.expires_at > now)
        .max_by_key(|l| l.created_at)
}

fn on_link_action(state: &mut State, action: Action) -> Vec<Effect> {
    let Some(Dialog::Link(dialog)) = &mut state.dialog else {
        return Vec::new();
    };
    let loading = dialog.loading;
    match action {
        Action::Cancel => state.dialog = None,
        Action::IssueLink if !loading => {
            let (client, client_name) = (dialog.client_id.clone(), dialog.client_name.clone());
            let valid = dialog.link.as_ref().is_some_and(|(l, _)| !l.revoked);
            state.dialog = Some(Dialog::Confirm(ConfirmDialog {
                title: "Issue a new link?".to_owned(),
                text: format!(
                    "Issue a new enrolment link for {client_name}? Anyone who has it can enrol a workstation for 7 days."
                ),
                warning: valid.then(|| "The link shown stays valid too (revoke it with x if it is no longer needed).".to_owned()),
                yes: "issue".to_owned(),
                then: Confirmed::NewLink {
                    client,
                    client_name,
                },
            }));
        }
        Action::Copy => match &dialog.link {
            Some((link, Some(url))) if !link.revoked => return vec![Effect::Copy(url.clone())],
            Some((link, None)) if !link.revoked => set_status(
                state,
                StatusKind::Info,
                "This link was issued elsewhere: the hub keeps only its hash, so it cannot be copied here. Press n for a new one.",
            ),
            Some(_) => set_status(
                state,
                StatusKind::Warning,
                "This link is revoked; press n for a new one.",
            ),
            None => set_status(
                state,
                StatusKind::Info,
                if loading {
                    "Asking the hub…"
                } else {
                    "No valid link to copy; press n to issue one."
                },
            ),
        },
        // It cannot be undone: asked first, like every change of its kind.
        Action::RevokeLink
            if dialog
                .link
                .as_ref()
                .is_some_and(|(link, _)| !link.revoked && !dialog.revoking) =>
        {
            let dialog = dialog.clone();
            state.dialog = Some(Dialog::Confirm(ConfirmDialog {
                title: "Revoke this link?".to_owned(),
                text: format!(
                    "Revoke this enrolment link for {}? It can no longer enrol workstations; those it enrolled stay.",
                    dialog.client_name
                ),
                warning: None,
                yes: "revoke".to_owned(),
                then: Confirmed::RevokeLink { dialog },
            }));
        }
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
    let has_code = form.has_code_field();
    match action {
        Action::GuestLogin if !form.phase.busy() => credentials::toggle_guest(state),
        Action::FocusNext => form.field = credentials::next_field(has_code, form.field),
        Action::FocusPrev => form.field = credentials::prev_field(has_code, form.field),
        Action::Confirm if form.field != credentials::last_field(has_code) => {
            form.field = credentials::next_field(has_code, form.field);
        }
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
        (
            LoginField::Code,
            form.has_code_field() && form.code.value.trim().is_empty(),
            if form.guest {
                "Type the six-digit security code."
            } else {
                "Type the 6-digit code your authenticator app shows."
            },
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
    // The demo's hub is not in the known hubs, but its certificate came with its login.
    let fingerprint = fingerprint.or_else(|| {
        state
            .preset_pin
            .as_ref()
            .filter(|(pinned, _)| *pinned == hub)
            .map(|(_, fingerprint)| fingerprint.clone())
    });
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
    if state.login.guest {
        return vec![Effect::Net(NetCommand::GuestLogin {
            hub,
            fingerprint,
            user: state.login.user.value.trim().to_owned(),
            password: state.login.password.value.clone(),
            code: state.login.code.value.trim().to_owned(),
        })];
    }
    vec![Effect::Net(NetCommand::Login {
        hub,
        fingerprint,
        user: state.login.user.value.trim().to_owned(),
        password: state.login.password.value.clone(),
        code: state
            .login
            .needs_code
            .then(|| state.login.code.value.trim().to_owned()),
        device: None,
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
    state.login.code.clear();
    state.guest = None;
    state.login.error = error;
    state.login.field = if state.login.user.value.is_empty() {
        LoginField::User
    } else {
        LoginField::Password
    };
    state.connection = Connection::Offline;
    state.session = None;
    state.pending.clear();
    state.sessions.clear();
    state.selected_session = None;
    state.ending.clear();
    state.viewer = None;
    state.screens.clear();
    state.view = View::Workstations;
    // Only the hub's own questions belong on the login form. Every other dialog was about the
    // session that ended: kept, it covered the form (2FA enrolment stayed on "Checking…" over
    // a blank screen until a key closed it).
    if !matches!(
        state.dialog,
        Some(Dialog::Trust { .. } | Dialog::Mismatch { .. } | Dialog::Help { .. })
    ) {
        state.dialog = None;
    }
    // The demo's user has a random password: filled in, so a login the demo ended (2FA just
    // enabled) never locks the newcomer out.
    if let Some(password) = &state.demo_password {
        state.login.password = TextInput::new(password.expose());
    }
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
        ErrorCode::TwoFactorRequired => "Enter the code your authenticator app shows.".to_owned(),
        ErrorCode::TwoFactorSetupRequired => "Activate 2FA first (m, Enable 2FA).".to_owned(),
    }
}

/// The hub's message as a sentence: with its period. Its case is left alone: a message may
/// begin with a name ("vm went offline"), and names keep the case they were given.
fn sentence(text: &str) -> String {
    let text = text.trim().trim_end_matches('.');
    if text.is_empty() {
        String::new()
    } else {
        format!("{text}.")
    }
}

fn on_net(state: &mut State, event: NetEvent) -> Vec<Effect> {
    // Frames redraw only when they change what is shown.
    if let NetEvent::Frame { bytes, received_at } = &event {
        return viewer::on_frame(state, bytes, *received_at);
    }
    state.dirty = true;
    match event {
        NetEvent::Frame { .. } => Vec::new(),
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
        NetEvent::LoggedIn { user, token } => {
            state.guest = None;
            on_logged_in(state, user, token)
        }
        NetEvent::GuestLoggedIn { .. } if state.session.is_none() => Vec::new(),
        NetEvent::GuestLoggedIn { user, guest, token } => {
            state.guest = Some(*guest);
            on_logged_in(state, user, token)
        }
        NetEvent::LoginFailed { error }
            if error.code == ErrorCode::TwoFactorRequired
                && state.login.phase == LoginPhase::LoggingIn =>
        {
            // The password was right: keep it, and ask for the code.
            let password = state.login.password.clone();
            let had_code = state.login.needs_code && !state.login.code.value.is_empty();
            back_to_form(state, None);
            state.login.password = password;
            state.login.needs_code = true;
            state.login.code.clear();
            state.login.field = LoginField::Code;
            state.login.error = had_code.then(|| sentence(&error.message));
            state.login.notice = (!had_code)
                .then(|| "Two-factor authentication: type the code your app shows.".to_owned());
            Vec::new()
        }
        NetEvent::LoginFailed { error } => {
            let was_guest = state.guest.is_some();
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
            if was_guest && token_refused {
                back_to_form(
                    state,
                    Some(
                        "Your support credentials ended (expired or revoked): ask your technician for new ones."
                            .to_owned(),
                    ),
                );
            } else if fallback {
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
            let screen = workstation.screen;
            let id = workstation.id.clone();
            on_workstation_event(state, workstation);
            viewer::on_remote_screen(state, &id, screen)
        }
        NetEvent::Event(HubEvent::Client { client }) => {
            upsert_client(state, client);
            Vec::new()
        }
        NetEvent::Event(HubEvent::Session { session }) => {
            on_session_event(state, session);
            Vec::new()
        }
        NetEvent::Event(HubEvent::StreamEnded { stream, reason }) => {
            viewer::on_stream_ended(state, stream, &reason);
            Vec::new()
        }
        // Events were missed: what is shown may be stale, so load the lists again.
        NetEvent::Event(HubEvent::Resync) => refresh(state),
        NetEvent::Disconnected { reason } => {
            if state.screen == Screen::Main {
                state.connection = Connection::Reconnecting {
                    reason: reason.clone(),
                };
                viewer::on_disconnected(state);
                state.pending.clear();
                state.ending.clear();
                // Its reply will never come; the hub ends an attempt whose console left.
                let waiting = match state.dialog.take() {
                    Some(Dialog::Connecting(dialog)) => Some(dialog.hostname),
                    other => {
                        state.dialog = other;
                        None
                    }
                };
                let text = match waiting {
                    Some(host) => format!(
                        "Connection lost ({reason}) while connecting to {host}; reconnecting… Then try again."
                    ),
                    None => format!("Connection lost ({reason}); reconnecting…"),
                };
                set_status(state, StatusKind::Warning, text);
            } else if matches!(state.login.phase, LoginPhase::Resuming { .. }) {
                // Started with the hub down: the saved login stays and is resumed by itself.
                state.login.notice = Some(format!(
                    "The hub is not reachable ({reason}). Your saved login is kept: you are logged in when it is back."
                ));
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
    state.login.code.clear();
    state.login.needs_code = false;
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
        // Said once, where it cannot be missed (an error stays until replaced).
        if let Some(warning) = state.startup_warning.take() {
            set_status(state, StatusKind::Error, warning);
        }
    }
    effects.extend(refresh(state));
    effects.extend(twofa::after_login(state, reconnected));
    // The hub ended the terminal's stream with the old connection: ask again.
    effects.extend(viewer::watch(state));
    effects
}

fn upsert_client(state: &mut State, client: crate::protocol::ClientInfo) {
    match state.clients.iter_mut().find(|c| c.id == client.id) {
        Some(row) => {
            // A renamed client: its workstations show the new name too.
            state.workstations.rename_client(&client.id, &client.name);
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
    if let Pending::TwoFa(pending) = pending {
        return twofa::on_reply(state, pending, result);
    }
    if let Pending::Users(pending) = pending {
        return users::on_reply(state, pending, result);
    }
    if let Pending::Credentials { target_label } = &pending {
        let mut effects = credentials::on_reply(state, target_label, result);
        effects.extend(credential_list::reload_if_open(state));
        return effects;
    }
    if pending == Pending::MoreCredentials {
        return credential_list::on_reply(state, false, result);
    }
    if pending == Pending::ListCredentials {
        return credential_list::on_reply(state, true, result);
    }
    let error = match result {
        Ok(reply) => return on_reply_ok(state, pending, reply),
        Err(error) => error,
    };
    let what = match &pending {
        Pending::ListClients | Pending::MoreClients => "Loading clients".to_owned(),
        Pending::ListWorkstations | Pending::MoreWorkstations => {
            state.workstations_loading = None;
            "Loading workstations".to_owned()
        }
        Pending::MoreSessions => "Loading sessions".to_owned(),
        Pending::FilterOnHub => "Filtering on the hub".to_owned(),
        Pending::TwoFa(_) => "2FA".to_owned(),
        Pending::Users(_) => "Users".to_owned(),
        Pending::AddClient { name } => format!("Adding client {name}"),
        Pending::CreateLink { .. } => "Issuing the enrolment link".to_owned(),
        Pending::ListLinks { .. } => "Loading the client's links".to_owned(),
        Pending::RevokeLink { .. } => "Revoking the link".to_owned(),
        Pending::ListSessions => "Loading sessions".to_owned(),
        Pending::Credentials { target_label } => {
            format!("Support credentials for {target_label}")
        }
        Pending::ListCredentials | Pending::MoreCredentials => {
            "Loading support credentials".to_owned()
        }
        Pending::Connect { .. } => return on_connect_refused(state, pending, &error),
        Pending::Watch { session } => return viewer::on_watch_failed(state, session, &error),
        Pending::Otp { .. }
        | Pending::Outbox
        | Pending::RequireOtp { .. }
        | Pending::GroupOtp { .. } => {
            otp::on_failed(state, pending, &error);
            return Vec::new();
        }
        Pending::RequestAccess {
            hostname,
            workstation,
        }
        | Pending::WithdrawAccess {
            hostname,
            workstation,
        } if error.code == ErrorCode::Conflict => {
            let verb = if matches!(pending, Pending::RequestAccess { .. }) {
                "ask for"
            } else {
                "withdraw"
            };
            let offline = state
                .workstations
                .get(workstation)
                .is_some_and(|w| w.presence == Presence::Offline);
            let next = if offline {
                "Try again when it is back online."
            } else {
                "Its state changed meanwhile; the table shows it now."
            };
            set_status(
                state,
                StatusKind::Warning,
                format!(
                    "Could not {verb} unattended access to {hostname}: {} {next}",
                    sentence(&error.message)
                ),
            );
            return Vec::new();
        }
        Pending::RequestAccess { hostname, .. } => {
            format!("Asking for unattended access to {hostname}")
        }
        Pending::WithdrawAccess { hostname, .. } => {
            format!("Withdrawing unattended access to {hostname}")
        }
        Pending::EndSession { session, hostname } => {
            let session = session.clone();
            state.ending.retain(|id| *id != session);
            if error.code == ErrorCode::NotFound {
                state.sessions.retain(|s| s.id != session);
                fix_session_selection(state);
                set_status(
                    state,
                    StatusKind::Info,
                    format!("The session on {hostname} had already ended."),
                );
                return Vec::new();
            }
            format!("Ending the session on {hostname}")
        }
    };
    match (&pending, &mut state.dialog) {
        (Pending::CreateLink { client } | Pending::ListLinks { client }, Some(Dialog::Link(d)))
            if &d.client_id == client =>
        {
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

/// A `Connect` was refused (or failed): say why and what to do next; a wrong or missing
/// secret asks again.
fn on_connect_refused(state: &mut State, pending: Pending, error: &ProtocolError) -> Vec<Effect> {
    let Pending::Connect {
        workstation,
        hostname,
        requires,
        view_only,
        attended,
        abandoned,
    } = pending
    else {
        return Vec::new();
    };
    if abandoned {
        return Vec::new(); // the technician stopped waiting; nothing opened
    }
    if matches!(state.dialog, Some(Dialog::Connecting(_))) {
        state.dialog = None;
    }
    if error.code == ErrorCode::TwoFactorSetupRequired {
        twofa::on_session_refused(state, error);
        return Vec::new();
    }
    let message = error.message.as_str();
    let refused =
        |refusal: Refusal| error.refusal == Some(refusal) || message.contains(refusal.message());
    let request = key_hint(state, Action::RequestAccess, "u");
    let connect = key_hint(state, Action::Connect, "Enter");
    if refused(Refusal::OtpRequired) || refused(Refusal::OtpInvalid) {
        let attempt = ConnectAttempt {
            workstation,
            hostname,
            requires,
            view_only,
            attended,
        };
        otp::on_refused(state, attempt, error, refused(Refusal::OtpRequired));
        return Vec::new();
    }
    match error.code {
        ErrorCode::RateLimited => {
            let secs = error.retry_after_secs.unwrap_or(1).max(1);
            let until = state.now + chrono::Duration::seconds(i64::try_from(secs).unwrap_or(900));
            state.lockouts.insert(workstation, until);
            lockout_status(state, &hostname, until);
        }
        ErrorCode::Forbidden
            if refused(Refusal::WrongSecret) || refused(Refusal::SecretRequired) =>
        {
            // Ask again at once, saying what was wrong; the hub counts towards a lock-out.
            let requires = if requires.any() {
                requires
            } else {
                SecretRequirements {
                    passcode: true,
                    password: true,
                }
            };
            let what = if refused(Refusal::WrongSecret) {
                format!(
                    "That {} was wrong. Check it with the end user; repeated wrong tries lock you out for a while.",
                    secret_name(requires)
                )
            } else {
                format!("{hostname} now requires its {}.", secret_name(requires))
            };
            set_status(
                state,
                StatusKind::Error,
                format!("{hostname} refused the connection: {}", sentence(message)),
            );
            state.dialog = Some(Dialog::Secret(SecretPrompt {
                workstation,
                hostname,
                requires,
                view_only,
                attended,
                input: TextInput::default(),
                error: Some(what),
                otp: None,
            }));
        }
        ErrorCode::Forbidden => {
            let next = if refused(Refusal::Denied) {
                format!("Call the end user, or ask for unattended access ({request}).")
            } else if refused(Refusal::NoAnswer) {
                format!(
                    "Make sure someone is at the computer and press {connect} again, or ask for unattended access ({request})."
                )
            } else if refused(Refusal::NoPasswordSet) {
                "Ask the end user to set one in the agent, or to give you the temporary passcode."
                    .to_owned()
            } else {
                String::new()
            };
            set_status(
                state,
                StatusKind::Error,
                format!(
                    "{hostname} refused the connection: {} {next}",
                    sentence(message)
                )
                .trim_end()
                .to_owned(),
            );
        }
        ErrorCode::Conflict => set_status(
            state,
            StatusKind::Warning,
            format!(
                "Could not connect to {hostname}: {} Try again when it is back online.",
                sentence(message)
            ),
        ),
        _ => set_status(
            state,
            StatusKind::Error,
            format!(
                "Connecting to {hostname} failed: {} {}",
                sentence(message),
                next_step(error)
            ),
        ),
    }
    Vec::new()
}

fn on_reply_ok(state: &mut State, pending: Pending, reply: ConsoleReply) -> Vec<Effect> {
    match (pending, reply) {
        (
            pending @ (Pending::ListSessions | Pending::MoreSessions),
            ConsoleReply::Sessions { sessions, next, .. },
        ) => {
            if pending == Pending::ListSessions {
                state.sessions.clear();
            }
            state
                .sessions
                .extend(sessions.into_iter().filter(|s| s.ended_at.is_none()));
            fix_session_selection(state);
            return next_page(state, Pending::MoreSessions, next);
        }
        (Pending::RequestAccess { hostname, .. }, ConsoleReply::Workstation { workstation }) => {
            upsert_workstation(state, workstation);
            set_status(
                state,
                StatusKind::Success,
                format!(
                    "Asked the end user of {hostname} for unattended access; their answer shows here."
                ),
            );
        }
        (Pending::WithdrawAccess { hostname, .. }, ConsoleReply::Workstation { workstation }) => {
            upsert_workstation(state, workstation);
            set_status(
                state,
                StatusKind::Success,
                format!("Withdrew unattended access to {hostname}; its open sessions end now."),
            );
        }
        (
            Pending::Connect {
                abandoned: true, ..
            },
            ConsoleReply::Session { session },
        ) => {
            // Accepted after the technician stopped waiting: nobody uses it, so end it.
            let hostname = session.hostname.clone();
            let effects = end_session(state, &session);
            set_status(
                state,
                StatusKind::Info,
                format!("{hostname} accepted after you stopped waiting; ending that session."),
            );
            return effects;
        }
        (Pending::Connect { .. }, ConsoleReply::Session { session }) => {
            if matches!(state.dialog, Some(Dialog::Connecting(_))) {
                state.dialog = None;
            }
            let end = key_hint(state, Action::EndSession, "e");
            let text = format!(
                "Connected to {} ({}). {end} ends the session.",
                session.hostname,
                session_summary(&session)
            );
            state.lockouts.remove(&session.workstation_id);
            let known = state.workstations.contains(&session.workstation_id);
            on_session_event(state, session.clone());
            set_status(state, StatusKind::Success, text);
            if known {
                // Its screen, or with no screen its shell, full screen.
                return viewer::open(state, session);
            }
        }
        (Pending::EndSession { session, hostname }, ConsoleReply::Done) => {
            state.sessions.retain(|s| s.id != session);
            fix_session_selection(state);
            set_status(
                state,
                StatusKind::Success,
                format!("Ended the session on {hostname}."),
            );
        }
        (Pending::Watch { session }, ConsoleReply::Watching { stream }) => {
            return viewer::on_watching(state, &session, stream);
        }
        (
            pending @ (Pending::ListClients | Pending::MoreClients),
            ConsoleReply::Clients { clients, next, .. },
        ) => {
            if pending == Pending::ListClients {
                state.clients = Vec::new();
            }
            for client in clients {
                upsert_client(state, client);
            }
            fix_selection(state);
            return next_page(state, Pending::MoreClients, next);
        }
        (Pending::FilterOnHub, ConsoleReply::Workstations { workstations, .. }) => {
            state.workstations.extend(workstations);
            fix_selection(state);
        }
        (
            pending @ (Pending::ListWorkstations | Pending::MoreWorkstations),
            ConsoleReply::Workstations {
                workstations,
                next,
                total,
            },
        ) => {
            if pending == Pending::ListWorkstations {
                state.workstations.clear();
            }
            // A row a live event already added is replaced by the page's (the hub sent it
            // later on the same connection, so it is newer): the fleet upserts by id.
            state.workstations.extend(workstations);
            state.workstations_loading = next.is_some().then_some(total);
            fix_selection(state);
            if next.is_some() {
                return next_page(state, Pending::MoreWorkstations, next);
            }
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
            state.issued_links.insert(link.id.clone(), url.clone());
            if let Some(Dialog::Link(dialog)) = &mut state.dialog
                && dialog.client_id == client
            {
                dialog.link = Some((link, Some(url)));
                dialog.loading = false;
            }
        }
        (Pending::ListLinks { client }, ConsoleReply::Links { links, .. }) => {
            // Newest first on the first page: the current link, if any, is on it.
            let current = current_link(links, state.now);
            let url = current
                .as_ref()
                .and_then(|l| state.issued_links.get(&l.id).cloned());
            if let Some(Dialog::Link(dialog)) = &mut state.dialog
                && dialog.client_id == client
            {
                dialog.link = current.map(|l| (l, url));
                dialog.loading = false;
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
        (pending @ Pending::GroupOtp { .. }, reply) => {
            return otp::on_group_reply(state, pending, reply);
        }
        (pending @ (Pending::Otp { .. } | Pending::Outbox | Pending::RequireOtp { .. }), reply) => {
            otp::on_reply(state, pending, reply);
        }
        (pending, reply) => {
            let text = format!(
                "The hub answered {pending:?} with {}; please report this bug.",
                reply_kind(&reply)
            );
            set_status(state, StatusKind::Error, text);
        }
    }
    Vec::new()
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
        ConsoleReply::Watching { .. } => "watching",
        ConsoleReply::Done => "done",
        ConsoleReply::TwoFactor { .. } => "two_factor",
        ConsoleReply::TwoFactorEnrolment { .. } => "two_factor_enrolment",
        ConsoleReply::Users { .. } => "users",
        ConsoleReply::GuestLoggedIn { .. } => "guest_logged_in",
        ConsoleReply::GuestResumed { .. } => "guest_resumed",
        ConsoleReply::CredentialsIssued { .. } => "credentials_issued",
        ConsoleReply::CredentialsAlreadyActive { .. } => "credentials_already_active",
        ConsoleReply::Credentials { .. } => "credentials",
        ConsoleReply::Credential { .. } => "credential",
        ConsoleReply::Otp { .. } => "otp",
        ConsoleReply::Outbox { .. } => "outbox",
        ConsoleReply::UserAdded { .. } => "user_added",
    }
}

mod credential_list;
mod credentials;
mod otp;
pub mod twofa;
pub mod users;
mod viewer;

pub use credential_list::state_at as credential_state_at;
pub use credentials::{guest_banner, hours_label};
pub use otp::{also_needs as otp_also_needs, delivery_text as otp_delivery_text};

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
