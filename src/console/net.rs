//! The console's link to the hub: one task owns the WebSocket; the app talks to it through
//! channels, so `update` never awaits.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::client::{ClientError, HubClient};
use crate::protocol::{
    ConsoleReply, ConsoleRequest, ErrorCode, GuestInfo, HubEvent, PROTOCOL_VERSION, ProtocolError,
    RequestId, UserInfo,
};
use crate::tls::{Pin as CertPin, parse_fingerprint};
use crate::wire::WireError;

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
        /// The 2FA code, where the hub asked for one.
        code: Option<String>,
        /// This console's device token for the user (the app adds it from its login store).
        device: Option<String>,
    },
    /// Log out: revoke this login's token on the hub and close the connection.
    Logout,
    /// Connect pinned to `fingerprint` and log in as a guest with support credentials.
    GuestLogin {
        hub: String,
        fingerprint: String,
        user: String,
        password: String,
        code: String,
    },
    /// Connect pinned to `fingerprint` and authenticate with a stored login token.
    Resume {
        hub: String,
        fingerprint: String,
        token: String,
    },
    /// Send a request on the authenticated connection.
    Request { id: RequestId, body: ConsoleRequest },
    /// Send a request whose answer nobody waits for (frame acknowledgements, input).
    Notify { body: ConsoleRequest },
    /// Send a binary stream frame (terminal keystrokes).
    SendFrame(Vec<u8>),
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
    /// Authenticated as a guest with support credentials (after a guest login, or a resume
    /// with a guest's token).
    GuestLoggedIn {
        user: UserInfo,
        guest: Box<GuestInfo>,
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
    /// A binary frame of a live session (decode with `protocol::stream::decode`), with the
    /// time it arrived (`protocol::stream::now_micros`): update stays pure and still knows the
    /// picture's latency.
    Frame {
        bytes: Vec<u8>,
        received_at: u64,
    },
    /// The connection dropped; the task retries with backoff and sends `LoggedIn` again when back.
    Disconnected {
        reason: String,
    },
}

/// Authenticate with a stored token: the user, and what a guest's credentials allow.
async fn resume(
    client: &HubClient,
    token: &str,
) -> Result<(UserInfo, Option<Box<GuestInfo>>), ClientError> {
    let body = ConsoleRequest::Resume {
        version: PROTOCOL_VERSION,
        token: token.into(),
    };
    match client.request(body).await? {
        ConsoleReply::Resumed { user } => Ok((user, None)),
        ConsoleReply::GuestResumed { user, guest } => Ok((user, Some(guest))),
        _ => Err(ClientError::Unexpected("resume")),
    }
}

/// The event for a successful authentication.
fn logged_in(
    user: UserInfo,
    guest: Option<Box<GuestInfo>>,
    token: Option<(String, DateTime<Utc>)>,
) -> NetEvent {
    match guest {
        Some(guest) => NetEvent::GuestLoggedIn { user, guest, token },
        None => NetEvent::LoggedIn { user, token },
    }
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

/// Turn a client-side failure into the error type replies carry.
fn as_protocol_error(e: ClientError) -> ProtocolError {
    match e {
        ClientError::Hub(p) => p,
        other => ProtocolError::new(ErrorCode::Internal, other.to_string()),
    }
}

/// The live connection and what is needed to re-establish it.
struct Live {
    client: Arc<HubClient>,
    events: mpsc::UnboundedReceiver<HubEvent>,
    /// Live sessions' binary frames.
    frames: mpsc::UnboundedReceiver<Vec<u8>>,
    hub: String,
    fingerprint: String,
    token: String,
    /// When it was established: a connection that lasted counts as healthy.
    since: tokio::time::Instant,
}

/// A connection that lasted this long was healthy: after it drops, reconnecting starts again
/// from the shortest wait. One that drops sooner keeps the wait growing, so a hub that closes
/// every connection at once is not hammered once a second by each console.
const HEALTHY_CONNECTION: Duration = Duration::from_secs(30);

/// The wait before reconnect attempt `attempt` (0 first): jittered, growing, capped at 30 s.
fn reconnect_wait(attempt: u32) -> Duration {
    crate::agent::backoff(attempt).min(Duration::from_secs(30))
}

impl Live {
    fn new(
        client: HubClient,
        events: mpsc::UnboundedReceiver<HubEvent>,
        hub: String,
        fingerprint: String,
        token: String,
    ) -> Self {
        let frames = client
            .take_frames()
            .unwrap_or_else(|| mpsc::unbounded_channel().1);
        Self {
            client: Arc::new(client),
            events,
            frames,
            hub,
            fingerprint,
            token,
            since: tokio::time::Instant::now(),
        }
    }
}

/// What the live connection brings next.
enum FromHub {
    Event(HubEvent),
    Frame(Vec<u8>),
    /// The connection closed.
    Closed,
}

/// Waits for the next event or frame of the live connection. Pends forever when there is no
/// connection, so it can sit in a `select!`.
async fn next_from_hub(live: &mut Option<Live>) -> FromHub {
    let Some(l) = live else {
        return std::future::pending().await;
    };
    tokio::select! {
        event = l.events.recv() => event.map_or(FromHub::Closed, FromHub::Event),
        Some(frame) = l.frames.recv() => FromHub::Frame(frame),
    }
}

async fn open(
    hub: &str,
    fingerprint: &str,
) -> Result<(HubClient, mpsc::UnboundedReceiver<HubEvent>), NetEvent> {
    let pin = match parse_fingerprint(fingerprint) {
        Ok(fp) => CertPin::Fingerprint(fp),
        Err(e) => {
            return Err(NetEvent::ConnectFailed {
                hub: hub.to_owned(),
                error: e.to_string(),
            });
        }
    };
    HubClient::connect(hub, pin).await.map_err(|e| match e {
        ClientError::Wire(WireError::CertificateMismatch {
            hub,
            expected,
            seen,
        }) => NetEvent::CertificateMismatch {
            hub,
            expected,
            seen,
        },
        other => NetEvent::ConnectFailed {
            hub: hub.to_owned(),
            error: other.to_string(),
        },
    })
}

async fn run(
    mut commands: mpsc::UnboundedReceiver<NetCommand>,
    events: mpsc::UnboundedSender<NetEvent>,
) {
    let emit = |e: NetEvent| {
        let _ = events.send(e);
    };
    let mut live: Option<Live> = None;
    // After a drop: where to reconnect, with which token, and when to try next.
    let mut lost: Option<(String, String, String)> = None;
    let mut attempt: u32 = 0;
    let retry = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(retry);
    loop {
        tokio::select! {
            cmd = commands.recv() => match cmd {
                None | Some(NetCommand::Shutdown) => break,
                Some(NetCommand::Probe { hub }) => {
                    match crate::wire::connect(&hub, crate::protocol::CONSOLE_PATH, CertPin::FirstUse).await {
                        Ok((_, fingerprint)) => emit(NetEvent::CertificateSeen { hub, fingerprint }),
                        Err(e) => emit(NetEvent::ConnectFailed { hub, error: e.to_string() }),
                    }
                }
                Some(NetCommand::Logout) => {
                    lost = None;
                    if let Some(l) = live.take() {
                        let _ = tokio::time::timeout(
                            Duration::from_secs(2),
                            l.client.request(ConsoleRequest::Logout),
                        )
                        .await;
                    }
                }
                Some(NetCommand::Login { hub, fingerprint, user, password, code, device }) => {
                    live = None;
                    lost = None;
                    match open(&hub, &fingerprint).await {
                        Err(e) => emit(e),
                        Ok((client, rx)) => match client.login_from_device(&user, &password, code.as_deref(), device.as_deref()).await {
                            Ok((token, expires, info)) => {
                                live = Some(Live::new(client, rx, hub, fingerprint, token.clone()));
                                emit(NetEvent::LoggedIn { user: info, token: Some((token, expires)) });
                            }
                            Err(e) => emit(NetEvent::LoginFailed { error: as_protocol_error(e) }),
                        },
                    }
                }
                Some(NetCommand::GuestLogin { hub, fingerprint, user, password, code }) => {
                    live = None;
                    lost = None;
                    match open(&hub, &fingerprint).await {
                        Err(e) => emit(e),
                        Ok((client, rx)) => match client.guest_login(&user, &password, &code).await {
                            Ok(login) => {
                                live = Some(Live::new(client, rx, hub, fingerprint, login.token.clone()));
                                emit(logged_in(login.user, Some(Box::new(login.guest)), Some((login.token, login.expires_at))));
                            }
                            Err(e) => emit(NetEvent::LoginFailed { error: as_protocol_error(e) }),
                        },
                    }
                }
                Some(NetCommand::Resume { hub, fingerprint, token }) => {
                    live = None;
                    lost = None;
                    match open(&hub, &fingerprint).await {
                        // Down or unreachable says nothing about the token: keep it and retry
                        // with the reconnect's backoff, as after a drop.
                        Err(NetEvent::ConnectFailed { error, .. }) => {
                            attempt = attempt.saturating_add(1);
                            let wait = reconnect_wait(attempt);
                            retry.as_mut().reset(tokio::time::Instant::now() + wait);
                            lost = Some((hub, fingerprint, token));
                            emit(NetEvent::Disconnected { reason: format!("{error}; retrying in {} s", wait.as_secs().max(1)) });
                        }
                        Err(e) => emit(e),
                        Ok((client, rx)) => match resume(&client, &token).await {
                            Ok((info, guest)) => {
                                live = Some(Live::new(client, rx, hub, fingerprint, token));
                                emit(logged_in(info, guest, None));
                            }
                            Err(e) => emit(NetEvent::LoginFailed { error: as_protocol_error(e) }),
                        },
                    }
                }
                Some(NetCommand::Notify { body }) => {
                    if let Some(l) = &live {
                        let _ = l.client.send_nowait(body);
                    }
                }
                Some(NetCommand::SendFrame(bytes)) => {
                    if let Some(l) = &live {
                        let _ = l.client.send_frame(bytes);
                    }
                }
                Some(NetCommand::Request { id, body }) => match &live {
                    Some(l) => {
                        let client = l.client.clone();
                        let events = events.clone();
                        tokio::spawn(async move {
                            let result = client.request(body).await.map_err(as_protocol_error);
                            let _ = events.send(NetEvent::Reply { id, result });
                        });
                    }
                    None => emit(NetEvent::Reply {
                        id,
                        result: Err(ProtocolError::new(ErrorCode::Unauthenticated, "not connected to the hub")),
                    }),
                },
            },
            incoming = next_from_hub(&mut live) => match incoming {
                FromHub::Event(e) => emit(NetEvent::Event(e)),
                FromHub::Frame(bytes) => emit(NetEvent::Frame {
                    bytes,
                    received_at: crate::protocol::stream::now_micros(),
                }),
                FromHub::Closed => {
                    // What the hub said as it closed (an admin disabled the account...) first.
                    let said = live.as_ref().and_then(|l| l.client.close_reason());
                    if let Some(l) = live.take() {
                        if l.since.elapsed() >= HEALTHY_CONNECTION {
                            attempt = 0;
                        } else {
                            attempt = attempt.saturating_add(1);
                        }
                        lost = Some((l.hub, l.fingerprint, l.token));
                    }
                    let wait = reconnect_wait(attempt);
                    retry.as_mut().reset(tokio::time::Instant::now() + wait);
                    let secs = wait.as_secs().max(1);
                    let reason = match said {
                        Some(said) => format!("the hub closed the connection: {said}; reconnecting in {secs} s"),
                        None => format!("connection lost; reconnecting in {secs} s"),
                    };
                    emit(NetEvent::Disconnected { reason });
                }
            },
            () = &mut retry, if lost.is_some() => {
                let Some((hub, fingerprint, token)) = lost.clone() else { continue };
                let outcome = match open(&hub, &fingerprint).await {
                    Ok((client, rx)) => match resume(&client, &token).await {
                        Ok(info) => Ok((client, rx, info)),
                        Err(ClientError::Hub(e)) => Err(Some(e)),
                        Err(_) => Err(None),
                    },
                    Err(NetEvent::CertificateMismatch { hub, expected, seen }) => {
                        emit(NetEvent::CertificateMismatch { hub, expected, seen });
                        lost = None;
                        continue;
                    }
                    Err(_) => Err(None),
                };
                match outcome {
                    Ok((client, rx, (info, guest))) => {
                        // `attempt` is kept: it resets only once this connection proves healthy.
                        lost = None;
                        live = Some(Live::new(client, rx, hub, fingerprint, token));
                        emit(logged_in(info, guest, None));
                    }
                    // The hub answered but refused the token: retrying will not help.
                    Err(Some(error)) => {
                        lost = None;
                        emit(NetEvent::LoginFailed { error });
                    }
                    Err(None) => {
                        attempt = attempt.saturating_add(1);
                        let wait = reconnect_wait(attempt);
                        retry.as_mut().reset(tokio::time::Instant::now() + wait);
                        emit(NetEvent::Disconnected { reason: format!("hub unreachable; retrying in {} s", wait.as_secs().max(1)) });
                    }
                }
            }
        }
    }
}
