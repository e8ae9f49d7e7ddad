//! The 2FA, users and audit flows of `update`, driven by messages as the app drives them.

use crossterm::event::KeyCode;

use super::*;
use crate::console::keymap::Keymap;
use crate::console::net::NetEvent;
use crate::console::state::{LoginField, Screen};
use crate::console::update::test_support::{key, net, reply, requests, status_text, t0, type_text};
use crate::console::update::{Msg, Startup, start, update};
use crate::protocol::{AuditQuery, AuditRecord, Presence, UserInfo, WorkstationInfo};

const HUB: &str = "wss://hub.example.org:7443";
const FP: &str = "SHA256:aa";

fn new_state() -> State {
    State::new(t0(), Keymap::default(), vec!["dark".into()], 0)
}

/// The one request among `effects`.
fn one_request(effects: &[Effect]) -> (u64, ConsoleRequest) {
    let sent = requests(effects);
    assert_eq!(sent.len(), 1, "{sent:?}");
    sent.into_iter().next().expect("one request")
}

fn user(role: Role) -> UserInfo {
    UserInfo {
        id: "u1".into(),
        name: "ann".into(),
        email: "ann@example.org".into(),
        role,
        team_id: "t1".into(),
        team: "Blue".into(),
    }
}

fn status(state: TwoFactorState) -> TwoFactorStatus {
    TwoFactorStatus {
        state,
        required: state == TwoFactorState::Pending,
        global: false,
        enrolling: false,
    }
}

/// Logged in (preset) as `role`; the hub says 2FA is `tf`.
fn logged_in(role: Role, tf: TwoFactorState) -> State {
    let mut state = new_state();
    start(
        &mut state,
        Startup::Preset {
            hub: HUB.into(),
            fingerprint: FP.into(),
            token: "tok".into(),
        },
    );
    let effects = net(
        &mut state,
        NetEvent::LoggedIn {
            user: user(role),
            token: None,
        },
    );
    for (id, body) in requests(&effects) {
        let result = match body {
            ConsoleRequest::ListClients { .. } => ConsoleReply::Clients {
                next: None,
                total: None,
                clients: Vec::new(),
            },
            ConsoleRequest::ListWorkstations { .. } => ConsoleReply::Workstations {
                next: None,
                total: None,
                workstations: vec![workstation()],
            },
            ConsoleRequest::ListSessions { .. } => ConsoleReply::Sessions {
                next: None,
                total: None,
                sessions: Vec::new(),
            },
            ConsoleRequest::TwoFactorStatus => ConsoleReply::TwoFactor { status: status(tf) },
            other => panic!("unexpected request {other:?}"),
        };
        reply(&mut state, id, Ok(result));
    }
    assert!(state.pending.is_empty());
    state
}

fn workstation() -> WorkstationInfo {
    WorkstationInfo {
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
    }
}

fn login_command(effects: &[Effect]) -> (String, Option<String>) {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Net(NetCommand::Login { password, code, .. }) => {
                Some((password.clone(), code.clone()))
            }
            _ => None,
        })
        .expect("a login command")
}

/// Enter on the form, the pin known: the login command sent.
fn submit(state: &mut State) -> (String, Option<String>) {
    let effects = key(state, KeyCode::Enter);
    assert!(
        matches!(&effects[..], [Effect::LoadPin { .. }]),
        "{effects:?}"
    );
    let effects = update(
        state,
        Msg::PinLoaded {
            hub: HUB.into(),
            fingerprint: Some(FP.into()),
        },
    );
    login_command(&effects)
}

#[test]
fn the_login_form_asks_for_the_code_when_the_hub_does() {
    let mut state = new_state();
    start(
        &mut state,
        Startup::Form {
            hub: Some(HUB.into()),
            user: Some("ann".into()),
        },
    );
    type_text(&mut state, "plum tractor violet 7");
    assert_eq!(submit(&mut state), ("plum tractor violet 7".into(), None));
    net(
        &mut state,
        NetEvent::LoginFailed {
            error: ProtocolError::new(ErrorCode::TwoFactorRequired, "enter the code"),
        },
    );
    assert!(state.login.needs_code);
    assert_eq!(state.login.field, LoginField::Code);
    assert_eq!(
        state.login.password.value, "plum tractor violet 7",
        "the right password is kept"
    );
    assert!(state.login.error.is_none() && state.login.notice.is_some());
    // Enter without a code says what is missing and sends nothing.
    assert!(key(&mut state, KeyCode::Enter).is_empty());
    assert!(
        state
            .login
            .error
            .as_deref()
            .is_some_and(|e| e.contains("code"))
    );
    type_text(&mut state, "123456");
    assert_eq!(
        submit(&mut state),
        ("plum tractor violet 7".into(), Some("123456".into()))
    );
    // A wrong code: the error shows, the code field is cleared and keeps the focus.
    net(
        &mut state,
        NetEvent::LoginFailed {
            error: ProtocolError::new(ErrorCode::TwoFactorRequired, "the code is wrong or used"),
        },
    );
    assert_eq!(state.login.field, LoginField::Code);
    assert!(state.login.code.value.is_empty());
    assert!(
        state
            .login
            .error
            .as_deref()
            .is_some_and(|e| e.contains("wrong"))
    );
    // Tab walks through the code field only while it is shown.
    key(&mut state, KeyCode::Tab);
    assert_eq!(state.login.field, LoginField::Hub);
    let mut plain = new_state();
    plain.login.field = LoginField::Password;
    key(&mut plain, KeyCode::Tab);
    assert_eq!(plain.login.field, LoginField::Hub, "no code field to visit");
}

#[test]
fn pending_2fa_offers_activate_now_or_later_and_refused_sessions_bring_it_back() {
    let mut state = logged_in(Role::Technician, TwoFactorState::Pending);
    assert_eq!(state.dialog, Some(Dialog::TwoFactorOffer));
    assert_eq!(state.layer(), Layer::TwoFactorOffer);
    // Later: browse on.
    assert!(key(&mut state, KeyCode::Char('l')).is_empty());
    assert_eq!(state.dialog, None);
    // Connecting: the hub refuses, and the offer comes back.
    let (id, body) = one_request(&key(&mut state, KeyCode::Enter));
    assert!(matches!(body, ConsoleRequest::Connect { .. }));
    reply(
        &mut state,
        id,
        Err(ProtocolError::new(
            ErrorCode::TwoFactorSetupRequired,
            "two-factor authentication is required for you",
        )),
    );
    assert_eq!(state.dialog, Some(Dialog::TwoFactorOffer));
    assert!(
        state
            .status
            .as_ref()
            .is_some_and(|s| s.kind == StatusKind::Error)
    );
    // Now: enrolment starts.
    let (_, body) = one_request(&key(&mut state, KeyCode::Char('n')));
    assert_eq!(body, ConsoleRequest::TwoFactorEnable);
    assert!(matches!(state.dialog, Some(Dialog::Enrol(_))));
}

#[test]
fn enrolment_confirms_one_code_then_logs_in_again_with_2fa() {
    let mut state = logged_in(Role::Technician, TwoFactorState::Off);
    assert_eq!(state.dialog, None, "nothing to offer when 2FA is off");
    // The user menu: Enable 2FA is the first entry.
    key(&mut state, KeyCode::Char('m'));
    assert_eq!(state.layer(), Layer::UserMenu);
    let (id, body) = one_request(&key(&mut state, KeyCode::Enter));
    assert_eq!(body, ConsoleRequest::TwoFactorEnable);
    // Typing before the secret arrived goes nowhere.
    type_text(&mut state, "12");
    let uri = "otpauth://totp/Tether:ann?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Tether";
    reply(
        &mut state,
        id,
        Ok(ConsoleReply::TwoFactorEnrolment {
            uri: uri.into(),
            secret: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into(),
        }),
    );
    let Some(Dialog::Enrol(dialog)) = &state.dialog else {
        panic!("enrolment dialog")
    };
    assert_eq!(dialog.uri.as_deref(), Some(uri));
    assert!(dialog.code.value.is_empty());
    assert!(
        !format!("{:?}", state.dialog).contains("GEZDGNBV"),
        "never in a log"
    );
    // A short code is caught here.
    type_text(&mut state, "123");
    assert!(key(&mut state, KeyCode::Enter).is_empty());
    type_text(&mut state, "456");
    let (id, body) = one_request(&key(&mut state, KeyCode::Enter));
    assert_eq!(
        body,
        ConsoleRequest::TwoFactorConfirm {
            code: "123456".into()
        }
    );
    // Wrong: the error shows and the field is cleared for another try.
    reply(
        &mut state,
        id,
        Err(ProtocolError::new(
            ErrorCode::InvalidCredentials,
            "that code is not valid",
        )),
    );
    let Some(Dialog::Enrol(dialog)) = &state.dialog else {
        panic!("still enrolling")
    };
    assert!(dialog.error.is_some() && dialog.code.value.is_empty());
    type_text(&mut state, "654321");
    let (id, _) = one_request(&key(&mut state, KeyCode::Enter));
    let effects = reply(
        &mut state,
        id,
        Ok(ConsoleReply::TwoFactor {
            status: status(TwoFactorState::Active),
        }),
    );
    // Logged out, back at the form with the code field.
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Net(NetCommand::Logout)))
    );
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::ForgetLogin { .. }))
    );
    assert_eq!(state.screen, Screen::Login);
    // The enrolment dialog is gone with the login: it used to stay on "Checking…" over the
    // form until a key closed it.
    assert!(state.dialog.is_none(), "{:?}", state.dialog);
    assert_eq!(state.layer(), Layer::Login);
    assert!(state.dirty, "drawn without waiting for a key");
    assert!(state.login.needs_code);
    assert_eq!(state.login.user.value, "ann", "the name of who enrolled");
    assert_eq!(state.login.field, LoginField::Password);
    assert!(
        state
            .login
            .notice
            .as_deref()
            .is_some_and(|n| n.contains("log in again") || n.contains("Log in again"))
    );
}

#[test]
fn the_demo_fills_in_its_password_when_its_login_ends() {
    let mut state = logged_in(Role::Admin, TwoFactorState::Pending);
    state.demo_password = Some(Secret::new("demo-pw"));
    state.dialog = Some(Dialog::TwoFactorOffer);
    super::super::back_to_form(&mut state, None);
    assert_eq!(state.login.password.value, "demo-pw");
    assert!(state.dialog.is_none());
    // Logging in there again trusts the certificate the demo's login came with: no question.
    state.login.user = TextInput::new("ann");
    state.login.field = LoginField::Password;
    let effects = key(&mut state, KeyCode::Enter);
    let hub = match &effects[..] {
        [Effect::LoadPin { hub }] => hub.clone(),
        other => panic!("{other:?}"),
    };
    let effects = update(
        &mut state,
        Msg::PinLoaded {
            hub,
            fingerprint: None,
        },
    );
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Net(NetCommand::Login { .. }))),
        "{effects:?}"
    );
    assert!(
        state.dialog.is_none(),
        "no trust question: {:?}",
        state.dialog
    );
}

#[test]
fn admins_require_2fa_per_user_or_for_everyone_with_their_password() {
    let mut state = logged_in(Role::Admin, TwoFactorState::Active);
    let (id, body) = one_request(&key(&mut state, KeyCode::Char('U')));
    assert_eq!(
        body,
        ConsoleRequest::ListUsers {
            page: Default::default()
        }
    );
    assert_eq!(state.layer(), Layer::Users);
    let users = vec![
        UserTwoFactor {
            id: "u1".into(),
            name: "ann".into(),
            email: "ann@example.org".into(),
            role: Role::Admin,
            team_id: "t1".into(),
            team: "Blue".into(),
            state: TwoFactorState::Active,
            required: false,
            disabled: false,
        },
        UserTwoFactor {
            id: "u2".into(),
            name: "bob".into(),
            email: "bob@example.org".into(),
            role: Role::Technician,
            team_id: "t1".into(),
            team: "Blue".into(),
            state: TwoFactorState::Off,
            required: false,
            disabled: false,
        },
    ];
    reply(
        &mut state,
        id,
        Ok(ConsoleReply::Users {
            next: None,
            total: None,
            users: users.clone(),
            global: false,
        }),
    );
    key(&mut state, KeyCode::Char('j'));
    assert!(key(&mut state, KeyCode::Char('x')).is_empty(), "asks first");
    assert_eq!(state.layer(), Layer::AdminPassword);
    assert!(
        key(&mut state, KeyCode::Enter).is_empty(),
        "no password typed"
    );
    type_text(&mut state, "plum tractor violet 7");
    assert!(!format!("{:?}", state.dialog).contains("plum"));
    let (id, body) = one_request(&key(&mut state, KeyCode::Enter));
    assert_eq!(
        body,
        ConsoleRequest::SetUserTwoFactor {
            user: "bob".into(),
            required: true,
            password: "plum tractor violet 7".into(),
        }
    );
    // Done: the list reloads.
    let (_, body) = one_request(&reply(&mut state, id, Ok(ConsoleReply::Done)));
    assert_eq!(
        body,
        ConsoleRequest::ListUsers {
            page: Default::default()
        }
    );
    // The global switch: A, password, request.
    key(&mut state, KeyCode::Char('A'));
    type_text(&mut state, "wrong");
    let (id, body) = one_request(&key(&mut state, KeyCode::Enter));
    assert!(matches!(
        body,
        ConsoleRequest::SetGlobalTwoFactor { required: true, .. }
    ));
    reply(
        &mut state,
        id,
        Err(ProtocolError::new(
            ErrorCode::InvalidCredentials,
            "your password is wrong",
        )),
    );
    assert!(
        state
            .status
            .as_ref()
            .is_some_and(|s| s.kind == StatusKind::Error && s.text.contains("Nothing changed"))
    );
    // With the global setting on, per-user changes are not offered.
    state.twofa.global = true;
    assert!(key(&mut state, KeyCode::Char('x')).is_empty());
    assert_eq!(state.dialog, None);
    assert!(status_text(&state).contains("global"));
    key(&mut state, KeyCode::Esc);
    assert_eq!(state.view, View::Workstations);
}

#[test]
fn technicians_have_no_users_view() {
    let mut state = logged_in(Role::Technician, TwoFactorState::Off);
    assert!(key(&mut state, KeyCode::Char('U')).is_empty());
    assert_eq!(state.view, View::Workstations);
    key(&mut state, KeyCode::Char('m'));
    assert!(!menu_items(&state).contains(&MenuItem::Users));
}

#[test]
fn the_audit_view_filters_by_who_workstation_kind_and_time() {
    let mut state = logged_in(Role::Technician, TwoFactorState::Off);
    let (id, body) = one_request(&key(&mut state, KeyCode::Char('L')));
    assert_eq!(
        body,
        ConsoleRequest::SearchAudit {
            page: Default::default(),
            query: AuditQuery::default(),
            limit: AUDIT_PAGE,
            before: None,
        }
    );
    reply(
        &mut state,
        id,
        Ok(ConsoleReply::Audit {
            next: None,
            total: None,
            records: Vec::new(),
        }),
    );
    key(&mut state, KeyCode::Char('/'));
    assert_eq!(state.layer(), Layer::AuditFilter);
    type_text(
        &mut state,
        "user:bob ws:reception kind:login since:2026-03-01",
    );
    let (_, body) = one_request(&key(&mut state, KeyCode::Enter));
    let ConsoleRequest::SearchAudit { query, .. } = body else {
        panic!("a search")
    };
    assert_eq!(query.actor.as_deref(), Some("bob"));
    assert_eq!(query.workstation.as_deref(), Some("reception"));
    assert_eq!(query.kind.as_deref(), Some("login"));
    assert!(query.since.is_some() && query.until.is_none());
    assert_eq!(state.layer(), Layer::Audit);
    // A filter that does not parse says why and sends nothing.
    key(&mut state, KeyCode::Char('/'));
    type_text(&mut state, " until:tomorrow");
    assert!(key(&mut state, KeyCode::Enter).is_empty());
    assert!(
        state
            .twofa
            .audit
            .error
            .as_deref()
            .is_some_and(|e| e.contains("not a time"))
    );
    key(&mut state, KeyCode::Esc);
    key(&mut state, KeyCode::Esc);
    assert_eq!(state.view, View::Workstations);
}

#[test]
fn the_audit_view_loads_older_pages_past_the_end() {
    let mut state = logged_in(Role::Admin, TwoFactorState::Off);
    let (id, _) = one_request(&key(&mut state, KeyCode::Char('L')));
    let record = |id: i64| AuditRecord {
        id,
        at: t0(),
        actor: "ann".into(),
        actor_email: None,
        team_id: None,
        action: "login.ok".into(),
        target: None,
        detail: serde_json::json!({}),
        prev_hash: String::new(),
        hash: String::new(),
    };
    let page: Vec<AuditRecord> = (0..i64::from(AUDIT_PAGE))
        .map(|i| record(500 - i))
        .collect();
    reply(
        &mut state,
        id,
        Ok(ConsoleReply::Audit {
            next: None,
            total: None,
            records: page,
        }),
    );
    assert!(state.twofa.audit.more);
    assert!(
        key(&mut state, KeyCode::Char('j')).is_empty(),
        "not at the end yet"
    );
    // End, then one more: the page before the oldest shown.
    assert!(key(&mut state, KeyCode::End).is_empty());
    let (id, body) = one_request(&key(&mut state, KeyCode::Char('j')));
    assert_eq!(
        body,
        ConsoleRequest::SearchAudit {
            page: Default::default(),
            query: AuditQuery::default(),
            limit: AUDIT_PAGE,
            before: Some(301),
        }
    );
    reply(
        &mut state,
        id,
        Ok(ConsoleReply::Audit {
            next: None,
            total: None,
            records: vec![record(300), record(299)],
        }),
    );
    assert_eq!(state.twofa.audit.records.len(), AUDIT_PAGE as usize + 2);
    assert_eq!(state.twofa.audit.selected, AUDIT_PAGE as usize);
    assert!(!state.twofa.audit.more, "a short page is the last");
    key(&mut state, KeyCode::End);
    assert!(key(&mut state, KeyCode::Char('j')).is_empty());
}
