//! The hub's live-session relay, driven from both ends at the protocol level: a technician's
//! connection and a scripted agent that answers like a real one (the agent's own streaming is
//! tested with its screen sources).

mod common;

use std::time::Duration;

use common::TestHub;
use common::viewer::{next_frame, reply, viewer};
use futures_util::{SinkExt, StreamExt};
use tether::client::HubClient;
use tether::frame::Rect;
use tether::protocol::stream::{self, RectUpdate, StreamFrame};
use tether::protocol::{
    AGENT_PATH, AgentPolicy, AgentRequest, AuthMethod, ConnectOutcome, ConsoleReply,
    ConsoleRequest, ErrorCode, HubToAgent, InputEvent, PROTOCOL_VERSION, Request, Role, ViewSpec,
    WorkstationReport,
};
use tether::wire::{self, ClientStream};
use tokio_tungstenite::tungstenite::Message;

/// A scripted agent: enrolled, online, accepting every connection.
struct FakeAgent {
    ws: ClientStream,
    next: u64,
}

impl FakeAgent {
    async fn enrol(hub: &TestHub, tech: &HubClient, host: &str) -> Self {
        let client = match tech
            .request(ConsoleRequest::AddClient {
                name: format!("client of {host}"),
            })
            .await
            .expect("add")
        {
            ConsoleReply::Client { client } => client.id,
            other => panic!("unexpected {other:?}"),
        };
        let link: tether::protocol::EnrolmentLink = match tech
            .request(ConsoleRequest::CreateLink {
                client,
                valid_days: None,
            })
            .await
            .expect("link")
        {
            ConsoleReply::Link { url, .. } => url.parse().expect("link"),
            other => panic!("unexpected {other:?}"),
        };
        let (ws, _) = wire::connect(&hub.url, AGENT_PATH, hub.pin())
            .await
            .expect("connect");
        let mut agent = Self { ws, next: 1 };
        let report = WorkstationReport {
            hostname: host.into(),
            os: "x".into(),
            user: "u".into(),
            screen: None,
            agent_version: "t".into(),
        };
        agent
            .send(AgentRequest::Enrol {
                version: PROTOCOL_VERSION,
                token: link.token.into(),
                report,
            })
            .await;
        agent
            .send(AgentRequest::Policy {
                policy: AgentPolicy::default(),
            })
            .await;
        agent
    }

    async fn send(&mut self, body: AgentRequest) {
        self.next += 1;
        wire::send(
            &mut self.ws,
            &Request {
                id: self.next,
                body,
            },
        )
        .await
        .expect("send");
    }

    /// The next message from the hub that is not a reply.
    async fn next(&mut self) -> HubToAgent {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match wire::recv::<_, HubToAgent>(&mut self.ws)
                    .await
                    .expect("hub message")
                {
                    HubToAgent::Reply { result: Ok(_), .. } => continue,
                    other => return other,
                }
            }
        })
        .await
        .expect("a message from the hub")
    }

    /// Answer connection attempts until one arrives, allowing it.
    async fn allow_next(&mut self) {
        match self.next().await {
            HubToAgent::ConnectAttempt { attempt, .. } => {
                let outcome = ConnectOutcome::Allowed {
                    method: AuthMethod::Attended,
                    secrets: vec![],
                };
                self.send(AgentRequest::ConnectAnswer { attempt, outcome })
                    .await;
            }
            other => panic!("expected a connection attempt, got {other:?}"),
        }
    }

    async fn frame(&mut self, stream: u64, seq: u64) {
        let frame = StreamFrame::Pixels {
            stream,
            seq,
            captured_at: 0,
            width: 8,
            height: 4,
            rects: vec![RectUpdate {
                rect: Rect::new(0, 0, 2, 2),
                rgb: vec![seq as u8; 12],
            }],
        };
        self.ws
            .send(Message::binary(stream::encode(&frame).expect("encode")))
            .await
            .expect("send frame");
    }
}

#[tokio::test]
async fn frames_acks_and_input_flow_between_viewer_and_agent() {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    hub.add_user("bob", Role::Technician, "Desk").await;
    let (tech, _) = hub.console("ann").await;
    let mut agent = FakeAgent::enrol(&hub, &tech, "pc-1").await;
    let mut other = FakeAgent::enrol(&hub, &tech, "pc-2").await;

    let mut ann = viewer(&hub, "ann").await;
    let connect = Request {
        id: 2,
        body: ConsoleRequest::Connect {
            workstation: "pc-1".into(),
            secret: None,
            view_only: false,
            otp: None,
        },
    };
    wire::send(&mut ann, &connect).await.expect("send");
    agent.allow_next().await;
    let session = match reply(&mut ann, 2).await.expect("session") {
        ConsoleReply::Session { session } => session,
        other => panic!("unexpected {other:?}"),
    };
    assert!(matches!(agent.next().await, HubToAgent::Session { .. }));

    let watch = Request {
        id: 3,
        body: ConsoleRequest::Watch {
            session: session.id.clone(),
            view: ViewSpec::Pixels {
                width: 8,
                height: 4,
            },
        },
    };
    wire::send(&mut ann, &watch).await.expect("send");
    let stream = match reply(&mut ann, 3).await.expect("watching") {
        ConsoleReply::Watching { stream } => stream,
        other => panic!("unexpected {other:?}"),
    };
    match agent.next().await {
        HubToAgent::Watch {
            stream: s,
            session: id,
            view,
        } => {
            assert_eq!(
                (s, id, view),
                (
                    stream,
                    session.id.clone(),
                    ViewSpec::Pixels {
                        width: 8,
                        height: 4
                    }
                )
            );
        }
        other => panic!("unexpected {other:?}"),
    }

    // A frame reaches the viewer unchanged; its ack reaches the agent.
    agent.frame(stream, 1).await;
    let frame = next_frame(&mut ann).await;
    assert_eq!((frame.stream(), frame.seq()), (stream, 1));
    wire::send(
        &mut ann,
        &Request {
            id: 4,
            body: ConsoleRequest::Ack { stream, seq: 1 },
        },
    )
    .await
    .expect("send");
    assert!(matches!(agent.next().await, HubToAgent::Ack { stream: s, seq: 1 } if s == stream));

    // Input reaches the agent in the remote's coordinates.
    let events = vec![
        InputEvent::Pointer {
            x: 3,
            y: 2,
            buttons: 1,
        },
        InputEvent::Key {
            keysym: 0x61,
            down: true,
        },
    ];
    wire::send(
        &mut ann,
        &Request {
            id: 5,
            body: ConsoleRequest::Input {
                stream,
                events: events.clone(),
            },
        },
    )
    .await
    .expect("send");
    match agent.next().await {
        HubToAgent::Input {
            stream: s,
            events: got,
        } => assert_eq!((s, got), (stream, events)),
        other => panic!("unexpected {other:?}"),
    }

    // Another workstation cannot inject frames into this stream.
    other.frame(stream, 99).await;
    agent.frame(stream, 2).await;
    assert_eq!(
        next_frame(&mut ann).await.seq(),
        2,
        "the forged frame was not delivered"
    );

    // Another technician cannot ack, steer or watch through ann's stream.
    let mut bob = viewer(&hub, "bob").await;
    wire::send(
        &mut bob,
        &Request {
            id: 2,
            body: ConsoleRequest::Input {
                stream,
                events: vec![],
            },
        },
    )
    .await
    .expect("send");
    assert_eq!(
        reply(&mut bob, 2).await.expect_err("not bob's stream").code,
        ErrorCode::NotFound
    );

    // When the viewer leaves, the agent is told to stop.
    drop(ann);
    assert!(matches!(agent.next().await, HubToAgent::Unwatch { stream: s } if s == stream));
    drop(bob);
}

#[tokio::test]
async fn view_only_sessions_refuse_input_and_bad_views_are_refused() {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    let (tech, _) = hub.console("ann").await;
    let mut agent = FakeAgent::enrol(&hub, &tech, "pc-1").await;
    let mut ann = viewer(&hub, "ann").await;
    let connect = Request {
        id: 2,
        body: ConsoleRequest::Connect {
            workstation: "pc-1".into(),
            secret: None,
            view_only: true,
            otp: None,
        },
    };
    wire::send(&mut ann, &connect).await.expect("send");
    agent.allow_next().await;
    let ConsoleReply::Session { session } = reply(&mut ann, 2).await.expect("session") else {
        panic!("no session")
    };

    let huge = ViewSpec::Pixels {
        width: 100_000,
        height: 10,
    };
    wire::send(
        &mut ann,
        &Request {
            id: 3,
            body: ConsoleRequest::Watch {
                session: session.id.clone(),
                view: huge,
            },
        },
    )
    .await
    .expect("send");
    assert_eq!(
        reply(&mut ann, 3).await.expect_err("too big").code,
        ErrorCode::BadRequest
    );
    let view = ViewSpec::Terminal { cols: 80, rows: 24 };
    wire::send(
        &mut ann,
        &Request {
            id: 4,
            body: ConsoleRequest::Watch {
                session: session.id.clone(),
                view,
            },
        },
    )
    .await
    .expect("send");
    let ConsoleReply::Watching { stream } = reply(&mut ann, 4).await.expect("watching") else {
        panic!("not watching")
    };
    let input = Request {
        id: 5,
        body: ConsoleRequest::Input {
            stream,
            events: vec![InputEvent::Key {
                keysym: 0x61,
                down: true,
            }],
        },
    };
    wire::send(&mut ann, &input).await.expect("send");
    assert_eq!(
        reply(&mut ann, 5).await.expect_err("view only").code,
        ErrorCode::Forbidden
    );
    // Terminal keystrokes are refused the same way.
    let keys = StreamFrame::TerminalInput {
        stream,
        seq: 1,
        bytes: b"rm -rf /\r".to_vec(),
    };
    ann.send(Message::binary(stream::encode(&keys).expect("encode")))
        .await
        .expect("send");
    // The agent saw the watch but never the input.
    assert!(matches!(agent.next().await, HubToAgent::Session { .. }));
    assert!(matches!(agent.next().await, HubToAgent::Watch { .. }));

    // Ending the session drops its stream.
    wire::send(
        &mut ann,
        &Request {
            id: 6,
            body: ConsoleRequest::EndSession {
                session: session.id.clone(),
            },
        },
    )
    .await
    .expect("send");
    reply(&mut ann, 6).await.expect("ended");
    assert!(
        matches!(agent.next().await, HubToAgent::Session { session: s } if s.ended_at.is_some())
    );
    assert_eq!(hub.hub.stream_count(), 0);
}

/// A colleague cannot watch (and so cannot steer) a session by its id alone: only after
/// opening their own session on that workstation (which runs every check: authorisation,
/// secrets, one-time password, 2FA), and then with no more control than their own session has.
#[tokio::test]
async fn a_colleague_joins_a_session_only_through_their_own_connect() {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    hub.add_user("bob", Role::Technician, "Desk").await;
    let (tech, _) = hub.console("ann").await;
    let mut agent = FakeAgent::enrol(&hub, &tech, "pc-1").await;
    let connect = |id, view_only| Request {
        id,
        body: ConsoleRequest::Connect {
            workstation: "pc-1".into(),
            secret: None,
            view_only,
            otp: None,
        },
    };
    let watch = |id, session: &str| Request {
        id,
        body: ConsoleRequest::Watch {
            session: session.into(),
            view: ViewSpec::Terminal { cols: 80, rows: 24 },
        },
    };

    let mut ann = viewer(&hub, "ann").await;
    wire::send(&mut ann, &connect(2, false))
        .await
        .expect("send");
    agent.allow_next().await;
    let ConsoleReply::Session { session: anns } = reply(&mut ann, 2).await.expect("session") else {
        panic!("no session")
    };
    assert!(matches!(agent.next().await, HubToAgent::Session { .. }));

    // Bob knows the id (ListSessions shows the team's sessions) but has no session there.
    let mut bob = viewer(&hub, "bob").await;
    wire::send(&mut bob, &watch(3, &anns.id))
        .await
        .expect("send");
    assert_eq!(
        reply(&mut bob, 3).await.expect_err("not his session").code,
        ErrorCode::NotFound
    );

    // Bob connects, view only: now he may join ann's session, and only to watch.
    wire::send(&mut bob, &connect(4, true)).await.expect("send");
    agent.allow_next().await;
    let ConsoleReply::Session { .. } = reply(&mut bob, 4).await.expect("bob's session") else {
        panic!("no session")
    };
    wire::send(&mut bob, &watch(5, &anns.id))
        .await
        .expect("send");
    let ConsoleReply::Watching { stream } = reply(&mut bob, 5).await.expect("joined") else {
        panic!("not watching")
    };
    wire::send(
        &mut bob,
        &Request {
            id: 6,
            body: ConsoleRequest::Input {
                stream,
                events: vec![],
            },
        },
    )
    .await
    .expect("send");
    assert_eq!(
        reply(&mut bob, 6)
            .await
            .expect_err("his own session is view only")
            .code,
        ErrorCode::Forbidden
    );
}

/// Ann's session on `agent`'s workstation, watched at `view`: the session and the stream.
async fn watched(
    agent: &mut FakeAgent,
    ann: &mut ClientStream,
    view: ViewSpec,
) -> (tether::protocol::SessionInfo, u64) {
    let connect = Request {
        id: 2,
        body: ConsoleRequest::Connect {
            workstation: "pc-1".into(),
            secret: None,
            view_only: false,
            otp: None,
        },
    };
    wire::send(ann, &connect).await.expect("send");
    agent.allow_next().await;
    let ConsoleReply::Session { session } = reply(ann, 2).await.expect("session") else {
        panic!("no session")
    };
    assert!(matches!(agent.next().await, HubToAgent::Session { .. }));
    let watch = Request {
        id: 3,
        body: ConsoleRequest::Watch {
            session: session.id.clone(),
            view,
        },
    };
    wire::send(ann, &watch).await.expect("send");
    let ConsoleReply::Watching { stream } = reply(ann, 3).await.expect("watching") else {
        panic!("not watching")
    };
    assert!(matches!(agent.next().await, HubToAgent::Watch { .. }));
    (session, stream)
}

/// Terminal output from the scripted agent: the encoded frame.
fn output(stream: u64, seq: u64, bytes: Vec<u8>) -> Vec<u8> {
    stream::encode(&StreamFrame::TerminalOutput { stream, seq, bytes }).expect("encode")
}

/// A viewer whose connection is backed up loses frames at the hub; the agent hears which
/// (`Dropped`, so it can make them good), never a made-up ack that would leave it stale.
#[tokio::test]
async fn frames_a_backed_up_viewer_cannot_take_are_reported_dropped_not_acked() {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    let (tech, _) = hub.console("ann").await;
    let mut agent = FakeAgent::enrol(&hub, &tech, "pc-1").await;
    let mut ann = viewer(&hub, "ann").await;
    let (_, stream) = watched(
        &mut agent,
        &mut ann,
        ViewSpec::Terminal { cols: 80, rows: 24 },
    )
    .await;

    // Ann reads nothing: her socket and then the hub's queue for her fill up.
    let mut seq = 0;
    let dropped = 'sending: loop {
        assert!(seq < 20_000, "no frame was ever dropped");
        for _ in 0..200 {
            seq += 1;
            let frame = output(stream, seq, vec![b'x'; 16 * 1024]);
            agent.ws.send(Message::binary(frame)).await.expect("send");
        }
        let heard = tokio::time::timeout(
            Duration::from_millis(200),
            wire::recv::<_, HubToAgent>(&mut agent.ws),
        )
        .await;
        match heard {
            Err(_) => {}
            Ok(Ok(HubToAgent::Reply { result: Ok(_), .. })) => {}
            Ok(Ok(msg)) => break 'sending msg,
            Ok(Err(e)) => panic!("agent link: {e}"),
        }
    };
    match dropped {
        HubToAgent::Dropped { stream: s, seq: d } => {
            assert_eq!(s, stream);
            assert!(
                (1..=seq).contains(&d),
                "a frame that was sent: {d} of {seq}"
            );
        }
        other => panic!("expected Dropped, got {other:?}"),
    }
}

/// `session.end` records how many bytes of stream frames the hub relayed, both ways.
#[tokio::test]
async fn the_session_end_audit_counts_the_bytes_relayed() {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    let (tech, _) = hub.console("ann").await;
    let mut agent = FakeAgent::enrol(&hub, &tech, "pc-1").await;
    let mut ann = viewer(&hub, "ann").await;
    let (session, stream) = watched(
        &mut agent,
        &mut ann,
        ViewSpec::Terminal { cols: 80, rows: 24 },
    )
    .await;

    let mut relayed = 0u64;
    for (seq, len) in [(1u64, 10usize), (2, 3000), (3, 70_000)] {
        let frame = output(stream, seq, vec![b'y'; len]);
        relayed += frame.len() as u64;
        agent.ws.send(Message::binary(frame)).await.expect("send");
        assert_eq!(next_frame(&mut ann).await.seq(), seq);
    }
    let keys = stream::encode(&StreamFrame::TerminalInput {
        stream,
        seq: 1,
        bytes: b"ls -l\r".to_vec(),
    })
    .expect("encode");
    relayed += keys.len() as u64;
    ann.send(Message::binary(keys.clone())).await.expect("send");
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Message::Binary(b) = agent.ws.next().await.expect("open").expect("message") {
                return b.to_vec();
            }
        }
    })
    .await
    .expect("the keys reached the agent");
    assert_eq!(got, keys);

    wire::send(
        &mut ann,
        &Request {
            id: 9,
            body: ConsoleRequest::EndSession {
                session: session.id.clone(),
            },
        },
    )
    .await
    .expect("send");
    reply(&mut ann, 9).await.expect("ended");
    let query = tether::protocol::AuditQuery {
        kind: Some("session.end".into()),
        ..Default::default()
    };
    let records = hub
        .hub
        .store()
        .search_audit(None, &query, 10, None)
        .expect("audit");
    let [record] = records.as_slice() else {
        panic!("one session.end record: {records:?}")
    };
    assert_eq!(record.detail["session"], session.id.as_str());
    assert_eq!(record.detail["bytes"].as_u64(), Some(relayed));
}
