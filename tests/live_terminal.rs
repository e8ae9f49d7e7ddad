//! A terminal session to a headless agent, end to end over the hub: the agent runs a real
//! shell, the viewer draws its output as text (through the console's terminal view) and types
//! into it; taking access away ends it.

mod common;

use std::time::Duration;

use common::viewer::{DesktopRig, Next, next, next_frame, reply, viewer};
use common::{TestAgent, TestHub, answer_question, enrolment_link, wait_event};
use futures_util::{SinkExt, StreamExt};
use tether::agent::consent::{Consent, ConsentPolicy};
use tether::console::terminal_view::TerminalView;
use tether::protocol::stream::{self, StreamFrame};
use tether::protocol::{
    ConsoleReply, ConsoleRequest, HubEvent, Request, Role, SessionInfo, ViewSpec,
};
use tether::wire::{self, ClientStream};
use tokio_tungstenite::tungstenite::Message;

/// Read frames into `view` (acknowledging each) until its text satisfies `pred`.
async fn read_until(
    ws: &mut ClientStream,
    view: &mut TerminalView,
    what: &str,
    pred: impl Fn(&str) -> bool,
) {
    let mut next_id = 100;
    tokio::time::timeout(Duration::from_secs(15), async {
        while !pred(&view.text()) {
            match next_frame(ws).await {
                StreamFrame::TerminalOutput { stream, seq, bytes } => {
                    view.feed(&bytes);
                    next_id += 1;
                    let ack = Request {
                        id: next_id,
                        body: ConsoleRequest::Ack { stream, seq },
                    };
                    wire::send(ws, &ack).await.expect("ack");
                }
                other => panic!("unexpected frame {other:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "timed out waiting for {what}; the view shows:\n{}",
            view.text()
        )
    });
}

async fn type_line(ws: &mut ClientStream, stream: u64, seq: u64, line: &str) {
    let keys = StreamFrame::TerminalInput {
        stream,
        seq,
        bytes: format!("{line}\r").into_bytes(),
    };
    ws.send(Message::binary(stream::encode(&keys).expect("encode")))
        .await
        .expect("send keys");
}

#[tokio::test]
async fn a_terminal_session_runs_a_command_and_ends_when_access_is_withdrawn() {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    let (tech, mut events) = hub.console("ann").await;
    let link = enrolment_link(&tech, "Servers").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut agent = TestAgent::start_consent(
        dir.path(),
        Some(link),
        "db-01",
        Consent::new(ConsentPolicy::Ask),
    );
    let ws_id = agent.online().await;
    // Unattended access, granted on the agent.
    tech.request(ConsoleRequest::RequestAccess {
        workstation: ws_id.clone(),
    })
    .await
    .expect("request");
    answer_question(&agent.shared, true).await;
    answer_question(&agent.shared, true).await;

    let mut ann = viewer(&hub, "ann").await;
    let connect = Request {
        id: 2,
        body: ConsoleRequest::Connect {
            workstation: ws_id.clone(),
            secret: None,
            view_only: false,
            otp: None,
        },
    };
    wire::send(&mut ann, &connect).await.expect("send");
    let session: SessionInfo = match reply(&mut ann, 2).await.expect("connected") {
        ConsoleReply::Session { session } => session,
        other => panic!("unexpected {other:?}"),
    };
    let view_spec = ViewSpec::Terminal { cols: 80, rows: 24 };
    wire::send(
        &mut ann,
        &Request {
            id: 3,
            body: ConsoleRequest::Watch {
                session: session.id.clone(),
                view: view_spec,
            },
        },
    )
    .await
    .expect("send");
    let stream = match reply(&mut ann, 3).await.expect("watching") {
        ConsoleReply::Watching { stream } => stream,
        other => panic!("unexpected {other:?}"),
    };

    // The shell's output shows as text; a command typed in runs there.
    let mut view = TerminalView::new(80, 24);
    type_line(&mut ann, stream, 1, "echo tether-$((6*7)) && stty size").await;
    read_until(&mut ann, &mut view, "the command's output", |t| {
        t.contains("tether-42") && t.contains("24 80")
    })
    .await;
    assert!(
        !view.text().lines().any(|l| l.trim() == "tether-$((6*7))"),
        "the output, not only the echo"
    );

    // A second viewer attaching now starts from the current screen, not a blank one: the
    // command's output is there before anything else is typed.
    let mut late = viewer(&hub, "ann").await;
    wire::send(
        &mut late,
        &Request {
            id: 4,
            body: ConsoleRequest::Watch {
                session: session.id.clone(),
                view: view_spec,
            },
        },
    )
    .await
    .expect("send");
    let mut late_view = TerminalView::new(80, 24);
    // The replayed screen may overtake the `Watching` reply.
    let late_stream = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match late.next().await.expect("open").expect("message") {
                Message::Binary(b) => {
                    if let Ok(StreamFrame::TerminalOutput { bytes, .. }) = stream::decode(&b) {
                        late_view.feed(&bytes);
                    }
                }
                Message::Text(t) => {
                    if let Ok(tether::protocol::HubToConsole::Reply {
                        id: 4,
                        result: Ok(ConsoleReply::Watching { stream }),
                    }) = tether::protocol::decode(t.as_str())
                    {
                        return stream;
                    }
                }
                _ => {}
            }
        }
    })
    .await
    .expect("watching in time");
    assert_ne!(late_stream, stream);
    read_until(&mut late, &mut late_view, "the replayed screen", |t| {
        t.contains("tether-42") && t.contains("24 80")
    })
    .await;

    // Withdrawing access ends the session within a second, and the shell with it.
    tech.request(ConsoleRequest::WithdrawAccess {
        workstation: ws_id.clone(),
    })
    .await
    .expect("withdraw");
    wait_event(&mut events, Duration::from_secs(1), |e| {
        matches!(e, HubEvent::Session { session: s } if s.id == session.id && s.ended_at.is_some())
    })
    .await;
    assert_eq!(
        hub.hub.stream_count(),
        0,
        "the stream ended with the session"
    );
    agent.stop().await;
}

/// An agent run with `--shell off` shares no shell: a terminal view ends at once, and the
/// viewer is told why (the session itself stays).
#[tokio::test]
async fn an_agent_without_a_shell_refuses_a_terminal_and_says_why() {
    let rig = DesktopRig::start_with("none", "db-02", &["ann"], false).await;
    let view = ViewSpec::Terminal { cols: 80, rows: 24 };
    let (mut ann, _, stream) = rig.connect_and_view("ann", view).await;
    let reason = loop {
        match next(&mut ann, Duration::from_secs(10)).await {
            Some(Next::Event(HubEvent::StreamEnded { stream: s, reason })) => {
                assert_eq!(s, stream);
                break reason;
            }
            Some(Next::Event(_)) => {}
            Some(Next::Frame(f)) => panic!("output from a shell that must not run: {f:?}"),
            None => panic!("the stream did not end with a reason"),
        }
    };
    assert!(reason.contains("--shell off"), "{reason}");
    assert_eq!(rig.hub.hub.stream_count(), 0, "the hub closed the stream");
}
