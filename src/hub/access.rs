//! Access control on the hub: the unattended state machine, connection attempts, lock-outs and
//! the life of sessions.
//!
//! The hub relays and records; the agent decides. A connection is allowed when authorisation
//! holds (an unattended grant, or the end user accepts) and every secret the workstation
//! requires is presented: the agent checks both, because it alone holds the secrets and the
//! grant. The hub never sees a secret's stored form, and passes a presented one through
//! without logging or keeping it.

use crate::hub::audit::AuditEvent;
use std::collections::HashSet;
use std::sync::atomic::Ordering;

use tokio::sync::oneshot;

use super::Hub;
use super::store::{AuditedChange, ChangeOutcome, NewAudit, WorkstationRow};
use crate::protocol::{
    AccessEvent, AgentPolicy, AttemptId, ConnectOutcome, ErrorCode, HubEvent, HubToAgent,
    ProtocolError, Refusal, Secret, SessionId, SessionInfo, TeamId, TechnicianRef, UnattendedState,
    UserInfo, WorkstationId, WorkstationInfo,
};
use crate::secrets;

/// After this many consecutive wrong secrets on one workstation, by anyone, its temporary
/// passcode is replaced.
pub const PASSCODE_REPLACE_AFTER: u32 = 10;

/// Access's state: connection attempts waiting for their agent, open sessions, and the
/// console connections that may watch them. Owned here; lock `sessions` before `open_viewers`.
#[derive(Default)]
pub(super) struct AccessState {
    attempts: std::sync::Mutex<std::collections::HashMap<AttemptId, PendingAttempt>>,
    next_attempt: std::sync::atomic::AtomicU64,
    sessions: std::sync::Mutex<std::collections::HashMap<SessionId, LiveSession>>,
    open_viewers: std::sync::Mutex<HashSet<u64>>,
}

/// A connection attempt waiting for its agent.
pub(super) struct PendingAttempt {
    workstation: WorkstationId,
    answer: oneshot::Sender<ConnectOutcome>,
}

/// An open session.
pub(super) struct LiveSession {
    pub info: SessionInfo,
    pub team: TeamId,
    /// Who opened it (a technician's user id, or a guest's credentials id): only they watch
    /// it, or a colleague with their own open session on the same workstation.
    pub owner: crate::protocol::UserId,
    /// Console connections watching it.
    viewers: HashSet<u64>,
    /// When the last viewer left (a session opened by `ctl` starts unwatched).
    unwatched_since: Option<tokio::time::Instant>,
    /// Bytes of stream frames relayed for it, both ways (shared with its streams' routes).
    pub relayed: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl LiveSession {
    /// A console connection watches this session.
    pub(super) fn attach_viewer(&mut self, viewer: u64) {
        self.viewers.insert(viewer);
        self.unwatched_since = None;
    }
}

fn conflict(message: impl Into<String>) -> ProtocolError {
    ProtocolError::new(ErrorCode::Conflict, message)
}

fn technician(user: &UserInfo) -> TechnicianRef {
    TechnicianRef {
        name: user.name.clone(),
        email: user.email.clone(),
    }
}

impl Hub {
    pub(super) fn user_audit(
        &self,
        user: &UserInfo,
        action: AuditEvent,
        ws: &WorkstationInfo,
        detail: serde_json::Value,
    ) -> NewAudit {
        self.user_record(
            user,
            action,
            Some(ws.id.clone()),
            with_hostname(detail, &ws.hostname),
        )
    }

    pub(super) fn agent_audit(
        &self,
        team: &TeamId,
        action: AuditEvent,
        ws: &WorkstationInfo,
        detail: serde_json::Value,
    ) -> NewAudit {
        NewAudit {
            at: self.now(),
            actor: format!("agent:{}", ws.id),
            actor_email: None,
            team_id: Some(team.clone()),
            action,
            target: Some(ws.id.clone()),
            detail: with_hostname(detail, &ws.hostname),
        }
    }

    /// A workstation of `team`, by id or by host name. Another team's is "not found".
    pub(super) async fn team_workstation(
        &self,
        team: &TeamId,
        key: &str,
    ) -> Result<WorkstationRow, ProtocolError> {
        let (team_id, key) = (team.clone(), key.to_owned());
        let found = self
            .db(move |s| {
                if let Some(row) = s.workstation(&key)? {
                    return Ok(vec![row]);
                }
                Ok(s.workstations(&team_id, None)?
                    .into_iter()
                    .filter(|w| w.info.hostname == key)
                    .collect())
            })
            .await?;
        let mine: Vec<_> = found.into_iter().filter(|w| &w.team_id == team).collect();
        match mine.len() {
            0 => Err(ProtocolError::not_found("workstation")),
            1 => Ok(mine
                .into_iter()
                .next()
                .ok_or_else(ProtocolError::internal)?),
            n => Err(ProtocolError::bad_request(format!(
                "{n} workstations have that host name: use the id"
            ))),
        }
    }

    /// The workstation as consoles see it now.
    pub(super) async fn workstation_info(
        &self,
        id: &WorkstationId,
    ) -> Result<WorkstationInfo, ProtocolError> {
        let wid = id.clone();
        let row = self
            .db(move |s| s.workstation(&wid))
            .await?
            .ok_or_else(|| ProtocolError::not_found("workstation"))?;
        Ok(self.with_presence(row.info))
    }

    async fn publish_workstation(
        &self,
        team: &TeamId,
        id: &WorkstationId,
    ) -> Option<WorkstationInfo> {
        let info = self.workstation_info(id).await.ok()?;
        self.publish(
            team,
            HubEvent::Workstation {
                workstation: info.clone(),
            },
        );
        Some(info)
    }

    fn require_online(&self, row: &WorkstationRow, why: &str) -> Result<(), ProtocolError> {
        if self.is_online(&row.info.id) {
            Ok(())
        } else {
            Err(conflict(format!("{} is offline: {why}", row.info.hostname)))
        }
    }

    async fn set_unattended(
        &self,
        id: &WorkstationId,
        state: UnattendedState,
    ) -> Result<(), ProtocolError> {
        let wid = id.clone();
        self.db(move |s| s.set_unattended(&wid, state)).await
    }

    /// A technician asks the end user for unattended access.
    pub(super) async fn request_access(
        &self,
        user: &UserInfo,
        key: &str,
    ) -> Result<WorkstationInfo, ProtocolError> {
        let row = self.team_workstation(&user.team_id, key).await?;
        self.require_online(&row, "the end user must be at the computer to answer")?;
        let next = row
            .info
            .unattended
            .apply(AccessEvent::Request)
            .map_err(conflict)?;
        let record = self.user_audit(
            user,
            AuditEvent::AccessRequest,
            &row.info,
            serde_json::json!({}),
        );
        let change = AuditedChange::SetUnattended {
            workstation: row.info.id.clone(),
            state: next,
        };
        self.commit(change, move |_| vec![record.clone()]).await?;
        self.send_to_agent(
            &row.info.id,
            &HubToAgent::AccessRequested {
                technician: technician(user),
            },
        );
        self.publish_workstation(&row.team_id, &row.info.id)
            .await
            .ok_or_else(ProtocolError::internal)
    }

    /// A technician withdraws unattended access (granted, or still requested) for everyone.
    pub(super) async fn withdraw_access(
        &self,
        user: &UserInfo,
        key: &str,
    ) -> Result<WorkstationInfo, ProtocolError> {
        let row = self.team_workstation(&user.team_id, key).await?;
        let next = row
            .info
            .unattended
            .apply(AccessEvent::Withdraw)
            .map_err(conflict)?;
        let record = self.user_audit(
            user,
            AuditEvent::AccessWithdraw,
            &row.info,
            serde_json::json!({}),
        );
        let change = AuditedChange::SetUnattended {
            workstation: row.info.id.clone(),
            state: next,
        };
        self.commit(change, move |_| vec![record.clone()]).await?;
        // If the agent is offline it learns of the withdrawal when it next says hello.
        self.send_to_agent(
            &row.info.id,
            &HubToAgent::AccessWithdrawn {
                technician: technician(user),
            },
        );
        self.end_sessions_on(
            &row.info.id,
            &format!("unattended access withdrawn by {}", user.name),
        )
        .await;
        self.publish_workstation(&row.team_id, &row.info.id)
            .await
            .ok_or_else(ProtocolError::internal)
    }

    /// The agent's policy, after hello or a change on the workstation. The agent holds the
    /// grant, so its word wins, except for a withdrawal it has not heard of yet.
    /// `first` is the policy the agent sends right after hello: a request still open on the hub
    /// is asked again then, since no question can have survived the agent's reconnect.
    pub(super) async fn agent_policy(
        &self,
        row: &WorkstationRow,
        policy: AgentPolicy,
        first: bool,
    ) -> Result<(), ProtocolError> {
        let id = &row.info.id;
        let wid = id.clone();
        let stored = self
            .db(move |s| s.workstation(&wid))
            .await?
            .map_or_else(|| row.info.clone(), |r| r.info);
        let current = stored.unattended;
        let theirs = policy.unattended;
        let next = match (current, theirs) {
            (UnattendedState::Withdrawn, UnattendedState::Granted) => {
                let by = TechnicianRef {
                    name: "a technician".into(),
                    email: String::new(),
                };
                self.send_to_agent(id, &HubToAgent::AccessWithdrawn { technician: by });
                UnattendedState::Withdrawn
            }
            // Just reconnected with a request still open on the hub: whatever question there
            // was did not survive the reconnect, so ask again.
            (UnattendedState::Requested, s)
                if first && (s.can_request() || s == UnattendedState::Requested) =>
            {
                let by = TechnicianRef {
                    name: "a technician".into(),
                    email: String::new(),
                };
                self.send_to_agent(id, &HubToAgent::AccessRequested { technician: by });
                UnattendedState::Requested
            }
            (_, theirs) => theirs,
        };
        if next != current {
            let action = match next {
                UnattendedState::Granted => Some(AuditEvent::AccessGrant),
                UnattendedState::Denied => Some(AuditEvent::AccessDeny),
                UnattendedState::Revoked => Some(AuditEvent::AccessRevoke),
                _ => None,
            };
            if let Some(action) = action {
                // The end user's decision and its record: one commit.
                let detail = serde_json::json!({ "from": current.label() });
                let record = self.agent_audit(&row.team_id, action, &row.info, detail);
                let change = AuditedChange::SetUnattended {
                    workstation: id.clone(),
                    state: next,
                };
                self.db(move |s| s.commit_audited(change, &|_| vec![record.clone()]))
                    .await?;
            } else {
                self.set_unattended(id, next).await?;
            }
            if current == UnattendedState::Granted && next != UnattendedState::Granted {
                self.end_sessions_on(id, "unattended access revoked on the workstation")
                    .await;
            }
        }
        if policy.requires != stored.requires {
            let (wid, requires) = (id.clone(), policy.requires);
            self.db(move |s| s.set_requirements(&wid, requires)).await?;
        }
        self.publish_workstation(&row.team_id, id).await;
        Ok(())
    }

    /// A technician connects: the hub's own checks (one-time password), then the lock-out
    /// check, then the agent decides; on success a session.
    pub(super) async fn connect(
        &self,
        user: &UserInfo,
        viewer: u64,
        key: &str,
        secret: Option<Secret>,
        otp: Option<Secret>,
        view_only: bool,
    ) -> Result<SessionInfo, ProtocolError> {
        let row = self.team_workstation(&user.team_id, key).await?;
        // Guests: only their target, view only without the control scope.
        let guest = super::credentials::check_session_start(self, user, &row).await?;
        // None while the technician's 2FA is required but not active. A guest's own two
        // factors are their password and security code; the technician who issued the
        // credentials must pass the same check, or credentials would get round it.
        let accountable = guest
            .as_ref()
            .map_or_else(|| user.clone(), |g| g.counted_as(user));
        super::twofa::check_session_start(self, &accountable, key).await?;
        let view_only = view_only || guest.as_ref().is_some_and(|g| !g.scopes.control);
        let otp_used = self.check_connect_otp(user, &row, otp).await?;
        let otp_row = otp_used.as_ref().map(|_| row.clone());
        let result = self
            .connect_checked(user, viewer, row, secret, view_only, guest)
            .await;
        // A code is spent only on a connection that opened.
        if let (Err(e), Some(id), Some(row)) = (&result, otp_used, otp_row) {
            self.release_otp(user, &row, id, e).await;
        }
        result
    }

    async fn connect_checked(
        &self,
        user: &UserInfo,
        viewer: u64,
        row: WorkstationRow,
        secret: Option<Secret>,
        view_only: bool,
        guest: Option<super::principal::GuestGrant>,
    ) -> Result<SessionInfo, ProtocolError> {
        let counted = guest
            .as_ref()
            .map_or_else(|| user.clone(), |g| g.counted_as(user));
        self.require_online(&row, "it can only be reached while its agent is connected")?;
        let ws = row.info.clone();
        // Reserved before the secret is relayed: parallel attempts see each other's counts.
        let counts = self.reserve_secret_attempt(user, &counted, &row).await?;
        // Longer than any secret can be: answered as a wrong one, never relayed.
        let fits = secret
            .as_ref()
            .is_none_or(|s| super::preauth::Field::WorkstationSecret.fits(s.expose()));
        let presented = secret.is_some();
        let attempt: AttemptId = self
            .access_state
            .next_attempt
            .fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.access_state
            .attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                attempt,
                PendingAttempt {
                    workstation: ws.id.clone(),
                    answer: tx,
                },
            );
        let ask = HubToAgent::ConnectAttempt {
            attempt,
            technician: technician(user),
            secret,
            view_only,
            support_credentials: guest.is_some(),
        };
        if !fits {
            self.access_state
                .attempts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&attempt);
        } else if !self.send_to_agent(&ws.id, &ask) {
            self.access_state
                .attempts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&attempt);
            self.release_secret_attempt(&counted, &row).await;
            return Err(conflict(format!("{} went offline", ws.hostname)));
        }
        let answer = async {
            if fits {
                tokio::time::timeout(self.limits.connect_wait, rx).await
            } else {
                Ok(Ok(ConnectOutcome::Refused {
                    reason: Refusal::WrongSecret,
                }))
            }
        };
        let outcome = match answer.await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => {
                self.release_secret_attempt(&counted, &row).await;
                return Err(conflict(format!(
                    "{} went offline before it answered",
                    ws.hostname
                )));
            }
            Err(_) => {
                self.access_state
                    .attempts
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&attempt);
                ConnectOutcome::Refused {
                    reason: Refusal::NoAnswer,
                }
            }
        };

        match outcome {
            ConnectOutcome::Allowed { method, secrets } => {
                let session = SessionInfo {
                    id: secrets::new_id("se").map_err(|_| ProtocolError::internal())?,
                    workstation_id: ws.id.clone(),
                    hostname: ws.hostname.clone(),
                    technician: technician(user),
                    method,
                    secrets,
                    view_only,
                    started_at: self.now(),
                    ended_at: None,
                    end_reason: None,
                };
                let detail = serde_json::json!({
                    "session": session.id,
                    "method": method.label(),
                    "secrets": session.secrets,
                    "view_only": view_only,
                });
                // The cleared count, the session and its record: one commit.
                let record = self.user_audit(user, AuditEvent::SessionStart, &ws, detail);
                let change = AuditedChange::StartSession {
                    team: row.team_id.clone(),
                    session: Box::new(session.clone()),
                    counted: counted.id.clone(),
                };
                self.commit(change, move |_| vec![record.clone()]).await?;
                {
                    let mut sessions = self
                        .access_state
                        .sessions
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    // The console may have gone while the agent decided: then the session
                    // starts unwatched, and the idle sweep ends it in time.
                    let open = self
                        .access_state
                        .open_viewers
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .contains(&viewer);
                    sessions.insert(
                        session.id.clone(),
                        LiveSession {
                            info: session.clone(),
                            team: row.team_id.clone(),
                            owner: user.id.clone(),
                            viewers: if open {
                                HashSet::from([viewer])
                            } else {
                                HashSet::new()
                            },
                            unwatched_since: (!open).then(tokio::time::Instant::now),
                            relayed: std::sync::Arc::default(),
                        },
                    );
                }
                if let Some(g) = &guest {
                    super::credentials::session_started(self, user, g, &session).await?;
                    // The credentials may have ended while the agent was deciding (their
                    // sessions were ended before this one existed): end it now.
                    if super::credentials::check_session_start(self, user, &row)
                        .await
                        .is_err()
                    {
                        self.end_session(&session.id, "support credentials expired or revoked")
                            .await;
                        return Err(ProtocolError::new(
                            ErrorCode::Expired,
                            "these support credentials have expired or were revoked",
                        ));
                    }
                }
                self.publish(
                    &row.team_id,
                    HubEvent::Session {
                        session: session.clone(),
                    },
                );
                self.send_to_agent(
                    &ws.id,
                    &HubToAgent::Session {
                        session: session.clone(),
                    },
                );
                self.publish_workstation(&row.team_id, &ws.id).await;
                Ok(session)
            }
            ConnectOutcome::Refused { reason } => {
                let detail = serde_json::json!({ "reason": reason, "secret_presented": presented });
                self.audit(self.user_audit(user, AuditEvent::ConnectRefused, &ws, detail))
                    .await?;
                let mut err = ProtocolError::new(ErrorCode::Forbidden, reason.message());
                err.refusal = Some(reason);
                if !reason.is_secret_failure() {
                    self.release_secret_attempt(&counted, &row).await;
                } else {
                    err.retry_after_secs = self.secret_failed(user, &row, counts).await?;
                    if let Some(wait) = err.retry_after_secs {
                        err.message = format!(
                            "{}; locked out for {wait} s after repeated failures",
                            reason.message()
                        );
                    }
                }
                Err(err)
            }
        }
    }

    /// An agent's answer to an attempt. Only the workstation asked may answer it.
    pub(super) fn resolve_attempt(
        &self,
        from: &WorkstationId,
        attempt: AttemptId,
        outcome: ConnectOutcome,
    ) {
        let mut attempts = self
            .access_state
            .attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match attempts.get(&attempt) {
            Some(p) if &p.workstation == from => {
                if let Some(p) = attempts.remove(&attempt) {
                    let _ = p.answer.send(outcome);
                }
            }
            _ => {
                tracing::warn!(workstation = %from, attempt, "answer to an unknown connection attempt")
            }
        }
    }

    /// Drop the attempts of a workstation that went away (their waiters see "went offline").
    pub(super) fn forget_attempts(&self, from: &WorkstationId) {
        self.access_state
            .attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, p| &p.workstation != from);
    }

    /// The team's open sessions, newest first.
    pub(super) fn open_sessions(&self, team: &TeamId) -> Vec<SessionInfo> {
        let sessions = self
            .access_state
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut list: Vec<_> = sessions
            .values()
            .filter(|s| &s.team == team)
            .map(|s| s.info.clone())
            .collect();
        list.sort_by_key(|s| std::cmp::Reverse(s.started_at));
        list
    }

    /// A technician ends a session of their team.
    pub(super) async fn end_session_by(
        &self,
        user: &UserInfo,
        id: &SessionId,
    ) -> Result<(), ProtocolError> {
        let mine = self
            .access_state
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .is_some_and(|s| s.team == user.team_id);
        if !mine {
            return Err(ProtocolError::not_found("open session"));
        }
        self.end_session(id, &format!("ended by {}", user.name))
            .await;
        Ok(())
    }

    /// End one session: record, audit, tell the team and the agent.
    pub(super) async fn end_session(&self, id: &SessionId, reason: &str) {
        let Some(live) = self
            .access_state
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
        else {
            return;
        };
        self.credentials.forget_session(id);
        self.drop_session_streams(id);
        let now = self.now();
        let duration = (now - live.info.started_at).num_seconds().max(0);
        let bytes = live.relayed.load(Ordering::Relaxed);
        let entry = NewAudit {
            at: now,
            actor: live.info.technician.name.clone(),
            actor_email: Some(live.info.technician.email.clone()),
            team_id: Some(live.team.clone()),
            action: AuditEvent::SessionEnd,
            target: Some(live.info.workstation_id.clone()),
            detail: serde_json::json!({
                "session": live.info.id,
                "hostname": live.info.hostname,
                "method": live.info.method.label(),
                "reason": reason,
                "duration_secs": duration,
                "bytes": bytes,
            }),
        };
        // The end and its record in one commit. If that fails the session stays open in the
        // store, so the next start closes it with a record of its own.
        let change = AuditedChange::EndSession {
            id: id.clone(),
            at: now,
            reason: reason.to_owned(),
        };
        let ended = match self.commit(change, move |_| vec![entry.clone()]).await {
            Ok(ChangeOutcome::Session(ended)) => *ended,
            outcome => {
                if let Err(e) = outcome {
                    tracing::error!(%e, "session end not recorded");
                }
                SessionInfo {
                    ended_at: Some(now),
                    end_reason: Some(reason.to_owned()),
                    ..live.info.clone()
                }
            }
        };
        self.publish(
            &live.team,
            HubEvent::Session {
                session: ended.clone(),
            },
        );
        self.send_to_agent(
            &live.info.workstation_id,
            &HubToAgent::Session { session: ended },
        );
        self.publish_workstation(&live.team, &live.info.workstation_id)
            .await;
    }

    /// End every session on a workstation.
    pub(super) async fn end_sessions_on(&self, workstation: &WorkstationId, reason: &str) {
        let ids: Vec<SessionId> = self
            .access_state
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|s| &s.info.workstation_id == workstation)
            .map(|s| s.info.id.clone())
            .collect();
        for id in ids {
            self.end_session(&id, reason).await;
        }
    }

    /// A console connection closed: it no longer watches any session.
    pub(super) fn detach_viewer(&self, viewer: u64) {
        let now = tokio::time::Instant::now();
        let mut sessions = self
            .access_state
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Under the sessions lock: a session being opened for this viewer sees either the
        // viewer open (and is detached here) or gone (and starts unwatched).
        self.access_state
            .open_viewers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&viewer);
        for s in sessions.values_mut() {
            if s.viewers.remove(&viewer) && s.viewers.is_empty() {
                s.unwatched_since = Some(now);
            }
        }
    }

    /// End sessions nobody has watched for `limits.session_idle`.
    pub(super) async fn end_unwatched_sessions(&self) {
        let idle = self.limits.session_idle;
        let expired: Vec<SessionId> = self
            .access_state
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|s| s.unwatched_since.is_some_and(|t| t.elapsed() >= idle))
            .map(|s| s.info.id.clone())
            .collect();
        for id in expired {
            let minutes = idle.as_secs() / 60;
            let reason = if minutes >= 1 {
                format!("no viewer for {minutes} minutes")
            } else {
                format!("no viewer for {} s", idle.as_secs())
            };
            self.end_session(&id, &reason).await;
        }
    }

    /// At a clean stop: every open session ends, recorded as such.
    pub(super) async fn end_all_sessions(&self, reason: &str) {
        let ids: Vec<SessionId> = self
            .access_state
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        for id in ids {
            self.end_session(&id, reason).await;
        }
    }

    /// At start: sessions recorded as open cannot have survived a restart, and a hub that
    /// stopped cleanly ended its own, so these were cut by a crash (or a kill).
    pub(super) async fn close_stale_sessions(&self) {
        let now = self.now();
        let change = AuditedChange::CloseOpenSessions {
            at: now,
            reason: HUB_CRASHED.to_owned(),
        };
        // Every stale session's end and its record in one commit.
        let records = move |outcome: &ChangeOutcome| {
            let ChangeOutcome::Sessions(closed) = outcome else {
                return Vec::new();
            };
            closed
                .iter()
                .map(|(team, session)| NewAudit {
                    at: now,
                    actor: "hub".into(),
                    actor_email: None,
                    team_id: Some(team.clone()),
                    action: AuditEvent::SessionEnd,
                    target: Some(session.workstation_id.clone()),
                    detail: serde_json::json!({
                        "session": session.id,
                        "hostname": session.hostname,
                        "technician": session.technician.name,
                        "reason": HUB_CRASHED,
                        // Counted in memory: what a session relayed before a restart is lost.
                        "bytes": 0,
                    }),
                })
                .collect()
        };
        if let Err(e) = self.commit(change, records).await {
            tracing::error!(%e, "cannot close stale sessions");
        }
    }
}

/// Why sessions ended when the hub was stopped cleanly.
pub(super) const HUB_STOPPED: &str = "the hub stopped";
/// Why sessions found open at start ended: the hub did not stop cleanly.
pub(super) const HUB_CRASHED: &str = "the hub restarted after a crash";

fn with_hostname(mut detail: serde_json::Value, hostname: &str) -> serde_json::Value {
    if let Some(map) = detail.as_object_mut() {
        map.insert("hostname".into(), hostname.into());
    }
    detail
}

impl Hub {
    /// A console connection's id, registered as open until [`Hub::detach_viewer`].
    pub(super) fn new_viewer(&self) -> u64 {
        let id = self.new_conn();
        self.access_state
            .open_viewers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id);
        id
    }

    /// Whether any session is open on a workstation (its presence is then "in session").
    pub(super) fn has_session_on(&self, id: &WorkstationId) -> bool {
        self.access_state
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .any(|s| &s.info.workstation_id == id)
    }

    /// The workstations with an open session (the demo never takes those offline).
    pub fn workstations_in_session(&self) -> HashSet<WorkstationId> {
        self.access_state
            .sessions
            .lock()
            .map(|s| s.values().map(|l| l.info.workstation_id.clone()).collect())
            .unwrap_or_default()
    }

    /// A console joins an open session to view it: the session's workstation, whether the
    /// viewer may only watch, and the session's count of relayed bytes.
    pub(super) fn join_session(
        &self,
        user: &UserInfo,
        session: &SessionId,
        viewer: u64,
    ) -> Result<
        (
            WorkstationId,
            bool,
            std::sync::Arc<std::sync::atomic::AtomicU64>,
        ),
        ProtocolError,
    > {
        let mut sessions = self
            .access_state
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (owner, workstation) = sessions
            .get(session)
            .filter(|s| s.team == user.team_id)
            .map(|s| (s.owner.clone(), s.info.workstation_id.clone()))
            .ok_or_else(|| ProtocolError::not_found("open session"))?;
        // Someone else's session: only a colleague who opened their own session on that
        // workstation (and so passed its authorisation, secrets, one-time password and
        // 2FA checks) joins it, with no more control than their own session has.
        let own_view_only = if owner == user.id {
            false
        } else {
            sessions
                .values()
                .find(|s| s.owner == user.id && s.info.workstation_id == workstation)
                .map(|s| s.info.view_only)
                .ok_or_else(|| ProtocolError::not_found("open session"))?
        };
        let live = sessions
            .get_mut(session)
            .ok_or_else(|| ProtocolError::not_found("open session"))?;
        live.attach_viewer(viewer);
        Ok((
            workstation,
            live.info.view_only || own_view_only,
            live.relayed.clone(),
        ))
    }
}
