//! `update` driven by messages, as the app drives it.

use chrono::Duration;
use crossterm::event::{KeyCode, KeyModifiers};

use super::*;
use crate::console::keymap::Keymap;
use crate::console::update::test_support::{key, net, requests, status_text, t0, type_text};
use crate::protocol::{ClientInfo, LinkInfo, Presence, Role, UserInfo, WorkstationInfo};

const HUB: &str = "wss://hub.example.org:7443";
const FP: &str = "SHA256:aa";

fn new_state() -> State {
    State::new(
        t0(),
        Keymap::default(),
        vec!["dark".into(), "light".into()],
        0,
    )
}

fn ctrl(state: &mut State, c: char) -> Vec<Effect> {
    update(
        state,
        Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)),
    )
}

fn user() -> UserInfo {
    UserInfo {
        id: "u1".into(),
        name: "ann".into(),
        email: "ann@example.org".into(),
        role: Role::Technician,
        team_id: "t1".into(),
        team: "Blue".into(),
    }
}

fn client(id: &str, name: &str) -> ClientInfo {
    ClientInfo {
        id: id.into(),
        name: name.into(),
        created_at: t0(),
    }
}

fn ws(
    id: &str,
    client: (&str, &str),
    hostname: &str,
    os: &str,
    user: &str,
    presence: Presence,
) -> WorkstationInfo {
    WorkstationInfo {
        id: id.into(),
        client_id: client.0.into(),
        client_name: client.1.into(),
        hostname: hostname.into(),
        os: os.into(),
        user: user.into(),
        screen: None,
        agent_version: "0.1.0".into(),
        presence,
        last_seen: t0(),
        enrolled_at: t0(),
        unattended: Default::default(),
        requires: Default::default(),
        otp_required: false,
    }
}

const ACME: (&str, &str) = ("c1", "Acme");
const BAKERY: (&str, &str) = ("c2", "Bakery");

/// Logged in (preset), both lists answered by id.
fn logged_in() -> State {
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
            user: user(),
            token: None,
        },
    );
    for (id, body) in requests(&effects) {
        let reply = match body {
            ConsoleRequest::ListClients { .. } => ConsoleReply::Clients {
                next: None,
                total: None,
                clients: vec![client("c2", "Bakery"), client("c1", "Acme")],
            },
            ConsoleRequest::ListWorkstations { client: None, .. } => ConsoleReply::Workstations {
                next: None,
                total: None,
                workstations: vec![
                    ws(
                        "w1",
                        ACME,
                        "reception",
                        "Windows 11",
                        "maria",
                        Presence::Online,
                    ),
                    ws("w2", ACME, "xray", "Windows 10", "xray", Presence::Offline),
                    ws(
                        "w3",
                        BAKERY,
                        "till",
                        "Ubuntu 24.04",
                        "kasse",
                        Presence::InSession,
                    ),
                    ws(
                        "w4",
                        BAKERY,
                        "office-mac",
                        "macOS 15",
                        "jonas",
                        Presence::Offline,
                    ),
                ],
            },
            ConsoleRequest::ListSessions { .. } => ConsoleReply::Sessions {
                next: None,
                total: None,
                sessions: Vec::new(),
            },
            // 2FA off: no "activate" offer.
            ConsoleRequest::TwoFactorStatus => ConsoleReply::TwoFactor {
                status: Default::default(),
            },
            other => panic!("unexpected request {other:?}"),
        };
        net(
            &mut state,
            NetEvent::Reply {
                id,
                result: Ok(reply),
            },
        );
    }
    state
}

fn hostnames(state: &State) -> Vec<&str> {
    state
        .visible_workstations()
        .iter()
        .map(|w| w.hostname.as_str())
        .collect()
}

#[test]
fn login_sends_both_list_requests_with_distinct_ids() {
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
            user: user(),
            token: None,
        },
    );
    let sent = requests(&effects);
    assert_eq!(sent.len(), 4, "the lists and the technician's 2FA status");
    assert_ne!(sent[0].0, sent[1].0);
    assert_ne!(sent[1].0, sent[2].0);
    assert!(
        sent.iter()
            .any(|(_, b)| *b == ConsoleRequest::TwoFactorStatus)
    );
    assert!(sent.iter().any(|(_, b)| *b
        == ConsoleRequest::ListClients {
            page: Default::default()
        }));
    assert!(sent.iter().any(|(_, b)| *b
        == ConsoleRequest::ListSessions {
            page: Default::default()
        }));
    assert!(sent.iter().any(|(_, b)| *b
        == ConsoleRequest::ListWorkstations {
            client: None,
            filter: None,
            page: Default::default()
        }));
    assert_eq!(state.screen, Screen::Main);
    assert_eq!(state.connection, Connection::Connected);
}

#[test]
fn replies_are_matched_by_id_not_by_order() {
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
            user: user(),
            token: None,
        },
    );
    let sent = requests(&effects);
    let id_of = |wanted: &ConsoleRequest| {
        sent.iter()
            .find(|(_, b)| b == wanted)
            .map(|(id, _)| *id)
            .expect("sent")
    };
    let clients_id = id_of(&ConsoleRequest::ListClients {
        page: Default::default(),
    });
    let workstations_id = id_of(&ConsoleRequest::ListWorkstations {
        client: None,
        filter: None,
        page: Default::default(),
    });

    // An unknown id changes nothing.
    net(
        &mut state,
        NetEvent::Reply {
            id: 999,
            result: Ok(ConsoleReply::Clients {
                next: None,
                total: None,
                clients: vec![client("cx", "X")],
            }),
        },
    );
    assert!(state.clients.is_empty());
    // The workstations reply arrives first.
    let workstations = vec![ws(
        "w1",
        ACME,
        "reception",
        "Windows 11",
        "maria",
        Presence::Online,
    )];
    net(
        &mut state,
        NetEvent::Reply {
            id: workstations_id,
            result: Ok(ConsoleReply::Workstations {
                workstations,
                next: None,
                total: None,
            }),
        },
    );
    net(
        &mut state,
        NetEvent::Reply {
            id: clients_id,
            result: Ok(ConsoleReply::Clients {
                next: None,
                total: None,
                clients: vec![client("c1", "Acme")],
            }),
        },
    );
    assert_eq!(state.clients.len(), 1);
    assert_eq!(hostnames(&state), ["reception"]);
    assert_eq!(
        state.pending.values().collect::<Vec<_>>(),
        [
            &Pending::ListSessions,
            &Pending::TwoFa(super::twofa::TwoFaPending::Status)
        ],
        "only the sessions (and the 2FA status) are still to come"
    );
    // A second reply with the same id is ignored: the request is no longer pending.
    net(
        &mut state,
        NetEvent::Reply {
            id: clients_id,
            result: Ok(ConsoleReply::Clients {
                next: None,
                total: None,
                clients: vec![],
            }),
        },
    );
    assert_eq!(state.clients.len(), 1);
}

#[test]
fn filter_narrows_rows_live_and_esc_clears_it() {
    let mut state = logged_in();
    assert_eq!(
        hostnames(&state),
        ["reception", "xray", "office-mac", "till"]
    );
    key(&mut state, KeyCode::Char('/'));
    assert_eq!(state.layer(), Layer::Filter);
    type_text(&mut state, "WIN");
    assert_eq!(
        hostnames(&state),
        ["reception", "xray"],
        "matches the OS, case-insensitively"
    );
    key(&mut state, KeyCode::Backspace);
    key(&mut state, KeyCode::Backspace);
    key(&mut state, KeyCode::Backspace);
    type_text(&mut state, "bak");
    assert_eq!(
        hostnames(&state),
        ["office-mac", "till"],
        "matches the client"
    );
    type_text(&mut state, " kas");
    assert_eq!(
        hostnames(&state),
        ["till"],
        "every word must match (the user here)"
    );
    assert_eq!(
        state.selected_workstation.as_deref(),
        Some("w3"),
        "selection follows the visible rows"
    );
    key(&mut state, KeyCode::Enter);
    assert_eq!(state.layer(), Layer::Main);
    assert_eq!(hostnames(&state), ["till"], "Enter keeps the filter");
    key(&mut state, KeyCode::Char('/'));
    key(&mut state, KeyCode::Esc);
    assert_eq!(state.filter.value, "");
    assert_eq!(hostnames(&state).len(), 4);
}

#[test]
fn presence_event_updates_the_row_and_counts() {
    let mut state = logged_in();
    let acme = |state: &State| {
        state
            .client_rows()
            .into_iter()
            .find(|r| r.name == "Acme")
            .expect("row")
    };
    assert_eq!((acme(&state).online, acme(&state).total), (1, 2));
    let mut xray = ws(
        "w2",
        ACME,
        "xray",
        "Windows 10",
        "xray",
        Presence::InSession,
    );
    xray.last_seen = t0() + Duration::seconds(30);
    net(
        &mut state,
        NetEvent::Event(HubEvent::Workstation { workstation: xray }),
    );
    let row = state
        .workstations
        .iter()
        .find(|w| w.id == "w2")
        .expect("w2");
    assert_eq!(row.presence, Presence::InSession);
    assert_eq!(row.last_seen, t0() + Duration::seconds(30));
    assert_eq!(state.workstations.len(), 4, "upserted, not added");
    assert_eq!((acme(&state).online, acme(&state).total), (2, 2));
    // A new workstation is added.
    net(
        &mut state,
        NetEvent::Event(HubEvent::Workstation {
            workstation: ws("w9", ACME, "new", "Debian", "x", Presence::Online),
        }),
    );
    assert_eq!(acme(&state).total, 3);
    assert!(state.dirty);
}

#[test]
fn client_pane_selection_filters_the_table() {
    let mut state = logged_in();
    key(&mut state, KeyCode::Tab);
    assert_eq!(state.focus, Pane::Clients);
    key(&mut state, KeyCode::Char('j'));
    assert_eq!(
        state.selected_client.as_deref(),
        Some("c1"),
        "clients are sorted by name: Acme first"
    );
    assert_eq!(hostnames(&state), ["reception", "xray"]);
    key(&mut state, KeyCode::End);
    assert_eq!(state.selected_client.as_deref(), Some("c2"));
    key(&mut state, KeyCode::Home);
    assert_eq!(state.selected_client, None, "All clients");
}

#[test]
fn first_use_probes_then_trusts_then_logs_in_and_saves_the_token() {
    let mut state = new_state();
    start(
        &mut state,
        Startup::Form {
            hub: None,
            user: None,
        },
    );
    assert_eq!(state.login.field, LoginField::Hub);
    type_text(&mut state, "hub.example.org:7443");
    key(&mut state, KeyCode::Tab);
    type_text(&mut state, "ann");
    key(&mut state, KeyCode::Enter);
    assert_eq!(
        state.login.field,
        LoginField::Password,
        "Enter moves on until the password"
    );
    type_text(&mut state, "pw");
    let effects = key(&mut state, KeyCode::Enter);
    assert!(
        matches!(&effects[..], [Effect::LoadPin { hub }] if hub == HUB),
        "{effects:?}"
    );
    let effects = update(
        &mut state,
        Msg::PinLoaded {
            hub: HUB.into(),
            fingerprint: None,
        },
    );
    assert!(matches!(&effects[..], [Effect::Net(NetCommand::Probe { hub })] if hub == HUB));
    net(
        &mut state,
        NetEvent::CertificateSeen {
            hub: HUB.into(),
            fingerprint: FP.into(),
        },
    );
    assert_eq!(state.layer(), Layer::Trust);
    let effects = key(&mut state, KeyCode::Char('y'));
    assert!(
        matches!(&effects[0], Effect::Trust { hub, fingerprint } if hub == HUB && fingerprint == FP)
    );
    assert!(
        matches!(&effects[1], Effect::Net(NetCommand::Login { user, password, .. }) if user == "ann" && password == "pw")
    );
    let expires = t0() + Duration::days(30);
    let effects = net(
        &mut state,
        NetEvent::LoggedIn {
            user: user(),
            token: Some(("tok".into(), expires)),
        },
    );
    let saved = effects.iter().find_map(|e| match e {
        Effect::SaveLogin(login) => Some(login.clone()),
        _ => None,
    });
    assert_eq!(
        saved,
        Some(StoredLogin {
            hub: HUB.into(),
            user: "ann".into(),
            token: "tok".into(),
            expires_at: expires
        })
    );
    assert_eq!(
        state.login.password.value, "",
        "the password is not kept after login"
    );
}

#[test]
fn declining_trust_sends_nothing() {
    let mut state = new_state();
    start(
        &mut state,
        Startup::Form {
            hub: Some(HUB.into()),
            user: Some("ann".into()),
        },
    );
    type_text(&mut state, "pw");
    key(&mut state, KeyCode::Enter);
    update(
        &mut state,
        Msg::PinLoaded {
            hub: HUB.into(),
            fingerprint: None,
        },
    );
    net(
        &mut state,
        NetEvent::CertificateSeen {
            hub: HUB.into(),
            fingerprint: FP.into(),
        },
    );
    let effects = key(&mut state, KeyCode::Char('n'));
    assert!(effects.is_empty());
    assert_eq!(state.login.phase, LoginPhase::Editing);
    assert!(
        state
            .login
            .notice
            .as_deref()
            .is_some_and(|n| n.contains("not trusted"))
    );
}

#[test]
fn known_hub_logs_in_with_the_stored_pin() {
    let mut state = new_state();
    start(
        &mut state,
        Startup::Form {
            hub: Some("hub.example.org:7443".into()),
            user: Some("ann".into()),
        },
    );
    type_text(&mut state, "pw");
    let effects = key(&mut state, KeyCode::Enter);
    assert!(
        matches!(&effects[..], [Effect::LoadPin { hub }] if hub == HUB),
        "the address is normalised"
    );
    let effects = update(
        &mut state,
        Msg::PinLoaded {
            hub: HUB.into(),
            fingerprint: Some(FP.into()),
        },
    );
    assert!(
        matches!(&effects[..], [Effect::Net(NetCommand::Login { fingerprint, .. })] if fingerprint == FP)
    );
    assert_eq!(state.layer(), Layer::Login, "no trust dialog");
}

#[test]
fn certificate_mismatch_never_logs_in() {
    let mut state = new_state();
    start(
        &mut state,
        Startup::Form {
            hub: Some(HUB.into()),
            user: Some("ann".into()),
        },
    );
    type_text(&mut state, "pw");
    key(&mut state, KeyCode::Enter);
    update(
        &mut state,
        Msg::PinLoaded {
            hub: HUB.into(),
            fingerprint: Some(FP.into()),
        },
    );
    let effects = net(
        &mut state,
        NetEvent::CertificateMismatch {
            hub: HUB.into(),
            expected: FP.into(),
            seen: "SHA256:bb".into(),
        },
    );
    assert!(effects.is_empty());
    assert_eq!(state.layer(), Layer::Mismatch);
    assert_eq!(state.screen, Screen::Login);
    assert!(state.session.is_none());
    assert_eq!(state.login.password.value, "", "the password is dropped");
    let effects = key(&mut state, KeyCode::Char('y'));
    assert!(effects.is_empty(), "y does not trust the new certificate");
    key(&mut state, KeyCode::Esc);
    assert_eq!(state.layer(), Layer::Login);
}

#[test]
fn refused_stored_login_falls_back_to_the_prefilled_form_and_forgets_it() {
    let mut state = new_state();
    let effects = start(
        &mut state,
        Startup::Stored {
            hub: HUB.into(),
            user: "ann".into(),
            token: "old".into(),
            fingerprint: FP.into(),
        },
    );
    assert!(
        matches!(&effects[..], [Effect::Net(NetCommand::Resume { token, fingerprint, .. })] if token == "old" && fingerprint == FP)
    );
    let effects = net(
        &mut state,
        NetEvent::LoginFailed {
            error: ProtocolError::new(ErrorCode::Expired, "login expired"),
        },
    );
    assert!(matches!(&effects[..], [Effect::ForgetLogin { hub }] if hub == HUB));
    assert_eq!(state.screen, Screen::Login);
    assert_eq!(
        (
            state.login.hub.value.as_str(),
            state.login.user.value.as_str()
        ),
        (HUB, "ann")
    );
    assert_eq!(state.login.field, LoginField::Password);
    assert!(!state.login.phase.busy());
}

#[test]
fn unreachable_stored_hub_keeps_the_token() {
    let mut state = new_state();
    start(
        &mut state,
        Startup::Stored {
            hub: HUB.into(),
            user: "ann".into(),
            token: "t".into(),
            fingerprint: FP.into(),
        },
    );
    let effects = net(
        &mut state,
        NetEvent::ConnectFailed {
            hub: HUB.into(),
            error: "connection refused".into(),
        },
    );
    assert!(
        effects.is_empty(),
        "not forgotten: the hub may just be down"
    );
    assert!(
        state
            .login
            .error
            .as_deref()
            .is_some_and(|e| e.contains("connection refused"))
    );
}

#[test]
fn stored_login_waits_for_a_hub_that_is_down_and_resumes_by_itself() {
    let mut state = new_state();
    start(
        &mut state,
        Startup::Stored {
            hub: HUB.into(),
            user: "ann".into(),
            token: "t".into(),
            fingerprint: FP.into(),
        },
    );
    // The link task keeps the token and retries: it reports the hub down, not a failure.
    let effects = net(
        &mut state,
        NetEvent::Disconnected {
            reason: "connection refused; retrying in 2 s".into(),
        },
    );
    assert!(effects.is_empty(), "neither forgotten nor asked again");
    assert!(matches!(state.login.phase, LoginPhase::Resuming { .. }));
    assert!(state.login.password.value.is_empty() && state.login.error.is_none());
    assert!(
        state
            .login
            .notice
            .as_deref()
            .is_some_and(|n| n.contains("saved login is kept"))
    );
    net(
        &mut state,
        NetEvent::LoggedIn {
            user: user(),
            token: None,
        },
    );
    assert_eq!(state.screen, Screen::Main);
}

#[test]
fn unreachable_hub_keeps_the_typed_password_for_the_retry() {
    let mut state = new_state();
    start(
        &mut state,
        Startup::Form {
            hub: Some(HUB.into()),
            user: Some("ann".into()),
        },
    );
    type_text(&mut state, "pw");
    key(&mut state, KeyCode::Enter);
    update(
        &mut state,
        Msg::PinLoaded {
            hub: HUB.into(),
            fingerprint: None,
        },
    );
    net(
        &mut state,
        NetEvent::ConnectFailed {
            hub: HUB.into(),
            error: "timed out".into(),
        },
    );
    assert_eq!(state.login.password.value, "pw");
    let effects = key(&mut state, KeyCode::Enter);
    assert!(
        matches!(&effects[..], [Effect::LoadPin { .. }]),
        "Enter retries at once"
    );
}

#[test]
fn token_refused_after_a_reconnect_returns_to_login_and_forgets_it() {
    let mut state = new_state();
    start(
        &mut state,
        Startup::Stored {
            hub: HUB.into(),
            user: "ann".into(),
            token: "t".into(),
            fingerprint: FP.into(),
        },
    );
    net(
        &mut state,
        NetEvent::LoggedIn {
            user: user(),
            token: None,
        },
    );
    net(
        &mut state,
        NetEvent::Disconnected {
            reason: "hub restarted".into(),
        },
    );
    let effects = net(
        &mut state,
        NetEvent::LoginFailed {
            error: ProtocolError::new(ErrorCode::Expired, "login expired"),
        },
    );
    assert!(matches!(&effects[..], [Effect::ForgetLogin { hub }] if hub == HUB));
    assert_eq!(state.screen, Screen::Login);
    assert!(
        state
            .login
            .error
            .as_deref()
            .is_some_and(|e| e.contains("Log in again"))
    );
}

#[test]
fn a_preset_login_is_never_forgotten_from_the_store() {
    let mut state = new_state();
    start(
        &mut state,
        Startup::Preset {
            hub: HUB.into(),
            fingerprint: FP.into(),
            token: "demo".into(),
        },
    );
    let effects = net(
        &mut state,
        NetEvent::LoginFailed {
            error: ProtocolError::new(ErrorCode::Expired, "expired"),
        },
    );
    assert!(effects.is_empty());
    assert_eq!(state.screen, Screen::Login);
}

#[test]
fn wrong_password_says_what_to_do() {
    let mut state = new_state();
    start(
        &mut state,
        Startup::Form {
            hub: Some(HUB.into()),
            user: Some("ann".into()),
        },
    );
    type_text(&mut state, "bad");
    key(&mut state, KeyCode::Enter);
    update(
        &mut state,
        Msg::PinLoaded {
            hub: HUB.into(),
            fingerprint: Some(FP.into()),
        },
    );
    net(
        &mut state,
        NetEvent::LoginFailed {
            error: ProtocolError::invalid_credentials(),
        },
    );
    let error = state.login.error.clone().expect("error shown");
    assert!(
        error.contains("invalid user name or password") && error.contains("Check the user name"),
        "{error}"
    );
}

#[test]
fn error_replies_show_in_the_status_line_with_a_next_step() {
    let mut state = logged_in();
    key(&mut state, KeyCode::Char('a'));
    type_text(&mut state, "Acme");
    let effects = key(&mut state, KeyCode::Enter);
    let [(id, ConsoleRequest::AddClient { name })] = &requests(&effects)[..] else {
        panic!("{effects:?}")
    };
    assert_eq!(name, "Acme");
    net(
        &mut state,
        NetEvent::Reply {
            id: *id,
            result: Err(ProtocolError::new(
                ErrorCode::Conflict,
                "a client named Acme exists",
            )),
        },
    );
    let status = state.status.clone().expect("status");
    assert_eq!(status.kind, StatusKind::Error);
    assert!(
        status.text.contains("a client named Acme exists")
            && status.text.contains("Choose another name"),
        "{}",
        status.text
    );
    // Errors stay until something replaces them; other news fades after ten seconds.
    update(&mut state, Msg::Tick(t0() + Duration::seconds(60)));
    assert!(state.status.is_some());
}

#[test]
fn add_client_selects_it_and_offers_the_link() {
    let mut state = logged_in();
    key(&mut state, KeyCode::Char('a'));
    let effects = key(&mut state, KeyCode::Enter);
    assert!(effects.is_empty(), "an empty name is refused");
    assert!(matches!(
        &state.dialog,
        Some(Dialog::AddClient { error: Some(_), .. })
    ));
    type_text(&mut state, "  Carpenter Ltd ");
    let effects = key(&mut state, KeyCode::Enter);
    let [(id, ConsoleRequest::AddClient { name })] = &requests(&effects)[..] else {
        panic!("{effects:?}")
    };
    assert_eq!(name, "Carpenter Ltd");
    net(
        &mut state,
        NetEvent::Reply {
            id: *id,
            result: Ok(ConsoleReply::Client {
                client: client("c3", "Carpenter Ltd"),
            }),
        },
    );
    assert_eq!(state.selected_client.as_deref(), Some("c3"));
    assert!(status_text(&state).contains("Press l"));
    let effects = key(&mut state, KeyCode::Char('l'));
    assert!(
        matches!(&requests(&effects)[..], [(_, ConsoleRequest::ListLinks { client, .. })] if client == "c3"),
        "l looks for the client's link first: {effects:?}"
    );
}

/// A link of client c1, issued at `created` (minutes after t0), for 7 days.
fn link_of_c1(id: &str, created: i64) -> LinkInfo {
    LinkInfo {
        id: id.into(),
        client_id: "c1".into(),
        created_at: t0() + Duration::minutes(created),
        expires_at: t0() + Duration::minutes(created) + Duration::days(7),
        revoked: false,
        uses: 0,
    }
}

/// `l`, answered with the client's `links`: the link dialog as it then stands.
fn open_link_dialog(state: &mut State, links: Vec<LinkInfo>) -> LinkDialog {
    let effects = key(state, KeyCode::Char('l'));
    let [(id, ConsoleRequest::ListLinks { client, .. })] = &requests(&effects)[..] else {
        panic!("{effects:?}")
    };
    assert_eq!(client, "c1");
    net(
        state,
        NetEvent::Reply {
            id: *id,
            result: Ok(ConsoleReply::Links {
                links,
                next: None,
                total: None,
            }),
        },
    );
    let Some(Dialog::Link(dialog)) = &state.dialog else {
        panic!("no link dialog: {:?}", state.dialog)
    };
    dialog.clone()
}

#[test]
fn l_shows_the_current_link_and_issues_a_new_one_only_when_confirmed() {
    let mut state = logged_in();
    // A revoked link, an expired one and two valid ones: the newest valid one is shown. The
    // hub keeps only hashes, so a link issued elsewhere has no text to copy.
    let mut revoked = link_of_c1("l-revoked", 30);
    revoked.revoked = true;
    let mut expired = link_of_c1("l-expired", 0);
    expired.expires_at = t0() - Duration::minutes(1);
    let dialog = open_link_dialog(
        &mut state,
        vec![
            revoked,
            link_of_c1("l-new", 20),
            link_of_c1("l-old", 10),
            expired,
        ],
    );
    assert_eq!(
        dialog
            .link
            .as_ref()
            .map(|(l, url)| (l.id.as_str(), url.is_none())),
        Some(("l-new", true))
    );
    assert!(requests(&key(&mut state, KeyCode::Char('c'))).is_empty());
    assert!(
        status_text(&state).contains("issued elsewhere"),
        "{}",
        status_text(&state)
    );
    // n asks before issuing; n again (no) issues nothing and closes the question.
    assert!(key(&mut state, KeyCode::Char('n')).is_empty());
    assert_eq!(state.layer(), Layer::Confirm);
    assert!(key(&mut state, KeyCode::Char('n')).is_empty());
    assert!(state.dialog.is_none());
    // A stray key in the question does nothing; y issues.
    open_link_dialog(&mut state, vec![]);
    key(&mut state, KeyCode::Char('n'));
    assert!(key(&mut state, KeyCode::Char('l')).is_empty());
    assert_eq!(state.layer(), Layer::Confirm);
    let effects = key(&mut state, KeyCode::Char('y'));
    let [
        (
            id,
            ConsoleRequest::CreateLink {
                client,
                valid_days: None,
            },
        ),
    ] = &requests(&effects)[..]
    else {
        panic!("{effects:?}")
    };
    assert_eq!(client, "c1");
    net(
        &mut state,
        NetEvent::Reply {
            id: *id,
            result: Ok(ConsoleReply::Link {
                link: link_of_c1("l-issued", 40),
                url: "tether://h/enrol/t?fp=x".into(),
            }),
        },
    );
    key(&mut state, KeyCode::Esc);
    // The next l shows the link issued here, with its text to copy: no new link.
    let dialog = open_link_dialog(&mut state, vec![link_of_c1("l-issued", 40)]);
    assert_eq!(
        dialog.link.and_then(|(_, url)| url).as_deref(),
        Some("tether://h/enrol/t?fp=x")
    );
    let effects = key(&mut state, KeyCode::Char('c'));
    assert!(matches!(&effects[..], [Effect::Copy(url)] if url == "tether://h/enrol/t?fp=x"));
}

#[test]
fn link_dialog_copies_and_revokes() {
    let mut state = logged_in();
    // All clients shown: the link is for the selected workstation's client (c1), which has none.
    let dialog = open_link_dialog(&mut state, vec![]);
    assert!(dialog.link.is_none() && !dialog.loading);
    key(&mut state, KeyCode::Char('n'));
    let effects = key(&mut state, KeyCode::Enter);
    let [(id, ConsoleRequest::CreateLink { client, .. })] = &requests(&effects)[..] else {
        panic!("{effects:?}")
    };
    assert_eq!(client, "c1");
    assert!(
        key(&mut state, KeyCode::Char('c')).is_empty(),
        "nothing to copy yet"
    );
    let link = LinkInfo {
        id: "l1".into(),
        client_id: "c1".into(),
        created_at: t0(),
        expires_at: t0() + Duration::days(7),
        revoked: false,
        uses: 0,
    };
    net(
        &mut state,
        NetEvent::Reply {
            id: *id,
            result: Ok(ConsoleReply::Link {
                link,
                url: "tether://h/enrol/t?fp=x".into(),
            }),
        },
    );
    let effects = key(&mut state, KeyCode::Char('y'));
    assert!(matches!(&effects[..], [Effect::Copy(url)] if url == "tether://h/enrol/t?fp=x"));
    update(&mut state, Msg::Copied(Ok(CopyMethod::Osc52)));
    assert_eq!(
        state.status.as_ref().map(|s| s.text.as_str()),
        Some("Copied (OSC 52)")
    );

    // Revoking cannot be undone: asked first; n keeps it and comes back to nothing open.
    assert!(key(&mut state, KeyCode::Char('x')).is_empty());
    assert_eq!(state.layer(), Layer::Confirm);
    key(&mut state, KeyCode::Char('n'));
    assert!(state.dialog.is_none());
    let dialog = open_link_dialog(&mut state, vec![link_of_c1("l1", 0)]);
    assert!(dialog.link.is_some());
    key(&mut state, KeyCode::Char('x'));
    let effects = key(&mut state, KeyCode::Char('y'));
    let [(revoke_id, ConsoleRequest::RevokeLink { link })] = &requests(&effects)[..] else {
        panic!("{effects:?}")
    };
    assert_eq!(link, "l1");
    assert_eq!(
        state.layer(),
        Layer::Link,
        "the link dialog shows it being revoked"
    );
    assert!(
        requests(&key(&mut state, KeyCode::Char('x'))).is_empty(),
        "one revoke at a time"
    );
    net(
        &mut state,
        NetEvent::Reply {
            id: *revoke_id,
            result: Ok(ConsoleReply::Done),
        },
    );
    let Some(Dialog::Link(dialog)) = &state.dialog else {
        panic!("dialog closed")
    };
    assert!(dialog.link.as_ref().is_some_and(|(l, _)| l.revoked));
    assert!(
        key(&mut state, KeyCode::Char('c')).is_empty(),
        "a revoked link is not copied"
    );
    key(&mut state, KeyCode::Esc);
    assert!(state.dialog.is_none());
}

#[test]
fn disconnect_then_reconnect_reloads_the_lists() {
    let mut state = logged_in();
    net(
        &mut state,
        NetEvent::Disconnected {
            reason: "hub restarted".into(),
        },
    );
    assert!(matches!(state.connection, Connection::Reconnecting { .. }));
    assert_eq!(
        state.status.as_ref().map(|s| s.kind),
        Some(StatusKind::Warning)
    );
    assert_eq!(
        state.workstations.len(),
        4,
        "the last known lists stay on screen"
    );
    let effects = net(
        &mut state,
        NetEvent::LoggedIn {
            user: user(),
            token: None,
        },
    );
    let bodies: Vec<_> = requests(&effects).into_iter().map(|(_, b)| b).collect();
    assert_eq!(bodies.len(), 3);
    assert!(
        bodies.contains(&ConsoleRequest::ListSessions {
            page: Default::default()
        }),
        "sessions reload too"
    );
    assert_eq!(state.connection, Connection::Connected);
    assert_eq!(
        state.status.as_ref().map(|s| s.text.as_str()),
        Some("Reconnected.")
    );
}

#[test]
fn tick_moves_the_injected_clock() {
    let mut state = logged_in();
    state.dirty = false;
    update(&mut state, Msg::Tick(t0() + Duration::seconds(1)));
    assert_eq!(state.now, t0() + Duration::seconds(1));
    assert!(state.dirty, "ages on screen changed");
}

#[test]
fn quit_closes_the_link_first_from_any_screen() {
    let mut state = logged_in();
    let effects = key(&mut state, KeyCode::Char('q'));
    assert!(matches!(
        &effects[..],
        [Effect::Net(NetCommand::Shutdown), Effect::Quit]
    ));
    let mut state = new_state();
    start(
        &mut state,
        Startup::Form {
            hub: None,
            user: None,
        },
    );
    assert!(
        key(&mut state, KeyCode::Char('q')).is_empty(),
        "q types in the login form"
    );
    assert_eq!(state.login.hub.value, "q");
    assert!(matches!(
        &ctrl(&mut state, 'c')[..],
        [Effect::Net(NetCommand::Shutdown), Effect::Quit]
    ));
}

#[test]
fn quit_with_sessions_open_asks_first_and_the_safe_answer_is_the_default() {
    let mut state = logged_in();
    session_event(&mut state, session("s1", ("w1", "reception"), "ann", 3));
    session_event(&mut state, session("s2", ("w3", "till"), "bob", 1));
    assert!(key(&mut state, KeyCode::Char('q')).is_empty(), "asks first");
    let Some(Dialog::Confirm(confirm)) = &state.dialog else {
        panic!("{:?}", state.dialog)
    };
    assert_eq!(confirm.then, Confirmed::Quit);
    assert!(
        confirm.text.contains("reception") && !confirm.text.contains("till"),
        "only yours"
    );
    // Keys that are not an answer do nothing; n and Esc keep the console.
    for c in ['l', 'u', 'x', ' '] {
        assert!(key(&mut state, KeyCode::Char(c)).is_empty());
        assert_eq!(state.layer(), Layer::Confirm);
    }
    assert!(key(&mut state, KeyCode::Char('n')).is_empty());
    assert!(state.dialog.is_none() && !state.quitting);
    key(&mut state, KeyCode::Char('q'));
    assert!(key(&mut state, KeyCode::Esc).is_empty());
    assert!(!state.quitting);
    // y quits; so does the quit key pressed again (Ctrl-C twice).
    key(&mut state, KeyCode::Char('q'));
    assert!(matches!(
        &key(&mut state, KeyCode::Char('y'))[..],
        [Effect::Net(NetCommand::Shutdown), Effect::Quit]
    ));
    let mut state = logged_in();
    session_event(&mut state, session("s1", ("w1", "reception"), "ann", 3));
    assert!(ctrl(&mut state, 'c').is_empty());
    assert!(matches!(
        &ctrl(&mut state, 'c')[..],
        [Effect::Net(NetCommand::Shutdown), Effect::Quit]
    ));
}

#[test]
fn theme_cycles_and_help_opens() {
    let mut state = logged_in();
    key(&mut state, KeyCode::Char('t'));
    assert_eq!(state.theme_name(), "light");
    key(&mut state, KeyCode::Char('t'));
    assert_eq!(state.theme_name(), "dark");
    key(&mut state, KeyCode::Char('?'));
    assert_eq!(state.layer(), Layer::Help);
    key(&mut state, KeyCode::Char('?'));
    assert_eq!(state.layer(), Layer::Main);
}

#[test]
fn refresh_requests_every_list() {
    let mut state = logged_in();
    let effects = key(&mut state, KeyCode::Char('r'));
    let bodies: Vec<_> = requests(&effects).into_iter().map(|(_, b)| b).collect();
    assert_eq!(
        bodies,
        [
            ConsoleRequest::ListClients {
                page: Default::default()
            },
            ConsoleRequest::ListWorkstations {
                client: None,
                filter: None,
                page: Default::default()
            },
            ConsoleRequest::ListSessions {
                page: Default::default()
            },
        ]
    );
}

#[test]
fn table_scrolls_only_when_the_selection_leaves_the_view() {
    let mut state = logged_in();
    update(
        &mut state,
        Msg::Resize {
            width: 80,
            height: 24,
        },
    );
    let many = (0..40).map(|i| {
        ws(
            &format!("m{i:02}"),
            ACME,
            &format!("pc-{i:02}"),
            "Windows 11",
            "u",
            Presence::Online,
        )
    });
    for workstation in many {
        net(
            &mut state,
            NetEvent::Event(HubEvent::Workstation { workstation }),
        );
    }
    key(&mut state, KeyCode::Home);
    assert_eq!(state.page_rows(), 18);
    for _ in 0..17 {
        key(&mut state, KeyCode::Down);
    }
    assert_eq!(state.table_offset, 0, "row 17 is still on the first page");
    key(&mut state, KeyCode::Down);
    assert_eq!(state.table_offset, 1);
    key(&mut state, KeyCode::Up);
    assert_eq!(
        state.table_offset, 1,
        "moving up inside the view does not scroll"
    );
    key(&mut state, KeyCode::End);
    assert_eq!(state.table_offset, 44 - 18);
    key(&mut state, KeyCode::PageUp);
    assert_eq!(
        state.table_offset,
        43 - 18,
        "a page up from the last row shows the new selection at the top"
    );
    key(&mut state, KeyCode::Home);
    assert_eq!(state.table_offset, 0);
}

#[test]
fn help_scroll_stops_at_the_end() {
    let mut state = logged_in();
    update(
        &mut state,
        Msg::Resize {
            width: 80,
            height: 24,
        },
    );
    key(&mut state, KeyCode::Char('?'));
    for _ in 0..1000 {
        key(&mut state, KeyCode::Char('j'));
    }
    let Some(Dialog::Help { scroll }) = state.dialog else {
        panic!("help closed")
    };
    assert!(scroll > 0);
    assert_eq!(scroll, state.help_max_scroll());
    key(&mut state, KeyCode::Char('k'));
    assert!(
        matches!(state.dialog, Some(Dialog::Help { scroll: s }) if s == scroll - 1),
        "one key press scrolls back"
    );
}

#[test]
fn esc_abandons_a_login_attempt() {
    let mut state = new_state();
    start(
        &mut state,
        Startup::Form {
            hub: Some(HUB.into()),
            user: Some("ann".into()),
        },
    );
    type_text(&mut state, "pw");
    key(&mut state, KeyCode::Enter);
    update(
        &mut state,
        Msg::PinLoaded {
            hub: HUB.into(),
            fingerprint: Some(FP.into()),
        },
    );
    assert!(state.login.phase.busy());
    type_text(&mut state, "x");
    assert_eq!(
        state.login.password.value, "pw",
        "the form is read-only while waiting"
    );
    key(&mut state, KeyCode::Esc);
    assert!(!state.login.phase.busy());
    let effects = net(
        &mut state,
        NetEvent::LoggedIn {
            user: user(),
            token: Some(("t".into(), t0())),
        },
    );
    assert!(
        effects.is_empty(),
        "a late answer neither logs in nor stores a token"
    );
    assert_eq!(state.screen, Screen::Login);
}

// ---------------------------------------------------------------------------------------------
// Access: unattended access, connecting, sessions

use crate::protocol::{
    AuthMethod, SecretRequirements, SessionInfo, TechnicianRef, UnattendedState,
};

/// Logged in, with the access state and required secrets of one workstation set.
fn with_access(id: &str, unattended: UnattendedState, requires: SecretRequirements) -> State {
    let mut state = logged_in();
    assert!(state.workstations.update(id, |row| {
        row.unattended = unattended;
        row.requires = requires;
    }));
    state
}

const PASSCODE: SecretRequirements = SecretRequirements {
    passcode: true,
    password: false,
};
const NOTHING: SecretRequirements = SecretRequirements {
    passcode: false,
    password: false,
};

fn session(id: &str, workstation: (&str, &str), technician: &str, minutes_ago: i64) -> SessionInfo {
    SessionInfo {
        id: id.into(),
        workstation_id: workstation.0.into(),
        hostname: workstation.1.into(),
        technician: TechnicianRef {
            name: technician.into(),
            email: format!("{technician}@example.org"),
        },
        method: AuthMethod::Unattended,
        secrets: vec![],
        view_only: false,
        started_at: t0() - Duration::minutes(minutes_ago),
        ended_at: None,
        end_reason: None,
    }
}

fn session_event(state: &mut State, session: SessionInfo) -> Vec<Effect> {
    net(state, NetEvent::Event(HubEvent::Session { session }))
}

#[test]
fn u_requests_unattended_access_for_the_selected_row() {
    let mut state = with_access("w1", UnattendedState::Denied, NOTHING);
    assert_eq!(state.selected_workstation.as_deref(), Some("w1"));
    // A question appears on the end user's screen: asked first, Esc asks nobody.
    assert!(key(&mut state, KeyCode::Char('u')).is_empty());
    assert_eq!(state.layer(), Layer::Confirm);
    assert!(requests(&key(&mut state, KeyCode::Esc)).is_empty());
    assert!(state.dialog.is_none());
    key(&mut state, KeyCode::Char('u'));
    let effects = key(&mut state, KeyCode::Char('y'));
    let [(id, body)] = &requests(&effects)[..] else {
        panic!("expected one request, got {effects:?}");
    };
    assert_eq!(
        *body,
        ConsoleRequest::RequestAccess {
            workstation: "w1".into()
        }
    );
    // The hub answers with the row, now requested: the table shows it at once.
    let mut row = state.workstations[0].clone();
    row.unattended = UnattendedState::Requested;
    net(
        &mut state,
        NetEvent::Reply {
            id: *id,
            result: Ok(ConsoleReply::Workstation {
                workstation: row.clone(),
            }),
        },
    );
    assert_eq!(state.workstations[0].unattended, UnattendedState::Requested);
    assert!(status_text(&state).contains("their answer shows here"));
    // Asking again while requested sends nothing and says why.
    assert!(key(&mut state, KeyCode::Char('u')).is_empty());
    assert!(status_text(&state).contains("Already asked"));
    // The end user grants: every console hears it.
    row.unattended = UnattendedState::Granted;
    net(
        &mut state,
        NetEvent::Event(HubEvent::Workstation { workstation: row }),
    );
    assert_eq!(
        status_text(&state),
        "The end user of reception granted unattended access."
    );
    // An offline row is not asked.
    key(&mut state, KeyCode::Char('j'));
    assert_eq!(state.selected_workstation.as_deref(), Some("w2"));
    assert!(key(&mut state, KeyCode::Char('u')).is_empty());
    assert!(status_text(&state).contains("xray is offline"));
}

#[test]
fn enter_asks_for_the_required_secret_and_sends_it_once() {
    let mut state = with_access("w1", UnattendedState::Granted, PASSCODE);
    assert!(key(&mut state, KeyCode::Enter).is_empty(), "asks first");
    assert_eq!(state.layer(), Layer::Secret);
    // Enter with nothing typed says what to type.
    assert!(key(&mut state, KeyCode::Enter).is_empty());
    let Some(Dialog::Secret(prompt)) = &state.dialog else {
        panic!("prompt closed");
    };
    assert!(
        prompt
            .error
            .as_deref()
            .is_some_and(|e| e.contains("temporary passcode"))
    );
    // Printable keys type (even q), pasting works too.
    type_text(&mut state, "q7");
    update(&mut state, Msg::Paste("X2k".into()));
    assert!(
        !format!("{state:?}").contains("q7X2k"),
        "the typed value never shows in debug output"
    );
    let effects = key(&mut state, KeyCode::Enter);
    let [
        (
            _,
            ConsoleRequest::Connect {
                workstation,
                secret,
                view_only,
                otp: None,
            },
        ),
    ] = &requests(&effects)[..]
    else {
        panic!("expected one Connect, got {effects:?}");
    };
    assert_eq!(workstation, "w1");
    assert_eq!(secret.as_ref().map(Secret::expose), Some("q7X2k"));
    assert!(!view_only);
    assert!(
        matches!(&state.dialog, Some(Dialog::Connecting(d)) if !d.attended),
        "waits for the workstation (unattended access is granted)"
    );
    assert_eq!(state.layer(), Layer::Connecting);
    assert!(
        !format!("{state:?}").contains("q7X2k")
            && !format!("{:?}", state.pending).contains("q7X2k"),
        "nothing of the secret stays in the state once sent"
    );
}

#[test]
fn enter_connects_without_a_prompt_when_nothing_is_required() {
    let mut state = with_access("w1", UnattendedState::None, NOTHING);
    let effects = key(&mut state, KeyCode::Char('v'));
    let [
        (
            id,
            ConsoleRequest::Connect {
                secret: None,
                view_only: true,
                ..
            },
        ),
    ] = &requests(&effects)[..]
    else {
        panic!("expected a view-only Connect without a secret, got {effects:?}");
    };
    assert!(
        matches!(&state.dialog, Some(Dialog::Connecting(d)) if d.attended && d.view_only),
        "waits for the end user to accept"
    );
    // The end user accepts: the session is listed, and it is this technician's.
    let mut opened = session("s1", ("w1", "reception"), "ann", 0);
    opened.view_only = true;
    opened.method = AuthMethod::Attended;
    net(
        &mut state,
        NetEvent::Reply {
            id: *id,
            result: Ok(ConsoleReply::Session { session: opened }),
        },
    );
    assert!(state.dialog.is_none());
    assert_eq!(state.sessions.len(), 1);
    assert!(status_text(&state).starts_with("Connected to reception (attended · view only)"));
    assert!(state.can(Action::EndSession), "e now applies to this row");
}

#[test]
fn esc_stops_waiting_and_a_late_session_is_ended() {
    let mut state = with_access("w1", UnattendedState::None, NOTHING);
    let effects = key(&mut state, KeyCode::Enter);
    let [(id, _)] = &requests(&effects)[..] else {
        panic!("expected one request");
    };
    update(&mut state, Msg::Tick(t0() + Duration::seconds(20)));
    key(&mut state, KeyCode::Esc);
    assert!(state.dialog.is_none());
    assert_eq!(state.layer(), Layer::Main);
    // The end user accepts after all: nobody is watching, so the session is ended at once.
    let effects = net(
        &mut state,
        NetEvent::Reply {
            id: *id,
            result: Ok(ConsoleReply::Session {
                session: session("s9", ("w1", "reception"), "ann", 0),
            }),
        },
    );
    assert!(matches!(
        &requests(&effects)[..],
        [(_, ConsoleRequest::EndSession { session })] if session == "s9"
    ));
    assert!(state.dialog.is_none(), "no dialog comes back");
    // A late refusal is ignored entirely.
    let effects = key(&mut state, KeyCode::Enter);
    let [(id, _)] = &requests(&effects)[..] else {
        panic!("expected one request");
    };
    key(&mut state, KeyCode::Esc);
    let before = state.status.clone();
    net(
        &mut state,
        NetEvent::Reply {
            id: *id,
            result: Err(ProtocolError::new(
                ErrorCode::Forbidden,
                Refusal::NoAnswer.message(),
            )),
        },
    );
    assert_eq!(state.status, before);
}

#[test]
fn refusals_say_what_to_do_and_a_wrong_secret_asks_again() {
    let mut state = with_access("w1", UnattendedState::None, PASSCODE);
    key(&mut state, KeyCode::Enter);
    type_text(&mut state, "nope");
    let effects = key(&mut state, KeyCode::Enter);
    let [(id, _)] = &requests(&effects)[..] else {
        panic!("expected one request");
    };
    net(
        &mut state,
        NetEvent::Reply {
            id: *id,
            result: Err(ProtocolError::new(
                ErrorCode::Forbidden,
                format!("refused: {}", Refusal::WrongSecret.message()),
            )),
        },
    );
    let Some(Dialog::Secret(prompt)) = &state.dialog else {
        panic!("the prompt comes back, got {:?}", state.dialog);
    };
    assert!(prompt.input.value.is_empty(), "empty, ready for a new try");
    assert!(
        prompt
            .error
            .as_deref()
            .is_some_and(|e| e.contains("was wrong"))
    );
    // The end user denies.
    type_text(&mut state, "right");
    let effects = key(&mut state, KeyCode::Enter);
    let [(id, _)] = &requests(&effects)[..] else {
        panic!("expected one request");
    };
    net(
        &mut state,
        NetEvent::Reply {
            id: *id,
            result: Err(ProtocolError::new(
                ErrorCode::Forbidden,
                Refusal::Denied.message(),
            )),
        },
    );
    assert!(state.dialog.is_none());
    let status = state.status.clone().expect("status");
    assert_eq!(status.kind, StatusKind::Error);
    assert!(
        status.text.contains("denied") && status.text.contains("unattended access (u)"),
        "{}",
        status.text
    );
}

#[test]
fn w_asks_then_withdraws() {
    let mut state = with_access("w1", UnattendedState::Granted, NOTHING);
    assert!(key(&mut state, KeyCode::Char('w')).is_empty(), "asks first");
    assert!(matches!(
        &state.dialog,
        Some(Dialog::Confirm(ConfirmDialog { then: Confirmed::Withdraw { hostname, .. }, .. }))
            if hostname == "reception"
    ));
    assert_eq!(state.layer(), Layer::Confirm);
    // n keeps it.
    assert!(key(&mut state, KeyCode::Char('n')).is_empty());
    assert!(state.dialog.is_none());
    key(&mut state, KeyCode::Char('w'));
    let effects = key(&mut state, KeyCode::Char('y'));
    let [(id, body)] = &requests(&effects)[..] else {
        panic!("expected one request, got {effects:?}");
    };
    assert_eq!(
        *body,
        ConsoleRequest::WithdrawAccess {
            workstation: "w1".into()
        }
    );
    assert!(state.dialog.is_none());
    let mut row = state.workstations[0].clone();
    row.unattended = UnattendedState::Withdrawn;
    net(
        &mut state,
        NetEvent::Reply {
            id: *id,
            result: Ok(ConsoleReply::Workstation { workstation: row }),
        },
    );
    assert_eq!(state.workstations[0].unattended, UnattendedState::Withdrawn);
    // Nothing left to withdraw: w says so instead of asking.
    assert!(key(&mut state, KeyCode::Char('w')).is_empty());
    assert!(state.dialog.is_none());
    assert!(status_text(&state).contains("no unattended access to withdraw"));
}

#[test]
fn session_events_add_and_remove_sessions_and_say_why() {
    let mut state = logged_in();
    session_event(&mut state, session("s1", ("w1", "reception"), "bob", 3));
    session_event(&mut state, session("s2", ("w1", "reception"), "ann", 1));
    session_event(&mut state, session("s3", ("w1", "reception"), "ann", 9));
    assert_eq!(
        state
            .sessions
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>(),
        ["s2", "s1", "s3"],
        "newest first"
    );
    // Someone else's session ends: news, not alarm.
    let mut ended = session("s1", ("w1", "reception"), "bob", 3);
    ended.ended_at = Some(t0());
    ended.end_reason = Some("ended by bob".into());
    session_event(&mut state, ended);
    assert_eq!(state.sessions.len(), 2);
    let status = state.status.clone().expect("status");
    assert_eq!(
        status.text,
        "Session on reception (bob) ended: ended by bob."
    );
    assert_eq!(status.kind, StatusKind::Info);
    // e ends my newest session on the selected workstation.
    let effects = key(&mut state, KeyCode::Char('e'));
    assert!(matches!(
        &requests(&effects)[..],
        [(_, ConsoleRequest::EndSession { session })] if session == "s2"
    ));
    // My other session ends because access was withdrawn: prominent.
    let mut ended = session("s3", ("w1", "reception"), "ann", 9);
    ended.ended_at = Some(t0());
    ended.end_reason = Some("unattended access withdrawn by bob".into());
    session_event(&mut state, ended);
    let status = state.status.clone().expect("status");
    assert_eq!(
        status.text,
        "Your session on reception ended: unattended access withdrawn by bob."
    );
    assert_eq!(status.kind, StatusKind::Error);
    // Later news does not hide it.
    let mut other = session("s4", ("w3", "till"), "bob", 1);
    session_event(&mut state, other.clone());
    other.ended_at = Some(t0());
    other.end_reason = Some("the workstation went offline".into());
    session_event(&mut state, other);
    assert_eq!(
        state.status.as_ref().map(|s| s.kind),
        Some(StatusKind::Error)
    );
}

#[test]
fn sessions_view_lists_and_ends_the_selected_one() {
    let mut state = logged_in();
    session_event(&mut state, session("s1", ("w1", "reception"), "bob", 3));
    session_event(&mut state, session("s2", ("w3", "till"), "cem", 1));
    key(&mut state, KeyCode::Char('s'));
    assert_eq!(state.layer(), Layer::Sessions);
    assert_eq!(state.selected_session.as_deref(), Some("s2"));
    key(&mut state, KeyCode::Char('j'));
    let effects = key(&mut state, KeyCode::Char('e'));
    let [(id, ConsoleRequest::EndSession { session: ending })] = &requests(&effects)[..] else {
        panic!("expected EndSession, got {effects:?}");
    };
    assert_eq!(ending, "s1");
    net(
        &mut state,
        NetEvent::Reply {
            id: *id,
            result: Ok(ConsoleReply::Done),
        },
    );
    assert_eq!(state.sessions.len(), 1);
    assert_eq!(state.selected_session.as_deref(), Some("s2"));
    assert_eq!(status_text(&state), "Ended the session on reception.");
    // Its end event, asked for here, is not news.
    let mut ended = session("s1", ("w1", "reception"), "bob", 3);
    ended.ended_at = Some(t0());
    ended.end_reason = Some("ended by ann".into());
    session_event(&mut state, ended);
    assert_eq!(status_text(&state), "Ended the session on reception.");
    key(&mut state, KeyCode::Esc);
    assert_eq!(state.layer(), Layer::Main);
}

#[test]
fn lockout_counts_down_with_the_clock_and_blocks_retries() {
    let mut state = with_access("w1", UnattendedState::Granted, PASSCODE);
    key(&mut state, KeyCode::Enter);
    type_text(&mut state, "wrong");
    let effects = key(&mut state, KeyCode::Enter);
    let [(id, _)] = &requests(&effects)[..] else {
        panic!("expected one request");
    };
    let mut limited = ProtocolError::new(ErrorCode::RateLimited, "too many wrong secrets");
    limited.retry_after_secs = Some(64);
    net(
        &mut state,
        NetEvent::Reply {
            id: *id,
            result: Err(limited),
        },
    );
    assert!(state.dialog.is_none());
    assert!(status_text(&state).ends_with("Try again in 1 min 04 s."));
    update(&mut state, Msg::Tick(t0() + Duration::seconds(1)));
    assert!(status_text(&state).ends_with("Try again in 1 min 03 s."));
    update(&mut state, Msg::Tick(t0() + Duration::seconds(55)));
    assert!(status_text(&state).ends_with("Try again in 9 s."));
    // Still locked: Enter sends nothing and shows the wait again.
    assert!(key(&mut state, KeyCode::Enter).is_empty());
    assert!(state.dialog.is_none());
    assert!(status_text(&state).ends_with("Try again in 9 s."));
    // Over: the line says so, and connecting asks for the passcode again.
    update(&mut state, Msg::Tick(t0() + Duration::seconds(64)));
    assert_eq!(
        status_text(&state),
        "The lock-out on reception is over: you may connect again."
    );
    key(&mut state, KeyCode::Enter);
    assert_eq!(state.layer(), Layer::Secret);
}

#[test]
fn losing_the_link_while_connecting_closes_the_waiting_dialog() {
    let mut state = with_access("w1", UnattendedState::None, NOTHING);
    key(&mut state, KeyCode::Enter);
    assert_eq!(state.layer(), Layer::Connecting);
    net(
        &mut state,
        NetEvent::Disconnected {
            reason: "hub restarted".into(),
        },
    );
    assert!(state.dialog.is_none());
    assert!(status_text(&state).contains("while connecting to reception"));
}

#[test]
fn footer_offers_only_what_applies_to_the_row() {
    let mut state = with_access("w1", UnattendedState::Granted, NOTHING);
    assert!(state.can(Action::Connect) && state.can(Action::WithdrawAccess));
    assert!(!state.can(Action::RequestAccess), "already granted");
    assert!(!state.can(Action::EndSession), "no session of mine");
    key(&mut state, KeyCode::Char('j')); // xray, offline
    assert!(!state.can(Action::Connect) && !state.can(Action::RequestAccess));
}

// ---------------------------------------------------------------------------------------------
// The live terminal

mod live_terminal {
    use super::*;
    use crate::console::state::ViewerMode;
    use crate::protocol::ViewSpec;
    use crate::protocol::stream::{self, StreamFrame};

    const STREAM: u64 = 7;

    /// Logged in, `reception` (headless) selected, `Enter` (or `v`) pressed and accepted: the
    /// effects of the accepted `Connect`.
    fn connect(view_only: bool) -> (State, Vec<Effect>) {
        let mut state = logged_in();
        assert_eq!(state.selected_workstation.as_deref(), Some("w1"));
        let effects = key(
            &mut state,
            if view_only {
                KeyCode::Char('v')
            } else {
                KeyCode::Enter
            },
        );
        let [(id, ConsoleRequest::Connect { .. })] = &requests(&effects)[..] else {
            panic!("expected a Connect, got {effects:?}");
        };
        let mut opened = session("s1", ("w1", "reception"), "ann", 0);
        opened.view_only = view_only;
        let effects = net(
            &mut state,
            NetEvent::Reply {
                id: *id,
                result: Ok(ConsoleReply::Session { session: opened }),
            },
        );
        (state, effects)
    }

    /// The `Watch` requests among effects: (id, session, cols, rows).
    fn watches(effects: &[Effect]) -> Vec<(u64, String, u16, u16)> {
        requests(effects)
            .into_iter()
            .filter_map(|(id, body)| match body {
                ConsoleRequest::Watch {
                    session,
                    view: ViewSpec::Terminal { cols, rows },
                } => Some((id, session, cols, rows)),
                _ => None,
            })
            .collect()
    }

    fn watching(state: &mut State, id: u64) -> Vec<Effect> {
        net(
            state,
            NetEvent::Reply {
                id,
                result: Ok(ConsoleReply::Watching { stream: STREAM }),
            },
        )
    }

    /// Connected and streaming: the viewer is open on stream `STREAM`.
    fn viewing(view_only: bool) -> State {
        let (mut state, effects) = connect(view_only);
        let [(id, ..)] = &watches(&effects)[..] else {
            panic!("expected one Watch, got {effects:?}");
        };
        watching(&mut state, *id);
        state
    }

    fn output(state: &mut State, stream: u64, seq: u64, bytes: &str) -> Vec<Effect> {
        let frame = StreamFrame::TerminalOutput {
            stream,
            seq,
            bytes: bytes.as_bytes().to_vec(),
        };
        net(
            state,
            NetEvent::Frame {
                bytes: stream::encode(&frame).expect("encode"),
                received_at: 0,
            },
        )
    }

    /// Acknowledgements among effects: (stream, seq).
    fn acks(effects: &[Effect]) -> Vec<(u64, u64)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Net(NetCommand::Notify {
                    body: ConsoleRequest::Ack { stream, seq },
                }) => Some((*stream, *seq)),
                _ => None,
            })
            .collect()
    }

    /// Keystroke frames among effects: (stream, seq, bytes).
    fn typed(effects: &[Effect]) -> Vec<(u64, u64, Vec<u8>)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Net(NetCommand::SendFrame(bytes)) => {
                    match stream::decode(bytes).expect("decode") {
                        StreamFrame::TerminalInput { stream, seq, bytes } => {
                            Some((stream, seq, bytes))
                        }
                        other => panic!("unexpected frame {other:?}"),
                    }
                }
                _ => None,
            })
            .collect()
    }

    fn screen_text(state: &State) -> String {
        state.viewer.as_ref().expect("viewer open").term.text()
    }

    fn menu_key(state: &mut State) -> Vec<Effect> {
        ctrl(state, ']')
    }

    #[test]
    fn connecting_to_a_headless_workstation_opens_its_terminal_at_the_console_size() {
        let (state, effects) = connect(false);
        assert_eq!(state.layer(), Layer::Terminal);
        let viewer = state.viewer.as_ref().expect("viewer open");
        assert_eq!(viewer.session.hostname, "reception");
        assert_eq!(viewer.term.size(), (80, 23), "all rows but the status bar");
        let [(_, watched, 80, 23)] = &watches(&effects)[..] else {
            panic!("expected a Watch at 80x23, got {effects:?}");
        };
        assert_eq!(watched, "s1");

        // A workstation with a screen is not shown as a terminal.
        let mut state = logged_in();
        state.workstations.update_nth(0, |w| {
            w.screen = Some(crate::protocol::ScreenSize {
                width: 1920,
                height: 1080,
            })
        });
        let effects = key(&mut state, KeyCode::Enter);
        let [(id, _)] = &requests(&effects)[..] else {
            panic!("expected a Connect");
        };
        let effects = net(
            &mut state,
            NetEvent::Reply {
                id: *id,
                result: Ok(ConsoleReply::Session {
                    session: session("s1", ("w1", "reception"), "ann", 0),
                }),
            },
        );
        assert_eq!(state.layer(), Layer::Desktop, "its desktop opens instead");
        assert!(watches(&effects).is_empty(), "no terminal is asked for");
    }

    #[test]
    fn frames_are_drawn_and_acked_with_their_seq() {
        let (mut state, effects) = connect(false);
        let [(watch_id, ..)] = &watches(&effects)[..] else {
            panic!("expected a Watch");
        };
        // Output can overtake the Watching reply: kept, then drawn and acked with it.
        let effects = output(&mut state, STREAM, 1, "$ ");
        assert!(acks(&effects).is_empty(), "the stream is not known yet");
        let effects = watching(&mut state, *watch_id);
        assert_eq!(acks(&effects), [(STREAM, 1)]);
        assert_eq!(screen_text(&state).lines().next(), Some("$"));

        state.dirty = false;
        let effects = output(&mut state, STREAM, 2, "echo hi\r\nhi\r\n$ ");
        assert_eq!(acks(&effects), [(STREAM, 2)]);
        assert!(state.dirty, "new output redraws");
        let effects = output(&mut state, STREAM, 3, "x");
        assert_eq!(acks(&effects), [(STREAM, 3)]);
        assert_eq!(
            screen_text(&state).lines().collect::<Vec<_>>()[..3],
            ["$ echo hi", "hi", "$ x"]
        );

        // Another stream's frame (a terminal left earlier) is neither drawn nor acked.
        state.dirty = false;
        let effects = output(&mut state, STREAM + 1, 9, "intruder");
        assert!(acks(&effects).is_empty());
        assert!(!screen_text(&state).contains("intruder"));
        assert!(!state.dirty, "nothing changed, nothing redrawn");

        // A second's output becomes the rate; the next tick without output redraws once.
        update(&mut state, Msg::Tick(t0() + Duration::seconds(1)));
        let viewer = state.viewer.as_ref().expect("viewer");
        assert_eq!(viewer.bytes_per_second, 2 + 15 + 1);
        state.dirty = false;
        update(&mut state, Msg::Tick(t0() + Duration::seconds(2)));
        assert!(state.dirty, "the rate fell to 0");
        state.dirty = false;
        update(&mut state, Msg::Tick(t0() + Duration::seconds(3)));
        assert!(!state.dirty, "an idle terminal is not redrawn every second");
    }

    #[test]
    fn keys_become_terminal_input_frames() {
        let (mut state, effects) = connect(false);
        let [(watch_id, ..)] = &watches(&effects)[..] else {
            panic!("expected a Watch");
        };
        // Typed before the stream is known: sent with it.
        assert!(typed(&key(&mut state, KeyCode::Char('l'))).is_empty());
        let effects = watching(&mut state, *watch_id);
        assert_eq!(typed(&effects), [(STREAM, 1, b"l".to_vec())]);

        let mut sent = Vec::new();
        for code in [KeyCode::Char('s'), KeyCode::Enter, KeyCode::Up] {
            sent.extend(typed(&key(&mut state, code)));
        }
        // Ctrl-C and q belong to the remote here: they neither quit nor run an action.
        sent.extend(typed(&ctrl(&mut state, 'c')));
        sent.extend(typed(&key(&mut state, KeyCode::Char('q'))));
        sent.extend(typed(&update(&mut state, Msg::Paste("echo a\n".into()))));
        assert_eq!(
            sent,
            [
                (STREAM, 2, b"s".to_vec()),
                (STREAM, 3, b"\r".to_vec()),
                (STREAM, 4, b"\x1b[A".to_vec()),
                (STREAM, 5, b"\x03".to_vec()),
                (STREAM, 6, b"q".to_vec()),
                (STREAM, 7, b"echo a\n".to_vec()),
            ]
        );
        assert!(!state.quitting);
        assert_eq!(state.layer(), Layer::Terminal);

        // The remote's cursor mode is followed.
        output(&mut state, STREAM, 1, "\x1b[?1h");
        assert_eq!(
            typed(&key(&mut state, KeyCode::Up)),
            [(STREAM, 8, b"\x1bOA".to_vec())]
        );
    }

    #[test]
    fn unattended_access_can_be_requested_from_inside_a_session() {
        let mut state = viewing(false);
        let workstation = state
            .viewer
            .as_ref()
            .expect("viewer")
            .session
            .workstation_id
            .clone();
        menu_key(&mut state);
        assert!(key(&mut state, KeyCode::Char('u')).is_empty(), "asks first");
        assert_eq!(state.layer(), Layer::Confirm);
        let effects = key(&mut state, KeyCode::Char('y'));
        assert!(
            effects.iter().any(|e| matches!(
                e,
                Effect::Net(NetCommand::Request { body: ConsoleRequest::RequestAccess { workstation: w }, .. })
                    if *w == workstation
            )),
            "u in the session menu asks for unattended access: {effects:?}"
        );
        assert_eq!(
            state.layer(),
            Layer::Terminal,
            "back to the session while the end user answers"
        );
        assert!(
            typed(&effects).is_empty(),
            "nothing was typed into the remote"
        );
    }

    #[test]
    fn ctrl_bracket_opens_the_menu_and_keys_stop_going_to_the_remote() {
        let mut state = viewing(false);
        let effects = menu_key(&mut state);
        assert!(typed(&effects).is_empty(), "the menu key is not sent");
        assert_eq!(state.layer(), Layer::TerminalMenu);
        for code in [KeyCode::Char('x'), KeyCode::Enter, KeyCode::Char('l')] {
            assert!(typed(&key(&mut state, code)).is_empty());
        }
        assert!(typed(&update(&mut state, Msg::Paste("ls\n".into()))).is_empty());
        // Esc (or the menu key again) is back to typing.
        key(&mut state, KeyCode::Esc);
        assert_eq!(state.layer(), Layer::Terminal);
        assert_eq!(
            typed(&key(&mut state, KeyCode::Esc)).len(),
            1,
            "Esc goes to the remote"
        );
        menu_key(&mut state);
        menu_key(&mut state);
        assert_eq!(state.layer(), Layer::Terminal);

        // Scroll back: PgUp/PgDn/arrows move through the history, Esc is live again.
        for i in 0..60 {
            output(&mut state, STREAM, i + 1, &format!("line {i}\r\n"));
        }
        menu_key(&mut state);
        key(&mut state, KeyCode::Char('s'));
        assert_eq!(state.layer(), Layer::TerminalScroll);
        let viewer = state.viewer.as_ref().expect("viewer");
        assert_eq!(viewer.term.scrollback(), 22, "a page up, a line kept");
        key(&mut state, KeyCode::Down);
        key(&mut state, KeyCode::PageDown);
        key(&mut state, KeyCode::Up);
        assert_eq!(state.viewer.as_ref().expect("viewer").term.scrollback(), 1);
        assert!(typed(&key(&mut state, KeyCode::Char('x'))).is_empty());
        key(&mut state, KeyCode::Esc);
        let viewer = state.viewer.as_ref().expect("viewer");
        assert_eq!(
            (viewer.mode, viewer.term.scrollback()),
            (ViewerMode::Live, 0)
        );

        // Back to the list: the stream stops, the session stays open and is listed.
        menu_key(&mut state);
        let effects = key(&mut state, KeyCode::Char('d'));
        assert!(effects.iter().any(|e| matches!(
            e,
            Effect::Net(NetCommand::Notify {
                body: ConsoleRequest::Unwatch { stream: STREAM }
            })
        )));
        assert!(state.viewer.is_none());
        assert_eq!(state.layer(), Layer::Main);
        assert_eq!(state.sessions.len(), 1);
        assert!(status_text(&state).contains("stays open (o opens it again"));
        assert!(state.can(Action::Open));

        // `o` opens it again, with the screen as it was, and watches again.
        let effects = key(&mut state, KeyCode::Char('o'));
        assert_eq!(watches(&effects).len(), 1);
        assert!(screen_text(&state).contains("line 59"));

        // The menu's end key ends the session and returns to the list.
        menu_key(&mut state);
        let effects = key(&mut state, KeyCode::Char('e'));
        assert!(matches!(
            &requests(&effects)[..],
            [(_, ConsoleRequest::EndSession { session })] if session == "s1"
        ));
        assert!(state.viewer.is_none());
        assert_eq!(state.layer(), Layer::Main);
    }

    #[test]
    fn resize_resends_watch_and_resizes_the_view() {
        let mut state = viewing(false);
        let effects = update(
            &mut state,
            Msg::Resize {
                width: 120,
                height: 40,
            },
        );
        let [(id, session, 120, 39)] = &watches(&effects)[..] else {
            panic!("expected a Watch at 120x39, got {effects:?}");
        };
        assert_eq!(session, "s1");
        assert_eq!(
            state.viewer.as_ref().expect("viewer").term.size(),
            (120, 39)
        );
        // The same stream comes back; keys keep flowing on it.
        watching(&mut state, *id);
        assert_eq!(typed(&key(&mut state, KeyCode::Char('a')))[0].0, STREAM);
        // A resize to the same size asks nothing.
        let effects = update(
            &mut state,
            Msg::Resize {
                width: 120,
                height: 40,
            },
        );
        assert!(watches(&effects).is_empty());
    }

    #[test]
    fn an_ended_session_keeps_its_viewer_and_swallows_typing_until_dismissed() {
        let mut state = viewing(false);
        let mut ended = session("s1", ("w1", "reception"), "ann", 0);
        ended.ended_at = Some(t0());
        ended.end_reason = Some("the workstation went offline".into());
        session_event(&mut state, ended);
        assert_eq!(state.layer(), Layer::SessionEnded);
        assert_eq!(
            state.viewer.as_ref().and_then(|v| v.ended.as_deref()),
            Some("the workstation went offline")
        );
        // Typing meant for the remote: no command of the list runs (l issued a link, q quit, u
        // asked the end user), nothing is sent anywhere, even Ctrl-C.
        let mut effects = Vec::new();
        for c in "ls -la; quit".chars() {
            effects.extend(key(&mut state, KeyCode::Char(c)));
        }
        for c in ['q', 'l', 'u', 'P', 'w', 'e', 'a', '?', '/'] {
            effects.extend(key(&mut state, KeyCode::Char(c)));
        }
        effects.extend(ctrl(&mut state, 'c'));
        effects.extend(menu_key(&mut state));
        effects.extend(update(&mut state, Msg::Paste("rm -rf /\n".into())));
        assert!(effects.is_empty(), "{effects:?}");
        assert!(!state.quitting && state.dialog.is_none());
        assert_eq!(state.layer(), Layer::SessionEnded, "still the ended viewer");
        // A resize watches nothing; late output is ignored.
        let resized = update(
            &mut state,
            Msg::Resize {
                width: 100,
                height: 30,
            },
        );
        assert!(watches(&resized).is_empty());
        assert!(acks(&output(&mut state, STREAM, 5, "late")).is_empty());
        // Enter dismisses it: the list, the status line saying why.
        assert!(key(&mut state, KeyCode::Enter).is_empty());
        assert!(state.viewer.is_none());
        assert_eq!(state.layer(), Layer::Main);
        assert!(state.screens.is_empty(), "nothing kept of an ended session");
        assert_eq!(
            status_text(&state),
            "Your session on reception ended: the workstation went offline."
        );
    }

    #[test]
    fn esc_also_dismisses_an_ended_session_and_your_own_end_closes_at_once() {
        let mut state = viewing(false);
        let mut ended = session("s1", ("w1", "reception"), "ann", 0);
        ended.ended_at = Some(t0());
        ended.end_reason = Some("ended by bob".into());
        session_event(&mut state, ended.clone());
        key(&mut state, KeyCode::Esc);
        assert!(state.viewer.is_none());
        // Ended from this console's own menu: nothing to dismiss.
        let mut state = viewing(false);
        menu_key(&mut state);
        key(&mut state, KeyCode::Char('e'));
        session_event(&mut state, ended);
        assert!(state.viewer.is_none());
        assert_eq!(state.layer(), Layer::Main);
    }

    #[test]
    fn view_only_sends_nothing() {
        let mut state = viewing(true);
        assert!(state.viewer.as_ref().expect("viewer").session.view_only);
        let mut effects = Vec::new();
        for code in [KeyCode::Char('l'), KeyCode::Enter, KeyCode::Up] {
            effects.extend(key(&mut state, code));
        }
        effects.extend(ctrl(&mut state, 'c'));
        effects.extend(update(&mut state, Msg::Paste("rm -rf /\n".into())));
        assert!(typed(&effects).is_empty(), "{effects:?}");
        // Output still shows and is acked; the menu still opens.
        assert_eq!(acks(&output(&mut state, STREAM, 1, "top")), [(STREAM, 1)]);
        menu_key(&mut state);
        assert_eq!(state.layer(), Layer::TerminalMenu);
    }

    #[test]
    fn a_dropped_link_keeps_the_screen_and_watches_again_when_back() {
        let mut state = viewing(false);
        output(&mut state, STREAM, 1, "$ make\r\nbuilding");
        net(
            &mut state,
            NetEvent::Disconnected {
                reason: "connection lost".into(),
            },
        );
        assert!(
            screen_text(&state).contains("building"),
            "the last screen stays"
        );
        assert_eq!(state.layer(), Layer::Terminal);
        assert!(
            typed(&key(&mut state, KeyCode::Char('x'))).is_empty(),
            "nothing typed blind is sent, nor kept for later"
        );
        let effects = net(
            &mut state,
            NetEvent::LoggedIn {
                user: user(),
                token: None,
            },
        );
        let [(id, session, 80, 23)] = &watches(&effects)[..] else {
            panic!("expected a new Watch, got {effects:?}");
        };
        assert_eq!(session, "s1");
        let effects = watching(&mut state, *id);
        assert!(
            typed(&effects).is_empty(),
            "the key typed while down stays unsent"
        );
        assert_eq!(
            acks(&output(&mut state, STREAM, 1, "\r\ndone")),
            [(STREAM, 1)]
        );
        assert!(screen_text(&state).contains("done"));

        // Had the session ended meanwhile, the new Watch is refused: back to the list.
        net(
            &mut state,
            NetEvent::Disconnected {
                reason: "connection lost".into(),
            },
        );
        let effects = net(
            &mut state,
            NetEvent::LoggedIn {
                user: user(),
                token: None,
            },
        );
        let [(id, ..)] = &watches(&effects)[..] else {
            panic!("expected a new Watch");
        };
        net(
            &mut state,
            NetEvent::Reply {
                id: *id,
                result: Err(ProtocolError::not_found("open session")),
            },
        );
        assert_eq!(
            state.layer(),
            Layer::SessionEnded,
            "the viewer says so first"
        );
        assert!(typed(&key(&mut state, KeyCode::Char('l'))).is_empty());
        key(&mut state, KeyCode::Enter);
        assert!(state.viewer.is_none());
        assert_eq!(
            status_text(&state),
            "Your session on reception ended: it ended while the connection to the hub was down."
        );
    }

    #[test]
    fn the_sessions_view_opens_your_own_sessions_only() {
        let mut state = logged_in();
        session_event(&mut state, session("s1", ("w1", "reception"), "ann", 5));
        session_event(&mut state, session("s2", ("w3", "till"), "bob", 1));
        key(&mut state, KeyCode::Char('s'));
        assert_eq!(
            state.selected_session.as_deref(),
            Some("s2"),
            "newest first"
        );
        assert!(!state.can_open_selected_session());
        assert!(key(&mut state, KeyCode::Enter).is_empty());
        assert!(state.viewer.is_none());
        assert_eq!(
            status_text(&state),
            "That session is bob's; you can open only your own."
        );
        key(&mut state, KeyCode::Down);
        assert!(state.can_open_selected_session());
        let effects = key(&mut state, KeyCode::Enter);
        assert_eq!(watches(&effects).len(), 1);
        assert_eq!(state.layer(), Layer::Terminal);
        // Back to the list returns to the sessions view it came from.
        menu_key(&mut state);
        key(&mut state, KeyCode::Char('d'));
        assert_eq!(state.layer(), Layer::Sessions);
    }

    #[test]
    fn o_on_a_row_without_a_session_of_yours_says_so() {
        let mut state = logged_in();
        let effects = key(&mut state, KeyCode::Char('o'));
        assert!(effects.is_empty());
        assert!(state.viewer.is_none());
        assert_eq!(
            status_text(&state),
            "You have no open session on reception (Enter connects)."
        );
        assert!(!state.can(Action::Open), "the footer does not offer it");
    }
}

// ---------------------------------------------------------------------------------------------
// The live desktop

mod live_desktop {
    use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};

    use super::*;
    use crate::frame::Rect;
    use crate::protocol::stream::{self, RectUpdate, StreamFrame};
    use crate::protocol::{InputEvent, ScreenSize, ViewSpec};
    use crate::render::{CellSize, Glyphs, RenderMode};

    const STREAM: u64 = 11;
    const SCREEN: ScreenSize = ScreenSize {
        width: 1920,
        height: 1080,
    };

    /// Logged in, `reception` (with a 1920x1080 screen) selected, connected: the effects of
    /// the accepted `Connect`.
    fn connect(view_only: bool) -> (State, Vec<Effect>) {
        let mut state = logged_in();
        state
            .workstations
            .update_nth(0, |w| w.screen = Some(SCREEN));
        let effects = key(
            &mut state,
            if view_only {
                KeyCode::Char('v')
            } else {
                KeyCode::Enter
            },
        );
        let [(id, ConsoleRequest::Connect { .. })] = &requests(&effects)[..] else {
            panic!("expected a Connect, got {effects:?}");
        };
        let mut opened = session("s1", ("w1", "reception"), "ann", 0);
        opened.view_only = view_only;
        let effects = net(
            &mut state,
            NetEvent::Reply {
                id: *id,
                result: Ok(ConsoleReply::Session { session: opened }),
            },
        );
        (state, effects)
    }

    /// The pixel `Watch` requests among effects: (id, session, width, height).
    fn watches(effects: &[Effect]) -> Vec<(u64, String, u32, u32)> {
        requests(effects)
            .into_iter()
            .filter_map(|(id, body)| match body {
                ConsoleRequest::Watch {
                    session,
                    view: ViewSpec::Pixels { width, height },
                } => Some((id, session, width, height)),
                _ => None,
            })
            .collect()
    }

    fn watching(state: &mut State, id: u64) -> Vec<Effect> {
        net(
            state,
            NetEvent::Reply {
                id,
                result: Ok(ConsoleReply::Watching { stream: STREAM }),
            },
        )
    }

    fn viewing(view_only: bool) -> State {
        let (mut state, effects) = connect(view_only);
        let [(id, ..)] = &watches(&effects)[..] else {
            panic!("expected one Watch, got {effects:?}");
        };
        watching(&mut state, *id);
        state
    }

    #[test]
    fn a_new_remote_resolution_moves_the_pointer_mapping_and_asks_again() {
        let mut state = viewing(false);
        let mut info = state.workstations[0].clone();
        let smaller = ScreenSize {
            width: 1280,
            height: 720,
        };
        info.screen = Some(smaller);
        let effects = net(
            &mut state,
            NetEvent::Event(HubEvent::Workstation {
                workstation: info.clone(),
            }),
        );
        assert_eq!(desktop(&state).screen, smaller);
        assert_eq!(watches(&effects).len(), 1, "asked again: {effects:?}");
        // The same size again, or another workstation's: nothing to do.
        let effects = net(
            &mut state,
            NetEvent::Event(HubEvent::Workstation { workstation: info }),
        );
        assert!(watches(&effects).is_empty());
        let mut other = state.workstations[1].clone();
        other.screen = Some(SCREEN);
        let effects = net(
            &mut state,
            NetEvent::Event(HubEvent::Workstation { workstation: other }),
        );
        assert!(watches(&effects).is_empty());
        assert_eq!(desktop(&state).screen, smaller);
    }

    /// A frame of `width` x `height` with one rectangle filled with `rgb`, as sent.
    fn pixel_frame(
        stream: u64,
        seq: u64,
        (width, height): (u32, u32),
        rect: Rect,
        rgb: [u8; 3],
    ) -> Vec<u8> {
        let count = (rect.width * rect.height) as usize;
        let frame = StreamFrame::Pixels {
            stream,
            seq,
            captured_at: 0,
            width,
            height,
            rects: vec![RectUpdate {
                rect,
                rgb: rgb.repeat(count),
            }],
        };
        stream::encode(&frame).expect("encode")
    }

    /// A frame of `width` x `height` with one rectangle filled with `rgb`.
    fn pixels(
        state: &mut State,
        stream: u64,
        seq: u64,
        size: (u32, u32),
        rect: Rect,
        rgb: [u8; 3],
    ) -> Vec<Effect> {
        net(
            state,
            NetEvent::Frame {
                bytes: pixel_frame(stream, seq, size, rect, rgb),
                received_at: 0,
            },
        )
    }

    fn acks(effects: &[Effect]) -> Vec<(u64, u64)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Net(NetCommand::Notify {
                    body: ConsoleRequest::Ack { stream, seq },
                }) => Some((*stream, *seq)),
                _ => None,
            })
            .collect()
    }

    /// Input events sent, in order, with the stream they went to.
    fn inputs(effects: &[Effect]) -> Vec<(u64, InputEvent)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Net(NetCommand::Notify {
                    body: ConsoleRequest::Input { stream, events },
                }) => Some(
                    events
                        .iter()
                        .map(|ev| (*stream, ev.clone()))
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn down_up(keysym: u32) -> [(u64, InputEvent); 2] {
        [
            (STREAM, InputEvent::Key { keysym, down: true }),
            (
                STREAM,
                InputEvent::Key {
                    keysym,
                    down: false,
                },
            ),
        ]
    }

    fn mouse(state: &mut State, kind: MouseEventKind, column: u16, row: u16) -> Vec<Effect> {
        update(
            state,
            Msg::Mouse(MouseEvent {
                kind,
                column,
                row,
                modifiers: KeyModifiers::NONE,
            }),
        )
    }

    fn desktop(state: &State) -> &crate::console::desktop::DesktopView {
        state
            .viewer
            .as_ref()
            .and_then(|v| v.desktop.as_ref())
            .expect("desktop open")
    }

    #[test]
    fn connecting_to_a_workstation_with_a_screen_watches_its_pixels() {
        let (state, effects) = connect(false);
        assert_eq!(state.layer(), Layer::Desktop);
        // 80x23 cells of half blocks: 80x46 pixels.
        let [(_, session, 80, 46)] = &watches(&effects)[..] else {
            panic!("expected a Watch at 80x46 pixels, got {effects:?}");
        };
        assert_eq!(session, "s1");
        assert_eq!(desktop(&state).glyphs, Glyphs::HalfBlock);
    }

    #[test]
    fn frames_are_applied_and_acked_with_their_seq() {
        let (mut state, effects) = connect(false);
        let [(watch_id, ..)] = &watches(&effects)[..] else {
            panic!("expected a Watch");
        };
        // A frame that overtakes the Watching reply is kept, then applied and acked with it.
        let red = [200, 0, 0];
        let effects = pixels(
            &mut state,
            STREAM,
            1,
            (80, 45),
            Rect::new(0, 0, 80, 45),
            red,
        );
        assert!(acks(&effects).is_empty(), "the stream is not known yet");
        let effects = watching(&mut state, *watch_id);
        assert_eq!(acks(&effects), [(STREAM, 1)]);
        assert_eq!(desktop(&state).framebuffer.pixel(79, 44), [200, 0, 0, 255]);
        assert_eq!(desktop(&state).view.size(), (80, 23));

        state.dirty = false;
        let blue = [0, 0, 255];
        let effects = pixels(&mut state, STREAM, 2, (80, 45), Rect::new(2, 4, 3, 2), blue);
        assert_eq!(acks(&effects), [(STREAM, 2)]);
        assert!(state.dirty);
        let fb = &desktop(&state).framebuffer;
        assert_eq!(fb.pixel(4, 5), [0, 0, 255, 255]);
        assert_eq!(
            fb.pixel(5, 5),
            [200, 0, 0, 255],
            "outside the rect: unchanged"
        );

        // A new size starts a new picture.
        let effects = pixels(&mut state, STREAM, 3, (40, 20), Rect::new(0, 0, 1, 1), blue);
        assert_eq!(acks(&effects), [(STREAM, 3)]);
        let d = desktop(&state);
        assert_eq!((d.framebuffer.width(), d.framebuffer.height()), (40, 20));
        assert_eq!(d.framebuffer.pixel(1, 1), [0, 0, 0, 255]);

        // Another stream's frame is neither applied nor acked.
        let effects = pixels(
            &mut state,
            STREAM + 1,
            9,
            (40, 20),
            Rect::new(1, 1, 1, 1),
            red,
        );
        assert!(acks(&effects).is_empty());
        assert_eq!(desktop(&state).framebuffer.pixel(1, 1), [0, 0, 0, 255]);

        // The tick turns the second's frames into fps and bytes/s: the bytes that came over
        // the link (compressed), not the pixels they unpacked to.
        update(&mut state, Msg::Tick(t0() + Duration::seconds(1)));
        let viewer = state.viewer.as_ref().expect("viewer");
        assert_eq!(desktop(&state).frames_per_second, 3);
        let wire = [
            pixel_frame(STREAM, 1, (80, 45), Rect::new(0, 0, 80, 45), red),
            pixel_frame(STREAM, 2, (80, 45), Rect::new(2, 4, 3, 2), blue),
            pixel_frame(STREAM, 3, (40, 20), Rect::new(0, 0, 1, 1), blue),
        ];
        let wire: u64 = wire.iter().map(|f| f.len() as u64).sum();
        assert_eq!(viewer.bytes_per_second, wire);
        assert!(wire < (80 * 45 + 3 * 2 + 1) * 3 / 4, "{wire} bytes");
    }

    #[test]
    fn the_status_line_latency_is_capture_to_arrival_and_absent_when_clocks_disagree() {
        let mut state = viewing(false);
        let frame = |seq, captured_at| StreamFrame::Pixels {
            stream: STREAM,
            seq,
            captured_at,
            width: 80,
            height: 46,
            rects: vec![RectUpdate {
                rect: Rect::new(0, 0, 1, 1),
                rgb: vec![9, 9, 9],
            }],
        };
        let arrive = |state: &mut State, frame: StreamFrame, received_at| {
            net(
                state,
                NetEvent::Frame {
                    bytes: stream::encode(&frame).expect("encode"),
                    received_at,
                },
            )
        };
        assert_eq!(desktop(&state).latency, None);
        arrive(&mut state, frame(1, 5_000_000), 5_012_000);
        assert_eq!(
            desktop(&state).latency,
            Some(std::time::Duration::from_millis(12))
        );
        // An agent whose clock is ahead gives no figure rather than a wrong one: the last stays.
        arrive(&mut state, frame(2, 9_000_000), 5_020_000);
        assert_eq!(
            desktop(&state).latency,
            Some(std::time::Duration::from_millis(12))
        );
        arrive(&mut state, frame(3, 5_030_000), 5_033_000);
        assert_eq!(
            desktop(&state).latency,
            Some(std::time::Duration::from_millis(3))
        );
    }

    #[test]
    fn keys_become_keysym_downs_and_ups() {
        let mut state = viewing(false);
        let mut sent = Vec::new();
        sent.extend(inputs(&key(&mut state, KeyCode::Char('a'))));
        sent.extend(inputs(&key(&mut state, KeyCode::Enter)));
        sent.extend(inputs(&key(&mut state, KeyCode::Left)));
        // q and Esc belong to the remote here.
        sent.extend(inputs(&key(&mut state, KeyCode::Char('q'))));
        sent.extend(inputs(&key(&mut state, KeyCode::Esc)));
        let mut expected = Vec::new();
        for keysym in [0x61, 0xff0d, 0xff51, 0x71, 0xff1b] {
            expected.extend(down_up(keysym));
        }
        assert_eq!(sent, expected);
        assert!(!state.quitting);
        assert_eq!(state.layer(), Layer::Desktop);

        // Ctrl-C: Control_L held around the key, not a quit.
        let sent = inputs(&ctrl(&mut state, 'c'));
        let control = |down| {
            (
                STREAM,
                InputEvent::Key {
                    keysym: 0xffe3,
                    down,
                },
            )
        };
        let [c_down, c_up] = down_up(0x63);
        assert_eq!(sent, [control(true), c_down, c_up, control(false)]);
        assert!(!state.quitting);
    }

    #[test]
    fn a_click_at_a_cell_is_a_pointer_event_at_the_remote_pixel() {
        let mut state = viewing(false);
        pixels(
            &mut state,
            STREAM,
            1,
            (80, 45),
            Rect::new(0, 0, 1, 1),
            [9, 9, 9],
        );
        // The picture is 80x23 cells over the 80x23 screen area: cell (40, 10) is the
        // middle of column 40 of 80 and row 10 of 23 of the 1920x1080 screen.
        let (x, y) = (40 * 24 + 12, (21 * 1080) / 46);
        let mut sent = inputs(&mouse(
            &mut state,
            MouseEventKind::Down(MouseButton::Left),
            40,
            10,
        ));
        sent.extend(inputs(&mouse(
            &mut state,
            MouseEventKind::Up(MouseButton::Left),
            40,
            10,
        )));
        let at = |buttons| (STREAM, InputEvent::Pointer { x, y, buttons });
        assert_eq!(sent, [at(1), at(0)]);

        // The wheel: a press and release of button 4 (bit 3); a right drag holds bit 2.
        let wheel = inputs(&mouse(&mut state, MouseEventKind::ScrollUp, 40, 10));
        assert_eq!(wheel, [at(8), at(0)]);
        mouse(&mut state, MouseEventKind::Down(MouseButton::Right), 40, 10);
        let drag = inputs(&mouse(
            &mut state,
            MouseEventKind::Drag(MouseButton::Right),
            0,
            0,
        ));
        assert_eq!(
            drag,
            [(
                STREAM,
                InputEvent::Pointer {
                    x: 12,
                    y: 1080 / 46,
                    buttons: 4
                }
            )]
        );
        // Moving within the same cell sends nothing new.
        assert!(
            inputs(&mouse(
                &mut state,
                MouseEventKind::Drag(MouseButton::Right),
                0,
                0
            ))
            .is_empty()
        );
        // The status bar row is clamped onto the picture's last row.
        let low = inputs(&mouse(&mut state, MouseEventKind::Moved, 79, 23));
        assert_eq!(
            low,
            [(
                STREAM,
                InputEvent::Pointer {
                    x: 79 * 24 + 12,
                    y: (45 * 1080) / 46,
                    buttons: 4
                }
            )]
        );
    }

    #[test]
    fn view_only_sends_nothing() {
        let mut state = viewing(true);
        pixels(
            &mut state,
            STREAM,
            1,
            (80, 45),
            Rect::new(0, 0, 1, 1),
            [9, 9, 9],
        );
        let mut effects = key(&mut state, KeyCode::Char('a'));
        effects.extend(ctrl(&mut state, 'c'));
        effects.extend(mouse(
            &mut state,
            MouseEventKind::Down(MouseButton::Left),
            3,
            3,
        ));
        effects.extend(mouse(&mut state, MouseEventKind::ScrollDown, 3, 3));
        assert!(inputs(&effects).is_empty(), "{effects:?}");
        assert_eq!(state.layer(), Layer::Desktop);
    }

    #[test]
    fn ctrl_bracket_menu_stops_keys_and_switches_modes() {
        let mut state = viewing(false);
        let effects = ctrl(&mut state, ']');
        assert!(inputs(&effects).is_empty(), "the menu key is not sent");
        assert_eq!(state.layer(), Layer::DesktopMenu);
        for code in [KeyCode::Char('z'), KeyCode::Enter] {
            assert!(inputs(&key(&mut state, code)).is_empty());
        }
        assert!(
            inputs(&mouse(
                &mut state,
                MouseEventKind::Down(MouseButton::Left),
                1,
                1
            ))
            .is_empty(),
            "nor the mouse"
        );
        key(&mut state, KeyCode::Esc);
        assert_eq!(state.layer(), Layer::Desktop);
        assert_eq!(
            inputs(&key(&mut state, KeyCode::Esc)).len(),
            2,
            "Esc goes to the remote"
        );

        // m: quadrants, asked for in square pixels as wide as theirs (4 of the default 8x16
        // cell: 160x92 for 80x23 cells); m again: sextants, 4x5.3 pixels, the same squares.
        ctrl(&mut state, ']');
        let effects = key(&mut state, KeyCode::Char('m'));
        assert_eq!(desktop(&state).glyphs, Glyphs::Quadrant);
        let [(_, _, 160, 92)] = &watches(&effects)[..] else {
            panic!("expected a Watch at 160x92, got {effects:?}");
        };
        ctrl(&mut state, ']');
        let effects = key(&mut state, KeyCode::Char('m'));
        assert_eq!(state.layer(), Layer::Desktop);
        assert_eq!(desktop(&state).glyphs, Glyphs::Sextant);
        let [(_, _, 160, 92)] = &watches(&effects)[..] else {
            panic!("expected a Watch at 160x92, got {effects:?}");
        };

        // d: back to the list, the stream stops, the session stays.
        ctrl(&mut state, ']');
        let effects = key(&mut state, KeyCode::Char('d'));
        assert!(state.viewer.is_none());
        assert_eq!(state.layer(), Layer::Main);
        assert!(effects.iter().any(|e| matches!(
            e,
            Effect::Net(NetCommand::Notify {
                body: ConsoleRequest::Unwatch { stream: STREAM }
            })
        )));
        // o opens it again, as a desktop.
        let effects = key(&mut state, KeyCode::Char('o'));
        assert_eq!(state.layer(), Layer::Desktop);
        assert_eq!(watches(&effects).len(), 1);
    }

    #[test]
    fn zoom_asks_a_larger_picture_and_arrows_pan_it() {
        let mut state = viewing(false);
        ctrl(&mut state, ']');
        let effects = key(&mut state, KeyCode::Char('+'));
        let [(_, _, 160, 92)] = &watches(&effects)[..] else {
            panic!("expected a Watch at twice the size, got {effects:?}");
        };
        assert_eq!(
            state.layer(),
            Layer::DesktopMenu,
            "the menu stays for panning"
        );
        let effects = pixels(
            &mut state,
            STREAM,
            1,
            (160, 90),
            Rect::new(0, 0, 1, 1),
            [1, 2, 3],
        );
        assert_eq!(acks(&effects), [(STREAM, 1)]);
        assert_eq!(desktop(&state).view.size(), (160, 45));

        // Right pans a quarter of the width; up at the top stays there.
        key(&mut state, KeyCode::Right);
        key(&mut state, KeyCode::Up);
        assert_eq!(desktop(&state).pan, (20, 0));
        for _ in 0..10 {
            key(&mut state, KeyCode::Right);
        }
        assert_eq!(
            desktop(&state).pan,
            (80, 0),
            "clamped to the picture's edge"
        );
        key(&mut state, KeyCode::Left);
        key(&mut state, KeyCode::Left);
        key(&mut state, KeyCode::Left);
        assert_eq!(desktop(&state).pan, (20, 0));

        // A click at the top-left cell lands where the pan put the view.
        key(&mut state, KeyCode::Esc);
        let sent = inputs(&mouse(
            &mut state,
            MouseEventKind::Down(MouseButton::Left),
            0,
            0,
        ));
        assert_eq!(
            sent,
            [(
                STREAM,
                InputEvent::Pointer {
                    x: 41 * 1920 / 320,
                    y: 1080 / 90,
                    buttons: 1
                }
            )]
        );

        // Zoom out: back to the whole screen; not below it.
        ctrl(&mut state, ']');
        let effects = key(&mut state, KeyCode::Char('-'));
        assert_eq!(watches(&effects).len(), 1);
        assert_eq!(desktop(&state).zoom, 1);
        assert!(watches(&key(&mut state, KeyCode::Char('-'))).is_empty());
    }

    #[test]
    fn menu_can_end_the_session() {
        let mut state = viewing(false);
        ctrl(&mut state, ']');
        let effects = key(&mut state, KeyCode::Char('e'));
        assert!(state.viewer.is_none());
        assert!(
            requests(&effects)
                .iter()
                .any(|(_, body)| matches!(body, ConsoleRequest::EndSession { .. })),
            "{effects:?}"
        );
    }

    #[test]
    fn session_ended_keeps_the_desktop_until_dismissed_with_the_reason() {
        let mut state = viewing(false);
        let mut ended = session("s1", ("w1", "reception"), "ann", 0);
        ended.ended_at = Some(t0());
        ended.end_reason = Some("ended by the end user".into());
        session_event(&mut state, ended);
        assert_eq!(state.layer(), Layer::SessionEnded);
        assert!(key(&mut state, KeyCode::Char('l')).is_empty());
        key(&mut state, KeyCode::Esc);
        assert!(state.viewer.is_none());
        assert_eq!(state.layer(), Layer::Main);
        let status = status_text(&state);
        assert!(status.contains("reception"), "{status}");
        assert!(status.contains("ended by the end user"), "{status}");
        // A late frame of the ended stream is ignored.
        let effects = pixels(
            &mut state,
            STREAM,
            5,
            (8, 8),
            Rect::new(0, 0, 1, 1),
            [1, 1, 1],
        );
        assert!(acks(&effects).is_empty());
    }

    /// The open viewer's status-line notice.
    fn notice(state: &State) -> (StatusKind, String) {
        let (kind, text, _) = state
            .viewer
            .as_ref()
            .and_then(|v| v.notice.clone())
            .expect("a notice");
        (kind, text)
    }

    #[test]
    fn a_stream_the_workstation_ends_says_why_until_a_new_one_starts() {
        let mut state = viewing(false);
        let ended = |stream: u64, reason: &str| {
            NetEvent::Event(HubEvent::StreamEnded {
                stream,
                reason: reason.into(),
            })
        };
        // Another stream's end is not this viewer's business.
        net(&mut state, ended(STREAM + 1, "not ours"));
        assert!(
            state
                .viewer
                .as_ref()
                .is_some_and(|v| v.stream == Some(STREAM) && v.notice.is_none())
        );
        net(
            &mut state,
            ended(STREAM, "the screen source stopped: X display :3 went away"),
        );
        let (kind, text) = notice(&state);
        assert_eq!(kind, StatusKind::Error);
        assert!(text.contains("X display :3 went away"), "{text}");
        assert!(
            state.viewer.as_ref().is_some_and(|v| v.stream.is_none()),
            "the viewer stays open on the last picture, without a stream"
        );
        // Unlike other notices, the reason stays while there is no picture.
        let later = state.now + Duration::seconds(60);
        update(&mut state, Msg::Tick(later));
        assert!(notice(&state).1.contains("went away"));
        // Resizing asks again; once a stream runs, the reason goes.
        let effects = update(
            &mut state,
            Msg::Resize {
                width: 120,
                height: 40,
            },
        );
        let [(id, ..)] = &watches(&effects)[..] else {
            panic!("expected a Watch, got {effects:?}");
        };
        watching(&mut state, *id);
        assert!(state.viewer.as_ref().is_some_and(|v| v.notice.is_none()));
    }

    #[test]
    fn view_only_toggle_stops_all_input_and_shows_in_the_status_line() {
        let mut state = viewing(false);
        pixels(
            &mut state,
            STREAM,
            1,
            (80, 45),
            Rect::new(0, 0, 1, 1),
            [9, 9, 9],
        );
        ctrl(&mut state, ']');
        key(&mut state, KeyCode::Char('v'));
        assert_eq!(state.layer(), Layer::Desktop, "back to the desktop");
        assert!(state.viewer.as_ref().is_some_and(|v| v.view_only));
        let mut effects = key(&mut state, KeyCode::Char('a'));
        effects.extend(mouse(
            &mut state,
            MouseEventKind::Down(MouseButton::Left),
            3,
            3,
        ));
        effects.extend(update(&mut state, Msg::Paste("rm -rf".into())));
        assert!(inputs(&effects).is_empty(), "{effects:?}");
        // Ctrl-Alt-Del is not sent either, and says so.
        ctrl(&mut state, ']');
        let effects = key(&mut state, KeyCode::Char('x'));
        assert!(inputs(&effects).is_empty(), "{effects:?}");
        let (_, status) = notice(&state);
        assert!(status.contains("not sent"), "{status}");
        // v again: control again.
        ctrl(&mut state, ']');
        key(&mut state, KeyCode::Char('v'));
        assert_eq!(inputs(&key(&mut state, KeyCode::Char('a'))), down_up(0x61));
    }

    #[test]
    fn ctrl_alt_del_is_three_downs_then_three_ups() {
        let mut state = viewing(false);
        ctrl(&mut state, ']');
        let sent = inputs(&key(&mut state, KeyCode::Char('x')));
        let k = |keysym, down| (STREAM, InputEvent::Key { keysym, down });
        assert_eq!(
            sent,
            [
                k(0xffe3, true),
                k(0xffe9, true),
                k(0xffff, true),
                k(0xffff, false),
                k(0xffe9, false),
                k(0xffe3, false)
            ]
        );
        assert_eq!(state.layer(), Layer::Desktop);
    }

    #[test]
    fn screenshot_saves_the_picture_and_shows_the_path() {
        let mut state = viewing(false);
        pixels(
            &mut state,
            STREAM,
            1,
            (80, 45),
            Rect::new(2, 3, 4, 5),
            [200, 10, 30],
        );
        // s: the stream is asked at the remote's own size for one whole picture.
        ctrl(&mut state, ']');
        let effects = key(&mut state, KeyCode::Char('s'));
        let [(_, _, 1920, 1080)] = &watches(&effects)[..] else {
            panic!("expected a Watch at 1920x1080, got {effects:?}");
        };
        assert!(notice(&state).1.contains("Taking a screenshot"));
        // The picture comes in two bands; the view keeps showing what it showed.
        let top = [10, 20, 30];
        let bottom = [40, 50, 60];
        let effects = pixels(
            &mut state,
            STREAM,
            2,
            (1920, 1080),
            Rect::new(0, 0, 1920, 540),
            top,
        );
        assert_eq!(acks(&effects), [(STREAM, 2)]);
        assert!(
            !effects
                .iter()
                .any(|e| matches!(e, Effect::SaveScreenshot { .. }))
        );
        let effects = pixels(
            &mut state,
            STREAM,
            3,
            (1920, 1080),
            Rect::new(0, 540, 1920, 540),
            bottom,
        );
        let shots: Vec<_> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::SaveScreenshot {
                    picture,
                    hostname,
                    at,
                } => Some((picture, hostname, at)),
                _ => None,
            })
            .collect();
        let [(picture, hostname, at)] = &shots[..] else {
            panic!("expected a SaveScreenshot, got {effects:?}");
        };
        assert_eq!((picture.width(), picture.height()), (1920, 1080));
        assert_eq!(picture.pixel(10, 10), [10, 20, 30, 255]);
        assert_eq!(picture.pixel(1900, 1000), [40, 50, 60, 255]);
        assert_eq!(hostname.as_str(), "reception");
        assert_eq!(**at, state.now);
        // Then back to the view's size; the view was never replaced by the big picture.
        let [(_, _, 80, 46)] = &watches(&effects)[..] else {
            panic!("expected a Watch back at 80x46, got {effects:?}");
        };
        let d = desktop(&state);
        assert_eq!((d.framebuffer.width(), d.framebuffer.height()), (80, 45));
        assert_eq!(d.framebuffer.pixel(3, 4), [200, 10, 30, 255]);
        // A late frame at the big size is stale: acked, not drawn.
        let effects = pixels(
            &mut state,
            STREAM,
            4,
            (1920, 1080),
            Rect::new(0, 0, 8, 8),
            top,
        );
        assert_eq!(acks(&effects), [(STREAM, 4)]);
        assert_eq!(desktop(&state).framebuffer.width(), 80);

        // A picture that never comes: given up after a while, and the view asked again.
        ctrl(&mut state, ']');
        key(&mut state, KeyCode::Char('s'));
        let later = state.now + Duration::seconds(16);
        let effects = update(&mut state, Msg::Tick(later));
        let [(_, _, 80, 46)] = &watches(&effects)[..] else {
            panic!("expected a Watch back at 80x46, got {effects:?}");
        };
        assert_eq!(notice(&state).0, StatusKind::Error);
        assert!(desktop(&state).grab.is_none());

        let path = std::path::PathBuf::from("/home/ann/Downloads/tether-reception-1.png");
        update(&mut state, Msg::ScreenshotSaved(Ok(path)));
        let (kind, text) = notice(&state);
        assert_eq!(kind, StatusKind::Success);
        // The file's name first, so a narrow status line cuts the folder, not the name.
        assert!(
            text.starts_with("Saved tether-reception-1.png in /home/ann/Downloads"),
            "{text}"
        );
        update(&mut state, Msg::ScreenshotSaved(Err("disk full".into())));
        let (kind, text) = notice(&state);
        assert_eq!(kind, StatusKind::Error);
        assert!(text.contains("disk full"));
        // Notices go after a few seconds.
        let later = state.now + Duration::seconds(11);
        update(&mut state, Msg::Tick(later));
        assert!(state.viewer.as_ref().is_some_and(|v| v.notice.is_none()));
    }

    #[test]
    fn a_desktop_drawn_as_text_instead_of_graphics_says_why() {
        let why = "inside tmux without allow-passthrough: the picture is drawn as text";
        for (note, mode) in [
            (Some(why), RenderMode::HalfBlock),
            (None, RenderMode::HalfBlock),
            (Some(why), RenderMode::Sixel { tmux: false }),
        ] {
            let mut state = logged_in();
            state.render_note = note.map(str::to_owned);
            state.render_modes = vec![mode];
            state.workstations.update_nth(0, |w| {
                w.screen = Some(ScreenSize {
                    width: 800,
                    height: 600,
                })
            });
            update(
                &mut state,
                Msg::Resize {
                    width: 100,
                    height: 30,
                },
            );
            let effects = key(&mut state, KeyCode::Enter);
            let [(id, ConsoleRequest::Connect { .. })] = &requests(&effects)[..] else {
                panic!("expected a Connect, got {effects:?}");
            };
            let opened = session("s1", ("w1", "reception"), "ann", 0);
            net(
                &mut state,
                NetEvent::Reply {
                    id: *id,
                    result: Ok(ConsoleReply::Session { session: opened }),
                },
            );
            let shown = state.viewer.as_ref().and_then(|v| v.notice.clone());
            match (note, mode.glyphs()) {
                (Some(_), Some(_)) => assert_eq!(
                    shown.map(|(kind, text, _)| (kind, text)),
                    Some((StatusKind::Warning, why.to_owned()))
                ),
                // Nothing to explain: no note, or graphics after all.
                _ => assert!(shown.is_none(), "{mode:?}: {shown:?}"),
            }
        }
    }

    #[test]
    fn fit_goes_back_to_the_whole_screen() {
        let mut state = viewing(false);
        ctrl(&mut state, ']');
        key(&mut state, KeyCode::Char('+'));
        key(&mut state, KeyCode::Right);
        assert_eq!(desktop(&state).zoom, 2);
        let effects = key(&mut state, KeyCode::Char('f'));
        assert_eq!(state.layer(), Layer::Desktop);
        assert_eq!(desktop(&state).zoom, 1);
        assert_eq!(desktop(&state).pan, (0, 0));
        let [(_, _, 80, 46)] = &watches(&effects)[..] else {
            panic!("expected a Watch at the fitted size, got {effects:?}");
        };
        // Already fitted: nothing to ask.
        ctrl(&mut state, ']');
        assert!(watches(&key(&mut state, KeyCode::Char('f'))).is_empty());
    }

    #[test]
    fn render_mode_cycles_the_supported_modes_at_their_pixel_sizes() {
        let mut state = logged_in();
        state.render_modes = vec![
            RenderMode::Sixel { tmux: false },
            RenderMode::HalfBlock,
            RenderMode::Sextant,
        ];
        state.cell = CellSize::new(10, 20);
        state
            .workstations
            .update_nth(0, |w| w.screen = Some(SCREEN));
        state.viewer = None;
        let (mut state, effects) = {
            let effects = key(&mut state, KeyCode::Enter);
            let [(id, ConsoleRequest::Connect { .. })] = &requests(&effects)[..] else {
                panic!("expected a Connect, got {effects:?}");
            };
            let opened = session("s1", ("w1", "reception"), "ann", 0);
            let effects = net(
                &mut state,
                NetEvent::Reply {
                    id: *id,
                    result: Ok(ConsoleReply::Session { session: opened }),
                },
            );
            (state, effects)
        };
        // Sixel first: the terminal's pixels, 80x23 cells of 10x20.
        assert_eq!(desktop(&state).mode, RenderMode::Sixel { tmux: false });
        let [(id, _, 800, 460)] = &watches(&effects)[..] else {
            panic!("expected a Watch at 800x460, got {effects:?}");
        };
        watching(&mut state, *id);
        // A graphics frame is kept as damage for the painter, not drawn as cells.
        pixels(
            &mut state,
            STREAM,
            1,
            (800, 460),
            Rect::new(0, 0, 800, 460),
            [1, 2, 3],
        );
        assert_eq!(
            state
                .viewer
                .as_mut()
                .and_then(|v| v.desktop.as_mut())
                .and_then(|d| d.take_damage()),
            Some(vec![Rect::new(0, 0, 800, 460)])
        );
        pixels(
            &mut state,
            STREAM,
            2,
            (800, 460),
            Rect::new(5, 6, 7, 8),
            [1, 2, 3],
        );
        assert_eq!(
            state
                .viewer
                .as_mut()
                .and_then(|v| v.desktop.as_mut())
                .and_then(|d| d.take_damage()),
            Some(vec![Rect::new(5, 6, 7, 8)])
        );
        let mut modes = Vec::new();
        let mut sizes = Vec::new();
        for _ in 0..3 {
            ctrl(&mut state, ']');
            let effects = key(&mut state, KeyCode::Char('m'));
            modes.push(desktop(&state).mode);
            sizes.extend(watches(&effects).into_iter().map(|(_, _, w, h)| (w, h)));
        }
        assert_eq!(
            modes,
            [
                RenderMode::HalfBlock,
                RenderMode::Sextant,
                RenderMode::Sixel { tmux: false }
            ]
        );
        // Sextants on 10x20 cells: 5x6.7-pixel glyph pixels, asked in 5x5 squares.
        assert_eq!(sizes, [(80, 46), (160, 92), (800, 460)]);
        assert!(desktop(&state).mode_label().contains("sixel"));
    }

    /// A terminal of `size` cells with `cell`-pixel cells drawing in `mode`, viewing a remote
    /// of `screen` pixels: the state after `Watching`, and the size first asked.
    fn viewing_at(
        screen: ScreenSize,
        mode: RenderMode,
        cell: CellSize,
        (width, height): (u16, u16),
    ) -> (State, (u32, u32)) {
        let mut state = logged_in();
        state.render_modes = vec![mode, RenderMode::HalfBlock];
        state.cell = cell;
        state
            .workstations
            .update_nth(0, |w| w.screen = Some(screen));
        update(&mut state, Msg::Resize { width, height });
        let effects = key(&mut state, KeyCode::Enter);
        let [(id, ConsoleRequest::Connect { .. })] = &requests(&effects)[..] else {
            panic!("expected a Connect, got {effects:?}");
        };
        let opened = session("s1", ("w1", "reception"), "ann", 0);
        let effects = net(
            &mut state,
            NetEvent::Reply {
                id: *id,
                result: Ok(ConsoleReply::Session { session: opened }),
            },
        );
        let [(id, _, w, h)] = &watches(&effects)[..] else {
            panic!("expected one Watch, got {effects:?}");
        };
        let asked = (*w, *h);
        watching(&mut state, *id);
        (state, asked)
    }

    /// The menu (it stays open between zoom steps), then a zoom key: the pixel sizes asked
    /// (none when the zoom did not change).
    fn zoom_in(state: &mut State) -> Vec<(u32, u32)> {
        if state
            .viewer
            .as_ref()
            .is_some_and(|v| v.mode != crate::console::state::ViewerMode::Menu)
        {
            ctrl(state, ']');
        }
        let effects = key(state, KeyCode::Char('+'));
        watches(&effects)
            .into_iter()
            .map(|(_, _, w, h)| (w, h))
            .collect()
    }

    #[test]
    fn zooming_sixel_on_a_wide_terminal_stays_within_the_hub_and_the_remote() {
        // 192+ columns of 10x20 pixels: zoom 3 once asked for 6000x3540, which the hub
        // refuses, closing the viewer.
        let big = ScreenSize {
            width: 5120,
            height: 2880,
        };
        let sixel = RenderMode::Sixel { tmux: false };
        let (mut state, first) = viewing_at(big, sixel, CellSize::new(10, 20), (200, 60));
        assert_eq!(first, (2000, 1180));
        assert_eq!(zoom_in(&mut state), [(4000, 2360)]);
        // 6000x3540 is more than the remote has (5120 wide), and more than the hub sends.
        assert_eq!(zoom_in(&mut state), [(4096, 2416)]);
        assert_eq!(desktop(&state).zoom, 3);
        // Zoom 4 would get no more pixels: it stays at 3 and says why.
        assert!(zoom_in(&mut state).is_empty());
        assert_eq!(desktop(&state).zoom, 3);
        let (_, text) = notice(&state);
        assert!(
            text.contains("Zoom stays at 3x") && text.contains("4096"),
            "{text}"
        );
        assert!(state.viewer.is_some(), "the viewer stays open");
        // Back to the whole screen (the menu is still open): the note is stale, and goes.
        key(&mut state, KeyCode::Char('f'));
        assert!(
            state.viewer.as_ref().is_some_and(|v| v.notice.is_none()),
            "the zoom note outlived the fit"
        );

        // A 1920x1080 remote already fills 200x59 cells of 10x20 at its own size: the
        // viewer does not ask the agent to upscale it, and zooming gets nothing more.
        let (mut state, first) = viewing_at(SCREEN, sixel, CellSize::new(10, 20), (200, 60));
        assert_eq!(first, (1920, 1132));
        assert!(zoom_in(&mut state).is_empty());
        assert_eq!(desktop(&state).zoom, 1);
        let (_, text) = notice(&state);
        assert!(text.contains("every pixel of the remote screen"), "{text}");
        // Half blocks draw far fewer pixels than the remote has: zooming works as before.
        let (mut state, first) = viewing_at(
            SCREEN,
            RenderMode::HalfBlock,
            CellSize::new(10, 20),
            (200, 60),
        );
        assert_eq!(first, (200, 118));
        assert_eq!(zoom_in(&mut state), [(400, 236)]);
    }

    #[test]
    fn a_screenshot_of_a_remote_larger_than_the_hub_sends_is_scaled_and_says_so() {
        let huge = ScreenSize {
            width: 6000,
            height: 3000,
        };
        let (mut state, _) =
            viewing_at(huge, RenderMode::HalfBlock, CellSize::new(10, 20), (80, 24));
        ctrl(&mut state, ']');
        let effects = key(&mut state, KeyCode::Char('s'));
        let [(_, _, 4096, 2048)] = &watches(&effects)[..] else {
            panic!("expected a Watch at 4096x2048, got {effects:?}");
        };
        let (_, text) = notice(&state);
        assert!(
            text.contains("scaled from 6000x3000 to 4096x2048"),
            "{text}"
        );
        let effects = pixels(
            &mut state,
            STREAM,
            1,
            (4096, 2048),
            Rect::new(0, 0, 4096, 2048),
            [7, 8, 9],
        );
        let [picture] = &effects
            .iter()
            .filter_map(|e| match e {
                Effect::SaveScreenshot { picture, .. } => Some(picture),
                _ => None,
            })
            .collect::<Vec<_>>()[..]
        else {
            panic!("expected a SaveScreenshot, got {effects:?}");
        };
        assert_eq!((picture.width(), picture.height()), (4096, 2048));
        let path = std::path::PathBuf::from("/tmp/tether-reception-1.png");
        update(&mut state, Msg::ScreenshotSaved(Ok(path)));
        let (kind, text) = notice(&state);
        assert_eq!(kind, StatusKind::Success);
        assert!(text.contains("scaled to 4096x2048"), "{text}");
        // The next one of a screen the hub sends whole says nothing of scaling.
        update(
            &mut state,
            Msg::ScreenshotSaved(Ok(std::path::PathBuf::from("/tmp/x.png"))),
        );
        assert!(!notice(&state).1.contains("scaled"));
    }
}

#[test]
fn while_a_large_team_loads_the_filter_also_asks_the_hub_and_shows_its_matches() {
    let mut state = logged_in();
    // Pages still to come.
    state.workstations_loading = Some(Some(20_000));
    key(&mut state, KeyCode::Char('/'));
    let first = key(&mut state, KeyCode::Char('o'));
    let second = key(&mut state, KeyCode::Char('f'));
    let [(stale, ConsoleRequest::ListWorkstations { filter, .. })] = &requests(&first)[..] else {
        panic!("expected a filtered list request, got {first:?}");
    };
    assert_eq!(filter.as_deref(), Some("o"));
    let [(id, ConsoleRequest::ListWorkstations { filter, .. })] = &requests(&second)[..] else {
        panic!("expected a filtered list request, got {second:?}");
    };
    assert_eq!(filter.as_deref(), Some("of"));
    // Only the newest filter's answer counts.
    assert!(!state.pending.contains_key(stale));
    let far = ws(
        "w19999",
        ACME,
        "office-19999",
        "Debian 12",
        "ops",
        Presence::Online,
    );
    crate::console::update::test_support::reply(
        &mut state,
        *id,
        Ok(ConsoleReply::Workstations {
            workstations: vec![far],
            next: None,
            total: Some(1),
        }),
    );
    let rows = state.visible_workstations();
    // The hub's match, not loaded yet, beside the loaded one.
    assert_eq!(
        rows.iter().map(|w| w.hostname.as_str()).collect::<Vec<_>>(),
        ["office-19999", "office-mac"]
    );
}

#[test]
fn a_fully_loaded_team_filters_without_asking_the_hub() {
    let mut state = logged_in();
    assert_eq!(state.workstations_loading, None);
    key(&mut state, KeyCode::Char('/'));
    assert!(requests(&key(&mut state, KeyCode::Char('o'))).is_empty());
}

#[test]
fn the_hubs_messages_keep_the_case_of_the_names_they_begin_with() {
    assert_eq!(sentence("vm went offline"), "vm went offline.");
    assert_eq!(sentence("PC-7 went offline."), "PC-7 went offline.");
    assert_eq!(sentence("  "), "");
}
