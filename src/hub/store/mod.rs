//! The hub's storage, behind a trait so PostgreSQL can stand beside the default SQLite.
//!
//! Calls are synchronous and short; the hub makes them from `spawn_blocking`. Secrets arrive
//! here already hashed: nothing in the store can be used to log in or to enrol.

mod credentials;
pub mod devices;
mod otp;
mod sqlite;
pub mod users;

pub use credentials::{CredentialRecord, CredentialStore, IssueOutcome, NewCredential};
pub use otp::{NewOtp, NewOutbox, OtpRow, OtpStore, OtpUse, OutboxRow};

pub use sqlite::SqliteStore;

use chrono::{DateTime, Utc};

use crate::protocol::{
    AuditRecord, ClientId, ClientInfo, LinkId, LinkInfo, Role, SecretRequirements, SessionId,
    SessionInfo, TeamId, UnattendedState, UserId, UserInfo, WorkstationId, WorkstationInfo,
    WorkstationReport,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("the database holds a value it cannot read: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A user to create. `password_hash` is an argon2id PHC string.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub email: String,
    pub role: Role,
    /// Team name; the team is created if it does not exist.
    pub team: String,
    pub password_hash: String,
}

/// A user with the fields only the hub may see.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub info: UserInfo,
    pub password_hash: String,
    pub failed_logins: u32,
    pub locked_until: Option<DateTime<Utc>>,
}

/// A new enrolment link; `token_hash` is the SHA-256 of the token in the URL.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub id: LinkId,
    pub client_id: ClientId,
    pub token_hash: String,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A workstation as stored: its listing (presence is the hub's live knowledge, filled in later)
/// and the team it belongs to.
#[derive(Debug, Clone)]
pub struct WorkstationRow {
    pub info: WorkstationInfo,
    pub team_id: TeamId,
}

/// Where a workstation sorts in lists: its client's name (in any case) and id, then its host
/// name (in any case) and id, which makes the order total.
pub type WorkstationKey = (String, ClientId, String, WorkstationId);

/// A workstation's place in list order, for the cursor after it.
pub fn workstation_key(w: &WorkstationInfo) -> WorkstationKey {
    (
        w.client_name.clone(),
        w.client_id.clone(),
        w.hostname.clone(),
        w.id.clone(),
    )
}

/// The console's `/` filter: a case-insensitive substring of the host name, client name, OS
/// or user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkstationFilter(String);

impl WorkstationFilter {
    /// `None` for empty text: no filter.
    pub fn new(text: &str) -> Option<Self> {
        let term = text.trim().to_lowercase();
        (!term.is_empty()).then_some(Self(term))
    }

    pub fn matches(&self, w: &WorkstationInfo) -> bool {
        [&w.hostname, &w.client_name, &w.os, &w.user]
            .iter()
            .any(|field| field.to_lowercase().contains(&self.0))
    }
}

/// A new workstation; `key_hash` is the SHA-256 of its long-lived key.
#[derive(Debug, Clone)]
pub struct NewWorkstation {
    pub id: WorkstationId,
    pub client_id: ClientId,
    pub link_id: LinkId,
    pub key_hash: String,
    pub report: WorkstationReport,
    pub at: DateTime<Utc>,
    /// The group defaults in force at enrolment.
    pub requires: SecretRequirements,
}

/// A connection attempt's place before its secret is relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectReservation {
    /// Locked out after `failures` in a row, until then.
    Locked { failures: u32, until: DateTime<Utc> },
    /// Counted in advance as a failure: the counts with it.
    Reserved(FailureCounts),
}

/// Consecutive secret failures after one more was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCounts {
    /// Of this technician on this workstation.
    pub technician: u32,
    /// Of anyone on this workstation.
    pub workstation: u32,
}

/// An audit entry to append; the store assigns its id and chains its hash.
#[derive(Debug, Clone)]
pub struct NewAudit {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub actor_email: Option<String>,
    pub team_id: Option<TeamId>,
    pub action: crate::hub::audit::AuditEvent,
    pub target: Option<String>,
    pub detail: serde_json::Value,
}

impl NewAudit {
    /// This record with how many login tokens `outcome` revoked.
    pub fn with_logins_revoked(&self, outcome: &ChangeOutcome) -> Self {
        let mut record = self.clone();
        if let Some(detail) = record.detail.as_object_mut() {
            detail.insert("logins_revoked".into(), outcome.rows().into());
        }
        record
    }
}

/// A user's 2FA as stored. Secrets are sealed (see `secrets::totp`), never in clear.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TwoFactorRecord {
    /// An admin requires 2FA for this user.
    pub required: bool,
    /// The active secret, sealed; `Some` means 2FA is active.
    pub secret: Option<String>,
    /// A secret whose enrolment waits for its confirming code, sealed.
    pub pending: Option<String>,
    /// The last TOTP step accepted: a code of this step or older is never accepted again.
    pub last_step: Option<i64>,
    /// The account is disabled (issue 11; read with the 2FA record for the users list).
    pub disabled: bool,
}

/// A change the store commits in one transaction with its audit record (see
/// [`Store::commit_audited`]): a failure to audit changes nothing.
#[derive(Debug, Clone)]
pub enum AuditedChange {
    /// A user's 2FA off (a lost phone, as [`Store::reset_two_factor`]) and every login token of
    /// theirs revoked.
    ResetTwoFactor { user: UserId },
    /// A pending 2FA secret made active (as [`Store::activate_two_factor`]) and the user's
    /// login tokens, made without a code, revoked.
    ActivateTwoFactor {
        user: UserId,
        sealed: String,
        step: i64,
    },
    /// An admin requires (or stops requiring) 2FA of a user.
    SetTwoFactorRequired { user: UserId, required: bool },
    /// A hub-wide setting.
    SetSetting { key: String, value: String },
    /// A workstation's unattended-access state (grant, deny, revoke).
    SetUnattended {
        workstation: WorkstationId,
        state: UnattendedState,
    },
    /// A locked account's failures cleared.
    UnlockUser { user: UserId },
    /// As [`CredentialStore::issue_credential`].
    IssueCredential {
        new: Box<NewCredential>,
        replacing: Option<crate::protocol::CredentialId>,
        now: DateTime<Utc>,
    },
    /// As [`CredentialStore::revoke_credential`].
    RevokeCredential {
        id: crate::protocol::CredentialId,
        at: DateTime<Utc>,
    },
    /// As [`Store::record_login_failure`]; the outcome is [`ChangeOutcome::Count`].
    LoginFailed {
        user: UserId,
        locked_until: Option<DateTime<Utc>>,
        /// The trusted device the attempt came from (its hash), whose own failures count too
        /// (see [`devices::DeviceStore::trusted_device_failed`]), with the limit.
        trusted_device: Option<(String, u32)>,
    },
    /// A login: the user's failures cleared (unless it came from a trusted device, which
    /// neither meets nor clears the lock-out others build on the name), their new token kept
    /// and the device presented trusted until the date given.
    LoggedIn {
        user: UserId,
        token_hash: String,
        expires_at: DateTime<Utc>,
        clear_failures: bool,
        /// (device hash, now, trusted until).
        device: Option<(String, DateTime<Utc>, DateTime<Utc>)>,
    },
    /// A logout: the connection's login token goes.
    LoggedOut { token_hash: String },
    /// As [`Store::create_client`]; the outcome is [`ChangeOutcome::Client`].
    CreateClient {
        id: ClientId,
        team: TeamId,
        name: String,
        at: DateTime<Utc>,
    },
    /// As [`Store::create_link`]; the outcome is [`ChangeOutcome::Link`].
    CreateLink(NewLink),
    /// As [`Store::revoke_link`]: [`ChangeOutcome::Link`], or unchanged when not in the team.
    RevokeLink { team: TeamId, link: LinkId },
    /// As [`Store::set_security_defaults`].
    SetSecurityDefaults {
        team: TeamId,
        client: Option<ClientId>,
        requires: SecretRequirements,
    },
    /// As [`Store::enrol_workstation`]; the outcome is [`ChangeOutcome::Workstation`].
    EnrolWorkstation(Box<NewWorkstation>),
    /// A session opens: the technician's secret failures cleared and the session kept.
    StartSession {
        team: TeamId,
        session: Box<SessionInfo>,
        counted: UserId,
    },
    /// As [`Store::end_session`]: [`ChangeOutcome::Session`], or unchanged if it was not open.
    EndSession {
        id: SessionId,
        at: DateTime<Utc>,
        reason: String,
    },
    /// As [`Store::close_open_sessions`]; the outcome is [`ChangeOutcome::Sessions`].
    CloseOpenSessions { at: DateTime<Utc>, reason: String },
    /// As [`Store::claim_passcode_replacement`]: [`ChangeOutcome::Count`], or unchanged when
    /// another caller claimed it or the count is not reached.
    ClaimPasscodeReplacement {
        workstation: WorkstationId,
        after: u32,
    },
    /// As [`users::UserStore::add_user`]; the outcome is [`ChangeOutcome::User`].
    /// As [`Store::create_user`] (the hub-side `tether admin create-user`):
    /// [`ChangeOutcome::User`].
    CreateUser { new: Box<NewUser> },
    AddUser {
        new: Box<NewUser>,
        team: TeamId,
        enrolment: Option<users::NewEnrolment>,
    },
    /// As [`users::UserStore::redeem_enrolment`]: [`ChangeOutcome::User`], or unchanged.
    RedeemEnrolment {
        name: String,
        code_hash: String,
        now: DateTime<Utc>,
        password_hash: String,
    },
    /// As [`users::UserStore::set_user_role`].
    SetUserRole { user: UserId, role: Role },
    /// As [`users::UserStore::set_user_disabled`] (`rows`: login tokens revoked).
    SetUserDisabled { user: UserId, disabled: bool },
    /// As [`users::UserStore::remove_user`] (`rows`: login tokens revoked).
    RemoveUser { user: UserId },
    /// As [`OtpStore::set_workstation_otp`]; the outcome is the [`ChangeOutcome::Workstation`]
    /// after it (whether a code is now required there, by itself or its group).
    SetWorkstationOtp {
        workstation: WorkstationId,
        required: bool,
    },
    /// As [`OtpStore::set_group_otp`].
    SetGroupOtp {
        team: TeamId,
        client: Option<ClientId>,
        required: bool,
    },
    /// As [`OtpStore::use_otp`] ([`ChangeOutcome::Otp`]): a change only when accepted; a
    /// refusal changes nothing and is audited on its own.
    UseOtp {
        code_hash: String,
        user: UserId,
        workstation: WorkstationId,
        now: DateTime<Utc>,
    },
    /// As [`OtpStore::insert_otp_unless_recent`]: done, or [`ChangeOutcome::OtpInTheWay`]
    /// (nothing inserted, so nothing recorded: the refusal is audited on its own).
    IssueOtp {
        new: Box<NewOtp>,
        since: DateTime<Utc>,
    },
    /// As [`OtpStore::delete_otp`]: a code that reached nobody is withdrawn.
    WithdrawOtp { id: String },
    /// As [`OtpStore::add_outbox`]: a mail kept in the outbox.
    AddOutbox(Box<NewOutbox>),
    /// As [`OtpStore::release_otp`].
    ReleaseOtp { id: String },
    /// As [`CredentialStore::note_credential_expired`]: unchanged when already noted.
    NoteCredentialExpired { id: crate::protocol::CredentialId },
    /// A failed guest login on these credentials; the outcome is [`ChangeOutcome::Count`].
    GuestLoginFailed {
        id: crate::protocol::CredentialId,
        locked_until: Option<DateTime<Utc>>,
    },
    /// A guest's login: the credentials' failures cleared and the guest's token kept.
    GuestLoggedIn {
        id: crate::protocol::CredentialId,
        token_hash: String,
        expires_at: DateTime<Utc>,
    },
    /// A guest's logout: their token goes.
    GuestLoggedOut { token_hash: String },
    /// As [`Store::set_two_factor_pending`]: 2FA enrolment starts.
    StartTwoFactor { user: UserId, sealed: String },
    /// As [`OtpStore::expire_otps`]; the outcome is [`ChangeOutcome::Otps`].
    ExpireOtps { now: DateTime<Utc> },
}

/// What an [`AuditedChange`] did.
#[derive(Debug, Clone)]
pub enum ChangeOutcome {
    /// Done; `rows` counts what it touched besides (login tokens revoked).
    Done {
        rows: usize,
    },
    /// Nothing to change, so nothing is recorded: 2FA not pending with that secret or step,
    /// credentials already revoked.
    Unchanged,
    /// What issuing credentials did.
    Issued(IssueOutcome),
    /// A count after the change: login failures, or wrong secrets before a passcode
    /// replacement.
    Count(u32),
    Client(ClientInfo),
    Link(LinkInfo),
    Workstation(Box<WorkstationRow>),
    Session(Box<SessionInfo>),
    Sessions(Vec<(TeamId, SessionInfo)>),
    User(Box<UserInfo>),
    /// What using a one-time password found: only an accepted one is a change.
    Otp(Box<OtpUse>),
    /// One-time passwords that expired unused.
    Otps(Vec<OtpRow>),
    /// The code issued within the hour that refused a new one.
    OtpInTheWay(Box<OtpRow>),
}

impl ChangeOutcome {
    /// Login tokens (or other rows) the change revoked besides.
    pub fn rows(&self) -> usize {
        match self {
            Self::Done { rows } => *rows,
            _ => 0,
        }
    }

    pub fn changed(&self) -> bool {
        match self {
            Self::Unchanged
            | Self::Issued(IssueOutcome::AlreadyActive(_))
            | Self::OtpInTheWay(_) => false,
            Self::Otp(used) => matches!(**used, OtpUse::Accepted(_)),
            _ => true,
        }
    }
}

/// What checking the audit chain found (see `hub::audit::verify`).
pub use crate::hub::audit::AuditReport;

pub trait Store:
    Send + Sync + CredentialStore + OtpStore + users::UserStore + devices::DeviceStore
{
    // Accounts
    fn create_user(&self, new: NewUser) -> StoreResult<UserInfo>;
    fn user_by_name(&self, name: &str) -> StoreResult<Option<UserRecord>>;
    /// Count one more failed login; returns the new count.
    fn record_login_failure(
        &self,
        user: &UserId,
        locked_until: Option<DateTime<Utc>>,
    ) -> StoreResult<u32>;
    fn reset_login_failures(&self, user: &UserId) -> StoreResult<()>;
    fn insert_login_token(
        &self,
        token_hash: &str,
        user: &UserId,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The user a token belongs to, if it exists and has not expired at `now`.
    fn user_by_token(&self, token_hash: &str, now: DateTime<Utc>) -> StoreResult<Option<UserInfo>>;
    fn delete_login_token(&self, token_hash: &str) -> StoreResult<()>;

    // Clients and links
    fn create_client(
        &self,
        id: &ClientId,
        team: &TeamId,
        name: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<ClientInfo>;
    fn clients(&self, team: &TeamId) -> StoreResult<Vec<ClientInfo>>;
    /// A client of `team`, by id or by exact name. Another team's client is `None`.
    fn client(&self, team: &TeamId, id_or_name: &str) -> StoreResult<Option<ClientInfo>>;
    fn create_link(&self, link: NewLink) -> StoreResult<LinkInfo>;
    fn links(&self, client: &ClientId) -> StoreResult<Vec<LinkInfo>>;
    /// A link by its token hash, with its client's team and name.
    fn link_by_token(&self, token_hash: &str) -> StoreResult<Option<(LinkInfo, TeamId, String)>>;
    /// Revoke a link of `team`; `None` when there is no such link in that team.
    fn revoke_link(&self, team: &TeamId, link: &LinkId) -> StoreResult<Option<LinkInfo>>;

    // Workstations
    /// Register a workstation and count a use of its link, atomically.
    fn enrol_workstation(&self, new: NewWorkstation) -> StoreResult<WorkstationRow>;
    /// A workstation and its key hash, for authenticating its agent.
    fn workstation_with_key(
        &self,
        id: &WorkstationId,
    ) -> StoreResult<Option<(WorkstationRow, String)>>;
    fn workstation(&self, id: &WorkstationId) -> StoreResult<Option<WorkstationRow>>;
    fn update_workstation(
        &self,
        id: &WorkstationId,
        report: &WorkstationReport,
        last_seen: DateTime<Utc>,
    ) -> StoreResult<()>;
    fn touch_workstation(&self, id: &WorkstationId, last_seen: DateTime<Utc>) -> StoreResult<()>;
    fn workstations(
        &self,
        team: &TeamId,
        client: Option<&ClientId>,
    ) -> StoreResult<Vec<WorkstationRow>>;
    /// One page of a team's workstations in list order (see [`WorkstationKey`]), starting
    /// after `after`: at most `limit` rows, only those matching
    /// `filter` (lower-cased; see [`WorkstationFilter`]). Reads no more rows than it returns
    /// plus those the filter skips, so a large team is never loaded whole.
    fn workstations_page(
        &self,
        team: &TeamId,
        client: Option<&ClientId>,
        filter: Option<&WorkstationFilter>,
        after: Option<&WorkstationKey>,
        limit: u32,
    ) -> StoreResult<Vec<WorkstationRow>>;
    /// How many workstations a team (or one of its clients) has.
    fn count_workstations(&self, team: &TeamId, client: Option<&ClientId>) -> StoreResult<u64>;

    // Access control
    fn set_unattended(&self, id: &WorkstationId, state: UnattendedState) -> StoreResult<()>;
    fn set_requirements(&self, id: &WorkstationId, requires: SecretRequirements)
    -> StoreResult<()>;
    /// The security defaults for a new workstation of `client`: the client's group, else the
    /// team's, else none.
    fn security_defaults(
        &self,
        team: &TeamId,
        client: &ClientId,
    ) -> StoreResult<SecretRequirements>;
    /// Set a group's defaults: the client's (`Some`) or the whole team's (`None`).
    fn set_security_defaults(
        &self,
        team: &TeamId,
        client: Option<&ClientId>,
        requires: SecretRequirements,
    ) -> StoreResult<()>;
    /// Every group of a team: `None` is the team's own.
    fn list_security_defaults(
        &self,
        team: &TeamId,
    ) -> StoreResult<Vec<(Option<ClientId>, SecretRequirements)>>;
    /// Reserve one connection attempt of `user` on `workstation` before its secret is relayed,
    /// in one transaction: refused while locked out, else counted as a failure in advance with
    /// the lock-out `lock` gives the new count. Parallel attempts so see each other's counts.
    fn reserve_connect_attempt(
        &self,
        user: &UserId,
        workstation: &WorkstationId,
        now: DateTime<Utc>,
        lock: &dyn Fn(u32) -> Option<DateTime<Utc>>,
    ) -> StoreResult<ConnectReservation>;
    /// Give back a reservation whose attempt did not fail on its secret (the end user said no,
    /// no answer, offline); `lock` gives the lock-out for the lowered count.
    fn release_connect_attempt(
        &self,
        user: &UserId,
        workstation: &WorkstationId,
        lock: &dyn Fn(u32) -> Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
    /// After a wrong secret: once the workstation's count reached `after`, start it again and
    /// return it, for exactly one caller (so one burst replaces the passcode once).
    fn claim_passcode_replacement(
        &self,
        workstation: &WorkstationId,
        after: u32,
    ) -> StoreResult<Option<u32>>;
    /// A success clears the technician's count and the workstation's.
    fn reset_connect_failures(&self, user: &UserId, workstation: &WorkstationId)
    -> StoreResult<()>;
    /// Clear the workstation's count (its passcode was just replaced).
    fn reset_workstation_failures(&self, workstation: &WorkstationId) -> StoreResult<()>;

    // Sessions
    fn insert_session(&self, team: &TeamId, session: &SessionInfo) -> StoreResult<()>;
    /// Record a session's end; `None` if it was not open.
    fn end_session(
        &self,
        id: &SessionId,
        at: DateTime<Utc>,
        reason: &str,
    ) -> StoreResult<Option<SessionInfo>>;
    /// Sessions of a team, newest first; only open ones when `open_only`.
    fn sessions(&self, team: &TeamId, open_only: bool, limit: u32)
    -> StoreResult<Vec<SessionInfo>>;
    /// Close every session still open (at hub start: none can be live after a restart).
    fn close_open_sessions(
        &self,
        at: DateTime<Utc>,
        reason: &str,
    ) -> StoreResult<Vec<(TeamId, SessionInfo)>>;

    // Audit
    /// Append a record to the keyed chain and advance its signed head.
    fn append_audit(&self, entry: NewAudit) -> StoreResult<AuditRecord>;
    /// Make `change` and append the records `audit` makes from its outcome, in one
    /// transaction: if the change, a record or the commit fails, nothing is kept. When `audit`
    /// gives no record (or the change had nothing to do) nothing is kept either.
    fn commit_audited(
        &self,
        change: AuditedChange,
        audit: &dyn Fn(&ChangeOutcome) -> Vec<NewAudit>,
    ) -> StoreResult<ChangeOutcome>;
    /// Check the whole chain against its signed head.
    fn verify_audit(&self) -> StoreResult<AuditReport>;
    /// Write the records from `since` as JSON lines (`hub::audit::ExportLine`), with the chain
    /// key when `with_key`; returns how many records.
    fn export_audit(
        &self,
        since: Option<DateTime<Utc>>,
        with_key: bool,
        out: &mut dyn std::io::Write,
    ) -> StoreResult<u64>;

    // Technician 2FA (issue 5)
    /// A user's 2FA record (default when the user does not exist).
    fn two_factor(&self, user: &UserId) -> StoreResult<TwoFactorRecord>;
    fn set_two_factor_required(&self, user: &UserId, required: bool) -> StoreResult<()>;
    /// Keep a new sealed secret awaiting confirmation (replacing any earlier one).
    fn set_two_factor_pending(&self, user: &UserId, sealed: &str) -> StoreResult<()>;
    /// Make the pending secret `sealed` active with `step` as its last accepted step, if it is
    /// still the pending one and `step` is newer than the last accepted. False otherwise.
    fn activate_two_factor(&self, user: &UserId, sealed: &str, step: i64) -> StoreResult<bool>;
    /// Revoke every login token of a user (2FA just became active: logins without a code end).
    fn delete_user_tokens(&self, user: &UserId) -> StoreResult<usize>;
    /// Turn a user's 2FA off (a lost phone): secret, pending enrolment and last step cleared;
    /// "required" stays, so they enrol again at their next login.
    fn reset_two_factor(&self, user: &UserId) -> StoreResult<()>;
    /// Accept TOTP step `step` for `user` if it is newer than the last accepted, atomically:
    /// of two concurrent callers with the same step, exactly one gets `true`.
    fn accept_totp_step(&self, user: &UserId, step: i64) -> StoreResult<bool>;
    /// Every user (all teams) with their 2FA record, by name.
    fn users_two_factor(&self) -> StoreResult<Vec<(UserInfo, TwoFactorRecord)>>;
    /// A hub-wide setting.
    fn setting(&self, key: &str) -> StoreResult<Option<String>>;
    fn set_setting(&self, key: &str, value: &str) -> StoreResult<()>;
    /// Audit records matching `query`, newest first; `team` as in [`Store::audit`].
    fn search_audit(
        &self,
        team: Option<&TeamId>,
        query: &crate::protocol::AuditQuery,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Vec<AuditRecord>>;
}
