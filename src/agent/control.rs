//! The agent's local control socket: how `tether agent status|grant|deny|revoke|passcode|password`
//! talks to the running agent.
//!
//! A Unix socket at `<data_dir>/control.sock` (mode 0600, in the 0700 data dir). Each connection's
//! peer uid must be the agent's own: other users are refused even if the file modes were loosened.
//! JSON lines: one [`ControlRequest`] per line, one [`ControlReply`] line for each.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::consent::{ConsentPolicy, Question};
use super::policy::PolicyError;
use super::shared::AgentShared;
use super::{AgentStatus, Identity};
use crate::protocol::{AccessEvent, Secret, SecretRequirements, SessionInfo, UnattendedState};

/// The socket's name inside the agent's data dir.
pub const SOCKET_FILE: &str = "control.sock";

/// Longest request or reply line.
const MAX_LINE: u64 = 64 * 1024;

/// What a local client asks the running agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum ControlRequest {
    /// Everything at once: hub link, unattended access, secrets, questions, sessions.
    Status,
    /// Answer the current question "yes".
    Grant,
    /// Answer the current question "no".
    Deny,
    /// Take unattended access back.
    Revoke,
    PasscodeShow,
    /// Replace the passcode now; the old one stops working.
    PasscodeRefresh,
    PasscodeOn,
    PasscodeOff,
    PasswordSet {
        password: Secret,
    },
    PasswordClear,
}

impl ControlRequest {
    /// For logs: never includes secrets.
    pub fn kind(&self) -> &'static str {
        match self {
            ControlRequest::Status => "status",
            ControlRequest::Grant => "grant",
            ControlRequest::Deny => "deny",
            ControlRequest::Revoke => "revoke",
            ControlRequest::PasscodeShow => "passcode_show",
            ControlRequest::PasscodeRefresh => "passcode_refresh",
            ControlRequest::PasscodeOn => "passcode_on",
            ControlRequest::PasscodeOff => "passcode_off",
            ControlRequest::PasswordSet { .. } => "password_set",
            ControlRequest::PasswordClear => "password_clear",
        }
    }
}

/// The agent's answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControlReply {
    Status {
        status: Box<StatusReport>,
    },
    /// The passcode in force, as shown to people.
    Passcode {
        passcode: Secret,
        next_rotation: DateTime<Utc>,
    },
    /// The question that `grant` or `deny` answered.
    Answered {
        question: Question,
        yes: bool,
    },
    Unattended {
        state: UnattendedState,
    },
    Done {
        message: String,
    },
    /// The request could not be carried out; `send` turns this into [`ControlError::Refused`].
    Error {
        message: String,
    },
}

/// The hub link, as the control socket reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum HubLink {
    Connecting {
        attempt: u32,
    },
    Online {
        workstation_id: String,
        client: String,
    },
    Offline {
        reason: String,
        retry_in_secs: u64,
    },
}

impl From<&AgentStatus> for HubLink {
    fn from(status: &AgentStatus) -> Self {
        match status {
            AgentStatus::Connecting { attempt } => HubLink::Connecting { attempt: *attempt },
            AgentStatus::Online {
                workstation_id,
                client,
            } => HubLink::Online {
                workstation_id: workstation_id.clone(),
                client: client.clone(),
            },
            AgentStatus::Offline { reason, retry_in } => HubLink::Offline {
                reason: reason.clone(),
                retry_in_secs: retry_in.as_secs(),
            },
        }
    }
}

/// `tether agent status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub data_dir: String,
    /// The enrolled workstation's id; `None` before enrolment.
    pub workstation_id: Option<String>,
    pub hub_url: Option<String>,
    pub hub: HubLink,
    pub consent: ConsentPolicy,
    pub unattended: UnattendedState,
    pub requires: SecretRequirements,
    /// The passcode in force (as shown), when it is on.
    pub passcode: Option<Secret>,
    pub next_rotation: Option<DateTime<Utc>>,
    pub password_set: bool,
    pub password_required: bool,
    /// Questions waiting for the end user, the current one first.
    pub pending: Vec<Question>,
    pub sessions: Vec<SessionInfo>,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no agent is running with data dir {dir} (start one with `tether agent`)")]
    NotRunning { dir: String },
    #[error("an agent is already running with data dir {dir}")]
    AlreadyRunning { dir: String },
    #[error(
        "permission denied on {path}: the agent runs as another user (run this command as that user)"
    )]
    PermissionDenied { path: String },
    #[error("control socket {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The agent answered with an error.
    #[error("{0}")]
    Refused(String),
    #[error("the agent closed the connection without answering")]
    NoReply,
    #[error("unreadable answer from the agent: {0}")]
    Protocol(String),
}

fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// Ask the agent running with `data_dir`.
pub async fn send(data_dir: &Path, req: ControlRequest) -> Result<ControlReply, ControlError> {
    let path = socket_path(data_dir);
    let io = |source: std::io::Error| ControlError::Io {
        path: path.display().to_string(),
        source,
    };
    let stream = match UnixStream::connect(&path).await {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(ControlError::NotRunning {
                dir: data_dir.display().to_string(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(ControlError::PermissionDenied {
                path: path.display().to_string(),
            });
        }
        Err(e) => return Err(io(e)),
    };
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(&req).map_err(|e| ControlError::Protocol(e.to_string()))?;
    line.push(b'\n');
    // An agent that refuses this user answers and hangs up without reading the request, so
    // the write may fail while the refusal is already waiting to be read: read it regardless.
    let written = write.write_all(&line).await;
    let mut reader = BufReader::new(read);
    let reply = match (read_line(&mut reader).await, written) {
        (Ok(Some(reply)), _) => reply,
        (_, Err(e)) | (Err(e), Ok(())) => return Err(io(e)),
        (Ok(None), Ok(())) => return Err(ControlError::NoReply),
    };
    match serde_json::from_str::<ControlReply>(&reply) {
        Ok(ControlReply::Error { message }) => Err(ControlError::Refused(message)),
        Ok(reply) => Ok(reply),
        Err(e) => Err(ControlError::Protocol(e.to_string())),
    }
}

/// One line, at most [`MAX_LINE`] bytes; `None` at end of input.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    let n = reader.take(MAX_LINE).read_line(&mut line).await?;
    if n == 0 {
        return Ok(None);
    }
    if !line.ends_with('\n') && n as u64 >= MAX_LINE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "line too long",
        ));
    }
    Ok(Some(line))
}

/// The agent's end: a bound, private control socket.
#[derive(Debug)]
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
    /// Only this user may connect: the agent's own (the owner of the socket it just made).
    owner: u32,
}

impl ControlSocket {
    /// Make `<data_dir>/control.sock`. A socket file that nothing listens on (left by an agent
    /// that crashed) is replaced; one that answers means another agent runs on this data dir.
    pub async fn bind(data_dir: &Path) -> Result<Self, ControlError> {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let path = socket_path(data_dir);
        let io = |source: std::io::Error| ControlError::Io {
            path: path.display().to_string(),
            source,
        };
        crate::paths::create_private_dir(data_dir).map_err(io)?;
        match UnixStream::connect(&path).await {
            Ok(_) => {
                return Err(ControlError::AlreadyRunning {
                    dir: data_dir.display().to_string(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => {
                tracing::info!(path = %path.display(), "removing a stale control socket");
                std::fs::remove_file(&path).map_err(io)?;
            }
        }
        let listener = UnixListener::bind(&path).map_err(io)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        let owner = std::fs::metadata(&path).map_err(io)?.uid();
        Ok(Self {
            listener,
            path,
            owner,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Answer clients until `shutdown` completes; then the socket file is removed.
    pub async fn serve(self, shared: Arc<AgentShared>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(%e, "control socket accept failed");
                        continue;
                    }
                },
            };
            let shared = shared.clone();
            let owner = self.owner;
            tokio::spawn(async move {
                if let Err(e) = handle(stream, owner, shared).await {
                    tracing::debug!(%e, "control connection ended");
                }
            });
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn write_reply(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    reply: &ControlReply,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
    line.push(b'\n');
    write.write_all(&line).await
}

async fn handle(stream: UnixStream, owner: u32, shared: Arc<AgentShared>) -> std::io::Result<()> {
    let peer = stream.peer_cred()?;
    let (read, mut write) = stream.into_split();
    if peer.uid() != owner {
        tracing::warn!(
            uid = peer.uid(),
            "control socket: refused a client of another user"
        );
        let refusal = ControlReply::Error {
            message: "refused: this agent belongs to another user".into(),
        };
        return write_reply(&mut write, &refusal).await;
    }
    let mut reader = BufReader::new(read);
    while let Some(line) = read_line(&mut reader).await? {
        let reply = match serde_json::from_str::<ControlRequest>(&line) {
            Ok(req) => {
                tracing::info!(command = req.kind(), "control request");
                execute(&shared, req).await
            }
            Err(e) => ControlReply::Error {
                message: format!("unreadable request: {e}"),
            },
        };
        write_reply(&mut write, &reply).await?;
    }
    Ok(())
}

fn failed(e: &PolicyError) -> ControlReply {
    ControlReply::Error {
        message: e.to_string(),
    }
}

fn passcode_reply(shared: &AgentShared) -> ControlReply {
    match shared.policy().passcode() {
        Some(p) => ControlReply::Passcode {
            passcode: p.formatted(),
            next_rotation: p.expires_at(),
        },
        None => failed(&PolicyError::PasscodeOff),
    }
}

/// Carry out one request.
pub async fn execute(shared: &AgentShared, req: ControlRequest) -> ControlReply {
    match req {
        ControlRequest::Status => ControlReply::Status {
            status: Box::new(status_report(shared)),
        },
        ControlRequest::Grant | ControlRequest::Deny => {
            let yes = req == ControlRequest::Grant;
            match shared.consent.answer_current(yes) {
                Some(question) => ControlReply::Answered { question, yes },
                None => ControlReply::Error {
                    message: "no question is waiting for an answer".into(),
                },
            }
        }
        ControlRequest::Revoke => match shared.apply_access_event(AccessEvent::Revoke) {
            Ok(state) => ControlReply::Unattended { state },
            Err(e) => failed(&e),
        },
        ControlRequest::PasscodeShow => passcode_reply(shared),
        ControlRequest::PasscodeRefresh => match shared.refresh_passcode().await {
            Ok(_) => passcode_reply(shared),
            Err(e) => failed(&e),
        },
        ControlRequest::PasscodeOn => match shared.set_passcode_enabled(true).await {
            Ok(()) => passcode_reply(shared),
            Err(e) => failed(&e),
        },
        ControlRequest::PasscodeOff => match shared.set_passcode_enabled(false).await {
            Ok(()) => ControlReply::Done {
                message: "temporary passcode off".into(),
            },
            Err(e) => failed(&e),
        },
        ControlRequest::PasswordSet { password } => match shared.set_password(password).await {
            Ok(()) => ControlReply::Done {
                message: "permanent password set".into(),
            },
            Err(e) => failed(&e),
        },
        ControlRequest::PasswordClear => match shared.clear_password() {
            Ok(()) => ControlReply::Done {
                message: "permanent password removed".into(),
            },
            Err(e) => failed(&e),
        },
    }
}

/// Everything `status` shows.
pub fn status_report(shared: &AgentShared) -> StatusReport {
    let identity = Identity::load(&shared.data_dir);
    let hub = HubLink::from(&*shared.status.borrow());
    let policy = shared.policy();
    StatusReport {
        data_dir: shared.data_dir.display().to_string(),
        workstation_id: identity.as_ref().map(|i| i.workstation_id.clone()),
        hub_url: identity.map(|i| i.hub),
        hub,
        consent: shared.consent.policy(),
        unattended: policy.unattended(),
        requires: policy.requirements(),
        passcode: policy
            .passcode()
            .map(super::policy::TemporaryPasscode::formatted),
        next_rotation: policy.next_rotation(),
        password_set: policy.password_set(),
        password_required: policy.password_required(),
        pending: shared.consent.pending(),
        sessions: shared.live_sessions(),
    }
}

/// `status` for people, one fact a line.
pub fn describe_status(s: &StatusReport) -> String {
    let mut out = Vec::new();
    let hub = match &s.hub {
        HubLink::Connecting { .. } => "connecting".to_owned(),
        HubLink::Online { client, .. } => format!("online (client {client})"),
        HubLink::Offline {
            reason,
            retry_in_secs,
        } => format!("offline ({reason}); retrying in {retry_in_secs} s"),
    };
    out.push(format!(
        "workstation:        {}",
        s.workstation_id.as_deref().unwrap_or("not enrolled yet")
    ));
    if let Some(url) = &s.hub_url {
        out.push(format!("hub:                {url}"));
    }
    out.push(format!("hub link:           {hub}"));
    out.push(format!("unattended access:  {}", s.unattended.label()));
    out.push(format!("secrets required:   {}", s.requires.label()));
    match (&s.passcode, s.next_rotation) {
        (Some(p), Some(next)) => out.push(format!(
            "temporary passcode: {} (replaced at {})",
            p.expose(),
            next.format("%Y-%m-%d %H:%M UTC")
        )),
        _ => out.push("temporary passcode: off".into()),
    }
    let password = match (s.password_set, s.password_required) {
        (true, _) => "set",
        (false, true) => "required by the group, not set (`tether agent password set`)",
        (false, false) => "not set",
    };
    out.push(format!("permanent password: {password}"));
    out.push(format!("questions:          {}", s.consent.label()));
    for q in &s.pending {
        out.push(format!("  waiting: {} (`tether agent grant|deny`)", q.text));
    }
    if s.sessions.is_empty() {
        out.push("sessions:           none".into());
    }
    for session in &s.sessions {
        out.push(format!(
            "  session: {} ({}), {}, {}, since {}",
            session.technician.name,
            session.technician.email,
            session.method.label(),
            if session.view_only {
                "view only"
            } else {
                "control"
            },
            session.started_at.format("%H:%M UTC")
        ));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::agent::consent::Consent;

    struct Running {
        dir: tempfile::TempDir,
        shared: Arc<AgentShared>,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<()>,
    }

    async fn start(consent: ConsentPolicy) -> Running {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = AgentShared::open(dir.path(), Consent::new(consent))
            .await
            .expect("open");
        let socket = ControlSocket::bind(dir.path()).await.expect("bind");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(socket.serve(shared.clone(), async {
            let _ = stopped.await;
        }));
        Running {
            dir,
            shared,
            stop: Some(stop),
            task,
        }
    }

    impl Running {
        async fn send(&self, req: ControlRequest) -> Result<ControlReply, ControlError> {
            tokio::time::timeout(Duration::from_secs(10), send(self.dir.path(), req))
                .await
                .expect("answer in time")
        }

        async fn stop(mut self) -> tempfile::TempDir {
            if let Some(s) = self.stop.take() {
                let _ = s.send(());
            }
            tokio::time::timeout(Duration::from_secs(10), &mut self.task)
                .await
                .expect("stops")
                .expect("join");
            self.dir
        }
    }

    #[tokio::test]
    async fn socket_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let agent = start(ConsentPolicy::Deny).await;
        let path = agent.dir.path().join(SOCKET_FILE);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(agent.dir.path())
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let dir = agent.stop().await;
        assert!(!dir.path().join(SOCKET_FILE).exists(), "removed at stop");
    }

    #[tokio::test]
    async fn status_passcode_and_revoke_through_the_socket() {
        let agent = start(ConsentPolicy::Deny).await;
        let Ok(ControlReply::Status { status }) = agent.send(ControlRequest::Status).await else {
            panic!("status");
        };
        assert_eq!(status.workstation_id, None);
        assert_eq!(status.unattended, UnattendedState::None);
        assert_eq!(status.passcode, None);
        assert_eq!(status.consent, ConsentPolicy::Deny);
        assert!(describe_status(&status).contains("temporary passcode: off"));

        let err = agent
            .send(ControlRequest::PasscodeShow)
            .await
            .expect_err("off");
        assert!(err.to_string().contains("passcode on"), "{err}");

        let Ok(ControlReply::Passcode {
            passcode: first, ..
        }) = agent.send(ControlRequest::PasscodeOn).await
        else {
            panic!("passcode on");
        };
        let Ok(ControlReply::Passcode {
            passcode: second, ..
        }) = agent.send(ControlRequest::PasscodeRefresh).await
        else {
            panic!("refresh");
        };
        assert_ne!(first, second);
        assert_eq!(
            agent.shared.verify_secret(Some(&first)).await,
            Err(crate::protocol::Refusal::WrongSecret)
        );
        let Ok(ControlReply::Status { status }) = agent.send(ControlRequest::Status).await else {
            panic!("status");
        };
        assert_eq!(status.passcode, Some(second.clone()));
        assert!(status.requires.passcode);

        // Revoke: only from granted.
        let err = agent.send(ControlRequest::Revoke).await.expect_err("none");
        assert!(err.to_string().contains("cannot revoke"), "{err}");
        agent
            .shared
            .apply_access_event(AccessEvent::Request)
            .expect("request");
        agent
            .shared
            .apply_access_event(AccessEvent::Grant)
            .expect("grant");
        let hub_link = agent.shared.policy_changed.subscribe();
        let reply = agent.send(ControlRequest::Revoke).await.expect("revoke");
        assert_eq!(
            reply,
            ControlReply::Unattended {
                state: UnattendedState::Revoked
            }
        );
        assert!(hub_link.has_changed().expect("alive"), "hub link told");

        let reply = agent
            .send(ControlRequest::PasswordSet {
                password: Secret::new("orchid lantern"),
            })
            .await
            .expect("password");
        assert!(matches!(reply, ControlReply::Done { .. }));
        let err = agent
            .send(ControlRequest::PasswordSet {
                password: Secret::new("short"),
            })
            .await
            .expect_err("too short");
        assert!(err.to_string().contains("at least 8"), "{err}");
        agent
            .send(ControlRequest::PasswordClear)
            .await
            .expect("clear");
        agent.send(ControlRequest::PasscodeOff).await.expect("off");
        assert_eq!(
            agent.shared.policy_snapshot().requires,
            SecretRequirements::default()
        );
        agent.stop().await;
    }

    #[tokio::test]
    async fn grant_and_deny_answer_the_waiting_question() {
        let agent = start(ConsentPolicy::Ask).await;
        let err = agent.send(ControlRequest::Grant).await.expect_err("none");
        assert!(err.to_string().contains("no question"), "{err}");
        let shared = agent.shared.clone();
        let asked = tokio::spawn(async move { shared.consent.ask("may I?").await });
        let mut changes = agent.shared.consent.subscribe();
        tokio::time::timeout(
            Duration::from_secs(5),
            changes.wait_for(|_| !agent.shared.consent.pending().is_empty()),
        )
        .await
        .expect("asked in time")
        .expect("alive");
        let Ok(ControlReply::Status { status }) = agent.send(ControlRequest::Status).await else {
            panic!("status");
        };
        assert_eq!(status.pending.len(), 1);
        assert_eq!(status.pending[0].text, "may I?");
        let reply = agent.send(ControlRequest::Deny).await.expect("deny");
        assert!(matches!(reply, ControlReply::Answered { yes: false, .. }));
        assert_eq!(
            asked.await.expect("join"),
            crate::agent::consent::Answer::No
        );
        agent.stop().await;
    }

    #[tokio::test]
    async fn a_second_agent_on_the_same_dir_is_refused_and_a_stale_socket_replaced() {
        let agent = start(ConsentPolicy::Deny).await;
        let err = ControlSocket::bind(agent.dir.path())
            .await
            .expect_err("in use");
        assert!(matches!(err, ControlError::AlreadyRunning { .. }), "{err}");
        let dir = agent.stop().await;

        // A socket file nobody listens on, as a crashed agent leaves it.
        let stale = std::os::unix::net::UnixListener::bind(dir.path().join(SOCKET_FILE))
            .expect("stale socket");
        drop(stale);
        assert!(dir.path().join(SOCKET_FILE).exists());
        let socket = ControlSocket::bind(dir.path()).await.expect("rebind");
        drop(socket);
    }

    #[tokio::test]
    async fn no_agent_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = send(dir.path(), ControlRequest::Status)
            .await
            .expect_err("nobody");
        assert!(
            err.to_string()
                .starts_with("no agent is running with data dir"),
            "{err}"
        );
    }

    #[test]
    fn requests_never_show_passwords_in_debug() {
        let req = ControlRequest::PasswordSet {
            password: Secret::new("orchid lantern"),
        };
        assert!(!format!("{req:?}").contains("orchid"));
        let json = serde_json::to_string(&req).expect("json");
        assert_eq!(
            json,
            r#"{"cmd":"password_set","password":"orchid lantern"}"#
        );
    }
}
