//! Issue 5's console screens on a `TestBackend`, reached through the public `update`: the login
//! form with its 2FA code field, "Activate now / later", the enrolment QR code, the user menu,
//! the users view and the audit log. All at 80x24, the smallest screen we promise.
//! Update with `INSTA_UPDATE=always cargo test --test console_twofa`, then read the diffs.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use tether::console::keymap::Keymap;
use tether::console::net::{NetCommand, NetEvent};
use tether::console::state::State;
use tether::console::theme::Theme;
use tether::console::ui;
use tether::console::update::{self, Effect, Msg, Startup};
use tether::protocol::{
    AuditRecord, ConsoleReply, ConsoleRequest, ErrorCode, ProtocolError, Role, TwoFactorState,
    TwoFactorStatus, UserInfo, UserTwoFactor,
};
use tether::render::qr::QrModules;

const HUB: &str = "wss://hub.example.org:7443";
const FINGERPRINT: &str = "SHA256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const URI: &str = "otpauth://totp/Tether:ann?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Tether";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 30, 0)
        .single()
        .expect("valid date")
}

fn buffer(state: &State) -> Buffer {
    buffer_sized(state, 80, 24)
}

fn buffer_sized(state: &State, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    let theme = Theme::builtin("dark").expect("theme");
    terminal
        .draw(|frame| ui::draw(state, &theme, frame))
        .expect("draw");
    terminal.backend().buffer().clone()
}

fn render(state: &State) -> String {
    text_of(&buffer(state))
}

fn text_of(buffer: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
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

fn new_state() -> State {
    let mut state = State::new(now(), Keymap::default(), vec!["dark".into()], 0);
    update::update(
        &mut state,
        Msg::Resize {
            width: 80,
            height: 24,
        },
    );
    state
}

fn logged_in(role: Role, tf: TwoFactorState) -> State {
    let mut state = new_state();
    update::start(
        &mut state,
        Startup::Preset {
            hub: HUB.into(),
            fingerprint: FINGERPRINT.into(),
            token: "tok".into(),
        },
    );
    let user = UserInfo {
        id: "u1".into(),
        name: "ann".into(),
        email: "ann@example.org".into(),
        role,
        team_id: "t1".into(),
        team: "Blue".into(),
    };
    let effects = update::update(
        &mut state,
        Msg::Net(NetEvent::LoggedIn { user, token: None }),
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
                workstations: Vec::new(),
            },
            ConsoleRequest::ListSessions { .. } => ConsoleReply::Sessions {
                next: None,
                total: None,
                sessions: Vec::new(),
            },
            ConsoleRequest::TwoFactorStatus => ConsoleReply::TwoFactor {
                status: TwoFactorStatus {
                    state: tf,
                    required: tf == TwoFactorState::Pending,
                    global: false,
                    enrolling: false,
                },
            },
            other => panic!("unexpected request {other:?}"),
        };
        reply(&mut state, id, Ok(result));
    }
    state
}

/// Activate now, with the hub's enrolment in the dialog.
fn enrolling() -> State {
    let mut state = logged_in(Role::Technician, TwoFactorState::Pending);
    let (id, _) = requests(&press(&mut state, KeyCode::Char('n')))
        .pop()
        .expect("enable request");
    reply(
        &mut state,
        id,
        Ok(ConsoleReply::TwoFactorEnrolment {
            uri: URI.into(),
            secret: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into(),
        }),
    );
    type_text(&mut state, "12");
    state
}

#[test]
fn login_with_the_code_field() {
    let mut state = new_state();
    update::start(
        &mut state,
        Startup::Form {
            hub: Some(HUB.into()),
            user: Some("ann".into()),
        },
    );
    type_text(&mut state, "plum tractor violet 7");
    press(&mut state, KeyCode::Enter);
    update::update(
        &mut state,
        Msg::PinLoaded {
            hub: HUB.into(),
            fingerprint: Some(FINGERPRINT.into()),
        },
    );
    update::update(
        &mut state,
        Msg::Net(NetEvent::LoginFailed {
            error: ProtocolError::new(ErrorCode::TwoFactorRequired, "enter the code"),
        }),
    );
    type_text(&mut state, "4821");
    insta::assert_snapshot!("twofa_login_code_80x24", render(&state));
}

#[test]
fn activate_now_or_later() {
    let state = logged_in(Role::Technician, TwoFactorState::Pending);
    insta::assert_snapshot!("twofa_activate_80x24", render(&state));
}

#[test]
fn enrolment_draws_a_scannable_qr_code_with_the_uri() {
    let state = enrolling();
    let screen = render(&state);
    insta::assert_snapshot!("twofa_enrol_80x24", screen);
    // Every module of the QR code is drawn exactly, black on white.
    let buffer = buffer(&state);
    let qr = QrModules::new(URI, 2).expect("qr");
    let rows = u16::try_from(qr.width.div_ceil(2)).expect("rows");
    let cols = u16::try_from(qr.width).expect("cols");
    assert!(rows + 2 <= 24, "fits 80x24 with its border");
    // The QR code's top-left cell: the first cell drawn on white.
    let origin = (0..buffer.area.height)
        .flat_map(|y| (0..buffer.area.width).map(move |x| (x, y)))
        .find(|&(x, y)| buffer[(x, y)].bg == Color::Rgb(255, 255, 255))
        .expect("the QR code is drawn");
    // Beside it, the key and the URI as text, whole (wrapped).
    let text: String = (origin.1..origin.1 + rows)
        .map(|y| {
            (origin.0 + cols + 1..buffer.area.width - 1)
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
                .trim()
                .to_owned()
        })
        .collect();
    assert!(
        text.contains("GEZD GNBV GY3T"),
        "the key in groups of four: {text}"
    );
    assert!(
        text.replace(' ', "")
            .contains("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
    );
    assert!(text.contains(URI), "{text}");
    for row in 0..rows {
        for col in 0..u16::try_from(qr.width).expect("cols") {
            let cell = &buffer[(origin.0 + col, origin.1 + row)];
            let (top, bottom) = (
                qr.is_dark(usize::from(col), 2 * usize::from(row)),
                qr.is_dark(usize::from(col), 2 * usize::from(row) + 1),
            );
            let expected = match (top, bottom) {
                (true, true) => "█",
                (true, false) => "▀",
                (false, true) => "▄",
                (false, false) => " ",
            };
            assert_eq!(cell.symbol(), expected, "module cell ({col}, {row})");
            assert_eq!(cell.fg, Color::Rgb(0, 0, 0));
            assert_eq!(cell.bg, Color::Rgb(255, 255, 255));
        }
    }
}

#[test]
fn an_enrolment_qr_code_that_does_not_fit_is_not_cropped_but_explained() {
    for (width, height) in [(80, 18), (60, 24)] {
        let mut state = enrolling();
        update::update(&mut state, Msg::Resize { width, height });
        let buffer = buffer_sized(&state, width, height);
        let screen = text_of(&buffer);
        // No part of a QR code: a cropped one cannot be scanned.
        assert!(
            !buffer
                .content
                .iter()
                .any(|c| c.bg == Color::Rgb(255, 255, 255)),
            "{width}x{height}:\n{screen}"
        );
        let flat: String = screen.split_whitespace().collect::<Vec<_>>().join(" ");
        let flat = flat.replace(" │ │ ", " ");
        assert!(
            flat.contains("enlarge the terminal to scan it"),
            "{width}x{height}:\n{screen}"
        );
        // The key is still there to type.
        assert!(screen.contains("GEZD GNBV"), "{width}x{height}:\n{screen}");
        if (width, height) == (80, 18) {
            insta::assert_snapshot!("twofa_enrol_qr_does_not_fit_80x18", screen);
        }
    }
    // At 80x24 it fits, whole, and nothing is said about it.
    let state = enrolling();
    assert!(!render(&state).contains("does not fit"));
}

#[test]
fn user_menu() {
    let mut state = logged_in(Role::Admin, TwoFactorState::Off);
    press(&mut state, KeyCode::Char('m'));
    insta::assert_snapshot!("twofa_user_menu_80x24", render(&state));
}

/// An admin's users view (`U`), three users listed, the second selected.
fn users_listed() -> State {
    let mut state = logged_in(Role::Admin, TwoFactorState::Active);
    let (id, _) = requests(&press(&mut state, KeyCode::Char('U')))
        .pop()
        .expect("list users");
    let user = |name: &str, role, state, required| UserTwoFactor {
        id: format!("u-{name}"),
        name: name.into(),
        email: format!("{name}@example.org"),
        role,
        team_id: "t1".into(),
        team: "Blue".into(),
        state,
        required,
        disabled: false,
    };
    reply(
        &mut state,
        id,
        Ok(ConsoleReply::Users {
            next: None,
            total: None,
            users: vec![
                user("ann", Role::Admin, TwoFactorState::Active, false),
                user("bob", Role::Technician, TwoFactorState::Pending, true),
                user("cleo", Role::Technician, TwoFactorState::Off, false),
            ],
            global: false,
        }),
    );
    press(&mut state, KeyCode::Char('j'));
    state
}

/// Issue 11: the lifecycle keys of the users view, each listed for `?`, with a question
/// before the changes that close someone's consoles; all at 80x24.
#[test]
fn users_lifecycle_keys() {
    let mut state = users_listed();
    // Add: name, e-mail, role (Tab moves, space toggles the role), Enter sends.
    assert!(requests(&press(&mut state, KeyCode::Char('a'))).is_empty());
    type_text(&mut state, "dora");
    press(&mut state, KeyCode::Tab);
    type_text(&mut state, "dora@example.org");
    press(&mut state, KeyCode::Tab);
    press(&mut state, KeyCode::Char(' '));
    insta::assert_snapshot!("users_add_80x24", render(&state));
    let [(id, request)] = &requests(&press(&mut state, KeyCode::Enter))[..] else {
        panic!("one request");
    };
    assert_eq!(
        request,
        &ConsoleRequest::AddUser {
            name: "dora".into(),
            role: Role::Admin,
            email: Some("dora@example.org".into()),
            password: None,
        }
    );
    let user = UserInfo {
        id: "u-dora".into(),
        name: "dora".into(),
        email: "dora@example.org".into(),
        role: Role::Admin,
        team_id: "t1".into(),
        team: "Blue".into(),
    };
    let enrolment = tether::protocol::UserEnrolment {
        code: "Xq3v9bW2kLmN8pR4tY6uZa1cD5eF7gH0jK2sV4wQ9xE".into(),
        expires_at: now() + Duration::hours(72),
    };
    reply(
        &mut state,
        *id,
        Ok(ConsoleReply::UserAdded {
            user,
            enrolment: Some(enrolment),
        }),
    );
    let shown = render(&state);
    assert!(
        shown.contains("Xq3v9bW2kLmN8pR4tY6uZa1cD5eF7gH0jK2sV4wQ9xE"),
        "{shown}"
    );
    insta::assert_snapshot!("users_added_80x24", shown);
    // Closing it reloads the list; the code is gone from the screen.
    let reload = requests(&press(&mut state, KeyCode::Enter));
    assert!(matches!(
        reload[..],
        [(_, ConsoleRequest::ListUsers { .. })]
    ));
    assert!(!render(&state).contains("Xq3v9bW2"));

    // Disable bob (selected): asked first; `n` changes nothing, `y` sends it.
    assert!(requests(&press(&mut state, KeyCode::Char('d'))).is_empty());
    insta::assert_snapshot!("users_disable_confirm_80x24", render(&state));
    assert!(requests(&press(&mut state, KeyCode::Char('n'))).is_empty());
    press(&mut state, KeyCode::Char('d'));
    let sent = requests(&press(&mut state, KeyCode::Char('y')));
    assert!(matches!(&sent[..], [(_, ConsoleRequest::DisableUser { user })] if user == "bob"));
    // Remove and role change likewise ask first.
    press(&mut state, KeyCode::Char('X'));
    let sent = requests(&press(&mut state, KeyCode::Char('y')));
    assert!(matches!(&sent[..], [(_, ConsoleRequest::RemoveUser { user })] if user == "bob"));
    press(&mut state, KeyCode::Char('o'));
    let sent = requests(&press(&mut state, KeyCode::Char('y')));
    assert!(matches!(
        &sent[..],
        [(_, ConsoleRequest::SetUserRole { user, role: Role::Admin })] if user == "bob"
    ));
    // Not on yourself (ann, the first row).
    press(&mut state, KeyCode::Char('k'));
    press(&mut state, KeyCode::Char('d'));
    assert!(render(&state).contains("cannot disable, remove or demote yourself"));

    // Every key is in the help, from the keymap.
    let help = Keymap::default().help();
    for (key, what) in [
        ("a", "Add a user"),
        ("o", "Make the selected user admin"),
        ("d", "Disable the selected user"),
        ("X", "Remove the selected user"),
    ] {
        assert!(
            help.iter()
                .flat_map(|(_, rows)| rows)
                .any(|(keys, d)| keys == key && d.starts_with(what)),
            "{key}: {what}"
        );
    }
}

#[test]
fn users_view() {
    let mut state = users_listed();
    insta::assert_snapshot!("twofa_users_80x24", render(&state));
    press(&mut state, KeyCode::Char('x'));
    type_text(&mut state, "secret");
    insta::assert_snapshot!("twofa_admin_password_80x24", render(&state));
}

#[test]
fn an_admin_resets_a_users_2fa_from_the_users_view() {
    // Not one's own: said, nothing asked.
    let mut state = users_listed();
    press(&mut state, KeyCode::Char('k'));
    assert!(requests(&press(&mut state, KeyCode::Char('R'))).is_empty());
    assert!(state.dialog.is_none());
    let status = state
        .status
        .as_ref()
        .map(|s| s.text.clone())
        .unwrap_or_default();
    assert!(status.contains("ask another admin"), "{status}");

    // bob: the admin's password first, then the request; done, the list reloads.
    let mut state = users_listed();
    assert!(
        requests(&press(&mut state, KeyCode::Char('R'))).is_empty(),
        "asks first"
    );
    type_text(&mut state, "secret");
    insta::assert_snapshot!("twofa_reset_password_80x24", render(&state));
    let effects = press(&mut state, KeyCode::Enter);
    let [(id, ConsoleRequest::ResetUserTwoFactor { user, password })] = &requests(&effects)[..]
    else {
        panic!("expected ResetUserTwoFactor, got {effects:?}");
    };
    assert_eq!((user.as_str(), password.expose()), ("bob", "secret"));
    let effects = reply(&mut state, *id, Ok(ConsoleReply::Done));
    assert!(
        requests(&effects)
            .iter()
            .any(|(_, r)| matches!(r, ConsoleRequest::ListUsers { .. })),
        "reloads the users"
    );
    let status = state
        .status
        .as_ref()
        .map(|s| s.text.clone())
        .unwrap_or_default();
    assert!(status.contains("2FA reset for bob"), "{status}");

    // A wrong password is said, and nothing changed.
    let mut state = users_listed();
    press(&mut state, KeyCode::Char('R'));
    type_text(&mut state, "wrong");
    let (id, _) = requests(&press(&mut state, KeyCode::Enter))
        .pop()
        .expect("reset request");
    reply(
        &mut state,
        id,
        Err(ProtocolError::new(
            ErrorCode::InvalidCredentials,
            "wrong password",
        )),
    );
    let status = state
        .status
        .as_ref()
        .map(|s| s.text.clone())
        .unwrap_or_default();
    assert!(
        status.contains("refused") && status.contains("Nothing changed"),
        "{status}"
    );
    // The key is in the help, from the keymap.
    let help = Keymap::default().help();
    assert!(
        help.iter()
            .flat_map(|(_, rows)| rows)
            .any(|(keys, d)| keys == "R" && d.starts_with("Reset the selected user's 2FA"))
    );
}

/// The audit log view (`L`) with five records, then `filter` typed after `/` (if any).
fn audit_listed(filter: &str) -> State {
    let mut state = logged_in(Role::Technician, TwoFactorState::Off);
    let (id, _) = requests(&press(&mut state, KeyCode::Char('L')))
        .pop()
        .expect("search");
    let record =
        |id: i64, mins: i64, actor: &str, action: &str, detail: serde_json::Value| AuditRecord {
            id,
            at: now() - Duration::minutes(mins),
            actor: actor.into(),
            actor_email: None,
            team_id: Some("t1".into()),
            action: action.into(),
            target: None,
            detail,
            prev_hash: String::new(),
            hash: String::new(),
        };
    // An end user's answer on a workstation this console knows: shown by its host name.
    state
        .workstations
        .upsert(tether::protocol::WorkstationInfo {
            id: "w-till".into(),
            client_id: "c1".into(),
            client_name: "Acme Dental".into(),
            hostname: "till-1".into(),
            os: "Debian 12".into(),
            user: "kasse".into(),
            screen: None,
            agent_version: "0.1.0".into(),
            presence: tether::protocol::Presence::Online,
            last_seen: now(),
            enrolled_at: now(),
            unattended: Default::default(),
            requires: Default::default(),
            otp_required: false,
        });
    let records = vec![
        record(
            6,
            0,
            "agent:w-till",
            "access.grant",
            serde_json::json!({ "hostname": "till-1", "from": "requested" }),
        ),
        record(
            5,
            1,
            "bob",
            "connect.refused",
            serde_json::json!({ "reason": "2fa required but not active" }),
        ),
        record(4, 2, "ann", "2fa.confirm", serde_json::json!({})),
        record(3, 3, "ann", "2fa.enable", serde_json::json!({})),
        record(
            2,
            9,
            "bob",
            "login.fail",
            serde_json::json!({ "from": "10.0.0.7", "reason": "wrong 2fa code" }),
        ),
        record(
            1,
            10,
            "ann",
            "login.ok",
            serde_json::json!({ "from": "10.0.0.5", "method": "password+totp" }),
        ),
    ];
    reply(
        &mut state,
        id,
        Ok(ConsoleReply::Audit {
            records,
            next: None,
            total: None,
        }),
    );
    if !filter.is_empty() {
        press(&mut state, KeyCode::Char('/'));
        type_text(&mut state, filter);
    }
    state
}

#[test]
fn audit_view() {
    insta::assert_snapshot!(
        "twofa_audit_80x24",
        render(&audit_listed("kind:login user:bob"))
    );
    insta::assert_snapshot!("twofa_audit_all_80x24", render(&audit_listed("")));
}

#[test]
fn audit_details_read_as_fields_and_a_bad_filter_says_why() {
    let mut state = audit_listed("");
    // bob's failed login: its details as fields, not JSON.
    for _ in 0..4 {
        press(&mut state, KeyCode::Char('j'));
    }
    let screen = render(&state);
    assert!(
        screen.contains("from: 10.0.0.7 · reason: wrong 2fa code"),
        "{screen}"
    );
    assert!(!screen.contains("{\""), "no raw JSON: {screen}");
    insta::assert_snapshot!("twofa_audit_details_80x24", screen);
    let mut wide = audit_listed("");
    wide.size = (120, 40);
    for _ in 0..4 {
        press(&mut wide, KeyCode::Char('j'));
    }
    insta::assert_snapshot!(
        "twofa_audit_details_120x40",
        text_of(&buffer_sized(&wide, 120, 40))
    );

    // A filter the console cannot read is not applied, and the status line says why.
    let mut state = audit_listed("user:bob since:yesterday");
    assert!(requests(&press(&mut state, KeyCode::Enter)).is_empty());
    let screen = render(&state);
    assert!(
        screen.contains("Filter not applied") && screen.contains("yesterday"),
        "{screen}"
    );
}

#[path = "common/mod.rs"]
mod common;
#[path = "common/png.rs"]
mod png;

/// The 2FA screens as PNGs: with `TETHER_WRITE_SCREENSHOTS=1` into `screenshots/`, else into a
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
    for (name, state) in [
        ("enrol-2fa-80x24", enrolling()),
        (
            "activate-2fa-80x24",
            logged_in(Role::Technician, TwoFactorState::Pending),
        ),
        ("users-80x24", users_listed()),
        ("audit-80x24", audit_listed("")),
    ] {
        let image = renderer.render(&buffer(&state));
        let path = dir.join(format!("{name}.png"));
        image.save(&path).expect("write png");
        let back = image::open(&path).expect("decode png").to_rgb8();
        assert_eq!(back.dimensions(), image.dimensions());
        // The QR code's white and black are in the picture.
        let has = |rgb: [u8; 3]| back.pixels().any(|p| p.0 == rgb);
        if name.starts_with("enrol") {
            assert!(has([255, 255, 255]) && has([0, 0, 0]), "{name}");
            // An independent decoder reads the QR code off the picture of the terminal.
            if common::peers::available("zbarimg", "screenshots (QR decoding)") {
                let out = std::process::Command::new("zbarimg")
                    .args(["--raw", "-q"])
                    .arg(&path)
                    .output()
                    .expect("run zbarimg");
                assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), URI);
            }
        }
    }
}
