//! The console's link to the hub: one task owns the WebSocket; the app talks to it through
//! channels, so `update` never awaits.

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::protocol::{ConsoleReply, ConsoleRequest, HubEvent, ProtocolError, RequestId, UserInfo};

/// What the app asks the link task to do.
#[derive(Debug, Clone)]
pub enum NetCommand {
    /// Open a TLS connection only to learn the hub's certificate fingerprint; answered with
    /// `NetEvent::CertificateSeen` (or `ConnectFailed`). Nothing secret is sent.
    Probe { hub: String },
    /// Connect pinned to `fingerprint` and log in with a password.
    Login {
        hub: String,
        fingerprint: String,
        user: String,
        password: String,
    },
    /// Connect pinned to `fingerprint` and authenticate with a stored login token.
    Resume {
        hub: String,
        fingerprint: String,
        token: String,
    },
    /// Send a request on the authenticated connection.
    Request { id: RequestId, body: ConsoleRequest },
    /// Close the connection and end the task.
    Shutdown,
}

/// What the link task reports back.
#[derive(Debug, Clone, PartialEq)]
pub enum NetEvent {
    CertificateSeen {
        hub: String,
        fingerprint: String,
    },
    /// The hub presented another certificate than the pinned one: possibly an attack.
    CertificateMismatch {
        hub: String,
        expected: String,
        seen: String,
    },
    /// The hub could not be reached or the TLS/WebSocket handshake failed.
    ConnectFailed {
        hub: String,
        error: String,
    },
    /// Authenticated. `token` is set after a password login so the app can store it.
    LoggedIn {
        user: UserInfo,
        token: Option<(String, DateTime<Utc>)>,
    },
    /// Login or resume refused (bad password, expired token ...).
    LoginFailed {
        error: ProtocolError,
    },
    Reply {
        id: RequestId,
        result: Result<ConsoleReply, ProtocolError>,
    },
    Event(HubEvent),
    /// The connection dropped; the task retries with backoff and sends `LoggedIn` again when back.
    Disconnected {
        reason: String,
    },
}

/// Start the link task on the current tokio runtime.
pub fn spawn() -> (
    mpsc::UnboundedSender<NetCommand>,
    mpsc::UnboundedReceiver<NetEvent>,
) {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (evt_tx, evt_rx) = mpsc::unbounded_channel();
    tokio::spawn(run(cmd_rx, evt_tx));
    (cmd_tx, evt_rx)
}

async fn run(
    mut commands: mpsc::UnboundedReceiver<NetCommand>,
    _events: mpsc::UnboundedSender<NetEvent>,
) {
    while let Some(cmd) = commands.recv().await {
        if matches!(cmd, NetCommand::Shutdown) {
            break;
        }
    }
}
