//! A technician's side of the hub: the typed connection used by `ctl`, the console and the
//! demo, plus the local login store (tokens per hub, pinned certificates).

pub mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use crate::protocol::{
    self, CONSOLE_PATH, ConsoleReply, ConsoleRequest, HubEvent, HubToConsole, PROTOCOL_VERSION,
    ProtocolError, Request, RequestId, UserInfo,
};
use crate::tls::Pin;
use crate::wire::{self, WireError};

/// How long a request may wait for its reply.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The hub answered with an error.
    #[error("{0}")]
    Hub(#[from] ProtocolError),
    #[error("the hub did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the connection to the hub closed")]
    Closed,
    #[error("the hub sent an unexpected answer to {0}")]
    Unexpected(&'static str),
}

type Pending = Arc<Mutex<HashMap<RequestId, oneshot::Sender<Result<ConsoleReply, ProtocolError>>>>>;

/// A connection to a hub as a technician. Requests may be made concurrently from clones of
/// `&self`; live events arrive on the receiver returned by [`HubClient::connect`].
pub struct HubClient {
    next_id: AtomicU64,
    outgoing: mpsc::UnboundedSender<Message>,
    pending: Pending,
    fingerprint: String,
    /// Binary stream frames of live sessions, until someone takes them.
    frames: Mutex<Option<mpsc::UnboundedReceiver<Vec<u8>>>>,
    tasks: [tokio::task::JoinHandle<()>; 2],
    /// Set (under the `pending` lock) when the connection has ended: a request made after
    /// that fails at once instead of waiting out its timeout.
    ended: Arc<std::sync::atomic::AtomicBool>,
    /// Why the hub closed the connection, as its close frame said (an admin disabled the
    /// account, ...).
    close_reason: Arc<Mutex<Option<String>>>,
}

impl Drop for HubClient {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl HubClient {
    /// Connect to `hub` (`wss://host:port`) trusting `pin`. One task reads (dispatching replies
    /// and events), one writes; both stop when the client is dropped or the hub goes away.
    pub async fn connect(
        hub: &str,
        pin: Pin,
    ) -> Result<(Self, mpsc::UnboundedReceiver<HubEvent>), ClientError> {
        let (ws, fingerprint) = wire::connect(hub, CONSOLE_PATH, pin).await?;
        let (mut sink, mut stream) = ws.split();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let (evt_tx, evt_rx) = mpsc::unbounded_channel();
        // Frames are bounded by the sessions' flow control (one picture or a small window of
        // terminal output in flight per stream), so this queue stays short.
        let (frame_tx, frame_rx) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let close_reason: Arc<Mutex<Option<String>>> = Arc::default();
        let (reader_ended, reader_reason) = (ended.clone(), close_reason.clone());

        let writer = tokio::spawn(async move {
            while let Some(msg) = out_rx.recv().await {
                if sink.send(msg).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let reader_pending = pending.clone();
        let reader = tokio::spawn(async move {
            loop {
                let text = match stream.next().await {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(bytes))) => {
                        let _ = frame_tx.send(bytes.to_vec());
                        continue;
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let why = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                        tracing::info!(why, "hub closed the connection");
                        if let Ok(mut r) = reader_reason.lock() {
                            *r = Some(why).filter(|w| !w.is_empty());
                        }
                        break;
                    }
                    None => {
                        tracing::info!("hub connection closed");
                        break;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        tracing::info!(%e, "hub connection ended");
                        break;
                    }
                };
                if text.len() > protocol::MAX_CONTROL_MESSAGE {
                    fail_oversized(&reader_pending, text.as_str());
                    continue;
                }
                match crate::protocol::decode::<HubToConsole>(text.as_str()) {
                    Ok(HubToConsole::Reply { id, result }) => {
                        let waiter = reader_pending.lock().ok().and_then(|mut p| p.remove(&id));
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(result);
                        }
                    }
                    Ok(HubToConsole::Event { event }) => {
                        let _ = evt_tx.send(event);
                    }
                    Ok(HubToConsole::Error { error }) => {
                        tracing::warn!(%error, "hub reported an error")
                    }
                    // A reply we cannot parse fails its request now; any other message (a newer
                    // hub's event?) is logged and skipped.
                    Err(e) => match protocol::envelope_id(text.as_str()) {
                        Some(id) => {
                            let waiter = reader_pending.lock().ok().and_then(|mut p| p.remove(&id));
                            if let Some(waiter) = waiter {
                                let _ = waiter.send(Err(ProtocolError::new(
                                    e.code,
                                    format!("the hub's reply could not be read: {e}"),
                                )));
                            }
                        }
                        None => tracing::warn!(%e, "unreadable message from hub"),
                    },
                }
            }
            // Dropping the waiters tells every pending request that the connection is gone.
            if let Ok(mut p) = reader_pending.lock() {
                p.clear();
                reader_ended.store(true, Ordering::Relaxed);
            }
        });
        let client = Self {
            next_id: AtomicU64::new(1),
            outgoing: out_tx,
            pending,
            fingerprint,
            frames: Mutex::new(Some(frame_rx)),
            tasks: [writer, reader],
            ended,
            close_reason,
        };
        Ok((client, evt_rx))
    }

    /// Why the hub closed this connection, when it said (after it closed).
    pub fn close_reason(&self) -> Option<String> {
        self.close_reason.lock().ok()?.clone()
    }

    /// The hub certificate's fingerprint seen on this connection.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The live sessions' binary frames (the first caller gets them).
    pub fn take_frames(&self) -> Option<mpsc::UnboundedReceiver<Vec<u8>>> {
        self.frames.lock().ok()?.take()
    }

    /// Send a binary stream frame (terminal keystrokes).
    pub fn send_frame(&self, bytes: Vec<u8>) -> Result<(), ClientError> {
        self.outgoing
            .send(Message::binary(bytes))
            .map_err(|_| ClientError::Closed)
    }

    /// Send a request whose reply nobody waits for (acknowledgements, input): its answer, or
    /// error, is dropped.
    pub fn send_nowait(&self, body: ConsoleRequest) -> Result<(), ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let text = protocol::encode(&Request { id, body })?;
        self.outgoing
            .send(Message::text(text))
            .map_err(|_| ClientError::Closed)
    }

    /// Send a request and wait for its reply.
    pub async fn request(&self, body: ConsoleRequest) -> Result<ConsoleReply, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.pending.lock().map_err(|_| ClientError::Closed)?;
            if self.ended.load(Ordering::Relaxed) {
                return Err(ClientError::Closed);
            }
            pending.insert(id, tx);
        }
        let text = protocol::encode(&Request { id, body })?;
        // The hub would refuse it unread: say so now, not after the timeout.
        if text.len() > protocol::MAX_CONTROL_MESSAGE {
            if let Ok(mut p) = self.pending.lock() {
                p.remove(&id);
            }
            return Err(protocol::too_large("the request", text.len()).into());
        }
        if self.outgoing.send(Message::text(text)).is_err() {
            return Err(ClientError::Closed);
        }
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Err(_) => {
                if let Ok(mut p) = self.pending.lock() {
                    p.remove(&id);
                }
                Err(ClientError::Timeout(REQUEST_TIMEOUT))
            }
            Ok(Err(_)) => Err(ClientError::Closed),
            Ok(Ok(result)) => Ok(result?),
        }
    }

    /// Send raw text as it is (tests use this for malformed input).
    pub fn send_raw(&self, msg: Message) -> Result<(), ClientError> {
        self.outgoing.send(msg).map_err(|_| ClientError::Closed)
    }

    /// Log in with a password; returns the new login token, its expiry and the user.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
    ) -> Result<(String, DateTime<Utc>, UserInfo), ClientError> {
        self.login_with_code(user, password, None).await
    }

    /// Log in with a password and, where the user's 2FA is active, the TOTP code.
    pub async fn login_with_code(
        &self,
        user: &str,
        password: &str,
        code: Option<&str>,
    ) -> Result<(String, DateTime<Utc>, UserInfo), ClientError> {
        self.login_from_device(user, password, code, None).await
    }

    /// As [`Client::login_with_code`], presenting this console's device token for `user`
    /// (see [`store::LoginStore::device_token`]): once a login with it succeeded, the hub
    /// checks the next ones ahead of a login flood.
    pub async fn login_from_device(
        &self,
        user: &str,
        password: &str,
        code: Option<&str>,
        device: Option<&str>,
    ) -> Result<(String, DateTime<Utc>, UserInfo), ClientError> {
        let body = ConsoleRequest::Login {
            version: PROTOCOL_VERSION,
            user: user.into(),
            password: password.into(),
            code: code.map(Into::into),
            device: device.map(Into::into),
        };
        match self.request(body).await? {
            ConsoleReply::LoggedIn {
                token,
                expires_at,
                user,
            } => Ok((token.expose().to_owned(), expires_at, user)),
            _ => Err(ClientError::Unexpected("login")),
        }
    }

    /// Log in as a guest with support credentials; returns the new login token, its expiry,
    /// the guest as a user, and what the credentials allow.
    pub async fn guest_login(
        &self,
        user: &str,
        password: &str,
        code: &str,
    ) -> Result<GuestLogin, ClientError> {
        let body = ConsoleRequest::GuestLogin {
            version: PROTOCOL_VERSION,
            user: user.into(),
            password: password.into(),
            code: code.into(),
        };
        match self.request(body).await? {
            ConsoleReply::GuestLoggedIn {
                token,
                expires_at,
                user,
                guest,
            } => Ok(GuestLogin {
                token: token.expose().to_owned(),
                expires_at,
                user,
                guest: *guest,
            }),
            _ => Err(ClientError::Unexpected("guest login")),
        }
    }

    /// Authenticate with a stored login token.
    pub async fn resume(&self, token: &str) -> Result<UserInfo, ClientError> {
        match self
            .request(ConsoleRequest::Resume {
                version: PROTOCOL_VERSION,
                token: token.into(),
            })
            .await?
        {
            ConsoleReply::Resumed { user } | ConsoleReply::GuestResumed { user, .. } => Ok(user),
            _ => Err(ClientError::Unexpected("resume")),
        }
    }
}

/// A message over the limit arrived: it is not parsed. The request it answers (its id is at
/// the start) fails at once with a clear error; if the id cannot be read, every waiting request
/// fails, as any of them may have been the one answered.
fn fail_oversized(pending: &Pending, text: &str) {
    let error = || {
        let mut e = protocol::too_large("the hub's reply", text.len());
        e.message
            .push_str(": ask for less (lists come a page at a time from hubs that page them)");
        e
    };
    tracing::warn!(bytes = text.len(), "oversized message from the hub");
    let Ok(mut waiting) = pending.lock() else {
        return;
    };
    match protocol::envelope_id(text) {
        Some(id) => {
            if let Some(waiter) = waiting.remove(&id) {
                let _ = waiter.send(Err(error()));
            }
        }
        None => {
            for (_, waiter) in waiting.drain() {
                let _ = waiter.send(Err(error()));
            }
        }
    }
}

/// A guest's successful login.
#[derive(Debug, Clone)]
pub struct GuestLogin {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: UserInfo,
    pub guest: crate::protocol::GuestInfo,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ErrorCode, MAX_CONTROL_MESSAGE};

    fn waiting(
        pending: &Pending,
        id: RequestId,
    ) -> oneshot::Receiver<Result<ConsoleReply, ProtocolError>> {
        let (tx, rx) = oneshot::channel();
        pending.lock().expect("lock").insert(id, tx);
        rx
    }

    #[test]
    fn an_oversized_reply_fails_its_request_at_once_and_only_that_one() {
        let pending: Pending = Arc::default();
        let mut five = waiting(&pending, 5);
        let mut six = waiting(&pending, 6);
        let reply = format!(
            r#"{{"type":"reply","id":5,"result":{{"Ok":{{"type":"clients","clients":["{}"]}}}}}}"#,
            "x".repeat(MAX_CONTROL_MESSAGE)
        );
        fail_oversized(&pending, &reply);
        let err = five
            .try_recv()
            .expect("answered at once")
            .expect_err("an error");
        assert_eq!(err.code, ErrorCode::TooLarge);
        assert!(err.message.contains("over the limit"), "{err}");
        assert!(six.try_recv().is_err(), "another request still waits");

        // No id to be read: every waiting request fails, none waits out the timeout.
        fail_oversized(&pending, &"y".repeat(MAX_CONTROL_MESSAGE + 1));
        let err = six
            .try_recv()
            .expect("answered at once")
            .expect_err("an error");
        assert_eq!(err.code, ErrorCode::TooLarge);
        assert!(pending.lock().expect("lock").is_empty());
    }
}
