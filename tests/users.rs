//! The user lifecycle against a real hub over real WebSockets (issue 11): adding users with a
//! one-time enrolment code, disabling, enabling, removing, the hard lock, 2FA resets from
//! another process, and the promise behind them all: the user's open connections close within
//! a second and their tokens stop resuming.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::bin::{fails, ok, run};
use common::{ManualClock, PASSWORD, TestHub};
use tether::client::{ClientError, HubClient};
use tether::hub::Limits;
use tether::hub::store::users::Revocation;
use tether::protocol::{ConsoleReply, ConsoleRequest, ErrorCode, HubEvent, PROTOCOL_VERSION, Role};
use tether::secrets::totp::TotpSecret;
use tokio::sync::mpsc::UnboundedReceiver;

/// The promise: a revoked user's connections close within this.
const CLOSE_WITHIN: Duration = Duration::from_secs(1);

async fn hub() -> TestHub {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    hub.add_user("bob", Role::Technician, "Desk").await;
    hub.add_user("zoe", Role::Admin, "Elsewhere").await;
    hub
}

async fn connect(hub: &TestHub) -> (HubClient, UnboundedReceiver<HubEvent>) {
    HubClient::connect(&hub.url, hub.pin())
        .await
        .expect("connect")
}

/// A logged-in connection of `user`, its token and its event stream (which ends when the hub
/// closes the connection).
async fn logged_in(hub: &TestHub, user: &str) -> (HubClient, String, UnboundedReceiver<HubEvent>) {
    let (client, events) = connect(hub).await;
    let (token, _, _) = client.login(user, PASSWORD).await.expect("login");
    (client, token, events)
}

/// Wait (at most `limit`) for the hub to close the connection whose events these are.
async fn closed_within(events: &mut UnboundedReceiver<HubEvent>, limit: Duration) -> bool {
    tokio::time::timeout(limit, async { while events.recv().await.is_some() {} })
        .await
        .is_ok()
}

/// The hub's answer to resuming `token` on a new connection.
async fn resume(hub: &TestHub, token: &str) -> Result<(), ClientError> {
    let (client, _events) = connect(hub).await;
    client.resume(token).await.map(|_| ())
}

fn hub_code(e: &ClientError) -> Option<ErrorCode> {
    match e {
        ClientError::Hub(p) => Some(p.code),
        _ => None,
    }
}

/// A login's refusal, as the user sees it (code and words).
async fn login_refusal(hub: &TestHub, user: &str, password: &str) -> (ErrorCode, String) {
    let (client, _events) = connect(hub).await;
    match client.login(user, password).await {
        Err(ClientError::Hub(p)) => (p.code, p.message),
        other => panic!("the login of {user} should be refused: {other:?}"),
    }
}

async fn request(client: &HubClient, body: ConsoleRequest) -> Result<ConsoleReply, ClientError> {
    client.request(body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_closes_the_users_connections_and_their_logins_end() {
    let hub = hub().await;
    let (ann, _, _ann_events) = logged_in(&hub, "ann").await;
    let (bob, token, mut bob_events) = logged_in(&hub, "bob").await;
    // A guest acting on bob's behalf, with support credentials he issued.
    let ConsoleReply::Client { client } = request(
        &ann,
        ConsoleRequest::AddClient {
            name: "Acme".into(),
        },
    )
    .await
    .expect("client") else {
        panic!("client");
    };
    let issue = ConsoleRequest::IssueCredentials {
        target: tether::protocol::CredentialTarget::Client { client: client.id },
        minutes: 60,
        scopes: tether::protocol::CredentialScopes::default(),
    };
    let ConsoleReply::CredentialsIssued { reveal, .. } =
        request(&bob, issue).await.expect("credentials")
    else {
        panic!("credentials");
    };
    let (guest, mut guest_events) = connect(&hub).await;
    guest
        .guest_login(&reveal.user, reveal.password.expose(), reveal.code.expose())
        .await
        .expect("guest login");

    request(&ann, ConsoleRequest::DisableUser { user: "bob".into() })
        .await
        .expect("disable");
    assert!(
        closed_within(&mut bob_events, CLOSE_WITHIN).await,
        "bob's console is still connected a second after he was disabled"
    );
    // Told why, in the close; and a request now fails at once.
    assert_eq!(
        bob.close_reason().as_deref(),
        Some("an admin disabled your account")
    );
    assert!(matches!(
        bob.request(ConsoleRequest::TwoFactorStatus).await,
        Err(ClientError::Closed)
    ));
    assert!(
        closed_within(&mut guest_events, CLOSE_WITHIN).await,
        "the guest of a disabled technician is still connected"
    );
    let (late, _events) = connect(&hub).await;
    late.guest_login(&reveal.user, reveal.password.expose(), reveal.code.expose())
        .await
        .expect_err("a disabled technician's credentials log nobody in");
    let err = resume(&hub, &token)
        .await
        .expect_err("a disabled user's token");
    assert_eq!(hub_code(&err), Some(ErrorCode::Expired), "{err}");
    // The same answer a wrong password gets: nobody learns the account exists but is off.
    assert_eq!(
        login_refusal(&hub, "bob", PASSWORD).await,
        login_refusal(&hub, "bob", "not the password at all").await,
    );

    // Enabled again, he logs in.
    request(&ann, ConsoleRequest::EnableUser { user: "bob".into() })
        .await
        .expect("enable");
    let (bob_again, _, _bob_again_events) = logged_in(&hub, "bob").await;
    // The revocation log, read again by the hub, closes only connections from before it:
    // once a later entry (zoe's, written to the store directly, so only the log reaches the
    // hub) has closed her console, bob's entries were read too, and his new login stands.
    let (_zoe, _, mut zoe_events) = logged_in(&hub, "zoe").await;
    let store = hub.hub.store().clone();
    tokio::task::spawn_blocking(move || {
        let zoe = store.user_by_name("zoe").expect("lookup").expect("zoe");
        store
            .revoke_user_logins(&zoe.info.id, Revocation::TwoFactorReset)
            .expect("revoke")
    })
    .await
    .expect("join");
    assert!(closed_within(&mut zoe_events, CLOSE_WITHIN).await);
    request(&bob_again, ConsoleRequest::TwoFactorStatus)
        .await
        .expect("a login made after the disabling stays open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_ends_the_user_for_good_and_keeps_their_name_in_the_audit_log() {
    let hub = hub().await;
    let (ann, _, _ann_events) = logged_in(&hub, "ann").await;
    let (_bob, token, mut bob_events) = logged_in(&hub, "bob").await;

    // An admin cannot remove themselves, nor act on another team's user (not found).
    let err = request(&ann, ConsoleRequest::RemoveUser { user: "ann".into() })
        .await
        .expect_err("self");
    assert_eq!(hub_code(&err), Some(ErrorCode::Conflict), "{err}");
    let (zoe, _, _zoe_events) = logged_in(&hub, "zoe").await;
    for body in [
        ConsoleRequest::RemoveUser { user: "bob".into() },
        ConsoleRequest::DisableUser { user: "bob".into() },
        ConsoleRequest::SetUserRole {
            user: "bob".into(),
            role: Role::Admin,
        },
    ] {
        let err = request(&zoe, body).await.expect_err("another team's user");
        assert_eq!(hub_code(&err), Some(ErrorCode::NotFound), "{err}");
    }

    request(&ann, ConsoleRequest::RemoveUser { user: "bob".into() })
        .await
        .expect("remove");
    assert!(
        closed_within(&mut bob_events, CLOSE_WITHIN).await,
        "bob's console is still connected a second after he was removed"
    );
    let err = resume(&hub, &token)
        .await
        .expect_err("a removed user's token");
    assert_eq!(hub_code(&err), Some(ErrorCode::Expired), "{err}");
    assert_eq!(
        login_refusal(&hub, "bob", PASSWORD).await.0,
        ErrorCode::InvalidCredentials
    );
    // His name is never given to someone else, and still names him in the log.
    let err = request(
        &ann,
        ConsoleRequest::AddUser {
            name: "bob".into(),
            role: Role::Technician,
            email: None,
            password: None,
        },
    )
    .await
    .expect_err("a removed user's name");
    assert_eq!(hub_code(&err), Some(ErrorCode::Conflict), "{err}");
    let ConsoleReply::Audit { records, .. } = request(
        &ann,
        ConsoleRequest::ListAudit {
            limit: 50,
            before: None,
            page: Default::default(),
        },
    )
    .await
    .expect("audit") else {
        panic!("audit");
    };
    let removal = records
        .iter()
        .find(|r| r.action == "user.remove")
        .expect("the removal is audited");
    assert_eq!(removal.detail["name"], "bob");
    assert!(
        records
            .iter()
            .any(|r| r.actor == "bob" && r.action == "login.ok")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reset_2fa_from_another_process_closes_the_users_console_within_a_second() {
    let hub = hub().await;
    let (bob, token, mut bob_events) = logged_in(&hub, "bob").await;
    let home = tempfile::tempdir().expect("home");
    let data = hub.dir.path().join("hub");
    let (home_path, data) = (home.path().to_path_buf(), data.display().to_string());
    let out = tokio::task::spawn_blocking(move || {
        run(
            &home_path,
            &["admin", "--data", &data, "reset-2fa", "bob"],
            None,
        )
    })
    .await
    .expect("join");
    ok(&out);
    assert!(
        closed_within(&mut bob_events, CLOSE_WITHIN).await,
        "bob's console is still connected a second after `tether admin reset-2fa`"
    );
    assert_eq!(
        bob.close_reason().as_deref(),
        Some("an admin reset your two-factor authentication: log in again")
    );
    let err = resume(&hub, &token)
        .await
        .expect_err("token after the reset");
    assert_eq!(hub_code(&err), Some(ErrorCode::Expired), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_accounts_token_does_not_resume_and_its_console_closes() {
    let hub = hub().await;
    let (_bob, token, mut bob_events) = logged_in(&hub, "bob").await;
    // Reaching the hard lock: the failures as the login path counts them (each login would
    // wait out a growing delay first; the count is what locks).
    let store = hub.hub.store().clone();
    tokio::task::spawn_blocking(move || {
        let bob = store.user_by_name("bob").expect("lookup").expect("bob");
        for _ in 0..100 {
            store
                .record_login_failure(&bob.info.id, None)
                .expect("failure");
        }
    })
    .await
    .expect("join");
    assert!(
        closed_within(&mut bob_events, CLOSE_WITHIN).await,
        "a locked account's console is still connected a second later"
    );
    let err = resume(&hub, &token)
        .await
        .expect_err("a locked account's token");
    assert_eq!(hub_code(&err), Some(ErrorCode::Expired), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activating_2fa_closes_the_users_other_password_only_connections() {
    let clock = ManualClock::new();
    let hub = TestHub::start_clocked(
        tempfile::tempdir().expect("tempdir"),
        Limits::default(),
        clock.clone(),
    )
    .await;
    hub.add_user("bob", Role::Technician, "Desk").await;
    let (here, _, _here_events) = logged_in(&hub, "bob").await;
    let (_there, _, mut there_events) = logged_in(&hub, "bob").await;

    let ConsoleReply::TwoFactorEnrolment { secret, .. } =
        request(&here, ConsoleRequest::TwoFactorEnable)
            .await
            .expect("enable")
    else {
        panic!("no enrolment");
    };
    let secret = TotpSecret::from_base32(secret.expose()).expect("secret");
    let now = tether::hub::Clock::now(&*clock).timestamp();
    let step = u64::try_from(now).expect("after 1970") / 30;
    let code = secret.code_for_step(step, 6).expect("code");
    request(
        &here,
        ConsoleRequest::TwoFactorConfirm { code: code.into() },
    )
    .await
    .expect("confirm");

    assert!(
        closed_within(&mut there_events, CLOSE_WITHIN).await,
        "the other password-only connection is still open a second after 2FA became active"
    );
    // The connection that activated it is answered still.
    request(&here, ConsoleRequest::TwoFactorStatus)
        .await
        .expect("the activating connection stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolment_code_sets_the_password_once() {
    let hub = hub().await;
    let (ann, _, _ann_events) = logged_in(&hub, "ann").await;
    let ConsoleReply::UserAdded { user, enrolment } = request(
        &ann,
        ConsoleRequest::AddUser {
            name: "cat".into(),
            role: Role::Technician,
            email: Some("cat@example.com".into()),
            password: None,
        },
    )
    .await
    .expect("add") else {
        panic!("user added");
    };
    assert_eq!(user.team, "Desk", "added to the admin's own team");
    let code = enrolment.expect("an enrolment code").code;
    let new_password = "a fresh long password 42";
    let redeem = |password: &str| ConsoleRequest::RedeemEnrolment {
        version: PROTOCOL_VERSION,
        user: "cat".into(),
        code: code.clone(),
        password: password.into(),
    };

    // Before it is redeemed, no password logs in.
    assert_eq!(
        login_refusal(&hub, "cat", PASSWORD).await.0,
        ErrorCode::InvalidCredentials
    );
    let (first, _events) = connect(&hub).await;
    request(&first, redeem(new_password)).await.expect("redeem");
    first
        .login("cat", new_password)
        .await
        .expect("log in with the password just set");

    let (second, _events) = connect(&hub).await;
    let err = request(&second, redeem("another long password 43"))
        .await
        .expect_err("a code works once");
    assert_eq!(hub_code(&err), Some(ErrorCode::InvalidCredentials), "{err}");
    second
        .login("cat", new_password)
        .await
        .expect("the first password stands");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_users_and_login_enrol_through_the_binary() {
    let hub = hub().await;
    let home = tempfile::tempdir().expect("home");
    let h = home.path().to_path_buf();
    let (url, fp) = (hub.url.clone(), hub.hub.fingerprint().to_owned());
    let blocking = move |args: Vec<String>, stdin: Option<String>| {
        let h = h.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run(&h, &args, stdin.as_deref())
        })
    };
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let pw = Some(format!("{PASSWORD}\n"));
    ok(&blocking(
        args(&[
            "login",
            "--hub",
            &url,
            "--user",
            "ann",
            "--password-stdin",
            "--fingerprint",
            &fp,
        ]),
        pw.clone(),
    )
    .await
    .expect("join"));
    let added = ok(&blocking(
        args(&[
            "ctl",
            "--json",
            "users",
            "add",
            "dan",
            "--role",
            "technician",
        ]),
        None,
    )
    .await
    .expect("join"));
    let added: serde_json::Value = serde_json::from_str(&added).expect("json");
    let code = added["enrolment"]["code"]
        .as_str()
        .expect("code")
        .to_owned();
    ok(
        &blocking(args(&["ctl", "users", "role", "dan", "admin"]), None)
            .await
            .expect("join"),
    );
    ok(&blocking(args(&["ctl", "users", "disable", "dan"]), None)
        .await
        .expect("join"));
    // Disabled: the code does not work either.
    let dan_home = tempfile::tempdir().expect("dan's home");
    let enrol = |home: std::path::PathBuf, code: String| {
        let (url, fp) = (url.clone(), fp.clone());
        tokio::task::spawn_blocking(move || {
            run(
                &home,
                &[
                    "login",
                    "--hub",
                    &url,
                    "--user",
                    "dan",
                    "--enrol",
                    &code,
                    "--password-stdin",
                    "--fingerprint",
                    &fp,
                ],
                Some("dan's own long password\n"),
            )
        })
    };
    fails(
        &enrol(dan_home.path().to_path_buf(), code.clone())
            .await
            .expect("join"),
    );
    ok(&blocking(args(&["ctl", "users", "enable", "dan"]), None)
        .await
        .expect("join"));
    let out = ok(&enrol(dan_home.path().to_path_buf(), code.clone())
        .await
        .expect("join"));
    assert!(out.contains("as dan (admin, team Desk)"), "{out}");
    let again = fails(
        &enrol(dan_home.path().to_path_buf(), code)
            .await
            .expect("join"),
    );
    assert!(again.contains("enrolment code is not valid"), "{again}");
    ok(&blocking(args(&["ctl", "users", "remove", "dan"]), None)
        .await
        .expect("join"));
    let list = ok(&blocking(args(&["ctl", "users", "list"]), None)
        .await
        .expect("join"));
    assert!(
        !list.contains("dan"),
        "a removed user is not listed: {list}"
    );
}

/// Sessions open when the hub stops cleanly end as "the hub stopped"; those found open at the
/// next start (the hub did not stop cleanly) as "the hub restarted after a crash".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_and_a_crash_record_different_session_ends() {
    use common::{TestAgent, enrolment_link, wait_event};
    use tether::agent::consent::{Consent, ConsentPolicy};
    use tether::protocol::{Presence, SessionInfo};

    let hub = hub().await;
    let store = hub.hub.store().clone();
    let (ann, _, mut events) = logged_in(&hub, "ann").await;
    let link = enrolment_link(&ann, "Acme").await;
    let agent_dir = tempfile::tempdir().expect("tempdir");
    let mut agent = TestAgent::start_consent(
        agent_dir.path(),
        Some(link),
        "reception-pc",
        Consent::new(ConsentPolicy::Accept),
    );
    let ws = agent.online().await;
    wait_event(&mut events, Duration::from_secs(10), |e| {
        matches!(e, HubEvent::Workstation { workstation: w } if w.id == ws && w.presence == Presence::Online)
    })
    .await;
    let connect = ConsoleRequest::Connect {
        workstation: ws.clone(),
        secret: None,
        view_only: true,
        otp: None,
    };
    let ConsoleReply::Session { session } = request(&ann, connect).await.expect("session") else {
        panic!("session");
    };
    let team = session_team(&store, "ann").await;

    // A clean stop ends it as such.
    let dir = hub.stop().await;
    let ended = sessions_of(&store, &team).await;
    let first = ended.iter().find(|s| s.id == session.id).expect("recorded");
    assert_eq!(first.end_reason.as_deref(), Some("the hub stopped"));

    // A session the store still holds open at start was cut by a crash.
    let crashed = SessionInfo {
        id: "se_cut_by_a_crash".into(),
        ended_at: None,
        end_reason: None,
        ..first.clone()
    };
    let (s, t, c) = (store.clone(), team.clone(), crashed.clone());
    tokio::task::spawn_blocking(move || s.insert_session(&t, &c))
        .await
        .expect("join")
        .expect("insert");
    drop(store);
    drop(agent);
    let again = TestHub::start_in(dir, Limits::default()).await;
    // It closes stale sessions before it serves: once a login is answered, they are closed.
    logged_in(&again, "ann").await;
    let store = again.hub.store().clone();
    let after = sessions_of(&store, &team).await;
    let cut = after.iter().find(|s| s.id == crashed.id).expect("recorded");
    assert_eq!(
        cut.end_reason.as_deref(),
        Some("the hub restarted after a crash")
    );
}

async fn session_team(store: &Arc<dyn tether::hub::store::Store>, user: &str) -> String {
    let (s, u) = (store.clone(), user.to_owned());
    tokio::task::spawn_blocking(move || s.user_by_name(&u))
        .await
        .expect("join")
        .expect("lookup")
        .expect("user")
        .info
        .team_id
}

async fn sessions_of(
    store: &Arc<dyn tether::hub::store::Store>,
    team: &str,
) -> Vec<tether::protocol::SessionInfo> {
    let (s, t) = (store.clone(), team.to_owned());
    tokio::task::spawn_blocking(move || s.sessions(&t, false, 50))
        .await
        .expect("join")
        .expect("sessions")
}
