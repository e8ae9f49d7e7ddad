//! The gate every console request passes once a connection has logged in: who is asking (a
//! [`Principal`]) and one exhaustive [`authorize`] that decides, before any service runs, whether
//! the request is allowed and what it may reach (a [`Scope`]); then one exhaustive [`route`] to
//! the service that answers it. Services act within the scope; they make no role decisions.
//!
//! No match here has a wildcard arm, on purpose: a new `ConsoleRequest` variant (or a new kind
//! of principal) does not compile until it has a rule and a route, and the test at the end keeps
//! the whole table written out, so a changed rule is a changed line in a reviewable table.

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::auth::{self, Session};
use super::principal::{GuestGrant, Owed, Principal, Scope, Teams};
use super::{Hub, clients, credentials, pager, twofa, users};
use crate::protocol::{ConsoleReply, ConsoleRequest, ErrorCode, ProtocolError, TeamId};

/// What a request needs, whoever asks: the first half of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// A login: only before one, never on a logged-in connection.
    Login,
    /// Leaving: anyone logged in.
    Logout,
    /// One's own 2FA enrolment: the only thing besides logout an unfinished login may do.
    OwnTwoFactor,
    /// Team work a guest may also do, narrowed to its grant.
    TeamOrGrant,
    /// This connection's streams (a guest's too).
    Stream,
    /// Keyboard and mouse: a guest needs the control scope.
    Input,
    /// Team work for technicians and up; never a guest.
    Team,
    /// One's own messages in the outbox.
    OwnMail,
    /// The team's security settings: its admins (and the owner, in their own team).
    TeamSetting,
    /// Users and their 2FA: a team admin in their team, the owner in every team.
    Users,
    /// The audit log: technicians and admins of their team, the owner of every team.
    Audit,
    /// Settings of the whole hub: the owner only.
    HubSetting,
}

/// What each request needs. No wildcard arm: a new request does not compile without a rule.
fn need(request: &ConsoleRequest) -> Need {
    match request {
        ConsoleRequest::Login { .. }
        | ConsoleRequest::Resume { .. }
        | ConsoleRequest::GuestLogin { .. }
        | ConsoleRequest::RedeemEnrolment { .. } => Need::Login,
        ConsoleRequest::Logout => Need::Logout,
        ConsoleRequest::TwoFactorStatus
        | ConsoleRequest::TwoFactorEnable
        | ConsoleRequest::TwoFactorConfirm { .. } => Need::OwnTwoFactor,
        ConsoleRequest::ListClients { .. }
        | ConsoleRequest::ListWorkstations { .. }
        | ConsoleRequest::Connect { .. }
        | ConsoleRequest::ListSessions { .. }
        | ConsoleRequest::Watch { .. }
        | ConsoleRequest::EndSession { .. } => Need::TeamOrGrant,
        ConsoleRequest::Unwatch { .. } | ConsoleRequest::Ack { .. } => Need::Stream,
        ConsoleRequest::Input { .. } => Need::Input,
        ConsoleRequest::AddClient { .. }
        | ConsoleRequest::CreateLink { .. }
        | ConsoleRequest::ListLinks { .. }
        | ConsoleRequest::RevokeLink { .. }
        | ConsoleRequest::RequestAccess { .. }
        | ConsoleRequest::WithdrawAccess { .. }
        | ConsoleRequest::ListGroups { .. }
        | ConsoleRequest::IssueCredentials { .. }
        | ConsoleRequest::ListCredentials { .. }
        | ConsoleRequest::RevokeCredentials { .. }
        | ConsoleRequest::RegenerateCredentials { .. }
        | ConsoleRequest::RequestOtp { .. }
        | ConsoleRequest::ResendOtp { .. } => Need::Team,
        ConsoleRequest::ListOutbox { .. } => Need::OwnMail,
        ConsoleRequest::SetGroupDefaults { .. }
        | ConsoleRequest::SetWorkstationOtp { .. }
        | ConsoleRequest::SetGroupOtp { .. } => Need::TeamSetting,
        ConsoleRequest::ListUsers { .. }
        | ConsoleRequest::SetUserTwoFactor { .. }
        | ConsoleRequest::ResetUserTwoFactor { .. }
        | ConsoleRequest::AddUser { .. }
        | ConsoleRequest::SetUserRole { .. }
        | ConsoleRequest::DisableUser { .. }
        | ConsoleRequest::EnableUser { .. }
        | ConsoleRequest::RemoveUser { .. } => Need::Users,
        ConsoleRequest::ListAudit { .. } | ConsoleRequest::SearchAudit { .. } => Need::Audit,
        ConsoleRequest::SetGlobalTwoFactor { .. } => Need::HubSetting,
    }
}

/// Decide one request of a logged-in principal of team `team`: the scope it may act in, or the
/// answer that refuses it. Called for every request before any service runs.
pub(super) fn authorize(
    principal: &Principal,
    team: &TeamId,
    request: &ConsoleRequest,
) -> Result<Scope, ProtocolError> {
    let need = need(request);
    let guest_refused = || {
        ProtocolError::new(
            ErrorCode::Forbidden,
            format!("not allowed with support credentials ({})", request.kind()),
        )
    };
    let admins_only = || {
        ProtocolError::new(
            ErrorCode::Forbidden,
            format!("only a team admin may do this ({})", request.kind()),
        )
    };
    let unfinished = |owed: Owed| match (owed, need) {
        (_, Need::Logout | Need::OwnTwoFactor) => Ok(Scope::Own),
        (Owed::Enrolment, _) => Err(ProtocolError::new(
            ErrorCode::TwoFactorSetupRequired,
            "two-factor authentication is required for you: finish setting it up (user menu, \
             Enable 2FA) before anything else, or log out",
        )),
        (Owed::Code, _) => Err(ProtocolError::new(
            ErrorCode::TwoFactorRequired,
            "your 2FA became active after this login: log in again with your code",
        )),
    };
    match need {
        Need::Login => Err(ProtocolError::bad_request(
            "already logged in on this connection",
        )),
        Need::Logout | Need::OwnTwoFactor | Need::Stream => match principal {
            Principal::Technician | Principal::TeamAdmin | Principal::Owner => Ok(Scope::Own),
            Principal::Guest(_) if need == Need::OwnTwoFactor => Err(guest_refused()),
            Principal::Guest(_) => Ok(Scope::Own),
            Principal::Unfinished(owed) => unfinished(*owed),
        },
        Need::TeamOrGrant => match principal {
            Principal::Technician | Principal::TeamAdmin | Principal::Owner => Ok(Scope::Team),
            Principal::Guest(_) => Ok(Scope::Grant),
            Principal::Unfinished(owed) => unfinished(*owed),
        },
        Need::Input => match principal {
            Principal::Technician | Principal::TeamAdmin | Principal::Owner => Ok(Scope::Own),
            Principal::Guest(grant) if grant.scopes.control => Ok(Scope::Grant),
            Principal::Guest(_) => Err(ProtocolError::new(
                ErrorCode::Forbidden,
                "these support credentials allow viewing only: keyboard and mouse are refused",
            )),
            Principal::Unfinished(owed) => unfinished(*owed),
        },
        Need::Team => match principal {
            Principal::Technician | Principal::TeamAdmin | Principal::Owner => Ok(Scope::Team),
            Principal::Guest(_) => Err(guest_refused()),
            Principal::Unfinished(owed) => unfinished(*owed),
        },
        Need::OwnMail => match principal {
            Principal::Technician | Principal::TeamAdmin | Principal::Owner => Ok(Scope::Own),
            Principal::Guest(_) => Err(guest_refused()),
            Principal::Unfinished(owed) => unfinished(*owed),
        },
        Need::TeamSetting => match principal {
            Principal::TeamAdmin | Principal::Owner => Ok(Scope::Team),
            Principal::Technician => Err(admins_only()),
            Principal::Guest(_) => Err(guest_refused()),
            Principal::Unfinished(owed) => unfinished(*owed),
        },
        Need::Users => match principal {
            Principal::TeamAdmin => Ok(Scope::Manage(Teams::One(team.clone()))),
            Principal::Owner => Ok(Scope::Manage(Teams::All)),
            Principal::Technician => Err(admins_only()),
            Principal::Guest(_) => Err(guest_refused()),
            Principal::Unfinished(owed) => unfinished(*owed),
        },
        Need::Audit => match principal {
            Principal::Technician | Principal::TeamAdmin => {
                Ok(Scope::Manage(Teams::One(team.clone())))
            }
            Principal::Owner => Ok(Scope::Manage(Teams::All)),
            Principal::Guest(_) => Err(guest_refused()),
            Principal::Unfinished(owed) => unfinished(*owed),
        },
        Need::HubSetting => match principal {
            Principal::Owner => Ok(Scope::Hub),
            Principal::Technician | Principal::TeamAdmin => Err(ProtocolError::new(
                ErrorCode::Forbidden,
                "only the hub's owner changes hub-wide settings",
            )),
            Principal::Guest(_) => Err(guest_refused()),
            Principal::Unfinished(owed) => unfinished(*owed),
        },
    }
}

/// The gate for one request of a connection: [`authorize`] against its principal. A login that
/// owed 2FA enrolment and finds 2FA active now (enrolled on another connection) owes a code
/// instead, and is told to log in again with one rather than to enrol.
pub(super) async fn authorize_session(
    hub: &Hub,
    session: &mut Session,
    request: &ConsoleRequest,
) -> Result<Scope, ProtocolError> {
    let decision = authorize(&session.principal, &session.user.team_id, request);
    if decision.is_err()
        && matches!(session.principal, Principal::Unfinished(Owed::Enrolment))
        && twofa::is_active(hub, &session.user).await?
    {
        session.principal = Principal::Unfinished(Owed::Code);
        return authorize(&session.principal, &session.user.team_id, request);
    }
    decision
}

/// Requests that may wait long (for the end user's answer, for a mail server): the connection
/// answers them on their own task.
pub(super) fn waits(request: &ConsoleRequest) -> bool {
    matches!(
        request,
        ConsoleRequest::Connect { .. }
            | ConsoleRequest::RequestOtp { .. }
            | ConsoleRequest::ResendOtp { .. }
    )
}

/// The scope's teams, for users and audit requests (the gate gives those a `Manage` scope).
fn managed(scope: &Scope) -> Result<&Teams, ProtocolError> {
    match scope {
        Scope::Manage(teams) => Ok(teams),
        Scope::Own | Scope::Team | Scope::Hub | Scope::Grant => Err(ProtocolError::internal()),
    }
}

/// The guest's grant where the gate narrowed the request to it.
fn narrowed<'a>(
    session: &'a Session,
    scope: &Scope,
) -> Result<Option<&'a GuestGrant>, ProtocolError> {
    match (scope, session.principal.grant()) {
        (Scope::Grant, Some(grant)) => Ok(Some(grant)),
        // Only a guest's requests are narrowed to a grant: anything else is a bug, refused.
        (Scope::Grant, None) => Err(ProtocolError::internal()),
        (Scope::Own | Scope::Team | Scope::Manage(_) | Scope::Hub, _) => Ok(None),
    }
}

/// Hand an authorized request to the service that answers it, within `scope`.
pub(super) async fn route(
    hub: &Hub,
    session: &Session,
    scope: &Scope,
    viewer: u64,
    out: &mpsc::Sender<Message>,
    request: ConsoleRequest,
) -> Result<ConsoleReply, ProtocolError> {
    let user = &session.user;
    let guest = narrowed(session, scope)?;
    match request {
        ConsoleRequest::Login { .. }
        | ConsoleRequest::Resume { .. }
        | ConsoleRequest::GuestLogin { .. }
        | ConsoleRequest::RedeemEnrolment { .. } => Err(ProtocolError::bad_request(
            "already logged in on this connection",
        )),
        ConsoleRequest::Logout => auth::logout(hub, session).await,
        request @ (ConsoleRequest::AddUser { .. }
        | ConsoleRequest::SetUserRole { .. }
        | ConsoleRequest::DisableUser { .. }
        | ConsoleRequest::EnableUser { .. }
        | ConsoleRequest::RemoveUser { .. }) => {
            users::handle(hub, user, managed(scope)?, request).await
        }
        ConsoleRequest::ListClients { page } => match guest {
            Some(grant) => credentials::guest_clients(hub, grant, user, page).await,
            None => clients::list_clients(hub, user, page).await,
        },
        ConsoleRequest::AddClient { name } => clients::add_client(hub, user, name).await,
        ConsoleRequest::CreateLink { client, valid_days } => {
            clients::create_link(hub, user, client, valid_days).await
        }
        ConsoleRequest::ListLinks { client, page } => {
            clients::list_links(hub, user, client, page).await
        }
        ConsoleRequest::RevokeLink { link } => clients::revoke_link(hub, user, link).await,
        ConsoleRequest::ListWorkstations {
            client,
            filter,
            page,
        } => match guest {
            Some(grant) => credentials::guest_workstations(hub, grant, client, filter, page).await,
            None => {
                clients::list_workstations(hub, user.team_id.clone(), client, filter, page).await
            }
        },
        ConsoleRequest::RequestAccess { workstation } => {
            let workstation = hub.request_access(user, &workstation).await?;
            Ok(ConsoleReply::Workstation { workstation })
        }
        ConsoleRequest::WithdrawAccess { workstation } => {
            let workstation = hub.withdraw_access(user, &workstation).await?;
            Ok(ConsoleReply::Workstation { workstation })
        }
        ConsoleRequest::Connect {
            workstation,
            secret,
            view_only,
            otp,
        } => {
            let (workstation, view_only) = match guest {
                Some(grant) => {
                    credentials::guest_connect(hub, grant, &workstation, view_only).await?
                }
                None => (workstation, view_only),
            };
            twofa::check_connection(hub, user, session.second_factor).await?;
            let session = hub
                .connect(user, viewer, &workstation, secret, otp, view_only)
                .await?;
            Ok(ConsoleReply::Session { session })
        }
        ConsoleRequest::ListSessions { page } => match guest {
            Some(grant) => credentials::guest_sessions(hub, grant, user, page).await,
            None => {
                let sessions = hub.open_sessions(&user.team_id);
                let total = sessions.len() as u64;
                let page = pager::page_in_memory("sessions", sessions, &page, |s| {
                    (std::cmp::Reverse(s.started_at), s.id.clone())
                })?;
                Ok(ConsoleReply::Sessions {
                    sessions: page.rows,
                    next: page.next,
                    total: Some(total),
                })
            }
        },
        ConsoleRequest::Watch { session: id, view } => {
            if let Some(grant) = guest {
                credentials::guest_session(hub, grant, &id)?;
            }
            Ok(ConsoleReply::Watching {
                stream: hub.watch(user, viewer, out, &id, view)?,
            })
        }
        ConsoleRequest::EndSession { session: id } => {
            if let Some(grant) = guest {
                credentials::guest_session(hub, grant, &id)?;
            }
            hub.end_session_by(user, &id).await?;
            Ok(ConsoleReply::Done)
        }
        ConsoleRequest::Unwatch { stream } => {
            hub.unwatch(viewer, stream).map(|()| ConsoleReply::Done)
        }
        ConsoleRequest::Ack { stream, seq } => {
            hub.ack(viewer, stream, seq).map(|()| ConsoleReply::Done)
        }
        ConsoleRequest::Input { stream, events } => hub
            .input(viewer, stream, events)
            .map(|()| ConsoleReply::Done),
        ConsoleRequest::ListGroups { page } => clients::list_groups(hub, user, page).await,
        ConsoleRequest::SetGroupDefaults { client, requires } => {
            clients::set_group_defaults(hub, user, client, requires).await
        }
        ConsoleRequest::TwoFactorStatus => twofa::status_reply(hub, user).await,
        ConsoleRequest::TwoFactorEnable => twofa::enable(hub, user).await,
        ConsoleRequest::TwoFactorConfirm { code } => twofa::confirm(hub, user, code).await,
        ConsoleRequest::ListUsers { page } => twofa::list_users(hub, managed(scope)?, page).await,
        ConsoleRequest::SetUserTwoFactor {
            user: target,
            required,
            password,
        } => twofa::set_user(hub, user, managed(scope)?, target, required, password).await,
        ConsoleRequest::ResetUserTwoFactor {
            user: target,
            password,
        } => twofa::reset_user(hub, user, managed(scope)?, &target, &password).await,
        ConsoleRequest::SetGlobalTwoFactor { required, password } => {
            twofa::set_global(hub, user, required, password).await
        }
        ConsoleRequest::SearchAudit {
            query,
            limit,
            before,
            page,
        } => twofa::search_audit(hub, managed(scope)?, query, limit, before, page).await,
        // The unfiltered form of SearchAudit (older consoles and scripts): one implementation.
        ConsoleRequest::ListAudit {
            limit,
            before,
            page,
        } => {
            let query = crate::protocol::AuditQuery::default();
            twofa::search_audit(hub, managed(scope)?, query, limit, before, page).await
        }
        ConsoleRequest::IssueCredentials {
            target,
            minutes,
            scopes,
        } => credentials::issue(hub, user, target, minutes, scopes, None).await,
        ConsoleRequest::ListCredentials { page } => credentials::list(hub, user, page).await,
        ConsoleRequest::RevokeCredentials { credential } => {
            credentials::revoke_by(hub, user, credential).await
        }
        ConsoleRequest::RegenerateCredentials { credential } => {
            credentials::regenerate(hub, user, credential).await
        }
        ConsoleRequest::RequestOtp {
            workstation,
            emergency,
        } => Ok(ConsoleReply::Otp {
            otp: hub.request_otp(user, &workstation, emergency).await?,
        }),
        ConsoleRequest::ResendOtp { workstation } => Ok(ConsoleReply::Otp {
            otp: hub.resend_otp(user, &workstation).await?,
        }),
        ConsoleRequest::SetWorkstationOtp {
            workstation,
            required,
        } => Ok(ConsoleReply::Workstation {
            workstation: hub
                .set_workstation_otp(user, &workstation, required)
                .await?,
        }),
        ConsoleRequest::SetGroupOtp { client, required } => {
            hub.set_group_otp(user, client, required).await?;
            Ok(ConsoleReply::Done)
        }
        ConsoleRequest::ListOutbox { limit, page } => {
            let (messages, next) = hub.list_outbox(user, limit, &page).await?;
            Ok(ConsoleReply::Outbox {
                messages,
                next,
                total: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{
        AuditQuery, CredentialScopes, CredentialTarget, PageRequest, SecretRequirements, ViewSpec,
    };
    use crate::protocol::{Role, UserInfo};

    /// One sample of every request. The match is exhaustive (no wildcard): a new variant
    /// breaks this test's compile until it has a sample, and so a row in the table below.
    fn sample(kind: &str) -> ConsoleRequest {
        let page = PageRequest::default;
        let all = [
            ConsoleRequest::Login {
                version: 1,
                user: "bob".into(),
                password: "pw".into(),
                code: None,
                device: None,
            },
            ConsoleRequest::Resume {
                version: 1,
                token: "t".into(),
            },
            ConsoleRequest::Logout,
            ConsoleRequest::ListClients { page: page() },
            ConsoleRequest::AddClient { name: "c".into() },
            ConsoleRequest::CreateLink {
                client: "c".into(),
                valid_days: None,
            },
            ConsoleRequest::ListLinks {
                client: "c".into(),
                page: page(),
            },
            ConsoleRequest::RevokeLink { link: "l".into() },
            ConsoleRequest::ListWorkstations {
                client: None,
                filter: None,
                page: page(),
            },
            ConsoleRequest::ListAudit {
                limit: 1,
                before: None,
                page: page(),
            },
            ConsoleRequest::RequestAccess {
                workstation: "w".into(),
            },
            ConsoleRequest::WithdrawAccess {
                workstation: "w".into(),
            },
            ConsoleRequest::Connect {
                workstation: "w".into(),
                secret: None,
                view_only: false,
                otp: None,
            },
            ConsoleRequest::ListSessions { page: page() },
            ConsoleRequest::Watch {
                session: "s".into(),
                view: ViewSpec::Terminal { cols: 80, rows: 24 },
            },
            ConsoleRequest::Unwatch { stream: 1 },
            ConsoleRequest::Ack { stream: 1, seq: 1 },
            ConsoleRequest::Input {
                stream: 1,
                events: Vec::new(),
            },
            ConsoleRequest::ListGroups { page: page() },
            ConsoleRequest::SetGroupDefaults {
                client: None,
                requires: SecretRequirements::default(),
            },
            ConsoleRequest::EndSession {
                session: "s".into(),
            },
            ConsoleRequest::TwoFactorStatus,
            ConsoleRequest::TwoFactorEnable,
            ConsoleRequest::TwoFactorConfirm { code: "1".into() },
            ConsoleRequest::ListUsers { page: page() },
            ConsoleRequest::AddUser {
                name: "u".into(),
                role: Role::Technician,
                email: None,
                password: None,
            },
            ConsoleRequest::SetUserRole {
                user: "u".into(),
                role: Role::Admin,
            },
            ConsoleRequest::DisableUser { user: "u".into() },
            ConsoleRequest::EnableUser { user: "u".into() },
            ConsoleRequest::RemoveUser { user: "u".into() },
            ConsoleRequest::RedeemEnrolment {
                version: 1,
                user: "u".into(),
                code: "c".into(),
                password: "pw".into(),
            },
            ConsoleRequest::SetUserTwoFactor {
                user: "u".into(),
                required: true,
                password: "pw".into(),
            },
            ConsoleRequest::SetGlobalTwoFactor {
                required: true,
                password: "pw".into(),
            },
            ConsoleRequest::SearchAudit {
                query: AuditQuery::default(),
                limit: 1,
                before: None,
                page: page(),
            },
            ConsoleRequest::GuestLogin {
                version: 1,
                user: "g".into(),
                password: "pw".into(),
                code: "1".into(),
            },
            ConsoleRequest::IssueCredentials {
                target: CredentialTarget::Workstation {
                    workstation: "w".into(),
                },
                minutes: 1,
                scopes: CredentialScopes::default(),
            },
            ConsoleRequest::ListCredentials { page: page() },
            ConsoleRequest::RevokeCredentials {
                credential: "c".into(),
            },
            ConsoleRequest::RegenerateCredentials {
                credential: "c".into(),
            },
            ConsoleRequest::RequestOtp {
                workstation: "w".into(),
                emergency: None,
            },
            ConsoleRequest::ResendOtp {
                workstation: "w".into(),
            },
            ConsoleRequest::SetWorkstationOtp {
                workstation: "w".into(),
                required: true,
            },
            ConsoleRequest::SetGroupOtp {
                client: None,
                required: true,
            },
            ConsoleRequest::ListOutbox {
                limit: 1,
                page: page(),
            },
            ConsoleRequest::ResetUserTwoFactor {
                user: "u".into(),
                password: "pw".into(),
            },
        ];
        // Exhaustive on purpose (see above): each arm names the variant it samples.
        let covered = |r: &ConsoleRequest| match r {
            ConsoleRequest::Login { .. }
            | ConsoleRequest::Resume { .. }
            | ConsoleRequest::Logout
            | ConsoleRequest::ListClients { .. }
            | ConsoleRequest::AddClient { .. }
            | ConsoleRequest::CreateLink { .. }
            | ConsoleRequest::ListLinks { .. }
            | ConsoleRequest::RevokeLink { .. }
            | ConsoleRequest::ListWorkstations { .. }
            | ConsoleRequest::ListAudit { .. }
            | ConsoleRequest::RequestAccess { .. }
            | ConsoleRequest::WithdrawAccess { .. }
            | ConsoleRequest::Connect { .. }
            | ConsoleRequest::ListSessions { .. }
            | ConsoleRequest::Watch { .. }
            | ConsoleRequest::Unwatch { .. }
            | ConsoleRequest::Ack { .. }
            | ConsoleRequest::Input { .. }
            | ConsoleRequest::ListGroups { .. }
            | ConsoleRequest::SetGroupDefaults { .. }
            | ConsoleRequest::EndSession { .. }
            | ConsoleRequest::TwoFactorStatus
            | ConsoleRequest::TwoFactorEnable
            | ConsoleRequest::TwoFactorConfirm { .. }
            | ConsoleRequest::ListUsers { .. }
            | ConsoleRequest::SetUserTwoFactor { .. }
            | ConsoleRequest::SetGlobalTwoFactor { .. }
            | ConsoleRequest::SearchAudit { .. }
            | ConsoleRequest::GuestLogin { .. }
            | ConsoleRequest::IssueCredentials { .. }
            | ConsoleRequest::ListCredentials { .. }
            | ConsoleRequest::RevokeCredentials { .. }
            | ConsoleRequest::RegenerateCredentials { .. }
            | ConsoleRequest::RequestOtp { .. }
            | ConsoleRequest::ResendOtp { .. }
            | ConsoleRequest::SetWorkstationOtp { .. }
            | ConsoleRequest::SetGroupOtp { .. }
            | ConsoleRequest::ListOutbox { .. }
            | ConsoleRequest::ResetUserTwoFactor { .. }
            | ConsoleRequest::AddUser { .. }
            | ConsoleRequest::SetUserRole { .. }
            | ConsoleRequest::DisableUser { .. }
            | ConsoleRequest::EnableUser { .. }
            | ConsoleRequest::RemoveUser { .. }
            | ConsoleRequest::RedeemEnrolment { .. } => true,
        };
        all.into_iter()
            .filter(covered)
            .find(|r| r.kind() == kind)
            .unwrap_or_else(|| panic!("no sample of {kind}"))
    }

    fn grant(control: bool) -> GuestGrant {
        GuestGrant {
            credential: "sc1".into(),
            team_id: "team-a".into(),
            issued_by_id: "u1".into(),
            target: CredentialTarget::Workstation {
                workstation: "w".into(),
            },
            scopes: CredentialScopes {
                control,
                ..CredentialScopes::default()
            },
        }
    }

    /// The whole table, kept here by hand: one row per request, one column per principal
    /// (technician, team admin, owner, view-only guest, guest with control, unfinished login).
    /// `own` `team` `one` (this team) `all` `hub` `grant` allow; `login` `guest` `admins`
    /// `owner` `view` `2fa` are the refusals (already logged in, not for guests, admins only,
    /// owner only, view-only guest, second factor owed).
    const TABLE: &[(&str, [&str; 6])] = &[
        (
            "login",
            ["login", "login", "login", "login", "login", "login"],
        ),
        (
            "resume",
            ["login", "login", "login", "login", "login", "login"],
        ),
        (
            "guest_login",
            ["login", "login", "login", "login", "login", "login"],
        ),
        (
            "redeem_enrolment",
            ["login", "login", "login", "login", "login", "login"],
        ),
        ("logout", ["own", "own", "own", "own", "own", "own"]),
        (
            "two_factor_status",
            ["own", "own", "own", "guest", "guest", "own"],
        ),
        (
            "two_factor_enable",
            ["own", "own", "own", "guest", "guest", "own"],
        ),
        (
            "two_factor_confirm",
            ["own", "own", "own", "guest", "guest", "own"],
        ),
        (
            "list_clients",
            ["team", "team", "team", "grant", "grant", "2fa"],
        ),
        (
            "list_workstations",
            ["team", "team", "team", "grant", "grant", "2fa"],
        ),
        ("connect", ["team", "team", "team", "grant", "grant", "2fa"]),
        (
            "list_sessions",
            ["team", "team", "team", "grant", "grant", "2fa"],
        ),
        ("watch", ["team", "team", "team", "grant", "grant", "2fa"]),
        (
            "end_session",
            ["team", "team", "team", "grant", "grant", "2fa"],
        ),
        ("unwatch", ["own", "own", "own", "own", "own", "2fa"]),
        ("ack", ["own", "own", "own", "own", "own", "2fa"]),
        ("input", ["own", "own", "own", "view", "grant", "2fa"]),
        (
            "add_client",
            ["team", "team", "team", "guest", "guest", "2fa"],
        ),
        (
            "create_link",
            ["team", "team", "team", "guest", "guest", "2fa"],
        ),
        (
            "list_links",
            ["team", "team", "team", "guest", "guest", "2fa"],
        ),
        (
            "revoke_link",
            ["team", "team", "team", "guest", "guest", "2fa"],
        ),
        (
            "request_access",
            ["team", "team", "team", "guest", "guest", "2fa"],
        ),
        (
            "withdraw_access",
            ["team", "team", "team", "guest", "guest", "2fa"],
        ),
        (
            "list_groups",
            ["team", "team", "team", "guest", "guest", "2fa"],
        ),
        (
            "issue_credentials",
            ["team", "team", "team", "guest", "guest", "2fa"],
        ),
        (
            "list_credentials",
            ["team", "team", "team", "guest", "guest", "2fa"],
        ),
        (
            "revoke_credentials",
            ["team", "team", "team", "guest", "guest", "2fa"],
        ),
        (
            "regenerate_credentials",
            ["team", "team", "team", "guest", "guest", "2fa"],
        ),
        (
            "request_otp",
            ["team", "team", "team", "guest", "guest", "2fa"],
        ),
        (
            "resend_otp",
            ["team", "team", "team", "guest", "guest", "2fa"],
        ),
        (
            "list_outbox",
            ["own", "own", "own", "guest", "guest", "2fa"],
        ),
        (
            "set_group_defaults",
            ["admins", "team", "team", "guest", "guest", "2fa"],
        ),
        (
            "set_workstation_otp",
            ["admins", "team", "team", "guest", "guest", "2fa"],
        ),
        (
            "set_group_otp",
            ["admins", "team", "team", "guest", "guest", "2fa"],
        ),
        (
            "list_users",
            ["admins", "one", "all", "guest", "guest", "2fa"],
        ),
        (
            "set_user_two_factor",
            ["admins", "one", "all", "guest", "guest", "2fa"],
        ),
        (
            "reset_user_two_factor",
            ["admins", "one", "all", "guest", "guest", "2fa"],
        ),
        (
            "add_user",
            ["admins", "one", "all", "guest", "guest", "2fa"],
        ),
        (
            "set_user_role",
            ["admins", "one", "all", "guest", "guest", "2fa"],
        ),
        (
            "disable_user",
            ["admins", "one", "all", "guest", "guest", "2fa"],
        ),
        (
            "enable_user",
            ["admins", "one", "all", "guest", "guest", "2fa"],
        ),
        (
            "remove_user",
            ["admins", "one", "all", "guest", "guest", "2fa"],
        ),
        ("list_audit", ["one", "one", "all", "guest", "guest", "2fa"]),
        (
            "search_audit",
            ["one", "one", "all", "guest", "guest", "2fa"],
        ),
        (
            "set_global_two_factor",
            ["owner", "owner", "hub", "guest", "guest", "2fa"],
        ),
    ];

    /// The table's word for a decision.
    fn word(team: &TeamId, decision: Result<Scope, ProtocolError>) -> &'static str {
        match decision {
            Ok(Scope::Own) => "own",
            Ok(Scope::Team) => "team",
            Ok(Scope::Manage(Teams::One(t))) if &t == team => "one",
            Ok(Scope::Manage(Teams::One(_))) => "another team",
            Ok(Scope::Manage(Teams::All)) => "all",
            Ok(Scope::Hub) => "hub",
            Ok(Scope::Grant) => "grant",
            Err(e) => match e.code {
                ErrorCode::BadRequest => "login",
                ErrorCode::TwoFactorSetupRequired => "2fa",
                ErrorCode::Forbidden if e.message.contains("support credentials allow") => "view",
                ErrorCode::Forbidden if e.message.contains("support credentials") => "guest",
                ErrorCode::Forbidden if e.message.contains("team admin") => "admins",
                ErrorCode::Forbidden if e.message.contains("owner") => "owner",
                _ => "unexpected refusal",
            },
        }
    }

    #[test]
    fn every_request_for_every_principal_matches_the_table() {
        let team: TeamId = "team-a".into();
        let principals = [
            Principal::Technician,
            Principal::TeamAdmin,
            Principal::Owner,
            Principal::Guest(grant(false)),
            Principal::Guest(grant(true)),
            Principal::Unfinished(Owed::Enrolment),
        ];
        let mut rows = 0;
        for (kind, expected) in TABLE {
            let request = sample(kind);
            for (principal, want) in principals.iter().zip(expected) {
                let got = word(&team, authorize(principal, &team, &request));
                assert_eq!(got, *want, "{kind} by {principal:?}");
            }
            rows += 1;
        }
        // Every variant has a row: the samples are exhaustive, so count them against the table.
        let kinds: std::collections::HashSet<&str> = TABLE.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds.len(), rows, "a request has two rows");
        for kind in kinds {
            assert_eq!(sample(kind).kind(), kind);
        }
    }

    #[test]
    fn a_login_owing_its_code_may_only_look_at_its_2fa_or_leave() {
        let team: TeamId = "team-a".into();
        let owed = Principal::Unfinished(Owed::Code);
        for (kind, _) in TABLE {
            let decision = authorize(&owed, &team, &sample(kind));
            match *kind {
                "logout" | "two_factor_status" | "two_factor_enable" | "two_factor_confirm" => {
                    assert_eq!(decision, Ok(Scope::Own), "{kind}");
                }
                "login" | "resume" | "guest_login" | "redeem_enrolment" => {
                    assert!(decision.is_err())
                }
                _ => assert_eq!(
                    decision.map_err(|e| e.code),
                    Err(ErrorCode::TwoFactorRequired),
                    "{kind}"
                ),
            }
        }
    }

    #[test]
    fn roles_become_principals_and_an_owed_enrolment_wins() {
        let user = |role| UserInfo {
            id: "u".into(),
            name: "n".into(),
            email: String::new(),
            role,
            team_id: "t".into(),
            team: "T".into(),
        };
        assert!(matches!(
            Principal::of(&user(Role::Technician), false),
            Principal::Technician
        ));
        assert!(matches!(
            Principal::of(&user(Role::Admin), false),
            Principal::TeamAdmin
        ));
        assert!(matches!(
            Principal::of(&user(Role::Owner), false),
            Principal::Owner
        ));
        assert!(matches!(
            Principal::of(&user(Role::Owner), true),
            Principal::Unfinished(Owed::Enrolment)
        ));
    }
}
