//! Support credentials in the console: the issue form, the reveal-once dialog, the
//! already-active question, and the guest's side of the login form.

use super::{Effect, request, sentence, set_status};
use crate::console::action::Action;
use crate::console::state::{
    CredentialsChoice, CredentialsDialog, CredentialsStage, Dialog, LoginField, Pane, Pending,
    State, StatusKind,
};
use crate::protocol::credentials::{CREDENTIAL_PRESET_HOURS, MAX_CREDENTIAL_MINUTES};
use crate::protocol::{ConsoleReply, ConsoleRequest, CredentialTarget, ProtocolError};

/// Longest custom duration in hours (7 days).
pub const MAX_HOURS: u32 = MAX_CREDENTIAL_MINUTES / 60;
/// The presets the form steps through: the product's, then the longest allowed.
const STEPS: [u32; 6] = [
    CREDENTIAL_PRESET_HOURS[0],
    CREDENTIAL_PRESET_HOURS[1],
    CREDENTIAL_PRESET_HOURS[2],
    CREDENTIAL_PRESET_HOURS[3],
    CREDENTIAL_PRESET_HOURS[4],
    MAX_HOURS,
];

/// "8 hours", "1 hour", "7 days", "30 hours".
pub fn hours_label(hours: u32) -> String {
    match hours {
        1 => "1 hour".to_owned(),
        h if h % 24 == 0 && h >= 48 => format!("{} days", h / 24),
        h => format!("{h} hours"),
    }
}

/// `c` on the main screen: for the client selected in the clients pane, else for the selected
/// workstation.
pub(super) fn open(state: &mut State) -> Vec<Effect> {
    if state.guest.is_some() {
        set_status(
            state,
            StatusKind::Warning,
            "Support credentials are issued by technicians, not with support credentials.",
        );
        return Vec::new();
    }
    let target = if state.focus == Pane::Clients {
        match &state.selected_client {
            Some(id) => state.clients.iter().find(|c| &c.id == id).map(|c| {
                (
                    CredentialTarget::Client {
                        client: c.id.clone(),
                    },
                    c.name.clone(),
                )
            }),
            None => {
                set_status(
                    state,
                    StatusKind::Warning,
                    "Select one client (not All clients), or a workstation in the table.",
                );
                return Vec::new();
            }
        }
    } else {
        state.selected().map(|w| {
            (
                CredentialTarget::Workstation {
                    workstation: w.id.clone(),
                },
                w.hostname.clone(),
            )
        })
    };
    let Some((target, target_label)) = target else {
        set_status(
            state,
            StatusKind::Warning,
            "Select a workstation first (or a client in the clients pane).",
        );
        return Vec::new();
    };
    state.dialog = Some(Dialog::Credentials(CredentialsDialog {
        target,
        target_label,
        stage: CredentialsStage::Choose(CredentialsChoice::default()),
    }));
    Vec::new()
}

pub(super) fn on_action(state: &mut State, action: Action) -> Vec<Effect> {
    let Some(Dialog::Credentials(dialog)) = &mut state.dialog else {
        return Vec::new();
    };
    let label = dialog.target_label.clone();
    match (&mut dialog.stage, action) {
        (CredentialsStage::Choose(choice), action) => match action {
            Action::Up => choice.row = choice.row.saturating_sub(1),
            Action::Down => choice.row = (choice.row + 1).min(3),
            Action::Shorter => {
                choice.hours = STEPS
                    .iter()
                    .rev()
                    .find(|&&h| h < choice.hours)
                    .copied()
                    .unwrap_or(STEPS[0]);
            }
            Action::Longer => {
                choice.hours = STEPS
                    .iter()
                    .find(|&&h| h > choice.hours)
                    .copied()
                    .unwrap_or(MAX_HOURS);
            }
            Action::HourLess => choice.hours = choice.hours.saturating_sub(1).max(1),
            Action::HourMore => choice.hours = (choice.hours + 1).min(MAX_HOURS),
            Action::Toggle => match choice.row {
                1 => choice.scopes.control = !choice.scopes.control,
                2 => choice.scopes.chat = !choice.scopes.chat,
                3 => choice.scopes.history = !choice.scopes.history,
                _ => {}
            },
            Action::Confirm => {
                let (minutes, scopes) = (choice.hours * 60, choice.scopes);
                let target = dialog.target.clone();
                dialog.stage = CredentialsStage::Waiting {
                    what: format!("Issuing support credentials for {label}…"),
                };
                return vec![request(
                    state,
                    ConsoleRequest::IssueCredentials {
                        target,
                        minutes,
                        scopes,
                    },
                    Pending::Credentials {
                        target_label: label,
                    },
                )];
            }
            Action::Cancel => state.dialog = None,
            _ => {}
        },
        (CredentialsStage::Waiting { .. }, Action::Cancel) => state.dialog = None,
        (CredentialsStage::Revealed { reveal, .. }, action) => {
            let text = match action {
                Action::Copy => reveal.block(),
                Action::CopyHub => reveal.hub.clone(),
                Action::CopyUser => reveal.user.clone(),
                Action::CopyPassword => reveal.password.expose().to_owned(),
                Action::CopyCode => reveal.code.expose().to_owned(),
                Action::CopyExpiry => reveal.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                Action::Cancel => {
                    // The only copy of the password and code goes with the dialog.
                    state.dialog = None;
                    set_status(
                        state,
                        StatusKind::Info,
                        format!(
                            "Support credentials for {label} closed; they cannot be shown again."
                        ),
                    );
                    return Vec::new();
                }
                _ => return Vec::new(),
            };
            return vec![Effect::Copy(text)];
        }
        (CredentialsStage::AlreadyActive { credential, .. }, action) => {
            let id = credential.id.clone();
            let (body, what) = match action {
                Action::RevokeCredentials => (
                    ConsoleRequest::RevokeCredentials { credential: id },
                    format!("Revoking the support credentials for {label}…"),
                ),
                Action::RegenerateCredentials => (
                    ConsoleRequest::RegenerateCredentials { credential: id },
                    format!("Regenerating the support credentials for {label}…"),
                ),
                Action::Cancel => {
                    state.dialog = None;
                    return Vec::new();
                }
                _ => return Vec::new(),
            };
            dialog.stage = CredentialsStage::Waiting { what };
            return vec![request(
                state,
                body,
                Pending::Credentials {
                    target_label: label,
                },
            )];
        }
        (
            CredentialsStage::Confirm {
                credential,
                regenerate,
            },
            action,
        ) => {
            let (id, regenerate) = (credential.id.clone(), *regenerate);
            match action {
                Action::Yes => {
                    let (body, what) = if regenerate {
                        (
                            ConsoleRequest::RegenerateCredentials { credential: id },
                            format!("Regenerating the support credentials for {label}…"),
                        )
                    } else {
                        (
                            ConsoleRequest::RevokeCredentials { credential: id },
                            format!("Revoking the support credentials for {label}…"),
                        )
                    };
                    dialog.stage = CredentialsStage::Waiting { what };
                    return vec![request(
                        state,
                        body,
                        Pending::Credentials {
                            target_label: label,
                        },
                    )];
                }
                Action::Cancel => state.dialog = None,
                _ => {}
            }
        }
        _ => {}
    }
    Vec::new()
}

/// The hub's answer to an issue, revoke or regenerate.
pub(super) fn on_reply(
    state: &mut State,
    target_label: &str,
    result: Result<ConsoleReply, ProtocolError>,
) -> Vec<Effect> {
    let waiting = matches!(
        &state.dialog,
        Some(Dialog::Credentials(CredentialsDialog {
            stage: CredentialsStage::Waiting { .. },
            ..
        }))
    );
    let stage = match result {
        Ok(ConsoleReply::CredentialsIssued { credential, reveal }) => {
            // Shown once, even if the technician closed the dialog meanwhile: otherwise the
            // credentials would exist with nobody ever having seen them.
            Some(CredentialsStage::Revealed {
                credential: *credential,
                reveal: *reveal,
            })
        }
        Ok(ConsoleReply::CredentialsAlreadyActive {
            credential,
            message,
        }) => Some(CredentialsStage::AlreadyActive {
            credential: *credential,
            message,
        }),
        Ok(ConsoleReply::Credential { credential }) => {
            if waiting {
                state.dialog = None;
            }
            set_status(
                state,
                StatusKind::Success,
                format!(
                    "Revoked the support credentials for {}; their guests are disconnected.",
                    credential.target_label
                ),
            );
            None
        }
        Ok(_) => None,
        Err(error) => {
            if waiting {
                state.dialog = None;
            }
            set_status(
                state,
                StatusKind::Error,
                format!(
                    "Support credentials for {target_label}: {}",
                    sentence(&error.message)
                ),
            );
            None
        }
    };
    if let Some(stage) = stage {
        match &mut state.dialog {
            Some(Dialog::Credentials(dialog)) => dialog.stage = stage,
            other => {
                let target = match &stage {
                    CredentialsStage::Revealed { credential, .. }
                    | CredentialsStage::AlreadyActive { credential, .. } => {
                        credential.target.clone()
                    }
                    _ => return Vec::new(),
                };
                // Another dialog is open: the reveal takes over (see above).
                *other = Some(Dialog::Credentials(CredentialsDialog {
                    target,
                    target_label: target_label.to_owned(),
                    stage,
                }));
            }
        }
        state.dirty = true;
    }
    Vec::new()
}

/// The login form's guest switch.
pub(super) fn toggle_guest(state: &mut State) {
    let form = &mut state.login;
    form.guest = !form.guest;
    // Guests have no 2FA: the code field is the security code from now on (or goes).
    form.needs_code = false;
    form.code.clear();
    form.error = None;
    if !form.guest && form.field == LoginField::Code {
        form.field = LoginField::Password;
    }
    form.notice = Some(if form.guest {
        "Guest login: the user name, password and security code your technician gave you."
            .to_owned()
    } else {
        "Technician login: your own account.".to_owned()
    });
}

/// The next login field; the code field only where the form has one (a guest, or 2FA).
pub(super) fn next_field(has_code: bool, field: LoginField) -> LoginField {
    match field {
        LoginField::Password if !has_code => LoginField::Hub,
        other => other.next(),
    }
}

pub(super) fn prev_field(has_code: bool, field: LoginField) -> LoginField {
    match field {
        LoginField::Hub if !has_code => LoginField::Password,
        other => other.prev(),
    }
}

/// The field the login is submitted from.
pub(super) fn last_field(has_code: bool) -> LoginField {
    if has_code {
        LoginField::Code
    } else {
        LoginField::Password
    }
}

/// A short banner for a guest's main screen.
pub fn guest_banner(state: &State) -> Option<String> {
    let guest = state.guest.as_ref()?;
    Some(format!(
        "Guest · {} · {} · until {}",
        guest.target_label,
        guest.scopes.label(),
        guest.expires_at.format("%H:%M UTC")
    ))
}

/// Whether a main-screen action is a technician's only (the hub refuses it for guests).
pub(super) fn technician_only(action: Action) -> bool {
    matches!(
        action,
        Action::AddClient
            | Action::ShowLink
            | Action::RequestAccess
            | Action::WithdrawAccess
            | Action::SupportCredentials
            | Action::Otp
            | Action::Outbox
            | Action::RequireOtp
            | Action::UserMenu
            | Action::Users
            | Action::AuditLog
            | Action::CredentialsList
    )
}

#[cfg(test)]
mod tests {

    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::super::{Msg, Startup, start, update};
    use super::*;
    use crate::console::keymap::Keymap;
    use crate::console::net::{NetCommand, NetEvent};
    use crate::console::state::{LoginPhase, Screen};
    use crate::console::update::test_support::{key, requests, status_text, t0};
    use crate::protocol::{
        ClientInfo, CredentialInfo, CredentialScopes, CredentialState, GuestInfo, Presence,
        RevealedCredential, Role, UserInfo, WorkstationInfo,
    };

    fn user(name: &str) -> UserInfo {
        UserInfo {
            id: format!("u-{name}"),
            name: name.into(),
            email: format!("{name}@example.org"),
            role: Role::Technician,
            team_id: "t1".into(),
            team: "Blue".into(),
        }
    }

    /// On the main screen with one client and one selected workstation.
    fn main_screen() -> State {
        let mut state = State::new(t0(), Keymap::default(), vec!["dark".into()], 0);
        state.screen = Screen::Main;
        state.clients = vec![ClientInfo {
            id: "c1".into(),
            name: "Acme".into(),
            created_at: t0(),
        }];
        state.workstations = vec![WorkstationInfo {
            id: "w1".into(),
            client_id: "c1".into(),
            client_name: "Acme".into(),
            hostname: "reception".into(),
            os: "Windows 11".into(),
            user: "maria".into(),
            screen: None,
            agent_version: "0.1.0".into(),
            presence: Presence::Online,
            last_seen: t0(),
            enrolled_at: t0(),
            unattended: Default::default(),
            requires: Default::default(),
            otp_required: false,
        }]
        .into();
        state.selected_workstation = Some("w1".into());
        state
    }

    fn credential(target: CredentialTarget) -> CredentialInfo {
        CredentialInfo {
            id: "sc_1".into(),
            user: "guest-abcd2345".into(),
            target,
            target_label: "reception".into(),
            scopes: CredentialScopes::default(),
            issued_by: "ann".into(),
            issued_at: t0(),
            expires_at: t0() + chrono::Duration::hours(8),
            revoked_at: None,
            state: CredentialState::Active,
        }
    }

    fn reveal() -> RevealedCredential {
        RevealedCredential {
            hub: "wss://hub.example.org:7443".into(),
            fingerprint: "SHA256:aa".into(),
            user: "guest-abcd2345".into(),
            password: "Zq7pW3mK9xR2tB6nV4cH".into(),
            code: "402913".into(),
            expires_at: t0() + chrono::Duration::hours(8),
        }
    }

    fn stage(state: &State) -> &CredentialsStage {
        match &state.dialog {
            Some(Dialog::Credentials(d)) => &d.stage,
            other => panic!("no credentials dialog: {other:?}"),
        }
    }

    fn choice(state: &State) -> CredentialsChoice {
        match stage(state) {
            CredentialsStage::Choose(c) => *c,
            other => panic!("not choosing: {other:?}"),
        }
    }

    #[test]
    fn the_form_chooses_duration_and_scopes_and_issues() {
        let mut state = main_screen();
        key(&mut state, KeyCode::Char('c'));
        assert_eq!(choice(&state).hours, 8, "8 hours by default");
        assert!(!choice(&state).scopes.control, "view only by default");
        key(&mut state, KeyCode::Right);
        assert_eq!(choice(&state).hours, 24);
        key(&mut state, KeyCode::Char('+'));
        assert_eq!(choice(&state).hours, 25, "custom");
        key(&mut state, KeyCode::Left);
        assert_eq!(choice(&state).hours, 24);
        for _ in 0..6 {
            key(&mut state, KeyCode::Right);
        }
        assert_eq!(choice(&state).hours, MAX_HOURS, "7 days at most");
        key(&mut state, KeyCode::Char('+'));
        assert_eq!(choice(&state).hours, MAX_HOURS);
        for _ in 0..6 {
            key(&mut state, KeyCode::Left);
        }
        key(&mut state, KeyCode::Char('-'));
        assert_eq!(choice(&state).hours, 1, "1 hour at least");
        // Scopes: control and history on, chat off.
        key(&mut state, KeyCode::Down);
        key(&mut state, KeyCode::Char(' '));
        key(&mut state, KeyCode::Down);
        key(&mut state, KeyCode::Down);
        key(&mut state, KeyCode::Char(' '));
        key(&mut state, KeyCode::Down);
        assert_eq!(choice(&state).row, 3);
        let effects = key(&mut state, KeyCode::Enter);
        let [(_, body)] = &requests(&effects)[..] else {
            panic!("one request: {effects:?}")
        };
        assert_eq!(
            body,
            &ConsoleRequest::IssueCredentials {
                target: CredentialTarget::Workstation {
                    workstation: "w1".into()
                },
                minutes: 60,
                scopes: CredentialScopes {
                    control: true,
                    chat: false,
                    history: true
                },
            }
        );
        assert!(matches!(stage(&state), CredentialsStage::Waiting { .. }));
    }

    #[test]
    fn in_the_clients_pane_the_target_is_the_client() {
        let mut state = main_screen();
        key(&mut state, KeyCode::Tab);
        key(&mut state, KeyCode::Char('c'));
        assert!(state.dialog.is_none(), "All clients is no target");
        assert_eq!(
            state.status.as_ref().map(|s| s.kind),
            Some(StatusKind::Warning)
        );
        key(&mut state, KeyCode::Char('j'));
        key(&mut state, KeyCode::Char('c'));
        let Some(Dialog::Credentials(dialog)) = &state.dialog else {
            panic!("dialog")
        };
        assert_eq!(
            dialog.target,
            CredentialTarget::Client {
                client: "c1".into()
            }
        );
        assert_eq!(dialog.target_label, "Acme");
    }

    #[test]
    fn revealed_once_with_a_copy_for_the_block_and_each_field() {
        let mut state = main_screen();
        key(&mut state, KeyCode::Char('c'));
        let effects = key(&mut state, KeyCode::Enter);
        let (id, _) = requests(&effects)[0].clone();
        let target = CredentialTarget::Workstation {
            workstation: "w1".into(),
        };
        update(
            &mut state,
            Msg::Net(NetEvent::Reply {
                id,
                result: Ok(ConsoleReply::CredentialsIssued {
                    credential: Box::new(credential(target)),
                    reveal: Box::new(reveal()),
                }),
            }),
        );
        let copies = [
            ('c', reveal().block()),
            ('h', "wss://hub.example.org:7443".to_owned()),
            ('u', "guest-abcd2345".to_owned()),
            ('p', "Zq7pW3mK9xR2tB6nV4cH".to_owned()),
            ('s', "402913".to_owned()),
            ('e', "2026-03-02 17:30 UTC".to_owned()),
        ];
        for (k, want) in copies {
            let effects = key(&mut state, KeyCode::Char(k));
            assert!(
                matches!(&effects[..], [Effect::Copy(text)] if *text == want),
                "{k}: {effects:?}"
            );
        }
        assert!(reveal().block().contains("Password: Zq7pW3mK9xR2tB6nV4cH"));
        key(&mut state, KeyCode::Esc);
        assert!(state.dialog.is_none());
        // Nothing in the state can show them again.
        assert!(!format!("{state:?}").contains("Zq7pW3mK9xR2tB6nV4cH"));
    }

    #[test]
    fn a_reveal_arriving_after_the_dialog_closed_is_still_shown() {
        let mut state = main_screen();
        key(&mut state, KeyCode::Char('c'));
        let (id, _) = requests(&key(&mut state, KeyCode::Enter))[0].clone();
        key(&mut state, KeyCode::Esc);
        assert!(state.dialog.is_none());
        let target = CredentialTarget::Workstation {
            workstation: "w1".into(),
        };
        update(
            &mut state,
            Msg::Net(NetEvent::Reply {
                id,
                result: Ok(ConsoleReply::CredentialsIssued {
                    credential: Box::new(credential(target)),
                    reveal: Box::new(reveal()),
                }),
            }),
        );
        assert!(matches!(stage(&state), CredentialsStage::Revealed { .. }));
    }

    #[test]
    fn already_active_offers_revoke_regenerate_and_cancel() {
        let mut state = main_screen();
        key(&mut state, KeyCode::Char('c'));
        let (id, _) = requests(&key(&mut state, KeyCode::Enter))[0].clone();
        let active = credential(CredentialTarget::Workstation {
            workstation: "w1".into(),
        });
        let answer = |state: &mut State, id| {
            update(
                state,
                Msg::Net(NetEvent::Reply {
                    id,
                    result: Ok(ConsoleReply::CredentialsAlreadyActive {
                        credential: Box::new(active.clone()),
                        message: "already active and will expire in 8 hours".into(),
                    }),
                }),
            );
        };
        answer(&mut state, id);
        assert!(matches!(
            stage(&state),
            CredentialsStage::AlreadyActive { .. }
        ));
        // Regenerate.
        let effects = key(&mut state, KeyCode::Char('g'));
        assert!(matches!(
            &requests(&effects)[..],
            [(_, ConsoleRequest::RegenerateCredentials { credential })] if credential == "sc_1"
        ));
        // Again, then revoke: the dialog closes with the news.
        key(&mut state, KeyCode::Esc);
        key(&mut state, KeyCode::Char('c'));
        let (id, _) = requests(&key(&mut state, KeyCode::Enter))[0].clone();
        answer(&mut state, id);
        let effects = key(&mut state, KeyCode::Char('r'));
        let [(id, ConsoleRequest::RevokeCredentials { credential })] = &requests(&effects)[..]
        else {
            panic!("revoke: {effects:?}")
        };
        assert_eq!(credential, "sc_1");
        let mut revoked = active.clone();
        revoked.state = CredentialState::Revoked;
        update(
            &mut state,
            Msg::Net(NetEvent::Reply {
                id: *id,
                result: Ok(ConsoleReply::Credential {
                    credential: Box::new(revoked),
                }),
            }),
        );
        assert!(state.dialog.is_none());
        assert!(
            status_text(&state).contains("Revoked"),
            "{:?}",
            state.status
        );
        // Cancel keeps them.
        key(&mut state, KeyCode::Char('c'));
        let (id, _) = requests(&key(&mut state, KeyCode::Enter))[0].clone();
        answer(&mut state, id);
        assert!(requests(&key(&mut state, KeyCode::Esc)).is_empty());
        assert!(state.dialog.is_none());
    }

    #[test]
    fn guest_login_sends_the_code_and_limits_the_main_screen() {
        let mut state = State::new(t0(), Keymap::default(), vec!["dark".into()], 0);
        start(
            &mut state,
            Startup::Form {
                hub: Some("hub.example.org:7443".into()),
                user: None,
            },
        );
        update(
            &mut state,
            Msg::Key(KeyEvent::new(KeyCode::Char('g'), KeyModifiers::CONTROL)),
        );
        assert!(state.login.guest);
        for c in "guest-abcd2345".chars() {
            key(&mut state, KeyCode::Char(c));
        }
        key(&mut state, KeyCode::Enter);
        for c in "Zq7pW3mK9xR2tB6nV4cH".chars() {
            key(&mut state, KeyCode::Char(c));
        }
        // Enter on the password moves to the code; an empty code is refused.
        assert!(key(&mut state, KeyCode::Enter).is_empty());
        assert_eq!(state.login.field, LoginField::Code);
        key(&mut state, KeyCode::Enter);
        assert!(state.login.error.is_some(), "the code is needed");
        for c in "402913".chars() {
            key(&mut state, KeyCode::Char(c));
        }
        let effects = key(&mut state, KeyCode::Enter);
        assert!(matches!(&effects[..], [Effect::LoadPin { .. }]));
        let effects = update(
            &mut state,
            Msg::PinLoaded {
                hub: "wss://hub.example.org:7443".into(),
                fingerprint: Some("SHA256:aa".into()),
            },
        );
        assert!(
            matches!(&effects[..], [Effect::Net(NetCommand::GuestLogin { user, code, .. })]
                if user == "guest-abcd2345" && code == "402913"),
            "{effects:?}"
        );
        assert_eq!(state.login.phase, LoginPhase::LoggingIn);
        let guest = GuestInfo {
            credential: "sc_1".into(),
            target: CredentialTarget::Workstation {
                workstation: "w1".into(),
            },
            target_label: "reception".into(),
            scopes: CredentialScopes::default(),
            issued_by: "ann".into(),
            expires_at: t0() + chrono::Duration::hours(8),
        };
        let effects = update(
            &mut state,
            Msg::Net(NetEvent::GuestLoggedIn {
                user: user("guest-abcd2345"),
                guest: Box::new(guest),
                token: Some(("tok".into(), t0())),
            }),
        );
        assert!(effects.iter().any(|e| matches!(e, Effect::SaveLogin(_))));
        assert_eq!(state.screen, Screen::Main);
        assert!(state.login.code.value.is_empty(), "the code is not kept");
        assert_eq!(
            guest_banner(&state).as_deref(),
            Some("Guest · reception · view only · until 17:30 UTC")
        );
        // A view-only guest's connection is view only, and nobody is asked to accept.
        state.workstations = main_screen().workstations;
        state.selected_workstation = Some("w1".into());
        let effects = key(&mut state, KeyCode::Enter);
        assert!(
            matches!(
                &requests(&effects)[..],
                [(
                    _,
                    ConsoleRequest::Connect {
                        view_only: true,
                        ..
                    }
                )]
            ),
            "{effects:?}"
        );
        assert!(matches!(
            &state.dialog,
            Some(Dialog::Connecting(d)) if d.view_only && !d.attended
        ));
        state.dialog = None;
        // Technicians' verbs are not offered to a guest.
        assert!(!state.can(Action::RequestAccess) && !state.can(Action::SupportCredentials));
        assert!(requests(&key(&mut state, KeyCode::Char('a'))).is_empty());
        assert!(state.dialog.is_none());
        key(&mut state, KeyCode::Char('c'));
        assert!(state.dialog.is_none());
        // Switching back to a technician's login drops the guest.
        update(
            &mut state,
            Msg::Net(NetEvent::LoginFailed {
                error: ProtocolError::new(crate::protocol::ErrorCode::Expired, "expired"),
            }),
        );
        assert!(state.guest.is_none());
        assert!(guest_banner(&state).is_none());
        assert_eq!(state.screen, Screen::Login);
        assert!(
            state
                .login
                .error
                .as_deref()
                .is_some_and(|e| e.contains("support credentials ended")),
            "{:?}",
            state.login.error
        );
    }
}
