//! Who is asking, for the gate (hub/dispatch.rs) and the services it hands requests to: the
//! [`Principal`] of a connection, a guest's [`GuestGrant`], and the [`Scope`] a request was
//! authorized in. Plain types at the bottom of the hub, so services need not import the gate.

use super::store::{CredentialRecord, WorkstationRow};
use crate::protocol::{
    CredentialId, CredentialScopes, CredentialTarget, Role, TeamId, UserId, UserInfo,
    WorkstationInfo,
};

/// Who is on a connection once it has logged in.
#[derive(Debug, Clone)]
pub(super) enum Principal {
    /// A technician: their team's clients, workstations, sessions and credentials.
    Technician,
    /// An admin of one team: that team's users, 2FA, security settings and audit as well.
    TeamAdmin,
    /// The hub's owner: every team's users and audit, and the hub-wide settings.
    Owner,
    /// A guest with support credentials: their grant's target, within its scopes.
    Guest(GuestGrant),
    /// The password was right but a second factor is still owed: this connection may only
    /// finish 2FA enrolment (status, enable, confirm) or log out.
    Unfinished(Owed),
}

/// What an unfinished login still owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owed {
    /// 2FA is required for the user but not active: enrol first.
    Enrolment,
    /// 2FA became active after this connection logged in without a code: log in again with one.
    Code,
}

impl Principal {
    /// The principal of a technician's login. `enrolment_owed`: their 2FA is required but not
    /// active, so the password alone is not a finished login.
    pub(super) fn of(user: &UserInfo, enrolment_owed: bool) -> Self {
        if enrolment_owed {
            return Principal::Unfinished(Owed::Enrolment);
        }
        match user.role {
            Role::Technician => Principal::Technician,
            Role::Admin => Principal::TeamAdmin,
            Role::Owner => Principal::Owner,
        }
    }

    /// The guest's grant, for a guest.
    pub(super) fn grant(&self) -> Option<&GuestGrant> {
        match self {
            Principal::Guest(grant) => Some(grant),
            _ => None,
        }
    }
}

/// Which teams a management request reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Teams {
    /// One team: a team admin's own (or a technician's own, for reading its audit).
    One(TeamId),
    /// Every team: the owner.
    All,
}

impl Teams {
    pub(super) fn covers(&self, team: &TeamId) -> bool {
        match self {
            Teams::One(own) => own == team,
            Teams::All => true,
        }
    }

    /// The one team, for store calls that take an optional team filter (`None`: all).
    pub(super) fn only(&self) -> Option<&TeamId> {
        match self {
            Teams::One(team) => Some(team),
            Teams::All => None,
        }
    }
}

/// What an authorized request may reach: the service acts within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Scope {
    /// This account or this connection only: logout, one's own 2FA, one's own streams and
    /// one's own mail in the outbox.
    Own,
    /// The principal's team.
    Team,
    /// Team management and audit: the managed teams.
    Manage(Teams),
    /// Hub-wide settings.
    Hub,
    /// A guest's request: the credentials service narrows it to the grant's target.
    Grant,
}

/// What the hub knows of a logged-in guest.
#[derive(Debug, Clone)]
pub(super) struct GuestGrant {
    pub credential: CredentialId,
    pub team_id: String,
    pub issued_by_id: UserId,
    pub target: CredentialTarget,
    pub scopes: CredentialScopes,
}

impl GuestGrant {
    pub(super) fn from_record(rec: &CredentialRecord) -> Self {
        Self {
            credential: rec.info.id.clone(),
            team_id: rec.team_id.clone(),
            issued_by_id: rec.issued_by_id.clone(),
            target: rec.info.target.clone(),
            scopes: rec.info.scopes,
        }
    }

    /// Whether a workstation is (one of) the target(s).
    pub(super) fn covers(&self, row: &WorkstationRow) -> bool {
        self.covers_info(&row.info)
    }

    pub(super) fn covers_info(&self, info: &WorkstationInfo) -> bool {
        match &self.target {
            CredentialTarget::Workstation { workstation } => &info.id == workstation,
            CredentialTarget::Client { client } => &info.client_id == client,
        }
    }
}

impl GuestGrant {
    /// Whom a guest's wrong secrets count against: the issuing technician, on whose behalf the
    /// guest acts (the lock-out counters belong to accounts).
    pub(super) fn counted_as(&self, user: &UserInfo) -> UserInfo {
        UserInfo {
            id: self.issued_by_id.clone(),
            ..user.clone()
        }
    }
}
