//! What every connection shares, consoles and agents alike: the writer task, the reader with
//! its keepalive, the polite close, and the answer to a peer of another protocol version.

use std::time::Duration;

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

/// Messages written to a connection before one flush, at most (the write buffer also flushes
/// by itself when full).
const WRITE_BATCH: usize = 64;

/// The write half of a connection, owned by its own task; everything else sends through the
/// channel. Ends (closing the socket) when every sender is gone or a write fails.
pub(super) fn spawn_writer<S>(mut sink: S) -> (mpsc::Sender<Message>, tokio::task::JoinHandle<()>)
where
    S: futures_util::Sink<Message> + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Message>(256);
    let task = tokio::spawn(async move {
        'writing: while let Some(msg) = rx.recv().await {
            // Whatever else is already queued goes out with it in one flush: a burst of
            // events (a reconnect storm's presence, a list's pages) then costs one write to
            // the socket, not one per message.
            let mut closing = matches!(msg, Message::Close(_));
            if sink.feed(msg).await.is_err() {
                break;
            }
            let mut batched = 1;
            while !closing && batched < WRITE_BATCH {
                let Ok(more) = rx.try_recv() else { break };
                closing = matches!(more, Message::Close(_));
                if sink.feed(more).await.is_err() {
                    break 'writing;
                }
                batched += 1;
            }
            if sink.flush().await.is_err() || closing {
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

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};

    use super::*;

    /// A sink that records what reaches it: messages fed, and how many at each flush.
    #[derive(Clone, Default)]
    struct Recorder {
        fed: Arc<Mutex<usize>>,
        flushes: Arc<Mutex<Vec<usize>>>,
    }

    impl futures_util::Sink<Message> for Recorder {
        type Error = std::convert::Infallible;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn start_send(self: Pin<&mut Self>, _: Message) -> Result<(), Self::Error> {
            *self.fed.lock().expect("lock") += 1;
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            let fed = *self.fed.lock().expect("lock");
            let mut flushes = self.flushes.lock().expect("lock");
            let before: usize = flushes.iter().sum();
            if fed > before {
                flushes.push(fed - before);
            }
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn queued_messages_go_out_in_one_flush_and_a_lone_one_at_once() {
        let sink = Recorder::default();
        let (out, writer) = spawn_writer(sink.clone());
        // Queued before the writer task first runs (one thread): one burst.
        for i in 0..10 {
            out.try_send(Message::text(format!("event {i}")))
                .expect("room");
        }
        tokio::task::yield_now().await;
        assert_eq!(*sink.flushes.lock().expect("lock"), vec![10]);
        // A lone message later is flushed by itself, without waiting for company.
        out.send(Message::text("alone")).await.expect("open");
        tokio::task::yield_now().await;
        assert_eq!(*sink.flushes.lock().expect("lock"), vec![10, 1]);
        // A burst larger than the batch is cut into batches.
        for i in 0..(WRITE_BATCH + 5) {
            out.try_send(Message::text(format!("more {i}")))
                .expect("room");
        }
        drop(out);
        writer.await.expect("writer ends");
        assert_eq!(
            *sink.flushes.lock().expect("lock"),
            vec![10, 1, WRITE_BATCH, 5]
        );
    }
}
