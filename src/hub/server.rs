//! The transport's front door: TCP, TLS, the WebSocket handshake, then a route by path to the
//! console or agent connection. It makes no decisions about requests (hub/dispatch.rs does).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

use super::Hub;
use crate::protocol::{AGENT_PATH, CONSOLE_PATH};
use crate::wire::ws_config;

/// Serve `listener` until `shutdown` completes; then close every connection (5 s grace).
/// At most `limits.max_connections` are open at once: past that, a new connection is closed as
/// soon as it is accepted, before it costs a TLS handshake.
pub async fn run(
    hub: Arc<Hub>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let _ = hub.public_addr.set(default_public_addr(local));
    tracing::info!(%local, public = hub.public_addr(), fingerprint = hub.fingerprint(), "hub listening");
    hub.close_stale_sessions().await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tasks.spawn(super::credentials::expiry_timer(
        hub.clone(),
        stop_rx.clone(),
    ));
    tasks.spawn(super::otp::expiry_timer(hub.clone(), stop_rx.clone()));
    tasks.spawn(super::users::watch_revocations(
        hub.clone(),
        stop_rx.clone(),
    ));
    // Ends sessions nobody watches; checks often enough for short test limits.
    let sweep =
        (hub.limits.session_idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
    let mut sweeper = tokio::time::interval(sweep);
    sweeper.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let slots = Arc::new(Semaphore::new(hub.limits.max_connections));
    let mut refusals = Refusals::default();
    let mut load = super::memory::LoadDrop::default();
    let mut memory_requests = MemoryRequests::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => match slots.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let slot = ConnectionSlot::take(&hub, permit);
                        tasks.spawn(handle(hub.clone(), tcp, peer, stop_rx.clone(), slot));
                    }
                    Err(_) => {
                        // Dropping the socket refuses it; the peer retries with its backoff.
                        drop(tcp);
                        refusals.count(peer, hub.limits.max_connections);
                    }
                },
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = sweeper.tick() => {
                hub.end_unwatched_sessions().await;
                hub.flush_preauth_audit().await;
                if load.fell(*hub.connections.borrow()) {
                    hub.shrink_presence();
                    super::memory::log_figures("after connections fell from their peak");
                }
            }
            () = memory_requests.next() => super::memory::log_figures("asked by SIGUSR1"),
        }
    }
    let _ = stop_tx.send(true);
    // Recorded as a clean stop; sessions found open at the next start were cut by a crash.
    hub.end_all_sessions(super::access::HUB_STOPPED).await;
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
    }
    tracing::info!("hub stopped");
    Ok(())
}

/// `kill -USR1` asks the hub to log its memory figures (see `hub::memory`).
struct MemoryRequests {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl MemoryRequests {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signal = signal(SignalKind::user_defined1())
                .inspect_err(|e| tracing::debug!(%e, "no memory reports on SIGUSR1"))
                .ok();
            Self { signal }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// The next request; never, where signals cannot be had.
    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal
            && signal.recv().await.is_some()
        {
            return;
        }
        std::future::pending().await
    }
}

/// A connection's place under `max_connections`, given back when the connection ends.
struct ConnectionSlot {
    hub: Arc<Hub>,
    _permit: OwnedSemaphorePermit,
}

impl ConnectionSlot {
    fn take(hub: &Arc<Hub>, permit: OwnedSemaphorePermit) -> Self {
        hub.connections.send_modify(|n| *n += 1);
        Self {
            hub: hub.clone(),
            _permit: permit,
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.hub
            .connections
            .send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Logs refused connections at most once a second, so a reconnect storm against a full hub
/// says what happens without flooding the log.
#[derive(Default)]
struct Refusals {
    since_last_log: u64,
    last_log: Option<std::time::Instant>,
}

impl Refusals {
    fn count(&mut self, peer: SocketAddr, max: usize) {
        self.since_last_log += 1;
        let now = std::time::Instant::now();
        if self
            .last_log
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            tracing::warn!(
                %peer,
                refused = self.since_last_log,
                max,
                "connection refused: the hub has --max-connections open"
            );
            self.since_last_log = 0;
            self.last_log = Some(now);
        }
    }
}

fn default_public_addr(local: SocketAddr) -> String {
    if local.ip().is_unspecified() {
        let host = whoami::fallible::hostname().unwrap_or_else(|_| "localhost".into());
        format!("{host}:{}", local.port())
    } else {
        local.to_string()
    }
}

async fn handle(
    hub: Arc<Hub>,
    tcp: TcpStream,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
    _slot: ConnectionSlot,
) {
    // Refused before its TLS handshake: this source already holds its unauthenticated share.
    let Some(preauth) = hub.preauth_slot(peer) else {
        tracing::debug!(%peer, "connection refused: too many unauthenticated from this source");
        return;
    };
    let _ = tcp.set_nodelay(true);
    let acceptor = tokio_rustls::TlsAcceptor::from(hub.tls.clone());
    let deadline = hub.limits.auth_timeout;
    let handshake = async {
        let tls = acceptor
            .accept(tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        // Oversized messages close the connection as their header arrives.
        let tls = super::frame_guard::FrameGuard::new(tls, preauth.authenticated());
        let mut path = String::new();
        #[allow(clippy::result_large_err)] // the shape tungstenite's callback demands
        let route = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
            path = req.uri().path().to_owned();
            if path == CONSOLE_PATH || path == AGENT_PATH {
                Ok(resp)
            } else {
                let mut err = ErrorResponse::new(Some(format!("no endpoint at {path}")));
                *err.status_mut() = StatusCode::NOT_FOUND;
                Err(err)
            }
        };
        let ws = tokio_tungstenite::accept_hdr_async_with_config(tls, route, Some(ws_config()))
            .await
            .map_err(|e| format!("WebSocket: {e}"))?;
        Ok::<_, String>((ws, path))
    };
    let (ws, path) = match tokio::time::timeout(deadline, handshake).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => {
            tracing::debug!(%peer, e, "handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "handshake timed out");
            return;
        }
    };
    if path == AGENT_PATH {
        super::agents::serve(hub, ws, peer, stop, preauth).await;
    } else {
        super::consoles::serve(hub, ws, peer, stop, preauth).await;
    }
}
