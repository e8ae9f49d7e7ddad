//! The hub: one TLS port for consoles and agents, the store, presence and the audit log.
//!
//! Three layers, importing downwards only: transport ([`server`] accepts, TLS, WebSocket and
//! the handshake; `consoles` and `agents` own each connection; `socket` is what they share),
//! the gate (`dispatch`: every console request is authorized against the connection's
//! `principal`, then routed), and the services (`auth`, `clients`, `access`, `credentials`,
//! `otp`, `twofa`, `relay`, [`audit`]) that answer within the scope the gate gave them.
//!
//! `Hub::open` prepares everything from a data dir; [`run`] serves a listener until a shutdown
//! future completes (tests bind `127.0.0.1:0` and pass their own). One task per connection owns
//! its socket; presence and other live changes fan out to consoles through one broadcast
//! channel per team.

pub mod audit;
pub mod store;

mod access;
mod agents;
mod auth;
mod clients;
mod consoles;
mod credentials;
mod dispatch;
pub mod frame_guard;
mod lockout;
pub mod memory;
pub mod otp;
pub mod pager;
pub mod preauth;
mod presence;
mod principal;
mod relay;
mod server;
mod socket;
mod twofa;
mod user_ends;
mod users;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

pub use server::run;

use crate::protocol::ProtocolError;
use crate::tls::{HubIdentity, TlsError};
use store::{NewAudit, SqliteStore, Store, StoreError};

/// Limits the hub enforces. Tests shorten them; the defaults are the product's.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections open at once (`tether hub --max-connections`); past it new ones are closed
    /// before their TLS handshake.
    pub max_connections: usize,
    /// A new connection must authenticate within this.
    pub auth_timeout: Duration,
    /// The hub pings every peer this often.
    pub ping_interval: Duration,
    /// A peer silent for this long is dropped.
    pub idle_timeout: Duration,
    /// Lifetime of a login token.
    pub token_ttl: chrono::Duration,
    /// Lifetime of an enrolment link when the technician does not choose one.
    pub default_link_days: u32,
    /// Longest lifetime a technician may choose for a link.
    pub max_link_days: u32,
    /// How long a connection attempt waits for the agent (the end user has 60 s to answer).
    pub connect_wait: Duration,
    /// A session nobody has watched for this long ends.
    pub session_idle: Duration,
    /// Lifetime of a one-time password (`tether hub --otp-ttl`).
    pub otp_ttl: chrono::Duration,
    /// Unauthenticated connections one source address (IPv6: one /64) may hold open.
    pub preauth_per_source: u32,
    /// Failed attempts (logins, tokens, agent keys, links) one source may make in a burst...
    pub failures_per_source: u32,
    /// ...then one more each this often.
    pub source_refill: Duration,
}

/// Room for a large desk's agents and its consoles, well under what 2 GB of memory holds.
pub const DEFAULT_MAX_CONNECTIONS: usize = 50_000;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            auth_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            token_ttl: chrono::Duration::days(30),
            default_link_days: 7,
            max_link_days: 30,
            connect_wait: Duration::from_secs(70),
            session_idle: Duration::from_secs(10 * 60),
            otp_ttl: chrono::Duration::minutes(30),
            preauth_per_source: 64,
            failures_per_source: 30,
            source_refill: Duration::from_secs(2),
        }
    }
}

/// Where the hub's time comes from (injected so tests can step it).
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// Changes whenever the clock jumps (a test's manual clock), so timers on it re-plan.
    /// The real clock never jumps.
    fn jumps(&self) -> Option<tokio::sync::watch::Receiver<()>> {
        None
    }
}

/// The real clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        // Checked at start; should it be set back before 1970 while running, the epoch (and
        // a logged error) rather than chrono's panic.
        match crate::clock::check_system() {
            Ok(()) => Utc::now(),
            Err(e) => {
                tracing::error!(%e, "the system clock went back before 1970");
                DateTime::UNIX_EPOCH
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    SealKey(#[from] crate::secrets::seal::SealKeyError),
}

/// How to start a hub.
#[derive(Debug, Clone, Default)]
pub struct HubConfig {
    pub data_dir: PathBuf,
    /// `host:port` that enrolment links point agents to; by default the listening address
    /// (or this machine's host name when listening on all interfaces).
    pub public_addr: Option<String>,
    pub limits: Limits,
    /// Mail server for one-time passwords; without one they go to the outbox.
    pub smtp: Option<otp::SmtpConfig>,
}

/// The hub's shared state.
pub struct Hub {
    store: Arc<dyn Store>,
    identity: HubIdentity,
    tls: Arc<rustls::ServerConfig>,
    public_addr: OnceLock<String>,
    limits: Limits,
    clock: Arc<dyn Clock>,
    /// Connected agents and each team's live events.
    presence_state: presence::PresenceState,
    /// Connection attempts, open sessions and the consoles watching them.
    access_state: access::AccessState,
    /// Viewers' streams of open sessions.
    routes: relay::Routes,
    /// Seals the secrets the hub reads back (TOTP secrets, codes, outbox bodies): `seal.key`.
    seal_key: crate::secrets::seal::SealKey,
    /// Guests of support credentials: their connections, sessions and the expiry timer.
    credentials: credentials::Registry,
    /// One login attempt at a time per account name (see [`auth::LoginGate`]).
    login_gate: auth::LoginGate,
    /// One-time passwords: the mail server.
    otp: otp::OtpState,
    /// Per user: tells their open console connections to close (why), e.g. when an admin
    /// resets their 2FA and so ends their logins.
    user_ends: user_ends::UserEnds,
    /// Connections open now (accepted and not yet closed), counted against `max_connections`.
    connections: watch::Sender<usize>,
    /// What unauthenticated peers may cost, per source and per name.
    preauth: Arc<preauth::Preauth>,
}

impl Hub {
    /// Open the hub's data dir: the SQLite store and the TLS identity (made at first start).
    pub fn open(config: HubConfig) -> Result<Arc<Self>, HubError> {
        let store = Arc::new(SqliteStore::open_dir(&config.data_dir)?);
        Self::with_store(config, store, Arc::new(SystemClock))
    }

    /// A hub over any store and clock (tests, other backends).
    pub fn with_store(
        config: HubConfig,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, HubError> {
        let mut names = Vec::new();
        if let Some(addr) = &config.public_addr
            && let Ok((host, _)) = crate::wire::host_port(addr)
        {
            names.push(host);
        }
        if let Ok(host) = whoami::fallible::hostname() {
            names.push(host);
        }
        let identity = HubIdentity::load_or_create(&config.data_dir, &names)?;
        let tls = identity.server_config()?;
        let seal_key = crate::secrets::seal::SealKey::load_or_create(&config.data_dir)?;
        let otp = otp::OtpState::new(config.smtp);
        let public_addr = OnceLock::new();
        if let Some(addr) = config.public_addr {
            let _ = public_addr.set(crate::client::store::hub_key(&addr));
        }
        Ok(Arc::new(Self {
            store,
            identity,
            tls,
            public_addr,
            clock,
            presence_state: presence::PresenceState::default(),
            access_state: access::AccessState::default(),
            routes: relay::Routes::default(),
            seal_key,
            credentials: credentials::Registry::default(),
            login_gate: auth::LoginGate::default(),
            otp,
            user_ends: user_ends::UserEnds::default(),
            connections: watch::Sender::new(0),
            preauth: Arc::new(preauth::Preauth::new(
                config.limits.preauth_per_source,
                config.limits.failures_per_source,
                config.limits.source_refill,
            )),
            limits: config.limits,
        }))
    }

    /// `SHA256:<hex>` of the hub's certificate.
    pub fn fingerprint(&self) -> &str {
        &self.identity.fingerprint
    }

    /// The address enrolment links carry.
    pub fn public_addr(&self) -> &str {
        self.public_addr
            .get()
            .map_or("localhost:7443", String::as_str)
    }

    /// How many connections are open, updated as they come and go.
    pub fn open_connections(&self) -> watch::Receiver<usize> {
        self.connections.subscribe()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Run a store call off the async executor, mapping store errors to protocol errors.
    async fn db<T, F>(&self, f: F) -> Result<T, ProtocolError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || f(&*store)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(StoreError::Conflict(what))) => Err(ProtocolError::new(
                crate::protocol::ErrorCode::Conflict,
                format!("{what} already exists"),
            )),
            Ok(Err(e)) => {
                tracing::error!(%e, "store call failed");
                Err(ProtocolError::internal())
            }
            Err(e) => {
                tracing::error!(%e, "store task failed");
                Err(ProtocolError::internal())
            }
        }
    }

    /// Append to the audit log. A failure to audit fails the action that asked for it.
    async fn audit(&self, entry: NewAudit) -> Result<(), ProtocolError> {
        self.db(move |s| s.append_audit(entry)).await.map(|_| ())
    }

    /// Make `change` and append the records `audit` makes of its outcome in one store
    /// transaction: a failure to audit changes nothing (issue 11).
    async fn commit<F>(
        &self,
        change: store::AuditedChange,
        audit: F,
    ) -> Result<store::ChangeOutcome, ProtocolError>
    where
        F: Fn(&store::ChangeOutcome) -> Vec<NewAudit> + Send + 'static,
    {
        self.db(move |s| s.commit_audited(change, &audit)).await
    }

    /// A record of something `user` did, in their team, now.
    fn user_record(
        &self,
        user: &crate::protocol::UserInfo,
        action: audit::AuditEvent,
        target: Option<String>,
        detail: serde_json::Value,
    ) -> NewAudit {
        NewAudit {
            at: self.now(),
            actor: user.name.clone(),
            actor_email: Some(user.email.clone()),
            team_id: Some(user.team_id.clone()),
            action,
            target,
            detail,
        }
    }
}

/// Failed logins in a row after which only an admin can unlock the account.
pub const MAX_FAILED_LOGINS: u32 = 100;

/// Consecutive failures allowed before waits start (logins and workstation secrets alike).
const FREE_FAILURES: u32 = 4;
/// Longest wait between attempts.
const MAX_LOCKOUT_SECS: i64 = 15 * 60;

/// How long to wait after the `failures`-th failure in a row: nothing for the first four, then
/// 1 s, 2 s, 4 s ... capped at 15 minutes.
pub fn lockout_delay(failures: u32) -> Option<chrono::Duration> {
    let over = failures.checked_sub(FREE_FAILURES + 1)?;
    let secs = 1i64
        .checked_shl(over.min(20))
        .unwrap_or(i64::MAX)
        .min(MAX_LOCKOUT_SECS);
    Some(chrono::Duration::seconds(secs))
}
