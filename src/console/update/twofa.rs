//! Issue 5 in the console: the user menu, 2FA (the code at login, "Activate now / later",
//! enrolment with a QR code), the admins' users view and the audit log. Pure, like the rest
//! of `update`.

use crate::console::action::Action;
use crate::console::keymap::Layer;
use crate::console::net::NetCommand;
use crate::console::state::{Dialog, LoginField, Pending, State, StatusKind, TextInput, View};
use crate::protocol::{
    AuditQuery, AuditRecord, ConsoleReply, ConsoleRequest, ErrorCode, ProtocolError, Role, Secret,
    TwoFactorState, TwoFactorStatus, UserTwoFactor,
};

use super::{Effect, request, sentence, set_status};

/// Records asked for at a time in the audit view.
pub const AUDIT_PAGE: u32 = 200;

/// What the console knows about 2FA, users and the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TwoFaState {
    /// The technician's own 2FA, as the hub said after login.
    pub status: Option<TwoFactorStatus>,
    /// "Activate now / later" was offered after this login.
    pub offered: bool,
    /// The users view (admins).
    pub users: Vec<UserTwoFactor>,
    pub global: bool,
    pub selected_user: usize,
    pub audit: AuditView,
}

/// The audit log view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditView {
    pub records: Vec<AuditRecord>,
    pub selected: usize,
    /// The filter line being typed or last applied.
    pub filter: TextInput,
    /// The filter applied to `records`.
    pub query: AuditQuery,
    /// The filter line has the keyboard.
    pub editing: bool,
    pub error: Option<String>,
    pub loading: bool,
    /// The last page was full: older records can be loaded (moving past the end does).
    pub more: bool,
}

/// The enrolment dialog: the QR code of the otpauth URI, the URI as text, a code field.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrolDialog {
    /// `None` while the hub makes the secret.
    pub uri: Option<String>,
    pub secret: Option<Secret>,
    pub code: TextInput,
    pub error: Option<String>,
    pub confirming: bool,
}

/// The URI carries the secret: never in a log.
impl std::fmt::Debug for EnrolDialog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolDialog")
            .field("uri", &self.uri.as_ref().map(|_| "<redacted>"))
            .field("typed", &self.code.value.chars().count())
            .field("error", &self.error)
            .field("confirming", &self.confirming)
            .finish()
    }
}

/// An admin 2FA change waiting for the admin's password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminChange {
    User {
        name: String,
        required: bool,
    },
    Global {
        required: bool,
    },
    /// Reset another user's 2FA.
    Reset {
        name: String,
    },
}

impl AdminChange {
    pub fn describe(&self) -> String {
        match self {
            AdminChange::User {
                name,
                required: true,
            } => format!("Require 2FA for {name}"),
            AdminChange::User {
                name,
                required: false,
            } => format!("Stop requiring 2FA for {name}"),
            AdminChange::Global { required: true } => "Require 2FA for everyone".to_owned(),
            AdminChange::Global { required: false } => "Stop requiring 2FA for everyone".to_owned(),
            AdminChange::Reset { name } => {
                format!(
                    "Reset 2FA for {name}: their authenticator stops working and their logins end"
                )
            }
        }
    }
}

/// The admin's password prompt. What was typed never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminPasswordPrompt {
    pub change: AdminChange,
    pub input: TextInput,
    pub error: Option<String>,
}

impl std::fmt::Debug for AdminPasswordPrompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminPasswordPrompt")
            .field("change", &self.change)
            .field("typed", &self.input.value.chars().count())
            .field("error", &self.error)
            .finish()
    }
}

/// Requests of this module waiting for their replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwoFaPending {
    Status,
    Enable,
    Confirm,
    ListUsers,
    /// A page after the first of the users list.
    MoreUsers,
    SetUser {
        name: String,
        required: bool,
    },
    SetGlobal {
        required: bool,
    },
    ResetUser {
        name: String,
    },
    /// `older`: a page before the records shown, appended to them.
    SearchAudit {
        older: bool,
    },
}

/// One entry of the user menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuItem {
    EnableTwoFa,
    AuditLog,
    Users,
    LogOut,
}

impl MenuItem {
    pub fn label(self, state: &State) -> String {
        match self {
            MenuItem::EnableTwoFa => match state.twofa.status.map(|s| s.state) {
                Some(TwoFactorState::Active) => "Enable 2FA (active)".to_owned(),
                Some(TwoFactorState::Pending) => "Enable 2FA (required)".to_owned(),
                _ => "Enable 2FA".to_owned(),
            },
            MenuItem::AuditLog => "Audit log".to_owned(),
            MenuItem::Users => "Users and 2FA".to_owned(),
            MenuItem::LogOut => "Log out".to_owned(),
        }
    }
}

fn is_admin(state: &State) -> bool {
    state
        .session
        .as_ref()
        .and_then(|s| s.user.as_ref())
        .is_some_and(|u| u.role == Role::Admin)
}

/// The menu's entries for this technician.
pub fn menu_items(state: &State) -> Vec<MenuItem> {
    let mut items = vec![MenuItem::EnableTwoFa, MenuItem::AuditLog];
    if is_admin(state) {
        items.push(MenuItem::Users);
    }
    items.push(MenuItem::LogOut);
    items
}

/// The layers this module owns.
pub fn owns(layer: Layer) -> bool {
    matches!(
        layer,
        Layer::UserMenu
            | Layer::TwoFactorOffer
            | Layer::Enrol
            | Layer::AdminPassword
            | Layer::Users
            | Layer::Audit
            | Layer::AuditFilter
    )
}

/// The text field with the keyboard in this module's layers.
pub fn text_field(state: &mut State) -> Option<&mut TextInput> {
    match state.layer() {
        Layer::Enrol => match &mut state.dialog {
            Some(Dialog::Enrol(d)) if !d.confirming && d.uri.is_some() => Some(&mut d.code),
            _ => None,
        },
        Layer::AdminPassword => match &mut state.dialog {
            Some(Dialog::AdminPassword(p)) => Some(&mut p.input),
            _ => None,
        },
        Layer::AuditFilter => Some(&mut state.twofa.audit.filter),
        _ => None,
    }
}

/// After a login (not a reconnect): ask for the technician's 2FA.
pub fn after_login(state: &mut State, reconnected: bool) -> Vec<Effect> {
    // Guests have no 2FA of their own (their credentials carry a security code).
    if reconnected || state.guest.is_some() {
        return Vec::new();
    }
    state.twofa = TwoFaState::default();
    status_request(state)
}

fn status_request(state: &mut State) -> Vec<Effect> {
    vec![request(
        state,
        ConsoleRequest::TwoFactorStatus,
        Pending::TwoFa(TwoFaPending::Status),
    )]
}

/// Main-screen keys (and the other views'): the menu, users, audit log.
pub fn on_view_action(state: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::UserMenu => {
            state.dialog = Some(Dialog::UserMenu { selected: 0 });
            Vec::new()
        }
        Action::Users => open_users(state),
        Action::AuditLog => open_audit(state),
        _ => Vec::new(),
    }
}

pub(super) fn open_users(state: &mut State) -> Vec<Effect> {
    if !is_admin(state) {
        set_status(
            state,
            StatusKind::Warning,
            "Only admins see the users view.",
        );
        return Vec::new();
    }
    state.view = View::Users;
    // Pages of an earlier load would mix into this one: their replies are dropped.
    state.pending.retain(|_, p| {
        !matches!(
            p,
            Pending::TwoFa(TwoFaPending::ListUsers | TwoFaPending::MoreUsers)
        )
    });
    vec![request(
        state,
        ConsoleRequest::ListUsers {
            page: crate::protocol::PageRequest::first(),
        },
        Pending::TwoFa(TwoFaPending::ListUsers),
    )]
}

fn open_audit(state: &mut State) -> Vec<Effect> {
    state.view = View::Audit;
    state.twofa.audit.editing = false;
    search_audit(state)
}

fn search_audit(state: &mut State) -> Vec<Effect> {
    audit_page(state, false)
}

/// The newest page, or (`older`) the page before the oldest record shown.
fn audit_page(state: &mut State, older: bool) -> Vec<Effect> {
    let before = if older {
        let Some(last) = state.twofa.audit.records.last() else {
            return Vec::new();
        };
        Some(last.id)
    } else {
        None
    };
    state.twofa.audit.loading = true;
    let query = state.twofa.audit.query.clone();
    vec![request(
        state,
        ConsoleRequest::SearchAudit {
            query,
            limit: AUDIT_PAGE,
            before,
            page: crate::protocol::PageRequest::first(),
        },
        Pending::TwoFa(TwoFaPending::SearchAudit { older }),
    )]
}

fn start_enrolment(state: &mut State) -> Vec<Effect> {
    if state.twofa.status.map(|s| s.state) == Some(TwoFactorState::Active) {
        state.dialog = None;
        set_status(state, StatusKind::Info, "2FA is already active for you.");
        return Vec::new();
    }
    state.dialog = Some(Dialog::Enrol(EnrolDialog {
        uri: None,
        secret: None,
        code: TextInput::default(),
        error: None,
        confirming: false,
    }));
    vec![request(
        state,
        ConsoleRequest::TwoFactorEnable,
        Pending::TwoFa(TwoFaPending::Enable),
    )]
}

fn log_out(state: &mut State) -> Vec<Effect> {
    let hub = state.session.as_ref().map(|s| s.hub.clone());
    super::back_to_form(state, None);
    state.login.notice = Some("Logged out.".to_owned());
    state.twofa = TwoFaState::default();
    let mut effects = vec![Effect::Net(NetCommand::Logout)];
    effects.extend(hub.map(|hub| Effect::ForgetLogin { hub }));
    effects
}

/// Keys in this module's layers.
pub fn on_action(state: &mut State, layer: Layer, action: Action) -> Vec<Effect> {
    match layer {
        Layer::UserMenu => {
            let items = menu_items(state);
            let Some(Dialog::UserMenu { selected }) = &mut state.dialog else {
                return Vec::new();
            };
            match action {
                Action::Up => *selected = selected.saturating_sub(1),
                Action::Down => *selected = (*selected + 1).min(items.len().saturating_sub(1)),
                Action::Cancel => state.dialog = None,
                Action::Confirm => {
                    let item = items.get(*selected).copied();
                    state.dialog = None;
                    return match item {
                        Some(MenuItem::EnableTwoFa) => start_enrolment(state),
                        Some(MenuItem::AuditLog) => open_audit(state),
                        Some(MenuItem::Users) => open_users(state),
                        Some(MenuItem::LogOut) => log_out(state),
                        None => Vec::new(),
                    };
                }
                _ => {}
            }
            Vec::new()
        }
        Layer::TwoFactorOffer => match action {
            Action::Yes => start_enrolment(state),
            Action::No => {
                state.dialog = None;
                set_status(
                    state,
                    StatusKind::Warning,
                    "2FA is required: you may browse, but sessions are refused until you activate it (m, Enable 2FA).",
                );
                Vec::new()
            }
            _ => Vec::new(),
        },
        Layer::Enrol => {
            let Some(Dialog::Enrol(dialog)) = &mut state.dialog else {
                return Vec::new();
            };
            match action {
                Action::Cancel => {
                    state.dialog = None;
                    set_status(state, StatusKind::Info, "2FA was not enabled.");
                    Vec::new()
                }
                Action::Confirm if dialog.uri.is_some() && !dialog.confirming => {
                    let code: String = dialog
                        .code
                        .value
                        .chars()
                        .filter(|c| !c.is_whitespace())
                        .collect();
                    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
                        dialog.error = Some("Type the 6 digits your app shows.".to_owned());
                        return Vec::new();
                    }
                    dialog.confirming = true;
                    dialog.error = None;
                    vec![request(
                        state,
                        ConsoleRequest::TwoFactorConfirm { code: code.into() },
                        Pending::TwoFa(TwoFaPending::Confirm),
                    )]
                }
                _ => Vec::new(),
            }
        }
        Layer::AdminPassword => {
            let Some(Dialog::AdminPassword(prompt)) = &mut state.dialog else {
                return Vec::new();
            };
            match action {
                Action::Cancel => {
                    state.dialog = None;
                    Vec::new()
                }
                Action::Confirm if prompt.input.value.is_empty() => {
                    prompt.error = Some("Type your password.".to_owned());
                    Vec::new()
                }
                Action::Confirm => {
                    let password: Secret = prompt.input.value.clone().into();
                    let change = prompt.change.clone();
                    state.dialog = None;
                    let (body, pending) = match change {
                        AdminChange::User { name, required } => (
                            ConsoleRequest::SetUserTwoFactor {
                                user: name.clone(),
                                required,
                                password,
                            },
                            TwoFaPending::SetUser { name, required },
                        ),
                        AdminChange::Global { required } => (
                            ConsoleRequest::SetGlobalTwoFactor { required, password },
                            TwoFaPending::SetGlobal { required },
                        ),
                        AdminChange::Reset { name } => (
                            ConsoleRequest::ResetUserTwoFactor {
                                user: name.clone(),
                                password,
                            },
                            TwoFaPending::ResetUser { name },
                        ),
                    };
                    vec![request(state, body, Pending::TwoFa(pending))]
                }
                _ => Vec::new(),
            }
        }
        Layer::Users => {
            let len = state.twofa.users.len();
            let sel = &mut state.twofa.selected_user;
            match action {
                Action::Up => *sel = sel.saturating_sub(1),
                Action::Down => *sel = (*sel + 1).min(len.saturating_sub(1)),
                Action::Cancel | Action::Users => state.view = View::Workstations,
                Action::Help => state.dialog = Some(Dialog::Help { scroll: 0 }),
                Action::Refresh => return open_users(state),
                Action::UserMenu => return on_view_action(state, action),
                Action::ToggleRequired => {
                    if state.twofa.global {
                        set_status(
                            state,
                            StatusKind::Warning,
                            "2FA is required for everyone: per-user settings are unavailable while the global setting is on.",
                        );
                        return Vec::new();
                    }
                    let Some(user) = state.twofa.users.get(*sel) else {
                        return Vec::new();
                    };
                    let change = AdminChange::User {
                        name: user.name.clone(),
                        required: !user.required,
                    };
                    ask_password(state, change);
                }
                Action::ToggleGlobal => {
                    let change = AdminChange::Global {
                        required: !state.twofa.global,
                    };
                    ask_password(state, change);
                }
                Action::ResetTwoFa => {
                    let Some(user) = state.twofa.users.get(*sel) else {
                        return Vec::new();
                    };
                    let name = user.name.clone();
                    let me = state
                        .session
                        .as_ref()
                        .and_then(|s| s.user.as_ref())
                        .is_some_and(|u| u.name == name);
                    if me {
                        set_status(
                            state,
                            StatusKind::Warning,
                            "You cannot reset your own 2FA: ask another admin.",
                        );
                        return Vec::new();
                    }
                    ask_password(state, AdminChange::Reset { name });
                }
                Action::AddUser | Action::ChangeRole | Action::DisableUser | Action::RemoveUser => {
                    return super::users::on_users_action(state, action);
                }
                _ => {}
            }
            Vec::new()
        }
        Layer::Audit => {
            let len = state.twofa.audit.records.len();
            let page = state.page_rows();
            let at_end = len > 0 && state.twofa.audit.selected + 1 >= len;
            let moving_on = matches!(action, Action::Down | Action::PageDown | Action::Last);
            if at_end && moving_on && state.twofa.audit.more && !state.twofa.audit.loading {
                return audit_page(state, true);
            }
            let sel = &mut state.twofa.audit.selected;
            match action {
                Action::Up => *sel = sel.saturating_sub(1),
                Action::Down => *sel = (*sel + 1).min(len.saturating_sub(1)),
                Action::PageUp => *sel = sel.saturating_sub(page),
                Action::PageDown => *sel = (*sel + page).min(len.saturating_sub(1)),
                Action::First => *sel = 0,
                Action::Last => *sel = len.saturating_sub(1),
                Action::Filter => state.twofa.audit.editing = true,
                Action::Refresh => return search_audit(state),
                Action::Cancel | Action::AuditLog => state.view = View::Workstations,
                Action::Help => state.dialog = Some(Dialog::Help { scroll: 0 }),
                Action::UserMenu => return on_view_action(state, action),
                _ => {}
            }
            Vec::new()
        }
        Layer::AuditFilter => match action {
            Action::Cancel => {
                state.twofa.audit.editing = false;
                Vec::new()
            }
            Action::Confirm => match AuditQuery::parse(&state.twofa.audit.filter.value) {
                Ok(query) => {
                    state.twofa.audit.query = query;
                    state.twofa.audit.error = None;
                    state.twofa.audit.editing = false;
                    state.twofa.audit.selected = 0;
                    search_audit(state)
                }
                Err(e) => {
                    // Said where it is seen: the filter line shows what is typed meanwhile.
                    set_status(
                        state,
                        StatusKind::Error,
                        format!("Filter not applied: {e}. Fix it, or Esc."),
                    );
                    state.twofa.audit.error = Some(e);
                    Vec::new()
                }
            },
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn ask_password(state: &mut State, change: AdminChange) {
    state.dialog = Some(Dialog::AdminPassword(AdminPasswordPrompt {
        change,
        input: TextInput::default(),
        error: None,
    }));
}

/// The hub refused a session because 2FA is required but not active: bring the offer back.
pub fn on_session_refused(state: &mut State, error: &ProtocolError) {
    if let Some(status) = &mut state.twofa.status {
        status.state = TwoFactorState::Pending;
        status.required = true;
    }
    state.dialog = Some(Dialog::TwoFactorOffer);
    set_status(state, StatusKind::Error, sentence(&error.message));
}

/// Replies to this module's requests.
pub fn on_reply(
    state: &mut State,
    pending: TwoFaPending,
    result: Result<ConsoleReply, ProtocolError>,
) -> Vec<Effect> {
    state.dirty = true;
    match (pending, result) {
        (TwoFaPending::Status, Ok(ConsoleReply::TwoFactor { status })) => {
            state.twofa.status = Some(status);
            if status.state == TwoFactorState::Pending
                && !state.twofa.offered
                && state.dialog.is_none()
            {
                state.twofa.offered = true;
                state.dialog = Some(Dialog::TwoFactorOffer);
            }
        }
        (TwoFaPending::Enable, Ok(ConsoleReply::TwoFactorEnrolment { uri, secret })) => {
            if let Some(Dialog::Enrol(d)) = &mut state.dialog {
                d.uri = Some(uri.expose().to_owned());
                d.secret = Some(secret);
            }
            // Closed meanwhile: the pending secret stays unconfirmed and unused.
        }
        (TwoFaPending::Enable, Err(error)) => {
            if matches!(state.dialog, Some(Dialog::Enrol(_))) {
                state.dialog = None;
            }
            set_status(
                state,
                StatusKind::Error,
                format!("Enabling 2FA failed: {}", sentence(&error.message)),
            );
        }
        (TwoFaPending::Confirm, Ok(ConsoleReply::TwoFactor { status })) => {
            state.twofa.status = Some(status);
            // DOMAIN.md: after enrolment, log in again with 2FA. The name is the logged-in
            // user's (a login made elsewhere, the demo's, never filled the form).
            let user = state
                .me()
                .map_or_else(|| state.login.user.value.clone(), str::to_owned);
            let effects = log_out(state);
            state.login.user = TextInput::new(user);
            state.login.needs_code = true;
            // Straight to the code where the password is known (the demo's).
            state.login.field = if state.login.password.value.is_empty() {
                LoginField::Password
            } else {
                LoginField::Code
            };
            state.login.notice = Some(
                "2FA is active. Log in again with your password and the next code your app shows."
                    .to_owned(),
            );
            return effects;
        }
        (TwoFaPending::Confirm, Err(error)) => {
            if let Some(Dialog::Enrol(d)) = &mut state.dialog {
                d.confirming = false;
                d.code.clear();
                d.error = Some(sentence(&error.message));
            }
        }
        (
            pending @ (TwoFaPending::ListUsers | TwoFaPending::MoreUsers),
            Ok(ConsoleReply::Users {
                users,
                global,
                next,
                ..
            }),
        ) => {
            if pending == TwoFaPending::ListUsers {
                state.twofa.users = users;
            } else {
                state.twofa.users.extend(users);
            }
            state.twofa.selected_user = state
                .twofa
                .selected_user
                .min(state.twofa.users.len().saturating_sub(1));
            state.twofa.global = global;
            if let Some(cursor) = next {
                return vec![request(
                    state,
                    ConsoleRequest::ListUsers {
                        page: crate::protocol::PageRequest::after(cursor),
                    },
                    Pending::TwoFa(TwoFaPending::MoreUsers),
                )];
            }
        }
        (TwoFaPending::SetUser { name, required }, Ok(_)) => {
            let text = if required {
                format!("2FA is now required for {name}.")
            } else {
                format!("2FA is no longer required for {name}.")
            };
            set_status(state, StatusKind::Success, text);
            return open_users(state);
        }
        (TwoFaPending::ResetUser { name }, Ok(_)) => {
            set_status(
                state,
                StatusKind::Success,
                format!(
                    "2FA reset for {name}: their logins ended; they enrol again if 2FA is required."
                ),
            );
            return open_users(state);
        }
        (TwoFaPending::SetGlobal { required }, Ok(_)) => {
            let text = if required {
                "2FA is now required for everyone."
            } else {
                "2FA is no longer required for everyone."
            };
            set_status(state, StatusKind::Success, text);
            let mut effects = open_users(state);
            effects.extend(status_request(state));
            return effects;
        }
        (TwoFaPending::SearchAudit { older }, Ok(ConsoleReply::Audit { records, .. })) => {
            let audit = &mut state.twofa.audit;
            audit.loading = false;
            audit.more = records.len() >= AUDIT_PAGE as usize;
            if older {
                // Continue where the list ended: on the first older record.
                if !records.is_empty() {
                    audit.selected = audit.records.len();
                }
                audit.records.extend(records);
            } else {
                audit.selected = audit.selected.min(records.len().saturating_sub(1));
                audit.records = records;
            }
        }
        (TwoFaPending::SearchAudit { .. }, Err(error)) => {
            state.twofa.audit.loading = false;
            state.twofa.audit.error = Some(sentence(&error.message));
        }
        (pending, Err(error)) => {
            let what = match pending {
                TwoFaPending::SetUser { .. }
                | TwoFaPending::SetGlobal { .. }
                | TwoFaPending::ResetUser { .. } => "The 2FA change was refused",
                TwoFaPending::ListUsers | TwoFaPending::MoreUsers => "Loading users failed",
                _ => "2FA",
            };
            let hint = if error.code == ErrorCode::InvalidCredentials {
                " Nothing changed."
            } else {
                ""
            };
            set_status(
                state,
                StatusKind::Error,
                format!("{what}: {}{hint}", sentence(&error.message)),
            );
        }
        (pending, Ok(reply)) => {
            set_status(
                state,
                StatusKind::Error,
                format!(
                    "The hub answered {pending:?} with {}; please report this bug.",
                    super::reply_kind(&reply)
                ),
            );
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests;
