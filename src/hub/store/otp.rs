//! Storage of one-time passwords, OTP requirements and the outbox (issue 5). A separate trait
//! that `Store` extends, so the OTP feature stays in its own files.

use chrono::{DateTime, Utc};

use super::StoreResult;
use crate::protocol::{ClientId, TeamId, UserId, WorkstationId};

/// A code to store: its hash and its sealed form, never the code.
#[derive(Debug, Clone)]
pub struct NewOtp {
    pub id: String,
    pub code_hash: String,
    pub user_id: UserId,
    pub workstation_id: WorkstationId,
    pub team_id: TeamId,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub emergency: bool,
    pub reason: Option<String>,
    /// The code sealed under the hub's OTP key (for resending).
    pub sealed: String,
}

/// A stored code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpRow {
    pub id: String,
    pub user_id: UserId,
    pub workstation_id: WorkstationId,
    pub team_id: TeamId,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub emergency: bool,
    pub reason: Option<String>,
    pub sealed: String,
}

/// What came of presenting a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtpUse {
    /// Accepted, and now used: nobody can use it again.
    Accepted(OtpRow),
    /// No code has that hash.
    Unknown,
    /// The code belongs to another technician or workstation.
    NotYours(OtpRow),
    /// Already used.
    Used(OtpRow),
    /// Past its expiry.
    Expired(OtpRow),
}

/// Mail to keep in the outbox.
#[derive(Debug, Clone)]
pub struct NewOutbox {
    pub at: DateTime<Utc>,
    pub recipients: String,
    pub subject: String,
    pub body_sealed: String,
    pub kind: String,
    pub why: String,
    pub otp_id: Option<String>,
}

/// A message in the outbox, its body still sealed.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub recipients: String,
    pub subject: String,
    pub body_sealed: String,
    pub kind: String,
    pub why: String,
    /// The code the message carries (its body is sealed for it).
    pub otp_id: Option<String>,
}

pub trait OtpStore {
    /// Set a workstation's own requirement.
    fn set_workstation_otp(&self, id: &WorkstationId, required: bool) -> StoreResult<()>;
    /// Set a group's requirement: the client's (`Some`) or the whole team's (`None`).
    fn set_group_otp(
        &self,
        team: &TeamId,
        client: Option<&ClientId>,
        required: bool,
    ) -> StoreResult<()>;
    /// The groups of a team that require a code (`None`: the team's own).
    fn otp_groups(&self, team: &TeamId) -> StoreResult<Vec<Option<ClientId>>>;
    fn insert_otp(&self, otp: NewOtp) -> StoreResult<()>;
    /// Insert a code unless the same technician already has one of the same kind (normal or
    /// emergency) for the workstation issued after `since`: the check and the insert are one
    /// statement, so of parallel requests only one gets a code. Returns the code in the way
    /// (nothing inserted), or `None` (inserted).
    fn insert_otp_unless_recent(
        &self,
        otp: NewOtp,
        since: DateTime<Utc>,
    ) -> StoreResult<Option<OtpRow>>;
    /// Remove a code that could not be delivered at all (it never reached anyone, nor the outbox).
    fn delete_otp(&self, id: &str) -> StoreResult<()>;
    /// The earliest expiry of a code not yet used nor noted as expired.
    fn next_otp_expiry(&self) -> StoreResult<Option<DateTime<Utc>>>;
    /// The newest code of a technician for a workstation; with `emergency`, only of that kind.
    fn latest_otp(
        &self,
        user: &UserId,
        workstation: &WorkstationId,
        emergency: Option<bool>,
    ) -> StoreResult<Option<OtpRow>>;
    /// Use a code, atomically: one UPDATE that succeeds for at most one caller.
    fn use_otp(
        &self,
        code_hash: &str,
        user: &UserId,
        workstation: &WorkstationId,
        now: DateTime<Utc>,
    ) -> StoreResult<OtpUse>;
    /// Give a code back (the connection it was used for did not open).
    fn release_otp(&self, id: &str) -> StoreResult<()>;
    /// Codes that expired unused since the last call, each reported once.
    fn expire_otps(&self, now: DateTime<Utc>) -> StoreResult<Vec<OtpRow>>;
    /// E-mail addresses of a team's admins and owners (its emergency codes go to them).
    fn admin_emails(&self, team: &TeamId) -> StoreResult<Vec<String>>;
    fn add_outbox(&self, message: NewOutbox) -> StoreResult<i64>;
    /// The messages `reader` is a recipient of, newest first: codes issued to them, and with
    /// `admin_of`, the emergency codes of that team (which go to its admins, not the asker).
    fn outbox(
        &self,
        reader: &UserId,
        admin_of: Option<&TeamId>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxRow>>;
}
