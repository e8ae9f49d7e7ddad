//! Hub integration tests: a real hub on 127.0.0.1:0 with real TLS, real agents and technician
//! clients over real WebSockets.

mod common;

use std::time::Duration;

use common::{PASSWORD, TestAgent, TestHub, wait_event};
use futures_util::{SinkExt, StreamExt};
use tether::client::{ClientError, HubClient};
use tether::hub::Limits;
use tether::protocol::{
    self, AGENT_PATH, AgentRequest, CONSOLE_PATH, ConsoleReply, ConsoleRequest, EnrolmentLink,
    ErrorCode, HubEvent, HubToAgent, HubToConsole, PROTOCOL_VERSION, Presence, Request, Role,
    WorkstationReport,
};
use tether::tls::Pin;
use tether::wire;
use tokio_tungstenite::tungstenite::Message;

const SECOND: Duration = Duration::from_secs(1);

fn hub_error(e: ClientError) -> protocol::ProtocolError {
    match e {
        ClientError::Hub(p) => p,
        other => panic!("expected an error from the hub, got {other}"),
    }
}

async fn add_client(tech: &HubClient, name: &str) -> String {
    match tech
        .request(ConsoleRequest::AddClient { name: name.into() })
        .await
        .expect("add client")
    {
        ConsoleReply::Client { client } => client.id,
        other => panic!("unexpected {other:?}"),
    }
}

async fn new_link(tech: &HubClient, client: &str) -> (String, EnrolmentLink) {
    match tech
        .request(ConsoleRequest::CreateLink {
            client: client.into(),
            valid_days: None,
        })
        .await
        .expect("link")
    {
        ConsoleReply::Link { link, url } => (link.id, url.parse().expect("link parses")),
        other => panic!("unexpected {other:?}"),
    }
}

async fn workstations(tech: &HubClient) -> Vec<tether::protocol::WorkstationInfo> {
    match tech
        .request(ConsoleRequest::ListWorkstations {
            client: None,
            filter: None,
            page: Default::default(),
        })
        .await
        .expect("list")
    {
        ConsoleReply::Workstations { workstations, .. } => workstations,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn login_succeeds_and_failures_look_the_same() {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    let (client, _) = HubClient::connect(&hub.url, hub.pin())
        .await
        .expect("connect");

    let unknown = hub_error(
        client
            .login("nobody", PASSWORD)
            .await
            .expect_err("unknown user refused"),
    );
    let wrong = hub_error(
        client
            .login("ann", "wrong password here")
            .await
            .expect_err("wrong password refused"),
    );
    assert_eq!(unknown.code, ErrorCode::InvalidCredentials);
    assert_eq!(
        unknown, wrong,
        "unknown user and wrong password must be indistinguishable"
    );

    let (token, expires, user) = client.login("ann", PASSWORD).await.expect("login");
    assert_eq!(user.name, "ann");
    assert_eq!(user.role, Role::Admin);
    assert!(token.len() >= 22, "at least 128 bits");
    assert!(expires > chrono::Utc::now());

    // The token works on a new connection, and garbage does not.
    let (again, _) = HubClient::connect(&hub.url, hub.pin())
        .await
        .expect("connect");
    assert_eq!(again.resume(&token).await.expect("resume").name, "ann");
    let (other, _) = HubClient::connect(&hub.url, hub.pin())
        .await
        .expect("connect");
    assert_eq!(
        hub_error(other.resume("not-a-token").await.expect_err("refused")).code,
        ErrorCode::Expired
    );

    // Requests before authentication are refused.
    let (fresh, _) = HubClient::connect(&hub.url, hub.pin())
        .await
        .expect("connect");
    let e = hub_error(
        fresh
            .request(ConsoleRequest::ListClients {
                page: Default::default(),
            })
            .await
            .expect_err("refused"),
    );
    assert_eq!(e.code, ErrorCode::Unauthenticated);

    // The token is stored hashed, never in clear.
    let db = std::fs::read(hub.dir.path().join("hub/hub.sqlite3")).expect("db");
    let wal = std::fs::read(hub.dir.path().join("hub/hub.sqlite3-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "token in clear in the database"
        );
        assert!(
            !bytes
                .windows(PASSWORD.len())
                .any(|w| w == PASSWORD.as_bytes()),
            "password in clear"
        );
    }
}

#[tokio::test]
async fn a_wrong_pin_is_refused_before_anything_is_sent() {
    let hub = TestHub::start().await;
    let err = HubClient::connect(&hub.url, Pin::Fingerprint([7; 32]))
        .await
        .err()
        .expect("mismatch refused");
    assert!(
        matches!(err, ClientError::Wire(wire::WireError::CertificateMismatch { ref seen, .. }) if seen == hub.hub.fingerprint()),
        "{err}"
    );
}

#[tokio::test]
async fn enrolment_presence_and_reconnect_with_the_stored_key() {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Technician, "Desk").await;
    let (tech, mut events) = hub.console("ann").await;
    let client = add_client(&tech, "Acme").await;
    let _ = wait_event(
        &mut events,
        SECOND,
        |e| matches!(e, HubEvent::Client { client: c } if c.name == "Acme"),
    )
    .await;
    let (link_id, link) = new_link(&tech, &client).await;
    assert_eq!(
        link.fingerprint,
        hub.hub.fingerprint(),
        "the link pins the hub's certificate"
    );

    let agent_dir = tempfile::tempdir().expect("tempdir");
    let mut agent = TestAgent::start(agent_dir.path(), Some(link.clone()), "reception-pc");
    let ws_id = agent.online().await;
    // Presence reaches the console within one second of the agent being online.
    let seen = wait_event(&mut events, SECOND, |e| {
        matches!(e, HubEvent::Workstation { workstation: w } if w.id == ws_id && w.presence == Presence::Online)
    })
    .await;
    let HubEvent::Workstation { workstation } = seen else {
        unreachable!()
    };
    assert_eq!(workstation.hostname, "reception-pc");
    assert_eq!(workstation.client_id, client);
    assert_eq!(workstation.os, "TestOS 1");
    let listed = workstations(&tech).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].presence, Presence::Online);

    // The key is kept in the agent's data dir, private to its owner.
    let identity = tether::agent::Identity::load(agent_dir.path()).expect("identity saved");
    assert_eq!(identity.workstation_id, ws_id);

    // Dropping the agent shows it offline, within a second.
    agent.stop().await;
    wait_event(&mut events, SECOND, |e| {
        matches!(e, HubEvent::Workstation { workstation: w } if w.id == ws_id && w.presence == Presence::Offline)
    })
    .await;
    assert_eq!(workstations(&tech).await[0].presence, Presence::Offline);

    // Restarting without the link reuses the stored key: same workstation, no new enrolment.
    let mut again = TestAgent::start(agent_dir.path(), None, "reception-pc");
    assert_eq!(again.online().await, ws_id);
    // The same link enrols a second machine of the client.
    let second_dir = tempfile::tempdir().expect("tempdir");
    let revoked_link = link.clone();
    let mut second = TestAgent::start(second_dir.path(), Some(link), "backoffice-pc");
    let second_id = second.online().await;
    assert_ne!(second_id, ws_id);
    let links = match tech
        .request(ConsoleRequest::ListLinks {
            page: Default::default(),
            client: client.clone(),
        })
        .await
        .expect("links")
    {
        ConsoleReply::Links { links, .. } => links,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(links.len(), 1);
    assert_eq!((links[0].id.as_str(), links[0].uses), (link_id.as_str(), 2));

    // A revoked link enrols nobody, and the agent says why instead of retrying forever.
    tech.request(ConsoleRequest::RevokeLink { link: link_id })
        .await
        .expect("revoke");
    let third_dir = tempfile::tempdir().expect("tempdir");
    let mut third = TestAgent::start(third_dir.path(), Some(revoked_link), "third-pc");
    let result = tokio::time::timeout(Duration::from_secs(10), &mut third.task)
        .await
        .expect("agent gives up")
        .expect("join");
    let err = result.expect_err("a revoked link is refused");
    assert!(err.to_string().contains("revoked"), "{err}");
    assert!(tether::agent::Identity::load(third_dir.path()).is_none());

    let audit = match tech
        .request(ConsoleRequest::ListAudit {
            page: Default::default(),
            limit: 100,
            before: None,
        })
        .await
        .expect("audit")
    {
        ConsoleReply::Audit { records, .. } => records,
        other => panic!("unexpected {other:?}"),
    };
    let actions: Vec<&str> = audit.iter().map(|r| r.action.as_str()).collect();
    for expected in [
        "login.ok",
        "client.add",
        "link.create",
        "workstation.enrol",
        "link.revoke",
        "workstation.enrol_refused",
    ] {
        assert!(
            actions.contains(&expected),
            "audit lacks {expected}: {actions:?}"
        );
    }
    again.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn teams_are_isolated_even_when_ids_are_known() {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Admin, "Alpha").await;
    hub.add_user("bob", Role::Technician, "Beta").await;
    let (ann, mut ann_events) = hub.console("ann").await;
    let (bob, mut bob_events) = hub.console("bob").await;

    let alpha_client = add_client(&ann, "Alpha Corp").await;
    let (alpha_link, link) = new_link(&ann, &alpha_client).await;
    let agent_dir = tempfile::tempdir().expect("tempdir");
    let mut agent = TestAgent::start(agent_dir.path(), Some(link), "alpha-pc");
    let ws = agent.online().await;
    wait_event(
        &mut ann_events,
        SECOND,
        |e| matches!(e, HubEvent::Workstation { workstation: w } if w.id == ws),
    )
    .await;

    // Bob's team sees none of it, not by listing and not by guessing ids.
    match bob
        .request(ConsoleRequest::ListClients {
            page: Default::default(),
        })
        .await
        .expect("list")
    {
        ConsoleReply::Clients { clients, .. } => assert!(clients.is_empty(), "{clients:?}"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(workstations(&bob).await.is_empty());
    for request in [
        ConsoleRequest::CreateLink {
            client: alpha_client.clone(),
            valid_days: None,
        },
        ConsoleRequest::CreateLink {
            client: "Alpha Corp".into(),
            valid_days: None,
        },
        ConsoleRequest::ListLinks {
            page: Default::default(),
            client: alpha_client.clone(),
        },
        ConsoleRequest::ListWorkstations {
            filter: None,
            page: Default::default(),
            client: Some(alpha_client.clone()),
        },
        ConsoleRequest::RevokeLink {
            link: alpha_link.clone(),
        },
    ] {
        let e = hub_error(bob.request(request.clone()).await.expect_err("refused"));
        assert_eq!(e.code, ErrorCode::NotFound, "{request:?}");
    }
    // ... and no live event of the other team reached bob (ann's arrived first, same fan-out).
    assert!(
        bob_events.try_recv().is_err(),
        "bob received another team's event"
    );
    // The same client name is free in bob's team.
    add_client(&bob, "Alpha Corp").await;
    // Technicians see their team's audit only.
    match bob
        .request(ConsoleRequest::ListAudit {
            page: Default::default(),
            limit: 100,
            before: None,
        })
        .await
        .expect("audit")
    {
        ConsoleReply::Audit { records, .. } => {
            assert!(records.iter().all(|r| r.actor == "bob"), "{records:?}");
            assert!(!records.is_empty());
        }
        other => panic!("unexpected {other:?}"),
    }
    agent.stop().await;
}

#[tokio::test]
async fn audit_chain_verifies_and_a_tampered_row_is_named() {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    let (tech, _) = hub.console("ann").await;
    add_client(&tech, "One").await;
    add_client(&tech, "Two").await;
    let (bad, _) = HubClient::connect(&hub.url, hub.pin())
        .await
        .expect("connect");
    let _ = bad.login("ann", "not the password").await;

    let report = hub.hub.store().verify_audit().expect("verify");
    assert!(report.intact(), "{report:?}");
    assert_eq!(report.records, 4);
    let bin = env!("CARGO_BIN_EXE_tether");
    let data = hub.dir.path().join("hub");
    let ok = std::process::Command::new(bin)
        .args(["admin", "--data"])
        .arg(&data)
        .args(["audit", "verify"])
        .output()
        .expect("run");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("4 records"));

    // The log refuses edits through SQL; a tamperer who removes the guard is caught.
    let conn = rusqlite::Connection::open(data.join("hub.sqlite3")).expect("open");
    let refused = conn.execute("UPDATE audit SET actor = 'mallory' WHERE id = 2", []);
    assert!(refused.is_err(), "audit rows must be append-only");
    assert!(conn.execute("DELETE FROM audit WHERE id = 3", []).is_err());
    conn.execute_batch(
        "DROP TRIGGER audit_append_only_update; UPDATE audit SET actor = 'mallory' WHERE id = 3;",
    )
    .expect("tamper");
    drop(conn);
    assert_eq!(
        hub.hub.store().verify_audit().expect("verify").findings,
        [tether::hub::audit::Finding::Edited { ids: vec![3] }]
    );
    let out = std::process::Command::new(bin)
        .args(["admin", "--data"])
        .arg(&data)
        .args(["audit", "verify"])
        .output()
        .expect("run");
    assert!(
        !out.status.success(),
        "a broken chain must fail the command"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("edited: record 3 "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn raw_console(hub: &TestHub) -> wire::ClientStream {
    wire::connect(&hub.url, CONSOLE_PATH, hub.pin())
        .await
        .expect("connect")
        .0
}

async fn next_reply(ws: &mut wire::ClientStream) -> HubToConsole {
    tokio::time::timeout(Duration::from_secs(10), wire::recv::<_, HubToConsole>(ws))
        .await
        .expect("answer")
        .expect("message")
}

#[tokio::test]
async fn malformed_and_oversized_messages_do_not_take_the_hub_down() {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    let mut ws = raw_console(&hub).await;

    for bad in [
        "not json",
        "{\"id\":1}",
        "{\"id\":1,\"body\":{\"type\":\"launch_missiles\"}}",
        "[]",
        "\u{0}",
    ] {
        ws.send(Message::text(bad)).await.expect("send");
        match next_reply(&mut ws).await {
            HubToConsole::Error { error } => assert_eq!(error.code, ErrorCode::BadRequest, "{bad}"),
            // Where the request's id can be read, the answer is that request's (failed) reply.
            HubToConsole::Reply {
                id: 1,
                result: Err(error),
            } if bad.starts_with("{\"id\":1") => {
                assert_eq!(error.code, ErrorCode::BadRequest, "{bad}")
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    ws.send(Message::binary(vec![0u8; 100]))
        .await
        .expect("send");
    assert!(matches!(
        next_reply(&mut ws).await,
        HubToConsole::Error { .. }
    ));
    // Still usable: log in and work on the same connection.
    let login = Request {
        id: 2,
        body: ConsoleRequest::Login {
            version: PROTOCOL_VERSION,
            user: "ann".into(),
            password: PASSWORD.into(),
            code: None,
            device: None,
        },
    };
    wire::send(&mut ws, &login).await.expect("send");
    assert!(matches!(
        next_reply(&mut ws).await,
        HubToConsole::Reply {
            id: 2,
            result: Ok(ConsoleReply::LoggedIn { .. })
        }
    ));
    // Over the control limit, even logged in (before it, over 4 KiB: tests/limits.rs): that
    // connection is closed as the message's header arrives, not read in full; others go on.
    let mut over = raw_console(&hub).await;
    wire::send(&mut over, &login).await.expect("send");
    assert!(matches!(
        next_reply(&mut over).await,
        HubToConsole::Reply {
            result: Ok(ConsoleReply::LoggedIn { .. }),
            ..
        }
    ));
    let big = format!(
        "{{\"id\":9,\"body\":{{\"type\":\"add_client\",\"name\":\"{}\"}}}}",
        "x".repeat(protocol::MAX_CONTROL_MESSAGE)
    );
    let _ = over.send(Message::text(big)).await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match over.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(Message::Text(_))) => return false,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .expect("closed in time");
    assert!(
        closed,
        "a message over the control limit closes its connection"
    );
    ws.send(Message::text("{garbage")).await.expect("send");
    assert!(matches!(
        next_reply(&mut ws).await,
        HubToConsole::Error { .. }
    ));
    wire::send(
        &mut ws,
        &Request {
            id: 3,
            body: ConsoleRequest::ListClients {
                page: Default::default(),
            },
        },
    )
    .await
    .expect("send");
    assert!(matches!(
        next_reply(&mut ws).await,
        HubToConsole::Reply {
            id: 3,
            result: Ok(ConsoleReply::Clients { .. })
        }
    ));
    // A wrong protocol version is named as such.
    let mut other = raw_console(&hub).await;
    let old = Request {
        id: 1,
        body: ConsoleRequest::Login {
            version: 999,
            user: "ann".into(),
            password: PASSWORD.into(),
            code: None,
            device: None,
        },
    };
    wire::send(&mut other, &old).await.expect("send");
    match next_reply(&mut other).await {
        HubToConsole::Reply { result: Err(e), .. } => {
            assert_eq!(e.code, ErrorCode::VersionMismatch)
        }
        other => panic!("unexpected {other:?}"),
    }

    // Over the transport limit: that connection is closed, nothing else is affected.
    let mut huge = raw_console(&hub).await;
    let _ = huge
        .send(Message::binary(vec![1u8; protocol::MAX_WS_MESSAGE + 1]))
        .await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match huge.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "an oversized message closes its connection");
    // The hub still serves everyone.
    let (client, _) = HubClient::connect(&hub.url, hub.pin())
        .await
        .expect("hub still up");
    client
        .login("ann", PASSWORD)
        .await
        .expect("login still works");
    wire::send(
        &mut ws,
        &Request {
            id: 4,
            body: ConsoleRequest::ListClients {
                page: Default::default(),
            },
        },
    )
    .await
    .expect("send");
    assert!(matches!(
        next_reply(&mut ws).await,
        HubToConsole::Reply { id: 4, .. }
    ));
}

#[tokio::test]
async fn unauthenticated_and_silent_peers_are_dropped() {
    let limits = Limits {
        auth_timeout: Duration::from_millis(500),
        ping_interval: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(400),
        ..Limits::default()
    };
    let hub = TestHub::start_in(tempfile::tempdir().expect("tempdir"), limits).await;
    hub.add_user("ann", Role::Admin, "Desk").await;

    // Never authenticates: closed with a reason.
    let mut idle = raw_console(&hub).await;
    match tokio::time::timeout(
        Duration::from_secs(5),
        wire::recv::<_, HubToConsole>(&mut idle),
    )
    .await
    .expect("closed in time")
    {
        Err(wire::WireError::Closed(reason)) => {
            assert_eq!(reason.as_deref(), Some("authentication timed out"))
        }
        other => panic!("unexpected {other:?}"),
    }

    // An agent that enrols and then stops reading (so never answers pings) is dropped, and
    // the team's consoles see it go offline.
    let (tech, mut events) = hub.console("ann").await;
    let client = add_client(&tech, "Acme").await;
    let (_, link) = new_link(&tech, &client).await;
    let (mut agent, _) = wire::connect(&hub.url, AGENT_PATH, hub.pin())
        .await
        .expect("connect");
    let report = WorkstationReport {
        hostname: "mute".into(),
        os: "x".into(),
        user: "u".into(),
        screen: None,
        agent_version: "t".into(),
    };
    wire::send(
        &mut agent,
        &Request {
            id: 1,
            body: AgentRequest::Enrol {
                version: PROTOCOL_VERSION,
                token: link.token.into(),
                report,
            },
        },
    )
    .await
    .expect("send");
    let enrolled = wire::recv::<_, HubToAgent>(&mut agent)
        .await
        .expect("reply");
    assert!(
        matches!(enrolled, HubToAgent::Reply { result: Ok(_), .. }),
        "{enrolled:?}"
    );
    wait_event(&mut events, Duration::from_secs(2), |e| {
        matches!(e, HubEvent::Workstation { workstation: w } if w.hostname == "mute" && w.presence == Presence::Online)
    })
    .await;
    wait_event(&mut events, Duration::from_secs(5), |e| {
        matches!(e, HubEvent::Workstation { workstation: w } if w.hostname == "mute" && w.presence == Presence::Offline)
    })
    .await;
    // The technician's own connection answered its pings all along and is still alive.
    assert!(
        tech.request(ConsoleRequest::ListClients {
            page: Default::default()
        })
        .await
        .is_ok()
    );
    drop(agent);
}

#[tokio::test]
async fn data_and_certificate_survive_a_restart() {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    let fingerprint = hub.hub.fingerprint().to_owned();
    let (tech, _) = hub.console("ann").await;
    add_client(&tech, "Durable").await;
    let (c, _) = HubClient::connect(&hub.url, hub.pin())
        .await
        .expect("connect");
    let (token, _, _) = c.login("ann", PASSWORD).await.expect("login");
    drop((tech, c));
    let dir = hub.stop().await;

    let hub = TestHub::start_in(dir, Limits::default()).await;
    assert_eq!(
        hub.hub.fingerprint(),
        fingerprint,
        "the certificate is kept"
    );
    let (client, _) = HubClient::connect(&hub.url, hub.pin())
        .await
        .expect("connect");
    client
        .resume(&token)
        .await
        .expect("the login token survives a restart");
    match client
        .request(ConsoleRequest::ListClients {
            page: Default::default(),
        })
        .await
        .expect("list")
    {
        ConsoleReply::Clients { clients, .. } => assert_eq!(clients[0].name, "Durable"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn repeated_login_failures_slow_down_the_account() {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    let (client, _) = HubClient::connect(&hub.url, hub.pin())
        .await
        .expect("connect");
    for _ in 0..5 {
        let e = hub_error(
            client
                .login("ann", "wrong password!!")
                .await
                .expect_err("refused"),
        );
        assert_eq!(e.code, ErrorCode::InvalidCredentials);
    }
    // After the fifth failure in a row, even the right password must wait.
    let e = hub_error(
        client
            .login("ann", PASSWORD)
            .await
            .expect_err("rate limited"),
    );
    assert_eq!(e.code, ErrorCode::RateLimited);
    assert!(
        e.retry_after_secs.is_some_and(|s| (1..=2).contains(&s)),
        "{e:?}"
    );
    // An admin can lift the lock at once.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["admin", "--data"])
        .arg(hub.dir.path().join("hub"))
        .args(["unlock-user", "ann"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    client.login("ann", PASSWORD).await.expect("unlocked");
}

/// Parallel wrong passwords cannot all pass one stale lock-out check: attempts on one account
/// take turns, so after the fifth failure the others wait like sequential ones would.
#[tokio::test]
async fn parallel_wrong_passwords_meet_the_lock_out_too() {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    let mut tries = Vec::new();
    for _ in 0..12 {
        let (url, pin) = (hub.url.clone(), hub.pin());
        tries.push(tokio::spawn(async move {
            let (client, _) = HubClient::connect(&url, pin).await.expect("connect");
            hub_error(
                client
                    .login("ann", "wrong password!!")
                    .await
                    .expect_err("refused"),
            )
            .code
        }));
    }
    let mut codes = Vec::new();
    for t in tries {
        codes.push(t.await.expect("task"));
    }
    let wrong = codes
        .iter()
        .filter(|c| **c == ErrorCode::InvalidCredentials)
        .count();
    let limited = codes
        .iter()
        .filter(|c| **c == ErrorCode::RateLimited)
        .count();
    assert_eq!((wrong, limited), (5, 7), "{codes:?}");
}

#[tokio::test]
async fn connections_past_the_cap_are_refused_and_a_freed_place_is_reused() {
    let limits = Limits {
        max_connections: 3,
        ..Limits::default()
    };
    let hub = TestHub::start_in(tempfile::tempdir().expect("tempdir"), limits).await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    let mut open = hub.hub.open_connections();
    let mut consoles = Vec::new();
    for _ in 0..3 {
        consoles.push(hub.console("ann").await.0);
    }
    assert_eq!(*open.borrow_and_update(), 3);

    // The fourth is closed before its TLS handshake: the client fails at once, not at a timeout.
    let refused = tokio::time::timeout(5 * SECOND, HubClient::connect(&hub.url, hub.pin()))
        .await
        .expect("refused promptly");
    assert!(refused.is_err(), "a fourth connection was accepted");
    assert_eq!(*open.borrow(), 3);

    // The three keep working.
    for (n, tech) in consoles.iter().enumerate() {
        add_client(tech, &format!("Client {n}")).await;
    }

    // One leaves; once the hub has let it go, a new connection takes its place.
    drop(consoles.remove(0));
    tokio::time::timeout(5 * SECOND, open.wait_for(|n| *n < 3))
        .await
        .expect("the hub notices the closed connection")
        .expect("hub running");
    let (again, _) = hub.console("ann").await;
    add_client(&again, "After").await;
    for (n, tech) in consoles.iter().enumerate() {
        add_client(tech, &format!("Still {n}")).await;
    }
}
