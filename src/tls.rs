//! TLS for the hub's one port, on rustls with the `ring` provider.
//!
//! The hub makes a self-signed certificate at first start (rcgen) and prints its fingerprint.
//! Clients do not use a CA: they pin the certificate's SHA-256, learned from an enrolment link,
//! from `--fingerprint`, or confirmed by the technician on first use, as ssh's known_hosts does.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

const CERT_FILE: &str = "hub-cert.pem";
const KEY_FILE: &str = "hub-key.pem";
/// Written at first start, in exactly the form `tether login --fingerprint` accepts.
pub const FINGERPRINT_FILE: &str = "hub.fingerprint";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read or write the hub's certificate in {dir}: {source}")]
    Io { dir: String, source: std::io::Error },
    #[error("cannot make a certificate: {0}")]
    Generate(String),
    #[error("the hub's certificate or key file is damaged: {0} (delete both to make new ones)")]
    Pem(String),
    #[error("TLS configuration failed: {0}")]
    Config(#[from] rustls::Error),
    #[error("not a certificate fingerprint: {0:?} (expected SHA256: followed by 64 hex digits)")]
    Fingerprint(String),
}

/// One provider for the process: a bench keeps thousands of client configurations.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: std::sync::OnceLock<Arc<CryptoProvider>> = std::sync::OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// Session tickets a resuming client keeps (for its one hub; a few spare for tickets that
/// arrive while another handshake uses one).
const CLIENT_SESSIONS: usize = 4;

/// `SHA256:<64 lowercase hex>` of a DER certificate.
pub fn fingerprint(cert: &[u8]) -> String {
    format!("SHA256:{}", hex::encode(Sha256::digest(cert)))
}

/// Parse a fingerprint as printed by the hub. Accepts any case and optional colons between bytes.
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], TlsError> {
    let bad = || TlsError::Fingerprint(text.to_owned());
    let trimmed = text.trim();
    let body = trimmed
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("sha256:"))
        .map(|_| &trimmed[7..])
        .ok_or_else(bad)?;
    let hex_digits: String = body.chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(hex_digits).map_err(|_| bad())?;
    bytes.try_into().map_err(|_| bad())
}

/// The normal form of a fingerprint (for comparing and storing what a user typed).
pub fn normalize_fingerprint(text: &str) -> Result<String, TlsError> {
    Ok(format!("SHA256:{}", hex::encode(parse_fingerprint(text)?)))
}

/// The hub's certificate and key.
pub struct HubIdentity {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
    pub fingerprint: String,
}

impl HubIdentity {
    /// Load the identity from `dir`, or make one at first start (`extra_names` go into the
    /// certificate's subject alternative names besides localhost and 127.0.0.1).
    pub fn load_or_create(dir: &Path, extra_names: &[String]) -> Result<Self, TlsError> {
        let io = |source| TlsError::Io {
            dir: dir.display().to_string(),
            source,
        };
        let cert_path = dir.join(CERT_FILE);
        let key_path = dir.join(KEY_FILE);
        if !cert_path.exists() || !key_path.exists() {
            crate::paths::create_private_dir(dir).map_err(io)?;
            let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
            names.extend(extra_names.iter().cloned());
            let made = rcgen::generate_simple_self_signed(names)
                .map_err(|e| TlsError::Generate(e.to_string()))?;
            crate::paths::write_private(&key_path, made.signing_key.serialize_pem().as_bytes())
                .map_err(io)?;
            crate::paths::write_private(&cert_path, made.cert.pem().as_bytes()).map_err(io)?;
        }
        let cert =
            CertificateDer::from_pem_file(&cert_path).map_err(|e| TlsError::Pem(e.to_string()))?;
        let key =
            PrivateKeyDer::from_pem_file(&key_path).map_err(|e| TlsError::Pem(e.to_string()))?;
        let fingerprint = fingerprint(&cert);
        std::fs::write(dir.join(FINGERPRINT_FILE), format!("{fingerprint}\n")).map_err(io)?;
        Ok(Self {
            cert,
            key,
            fingerprint,
        })
    }

    /// A rustls server configuration presenting this identity.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key())?;
        // Returning agents resume with a ticket instead of a full handshake (no certificate
        // signature): a reconnect storm is bound by handshakes. Stateless tickets cost the hub
        // no memory per client; their key rotates every 6 hours and lives only in this process,
        // so a restarted hub makes everyone shake hands in full once. No early (0-RTT) data:
        // it could be replayed (`max_early_data_size` stays 0).
        config.ticketer = rustls::crypto::ring::Ticketer::new()?;
        Ok(Arc::new(config))
    }
}

/// What a client expects of the hub's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// Accept only this fingerprint.
    Fingerprint([u8; 32]),
    /// Accept any certificate, and report what was seen: only for learning a fingerprint to
    /// show a person (or `--accept-new`), never for sending secrets without a decision.
    FirstUse,
}

/// The fingerprint a client saw during its last handshake, readable after success or failure.
#[derive(Debug, Clone, Default)]
pub struct SeenCertificate(Arc<Mutex<Option<String>>>);

impl SeenCertificate {
    pub fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|g| g.clone())
    }
    /// Forget what was seen, before a new handshake.
    pub fn clear(&self) {
        if let Ok(mut g) = self.0.lock() {
            *g = None;
        }
    }
    fn set(&self, fp: String) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(fp);
        }
    }
}

/// Verifies the server by its pinned fingerprint instead of a CA chain, then checks the
/// handshake signatures as usual (so the server must hold the pinned certificate's key).
#[derive(Debug)]
struct PinVerifier {
    pin: Pin,
    seen: SeenCertificate,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        self.seen.set(format!("SHA256:{}", hex::encode(digest)));
        match &self.pin {
            Pin::FirstUse => Ok(ServerCertVerified::assertion()),
            Pin::Fingerprint(expected) if crate::secrets::constant_time_eq(expected, &digest) => {
                Ok(ServerCertVerified::assertion())
            }
            Pin::Fingerprint(_) => Err(rustls::Error::General(
                "hub certificate does not match the pinned fingerprint".into(),
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A client configuration that trusts exactly `pin`; `seen` receives the presented fingerprint.
/// For one connection: it keeps no sessions to resume (see [`ResumingClient`]).
pub fn client_config(
    pin: Pin,
    seen: SeenCertificate,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut config = pinned_config(pin, seen)?;
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

fn pinned_config(pin: Pin, seen: SeenCertificate) -> Result<rustls::ClientConfig, TlsError> {
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinVerifier {
            pin,
            seen,
            algorithms,
        }))
        .with_no_client_auth())
}

/// A client of one pinned hub that reconnects (an agent): kept across connections, its session
/// tickets let a return skip the certificate and its signature. Safe with the pin: a ticket
/// comes from a full handshake that passed the pin, and only the hub that issued it can resume
/// it; any other server gets a full handshake, checked against the pin again. Only for a pin,
/// never for first use, whose point is to show the certificate seen.
#[derive(Debug, Clone)]
pub struct ResumingClient {
    config: Arc<rustls::ClientConfig>,
    fingerprint: [u8; 32],
    seen: SeenCertificate,
}

impl ResumingClient {
    pub fn new(fingerprint: [u8; 32]) -> Result<Self, TlsError> {
        let seen = SeenCertificate::default();
        let mut config = pinned_config(Pin::Fingerprint(fingerprint), seen.clone())?;
        config.resumption = rustls::client::Resumption::in_memory_sessions(CLIENT_SESSIONS);
        Ok(Self {
            config: Arc::new(config),
            fingerprint,
            seen,
        })
    }

    pub fn config(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }

    /// The pinned fingerprint, which every connection of this client was checked against.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// What the last full handshake presented (a resumed one presents nothing).
    pub fn seen(&self) -> &SeenCertificate {
        &self.seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_made_once_and_fingerprint_file_parses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = HubIdentity::load_or_create(dir.path(), &[]).expect("create");
        let again = HubIdentity::load_or_create(dir.path(), &[]).expect("load");
        assert_eq!(
            first.fingerprint, again.fingerprint,
            "restart keeps the certificate"
        );
        let written = std::fs::read_to_string(dir.path().join(FINGERPRINT_FILE)).expect("read");
        assert_eq!(written.trim(), first.fingerprint);
        let parsed = parse_fingerprint(&written).expect("the written form parses");
        assert_eq!(format!("SHA256:{}", hex::encode(parsed)), first.fingerprint);
        assert!(first.server_config().is_ok());
    }

    /// A hub on loopback that finishes each TLS handshake and sends one byte (after its
    /// session tickets, so a client that read the byte holds them).
    async fn tls_hub(
        identity: &HubIdentity,
    ) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
        use tokio::io::AsyncWriteExt;
        let acceptor = tokio_rustls::TlsAcceptor::from(identity.server_config().expect("config"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let _ = tls.write_all(b"x").await;
                        let _ = tls.flush().await;
                    }
                });
            }
        });
        (addr, task)
    }

    /// Connect with `config`; how the handshake went, or why it failed.
    async fn shake(
        addr: std::net::SocketAddr,
        config: Arc<rustls::ClientConfig>,
    ) -> std::io::Result<rustls::HandshakeKind> {
        use tokio::io::AsyncReadExt;
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = ServerName::try_from("localhost").expect("name");
        let mut tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await?;
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await?;
        let kind = tls.get_ref().1.handshake_kind();
        Ok(kind.unwrap_or(rustls::HandshakeKind::Full))
    }

    #[tokio::test]
    async fn a_returning_client_resumes_and_its_pin_still_holds() {
        let (dir_a, dir_b) = (
            tempfile::tempdir().expect("a"),
            tempfile::tempdir().expect("b"),
        );
        let hub_a = HubIdentity::load_or_create(dir_a.path(), &[]).expect("hub a");
        let hub_b = HubIdentity::load_or_create(dir_b.path(), &[]).expect("hub b");
        let server = hub_a.server_config().expect("config");
        assert!(
            server.ticketer.enabled(),
            "stateless tickets, no per-client memory"
        );
        assert_eq!(server.max_early_data_size, 0, "no replayable 0-RTT data");
        let (addr_a, task_a) = tls_hub(&hub_a).await;
        let (addr_b, task_b) = tls_hub(&hub_b).await;
        let pin_a = parse_fingerprint(&hub_a.fingerprint).expect("fp");

        let client = ResumingClient::new(pin_a).expect("client");
        assert!(!client.config().enable_early_data);
        let first = shake(addr_a, client.config()).await.expect("first");
        assert_eq!(first, rustls::HandshakeKind::Full);
        assert_eq!(
            client.seen().get().as_deref(),
            Some(hub_a.fingerprint.as_str())
        );
        client.seen().clear();
        let again = shake(addr_a, client.config()).await.expect("return");
        assert_eq!(
            again,
            rustls::HandshakeKind::Resumed,
            "a return skips the certificate"
        );
        assert_eq!(client.seen().get(), None, "no certificate was presented");

        // Another hub at the same name: it cannot resume A's ticket, so it presents its own
        // certificate, which the pin refuses.
        let refused = shake(addr_b, client.config()).await;
        assert!(refused.is_err(), "{refused:?}");
        assert_eq!(
            client.seen().get().as_deref(),
            Some(hub_b.fingerprint.as_str())
        );
        // And the genuine hub is still resumed (or shaken in full), never refused.
        assert!(shake(addr_a, client.config()).await.is_ok());

        // A one-connection configuration keeps nothing to resume.
        let once =
            client_config(Pin::Fingerprint(pin_a), SeenCertificate::default()).expect("once");
        assert_eq!(
            shake(addr_a, once.clone()).await.expect("1"),
            rustls::HandshakeKind::Full
        );
        assert_eq!(
            shake(addr_a, once).await.expect("2"),
            rustls::HandshakeKind::Full
        );
        task_a.abort();
        task_b.abort();
    }

    #[test]
    fn fingerprint_parsing_is_lenient_in_form_strict_in_content() {
        let fp = format!("SHA256:{}", "ab".repeat(32));
        let with_colons = format!("sha256:{}", vec!["AB"; 32].join(":"));
        assert_eq!(parse_fingerprint(&fp).expect("plain"), [0xab; 32]);
        assert_eq!(parse_fingerprint(&with_colons).expect("colons"), [0xab; 32]);
        assert_eq!(normalize_fingerprint(&with_colons).expect("normal"), fp);
        for bad in [
            "",
            "SHA256:",
            "MD5:abcd",
            &format!("SHA256:{}", "ab".repeat(31)),
            &format!("SHA256:{}", "zz".repeat(32)),
        ] {
            assert!(parse_fingerprint(bad).is_err(), "{bad}");
        }
    }
}
