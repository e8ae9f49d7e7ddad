//! What every connection shares, consoles and agents alike: the writer task, the reader with
//! its keepalive, the polite close, and the answer to a peer of another protocol version.

use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use super::Hub;
use crate::protocol::{ErrorCode, PROTOCOL_VERSION, ProtocolError};
use crate::wire::ServerStream;

/// The answer to a peer that speaks another protocol version.
pub(super) fn version_mismatch(theirs: u32) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::VersionMismatch,
        format!(
            "this hub speaks protocol {PROTOCOL_VERSION}, the peer {theirs}: run the same tether version on both"
        ),
    )
}

/// The write half of a connection, owned by its own task; everything else sends through the
/// channel. Ends (closing the socket) when every sender is gone or a write fails.
pub(super) fn spawn_writer(
    mut sink: SplitSink<ServerStream, Message>,
) -> (mpsc::Sender<Message>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Message>(256);
    let task = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            let closing = matches!(msg, Message::Close(_));
            if sink.send(msg).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });
    (tx, task)
}

/// Close politely (with a reason the peer can show), then wait briefly for the writer.
pub(super) async fn close(
    out: mpsc::Sender<Message>,
    writer: tokio::task::JoinHandle<()>,
    reason: &str,
) {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: reason.to_owned().into(),
    };
    let _ = out.try_send(Message::Close(Some(frame)));
    drop(out);
    if tokio::time::timeout(Duration::from_secs(2), writer)
        .await
        .is_err()
    {
        tracing::debug!("writer did not finish in time");
    }
}

/// What the read side of a connection saw.
pub(super) enum Incoming {
    Text(String),
    /// A binary message: a live session's stream frame, shared with the read buffer it arrived
    /// in so relaying it copies nothing.
    Binary(Bytes),
    /// The peer closed, the transport failed, or it was silent too long.
    Gone(String),
}

/// Reads messages and keeps the connection alive: pings every `ping_interval`, and gives up
/// on a peer that sent nothing (not even a pong) for `idle_timeout`.
pub(super) struct Reader {
    stream: futures_util::stream::SplitStream<ServerStream>,
    out: mpsc::Sender<Message>,
    ping: tokio::time::Interval,
    idle_timeout: Duration,
    last_heard: tokio::time::Instant,
}

impl Reader {
    pub(super) fn new(
        stream: futures_util::stream::SplitStream<ServerStream>,
        out: mpsc::Sender<Message>,
        hub: &Hub,
    ) -> Self {
        let period = hub.limits.ping_interval;
        let ping = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        Self {
            stream,
            out,
            ping,
            idle_timeout: hub.limits.idle_timeout,
            last_heard: tokio::time::Instant::now(),
        }
    }

    /// The next message; cancel-safe, so it can sit in a `select!`.
    pub(super) async fn next(&mut self) -> Incoming {
        loop {
            tokio::select! {
                msg = self.stream.next() => {
                    self.last_heard = tokio::time::Instant::now();
                    match msg {
                        Some(Ok(Message::Text(t))) => return Incoming::Text(t.as_str().to_owned()),
                        Some(Ok(Message::Binary(b))) => return Incoming::Binary(b),
                        Some(Ok(Message::Close(_))) | None => return Incoming::Gone("closed by peer".into()),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Incoming::Gone(e.to_string()),
                    }
                }
                _ = self.ping.tick() => {
                    let _ = self.out.try_send(Message::Ping(Vec::new().into()));
                }
                () = tokio::time::sleep_until(self.last_heard + self.idle_timeout) => {
                    return Incoming::Gone(format!("silent for {:?}", self.idle_timeout));
                }
            }
        }
    }
}
