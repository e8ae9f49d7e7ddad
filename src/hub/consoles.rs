//! A console's connection, the transport's part: authenticate first (hub/auth.rs), then pass
//! each request through the gate (hub/dispatch.rs) and send its answer, and push the team's
//! live events (a guest's filtered to their target). It makes no decisions of its own.

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use super::principal::{Owed, Principal};
use super::socket::{Incoming, Reader, close, spawn_writer};
use super::{Hub, auth, credentials, dispatch};
use crate::protocol::{
    self, ConsoleReply, ConsoleRequest, ErrorCode, HubEvent, HubToConsole, ProtocolError, Request,
};
use crate::wire::ServerStream;

struct Conn {
    out: mpsc::Sender<Message>,
}

impl Conn {
    async fn send(&self, msg: &HubToConsole) {
        match protocol::encode(msg) {
            Ok(text) => {
                let _ = self.out.send(Message::text(text)).await;
            }
            Err(e) => tracing::error!(%e, "cannot encode a message for a console"),
        }
    }

    /// Answer request `id`. A reply over the message limit is never sent: lists are paged to
    /// stay under it, and anything else that would pass it becomes a clear error instead.
    async fn reply(&self, id: u64, result: Result<ConsoleReply, ProtocolError>) {
        let reply = HubToConsole::Reply { id, result };
        match protocol::encode(&reply) {
            Ok(text) if text.len() <= protocol::MAX_CONTROL_MESSAGE => {
                let _ = self.out.send(Message::text(text)).await;
            }
            Ok(text) => {
                tracing::error!(
                    bytes = text.len(),
                    "a reply over the message limit was refused"
                );
                let error = ProtocolError::new(
                    ErrorCode::TooLarge,
                    format!(
                        "the reply would be {} bytes, over the limit of {}: ask for a smaller page",
                        text.len(),
                        protocol::MAX_CONTROL_MESSAGE
                    ),
                );
                self.send(&HubToConsole::Reply {
                    id,
                    result: Err(error),
                })
                .await;
            }
            Err(e) => tracing::error!(%e, "cannot encode a reply for a console"),
        }
    }

    async fn error(&self, error: ProtocolError) {
        self.send(&HubToConsole::Error { error }).await;
    }
}

pub(super) async fn serve(
    hub: Arc<Hub>,
    ws: ServerStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
    mut preauth: super::preauth::PreauthSlot,
) {
    let (sink, stream) = ws.split();
    let (out, writer) = spawn_writer(sink);
    let conn = Conn { out: out.clone() };
    let mut reader = Reader::new(stream, out.clone(), &hub);

    // Authenticate first, within the deadline.
    let deadline = tokio::time::sleep(hub.limits.auth_timeout);
    tokio::pin!(deadline);
    // With when the authentication that succeeded began: logins ended after that end this
    // connection, those ended before it do not.
    let (mut session, started) = loop {
        tokio::select! {
            () = &mut deadline => {
                close(out, writer, "authentication timed out").await;
                return;
            }
            _ = stop.changed() => {
                close(out, writer, "hub shutting down").await;
                return;
            }
            incoming = reader.next() => match incoming {
                Incoming::Text(text) => {
                    if text.len() > super::preauth::MAX_PREAUTH_MESSAGE {
                        close(out, writer, "message too large before authentication").await;
                        return;
                    }
                    let request: Request<ConsoleRequest> = match protocol::decode(&text) {
                        Ok(r) => r,
                        Err(e) => {
                            refuse(&conn, &text, e).await;
                            continue;
                        }
                    };
                    // Per source: past its failures, nothing is looked up or hashed.
                    if let Err(e) = hub.preauth_gate(peer).await {
                        conn.reply(request.id, Err(e)).await;
                        continue;
                    }
                    // A new user setting their password with an enrolment code: answered, and
                    // the connection stays unauthenticated (they log in next).
                    if let ConsoleRequest::RedeemEnrolment { .. } = request.body {
                        let from = peer.ip().to_string();
                        let reply = super::users::redeem(&hub, request.body, &from).await;
                        conn.reply(request.id, reply).await;
                        continue;
                    }
                    let started = chrono::Utc::now();
                    match auth::authenticate(&hub, request.body, peer).await {
                        Ok((reply, session)) => {
                            conn.reply(request.id, Ok(reply)).await;
                            break (session, started);
                        }
                        Err(e) => conn.reply(request.id, Err(e)).await,
                    }
                }
                Incoming::Binary(_) => conn.error(ProtocolError::bad_request("log in first")).await,
                Incoming::Gone(_) => return,
            }
        }
    };
    preauth.release();
    tracing::info!(user = %session.user.name, %peer, "console connected");

    let viewer = hub.new_viewer();
    let mut events = hub.subscribe(&session.user.team_id);
    let mut guest_end = credentials::watch_guest(&hub, session.principal.grant()).await;
    let mut user_end = hub.user_ends(&session.user.id);
    let reason = loop {
        tokio::select! {
            _ = stop.changed() => break "hub shutting down",
            why = credentials::ended(&mut guest_end) => break why,
            Ok(()) = user_end.changed() => {
                let end = *user_end.borrow_and_update();
                if let Some(why) = super::user_ends::ends(end, viewer, session.second_factor, started) {
                    tracing::info!(user = %session.user.name, %peer, why, "console closed: logins ended");
                    break why;
                }
            }
            event = events.recv() => match event {
                // A guest sees only their target's events.
                Ok(event) if session.principal.grant().is_some() => {
                    if let Some(event) = credentials::guest_event(&hub, session.principal.grant(), event) {
                        conn.send(&HubToConsole::Event { event }).await;
                    }
                }
                Ok(event) => conn.send(&HubToConsole::Event { event }).await,
                // A console too slow for the event stream missed some: it reloads its lists
                // on this connection (a reconnect would only add load and lag again).
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(user = %session.user.name, n, "console lagged; asking it to resync");
                    conn.send(&HubToConsole::Event { event: HubEvent::Resync }).await;
                }
                Err(broadcast::error::RecvError::Closed) => break "hub shutting down",
            },
            incoming = reader.next() => match incoming {
                Incoming::Text(text) => {
                    let request: Request<ConsoleRequest> = match protocol::decode(&text) {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::debug!(%peer, %e, "bad message from console");
                            refuse(&conn, &text, e).await;
                            continue;
                        }
                    };
                    // The gate: nothing runs for a request the principal may not make.
                    let scope = match dispatch::authorize_session(&hub, &mut session, &request.body).await {
                        Ok(scope) => scope,
                        Err(e) => {
                            conn.reply(request.id, Err(e)).await;
                            continue;
                        }
                    };
                    // A request that waits (for the end user, up to a minute; for a mail
                    // server, up to 10 s) is answered on its own task, so this connection keeps
                    // serving requests and events meanwhile.
                    if dispatch::waits(&request.body) {
                        let (hub, session, out) = (hub.clone(), session.clone(), out.clone());
                        tokio::spawn(async move {
                            let result = dispatch::route(&hub, &session, &scope, viewer, &out, request.body).await;
                            Conn { out }.reply(request.id, result).await;
                        });
                        continue;
                    }
                    let logout = matches!(request.body, ConsoleRequest::Logout);
                    let confirm = matches!(request.body, ConsoleRequest::TwoFactorConfirm { .. });
                    let result = dispatch::route(&hub, &session, &scope, viewer, &out, request.body).await;
                    // 2FA became active on a connection that logged in without a code: the
                    // confirm code proved the phone, not this login; the next login needs a code.
                    if confirm && result.is_ok() && !session.second_factor {
                        session.principal = Principal::Unfinished(Owed::Code);
                    }
                    // And the user's other connections that logged in without a code close.
                    if confirm && result.is_ok() {
                        hub.end_password_only_connections(&session.user.id, viewer);
                    }
                    conn.reply(request.id, result).await;
                    if logout {
                        break "logged out";
                    }
                }
                Incoming::Binary(bytes) => {
                    if let Err(e) = hub.relay_from_viewer(viewer, bytes) {
                        conn.error(e).await;
                    }
                }
                Incoming::Gone(why) => {
                    tracing::info!(user = %session.user.name, %peer, why, "console disconnected");
                    break "";
                }
            }
        }
    };
    hub.drop_viewer_streams(viewer);
    hub.detach_viewer(viewer);
    close(out, writer, reason).await;
}

/// Answer a message that could not be decoded (too large, malformed): as a reply to its
/// request where its id can be read, so the console's request fails at once; else as an error.
/// The connection stays open.
async fn refuse(conn: &Conn, text: &str, error: ProtocolError) {
    match protocol::envelope_id(text) {
        Some(id) => conn.reply(id, Err(error)).await,
        None => conn.error(error).await,
    }
}
