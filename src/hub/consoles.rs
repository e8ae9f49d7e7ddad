//! A technician's connection: authenticate (password or token), then serve requests and push
//! the team's live events. Every answer is scoped to the technician's team.

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use super::credentials;
use super::pager;
use super::server::{Incoming, Reader, close, spawn_writer};
use super::store::{NewAudit, WorkstationFilter, WorkstationKey, workstation_key};
use super::{Hub, store::NewLink};
use crate::protocol::{
    self, ConsoleReply, ConsoleRequest, EnrolmentLink, ErrorCode, GroupDefaults, HubEvent,
    HubToConsole, PROTOCOL_VERSION, PageRequest, ProtocolError, Request, Role, UserInfo,
};
use crate::secrets;
use crate::wire::ServerStream;

/// Failed logins in a row after which only an admin can unlock the account.
pub const MAX_FAILED_LOGINS: u32 = 100;
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

/// An authenticated technician on this connection.
struct Session {
    user: UserInfo,
    token_hash: String,
    /// Set for a guest logged in with support credentials.
    guest: Option<super::credentials::GuestGrant>,
    /// This login proved a second factor (a TOTP code, or a guest's security code).
    second_factor: bool,
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
    let session = loop {
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
                    if let Some(session) = authenticate(&hub, &conn, &text, peer).await {
                        break session;
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
    let mut guest_end = credentials::watch_guest(&hub, session.guest.as_ref()).await;
    let mut user_end = hub.user_ends(&session.user.id);
    let reason = loop {
        tokio::select! {
            _ = stop.changed() => break "hub shutting down",
            why = credentials::ended(&mut guest_end) => break why,
            Ok(()) = user_end.changed() => {
                let why = (*user_end.borrow_and_update()).unwrap_or("your logins were ended");
                tracing::info!(user = %session.user.name, %peer, why, "console closed: logins ended");
                break why;
            }
            event = events.recv() => match event {
                // A guest sees only their target's events.
                Ok(event) if session.guest.is_some() => {
                    if let Some(event) = credentials::guest_event(&hub, session.guest.as_ref(), event) {
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
                    let mut request: Request<ConsoleRequest> = match protocol::decode(&text) {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::debug!(%peer, %e, "bad message from console");
                            refuse(&conn, &text, e).await;
                            continue;
                        }
                    };
                    if let Some(grant) = &session.guest {
                        let logout = matches!(request.body, ConsoleRequest::Logout);
                        match credentials::guest_gate(&hub, grant, &session.user, &session.token_hash, request.body).await {
                            Ok(credentials::Gate::Pass(body)) => request.body = body,
                            Ok(credentials::Gate::Reply(reply)) => {
                                conn.reply(request.id, Ok(reply)).await;
                                if logout {
                                    break "logged out";
                                }
                                continue;
                            }
                            Err(e) => {
                                conn.reply(request.id, Err(e)).await;
                                continue;
                            }
                        }
                    }
                    // Connecting waits for the end user (up to a minute): answer it on its own
                    // task so this connection keeps serving requests and events meanwhile.
                    if let ConsoleRequest::Connect { workstation, secret, view_only, otp } = request.body {
                        let (hub, user, out, id) = (hub.clone(), session.user.clone(), out.clone(), request.id);
                        let second_factor = session.second_factor;
                        tokio::spawn(async move {
                            let result = match super::twofa::check_connection(&hub, &user, second_factor).await {
                                Ok(()) => hub
                                    .connect(&user, viewer, &workstation, secret, otp, view_only)
                                    .await
                                    .map(|session| ConsoleReply::Session { session }),
                                Err(e) => Err(e),
                            };
                            Conn { out }.reply(id, result).await;
                        });
                        continue;
                    }
                    // Delivering a one-time password may wait on a mail server (up to 10 s): the
                    // same, so events and other requests are not held up.
                    if let ConsoleRequest::RequestOtp { .. } | ConsoleRequest::ResendOtp { .. } = &request.body {
                        let (hub, user, out, id) = (hub.clone(), session.user.clone(), out.clone(), request.id);
                        tokio::spawn(async move {
                            let result = match request.body {
                                ConsoleRequest::RequestOtp { workstation, emergency } => hub.request_otp(&user, &workstation, emergency).await,
                                ConsoleRequest::ResendOtp { workstation } => hub.resend_otp(&user, &workstation).await,
                                _ => Err(ProtocolError::internal()),
                            };
                            Conn { out }.reply(id, result.map(|otp| ConsoleReply::Otp { otp })).await;
                        });
                        continue;
                    }
                    let logout = matches!(request.body, ConsoleRequest::Logout);
                    let result = handle(&hub, &session, viewer, &out, request.body).await;
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

/// Handle one message before authentication. Returns the session when it authenticates.
async fn authenticate(hub: &Hub, conn: &Conn, text: &str, peer: SocketAddr) -> Option<Session> {
    let request: Request<ConsoleRequest> = match protocol::decode(text) {
        Ok(r) => r,
        Err(e) => {
            refuse(conn, text, e).await;
            return None;
        }
    };
    if let Err(e) = hub.preauth_gate(peer).await {
        conn.reply(request.id, Err(e)).await;
        return None;
    }
    let result = match request.body {
        ConsoleRequest::Login { version, .. } | ConsoleRequest::Resume { version, .. }
            if version != PROTOCOL_VERSION =>
        {
            Err(version_mismatch(version))
        }
        ConsoleRequest::GuestLogin { version, .. } if version != PROTOCOL_VERSION => {
            Err(version_mismatch(version))
        }
        ConsoleRequest::GuestLogin {
            user,
            password,
            code,
            ..
        } => credentials::guest_login(
            hub,
            &user,
            password.expose().to_owned(),
            code.expose().to_owned(),
            peer,
        )
        .await
        .map(|g| {
            (
                g.reply,
                Session {
                    user: g.user,
                    token_hash: g.token_hash,
                    guest: Some(g.grant),
                    second_factor: true,
                },
            )
        }),
        ConsoleRequest::Login {
            user,
            password,
            code,
            ..
        } => login(hub, &user, password.expose().to_owned(), code, peer).await,
        ConsoleRequest::Resume { token, .. } => resume(hub, token.expose(), peer).await,
        _ => Err(ProtocolError::new(
            ErrorCode::Unauthenticated,
            "log in first",
        )),
    };
    match result {
        Ok((reply, session)) => {
            conn.reply(request.id, Ok(reply)).await;
            Some(session)
        }
        Err(e) => {
            conn.reply(request.id, Err(e)).await;
            None
        }
    }
}

/// The answer to a peer that speaks another protocol version.
pub(super) fn version_mismatch(theirs: u32) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::VersionMismatch,
        format!(
            "this hub speaks protocol {PROTOCOL_VERSION}, the peer {theirs}: run the same tether version on both"
        ),
    )
}

fn audit_entry(
    hub: &Hub,
    user: &UserInfo,
    action: &str,
    target: Option<String>,
    detail: serde_json::Value,
) -> NewAudit {
    NewAudit {
        at: hub.now(),
        actor: user.name.clone(),
        actor_email: Some(user.email.clone()),
        team_id: Some(user.team_id.clone()),
        action: action.into(),
        target,
        detail,
    }
}

async fn login(
    hub: &Hub,
    name: &str,
    password: String,
    code: Option<crate::protocol::Secret>,
    peer: SocketAddr,
) -> Result<(ConsoleReply, Session), ProtocolError> {
    use super::preauth::{Field, NameFailures, locked_answer};
    let now = hub.now();
    let from = peer.ip().to_string();
    let unknown = |reason: &str| NewAudit {
        at: now,
        actor: "unknown".into(),
        actor_email: None,
        team_id: None,
        action: "login.fail".into(),
        target: None,
        detail: serde_json::json!({ "from": from, "reason": reason }),
    };
    // Before any lookup or hashing, with the answer a wrong password gets.
    let too_long = !Field::UserName.fits(name)
        || !Field::Password.fits(&password)
        || code.as_ref().is_some_and(|c| !Field::Code.fits(c.expose()));
    if too_long {
        hub.preauth_failed(peer, unknown("a field over its maximum"))
            .await?;
        return Err(ProtocolError::invalid_credentials());
    }
    let _turn = hub.login_gate.enter(name).await;
    let lookup = name.to_owned();
    let record = hub.db(move |s| s.user_by_name(&lookup)).await?;
    let now = hub.now();

    // Names nobody holds are counted too, so both lock the same way at the same try.
    let counted = match &record {
        Some(rec) => NameFailures {
            failures: rec.failed_logins,
            locked_until: rec.locked_until,
        },
        None => hub.preauth.unknown_name(name),
    };
    let locked_message =
        "this account is locked after too many failed logins: an admin must unlock it";
    if let Some(err) = locked_answer(counted, now, MAX_FAILED_LOGINS, locked_message) {
        match &record {
            Some(rec) => {
                hub.preauth_counted(peer);
                let detail = serde_json::json!({ "from": from, "failures": rec.failed_logins });
                hub.audit(audit_entry(hub, &rec.info, "login.locked", None, detail))
                    .await?;
            }
            None => {
                hub.preauth_failed(peer, unknown("unknown user, locked"))
                    .await?;
            }
        }
        return Err(err);
    }

    // Unknown users are checked against a dummy hash, so both failures cost the same time.
    let stored = record.as_ref().map(|r| r.password_hash.clone());
    // One source cannot queue more than a few checks ahead of everyone else's logins.
    let _turn_at_hashing = hub.hash_turn(peer)?;
    let ok = secrets::work::bounded(move || {
        let hash = stored
            .as_deref()
            .unwrap_or_else(|| secrets::dummy_password_hash());
        secrets::verify_password(&password, hash) && stored.is_some()
    })
    .await
    .map_err(super::preauth::work_error)?;

    let Some(rec) = record.clone().filter(|_| ok) else {
        let until = |n| super::lockout_delay(n).map(|d| now + d);
        let Some(rec) = &record else {
            hub.preauth.unknown_name_failed(name, until);
            hub.preauth_failed(peer, unknown("unknown user")).await?;
            return Err(ProtocolError::invalid_credentials());
        };
        hub.preauth_counted(peer);
        let id = rec.info.id.clone();
        let next = until(rec.failed_logins + 1);
        let failures = hub.db(move |s| s.record_login_failure(&id, next)).await?;
        let detail = serde_json::json!({
            "from": from,
            "reason": "wrong password",
            "failures": failures,
        });
        let entry = NewAudit {
            at: now,
            actor: name.to_owned(),
            actor_email: Some(rec.info.email.clone()),
            team_id: Some(rec.info.team_id.clone()),
            action: "login.fail".into(),
            target: None,
            detail,
        };
        hub.audit(entry).await?;
        return Err(ProtocolError::invalid_credentials());
    };

    let with_code = super::twofa::check_login(hub, &rec, code.as_ref(), &from).await?;

    let token = secrets::new_token().map_err(|_| ProtocolError::internal())?;
    let token_hash = secrets::hash_token(&token);
    let expires_at = now + hub.limits.token_ttl;
    let (user_id, th) = (rec.info.id.clone(), token_hash.clone());
    hub.db(move |s| {
        s.reset_login_failures(&user_id)?;
        s.insert_login_token(&th, &user_id, expires_at)
    })
    .await?;
    hub.audit(audit_entry(
        hub,
        &rec.info,
        "login.ok",
        None,
        serde_json::json!({ "from": from, "method": if with_code { "password+totp" } else { "password" } }),
    ))
    .await?;
    let reply = ConsoleReply::LoggedIn {
        token: token.into(),
        expires_at,
        user: rec.info.clone(),
    };
    Ok((
        reply,
        Session {
            user: rec.info,
            token_hash,
            guest: None,
            second_factor: with_code,
        },
    ))
}

async fn resume(
    hub: &Hub,
    token: &str,
    peer: SocketAddr,
) -> Result<(ConsoleReply, Session), ProtocolError> {
    let now = hub.now();
    let expired = || {
        ProtocolError::new(
            ErrorCode::Expired,
            "the login has expired or was revoked: log in again",
        )
    };
    let unknown = |reason: &str| NewAudit {
        at: now,
        actor: "unknown".into(),
        actor_email: None,
        team_id: None,
        action: "login.fail".into(),
        target: None,
        detail: serde_json::json!({ "from": peer.ip().to_string(), "reason": reason }),
    };
    if !super::preauth::Field::Token.fits(token) {
        hub.preauth_failed(peer, unknown("a field over its maximum"))
            .await?;
        return Err(expired());
    }
    let token_hash = secrets::hash_token(token);
    let th = token_hash.clone();
    let user = hub.db(move |s| s.user_by_token(&th, now)).await?;
    let from = peer.ip().to_string();
    let guest = match user {
        Some(_) => None,
        None => credentials::guest_resume(hub, &token_hash, peer).await?,
    };
    if let Some(g) = guest {
        let session = Session {
            user: g.user,
            token_hash: g.token_hash,
            guest: Some(g.grant),
            second_factor: true,
        };
        return Ok((g.reply, session));
    }
    match user {
        Some(user) => {
            let detail = serde_json::json!({ "from": from, "method": "token" });
            hub.audit(audit_entry(hub, &user, "login.ok", None, detail))
                .await?;
            let second_factor = super::twofa::is_active(hub, &user).await?;
            Ok((
                ConsoleReply::Resumed { user: user.clone() },
                Session {
                    user,
                    token_hash,
                    guest: None,
                    second_factor,
                },
            ))
        }
        None => {
            hub.preauth_failed(peer, unknown("unknown or expired token"))
                .await?;
            Err(expired())
        }
    }
}

/// A client name as typed: trimmed, 1 to 100 characters, no control characters.
fn client_name(name: &str) -> Result<String, ProtocolError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ProtocolError::bad_request(
            "a client name has 1 to 100 characters and no control characters",
        ));
    }
    Ok(name.to_owned())
}

async fn handle(
    hub: &Hub,
    session: &Session,
    viewer: u64,
    out: &mpsc::Sender<Message>,
    request: ConsoleRequest,
) -> Result<ConsoleReply, ProtocolError> {
    let user = &session.user;
    let team = user.team_id.clone();
    match request {
        ConsoleRequest::Login { .. }
        | ConsoleRequest::Resume { .. }
        | ConsoleRequest::GuestLogin { .. } => Err(ProtocolError::bad_request(
            "already logged in on this connection",
        )),
        request @ (ConsoleRequest::IssueCredentials { .. }
        | ConsoleRequest::ListCredentials { .. }
        | ConsoleRequest::RevokeCredentials { .. }
        | ConsoleRequest::RegenerateCredentials { .. }) => {
            credentials::handle(hub, user, request).await
        }
        ConsoleRequest::Logout => {
            let th = session.token_hash.clone();
            hub.db(move |s| s.delete_login_token(&th)).await?;
            hub.audit(audit_entry(
                hub,
                user,
                "logout",
                None,
                serde_json::json!({}),
            ))
            .await?;
            Ok(ConsoleReply::Done)
        }
        ConsoleRequest::ListClients { page } => {
            let clients = hub.db(move |s| s.clients(&team)).await?;
            let total = clients.len() as u64;
            let page = pager::page_in_memory("clients", clients, &page, |c| {
                (c.name.to_lowercase(), c.id.clone())
            })?;
            Ok(ConsoleReply::Clients {
                clients: page.rows,
                next: page.next,
                total: Some(total),
            })
        }
        ConsoleRequest::AddClient { name } => {
            let name = client_name(&name)?;
            let id = secrets::new_id("cl").map_err(|_| ProtocolError::internal())?;
            let at = hub.now();
            let t = team.clone();
            let client = hub.db(move |s| s.create_client(&id, &t, &name, at)).await?;
            let detail = serde_json::json!({ "name": client.name });
            hub.audit(audit_entry(
                hub,
                user,
                "client.add",
                Some(client.id.clone()),
                detail,
            ))
            .await?;
            hub.publish(
                &team,
                HubEvent::Client {
                    client: client.clone(),
                },
            );
            Ok(ConsoleReply::Client { client })
        }
        ConsoleRequest::CreateLink { client, valid_days } => {
            let days = valid_days.unwrap_or(hub.limits.default_link_days);
            if days == 0 || days > hub.limits.max_link_days {
                return Err(ProtocolError::bad_request(format!(
                    "a link is valid for 1 to {} days",
                    hub.limits.max_link_days
                )));
            }
            let t = team.clone();
            let client = hub
                .db(move |s| s.client(&t, &client))
                .await?
                .ok_or_else(|| ProtocolError::not_found("client"))?;
            let token = secrets::new_token().map_err(|_| ProtocolError::internal())?;
            let now = hub.now();
            let new = NewLink {
                id: secrets::new_id("ln").map_err(|_| ProtocolError::internal())?,
                client_id: client.id.clone(),
                token_hash: secrets::hash_token(&token),
                created_by: user.id.clone(),
                created_at: now,
                expires_at: now + chrono::Duration::days(i64::from(days)),
            };
            let link = hub.db(move |s| s.create_link(new)).await?;
            let url = EnrolmentLink {
                hub: hub.public_addr().to_owned(),
                token,
                fingerprint: hub.fingerprint().to_owned(),
            }
            .to_string();
            let detail = serde_json::json!({ "link": link.id, "expires_at": link.expires_at, "client": client.name });
            hub.audit(audit_entry(
                hub,
                user,
                "link.create",
                Some(client.id),
                detail,
            ))
            .await?;
            Ok(ConsoleReply::Link { link, url })
        }
        ConsoleRequest::ListLinks { client, page } => {
            let t = team.clone();
            let links = hub
                .db(move |s| match s.client(&t, &client)? {
                    Some(c) => s.links(&c.id).map(Some),
                    None => Ok(None),
                })
                .await?
                .ok_or_else(|| ProtocolError::not_found("client"))?;
            let total = links.len() as u64;
            // Newest first, as the store lists them.
            let page = pager::page_in_memory("links", links, &page, |l| {
                (std::cmp::Reverse(l.created_at), l.id.clone())
            })?;
            Ok(ConsoleReply::Links {
                links: page.rows,
                next: page.next,
                total: Some(total),
            })
        }
        ConsoleRequest::RevokeLink { link } => {
            let revoked = hub
                .db(move |s| s.revoke_link(&team, &link))
                .await?
                .ok_or_else(|| ProtocolError::not_found("link"))?;
            let detail = serde_json::json!({ "client": revoked.client_id });
            hub.audit(audit_entry(
                hub,
                user,
                "link.revoke",
                Some(revoked.id),
                detail,
            ))
            .await?;
            Ok(ConsoleReply::Done)
        }
        ConsoleRequest::ListWorkstations {
            client,
            filter,
            page,
        } => list_workstations(hub, team, client, filter, page).await,
        ConsoleRequest::RequestAccess { workstation } => {
            let workstation = hub.request_access(user, &workstation).await?;
            Ok(ConsoleReply::Workstation { workstation })
        }
        ConsoleRequest::WithdrawAccess { workstation } => {
            let workstation = hub.withdraw_access(user, &workstation).await?;
            Ok(ConsoleReply::Workstation { workstation })
        }
        // Handled on its own task by the connection loop; here only if called directly.
        ConsoleRequest::Connect {
            workstation,
            secret,
            view_only,
            otp,
        } => {
            super::twofa::check_connection(hub, user, session.second_factor).await?;
            let session = hub
                .connect(user, 0, &workstation, secret, otp, view_only)
                .await?;
            Ok(ConsoleReply::Session { session })
        }
        ConsoleRequest::ListSessions { page } => {
            let sessions = hub.open_sessions(&team);
            let total = sessions.len() as u64;
            let page = pager::page_in_memory("sessions", sessions, &page, |s| {
                (std::cmp::Reverse(s.started_at), s.id.clone())
            })?;
            Ok(ConsoleReply::Sessions {
                sessions: page.rows,
                next: page.next,
                total: Some(total),
            })
        }
        ConsoleRequest::Watch { session: id, view } => Ok(ConsoleReply::Watching {
            stream: hub.watch(user, viewer, out, &id, view)?,
        }),
        ConsoleRequest::Unwatch { stream } => {
            hub.unwatch(viewer, stream).map(|()| ConsoleReply::Done)
        }
        ConsoleRequest::Ack { stream, seq } => {
            hub.ack(viewer, stream, seq).map(|()| ConsoleReply::Done)
        }
        ConsoleRequest::Input { stream, events } => hub
            .input(viewer, stream, events)
            .map(|()| ConsoleReply::Done),
        ConsoleRequest::ListGroups { page } => {
            let groups = hub
                .db(move |s| {
                    let clients = s.clients(&team)?;
                    let name =
                        |id: &str| clients.iter().find(|c| c.id == id).map(|c| c.name.clone());
                    let otp = s.otp_groups(&team)?;
                    let mut groups: Vec<GroupDefaults> = s
                        .list_security_defaults(&team)?
                        .into_iter()
                        .map(|(client_id, requires)| GroupDefaults {
                            client_name: client_id.as_deref().and_then(name),
                            otp: otp.contains(&client_id),
                            client_id,
                            requires,
                        })
                        .collect();
                    for client_id in otp {
                        if !groups.iter().any(|g| g.client_id == client_id) {
                            groups.push(GroupDefaults {
                                client_name: client_id.as_deref().and_then(name),
                                client_id,
                                requires: crate::protocol::SecretRequirements::default(),
                                otp: true,
                            });
                        }
                    }
                    Ok(groups)
                })
                .await?;
            let total = groups.len() as u64;
            // The team's own group (no client) first, then by client id.
            let page = pager::page_in_memory("groups", groups, &page, |g| g.client_id.clone())?;
            Ok(ConsoleReply::Groups {
                groups: page.rows,
                next: page.next,
                total: Some(total),
            })
        }
        ConsoleRequest::SetGroupDefaults { client, requires } => {
            if user.role != Role::Admin {
                return Err(ProtocolError::new(
                    ErrorCode::Forbidden,
                    "only admins change security defaults",
                ));
            }
            let t = team.clone();
            let client = match client {
                None => None,
                Some(c) => Some(
                    hub.db(move |s| s.client(&t, &c))
                        .await?
                        .ok_or_else(|| ProtocolError::not_found("client"))?,
                ),
            };
            let (t, cid) = (team.clone(), client.as_ref().map(|c| c.id.clone()));
            hub.db(move |s| s.set_security_defaults(&t, cid.as_ref(), requires))
                .await?;
            let detail = serde_json::json!({
                "group": client.as_ref().map_or_else(|| "team".to_owned(), |c| c.name.clone()),
                "require_passcode": requires.passcode,
                "require_password": requires.password,
            });
            hub.audit(audit_entry(
                hub,
                user,
                "group.defaults",
                client.map(|c| c.id),
                detail,
            ))
            .await?;
            Ok(ConsoleReply::Done)
        }
        ConsoleRequest::EndSession { session: id } => {
            hub.end_session_by(user, &id).await?;
            Ok(ConsoleReply::Done)
        }
        request @ (ConsoleRequest::TwoFactorStatus
        | ConsoleRequest::TwoFactorEnable
        | ConsoleRequest::TwoFactorConfirm { .. }
        | ConsoleRequest::ListUsers { .. }
        | ConsoleRequest::SetUserTwoFactor { .. }
        | ConsoleRequest::SetGlobalTwoFactor { .. }
        | ConsoleRequest::ResetUserTwoFactor { .. }
        | ConsoleRequest::SearchAudit { .. }) => super::twofa::handle(hub, user, request).await,
        ConsoleRequest::RequestOtp {
            workstation,
            emergency,
        } => Ok(ConsoleReply::Otp {
            otp: hub.request_otp(user, &workstation, emergency).await?,
        }),
        ConsoleRequest::ResendOtp { workstation } => Ok(ConsoleReply::Otp {
            otp: hub.resend_otp(user, &workstation).await?,
        }),
        ConsoleRequest::SetWorkstationOtp {
            workstation,
            required,
        } => Ok(ConsoleReply::Workstation {
            workstation: hub
                .set_workstation_otp(user, &workstation, required)
                .await?,
        }),
        ConsoleRequest::SetGroupOtp { client, required } => {
            hub.set_group_otp(user, client, required).await?;
            Ok(ConsoleReply::Done)
        }
        ConsoleRequest::ListOutbox { limit, page } => {
            let (messages, next) = hub.list_outbox(user, limit, &page).await?;
            Ok(ConsoleReply::Outbox {
                messages,
                next,
                total: None,
            })
        }
        // The unfiltered form of SearchAudit (older consoles and scripts): one implementation.
        ConsoleRequest::ListAudit {
            limit,
            before,
            page,
        } => {
            let search = ConsoleRequest::SearchAudit {
                query: crate::protocol::AuditQuery::default(),
                limit,
                before,
                page,
            };
            super::twofa::handle(hub, user, search).await
        }
    }
}

/// One page of the team's workstations, with their live presence: keyset paging in the store,
/// so a 20,000-workstation team is never read whole to answer a page.
async fn list_workstations(
    hub: &Hub,
    team: String,
    client: Option<String>,
    filter: Option<String>,
    page: PageRequest,
) -> Result<ConsoleReply, ProtocolError> {
    let after: Option<WorkstationKey> = pager::start("workstations", &page)?;
    let fetch = pager::fetch_rows(&page);
    let filter = filter.as_deref().and_then(WorkstationFilter::new);
    let unfiltered = filter.is_none();
    let (rows, total) = hub
        .db(move |s| {
            let client_id = match client {
                Some(c) => match s.client(&team, &c)? {
                    Some(found) => Some(found.id),
                    None => return Ok(None),
                },
                None => None,
            };
            let rows = s.workstations_page(
                &team,
                client_id.as_ref(),
                filter.as_ref(),
                after.as_ref(),
                fetch,
            )?;
            // Counting a filtered list would read it whole: only the plain count is cheap.
            let total = match unfiltered {
                true => Some(s.count_workstations(&team, client_id.as_ref())?),
                false => None,
            };
            Ok(Some((rows, total)))
        })
        .await?
        .ok_or_else(|| ProtocolError::not_found("client"))?;
    // Measured as sent: with live presence filled in.
    let infos = rows.into_iter().map(|r| hub.with_presence(r.info));
    let page = pager::paginate(
        "workstations",
        infos,
        pager::rows_wanted(&page),
        pager::PAGE_BUDGET,
        workstation_key,
    )?;
    Ok(ConsoleReply::Workstations {
        workstations: page.rows,
        next: page.next,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_delays_grow_and_cap() {
        assert_eq!(crate::hub::lockout_delay(1), None);
        assert_eq!(crate::hub::lockout_delay(4), None);
        assert_eq!(
            crate::hub::lockout_delay(5),
            Some(chrono::Duration::seconds(1))
        );
        assert_eq!(
            crate::hub::lockout_delay(6),
            Some(chrono::Duration::seconds(2))
        );
        assert_eq!(
            crate::hub::lockout_delay(8),
            Some(chrono::Duration::seconds(8))
        );
        assert_eq!(
            crate::hub::lockout_delay(40),
            Some(chrono::Duration::seconds(900))
        );
        assert_eq!(
            crate::hub::lockout_delay(99),
            Some(chrono::Duration::seconds(900))
        );
    }

    #[test]
    fn client_names_are_checked() {
        assert_eq!(client_name("  Acme  ").expect("ok"), "Acme");
        assert!(client_name("").is_err());
        assert!(client_name("a\nb").is_err());
        assert!(client_name(&"x".repeat(101)).is_err());
    }
}
