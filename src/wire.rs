//! WebSocket over TLS, shared by every role: connecting with a certificate pin, the limits both
//! ends enforce, and sending and receiving typed JSON control messages.

use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use rustls::pki_types::ServerName;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::protocol::{self, ProtocolError};
use crate::tls::{self, Pin, ResumingClient, SeenCertificate, TlsError};

pub type ClientStream = WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;
/// The hub's side: TLS, then the per-phase message limits, then the WebSocket.
pub type ServerStream = WebSocketStream<
    crate::hub::frame_guard::FrameGuard<tokio_rustls::server::TlsStream<TcpStream>>,
>;

/// How long a TCP connect plus TLS and WebSocket handshakes may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("not a hub address: {0:?} (expected wss://HOST:PORT)")]
    Address(String),
    #[error("cannot reach {hub}: {source}")]
    Connect { hub: String, source: std::io::Error },
    #[error(
        "the hub at {hub} presented certificate {seen}, but {expected} is pinned: this may be an attack; if the hub was reinstalled, check its fingerprint and log in again with --fingerprint"
    )]
    CertificateMismatch {
        hub: String,
        expected: String,
        seen: String,
    },
    #[error("TLS handshake with {hub} failed: {source}")]
    Tls { hub: String, source: std::io::Error },
    #[error("WebSocket handshake with {hub} failed: {source}")]
    Handshake {
        hub: String,
        source: Box<tungstenite::Error>,
    },
    #[error("{0}")]
    Setup(#[from] TlsError),
    #[error("timed out talking to {0}")]
    Timeout(String),
    #[error("connection closed{}", .0.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Closed(Option<String>),
    #[error("connection error: {0}")]
    Transport(#[from] Box<tungstenite::Error>),
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
}

/// Bytes read from the socket at a time. tungstenite's default (128 KiB, allocated and zeroed
/// up front) cost a hub 128 KiB per idle agent; a large message still gets a buffer of its own
/// size, read in chunks of this.
pub const WS_READ_CHUNK: usize = 4 * 1024;

/// Bytes of queued messages gathered before they are written to the socket.
pub const WS_WRITE_BATCH: usize = 8 * 1024;

/// The WebSocket limits and buffers both ends use (tungstenite's defaults are 64 MiB messages,
/// 128 KiB read and write buffers per socket, and unbounded writes).
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(protocol::MAX_WS_MESSAGE))
        .max_frame_size(Some(protocol::MAX_WS_FRAME))
        .read_buffer_size(WS_READ_CHUNK)
        // Messages queued together are written together (the hub's writer feeds what is
        // waiting, then flushes once): up to this many bytes make one TLS record and one write
        // instead of one per message. A lone message is still flushed at once.
        .write_buffer_size(WS_WRITE_BATCH)
        // One message being written and one more: a peer that stops reading fails the write
        // instead of growing the buffer.
        .max_write_buffer_size(2 * protocol::MAX_WS_MESSAGE)
}

/// Split `wss://host:port[/...]` (or `host:port`) into host and port.
pub fn host_port(hub: &str) -> Result<(String, u16), WireError> {
    let bad = || WireError::Address(hub.to_owned());
    let key = crate::client::store::hub_key(hub);
    let (host, port) = key.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// Connect to `hub` at WebSocket `path`, trusting only `pin`. Also returns the fingerprint seen.
pub async fn connect(hub: &str, path: &str, pin: Pin) -> Result<(ClientStream, String), WireError> {
    connect_from(hub, path, pin, None).await
}

/// [`connect`] from a chosen local address (`tether bench logins` spreads its peers over
/// loopback addresses, as many hosts would).
pub async fn connect_from(
    hub: &str,
    path: &str,
    pin: Pin,
    local: Option<std::net::IpAddr>,
) -> Result<(ClientStream, String), WireError> {
    let expected = match &pin {
        Pin::Fingerprint(fp) => Some(*fp),
        Pin::FirstUse => None,
    };
    let seen = SeenCertificate::default();
    let config = tls::client_config(pin, seen.clone())?;
    let ws = connect_with(hub, path, config, &seen, expected, local).await?;
    Ok((ws, seen.get().unwrap_or_default()))
}

/// Connect as a client that reconnects to its one hub (an agent): a return resumes the TLS
/// session where it can (see [`ResumingClient`]); the pin holds all the same.
pub async fn connect_resuming(
    hub: &str,
    path: &str,
    client: &ResumingClient,
) -> Result<ClientStream, WireError> {
    client.seen().clear();
    let pin = Some(client.fingerprint());
    connect_with(hub, path, client.config(), client.seen(), pin, None).await
}

async fn connect_with(
    hub: &str,
    path: &str,
    config: std::sync::Arc<rustls::ClientConfig>,
    seen: &SeenCertificate,
    pin: Option<[u8; 32]>,
    local: Option<std::net::IpAddr>,
) -> Result<ClientStream, WireError> {
    let (host, port) = host_port(hub)?;
    let key = format!("{host}:{port}");
    let expected = pin.map(|fp| format!("SHA256:{}", hex::encode(fp)));
    let attempt = async {
        let tcp = tcp_connect(&host, port, local)
            .await
            .map_err(|source| WireError::Connect {
                hub: key.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let name =
            ServerName::try_from(host.clone()).map_err(|_| WireError::Address(hub.to_owned()))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|source| match (&expected, seen.get()) {
                (Some(expected), Some(seen)) if *expected != seen => {
                    WireError::CertificateMismatch {
                        hub: key.clone(),
                        expected: expected.clone(),
                        seen,
                    }
                }
                _ => WireError::Tls {
                    hub: key.clone(),
                    source,
                },
            })?;
        let url = format!("wss://{key}{path}");
        let (ws, _) = tokio_tungstenite::client_async_with_config(url, tls, Some(ws_config()))
            .await
            .map_err(|e| WireError::Handshake {
                hub: key.clone(),
                source: Box::new(e),
            })?;
        Ok::<_, WireError>(ws)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| WireError::Timeout(key.clone()))?
}

async fn tcp_connect(
    host: &str,
    port: u16,
    local: Option<std::net::IpAddr>,
) -> std::io::Result<TcpStream> {
    let Some(local) = local else {
        return TcpStream::connect((host, port)).await;
    };
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = match addr {
            std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.bind(std::net::SocketAddr::new(local, 0))?;
        match socket.connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Send one typed control message as a text frame.
pub async fn send<S, T>(sink: &mut S, msg: &T) -> Result<(), WireError>
where
    S: Sink<Message, Error = tungstenite::Error> + Unpin,
    T: Serialize,
{
    let text = protocol::encode(msg)?;
    sink.send(Message::text(text))
        .await
        .map_err(|e| WireError::Transport(Box::new(e)))
}

/// Receive the next control message, skipping pings and pongs. Close frames and stream end
/// become `WireError::Closed`, with the peer's reason where it gave one.
pub async fn recv<S, T>(stream: &mut S) -> Result<T, WireError>
where
    S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
    T: DeserializeOwned,
{
    loop {
        match stream.next().await {
            None => return Err(WireError::Closed(None)),
            Some(Err(e)) => return Err(WireError::Transport(Box::new(e))),
            Some(Ok(Message::Text(text))) => return Ok(protocol::decode(text.as_str())?),
            Some(Ok(Message::Close(frame))) => {
                return Err(WireError::Closed(
                    frame
                        .map(|f| f.reason.to_string())
                        .filter(|r| !r.is_empty()),
                ));
            }
            Some(Ok(Message::Binary(_))) => {
                return Err(WireError::Protocol(ProtocolError::bad_request(
                    "unexpected binary message",
                )));
            }
            Some(Ok(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_buffers_are_small_and_bounded() {
        let config = ws_config();
        // Per idle connection: a small read buffer; a small write batch.
        assert!(config.read_buffer_size <= 8 * 1024, "{config:?}");
        assert_eq!(config.write_buffer_size, WS_WRITE_BATCH);
        // Bounded, yet room for the largest message the protocol allows.
        assert!(config.max_write_buffer_size > protocol::MAX_WS_MESSAGE);
        assert!(config.max_write_buffer_size <= 4 * protocol::MAX_WS_MESSAGE);
        assert_eq!(config.max_message_size, Some(protocol::MAX_WS_MESSAGE));
        assert_eq!(config.max_frame_size, Some(protocol::MAX_WS_FRAME));
    }
}
