//! Time-boxed support credentials end to end on loopback: a real hub (on a manual clock where
//! time matters), real agents, technicians and guests over real connections.

mod common;

use std::time::{Duration, Instant};

use common::{ManualClock, TestAgent, TestHub, enrolment_link, wait_event};
use tether::agent::consent::ConsentPolicy;
use tether::client::{ClientError, HubClient};
use tether::hub::Limits;
use tether::protocol::{
    AuthMethod, ConsoleReply, ConsoleRequest, CredentialInfo, CredentialScopes, CredentialState,
    CredentialTarget, ErrorCode, HubEvent, InputEvent, Presence, ProtocolError, RevealedCredential,
    Role, SessionInfo, ViewSpec,
};
use tokio::sync::mpsc::UnboundedReceiver;

const SECOND: Duration = Duration::from_secs(1);

fn hub_error(e: ClientError) -> ProtocolError {
    match e {
        ClientError::Hub(p) => p,
        other => panic!("expected an error from the hub, got {other}"),
    }
}

/// Technicians ann (admin) and bob of team Desk; client Acme with two workstations and client
/// Other with one. Every end user denies every question (nobody is at a test machine).
struct Rig {
    hub: TestHub,
    ann: HubClient,
    events: UnboundedReceiver<HubEvent>,
    acme1: String,
    acme2: String,
    other: String,
    agents: Vec<(TestAgent, tempfile::TempDir)>,
}

async fn online(events: &mut UnboundedReceiver<HubEvent>, ws: &str) {
    wait_event(events, Duration::from_secs(5), |e| {
        matches!(e, HubEvent::Workstation { workstation: w } if w.id == ws && w.presence == Presence::Online)
    })
    .await;
}

async fn rig(hub: TestHub) -> Rig {
    hub.add_user("ann", Role::Admin, "Desk").await;
    hub.add_user("bob", Role::Technician, "Desk").await;
    let (ann, mut events) = hub.console("ann").await;
    let acme = enrolment_link(&ann, "Acme").await;
    let other = enrolment_link(&ann, "Other").await;
    let mut agents = Vec::new();
    let mut ids = Vec::new();
    for (link, host) in [
        (acme.clone(), "acme-1"),
        (acme, "acme-2"),
        (other, "other-1"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut agent = TestAgent::start_with(dir.path(), Some(link), host, ConsentPolicy::Deny);
        let id = agent.online().await;
        online(&mut events, &id).await;
        ids.push(id);
        agents.push((agent, dir));
    }
    Rig {
        hub,
        ann,
        events,
        acme1: ids[0].clone(),
        acme2: ids[1].clone(),
        other: ids[2].clone(),
        agents,
    }
}

async fn issue(
    tech: &HubClient,
    target: CredentialTarget,
    minutes: u32,
    scopes: CredentialScopes,
) -> ConsoleReply {
    tech.request(ConsoleRequest::IssueCredentials {
        target,
        minutes,
        scopes,
    })
    .await
    .expect("issue")
}

async fn issue_new(
    tech: &HubClient,
    target: CredentialTarget,
    minutes: u32,
    scopes: CredentialScopes,
) -> (CredentialInfo, RevealedCredential) {
    match issue(tech, target, minutes, scopes).await {
        ConsoleReply::CredentialsIssued { credential, reveal } => (*credential, *reveal),
        other => panic!("unexpected {other:?}"),
    }
}

fn ws(id: &str) -> CredentialTarget {
    CredentialTarget::Workstation {
        workstation: id.into(),
    }
}

const VIEW: CredentialScopes = CredentialScopes {
    control: false,
    chat: false,
    history: false,
};
const CONTROL: CredentialScopes = CredentialScopes {
    control: true,
    chat: true,
    history: false,
};

async fn guest(
    hub: &TestHub,
    reveal: &RevealedCredential,
) -> (HubClient, UnboundedReceiver<HubEvent>) {
    let (client, events) = HubClient::connect(&hub.url, hub.pin())
        .await
        .expect("connect");
    client
        .guest_login(&reveal.user, reveal.password.expose(), reveal.code.expose())
        .await
        .expect("guest login");
    (client, events)
}

async fn guest_login_error(hub: &TestHub, user: &str, password: &str, code: &str) -> ProtocolError {
    let (client, _) = HubClient::connect(&hub.url, hub.pin())
        .await
        .expect("connect");
    hub_error(
        client
            .guest_login(user, password, code)
            .await
            .expect_err("guest login refused"),
    )
}

async fn connect(
    client: &HubClient,
    ws: &str,
    view_only: bool,
) -> Result<SessionInfo, ProtocolError> {
    match client
        .request(ConsoleRequest::Connect {
            workstation: ws.into(),
            secret: None,
            otp: None,
            view_only,
        })
        .await
    {
        Ok(ConsoleReply::Session { session }) => Ok(session),
        Ok(other) => panic!("unexpected {other:?}"),
        Err(e) => Err(hub_error(e)),
    }
}

async fn audit_actions(tech: &HubClient) -> Vec<String> {
    match tech
        .request(ConsoleRequest::ListAudit {
            page: Default::default(),
            limit: 1000,
            before: None,
        })
        .await
        .expect("audit")
    {
        ConsoleReply::Audit { records, .. } => records.into_iter().map(|r| r.action).collect(),
        other => panic!("unexpected {other:?}"),
    }
}

/// Wait until the hub closes a client's connection (its event stream ends).
async fn closed_within(events: &mut UnboundedReceiver<HubEvent>, within: Duration) {
    tokio::time::timeout(within, async { while events.recv().await.is_some() {} })
        .await
        .expect("the hub closed the guest's connection in time");
}

async fn session_ended(
    events: &mut UnboundedReceiver<HubEvent>,
    id: &str,
    within: Duration,
) -> SessionInfo {
    match wait_event(events, within, |e| {
        matches!(e, HubEvent::Session { session } if session.id == id && session.ended_at.is_some())
    })
    .await
    {
        HubEvent::Session { session } => session,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn guest_sees_only_the_target_and_view_only_input_is_refused() {
    let mut r = rig(TestHub::start().await).await;
    let (cred, reveal) = issue_new(&r.ann, ws("acme-1"), 60, VIEW).await;
    assert_eq!(cred.target, ws(&r.acme1), "host name resolved to the id");
    assert_eq!(cred.target_label, "acme-1");
    assert!(reveal.user.starts_with("guest-"));
    assert!(reveal.password.expose().len() >= 16);
    assert_eq!(reveal.code.expose().len(), 6);
    assert!(reveal.code.expose().bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(reveal.hub, r.hub.url);

    let (g, mut gevents) = guest(&r.hub, &reveal).await;
    // Live events: the team's changes elsewhere never reach the guest. Published in this
    // order, the guest's first workstation event must be the target's.
    for target in [&r.other, &r.acme2, &r.acme1] {
        r.ann
            .request(ConsoleRequest::RequestAccess {
                workstation: target.clone(),
            })
            .await
            .expect("request access");
    }
    match wait_event(&mut gevents, Duration::from_secs(5), |e| {
        matches!(e, HubEvent::Workstation { .. } | HubEvent::Client { .. })
    })
    .await
    {
        HubEvent::Workstation { workstation } => assert_eq!(workstation.id, r.acme1),
        other => panic!("unexpected {other:?}"),
    }
    // Lists hold only the target.
    let ConsoleReply::Workstations { workstations, .. } = g
        .request(ConsoleRequest::ListWorkstations {
            client: None,
            filter: None,
            page: Default::default(),
        })
        .await
        .expect("list")
    else {
        panic!("not workstations")
    };
    assert_eq!(
        workstations
            .iter()
            .map(|w| w.id.as_str())
            .collect::<Vec<_>>(),
        vec![r.acme1.as_str()]
    );
    let ConsoleReply::Clients { clients, .. } = g
        .request(ConsoleRequest::ListClients {
            page: Default::default(),
        })
        .await
        .expect("list")
    else {
        panic!("not clients")
    };
    assert_eq!(
        clients.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        vec!["Acme"]
    );
    // Other workstations are not found; technicians' verbs are not allowed.
    for other in [&r.acme2, &r.other] {
        assert_eq!(
            connect(&g, other, true)
                .await
                .expect_err("not the target")
                .code,
            ErrorCode::NotFound
        );
    }
    for forbidden in [
        ConsoleRequest::ListAudit {
            page: Default::default(),
            limit: 10,
            before: None,
        },
        ConsoleRequest::AddClient { name: "X".into() },
        ConsoleRequest::RequestAccess {
            workstation: r.acme1.clone(),
        },
        ConsoleRequest::ListCredentials {
            page: Default::default(),
        },
        ConsoleRequest::IssueCredentials {
            target: ws(&r.acme1),
            minutes: 60,
            scopes: CONTROL,
        },
    ] {
        let e = hub_error(g.request(forbidden).await.expect_err("refused"));
        assert_eq!(e.code, ErrorCode::Forbidden, "{e}");
    }

    // The credentials authorise the connection with no prompt (the end user denies every
    // question), and a view-only guest's connection is view only whatever it asks.
    let session = connect(&g, "acme-1", false).await.expect("guest connects");
    assert_eq!(session.method, AuthMethod::SupportCredentials);
    assert!(session.view_only, "forced view only");
    assert_eq!(session.technician.name, reveal.user);
    let ConsoleReply::Sessions { sessions, .. } = g
        .request(ConsoleRequest::ListSessions {
            page: Default::default(),
        })
        .await
        .expect("sessions")
    else {
        panic!("not sessions")
    };
    assert_eq!(
        sessions.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        vec![session.id.as_str()]
    );
    let ConsoleReply::Watching { stream } = g
        .request(ConsoleRequest::Watch {
            session: session.id.clone(),
            view: ViewSpec::Terminal { cols: 80, rows: 24 },
        })
        .await
        .expect("watch own session")
    else {
        panic!("not watching")
    };
    let e = hub_error(
        g.request(ConsoleRequest::Input {
            stream,
            events: vec![InputEvent::Key {
                keysym: 0x61,
                down: true,
            }],
        })
        .await
        .expect_err("view-only input refused"),
    );
    assert_eq!(e.code, ErrorCode::Forbidden);
    assert!(e.message.contains("viewing only"), "{}", e.message);

    // The technician's team sees the guest's session start.
    wait_event(
        &mut r.events,
        Duration::from_secs(5),
        |e| matches!(e, HubEvent::Session { session: s } if s.id == session.id),
    )
    .await;
    let actions = audit_actions(&r.ann).await;
    for action in ["credentials.issue", "credentials.use", "session.start"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
    // Both uses are recorded against the credentials: the login and the session.
    let ConsoleReply::Audit { records, .. } = r
        .ann
        .request(ConsoleRequest::ListAudit {
            page: Default::default(),
            limit: 1000,
            before: None,
        })
        .await
        .expect("audit")
    else {
        panic!("not audit")
    };
    let uses: Vec<&str> = records
        .iter()
        .filter(|a| a.action == "credentials.use" && a.target.as_deref() == Some(cred.id.as_str()))
        .filter_map(|a| a.detail["use"].as_str())
        .collect();
    assert!(
        uses.contains(&"guest login") && uses.contains(&"guest session"),
        "{uses:?}"
    );
    let start = records
        .iter()
        .find(|a| a.action == "session.start" && a.actor == reveal.user)
        .expect("the guest's session start");
    assert_eq!(start.detail["method"], "support credentials");
    assert_eq!(start.actor_email.as_deref(), Some("ann@example.com"));
}

#[tokio::test]
async fn client_credentials_cover_all_of_its_workstations_and_control_allows_input() {
    let r = rig(TestHub::start().await).await;
    let target = CredentialTarget::Client {
        client: "Acme".into(),
    };
    let (cred, reveal) = issue_new(&r.ann, target, 240, CONTROL).await;
    assert_eq!(cred.target_label, "Acme");
    let (g, _e) = guest(&r.hub, &reveal).await;
    let ConsoleReply::Workstations { workstations, .. } = g
        .request(ConsoleRequest::ListWorkstations {
            client: None,
            filter: None,
            page: Default::default(),
        })
        .await
        .expect("list")
    else {
        panic!("not workstations")
    };
    let mut ids: Vec<_> = workstations.into_iter().map(|w| w.id).collect();
    ids.sort();
    let mut want = vec![r.acme1.clone(), r.acme2.clone()];
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(
        connect(&g, &r.other, false)
            .await
            .expect_err("other client")
            .code,
        ErrorCode::NotFound
    );
    let session = connect(&g, &r.acme2, false).await.expect("connect");
    assert!(!session.view_only, "control scope");
    let ConsoleReply::Watching { stream } = g
        .request(ConsoleRequest::Watch {
            session: session.id.clone(),
            view: ViewSpec::Terminal { cols: 80, rows: 24 },
        })
        .await
        .expect("watch")
    else {
        panic!("not watching")
    };
    g.request(ConsoleRequest::Input {
        stream,
        events: vec![InputEvent::Key {
            keysym: 0x61,
            down: true,
        }],
    })
    .await
    .expect("control scope: input accepted");
}

#[tokio::test]
async fn credentials_expire_and_end_guest_sessions_within_a_second() {
    let clock = ManualClock::new();
    let hub = TestHub::start_clocked(
        tempfile::tempdir().expect("tempdir"),
        Limits::default(),
        clock.clone(),
    )
    .await;
    let mut r = rig(hub).await;
    let (cred, reveal) = issue_new(&r.ann, ws(&r.acme1), 60, CONTROL).await;
    let (g, mut gevents) = guest(&r.hub, &reveal).await;
    let session = connect(&g, &r.acme1, false).await.expect("connect");

    // A minute before expiry nothing happens.
    clock.advance(Duration::from_secs(59 * 60));
    g.request(ConsoleRequest::ListSessions {
        page: Default::default(),
    })
    .await
    .expect("still valid at 59 minutes");

    // At expiry: the session ends and the guest is disconnected within a second.
    let started = Instant::now();
    clock.advance(Duration::from_secs(60));
    let ended = session_ended(&mut r.events, &session.id, SECOND).await;
    closed_within(&mut gevents, SECOND.saturating_sub(started.elapsed())).await;
    assert!(started.elapsed() < SECOND, "{:?}", started.elapsed());
    assert!(
        ended
            .end_reason
            .as_deref()
            .unwrap_or("")
            .contains("expired"),
        "{ended:?}"
    );

    // The credentials are listed as expired, their expiry audited, and they no longer log in.
    let ConsoleReply::Credentials { credentials, .. } = r
        .ann
        .request(ConsoleRequest::ListCredentials {
            page: Default::default(),
        })
        .await
        .expect("list")
    else {
        panic!("not credentials")
    };
    let listed = credentials
        .iter()
        .find(|c| c.id == cred.id)
        .expect("listed");
    assert_eq!(listed.state, CredentialState::Expired);
    let actions = audit_actions(&r.ann).await;
    assert!(
        actions.iter().any(|a| a == "credentials.expire"),
        "{actions:?}"
    );
    let e = guest_login_error(
        &r.hub,
        &reveal.user,
        reveal.password.expose(),
        reveal.code.expose(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::Expired);
}

#[tokio::test]
async fn revocation_ends_guest_sessions_and_tokens_within_a_second() {
    let mut r = rig(TestHub::start().await).await;
    let (cred, reveal) = issue_new(&r.ann, ws(&r.acme1), 8 * 60, CONTROL).await;
    let (client, mut gevents) = HubClient::connect(&r.hub.url, r.hub.pin())
        .await
        .expect("connect");
    let login = client
        .guest_login(&reveal.user, reveal.password.expose(), reveal.code.expose())
        .await
        .expect("guest login");
    assert_eq!(login.guest.credential, cred.id);
    // The token resumes on a second connection, as `tether ctl` does.
    let (second, mut second_events) = HubClient::connect(&r.hub.url, r.hub.pin())
        .await
        .expect("connect");
    let me = second.resume(&login.token).await.expect("guest resumes");
    assert_eq!(me.name, reveal.user);
    let session = connect(&client, &r.acme1, false).await.expect("connect");

    let started = Instant::now();
    let ConsoleReply::Credential { credential } = r
        .ann
        .request(ConsoleRequest::RevokeCredentials {
            credential: cred.id.clone(),
        })
        .await
        .expect("revoke")
    else {
        panic!("not a credential")
    };
    assert_eq!(credential.state, CredentialState::Revoked);
    session_ended(&mut r.events, &session.id, SECOND).await;
    closed_within(&mut gevents, SECOND).await;
    closed_within(&mut second_events, SECOND).await;
    assert!(started.elapsed() < SECOND, "{:?}", started.elapsed());

    // The token no longer resumes; a second revoke is a conflict; all of it is audited.
    let (third, _) = HubClient::connect(&r.hub.url, r.hub.pin())
        .await
        .expect("connect");
    assert_eq!(
        hub_error(third.resume(&login.token).await.expect_err("token gone")).code,
        ErrorCode::Expired
    );
    let again = hub_error(
        r.ann
            .request(ConsoleRequest::RevokeCredentials {
                credential: cred.id.clone(),
            })
            .await
            .expect_err("already revoked"),
    );
    assert_eq!(again.code, ErrorCode::Conflict);
    let actions = audit_actions(&r.ann).await;
    assert!(
        actions.iter().any(|a| a == "credentials.revoke"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn asking_again_while_valid_is_already_active_and_regenerate_replaces() {
    let r = rig(TestHub::start().await).await;
    let (first, old) = issue_new(&r.ann, ws(&r.acme1), 8 * 60, VIEW).await;
    // The same technician, the same target: already active, with the time left and the date.
    let ConsoleReply::CredentialsAlreadyActive {
        credential,
        message,
    } = issue(&r.ann, ws("acme-1"), 60, CONTROL).await
    else {
        panic!("expected already active")
    };
    assert_eq!(credential.id, first.id);
    assert!(
        message.contains("already active and will expire in 8 hours"),
        "{message}"
    );
    assert!(
        message.contains(&first.expires_at.format("%Y-%m-%d %H:%M").to_string()),
        "{message}"
    );
    // Another technician, or another target, gets new ones.
    let (bob, _) = r.hub.console("bob").await;
    issue_new(&bob, ws(&r.acme1), 60, VIEW).await;
    issue_new(&r.ann, ws(&r.acme2), 60, VIEW).await;

    // Regenerate: the old ones stop working, the new ones work.
    let ConsoleReply::CredentialsIssued { credential, reveal } = r
        .ann
        .request(ConsoleRequest::RegenerateCredentials {
            credential: first.id.clone(),
        })
        .await
        .expect("regenerate")
    else {
        panic!("not issued")
    };
    assert_ne!(credential.id, first.id);
    assert_eq!(credential.target, first.target);
    assert_eq!(credential.scopes, first.scopes);
    assert_eq!(
        (credential.expires_at - credential.issued_at).num_minutes(),
        8 * 60
    );
    assert_ne!(reveal.password, old.password);
    let e = guest_login_error(&r.hub, &old.user, old.password.expose(), old.code.expose()).await;
    assert_eq!(e.code, ErrorCode::Expired, "{e}");
    guest(&r.hub, &reveal).await;
    // Bad durations are refused.
    let e = hub_error(
        r.ann
            .request(ConsoleRequest::IssueCredentials {
                target: ws(&r.other),
                minutes: 7 * 24 * 60 + 1,
                scopes: VIEW,
            })
            .await
            .expect_err("too long"),
    );
    assert_eq!(e.code, ErrorCode::BadRequest);
}

#[tokio::test]
async fn wrong_guest_logins_get_one_answer_and_count_toward_the_lockout() {
    let clock = ManualClock::new();
    let hub = TestHub::start_clocked(
        tempfile::tempdir().expect("tempdir"),
        Limits::default(),
        clock.clone(),
    )
    .await;
    let r = rig(hub).await;
    let (_, reveal) = issue_new(&r.ann, ws(&r.acme1), 60, VIEW).await;
    let (pw, code) = (reveal.password.expose(), reveal.code.expose());
    let wrong_code = if code == "000000" { "111111" } else { "000000" };
    let unknown = guest_login_error(&r.hub, "guest-nobody", pw, code).await;
    let wrong_pw = guest_login_error(&r.hub, &reveal.user, "not the password", code).await;
    let wrong_code = guest_login_error(&r.hub, &reveal.user, pw, wrong_code).await;
    assert_eq!(unknown.code, ErrorCode::InvalidCredentials);
    assert_eq!(
        unknown, wrong_pw,
        "same answer for unknown user and wrong password"
    );
    assert_eq!(unknown, wrong_code, "same answer for a wrong code");
    // Two more failures (four in all on this user), then waits start.
    for _ in 0..3 {
        guest_login_error(&r.hub, &reveal.user, "nope", code).await;
    }
    let locked = guest_login_error(&r.hub, &reveal.user, pw, code).await;
    assert_eq!(locked.code, ErrorCode::RateLimited, "{locked}");
    assert!(locked.retry_after_secs.is_some());
    clock.advance(Duration::from_secs(2));
    guest(&r.hub, &reveal).await;
    let actions = audit_actions(&r.ann).await;
    assert!(actions.iter().any(|a| a == "login.fail"));
    assert!(actions.iter().any(|a| a == "login.locked"));
}

#[tokio::test]
async fn a_guest_still_needs_the_workstations_secret() {
    let mut r = rig(TestHub::start().await).await;
    let agent = &r.agents[0].0;
    agent
        .shared
        .set_passcode_enabled(true)
        .await
        .expect("passcode on");
    let acme1 = r.acme1.clone();
    wait_event(&mut r.events, Duration::from_secs(5), |e| {
        matches!(e, HubEvent::Workstation { workstation: w } if w.id == acme1 && w.requires.passcode)
    })
    .await;
    let passcode = agent
        .shared
        .policy()
        .passcode()
        .expect("passcode")
        .formatted()
        .expose()
        .to_owned();
    let (_, reveal) = issue_new(&r.ann, ws(&r.acme1), 60, CONTROL).await;
    let (g, _e) = guest(&r.hub, &reveal).await;
    let missing = connect(&g, &r.acme1, false)
        .await
        .expect_err("the passcode is required");
    assert!(missing.message.contains("requires"), "{}", missing.message);
    let with = match g
        .request(ConsoleRequest::Connect {
            workstation: r.acme1.clone(),
            secret: Some(passcode.as_str().into()),
            otp: None,
            view_only: false,
        })
        .await
        .expect("the passcode works")
    {
        ConsoleReply::Session { session } => session,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(with.method, AuthMethod::SupportCredentials);
    assert!(!with.secrets.is_empty());
}

/// Admin ann and technician bob of team Desk, and client Acme: enough to issue credentials
/// for a client, without agents.
async fn desk(hub: &TestHub) -> (HubClient, UnboundedReceiver<HubEvent>) {
    hub.add_user("ann", Role::Admin, "Desk").await;
    hub.add_user("bob", Role::Technician, "Desk").await;
    let (ann, events) = hub.console("ann").await;
    enrolment_link(&ann, "Acme").await;
    (ann, events)
}

fn acme() -> CredentialTarget {
    CredentialTarget::Client {
        client: "Acme".into(),
    }
}

fn db_path(hub: &TestHub) -> std::path::PathBuf {
    hub.dir.path().join("hub").join("hub.sqlite3")
}

fn stored_code_hashes(hub: &TestHub) -> Vec<String> {
    let conn = rusqlite::Connection::open(db_path(hub)).expect("open db");
    let mut stmt = conn
        .prepare("SELECT code_hash FROM support_credentials")
        .expect("prepare");
    stmt.query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[tokio::test]
async fn the_security_code_is_stored_keyed_not_as_its_sha256() {
    let hub = TestHub::start().await;
    let (ann, _events) = desk(&hub).await;
    let (_, reveal) = issue_new(&ann, acme(), 60, VIEW).await;
    let code = reveal.code.expose();
    let plain = tether::secrets::hash_token(code);
    let hashes = stored_code_hashes(&hub);
    assert_eq!(hashes.len(), 1);
    assert!(hashes[0].starts_with("hmac-sha256:"), "{}", hashes[0]);
    assert!(!hashes[0].contains(&plain), "SHA-256 of the code is stored");
    assert!(!hashes[0].contains(code));
    // Nothing in the database files reveals it either.
    for file in ["hub.sqlite3", "hub.sqlite3-wal"] {
        let bytes = std::fs::read(hub.dir.path().join("hub").join(file)).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&bytes).contains(&plain), "{file}");
    }
    // The keyed tag still lets the guest in, and a wrong code still does not.
    guest(&hub, &reveal).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let e = guest_login_error(&hub, &reveal.user, reveal.password.expose(), wrong).await;
    assert_eq!(e.code, ErrorCode::InvalidCredentials);
}

#[tokio::test]
async fn codes_stored_by_an_older_hub_as_sha256_are_removed_and_their_credentials_revoked() {
    let hub = TestHub::start().await;
    let (ann, _events) = desk(&hub).await;
    let (old, reveal) = issue_new(&ann, acme(), 60, VIEW).await;
    drop(ann);
    let db = db_path(&hub);
    let dir = hub.stop().await;
    // As an older hub left it: a plain SHA-256 of the code, the schema from before the code
    // migration (six back: the paging indexes, the owners table, the audit keying table and the
    // trusted devices came after it, and re-create harmlessly; the user lifecycle's columns and
    // tables of issue 11 are dropped, as that hub had none).
    {
        let conn = rusqlite::Connection::open(&db).expect("open db");
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        conn.execute(
            "UPDATE support_credentials SET code_hash = ?1",
            [tether::secrets::hash_token(reveal.code.expose())],
        )
        .expect("downgrade");
        conn.execute_batch(
            "DROP TABLE user_revocations; DROP TABLE user_enrolments; \
             ALTER TABLE users DROP COLUMN disabled; ALTER TABLE users DROP COLUMN removed_at;",
        )
        .expect("schema of an older hub");
        conn.pragma_update(None, "user_version", version - 6)
            .expect("version");
    }
    let hub = TestHub::start_in(dir, Limits::default()).await;
    let plain = tether::secrets::hash_token(reveal.code.expose());
    let (ann, _events) = hub.console("ann").await;
    // The hub revokes them (audited) as it starts; the old hash is gone.
    let deadline = Instant::now() + 5 * SECOND;
    let listed = loop {
        let ConsoleReply::Credentials { credentials, .. } = ann
            .request(ConsoleRequest::ListCredentials {
                page: Default::default(),
            })
            .await
            .expect("list")
        else {
            panic!("not a list")
        };
        let c = credentials
            .into_iter()
            .find(|c| c.id == old.id)
            .expect("listed");
        if c.state != CredentialState::Active || Instant::now() > deadline {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(listed.state, CredentialState::Revoked);
    assert!(!stored_code_hashes(&hub).iter().any(|h| h.contains(&plain)));
    assert!(
        audit_actions(&ann)
            .await
            .iter()
            .any(|a| a == "credentials.revoke")
    );
    let e = guest_login_error(
        &hub,
        &reveal.user,
        reveal.password.expose(),
        reveal.code.expose(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::InvalidCredentials, "{e}");
    // New ones can be issued for the same target at once.
    issue_new(&ann, acme(), 60, VIEW).await;
}

#[tokio::test]
async fn ten_parallel_issues_for_one_target_give_one_set_and_nine_already_active() {
    let hub = TestHub::start().await;
    let (_ann, _events) = desk(&hub).await;
    let mut consoles = Vec::new();
    for _ in 0..10 {
        consoles.push(hub.console("ann").await.0);
    }
    let replies =
        futures_util::future::join_all(consoles.iter().map(|c| issue(c, acme(), 60, VIEW))).await;
    let issued = replies
        .iter()
        .filter(|r| matches!(r, ConsoleReply::CredentialsIssued { .. }))
        .count();
    let active = replies
        .iter()
        .filter(|r| {
            matches!(r, ConsoleReply::CredentialsAlreadyActive { message, .. }
                if message.contains("already active"))
        })
        .count();
    assert_eq!((issued, active), (1, 9), "{replies:?}");
    assert_eq!(stored_code_hashes(&hub).len(), 1, "one set stored");
}

#[tokio::test]
async fn parallel_regenerations_leave_exactly_one_active_set() {
    let hub = TestHub::start().await;
    let (ann, _events) = desk(&hub).await;
    let (first, _) = issue_new(&ann, acme(), 60, VIEW).await;
    let mut consoles = Vec::new();
    for _ in 0..5 {
        consoles.push(hub.console("ann").await.0);
    }
    let replies = futures_util::future::join_all(consoles.iter().map(|c| {
        c.request(ConsoleRequest::RegenerateCredentials {
            credential: first.id.clone(),
        })
    }))
    .await;
    let issued = replies
        .iter()
        .filter(|r| matches!(r, Ok(ConsoleReply::CredentialsIssued { .. })))
        .count();
    assert_eq!(issued, 1, "{replies:?}");
    let ConsoleReply::Credentials { credentials, .. } = ann
        .request(ConsoleRequest::ListCredentials {
            page: Default::default(),
        })
        .await
        .expect("list")
    else {
        panic!("not a list")
    };
    let states: Vec<_> = credentials.iter().map(|c| c.state).collect();
    assert_eq!(credentials.len(), 2, "{states:?}");
    assert_eq!(
        states
            .iter()
            .filter(|s| **s == CredentialState::Active)
            .count(),
        1
    );
}

#[tokio::test]
async fn a_replacement_that_cannot_be_stored_leaves_the_old_credentials_valid() {
    use tether::hub::store::{IssueOutcome, NewCredential};
    let hub = TestHub::start().await;
    let (ann, _events) = desk(&hub).await;
    let (bob, _) = hub.console("bob").await;
    let (anns, _) = issue_new(&ann, acme(), 60, VIEW).await;
    let (bobs, bob_reveal) = issue_new(&bob, acme(), 60, VIEW).await;
    let store = hub.hub.store().clone();
    let rec = store.credential(&anns.id).expect("read").expect("stored");
    // Replace bob's with a second active set of ann's for Acme: refused, and bob's revocation
    // is rolled back with it.
    let mut info = anns.clone();
    info.id = "sc_second".into();
    info.user = "guest-second".into();
    let new = NewCredential {
        info,
        team_id: rec.team_id.clone(),
        issued_by_id: rec.issued_by_id.clone(),
        password_hash: rec.password_hash.clone(),
        code_hash: rec.code_hash.clone(),
    };
    let outcome = store
        .issue_credential(new, Some(&bobs.id), chrono::Utc::now())
        .expect("issue");
    assert!(
        matches!(&outcome, IssueOutcome::AlreadyActive(r) if r.info.id == anns.id),
        "{outcome:?}"
    );
    let bob_rec = store.credential(&bobs.id).expect("read").expect("stored");
    assert_eq!(bob_rec.info.revoked_at, None, "not revoked");
    guest(&hub, &bob_reveal).await;
}

/// The sessions a client lists: id, and whether it ended.
async fn sessions(client: &HubClient) -> Vec<(String, bool)> {
    match client
        .request(ConsoleRequest::ListSessions {
            page: Default::default(),
        })
        .await
        .expect("sessions")
    {
        ConsoleReply::Sessions { sessions, .. } => sessions
            .into_iter()
            .map(|s| (s.id, s.ended_at.is_some()))
            .collect(),
        other => panic!("unexpected {other:?}"),
    }
}

/// The history scope: without it a guest sees only their own open sessions; with it, also the
/// target's past ones.
#[tokio::test]
async fn the_history_scope_shows_the_targets_past_sessions_and_only_with_it() {
    let r = rig(TestHub::start().await).await;
    // A guest without history: their session, then ended; afterwards they see nothing.
    let (first, reveal) = issue_new(&r.ann, ws("acme-1"), 60, VIEW).await;
    let (g, _gevents) = guest(&r.hub, &reveal).await;
    let past = connect(&g, "acme-1", true).await.expect("guest connects");
    assert_eq!(sessions(&g).await, vec![(past.id.clone(), false)]);
    g.request(ConsoleRequest::EndSession {
        session: past.id.clone(),
    })
    .await
    .expect("end");
    assert_eq!(
        sessions(&g).await,
        vec![],
        "no history scope: no past sessions"
    );

    // New credentials for the same target, with history: the past session is listed.
    r.ann
        .request(ConsoleRequest::RevokeCredentials {
            credential: first.id.clone(),
        })
        .await
        .expect("revoke");
    let with_history = CredentialScopes {
        history: true,
        ..VIEW
    };
    let (_, reveal) = issue_new(&r.ann, ws("acme-1"), 60, with_history).await;
    let (h, _hevents) = guest(&r.hub, &reveal).await;
    assert_eq!(sessions(&h).await, vec![(past.id.clone(), true)]);
}
