//! Technician 2FA (issue 5): enrolment, codes at login, skew and replay, the admins'
//! settings, the hub refusing session starts while 2FA is pending, and the audit search.
//! The hub's clock is a `ManualClock`: time is stepped, never slept.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{ManualClock, PASSWORD, TestAgent, TestHub, enrolment_link};
use tether::client::{ClientError, HubClient};
use tether::hub::Limits;
use tether::protocol::{
    AuditQuery, AuditRecord, ConsoleReply, ConsoleRequest, CredentialScopes, CredentialTarget,
    ErrorCode, Role, TwoFactorState,
};
use tether::secrets::totp::TotpSecret;

/// A clock at 1 s into a TOTP step, so a test knows which step "now" is.
fn clock_at_step_start() -> Arc<ManualClock> {
    let clock = ManualClock::new();
    let t = tether::hub::Clock::now(&*clock).timestamp();
    clock.advance(Duration::from_secs(
        u64::try_from(30 - t.rem_euclid(30) + 1).expect("secs"),
    ));
    clock
}

fn step_of(clock: &ManualClock) -> u64 {
    u64::try_from(tether::hub::Clock::now(clock).timestamp()).expect("after 1970") / 30
}

fn code(secret: &TotpSecret, step: u64) -> String {
    secret.code_for_step(step, 6).expect("code")
}

async fn hub_with(clock: Arc<ManualClock>) -> TestHub {
    let hub = TestHub::start_clocked(
        tempfile::tempdir().expect("tempdir"),
        Limits::default(),
        clock,
    )
    .await;
    // The hub's owner: the global switch and every team are hers (team admins: tests/gate.rs).
    hub.add_user("ann", Role::Owner, "Desk").await;
    hub.add_user("bob", Role::Technician, "Desk").await;
    hub.add_user("zed", Role::Technician, "Elsewhere").await;
    hub
}

async fn client(hub: &TestHub) -> HubClient {
    HubClient::connect(&hub.url, hub.pin())
        .await
        .expect("connect")
        .0
}

async fn login(hub: &TestHub, user: &str, code: Option<&str>) -> Result<HubClient, ClientError> {
    let c = client(hub).await;
    c.login_with_code(user, PASSWORD, code).await.map(|_| c)
}

fn hub_code<T>(result: Result<T, ClientError>) -> ErrorCode {
    match result {
        Err(ClientError::Hub(e)) => e.code,
        Err(e) => panic!("expected a hub error, got {e}"),
        Ok(_) => panic!("expected a hub error, got success"),
    }
}

/// Enable and confirm 2FA for a logged-in user with the code of `step`; returns the secret.
async fn enrol(tech: &HubClient, step: u64) -> TotpSecret {
    let ConsoleReply::TwoFactorEnrolment { uri, secret } = tech
        .request(ConsoleRequest::TwoFactorEnable)
        .await
        .expect("enable")
    else {
        panic!("no enrolment")
    };
    let uri = uri.expose();
    assert!(uri.starts_with("otpauth://totp/Tether:"), "{uri}");
    assert!(uri.contains(secret.expose()));
    let secret = TotpSecret::from_base32(secret.expose()).expect("base32 secret");
    assert_eq!(secret.as_bytes().len(), 20, "160-bit secret");
    let reply = tech
        .request(ConsoleRequest::TwoFactorConfirm {
            code: code(&secret, step).into(),
        })
        .await
        .expect("confirm");
    let ConsoleReply::TwoFactor { status } = reply else {
        panic!("unexpected {reply:?}")
    };
    assert_eq!(status.state, TwoFactorState::Active);
    secret
}

async fn search(tech: &HubClient, query: AuditQuery) -> Vec<AuditRecord> {
    match tech
        .request(ConsoleRequest::SearchAudit {
            page: Default::default(),
            query,
            limit: 500,
            before: None,
        })
        .await
        .expect("search audit")
    {
        ConsoleReply::Audit { records, .. } => records,
        other => panic!("unexpected {other:?}"),
    }
}

fn kind(kind: &str) -> AuditQuery {
    AuditQuery {
        kind: Some(kind.into()),
        ..AuditQuery::default()
    }
}

#[tokio::test]
async fn enrolment_then_every_login_needs_a_fresh_code() {
    let clock = clock_at_step_start();
    let hub = hub_with(clock.clone()).await;
    let bob = login(&hub, "bob", None).await.expect("password only");
    let (old_token, _, _) = client(&hub)
        .await
        .login("bob", PASSWORD)
        .await
        .expect("another password-only login");
    let s = step_of(&clock);

    // A wrong confirming code leaves 2FA off.
    let ConsoleReply::TwoFactorEnrolment { secret, .. } = bob
        .request(ConsoleRequest::TwoFactorEnable)
        .await
        .expect("enable")
    else {
        panic!("no enrolment")
    };
    let secret = TotpSecret::from_base32(secret.expose()).expect("secret");
    let wrong = bob
        .request(ConsoleRequest::TwoFactorConfirm {
            code: code(&secret, s + 5).into(),
        })
        .await;
    assert_eq!(hub_code(wrong), ErrorCode::InvalidCredentials);
    assert!(login(&hub, "bob", None).await.is_ok(), "still off");
    let secret = enrol(&bob, s).await;
    // Logins made without a code are revoked once 2FA is active.
    assert_eq!(
        hub_code(client(&hub).await.resume(&old_token).await),
        ErrorCode::Expired
    );

    // The password alone is no longer enough.
    assert_eq!(
        hub_code(login(&hub, "bob", None).await),
        ErrorCode::TwoFactorRequired
    );
    // Replay in the same step: the confirming code was used.
    assert_eq!(
        hub_code(login(&hub, "bob", Some(&code(&secret, s))).await),
        ErrorCode::TwoFactorRequired
    );
    clock.advance(Duration::from_secs(30));
    let fresh = code(&secret, s + 1);
    login(&hub, "bob", Some(&fresh))
        .await
        .expect("a fresh code");
    // The same code again in its step, and the older step's code: both refused.
    assert_eq!(
        hub_code(login(&hub, "bob", Some(&fresh)).await),
        ErrorCode::TwoFactorRequired
    );
    assert_eq!(
        hub_code(login(&hub, "bob", Some(&code(&secret, s))).await),
        ErrorCode::TwoFactorRequired
    );
    // Enabling again while active is refused: the secret is never shown twice.
    let again = bob.request(ConsoleRequest::TwoFactorEnable).await;
    assert_eq!(hub_code(again), ErrorCode::Conflict);
    // The connection that enrolled logged in with the password alone: the confirming code
    // proved the phone, not that login, so it may do nothing else until a login with a code.
    assert_eq!(
        hub_code(
            bob.request(ConsoleRequest::ListClients {
                page: Default::default()
            })
            .await
        ),
        ErrorCode::TwoFactorRequired
    );
    clock.advance(Duration::from_secs(30));
    let bob = login(&hub, "bob", Some(&code(&secret, s + 2)))
        .await
        .expect("a login with a code");

    let fails = search(&bob, kind("login.fail")).await;
    assert!(
        fails
            .iter()
            .any(|r| r.detail["reason"] == "2fa code already used")
    );
    // A right password without the code is a failed login too, audited.
    assert!(
        fails
            .iter()
            .any(|r| r.detail["reason"] == "2fa code missing")
    );
    let oks = search(&bob, kind("login.ok")).await;
    assert!(oks.iter().any(|r| r.detail["method"] == "password+totp"));
    let changes = search(&bob, kind("2fa")).await;
    let actions: Vec<&str> = changes.iter().map(|r| r.action.as_str()).collect();
    for expected in ["2fa.enable", "2fa.confirm_fail", "2fa.confirm"] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
    // No record carries the secret or a code.
    let all = search(&bob, AuditQuery::default()).await;
    let text = serde_json::to_string(&all).expect("json");
    assert!(!text.contains(&fresh) && !text.contains(&secret.base32().expect("b32")));
}

#[tokio::test]
async fn skew_previous_step_only() {
    let clock = clock_at_step_start();
    let hub = hub_with(clock.clone()).await;
    let bob = login(&hub, "bob", None).await.expect("login");
    let s = step_of(&clock);
    let secret = enrol(&bob, s).await;

    // At the last second of step s+3, the code of s+2 (previous) is accepted.
    clock.advance(Duration::from_secs(3 * 30 + 28));
    assert_eq!(step_of(&clock), s + 3);
    login(&hub, "bob", Some(&code(&secret, s + 2)))
        .await
        .expect("previous step accepted");

    clock.advance(Duration::from_secs(2 * 30));
    assert_eq!(step_of(&clock), s + 5);
    // Two steps back and the next step: refused.
    assert_eq!(
        hub_code(login(&hub, "bob", Some(&code(&secret, s + 3))).await),
        ErrorCode::TwoFactorRequired
    );
    assert_eq!(
        hub_code(login(&hub, "bob", Some(&code(&secret, s + 6))).await),
        ErrorCode::TwoFactorRequired
    );
    login(&hub, "bob", Some(&code(&secret, s + 5)))
        .await
        .expect("current step accepted");
}

#[tokio::test]
async fn a_used_code_stays_used_after_a_restart() {
    let clock = clock_at_step_start();
    let hub = hub_with(clock.clone()).await;
    let bob = login(&hub, "bob", None).await.expect("login");
    let s = step_of(&clock);
    let secret = enrol(&bob, s).await;
    clock.advance(Duration::from_secs(30));
    let used = code(&secret, s + 1);
    login(&hub, "bob", Some(&used)).await.expect("login");
    drop(bob);

    let dir = hub.stop().await;
    let hub = TestHub::start_clocked(dir, Limits::default(), clock.clone()).await;
    assert_eq!(
        hub_code(login(&hub, "bob", Some(&used)).await),
        ErrorCode::TwoFactorRequired,
        "replayed after a restart"
    );
    clock.advance(Duration::from_secs(30));
    login(&hub, "bob", Some(&code(&secret, s + 2)))
        .await
        .expect("the secret survived the restart");
}

#[tokio::test]
async fn totp_secrets_are_sealed_under_seal_key_for_their_user_only() {
    let clock = clock_at_step_start();
    let hub = hub_with(clock.clone()).await;
    hub.add_user("cid", Role::Technician, "Desk").await;
    let s = step_of(&clock);
    let bob = login(&hub, "bob", None).await.expect("bob");
    let bobs = enrol(&bob, s).await;
    let cid = login(&hub, "cid", None).await.expect("cid");
    let cids = enrol(&cid, s).await;
    drop((bob, cid));
    let data = hub.dir.path().join("hub");
    let key = std::fs::read(data.join("seal.key")).expect("seal.key");
    assert_eq!(key.len(), 32);
    assert!(!data.join("twofa.key").exists());

    // The database holds neither secret in clear; bob's sealed secret copied into cid's row
    // does not open there (the user id is bound in).
    let conn = rusqlite::Connection::open(data.join("hub.sqlite3")).expect("open db");
    let sealed: String = conn
        .query_row(
            "SELECT totp_secret FROM users WHERE name = 'bob'",
            [],
            |r| r.get(0),
        )
        .expect("bob's sealed secret");
    for secret in [&bobs, &cids] {
        assert!(!sealed.contains(&hex::encode(secret.as_bytes())));
    }
    conn.execute(
        "UPDATE users SET totp_secret = ?1 WHERE name = 'cid'",
        [&sealed],
    )
    .expect("swap");
    drop(conn);
    clock.advance(Duration::from_secs(30));
    for secret in [&bobs, &cids] {
        assert_eq!(
            hub_code(login(&hub, "cid", Some(&code(secret, s + 1))).await),
            ErrorCode::Internal,
            "a secret sealed for bob is refused for cid"
        );
    }
    login(&hub, "bob", Some(&code(&bobs, s + 1)))
        .await
        .expect("bob's own row opens");

    // A key file others may read, or of the wrong size, stops the hub with a clear error.
    let dir = hub.stop().await;
    let data = dir.path().join("hub");
    // The store reads the key too (the audit chain's keys derive from it): either may refuse.
    let open = || -> Result<(), String> {
        let config = tether::hub::HubConfig {
            data_dir: data.clone(),
            public_addr: None,
            limits: Limits::default(),
            smtp: None,
        };
        let store = tether::hub::store::SqliteStore::open_dir(&data).map_err(|e| e.to_string())?;
        tether::hub::Hub::with_store(config, Arc::new(store), clock.clone())
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = data.join("seal.key");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = open().expect_err("a world-readable key");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    std::fs::write(data.join("seal.key"), &key[..16]).expect("truncate");
    let err = open().expect_err("a short key");
    assert!(err.to_string().contains("16 bytes, not 32"), "{err}");
    std::fs::write(data.join("seal.key"), &key).expect("restore");
    open().expect("the restored key opens");
}

#[tokio::test]
async fn twenty_parallel_logins_with_one_code_exactly_one_succeeds() {
    let clock = clock_at_step_start();
    let hub = Arc::new(hub_with(clock.clone()).await);
    let bob = login(&hub, "bob", None).await.expect("login");
    let s = step_of(&clock);
    let secret = enrol(&bob, s).await;
    clock.advance(Duration::from_secs(30));
    let one = code(&secret, s + 1);

    // Connect all first, then log in at once.
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(client(&hub).await);
    }
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| {
            let one = one.clone();
            tokio::spawn(async move { c.login_with_code("bob", PASSWORD, Some(&one)).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("join") {
            Ok(_) => ok += 1,
            Err(ClientError::Hub(e)) => assert!(
                matches!(
                    e.code,
                    ErrorCode::TwoFactorRequired | ErrorCode::RateLimited
                ),
                "{e:?}"
            ),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 1, "exactly one login with one code");
}

#[tokio::test]
async fn the_hub_refuses_sessions_while_2fa_is_required_but_not_active() {
    let clock = clock_at_step_start();
    let hub = hub_with(clock.clone()).await;
    let ann = login(&hub, "ann", None).await.expect("admin");
    let bob = login(&hub, "bob", None).await.expect("bob");
    let link = enrolment_link(&bob, "Acme").await;
    let agent_dir = tempfile::tempdir().expect("dir");
    let mut agent = TestAgent::start_with(
        agent_dir.path(),
        Some(link),
        "pc-acme",
        tether::agent::consent::ConsentPolicy::Accept,
    );
    let ws = agent.online().await;
    let connect = || ConsoleRequest::Connect {
        workstation: ws.clone(),
        secret: None,
        otp: None,
        view_only: true,
    };
    // Before: bob may connect.
    let ConsoleReply::Session { session } = bob.request(connect()).await.expect("connect") else {
        panic!("no session")
    };
    bob.request(ConsoleRequest::EndSession {
        session: session.id,
    })
    .await
    .expect("end");
    // Support credentials bob issues while he may still start sessions.
    let issue = || ConsoleRequest::IssueCredentials {
        target: CredentialTarget::Workstation {
            workstation: ws.clone(),
        },
        minutes: 60,
        scopes: CredentialScopes {
            control: true,
            ..CredentialScopes::default()
        },
    };
    let ConsoleReply::CredentialsIssued { reveal, .. } =
        bob.request(issue()).await.expect("credentials")
    else {
        panic!("no credentials")
    };

    // Required for everyone: bob's connection, logged in before, may still browse (its
    // session starts are re-checked below)...
    ann.request(ConsoleRequest::SetGlobalTwoFactor {
        required: true,
        password: PASSWORD.into(),
    })
    .await
    .expect("global on");
    let ConsoleReply::TwoFactor { status } = bob
        .request(ConsoleRequest::TwoFactorStatus)
        .await
        .expect("status")
    else {
        panic!("no status")
    };
    assert_eq!(status.state, TwoFactorState::Pending);
    assert!(status.global && status.required);
    bob.request(ConsoleRequest::ListWorkstations {
        client: None,
        filter: None,
        page: Default::default(),
    })
    .await
    .expect("browsing is allowed");
    // ...but the session-start API itself refuses on it; and a new password-only login is
    // unfinished: it may enrol or log out, nothing else (no lists, no session, no credentials).
    assert_eq!(
        hub_code(bob.request(connect()).await),
        ErrorCode::TwoFactorSetupRequired
    );
    let bob2 = login(&hub, "bob", None).await.expect("login still allowed");
    assert_eq!(
        hub_code(bob2.request(connect()).await),
        ErrorCode::TwoFactorSetupRequired
    );
    assert_eq!(
        hub_code(
            bob2.request(ConsoleRequest::ListWorkstations {
                client: None,
                filter: None,
                page: Default::default(),
            })
            .await
        ),
        ErrorCode::TwoFactorSetupRequired
    );
    // Nor round it through support credentials: no new ones, and the old ones open nothing
    // until the technician who issued them has 2FA.
    assert_eq!(
        hub_code(bob.request(issue()).await),
        ErrorCode::TwoFactorSetupRequired
    );
    let guest = client(&hub).await;
    guest
        .guest_login(&reveal.user, reveal.password.expose(), reveal.code.expose())
        .await
        .expect("guest login");
    assert_eq!(
        hub_code(guest.request(connect()).await),
        ErrorCode::TwoFactorSetupRequired
    );
    let refused = search(
        &ann,
        AuditQuery {
            workstation: Some(ws.clone()),
            kind: Some("connect.refused".into()),
            ..AuditQuery::default()
        },
    )
    .await;
    assert!(
        refused.iter().any(|r| r.actor == "bob"),
        "audited, by workstation"
    );

    // Once active, sessions start again, but only for a login that proved the code: the
    // connection that activated it is refused, and the other password-only ones are closed
    // (issue 11; a request racing the close is refused).
    let secret = enrol(&bob, step_of(&clock)).await;
    assert_eq!(
        hub_code(bob.request(connect()).await),
        ErrorCode::TwoFactorRequired
    );
    match bob2.request(connect()).await {
        Err(ClientError::Closed) => {}
        other => assert_eq!(hub_code(other), ErrorCode::TwoFactorRequired),
    }
    clock.advance(Duration::from_secs(30));
    let bob = login(&hub, "bob", Some(&code(&secret, step_of(&clock))))
        .await
        .expect("login with the code");
    let ConsoleReply::Session { session } = bob.request(connect()).await.expect("connect") else {
        panic!("no session")
    };
    bob.request(ConsoleRequest::EndSession {
        session: session.id,
    })
    .await
    .expect("end");
    agent.stop().await;
}

#[tokio::test]
async fn admin_settings_need_the_password_and_respect_the_global_switch() {
    let clock = clock_at_step_start();
    let hub = hub_with(clock.clone()).await;
    let ann = login(&hub, "ann", None).await.expect("admin");
    let bob = login(&hub, "bob", None).await.expect("bob");
    let set = |user: &str, required: bool, password: &str| ConsoleRequest::SetUserTwoFactor {
        user: user.into(),
        required,
        password: password.into(),
    };

    // Technicians cannot list users or change settings.
    assert_eq!(
        hub_code(
            bob.request(ConsoleRequest::ListUsers {
                page: Default::default()
            })
            .await
        ),
        ErrorCode::Forbidden
    );
    assert_eq!(
        hub_code(bob.request(set("zed", true, PASSWORD)).await),
        ErrorCode::Forbidden
    );
    // A wrong admin password is refused and changes nothing.
    assert_eq!(
        hub_code(
            ann.request(set("bob", true, "not my password at all"))
                .await
        ),
        ErrorCode::InvalidCredentials
    );
    assert_eq!(
        hub_code(
            ann.request(ConsoleRequest::SetGlobalTwoFactor {
                required: true,
                password: "wrong wrong wrong".into(),
            })
            .await
        ),
        ErrorCode::InvalidCredentials
    );
    let states = |reply: ConsoleReply| match reply {
        ConsoleReply::Users { users, global, .. } => (
            global,
            users
                .into_iter()
                .map(|u| (u.name, u.state))
                .collect::<Vec<_>>(),
        ),
        other => panic!("unexpected {other:?}"),
    };
    let (global, users) = states(
        ann.request(ConsoleRequest::ListUsers {
            page: Default::default(),
        })
        .await
        .expect("users"),
    );
    assert!(!global);
    assert!(users.iter().all(|(_, s)| *s == TwoFactorState::Off));

    ann.request(set("bob", true, PASSWORD))
        .await
        .expect("require bob");
    let secret = enrol(&ann, step_of(&clock)).await;
    // Her connection logged in without a code: from now on only a login with one manages.
    clock.advance(Duration::from_secs(30));
    let ann = login(&hub, "ann", Some(&code(&secret, step_of(&clock))))
        .await
        .expect("ann with her code");
    let (_, users) = states(
        ann.request(ConsoleRequest::ListUsers {
            page: Default::default(),
        })
        .await
        .expect("users"),
    );
    assert_eq!(
        users,
        vec![
            ("ann".to_owned(), TwoFactorState::Active),
            ("bob".to_owned(), TwoFactorState::Pending),
            ("zed".to_owned(), TwoFactorState::Off),
        ]
    );

    // Global on: per-user settings are unavailable; everyone not active is pending.
    ann.request(ConsoleRequest::SetGlobalTwoFactor {
        required: true,
        password: PASSWORD.into(),
    })
    .await
    .expect("global on");
    assert_eq!(
        hub_code(ann.request(set("bob", false, PASSWORD)).await),
        ErrorCode::Conflict
    );
    let (global, users) = states(
        ann.request(ConsoleRequest::ListUsers {
            page: Default::default(),
        })
        .await
        .expect("users"),
    );
    assert!(global);
    assert_eq!(users[2], ("zed".to_owned(), TwoFactorState::Pending));
    ann.request(ConsoleRequest::SetGlobalTwoFactor {
        required: false,
        password: PASSWORD.into(),
    })
    .await
    .expect("global off");
    ann.request(set("bob", false, PASSWORD))
        .await
        .expect("unrequire bob");

    let actions: Vec<String> = search(&ann, kind("2fa"))
        .await
        .into_iter()
        .map(|r| r.action)
        .collect();
    for expected in [
        "2fa.reauth_fail",
        "2fa.require",
        "2fa.unrequire",
        "2fa.global",
        "2fa.enable",
        "2fa.confirm",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} in {actions:?}"
        );
    }
}

#[tokio::test]
async fn audit_search_filters_and_team_scope() {
    let clock = clock_at_step_start();
    let hub = hub_with(clock.clone()).await;
    let start = tether::hub::Clock::now(&*clock);
    let bob = login(&hub, "bob", None).await.expect("bob");
    clock.advance(Duration::from_secs(3600));
    let middle = tether::hub::Clock::now(&*clock);
    let zed = login(&hub, "zed", None).await.expect("zed");
    assert!(login(&hub, "bob", Some("000000")).await.is_ok());
    let c = client(&hub).await;
    assert!(c.login("bob", "wrong password here").await.is_err());
    let ann = login(&hub, "ann", None).await.expect("ann");

    // By who and kind (a prefix up to a dot, or exact).
    let bobs = search(
        &ann,
        AuditQuery {
            actor: Some("bob".into()),
            kind: Some("login".into()),
            ..AuditQuery::default()
        },
    )
    .await;
    assert_eq!(bobs.len(), 3, "{bobs:?}");
    assert!(bobs.iter().all(|r| r.actor == "bob"));
    let fails = search(
        &ann,
        AuditQuery {
            actor: Some("bob".into()),
            kind: Some("login.fail".into()),
            ..AuditQuery::default()
        },
    )
    .await;
    assert_eq!(fails.len(), 1);
    assert!(
        search(&ann, kind("log")).await.is_empty(),
        "not a word prefix"
    );

    // A time range.
    let early = search(
        &ann,
        AuditQuery {
            since: Some(start),
            until: Some(middle),
            ..AuditQuery::default()
        },
    )
    .await;
    assert_eq!(early.len(), 1);
    assert_eq!(early[0].actor, "bob");

    // Technicians see their team's only; the owner everything.
    let seen_by_zed = search(&zed, kind("login")).await;
    assert!(!seen_by_zed.is_empty());
    assert!(seen_by_zed.iter().all(|r| r.actor == "zed"));
    let seen_by_bob = search(&bob, kind("login")).await;
    assert!(seen_by_bob.iter().all(|r| r.actor != "zed"));
    assert!(
        search(&ann, kind("login"))
            .await
            .iter()
            .any(|r| r.actor == "zed")
    );

    // A workstation, by host name (the detail) or id (the target).
    let link = enrolment_link(&bob, "Acme").await;
    let dir = tempfile::tempdir().expect("dir");
    let mut agent = TestAgent::start(dir.path(), Some(link), "pc-filter");
    let ws = agent.online().await;
    let by_host = search(
        &bob,
        AuditQuery {
            workstation: Some("pc-filter".into()),
            ..AuditQuery::default()
        },
    )
    .await;
    assert!(!by_host.is_empty());
    let by_id = search(
        &bob,
        AuditQuery {
            workstation: Some(ws.clone()),
            ..AuditQuery::default()
        },
    )
    .await;
    assert_eq!(by_host, by_id);
    assert!(
        by_id
            .iter()
            .all(|r| r.target.as_deref() == Some(ws.as_str()))
    );
    agent.stop().await;
}

/// The ctl verbs through the real binary: `2fa enable|confirm|status`, `users list|require-2fa|
/// unrequire-2fa`, `settings require-2fa`, `login --code`, `audit list` with filters.
#[tokio::test]
async fn an_admin_resets_another_users_2fa_over_the_network() {
    let clock = clock_at_step_start();
    let hub = hub_with(clock.clone()).await;
    let ann = login(&hub, "ann", None).await.expect("admin");
    let bob = login(&hub, "bob", None).await.expect("bob");
    let secret = enrol(&bob, step_of(&clock)).await;
    clock.advance(Duration::from_secs(30));
    // bob's login with his code: a token the reset must end.
    let (bob_open, mut bob_events) = HubClient::connect(&hub.url, hub.pin())
        .await
        .expect("connect");
    let (token, _, _) = bob_open
        .login_with_code("bob", PASSWORD, Some(&code(&secret, step_of(&clock))))
        .await
        .expect("bob with his code");
    let reset = |user: &str, password: &str| ConsoleRequest::ResetUserTwoFactor {
        user: user.into(),
        password: password.into(),
    };
    let state_of = |reply: ConsoleReply, name: &str| match reply {
        ConsoleReply::Users { users, .. } => users
            .into_iter()
            .find(|u| u.name == name)
            .map(|u| u.state)
            .expect("listed"),
        other => panic!("unexpected {other:?}"),
    };

    // Technicians may not; a wrong admin password changes nothing; nor can an admin reset
    // their own (a stolen admin login must not remove the admin's 2FA).
    assert_eq!(
        hub_code(bob_open.request(reset("zed", PASSWORD)).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        hub_code(ann.request(reset("bob", "not my password at all")).await),
        ErrorCode::InvalidCredentials
    );
    assert_eq!(
        hub_code(ann.request(reset("ann", PASSWORD)).await),
        ErrorCode::Conflict
    );
    assert_eq!(
        hub_code(ann.request(reset("nobody", PASSWORD)).await),
        ErrorCode::NotFound
    );
    let users = ann
        .request(ConsoleRequest::ListUsers {
            page: Default::default(),
        })
        .await
        .expect("users");
    assert_eq!(state_of(users, "bob"), TwoFactorState::Active);

    ann.request(reset("bob", PASSWORD))
        .await
        .expect("reset bob");
    let users = ann
        .request(ConsoleRequest::ListUsers {
            page: Default::default(),
        })
        .await
        .expect("users");
    assert_eq!(state_of(users, "bob"), TwoFactorState::Off);
    // His logins ended, and so did his open console connections (within a second).
    tokio::time::timeout(Duration::from_secs(1), async {
        while bob_events.recv().await.is_some() {}
    })
    .await
    .expect("bob's open connection closed within a second of the reset");
    // His password alone works again.
    assert!(matches!(
        hub_code(client(&hub).await.resume(&token).await),
        ErrorCode::Unauthenticated | ErrorCode::Expired
    ));
    let bob = login(&hub, "bob", None).await.expect("password only");

    // Where 2FA is required for him, a reset leaves him pending: he enrols at his next login.
    ann.request(ConsoleRequest::SetUserTwoFactor {
        user: "bob".into(),
        required: true,
        password: PASSWORD.into(),
    })
    .await
    .expect("require bob");
    clock.advance(Duration::from_secs(30));
    enrol(&bob, step_of(&clock)).await;
    ann.request(reset("bob", PASSWORD))
        .await
        .expect("reset bob");
    let users = ann
        .request(ConsoleRequest::ListUsers {
            page: Default::default(),
        })
        .await
        .expect("users");
    assert_eq!(state_of(users, "bob"), TwoFactorState::Pending);

    let resets = search(&ann, kind("2fa.reset")).await;
    assert_eq!(resets.len(), 2, "{resets:?}");
    assert!(
        resets
            .iter()
            .all(|r| r.actor == "ann" && r.target.as_deref() == Some("bob"))
    );
    assert_eq!(resets[0].detail["after"], "pending");
    assert_eq!(resets[1].detail["after"], "off");
    assert_eq!(resets[1].detail["was_active"], true);
    assert!(resets[1].detail["logins_revoked"].as_u64() >= Some(1));
}

#[test]
fn ctl_verbs_end_to_end() {
    use common::bin::{HubProcess, fails, login, ok, run as tether};
    use std::process::Stdio;

    let home = tempfile::tempdir().expect("tempdir");
    let data = home.path().join("hubdata");
    // The owner: `settings require-2fa` is hub-wide.
    ok(&tether(
        home.path(),
        &[
            "admin",
            "--data",
            data.to_str().expect("utf8"),
            "create-user",
            "ann",
            "--role",
            "owner",
            "--team",
            "Desk",
            "--email",
            "ann@example.com",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    ));
    ok(&tether(
        home.path(),
        &[
            "admin",
            "--data",
            data.to_str().expect("utf8"),
            "create-user",
            "bob",
            "--role",
            "technician",
            "--team",
            "Desk",
            "--email",
            "bob@example.com",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    ));
    let hub = HubProcess::start(home.path(), &data, &[], Stdio::null());
    login(home.path(), &hub, "ann");
    let json = |args: &[&str], stdin: Option<&str>| -> serde_json::Value {
        let mut all = vec!["ctl", "--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&ok(&tether(home.path(), &all, stdin))).expect("json output")
    };
    let pw = format!("{PASSWORD}\n");

    assert_eq!(json(&["2fa", "status"], None)["state"], "off");
    // The text form prints the QR code and the URI.
    let text = ok(&tether(home.path(), &["ctl", "2fa", "enable"], None));
    assert!(text.contains('█') && text.contains("otpauth://totp/Tether:ann?secret="));
    let enrolment = json(&["2fa", "enable"], None);
    let secret =
        TotpSecret::from_base32(enrolment["secret"].as_str().expect("secret")).expect("base32");
    // Confirm with the previous step's code, so the current one is still unused for login.
    let unix = || u64::try_from(chrono::Utc::now().timestamp()).expect("after 1970");
    let wrong = tether(home.path(), &["ctl", "2fa", "confirm", "000000"], None);
    assert!(fails(&wrong).contains("not valid"));
    let mut confirmed = None;
    for _ in 0..2 {
        let step = unix() / 30;
        let out = tether(
            home.path(),
            &["ctl", "--json", "2fa", "confirm", &code(&secret, step - 1)],
            None,
        );
        if out.status.success() {
            confirmed = Some(step);
            break;
        }
    }
    assert!(confirmed.is_some(), "confirm with a valid code");
    // Active now: the login made without a code is revoked.
    let revoked = tether(home.path(), &["ctl", "2fa", "status"], None);
    assert_eq!(revoked.status.code(), Some(3), "log in again, with a code");

    // Login: without a code it says what to do; with the current code it works.
    let login_args = |code: Option<&str>| {
        let mut args = vec![
            "login".to_owned(),
            "--hub".into(),
            hub.url(),
            "--user".into(),
            "ann".into(),
            "--password-stdin".into(),
        ];
        if let Some(c) = code {
            args.extend(["--code".into(), c.to_owned()]);
        }
        args
    };
    let args = login_args(None);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(fails(&tether(home.path(), &refs, Some(&pw))).contains("--code"));
    let args = login_args(Some(&code(&secret, unix() / 30)));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(ok(&tether(home.path(), &refs, Some(&pw))).contains("logged in"));
    assert_eq!(json(&["2fa", "status"], None)["state"], "active");

    // Users: require 2FA for bob (a wrong password is refused), then the global switch.
    let wrong = tether(
        home.path(),
        &["ctl", "users", "require-2fa", "bob", "--password-stdin"],
        Some("not my password at all\n"),
    );
    assert!(fails(&wrong).contains("password"));
    json(
        &["users", "require-2fa", "bob", "--password-stdin"],
        Some(&pw),
    );
    let users = json(&["users", "list"], None);
    let state = |name: &str| {
        users["users"]
            .as_array()
            .expect("users")
            .iter()
            .find(|u| u["name"] == name)
            .map(|u| u["state"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(state("ann").as_deref(), Some("active"));
    assert_eq!(state("bob").as_deref(), Some("pending"));
    let table = ok(&tether(home.path(), &["ctl", "users", "list"], None));
    assert!(table.contains("pending") && table.contains("active"));

    assert_eq!(
        json(
            &["settings", "require-2fa", "on", "--password-stdin"],
            Some(&pw)
        )["require_2fa"],
        true
    );
    let refused = tether(
        home.path(),
        &["ctl", "users", "unrequire-2fa", "bob", "--password-stdin"],
        Some(&pw),
    );
    assert!(fails(&refused).contains("global setting"));
    json(
        &["settings", "require-2fa", "off", "--password-stdin"],
        Some(&pw),
    );
    json(
        &["users", "unrequire-2fa", "bob", "--password-stdin"],
        Some(&pw),
    );

    // The audit, filtered.
    let records = json(&["audit", "list", "--kind", "2fa", "--user", "ann"], None);
    let actions: Vec<&str> = records
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    for expected in [
        "2fa.enable",
        "2fa.confirm_fail",
        "2fa.confirm",
        "2fa.reauth_fail",
        "2fa.require",
        "2fa.unrequire",
        "2fa.global",
    ] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
    let logins = json(
        &["audit", "list", "--kind", "login.ok", "--limit", "2"],
        None,
    );
    assert_eq!(logins.as_array().map(Vec::len), Some(2), "--limit");
    let logins = json(&["audit", "list", "--kind", "login.ok"], None);
    assert!(
        logins
            .as_array()
            .expect("records")
            .iter()
            .any(|r| r["detail"]["method"] == "password+totp")
    );
    let future = json(&["audit", "list", "--since", "2999-01-01"], None);
    assert_eq!(future.as_array().map(Vec::len), Some(0));
    let bad = tether(
        home.path(),
        &["ctl", "audit", "list", "--since", "yesterday"],
        None,
    );
    assert!(fails(&bad).contains("not a time"));

    // Over the network, an admin resets another user's 2FA (asked for their password again),
    // never their own.
    let wrong = tether(
        home.path(),
        &["ctl", "users", "reset-2fa", "bob", "--password-stdin"],
        Some("not my password at all\n"),
    );
    assert!(fails(&wrong).contains("password"));
    let own = tether(
        home.path(),
        &["ctl", "users", "reset-2fa", "ann", "--password-stdin"],
        Some(&pw),
    );
    assert!(fails(&own).contains("another admin"));
    let reset = json(
        &["users", "reset-2fa", "bob", "--password-stdin"],
        Some(&pw),
    );
    assert_eq!(
        (reset["user"].as_str(), reset["state"].as_str()),
        (Some("bob"), Some("off"))
    );
    let said = ok(&tether(
        home.path(),
        &["ctl", "users", "reset-2fa", "bob", "--password-stdin"],
        Some(&pw),
    ));
    assert!(said.contains("2FA reset for bob: now off"), "{said}");

    // A lost phone: the operator resets ann's 2FA; her password alone works again.
    drop(hub);
    let out = tether(
        home.path(),
        &[
            "admin",
            "--data",
            data.to_str().expect("utf8"),
            "reset-2fa",
            "ann",
        ],
        None,
    );
    assert!(ok(&out).contains("2FA reset for ann"));
    let hub = HubProcess::start(home.path(), &data, &[], Stdio::null());
    login(home.path(), &hub, "ann");
    assert_eq!(json(&["2fa", "status"], None)["state"], "off");
    let resets = json(&["audit", "list", "--kind", "2fa.reset"], None);
    assert_eq!(resets[0]["detail"]["was_active"], true);
    assert_eq!(
        resets.as_array().map(Vec::len),
        Some(3),
        "two by ann, one offline"
    );
}
