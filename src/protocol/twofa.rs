//! Wire types of technician 2FA, the users admin view and the audit search (issue 5).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Role, TeamId, UserId};

/// A technician's 2FA, as admins see it (DOMAIN.md: off, pending, active).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TwoFactorState {
    /// Not required and not enabled.
    #[default]
    Off,
    /// Required (for everyone or for this user) but not active yet.
    Pending,
    /// Enrolled and confirmed: every login asks for a code.
    Active,
}

impl TwoFactorState {
    pub fn label(self) -> &'static str {
        match self {
            TwoFactorState::Off => "off",
            TwoFactorState::Pending => "pending",
            TwoFactorState::Active => "active",
        }
    }

    /// From whether 2FA is active and whether it is required.
    pub fn of(active: bool, required: bool) -> Self {
        match (active, required) {
            (true, _) => TwoFactorState::Active,
            (false, true) => TwoFactorState::Pending,
            (false, false) => TwoFactorState::Off,
        }
    }
}

/// The logged-in technician's own 2FA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwoFactorStatus {
    pub state: TwoFactorState,
    /// Required for this user (by the global setting or for them).
    pub required: bool,
    /// The admins' global setting: required for everyone.
    pub global: bool,
    /// An enrolment was started and waits for its confirming code.
    #[serde(default)]
    pub enrolling: bool,
}

/// One user in the admins' users view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserTwoFactor {
    pub id: UserId,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub team_id: TeamId,
    pub team: String,
    pub state: TwoFactorState,
    /// Required for this user by an admin (the global setting aside).
    pub required: bool,
}

/// Filters of an audit search; every one that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Who did it (user name, `agent:<id>`, `hub`): exact.
    #[serde(default)]
    pub actor: Option<String>,
    /// A workstation, by id or host name.
    #[serde(default)]
    pub workstation: Option<String>,
    /// The action, exact (`login.fail`) or a prefix up to a dot (`login`, `2fa`).
    #[serde(default)]
    pub kind: Option<String>,
    /// At or after.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// Before.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
}

impl AuditQuery {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}
