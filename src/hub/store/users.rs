//! Storage of the user lifecycle (issue 11): enrolment codes, disabled and removed accounts,
//! and the revocation log every hub polls to close the connections of a user whose logins
//! ended, even when another process (`tether admin`) or another hub ended them.

use chrono::{DateTime, Utc};

use super::{NewUser, StoreResult};
use crate::protocol::{Role, TeamId, UserId, UserInfo};

/// Why a user's logins ended: stored in the revocation log, told to their open consoles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// An admin disabled the account.
    Disabled,
    /// An admin removed the account.
    Removed,
    /// An admin reset the user's 2FA (over the wire or with `tether admin reset-2fa`).
    TwoFactorReset,
    /// Too many failed logins in a row: the account is locked until an admin unlocks it.
    Locked,
    /// An admin changed the user's role: the next login carries the new one.
    RoleChanged,
}

impl Revocation {
    /// The word stored in the revocation log.
    pub fn as_str(self) -> &'static str {
        match self {
            Revocation::Disabled => "disabled",
            Revocation::Removed => "removed",
            Revocation::TwoFactorReset => "2fa_reset",
            Revocation::Locked => "locked",
            Revocation::RoleChanged => "role_changed",
        }
    }

    /// Read back a stored word; `None` for one a newer hub wrote.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Revocation::Disabled,
            Revocation::Removed,
            Revocation::TwoFactorReset,
            Revocation::Locked,
            Revocation::RoleChanged,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// A one-time enrolment code: its SHA-256 (the code itself is shown once to the admin) and
/// when it stops working.
#[derive(Debug, Clone)]
pub struct NewEnrolment {
    pub code_hash: String,
    pub expires_at: DateTime<Utc>,
}

/// An account's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserStatus {
    pub disabled: bool,
    pub removed: bool,
}

/// One entry of the revocation log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRow {
    pub seq: i64,
    pub user: UserId,
    /// `None` when a newer hub wrote a reason this one does not know (still a revocation).
    pub reason: Option<Revocation>,
    /// When it was written: only connections authenticated before then close.
    pub at: DateTime<Utc>,
}

pub trait UserStore {
    /// Create a user in an existing team, with a password hash (set by the admin) and, when
    /// the user sets their own password, a pending enrolment code; one transaction.
    fn add_user(
        &self,
        new: NewUser,
        team: &TeamId,
        enrolment: Option<NewEnrolment>,
    ) -> StoreResult<UserInfo>;
    /// Redeem an enrolment code for user `name`: at most once, before it expires, only while
    /// the account is enabled. Sets the password hash and returns the user; `None` otherwise.
    fn redeem_enrolment(
        &self,
        name: &str,
        code_hash: &str,
        now: DateTime<Utc>,
        password_hash: &str,
    ) -> StoreResult<Option<UserInfo>>;
    /// Whether `code_hash` is a pending, unexpired enrolment of enabled user `name` (a cheap
    /// check before the new password is hashed; the redemption itself decides).
    fn enrolment_pending(
        &self,
        name: &str,
        code_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// A user's lifecycle state (default for an unknown id).
    fn user_status(&self, user: &UserId) -> StoreResult<UserStatus>;
    /// A user of `team` (any team when `None`) by name or id, not removed.
    fn team_user(&self, team: Option<&TeamId>, name_or_id: &str) -> StoreResult<Option<UserInfo>>;
    /// Change a user's role; their logins' connections end (tokens stay: a resume reads the
    /// new role).
    fn set_user_role(&self, user: &UserId, role: Role) -> StoreResult<()>;
    /// Disable (tokens revoked, connections ended) or enable (failed-login count cleared) a
    /// user; returns the tokens revoked.
    fn set_user_disabled(&self, user: &UserId, disabled: bool) -> StoreResult<usize>;
    /// Remove a user: kept as a disabled, removed row so their name in audit records and
    /// sessions still names one person (and is never given to someone else); tokens and
    /// enrolment codes go. Returns the tokens revoked.
    fn remove_user(&self, user: &UserId) -> StoreResult<usize>;
    /// Delete every login token of `user` and log the revocation, in one transaction; returns
    /// the tokens deleted.
    fn revoke_user_logins(&self, user: &UserId, why: Revocation) -> StoreResult<usize>;
    /// The revocation log after `seq`, oldest first (at most `limit` rows).
    fn revocations_after(&self, seq: i64, limit: u32) -> StoreResult<Vec<RevocationRow>>;
    /// The newest revocation's number (0 when there is none).
    fn last_revocation(&self) -> StoreResult<i64>;
}
