//! Lists past the size of one message: a team of 2,000 workstations and an audit log of 5,000
//! records, listed completely by `tether ctl` (the real binary, a page at a time) and shown by
//! the console (its `update` fed the real hub's paged replies). Rows are put in through the
//! store (enrolling 2,000 real agents would take minutes); every list goes through a real hub.
//! Every process started here is killed when the test ends, pass or fail.

mod common;

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tether::console::keymap::Keymap;
use tether::console::net::{NetCommand, NetEvent};
use tether::console::state::State;
use tether::console::theme::Theme;
use tether::console::ui;
use tether::console::update::{self, Effect, Msg};
use tether::hub::store::{NewAudit, NewLink, NewWorkstation, SqliteStore, Store};
use tether::protocol::{ConsoleRequest, ErrorCode, HubEvent, Role, WorkstationReport};

use common::TestHub;
use common::bin::{HubProcess, create_admin, login, ok, run as tether};

const WORKSTATIONS: usize = 2000;
const AUDIT_RECORDS: usize = 5000;

/// A client with `WORKSTATIONS` workstations in `user`'s team, and `AUDIT_RECORDS` audit
/// records of a kind nothing else in these tests writes (`audit.export`).
fn seed(store: &dyn Store, user: &str) {
    let user = store
        .user_by_name(user)
        .expect("read user")
        .expect("user exists")
        .info;
    let team = user.team_id;
    let now = Utc::now();
    let client = store
        .create_client(&"cl_seed".to_owned(), &team, "Acme Dental", now)
        .expect("client");
    store
        .create_link(NewLink {
            id: "ln_seed".into(),
            client_id: client.id.clone(),
            token_hash: "0".repeat(64),
            created_by: user.id,
            created_at: now,
            expires_at: now + chrono::Duration::days(1),
        })
        .expect("link");
    for i in 0..WORKSTATIONS {
        store
            .enrol_workstation(NewWorkstation {
                id: format!("ws_seed_{i:05}"),
                client_id: client.id.clone(),
                link_id: "ln_seed".into(),
                key_hash: format!("{i:064}"),
                report: WorkstationReport {
                    // Mixed case, so the list's case-insensitive order is exercised.
                    hostname: if i % 2 == 0 {
                        format!("Reception-PC-{i:05}")
                    } else {
                        format!("reception-pc-{i:05}")
                    },
                    os: "Debian GNU/Linux 12 (bookworm)".into(),
                    user: format!("user{i}"),
                    screen: None,
                    agent_version: "0.1.0".into(),
                },
                at: now,
                requires: Default::default(),
            })
            .expect("workstation");
    }
    for i in 0..AUDIT_RECORDS {
        store
            .append_audit(NewAudit {
                at: now,
                actor: "seed".into(),
                actor_email: None,
                team_id: Some(team.clone()),
                action: tether::hub::audit::AuditEvent::AuditExport,
                target: Some(format!("row-{i}")),
                detail: serde_json::json!({ "n": i, "note": "a record of the seeded audit log" }),
            })
            .expect("audit");
    }
}

fn json_array(text: &str) -> Vec<serde_json::Value> {
    let value: serde_json::Value = serde_json::from_str(text).expect("one JSON array");
    value.as_array().expect("an array").clone()
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON record a line"))
        .collect()
}

fn seeded_audit(rows: &[serde_json::Value]) -> usize {
    rows.iter()
        .filter(|r| r["action"] == "audit.export")
        .count()
}

#[test]
fn ctl_lists_every_workstation_and_audit_record_a_page_at_a_time() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = home.path().join("hubdata");
    create_admin(home.path(), &data, "ann");
    {
        let store = SqliteStore::open_dir(&data).expect("open store");
        seed(&store, "ann");
    }
    let hub = HubProcess::start(home.path(), &data, &[], Stdio::null());
    login(home.path(), &hub, "ann");

    // One JSON array, every row once, in list order.
    let out = ok(&tether(
        home.path(),
        &["ctl", "--json", "workstations", "list"],
        None,
    ));
    let rows = json_array(&out);
    assert_eq!(rows.len(), WORKSTATIONS, "every workstation listed");
    let ids: HashSet<&str> = rows.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids.len(), WORKSTATIONS, "no workstation twice");
    let hosts: Vec<String> = rows
        .iter()
        .filter_map(|r| r["hostname"].as_str())
        .map(str::to_lowercase)
        .collect();
    assert!(
        hosts.windows(2).all(|w| w[0] <= w[1]),
        "listed by host name, in any case, across pages"
    );

    // JSON lines: one record a line.
    let out = ok(&tether(
        home.path(),
        &["ctl", "--jsonl", "workstations", "list"],
        None,
    ));
    assert_eq!(json_lines(&out).len(), WORKSTATIONS);

    // --limit stops early, across a page boundary.
    let out = ok(&tether(
        home.path(),
        &["ctl", "--json", "workstations", "list", "--limit", "777"],
        None,
    ));
    let limited = json_array(&out);
    assert_eq!(limited.len(), 777);
    assert_eq!(limited[..], rows[..777], "the first 777 of the same list");

    // Filtered on the hub, in any case, over host name, client, OS and user.
    let out = ok(&tether(
        home.path(),
        &[
            "ctl",
            "--json",
            "workstations",
            "list",
            "--filter",
            "PC-0001",
        ],
        None,
    ));
    let found = json_array(&out);
    assert_eq!(
        found.len(),
        10,
        "reception-pc-00010 to 00019, in either case"
    );
    assert!(found.iter().all(|r| {
        r["hostname"]
            .as_str()
            .is_some_and(|h| h.to_lowercase().contains("pc-0001"))
    }));

    // The table prints every row too (a header and one line each).
    let out = ok(&tether(home.path(), &["ctl", "workstations", "list"], None));
    assert_eq!(out.lines().count(), WORKSTATIONS + 1);

    // The audit log: every seeded record, newest first, each once.
    let out = ok(&tether(
        home.path(),
        &["ctl", "--json", "audit", "list"],
        None,
    ));
    let records = json_array(&out);
    assert_eq!(seeded_audit(&records), AUDIT_RECORDS, "every audit record");
    let ids: Vec<i64> = records.iter().filter_map(|r| r["id"].as_i64()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "newest first, none twice"
    );

    let out = ok(&tether(
        home.path(),
        &["ctl", "--jsonl", "audit", "list", "--kind", "audit.export"],
        None,
    ));
    assert_eq!(json_lines(&out).len(), AUDIT_RECORDS);

    let out = ok(&tether(
        home.path(),
        &["ctl", "--jsonl", "audit", "list", "--limit", "1234"],
        None,
    ));
    assert_eq!(json_lines(&out).len(), 1234);
}

/// The console's requests answered by the real hub until none is left: the console asks for
/// each next page as the one before arrives. Returns how many workstation replies came, and the
/// screen after the first of them.
async fn serve_console(
    client: &tether::client::HubClient,
    state: &mut State,
    effects: Vec<Effect>,
) -> (usize, Option<String>) {
    let mut queue: Vec<Effect> = effects;
    let mut pages = 0;
    let mut after_first = None;
    while let Some(effect) = queue.pop() {
        let Effect::Net(NetCommand::Request { id, body }) = effect else {
            continue;
        };
        let workstations = matches!(body, ConsoleRequest::ListWorkstations { .. });
        let result = tokio::time::timeout(Duration::from_secs(10), client.request(body))
            .await
            .expect("the hub answers within 10 s")
            .map_err(|e| match e {
                tether::client::ClientError::Hub(p) => p,
                other => panic!("request failed: {other}"),
            });
        queue.extend(update::update(
            state,
            Msg::Net(NetEvent::Reply { id, result }),
        ));
        if workstations {
            pages += 1;
            if pages == 1 {
                after_first = Some(screen(state));
            }
        }
    }
    (pages, after_first)
}

fn screen(state: &State) -> String {
    let mut terminal = Terminal::new(TestBackend::new(140, 40)).expect("test terminal");
    let theme = Theme::builtin("dark").expect("theme");
    terminal
        .draw(|frame| ui::draw(state, &theme, frame))
        .expect("draw");
    terminal.backend().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_every_workstation_of_a_large_team() {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    let store: Arc<dyn Store> = hub.hub.store().clone();
    tokio::task::spawn_blocking(move || seed(store.as_ref(), "ann"))
        .await
        .expect("seed");
    let (client, _events) = tether::client::HubClient::connect(&hub.url, hub.pin())
        .await
        .expect("connect");
    let (_, _, user) = client.login("ann", common::PASSWORD).await.expect("login");

    let mut state = State::new(Utc::now(), Keymap::default(), vec!["dark".into()], 0);
    update::update(
        &mut state,
        Msg::Resize {
            width: 140,
            height: 40,
        },
    );
    let effects = update::start(
        &mut state,
        update::Startup::Preset {
            hub: hub.url.clone(),
            fingerprint: hub.hub.fingerprint().to_owned(),
            token: "unused".into(),
        },
    );
    drop(effects);
    let effects = update::update(
        &mut state,
        Msg::Net(NetEvent::LoggedIn { user, token: None }),
    );
    let (pages, first) = serve_console(&client, &mut state, effects).await;

    assert!(
        pages > 1,
        "the list came in {pages} page(s): it must be paged"
    );
    let first = first.expect("a first page");
    assert!(
        first.contains(&format!("of {WORKSTATIONS}")),
        "while later pages load, the pane says how far it is:\n{first}"
    );
    assert_eq!(state.workstations.len(), WORKSTATIONS);
    let shown = screen(&state);
    assert!(
        shown.contains(&format!(" 0/{WORKSTATIONS} online ")),
        "the header counts every workstation:\n{shown}"
    );
    assert!(!shown.contains("loading"), "done loading:\n{shown}");

    // Told it missed events, the console loads its lists again, from the first page.
    let effects = update::update(&mut state, Msg::Net(NetEvent::Event(HubEvent::Resync)));
    assert!(
        effects.iter().any(|e| matches!(
            e,
            Effect::Net(NetCommand::Request {
                body: ConsoleRequest::ListWorkstations { page, .. },
                ..
            }) if page.after.is_none()
        )),
        "a resync reloads the workstations: {effects:?}"
    );
    let (pages, _) = serve_console(&client, &mut state, effects).await;
    assert!(pages > 1);
    assert_eq!(
        state.workstations.len(),
        WORKSTATIONS,
        "reloaded, none twice"
    );
}

#[tokio::test]
async fn a_request_over_the_message_limit_fails_at_once_with_a_clear_error() {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    let (client, _events) = hub.console("ann").await;
    let body = ConsoleRequest::AddClient {
        name: "x".repeat(tether::protocol::MAX_CONTROL_MESSAGE),
    };
    let err = tokio::time::timeout(Duration::from_secs(5), client.request(body))
        .await
        .expect("failed at once, not after the request timeout")
        .expect_err("too large");
    match err {
        tether::client::ClientError::Hub(e) => {
            assert_eq!(e.code, ErrorCode::TooLarge);
            assert!(e.message.contains("over the limit"), "{e}");
        }
        other => panic!("expected a too-large error, got {other}"),
    }
    // The connection still serves requests.
    client
        .request(ConsoleRequest::ListClients {
            page: Default::default(),
        })
        .await
        .expect("still connected");
}
