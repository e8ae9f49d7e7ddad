//! Message and record types. Field names are the wire names; keep them stable.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Cursor, ProtocolError, RequestId};

/// WebSocket path a console connects to.
pub const CONSOLE_PATH: &str = "/v1/console";
/// WebSocket path an agent connects to.
pub const AGENT_PATH: &str = "/v1/agent";

pub type UserId = String;
pub type TeamId = String;
pub type ClientId = String;
pub type WorkstationId = String;
pub type LinkId = String;

/// A technician's role on the hub. An admin manages their own team; the owner manages every
/// team and the hub-wide settings (made only on the hub's machine: `tether admin create-user
/// --role owner`, never over the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Technician,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Technician => "technician",
            Role::Owner => "owner",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "technician" => Ok(Role::Technician),
            "owner" => Ok(Role::Owner),
            other => Err(format!(
                "unknown role {other:?}: use technician, admin or owner"
            )),
        }
    }
}

/// The logged-in technician, as the console sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub id: UserId,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub team_id: TeamId,
    pub team: String,
}

/// A one-time code with which a new user sets their own password (`tether login --enrol`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEnrolment {
    pub code: Secret,
    pub expires_at: DateTime<Utc>,
}

/// A customer the team supports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    pub id: ClientId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// An enrolment link's metadata. The token itself is only ever shown when the link is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkInfo {
    pub id: LinkId,
    pub client_id: ClientId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked: bool,
    /// Workstations enrolled with this link so far.
    pub uses: u32,
}

/// Whether a workstation's agent is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Online,
    Offline,
    InSession,
}

impl Presence {
    pub fn label(self) -> &'static str {
        match self {
            Presence::Online => "online",
            Presence::Offline => "offline",
            Presence::InSession => "in session",
        }
    }
}

/// Pixel size of a workstation's screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenSize {
    pub width: u32,
    pub height: u32,
}

/// What an agent says about its machine, at enrolment and on each connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkstationReport {
    pub hostname: String,
    pub os: String,
    pub user: String,
    #[serde(default)]
    pub screen: Option<ScreenSize>,
    pub agent_version: String,
}

/// A workstation as listed to the team's consoles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkstationInfo {
    pub id: WorkstationId,
    pub client_id: ClientId,
    pub client_name: String,
    pub hostname: String,
    pub os: String,
    pub user: String,
    #[serde(default)]
    pub screen: Option<ScreenSize>,
    pub agent_version: String,
    pub presence: Presence,
    pub last_seen: DateTime<Utc>,
    pub enrolled_at: DateTime<Utc>,
    /// Unattended access, as the hub last knew it.
    #[serde(default)]
    pub unattended: UnattendedState,
    /// The secrets the agent last said it requires.
    #[serde(default)]
    pub requires: SecretRequirements,
    /// Every connection needs a one-time password (set on the workstation or its group).
    #[serde(default)]
    pub otp_required: bool,
}

/// A secret on the wire (password, passcode, token, key). Serialised as a plain string; its
/// `Debug` form is redacted so a secret never reaches a log by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: use it, never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

pub type SessionId = String;
/// One viewer's stream of one session, assigned by the hub.
pub type StreamId = u64;

/// How a viewer wants a session drawn: pixels at the size it draws at (the agent scales), or
/// a terminal of this many cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ViewSpec {
    Pixels { width: u32, height: u32 },
    Terminal { cols: u16, rows: u16 },
}
/// Matches an agent's answer to a connection attempt.
pub type AttemptId = u64;

/// Unattended access to one workstation (DOMAIN.md, "Unattended access"):
/// `none -> requested -> granted | denied`; `granted -> withdrawn | revoked`; a new request
/// from `none`, `denied`, `withdrawn` and `revoked`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnattendedState {
    #[default]
    None,
    Requested,
    Granted,
    Denied,
    Withdrawn,
    Revoked,
}

impl UnattendedState {
    pub const ALL: [Self; 6] = [
        Self::None,
        Self::Requested,
        Self::Granted,
        Self::Denied,
        Self::Withdrawn,
        Self::Revoked,
    ];

    pub fn label(self) -> &'static str {
        match self {
            UnattendedState::None => "none",
            UnattendedState::Requested => "requested",
            UnattendedState::Granted => "granted",
            UnattendedState::Denied => "denied",
            UnattendedState::Withdrawn => "withdrawn",
            UnattendedState::Revoked => "revoked",
        }
    }

    /// Whether a technician may ask (again) from this state.
    pub fn can_request(self) -> bool {
        matches!(
            self,
            Self::None | Self::Denied | Self::Withdrawn | Self::Revoked
        )
    }
}

/// What can happen to unattended access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessEvent {
    /// A technician asks.
    Request,
    /// The end user grants (and confirms that technicians may make changes).
    Grant,
    /// The end user refuses.
    Deny,
    /// A technician of the team takes the grant (or the pending request) back.
    Withdraw,
    /// The end user takes the grant back on the agent.
    Revoke,
}

impl UnattendedState {
    /// The state machine: the state after `event`, or why `event` cannot happen now.
    pub fn apply(self, event: AccessEvent) -> Result<Self, String> {
        use AccessEvent as E;
        use UnattendedState as S;
        match (self, event) {
            (from, E::Request) if from.can_request() => Ok(S::Requested),
            (S::Requested, E::Request) => Err("unattended access is already requested".into()),
            (S::Granted, E::Request) => Err("unattended access is already granted".into()),
            (S::Requested, E::Grant) => Ok(S::Granted),
            (S::Requested, E::Deny) => Ok(S::Denied),
            (S::Granted | S::Requested, E::Withdraw) => Ok(S::Withdrawn),
            (S::Granted, E::Revoke) => Ok(S::Revoked),
            (from, event) => Err(format!(
                "cannot {} unattended access that is {}",
                match event {
                    E::Request => "request",
                    E::Grant => "grant",
                    E::Deny => "deny",
                    E::Withdraw => "withdraw",
                    E::Revoke => "revoke",
                },
                from.label()
            )),
        }
    }
}

impl std::str::FromStr for UnattendedState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.label() == s)
            .ok_or_else(|| format!("unknown unattended state {s:?}"))
    }
}

/// Which secrets a workstation requires for every connection. With both, either value is
/// accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRequirements {
    #[serde(default)]
    pub passcode: bool,
    #[serde(default)]
    pub password: bool,
}

impl SecretRequirements {
    pub fn any(self) -> bool {
        self.passcode || self.password
    }

    /// "passcode", "password", "passcode or password", or "none".
    pub fn label(self) -> &'static str {
        match (self.passcode, self.password) {
            (true, true) => "passcode or password",
            (true, false) => "passcode",
            (false, true) => "password",
            (false, false) => "none",
        }
    }
}

/// A group's security defaults: a client's group, or the team's own (`client_id` `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDefaults {
    #[serde(default)]
    pub client_id: Option<ClientId>,
    #[serde(default)]
    pub client_name: Option<String>,
    pub requires: SecretRequirements,
    /// Every connection to the group's workstations needs a one-time password.
    #[serde(default)]
    pub otp: bool,
}

/// The agent's side of access: its grant and the secrets it requires.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentPolicy {
    pub unattended: UnattendedState,
    pub requires: SecretRequirements,
}

/// A workstation secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    /// The temporary passcode the agent shows.
    Passcode,
    /// The permanent password the end user set.
    Password,
}

/// How a session was authorised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// An unattended grant was in force.
    Unattended,
    /// The end user accepted on the agent.
    Attended,
    /// A guest holding valid support credentials for the workstation.
    SupportCredentials,
}

impl AuthMethod {
    pub fn label(self) -> &'static str {
        match self {
            AuthMethod::Unattended => "unattended",
            AuthMethod::Attended => "attended",
            AuthMethod::SupportCredentials => "support credentials",
        }
    }
}

/// Why an agent refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The passcode or password presented is wrong.
    WrongSecret,
    /// The workstation requires a secret and none was presented.
    SecretRequired,
    /// The workstation requires its permanent password, but none is set on it.
    NoPasswordSet,
    /// The end user clicked Deny.
    Denied,
    /// The end user did not answer within 60 s.
    NoAnswer,
    /// The workstation requires a one-time password and none was presented (checked by the hub).
    OtpRequired,
    /// The one-time password is wrong, used, expired, or for another technician or workstation.
    OtpInvalid,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::WrongSecret => "the passcode or password is wrong",
            Refusal::SecretRequired => "this workstation requires its passcode or password",
            Refusal::NoPasswordSet => {
                "this workstation requires a permanent password, but none is set on it"
            }
            Refusal::Denied => "the end user denied the connection",
            Refusal::NoAnswer => "the end user did not answer within 60 s",
            Refusal::OtpRequired => "this workstation requires a one-time password",
            Refusal::OtpInvalid => {
                "the one-time password is wrong, used, expired, or not for this workstation"
            }
        }
    }

    /// Only wrong secrets count towards a lock-out.
    pub fn is_secret_failure(self) -> bool {
        self == Refusal::WrongSecret
    }
}

/// The agent's answer to a connection attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConnectOutcome {
    Allowed {
        method: AuthMethod,
        secrets: Vec<SecretKind>,
    },
    Refused {
        reason: Refusal,
    },
}

/// Who a technician is, as an agent shows them to the end user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TechnicianRef {
    pub name: String,
    pub email: String,
}

/// A session: a technician's authorised connection to a workstation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: SessionId,
    pub workstation_id: WorkstationId,
    pub hostname: String,
    pub technician: TechnicianRef,
    pub method: AuthMethod,
    /// Which secrets were presented and accepted (never their values).
    pub secrets: Vec<SecretKind>,
    pub view_only: bool,
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end_reason: Option<String>,
}

/// Input from a viewer to the remote screen, in the remote screen's pixel coordinates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InputEvent {
    /// An X11 keysym (VNC uses the same numbers), pressed or released.
    Key { keysym: u32, down: bool },
    /// Where the pointer is and which buttons are held: bit 0 left, 1 middle, 2 right,
    /// 3 wheel up, 4 wheel down (the RFB convention).
    Pointer { x: u32, y: u32, buttons: u8 },
}

/// One entry of the tamper-evident audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub id: i64,
    pub at: DateTime<Utc>,
    /// Who did it: a user name, `agent:<workstation id>`, or `hub`.
    pub actor: String,
    #[serde(default)]
    pub actor_email: Option<String>,
    #[serde(default)]
    pub team_id: Option<TeamId>,
    /// What happened, dotted: `login.ok`, `client.add`, `workstation.enrol` ...
    pub action: String,
    #[serde(default)]
    pub target: Option<String>,
    /// Free-form detail, a JSON object.
    pub detail: serde_json::Value,
    /// Hash of the record before (hex SHA-256; all zeros for the first).
    pub prev_hash: String,
    /// Hash of this record, chained over `prev_hash`.
    pub hash: String,
}

// ---------------------------------------------------------------------------------------------
// Console <-> hub

/// What a console asks of the hub. The first request must be `Login` or `Resume`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConsoleRequest {
    /// Log in with a password; the reply carries a new login token.
    Login {
        version: u32,
        user: String,
        password: Secret,
        /// The 2FA code (TOTP), where the user's 2FA is active.
        #[serde(default)]
        code: Option<Secret>,
        /// This console's device token for this user (256 random bits, made by the console and
        /// kept with its saved logins): after one successful login the hub trusts it for the
        /// user, and a later login presenting it is checked ahead of a login flood and is not
        /// held back by the lock-out others build on the name. Not a second factor.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<Secret>,
    },
    /// Authenticate with a stored login token.
    Resume {
        version: u32,
        token: Secret,
    },
    /// Revoke this connection's login token.
    Logout,
    ListClients {
        /// Which page; the first by default.
        #[serde(default, skip_serializing_if = "super::PageRequest::is_first")]
        page: super::PageRequest,
    },
    AddClient {
        name: String,
    },
    /// Issue a new enrolment link for a client. `valid_days` defaults to 7.
    CreateLink {
        client: ClientId,
        #[serde(default)]
        valid_days: Option<u32>,
    },
    ListLinks {
        client: ClientId,
        /// Which page; the first by default.
        #[serde(default, skip_serializing_if = "super::PageRequest::is_first")]
        page: super::PageRequest,
    },
    RevokeLink {
        link: LinkId,
    },
    ListWorkstations {
        #[serde(default)]
        client: Option<ClientId>,
        /// Only workstations whose host name, client name, OS or user contains this text, in
        /// any case (the console's `/` filter, done on the hub for very large teams).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<String>,
        /// Which page; the first by default.
        #[serde(default, skip_serializing_if = "super::PageRequest::is_first")]
        page: super::PageRequest,
    },
    /// Audit records (of the team; the hub's owner sees all), newest first, at most `limit` a
    /// page.
    ListAudit {
        limit: u32,
        #[serde(default)]
        before: Option<i64>,
        /// Which page; the first by default.
        #[serde(default, skip_serializing_if = "super::PageRequest::is_first")]
        page: super::PageRequest,
    },
    /// Ask the end user for unattended access to a workstation (id or hostname).
    RequestAccess {
        workstation: WorkstationId,
    },
    /// Withdraw unattended access (granted or still requested) for the whole team.
    WithdrawAccess {
        workstation: WorkstationId,
    },
    /// Open a session: authorisation (unattended grant, or the end user accepts) and every
    /// secret the workstation requires. The reply comes when the agent has decided.
    Connect {
        workstation: WorkstationId,
        #[serde(default)]
        secret: Option<Secret>,
        #[serde(default)]
        view_only: bool,
        /// The one-time password, where the workstation requires one (checked by the hub).
        #[serde(default)]
        otp: Option<Secret>,
    },
    /// Open sessions of the team.
    ListSessions {
        /// Which page; the first by default.
        #[serde(default, skip_serializing_if = "super::PageRequest::is_first")]
        page: super::PageRequest,
    },
    /// Watch an open session's screen (or terminal) at this size. Sent again, it changes the
    /// size. Frames arrive as binary messages on this connection, tagged with the stream id the
    /// reply gives; acknowledge each with `Ack` (the agent keeps a window of bytes in flight, sized
    /// to the link, and latest wins).
    Watch {
        session: SessionId,
        view: ViewSpec,
    },
    /// Stop watching.
    Unwatch {
        stream: StreamId,
    },
    /// The frame `seq` of `stream` is drawn: its bytes leave the agent's window.
    Ack {
        stream: StreamId,
        seq: u64,
    },
    /// Keyboard and mouse for the remote screen (refused on view-only sessions).
    Input {
        stream: StreamId,
        events: Vec<InputEvent>,
    },
    /// The team's groups and their security defaults.
    ListGroups {
        /// Which page; the first by default.
        #[serde(default, skip_serializing_if = "super::PageRequest::is_first")]
        page: super::PageRequest,
    },
    /// Set a group's security defaults (admins): the client's group, or the team's when
    /// `client` is `None`. Applied to workstations enrolled from then on.
    SetGroupDefaults {
        #[serde(default)]
        client: Option<ClientId>,
        requires: SecretRequirements,
    },
    /// End a session (any technician of the team may).
    EndSession {
        session: SessionId,
    },
    /// This technician's own 2FA state.
    TwoFactorStatus,
    /// Start (or restart) enrolment: a new TOTP secret, shown once, as an otpauth URI.
    TwoFactorEnable,
    /// Confirm enrolment with one valid code; 2FA is active from then on.
    TwoFactorConfirm {
        code: Secret,
    },
    /// The users with their 2FA state (admins: of their team; the owner: all).
    ListUsers {
        /// Which page; the first by default.
        #[serde(default, skip_serializing_if = "super::PageRequest::is_first")]
        page: super::PageRequest,
    },
    /// Require 2FA for one user, or not (admins; refused while the global setting is on).
    /// `password` is the admin's own, asked again.
    SetUserTwoFactor {
        user: String,
        required: bool,
        password: Secret,
    },
    /// Require 2FA for everyone, or not (the hub's owner). `password` is the owner's own.
    SetGlobalTwoFactor {
        required: bool,
        password: Secret,
    },
    /// The audit log, filtered (of the team; the hub's owner sees all), newest first.
    SearchAudit {
        #[serde(default)]
        query: super::AuditQuery,
        limit: u32,
        #[serde(default)]
        before: Option<i64>,
        /// Which page; the first by default.
        #[serde(default, skip_serializing_if = "super::PageRequest::is_first")]
        page: super::PageRequest,
    },
    /// Log in as a guest with support credentials; the reply is `GuestLoggedIn`.
    GuestLogin {
        version: u32,
        user: String,
        password: Secret,
        code: Secret,
    },
    /// Issue support credentials. While this technician's credentials for the same target
    /// are valid the reply is `CredentialsAlreadyActive` instead.
    IssueCredentials {
        target: super::CredentialTarget,
        /// 1 minute to 7 days.
        minutes: u32,
        scopes: super::CredentialScopes,
    },
    /// The team's support credentials (active, and those ended in the last 7 days).
    ListCredentials {
        /// Which page; the first by default.
        #[serde(default, skip_serializing_if = "super::PageRequest::is_first")]
        page: super::PageRequest,
    },
    RevokeCredentials {
        credential: super::CredentialId,
    },
    /// Revoke and issue new ones for the same target, duration and scopes.
    RegenerateCredentials {
        credential: super::CredentialId,
    },
    /// A one-time password for this technician and workstation, delivered out of band (e-mail,
    /// else the outbox). With `emergency`, the reason, and it goes to the admins.
    RequestOtp {
        workstation: WorkstationId,
        #[serde(default)]
        emergency: Option<String>,
    },
    /// Deliver the still valid one-time password for this workstation again.
    ResendOtp {
        workstation: WorkstationId,
    },
    /// Require (or not) a one-time password for every connection to a workstation (admins).
    SetWorkstationOtp {
        workstation: WorkstationId,
        required: bool,
    },
    /// Require (or not) a one-time password for a client's group, or the whole team's
    /// (`client` `None`) (admins).
    SetGroupOtp {
        #[serde(default)]
        client: Option<ClientId>,
        required: bool,
    },
    /// The asker's mail in the hub's outbox, newest first: their codes, and for an admin their
    /// team's emergency codes.
    ListOutbox {
        limit: u32,
        /// Which page; the first by default.
        #[serde(default, skip_serializing_if = "super::PageRequest::is_first")]
        page: super::PageRequest,
    },
    /// Reset another user's 2FA (a lost phone): their secret goes, so their 2FA is off again
    /// (pending where it is required), and their logins end (admins). `password` is the
    /// admin's own, asked again.
    ResetUserTwoFactor {
        user: String,
        password: Secret,
    },
    /// Add a user to the team (admins). With `password` the admin sets it; without, the reply
    /// carries a one-time enrolment code with which the user sets their own.
    AddUser {
        name: String,
        role: Role,
        #[serde(default)]
        email: Option<String>,
        #[serde(default)]
        password: Option<Secret>,
    },
    /// Change a user's role (admins); their open connections end.
    SetUserRole {
        user: String,
        role: Role,
    },
    /// Disable a user (admins): their logins and connections end; they cannot log in.
    DisableUser {
        user: String,
    },
    /// Enable a disabled (or locked) user again (admins).
    EnableUser {
        user: String,
    },
    /// Remove a user (admins): as disabling, for good; their name stays in the audit log.
    RemoveUser {
        user: String,
    },
    /// Before login: set your password with the enrolment code an admin gave you. The reply
    /// is `Done`; then log in with the new password.
    RedeemEnrolment {
        version: u32,
        user: String,
        code: Secret,
        password: Secret,
    },
}

impl ConsoleRequest {
    /// Short name for logs and audit; never includes secrets.
    pub fn kind(&self) -> &'static str {
        match self {
            ConsoleRequest::Login { .. } => "login",
            ConsoleRequest::Resume { .. } => "resume",
            ConsoleRequest::Logout => "logout",
            ConsoleRequest::ListClients { .. } => "list_clients",
            ConsoleRequest::AddClient { .. } => "add_client",
            ConsoleRequest::CreateLink { .. } => "create_link",
            ConsoleRequest::ListLinks { .. } => "list_links",
            ConsoleRequest::RevokeLink { .. } => "revoke_link",
            ConsoleRequest::ListWorkstations { .. } => "list_workstations",
            ConsoleRequest::ListAudit { .. } => "list_audit",
            ConsoleRequest::RequestAccess { .. } => "request_access",
            ConsoleRequest::WithdrawAccess { .. } => "withdraw_access",
            ConsoleRequest::Connect { .. } => "connect",
            ConsoleRequest::ListSessions { .. } => "list_sessions",
            ConsoleRequest::ListGroups { .. } => "list_groups",
            ConsoleRequest::Watch { .. } => "watch",
            ConsoleRequest::Unwatch { .. } => "unwatch",
            ConsoleRequest::Ack { .. } => "ack",
            ConsoleRequest::Input { .. } => "input",
            ConsoleRequest::SetGroupDefaults { .. } => "set_group_defaults",
            ConsoleRequest::EndSession { .. } => "end_session",
            ConsoleRequest::TwoFactorStatus => "two_factor_status",
            ConsoleRequest::TwoFactorEnable => "two_factor_enable",
            ConsoleRequest::TwoFactorConfirm { .. } => "two_factor_confirm",
            ConsoleRequest::ListUsers { .. } => "list_users",
            ConsoleRequest::SetUserTwoFactor { .. } => "set_user_two_factor",
            ConsoleRequest::SetGlobalTwoFactor { .. } => "set_global_two_factor",
            ConsoleRequest::SearchAudit { .. } => "search_audit",
            ConsoleRequest::GuestLogin { .. } => "guest_login",
            ConsoleRequest::IssueCredentials { .. } => "issue_credentials",
            ConsoleRequest::ListCredentials { .. } => "list_credentials",
            ConsoleRequest::RevokeCredentials { .. } => "revoke_credentials",
            ConsoleRequest::RegenerateCredentials { .. } => "regenerate_credentials",
            ConsoleRequest::RequestOtp { .. } => "request_otp",
            ConsoleRequest::ResendOtp { .. } => "resend_otp",
            ConsoleRequest::SetWorkstationOtp { .. } => "set_workstation_otp",
            ConsoleRequest::SetGroupOtp { .. } => "set_group_otp",
            ConsoleRequest::ListOutbox { .. } => "list_outbox",
            ConsoleRequest::ResetUserTwoFactor { .. } => "reset_user_two_factor",
            ConsoleRequest::AddUser { .. } => "add_user",
            ConsoleRequest::SetUserRole { .. } => "set_user_role",
            ConsoleRequest::DisableUser { .. } => "disable_user",
            ConsoleRequest::EnableUser { .. } => "enable_user",
            ConsoleRequest::RemoveUser { .. } => "remove_user",
            ConsoleRequest::RedeemEnrolment { .. } => "redeem_enrolment",
        }
    }
}

/// The hub's successful answers to console requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConsoleReply {
    LoggedIn {
        token: Secret,
        expires_at: DateTime<Utc>,
        user: UserInfo,
    },
    Resumed {
        user: UserInfo,
    },
    Clients {
        clients: Vec<ClientInfo>,
        /// Where the next page starts; `None` on the last page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<Cursor>,
        /// Rows in the whole (filtered) list, where the hub knows it cheaply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    Client {
        client: ClientInfo,
    },
    /// A new link: `url` is the only time its token is ever shown.
    Link {
        link: LinkInfo,
        url: String,
    },
    Links {
        links: Vec<LinkInfo>,
        /// Where the next page starts; `None` on the last page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<Cursor>,
        /// Rows in the whole (filtered) list, where the hub knows it cheaply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    Workstations {
        workstations: Vec<WorkstationInfo>,
        /// Where the next page starts; `None` on the last page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<Cursor>,
        /// Rows in the whole (filtered) list, where the hub knows it cheaply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    Audit {
        records: Vec<AuditRecord>,
        /// Where the next page starts; `None` on the last page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<Cursor>,
        /// Rows in the whole (filtered) list, where the hub knows it cheaply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    /// The workstation after an access request or withdrawal.
    Workstation {
        workstation: WorkstationInfo,
    },
    /// A session that was just opened.
    Session {
        session: SessionInfo,
    },
    Sessions {
        sessions: Vec<SessionInfo>,
        /// Where the next page starts; `None` on the last page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<Cursor>,
        /// Rows in the whole (filtered) list, where the hub knows it cheaply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    Groups {
        groups: Vec<GroupDefaults>,
        /// Where the next page starts; `None` on the last page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<Cursor>,
        /// Rows in the whole (filtered) list, where the hub knows it cheaply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    /// Watching: frames of `stream` follow as binary messages.
    Watching {
        stream: StreamId,
    },
    Done,
    /// The technician's own 2FA.
    TwoFactor {
        status: super::TwoFactorStatus,
    },
    /// A new TOTP secret: the only time it is ever shown.
    TwoFactorEnrolment {
        /// `otpauth://totp/...`, for the QR code. It carries the secret: redacted like it.
        uri: Secret,
        /// The same secret in base32, to type in by hand.
        secret: Secret,
    },
    /// Users and their 2FA (admins), with the global setting.
    Users {
        users: Vec<super::UserTwoFactor>,
        global: bool,
        /// Where the next page starts; `None` on the last page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<Cursor>,
        /// Rows in the whole (filtered) list, where the hub knows it cheaply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    /// A guest logged in with support credentials.
    GuestLoggedIn {
        token: Secret,
        expires_at: DateTime<Utc>,
        user: UserInfo,
        guest: Box<super::GuestInfo>,
    },
    /// A guest resumed with a stored login token.
    GuestResumed {
        user: UserInfo,
        guest: Box<super::GuestInfo>,
    },
    /// New support credentials: `reveal` is the only time the password and code are shown.
    CredentialsIssued {
        credential: Box<super::CredentialInfo>,
        reveal: Box<super::RevealedCredential>,
    },
    /// This technician's credentials for that target are still valid: revoke or regenerate.
    CredentialsAlreadyActive {
        credential: Box<super::CredentialInfo>,
        message: String,
    },
    Credentials {
        credentials: Vec<super::CredentialInfo>,
        /// Where the next page starts; `None` on the last page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<Cursor>,
        /// Rows in the whole (filtered) list, where the hub knows it cheaply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    Credential {
        credential: Box<super::CredentialInfo>,
    },
    /// A one-time password was issued (or sent again); the code itself went out of band.
    Otp {
        otp: super::OtpIssued,
    },
    /// The hub's outbox.
    Outbox {
        messages: Vec<super::OutboxMessage>,
        /// Where the next page starts; `None` on the last page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<Cursor>,
        /// Rows in the whole (filtered) list, where the hub knows it cheaply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    /// A new user; `enrolment` (when the admin set no password) is the only time its code is
    /// shown.
    UserAdded {
        user: UserInfo,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        enrolment: Option<UserEnrolment>,
    },
}

/// Live changes pushed to every console of a team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HubEvent {
    /// A workstation was enrolled or changed (presence, last seen, report).
    Workstation { workstation: WorkstationInfo },
    /// A client was added or renamed.
    Client { client: ClientInfo },
    /// A session started, or ended (then `ended_at` and `end_reason` are set).
    Session { session: SessionInfo },
    /// One viewer's stream ended on the workstation's side (its screen could not start or
    /// stopped), and why. Sent only to the console that watches it; the session stays open.
    StreamEnded { stream: StreamId, reason: String },
    /// This console fell behind the team's events and missed some: reload every list rather
    /// than trust what it holds (sent instead of closing the connection).
    Resync,
}

/// Everything the hub sends a console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HubToConsole {
    Reply {
        id: RequestId,
        result: Result<ConsoleReply, ProtocolError>,
    },
    Event {
        event: HubEvent,
    },
    /// An error not tied to a request (a message that could not be parsed, say).
    Error {
        error: ProtocolError,
    },
}

// ---------------------------------------------------------------------------------------------
// Agent <-> hub

/// What an agent asks of the hub. The first request must be `Enrol` or `Hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentRequest {
    /// First contact: present an enrolment link's token, receive a workstation key.
    Enrol {
        version: u32,
        token: Secret,
        report: WorkstationReport,
    },
    /// Every later connection: present the workstation key.
    Hello {
        version: u32,
        workstation_id: WorkstationId,
        key: Secret,
        report: WorkstationReport,
    },
    /// Something in the report changed (screen size, logged-in user).
    Report { report: WorkstationReport },
    /// The agent's access policy: sent after authenticating and whenever it changes (the end
    /// user granted, denied or revoked; turned a secret on or off).
    Policy { policy: AgentPolicy },
    /// The agent's decision on a connection attempt.
    ConnectAnswer {
        attempt: AttemptId,
        outcome: ConnectOutcome,
    },
    /// A viewer's stream ended here (the screen could not start, or stopped): the hub closes
    /// it and tells the viewer `reason`.
    StreamEnded { stream: StreamId, reason: String },
}

/// The hub's successful answers to agent requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentReply {
    Enrolled {
        workstation_id: WorkstationId,
        key: Secret,
        client_name: String,
        /// The group's security defaults, to apply at once.
        #[serde(default)]
        defaults: SecretRequirements,
    },
    Welcome {
        workstation_id: WorkstationId,
        client_name: String,
    },
    Done,
}

/// Everything the hub sends an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HubToAgent {
    Reply {
        id: RequestId,
        result: Result<AgentReply, ProtocolError>,
    },
    Error {
        error: ProtocolError,
    },
    /// A technician asks for unattended access; the agent asks the end user and answers with
    /// a new `Policy`.
    AccessRequested {
        technician: TechnicianRef,
    },
    /// A technician of the team withdrew unattended access.
    AccessWithdrawn {
        technician: TechnicianRef,
    },
    /// A technician wants to connect: check the secret, ask the end user unless unattended
    /// access is granted, then answer with `ConnectAnswer`.
    ConnectAttempt {
        attempt: AttemptId,
        technician: TechnicianRef,
        #[serde(default)]
        secret: Option<Secret>,
        #[serde(default)]
        view_only: bool,
        /// The caller is a guest whose support credentials for this workstation the hub has
        /// checked: that authorises the connection (secrets still apply).
        #[serde(default)]
        support_credentials: bool,
    },
    /// A session on this workstation started, or ended (then with its reason).
    Session {
        session: SessionInfo,
    },
    /// Replace the temporary passcode now (too many failed attempts).
    RefreshPasscode {
        reason: String,
    },
    /// Start (or resize) a stream of a session's screen for one viewer.
    Watch {
        stream: StreamId,
        session: SessionId,
        view: ViewSpec,
    },
    /// Stop a stream (the viewer left, or the session ended).
    Unwatch {
        stream: StreamId,
    },
    /// The viewer drew frame `seq` (and those before it): room in the window for more.
    Ack {
        stream: StreamId,
        seq: u64,
    },
    /// Frame `seq` never reached the viewer: its connection was backed up and the hub dropped
    /// it. Send the same area again from the
    /// latest picture (a terminal: redraw the viewer's screen), as the frame is not coming.
    Dropped {
        stream: StreamId,
        seq: u64,
    },
    /// Keyboard and mouse from a viewer.
    Input {
        stream: StreamId,
        events: Vec<InputEvent>,
    },
}
