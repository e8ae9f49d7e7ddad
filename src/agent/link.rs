//! The agent's side of access control on its hub connection: answering access requests and
//! connection attempts, following withdrawals, and keeping the hub's view of its policy
//! current. Questions to the end user can take a minute, so each runs on its own task and
//! sends its answer back through a channel; the connection loop never waits on a person.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::consent::{Answer, Question};
use super::shared::AgentShared;
use crate::protocol::{
    AccessEvent, AgentRequest, AuthMethod, ConnectOutcome, HubToAgent, Refusal, Secret, TechnicianRef, UnattendedState,
};

/// Handle one message from the hub while online.
pub(super) fn on_hub_message(shared: &Arc<AgentShared>, msg: HubToAgent, out: &mpsc::UnboundedSender<AgentRequest>) {
    match msg {
        HubToAgent::AccessRequested { technician } => {
            let shared = shared.clone();
            tokio::spawn(async move { answer_access_request(&shared, technician).await });
        }
        HubToAgent::AccessWithdrawn { technician } => {
            let changed = {
                let mut policy = shared.policy.lock().unwrap_or_else(|p| p.into_inner());
                let was = policy.snapshot().unattended;
                if was != UnattendedState::Withdrawn {
                    policy.set_unattended(UnattendedState::Withdrawn);
                }
                was != UnattendedState::Withdrawn
            };
            if changed {
                tracing::info!(by = %technician.name, "unattended access withdrawn");
                shared.notify_policy_changed();
            }
        }
        HubToAgent::ConnectAttempt { attempt, technician, secret, view_only } => {
            let (shared, out) = (shared.clone(), out.clone());
            tokio::spawn(async move {
                let outcome = decide_connection(&shared, &technician, secret, view_only).await;
                match &outcome {
                    ConnectOutcome::Allowed { method, .. } => {
                        tracing::info!(technician = %technician.name, method = method.label(), "connection allowed");
                    }
                    ConnectOutcome::Refused { reason } => {
                        tracing::info!(technician = %technician.name, ?reason, "connection refused");
                    }
                }
                let _ = out.send(AgentRequest::ConnectAnswer { attempt, outcome });
            });
        }
        HubToAgent::Session { session } => {
            let mut sessions = shared.sessions.lock().unwrap_or_else(|p| p.into_inner());
            sessions.retain(|s| s.id != session.id);
            if session.ended_at.is_none() {
                tracing::info!(technician = %session.technician.name, "session started");
                sessions.push(session);
            } else {
                tracing::info!(
                    technician = %session.technician.name,
                    reason = session.end_reason.as_deref().unwrap_or(""),
                    "session ended"
                );
            }
        }
        HubToAgent::RefreshPasscode { reason } => {
            shared.policy.lock().unwrap_or_else(|p| p.into_inner()).refresh_passcode(chrono::Utc::now());
            tracing::warn!(reason, "temporary passcode replaced");
            shared.notify_policy_changed();
        }
        HubToAgent::Error { error } => tracing::warn!(%error, "hub reported an error"),
        HubToAgent::Reply { result: Err(error), .. } => tracing::warn!(%error, "hub refused a request"),
        HubToAgent::Reply { .. } => {}
    }
}

/// Ask the end user to grant unattended access, then to confirm that technicians may make
/// changes; both yes grants, anything else denies.
async fn answer_access_request(shared: &Arc<AgentShared>, technician: TechnicianRef) {
    let fresh = {
        let mut policy = shared.policy.lock().unwrap_or_else(|p| p.into_inner());
        let state = policy.snapshot().unattended;
        if state == UnattendedState::Requested {
            true
        } else {
            match policy.apply(AccessEvent::Request) {
                Ok(_) => true,
                Err(why) => {
                    tracing::info!(why, "access request not asked");
                    false
                }
            }
        }
    };
    if !fresh {
        // The hub is out of date (say, access is already granted): tell it what holds.
        shared.notify_policy_changed();
        return;
    }
    let grant = shared.consent.ask(Question::GrantUnattended { technician: technician.clone() }).await == Answer::Yes
        && shared.consent.ask(Question::ConfirmChanges { technician: technician.clone() }).await == Answer::Yes;
    let event = if grant { AccessEvent::Grant } else { AccessEvent::Deny };
    let result = shared.policy.lock().unwrap_or_else(|p| p.into_inner()).apply(event);
    match result {
        Ok(state) => tracing::info!(state = state.label(), by = %technician.name, "unattended access answered"),
        Err(why) => tracing::warn!(why, "unattended answer not applied"),
    }
    shared.notify_policy_changed();
}

/// Secrets first (no point asking a person about a caller with the wrong passcode), then
/// authorisation: an unattended grant, or the end user's yes.
async fn decide_connection(
    shared: &Arc<AgentShared>,
    technician: &TechnicianRef,
    secret: Option<Secret>,
    view_only: bool,
) -> ConnectOutcome {
    let checker = shared.clone();
    // Argon2 on purpose: keep it off the async threads.
    let verified = tokio::task::spawn_blocking(move || {
        let policy = checker.policy.lock().unwrap_or_else(|p| p.into_inner());
        policy.verify(secret.as_ref().map(Secret::expose))
    })
    .await
    .unwrap_or(Err(Refusal::WrongSecret));
    let secrets = match verified {
        Ok(kinds) => kinds,
        Err(reason) => return ConnectOutcome::Refused { reason },
    };
    let granted = shared.policy.lock().unwrap_or_else(|p| p.into_inner()).snapshot().unattended == UnattendedState::Granted;
    if granted {
        return ConnectOutcome::Allowed { method: AuthMethod::Unattended, secrets };
    }
    match shared.consent.ask(Question::Connect { technician: technician.clone(), view_only }).await {
        Answer::Yes => ConnectOutcome::Allowed { method: AuthMethod::Attended, secrets },
        Answer::No => ConnectOutcome::Refused { reason: Refusal::Denied },
        Answer::NoAnswer => ConnectOutcome::Refused { reason: Refusal::NoAnswer },
    }
}
