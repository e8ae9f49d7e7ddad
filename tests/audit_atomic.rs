//! Each change and its audit record commit in one store transaction (issue 11, point 7): when
//! the audit append fails, the change is not made either. The failpoint is the signed head
//! beside the database: a spoiled `audit.head` makes every append refuse (the log no longer
//! extends a head this hub signed), exactly as a real failure to audit would. Each test spoils
//! it, asks the hub for a change through a real console connection, puts the head back and
//! checks that nothing changed and nothing was recorded.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::{PASSWORD, TestAgent, TestHub};
use tether::agent::AgentStatus;
use tether::client::HubClient;
use tether::hub::audit::HEAD_FILE;
use tether::hub::store::Store;
use tether::protocol::{
    ConsoleReply, ConsoleRequest, Role, SecretRequirements, UnattendedState, WorkstationInfo,
};

/// The audit head taken away and given back, byte for byte.
struct SpoiledHead {
    path: PathBuf,
    good: Vec<u8>,
}

impl SpoiledHead {
    fn of(hub: &TestHub) -> Self {
        let path = hub.dir.path().join("hub").join(HEAD_FILE);
        let good = std::fs::read(&path).expect("read the audit head");
        std::fs::write(&path, b"{}").expect("spoil the audit head");
        Self { path, good }
    }

    fn restore(self) {
        std::fs::write(&self.path, &self.good).expect("restore the audit head");
    }
}

fn store(hub: &TestHub) -> Arc<dyn Store> {
    hub.hub.store().clone()
}

/// How many records the log holds.
fn records(hub: &TestHub) -> usize {
    store(hub)
        .search_audit(None, &Default::default(), 10_000, None)
        .expect("search the log")
        .len()
}

async fn hub() -> TestHub {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    hub.add_user("bob", Role::Technician, "Desk").await;
    hub
}

async fn connect(hub: &TestHub) -> HubClient {
    HubClient::connect(&hub.url, hub.pin())
        .await
        .expect("connect")
        .0
}

fn failed_logins(hub: &TestHub, name: &str) -> u32 {
    store(hub)
        .user_by_name(name)
        .expect("lookup")
        .expect("user")
        .failed_logins
}

#[tokio::test]
async fn a_failed_login_is_counted_only_with_its_record() {
    let hub = hub().await;
    let before = records(&hub);
    let head = SpoiledHead::of(&hub);
    let refused = connect(&hub).await.login("bob", "not the password").await;
    assert!(refused.is_err());
    head.restore();
    assert_eq!(failed_logins(&hub, "bob"), 0, "counted without its record");
    assert_eq!(records(&hub), before);
    // With the head back, the same failure is counted and recorded together.
    assert!(connect(&hub).await.login("bob", "nope").await.is_err());
    assert_eq!(failed_logins(&hub, "bob"), 1);
    assert_eq!(records(&hub), before + 1);
}

#[tokio::test]
async fn a_login_is_kept_only_with_its_record() {
    let hub = hub().await;
    assert!(connect(&hub).await.login("bob", "nope").await.is_err());
    let before = records(&hub);
    let head = SpoiledHead::of(&hub);
    assert!(connect(&hub).await.login("bob", PASSWORD).await.is_err());
    head.restore();
    assert_eq!(
        failed_logins(&hub, "bob"),
        1,
        "failures cleared without a record"
    );
    assert_eq!(records(&hub), before);
}

/// A logout that cannot be recorded leaves the login token valid.
#[tokio::test]
async fn a_logout_is_made_only_with_its_record() {
    let hub = hub().await;
    let client = connect(&hub).await;
    let (token, _, _) = client.login("bob", PASSWORD).await.expect("login");
    let head = SpoiledHead::of(&hub);
    assert!(client.request(ConsoleRequest::Logout).await.is_err());
    head.restore();
    connect(&hub)
        .await
        .resume(&token)
        .await
        .expect("the token still resumes");
}

#[tokio::test]
async fn clients_links_and_groups_change_only_with_their_records() {
    let hub = hub().await;
    let (ann, _events) = hub.console("ann").await;
    let link = common::enrolment_link(&ann, "Acme").await;
    let acme = store(&hub)
        .client(&team(&hub), "Acme")
        .expect("lookup")
        .expect("client");
    let link_id = store(&hub).links(&acme.id).expect("links")[0].id.clone();
    let before = records(&hub);

    let head = SpoiledHead::of(&hub);
    let asks = [
        ConsoleRequest::AddClient {
            name: "Beta".into(),
        },
        ConsoleRequest::CreateLink {
            client: acme.id.clone(),
            valid_days: None,
        },
        ConsoleRequest::RevokeLink {
            link: link_id.clone(),
        },
        ConsoleRequest::SetGroupDefaults {
            client: None,
            requires: SecretRequirements {
                passcode: true,
                password: true,
            },
        },
    ];
    for ask in asks {
        let what = format!("{ask:?}");
        assert!(
            ann.request(ask).await.is_err(),
            "{what} succeeded unaudited"
        );
    }
    head.restore();

    let s = store(&hub);
    let links = s.links(&acme.id).expect("links");
    let unaudited = changed_without_records([
        (
            "client added",
            s.clients(&team(&hub)).expect("clients").len() != 1,
        ),
        ("link made", links.len() != 1),
        ("link revoked", links.iter().any(|l| l.revoked)),
        (
            "group defaults set",
            !s.list_security_defaults(&team(&hub))
                .expect("groups")
                .is_empty(),
        ),
    ]);
    assert!(
        unaudited.is_empty(),
        "changed without a record: {unaudited:?}"
    );
    assert_eq!(records(&hub), before);
    drop(link);
}

#[tokio::test]
async fn users_change_only_with_their_records() {
    let hub = hub().await;
    let (ann, _events) = hub.console("ann").await;
    let before = records(&hub);
    let head = SpoiledHead::of(&hub);
    let asks = [
        ConsoleRequest::AddUser {
            name: "cat".into(),
            role: Role::Technician,
            email: None,
            password: None,
        },
        ConsoleRequest::SetUserRole {
            user: "bob".into(),
            role: Role::Admin,
        },
        ConsoleRequest::DisableUser { user: "bob".into() },
        ConsoleRequest::RemoveUser { user: "bob".into() },
    ];
    for ask in asks {
        let what = format!("{ask:?}");
        assert!(
            ann.request(ask).await.is_err(),
            "{what} succeeded unaudited"
        );
    }
    head.restore();
    let s = store(&hub);
    let bob = s.team_user(None, "bob").expect("lookup");
    let status = bob
        .as_ref()
        .map(|b| s.user_status(&b.id).expect("status"))
        .unwrap_or_default();
    let unaudited = changed_without_records([
        (
            "user added",
            s.team_user(None, "cat").expect("lookup").is_some(),
        ),
        (
            "role changed",
            bob.as_ref().is_some_and(|b| b.role != Role::Technician),
        ),
        ("user disabled", status.disabled),
        ("user removed", bob.is_none() || status.removed),
    ]);
    assert!(
        unaudited.is_empty(),
        "changed without a record: {unaudited:?}"
    );
    assert_eq!(records(&hub), before);
}

/// An agent enrols only with its record; then access and one-time password settings on its
/// workstation change only with theirs.
#[tokio::test]
async fn a_workstation_and_its_settings_change_only_with_their_records() {
    let hub = hub().await;
    let (ann, _events) = hub.console("ann").await;
    let link = common::enrolment_link(&ann, "Acme").await;

    let head = SpoiledHead::of(&hub);
    let before = records(&hub);
    let agent_dir = tempfile::tempdir().expect("dir");
    let mut refused = TestAgent::start(agent_dir.path(), Some(link.clone()), "pc-refused");
    tokio::time::timeout(
        Duration::from_secs(15),
        refused
            .status
            .wait_for(|s| matches!(s, AgentStatus::Offline { .. })),
    )
    .await
    .expect("the enrolment is answered in time")
    .expect("status");
    refused.stop().await;
    head.restore();
    assert!(
        store(&hub)
            .workstations(&team(&hub), None)
            .expect("list")
            .is_empty(),
        "enrolled without a record"
    );
    assert_eq!(records(&hub), before);

    let dir = tempfile::tempdir().expect("dir");
    let mut agent = TestAgent::start(dir.path(), Some(link), "pc-1");
    let ws = agent.online().await;
    let before = records(&hub);
    let head = SpoiledHead::of(&hub);
    let asks = [
        ConsoleRequest::RequestAccess {
            workstation: ws.clone(),
        },
        ConsoleRequest::SetWorkstationOtp {
            workstation: ws.clone(),
            required: true,
        },
        ConsoleRequest::SetGroupOtp {
            client: None,
            required: true,
        },
    ];
    for ask in asks {
        let what = format!("{ask:?}");
        assert!(
            ann.request(ask).await.is_err(),
            "{what} succeeded unaudited"
        );
    }
    head.restore();
    let row: WorkstationInfo = store(&hub)
        .workstation(&ws)
        .expect("lookup")
        .expect("workstation")
        .info;
    let groups = store(&hub).otp_groups(&team(&hub)).expect("groups");
    let unaudited = changed_without_records([
        ("access requested", row.unattended != UnattendedState::None),
        ("code required of the workstation", row.otp_required),
        ("code required of the team", !groups.is_empty()),
    ]);
    assert!(
        unaudited.is_empty(),
        "changed without a record: {unaudited:?}"
    );
    assert_eq!(records(&hub), before);
    // With the head back the same setting is made and recorded.
    let reply = ann
        .request(ConsoleRequest::SetWorkstationOtp {
            workstation: ws.clone(),
            required: true,
        })
        .await
        .expect("set");
    assert!(
        matches!(reply, ConsoleReply::Workstation { .. }),
        "{reply:?}"
    );
    assert_eq!(records(&hub), before + 1);
    agent.stop().await;
}

/// The names of the kinds whose change was found made.
fn changed_without_records<const N: usize>(found: [(&'static str, bool); N]) -> Vec<&'static str> {
    found
        .into_iter()
        .filter_map(|(kind, changed)| changed.then_some(kind))
        .collect()
}

fn team(hub: &TestHub) -> String {
    store(hub)
        .user_by_name("ann")
        .expect("lookup")
        .expect("ann")
        .info
        .team_id
}

/// `tether admin create-user` on the hub's machine commits the user with its record too.
#[test]
fn the_admin_command_creates_a_user_only_with_its_record() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = home.path().join("hubdata");
    common::bin::create_admin(home.path(), &data, "ann");
    let head = data.join(HEAD_FILE);
    let good = std::fs::read(&head).expect("read the audit head");
    std::fs::write(&head, b"{}").expect("spoil the audit head");
    let out = common::bin::run(
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
    );
    assert!(!out.status.success(), "created without its record");
    std::fs::write(&head, good).expect("restore the audit head");
    let store = tether::hub::store::SqliteStore::open_dir(&data).expect("open the store");
    assert!(
        store.user_by_name("bob").expect("lookup").is_none(),
        "bob was created although his record was refused"
    );
    assert!(store.user_by_name("ann").expect("lookup").is_some());
}
