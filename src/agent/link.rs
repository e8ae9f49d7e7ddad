//! The agent's side of access control on its hub connection: answering access requests and
//! connection attempts, following withdrawals, and keeping the hub's view of its policy
//! current. Questions to the end user can take a minute, so each runs on its own task and
//! sends its answer back through a channel; the connection loop never waits on a person.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::consent::Answer;
use super::shared::AgentShared;
use super::streams::Streams;
use crate::protocol::{
    AccessEvent, AgentRequest, AuthMethod, ConnectOutcome, HubToAgent, Refusal, Secret,
    TechnicianRef, UnattendedState,
};

/// Handle one message from the hub while online.
pub(super) fn on_hub_message(
    shared: &Arc<AgentShared>,
    msg: HubToAgent,
    out: &mpsc::UnboundedSender<AgentRequest>,
    streams: &mut Streams,
) {
    match msg {
        HubToAgent::AccessRequested { technician } => {
            let shared = shared.clone();
            tokio::spawn(async move { answer_access_request(&shared, technician).await });
        }
        HubToAgent::AccessWithdrawn { technician } => {
            tracing::info!(by = %technician.name, "unattended access withdrawn");
            if let Err(e) = shared.set_unattended(UnattendedState::Withdrawn) {
                tracing::error!(%e, "cannot record the withdrawal");
            }
        }
        HubToAgent::ConnectAttempt {
            attempt,
            technician,
            secret,
            view_only,
            support_credentials,
        } => {
            let (shared, out) = (shared.clone(), out.clone());
            tokio::spawn(async move {
                let outcome =
                    decide_connection(&shared, &technician, secret, view_only, support_credentials)
                        .await;
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
            if session.ended_at.is_some() {
                streams.session_ended(&session.id);
            }
            shared.update_session(session);
        }
        HubToAgent::RefreshPasscode { reason } => {
            let shared = shared.clone();
            tokio::spawn(async move {
                match shared.refresh_passcode().await {
                    Ok(_) => tracing::warn!(reason, "temporary passcode replaced"),
                    Err(e) => tracing::info!(%e, reason, "passcode not replaced"),
                }
            });
        }
        HubToAgent::Watch {
            stream,
            session,
            view,
        } => streams.watch(stream, session, view),
        HubToAgent::Unwatch { stream } => streams.unwatch(stream),
        HubToAgent::Ack { stream, seq } => streams.ack(stream, seq),
        HubToAgent::Dropped { stream, seq } => streams.dropped(stream, seq),
        // Keyboard and mouse for a desktop arrive with the screen capture; terminals get
        // their keystrokes as binary frames.
        HubToAgent::Input { stream, events } => streams.input(stream, events),
        HubToAgent::Error { error } => tracing::warn!(%error, "hub reported an error"),
        HubToAgent::Reply {
            result: Err(error), ..
        } => tracing::warn!(%error, "hub refused a request"),
        HubToAgent::Reply { .. } => {}
    }
}

/// Ask the end user to grant unattended access (and to confirm that technicians may make
/// changes): both yes grants, anything else denies.
async fn answer_access_request(shared: &Arc<AgentShared>, technician: TechnicianRef) {
    use std::sync::atomic::Ordering;
    if shared.asking_access.swap(true, Ordering::SeqCst) {
        return;
    }
    ask_for_access(shared, technician).await;
    shared.asking_access.store(false, Ordering::SeqCst);
}

async fn ask_for_access(shared: &Arc<AgentShared>, technician: TechnicianRef) {
    let state = shared.policy_snapshot().unattended;
    if state != UnattendedState::Requested
        && let Err(e) = shared.apply_access_event(AccessEvent::Request)
    {
        // The hub is out of date (access already granted, say): tell it what holds.
        tracing::info!(%e, "access request not asked");
        shared.notify_policy_changed();
        return;
    }
    let event = match shared.consent.ask_unattended(&technician).await {
        Answer::Yes => AccessEvent::Grant,
        Answer::No | Answer::NoAnswer => AccessEvent::Deny,
    };
    match shared.apply_access_event(event) {
        Ok(state) => {
            tracing::info!(state = state.label(), by = %technician.name, "unattended access answered")
        }
        Err(e) => {
            // Withdrawn while the question was open, say: the hub's word stands.
            tracing::info!(%e, "unattended answer not applied");
            shared.notify_policy_changed();
        }
    }
}

/// Secrets first (no point asking a person about a caller with the wrong passcode), then
/// authorisation: support credentials the hub checked, an unattended grant, or the end user's
/// yes.
async fn decide_connection(
    shared: &Arc<AgentShared>,
    technician: &TechnicianRef,
    secret: Option<Secret>,
    view_only: bool,
    support_credentials: bool,
) -> ConnectOutcome {
    let secrets = match shared.verify_secret(secret.as_ref()).await {
        Ok(kinds) => kinds,
        Err(reason) => return ConnectOutcome::Refused { reason },
    };
    // DOMAIN "Connecting": valid support credentials for this workstation are authorisation in
    // their own right. The hub vouches for them as it vouches for a technician's identity.
    if support_credentials {
        return ConnectOutcome::Allowed {
            method: AuthMethod::SupportCredentials,
            secrets,
        };
    }
    if shared.policy_snapshot().unattended == UnattendedState::Granted {
        return ConnectOutcome::Allowed {
            method: AuthMethod::Unattended,
            secrets,
        };
    }
    match shared.consent.ask_connect(technician, view_only).await {
        Answer::Yes => ConnectOutcome::Allowed {
            method: AuthMethod::Attended,
            secrets,
        },
        Answer::No => ConnectOutcome::Refused {
            reason: Refusal::Denied,
        },
        Answer::NoAnswer => ConnectOutcome::Refused {
            reason: Refusal::NoAnswer,
        },
    }
}
