//! The console's screens on a `TestBackend`, reached by feeding messages through the public
//! `update` (keys, hub events, replies matched by request id), with a fixed clock.
//! Update with `INSTA_UPDATE=always cargo test --test console_snapshots`, then read the diffs.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use tether::console::keymap::Keymap;
use tether::console::net::{NetCommand, NetEvent};
use tether::console::state::State;
use tether::console::theme::{Role, Theme};
use tether::console::ui;
use tether::console::update::{self, Effect, Msg, Startup};
use tether::protocol::stream::{self, StreamFrame};
use tether::protocol::{
    AuthMethod, ClientInfo, ConsoleReply, ConsoleRequest, ErrorCode, HubEvent, LinkInfo, Presence,
    ProtocolError, Role as UserRole, SecretKind, SecretRequirements, SessionInfo, TechnicianRef,
    UnattendedState, UserInfo, ViewSpec, WorkstationInfo,
};

const HUB: &str = "wss://hub.example.org:7443";
const FINGERPRINT: &str = "SHA256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 30, 0)
        .single()
        .expect("valid date")
}

fn new_state() -> State {
    let themes = ["dark", "light", "high-contrast"]
        .map(String::from)
        .to_vec();
    State::new(now(), Keymap::default(), themes, 0)
}

fn dark() -> Theme {
    Theme::builtin("dark").expect("built-in theme")
}

fn buffer(state: &State, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|frame| ui::draw(state, &dark(), frame))
        .expect("draw");
    terminal.backend().buffer().clone()
}

fn render(state: &State, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|frame| ui::draw(state, &dark(), frame))
        .expect("draw");
    terminal.backend().to_string()
}

fn press(state: &mut State, code: KeyCode) -> Vec<Effect> {
    update::update(state, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn type_text(state: &mut State, text: &str) {
    for c in text.chars() {
        press(state, KeyCode::Char(c));
    }
}

fn resize(state: &mut State, width: u16, height: u16) {
    update::update(state, Msg::Resize { width, height });
}

/// The requests among effects, as (id, body).
fn requests(effects: &[Effect]) -> Vec<(u64, ConsoleRequest)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Net(NetCommand::Request { id, body }) => Some((*id, body.clone())),
            _ => None,
        })
        .collect()
}

fn client(id: &str, name: &str) -> ClientInfo {
    ClientInfo {
        id: id.into(),
        name: name.into(),
        created_at: now() - Duration::days(30),
    }
}

fn workstation(
    id: &str,
    (client_id, client_name): (&str, &str),
    hostname: &str,
    os: &str,
    user: &str,
    presence: Presence,
    seen_secs_ago: i64,
) -> WorkstationInfo {
    WorkstationInfo {
        id: id.into(),
        client_id: client_id.into(),
        client_name: client_name.into(),
        hostname: hostname.into(),
        os: os.into(),
        user: user.into(),
        screen: None,
        agent_version: "0.1.0".into(),
        presence,
        last_seen: now() - Duration::seconds(seen_secs_ago),
        enrolled_at: now() - Duration::days(20),
        unattended: Default::default(),
        requires: Default::default(),
        otp_required: false,
    }
}

const ACME: (&str, &str) = ("c-acme", "Acme Dental");
const BAKERY: (&str, &str) = ("c-bakery", "Bäckerei Brot & Co");
const LAW: (&str, &str) = ("c-law", "Lindqvist Law");

/// Unattended access and required secrets of the sample fleet: a mix of every state.
fn access(id: &str) -> (UnattendedState, SecretRequirements) {
    let requires = |passcode, password| SecretRequirements { passcode, password };
    match id {
        "w1" => (UnattendedState::Granted, requires(true, false)),
        "w2" => (UnattendedState::Granted, requires(false, false)),
        "w3" => (UnattendedState::Revoked, requires(false, true)),
        "w4" => (UnattendedState::Requested, requires(false, false)),
        "w5" => (UnattendedState::Denied, requires(false, false)),
        "w6" => (UnattendedState::None, requires(true, true)),
        "w7" => (UnattendedState::Withdrawn, requires(false, true)),
        _ => (UnattendedState::None, requires(false, false)),
    }
}

fn sample_workstations() -> Vec<WorkstationInfo> {
    sample_fleet()
        .into_iter()
        .map(|mut w| {
            (w.unattended, w.requires) = access(&w.id);
            w
        })
        .collect()
}

fn session(
    id: &str,
    (workstation, hostname): (&str, &str),
    technician: &str,
    method: AuthMethod,
    secrets: Vec<SecretKind>,
    view_only: bool,
    minutes_ago: i64,
) -> SessionInfo {
    SessionInfo {
        id: id.into(),
        workstation_id: workstation.into(),
        hostname: hostname.into(),
        technician: TechnicianRef {
            name: technician.into(),
            email: format!("{technician}@support.example"),
        },
        method,
        secrets,
        view_only,
        started_at: now() - Duration::minutes(minutes_ago),
        ended_at: None,
        end_reason: None,
    }
}

/// The team's open sessions: ann's (this console's technician) and bob's.
fn sample_sessions() -> Vec<SessionInfo> {
    vec![
        session(
            "s1",
            ("w2", "dentist-laptop"),
            "ann",
            AuthMethod::Unattended,
            vec![],
            false,
            18,
        ),
        session(
            "s2",
            ("w7", "build-server"),
            "bob",
            AuthMethod::Attended,
            vec![SecretKind::Password],
            true,
            4,
        ),
    ]
}

fn sample_fleet() -> Vec<WorkstationInfo> {
    use Presence::{InSession, Offline, Online};
    vec![
        workstation(
            "w1",
            ACME,
            "reception-pc",
            "Windows 11 Pro",
            "maria",
            Online,
            12,
        ),
        workstation(
            "w2",
            ACME,
            "dentist-laptop",
            "macOS 15.3",
            "dr.berg",
            InSession,
            3,
        ),
        workstation(
            "w3",
            ACME,
            "xray-station",
            "Windows 10 Pro",
            "xray",
            Offline,
            2 * 86_400 + 60,
        ),
        workstation(
            "w4",
            BAKERY,
            "till-1",
            "Ubuntu 24.04 LTS",
            "kasse",
            Online,
            45,
        ),
        workstation(
            "w5",
            BAKERY,
            "office",
            "Windows 11 Home",
            "jonas",
            Offline,
            3 * 3_600 + 5,
        ),
        workstation(
            "w6",
            LAW,
            "partner-mbp",
            "macOS 14.7",
            "e.lindqvist",
            Offline,
            180,
        ),
        workstation("w7", LAW, "build-server", "Debian 12", "root", InSession, 1),
    ]
}

fn technician() -> UserInfo {
    UserInfo {
        id: "u-ann".into(),
        name: "ann".into(),
        email: "ann@support.example".into(),
        role: UserRole::Technician,
        team_id: "t-blue".into(),
        team: "Blue".into(),
    }
}

/// Logged in through a preset login, lists loaded by replying to the requests by id, then one
/// live presence event.
fn logged_in(width: u16, height: u16) -> State {
    let mut state = new_state();
    resize(&mut state, width, height);
    let effects = update::start(
        &mut state,
        Startup::Preset {
            hub: HUB.into(),
            fingerprint: FINGERPRINT.into(),
            token: "tok".into(),
        },
    );
    assert!(matches!(
        &effects[..],
        [Effect::Net(NetCommand::Resume { .. })]
    ));
    let effects = update::update(
        &mut state,
        Msg::Net(NetEvent::LoggedIn {
            user: technician(),
            token: None,
        }),
    );
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::SaveLogin(_))),
        "a preset login is never stored"
    );
    for (id, body) in requests(&effects) {
        let result = match body {
            ConsoleRequest::ListClients { .. } => Ok(ConsoleReply::Clients {
                next: None,
                total: None,
                clients: vec![
                    client(LAW.0, LAW.1),
                    client(ACME.0, ACME.1),
                    client(BAKERY.0, BAKERY.1),
                ],
            }),
            ConsoleRequest::ListWorkstations { client: None, .. } => {
                Ok(ConsoleReply::Workstations {
                    next: None,
                    total: None,
                    workstations: sample_workstations(),
                })
            }
            ConsoleRequest::ListSessions { .. } => Ok(ConsoleReply::Sessions {
                next: None,
                total: None,
                sessions: sample_sessions(),
            }),
            ConsoleRequest::TwoFactorStatus => Ok(ConsoleReply::TwoFactor {
                status: Default::default(),
            }),
            other => panic!("unexpected request {other:?}"),
        };
        update::update(&mut state, Msg::Net(NetEvent::Reply { id, result }));
    }
    assert!(state.pending.is_empty(), "every request was answered");
    // The partner's laptop comes online.
    let mut back = workstation(
        "w6",
        LAW,
        "partner-mbp",
        "macOS 14.7",
        "e.lindqvist",
        Presence::Online,
        0,
    );
    back.last_seen = now();
    (back.unattended, back.requires) = access("w6");
    update::update(
        &mut state,
        Msg::Net(NetEvent::Event(tether::protocol::HubEvent::Workstation {
            workstation: back,
        })),
    );
    // The clock moves on five seconds: every age grows by five.
    update::update(&mut state, Msg::Tick(now() + Duration::seconds(5)));
    state
}

fn login_form(width: u16, height: u16) -> State {
    let mut state = new_state();
    resize(&mut state, width, height);
    update::start(
        &mut state,
        Startup::Form {
            hub: Some(HUB.into()),
            user: Some("ann".into()),
        },
    );
    type_text(&mut state, "correct horse");
    state
}

#[test]
fn login_screen() {
    let state = login_form(80, 24);
    let screen = render(&state, 80, 24);
    assert!(
        screen.contains("•••••••••••••") && !screen.contains("correct horse"),
        "password is masked"
    );
    insta::assert_snapshot!("login_80x24", screen);
    insta::assert_snapshot!("login_120x40", render(&login_form(120, 40), 120, 40));
}

#[test]
fn certificate_confirmation_dialog() {
    let mut state = login_form(80, 24);
    let effects = press(&mut state, KeyCode::Enter);
    assert!(matches!(&effects[..], [Effect::LoadPin { hub }] if hub == HUB));
    let effects = update::update(
        &mut state,
        Msg::PinLoaded {
            hub: HUB.into(),
            fingerprint: None,
        },
    );
    assert!(
        matches!(&effects[..], [Effect::Net(NetCommand::Probe { hub })] if hub == HUB),
        "unknown hub: probe"
    );
    update::update(
        &mut state,
        Msg::Net(NetEvent::CertificateSeen {
            hub: HUB.into(),
            fingerprint: FINGERPRINT.into(),
        }),
    );
    insta::assert_snapshot!("trust_80x24", render(&state, 80, 24));

    let effects = press(&mut state, KeyCode::Char('y'));
    assert!(
        matches!(&effects[0], Effect::Trust { hub, fingerprint } if hub == HUB && fingerprint == FINGERPRINT)
    );
    assert!(matches!(
        &effects[1],
        Effect::Net(NetCommand::Login { fingerprint, user, password, .. })
            if fingerprint == FINGERPRINT && user == "ann" && password == "correct horse"
    ));
}

#[test]
fn certificate_mismatch_dialog() {
    let mut state = new_state();
    update::start(
        &mut state,
        Startup::Stored {
            hub: HUB.into(),
            user: "ann".into(),
            token: "tok".into(),
            fingerprint: FINGERPRINT.into(),
        },
    );
    let seen = "SHA256:0000000000000000000000000000000000000000000000000000000000000bad";
    let effects = update::update(
        &mut state,
        Msg::Net(NetEvent::CertificateMismatch {
            hub: HUB.into(),
            expected: FINGERPRINT.into(),
            seen: seen.into(),
        }),
    );
    assert!(effects.is_empty(), "never logs in");
    insta::assert_snapshot!("mismatch_80x24", render(&state, 80, 24));
}

#[test]
fn main_screen() {
    insta::assert_snapshot!("main_80x24", render(&logged_in(80, 24), 80, 24));
    insta::assert_snapshot!("main_120x40", render(&logged_in(120, 40), 120, 40));
}

#[test]
fn main_screen_filtered_and_narrow() {
    let mut state = logged_in(80, 24);
    press(&mut state, KeyCode::Char('/'));
    type_text(&mut state, "MAC");
    insta::assert_snapshot!("main_filter_80x24", render(&state, 80, 24));
    press(&mut state, KeyCode::Enter);
    resize(&mut state, 60, 16);
    insta::assert_snapshot!("main_filtered_60x16", render(&state, 60, 16));
    insta::assert_snapshot!("too_small_40x10", render(&state, 40, 10));
}

#[test]
fn presence_uses_semantic_colours() {
    let mut state = logged_in(120, 40);
    // Select the last row, so the rows looked at below are drawn in their own colours.
    press(&mut state, KeyCode::Char('G'));
    let buffer = buffer(&state, 120, 40);
    let theme = dark();
    let find = |needle: &str| {
        let area = buffer.area;
        (area.top()..area.bottom())
            .find_map(|y| {
                let line: String = (area.left()..area.right())
                    .map(|x| buffer[(x, y)].symbol().to_owned())
                    .collect();
                line.find(needle)
                    .map(|byte| (line[..byte].chars().count(), y))
            })
            .unwrap_or_else(|| panic!("{needle} not on screen"))
    };
    let fg = |(x, y): (usize, u16)| buffer[(u16::try_from(x).expect("column"), y)].fg;
    assert_eq!(
        fg(find("◆ in session")),
        theme.style(Role::Accent).fg.expect("accent colour")
    );
    assert_eq!(
        fg(find("○ 2d ago")),
        theme.style(Role::Muted).fg.expect("muted colour"),
        "offline rows say how long ago they were seen"
    );
    assert_eq!(
        fg(find("● online")),
        theme.style(Role::Success).fg.expect("success colour")
    );
}

#[test]
fn unattended_access_uses_semantic_colours() {
    let mut state = logged_in(120, 40);
    press(&mut state, KeyCode::Char('G'));
    let buffer = buffer(&state, 120, 40);
    let theme = dark();
    let fg_of = |needle: &str| {
        let area = buffer.area;
        (area.top()..area.bottom())
            .find_map(|y| {
                let line: String = (area.left()..area.right())
                    .map(|x| buffer[(x, y)].symbol().to_owned())
                    .collect();
                let byte = line.find(needle)?;
                let x = u16::try_from(line[..byte].chars().count()).expect("column");
                Some(buffer[(x, y)].fg)
            })
            .unwrap_or_else(|| panic!("{needle} not on screen"))
    };
    let role = |role: Role| theme.style(role).fg.expect("colour");
    assert_eq!(fg_of("✓ granted"), role(Role::Success));
    assert_eq!(fg_of(" requested"), role(Role::Warning));
    assert_eq!(fg_of("✗ denied"), role(Role::Danger));
    assert_eq!(fg_of("⊘ revoked"), role(Role::Danger));
    assert_eq!(fg_of("⊘ withdrawn"), role(Role::Muted));
    assert_eq!(fg_of("✱ passcode"), role(Role::Accent));
    // The spinner turns with the clock.
    let glyph = |state: &State| {
        let screen = render(state, 120, 40);
        let line = screen
            .lines()
            .find(|l| l.contains("till-1"))
            .expect("till-1 row")
            .to_owned();
        let at = line.find(" requested").expect("requested");
        line[..at].chars().last().expect("spinner")
    };
    let before = glyph(&state);
    update::update(&mut state, Msg::Tick(now() + Duration::seconds(6)));
    assert_ne!(
        glyph(&state),
        before,
        "the requested spinner moves each tick"
    );
}

fn reply(state: &mut State, id: u64, result: Result<ConsoleReply, ProtocolError>) -> Vec<Effect> {
    update::update(state, Msg::Net(NetEvent::Reply { id, result }))
}

/// Logged in with reception-pc (requires its passcode) selected and Enter pressed.
fn secret_prompt(width: u16, height: u16) -> State {
    let mut state = logged_in(width, height);
    press(&mut state, KeyCode::Char('j'));
    assert_eq!(state.selected_workstation.as_deref(), Some("w1"));
    assert!(press(&mut state, KeyCode::Enter).is_empty(), "asks first");
    type_text(&mut state, "k7q2m9");
    state
}

/// The secret sent; returns the Connect request's id.
fn waiting(width: u16, height: u16) -> (State, u64) {
    let mut state = secret_prompt(width, height);
    let effects = press(&mut state, KeyCode::Enter);
    let [(id, ConsoleRequest::Connect { secret, .. })] = &requests(&effects)[..] else {
        panic!("expected one Connect, got {effects:?}");
    };
    assert_eq!(secret.as_ref().map(|s| s.expose()), Some("k7q2m9"));
    update::update(&mut state, Msg::Tick(now() + Duration::seconds(12)));
    (state, *id)
}

#[test]
fn secret_prompt_is_masked() {
    let state = secret_prompt(80, 24);
    let screen = render(&state, 80, 24);
    assert!(screen.contains("••••••") && !screen.contains("k7q2m9"));
    insta::assert_snapshot!("secret_prompt_80x24", screen);
}

#[test]
fn waiting_for_the_workstation() {
    let (state, _) = waiting(80, 24);
    let screen = render(&state, 80, 24);
    assert!(
        screen.contains("7 s"),
        "elapsed seconds from the injected clock"
    );
    insta::assert_snapshot!("waiting_80x24", screen);
}

#[test]
fn withdraw_asks_first() {
    let mut state = logged_in(80, 24);
    press(&mut state, KeyCode::Char('j'));
    assert!(
        press(&mut state, KeyCode::Char('w')).is_empty(),
        "asks first"
    );
    insta::assert_snapshot!("withdraw_80x24", render(&state, 80, 24));
    let effects = press(&mut state, KeyCode::Char('y'));
    assert!(matches!(
        &requests(&effects)[..],
        [(_, ConsoleRequest::WithdrawAccess { workstation })] if workstation == "w1"
    ));
}

#[test]
fn sessions_view() {
    let mut state = logged_in(80, 24);
    press(&mut state, KeyCode::Char('s'));
    insta::assert_snapshot!("sessions_80x24", render(&state, 80, 24));
    let mut wide = logged_in(120, 40);
    press(&mut wide, KeyCode::Char('s'));
    insta::assert_snapshot!("sessions_120x40", render(&wide, 120, 40));
    // `e` ends the selected one (the newest: bob's).
    let effects = press(&mut state, KeyCode::Char('e'));
    assert!(matches!(
        &requests(&effects)[..],
        [(_, ConsoleRequest::EndSession { session })] if session == "s2"
    ));
}

#[test]
fn own_session_ended_by_withdrawal() {
    let mut state = logged_in(80, 24);
    let mut ended = sample_sessions().remove(0);
    ended.ended_at = Some(now() + Duration::seconds(5));
    ended.end_reason = Some("unattended access withdrawn by bob".into());
    let mut dentist = sample_workstations().remove(1);
    dentist.unattended = UnattendedState::Withdrawn;
    dentist.presence = Presence::Online;
    update::update(
        &mut state,
        Msg::Net(NetEvent::Event(HubEvent::Session { session: ended })),
    );
    update::update(
        &mut state,
        Msg::Net(NetEvent::Event(HubEvent::Workstation {
            workstation: dentist,
        })),
    );
    let screen = render(&state, 80, 24);
    assert!(
        screen.contains("Your session on dentist-laptop ended: unattended access withdrawn by bob"),
        "the why stays on screen, not replaced by the withdrawal news"
    );
    insta::assert_snapshot!("session_ended_80x24", screen);
}

#[test]
fn lockout_counts_down() {
    let (mut state, id) = waiting(80, 24);
    let mut limited = ProtocolError::new(
        ErrorCode::RateLimited,
        "too many wrong passcodes or passwords for this workstation",
    );
    limited.retry_after_secs = Some(240);
    reply(&mut state, id, Err(limited));
    update::update(&mut state, Msg::Tick(now() + Duration::seconds(15)));
    let screen = render(&state, 80, 24);
    assert!(screen.contains("Try again in 3 min 57 s."), "{screen}");
    insta::assert_snapshot!("lockout_80x24", screen);
    // Enter again while locked: nothing is sent.
    assert!(requests(&press(&mut state, KeyCode::Enter)).is_empty());
}

#[test]
fn help_overlay() {
    let mut state = logged_in(80, 24);
    press(&mut state, KeyCode::Char('?'));
    insta::assert_snapshot!("help_80x24", render(&state, 80, 24));
}

/// Logged in, Acme selected, and the hub's answer to `l` shown. Returns the link's URL too.
fn with_link_dialog(width: u16, height: u16) -> (State, String) {
    let mut state = logged_in(width, height);
    press(&mut state, KeyCode::Tab);
    press(&mut state, KeyCode::Char('j'));
    // `l` looks for the client's valid link first; it has none, so `n` then `y` issue one.
    let effects = press(&mut state, KeyCode::Char('l'));
    let [(id, ConsoleRequest::ListLinks { client, .. })] = &requests(&effects)[..] else {
        panic!("expected one ListLinks, got {effects:?}");
    };
    assert_eq!(client, ACME.0);
    update::update(
        &mut state,
        Msg::Net(NetEvent::Reply {
            id: *id,
            result: Ok(ConsoleReply::Links {
                links: Vec::new(),
                next: None,
                total: None,
            }),
        }),
    );
    press(&mut state, KeyCode::Char('n'));
    let effects = press(&mut state, KeyCode::Char('y'));
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
        panic!("expected one CreateLink, got {effects:?}");
    };
    assert_eq!(client, ACME.0);
    let link = LinkInfo {
        id: "l-7".into(),
        client_id: ACME.0.into(),
        created_at: now(),
        expires_at: now() + Duration::days(7),
        revoked: false,
        uses: 2,
    };
    let url = format!(
        "tether://hub.example.org:7443/enrol/q3Xv9LkT2mWpR8sYc4NbZ1dHfG6jU0aE?fp={FINGERPRINT}"
    );
    update::update(
        &mut state,
        Msg::Net(NetEvent::Reply {
            id: *id,
            result: Ok(ConsoleReply::Link {
                link,
                url: url.clone(),
            }),
        }),
    );
    (state, url)
}

#[test]
fn link_dialog() {
    let (mut state, url) = with_link_dialog(80, 24);
    insta::assert_snapshot!("link_80x24", render(&state, 80, 24));

    let effects = press(&mut state, KeyCode::Char('c'));
    assert!(matches!(&effects[..], [Effect::Copy(text)] if *text == url));
}

/// What the till's shell printed, with colours, as bash and systemctl print it.
const TILL_OUTPUT: &str = concat!(
    "\x1b[1;32mkasse@till-1\x1b[0m:\x1b[1;34m~\x1b[0m$ systemctl status kasse-pos --no-pager | head -3\r\n",
    "\x1b[32m●\x1b[0m kasse-pos.service - Till point of sale\r\n",
    "     Loaded: loaded (/etc/systemd/system/kasse-pos.service; enabled)\r\n",
    "     Active: \x1b[1;32mactive (running)\x1b[0m since Mon 2026-03-02 07:58:12 CET; 1h 31min ago\r\n",
    "\x1b[1;32mkasse@till-1\x1b[0m:\x1b[1;34m~\x1b[0m$ df -h /\r\n",
    "Filesystem      Size  Used Avail Use% Mounted on\r\n",
    "/dev/sda2        58G   21G   34G  39% /\r\n",
    "\x1b[1;32mkasse@till-1\x1b[0m:\x1b[1;34m~\x1b[0m$ ",
);

/// Logged in at `width` x `height`, connected to till-1 (no screen: its shell opens full
/// screen), streaming, with a second of the shell's output received.
fn terminal(width: u16, height: u16, view_only: bool) -> State {
    let mut state = logged_in(width, height);
    for _ in 0..4 {
        press(&mut state, KeyCode::Char('j'));
    }
    assert_eq!(state.selected_workstation.as_deref(), Some("w4"));
    let effects = press(
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
    let opened = session(
        "s3",
        ("w4", "till-1"),
        "ann",
        AuthMethod::Attended,
        vec![],
        view_only,
        0,
    );
    let effects = reply(
        &mut state,
        *id,
        Ok(ConsoleReply::Session { session: opened }),
    );
    let [(id, ConsoleRequest::Watch { session, view })] = &requests(&effects)[..] else {
        panic!("expected a Watch, got {effects:?}");
    };
    assert_eq!(session, "s3");
    assert_eq!(
        *view,
        ViewSpec::Terminal {
            cols: width,
            rows: height - 1
        }
    );
    reply(&mut state, *id, Ok(ConsoleReply::Watching { stream: 4 }));
    let frame = StreamFrame::TerminalOutput {
        stream: 4,
        seq: 1,
        bytes: TILL_OUTPUT.as_bytes().to_vec(),
    };
    let effects = update::update(
        &mut state,
        Msg::Net(NetEvent::Frame {
            bytes: stream::encode(&frame).expect("encode"),
            received_at: 0,
        }),
    );
    assert!(matches!(
        &effects[..],
        [Effect::Net(NetCommand::Notify {
            body: ConsoleRequest::Ack { stream: 4, seq: 1 }
        })]
    ));
    update::update(&mut state, Msg::Tick(now() + Duration::seconds(6)));
    state
}

#[test]
fn live_terminal() {
    let state = terminal(80, 24, false);
    let screen = render(&state, 80, 24);
    assert!(screen.contains("active (running)"), "{screen}");
    assert!(
        screen.contains("Ctrl-] menu"),
        "the way out is always shown"
    );
    insta::assert_snapshot!("terminal_80x24", screen);
    insta::assert_snapshot!(
        "terminal_120x40",
        render(&terminal(120, 40, false), 120, 40)
    );
    // The prompt's colours are the remote's.
    let buffer = buffer(&state, 80, 24);
    assert_eq!(buffer[(0, 0)].fg, ratatui::style::Color::Indexed(2));
}

/// The live terminal of `terminal`, its session ended by the workstation going offline.
fn terminal_ended(width: u16, height: u16) -> State {
    let mut state = terminal(width, height, false);
    let mut ended = session(
        "s3",
        ("w4", "till-1"),
        "ann",
        AuthMethod::Attended,
        vec![],
        false,
        0,
    );
    ended.ended_at = Some(now() + Duration::seconds(7));
    ended.end_reason = Some("the workstation went offline".into());
    update::update(
        &mut state,
        Msg::Net(NetEvent::Event(HubEvent::Session { session: ended })),
    );
    state
}

#[test]
fn ended_session_viewer() {
    let mut state = terminal_ended(80, 24);
    let screen = render(&state, 80, 24);
    assert!(
        screen.contains("Your session on till-1 ended: the workstation went"),
        "{screen}"
    );
    assert!(
        screen.contains("active (running)"),
        "the last screen stays under it"
    );
    assert!(screen.contains("Enter back to list"), "{screen}");
    insta::assert_snapshot!("terminal_ended_80x24", screen);
    insta::assert_snapshot!(
        "terminal_ended_120x40",
        render(&terminal_ended(120, 40), 120, 40)
    );
    // What was typed next neither reaches anything nor runs here; Enter dismisses.
    for c in "ls -la".chars() {
        assert!(press(&mut state, KeyCode::Char(c)).is_empty());
    }
    assert_eq!(render(&state, 80, 24), screen);
    press(&mut state, KeyCode::Enter);
    assert!(state.viewer.is_none());
}

/// Logged in with a session of ann's open, `q` pressed: "Quit?".
fn quit_question(width: u16, height: u16) -> State {
    let mut state = logged_in(width, height);
    assert!(
        press(&mut state, KeyCode::Char('q')).is_empty(),
        "asks first"
    );
    state
}

#[test]
fn confirm_dialog() {
    let state = quit_question(80, 24);
    let screen = render(&state, 80, 24);
    assert!(
        screen.contains("Quit?") && screen.contains("y quit"),
        "{screen}"
    );
    insta::assert_snapshot!("confirm_quit_80x24", screen);
    insta::assert_snapshot!(
        "confirm_quit_120x40",
        render(&quit_question(120, 40), 120, 40)
    );
}

#[test]
fn two_workstations_named_alike_show_a_short_id() {
    let mut state = logged_in(80, 24);
    let mut twin = sample_workstations()
        .into_iter()
        .find(|w| w.hostname == "reception-pc")
        .expect("reception-pc");
    let original = twin.id.clone();
    twin.id = "w9".into();
    update::update(
        &mut state,
        Msg::Net(NetEvent::Event(HubEvent::Workstation { workstation: twin })),
    );
    let screen = render(&state, 80, 24);
    assert!(
        screen.contains(&format!("reception-pc #{original}")),
        "{screen}"
    );
    assert!(screen.contains("reception-pc #w9"), "{screen}");
    assert!(!screen.contains("dentist-laptop #"), "only twins: {screen}");
}

#[test]
fn live_desktop_menu_fits_a_40x10_terminal() {
    let mut state = desktop(false);
    update::update(
        &mut state,
        Msg::Resize {
            width: 40,
            height: 10,
        },
    );
    update::update(
        &mut state,
        Msg::Key(KeyEvent::new(KeyCode::Char(']'), KeyModifiers::CONTROL)),
    );
    let screen = render(&state, 40, 10);
    // Every key of the menu shows, with its short label; the bottom border too (not clipped).
    for shown in [
        "u unattended",
        "d back to list",
        "e end session",
        "s screenshot",
        "f fit",
        "- zoom out",
        "Esc cancel",
        "q quit",
    ] {
        assert!(screen.contains(shown), "{shown:?} missing:\n{screen}");
    }
    assert!(
        screen.contains('╰'),
        "the menu's bottom is drawn:\n{screen}"
    );
    insta::assert_snapshot!("desktop_menu_40x10", screen);
}

#[test]
fn live_terminal_menu() {
    let mut state = terminal(80, 24, false);
    update::update(
        &mut state,
        Msg::Key(KeyEvent::new(KeyCode::Char(']'), KeyModifiers::CONTROL)),
    );
    let screen = render(&state, 80, 24);
    assert!(screen.contains("End the session"), "{screen}");
    insta::assert_snapshot!("terminal_menu_80x24", screen);
}

#[test]
fn live_terminal_scrolled_back() {
    let mut state = terminal(80, 24, false);
    let log: String = (0..40)
        .map(|i| {
            format!(
                "Mar 02 09:{:02}:00 till-1 kasse-pos[812]: receipt {} printed\r\n",
                i / 2,
                4100 + i
            )
        })
        .collect();
    let frame = StreamFrame::TerminalOutput {
        stream: 4,
        seq: 2,
        bytes: log.into_bytes(),
    };
    update::update(
        &mut state,
        Msg::Net(NetEvent::Frame {
            bytes: stream::encode(&frame).expect("encode"),
            received_at: 0,
        }),
    );
    update::update(
        &mut state,
        Msg::Key(KeyEvent::new(KeyCode::Char(']'), KeyModifiers::CONTROL)),
    );
    press(&mut state, KeyCode::Char('s'));
    let screen = render(&state, 80, 24);
    assert!(screen.contains("↑ 22 lines"), "{screen}");
    assert!(screen.contains("receipt 4100 printed"), "{screen}");
    insta::assert_snapshot!("terminal_scrolled_80x24", screen);
    press(&mut state, KeyCode::Esc);
    assert!(render(&state, 80, 24).contains("receipt 4139 printed"));
}

#[test]
fn live_terminal_view_only_and_reconnecting() {
    let mut state = terminal(80, 24, true);
    update::update(
        &mut state,
        Msg::Net(NetEvent::Disconnected {
            reason: "connection lost".into(),
        }),
    );
    let screen = render(&state, 80, 24);
    assert!(screen.contains("view only: keys are not sent"), "{screen}");
    assert!(screen.contains("reconnecting"), "{screen}");
    assert!(
        screen.contains("kasse@till-1:~$ df -h /"),
        "the last screen stays"
    );
    insta::assert_snapshot!("terminal_view_only_reconnecting_80x24", screen);
}

/// Logged in at 80x24, connected to till-1 given a 1920x1080 screen: its desktop opens, and
/// one frame of a small synthetic picture arrives (a blue desktop, a white window with a dark
/// title bar, a grey taskbar).
fn desktop(view_only: bool) -> State {
    let mut state = logged_in(80, 24);
    state.workstations.update("w4", |w| {
        w.screen = Some(tether::protocol::ScreenSize {
            width: 1920,
            height: 1080,
        });
    });
    for _ in 0..4 {
        press(&mut state, KeyCode::Char('j'));
    }
    let effects = press(
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
    let opened = session(
        "s3",
        ("w4", "till-1"),
        "ann",
        AuthMethod::Attended,
        vec![],
        view_only,
        0,
    );
    let effects = reply(
        &mut state,
        *id,
        Ok(ConsoleReply::Session { session: opened }),
    );
    let [(id, ConsoleRequest::Watch { view, .. })] = &requests(&effects)[..] else {
        panic!("expected a Watch, got {effects:?}");
    };
    assert_eq!(
        *view,
        ViewSpec::Pixels {
            width: 80,
            height: 46
        }
    );
    reply(&mut state, *id, Ok(ConsoleReply::Watching { stream: 5 }));

    // The agent letterboxes 16:9 into 80x46: 80x45.
    let (width, height) = (80u32, 45u32);
    let mut picture = tether::frame::Framebuffer::new(width, height);
    let full = tether::frame::Rect::new(0, 0, width, height);
    picture.fill(full, [30, 90, 160, 255]);
    picture.fill(
        tether::frame::Rect::new(20, 8, 40, 24),
        [240, 240, 240, 255],
    );
    picture.fill(tether::frame::Rect::new(20, 8, 40, 4), [40, 40, 60, 255]);
    picture.fill(
        tether::frame::Rect::new(0, 41, width, 4),
        [180, 180, 180, 255],
    );
    let rgb: Vec<u8> = picture
        .as_rgba()
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    let frame = StreamFrame::Pixels {
        stream: 5,
        seq: 1,
        captured_at: 0,
        width,
        height,
        rects: vec![tether::protocol::stream::RectUpdate { rect: full, rgb }],
    };
    let effects = update::update(
        &mut state,
        Msg::Net(NetEvent::Frame {
            bytes: stream::encode(&frame).expect("encode"),
            received_at: 0,
        }),
    );
    assert!(matches!(
        &effects[..],
        [Effect::Net(NetCommand::Notify {
            body: ConsoleRequest::Ack { stream: 5, seq: 1 }
        })]
    ));
    update::update(&mut state, Msg::Tick(now() + Duration::seconds(6)));
    state
}

#[test]
fn live_desktop() {
    let state = desktop(false);
    let screen = render(&state, 80, 24);
    assert!(screen.contains("till-1"), "{screen}");
    assert!(screen.contains("half blocks"), "{screen}");
    assert!(screen.contains("1 fps"), "{screen}");
    assert!(
        screen.contains("Ctrl-] menu"),
        "the way out is always shown"
    );
    insta::assert_snapshot!("desktop_80x24", screen);

    // The picture's colours: desktop blue in the corner, the window's white and title bar,
    // the taskbar at the bottom; the status bar stays on the last row.
    use ratatui::style::Color;
    let buffer = buffer(&state, 80, 24);
    assert_eq!(buffer[(0, 0)].fg, Color::Rgb(30, 90, 160));
    assert_eq!(buffer[(30, 5)].fg, Color::Rgb(40, 40, 60));
    assert_eq!(buffer[(30, 10)].fg, Color::Rgb(240, 240, 240));
    assert_eq!(buffer[(0, 21)].bg, Color::Rgb(180, 180, 180));
    assert_eq!(buffer[(0, 0)].symbol(), "▀");

    let mut state = desktop(true);
    assert!(render(&state, 80, 24).contains("view only"));
    update::update(
        &mut state,
        Msg::Key(KeyEvent::new(KeyCode::Char(']'), KeyModifiers::CONTROL)),
    );
    let screen = render(&state, 80, 24);
    assert!(screen.contains("Next render mode"), "{screen}");
    assert!(screen.contains("Zoom in"), "{screen}");
    for item in ["View only", "Save the remote screen", "Ctrl-Alt-Del", "Fit"] {
        assert!(screen.contains(item), "{item} in the menu:\n{screen}");
    }
    insta::assert_snapshot!("desktop_menu_view_only_80x24", screen);
}

#[test]
fn live_desktop_view_only_toggle_and_screenshot_in_the_status_line() {
    let mut state = desktop(false);
    let ctrl_bracket = KeyEvent::new(KeyCode::Char(']'), KeyModifiers::CONTROL);
    update::update(&mut state, Msg::Key(ctrl_bracket));
    press(&mut state, KeyCode::Char('v'));
    update::update(
        &mut state,
        Msg::ScreenshotSaved(Ok(std::path::PathBuf::from(
            "/home/ann/Downloads/tether-till-1-20260101-120000.png",
        ))),
    );
    let screen = render(&state, 80, 24);
    let bar = screen.lines().last().unwrap_or_default().to_owned();
    assert!(bar.contains("view only"), "{bar}");
    assert!(bar.contains("tether-till-1-20260101-120000.png"), "{bar}");
    insta::assert_snapshot!("desktop_view_only_screenshot_80x24", screen);
    // After the notice: the rates, with a latency slot.
    update::update(&mut state, Msg::Tick(now() + Duration::seconds(30)));
    let screen = render(&state, 80, 24);
    let bar = screen.lines().last().unwrap_or_default().to_owned();
    assert!(bar.contains("view only"), "{bar}");
    assert!(bar.contains("lat —"), "a latency slot: {bar}");
}

#[test]
fn live_desktop_in_sixel_leaves_the_picture_to_graphics() {
    let mut state = desktop(false);
    state.render_modes = vec![
        tether::render::RenderMode::Sixel { tmux: false },
        tether::render::RenderMode::HalfBlock,
        tether::render::RenderMode::Sextant,
    ];
    let ctrl_bracket = KeyEvent::new(KeyCode::Char(']'), KeyModifiers::CONTROL);
    // Half blocks -> sextants -> sixel.
    for _ in 0..2 {
        update::update(&mut state, Msg::Key(ctrl_bracket));
        press(&mut state, KeyCode::Char('m'));
    }
    let screen = render(&state, 80, 24);
    let bar = screen.lines().last().unwrap_or_default().to_owned();
    assert!(bar.contains("sixel"), "{bar}");
    // No text picture: the cells are left for the sixel image.
    assert!(!screen.contains('▀'), "{screen}");
    insta::assert_snapshot!("desktop_sixel_80x24", screen);
}

#[path = "common/mod.rs"]
mod common;
#[path = "common/png.rs"]
mod png;

/// The screens the README shows, rendered by the real `draw` to PNG. With
/// `TETHER_WRITE_SCREENSHOTS=1` they are written to `screenshots/`; otherwise to a temporary
/// directory, and checked.
#[test]
fn screenshots() {
    if !common::peers::file_available(png::FONT, "fonts-dejavu-core", "screenshots") {
        return;
    }
    let renderer = png::Renderer::new(15.0).expect("font loads");
    let write = std::env::var_os("TETHER_WRITE_SCREENSHOTS").is_some();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = if write {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("screenshots")
    } else {
        tmp.path().to_path_buf()
    };
    std::fs::create_dir_all(&dir).expect("screenshots dir");

    let mut help = logged_in(80, 24);
    press(&mut help, KeyCode::Char('?'));
    let mut filtered = logged_in(120, 40);
    press(&mut filtered, KeyCode::Char('/'));
    type_text(&mut filtered, "mac");
    let mut sessions = logged_in(120, 40);
    press(&mut sessions, KeyCode::Char('s'));
    let scenes: Vec<(&str, State, u16, u16)> = vec![
        ("main-120x40", logged_in(120, 40), 120, 40),
        ("main-80x24", logged_in(80, 24), 80, 24),
        ("filter-120x40", filtered, 120, 40),
        ("login-80x24", login_form(80, 24), 80, 24),
        ("link-80x24", with_link_dialog(80, 24).0, 80, 24),
        ("help-80x24", help, 80, 24),
        ("connect-80x24", secret_prompt(80, 24), 80, 24),
        ("sessions-120x40", sessions, 120, 40),
        ("terminal-80x24", terminal(80, 24, false), 80, 24),
        ("desktop-80x24", desktop(false), 80, 24),
        ("credentials-reveal-80x24", credentials_revealed().0, 80, 24),
        (
            "credentials-already-active-80x24",
            credentials_already_active(),
            80,
            24,
        ),
        ("credentials-list-80x24", credentials_list(80, 24), 80, 24),
        ("session-ended-80x24", terminal_ended(80, 24), 80, 24),
        ("confirm-quit-80x24", quit_question(80, 24), 80, 24),
    ];
    for (name, state, width, height) in scenes {
        let image = renderer.render(&buffer(&state, width, height));
        let path = dir.join(format!("{name}.png"));
        image.save(&path).expect("write png");
        // Read it back: a real PNG of the whole terminal, with the theme's colours in it.
        let back = image::open(&path).expect("decode png").to_rgb8();
        assert_eq!(back.dimensions(), image.dimensions());
        assert_eq!(back.width() % u32::from(width), 0, "{name}: whole cells");
        let colours: std::collections::HashSet<_> = back.pixels().map(|p| p.0).collect();
        assert!(
            colours.len() > 8,
            "{name}: only {} colours: an empty picture?",
            colours.len()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Support credentials (issue 5)

/// Logged in, a workstation selected, and `c` pressed: the issue form, with control and
/// history turned on and 24 hours chosen.
fn credentials_form(width: u16, height: u16) -> State {
    let mut state = logged_in(width, height);
    assert!(requests(&press(&mut state, KeyCode::Char('c'))).is_empty());
    press(&mut state, KeyCode::Right);
    press(&mut state, KeyCode::Down);
    press(&mut state, KeyCode::Char(' '));
    press(&mut state, KeyCode::Down);
    press(&mut state, KeyCode::Down);
    press(&mut state, KeyCode::Char(' '));
    state
}

fn sample_credential(
    target: tether::protocol::CredentialTarget,
    label: &str,
) -> tether::protocol::CredentialInfo {
    tether::protocol::CredentialInfo {
        id: "sc_7".into(),
        user: "guest-k7m2q9tx".into(),
        target,
        target_label: label.into(),
        scopes: tether::protocol::CredentialScopes {
            control: true,
            chat: false,
            history: true,
        },
        issued_by: "ann".into(),
        issued_at: now(),
        expires_at: now() + Duration::hours(24),
        revoked_at: None,
        state: tether::protocol::CredentialState::Active,
    }
}

/// The form submitted; returns the request id and its target.
fn issue_from_form(state: &mut State) -> (u64, tether::protocol::CredentialTarget, String) {
    let effects = press(state, KeyCode::Enter);
    let [
        (
            id,
            ConsoleRequest::IssueCredentials {
                target,
                minutes,
                scopes,
            },
        ),
    ] = &requests(&effects)[..]
    else {
        panic!("expected one IssueCredentials, got {effects:?}");
    };
    assert_eq!(*minutes, 24 * 60);
    assert!(scopes.control && scopes.history && !scopes.chat);
    let label = match target {
        tether::protocol::CredentialTarget::Workstation { workstation } => state
            .workstations
            .iter()
            .find(|w| &w.id == workstation)
            .map(|w| w.hostname.clone())
            .expect("a listed workstation"),
        other => panic!("expected a workstation target, got {other:?}"),
    };
    (*id, target.clone(), label)
}

#[test]
fn credentials_issue_dialog() {
    let state = credentials_form(80, 24);
    let screen = render(&state, 80, 24);
    assert!(
        screen.contains("24 hours") && screen.contains("[x]"),
        "{screen}"
    );
    insta::assert_snapshot!("credentials_issue_80x24", screen);
}

/// The form submitted and the hub's answer in: the reveal-once dialog.
fn credentials_revealed() -> (State, tether::protocol::RevealedCredential) {
    let mut state = credentials_form(80, 24);
    let (id, target, label) = issue_from_form(&mut state);
    let reveal = tether::protocol::RevealedCredential {
        hub: HUB.into(),
        fingerprint: FINGERPRINT.into(),
        user: "guest-k7m2q9tx".into(),
        password: "Zq7pW3mK9xR2tB6nV4cH".into(),
        code: "402913".into(),
        expires_at: now() + Duration::hours(24),
    };
    reply(
        &mut state,
        id,
        Ok(ConsoleReply::CredentialsIssued {
            credential: Box::new(sample_credential(target, &label)),
            reveal: Box::new(reveal.clone()),
        }),
    );
    (state, reveal)
}

#[test]
fn credentials_reveal_once_dialog() {
    let (mut state, reveal) = credentials_revealed();
    let screen = render(&state, 80, 24);
    for shown in [
        "Zq7pW3mK9xR2tB6nV4cH",
        "402913",
        "guest-k7m2q9tx",
        "shown once",
    ] {
        assert!(screen.contains(shown), "{shown} in {screen}");
    }
    insta::assert_snapshot!("credentials_reveal_80x24", screen);
    // Copy the block and each field.
    let effects = press(&mut state, KeyCode::Char('c'));
    assert!(matches!(&effects[..], [Effect::Copy(text)] if *text == reveal.block()));
    let effects = press(&mut state, KeyCode::Char('p'));
    assert!(matches!(&effects[..], [Effect::Copy(text)] if text == "Zq7pW3mK9xR2tB6nV4cH"));
    // Closed: never shown again.
    press(&mut state, KeyCode::Esc);
    let screen = render(&state, 80, 24);
    assert!(!screen.contains("Zq7pW3mK9xR2tB6nV4cH"), "{screen}");
    assert!(screen.contains("cannot be shown again"), "{screen}");
}

/// The form submitted for a target that already has active credentials.
fn credentials_already_active() -> State {
    let mut state = credentials_form(80, 24);
    let (id, target, label) = issue_from_form(&mut state);
    let credential = sample_credential(target, &label);
    let message = tether::protocol::credentials::already_active_message(&credential, now());
    reply(
        &mut state,
        id,
        Ok(ConsoleReply::CredentialsAlreadyActive {
            credential: Box::new(credential),
            message,
        }),
    );
    state
}

#[test]
fn credentials_already_active_dialog() {
    let mut state = credentials_already_active();
    let screen = render(&state, 80, 24);
    assert!(
        screen.contains("already active and will") && screen.contains("expire in 24 hours"),
        "{screen}"
    );
    insta::assert_snapshot!("credentials_already_active_80x24", screen);
    let effects = press(&mut state, KeyCode::Char('g'));
    assert!(matches!(
        &requests(&effects)[..],
        [(_, ConsoleRequest::RegenerateCredentials { credential })] if credential == "sc_7"
    ));
}

/// The team's credentials as a hub lists them (unordered): active ones for a workstation and
/// for a client, one the hub still calls active that expired by the console's clock, one
/// expired and one revoked.
fn team_credentials() -> Vec<tether::protocol::CredentialInfo> {
    use tether::protocol::CredentialTarget as T;
    let ws = |id: &str| T::Workstation {
        workstation: id.into(),
    };
    let mut list = Vec::new();
    let mut add = |id: &str,
                   user: &str,
                   target: T,
                   label: &str,
                   by: &str,
                   issued_hours_ago: i64,
                   hours: i64,
                   scopes: (bool, bool, bool)| {
        let mut c = sample_credential(target, label);
        c.id = id.into();
        c.user = user.into();
        c.issued_by = by.into();
        c.issued_at = now() - Duration::hours(issued_hours_ago);
        c.expires_at = c.issued_at + Duration::hours(hours);
        (c.scopes.control, c.scopes.chat, c.scopes.history) = scopes;
        if c.expires_at <= now() - Duration::hours(1) {
            c.state = tether::protocol::CredentialState::Expired;
        }
        list.push(c);
    };
    add(
        "sc_2",
        "guest-p4w8n2ha",
        ws("w4"),
        "till-1",
        "bob",
        30,
        24,
        (false, false, false),
    );
    add(
        "sc_5",
        "guest-k7m2q9tx",
        ws("w1"),
        "reception-pc",
        "ann",
        1,
        24,
        (true, false, true),
    );
    add(
        "sc_4",
        "guest-r3t6y8ub",
        T::Client {
            client: ACME.0.into(),
        },
        ACME.1,
        "ann",
        3,
        72,
        (true, true, false),
    );
    // Issued 8 hours ago for 8 hours: the hub said active, the console's clock says expired.
    add(
        "sc_3",
        "guest-h2j5k9cv",
        ws("w2"),
        "dentist-laptop",
        "bob",
        8,
        8,
        (false, false, true),
    );
    add(
        "sc_1",
        "guest-x9z3m6qe",
        ws("w6"),
        "partner-mbp",
        "ann",
        50,
        168,
        (true, false, false),
    );
    list[4].state = tether::protocol::CredentialState::Revoked;
    list[4].revoked_at = Some(now() - Duration::hours(26));
    list
}

/// Logged in, `C` pressed and the list answered.
fn credentials_list(width: u16, height: u16) -> State {
    let mut state = logged_in(width, height);
    let effects = press(&mut state, KeyCode::Char('C'));
    let [(id, ConsoleRequest::ListCredentials { .. })] = &requests(&effects)[..] else {
        panic!("C asks for the list: {effects:?}");
    };
    reply(
        &mut state,
        *id,
        Ok(ConsoleReply::Credentials {
            next: None,
            total: None,
            credentials: team_credentials(),
        }),
    );
    state
}

#[test]
fn credentials_list_view() {
    for (width, height) in [(80, 24), (120, 40)] {
        let mut state = credentials_list(width, height);
        let screen = render(&state, width, height);
        // Newest first, and the one past its expiry shows as expired by the console's clock.
        let order: Vec<usize> = [
            "guest-k7m2q9tx",
            "guest-r3t6y8ub",
            "guest-h2j5k9cv",
            "guest-p4w8n2ha",
            "guest-x9z3m6qe",
        ]
        .iter()
        .map(|user| {
            screen
                .find(user)
                .unwrap_or_else(|| panic!("{user} in {screen}"))
        })
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{screen}");
        let dentist = screen
            .lines()
            .find(|l| l.contains("guest-h2j5k9cv"))
            .expect("row");
        assert!(dentist.contains("expired"), "{dentist}");
        assert!(screen.contains("2 active of 5"), "{screen}");
        assert!(
            screen.contains("r revoke") && screen.contains("g regenerate"),
            "{screen}"
        );
        insta::assert_snapshot!(format!("credentials_list_{width}x{height}"), screen);
        // Revoke asks first.
        press(&mut state, KeyCode::Char('r'));
        let screen = render(&state, width, height);
        assert!(screen.contains("Revoke support credentials?"), "{screen}");
        if width == 80 {
            insta::assert_snapshot!("credentials_list_revoke_80x24", screen);
        }
        // Regenerate the selected (newest) ones: asked first, then the new secrets shown once
        // and the list asked again.
        assert!(requests(&press(&mut state, KeyCode::Esc)).is_empty());
        assert!(requests(&press(&mut state, KeyCode::Char('g'))).is_empty());
        let effects = press(&mut state, KeyCode::Char('y'));
        let [(id, ConsoleRequest::RegenerateCredentials { credential })] = &requests(&effects)[..]
        else {
            panic!("regenerate: {effects:?}");
        };
        assert_eq!(credential, "sc_5");
        let mut new = sample_credential(
            tether::protocol::CredentialTarget::Workstation {
                workstation: "w1".into(),
            },
            "reception-pc",
        );
        new.id = "sc_6".into();
        let effects = reply(
            &mut state,
            *id,
            Ok(ConsoleReply::CredentialsIssued {
                credential: Box::new(new),
                reveal: Box::new(tether::protocol::RevealedCredential {
                    hub: HUB.into(),
                    fingerprint: FINGERPRINT.into(),
                    user: "guest-k7m2q9tx".into(),
                    password: "Zq7pW3mK9xR2tB6nV4cH".into(),
                    code: "402913".into(),
                    expires_at: now() + Duration::hours(24),
                }),
            }),
        );
        assert!(matches!(
            &requests(&effects)[..],
            [(_, ConsoleRequest::ListCredentials { .. })]
        ));
        let screen = render(&state, width, height);
        assert!(
            screen.contains("shown once") && screen.contains("Zq7pW3mK9xR2tB6nV4cH"),
            "{screen}"
        );
    }
}

#[test]
fn guest_login_form() {
    let mut state = new_state();
    resize(&mut state, 80, 24);
    update::start(
        &mut state,
        Startup::Form {
            hub: Some(HUB.into()),
            user: None,
        },
    );
    update::update(
        &mut state,
        Msg::Key(KeyEvent::new(KeyCode::Char('g'), KeyModifiers::CONTROL)),
    );
    type_text(&mut state, "guest-k7m2q9tx");
    press(&mut state, KeyCode::Tab);
    type_text(&mut state, "Zq7pW3mK9xR2tB6nV4cH");
    press(&mut state, KeyCode::Tab);
    type_text(&mut state, "402913");
    let screen = render(&state, 80, 24);
    assert!(
        screen.contains("guest login") && !screen.contains("Zq7pW3mK9xR2tB6nV4cH"),
        "{screen}"
    );
    insta::assert_snapshot!("guest_login_80x24", screen);
}

#[test]
fn guest_main_screen() {
    let mut state = new_state();
    resize(&mut state, 80, 24);
    update::start(
        &mut state,
        Startup::Preset {
            hub: HUB.into(),
            fingerprint: FINGERPRINT.into(),
            token: "guest-token".into(),
        },
    );
    let guest = tether::protocol::GuestInfo {
        credential: "sc_7".into(),
        target: tether::protocol::CredentialTarget::Workstation {
            workstation: "w1".into(),
        },
        target_label: "reception-pc".into(),
        scopes: tether::protocol::CredentialScopes::default(),
        issued_by: "ann".into(),
        expires_at: now() + Duration::hours(8),
    };
    let user = UserInfo {
        id: "sc_7".into(),
        name: "guest-k7m2q9tx".into(),
        ..technician()
    };
    let effects = update::update(
        &mut state,
        Msg::Net(NetEvent::GuestLoggedIn {
            user,
            guest: Box::new(guest),
            token: None,
        }),
    );
    // The hub answers a guest's lists with the target only.
    for (id, body) in requests(&effects) {
        let result = match body {
            ConsoleRequest::ListClients { .. } => Ok(ConsoleReply::Clients {
                next: None,
                total: None,
                clients: vec![client(ACME.0, ACME.1)],
            }),
            ConsoleRequest::ListWorkstations { client: None, .. } => {
                Ok(ConsoleReply::Workstations {
                    next: None,
                    total: None,
                    workstations: sample_workstations()
                        .into_iter()
                        .filter(|w| w.id == "w1")
                        .collect(),
                })
            }
            ConsoleRequest::ListSessions { .. } => Ok(ConsoleReply::Sessions {
                next: None,
                total: None,
                sessions: vec![],
            }),
            other => panic!("unexpected request {other:?}"),
        };
        update::update(&mut state, Msg::Net(NetEvent::Reply { id, result }));
    }
    let screen = render(&state, 80, 24);
    assert!(
        screen.contains("Guest · reception-pc · view only"),
        "{screen}"
    );
    assert!(
        !screen.contains("unattended"),
        "no technician verbs in the footer: {screen}"
    );
    insta::assert_snapshot!("guest_main_80x24", screen);
}
