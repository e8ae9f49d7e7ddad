//! Storage of time-boxed support credentials and guests' login tokens. A trait of its own so
//! the feature stays in its own files; every `Store` is also a `CredentialStore`.

use chrono::{DateTime, Utc};

use super::StoreResult;
use crate::protocol::{CredentialId, CredentialInfo, TeamId, UserId};

/// New credentials to store: the password as an argon2id PHC string, the code as an HMAC under
/// a key outside the database (see `hub::credentials::code_tag`).
#[derive(Debug, Clone)]
pub struct NewCredential {
    pub info: CredentialInfo,
    pub team_id: TeamId,
    pub issued_by_id: UserId,
    pub password_hash: String,
    pub code_hash: String,
}

/// Credentials with the fields only the hub may see.
#[derive(Debug, Clone)]
pub struct CredentialRecord {
    /// `state` is filled from `revoked_at` only; the hub decides expiry against its clock.
    pub info: CredentialInfo,
    pub team_id: TeamId,
    pub issued_by_id: UserId,
    pub issued_by_email: String,
    pub password_hash: String,
    pub code_hash: String,
    pub failed_logins: u32,
    pub locked_until: Option<DateTime<Utc>>,
    /// The expiry has been audited.
    pub expiry_noted: bool,
}

/// What [`CredentialStore::issue_credential`] did.
#[derive(Debug, Clone)]
pub enum IssueOutcome {
    /// Stored; `revoked` when the replaced credentials were revoked by this call.
    Issued { revoked: bool },
    /// Nothing changed: the issuer already has these active credentials for the target.
    AlreadyActive(Box<CredentialRecord>),
}

pub trait CredentialStore {
    fn insert_credential(&self, new: NewCredential) -> StoreResult<()>;
    /// In one transaction: revoke `replacing` (if given and not yet revoked), then store `new`
    /// unless its issuer still has credentials for the same target that are active at `now`
    /// (then nothing changes, not even the revocation). Parallel issues: exactly one stores.
    fn issue_credential(
        &self,
        new: NewCredential,
        replacing: Option<&CredentialId>,
        now: DateTime<Utc>,
    ) -> StoreResult<IssueOutcome>;
    fn credential(&self, id: &CredentialId) -> StoreResult<Option<CredentialRecord>>;
    fn credential_by_user(&self, user: &str) -> StoreResult<Option<CredentialRecord>>;
    /// A team's credentials issued since `since`, or still unexpired, newest first.
    fn team_credentials(
        &self,
        team: &TeamId,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<CredentialRecord>>;
    /// Credentials neither revoked nor noted as expired (the hub's expiry timer watches them).
    fn live_credentials(&self) -> StoreResult<Vec<CredentialRecord>>;
    /// Revoke, and drop the guest's login tokens. False when already revoked.
    fn revoke_credential(&self, id: &CredentialId, at: DateTime<Utc>) -> StoreResult<bool>;
    /// Note the expiry (once) and drop the guest's login tokens. False when already noted.
    fn note_credential_expired(&self, id: &CredentialId) -> StoreResult<bool>;
    /// Count a failed guest login; returns the new count.
    fn record_guest_failure(
        &self,
        id: &CredentialId,
        locked_until: Option<DateTime<Utc>>,
    ) -> StoreResult<u32>;
    fn reset_guest_failures(&self, id: &CredentialId) -> StoreResult<()>;
    fn insert_guest_token(
        &self,
        token_hash: &str,
        id: &CredentialId,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The credentials a guest token belongs to, if the token has not expired at `now`.
    fn credential_by_guest_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<CredentialRecord>>;
    fn delete_guest_token(&self, token_hash: &str) -> StoreResult<()>;
}
