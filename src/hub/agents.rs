//! An agent's connection: enrol with a link token or authenticate with the workstation key,
//! then stay online (presence) until it goes away, keeping `last_seen` and the report current.

use crate::hub::audit::AuditEvent;
use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use super::Hub;
use super::preauth::Field;
use super::socket::{Incoming, Reader, close, spawn_writer, version_mismatch};
use super::store::{AuditedChange, ChangeOutcome, NewAudit, NewWorkstation, WorkstationRow};
use crate::protocol::{
    self, AgentReply, AgentRequest, ErrorCode, HubEvent, HubToAgent, PROTOCOL_VERSION,
    ProtocolError, Request, WorkstationReport,
};
use crate::secrets;
use crate::wire::ServerStream;

async fn send(out: &mpsc::Sender<Message>, msg: &HubToAgent) {
    if let Ok(text) = protocol::encode(msg) {
        let _ = out.send(Message::text(text)).await;
    }
}

fn agent_actor(id: &str) -> String {
    format!("agent:{id}")
}

/// Reports come from the agent's machine: cap their strings so a hostile agent cannot bloat
/// every console's table.
fn sanitize(mut r: WorkstationReport) -> WorkstationReport {
    fn clip(s: &mut String, max: usize) {
        s.retain(|c| !c.is_control());
        if let Some((i, _)) = s.char_indices().nth(max) {
            s.truncate(i);
        }
    }
    clip(&mut r.hostname, 64);
    clip(&mut r.os, 64);
    clip(&mut r.user, 64);
    clip(&mut r.agent_version, 32);
    r
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
    let mut reader = Reader::new(stream, out.clone(), &hub);

    let deadline = tokio::time::sleep(hub.limits.auth_timeout);
    tokio::pin!(deadline);
    let row = loop {
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
                    let request: Request<AgentRequest> = match protocol::decode(&text) {
                        Ok(r) => r,
                        Err(error) => {
                            send(&out, &HubToAgent::Error { error }).await;
                            continue;
                        }
                    };
                    let (reply, row) = match authenticate(&hub, request.body, peer).await {
                        Ok((reply, row)) => (Ok(reply), Some(row)),
                        Err(e) => (Err(e), None),
                    };
                    send(&out, &HubToAgent::Reply { id: request.id, result: reply }).await;
                    if let Some(row) = row {
                        break row;
                    }
                }
                Incoming::Binary(_) => {
                    send(&out, &HubToAgent::Error { error: ProtocolError::bad_request("authenticate first") }).await;
                }
                Incoming::Gone(_) => return,
            }
        }
    };

    preauth.release();
    let id = row.info.id.clone();
    let team = row.team_id.clone();
    let (conn, mut kicked) = hub.agent_online(&id, out.clone());
    tracing::info!(workstation = %id, host = %row.info.hostname, %peer, "agent online");
    hub.publish(
        &team,
        HubEvent::Workstation {
            workstation: hub.with_presence(row.info.clone()),
        },
    );

    let mut first_policy = true;
    let reason = loop {
        tokio::select! {
            _ = stop.changed() => break "hub shutting down",
            _ = &mut kicked => break "replaced by a newer connection of this workstation",
            incoming = reader.next() => match incoming {
                Incoming::Text(text) => {
                    let request: Request<AgentRequest> = match protocol::decode(&text) {
                        Ok(r) => r,
                        Err(error) => {
                            send(&out, &HubToAgent::Error { error }).await;
                            continue;
                        }
                    };
                    let result = match request.body {
                        AgentRequest::Report { report } => update_report(&hub, &id, &team, report).await,
                        AgentRequest::Policy { policy } => {
                            let first = std::mem::take(&mut first_policy);
                            hub.agent_policy(&row, policy, first).await.map(|()| AgentReply::Done)
                        }
                        AgentRequest::ConnectAnswer { attempt, outcome } => {
                            hub.resolve_attempt(&id, attempt, outcome);
                            Ok(AgentReply::Done)
                        }
                        AgentRequest::StreamEnded { stream, reason } => {
                            tracing::info!(workstation = %id, stream, reason, "the agent ended a stream");
                            hub.stream_ended_by_agent(&id, stream, reason);
                            Ok(AgentReply::Done)
                        }
                        _ => Err(ProtocolError::bad_request("already authenticated")),
                    };
                    send(&out, &HubToAgent::Reply { id: request.id, result }).await;
                }
                Incoming::Binary(bytes) => {
                    if let Err(error) = hub.relay_from_agent(&id, bytes) {
                        send(&out, &HubToAgent::Error { error }).await;
                    }
                }
                Incoming::Gone(why) => {
                    tracing::info!(workstation = %id, why, "agent gone");
                    break "";
                }
            }
        }
    };
    let stopping = *stop.borrow();
    if hub.agent_offline(&id, conn) {
        hub.forget_attempts(&id);
        // A clean stop ends every session as such; this connection may see the stop first.
        let why = if stopping {
            super::access::HUB_STOPPED
        } else {
            "the workstation went offline"
        };
        hub.end_sessions_on(&id, why).await;
        let now = hub.now();
        let wid = id.clone();
        // One store call, not two: in a reconnect storm every goodbye queues one.
        let row = hub
            .db(move |s| {
                // Consoles still hear it went offline when its last-seen time cannot be kept.
                if let Err(e) = s.touch_workstation(&wid, now) {
                    tracing::warn!(workstation = %wid, %e, "cannot record when it was last seen");
                }
                s.workstation(&wid)
            })
            .await;
        if let Ok(Some(row)) = row {
            hub.publish(
                &team,
                HubEvent::Workstation {
                    workstation: hub.with_presence(row.info),
                },
            );
        }
    }
    close(out, writer, reason).await;
}

async fn update_report(
    hub: &Hub,
    id: &str,
    team: &str,
    report: WorkstationReport,
) -> Result<AgentReply, ProtocolError> {
    let report = sanitize(report);
    let now = hub.now();
    let wid = id.to_owned();
    let row = hub
        .db(move |s| {
            s.update_workstation(&wid, &report, now)?;
            s.workstation(&wid)
        })
        .await?;
    if let Some(row) = row {
        hub.publish(
            &team.to_owned(),
            HubEvent::Workstation {
                workstation: hub.with_presence(row.info),
            },
        );
    }
    Ok(AgentReply::Done)
}

async fn authenticate(
    hub: &Hub,
    request: AgentRequest,
    peer: SocketAddr,
) -> Result<(AgentReply, WorkstationRow), ProtocolError> {
    hub.preauth_gate(peer).await?;
    match request {
        AgentRequest::Enrol { version, .. } | AgentRequest::Hello { version, .. }
            if version != PROTOCOL_VERSION =>
        {
            Err(version_mismatch(version))
        }
        AgentRequest::Enrol { token, report, .. } => {
            enrol(hub, token.expose(), sanitize(report), peer).await
        }
        AgentRequest::Hello {
            workstation_id,
            key,
            report,
            ..
        } => {
            let report = sanitize(report);
            let fits =
                Field::WorkstationId.fits(&workstation_id) && Field::Token.fits(key.expose());
            let found = match fits {
                true => {
                    let wid = workstation_id.clone();
                    hub.db(move |s| s.workstation_with_key(&wid)).await?
                }
                false => None,
            };
            let presented = secrets::hash_token(key.expose());
            let Some((row, _)) = found.filter(|(_, stored)| {
                secrets::constant_time_eq(stored.as_bytes(), presented.as_bytes())
            }) else {
                tracing::debug!(%peer, "agent key refused");
                let entry = NewAudit {
                    at: hub.now(),
                    actor: format!("host:{}", report.hostname),
                    actor_email: None,
                    team_id: None,
                    action: AuditEvent::WorkstationKeyRefused,
                    target: None,
                    detail: serde_json::json!({ "from": peer.ip().to_string() }),
                };
                hub.preauth_failed(peer, entry).await?;
                return Err(ProtocolError::new(
                    ErrorCode::InvalidCredentials,
                    "this workstation's key is not known to the hub: enrol again with a new link",
                ));
            };
            // A returning agent usually reports what the store has: then no write (in a
            // reconnect storm every hello would otherwise queue a write on the one database
            // connection). Its last_seen is kept by presence while online and written when
            // it goes.
            let info = &row.info;
            let unchanged = info.hostname == report.hostname
                && info.os == report.os
                && info.user == report.user
                && info.screen == report.screen
                && info.agent_version == report.agent_version;
            let row = if unchanged {
                row
            } else {
                let now = hub.now();
                let wid = row.info.id.clone();
                hub.db(move |s| {
                    s.update_workstation(&wid, &report, now)?;
                    s.workstation(&wid)
                })
                .await?
                .unwrap_or(row)
            };
            let reply = AgentReply::Welcome {
                workstation_id: row.info.id.clone(),
                client_name: row.info.client_name.clone(),
            };
            Ok((reply, row))
        }
        AgentRequest::Report { .. }
        | AgentRequest::Policy { .. }
        | AgentRequest::ConnectAnswer { .. }
        | AgentRequest::StreamEnded { .. } => Err(ProtocolError::new(
            ErrorCode::Unauthenticated,
            "enrol or say hello first",
        )),
    }
}

async fn enrol(
    hub: &Hub,
    token: &str,
    report: WorkstationReport,
    peer: SocketAddr,
) -> Result<(AgentReply, WorkstationRow), ProtocolError> {
    let found = match Field::Token.fits(token) {
        true => {
            let th = secrets::hash_token(token);
            hub.db(move |s| s.link_by_token(&th)).await?
        }
        false => None,
    };
    let now = hub.now();
    let refuse = |team: Option<String>, reason: &str| NewAudit {
        at: now,
        actor: format!("host:{}", report.hostname),
        actor_email: None,
        team_id: team,
        action: AuditEvent::WorkstationEnrolRefused,
        target: None,
        detail: serde_json::json!({ "from": peer.ip().to_string(), "reason": reason }),
    };
    let (link, team, client_name) = match found {
        None => {
            // Summed per source and minute: a flood of guesses is one record a minute.
            hub.preauth_failed(peer, refuse(None, "unknown link"))
                .await?;
            return Err(ProtocolError::new(
                ErrorCode::InvalidCredentials,
                "this enrolment link is not known to the hub",
            ));
        }
        Some((link, team, _)) if link.revoked => {
            hub.preauth_counted(peer);
            hub.audit(refuse(Some(team), "revoked link")).await?;
            return Err(ProtocolError::new(
                ErrorCode::Expired,
                "this enrolment link was revoked: ask for a new one",
            ));
        }
        Some((link, team, _)) if link.expires_at <= now => {
            hub.preauth_counted(peer);
            hub.audit(refuse(Some(team), "expired link")).await?;
            return Err(ProtocolError::new(
                ErrorCode::Expired,
                "this enrolment link has expired: ask for a new one",
            ));
        }
        Some(found) => found,
    };
    let key = secrets::new_token().map_err(|_| ProtocolError::internal())?;
    let id = secrets::new_id("ws").map_err(|_| ProtocolError::internal())?;
    let (t, c) = (team.clone(), link.client_id.clone());
    let defaults = hub.db(move |s| s.security_defaults(&t, &c)).await?;
    let new = NewWorkstation {
        requires: defaults,
        id: id.clone(),
        client_id: link.client_id.clone(),
        link_id: link.id.clone(),
        key_hash: secrets::hash_token(&key),
        report: report.clone(),
        at: now,
    };
    let entry = NewAudit {
        at: now,
        actor: agent_actor(&id),
        actor_email: None,
        team_id: Some(team),
        action: AuditEvent::WorkstationEnrol,
        target: Some(id.clone()),
        detail: serde_json::json!({
            "hostname": report.hostname,
            "client": client_name,
            "link": link.id,
            "from": peer.ip().to_string(),
        }),
    };
    // The workstation and its record in one transaction.
    let change = AuditedChange::EnrolWorkstation(Box::new(new));
    let ChangeOutcome::Workstation(row) = hub.commit(change, move |_| vec![entry.clone()]).await?
    else {
        return Err(ProtocolError::internal());
    };
    Ok((
        AgentReply::Enrolled {
            workstation_id: id,
            key: key.into(),
            client_name,
            defaults,
        },
        *row,
    ))
}
