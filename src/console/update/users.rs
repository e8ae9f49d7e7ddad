//! The users view's lifecycle keys (issue 11, admins): add a user (their enrolment code shown
//! once), change a role, disable or enable, remove. Disabling, removing and role changes ask
//! first: each ends the user's open consoles.

use crate::console::action::Action;
use crate::console::keymap::Layer;
use crate::console::state::{Dialog, Pending, State, StatusKind, TextInput};
use crate::protocol::{ConsoleReply, ConsoleRequest, ProtocolError, Role};

use super::{Effect, request, sentence, set_status};

/// The users dialogs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsersDialog {
    /// The add form: name, e-mail, role.
    Add(AddUserForm),
    /// A new user's enrolment code: shown this once.
    Added {
        name: String,
        code: String,
        expires: String,
    },
    /// "Disable / remove / make admin NAME?"
    Confirm { name: String, change: UserChange },
}

impl UsersDialog {
    pub fn layer(&self) -> Layer {
        match self {
            UsersDialog::Add(_) => Layer::UserAdd,
            UsersDialog::Added { .. } => Layer::UserAdded,
            UsersDialog::Confirm { .. } => Layer::UserConfirm,
        }
    }
}

/// Which part of the add form has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddField {
    #[default]
    Name,
    Email,
    Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddUserForm {
    pub name: TextInput,
    pub email: TextInput,
    pub focus: AddField,
    /// Admin rather than technician.
    pub admin: bool,
    pub error: Option<String>,
    /// Sent; waiting for the hub.
    pub waiting: bool,
}

impl AddUserForm {
    pub fn role(&self) -> Role {
        if self.admin {
            Role::Admin
        } else {
            Role::Technician
        }
    }
}

/// A change to an existing user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserChange {
    Disable,
    Enable,
    Remove,
    Role(Role),
}

impl UserChange {
    /// The question (or, for enabling, the statement) shown for `name`.
    pub fn describe(self, name: &str) -> String {
        match self {
            UserChange::Disable => format!(
                "Disable {name}? Their logins end and their open consoles close; they cannot log in until enabled."
            ),
            UserChange::Enable => format!("Enable {name} again (and unlock the account)?"),
            UserChange::Remove => format!(
                "Remove {name} for good? Their logins end; their name stays in the audit log and is never reused."
            ),
            UserChange::Role(role) => format!(
                "Make {name} {}? Their open consoles close; the next login has the new role.",
                role.as_str()
            ),
        }
    }

    fn done(self, name: &str) -> String {
        match self {
            UserChange::Disable => format!("{name} is disabled."),
            UserChange::Enable => format!("{name} is enabled."),
            UserChange::Remove => format!("{name} is removed."),
            UserChange::Role(role) => format!("{name} is now {}.", role.as_str()),
        }
    }

    fn request(self, name: String) -> ConsoleRequest {
        match self {
            UserChange::Disable => ConsoleRequest::DisableUser { user: name },
            UserChange::Enable => ConsoleRequest::EnableUser { user: name },
            UserChange::Remove => ConsoleRequest::RemoveUser { user: name },
            UserChange::Role(role) => ConsoleRequest::SetUserRole { user: name, role },
        }
    }
}

/// Requests of this module waiting for their reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsersPending {
    Add { name: String },
    Change { name: String, change: UserChange },
}

/// The text field with the keyboard in the add form.
pub fn text_field(state: &mut State) -> Option<&mut TextInput> {
    match &mut state.dialog {
        Some(Dialog::Users(UsersDialog::Add(form))) if !form.waiting => match form.focus {
            AddField::Name => Some(&mut form.name),
            AddField::Email => Some(&mut form.email),
            AddField::Role => None,
        },
        _ => None,
    }
}

/// A lifecycle key in the users view.
pub fn on_users_action(state: &mut State, action: Action) -> Vec<Effect> {
    if action == Action::AddUser {
        state.dialog = Some(Dialog::Users(UsersDialog::Add(AddUserForm::default())));
        return Vec::new();
    }
    let Some(user) = state.twofa.users.get(state.twofa.selected_user) else {
        return Vec::new();
    };
    let name = user.name.clone();
    let change = match action {
        Action::DisableUser if user.disabled => UserChange::Enable,
        Action::DisableUser => UserChange::Disable,
        Action::RemoveUser => UserChange::Remove,
        Action::ChangeRole if user.role == Role::Admin => UserChange::Role(Role::Technician),
        Action::ChangeRole => UserChange::Role(Role::Admin),
        _ => return Vec::new(),
    };
    let me = state
        .session
        .as_ref()
        .and_then(|s| s.user.as_ref())
        .is_some_and(|u| u.name == name);
    if me && change != UserChange::Enable {
        set_status(
            state,
            StatusKind::Warning,
            "You cannot disable, remove or demote yourself: ask another admin.",
        );
        return Vec::new();
    }
    state.dialog = Some(Dialog::Users(UsersDialog::Confirm { name, change }));
    Vec::new()
}

/// Keys in this module's dialogs.
pub fn on_action(state: &mut State, layer: Layer, action: Action) -> Vec<Effect> {
    let Some(Dialog::Users(dialog)) = &mut state.dialog else {
        return Vec::new();
    };
    match (layer, dialog) {
        (Layer::UserAdd, UsersDialog::Add(form)) => match action {
            Action::Cancel => {
                state.dialog = None;
                Vec::new()
            }
            Action::FocusNext => {
                form.focus = match form.focus {
                    AddField::Name => AddField::Email,
                    AddField::Email => AddField::Role,
                    AddField::Role => AddField::Name,
                };
                Vec::new()
            }
            Action::Toggle if form.focus == AddField::Role => {
                form.admin = !form.admin;
                Vec::new()
            }
            Action::Confirm if form.waiting => Vec::new(),
            Action::Confirm => {
                let name = form.name.value.trim().to_owned();
                if name.is_empty() {
                    form.error = Some("Type the new user's name.".to_owned());
                    form.focus = AddField::Name;
                    return Vec::new();
                }
                let email = Some(form.email.value.trim().to_owned()).filter(|e| !e.is_empty());
                form.waiting = true;
                form.error = None;
                let body = ConsoleRequest::AddUser {
                    name: name.clone(),
                    role: form.role(),
                    email,
                    password: None,
                };
                vec![request(
                    state,
                    body,
                    Pending::Users(UsersPending::Add { name }),
                )]
            }
            _ => Vec::new(),
        },
        (Layer::UserAdded, UsersDialog::Added { .. }) => match action {
            Action::Confirm | Action::Cancel => {
                state.dialog = None;
                super::twofa::open_users(state)
            }
            _ => Vec::new(),
        },
        (Layer::UserConfirm, UsersDialog::Confirm { name, change }) => match action {
            Action::Yes => {
                let (name, change) = (name.clone(), *change);
                state.dialog = None;
                let body = change.request(name.clone());
                vec![request(
                    state,
                    body,
                    Pending::Users(UsersPending::Change { name, change }),
                )]
            }
            Action::No => {
                state.dialog = None;
                Vec::new()
            }
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Replies to this module's requests.
pub fn on_reply(
    state: &mut State,
    pending: UsersPending,
    result: Result<ConsoleReply, ProtocolError>,
) -> Vec<Effect> {
    state.dirty = true;
    match (pending, result) {
        (UsersPending::Add { .. }, Ok(ConsoleReply::UserAdded { user, enrolment })) => {
            match enrolment {
                Some(e) => {
                    state.dialog = Some(Dialog::Users(UsersDialog::Added {
                        name: user.name,
                        code: e.code.expose().to_owned(),
                        expires: e.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                    }));
                    Vec::new()
                }
                None => {
                    state.dialog = None;
                    set_status(state, StatusKind::Info, format!("{} added.", user.name));
                    super::twofa::open_users(state)
                }
            }
        }
        (UsersPending::Add { .. }, result) => {
            let text = match result {
                Err(e) => sentence(&e.message),
                Ok(_) => "The hub sent an unexpected answer.".to_owned(),
            };
            if let Some(Dialog::Users(UsersDialog::Add(form))) = &mut state.dialog {
                form.waiting = false;
                form.error = Some(text);
            }
            Vec::new()
        }
        (UsersPending::Change { name, change }, Ok(_)) => {
            set_status(state, StatusKind::Info, change.done(&name));
            super::twofa::open_users(state)
        }
        (UsersPending::Change { .. }, Err(e)) => {
            set_status(state, StatusKind::Error, sentence(&e.message));
            Vec::new()
        }
    }
}
