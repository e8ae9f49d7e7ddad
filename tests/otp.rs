//! One-time passwords end to end on loopback: a real hub, real agents, technicians' connections,
//! the outbox, a real SMTP server (aiosmtpd) and the `tether ctl` verbs.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{ManualClock, TestAgent, TestHub, enrolment_link, wait_event};
use tether::agent::consent::ConsentPolicy;
use tether::client::{ClientError, HubClient};
use tether::hub::Limits;
use tether::hub::otp::{SmtpConfig, SmtpSecurity};
use tether::protocol::{
    ConsoleReply, ConsoleRequest, ErrorCode, HubEvent, OtpChannel, OtpIssued, OutboxMessage,
    Presence, ProtocolError, Refusal, Role, SessionInfo, WorkstationInfo, normalize_otp,
};

fn hub_error(e: ClientError) -> ProtocolError {
    match e {
        ClientError::Hub(p) => p,
        other => panic!("expected an error from the hub, got {other}"),
    }
}

async fn connect(
    tech: &HubClient,
    ws: &str,
    otp: Option<&str>,
) -> Result<SessionInfo, ProtocolError> {
    let body = ConsoleRequest::Connect {
        workstation: ws.into(),
        secret: None,
        view_only: false,
        otp: otp.map(Into::into),
    };
    match tech.request(body).await {
        Ok(ConsoleReply::Session { session }) => Ok(session),
        Ok(other) => panic!("unexpected {other:?}"),
        Err(e) => Err(hub_error(e)),
    }
}

async fn request_otp(
    tech: &HubClient,
    ws: &str,
    emergency: Option<&str>,
) -> Result<OtpIssued, ProtocolError> {
    let body = ConsoleRequest::RequestOtp {
        workstation: ws.into(),
        emergency: emergency.map(Into::into),
    };
    match tech.request(body).await {
        Ok(ConsoleReply::Otp { otp }) => Ok(otp),
        Ok(other) => panic!("unexpected {other:?}"),
        Err(e) => Err(hub_error(e)),
    }
}

async fn resend_otp(tech: &HubClient, ws: &str) -> Result<OtpIssued, ProtocolError> {
    match tech
        .request(ConsoleRequest::ResendOtp {
            workstation: ws.into(),
        })
        .await
    {
        Ok(ConsoleReply::Otp { otp }) => Ok(otp),
        Ok(other) => panic!("unexpected {other:?}"),
        Err(e) => Err(hub_error(e)),
    }
}

async fn require(admin: &HubClient, ws: &str, required: bool) -> WorkstationInfo {
    match admin
        .request(ConsoleRequest::SetWorkstationOtp {
            workstation: ws.into(),
            required,
        })
        .await
        .expect("require otp")
    {
        ConsoleReply::Workstation { workstation } => workstation,
        other => panic!("unexpected {other:?}"),
    }
}

/// The outbox as `reader` sees it: only the messages they are a recipient of.
async fn outbox(reader: &HubClient) -> Vec<OutboxMessage> {
    match reader
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

/// The one code (XXXX-XXXX-XXXX-XXXX) in a text.
fn code_in(text: &str) -> String {
    let codes: Vec<&str> = text
        .split_whitespace()
        .filter(|w| w.len() == 19 && w.matches('-').count() == 3 && normalize_otp(w).is_ok())
        .collect();
    assert_eq!(codes.len(), 1, "one code in {text:?}");
    codes[0].to_owned()
}

/// The newest outbox message for `to`, read by its recipient: its code.
async fn newest_code_for(recipient: &HubClient, to: &str) -> String {
    let messages = outbox(recipient).await;
    let m = messages
        .iter()
        .find(|m| m.to.contains(to))
        .unwrap_or_else(|| panic!("a message for {to} in {messages:?}"));
    code_in(&m.body)
}

async fn audit_actions(admin: &HubClient) -> Vec<tether::protocol::AuditRecord> {
    match admin
        .request(ConsoleRequest::ListAudit {
            page: Default::default(),
            limit: 1000,
            before: None,
        })
        .await
        .expect("audit")
    {
        ConsoleReply::Audit { records, .. } => records,
        other => panic!("unexpected {other:?}"),
    }
}

struct Rig {
    hub: TestHub,
    ann: HubClient,
    bob: HubClient,
    cat: HubClient,
    ws: String,
    agent: TestAgent,
    _agent_dir: tempfile::TempDir,
}

/// ann (admin), bob and cat (technicians) of one team; one workstation whose end user accepts
/// every connection and which requires a one-time password.
async fn rig_on(hub: TestHub) -> Rig {
    rig_consent(hub, ConsentPolicy::Accept).await
}

async fn rig_consent(hub: TestHub, consent: ConsentPolicy) -> Rig {
    hub.add_user("ann", Role::Admin, "Desk").await;
    hub.add_user("bob", Role::Technician, "Desk").await;
    hub.add_user("cat", Role::Technician, "Desk").await;
    let (ann, mut events) = hub.console("ann").await;
    let link = enrolment_link(&ann, "Acme").await;
    let agent_dir = tempfile::tempdir().expect("tempdir");
    let mut agent = TestAgent::start_with(agent_dir.path(), Some(link), "reception-pc", consent);
    let ws = agent.online().await;
    wait_event(&mut events, Duration::from_secs(5), |e| {
        matches!(e, HubEvent::Workstation { workstation: w } if w.id == ws && w.presence == Presence::Online)
    })
    .await;
    assert!(require(&ann, &ws, true).await.otp_required);
    let (bob, _) = hub.console("bob").await;
    let (cat, _) = hub.console("cat").await;
    Rig {
        hub,
        ann,
        bob,
        cat,
        ws,
        agent,
        _agent_dir: agent_dir,
    }
}

async fn rig() -> Rig {
    rig_on(TestHub::start().await).await
}

#[tokio::test]
async fn fifty_parallel_uses_of_one_otp_exactly_one_succeeds() {
    let r = rig().await;
    // Without a code: a typed refusal the console turns into a prompt.
    let missing = connect(&r.bob, &r.ws, None).await.expect_err("no code");
    assert_eq!(missing.refusal, Some(Refusal::OtpRequired), "{missing:?}");

    let issued = request_otp(&r.bob, &r.ws, None).await.expect("request");
    assert_eq!(issued.delivery.channel, OtpChannel::Outbox);
    assert_eq!(issued.delivery.to, vec!["bob@example.com".to_owned()]);
    assert_eq!(
        issued.delivery.error, None,
        "no mail server is not an error"
    );
    let code = newest_code_for(&r.bob, "bob@example.com").await;
    // Typed in lower case without dashes: the same code.
    let typed = code.replace('-', "").to_lowercase();

    let attempts = (0..50).map(|_| connect(&r.bob, &r.ws, Some(&typed)));
    let results = futures_util::future::join_all(attempts).await;
    let opened: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
    assert_eq!(opened.len(), 1, "exactly one use succeeds: {results:?}");
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(e.refusal, Some(Refusal::OtpInvalid), "{e:?}");
        assert!(e.message.contains("already used"), "{}", e.message);
    }
    // And it stays used.
    let again = connect(&r.bob, &r.ws, Some(&code)).await.expect_err("used");
    assert_eq!(again.refusal, Some(Refusal::OtpInvalid));

    let audit = audit_actions(&r.ann).await;
    let count = |action: &str| audit.iter().filter(|a| a.action == action).count();
    assert_eq!(count("otp.issue"), 1);
    assert_eq!(count("otp.use"), 1);
    assert_eq!(count("otp.fail"), 50, "49 parallel losers and one late try");
    assert_eq!(count("session.start"), 1);
    // The code itself is in no audit record.
    let all = serde_json::to_string(&audit).expect("json");
    assert!(!all.contains(&code) && !all.contains(&code.replace('-', "")));
}

#[tokio::test]
async fn an_otp_is_refused_on_another_workstation_or_by_another_technician() {
    let r = rig().await;
    // A second workstation of the team, also requiring codes.
    let link = enrolment_link(&r.ann, "Globex").await;
    let dir2 = tempfile::tempdir().expect("tempdir");
    let mut agent2 =
        TestAgent::start_with(dir2.path(), Some(link), "till-2", ConsentPolicy::Accept);
    let ws2 = agent2.online().await;
    require(&r.ann, &ws2, true).await;

    request_otp(&r.bob, &r.ws, None).await.expect("request");
    let code = newest_code_for(&r.bob, "bob@example.com").await;

    let by_cat = connect(&r.cat, &r.ws, Some(&code)).await.expect_err("cat");
    assert_eq!(by_cat.refusal, Some(Refusal::OtpInvalid));
    assert!(by_cat.message.contains("not for you"), "{}", by_cat.message);
    let elsewhere = connect(&r.bob, &ws2, Some(&code)).await.expect_err("ws2");
    assert_eq!(elsewhere.refusal, Some(Refusal::OtpInvalid));
    let wrong = connect(&r.bob, &r.ws, Some("2345-6789-ABCD-EFGH"))
        .await
        .expect_err("wrong");
    assert_eq!(wrong.refusal, Some(Refusal::OtpInvalid));
    let malformed = connect(&r.bob, &r.ws, Some("hello"))
        .await
        .expect_err("bad");
    assert_eq!(malformed.refusal, Some(Refusal::OtpInvalid));
    // The failed attempts did not spend it: its owner on its workstation gets in.
    connect(&r.bob, &r.ws, Some(&code))
        .await
        .expect("bob on ws");

    let audit = audit_actions(&r.ann).await;
    let reasons: Vec<String> = audit
        .iter()
        .filter(|a| a.action == "otp.fail")
        .map(|a| a.detail["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        reasons
            .iter()
            .filter(|r| *r == "other technician or workstation")
            .count()
            == 2
            && reasons.iter().any(|r| r == "wrong")
            && reasons.iter().any(|r| r == "malformed"),
        "{reasons:?}"
    );
    agent2.stop().await;
}

#[tokio::test]
async fn an_otp_is_accepted_at_29_59_and_refused_at_30_00() {
    let clock = ManualClock::new();
    let hub = TestHub::start_clocked(
        tempfile::tempdir().expect("tempdir"),
        Limits::default(),
        clock.clone(),
    )
    .await;
    let r = rig_on(hub).await;
    // Two codes issued at the same instant, one used a second before expiry, one at it.
    let bobs = request_otp(&r.bob, &r.ws, None).await.expect("bob");
    let cats = request_otp(&r.cat, &r.ws, None).await.expect("cat");
    assert_eq!(
        bobs.expires_at - bobs.issued_at,
        chrono::Duration::minutes(30)
    );
    let bob_code = newest_code_for(&r.bob, "bob@example.com").await;
    let cat_code = newest_code_for(&r.cat, "cat@example.com").await;

    clock.advance(Duration::from_secs(29 * 60 + 59));
    connect(&r.bob, &r.ws, Some(&bob_code))
        .await
        .expect("accepted at 29:59");
    clock.advance(Duration::from_secs(1));
    let late = connect(&r.cat, &r.ws, Some(&cat_code))
        .await
        .expect_err("refused at 30:00");
    assert_eq!(late.refusal, Some(Refusal::OtpInvalid));
    assert!(late.message.contains("expired"), "{}", late.message);

    // The expiry is audited, once, for the unused code only. The hub's timer may have claimed
    // it just before the refusal did, and be writing the record still: wait for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let expired = loop {
        let audit = audit_actions(&r.ann).await;
        let expired: Vec<_> = audit
            .into_iter()
            .filter(|a| a.action == "otp.expire")
            .collect();
        if !expired.is_empty() || tokio::time::Instant::now() >= deadline {
            break expired;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!(expired[0].detail["otp"], serde_json::json!(cats.id));
}

#[tokio::test]
async fn a_second_request_within_the_hour_is_refused_with_the_wait_and_resend_sends_the_same() {
    let clock = ManualClock::new();
    let hub = TestHub::start_clocked(
        tempfile::tempdir().expect("tempdir"),
        Limits::default(),
        clock.clone(),
    )
    .await;
    let r = rig_on(hub).await;
    let first = request_otp(&r.bob, &r.ws, None).await.expect("first");
    let code = newest_code_for(&r.bob, "bob@example.com").await;

    clock.advance(Duration::from_secs(10 * 60));
    let refused = request_otp(&r.bob, &r.ws, None).await.expect_err("second");
    assert_eq!(refused.code, ErrorCode::RateLimited);
    assert_eq!(refused.retry_after_secs, Some(50 * 60));
    assert!(refused.message.contains("50 min"), "{}", refused.message);
    // Another technician's request for the same workstation is their own pair.
    request_otp(&r.cat, &r.ws, None).await.expect("cat's own");

    let resent = resend_otp(&r.bob, &r.ws).await.expect("resend");
    assert!(resent.resent);
    assert_eq!(resent.id, first.id);
    assert_eq!(
        resent.expires_at, first.expires_at,
        "resending does not extend it"
    );
    assert_eq!(newest_code_for(&r.bob, "bob@example.com").await, code);

    // An hour after the first: a new one, different.
    clock.advance(Duration::from_secs(50 * 60));
    let again = request_otp(&r.bob, &r.ws, None)
        .await
        .expect("after the hour");
    assert_ne!(again.id, first.id);
    assert_ne!(newest_code_for(&r.bob, "bob@example.com").await, code);
    // Nothing valid to resend once used.
    let new_code = newest_code_for(&r.bob, "bob@example.com").await;
    connect(&r.bob, &r.ws, Some(&new_code)).await.expect("use");
    let nothing = resend_otp(&r.bob, &r.ws).await.expect_err("used");
    assert_eq!(nothing.code, ErrorCode::NotFound);
}

#[tokio::test]
async fn an_emergency_request_goes_to_the_admins_and_is_flagged() {
    let r = rig().await;
    r.hub.add_user("dan", Role::Admin, "Other").await;
    let blank = request_otp(&r.bob, &r.ws, Some("  "))
        .await
        .expect_err("no reason");
    assert_eq!(blank.code, ErrorCode::BadRequest);
    let issued = request_otp(&r.bob, &r.ws, Some("server down, phone line dead"))
        .await
        .expect("emergency");
    assert!(issued.emergency);
    // To the admins of bob's team only: dan administers another team.
    assert_eq!(issued.delivery.to, vec!["ann@example.com".to_owned()]);
    let messages = outbox(&r.ann).await;
    let m = messages.first().expect("a message");
    assert_eq!(m.kind, "emergency");
    assert!(m.subject.contains("EMERGENCY") && m.body.contains("phone line dead"));
    let code = code_in(&m.body);
    connect(&r.bob, &r.ws, Some(&code))
        .await
        .expect("bob uses it");

    let audit = audit_actions(&r.ann).await;
    let flagged = audit
        .iter()
        .find(|a| a.action == "otp.emergency")
        .expect("emergency audited");
    assert_eq!(flagged.detail["emergency"], true);
    assert_eq!(flagged.detail["reason"], "server down, phone line dead");
    assert_eq!(flagged.actor, "bob");

    // An emergency code goes to the admins, not to the technician who asked (an admin hands
    // it over): bob's outbox does not show it; nor does cat's. Nor do technicians change
    // requirements.
    assert!(outbox(&r.bob).await.iter().all(|m| m.kind != "emergency"));
    assert!(outbox(&r.cat).await.is_empty());
    let e = r
        .bob
        .request(ConsoleRequest::SetWorkstationOtp {
            workstation: r.ws.clone(),
            required: false,
        })
        .await
        .map_err(hub_error)
        .expect_err("bob turns it off");
    assert_eq!(e.code, ErrorCode::Forbidden);
}

#[tokio::test]
async fn a_group_can_require_otps_and_without_a_requirement_none_is_issued() {
    let r = rig().await;
    let off = require(&r.ann, &r.ws, false).await;
    assert!(!off.otp_required);
    connect(&r.bob, &r.ws, None).await.expect("no code needed");
    let e = request_otp(&r.bob, &r.ws, None)
        .await
        .expect_err("not required");
    assert_eq!(e.code, ErrorCode::Conflict);

    // The client's group requires codes: its workstation does, at once.
    r.ann
        .request(ConsoleRequest::SetGroupOtp {
            client: Some("Acme".into()),
            required: true,
        })
        .await
        .expect("group");
    let e = connect(&r.bob, &r.ws, None)
        .await
        .expect_err("group requires");
    assert_eq!(e.refusal, Some(Refusal::OtpRequired));
    let groups = match r
        .ann
        .request(ConsoleRequest::ListGroups {
            page: Default::default(),
        })
        .await
        .expect("groups")
    {
        ConsoleReply::Groups { groups, .. } => groups,
        other => panic!("unexpected {other:?}"),
    };
    assert!(
        groups
            .iter()
            .any(|g| g.client_name.as_deref() == Some("Acme") && g.otp),
        "{groups:?}"
    );
    r.ann
        .request(ConsoleRequest::SetGroupOtp {
            client: Some("Acme".into()),
            required: false,
        })
        .await
        .expect("group off");
    connect(&r.bob, &r.ws, None).await.expect("free again");
}

/// The python SMTP sink, on a free port.
struct SmtpSink {
    port: u16,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    _child: tokio::process::Child,
}

impl SmtpSink {
    async fn start(python: &str) -> Self {
        use tokio::io::AsyncBufReadExt;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/smtp_sink.py");
        let mut child = tokio::process::Command::new(python)
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the SMTP sink");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("the sink starts in time")
            .expect("read")
            .expect("a line");
        let port = first
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("a port in {first:?}"));
        Self {
            port,
            lines,
            _child: child,
        }
    }

    /// The next message received: its recipients and its text.
    async fn next_message(&mut self) -> (String, String) {
        let mut rcpt = String::new();
        let mut body = String::new();
        tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(line) = self.lines.next_line().await.expect("read") {
                if let Some(r) = line.strip_prefix("RCPT TO ") {
                    rcpt = r.to_owned();
                } else if let Some(d) = line.strip_prefix("DATA ") {
                    body.push_str(d);
                    body.push('\n');
                } else if line == "END" {
                    return;
                }
            }
            panic!("the sink ended early");
        })
        .await
        .expect("a message arrives in time");
        (rcpt, body)
    }
}

#[tokio::test]
async fn otps_are_delivered_through_a_real_smtp_server() {
    let test = "otps_are_delivered_through_a_real_smtp_server";
    let Some(python) = common::peers::python_with("aiosmtpd", "python3-aiosmtpd", test) else {
        return;
    };
    let mut sink = SmtpSink::start(&python).await;
    let smtp = SmtpConfig {
        host: "127.0.0.1".into(),
        port: sink.port,
        from: "hub@example.com".into(),
        security: SmtpSecurity::Plain,
        login: None,
    };
    let hub = TestHub::start_smtp(
        tempfile::tempdir().expect("tempdir"),
        Limits::default(),
        Arc::new(tether::hub::SystemClock),
        Some(smtp),
    )
    .await;
    let r = rig_on(hub).await;
    let issued = request_otp(&r.bob, &r.ws, None).await.expect("request");
    assert_eq!(issued.delivery.channel, OtpChannel::Email);
    assert_eq!(issued.delivery.error, None);
    let (rcpt, body) = sink.next_message().await;
    assert_eq!(rcpt, "bob@example.com");
    assert!(
        body.contains("Subject: Tether one-time password for reception-pc"),
        "{body}"
    );
    let code = code_in(&body);

    // Resend: the same code, by e-mail again; nothing went to the outbox.
    resend_otp(&r.bob, &r.ws).await.expect("resend");
    let (_, again) = sink.next_message().await;
    assert_eq!(code_in(&again), code);
    assert!(outbox(&r.bob).await.is_empty());
    connect(&r.bob, &r.ws, Some(&code))
        .await
        .expect("the e-mailed code works");

    // An emergency goes to the admin's address.
    request_otp(&r.cat, &r.ws, Some("on call, mail down"))
        .await
        .expect("emergency");
    let (rcpt, body) = sink.next_message().await;
    assert_eq!(rcpt, "ann@example.com");
    assert!(body.contains("on call, mail down"), "{body}");
}

#[tokio::test]
async fn a_failed_email_goes_to_the_outbox_and_the_requester_is_told() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let smtp = SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        from: "hub@example.com".into(),
        security: SmtpSecurity::Plain,
        login: None,
    };
    let hub = TestHub::start_smtp(
        tempfile::tempdir().expect("tempdir"),
        Limits::default(),
        Arc::new(tether::hub::SystemClock),
        Some(smtp),
    )
    .await;
    let r = rig_on(hub).await;
    let issued = request_otp(&r.bob, &r.ws, None)
        .await
        .expect("issued anyway");
    assert_eq!(issued.delivery.channel, OtpChannel::Outbox);
    let error = issued.delivery.error.expect("the requester is told");
    assert!(error.contains("outbox"), "{error}");
    let messages = outbox(&r.bob).await;
    assert!(
        messages[0].why.starts_with("e-mail failed"),
        "{:?}",
        messages[0]
    );
    let code = code_in(&messages[0].body);
    connect(&r.bob, &r.ws, Some(&code))
        .await
        .expect("nothing lost");
    let audit = audit_actions(&r.ann).await;
    let id_of = |action: &str| {
        audit
            .iter()
            .find(|a| a.action == action)
            .unwrap_or_else(|| panic!("{action} audited"))
            .id
    };
    assert!(
        id_of("otp.issue") < id_of("otp.delivery_failed"),
        "the code is audited before it is delivered"
    );
}

#[tokio::test]
async fn codes_and_outbox_bodies_are_not_stored_in_clear() {
    let r = rig().await;
    request_otp(&r.bob, &r.ws, None).await.expect("request");
    let code = newest_code_for(&r.bob, "bob@example.com").await;
    let bare = code.replace('-', "");
    let dir = r.hub.dir.path().join("hub");
    for entry in std::fs::read_dir(&dir).expect("data dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            let bytes = std::fs::read(&path).expect("read");
            for needle in [&code, &bare] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{} holds the code in clear",
                    path.display()
                );
            }
        }
    }
}

#[tokio::test]
async fn codes_and_bodies_are_sealed_under_the_one_hub_key_and_bound_to_their_row() {
    let r = rig().await;
    let dir = r.hub.dir.path().join("hub");
    // One key for every sealed value: seal.key, owner-only, 32 bytes.
    let meta = std::fs::metadata(dir.join("seal.key")).expect("seal.key");
    assert_eq!(meta.len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    for old in ["otp.key", "twofa.key"] {
        assert!(!dir.join(old).exists(), "{old} should be gone");
    }

    request_otp(&r.bob, &r.ws, None).await.expect("bob's code");
    request_otp(&r.cat, &r.ws, None).await.expect("cat's code");
    let bobs = newest_code_for(&r.bob, "bob@example.com").await;
    let cats = newest_code_for(&r.cat, "cat@example.com").await;
    assert_ne!(bobs, cats);
    resend_otp(&r.cat, &r.ws).await.expect("cat's code resends");

    // Copy bob's sealed code and mail body into cat's rows, as someone with the database but
    // not the key might: they do not open there.
    let conn = rusqlite::Connection::open(dir.join("hub.sqlite3")).expect("open db");
    let bob_otp: String = conn
        .query_row(
            "SELECT o.id FROM otps o JOIN users u ON u.id = o.user_id WHERE u.name = 'bob'",
            [],
            |row| row.get(0),
        )
        .expect("bob's otp");
    let swapped = conn
        .execute(
            "UPDATE otps SET sealed = (SELECT sealed FROM otps WHERE id = ?1) \
             WHERE user_id = (SELECT id FROM users WHERE name = 'cat')",
            [&bob_otp],
        )
        .expect("swap code");
    assert_eq!(swapped, 1);
    let swapped = conn
        .execute(
            "UPDATE outbox SET body_sealed = \
             (SELECT body_sealed FROM outbox WHERE otp_id = ?1 ORDER BY id LIMIT 1) \
             WHERE otp_id IS NOT NULL AND otp_id <> ?1",
            [&bob_otp],
        )
        .expect("swap body");
    assert!(swapped >= 1);
    drop(conn);

    let refused = resend_otp(&r.cat, &r.ws)
        .await
        .expect_err("another row's sealed code");
    assert_eq!(refused.code, ErrorCode::Internal);
    assert!(refused.message.contains("cannot be resent"), "{refused:?}");
    resend_otp(&r.bob, &r.ws)
        .await
        .expect("bob's own row still opens");
    let messages = outbox(&r.cat).await;
    let for_cat: Vec<_> = messages
        .iter()
        .filter(|m| m.to.contains("cat@example.com"))
        .collect();
    assert!(!for_cat.is_empty());
    for m in for_cat {
        assert!(m.body.starts_with("(cannot be read"), "{:?}", m.body);
        assert!(!m.body.contains(&bobs));
    }
    assert_eq!(newest_code_for(&r.bob, "bob@example.com").await, bobs);
}

/// Run `f` until it returns `Some`, polling; fail after `within` with `what`.
fn eventually<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ctl_verbs_end_to_end() {
    use common::bin::{BIN, HubProcess, Running, create_admin, fails, login, ok, run};
    use std::process::{Command, Stdio};

    let home = tempfile::tempdir().expect("tempdir");
    let data = home.path().join("hubdata");
    create_admin(home.path(), &data, "ann");
    let hub = HubProcess::start(home.path(), &data, &[], Stdio::null());
    login(home.path(), &hub, "ann");
    let ctl = |args: &[&str]| {
        let mut all = vec!["ctl"];
        all.extend(args);
        run(home.path(), &all, None)
    };
    ok(&ctl(&["clients", "add", "Acme"]));
    let url = ok(&ctl(&["clients", "link", "Acme"])).trim().to_owned();
    let agent_home = tempfile::tempdir().expect("tempdir");
    let agent_data = agent_home.path().join("agent");
    let _agent = Running(
        Command::new(BIN)
            .args(["agent", "--screen", "none", "--consent", "accept", "--data"])
            .arg(&agent_data)
            .args(["--link", &url])
            .env("TETHER_HOME", agent_home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn agent"),
    );
    let ws = eventually("the agent online", Duration::from_secs(30), || {
        let list: serde_json::Value =
            serde_json::from_str(&ok(&ctl(&["--json", "workstations", "list"]))).ok()?;
        list.as_array()?
            .iter()
            .find(|w| w["presence"] == "online")
            .map(|w| w["id"].as_str().unwrap_or_default().to_owned())
    });

    let set = ok(&ctl(&["workstations", "require-otp", &ws, "on"]));
    assert!(set.contains("now requires a one-time password"), "{set}");
    let list = ok(&ctl(&["workstations", "list"]));
    assert!(list.contains("OTP") && list.contains("required"), "{list}");
    let refused = fails(&ctl(&["connect", &ws]));
    assert!(
        refused.contains("requires a one-time password"),
        "{refused}"
    );

    let issued: serde_json::Value =
        serde_json::from_str(&ok(&ctl(&["--json", "otp", "request", &ws]))).expect("json");
    assert_eq!(issued["delivery"]["channel"], "outbox");
    let again = fails(&ctl(&["otp", "request", &ws]));
    assert!(again.contains("a new one is possible in 60 min"), "{again}");
    let resent = ok(&ctl(&["otp", "resend", &ws]));
    assert!(resent.contains("sent again"), "{resent}");

    let messages: serde_json::Value =
        serde_json::from_str(&ok(&ctl(&["--json", "outbox", "list"]))).expect("json");
    let messages = messages.as_array().expect("array");
    assert_eq!(messages.len(), 2, "the code and its resend");
    let code = code_in(messages[0]["body"].as_str().expect("body"));
    assert_eq!(code, code_in(messages[1]["body"].as_str().expect("body")));
    let human = ok(&ctl(&["outbox", "list"]));
    assert!(human.contains(&code), "{human}");

    let session: serde_json::Value =
        serde_json::from_str(&ok(&ctl(&["--json", "connect", &ws, "--otp", &code]))).expect("json");
    let id = session["id"].as_str().expect("session id");
    ok(&ctl(&["sessions", "end", id]));
    let used = fails(&ctl(&["connect", &ws, "--otp", &code]));
    assert!(used.contains("already used"), "{used}");

    let emergency = ok(&ctl(&[
        "otp",
        "request",
        &ws,
        "--emergency",
        "locked out of mail",
    ]));
    assert!(emergency.contains("emergency"), "{emergency}");
    let audit = ok(&ctl(&["--json", "audit", "list", "--limit", "500"]));
    for action in [
        "otp.issue",
        "otp.resend",
        "otp.use",
        "otp.emergency",
        "otp.require",
    ] {
        assert!(audit.contains(action), "{action} in {audit}");
    }

    ok(&ctl(&["groups", "require-otp", "--client", "Acme", "on"]));
    let groups = ok(&ctl(&["groups", "list"]));
    assert!(
        groups.contains("Acme") && groups.contains("required"),
        "{groups}"
    );
    let off = ok(&ctl(&["workstations", "require-otp", &ws, "off"]));
    assert!(off.contains("its group still requires one"), "{off}");

    // A malformed mail server is refused at start, with the fix.
    let bad = fails(&run(
        home.path(),
        &[
            "hub",
            "--data",
            data.to_str().expect("utf8"),
            "--smtp",
            "nowhere",
            "--smtp-from",
            "hub@example.com",
        ],
        None,
    ));
    assert!(bad.contains("HOST:PORT"), "{bad}");
}

#[tokio::test]
async fn a_connection_that_does_not_open_gives_the_code_back() {
    let r = rig_consent(TestHub::start().await, ConsentPolicy::Ask).await;
    request_otp(&r.bob, &r.ws, None).await.expect("request");
    let code = newest_code_for(&r.bob, "bob@example.com").await;
    // The end user says no this time: the code is not spent.
    let (denied, _) = tokio::join!(
        connect(&r.bob, &r.ws, Some(&code)),
        common::answer_question(&r.agent.shared, false)
    );
    assert_eq!(denied.expect_err("denied").refusal, Some(Refusal::Denied));
    let (opened, _) = tokio::join!(
        connect(&r.bob, &r.ws, Some(&code)),
        common::answer_question(&r.agent.shared, true)
    );
    opened.expect("the same code, once more");
    let audit = audit_actions(&r.ann).await;
    assert!(audit.iter().any(|a| a.action == "otp.return"));
    let again = connect(&r.bob, &r.ws, Some(&code))
        .await
        .expect_err("spent now");
    assert_eq!(again.refusal, Some(Refusal::OtpInvalid));
}

#[tokio::test]
async fn starttls_when_asked_is_required_and_a_server_without_it_is_not_trusted_with_the_code() {
    let test =
        "starttls_when_asked_is_required_and_a_server_without_it_is_not_trusted_with_the_code";
    let Some(python) = common::peers::python_with("aiosmtpd", "python3-aiosmtpd", test) else {
        return;
    };
    // The sink offers no STARTTLS: with --smtp-starttls the code must not go out in clear.
    let sink = SmtpSink::start(&python).await;
    let smtp = SmtpConfig {
        host: "127.0.0.1".into(),
        port: sink.port,
        from: "hub@example.com".into(),
        security: SmtpSecurity::StartTls,
        login: None,
    };
    let hub = TestHub::start_smtp(
        tempfile::tempdir().expect("tempdir"),
        Limits::default(),
        Arc::new(tether::hub::SystemClock),
        Some(smtp),
    )
    .await;
    let r = rig_on(hub).await;
    let issued = request_otp(&r.bob, &r.ws, None).await.expect("issued");
    assert_eq!(issued.delivery.channel, OtpChannel::Outbox);
    let error = issued.delivery.error.expect("the requester is told");
    assert!(error.contains("STARTTLS"), "{error}");
    let code = newest_code_for(&r.bob, "bob@example.com").await;
    connect(&r.bob, &r.ws, Some(&code))
        .await
        .expect("from the outbox");
}

async fn clocked_rig() -> (Rig, Arc<ManualClock>) {
    let clock = ManualClock::new();
    let hub = TestHub::start_clocked(
        tempfile::tempdir().expect("tempdir"),
        Limits::default(),
        clock.clone(),
    )
    .await;
    (rig_on(hub).await, clock)
}

#[tokio::test]
async fn ten_parallel_requests_for_one_pair_issue_exactly_one_code() {
    let (r, clock) = clocked_rig().await;
    // Ten connections of bob's, so the requests really run side by side on the hub.
    let mut bobs = Vec::new();
    for _ in 0..10 {
        bobs.push(r.hub.console("bob").await.0);
    }
    // A few rounds, an hour apart: a race that is lost only sometimes shows.
    for round in 1..=4 {
        let attempts = bobs.iter().map(|bob| request_otp(bob, &r.ws, None));
        let results = futures_util::future::join_all(attempts).await;
        let issued: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
        assert_eq!(
            issued.len(),
            1,
            "round {round}: exactly one code: {results:?}"
        );
        for e in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(e.code, ErrorCode::RateLimited, "{e:?}");
            assert_eq!(e.retry_after_secs, Some(3600), "{e:?}");
        }
        let audit = audit_actions(&r.ann).await;
        let count = |action: &str| audit.iter().filter(|a| a.action == action).count();
        assert_eq!(count("otp.issue"), round);
        assert_eq!(count("otp.request_refused"), 9 * round);
        assert_eq!(
            outbox(&bobs[0]).await.len(),
            round,
            "one code a round, not ten"
        );
        clock.advance(Duration::from_secs(3600));
    }
}

#[tokio::test]
async fn emergency_works_after_a_normal_request_but_once_an_hour_and_resend_once_a_minute() {
    let (r, clock) = clocked_rig().await;
    request_otp(&r.bob, &r.ws, None).await.expect("normal");
    clock.advance(Duration::from_secs(5 * 60));
    let first = request_otp(&r.bob, &r.ws, Some("mail is down"))
        .await
        .expect("emergency after a normal code");
    assert!(first.emergency);
    clock.advance(Duration::from_secs(10 * 60));
    let again = request_otp(&r.bob, &r.ws, Some("still down"))
        .await
        .expect_err("a second emergency within the hour");
    assert_eq!(again.code, ErrorCode::RateLimited);
    assert_eq!(again.retry_after_secs, Some(50 * 60));
    assert!(
        again.message.contains("emergency") && again.message.contains("50 min"),
        "{}",
        again.message
    );
    // Another technician's emergency is their own pair.
    request_otp(&r.cat, &r.ws, Some("on call"))
        .await
        .expect("cat's emergency");
    let admin_mail = |m: &&OutboxMessage| m.kind == "emergency";
    assert_eq!(outbox(&r.ann).await.iter().filter(admin_mail).count(), 2);
    clock.advance(Duration::from_secs(50 * 60));
    request_otp(&r.bob, &r.ws, Some("down again"))
        .await
        .expect("an hour after the first emergency");

    // Resend (bob's newest code, the emergency one): once a minute per pair.
    let (r2, clock2) = (r, clock);
    let resent = resend_otp(&r2.bob, &r2.ws).await.expect("resend");
    assert!(resent.resent);
    clock2.advance(Duration::from_secs(20));
    let flood = resend_otp(&r2.bob, &r2.ws)
        .await
        .expect_err("a second resend within the minute");
    assert_eq!(flood.code, ErrorCode::RateLimited);
    assert_eq!(flood.retry_after_secs, Some(40));
    clock2.advance(Duration::from_secs(40));
    resend_otp(&r2.bob, &r2.ws)
        .await
        .expect("a minute after the last resend");
    // Another technician's resend is their own pair.
    request_otp(&r2.cat, &r2.ws, None)
        .await
        .expect("cat's code");
    resend_otp(&r2.cat, &r2.ws).await.expect("cat's resend");
}

#[tokio::test]
async fn an_expiry_is_audited_when_it_happens_without_further_requests() {
    let (r, clock) = clocked_rig().await;
    let issued = request_otp(&r.bob, &r.ws, None).await.expect("request");
    clock.advance(Duration::from_secs(30 * 60));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let expired = loop {
        // Reading the audit notes nothing itself: only the hub's timer can have written this.
        let audit = audit_actions(&r.ann).await;
        if let Some(e) = audit.into_iter().find(|a| a.action == "otp.expire") {
            break e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no otp.expire within 5 s of the expiry"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(expired.detail["otp"], serde_json::json!(issued.id));
    assert_eq!(expired.at, issued.expires_at, "at the moment it expired");
    assert_eq!(expired.actor, "hub");
}

#[tokio::test]
async fn an_otp_is_audited_before_delivery_and_one_that_reaches_nobody_is_withdrawn() {
    let r = rig().await;
    // The outbox cannot be written: the code reaches nobody.
    let db = r.hub.dir.path().join("hub").join("hub.sqlite3");
    let conn = rusqlite::Connection::open(&db).expect("open db");
    conn.execute_batch("ALTER TABLE outbox RENAME TO outbox_away")
        .expect("hide the outbox");
    let failed = request_otp(&r.bob, &r.ws, None)
        .await
        .expect_err("undeliverable");
    assert_eq!(failed.code, ErrorCode::Internal, "{failed:?}");
    let left: i64 = conn
        .query_row("SELECT COUNT(*) FROM otps", [], |row| row.get(0))
        .expect("count");
    assert_eq!(left, 0, "the undelivered code is removed");
    conn.execute_batch("ALTER TABLE outbox_away RENAME TO outbox")
        .expect("restore the outbox");
    drop(conn);
    // It did not count toward the hourly limit.
    let issued = request_otp(&r.bob, &r.ws, None)
        .await
        .expect("a new code at once");

    let mut audit = audit_actions(&r.ann).await;
    audit.sort_by_key(|a| a.id);
    let actions: Vec<&str> = audit
        .iter()
        .filter(|a| a.action.starts_with("otp.") && a.action != "otp.require")
        .map(|a| a.action.as_str())
        .collect();
    assert_eq!(actions, ["otp.issue", "otp.withdraw", "otp.issue"]);
    let last = audit
        .iter()
        .rfind(|a| a.action == "otp.issue")
        .expect("issue");
    assert_eq!(last.detail["otp"], serde_json::json!(issued.id));
}

#[tokio::test]
async fn a_slow_mail_server_does_not_hold_up_the_technicians_connection() {
    // A mail server that accepts the connection and then says nothing (lettre waits up to 10 s).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let smtp = SmtpConfig {
        host: "127.0.0.1".into(),
        port: listener.local_addr().expect("addr").port(),
        from: "hub@example.com".into(),
        security: SmtpSecurity::Plain,
        login: None,
    };
    let hub = TestHub::start_smtp(
        tempfile::tempdir().expect("tempdir"),
        Limits::default(),
        Arc::new(tether::hub::SystemClock),
        Some(smtp),
    )
    .await;
    let r = rig_on(hub).await;
    let pending = request_otp(&r.bob, &r.ws, None);
    tokio::pin!(pending);
    let silent = tokio::select! {
        accepted = listener.accept() => accepted.expect("the hub dials the mail server").0,
        done = &mut pending => panic!("answered before the mail server was reached: {done:?}"),
    };
    // The mail server is stalling: the same connection still answers another request.
    let other = tokio::time::timeout(
        Duration::from_secs(3),
        r.bob.request(ConsoleRequest::ListSessions {
            page: Default::default(),
        }),
    )
    .await
    .expect("the connection answers while the mail is pending")
    .expect("sessions");
    assert!(matches!(other, ConsoleReply::Sessions { .. }), "{other:?}");
    // The mail server goes away: the code lands in the outbox and the request is answered.
    drop(silent);
    drop(listener);
    let issued = tokio::time::timeout(Duration::from_secs(15), pending)
        .await
        .expect("answered")
        .expect("issued");
    assert_eq!(issued.delivery.channel, OtpChannel::Outbox);
}
