//! The audit log's keyed hash chain and its signed head.
//!
//! Each record's link is HMAC-SHA256, under a key derived from the hub's `seal.key`, of its
//! previous record's link and its own fields in the exact text form they are stored in
//! ([`canonical`]): any change to a stored row, a deletion or a re-ordering breaks the chain at
//! the first affected record, and someone who can write the database but not read `seal.key`
//! cannot compute a new chain. Records written before the chain was keyed keep their plain
//! SHA-256 links; the first keyed record links to the last of them, so they stay covered.
//!
//! The chain cannot show records cut from its end. So at each append the hub writes the chain's
//! head (how many records, the last link, from which record links are keyed) beside the
//! database, signed with Ed25519 under another key derived from `seal.key`. The signature is
//! checked with the public key alone: an auditor given the chain key (to check links offline)
//! still cannot sign a head, so cannot hide a rewrite either.
//!
//! [`verify`] walks the chain and names what it finds; the README's "Audit log" section gives
//! the same algorithm for an auditor's own tools.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use ring::hmac;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::secrets::seal::SealKey;

/// What an audit record says happened. Stored as [`AuditEvent::as_str`], the dotted names
/// records have always had, so stored data and searches (`kind:login`) do not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditEvent {
    /// The end user denied unattended access.
    AccessDeny,
    /// The end user granted unattended access.
    AccessGrant,
    /// A technician asked for unattended access.
    AccessRequest,
    /// The end user revoked unattended access.
    AccessRevoke,
    /// A technician withdrew their request.
    AccessWithdraw,
    /// The log was exported.
    AuditExport,
    /// The log was exported with its chain key.
    AuditExportWithKey,
    /// The chain became keyed (after records with plain links).
    AuditKeyed,
    /// An operator signed a new head after damage was found.
    AuditReseal,
    /// A client was added.
    ClientAdd,
    /// A connection refused: the technician is locked out.
    ConnectLocked,
    /// A technician locked out after wrong secrets.
    ConnectLockout,
    /// A connection refused.
    ConnectRefused,
    /// Support credentials expired.
    CredentialsExpire,
    /// Support credentials issued.
    CredentialsIssue,
    /// Support credentials revoked.
    CredentialsRevoke,
    /// A guest logged in with support credentials.
    CredentialsUse,
    /// A group's security defaults changed.
    GroupDefaults,
    /// An enrolment link made.
    LinkCreate,
    /// An enrolment link revoked.
    LinkRevoke,
    /// A failed login.
    LoginFail,
    /// A logout (its name has no dot: records have always said `logout`).
    Logout,
    /// A login refused: the account is locked.
    LoginLocked,
    /// A login.
    LoginOk,
    /// A one-time password reached neither mail nor outbox.
    OtpDeliveryFailed,
    /// An emergency one-time password issued.
    OtpEmergency,
    /// A one-time password expired.
    OtpExpire,
    /// A wrong one-time password.
    OtpFail,
    /// A one-time password issued.
    OtpIssue,
    /// A one-time password request refused.
    OtpRequestRefused,
    /// A workstation's one-time password requirement changed.
    OtpRequire,
    /// A group's one-time password requirement changed.
    OtpRequireGroup,
    /// A one-time password sent again.
    OtpResend,
    /// A one-time password returned unused.
    OtpReturn,
    /// A one-time password used.
    OtpUse,
    /// A one-time password withdrawn.
    OtpWithdraw,
    /// An admin read the outbox.
    OutboxRead,
    /// A workstation's passcode replaced after wrong tries.
    PasscodeReplace,
    /// A session ended.
    SessionEnd,
    /// A session started.
    SessionStart,
    /// An account created.
    UserCreate,
    /// A locked account unlocked.
    UserUnlock,
    /// A workstation enrolled.
    WorkstationEnrol,
    /// An enrolment refused.
    WorkstationEnrolRefused,
    /// 2FA activated.
    TwoFactorConfirm,
    /// A wrong code while activating 2FA.
    TwoFactorConfirmFail,
    /// 2FA enrolment started.
    TwoFactorEnable,
    /// 2FA required (or not) for everyone.
    TwoFactorGlobal,
    /// An admin's password check failed before a 2FA change.
    TwoFactorReauthFail,
    /// A user's 2FA reset.
    TwoFactorReset,
    /// 2FA required for a user.
    TwoFactorRequire,
    /// 2FA no longer required for a user.
    TwoFactorUnrequire,
    /// A user added (with an enrolment code or a password).
    UserAdd,
    /// A user disabled: logins ended.
    UserDisable,
    /// A user enabled again.
    UserEnable,
    /// A new user set their password with their enrolment code.
    UserEnrol,
    /// A user removed (the row stays, disabled).
    UserRemove,
    /// A user's role changed.
    UserRole,
    /// An agent presented a workstation key the hub does not know.
    WorkstationKeyRefused,
    /// A source refused for its pre-auth failures (summed a minute).
    PreauthLimited,
}

impl AuditEvent {
    /// Every event, for tests and documentation.
    pub const ALL: &[Self] = &[
        Self::AccessDeny,
        Self::AccessGrant,
        Self::AccessRequest,
        Self::AccessRevoke,
        Self::AccessWithdraw,
        Self::AuditExport,
        Self::AuditExportWithKey,
        Self::AuditKeyed,
        Self::AuditReseal,
        Self::ClientAdd,
        Self::ConnectLocked,
        Self::ConnectLockout,
        Self::ConnectRefused,
        Self::CredentialsExpire,
        Self::CredentialsIssue,
        Self::CredentialsRevoke,
        Self::CredentialsUse,
        Self::GroupDefaults,
        Self::LinkCreate,
        Self::LinkRevoke,
        Self::LoginFail,
        Self::LoginLocked,
        Self::LoginOk,
        Self::OtpDeliveryFailed,
        Self::OtpEmergency,
        Self::OtpExpire,
        Self::OtpFail,
        Self::OtpIssue,
        Self::OtpRequestRefused,
        Self::OtpRequire,
        Self::OtpRequireGroup,
        Self::OtpResend,
        Self::OtpReturn,
        Self::OtpUse,
        Self::OtpWithdraw,
        Self::OutboxRead,
        Self::PasscodeReplace,
        Self::SessionEnd,
        Self::SessionStart,
        Self::UserCreate,
        Self::UserUnlock,
        Self::WorkstationEnrol,
        Self::WorkstationEnrolRefused,
        Self::TwoFactorConfirm,
        Self::TwoFactorConfirmFail,
        Self::TwoFactorEnable,
        Self::TwoFactorGlobal,
        Self::TwoFactorReauthFail,
        Self::TwoFactorReset,
        Self::TwoFactorRequire,
        Self::TwoFactorUnrequire,
        Self::UserAdd,
        Self::UserDisable,
        Self::UserEnable,
        Self::UserEnrol,
        Self::UserRemove,
        Self::UserRole,
        Self::WorkstationKeyRefused,
        Self::PreauthLimited,
    ];

    /// The stored name: `kind.what`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessDeny => "access.deny",
            Self::AccessGrant => "access.grant",
            Self::AccessRequest => "access.request",
            Self::AccessRevoke => "access.revoke",
            Self::AccessWithdraw => "access.withdraw",
            Self::AuditExport => "audit.export",
            Self::AuditExportWithKey => "audit.export_with_key",
            Self::AuditKeyed => "audit.keyed",
            Self::AuditReseal => "audit.reseal",
            Self::ClientAdd => "client.add",
            Self::ConnectLocked => "connect.locked",
            Self::ConnectLockout => "connect.lockout",
            Self::ConnectRefused => "connect.refused",
            Self::CredentialsExpire => "credentials.expire",
            Self::CredentialsIssue => "credentials.issue",
            Self::CredentialsRevoke => "credentials.revoke",
            Self::CredentialsUse => "credentials.use",
            Self::GroupDefaults => "group.defaults",
            Self::LinkCreate => "link.create",
            Self::LinkRevoke => "link.revoke",
            Self::LoginFail => "login.fail",
            Self::Logout => "logout",
            Self::LoginLocked => "login.locked",
            Self::LoginOk => "login.ok",
            Self::OtpDeliveryFailed => "otp.delivery_failed",
            Self::OtpEmergency => "otp.emergency",
            Self::OtpExpire => "otp.expire",
            Self::OtpFail => "otp.fail",
            Self::OtpIssue => "otp.issue",
            Self::OtpRequestRefused => "otp.request_refused",
            Self::OtpRequire => "otp.require",
            Self::OtpRequireGroup => "otp.require_group",
            Self::OtpResend => "otp.resend",
            Self::OtpReturn => "otp.return",
            Self::OtpUse => "otp.use",
            Self::OtpWithdraw => "otp.withdraw",
            Self::OutboxRead => "outbox.read",
            Self::PasscodeReplace => "passcode.replace",
            Self::SessionEnd => "session.end",
            Self::SessionStart => "session.start",
            Self::UserCreate => "user.create",
            Self::UserUnlock => "user.unlock",
            Self::WorkstationEnrol => "workstation.enrol",
            Self::WorkstationEnrolRefused => "workstation.enrol_refused",
            Self::TwoFactorConfirm => "2fa.confirm",
            Self::TwoFactorConfirmFail => "2fa.confirm_fail",
            Self::TwoFactorEnable => "2fa.enable",
            Self::TwoFactorGlobal => "2fa.global",
            Self::TwoFactorReauthFail => "2fa.reauth_fail",
            Self::TwoFactorReset => "2fa.reset",
            Self::TwoFactorRequire => "2fa.require",
            Self::TwoFactorUnrequire => "2fa.unrequire",
            Self::UserAdd => "user.add",
            Self::UserDisable => "user.disable",
            Self::UserEnable => "user.enable",
            Self::UserEnrol => "user.enrol",
            Self::UserRemove => "user.remove",
            Self::UserRole => "user.role",
            Self::WorkstationKeyRefused => "workstation.key_refused",
            Self::PreauthLimited => "preauth.limited",
        }
    }

    /// The event a stored name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|e| e.as_str() == name)
    }
}

impl std::fmt::Display for AuditEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The head's file name, beside the database in the hub's data dir.
pub const HEAD_FILE: &str = "audit.head";

/// HKDF labels of the two keys derived from `seal.key`.
pub const CHAIN_KEY_LABEL: &str = "tether/audit/chain/v1";
pub const HEAD_KEY_LABEL: &str = "tether/audit/head/v1";

/// What the head signs starts with this line.
const HEAD_CONTEXT: &str = "tether-audit-head-v1";

/// How a record's link is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkKind {
    /// SHA-256 of the canonical bytes: records written before the chain was keyed.
    #[serde(rename = "sha256")]
    Sha256,
    /// HMAC-SHA256 of the canonical bytes under the chain key.
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::HmacSha256 => "hmac-sha256",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sha256" => Some(Self::Sha256),
            "hmac-sha256" => Some(Self::HmacSha256),
            _ => None,
        }
    }
}

/// The stored text of one record, as linked.
#[derive(Debug, Clone, Copy)]
pub struct AuditFields<'a> {
    pub id: i64,
    pub at: &'a str,
    pub actor: &'a str,
    pub actor_email: Option<&'a str>,
    pub team_id: Option<&'a str>,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub detail: &'a str,
}

/// The bytes a link covers: the previous link (hex) then the record's id (decimal) and fields,
/// each as `s` + its length (8 bytes, big-endian) + its UTF-8, or `n` when absent, so no two
/// different records share an input.
pub fn canonical(prev_hash: &str, f: &AuditFields<'_>) -> Vec<u8> {
    let id = f.id.to_string();
    let parts: [Option<&str>; 9] = [
        Some(prev_hash),
        Some(&id),
        Some(f.at),
        Some(f.actor),
        f.actor_email,
        f.team_id,
        Some(f.action),
        f.target,
        Some(f.detail),
    ];
    let mut out = Vec::with_capacity(128 + f.detail.len());
    for part in parts {
        match part {
            Some(s) => {
                out.push(b's');
                out.extend_from_slice(&(s.len() as u64).to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            None => out.push(b'n'),
        }
    }
    out
}

/// The unkeyed link of records written before the chain was keyed (hex).
pub fn chain_hash(prev_hash: &str, f: &AuditFields<'_>) -> String {
    hex::encode(Sha256::digest(canonical(prev_hash, f)))
}

/// The keyed link under `chain_key` (hex).
pub fn keyed_link(chain_key: &[u8], prev_hash: &str, f: &AuditFields<'_>) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, chain_key);
    hex::encode(hmac::sign(&key, &canonical(prev_hash, f)))
}

/// The link of `kind` (hex).
pub fn link(kind: LinkKind, chain_key: &[u8], prev_hash: &str, f: &AuditFields<'_>) -> String {
    match kind {
        LinkKind::Sha256 => chain_hash(prev_hash, f),
        LinkKind::HmacSha256 => keyed_link(chain_key, prev_hash, f),
    }
}

/// The audit keys, derived from `seal.key`. `Debug` is redacted.
pub struct AuditKeys {
    chain: [u8; 32],
    head: Ed25519KeyPair,
}

impl std::fmt::Debug for AuditKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKeys(public {})", self.public_key_hex())
    }
}

impl AuditKeys {
    pub fn derive(seal: &SealKey) -> Result<Self, String> {
        let head = Ed25519KeyPair::from_seed_unchecked(&seal.derive(HEAD_KEY_LABEL))
            .map_err(|e| format!("the audit head key: {e}"))?;
        Ok(Self {
            chain: seal.derive(CHAIN_KEY_LABEL),
            head,
        })
    }

    pub fn chain_key(&self) -> &[u8; 32] {
        &self.chain
    }

    pub fn public_key(&self) -> &[u8] {
        self.head.public_key().as_ref()
    }

    pub fn public_key_hex(&self) -> String {
        hex::encode(self.public_key())
    }

    /// A head for `count` records ending in `last`, signed now.
    pub fn sign_head(&self, count: i64, last: &str, keyed_from: i64, at: &str) -> AuditHead {
        let mut head = AuditHead {
            version: 1,
            count,
            last: last.to_owned(),
            keyed_from,
            at: at.to_owned(),
            public_key: self.public_key_hex(),
            signature: String::new(),
        };
        head.signature = hex::encode(self.head.sign(&head.signed_bytes()));
        head
    }
}

/// The chain's head as last appended: the file `audit.head`, one JSON object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    pub version: u32,
    /// Records in the chain: the id of the last.
    pub count: i64,
    /// The last record's link (`GENESIS` when there are none).
    pub last: String,
    /// The first record with a keyed link; those before have SHA-256 links.
    pub keyed_from: i64,
    /// When it was signed (RFC 3339, UTC).
    pub at: String,
    /// The Ed25519 public key it claims (hex): compare with the one you pinned.
    pub public_key: String,
    /// Ed25519 over [`AuditHead::signed_bytes`] (hex).
    pub signature: String,
}

impl AuditHead {
    /// `tether-audit-head-v1\n{count}\n{last}\n{keyed_from}\n{at}`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        format!(
            "{HEAD_CONTEXT}\n{}\n{}\n{}\n{}",
            self.count, self.last, self.keyed_from, self.at
        )
        .into_bytes()
    }

    /// Whether `public_key` signed this head.
    pub fn signed_by(&self, public_key: &[u8]) -> bool {
        let Ok(signature) = hex::decode(&self.signature) else {
            return false;
        };
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(&self.signed_bytes(), &signature)
            .is_ok()
    }
}

/// The head file as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadFile {
    Missing,
    /// Unreadable, not a head, or not signed by this hub's key.
    Invalid(String),
    Valid(AuditHead),
}

/// Read the head in `dir` and check its signature against `public_key`: of its two slots, the
/// valid one with the higher count (see [`write_head`]). A head file from before the slots (one
/// JSON object) is read as it is.
pub fn read_head(dir: &Path, public_key: &[u8]) -> HeadFile {
    let path = dir.join(HEAD_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => head_from_bytes(&path, &bytes, public_key),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HeadFile::Missing,
        Err(e) => HeadFile::Invalid(format!("{}: {e}", path.display())),
    }
}

/// The head that `bytes`, the content of the head file at `path`, holds.
fn head_from_bytes(path: &Path, bytes: &[u8], public_key: &[u8]) -> HeadFile {
    let slots: Vec<&[u8]> = if bytes.len() == 2 * HEAD_SLOT {
        bytes.chunks(HEAD_SLOT).collect()
    } else {
        vec![bytes]
    };
    let mut best: Option<AuditHead> = None;
    let mut invalid: Option<String> = None;
    for slot in slots {
        let text = slot.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_slice::<AuditHead>(text) {
            Err(e) => {
                invalid = Some(format!("{} is not an audit head: {e}", path.display()));
            }
            Ok(head) if !head.signed_by(public_key) => {
                invalid = Some(format!(
                    "{} is not signed by this hub's audit key",
                    path.display()
                ));
            }
            Ok(head) => {
                if best.as_ref().is_none_or(|b| head.count > b.count) {
                    best = Some(head);
                }
            }
        }
    }
    match (best, invalid) {
        (Some(head), _) => HeadFile::Valid(head),
        (None, Some(why)) => HeadFile::Invalid(why),
        (None, None) => HeadFile::Missing,
    }
}

/// Bytes a head slot takes in `audit.head`: a signed head in JSON is about 330.
const HEAD_SLOT: usize = 1024;

/// Write `head` into its slot of the head file in `dir`: the file holds two slots, and the head
/// for count `n` goes to slot `n % 2`, over the head before the last, so a write torn by a crash
/// leaves the previous head whole in the other slot (a head one behind: `verify` notes it). One
/// `pwrite` into the file in place, not fsynced, like the database's own commits
/// (`synchronous=NORMAL`). A replace by rename cost about 3 ms here: ext4 flushes the new file's
/// data when a rename replaces an existing one. A file without slots is rewritten whole.
pub fn write_head(dir: &Path, head: &AuditHead) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let path = dir.join(HEAD_FILE);
    let slotted = std::fs::metadata(&path).is_ok_and(|m| m.len() == 2 * HEAD_SLOT as u64);
    if !slotted {
        return reset_head(dir, head);
    }
    let slot = slot_bytes(head)?;
    let file = std::fs::OpenOptions::new().write(true).open(&path)?;
    let offset = if head.count % 2 == 0 {
        0
    } else {
        HEAD_SLOT as u64
    };
    file.write_all_at(&slot, offset)
}

/// Write `head` into both slots (a new head: at first start, or a reseal over a head that
/// counted more), replacing the file atomically (a temporary file, then rename).
pub fn reset_head(dir: &Path, head: &AuditHead) -> std::io::Result<()> {
    use std::io::Write;
    let slot = slot_bytes(head)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".audit.head.")
        .tempfile_in(dir)?;
    tmp.write_all(&slot)?;
    tmp.write_all(&slot)?;
    tmp.persist(dir.join(HEAD_FILE)).map_err(|e| e.error)?;
    Ok(())
}

/// `head` as one slot: its JSON and a newline, padded with spaces.
fn slot_bytes(head: &AuditHead) -> std::io::Result<Vec<u8>> {
    let mut slot = serde_json::to_vec(head).map_err(std::io::Error::other)?;
    slot.push(b'\n');
    if slot.len() > HEAD_SLOT {
        return Err(std::io::Error::other(
            "the audit head does not fit its slot",
        ));
    }
    slot.resize(HEAD_SLOT, b' ');
    Ok(slot)
}

/// The last head file read and what it held, so an append whose head file is byte for byte the
/// one it last checked does not check its signature again (the bytes are still read each time:
/// a head changed by another process is checked in full).
#[derive(Debug, Default)]
pub struct HeadCache {
    last: std::sync::Mutex<Option<(Vec<u8>, HeadFile)>>,
}

impl HeadCache {
    /// As [`read_head`].
    pub fn read(&self, dir: &Path, public_key: &[u8]) -> HeadFile {
        let path = dir.join(HEAD_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return HeadFile::Missing,
            Err(e) => return HeadFile::Invalid(format!("{}: {e}", path.display())),
        };
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, head)) = last.as_ref()
            && *seen == bytes
        {
            return head.clone();
        }
        let head = head_from_bytes(&path, &bytes, public_key);
        *last = Some((bytes, head.clone()));
        head
    }
}

impl HeadCache {
    /// As [`write_head`], remembering what the file then holds when it held a head this cache
    /// had checked, so the next append does not check its own head's signature again.
    pub fn write(&self, dir: &Path, head: &AuditHead) -> std::io::Result<()> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let after = match last.take() {
            Some((mut bytes, HeadFile::Valid(before)))
                if bytes.len() == 2 * HEAD_SLOT && head.count > before.count =>
            {
                let at = if head.count % 2 == 0 { 0 } else { HEAD_SLOT };
                bytes[at..at + HEAD_SLOT].copy_from_slice(&slot_bytes(head)?);
                Some((bytes, HeadFile::Valid(head.clone())))
            }
            _ => None,
        };
        write_head(dir, head)?;
        *last = after;
        Ok(())
    }
}

/// One stored record with its link, as the verifier reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainRecord {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub actor_email: Option<String>,
    pub team_id: Option<String>,
    pub action: String,
    pub target: Option<String>,
    /// The detail exactly as stored (JSON text): the link covers these bytes.
    pub detail: String,
    pub link: LinkKind,
    pub prev_hash: String,
    pub hash: String,
}

impl ChainRecord {
    pub fn fields(&self) -> AuditFields<'_> {
        AuditFields {
            id: self.id,
            at: &self.at,
            actor: &self.actor,
            actor_email: self.actor_email.as_deref(),
            team_id: self.team_id.as_deref(),
            action: &self.action,
            target: self.target.as_deref(),
            detail: &self.detail,
        }
    }
}

/// One line of `tether admin audit export`: a header, the records in order, then the signed
/// head they end under (when there is a valid one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ExportLine {
    Header {
        format: String,
        version: u32,
        /// The first record exported, and the link it must follow.
        first_id: i64,
        prev_hash: String,
        /// The hub's audit public key (hex): compare with the one you pinned.
        public_key: String,
        /// The chain key (hex), when asked for with `--with-key` (that request is audited).
        chain_key: Option<String>,
        /// Why no head follows the records, if none does.
        head_problem: Option<String>,
    },
    Record(ChainRecord),
    Head(AuditHead),
}

/// Check an export offline: the head's signature under `public_key` (the one you pinned), then
/// every link under `chain_key`, as [`verify`] does on the hub.
pub fn verify_export<I>(
    lines: I,
    public_key: &[u8],
    chain_key: &[u8],
) -> Result<AuditReport, String>
where
    I: IntoIterator<Item = Result<String, String>>,
{
    let mut start = None;
    let mut records = Vec::new();
    let mut head = HeadFile::Missing;
    for (n, line) in (1..).zip(lines) {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: ExportLine =
            serde_json::from_str(&line).map_err(|e| format!("line {n}: {e}"))?;
        match parsed {
            ExportLine::Header {
                first_id,
                prev_hash,
                head_problem,
                ..
            } => {
                if let Some(why) = head_problem {
                    head = HeadFile::Invalid(why);
                }
                start = Some(ChainStart {
                    first_id,
                    prev_hash,
                });
            }
            ExportLine::Record(r) => records.push(r),
            ExportLine::Head(h) if h.signed_by(public_key) => head = HeadFile::Valid(h),
            ExportLine::Head(_) => {
                head = HeadFile::Invalid("the head is not signed by the pinned key".into());
            }
        }
    }
    let start = start.ok_or("no header line: not an audit export")?;
    verify(records.into_iter().map(Ok), &start, &head, chain_key)
}

/// Something wrong with the chain or its head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Records missing between two that are there.
    Deleted {
        from: i64,
        to: i64,
    },
    /// A record links to one that is not in the log: the one before it was removed.
    MissingBefore {
        id: i64,
    },
    /// Records not in the order they were written.
    Reordered {
        ids: Vec<i64>,
    },
    /// Records whose content does not match their link.
    Edited {
        ids: Vec<i64>,
    },
    /// Records whose link is a plain SHA-256 where a keyed one belongs: the chain was
    /// recomputed by someone without the key.
    Recomputed {
        ids: Vec<i64>,
    },
    /// Records cut from the end: the signed head counts more.
    Truncated {
        head_count: i64,
        last_id: i64,
    },
    /// The record the head counts to is not the one it signed.
    HeadMismatch {
        id: i64,
    },
    /// Keyed links start elsewhere than the signed head says.
    KeyedFromMoved {
        head: i64,
        found: i64,
    },
    HeadMissing,
    HeadInvalid(String),
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Deleted { from, to } if from == to => {
                write!(
                    f,
                    "deleted: record {from} is missing from the middle of the log"
                )
            }
            Self::Deleted { from, to } => {
                write!(
                    f,
                    "deleted: records {from}-{to} are missing from the middle of the log"
                )
            }
            Self::MissingBefore { id } => write!(
                f,
                "deleted: record {id} links to a record that is no longer in the log (removed, \
                 or rewritten and its link recomputed)"
            ),
            Self::Reordered { ids } => write!(
                f,
                "reordered: {} out of the order they were written in",
                numbered(ids)
            ),
            Self::Edited { ids } => write!(
                f,
                "edited: {} changed after being written (content does not match the link)",
                numbered(ids)
            ),
            Self::Recomputed { ids } => write!(
                f,
                "recomputed chain: {} linked by plain SHA-256 where the keyed HMAC belongs \
                 (rewritten by someone without the hub's key)",
                numbered(ids)
            ),
            Self::Truncated {
                head_count,
                last_id,
            } => write!(
                f,
                "truncated: {} records cut from the end (the signed head counts {head_count}, \
                 the log ends at {last_id})",
                head_count - last_id
            ),
            Self::HeadMismatch { id } => write!(
                f,
                "rewritten: record {id} is not the one the signed head names as record {id}"
            ),
            Self::KeyedFromMoved { head, found } => write!(
                f,
                "recomputed chain: keyed links start at record {found}, the signed head says {head}"
            ),
            Self::HeadMissing => write!(
                f,
                "head missing: {HEAD_FILE} is not beside the database, so records cut from the \
                 end cannot be ruled out"
            ),
            Self::HeadInvalid(why) => write!(f, "head invalid: {why}"),
        }
    }
}

/// `record 7`, `records 1-3, 7`.
fn numbered(ids: &[i64]) -> String {
    let plural = if ids.len() == 1 { "" } else { "s" };
    format!("record{plural} {}", ranges(ids))
}

/// `1-3, 7`.
fn ranges(ids: &[i64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let start = ids[i];
        let mut end = start;
        while i + 1 < ids.len() && ids[i + 1] == end + 1 {
            i += 1;
            end = ids[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(", ")
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    pub records: u64,
    /// The first keyed record (one past the last record when none is keyed yet).
    pub keyed_from: i64,
    pub findings: Vec<Finding>,
    /// Facts an auditor may want that are not tampering.
    pub notes: Vec<String>,
}

impl AuditReport {
    pub fn intact(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Where a verified stretch starts: the whole log from record 1, or an export from its first.
#[derive(Debug, Clone)]
pub struct ChainStart {
    pub first_id: i64,
    pub prev_hash: String,
}

impl Default for ChainStart {
    fn default() -> Self {
        Self {
            first_id: 1,
            prev_hash: GENESIS.to_owned(),
        }
    }
}

/// Walk `records` (in id order) from `start`, checking each link under `chain_key` and the
/// whole against `head`, and name every kind of damage found.
pub fn verify<I>(
    records: I,
    start: &ChainStart,
    head: &HeadFile,
    chain_key: &[u8],
) -> Result<AuditReport, String>
where
    I: IntoIterator<Item = Result<ChainRecord, String>>,
{
    let signed = match head {
        HeadFile::Valid(h) => Some(h),
        _ => None,
    };
    let mut findings = Vec::new();
    let (mut edited, mut recomputed, mut reordered) = (Vec::new(), Vec::new(), BTreeSet::new());
    // Links seen so far (to the id holding them), and links asked for but not seen yet.
    let mut seen: HashMap<String, i64> = HashMap::new();
    let mut wanted: HashMap<String, i64> = HashMap::new();
    let mut expected_id = start.first_id;
    let mut prev = start.prev_hash.clone();
    let mut prev_id: Option<i64> = None;
    let mut records_n = 0u64;
    let mut first_keyed: Option<i64> = None;
    let mut head_record: Option<String> = None;
    for record in records {
        let r = record?;
        records_n += 1;
        let gap = r.id > expected_id;
        if gap {
            findings.push(Finding::Deleted {
                from: expected_id,
                to: r.id - 1,
            });
        }
        if r.prev_hash != prev {
            match seen.get(&r.prev_hash) {
                // Links to an earlier record, but not the one just before it (unless that
                // one was itself moved: then this is where the order resumes).
                Some(&earlier) if Some(earlier) != prev_id && !reordered.contains(&earlier) => {
                    reordered.insert(r.id);
                }
                Some(_) => {}
                None => {
                    wanted.insert(r.prev_hash.clone(), r.id);
                }
            }
        }
        if let Some(id) = wanted.remove(&r.hash) {
            // A record seen earlier links to this later one.
            reordered.insert(id);
            reordered.insert(r.id);
        }
        // Which link this record must have: the signed head says where keyed links start;
        // without one, the record's own mark (a prefix of unkeyed records, then keyed).
        let keyed = match signed {
            Some(h) => r.id >= h.keyed_from,
            None => r.link == LinkKind::HmacSha256 || first_keyed.is_some(),
        };
        if r.link == LinkKind::HmacSha256 && first_keyed.is_none() {
            first_keyed = Some(r.id);
        }
        let fields = r.fields();
        if keyed {
            if keyed_link(chain_key, &r.prev_hash, &fields) != r.hash {
                if chain_hash(&r.prev_hash, &fields) == r.hash {
                    recomputed.push(r.id);
                } else {
                    edited.push(r.id);
                }
            }
        } else if chain_hash(&r.prev_hash, &fields) != r.hash {
            edited.push(r.id);
        }
        if signed.is_some_and(|h| h.count == r.id) {
            head_record = Some(r.hash.clone());
        }
        seen.insert(r.hash.clone(), r.id);
        prev = r.hash;
        prev_id = Some(r.id);
        expected_id = r.id + 1;
    }
    let last_id = prev_id.unwrap_or(start.first_id - 1);
    let deleted_at: BTreeSet<i64> = findings
        .iter()
        .filter_map(|f| match f {
            Finding::Deleted { to, .. } => Some(to + 1),
            _ => None,
        })
        .collect();
    let mut missing: Vec<i64> = wanted
        .into_values()
        .filter(|id| !deleted_at.contains(id) && !reordered.contains(id))
        .collect();
    missing.sort_unstable();
    findings.extend(missing.into_iter().map(|id| Finding::MissingBefore { id }));
    // A record moved elsewhere fails its own link too (its id changed): name the move only.
    edited.retain(|id| !reordered.contains(id));
    recomputed.retain(|id| !reordered.contains(id));
    if !reordered.is_empty() {
        findings.push(Finding::Reordered {
            ids: reordered.into_iter().collect(),
        });
    }
    if !recomputed.is_empty() {
        findings.push(Finding::Recomputed { ids: recomputed });
    }
    if !edited.is_empty() {
        findings.push(Finding::Edited { ids: edited });
    }
    let mut notes = Vec::new();
    let keyed_from = match (signed, first_keyed) {
        (Some(h), found) => {
            if let Some(found) = found
                && found > h.keyed_from
            {
                findings.push(Finding::KeyedFromMoved {
                    head: h.keyed_from,
                    found,
                });
            }
            h.keyed_from
        }
        (None, Some(found)) => found,
        (None, None) => last_id + 1,
    };
    match head {
        HeadFile::Missing => findings.push(Finding::HeadMissing),
        HeadFile::Invalid(why) => findings.push(Finding::HeadInvalid(why.clone())),
        HeadFile::Valid(h) => {
            if last_id < h.count {
                findings.push(Finding::Truncated {
                    head_count: h.count,
                    last_id,
                });
            } else if h.count >= start.first_id && head_record.as_deref() != Some(&h.last) {
                findings.push(Finding::HeadMismatch { id: h.count });
            }
            if last_id > h.count {
                notes.push(format!(
                    "{} records after the signed head ({}): written as the head was being \
                     replaced, or before a crash",
                    last_id - h.count,
                    h.count
                ));
            }
        }
    }
    if keyed_from > start.first_id {
        notes.push(format!(
            "records before {keyed_from} have plain SHA-256 links (written before the chain \
             was keyed); the keyed links after them cover them"
        ));
    }
    Ok(AuditReport {
        records: records_n,
        keyed_from,
        findings,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> AuditFields<'static> {
        AuditFields {
            id: 1,
            at: "2026-11-22T10:00:00.000000Z",
            actor: "ann",
            actor_email: Some("ann@example.com"),
            team_id: None,
            action: "login.ok",
            target: None,
            detail: "{}",
        }
    }

    #[test]
    fn hash_depends_on_every_field_and_the_link() {
        let base = chain_hash(GENESIS, &fields());
        assert_eq!(base, chain_hash(GENESIS, &fields()), "deterministic");
        assert_ne!(base, chain_hash(&"1".repeat(64), &fields()));
        let changed = [
            AuditFields { id: 2, ..fields() },
            AuditFields {
                at: "2026-11-22T10:00:00.000001Z",
                ..fields()
            },
            AuditFields {
                actor: "bob",
                ..fields()
            },
            AuditFields {
                actor_email: None,
                ..fields()
            },
            AuditFields {
                team_id: Some(""),
                ..fields()
            },
            AuditFields {
                action: "login.fail",
                ..fields()
            },
            AuditFields {
                target: Some("x"),
                ..fields()
            },
            AuditFields {
                detail: "{\"a\":1}",
                ..fields()
            },
        ];
        for f in changed {
            assert_ne!(base, chain_hash(GENESIS, &f), "{f:?}");
            assert_ne!(
                keyed_link(&[7; 32], GENESIS, &fields()),
                keyed_link(&[7; 32], GENESIS, &f),
                "{f:?}"
            );
        }
    }

    #[test]
    fn keyed_links_need_the_key() {
        let a = keyed_link(&[1; 32], GENESIS, &fields());
        assert_ne!(a, keyed_link(&[2; 32], GENESIS, &fields()));
        assert_ne!(a, chain_hash(GENESIS, &fields()));
        // HMAC-SHA256 as RFC 2104 defines it, over the canonical bytes.
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for i in 0..32 {
            ipad[i] ^= 1;
            opad[i] ^= 1;
        }
        let inner = Sha256::new()
            .chain_update(ipad)
            .chain_update(canonical(GENESIS, &fields()))
            .finalize();
        let outer = Sha256::new()
            .chain_update(opad)
            .chain_update(inner)
            .finalize();
        assert_eq!(a, hex::encode(outer));
    }

    #[test]
    fn a_head_is_signed_by_its_key_only() {
        let keys = AuditKeys::derive(&SealKey::generate().expect("key")).expect("keys");
        let head = keys.sign_head(3, &"a".repeat(64), 1, "2026-12-07T00:00:00Z");
        assert!(head.signed_by(keys.public_key()));
        let other = AuditKeys::derive(&SealKey::generate().expect("key")).expect("keys");
        assert!(!head.signed_by(other.public_key()));
        for forged in [
            AuditHead {
                count: 2,
                ..head.clone()
            },
            AuditHead {
                last: "b".repeat(64),
                ..head.clone()
            },
            AuditHead {
                keyed_from: 2,
                ..head.clone()
            },
        ] {
            assert!(!forged.signed_by(keys.public_key()), "{forged:?}");
        }
    }

    #[test]
    fn a_torn_head_write_leaves_the_head_before_it() {
        let dir = tempfile::tempdir().expect("dir");
        let keys = AuditKeys::derive(&SealKey::generate().expect("key")).expect("keys");
        let head = |n: i64| keys.sign_head(n, &format!("{n:064}"), 1, "2026-12-07T00:00:00Z");
        let read = || read_head(dir.path(), keys.public_key());
        write_head(dir.path(), &head(1)).expect("write");
        write_head(dir.path(), &head(2)).expect("write");
        assert_eq!(read(), HeadFile::Valid(head(2)));
        // A crash in the middle of writing head 3: its slot holds half of it.
        let path = dir.path().join(HEAD_FILE);
        let mut bytes = std::fs::read(&path).expect("read");
        let torn = slot_bytes(&head(3)).expect("slot");
        let at = HEAD_SLOT; // 3 % 2 == 1
        bytes[at..at + 100].copy_from_slice(&torn[..100]);
        std::fs::write(&path, &bytes).expect("tear");
        assert_eq!(read(), HeadFile::Valid(head(2)), "one behind, not invalid");
        // The next write lands in the other slot; the torn one is then the older.
        write_head(dir.path(), &head(4)).expect("write");
        assert_eq!(read(), HeadFile::Valid(head(4)));
        // Both slots unreadable: invalid.
        std::fs::write(&path, vec![b'x'; 2 * HEAD_SLOT]).expect("spoil");
        assert!(matches!(read(), HeadFile::Invalid(_)));
    }

    #[test]
    fn a_head_file_from_before_the_slots_is_read_and_then_replaced() {
        let dir = tempfile::tempdir().expect("dir");
        let keys = AuditKeys::derive(&SealKey::generate().expect("key")).expect("keys");
        let old = keys.sign_head(5, &"a".repeat(64), 1, "2026-12-07T00:00:00Z");
        let path = dir.path().join(HEAD_FILE);
        std::fs::write(&path, serde_json::to_vec(&old).expect("json")).expect("write");
        assert_eq!(
            read_head(dir.path(), keys.public_key()),
            HeadFile::Valid(old)
        );
        let new = keys.sign_head(6, &"b".repeat(64), 1, "2026-12-07T00:00:01Z");
        write_head(dir.path(), &new).expect("write");
        assert_eq!(
            std::fs::metadata(&path).expect("meta").len(),
            2 * HEAD_SLOT as u64
        );
        assert_eq!(
            read_head(dir.path(), keys.public_key()),
            HeadFile::Valid(new)
        );
    }

    #[test]
    fn the_cache_checks_a_head_changed_behind_it() {
        let dir = tempfile::tempdir().expect("dir");
        let keys = AuditKeys::derive(&SealKey::generate().expect("key")).expect("keys");
        let cache = HeadCache::default();
        let head = |n: i64| keys.sign_head(n, &format!("{n:064}"), 1, "2026-12-07T00:00:00Z");
        reset_head(dir.path(), &head(1)).expect("reset");
        assert_eq!(
            cache.read(dir.path(), keys.public_key()),
            HeadFile::Valid(head(1))
        );
        cache.write(dir.path(), &head(2)).expect("write");
        assert_eq!(
            cache.read(dir.path(), keys.public_key()),
            HeadFile::Valid(head(2))
        );
        // Another key's head written behind the cache's back is checked, not trusted.
        let other = AuditKeys::derive(&SealKey::generate().expect("key")).expect("keys");
        reset_head(dir.path(), &other.sign_head(3, &"c".repeat(64), 1, "t")).expect("forge");
        assert!(matches!(
            cache.read(dir.path(), keys.public_key()),
            HeadFile::Invalid(_)
        ));
    }

    fn chain(key: &[u8], n: i64) -> Vec<ChainRecord> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|id| {
                let mut r = ChainRecord {
                    id,
                    at: format!("2026-12-07T00:00:{id:02}.000000Z"),
                    actor: "ann".into(),
                    actor_email: None,
                    team_id: Some("tm_1".into()),
                    action: "login.ok".into(),
                    target: None,
                    detail: format!("{{\"n\":{id}}}"),
                    link: LinkKind::HmacSha256,
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                r.hash = keyed_link(key, &prev, &r.fields());
                prev = r.hash.clone();
                r
            })
            .collect()
    }

    fn check(records: &[ChainRecord], keys: &AuditKeys, head: &AuditHead) -> AuditReport {
        verify(
            records.iter().cloned().map(Ok),
            &ChainStart::default(),
            &HeadFile::Valid(head.clone()),
            keys.chain_key(),
        )
        .expect("verify")
    }

    #[test]
    fn verify_names_each_kind_of_damage() {
        let keys = AuditKeys::derive(&SealKey::generate().expect("key")).expect("keys");
        let key = keys.chain_key().to_vec();
        let log = chain(&key, 10);
        let head = keys.sign_head(10, &log[9].hash, 1, "t");
        let intact = check(&log, &keys, &head);
        assert!(intact.intact(), "{intact:?}");
        assert_eq!(intact.records, 10);

        let cut = check(&log[..7], &keys, &head);
        assert_eq!(
            cut.findings,
            [Finding::Truncated {
                head_count: 10,
                last_id: 7
            }]
        );

        let mut deleted = log.clone();
        deleted.remove(4);
        assert_eq!(
            check(&deleted, &keys, &head).findings,
            [Finding::Deleted { from: 5, to: 5 }]
        );

        let mut swapped = log.clone();
        swapped.swap(4, 5);
        swapped[4].id = 5;
        swapped[5].id = 6;
        // Swapping whole rows, ids with them, then renumbering: what a re-ordering looks like.
        assert_eq!(
            check(&swapped, &keys, &head).findings,
            [Finding::Reordered { ids: vec![5, 6] }]
        );

        let mut edited = log.clone();
        edited[4].detail = "{\"n\":50}".into();
        assert_eq!(
            check(&edited, &keys, &head).findings,
            [Finding::Edited { ids: vec![5] }]
        );

        let mut recomputed = log.clone();
        recomputed[4].detail = "{\"n\":50}".into();
        let mut prev = recomputed[3].hash.clone();
        for r in &mut recomputed[4..] {
            r.prev_hash = prev;
            r.hash = chain_hash(&r.prev_hash, &r.fields());
            prev = r.hash.clone();
        }
        assert_eq!(
            check(&recomputed, &keys, &head).findings,
            [
                Finding::Recomputed {
                    ids: vec![5, 6, 7, 8, 9, 10]
                },
                Finding::HeadMismatch { id: 10 }
            ]
        );

        let missing = verify(
            log.iter().cloned().map(Ok),
            &ChainStart::default(),
            &HeadFile::Missing,
            &key,
        )
        .expect("verify");
        assert_eq!(missing.findings, [Finding::HeadMissing]);
    }

    #[test]
    fn records_after_the_head_are_a_note_and_unkeyed_ones_before_it_are_allowed() {
        let keys = AuditKeys::derive(&SealKey::generate().expect("key")).expect("keys");
        let mut log = chain(keys.chain_key(), 4);
        // Re-link the first two as unkeyed, and the rest after them.
        let mut prev = GENESIS.to_owned();
        for (i, r) in log.iter_mut().enumerate() {
            r.prev_hash = prev;
            if i < 2 {
                r.link = LinkKind::Sha256;
                r.hash = chain_hash(&r.prev_hash, &r.fields());
            } else {
                r.hash = keyed_link(keys.chain_key(), &r.prev_hash, &r.fields());
            }
            prev = r.hash.clone();
        }
        let head = keys.sign_head(3, &log[2].hash, 3, "t");
        let report = check(&log, &keys, &head);
        assert!(report.intact(), "{report:?}");
        assert_eq!(report.keyed_from, 3);
        assert_eq!(report.notes.len(), 2, "{:?}", report.notes);
        // Keyed links moved later (the first keyed record recomputed plain) is named.
        let head = keys.sign_head(4, &log[3].hash, 2, "t");
        let report = check(&log, &keys, &head);
        assert!(
            report
                .findings
                .contains(&Finding::KeyedFromMoved { head: 2, found: 3 }),
            "{report:?}"
        );
    }

    #[test]
    fn events_keep_their_stored_names() {
        let names: Vec<&str> = AuditEvent::ALL.iter().map(|e| e.as_str()).collect();
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for e in AuditEvent::ALL {
            assert_eq!(AuditEvent::parse(e.as_str()), Some(*e));
            let name = e.as_str();
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._".contains(&b)),
                "{name}"
            );
        }
        // Names already in databases and in `kind:` searches stay as they were.
        for (event, name) in [
            (AuditEvent::LoginOk, "login.ok"),
            (AuditEvent::TwoFactorReset, "2fa.reset"),
            (
                AuditEvent::WorkstationEnrolRefused,
                "workstation.enrol_refused",
            ),
            (AuditEvent::CredentialsRevoke, "credentials.revoke"),
            (AuditEvent::SessionEnd, "session.end"),
        ] {
            assert_eq!(event.as_str(), name);
        }
        assert_eq!(AuditEvent::parse("login"), None);
    }

    #[test]
    fn ranges_read_as_a_person_would_write_them() {
        assert_eq!(ranges(&[1, 2, 3, 7, 9, 10]), "1-3, 7, 9-10");
        assert_eq!(ranges(&[]), "");
    }
}
