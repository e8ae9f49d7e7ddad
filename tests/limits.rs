//! Bounded work before authentication, on a real hub over real TLS WebSockets: the lock-out
//! does not tell which names exist, its wait is enough, oversized pre-auth messages close the
//! connection, guesses are limited per source, and pre-auth failures are summed in the audit
//! log. Time-dependent rules run on a [`ManualClock`].

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{ManualClock, PASSWORD, TestHub};
use futures_util::{SinkExt, StreamExt};
use tether::client::{ClientError, HubClient};
use tether::hub::Limits;
use tether::protocol::{
    AGENT_PATH, AgentRequest, AuditQuery, AuditRecord, CONSOLE_PATH, ErrorCode, HubToAgent,
    PROTOCOL_VERSION, ProtocolError, Request, Role, WorkstationReport,
};
use tether::wire;
use tokio_tungstenite::tungstenite::Message;

fn hub_error(e: ClientError) -> ProtocolError {
    match e {
        ClientError::Hub(p) => p,
        other => panic!("expected an error from the hub, got {other}"),
    }
}

async fn clocked(limits: Limits) -> (TestHub, Arc<ManualClock>) {
    let clock = ManualClock::new();
    let hub =
        TestHub::start_clocked(tempfile::tempdir().expect("tempdir"), limits, clock.clone()).await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    (hub, clock)
}

/// One login on its own connection: the answer as (code, message, retry_after).
async fn try_login(hub: &TestHub, user: &str, password: &str) -> Result<(), ProtocolError> {
    let (client, _) = HubClient::connect(&hub.url, hub.pin())
        .await
        .expect("connect");
    client
        .login(user, password)
        .await
        .map(|_| ())
        .map_err(hub_error)
}

fn records(hub: &TestHub, kind: &str) -> Vec<AuditRecord> {
    let query = AuditQuery {
        kind: Some(kind.into()),
        ..AuditQuery::default()
    };
    hub.hub
        .store()
        .search_audit(None, &query, 10_000, None)
        .expect("audit")
}

/// The sixth and later wrong tries on a name nobody holds answer exactly as on a real one.
#[tokio::test]
async fn unknown_and_real_names_answer_alike_through_the_lock_out() {
    let (hub, clock) = clocked(Limits::default()).await;
    let both = || async {
        let real = try_login(&hub, "ann", "wrong password!!")
            .await
            .expect_err("wrong");
        let unknown = try_login(&hub, "nobody-here", "wrong password!!")
            .await
            .expect_err("wrong");
        assert_eq!(
            (real.code, &real.message, real.retry_after_secs),
            (unknown.code, &unknown.message, unknown.retry_after_secs),
        );
        (real.code, real.retry_after_secs)
    };
    for n in 1..=5 {
        assert_eq!(
            both().await,
            (ErrorCode::InvalidCredentials, None),
            "try {n}"
        );
    }
    for n in 6..=8 {
        assert_eq!(both().await, (ErrorCode::RateLimited, Some(1)), "try {n}");
    }
    // Once the wait is over, one more failure each, then a longer wait for both.
    clock.advance(Duration::from_secs(1));
    assert_eq!(both().await, (ErrorCode::InvalidCredentials, None));
    assert_eq!(both().await, (ErrorCode::RateLimited, Some(2)));
}

/// A client that waits `retry_after_secs` is not refused again.
#[tokio::test]
async fn waiting_retry_after_is_enough() {
    let (hub, clock) = clocked(Limits::default()).await;
    for _ in 0..5 {
        try_login(&hub, "ann", "wrong password!!")
            .await
            .expect_err("wrong");
    }
    clock.advance(Duration::from_secs(1));
    // The sixth failure locks for 2 s; half a second later 1.5 s remain.
    try_login(&hub, "ann", "wrong password!!")
        .await
        .expect_err("wrong");
    clock.advance(Duration::from_millis(500));
    let locked = try_login(&hub, "ann", PASSWORD).await.expect_err("locked");
    assert_eq!(locked.code, ErrorCode::RateLimited);
    let wait = locked.retry_after_secs.expect("retry_after");
    assert_eq!(wait, 2, "1.5 s rounds up");
    clock.advance(Duration::from_secs(wait));
    try_login(&hub, "ann", PASSWORD)
        .await
        .expect("obeying retry_after is accepted");
}

/// A message over 4 KiB before authentication closes the connection.
#[tokio::test]
async fn an_oversized_message_before_login_closes_the_connection() {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    for path in [CONSOLE_PATH, AGENT_PATH] {
        let (mut ws, _) = wire::connect(&hub.url, path, hub.pin())
            .await
            .expect("connect");
        let big = format!(
            "{{\"id\":1,\"body\":{{\"type\":\"login\",\"version\":{PROTOCOL_VERSION},\"user\":\"ann\",\"password\":\"{}\"}}}}",
            "x".repeat(5 * 1024)
        );
        ws.send(Message::text(big)).await.expect("send");
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match ws.next().await {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                    Some(Ok(Message::Text(_))) => return false,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await
        .expect("the hub answered or closed in time");
        assert!(closed, "{path}: answered instead of closing");
    }
    try_login(&hub, "ann", PASSWORD)
        .await
        .expect("others unaffected");
}

/// A frame announcing a large message before login closes the connection as its header
/// arrives: the hub does not wait for (or read) the rest.
#[tokio::test]
async fn an_announced_large_message_closes_before_its_payload() {
    use tokio::io::AsyncWriteExt;
    let hub = TestHub::start().await;
    let (mut ws, _) = wire::connect(&hub.url, CONSOLE_PATH, hub.pin())
        .await
        .expect("connect");
    // A masked text frame header announcing 1 MiB, and only 16 bytes of it.
    let mut frame = vec![0x81, 0x80 | 127];
    frame.extend_from_slice(&(1u64 << 20).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame.extend_from_slice(&[0; 16]);
    let tls = ws.get_mut();
    tls.write_all(&frame).await.expect("write");
    tls.flush().await.expect("flush");
    // Well within the 10 s the hub would otherwise wait for a login.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the hub waited for the announced megabyte");
}

fn report() -> WorkstationReport {
    WorkstationReport {
        hostname: "guesser".into(),
        os: "x".into(),
        user: "u".into(),
        screen: None,
        agent_version: "t".into(),
    }
}

/// Agent key guesses from one source stop reaching the key lookup after the source's burst.
#[tokio::test]
async fn agent_key_guesses_are_limited_per_source() {
    let limits = Limits {
        failures_per_source: 10,
        ..Limits::default()
    };
    let (hub, _clock) = clocked(limits).await;
    let (mut agent, _) = wire::connect(&hub.url, AGENT_PATH, hub.pin())
        .await
        .expect("connect");
    let mut refused = 0;
    let mut limited = 0;
    for id in 1..=200u64 {
        let hello = Request {
            id,
            body: AgentRequest::Hello {
                version: PROTOCOL_VERSION,
                workstation_id: format!("ws_{id}"),
                key: "not-a-key".into(),
                report: report(),
            },
        };
        wire::send(&mut agent, &hello).await.expect("send");
        match wire::recv::<_, HubToAgent>(&mut agent)
            .await
            .expect("reply")
        {
            HubToAgent::Reply { result: Err(e), .. } => match e.code {
                ErrorCode::InvalidCredentials => refused += 1,
                ErrorCode::RateLimited => {
                    assert!(e.retry_after_secs.is_some_and(|s| s >= 1), "{e:?}");
                    limited += 1;
                }
                other => panic!("unexpected {other:?}"),
            },
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((refused, limited), (10, 190));
    // Summed in the audit log: not one record per guess.
    let key = records(&hub, "workstation.key_refused");
    let limit = records(&hub, "preauth.limited");
    assert_eq!((key.len(), limit.len()), (1, 1), "{key:?} {limit:?}");
}

/// Pre-auth failures of one source are written as one record a minute with their count.
#[tokio::test]
async fn pre_auth_failures_are_summed_per_source_and_minute() {
    let limits = Limits {
        failures_per_source: 1000,
        ..Limits::default()
    };
    let (hub, clock) = clocked(limits).await;
    let (mut agent, _) = wire::connect(&hub.url, AGENT_PATH, hub.pin())
        .await
        .expect("connect");
    let enrol = |id: u64| Request {
        id,
        body: AgentRequest::Enrol {
            version: PROTOCOL_VERSION,
            token: format!("no-such-link-{id}").into(),
            report: report(),
        },
    };
    for id in 1..=50 {
        wire::send(&mut agent, &enrol(id)).await.expect("send");
        let reply = wire::recv::<_, HubToAgent>(&mut agent)
            .await
            .expect("reply");
        assert!(
            matches!(&reply, HubToAgent::Reply { result: Err(e), .. } if e.code == ErrorCode::InvalidCredentials),
            "{reply:?}"
        );
    }
    let first = records(&hub, "workstation.enrol_refused");
    assert_eq!(
        first.len(),
        1,
        "one record for the first minute's 50 refusals"
    );
    assert_eq!(first[0].detail["count"], 1);
    clock.advance(Duration::from_secs(60));
    wire::send(&mut agent, &enrol(51)).await.expect("send");
    wire::recv::<_, HubToAgent>(&mut agent)
        .await
        .expect("reply");
    let now = records(&hub, "workstation.enrol_refused");
    assert_eq!(now.len(), 2);
    // Newest first: the 49 counted since the first record, and this one.
    assert_eq!(now[0].detail["count"], 50, "{:?}", now[0].detail);
    // Unknown names are summed too.
    for _ in 0..20 {
        try_login(&hub, "nobody-here", "wrong password!!")
            .await
            .expect_err("wrong");
    }
    let fails = records(&hub, "login.fail");
    assert_eq!(fails.len(), 1, "{fails:?}");
}
