//! Message and record types. Field names are the wire names; keep them stable.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ProtocolError, RequestId};

/// WebSocket path a console connects to.
pub const CONSOLE_PATH: &str = "/v1/console";
/// WebSocket path an agent connects to.
pub const AGENT_PATH: &str = "/v1/agent";

pub type UserId = String;
pub type TeamId = String;
pub type ClientId = String;
pub type WorkstationId = String;
pub type LinkId = String;

/// A technician's role on the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Technician,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Technician => "technician",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "technician" => Ok(Role::Technician),
            other => Err(format!("unknown role {other:?}: use admin or technician")),
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
        password: String,
    },
    /// Authenticate with a stored login token.
    Resume {
        version: u32,
        token: String,
    },
    /// Revoke this connection's login token.
    Logout,
    ListClients,
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
    },
    RevokeLink {
        link: LinkId,
    },
    ListWorkstations {
        #[serde(default)]
        client: Option<ClientId>,
    },
    /// The newest `limit` audit records (of the team; admins see all), newest first.
    ListAudit {
        limit: u32,
        #[serde(default)]
        before: Option<i64>,
    },
}

impl ConsoleRequest {
    /// Short name for logs and audit; never includes secrets.
    pub fn kind(&self) -> &'static str {
        match self {
            ConsoleRequest::Login { .. } => "login",
            ConsoleRequest::Resume { .. } => "resume",
            ConsoleRequest::Logout => "logout",
            ConsoleRequest::ListClients => "list_clients",
            ConsoleRequest::AddClient { .. } => "add_client",
            ConsoleRequest::CreateLink { .. } => "create_link",
            ConsoleRequest::ListLinks { .. } => "list_links",
            ConsoleRequest::RevokeLink { .. } => "revoke_link",
            ConsoleRequest::ListWorkstations { .. } => "list_workstations",
            ConsoleRequest::ListAudit { .. } => "list_audit",
        }
    }
}

/// The hub's successful answers to console requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConsoleReply {
    LoggedIn {
        token: String,
        expires_at: DateTime<Utc>,
        user: UserInfo,
    },
    Resumed {
        user: UserInfo,
    },
    Clients {
        clients: Vec<ClientInfo>,
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
    },
    Workstations {
        workstations: Vec<WorkstationInfo>,
    },
    Audit {
        records: Vec<AuditRecord>,
    },
    Done,
}

/// Live changes pushed to every console of a team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HubEvent {
    /// A workstation was enrolled or changed (presence, last seen, report).
    Workstation { workstation: WorkstationInfo },
    /// A client was added or renamed.
    Client { client: ClientInfo },
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
        token: String,
        report: WorkstationReport,
    },
    /// Every later connection: present the workstation key.
    Hello {
        version: u32,
        workstation_id: WorkstationId,
        key: String,
        report: WorkstationReport,
    },
    /// Something in the report changed (screen size, logged-in user).
    Report { report: WorkstationReport },
}

/// The hub's successful answers to agent requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentReply {
    Enrolled {
        workstation_id: WorkstationId,
        key: String,
        client_name: String,
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
}
