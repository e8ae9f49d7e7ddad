//! The console's one-time password flows (issue 5), driven through the public `update` with a
//! fixed clock: the `p` dialog (request, resend, emergency), the code prompt before connecting,
//! and the admins' outbox (`O`). Snapshots of the dialogs at 80x24.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tether::console::keymap::{Keymap, Layer};
use tether::console::net::{NetCommand, NetEvent};
use tether::console::state::{Dialog, State};
use tether::console::theme::Theme;
use tether::console::ui;
use tether::console::update::{self, Effect, Msg, Startup};
use tether::protocol::{
    ClientInfo, ConsoleReply, ConsoleRequest, ErrorCode, OtpChannel, OtpDelivery, OtpIssued,
    OutboxMessage, Presence, ProtocolError, Refusal, Role, SecretRequirements, UserInfo,
    WorkstationInfo,
};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 30, 0)
        .single()
        .expect("valid date")
}

fn terminal(state: &State) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("test terminal");
    let theme = Theme::builtin("dark").expect("theme");
    terminal
        .draw(|frame| ui::draw(state, &theme, frame))
        .expect("draw");
    terminal
}

fn render(state: &State) -> String {
    terminal(state).backend().to_string()
}

fn buffer(state: &State) -> ratatui::buffer::Buffer {
    terminal(state).backend().buffer().clone()
}

fn press(state: &mut State, code: KeyCode) -> Vec<Effect> {
    update::update(state, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn type_text(state: &mut State, text: &str) {
    for c in text.chars() {
        press(state, KeyCode::Char(c));
    }
}

fn requests(effects: &[Effect]) -> Vec<(u64, ConsoleRequest)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Net(NetCommand::Request { id, body }) => Some((*id, body.clone())),
            _ => None,
        })
        .collect()
}

fn reply(state: &mut State, id: u64, result: Result<ConsoleReply, ProtocolError>) -> Vec<Effect> {
    update::update(state, Msg::Net(NetEvent::Reply { id, result }))
}

fn ws(id: &str, hostname: &str, passcode: bool, otp: bool) -> WorkstationInfo {
    WorkstationInfo {
        id: id.into(),
        client_id: "c-acme".into(),
        client_name: "Acme Dental".into(),
        hostname: hostname.into(),
        os: "Windows 11".into(),
        user: "maria".into(),
        screen: None,
        agent_version: "0.1.0".into(),
        presence: Presence::Online,
        last_seen: now(),
        enrolled_at: now() - Duration::days(20),
        unattended: Default::default(),
        requires: SecretRequirements {
            passcode,
            password: false,
        },
        otp_required: otp,
    }
}

fn user(role: Role) -> UserInfo {
    UserInfo {
        id: "u-ann".into(),
        name: "ann".into(),
        email: "ann@support.example".into(),
        role,
        team_id: "t-blue".into(),
        team: "Blue".into(),
    }
}

/// Logged in as `role`, three workstations: reception-pc (passcode and OTP), till-1 (OTP
/// only), front-desk (nothing). The first row is selected.
fn logged_in(role: Role) -> State {
    let themes = vec!["dark".to_owned()];
    let mut state = State::new(now(), Keymap::default(), themes, 0);
    update::update(
        &mut state,
        Msg::Resize {
            width: 80,
            height: 24,
        },
    );
    update::start(
        &mut state,
        Startup::Preset {
            hub: "wss://hub.example.org:7443".into(),
            fingerprint: "SHA256:00".into(),
            token: "tok".into(),
        },
    );
    let effects = update::update(
        &mut state,
        Msg::Net(NetEvent::LoggedIn {
            user: user(role),
            token: None,
        }),
    );
    for (id, body) in requests(&effects) {
        let result = match body {
            ConsoleRequest::ListClients { .. } => Ok(ConsoleReply::Clients {
                next: None,
                total: None,
                clients: vec![ClientInfo {
                    id: "c-acme".into(),
                    name: "Acme Dental".into(),
                    created_at: now(),
                }],
            }),
            ConsoleRequest::ListWorkstations { .. } => Ok(ConsoleReply::Workstations {
                next: None,
                total: None,
                workstations: vec![
                    ws("w1", "reception-pc", true, true),
                    ws("w2", "till-1", false, true),
                    ws("w3", "front-desk", false, false),
                ],
            }),
            ConsoleRequest::ListSessions { .. } => Ok(ConsoleReply::Sessions {
                next: None,
                total: None,
                sessions: Vec::new(),
            }),
            ConsoleRequest::TwoFactorStatus => Ok(ConsoleReply::TwoFactor {
                status: Default::default(),
            }),
            other => panic!("unexpected request {other:?}"),
        };
        reply(&mut state, id, result);
    }
    state.focus = tether::console::state::Pane::Workstations;
    state
}

fn select(state: &mut State, hostname: &str) {
    press(state, KeyCode::Char('g'));
    for _ in 0..5 {
        if state.selected().is_some_and(|w| w.hostname == hostname) {
            return;
        }
        press(state, KeyCode::Char('j'));
    }
    panic!("{hostname} not selectable");
}

fn issued(resent: bool, emergency: bool, channel: OtpChannel, to: &str) -> OtpIssued {
    OtpIssued {
        id: "otp_1".into(),
        workstation_id: "w2".into(),
        hostname: "till-1".into(),
        issued_at: now(),
        expires_at: now() + Duration::minutes(30),
        emergency,
        resent,
        delivery: OtpDelivery {
            channel,
            to: vec![to.into()],
            error: None,
        },
    }
}

/// A technician's `p` dialog for till-1 after requesting a code: it went to the outbox.
fn otp_dialog() -> State {
    let mut state = logged_in(Role::Technician);
    select(&mut state, "till-1");
    press(&mut state, KeyCode::Char('p'));
    let effects = press(&mut state, KeyCode::Char('r'));
    let [(id, ConsoleRequest::RequestOtp { .. })] = &requests(&effects)[..] else {
        panic!("expected a RequestOtp, got {effects:?}");
    };
    reply(
        &mut state,
        *id,
        Ok(ConsoleReply::Otp {
            otp: issued(false, false, OtpChannel::Outbox, "ann@support.example"),
        }),
    );
    state
}

#[test]
fn the_table_marks_workstations_that_require_an_otp() {
    let state = logged_in(Role::Technician);
    let screen = render(&state);
    assert!(screen.contains("passcode+otp"), "{screen}");
}

#[test]
fn p_requests_an_otp_and_shows_where_it_went() {
    let mut state = logged_in(Role::Technician);
    select(&mut state, "front-desk");
    assert!(press(&mut state, KeyCode::Char('p')).is_empty());
    assert!(state.dialog.is_none(), "nothing to request for front-desk");

    select(&mut state, "till-1");
    press(&mut state, KeyCode::Char('p'));
    assert_eq!(state.layer(), Layer::Otp);
    let effects = press(&mut state, KeyCode::Char('r'));
    let [
        (
            id,
            ConsoleRequest::RequestOtp {
                workstation,
                emergency: None,
            },
        ),
    ] = &requests(&effects)[..]
    else {
        panic!("expected a RequestOtp, got {effects:?}");
    };
    assert_eq!(workstation, "w2");
    assert!(
        press(&mut state, KeyCode::Char('r')).is_empty(),
        "one request at a time"
    );
    reply(
        &mut state,
        *id,
        Ok(ConsoleReply::Otp {
            otp: issued(false, false, OtpChannel::Outbox, "ann@support.example"),
        }),
    );
    let screen = render(&state);
    assert!(
        screen.contains("outbox") && screen.contains("10:00 UTC"),
        "{screen}"
    );
    insta::assert_snapshot!("otp_dialog_80x24", screen);

    // Resend: the same code again, by e-mail this time.
    let effects = press(&mut state, KeyCode::Char('s'));
    let [(id, ConsoleRequest::ResendOtp { workstation })] = &requests(&effects)[..] else {
        panic!("expected a ResendOtp, got {effects:?}");
    };
    assert_eq!(workstation, "w2");
    reply(
        &mut state,
        *id,
        Ok(ConsoleReply::Otp {
            otp: issued(true, false, OtpChannel::Email, "ann@support.example"),
        }),
    );
    assert!(render(&state).contains("Sent again: e-mailed to ann@support.example"));
    press(&mut state, KeyCode::Esc);
    assert!(state.dialog.is_none());
}

#[test]
fn a_second_request_within_the_hour_says_when() {
    let mut state = logged_in(Role::Technician);
    select(&mut state, "till-1");
    press(&mut state, KeyCode::Char('p'));
    let effects = press(&mut state, KeyCode::Char('r'));
    let [(id, _)] = &requests(&effects)[..] else {
        panic!("one request");
    };
    let mut error = ProtocolError::new(
        ErrorCode::RateLimited,
        "a one-time password for till-1 was issued at 2026-03-02 09:10 UTC: a new one is possible in 40 min (at 2026-03-02 10:10 UTC); resend the current one meanwhile",
    );
    error.retry_after_secs = Some(2400);
    reply(&mut state, *id, Err(error));
    let screen = render(&state);
    assert!(screen.contains("40 min"), "{screen}");
    assert_eq!(state.layer(), Layer::Otp, "the dialog stays for resend");
}

#[test]
fn an_emergency_request_carries_its_reason() {
    let mut state = logged_in(Role::Technician);
    select(&mut state, "till-1");
    press(&mut state, KeyCode::Char('p'));
    press(&mut state, KeyCode::Char('e'));
    assert_eq!(state.layer(), Layer::OtpReason);
    assert!(
        press(&mut state, KeyCode::Enter).is_empty(),
        "a reason first"
    );
    assert!(render(&state).contains("Say why you need access now"));
    // Back to the choice and in again: a fresh field.
    press(&mut state, KeyCode::Esc);
    assert_eq!(state.layer(), Layer::Otp);
    press(&mut state, KeyCode::Char('e'));
    type_text(&mut state, "till down at opening, mail unreachable");
    let screen = render(&state);
    insta::assert_snapshot!("otp_emergency_80x24", screen);
    let effects = press(&mut state, KeyCode::Enter);
    let [
        (
            id,
            ConsoleRequest::RequestOtp {
                emergency: Some(reason),
                ..
            },
        ),
    ] = &requests(&effects)[..]
    else {
        panic!("expected an emergency RequestOtp, got {effects:?}");
    };
    assert_eq!(reason, "till down at opening, mail unreachable");
    reply(
        &mut state,
        *id,
        Ok(ConsoleReply::Otp {
            otp: issued(false, true, OtpChannel::Email, "boss@support.example"),
        }),
    );
    assert!(render(&state).contains("Emergency request sent: e-mailed to boss@support.example"));
}

#[test]
fn connecting_asks_for_the_otp_then_the_passcode_and_sends_both() {
    let mut state = logged_in(Role::Technician);
    select(&mut state, "reception-pc");
    assert!(press(&mut state, KeyCode::Enter).is_empty(), "asks first");
    assert_eq!(state.layer(), Layer::OtpPrompt);
    type_text(&mut state, "abcd-efgh");
    press(&mut state, KeyCode::Enter);
    assert!(
        render(&state).contains("16 characters"),
        "a short code is refused before it is sent"
    );
    // Cancel drops it; Enter again starts afresh.
    press(&mut state, KeyCode::Esc);
    assert!(state.dialog.is_none());
    press(&mut state, KeyCode::Enter);
    type_text(&mut state, "abcd-efgh-jkmn-pqrs");
    let screen = render(&state);
    insta::assert_snapshot!("otp_prompt_80x24", screen);
    assert!(
        press(&mut state, KeyCode::Enter).is_empty(),
        "then the passcode"
    );
    assert_eq!(state.layer(), Layer::Secret);
    type_text(&mut state, "k7q2m9");
    let effects = press(&mut state, KeyCode::Enter);
    let [(id, ConsoleRequest::Connect { secret, otp, .. })] = &requests(&effects)[..] else {
        panic!("expected a Connect, got {effects:?}");
    };
    assert_eq!(secret.as_ref().map(|s| s.expose()), Some("k7q2m9"));
    assert_eq!(
        otp.as_ref().map(|s| s.expose()),
        Some("abcd-efgh-jkmn-pqrs")
    );
    assert!(
        !format!("{state:?}").contains("jkmn"),
        "nothing of the code stays in the state once sent"
    );

    // The hub says the code is used: the prompt comes back, saying so.
    let mut error = ProtocolError::new(
        ErrorCode::Forbidden,
        "that one-time password was already used: request a new one",
    );
    error.refusal = Some(Refusal::OtpInvalid);
    reply(&mut state, *id, Err(error));
    assert_eq!(state.layer(), Layer::OtpPrompt);
    assert!(render(&state).contains("already used"));
}

#[test]
fn a_missing_otp_refusal_turns_into_the_prompt() {
    let mut state = logged_in(Role::Technician);
    select(&mut state, "front-desk");
    let effects = press(&mut state, KeyCode::Enter);
    let [(id, ConsoleRequest::Connect { otp: None, .. })] = &requests(&effects)[..] else {
        panic!("expected a Connect without a code, got {effects:?}");
    };
    // An admin turned the requirement on meanwhile.
    let mut error = ProtocolError::new(
        ErrorCode::Forbidden,
        "front-desk requires a one-time password: request one",
    );
    error.refusal = Some(Refusal::OtpRequired);
    reply(&mut state, *id, Err(error));
    assert_eq!(state.layer(), Layer::OtpPrompt);
    let screen = render(&state);
    assert!(
        screen.contains("front-desk requires a one-time password")
            && screen.contains("No code yet?"),
        "{screen}"
    );
}

#[test]
fn admins_read_the_outbox_and_technicians_are_told_they_cannot() {
    let mut tech = logged_in(Role::Technician);
    assert!(press(&mut tech, KeyCode::Char('O')).is_empty());
    assert!(tech.dialog.is_none());

    let mut state = logged_in(Role::Admin);
    let effects = press(&mut state, KeyCode::Char('O'));
    let [(id, ConsoleRequest::ListOutbox { .. })] = &requests(&effects)[..] else {
        panic!("expected ListOutbox, got {effects:?}");
    };
    assert!(matches!(state.dialog, Some(Dialog::Outbox(_))));
    let messages = vec![
        OutboxMessage {
            id: 2,
            at: now(),
            to: "ann@support.example, boss@support.example".into(),
            subject: "EMERGENCY one-time password for bob on till-1".into(),
            body: "bob (bob@support.example) asked for emergency access to till-1 (w2).\n\nReason: till down\n\nIf the reason holds, pass this one-time password on to them:\n\n    7KQM-2XPA-H9RD-WT4E\n".into(),
            kind: "emergency".into(),
            why: "no mail server configured".into(),
        },
        OutboxMessage {
            id: 1,
            at: now() - Duration::minutes(5),
            to: "bob@support.example".into(),
            subject: "Tether one-time password for till-1".into(),
            body: "Your one-time password for till-1 (w2):\n\n    ABCD-EFGH-JKMN-PQRS\n".into(),
            kind: "otp".into(),
            why: "e-mail failed: connection refused".into(),
        },
    ];
    reply(
        &mut state,
        *id,
        Ok(ConsoleReply::Outbox {
            messages,
            next: None,
            total: None,
        }),
    );
    let screen = render(&state);
    assert!(
        screen.contains("7KQM-2XPA-H9RD-WT4E") && screen.contains("Outbox · 2"),
        "{screen}"
    );
    insta::assert_snapshot!("outbox_80x24", screen);
    press(&mut state, KeyCode::Char('j'));
    press(&mut state, KeyCode::Char('j'));
    assert!(
        !render(&state).contains("#2 2026"),
        "scrolled past the first header"
    );
    let effects = press(&mut state, KeyCode::Char('r'));
    assert!(matches!(
        &requests(&effects)[..],
        [(_, ConsoleRequest::ListOutbox { .. })]
    ));
    press(&mut state, KeyCode::Esc);
    assert!(state.dialog.is_none());
}

#[test]
fn help_lists_the_otp_keys() {
    let keymap = Keymap::default();
    let help = keymap.help();
    let all: Vec<&str> = help
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|(_, d)| *d))
        .collect();
    assert!(
        all.iter()
            .any(|d| d.starts_with("One-time password for the selected"))
    );
    assert!(all.iter().any(|d| d.starts_with("The hub's outbox")));
    assert_eq!(
        keymap
            .key_for(Layer::Main, tether::console::action::Action::Otp)
            .as_deref(),
        Some("p")
    );
}

#[test]
fn admins_require_an_otp_from_the_table_and_technicians_cannot() {
    // A technician: told, nothing sent.
    let mut state = logged_in(Role::Technician);
    select(&mut state, "front-desk");
    assert!(requests(&press(&mut state, KeyCode::Char('P'))).is_empty());
    assert!(
        state
            .status
            .as_ref()
            .is_some_and(|s| s.text.contains("Only admins")),
        "{:?}",
        state.status
    );

    // An admin: P asks the hub, and the reply marks the row.
    let mut state = logged_in(Role::Admin);
    select(&mut state, "front-desk");
    // It changes every technician's way in: asked first, y confirms.
    assert!(requests(&press(&mut state, KeyCode::Char('P'))).is_empty());
    assert_eq!(state.layer(), Layer::Confirm);
    let effects = press(&mut state, KeyCode::Char('y'));
    let [
        (
            id,
            ConsoleRequest::SetWorkstationOtp {
                workstation,
                required: true,
            },
        ),
    ] = &requests(&effects)[..]
    else {
        panic!("expected SetWorkstationOtp, got {effects:?}");
    };
    assert_eq!(workstation, "w3");
    reply(
        &mut state,
        *id,
        Ok(ConsoleReply::Workstation {
            workstation: ws("w3", "front-desk", false, true),
        }),
    );
    let row = state
        .workstations
        .iter()
        .find(|w| w.id == "w3")
        .expect("front-desk");
    assert!(row.otp_required);
    assert!(render(&state).contains("otp"), "the Access column shows it");

    // Again: the requirement goes.
    // It changes every technician's way in: asked first, y confirms.
    assert!(requests(&press(&mut state, KeyCode::Char('P'))).is_empty());
    assert_eq!(state.layer(), Layer::Confirm);
    let effects = press(&mut state, KeyCode::Char('y'));
    let [
        (
            id,
            ConsoleRequest::SetWorkstationOtp {
                required: false, ..
            },
        ),
    ] = &requests(&effects)[..]
    else {
        panic!("expected SetWorkstationOtp off, got {effects:?}");
    };
    reply(
        &mut state,
        *id,
        Ok(ConsoleReply::Workstation {
            workstation: ws("w3", "front-desk", false, false),
        }),
    );
    assert!(
        !state
            .workstations
            .iter()
            .any(|w| w.id == "w3" && w.otp_required)
    );
}

#[test]
fn admins_require_an_otp_for_a_clients_group_from_the_clients_pane() {
    use tether::console::state::Pane;
    use tether::protocol::GroupDefaults;
    // A technician: told, nothing sent.
    let mut state = logged_in(Role::Technician);
    state.focus = Pane::Clients;
    assert!(requests(&press(&mut state, KeyCode::Char('P'))).is_empty());
    assert!(
        state
            .status
            .as_ref()
            .is_some_and(|s| s.text.contains("Only admins")),
        "{:?}",
        state.status
    );

    // An admin on Acme Dental in the clients pane: P reads the groups, then sets the opposite.
    let mut state = logged_in(Role::Admin);
    press(&mut state, KeyCode::Tab);
    assert_eq!(state.focus, Pane::Clients);
    press(&mut state, KeyCode::Char('j'));
    assert_eq!(state.selected_client.as_deref(), Some("c-acme"));
    let group = |otp: bool| GroupDefaults {
        client_id: Some("c-acme".into()),
        client_name: Some("Acme Dental".into()),
        requires: SecretRequirements::default(),
        otp,
    };
    for (now, then) in [(false, true), (true, false)] {
        // It changes every technician's way in: asked first, y confirms.
        assert!(requests(&press(&mut state, KeyCode::Char('P'))).is_empty());
        assert_eq!(state.layer(), Layer::Confirm);
        let effects = press(&mut state, KeyCode::Char('y'));
        let [(id, ConsoleRequest::ListGroups { .. })] = &requests(&effects)[..] else {
            panic!("expected ListGroups, got {effects:?}");
        };
        // The team's own group says nothing about Acme's.
        let team = GroupDefaults {
            client_id: None,
            client_name: None,
            requires: SecretRequirements::default(),
            otp: !now,
        };
        let effects = reply(
            &mut state,
            *id,
            Ok(ConsoleReply::Groups {
                next: None,
                total: None,
                groups: vec![team, group(now)],
            }),
        );
        let [(id, ConsoleRequest::SetGroupOtp { client, required })] = &requests(&effects)[..]
        else {
            panic!("expected SetGroupOtp, got {effects:?}");
        };
        assert_eq!(client.as_deref(), Some("c-acme"));
        assert_eq!(*required, then);
        reply(&mut state, *id, Ok(ConsoleReply::Done));
        let status = state
            .status
            .as_ref()
            .map(|s| s.text.clone())
            .unwrap_or_default();
        let expected = if then {
            "Every workstation of Acme Dental's group now requires a one-time password"
        } else {
            "Acme Dental's group no longer requires a one-time password"
        };
        assert!(status.contains(expected), "{status}");
    }

    // "All clients" is the team's own group; a refusal is said, not swallowed.
    press(&mut state, KeyCode::Char('k'));
    assert_eq!(state.selected_client, None);
    // It changes every technician's way in: asked first, y confirms.
    assert!(requests(&press(&mut state, KeyCode::Char('P'))).is_empty());
    assert_eq!(state.layer(), Layer::Confirm);
    let effects = press(&mut state, KeyCode::Char('y'));
    let [(id, ConsoleRequest::ListGroups { .. })] = &requests(&effects)[..] else {
        panic!("expected ListGroups, got {effects:?}");
    };
    let effects = reply(
        &mut state,
        *id,
        Ok(ConsoleReply::Groups {
            next: None,
            total: None,
            groups: Vec::new(),
        }),
    );
    let [
        (
            id,
            ConsoleRequest::SetGroupOtp {
                client: None,
                required: true,
            },
        ),
    ] = &requests(&effects)[..]
    else {
        panic!("expected SetGroupOtp for the team, got {effects:?}");
    };
    reply(
        &mut state,
        *id,
        Err(ProtocolError::new(
            ErrorCode::Forbidden,
            "only admins change security defaults",
        )),
    );
    let status = state
        .status
        .as_ref()
        .map(|s| s.text.clone())
        .unwrap_or_default();
    assert!(
        status.contains("the team's group: the one-time password setting did not change"),
        "{status}"
    );

    // The help says what P does in each pane.
    let help = Keymap::default().help();
    assert!(
        help.iter()
            .flat_map(|(_, rows)| rows)
            .any(|(keys, d)| keys == "P"
                && d.contains("selected workstation")
                && d.contains("clients pane"))
    );
}

#[path = "common/mod.rs"]
mod common;
#[path = "common/png.rs"]
mod png;

/// The OTP dialog as a PNG: with `TETHER_WRITE_SCREENSHOTS=1` into `screenshots/`, else into a
/// temporary directory (and checked).
#[test]
fn screenshots() {
    if !common::peers::file_available(png::FONT, "fonts-dejavu-core", "screenshots") {
        return;
    }
    let renderer = png::Renderer::new(15.0).expect("font loads");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = if std::env::var_os("TETHER_WRITE_SCREENSHOTS").is_some() {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("screenshots")
    } else {
        tmp.path().to_path_buf()
    };
    std::fs::create_dir_all(&dir).expect("screenshots dir");
    let state = otp_dialog();
    let screen = render(&state);
    assert!(
        screen.contains("outbox") && screen.contains("10:00 UTC"),
        "{screen}"
    );
    let image = renderer.render(&buffer(&state));
    let path = dir.join("otp-80x24.png");
    image.save(&path).expect("write png");
    let back = image::open(&path).expect("decode png").to_rgb8();
    assert_eq!(back.dimensions(), image.dimensions());
    assert_eq!(back.width() % 80, 0, "whole cells");
    let colours: std::collections::HashSet<_> = back.pixels().map(|p| p.0).collect();
    assert!(colours.len() > 8, "only {} colours", colours.len());
}
