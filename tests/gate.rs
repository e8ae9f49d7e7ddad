//! The gate (issue 11), tried as an attacker would over the real wire on loopback: a team admin
//! reaches only their own team, an owner reaches every team, and a password-only login that
//! still owes its 2FA enrolment may only enrol or log out. The hub's clock is a `ManualClock`
//! (TOTP steps are stepped, never slept). The whole table is tested in src/hub/dispatch.rs.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{ManualClock, PASSWORD, TestAgent, TestHub, enrolment_link};
use tether::client::{ClientError, HubClient};
use tether::hub::Limits;
use tether::protocol::{
    AuditQuery, AuditRecord, ConsoleReply, ConsoleRequest, CredentialScopes, CredentialTarget,
    ErrorCode, OutboxMessage, Role, SecretRequirements, TwoFactorState, UserTwoFactor,
};
use tether::secrets::totp::TotpSecret;

/// A clock 1 s into a TOTP step, so a test knows which step "now" is.
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

async fn login(hub: &TestHub, user: &str, code: Option<&str>) -> Result<HubClient, ClientError> {
    let (c, _) = HubClient::connect(&hub.url, hub.pin())
        .await
        .expect("connect");
    c.login_with_code(user, PASSWORD, code).await.map(|_| c)
}

fn hub_code<T: std::fmt::Debug>(result: Result<T, ClientError>) -> ErrorCode {
    match result {
        Err(ClientError::Hub(e)) => e.code,
        Err(e) => panic!("expected a hub error, got {e}"),
        Ok(v) => panic!("expected a hub error, got {v:?}"),
    }
}

async fn users(who: &HubClient) -> Vec<UserTwoFactor> {
    match who
        .request(ConsoleRequest::ListUsers {
            page: Default::default(),
        })
        .await
        .expect("users")
    {
        ConsoleReply::Users { users, .. } => users,
        other => panic!("unexpected {other:?}"),
    }
}

async fn audit_by(who: &HubClient, actor: &str) -> Vec<AuditRecord> {
    match who
        .request(ConsoleRequest::SearchAudit {
            query: AuditQuery {
                actor: Some(actor.into()),
                ..AuditQuery::default()
            },
            limit: 500,
            before: None,
            page: Default::default(),
        })
        .await
        .expect("search audit")
    {
        ConsoleReply::Audit { records, .. } => records,
        other => panic!("unexpected {other:?}"),
    }
}

async fn outbox(who: &HubClient) -> Vec<OutboxMessage> {
    match who
        .request(ConsoleRequest::ListOutbox {
            limit: 100,
            page: Default::default(),
        })
        .await
        .expect("outbox")
    {
        ConsoleReply::Outbox { messages, .. } => messages,
        other => panic!("unexpected {other:?}"),
    }
}

fn names(users: &[UserTwoFactor]) -> Vec<&str> {
    users.iter().map(|u| u.name.as_str()).collect()
}

/// Team Alpha (ann, admin; bob, technician) with one workstation that requires one-time
/// passwords, its client, bob's code and an emergency code in the outbox, and support
/// credentials ann issued; team Beta (bea, admin; ben, technician); olga, the hub's owner, in a
/// team of her own.
struct TwoTeams {
    hub: TestHub,
    clock: Arc<ManualClock>,
    ann: HubClient,
    bob: HubClient,
    bea: HubClient,
    ben: HubClient,
    ws: String,
    client: String,
    credential: String,
    agent: TestAgent,
    _agent_dir: tempfile::TempDir,
}

async fn two_teams() -> TwoTeams {
    let clock = clock_at_step_start();
    let hub = TestHub::start_clocked(
        tempfile::tempdir().expect("tempdir"),
        Limits::default(),
        clock.clone(),
    )
    .await;
    for (name, role, team) in [
        ("ann", Role::Admin, "Alpha"),
        ("bob", Role::Technician, "Alpha"),
        ("bea", Role::Admin, "Beta"),
        ("ben", Role::Technician, "Beta"),
        ("olga", Role::Owner, "Hub"),
    ] {
        hub.add_user(name, role, team).await;
    }
    let ann = login(&hub, "ann", None).await.expect("ann");
    let bob = login(&hub, "bob", None).await.expect("bob");
    let bea = login(&hub, "bea", None).await.expect("bea");
    let ben = login(&hub, "ben", None).await.expect("ben");
    let link = enrolment_link(&ann, "Acme").await;
    let agent_dir = tempfile::tempdir().expect("dir");
    let mut agent = TestAgent::start_with(
        agent_dir.path(),
        Some(link),
        "pc-alpha",
        tether::agent::consent::ConsentPolicy::Accept,
    );
    let ws = agent.online().await;
    let ConsoleReply::Clients { clients, .. } = ann
        .request(ConsoleRequest::ListClients {
            page: Default::default(),
        })
        .await
        .expect("clients")
    else {
        panic!("no clients")
    };
    let client = clients[0].id.clone();
    ann.request(ConsoleRequest::SetWorkstationOtp {
        workstation: ws.clone(),
        required: true,
    })
    .await
    .expect("require codes");
    // No mail server: both codes wait in the outbox.
    for emergency in [None, Some("the phone line is down".to_owned())] {
        bob.request(ConsoleRequest::RequestOtp {
            workstation: ws.clone(),
            emergency,
        })
        .await
        .expect("a code");
    }
    let ConsoleReply::CredentialsIssued { credential, .. } = ann
        .request(ConsoleRequest::IssueCredentials {
            target: CredentialTarget::Workstation {
                workstation: ws.clone(),
            },
            minutes: 60,
            scopes: CredentialScopes::default(),
        })
        .await
        .expect("credentials")
    else {
        panic!("no credentials")
    };
    TwoTeams {
        hub,
        clock,
        ann,
        bob,
        bea,
        ben,
        ws,
        client,
        credential: credential.id,
        agent,
        _agent_dir: agent_dir,
    }
}

#[tokio::test]
async fn another_teams_users_are_not_found_for_its_admin() {
    let t = two_teams().await;
    let reset = |user: &str| ConsoleRequest::ResetUserTwoFactor {
        user: user.into(),
        password: PASSWORD.into(),
    };
    let require = |user: &str| ConsoleRequest::SetUserTwoFactor {
        user: user.into(),
        required: true,
        password: PASSWORD.into(),
    };

    // Users: bea lists her own team only, and Alpha's people answer as a name that does not
    // exist would (bob's 2FA is neither reset nor required).
    assert_eq!(names(&users(&t.bea).await), ["bea", "ben"]);
    for request in [reset("bob"), require("bob"), reset("nobody")] {
        assert_eq!(hub_code(t.bea.request(request).await), ErrorCode::NotFound);
    }
    assert!(
        users(&t.ann)
            .await
            .iter()
            .all(|u| u.name != "bob" || !u.required),
        "bob is not required to use 2FA"
    );
    // Technicians manage nobody; a team admin changes no hub-wide setting.
    assert_eq!(
        hub_code(
            t.ben
                .request(ConsoleRequest::ListUsers {
                    page: Default::default()
                })
                .await
        ),
        ErrorCode::Forbidden
    );
    assert_eq!(
        hub_code(
            t.ann
                .request(ConsoleRequest::SetGlobalTwoFactor {
                    required: true,
                    password: PASSWORD.into(),
                })
                .await
        ),
        ErrorCode::Forbidden
    );
    // Within her own team the admin still manages (the refusals above are about teams).
    t.bea.request(require("ben")).await.expect("require ben");
    t.agent.stop().await;
}

#[tokio::test]
async fn another_teams_audit_is_not_shown_to_its_admin_or_technician() {
    let t = two_teams().await;
    // Audit: neither Beta's admin nor its technician sees a record of Alpha's.
    assert!(!audit_by(&t.ann, "bob").await.is_empty());
    for who in [&t.bea, &t.ben] {
        assert!(audit_by(who, "bob").await.is_empty());
        assert!(audit_by(who, "ann").await.is_empty());
    }
    assert!(!audit_by(&t.bea, "ben").await.is_empty());
    t.agent.stop().await;
}

#[tokio::test]
async fn a_code_in_the_outbox_is_shown_only_to_its_recipients() {
    let t = two_teams().await;
    // Outbox: bob's code is for bob; the emergency code for Alpha's admins. Nobody else,
    // whatever their role, ever sees either.
    let kinds = |messages: Vec<OutboxMessage>| {
        let mut kinds: Vec<String> = messages.into_iter().map(|m| m.kind).collect();
        kinds.sort();
        kinds
    };
    assert_eq!(kinds(outbox(&t.bob).await), ["otp"]);
    assert_eq!(kinds(outbox(&t.ann).await), ["emergency"]);
    assert!(outbox(&t.bea).await.is_empty());
    assert!(outbox(&t.ben).await.is_empty());
    t.agent.stop().await;
}

/// These were scoped to the team before the gate; kept here so they stay so.
#[tokio::test]
async fn another_teams_groups_workstations_and_credentials_are_not_found() {
    let t = two_teams().await;
    // Groups, OTP requirements, workstations and credentials of Alpha: not found in Beta.
    let not_found = [
        ConsoleRequest::SetGroupDefaults {
            client: Some(t.client.clone()),
            requires: SecretRequirements::default(),
        },
        ConsoleRequest::SetGroupOtp {
            client: Some(t.client.clone()),
            required: false,
        },
        ConsoleRequest::SetWorkstationOtp {
            workstation: t.ws.clone(),
            required: false,
        },
        ConsoleRequest::IssueCredentials {
            target: CredentialTarget::Workstation {
                workstation: t.ws.clone(),
            },
            minutes: 60,
            scopes: CredentialScopes {
                control: true,
                ..CredentialScopes::default()
            },
        },
        ConsoleRequest::RevokeCredentials {
            credential: t.credential.clone(),
        },
        ConsoleRequest::RegenerateCredentials {
            credential: t.credential.clone(),
        },
        ConsoleRequest::ListLinks {
            client: t.client.clone(),
            page: Default::default(),
        },
    ];
    for request in not_found {
        let kind = request.kind();
        assert_eq!(
            hub_code(t.bea.request(request).await),
            ErrorCode::NotFound,
            "{kind}"
        );
    }
    for request in [
        ConsoleRequest::RequestOtp {
            workstation: t.ws.clone(),
            emergency: None,
        },
        ConsoleRequest::Connect {
            workstation: t.ws.clone(),
            secret: None,
            view_only: true,
            otp: None,
        },
    ] {
        assert_eq!(hub_code(t.ben.request(request).await), ErrorCode::NotFound);
    }
    let ConsoleReply::Credentials { credentials, .. } = t
        .bea
        .request(ConsoleRequest::ListCredentials {
            page: Default::default(),
        })
        .await
        .expect("credentials")
    else {
        panic!("no credentials")
    };
    assert!(credentials.is_empty());
    let ConsoleReply::Groups { groups, .. } = t
        .bea
        .request(ConsoleRequest::ListGroups {
            page: Default::default(),
        })
        .await
        .expect("groups")
    else {
        panic!("no groups")
    };
    assert!(
        groups
            .iter()
            .all(|g| g.client_id.as_ref() != Some(&t.client))
    );
    t.agent.stop().await;
}

#[tokio::test]
async fn the_owner_sees_and_manages_every_team() {
    let t = two_teams().await;
    let olga = login(&t.hub, "olga", None).await.expect("olga");
    assert_eq!(
        names(&users(&olga).await),
        ["ann", "bea", "ben", "bob", "olga"]
    );
    assert!(!audit_by(&olga, "bob").await.is_empty());
    assert!(!audit_by(&olga, "bea").await.is_empty());
    // An owner is still no recipient of other people's codes.
    assert!(outbox(&olga).await.is_empty());
    olga.request(ConsoleRequest::SetUserTwoFactor {
        user: "bob".into(),
        required: true,
        password: PASSWORD.into(),
    })
    .await
    .expect("the owner requires bob's 2FA");
    let bob = users(&olga)
        .await
        .into_iter()
        .find(|u| u.name == "bob")
        .expect("bob");
    assert_eq!(bob.state, TwoFactorState::Pending);
    olga.request(ConsoleRequest::SetGlobalTwoFactor {
        required: false,
        password: PASSWORD.into(),
    })
    .await
    .expect("the owner changes hub-wide settings");
    // A team admin cannot touch the owner's account, even where the owner is in their team.
    t.hub.add_user("oscar", Role::Owner, "Alpha").await;
    assert_eq!(
        hub_code(
            t.ann
                .request(ConsoleRequest::ResetUserTwoFactor {
                    user: "oscar".into(),
                    password: PASSWORD.into(),
                })
                .await
        ),
        ErrorCode::Forbidden
    );
    t.agent.stop().await;
}

#[tokio::test]
async fn a_password_only_login_owing_2fa_may_only_enrol_or_log_out() {
    let t = two_teams().await;
    t.ann
        .request(ConsoleRequest::SetUserTwoFactor {
            user: "bob".into(),
            required: true,
            password: PASSWORD.into(),
        })
        .await
        .expect("require bob");
    // The password alone is accepted, but the login is unfinished.
    let bob = login(&t.hub, "bob", None).await.expect("password only");
    let control = || ConsoleRequest::IssueCredentials {
        target: CredentialTarget::Workstation {
            workstation: t.ws.clone(),
        },
        minutes: 60,
        scopes: CredentialScopes {
            control: true,
            ..CredentialScopes::default()
        },
    };
    let connect = || ConsoleRequest::Connect {
        workstation: t.ws.clone(),
        secret: None,
        view_only: false,
        otp: None,
    };
    let refused = || {
        [
            connect(),
            control(),
            ConsoleRequest::ListClients {
                page: Default::default(),
            },
            ConsoleRequest::ListWorkstations {
                client: None,
                filter: None,
                page: Default::default(),
            },
            ConsoleRequest::ListSessions {
                page: Default::default(),
            },
            ConsoleRequest::ListOutbox {
                limit: 10,
                page: Default::default(),
            },
            ConsoleRequest::RequestOtp {
                workstation: t.ws.clone(),
                emergency: None,
            },
        ]
    };
    for request in refused() {
        let kind = request.kind();
        assert_eq!(
            hub_code(bob.request(request).await),
            ErrorCode::TwoFactorSetupRequired,
            "{kind}"
        );
    }

    // Enrolment is allowed, and once 2FA is active this connection, which never showed a
    // code at login, still gets nothing: above all no control credentials for a guest.
    let ConsoleReply::TwoFactorEnrolment { secret, .. } = bob
        .request(ConsoleRequest::TwoFactorEnable)
        .await
        .expect("enable")
    else {
        panic!("no enrolment")
    };
    let secret = TotpSecret::from_base32(secret.expose()).expect("secret");
    let step = step_of(&t.clock);
    bob.request(ConsoleRequest::TwoFactorConfirm {
        code: code(&secret, step).into(),
    })
    .await
    .expect("confirm");
    for request in refused() {
        let kind = request.kind();
        assert_eq!(
            hub_code(bob.request(request).await),
            ErrorCode::TwoFactorRequired,
            "{kind}"
        );
    }
    let ConsoleReply::TwoFactor { status } = bob
        .request(ConsoleRequest::TwoFactorStatus)
        .await
        .expect("status")
    else {
        panic!("no status")
    };
    assert_eq!(status.state, TwoFactorState::Active);
    // The confirming code is spent: it cannot finish a login either.
    assert_eq!(
        hub_code(
            login(&t.hub, "bob", Some(&code(&secret, step)))
                .await
                .map(|_| ())
        ),
        ErrorCode::TwoFactorRequired
    );
    bob.request(ConsoleRequest::Logout).await.expect("logout");

    // A login with a fresh code is finished: now credentials are issued.
    t.clock.advance(Duration::from_secs(30));
    let bob = login(&t.hub, "bob", Some(&code(&secret, step_of(&t.clock))))
        .await
        .expect("with a code");
    let reply = bob.request(control()).await.expect("credentials");
    assert!(
        matches!(reply, ConsoleReply::CredentialsIssued { .. }),
        "{reply:?}"
    );
    t.agent.stop().await;
}

/// 2FA not required: a technician turns it on from a connection logged in with the password
/// alone. That connection proved no code at login, so from then on it gets nothing either.
#[tokio::test]
async fn enrolling_on_a_password_only_connection_does_not_finish_its_login() {
    let t = two_teams().await;
    let ConsoleReply::TwoFactorEnrolment { secret, .. } = t
        .bob
        .request(ConsoleRequest::TwoFactorEnable)
        .await
        .expect("enable")
    else {
        panic!("no enrolment")
    };
    let secret = TotpSecret::from_base32(secret.expose()).expect("secret");
    t.bob
        .request(ConsoleRequest::TwoFactorConfirm {
            code: code(&secret, step_of(&t.clock)).into(),
        })
        .await
        .expect("confirm");
    for request in [
        ConsoleRequest::IssueCredentials {
            target: CredentialTarget::Workstation {
                workstation: t.ws.clone(),
            },
            minutes: 60,
            scopes: CredentialScopes {
                control: true,
                ..CredentialScopes::default()
            },
        },
        ConsoleRequest::ListClients {
            page: Default::default(),
        },
    ] {
        let kind = request.kind();
        assert_eq!(
            hub_code(t.bob.request(request).await),
            ErrorCode::TwoFactorRequired,
            "{kind}"
        );
    }
    t.bob
        .request(ConsoleRequest::Logout)
        .await
        .expect("logging out is still allowed");
    t.agent.stop().await;
}
