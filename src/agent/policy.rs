//! The workstation's access policy (DOMAIN.md, "Unattended access" and "Temporary passcode and
//! permanent password"): its unattended state, its temporary passcode and its permanent
//! password, persisted in `<data_dir>/policy.json` (mode 0600).
//!
//! Every secret is checked here, on the agent: the hub only relays what a technician presented.
//! Time is a parameter (`now`) wherever a rule depends on it, so rotation is tested by stepping
//! time, not by waiting.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::protocol::{
    AccessEvent, AgentPolicy, Refusal, Secret, SecretKind, SecretRequirements, UnattendedState,
};
use crate::secrets::SecretError;

/// Where the policy lives inside the agent's data dir.
pub const POLICY_FILE: &str = "policy.json";

/// The passcode alphabet: digits and capitals without the look-alikes `0`/`O` and `1`/`I`/`L`.
pub const PASSCODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// Characters in a passcode: 9 from 31 symbols is 44.6 bits (the rule asks for at least 40).
pub const PASSCODE_LEN: usize = 9;

/// Characters per dash-separated group when a passcode is shown (`K7P-4QX-9MZ`).
const PASSCODE_GROUP: usize = 3;

/// A passcode is replaced this long after it was issued.
pub const PASSCODE_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// Shortest permanent password the end user may set, in characters.
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Longest permanent password, in characters (argon2 would take any length; this bounds work).
pub const PASSWORD_MAX_CHARS: usize = crate::secrets::PASSWORD_MAX;

/// Entropy of a passcode, in bits.
pub fn passcode_bits() -> f64 {
    // Both numbers are tiny, so the conversions are exact.
    PASSCODE_LEN as f64 * (PASSCODE_ALPHABET.len() as f64).log2()
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read the agent's policy {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the agent's policy {path} is unreadable ({source}): fix it, or remove it to start over \
         (that turns the passcode and password off and forgets unattended access)"
    )]
    Corrupt {
        path: String,
        source: serde_json::Error,
    },
    #[error("cannot save the agent's policy {path}: {source}")]
    Save {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Secret(#[from] SecretError),
    #[error("the password must have at least {PASSWORD_MIN_CHARS} characters")]
    PasswordTooShort,
    #[error("the password must have at most {PASSWORD_MAX_CHARS} characters")]
    PasswordTooLong,
    /// The unattended state machine refused the event (the message says why).
    #[error("{0}")]
    Access(String),
    #[error("the temporary passcode is off: turn it on with `tether agent passcode on`")]
    PasscodeOff,
    #[error("the agent stopped while working: {0}")]
    Interrupted(String),
}

/// Strip what people add when they type a passcode (dashes, spaces) and fold case, so
/// `k7p 4qx-9mz` reads as `K7P4QX9MZ`. Anything else is kept, and simply will not match.
pub fn normalize_passcode(input: &str) -> String {
    input
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// `K7P4QX9MZ` as people read it: `K7P-4QX-9MZ`.
pub fn format_passcode(canonical: &str) -> String {
    let chars: Vec<char> = canonical.chars().collect();
    chars
        .chunks(PASSCODE_GROUP)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// A fresh passcode from the OS's CSPRNG, canonical form (no dashes). Rejection sampling keeps
/// every symbol equally likely although 31 does not divide 256.
fn new_passcode_value() -> Result<String, SecretError> {
    let n = PASSCODE_ALPHABET.len();
    // Largest multiple of n that fits in a byte: bytes at or above it are drawn again.
    let limit = 256 - 256 % n;
    let mut out = String::with_capacity(PASSCODE_LEN);
    let mut buf = [0u8; 32];
    while out.len() < PASSCODE_LEN {
        crate::secrets::random_bytes(&mut buf)?;
        for b in buf {
            let b = usize::from(b);
            if b < limit && out.len() < PASSCODE_LEN {
                out.push(char::from(PASSCODE_ALPHABET[b % n]));
            }
        }
    }
    Ok(out)
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// The temporary passcode in force.
///
/// The clear value lives only in memory, so the agent can show it to the person at the machine;
/// `policy.json` holds only its argon2id hash (a passcode is low-entropy, so a fast hash of it
/// would fall to brute force), so a copy of the data dir does not reveal it. After a restart the
/// clear value is unknown and cannot be shown, so [`Policy::load`] issues a new passcode.
#[derive(Clone)]
pub struct TemporaryPasscode {
    value: Secret,
    hash: String,
    issued_at: DateTime<Utc>,
}

impl std::fmt::Debug for TemporaryPasscode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporaryPasscode")
            .field("value", &self.value)
            .field("issued_at", &self.issued_at)
            .finish_non_exhaustive()
    }
}

impl TemporaryPasscode {
    /// Issue a new passcode at `now`. Slow (argon2id): call it off the async executor.
    pub fn generate(now: DateTime<Utc>) -> Result<Self, SecretError> {
        let value = new_passcode_value()?;
        let hash = crate::secrets::hash_password(&value)?;
        Ok(Self {
            value: Secret::new(value),
            hash,
            issued_at: now,
        })
    }

    /// As shown to people: `K7P-4QX-9MZ`.
    pub fn formatted(&self) -> Secret {
        Secret::new(format_passcode(self.value.expose()))
    }

    pub fn issued_at(&self) -> DateTime<Utc> {
        self.issued_at
    }

    /// When the daily rotation replaces it.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.issued_at + PASSCODE_LIFETIME
    }
}

/// The permanent password, as stored: an argon2id PHC string, never the value.
#[derive(Clone)]
pub struct PermanentPassword {
    hash: String,
}

impl PermanentPassword {
    /// Check the end user's choice (8 to 128 characters) and hash it. Slow (argon2id): call it
    /// off the async executor.
    pub fn new(value: &str) -> Result<Self, PolicyError> {
        let len = value.chars().count();
        if len < PASSWORD_MIN_CHARS {
            return Err(PolicyError::PasswordTooShort);
        }
        if len > PASSWORD_MAX_CHARS {
            return Err(PolicyError::PasswordTooLong);
        }
        Ok(Self {
            hash: crate::secrets::hash_password(value)?,
        })
    }
}

/// What checking a presented secret needs, copied out of a [`Policy`] so the slow argon2id
/// check can run without holding the policy's lock. An attempt is judged against the policy as
/// it was when the copy was taken.
#[derive(Clone)]
pub struct SecretCheck {
    /// SHA-256 of the canonical passcode, when the passcode is on.
    passcode: Option<[u8; 32]>,
    /// The permanent password's PHC string, when one is set.
    password: Option<String>,
    password_required: bool,
}

impl SecretCheck {
    pub fn requirements(&self) -> SecretRequirements {
        SecretRequirements {
            passcode: self.passcode.is_some(),
            password: self.password.is_some() || self.password_required,
        }
    }

    /// Check `presented` against every secret in force. With none in force, nothing is needed.
    /// Every enabled secret is checked (no early exit) in constant time, and either one is
    /// enough; the answer says which matched. Slow when a password is set (argon2id).
    pub fn verify(&self, presented: Option<&str>) -> Result<Vec<SecretKind>, Refusal> {
        if !self.requirements().any() {
            return Ok(Vec::new());
        }
        // Only a required password that was never set could satisfy the requirement.
        let satisfiable = self.passcode.is_some() || self.password.is_some();
        let Some(presented) = presented else {
            return Err(if satisfiable {
                Refusal::SecretRequired
            } else {
                Refusal::NoPasswordSet
            });
        };
        if !satisfiable {
            return Err(Refusal::NoPasswordSet);
        }
        let passcode_ok = match &self.passcode {
            Some(expected) => {
                let given = digest(&normalize_passcode(presented));
                crate::secrets::constant_time_eq(&given, expected)
            }
            None => false,
        };
        // Passwords are exact: no case folding, no trimming.
        let password_ok = match &self.password {
            Some(hash) => crate::secrets::verify_password(presented, hash),
            None => false,
        };
        let mut matched = Vec::new();
        if passcode_ok {
            matched.push(SecretKind::Passcode);
        }
        if password_ok {
            matched.push(SecretKind::Password);
        }
        if matched.is_empty() {
            Err(Refusal::WrongSecret)
        } else {
            Ok(matched)
        }
    }
}

/// The policy as it is kept on disk: hashes only.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredPolicy {
    #[serde(default)]
    unattended: UnattendedState,
    /// Present exactly when the passcode is on.
    #[serde(default)]
    passcode: Option<StoredPasscode>,
    /// Argon2id PHC string of the permanent password.
    #[serde(default)]
    password_hash: Option<String>,
    #[serde(default)]
    password_required: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredPasscode {
    /// Argon2id PHC string of the passcode in force.
    hash: String,
    issued_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
struct State {
    unattended: UnattendedState,
    /// `Some` exactly when the passcode is on.
    passcode: Option<TemporaryPasscode>,
    password: Option<PermanentPassword>,
    password_required: bool,
}

impl std::fmt::Debug for PermanentPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PermanentPassword(<hash>)")
    }
}

impl State {
    fn stored(&self) -> StoredPolicy {
        StoredPolicy {
            unattended: self.unattended,
            passcode: self.passcode.as_ref().map(|p| StoredPasscode {
                hash: p.hash.clone(),
                issued_at: p.issued_at,
            }),
            password_hash: self.password.as_ref().map(|p| p.hash.clone()),
            password_required: self.password_required,
        }
    }
}

/// The workstation's access policy. Every change is written to disk before it takes effect, so
/// a failed write changes nothing.
#[derive(Debug)]
pub struct Policy {
    path: PathBuf,
    state: State,
}

impl Policy {
    /// Load `<data_dir>/policy.json` (everything off when it does not exist). When the passcode
    /// is on, a new one is issued at `now`: the clear value of the stored one is unknown.
    /// Slow when the passcode is on (argon2id).
    pub fn load(data_dir: &Path, now: DateTime<Utc>) -> Result<Self, PolicyError> {
        let path = data_dir.join(POLICY_FILE);
        let stored: StoredPolicy = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| PolicyError::Corrupt {
                path: path.display().to_string(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StoredPolicy::default(),
            Err(source) => {
                return Err(PolicyError::Read {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        let mut policy = Self {
            path,
            state: State {
                unattended: stored.unattended,
                passcode: None,
                password: stored.password_hash.map(|hash| PermanentPassword { hash }),
                password_required: stored.password_required,
            },
        };
        if stored.passcode.is_some() {
            policy.install_passcode(TemporaryPasscode::generate(now)?)?;
        }
        Ok(policy)
    }

    /// Write `next` to disk, then make it current.
    fn commit(&mut self, next: State) -> Result<(), PolicyError> {
        let save_error = |source| PolicyError::Save {
            path: self.path.display().to_string(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            crate::paths::create_private_dir(dir).map_err(save_error)?;
        }
        let json = serde_json::to_vec_pretty(&next.stored())
            .map_err(|e| save_error(std::io::Error::other(e)))?;
        crate::paths::write_private(&self.path, &json).map_err(save_error)?;
        self.state = next;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    // --- Unattended access ---------------------------------------------------------------

    pub fn unattended(&self) -> UnattendedState {
        self.state.unattended
    }

    /// Move the unattended state machine by `event` (and persist it).
    pub fn apply(&mut self, event: AccessEvent) -> Result<UnattendedState, PolicyError> {
        let to = self
            .state
            .unattended
            .apply(event)
            .map_err(PolicyError::Access)?;
        let mut next = self.state.clone();
        next.unattended = to;
        self.commit(next)?;
        Ok(to)
    }

    /// Take the state the hub holds (reconciliation: a technician withdrew, say). Nothing is
    /// written when the state is already `state`.
    pub fn set_unattended(&mut self, state: UnattendedState) -> Result<(), PolicyError> {
        if self.state.unattended == state {
            return Ok(());
        }
        let mut next = self.state.clone();
        next.unattended = state;
        self.commit(next)
    }

    // --- Temporary passcode --------------------------------------------------------------

    pub fn passcode_on(&self) -> bool {
        self.state.passcode.is_some()
    }

    /// The passcode in force, when it is on.
    pub fn passcode(&self) -> Option<&TemporaryPasscode> {
        self.state.passcode.as_ref()
    }

    /// Make `passcode` the one in force (turning the passcode on): the previous one stops
    /// working at once.
    pub fn install_passcode(&mut self, passcode: TemporaryPasscode) -> Result<(), PolicyError> {
        let mut next = self.state.clone();
        next.passcode = Some(passcode);
        self.commit(next)
    }

    /// Turn the passcode off; its value is forgotten.
    pub fn disable_passcode(&mut self) -> Result<(), PolicyError> {
        if self.state.passcode.is_none() {
            return Ok(());
        }
        let mut next = self.state.clone();
        next.passcode = None;
        self.commit(next)
    }

    /// Turn the passcode on (issuing one, unless one is in force already) or off. Slow when it
    /// issues one (argon2id).
    pub fn set_passcode_enabled(
        &mut self,
        on: bool,
        now: DateTime<Utc>,
    ) -> Result<(), PolicyError> {
        match (on, self.passcode_on()) {
            (true, false) => self.install_passcode(TemporaryPasscode::generate(now)?),
            (false, true) => self.disable_passcode(),
            _ => Ok(()),
        }
    }

    /// Replace the passcode now (the end user asked, or too many failures); the old one stops
    /// working at once. `Err(PasscodeOff)` when it is off. Slow (argon2id).
    pub fn refresh_passcode(&mut self, now: DateTime<Utc>) -> Result<(), PolicyError> {
        if !self.passcode_on() {
            return Err(PolicyError::PasscodeOff);
        }
        self.install_passcode(TemporaryPasscode::generate(now)?)
    }

    /// When the daily rotation is due, if the passcode is on.
    pub fn next_rotation(&self) -> Option<DateTime<Utc>> {
        self.state
            .passcode
            .as_ref()
            .map(TemporaryPasscode::expires_at)
    }

    /// Replace the passcode if it is 24 h old at `now`. `Ok(true)` when it was replaced.
    pub fn rotate_if_due(&mut self, now: DateTime<Utc>) -> Result<bool, PolicyError> {
        match self.next_rotation() {
            Some(due) if due <= now => {
                self.refresh_passcode(now)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    // --- Permanent password --------------------------------------------------------------

    pub fn password_set(&self) -> bool {
        self.state.password.is_some()
    }

    /// The group's defaults require a permanent password.
    pub fn password_required(&self) -> bool {
        self.state.password_required
    }

    pub fn set_password(&mut self, password: PermanentPassword) -> Result<(), PolicyError> {
        let mut next = self.state.clone();
        next.password = Some(password);
        self.commit(next)
    }

    /// Remove the permanent password. Where the group requires one, connections are refused
    /// (`NoPasswordSet`, unless the passcode is on) until a new one is set.
    pub fn clear_password(&mut self) -> Result<(), PolicyError> {
        if self.state.password.is_none() {
            return Ok(());
        }
        let mut next = self.state.clone();
        next.password = None;
        self.commit(next)
    }

    // --- Together ------------------------------------------------------------------------

    /// The group's security defaults, at enrolment: they only ever turn secrets on. Slow when
    /// they turn the passcode on (argon2id).
    pub fn apply_defaults(
        &mut self,
        defaults: SecretRequirements,
        now: DateTime<Utc>,
    ) -> Result<(), PolicyError> {
        let mut next = self.state.clone();
        if defaults.passcode && next.passcode.is_none() {
            next.passcode = Some(TemporaryPasscode::generate(now)?);
        }
        next.password_required |= defaults.password;
        self.commit(next)
    }

    /// The secrets a connection must present (either one, when both).
    pub fn requirements(&self) -> SecretRequirements {
        self.secret_check().requirements()
    }

    /// What the hub is told.
    pub fn snapshot(&self) -> AgentPolicy {
        AgentPolicy {
            unattended: self.state.unattended,
            requires: self.requirements(),
        }
    }

    /// A copy of what checking a secret needs, to check it without holding a lock.
    pub fn secret_check(&self) -> SecretCheck {
        SecretCheck {
            passcode: self
                .state
                .passcode
                .as_ref()
                .map(|p| digest(p.value.expose())),
            password: self.state.password.as_ref().map(|p| p.hash.clone()),
            password_required: self.state.password_required,
        }
    }

    /// Check a presented secret: see [`SecretCheck::verify`]. Slow when a password is set.
    pub fn verify(&self, presented: Option<&str>) -> Result<Vec<SecretKind>, Refusal> {
        self.secret_check().verify(presented)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T09:00:00Z")
            .expect("date")
            .with_timezone(&Utc)
    }

    fn fresh() -> (tempfile::TempDir, Policy) {
        let dir = tempfile::tempdir().expect("tempdir");
        let policy = Policy::load(dir.path(), t0()).expect("load");
        (dir, policy)
    }

    fn file(dir: &tempfile::TempDir) -> String {
        std::fs::read_to_string(dir.path().join(POLICY_FILE)).expect("policy file")
    }

    fn passcode_of(policy: &Policy) -> String {
        policy
            .passcode()
            .expect("passcode on")
            .formatted()
            .expose()
            .to_owned()
    }

    #[test]
    fn alphabet_has_no_look_alikes_and_passcodes_carry_40_bits() {
        for c in b"01OIL" {
            assert!(!PASSCODE_ALPHABET.contains(c), "{}", char::from(*c));
        }
        let mut seen = std::collections::HashSet::new();
        assert!(
            PASSCODE_ALPHABET.iter().all(|c| seen.insert(*c)),
            "no repeats"
        );
        assert!(
            PASSCODE_ALPHABET
                .iter()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        );
        assert!(passcode_bits() >= 40.0, "{}", passcode_bits());
        for _ in 0..200 {
            let v = new_passcode_value().expect("random");
            assert_eq!(v.len(), PASSCODE_LEN);
            assert!(v.bytes().all(|c| PASSCODE_ALPHABET.contains(&c)), "{v}");
        }
        assert_ne!(
            new_passcode_value().expect("random"),
            new_passcode_value().expect("random")
        );
    }

    #[test]
    fn passcodes_are_shown_in_groups_and_read_leniently() {
        assert_eq!(format_passcode("K7P4QX9MZ"), "K7P-4QX-9MZ");
        for typed in ["K7P-4QX-9MZ", "k7p4qx9mz", " k7p 4qx-9mz\n", "K7P4QX9MZ"] {
            assert_eq!(normalize_passcode(typed), "K7P4QX9MZ", "{typed:?}");
        }
    }

    #[test]
    fn passcode_is_off_by_default_and_works_in_any_typed_form_when_on() {
        let (_dir, mut policy) = fresh();
        assert!(!policy.passcode_on());
        assert_eq!(policy.requirements(), SecretRequirements::default());
        assert_eq!(policy.verify(None), Ok(vec![]), "nothing required");
        policy.set_passcode_enabled(true, t0()).expect("on");
        let shown = passcode_of(&policy);
        assert_eq!(shown.len(), 11);
        assert_eq!(
            policy.requirements(),
            SecretRequirements {
                passcode: true,
                password: false
            }
        );
        assert_eq!(policy.verify(Some(&shown)), Ok(vec![SecretKind::Passcode]));
        let sloppy = shown.replace('-', " ").to_lowercase();
        assert_eq!(policy.verify(Some(&sloppy)), Ok(vec![SecretKind::Passcode]));
        assert_eq!(
            policy.verify(Some("ABC-DEF-GHJ")),
            Err(Refusal::WrongSecret)
        );
        assert_eq!(policy.verify(None), Err(Refusal::SecretRequired));
        policy.set_passcode_enabled(false, t0()).expect("off");
        assert_eq!(policy.verify(None), Ok(vec![]));
    }

    #[test]
    fn refresh_makes_the_old_passcode_fail_at_once() {
        let (_dir, mut policy) = fresh();
        policy.set_passcode_enabled(true, t0()).expect("on");
        let old = passcode_of(&policy);
        policy.refresh_passcode(t0()).expect("refresh");
        let new = passcode_of(&policy);
        assert_ne!(old, new);
        assert_eq!(policy.verify(Some(&old)), Err(Refusal::WrongSecret));
        assert_eq!(policy.verify(Some(&new)), Ok(vec![SecretKind::Passcode]));
    }

    #[test]
    fn refresh_with_the_passcode_off_says_so() {
        let (_dir, mut policy) = fresh();
        assert!(matches!(
            policy.refresh_passcode(t0()),
            Err(PolicyError::PasscodeOff)
        ));
    }

    #[test]
    fn passcode_rotates_daily() {
        let (_dir, mut policy) = fresh();
        assert_eq!(policy.next_rotation(), None);
        assert!(!policy.rotate_if_due(t0()).expect("rotate"), "off: nothing");
        policy.set_passcode_enabled(true, t0()).expect("on");
        let first = passcode_of(&policy);
        let due = t0() + chrono::TimeDelta::hours(24);
        assert_eq!(policy.next_rotation(), Some(due));
        let almost = due - chrono::TimeDelta::seconds(1);
        assert!(!policy.rotate_if_due(almost).expect("rotate"));
        assert_eq!(passcode_of(&policy), first);
        assert!(policy.rotate_if_due(due).expect("rotate"));
        let second = passcode_of(&policy);
        assert_ne!(first, second);
        assert_eq!(policy.verify(Some(&first)), Err(Refusal::WrongSecret));
        assert_eq!(policy.verify(Some(&second)), Ok(vec![SecretKind::Passcode]));
        assert_eq!(
            policy.next_rotation(),
            Some(due + chrono::TimeDelta::hours(24))
        );
    }

    #[test]
    fn only_a_hash_of_the_passcode_is_stored_and_a_restart_issues_a_new_one() {
        let (dir, mut policy) = fresh();
        policy.set_passcode_enabled(true, t0()).expect("on");
        let shown = passcode_of(&policy);
        let canonical = normalize_passcode(&shown);
        let stored = file(&dir);
        assert!(!stored.contains(&canonical), "{stored}");
        assert!(!stored.contains(&shown), "{stored}");
        assert!(stored.contains("$argon2id$"), "{stored}");

        let later = t0() + chrono::TimeDelta::minutes(5);
        let reloaded = Policy::load(dir.path(), later).expect("reload");
        assert!(reloaded.passcode_on());
        let new = passcode_of(&reloaded);
        assert_ne!(new, shown);
        assert_eq!(reloaded.verify(Some(&shown)), Err(Refusal::WrongSecret));
        assert_eq!(reloaded.next_rotation(), Some(later + PASSCODE_LIFETIME));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(matches!(
            PermanentPassword::new("seven77"),
            Err(PolicyError::PasswordTooShort)
        ));
        assert!(matches!(
            PermanentPassword::new(&"x".repeat(PASSWORD_MAX_CHARS + 1)),
            Err(PolicyError::PasswordTooLong)
        ));
        assert!(PermanentPassword::new("eight888").is_ok());
    }

    #[test]
    fn password_is_stored_only_as_argon2id() {
        let (dir, mut policy) = fresh();
        policy
            .set_password(PermanentPassword::new("orchid lantern").expect("password"))
            .expect("set");
        let stored = file(&dir);
        assert!(stored.contains("$argon2id$"), "{stored}");
        assert!(!stored.contains("orchid"), "{stored}");
        assert_eq!(
            policy.verify(Some("orchid lantern")),
            Ok(vec![SecretKind::Password])
        );
        assert_eq!(
            policy.verify(Some("Orchid lantern")),
            Err(Refusal::WrongSecret),
            "passwords are case-sensitive"
        );
        policy.clear_password().expect("clear");
        assert!(!file(&dir).contains("$argon2id$"));
        assert_eq!(policy.verify(Some("orchid lantern")), Ok(vec![]));
    }

    #[test]
    fn with_both_on_either_works_and_neither_fails() {
        let (_dir, mut policy) = fresh();
        policy.set_passcode_enabled(true, t0()).expect("on");
        policy
            .set_password(PermanentPassword::new("orchid lantern").expect("password"))
            .expect("set");
        assert_eq!(
            policy.requirements(),
            SecretRequirements {
                passcode: true,
                password: true
            }
        );
        let passcode = passcode_of(&policy);
        assert_eq!(
            policy.verify(Some(&passcode)),
            Ok(vec![SecretKind::Passcode])
        );
        assert_eq!(
            policy.verify(Some("orchid lantern")),
            Ok(vec![SecretKind::Password])
        );
        assert_eq!(policy.verify(Some("wrong one")), Err(Refusal::WrongSecret));
        assert_eq!(policy.verify(Some("")), Err(Refusal::WrongSecret));
        assert_eq!(policy.verify(None), Err(Refusal::SecretRequired));
    }

    #[test]
    fn a_required_password_that_is_not_set_refuses_with_no_password_set() {
        let (_dir, mut policy) = fresh();
        policy
            .apply_defaults(
                SecretRequirements {
                    passcode: false,
                    password: true,
                },
                t0(),
            )
            .expect("defaults");
        assert!(policy.password_required());
        assert!(!policy.password_set());
        assert_eq!(
            policy.requirements(),
            SecretRequirements {
                passcode: false,
                password: true
            }
        );
        assert_eq!(policy.verify(None), Err(Refusal::NoPasswordSet));
        assert_eq!(policy.verify(Some("anything")), Err(Refusal::NoPasswordSet));
        policy
            .set_password(PermanentPassword::new("orchid lantern").expect("password"))
            .expect("set");
        assert_eq!(policy.verify(None), Err(Refusal::SecretRequired));
        assert_eq!(
            policy.verify(Some("orchid lantern")),
            Ok(vec![SecretKind::Password])
        );
    }

    #[test]
    fn group_defaults_turn_the_passcode_on() {
        let (_dir, mut policy) = fresh();
        policy
            .apply_defaults(
                SecretRequirements {
                    passcode: true,
                    password: false,
                },
                t0(),
            )
            .expect("defaults");
        assert!(policy.passcode_on());
        assert!(!policy.password_required());
        // With a required password unset, the passcode still lets technicians in.
        policy
            .apply_defaults(
                SecretRequirements {
                    passcode: true,
                    password: true,
                },
                t0(),
            )
            .expect("defaults");
        assert_eq!(policy.verify(None), Err(Refusal::SecretRequired));
        let passcode = passcode_of(&policy);
        assert_eq!(
            policy.verify(Some(&passcode)),
            Ok(vec![SecretKind::Passcode])
        );
        assert_eq!(policy.verify(Some("nope")), Err(Refusal::WrongSecret));
    }

    #[test]
    fn unattended_state_machine_persists_across_reload() {
        let (dir, mut policy) = fresh();
        assert_eq!(policy.unattended(), UnattendedState::None);
        assert_eq!(
            policy.apply(AccessEvent::Request).expect("request"),
            UnattendedState::Requested
        );
        assert_eq!(
            policy.apply(AccessEvent::Grant).expect("grant"),
            UnattendedState::Granted
        );
        assert!(matches!(
            policy.apply(AccessEvent::Grant),
            Err(PolicyError::Access(_))
        ));
        let reloaded = Policy::load(dir.path(), t0()).expect("reload");
        assert_eq!(reloaded.unattended(), UnattendedState::Granted);
        assert_eq!(
            reloaded.snapshot(),
            AgentPolicy {
                unattended: UnattendedState::Granted,
                requires: SecretRequirements::default()
            }
        );
        drop(reloaded);
        assert_eq!(
            policy.apply(AccessEvent::Revoke).expect("revoke"),
            UnattendedState::Revoked
        );
        policy
            .set_unattended(UnattendedState::Withdrawn)
            .expect("reconcile");
        let reloaded = Policy::load(dir.path(), t0()).expect("reload");
        assert_eq!(reloaded.unattended(), UnattendedState::Withdrawn);
    }

    #[test]
    fn password_and_requirement_persist_across_reload() {
        let (dir, mut policy) = fresh();
        policy
            .set_password(PermanentPassword::new("orchid lantern").expect("password"))
            .expect("set");
        policy
            .apply_defaults(
                SecretRequirements {
                    passcode: false,
                    password: true,
                },
                t0(),
            )
            .expect("defaults");
        let reloaded = Policy::load(dir.path(), t0()).expect("reload");
        assert!(reloaded.password_set() && reloaded.password_required());
        assert_eq!(
            reloaded.verify(Some("orchid lantern")),
            Ok(vec![SecretKind::Password])
        );
    }

    #[cfg(unix)]
    #[test]
    fn policy_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, mut policy) = fresh();
        policy.apply(AccessEvent::Request).expect("request");
        let mode = std::fs::metadata(dir.path().join(POLICY_FILE))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_corrupt_policy_file_is_reported_not_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(POLICY_FILE), b"{not json").expect("write");
        let err = Policy::load(dir.path(), t0()).expect_err("corrupt");
        assert!(matches!(err, PolicyError::Corrupt { .. }));
        assert!(err.to_string().contains("remove it"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_the_passcode() {
        let (_dir, mut policy) = fresh();
        policy.set_passcode_enabled(true, t0()).expect("on");
        let canonical = normalize_passcode(&passcode_of(&policy));
        let debug = format!("{policy:?}");
        assert!(!debug.contains(&canonical), "{debug}");
    }
}
