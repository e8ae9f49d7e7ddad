//! Access control end to end on loopback: a real hub, real agents (their end users played by
//! the test through the agent's consent queue) and technicians' connections.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{ManualClock, TestAgent, TestHub, answer_question, enrolment_link, wait_event};
use tether::agent::consent::{Consent, ConsentPolicy};
use tether::client::{ClientError, HubClient};
use tether::hub::Limits;
use tether::protocol::{
    AccessEvent, AuthMethod, ConsoleReply, ConsoleRequest, ErrorCode, HubEvent, Presence,
    ProtocolError, Role, SecretKind, SessionInfo, UnattendedState, WorkstationInfo,
};
use tokio::sync::mpsc::UnboundedReceiver;

const SECOND: Duration = Duration::from_secs(1);

fn hub_error(e: ClientError) -> ProtocolError {
    match e {
        ClientError::Hub(p) => p,
        other => panic!("expected an error from the hub, got {other}"),
    }
}

async fn request(tech: &HubClient, ws: &str) -> Result<WorkstationInfo, ProtocolError> {
    match tech
        .request(ConsoleRequest::RequestAccess {
            workstation: ws.into(),
        })
        .await
    {
        Ok(ConsoleReply::Workstation { workstation }) => Ok(workstation),
        Ok(other) => panic!("unexpected {other:?}"),
        Err(e) => Err(hub_error(e)),
    }
}

async fn withdraw(tech: &HubClient, ws: &str) -> WorkstationInfo {
    match tech
        .request(ConsoleRequest::WithdrawAccess {
            workstation: ws.into(),
        })
        .await
        .expect("withdraw")
    {
        ConsoleReply::Workstation { workstation } => workstation,
        other => panic!("unexpected {other:?}"),
    }
}

async fn connect(
    tech: &HubClient,
    ws: &str,
    secret: Option<&str>,
) -> Result<SessionInfo, ProtocolError> {
    let body = ConsoleRequest::Connect {
        workstation: ws.into(),
        secret: secret.map(Into::into),
        view_only: false,
        otp: None,
    };
    match tech.request(body).await {
        Ok(ConsoleReply::Session { session }) => Ok(session),
        Ok(other) => panic!("unexpected {other:?}"),
        Err(e) => Err(hub_error(e)),
    }
}

async fn end(tech: &HubClient, session: &SessionInfo) {
    tech.request(ConsoleRequest::EndSession {
        session: session.id.clone(),
    })
    .await
    .expect("end session");
}

async fn wait_state(
    events: &mut UnboundedReceiver<HubEvent>,
    ws: &str,
    state: UnattendedState,
) -> WorkstationInfo {
    match wait_event(events, Duration::from_secs(5), |e| {
        matches!(e, HubEvent::Workstation { workstation: w } if w.id == ws && w.unattended == state)
    })
    .await
    {
        HubEvent::Workstation { workstation } => workstation,
        _ => unreachable!(),
    }
}

/// Wait until the agent's own policy shows `state`.
async fn agent_state(agent: &TestAgent, state: UnattendedState) {
    let mut shown = agent.shared.shown.subscribe();
    tokio::time::timeout(Duration::from_secs(5), async {
        while agent.shared.policy_snapshot().unattended != state {
            shown.changed().await.expect("agent alive");
        }
    })
    .await
    .expect("agent reached the state in time");
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

/// A hub with technicians ann (admin), bob and cat of one team, and one agent.
struct Rig {
    hub: TestHub,
    ann: (HubClient, UnboundedReceiver<HubEvent>),
    agent: TestAgent,
    ws: String,
    _agent_dir: tempfile::TempDir,
}

async fn rig_with(consent: Consent, hub: TestHub) -> Rig {
    hub.add_user("ann", Role::Admin, "Desk").await;
    hub.add_user("bob", Role::Technician, "Desk").await;
    hub.add_user("cat", Role::Technician, "Desk").await;
    let (ann, mut events) = hub.console("ann").await;
    let link = enrolment_link(&ann, "Acme").await;
    let agent_dir = tempfile::tempdir().expect("tempdir");
    let mut agent = TestAgent::start_consent(agent_dir.path(), Some(link), "reception-pc", consent);
    let ws = agent.online().await;
    wait_event(&mut events, Duration::from_secs(5), |e| {
        matches!(e, HubEvent::Workstation { workstation: w } if w.id == ws && w.presence == Presence::Online)
    })
    .await;
    Rig {
        hub,
        ann: (ann, events),
        agent,
        ws,
        _agent_dir: agent_dir,
    }
}

async fn rig(consent: ConsentPolicy) -> Rig {
    rig_with(Consent::new(consent), TestHub::start().await).await
}

#[tokio::test]
async fn unattended_access_walks_every_transition() {
    let mut r = rig(ConsentPolicy::Ask).await;
    let (ann, events) = (&r.ann.0, &mut r.ann.1);
    let ws = r.ws.clone();

    // none -> requested -> granted (the end user says yes twice: grant, then allow changes).
    assert_eq!(
        request(ann, &ws).await.expect("request").unattended,
        UnattendedState::Requested
    );
    let again = request(ann, &ws)
        .await
        .expect_err("a second request while one is open");
    assert_eq!(again.code, ErrorCode::Conflict);
    let asked = answer_question(&r.agent.shared, true).await;
    assert!(
        asked.contains("ann") && asked.contains("unattended"),
        "{asked}"
    );
    let confirm = answer_question(&r.agent.shared, true).await;
    assert!(confirm.to_lowercase().contains("changes"), "{confirm}");
    wait_state(events, &ws, UnattendedState::Granted).await;
    agent_state(&r.agent, UnattendedState::Granted).await;

    // While granted, a technician connects with no prompt.
    let (bob, _) = r.hub.console("bob").await;
    let session = connect(&bob, &ws, None).await.expect("unattended connect");
    assert_eq!(session.method, AuthMethod::Unattended);
    assert!(
        r.agent.shared.consent.current().is_none(),
        "no one was asked"
    );

    // granted -> withdrawn, by any technician; the agent follows.
    assert_eq!(
        withdraw(&bob, &ws).await.unattended,
        UnattendedState::Withdrawn
    );
    agent_state(&r.agent, UnattendedState::Withdrawn).await;
    // Without a grant the end user is asked again, attended.
    let (refused, question) = tokio::join!(
        connect(&bob, &ws, None),
        answer_question(&r.agent.shared, false)
    );
    assert!(
        question.contains("bob") && question.contains("connect"),
        "{question}"
    );
    assert!(
        refused
            .expect_err("the end user said no")
            .message
            .contains("denied")
    );

    // withdrawn -> requested -> denied.
    request(ann, &ws)
        .await
        .expect("request again after a withdrawal");
    answer_question(&r.agent.shared, false).await;
    wait_state(events, &ws, UnattendedState::Denied).await;

    // denied -> requested -> granted -> revoked on the agent.
    request(ann, &ws)
        .await
        .expect("request again after a denial");
    answer_question(&r.agent.shared, true).await;
    answer_question(&r.agent.shared, true).await;
    wait_state(events, &ws, UnattendedState::Granted).await;
    r.agent
        .shared
        .apply_access_event(AccessEvent::Revoke)
        .expect("revoke");
    wait_state(events, &ws, UnattendedState::Revoked).await;

    // revoked -> requested; a yes to the grant and a no to changes is a denial.
    request(ann, &ws)
        .await
        .expect("request again after a revocation");
    answer_question(&r.agent.shared, true).await;
    answer_question(&r.agent.shared, false).await;
    wait_state(events, &ws, UnattendedState::Denied).await;

    // Withdrawing what is not granted is refused with the reason.
    let e = hub_error(
        ann.request(ConsoleRequest::WithdrawAccess {
            workstation: ws.clone(),
        })
        .await
        .expect_err("refused"),
    );
    assert_eq!(e.code, ErrorCode::Conflict);

    let actions = audit_actions(ann).await;
    for a in [
        "access.request",
        "access.grant",
        "access.deny",
        "access.withdraw",
        "access.revoke",
        "session.start",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "audit lacks {a}: {actions:?}"
        );
    }
}

#[tokio::test]
async fn attended_accept_deny_and_no_answer() {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    let (ann, _) = hub.console("ann").await;
    let link = enrolment_link(&ann, "Acme").await;
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let mut yes = TestAgent::start_with(
        dirs[0].path(),
        Some(link.clone()),
        "says-yes",
        ConsentPolicy::Accept,
    );
    let mut no = TestAgent::start_with(
        dirs[1].path(),
        Some(link.clone()),
        "says-no",
        ConsentPolicy::Deny,
    );
    let quiet = Consent::with_timeout(ConsentPolicy::Ask, Duration::from_millis(300));
    let mut away = TestAgent::start_consent(dirs[2].path(), Some(link), "nobody-there", quiet);
    let (yes_ws, no_ws, away_ws) = (yes.online().await, no.online().await, away.online().await);

    let session = connect(&ann, &yes_ws, None).await.expect("accepted");
    assert_eq!(session.method, AuthMethod::Attended);
    assert!(session.secrets.is_empty());
    let denied = connect(&ann, &no_ws, None).await.expect_err("denied");
    assert_eq!(denied.code, ErrorCode::Forbidden);
    assert!(denied.message.contains("denied"), "{}", denied.message);
    let silent = connect(&ann, &away_ws, None).await.expect_err("no answer");
    assert_eq!(silent.code, ErrorCode::Forbidden);
    assert!(
        silent.message.contains("did not answer"),
        "{}",
        silent.message
    );
    assert!(
        away.shared.consent.current().is_none(),
        "the unanswered question left the queue"
    );

    let actions = audit_actions(&ann).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "connect.refused").count(),
        2,
        "{actions:?}"
    );
    assert!(actions.iter().any(|a| a == "session.start"));
}

/// Three technicians in session; `cut` takes access away; every console hears of every
/// session's end within a second, with the reason.
async fn three_sessions_end_together(r: &mut Rig, cut: impl AsyncFnOnce(&Rig), reason: &str) {
    let ws = r.ws.clone();
    let mut consoles = Vec::new();
    for name in ["ann", "bob", "cat"] {
        consoles.push(r.hub.console(name).await);
    }
    let mut ids = HashSet::new();
    for (tech, _) in &consoles {
        let s = connect(tech, &ws, None).await.expect("connect");
        assert_eq!(s.method, AuthMethod::Unattended);
        ids.insert(s.id);
    }
    assert_eq!(ids.len(), 3);
    cut(r).await;
    for (_, events) in &mut consoles {
        let mut ended = HashSet::new();
        tokio::time::timeout(SECOND, async {
            while ended.len() < 3 {
                if let Some(HubEvent::Session { session }) = events.recv().await
                    && session.ended_at.is_some()
                    && ids.contains(&session.id)
                {
                    let why = session.end_reason.unwrap_or_default();
                    assert!(why.contains(reason), "{why:?} should say {reason:?}");
                    ended.insert(session.id);
                }
            }
        })
        .await
        .expect("all three sessions ended within one second");
    }
    let (tech, _) = &consoles[0];
    match tech
        .request(ConsoleRequest::ListSessions {
            page: Default::default(),
        })
        .await
        .expect("sessions")
    {
        ConsoleReply::Sessions { sessions, .. } => assert!(sessions.is_empty(), "{sessions:?}"),
        other => panic!("unexpected {other:?}"),
    }
}

async fn grant(r: &mut Rig) {
    request(&r.ann.0, &r.ws).await.expect("request");
    answer_question(&r.agent.shared, true).await;
    answer_question(&r.agent.shared, true).await;
    wait_state(&mut r.ann.1, &r.ws.clone(), UnattendedState::Granted).await;
}

#[tokio::test]
async fn withdraw_and_revoke_end_every_live_session_within_a_second() {
    let mut r = rig(ConsentPolicy::Ask).await;
    grant(&mut r).await;
    three_sessions_end_together(
        &mut r,
        async |r: &Rig| {
            let (bob, _) = r.hub.console("bob").await;
            withdraw(&bob, &r.ws).await;
        },
        "withdrawn by bob",
    )
    .await;

    grant(&mut r).await;
    three_sessions_end_together(
        &mut r,
        async |r: &Rig| {
            r.agent
                .shared
                .apply_access_event(AccessEvent::Revoke)
                .expect("revoke on the agent");
        },
        "revoked on the workstation",
    )
    .await;
    let ws = r.ws.clone();
    wait_event(&mut r.ann.1, Duration::from_secs(5), |e| {
        matches!(e, HubEvent::Workstation { workstation: w }
            if w.id == ws && w.unattended == UnattendedState::Revoked && w.presence == Presence::Online)
    })
    .await;
}

#[tokio::test]
async fn secrets_either_works_refresh_kills_the_old_passcode() {
    let mut r = rig(ConsentPolicy::Accept).await;
    let ws = r.ws.clone();
    r.agent
        .shared
        .set_passcode_enabled(true)
        .await
        .expect("passcode on");
    r.agent
        .shared
        .set_password("correct horse battery".into())
        .await
        .expect("password");
    let shown = wait_event(&mut r.ann.1, Duration::from_secs(5), |e| {
        matches!(e, HubEvent::Workstation { workstation: w } if w.requires.passcode && w.requires.password)
    })
    .await;
    assert!(
        matches!(shown, HubEvent::Workstation { .. }),
        "consoles see what the workstation requires"
    );
    let passcode = r
        .agent
        .shared
        .policy()
        .passcode()
        .expect("passcode")
        .formatted()
        .expose()
        .to_owned();
    let ann = &r.ann.0;

    let missing = connect(ann, &ws, None)
        .await
        .expect_err("a secret is required");
    assert!(missing.message.contains("requires"), "{}", missing.message);
    let s = connect(ann, &ws, Some(&passcode))
        .await
        .expect("the passcode works");
    assert_eq!(s.secrets, vec![SecretKind::Passcode]);
    end(ann, &s).await;
    let lower = passcode.to_lowercase().replace('-', "");
    end(
        ann,
        &connect(ann, &ws, Some(&lower))
            .await
            .expect("any case, no dashes"),
    )
    .await;
    let s = connect(ann, &ws, Some("correct horse battery"))
        .await
        .expect("the password works");
    assert_eq!(s.secrets, vec![SecretKind::Password]);
    end(ann, &s).await;
    let wrong = connect(ann, &ws, Some("not-it-at-all"))
        .await
        .expect_err("wrong");
    assert_eq!(wrong.code, ErrorCode::Forbidden);
    assert_eq!(wrong.refusal, Some(tether::protocol::Refusal::WrongSecret));
    assert!(wrong.message.contains("wrong"), "{}", wrong.message);

    let fresh = r
        .agent
        .shared
        .refresh_passcode()
        .await
        .expect("refresh")
        .expose()
        .to_owned();
    assert_ne!(fresh, passcode);
    let stale = connect(ann, &ws, Some(&passcode))
        .await
        .expect_err("the old passcode stops working at once");
    assert!(stale.message.contains("wrong"), "{}", stale.message);
    end(
        ann,
        &connect(ann, &ws, Some(&fresh))
            .await
            .expect("the new one works"),
    )
    .await;
}

/// A rig on a hub whose clock moves only when told, with an agent that accepts everyone and
/// requires its temporary passcode (known to the consoles). Returns the passcode in force.
async fn clocked_passcode_rig() -> (Rig, std::sync::Arc<ManualClock>, String) {
    let clock = ManualClock::new();
    let hub = TestHub::start_clocked(
        tempfile::tempdir().expect("tempdir"),
        Limits::default(),
        clock.clone(),
    )
    .await;
    let mut r = rig_with(Consent::new(ConsentPolicy::Accept), hub).await;
    r.agent
        .shared
        .set_passcode_enabled(true)
        .await
        .expect("passcode on");
    wait_event(
        &mut r.ann.1,
        Duration::from_secs(5),
        |e| matches!(e, HubEvent::Workstation { workstation: w } if w.requires.passcode),
    )
    .await;
    let passcode = r
        .agent
        .shared
        .policy()
        .passcode()
        .expect("passcode")
        .formatted()
        .expose()
        .to_owned();
    (r, clock, passcode)
}

#[tokio::test]
async fn lockout_doubles_and_survives_a_hub_restart() {
    let (r, clock, passcode) = clocked_passcode_rig().await;
    let ws = r.ws.clone();
    let (bob, _) = r.hub.console("bob").await;

    for n in 1..=4 {
        let e = connect(&bob, &ws, Some("WRONG-WRONG"))
            .await
            .expect_err("wrong");
        assert_eq!(
            (n, e.code, e.retry_after_secs),
            (n, ErrorCode::Forbidden, None)
        );
    }
    let fifth = connect(&bob, &ws, Some("WRONG-WRONG"))
        .await
        .expect_err("wrong");
    assert_eq!(
        fifth.retry_after_secs,
        Some(1),
        "the fifth failure starts a 1 s wait"
    );
    let locked = connect(&bob, &ws, Some(&passcode))
        .await
        .expect_err("even the right passcode waits");
    assert_eq!(
        (locked.code, locked.retry_after_secs),
        (ErrorCode::RateLimited, Some(1))
    );
    // Another technician is not locked out by bob's failures.
    let ann_session = connect(&r.ann.0, &ws, Some(&passcode))
        .await
        .expect("ann is not locked");
    end(&r.ann.0, &ann_session).await;

    clock.advance(Duration::from_secs(1));
    let sixth = connect(&bob, &ws, Some("WRONG-WRONG"))
        .await
        .expect_err("wrong");
    assert_eq!(sixth.retry_after_secs, Some(2), "each wait doubles");
    clock.advance(Duration::from_secs(2));
    let seventh = connect(&bob, &ws, Some("WRONG-WRONG"))
        .await
        .expect_err("wrong");
    assert_eq!(seventh.retry_after_secs, Some(4));

    // Restart the hub on the same data: the lock-out is still in force. The new hub listens
    // on a new port, so the agent (same identity) is pointed at it.
    let Rig {
        hub,
        agent,
        ann,
        _agent_dir: agent_dir,
        ..
    } = r;
    drop((bob, ann));
    agent.stop().await;
    let dir = hub.stop().await;
    let hub = TestHub::start_clocked(dir, Limits::default(), clock.clone()).await;
    let identity = tether::agent::Identity::load(agent_dir.path()).expect("identity");
    assert_eq!(
        identity.fingerprint,
        hub.hub.fingerprint(),
        "same certificate after the restart"
    );
    let moved = tether::agent::Identity {
        hub: hub.url.clone(),
        ..identity
    };
    std::fs::write(
        agent_dir.path().join("identity.json"),
        serde_json::to_vec(&moved).expect("json"),
    )
    .expect("write");
    let mut agent = TestAgent::start_with(
        agent_dir.path(),
        None,
        "reception-pc",
        ConsentPolicy::Accept,
    );
    assert_eq!(agent.online().await, ws);
    let (bob, _) = hub.console("bob").await;
    let passcode = agent
        .shared
        .policy()
        .passcode()
        .expect("passcode")
        .formatted()
        .expose()
        .to_owned();
    let still = connect(&bob, &ws, Some(&passcode))
        .await
        .expect_err("still locked after a restart");
    assert_eq!(still.code, ErrorCode::RateLimited);
    assert!(still.retry_after_secs.is_some_and(|s| s <= 4), "{still:?}");

    clock.advance(Duration::from_secs(4));
    let s = connect(&bob, &ws, Some(&passcode))
        .await
        .expect("allowed once the wait is over");
    end(&bob, &s).await;
    let e = connect(&bob, &ws, Some("WRONG-WRONG"))
        .await
        .expect_err("wrong");
    assert_eq!(e.retry_after_secs, None, "a success reset the count");
    let actions = audit_actions(&bob).await;
    assert!(
        actions.iter().any(|a| a == "connect.lockout")
            && actions.iter().any(|a| a == "connect.locked")
    );
}

#[tokio::test]
async fn ten_failures_by_anyone_replace_the_passcode() {
    let (r, _clock, before) = clocked_passcode_rig().await;
    let ws = r.ws.clone();
    let (bob, _) = r.hub.console("bob").await;
    let (cat, _) = r.hub.console("cat").await;
    let mut shown = r.agent.shared.shown.subscribe();
    shown.borrow_and_update();
    for i in 0..10 {
        let tech = [&r.ann.0, &bob, &cat][i % 3];
        let e = connect(tech, &ws, Some("WRONG-WRONG"))
            .await
            .expect_err("wrong");
        assert_eq!(e.code, ErrorCode::Forbidden, "attempt {i}");
    }
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let now = r
                .agent
                .shared
                .policy()
                .passcode()
                .map(|p| p.formatted().expose().to_owned());
            if now.as_deref() != Some(before.as_str()) {
                return;
            }
            shown.changed().await.expect("agent alive");
        }
    })
    .await
    .expect("the passcode was replaced after 10 failures");
    let old = connect(&r.ann.0, &ws, Some(&before))
        .await
        .expect_err("the old passcode is dead");
    assert!(old.message.contains("wrong"), "{}", old.message);
    assert!(
        audit_actions(&r.ann.0)
            .await
            .iter()
            .any(|a| a == "passcode.replace")
    );
}

#[tokio::test]
async fn group_defaults_apply_at_enrolment() {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    hub.add_user("bob", Role::Technician, "Desk").await;
    let (ann, mut events) = hub.console("ann").await;
    let (bob, _) = hub.console("bob").await;
    let link = enrolment_link(&ann, "Bank").await;
    let requires = tether::protocol::SecretRequirements {
        passcode: true,
        password: false,
    };
    let denied = bob
        .request(ConsoleRequest::SetGroupDefaults {
            client: Some("Bank".into()),
            requires,
        })
        .await;
    assert_eq!(
        hub_error(denied.expect_err("technicians may not")).code,
        ErrorCode::Forbidden
    );
    ann.request(ConsoleRequest::SetGroupDefaults {
        client: Some("Bank".into()),
        requires,
    })
    .await
    .expect("set");
    match ann
        .request(ConsoleRequest::ListGroups {
            page: Default::default(),
        })
        .await
        .expect("groups")
    {
        ConsoleReply::Groups { groups, .. } => {
            assert_eq!(groups.len(), 1);
            assert_eq!(groups[0].client_name.as_deref(), Some("Bank"));
            assert!(groups[0].requires.passcode);
        }
        other => panic!("unexpected {other:?}"),
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let mut agent =
        TestAgent::start_with(dir.path(), Some(link), "teller-1", ConsentPolicy::Accept);
    let ws = agent.online().await;
    wait_event(&mut events, Duration::from_secs(5), |e| {
        matches!(e, HubEvent::Workstation { workstation: w } if w.id == ws && w.requires.passcode)
    })
    .await;
    assert!(
        agent.shared.policy().passcode_on(),
        "the group turned the passcode on at enrolment"
    );
    let e = connect(&ann, &ws, None)
        .await
        .expect_err("the group requires the passcode");
    assert!(e.message.contains("requires"), "{}", e.message);
}

#[tokio::test]
async fn a_session_nobody_watches_ends_and_sessions_list() {
    let limits = Limits {
        session_idle: Duration::from_millis(400),
        ..Limits::default()
    };
    let hub = TestHub::start_in(tempfile::tempdir().expect("tempdir"), limits).await;
    let mut r = rig_with(Consent::new(ConsentPolicy::Accept), hub).await;
    // A scripted connection (as `tether ctl connect` makes) opens a session and goes away.
    let (script, _) = r.hub.console("bob").await;
    let session = connect(&script, &r.ws, None).await.expect("connect");
    match r
        .ann
        .0
        .request(ConsoleRequest::ListSessions {
            page: Default::default(),
        })
        .await
        .expect("sessions")
    {
        ConsoleReply::Sessions { sessions, .. } => assert_eq!(sessions[0].id, session.id),
        other => panic!("unexpected {other:?}"),
    }
    drop(script);
    let ended = wait_event(&mut r.ann.1, Duration::from_secs(5), |e| {
        matches!(e, HubEvent::Session { session: s } if s.id == session.id && s.ended_at.is_some())
    })
    .await;
    let HubEvent::Session { session: ended } = ended else {
        unreachable!()
    };
    assert!(ended.end_reason.unwrap_or_default().contains("no viewer"));
    // The agent knows who is connected.
    let kept = connect(&r.ann.0, &r.ws, None).await.expect("connect");
    let mut shown = r.agent.shared.shown.subscribe();
    tokio::time::timeout(Duration::from_secs(5), async {
        while !r
            .agent
            .shared
            .live_sessions()
            .iter()
            .any(|s| s.id == kept.id)
        {
            shown.changed().await.expect("agent alive");
        }
    })
    .await
    .expect("the agent lists the live session");
}

/// The console that asked goes away while the end user decides: the session that opens anyway
/// starts unwatched, and the idle sweep ends it (it is not left open for ever).
#[tokio::test]
async fn a_session_whose_console_left_while_the_end_user_decided_is_swept() {
    let limits = Limits {
        session_idle: Duration::from_millis(400),
        ..Limits::default()
    };
    let hub = TestHub::start_in(tempfile::tempdir().expect("tempdir"), limits).await;
    let mut r = rig_with(Consent::new(ConsentPolicy::Ask), hub).await;
    let (script, _) = r.hub.console("bob").await;
    let ws = r.ws.clone();
    let asking = tokio::spawn(async move { connect(&script, &ws, None).await });
    // The question is on the agent's screen; then the console is gone.
    let mut changes = r.agent.shared.consent.subscribe();
    tokio::time::timeout(Duration::from_secs(10), async {
        while r.agent.shared.consent.current().is_none() {
            changes.changed().await.expect("consent alive");
        }
    })
    .await
    .expect("the end user is asked");
    asking.abort();
    let _ = asking.await;
    // Yes, after all: a session opens, with nobody left to watch it.
    answer_question(&r.agent.shared, true).await;
    let opened = wait_event(
        &mut r.ann.1,
        Duration::from_secs(5),
        |e| matches!(e, HubEvent::Session { session: s } if s.ended_at.is_none()),
    )
    .await;
    let HubEvent::Session { session: opened } = opened else {
        unreachable!()
    };
    let ended = wait_event(&mut r.ann.1, Duration::from_secs(5), |e| {
        matches!(e, HubEvent::Session { session: s } if s.id == opened.id && s.ended_at.is_some())
    })
    .await;
    let HubEvent::Session { session: ended } = ended else {
        unreachable!()
    };
    assert!(ended.end_reason.unwrap_or_default().contains("no viewer"));
}

/// Wrong secrets sent in parallel are reserved in the store before they are relayed: of 100,
/// at most five reach the agent (the rest are refused as locked out), and the burst replaces
/// the passcode at most once.
#[tokio::test]
async fn parallel_wrong_passcodes_reach_the_agent_at_most_five_times() {
    let (r, _clock, _passcode) = clocked_passcode_rig().await;
    let ws = r.ws.clone();
    let (bob, _) = r.hub.console("bob").await;
    let tries = (0..100).map(|_| connect(&bob, &ws, Some("WRONG-WRONG")));
    let answers = futures_util::future::join_all(tries).await;
    let wrong = answers
        .iter()
        .filter(
            |a| matches!(a, Err(e) if e.refusal == Some(tether::protocol::Refusal::WrongSecret)),
        )
        .count();
    let locked = answers
        .iter()
        .filter(|a| matches!(a, Err(e) if e.code == ErrorCode::RateLimited))
        .count();
    assert_eq!(wrong + locked, 100, "{answers:?}");
    // The hub records each answer the agent gave.
    let actions = audit_actions(&r.ann.0).await;
    let reached = actions.iter().filter(|a| *a == "connect.refused").count();
    let replaced = actions.iter().filter(|a| *a == "passcode.replace").count();
    assert!(reached <= 5, "{reached} wrong secrets reached the agent");
    // ... and some did: the lock-out is earned by the agent's answers, not answered blindly.
    assert!(wrong >= 1, "no wrong secret reached the agent: {answers:?}");
    assert_eq!(reached, wrong);
    assert!(replaced <= 1, "the passcode was replaced {replaced} times");
}
