//! Bounded work before authentication.
//!
//! Before a peer has proved who it is, everything it can make the hub do is bounded:
//! - every credential field has a maximum, checked before any lookup or hashing, and a field
//!   over it gets the same answer as a wrong value (no length oracle, no 60 KiB argon2 input);
//! - per source address (IPv4 /32, IPv6 /64): at most `preauth_per_source` unauthenticated
//!   connections, and a bucket of failures (logins, guest logins, tokens, agent keys, links)
//!   that empties at `source_refill`; a full bucket refuses before any lookup;
//! - failures of names nobody holds are counted like real ones, so the lock-out does not tell
//!   which names exist;
//! - the audit records of these failures are summed: one record per source and action a
//!   minute, with a count.
//!
//! Memory stays bounded: each table is an LRU of at most [`MAX_TRACKED`] entries.

use crate::hub::audit::AuditEvent;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lru::LruCache;

use super::store::NewAudit;
use crate::protocol::{ErrorCode, ProtocolError};

/// Entries each table keeps (sources, unknown names, audit windows): ~100 bytes each.
pub const MAX_TRACKED: usize = 16_384;

/// A pre-auth message (login, hello, enrolment) larger than this closes the connection.
pub const MAX_PREAUTH_MESSAGE: usize = 4 * 1024;

/// How often pre-auth failures of one source and kind are written to the audit log.
const AUDIT_WINDOW_SECS: i64 = 60;

/// A credential field arriving before authentication, with its maximum length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A technician's or guest's user name.
    UserName,
    /// A technician's or guest's password: the longest one accepted when it is set.
    Password,
    /// A login token, agent key or enrolment link token (43 characters as issued).
    Token,
    /// A TOTP code or guest security code (6 digits; room for spaces and recovery codes).
    Code,
    /// A workstation id sent with an agent key.
    WorkstationId,
    /// A workstation's passcode or permanent password, presented with `Connect`.
    WorkstationSecret,
}

impl Field {
    /// The maximum, in characters.
    pub const fn max_chars(self) -> usize {
        match self {
            Self::UserName => 64,
            Self::Password | Self::WorkstationSecret => crate::secrets::PASSWORD_MAX,
            Self::Token | Self::WorkstationId => 128,
            Self::Code => 32,
        }
    }

    /// True when `value` is within the maximum. Counts at most `max + 1` characters.
    pub fn fits(self, value: &str) -> bool {
        let max = self.max_chars();
        // A character is at most 4 bytes: short input needs no counting.
        value.len() <= max || value.chars().nth(max).is_none()
    }
}

/// Where a connection comes from, as the limits count it: IPv4 by address, IPv6 by its /64
/// (one host usually holds a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    pub fn of(peer: SocketAddr) -> Self {
        match peer.ip() {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(IpAddr::V6(bits.into()))
                }
            },
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// What one source has cost so far.
#[derive(Debug, Clone, Copy)]
struct SourceState {
    /// Unauthenticated connections open now.
    open: u32,
    /// Password checks of this source running or queued now.
    hashing: u32,
    /// Failures in the bucket, as of `at` (it empties at the refill rate).
    level: f64,
    at: DateTime<Utc>,
    /// The source's last failure: for a while after it, its password checks wait behind those
    /// of sources with none.
    last_failure: Option<DateTime<Utc>>,
}

impl SourceState {
    fn new(now: DateTime<Utc>) -> Self {
        Self {
            open: 0,
            hashing: 0,
            level: 0.0,
            at: now,
            last_failure: None,
        }
    }
}

/// How long after a failure a source's password checks wait behind clean sources' (longer
/// than a flood's pauses: a spread-out flood fails every few seconds per address).
const FAILED_LATELY_SECS: i64 = 300;

/// Password checks one source may have running or queued at once: a flood from one address
/// cannot queue ahead of everyone else's logins (more than that answer "busy").
pub const HASHING_PER_SOURCE: u32 = 4;

/// A source's turn at a password check, given back on drop.
pub struct HashTurn {
    preauth: Arc<Preauth>,
    source: Source,
    /// The source had no failure lately and no other check waiting: its check waits ahead of
    /// a flood's.
    clean: bool,
}

impl HashTurn {
    /// Where this check waits for a password thread.
    pub fn precedence(&self) -> crate::secrets::work::Precedence {
        if self.clean {
            crate::secrets::work::Precedence::First
        } else {
            crate::secrets::work::Precedence::Normal
        }
    }
}

impl Drop for HashTurn {
    fn drop(&mut self) {
        let mut sources = lock(&self.preauth.sources);
        if let Some(s) = sources.peek_mut(&self.source) {
            s.hashing = s.hashing.saturating_sub(1);
        }
    }
}

/// Store lookups that logins without a trusted device may make at once. Past it they wait in
/// line (FIFO, in memory) instead of each holding a blocking thread on the store's lock: a
/// flood's lookups then cannot queue ahead of a trusted device's, which skip this line.
const UNTRUSTED_LOOKUPS: usize = 8;

/// The per-source limits and the tables of names and audit windows (see the module doc).
pub struct Preauth {
    /// See [`UNTRUSTED_LOOKUPS`].
    lookups: tokio::sync::Semaphore,
    max_open: u32,
    burst: u32,
    refill: chrono::Duration,
    sources: Mutex<LruCache<Source, SourceState>>,
    unknown_names: Mutex<LruCache<String, NameFailures>>,
    audit: Mutex<LruCache<(Source, AuditEvent), AuditWindow>>,
}

/// A name's failed logins in a row and its lock, whether or not the name exists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NameFailures {
    pub failures: u32,
    pub locked_until: Option<DateTime<Utc>>,
}

/// Failures of one source and kind since the last record.
#[derive(Debug, Clone)]
struct AuditWindow {
    recorded_at: DateTime<Utc>,
    unrecorded: u64,
    last: NewAudit,
}

fn tracked() -> NonZeroUsize {
    NonZeroUsize::new(MAX_TRACKED).unwrap_or(NonZeroUsize::MIN)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whole seconds until `until`, rounded up, at least 1: a client that waits this long is not
/// refused again.
pub fn wait_secs(until: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    let ms = (until - now).num_milliseconds().max(1);
    u64::try_from((ms + 999) / 1000).unwrap_or(1)
}

/// The answer to a source whose failure bucket is full.
fn source_limited(wait: u64) -> ProtocolError {
    let mut err = ProtocolError::new(
        ErrorCode::RateLimited,
        format!("too many failed attempts from this address: try again in {wait} s"),
    );
    err.retry_after_secs = Some(wait);
    err
}

/// The answer when every core is busy hashing and the queue is full.
pub fn busy() -> ProtocolError {
    let mut err = ProtocolError::new(
        ErrorCode::RateLimited,
        "the hub is busy checking passwords: try again in 1 s",
    );
    err.retry_after_secs = Some(1);
    err
}

/// The answer when an argon2 run did not happen: busy (try again) or an internal error.
pub fn work_error(e: crate::secrets::work::WorkError) -> ProtocolError {
    match e {
        crate::secrets::work::WorkError::Busy => busy(),
        crate::secrets::work::WorkError::Interrupted => ProtocolError::internal(),
    }
}

/// A place among a source's unauthenticated connections, given back on drop (when the
/// connection authenticates or ends).
pub struct PreauthSlot {
    preauth: Arc<Preauth>,
    source: Source,
    held: bool,
    /// Read by the connection's [`FrameGuard`](super::frame_guard::FrameGuard): set, the
    /// pre-auth message limit no longer applies.
    authenticated: Arc<std::sync::atomic::AtomicBool>,
}

impl PreauthSlot {
    /// The flag [`PreauthSlot::release`] sets.
    pub fn authenticated(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.authenticated.clone()
    }

    /// The connection authenticated: it no longer counts against its source, and its
    /// messages are held to the limits after authentication.
    pub fn release(&mut self) {
        self.authenticated
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if std::mem::take(&mut self.held) {
            let mut sources = lock(&self.preauth.sources);
            if let Some(s) = sources.peek_mut(&self.source) {
                s.open = s.open.saturating_sub(1);
            }
        }
    }
}

impl Drop for PreauthSlot {
    fn drop(&mut self) {
        self.release();
    }
}

impl Preauth {
    pub fn new(max_open: u32, burst: u32, refill: std::time::Duration) -> Self {
        Self {
            lookups: tokio::sync::Semaphore::new(UNTRUSTED_LOOKUPS),
            max_open,
            burst,
            refill: chrono::Duration::from_std(refill).unwrap_or(chrono::Duration::seconds(1)),
            sources: Mutex::new(LruCache::new(tracked())),
            unknown_names: Mutex::new(LruCache::new(tracked())),
            audit: Mutex::new(LruCache::new(tracked())),
        }
    }

    /// The bucket's level now, after draining since it was last touched.
    fn drained(&self, s: &SourceState, now: DateTime<Utc>) -> f64 {
        let elapsed = (now - s.at).num_milliseconds().max(0) as f64;
        let per = self.refill.num_milliseconds().max(1) as f64;
        (s.level - elapsed / per).max(0.0)
    }

    /// A new connection from `peer`: its slot, or `None` when the source has
    /// `preauth_per_source` unauthenticated connections open already.
    pub fn open(self: &Arc<Self>, peer: SocketAddr, now: DateTime<Utc>) -> Option<PreauthSlot> {
        let source = Source::of(peer);
        let mut sources = lock(&self.sources);
        let state = sources.get_or_insert_mut(source, || SourceState::new(now));
        if state.open >= self.max_open {
            return None;
        }
        state.open += 1;
        Some(PreauthSlot {
            preauth: self.clone(),
            source,
            held: true,
            authenticated: Arc::default(),
        })
    }

    /// Refuse at once, before any lookup, when the source's failure bucket is full.
    pub fn check(&self, peer: SocketAddr, now: DateTime<Utc>) -> Result<(), ProtocolError> {
        let mut sources = lock(&self.sources);
        let Some(state) = sources.get(&Source::of(peer)) else {
            return Ok(());
        };
        let level = self.drained(state, now);
        let over = level + 1.0 - f64::from(self.burst);
        if over > 0.0 {
            let ms = over * self.refill.num_milliseconds().max(1) as f64;
            // Rounded up, so a client that waits this long finds room.
            let wait = (ms / 1000.0).ceil().max(1.0) as u64;
            return Err(source_limited(wait));
        }
        Ok(())
    }

    /// A turn at a password check for `peer`, or the "busy" answer when its source has
    /// [`HASHING_PER_SOURCE`] running or queued already.
    pub fn hash_turn(
        self: &Arc<Self>,
        peer: SocketAddr,
        now: DateTime<Utc>,
    ) -> Result<HashTurn, ProtocolError> {
        let source = Source::of(peer);
        let mut sources = lock(&self.sources);
        let state = sources.get_or_insert_mut(source, || SourceState::new(now));
        if state.hashing >= HASHING_PER_SOURCE {
            // Flooding: its checks wait behind clean sources' from now on.
            state.last_failure = Some(now);
            return Err(busy());
        }
        // Clean: no failure lately and no other check waiting, so a clean source has at most
        // one check ahead of the flood (the `First` queue is bounded by the sources, not
        // refused when long).
        let clean = state.hashing == 0
            && state
                .last_failure
                .is_none_or(|t| (now - t).num_seconds() >= FAILED_LATELY_SECS);
        state.hashing += 1;
        Ok(HashTurn {
            preauth: self.clone(),
            source,
            clean,
        })
    }

    /// A place in line for a store lookup of a login without a trusted device (see
    /// [`UNTRUSTED_LOOKUPS`]); `None` only if the line was closed, which it never is.
    pub async fn lookup_turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.lookups.acquire().await.ok()
    }

    /// Count one failure against the source.
    pub fn failed(&self, peer: SocketAddr, now: DateTime<Utc>) {
        let mut sources = lock(&self.sources);
        let state = sources.get_or_insert_mut(Source::of(peer), || SourceState::new(now));
        state.level = self.drained(state, now) + 1.0;
        state.at = now;
        state.last_failure = Some(now);
    }

    /// The failures of a name nobody holds (kept only in memory, bounded).
    pub fn unknown_name(&self, name: &str) -> NameFailures {
        lock(&self.unknown_names)
            .get(name)
            .copied()
            .unwrap_or_default()
    }

    /// Count a failure of a name nobody holds, as the store counts a real one: `lock` gives the
    /// lock-out for the new count. Returns the new count.
    pub fn unknown_name_failed(
        &self,
        name: &str,
        lock_for: impl FnOnce(u32) -> Option<DateTime<Utc>>,
    ) -> u32 {
        let mut names = lock(&self.unknown_names);
        let entry = names.get_or_insert_mut(name.to_owned(), NameFailures::default);
        entry.failures = entry.failures.saturating_add(1);
        entry.locked_until = lock_for(entry.failures);
        entry.failures
    }

    /// Note one pre-auth failure for the audit log. Returns the records to write now, if any:
    /// the first failure of a source and kind is written at once, later ones within the
    /// minute are only counted and written with the next failure after it (or by
    /// [`Preauth::due`]), as one record with their count.
    pub fn note(&self, source: Source, entry: NewAudit) -> Vec<NewAudit> {
        let now = entry.at;
        let key = (source, entry.action);
        let mut windows = lock(&self.audit);
        let mut evicted = None;
        let due = match windows.get_mut(&key) {
            None => {
                let window = AuditWindow {
                    recorded_at: now,
                    unrecorded: 0,
                    last: entry.clone(),
                };
                if let Some((_, old)) = windows.push(key, window) {
                    evicted = summary(&old);
                }
                Some(counted(entry, 1, now))
            }
            Some(w) if (now - w.recorded_at).num_seconds() >= AUDIT_WINDOW_SECS => {
                let since = w.recorded_at;
                let count = w.unrecorded + 1;
                w.recorded_at = now;
                w.unrecorded = 0;
                w.last = entry.clone();
                Some(counted(entry, count, since))
            }
            Some(w) => {
                w.unrecorded += 1;
                w.last = entry;
                None
            }
        };
        // An evicted window's count is not lost: the caller writes it with this one (rare:
        // only when more than MAX_TRACKED sources fail within a minute).
        evicted.into_iter().chain(due).collect()
    }

    /// Records for windows whose minute has passed with failures not yet written.
    pub fn due(&self, now: DateTime<Utc>) -> Vec<NewAudit> {
        let mut windows = lock(&self.audit);
        let mut out = Vec::new();
        for (_, w) in windows.iter_mut() {
            if w.unrecorded > 0 && (now - w.recorded_at).num_seconds() >= AUDIT_WINDOW_SECS {
                out.push(counted(w.last.clone(), w.unrecorded, w.recorded_at));
                w.unrecorded = 0;
                w.recorded_at = now;
            }
        }
        out
    }
}

/// The answer to a name (real or not) whose failures lock it now, if they do: the same for
/// both, so the lock-out does not tell which names exist.
pub fn locked_answer(
    state: NameFailures,
    now: DateTime<Utc>,
    max_failures: u32,
    locked_for_good: &str,
) -> Option<ProtocolError> {
    let wait = state
        .locked_until
        .filter(|t| *t > now)
        .map(|t| wait_secs(t, now));
    if state.failures < max_failures && wait.is_none() {
        return None;
    }
    let mut err = ProtocolError::new(
        ErrorCode::RateLimited,
        if state.failures >= max_failures {
            locked_for_good.to_owned()
        } else {
            format!(
                "too many failed logins: try again in {} s",
                wait.unwrap_or(1)
            )
        },
    );
    err.retry_after_secs = wait;
    Some(err)
}

impl super::Hub {
    /// Refuse a pre-auth attempt at once when its source has failed too often (noted, summed,
    /// in the audit log).
    pub(super) async fn preauth_gate(&self, peer: SocketAddr) -> Result<(), ProtocolError> {
        let now = self.now();
        let Err(refusal) = self.preauth.check(peer, now) else {
            return Ok(());
        };
        let entry = NewAudit {
            at: now,
            actor: format!("source:{}", Source::of(peer)),
            actor_email: None,
            team_id: None,
            action: AuditEvent::PreauthLimited,
            target: None,
            detail: serde_json::json!({ "from": peer.ip().to_string() }),
        };
        for record in self.preauth.note(Source::of(peer), entry) {
            self.audit(record).await?;
        }
        Err(refusal)
    }

    /// A failed pre-auth attempt: counted against its source, and noted for the audit log
    /// (one record per source and action a minute, with a count).
    pub(super) async fn preauth_failed(
        &self,
        peer: SocketAddr,
        entry: NewAudit,
    ) -> Result<(), ProtocolError> {
        self.preauth.failed(peer, entry.at);
        for record in self.preauth.note(Source::of(peer), entry) {
            self.audit(record).await?;
        }
        Ok(())
    }

    /// Count a failed pre-auth attempt against its source without a record of its own (the
    /// caller writes one).
    pub(super) fn preauth_counted(&self, peer: SocketAddr) {
        self.preauth.failed(peer, self.now());
    }

    /// Write the summed records whose minute has passed (the hub's sweep calls this).
    pub(super) async fn flush_preauth_audit(&self) {
        for record in self.preauth.due(self.now()) {
            if let Err(e) = self.audit(record).await {
                tracing::error!(%e, "cannot write a pre-auth audit record");
            }
        }
    }

    /// A turn at a password check for `peer` (see [`Preauth::hash_turn`]).
    pub(super) fn hash_turn(&self, peer: SocketAddr) -> Result<HashTurn, ProtocolError> {
        self.preauth.hash_turn(peer, self.now())
    }

    /// Take a place among `peer`'s unauthenticated connections; `None` when it holds too many.
    pub(super) fn preauth_slot(&self, peer: SocketAddr) -> Option<PreauthSlot> {
        self.preauth.open(peer, self.now())
    }
}

/// A record standing for `count` failures since `since`.
fn counted(mut entry: NewAudit, count: u64, since: DateTime<Utc>) -> NewAudit {
    if let Some(detail) = entry.detail.as_object_mut() {
        detail.insert("count".into(), count.into());
        detail.insert("since".into(), serde_json::json!(since));
    }
    entry
}

fn summary(w: &AuditWindow) -> Option<NewAudit> {
    (w.unrecorded > 0).then(|| counted(w.last.clone(), w.unrecorded, w.recorded_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap_or_default()
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().expect("ip"), 40_000)
    }

    #[test]
    fn a_source_that_failed_lately_waits_behind_clean_ones() {
        use crate::secrets::work::Precedence;
        let p = Arc::new(Preauth::new(8, 3, std::time::Duration::from_secs(1)));
        let (flood, clean) = (peer("10.0.0.1"), peer("10.0.0.2"));
        p.failed(flood, at(0));
        let turn = |who, secs| p.hash_turn(who, at(secs)).expect("turn").precedence();
        assert_eq!(turn(flood, 1), Precedence::Normal);
        assert_eq!(turn(clean, 1), Precedence::First);
        let waiting = p.hash_turn(clean, at(2)).expect("turn");
        assert_eq!(waiting.precedence(), Precedence::First);
        assert_eq!(
            turn(clean, 2),
            Precedence::Normal,
            "a second check while one waits is not ahead of the flood"
        );
        drop(waiting);
        assert_eq!(
            turn(flood, FAILED_LATELY_SECS),
            Precedence::First,
            "forgiven in time"
        );
    }

    #[test]
    fn fields_have_maximums_counted_in_characters() {
        assert!(Field::Password.fits(&"é".repeat(128)));
        assert!(!Field::Password.fits(&"x".repeat(129)));
        assert!(!Field::Password.fits(&"x".repeat(60 * 1024)));
        assert!(Field::UserName.fits("ann"));
        assert!(!Field::UserName.fits(&"n".repeat(65)));
        assert!(!Field::Code.fits(&"1".repeat(33)));
    }

    #[test]
    fn ipv6_is_counted_by_its_64_and_mapped_ipv4_as_ipv4() {
        let a = Source::of(peer("2001:db8:1:2:aaaa::1"));
        let b = Source::of(peer("2001:db8:1:2:bbbb::9"));
        let c = Source::of(peer("2001:db8:1:3::1"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            Source::of(peer("::ffff:10.0.0.1")),
            Source::of(peer("10.0.0.1"))
        );
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn unauthenticated_connections_are_capped_per_source_and_given_back() {
        let p = Arc::new(Preauth::new(2, 10, std::time::Duration::from_secs(1)));
        let one = p.open(peer("10.0.0.1"), at(0)).expect("first");
        let mut two = p.open(peer("10.0.0.1"), at(0)).expect("second");
        assert!(p.open(peer("10.0.0.1"), at(0)).is_none(), "third refused");
        assert!(
            p.open(peer("10.0.0.2"), at(0)).is_some(),
            "other sources unaffected"
        );
        two.release();
        let _three = p
            .open(peer("10.0.0.1"), at(0))
            .expect("an authenticated one frees a place");
        drop(one);
        assert!(
            p.open(peer("10.0.0.1"), at(0)).is_some(),
            "a closed one too"
        );
    }

    #[test]
    fn password_checks_are_capped_per_source() {
        let p = Arc::new(Preauth::new(8, 10, std::time::Duration::from_secs(1)));
        let turns: Vec<_> = (0..HASHING_PER_SOURCE)
            .map(|_| p.hash_turn(peer("10.0.0.1"), at(0)).expect("turn"))
            .collect();
        let e = p.hash_turn(peer("10.0.0.1"), at(0)).err().expect("busy");
        assert_eq!(
            (e.code, e.retry_after_secs),
            (ErrorCode::RateLimited, Some(1))
        );
        assert!(
            p.hash_turn(peer("10.0.0.2"), at(0)).is_ok(),
            "other sources unaffected"
        );
        drop(turns);
        let again = p
            .hash_turn(peer("10.0.0.1"), at(0))
            .expect("turns are given back");
        assert_eq!(
            again.precedence(),
            crate::secrets::work::Precedence::Normal,
            "a source answered busy waits behind clean ones"
        );
    }

    #[test]
    fn a_full_bucket_refuses_and_its_wait_is_rounded_up_and_enough() {
        let p = Preauth::new(8, 3, std::time::Duration::from_millis(2500));
        let src = peer("10.0.0.1");
        for _ in 0..2 {
            p.failed(src, at(0));
            assert!(p.check(src, at(0)).is_ok());
        }
        p.failed(src, at(0));
        let e = p.check(src, at(0)).expect_err("full");
        assert_eq!(
            (e.code, e.retry_after_secs),
            (ErrorCode::RateLimited, Some(3))
        );
        assert!(p.check(src, at(2)).is_err(), "2.5 s are needed");
        assert!(p.check(src, at(3)).is_ok(), "waiting retry_after is enough");
        assert!(p.check(peer("10.0.0.2"), at(0)).is_ok());
    }

    #[test]
    fn retry_after_rounds_up() {
        let now = at(0);
        assert_eq!(
            wait_secs(now + chrono::Duration::milliseconds(1001), now),
            2
        );
        assert_eq!(
            wait_secs(now + chrono::Duration::milliseconds(1000), now),
            1
        );
        assert_eq!(wait_secs(now, now), 1);
    }

    #[test]
    fn failures_are_summed_into_one_record_a_minute_per_source() {
        let p = Preauth::new(8, 3, std::time::Duration::from_secs(1));
        let src = Source::of(peer("10.0.0.1"));
        let entry = |secs| NewAudit {
            at: at(secs),
            actor: "host:x".into(),
            actor_email: None,
            team_id: None,
            action: AuditEvent::WorkstationEnrolRefused,
            target: None,
            detail: serde_json::json!({ "reason": "unknown link" }),
        };
        let first = p.note(src, entry(0));
        assert_eq!(first.len(), 1, "the first is written at once");
        assert_eq!(first[0].detail["count"], 1);
        for s in 1..=59 {
            assert!(
                p.note(src, entry(s)).is_empty(),
                "within the minute: counted only"
            );
        }
        assert!(p.due(at(59)).is_empty());
        let other = p.note(Source::of(peer("10.0.0.2")), entry(30));
        assert_eq!(other.len(), 1, "another source has its own window");
        let next = p.note(src, entry(60));
        assert_eq!(next.len(), 1, "a minute on");
        assert_eq!(next[0].detail["count"], 60);
        p.note(src, entry(61));
        let flushed = p.due(at(120));
        assert_eq!(flushed.len(), 1);
        assert_eq!(flushed[0].detail["count"], 1);
        assert!(p.due(at(500)).is_empty(), "nothing left to write");
    }
}
