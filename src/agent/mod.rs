//! The agent: runs on the supported computer, enrols with a client link, keeps its
//! workstation key in its data dir, reports the machine and stays connected to the hub,
//! reconnecting forever with jittered exponential backoff (capped at 30 s).

pub mod consent;
pub mod control;
mod link;
mod pixels;
pub mod policy;
pub mod screen;
pub mod shared;
mod streams;
pub mod terminal;
mod views;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;

use crate::protocol::{
    AGENT_PATH, AgentReply, AgentRequest, EnrolmentLink, ErrorCode, HubToAgent, PROTOCOL_VERSION,
    ProtocolError, Request, WorkstationReport,
};
use crate::tls::{ResumingClient, parse_fingerprint};
use crate::wire::{self, WireError};
pub use screen::ScreenSource;
pub use shared::AgentShared;

/// Longest wait between reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
const IDENTITY_FILE: &str = "identity.json";

/// What the agent keeps between runs (file mode 0600): which hub, and the key that proves
/// this is the enrolled workstation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub hub: String,
    pub fingerprint: String,
    pub workstation_id: String,
    pub key: String,
}

impl Identity {
    pub fn load(data_dir: &Path) -> Option<Self> {
        let bytes = std::fs::read(data_dir.join(IDENTITY_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn save(&self, data_dir: &Path) -> std::io::Result<()> {
        crate::paths::create_private_dir(data_dir)?;
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::paths::write_private(&data_dir.join(IDENTITY_FILE), &json)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(
        "this agent is not enrolled yet: start it with --link and the link your technician gave you"
    )]
    NotEnrolled,
    #[error("the hub refused the enrolment link: {0}")]
    EnrolmentRefused(ProtocolError),
    #[error("the hub no longer knows this workstation ({0}): enrol again with a new link")]
    KeyRefused(ProtocolError),
    #[error("the link's certificate fingerprint is malformed: {0}")]
    Fingerprint(#[from] crate::tls::TlsError),
    #[error("cannot save the agent's identity in {dir}: {source}")]
    Save { dir: String, source: std::io::Error },
}

/// What the agent is doing, for its own display and for the demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentStatus {
    Connecting {
        attempt: u32,
    },
    Online {
        workstation_id: String,
        client: String,
    },
    Offline {
        reason: String,
        retry_in: Duration,
    },
}

/// How to run an agent.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub data_dir: PathBuf,
    /// Needed for the first run; later runs use the stored identity.
    pub link: Option<EnrolmentLink>,
    pub screen: ScreenSource,
    /// Report these details instead of the real machine's (the demo's synthetic fleet).
    pub report: Option<WorkstationReport>,
    /// Technicians may open a shell (a terminal session) here.
    pub shell: bool,
}

/// The details of this machine. The screen size is the source's own for synthetic screens and
/// `None` otherwise; a live source's is filled in once it runs ([`screen::probe_size`]).
pub fn local_report(screen: &ScreenSource) -> WorkstationReport {
    WorkstationReport {
        hostname: whoami::fallible::hostname().unwrap_or_else(|_| "unknown-host".into()),
        os: whoami::distro(),
        user: whoami::username(),
        screen: screen.size(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
    }
}

/// Jittered exponential backoff: attempt 0 waits ~1 s, doubling to at most [`MAX_BACKOFF`];
/// each wait is drawn from its upper half so a fleet does not reconnect in lockstep.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = Duration::from_secs(1u64 << attempt.min(5)).min(MAX_BACKOFF);
    let mut b = [0u8; 2];
    let _ = crate::secrets::random_bytes(&mut b);
    let fraction = 0.5 + f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) / 2.0;
    ceiling.mul_f64(fraction)
}

/// Run until `shutdown` completes, or a fatal error (refused link or key). Connection failures
/// are not fatal: the agent retries forever.
pub async fn run(
    opts: AgentOptions,
    shared: Arc<AgentShared>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let status = &shared.status;
    tokio::pin!(shutdown);
    let mut identity = Identity::load(&opts.data_dir);
    if let (Some(id), Some(link)) = (&identity, &opts.link)
        && crate::client::store::hub_key(&id.hub) != crate::client::store::hub_key(&link.hub)
    {
        tracing::info!(old = %id.hub, new = %link.hub, "link points to another hub: enrolling there");
        identity = None;
    }
    if identity.is_none() && opts.link.is_none() {
        return Err(AgentError::NotEnrolled);
    }
    let mut attempt: u32 = 0;
    // Kept across reconnects so returns resume their TLS session.
    let mut tls = None;
    loop {
        let _ = status.send(AgentStatus::Connecting { attempt });
        let session = connect_once(&opts, &mut identity, &mut tls, &shared);
        let outcome = tokio::select! {
            () = &mut shutdown => return Ok(()),
            outcome = session => outcome,
        };
        let reason = match outcome {
            Ok(Session::Ended(reason)) => {
                attempt = 0;
                reason
            }
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Retry(reason)) => reason,
        };
        let wait = backoff(attempt);
        attempt = attempt.saturating_add(1);
        tracing::info!(reason, ?wait, "agent offline; retrying");
        let _ = status.send(AgentStatus::Offline {
            reason,
            retry_in: wait,
        });
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// A task that stops when this is dropped (with the connection it serves).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum Session {
    /// Was online, then the connection ended.
    Ended(String),
}

enum Failure {
    Fatal(AgentError),
    Retry(String),
}

async fn connect_once(
    opts: &AgentOptions,
    identity: &mut Option<Identity>,
    tls: &mut Option<ResumingClient>,
    shared: &Arc<AgentShared>,
) -> Result<Session, Failure> {
    let status = &shared.status;
    let (hub, fingerprint) = match (identity.as_ref(), &opts.link) {
        (Some(id), _) => (id.hub.clone(), id.fingerprint.clone()),
        (None, Some(link)) => (link.hub_url(), link.fingerprint.clone()),
        (None, None) => return Err(Failure::Fatal(AgentError::NotEnrolled)),
    };
    let pin = parse_fingerprint(&fingerprint).map_err(|e| Failure::Fatal(e.into()))?;
    let client = match tls.take() {
        Some(client) if client.fingerprint() == pin => client,
        _ => ResumingClient::new(pin).map_err(|e| Failure::Fatal(e.into()))?,
    };
    let client = tls.insert(client);
    let mut report = opts
        .report
        .clone()
        .unwrap_or_else(|| local_report(&opts.screen));
    if report.screen.is_none() {
        // A live source's size is known only once it runs; asked before dialling, so the
        // hub's authentication timer does not run meanwhile.
        report.screen = screen::probe_size(&opts.screen).await;
    }
    let ws = wire::connect_resuming(&hub, AGENT_PATH, client)
        .await
        .map_err(|e| {
            if matches!(e, WireError::CertificateMismatch { .. }) {
                tracing::error!(%e, "hub certificate mismatch");
            }
            Failure::Retry(e.to_string())
        })?;
    let (mut sink, mut stream) = ws.split();

    let body = match identity.as_ref() {
        Some(id) => AgentRequest::Hello {
            version: PROTOCOL_VERSION,
            workstation_id: id.workstation_id.clone(),
            key: id.key.as_str().into(),
            report: report.clone(),
        },
        None => match &opts.link {
            Some(link) => AgentRequest::Enrol {
                version: PROTOCOL_VERSION,
                token: link.token.as_str().into(),
                report: report.clone(),
            },
            None => return Err(Failure::Fatal(AgentError::NotEnrolled)),
        },
    };
    let enrolling = matches!(body, AgentRequest::Enrol { .. });
    wire::send(&mut sink, &Request { id: 1, body })
        .await
        .map_err(|e| Failure::Retry(e.to_string()))?;
    let reply = loop {
        match wire::recv::<_, HubToAgent>(&mut stream).await {
            Ok(HubToAgent::Reply { id: 1, result }) => break result,
            Ok(_) => continue,
            Err(e) => return Err(Failure::Retry(e.to_string())),
        }
    };
    let client = match reply {
        Ok(AgentReply::Enrolled {
            workstation_id,
            key,
            client_name,
            defaults,
        }) => {
            let new = Identity {
                hub: hub.clone(),
                fingerprint,
                workstation_id,
                key: key.expose().to_owned(),
            };
            new.save(&opts.data_dir).map_err(|source| {
                Failure::Fatal(AgentError::Save {
                    dir: opts.data_dir.display().to_string(),
                    source,
                })
            })?;
            tracing::info!(workstation = %new.workstation_id, client = %client_name, "enrolled");
            *identity = Some(new);
            // The group's security defaults apply from the first connection on.
            if let Err(e) = shared.apply_defaults(defaults).await {
                tracing::error!(%e, "cannot apply the group's security defaults");
            }
            client_name
        }
        Ok(AgentReply::Welcome { client_name, .. }) => client_name,
        Ok(AgentReply::Done) => {
            return Err(Failure::Retry("unexpected answer from the hub".into()));
        }
        Err(e) if matches!(e.code, ErrorCode::InvalidCredentials | ErrorCode::Expired) => {
            return Err(Failure::Fatal(if enrolling {
                AgentError::EnrolmentRefused(e)
            } else {
                AgentError::KeyRefused(e)
            }));
        }
        Err(e) => return Err(Failure::Retry(e.to_string())),
    };
    let workstation_id = identity
        .as_ref()
        .map(|i| i.workstation_id.clone())
        .unwrap_or_default();
    let _ = status.send(AgentStatus::Online {
        workstation_id,
        client,
    });

    // Online. The hub learns the policy first, then whenever it changes; hub messages are
    // handled as they come (reading also answers the hub's pings); answers that take a person
    // arrive through `answers`.
    let mut policy_changed = shared.policy_changed.subscribe();
    let (answers, mut answered) = tokio::sync::mpsc::unbounded_channel::<AgentRequest>();
    let mut next_id: crate::protocol::RequestId = 2;
    let mut send = |body: AgentRequest| {
        next_id += 1;
        Request { id: next_id, body }
    };
    let policy = send(AgentRequest::Policy {
        policy: shared.policy_snapshot(),
    });
    wire::send(&mut sink, &policy)
        .await
        .map_err(|e| Failure::Retry(e.to_string()))?;
    // A live screen that was not up yet: its size is reported once it is.
    // A screen whose resolution changes while it is watched reports through the same channel.
    let (sized_tx, mut sized) = tokio::sync::mpsc::channel::<crate::protocol::ScreenSize>(1);
    let resized_tx = sized_tx.clone();
    let _probe = (report.screen.is_none() && opts.screen.is_live()).then(|| {
        let spec = opts.screen.clone();
        AbortOnDrop(tokio::spawn(async move {
            let size = screen::size_once_up(&spec).await;
            let _ = sized_tx.send(size).await;
        }))
    });
    let (frames_tx, mut frames) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    let mut streams =
        streams::Streams::new(frames_tx, answers.clone(), opts.screen.clone(), opts.shell)
            .reporting_sizes_to(resized_tx);
    let ended = loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => match crate::protocol::decode::<HubToAgent>(text.as_str()) {
                    Ok(msg) => link::on_hub_message(shared, msg, &answers, &mut streams),
                    Err(e) => tracing::warn!(%e, "unreadable message from hub"),
                },
                Some(Ok(Message::Binary(bytes))) => streams.viewer_input(&bytes),
                Some(Ok(Message::Close(frame))) => {
                    break frame.map(|f| f.reason.to_string()).unwrap_or_else(|| "closed by the hub".into());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break e.to_string(),
                None => break "connection closed".into(),
            },
            Some(frame) = frames.recv() => {
                if let Err(e) = sink.send(Message::binary(frame)).await {
                    break e.to_string();
                }
            }
            Some(body) = answered.recv() => {
                if let Err(e) = wire::send(&mut sink, &send(body)).await {
                    break e.to_string();
                }
            }
            Some(size) = sized.recv() => {
                if report.screen == Some(size) {
                    continue;
                }
                tracing::info!(width = size.width, height = size.height, "reporting the screen's size");
                report.screen = Some(size);
                let update = send(AgentRequest::Report { report: report.clone() });
                if let Err(e) = wire::send(&mut sink, &update).await {
                    break e.to_string();
                }
            }
            Ok(()) = policy_changed.changed() => {
                let policy = send(AgentRequest::Policy { policy: shared.policy_snapshot() });
                if let Err(e) = wire::send(&mut sink, &policy).await {
                    break e.to_string();
                }
            }
        }
    };
    // Sessions live on the hub's connection: with it gone, none are open.
    shared.clear_sessions();
    Ok(Session::Ended(ended))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps_at_30s() {
        for attempt in 0..12 {
            let ceiling = Duration::from_secs(1u64 << attempt.min(5)).min(MAX_BACKOFF);
            for _ in 0..20 {
                let d = backoff(attempt);
                assert!(d >= ceiling / 2 && d <= ceiling, "attempt {attempt}: {d:?}");
            }
        }
        assert!(backoff(100) <= MAX_BACKOFF);
    }

    #[test]
    fn identity_is_saved_private_and_reloads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = Identity {
            hub: "wss://h:1".into(),
            fingerprint: "SHA256:00".into(),
            workstation_id: "ws_1".into(),
            key: "k".into(),
        };
        id.save(dir.path()).expect("save");
        assert_eq!(Identity::load(dir.path()), Some(id));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(IDENTITY_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
