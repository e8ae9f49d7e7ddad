//! A technician's raw connection that sees binary stream frames: for live-session tests.

use std::time::Duration;

use futures_util::StreamExt;
use tether::protocol::stream::{self, StreamFrame};
use tether::protocol::{ConsoleReply, ConsoleRequest, PROTOCOL_VERSION, Request};
use tether::wire::{self, ClientStream};
use tokio_tungstenite::tungstenite::Message;

use super::TestHub;

/// A raw technician connection that can see binary frames.
pub async fn viewer(hub: &TestHub, user: &str) -> ClientStream {
    let (mut ws, _) = wire::connect(&hub.url, tether::protocol::CONSOLE_PATH, hub.pin())
        .await
        .expect("connect");
    let login = Request {
        id: 1,
        body: ConsoleRequest::Login {
            version: PROTOCOL_VERSION,
            user: user.into(),
            password: super::PASSWORD.into(),
            code: None,
        },
    };
    wire::send(&mut ws, &login).await.expect("login");
    reply(&mut ws, 1).await.expect("logged in");
    ws
}

pub async fn reply(
    ws: &mut ClientStream,
    id: u64,
) -> Result<ConsoleReply, tether::protocol::ProtocolError> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await.expect("open").expect("message") {
                Message::Text(t) => {
                    if let tether::protocol::HubToConsole::Reply { id: got, result } =
                        tether::protocol::decode(t.as_str()).expect("decode")
                        && got == id
                    {
                        return result;
                    }
                }
                Message::Binary(_) => panic!("unexpected frame while waiting for reply {id}"),
                _ => {}
            }
        }
    })
    .await
    .expect("reply in time")
}

pub async fn next_frame(ws: &mut ClientStream) -> StreamFrame {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Message::Binary(b) = ws.next().await.expect("open").expect("message") {
                return stream::decode(&b).expect("a valid frame");
            }
        }
    })
    .await
    .expect("a frame in time")
}
