//! The user lifecycle (issue 11): admins add users (the user sets their password with a
//! one-time enrolment code, or the admin sets it), change roles, disable, enable and remove
//! them; and the one way a user's logins end.
//!
//! Rules kept here:
//! - Disabling, removing, resetting 2FA (over the wire or with `tether admin`), reaching the
//!   hard lock (too many failed logins) and changing a role end the user's open connections
//!   within a second, with the reason sent in the close; all but the role change also revoke
//!   their tokens, in the store transaction that makes the change.
//! - The store keeps a revocation log; every hub polls its newest number a few times a second
//!   and closes the connections of the users named since, so a change made by another process
//!   (`tether admin`) or another hub reaches this one.
//! - A disabled or removed user gets the answer a wrong password gets, at the same cost; the
//!   support credentials they issued are revoked (a guest acts on their behalf).
//! - A team admin manages only their team's users: another team's user is "not found".
//! - An admin cannot disable, remove or demote themselves (the last admin cannot lock the team
//!   out; another admin does it).
//! - A removed user's row stays, disabled: their name in the audit log names one person, and
//!   is never given to a new user.

use crate::hub::audit::AuditEvent;
use std::time::Duration;

use tokio::sync::watch;

use super::Hub;
use super::principal::Teams;
use super::store::users::{NewEnrolment, Revocation};
use super::store::{AuditedChange, ChangeOutcome, NewAudit, NewUser, UserRecord};
use super::user_ends::message;
use crate::protocol::{
    ConsoleReply, ConsoleRequest, ErrorCode, PROTOCOL_VERSION, ProtocolError, Role, Secret,
    UserEnrolment, UserInfo,
};
use crate::secrets;

/// How often the hub reads the revocation log: well inside the promised second.
pub const REVOCATION_POLL: Duration = Duration::from_millis(250);

/// How long an enrolment code works.
pub const ENROLMENT_HOURS: i64 = 72;

/// Rows read from the revocation log at a time.
const REVOCATION_BATCH: u32 = 500;

/// Watch the store's revocation log until `stop`: close the connections of every user named
/// in it since the hub started, whoever wrote the entry.
pub(super) async fn watch_revocations(hub: std::sync::Arc<Hub>, mut stop: watch::Receiver<bool>) {
    let mut last = match hub.db(|s| s.last_revocation()).await {
        Ok(seq) => seq,
        Err(e) => {
            tracing::error!(%e, "cannot read the revocation log: logins ended elsewhere reach this hub only at its next start");
            return;
        }
    };
    let mut tick = tokio::time::interval(REVOCATION_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let after = last;
        let rows = match hub
            .db(move |s| s.revocations_after(after, REVOCATION_BATCH))
            .await
        {
            Ok(rows) => rows,
            // Logged by `db`; the next tick tries again.
            Err(_) => continue,
        };
        for row in rows {
            last = last.max(row.seq);
            hub.end_user_connections_at(&row.user, message(row.reason), row.at);
        }
    }
}

/// Whether a (found) account may log in: not disabled, not removed.
pub(super) async fn is_disabled(
    hub: &Hub,
    record: Option<&UserRecord>,
) -> Result<bool, ProtocolError> {
    let Some(rec) = record else { return Ok(false) };
    let id = rec.info.id.clone();
    let status = hub.db(move |s| s.user_status(&id)).await?;
    Ok(status.disabled || status.removed)
}

/// A token resumes only for an enabled account below the hard lock (the tokens of one that is
/// not were revoked with the change; this holds should one have been missed).
pub(super) async fn check_resume(hub: &Hub, user: &UserInfo) -> Result<(), ProtocolError> {
    let (id, name) = (user.id.clone(), user.name.clone());
    let (status, record) = hub
        .db(move |s| Ok((s.user_status(&id)?, s.user_by_name(&name)?)))
        .await?;
    let locked = record.is_none_or(|r| r.failed_logins >= super::MAX_FAILED_LOGINS);
    if status.disabled || status.removed || locked {
        return Err(ProtocolError::new(
            ErrorCode::Expired,
            "the login has expired or was revoked: log in again",
        ));
    }
    Ok(())
}

fn forbidden(message: &str) -> ProtocolError {
    ProtocolError::new(ErrorCode::Forbidden, message)
}

fn entry(
    hub: &Hub,
    admin: &UserInfo,
    action: AuditEvent,
    target: &UserInfo,
    detail: serde_json::Value,
) -> NewAudit {
    entry_at(hub.now(), admin, action, target, detail)
}

/// A record of what `admin` did to `target` at `at`.
fn entry_at(
    at: chrono::DateTime<chrono::Utc>,
    admin: &UserInfo,
    action: AuditEvent,
    target: &UserInfo,
    detail: serde_json::Value,
) -> NewAudit {
    let mut detail = detail;
    if let Some(map) = detail.as_object_mut() {
        map.insert("name".into(), target.name.clone().into());
        map.insert("team".into(), target.team.clone().into());
        map.insert("user_id".into(), target.id.clone().into());
    }
    NewAudit {
        at,
        actor: admin.name.clone(),
        actor_email: Some(admin.email.clone()),
        team_id: Some(target.team_id.clone()),
        action,
        // The name, as the audit view and `ctl audit` show it; the id is in the detail.
        target: Some(target.name.clone()),
        detail,
    }
}

/// A user name as typed: 1 to 64 characters, no spaces or control characters.
fn user_name(name: &str) -> Result<String, ProtocolError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > 64
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ProtocolError::bad_request(
            "a user name has 1 to 64 characters and no spaces",
        ));
    }
    Ok(name.to_owned())
}

/// Roles an admin may give over the wire (an owner is made only with `tether admin`).
fn assignable(role: Role) -> Result<Role, ProtocolError> {
    if role == Role::Admin || role == Role::Technician {
        Ok(role)
    } else {
        Err(forbidden(
            "that role is given only with `tether admin create-user` on the hub",
        ))
    }
}

/// Hash a password off the executor, after checking its length and strength.
async fn hash_new_password(password: &Secret) -> Result<String, ProtocolError> {
    if let Some(problem) = secrets::password_problem(password.expose()) {
        return Err(ProtocolError::bad_request(problem));
    }
    let password = password.expose().to_owned();
    // In the bounded argon2 pool, as every other hash: a burst of adds or redeems cannot
    // start one 19 MiB hash per request.
    secrets::work::bounded(move || secrets::hash_password(&password))
        .await
        .map_err(super::preauth::work_error)?
        .map_err(|_| ProtocolError::internal())
}

/// The user `target` of the managed teams, by name or id; another team's is not found.
async fn team_user(
    hub: &Hub,
    admin: &UserInfo,
    teams: &Teams,
    target: &str,
) -> Result<UserInfo, ProtocolError> {
    if !matches!(admin.role, Role::Admin | Role::Owner) {
        return Err(forbidden("only admins manage users"));
    }
    let (team, target) = (teams.only().cloned(), target.to_owned());
    let found = hub
        .db(move |s| s.team_user(team.as_ref(), &target))
        .await?
        .ok_or_else(|| ProtocolError::not_found("user"))?;
    if found.role == Role::Owner && admin.role != Role::Owner {
        return Err(forbidden(
            "only the hub's owner manages the owner's account",
        ));
    }
    Ok(found)
}

fn not_yourself(admin: &UserInfo, target: &UserInfo, what: &str) -> Result<(), ProtocolError> {
    if admin.id == target.id {
        return Err(ProtocolError::new(
            ErrorCode::Conflict,
            format!("you cannot {what} yourself: ask another admin"),
        ));
    }
    Ok(())
}

/// The users requests of a logged-in admin, over the users of `teams` (the gate's scope: a team
/// admin's own team, every team for the owner). New users join the admin's own team.
pub(super) async fn handle(
    hub: &Hub,
    admin: &UserInfo,
    teams: &Teams,
    request: ConsoleRequest,
) -> Result<ConsoleReply, ProtocolError> {
    match request {
        ConsoleRequest::AddUser {
            name,
            role,
            email,
            password,
        } => add(hub, admin, &name, role, email, password).await,
        ConsoleRequest::SetUserRole { user, role } => {
            let role = assignable(role)?;
            let target = team_user(hub, admin, teams, &user).await?;
            not_yourself(admin, &target, "change the role of")?;
            if target.role == role {
                return Ok(ConsoleReply::Done);
            }
            let detail =
                serde_json::json!({ "before": target.role.as_str(), "after": role.as_str() });
            let record = entry(hub, admin, AuditEvent::UserRole, &target, detail);
            let change = AuditedChange::SetUserRole {
                user: target.id.clone(),
                role,
            };
            hub.commit(change, move |_| vec![record.clone()]).await?;
            hub.end_user_connections(&target.id, message(Some(Revocation::RoleChanged)));
            Ok(ConsoleReply::Done)
        }
        ConsoleRequest::DisableUser { user } => {
            let target = team_user(hub, admin, teams, &user).await?;
            not_yourself(admin, &target, "disable")?;
            // Disabled with its record in one commit; the credentials the user issued are
            // revoked after, each with its own record (so this one does not count them).
            let record = entry(
                hub,
                admin,
                AuditEvent::UserDisable,
                &target,
                serde_json::json!({}),
            );
            let change = AuditedChange::SetUserDisabled {
                user: target.id.clone(),
                disabled: true,
            };
            hub.commit(change, move |o| vec![record.with_logins_revoked(o)])
                .await?;
            hub.end_user_connections(&target.id, message(Some(Revocation::Disabled)));
            super::credentials::revoke_issued_by(hub, admin, &target.id, "issuer disabled").await?;
            Ok(ConsoleReply::Done)
        }
        ConsoleRequest::EnableUser { user } => {
            let target = team_user(hub, admin, teams, &user).await?;
            let record = entry(
                hub,
                admin,
                AuditEvent::UserEnable,
                &target,
                serde_json::json!({}),
            );
            let change = AuditedChange::SetUserDisabled {
                user: target.id.clone(),
                disabled: false,
            };
            hub.commit(change, move |_| vec![record.clone()]).await?;
            Ok(ConsoleReply::Done)
        }
        ConsoleRequest::RemoveUser { user } => {
            let target = team_user(hub, admin, teams, &user).await?;
            not_yourself(admin, &target, "remove")?;
            let detail = serde_json::json!({ "email": target.email });
            let record = entry(hub, admin, AuditEvent::UserRemove, &target, detail);
            let change = AuditedChange::RemoveUser {
                user: target.id.clone(),
            };
            hub.commit(change, move |o| vec![record.with_logins_revoked(o)])
                .await?;
            hub.end_user_connections(&target.id, message(Some(Revocation::Removed)));
            super::credentials::revoke_issued_by(hub, admin, &target.id, "issuer removed").await?;
            Ok(ConsoleReply::Done)
        }
        _ => Err(ProtocolError::bad_request("not a users request")),
    }
}

async fn add(
    hub: &Hub,
    admin: &UserInfo,
    name: &str,
    role: Role,
    email: Option<String>,
    password: Option<Secret>,
) -> Result<ConsoleReply, ProtocolError> {
    if !matches!(admin.role, Role::Admin | Role::Owner) {
        return Err(forbidden("only admins add users"));
    }
    let role = assignable(role)?;
    let name = user_name(name)?;
    let email = email.map(|e| e.trim().to_owned()).unwrap_or_default();
    if !email.is_empty()
        && (!email.contains('@') || email.len() > 254 || email.chars().any(char::is_control))
    {
        return Err(ProtocolError::bad_request(format!(
            "{email:?} is not an e-mail address"
        )));
    }
    let now = hub.now();
    let (password_hash, enrolment) = match password {
        Some(p) => (hash_new_password(&p).await?, None),
        None => {
            // Until the code is redeemed the account's password is a random one nobody knows:
            // a login then costs the same as for any other account.
            let unknown = Secret::new(secrets::new_token().map_err(|_| ProtocolError::internal())?);
            let code = secrets::new_token().map_err(|_| ProtocolError::internal())?;
            let expires_at = now + chrono::Duration::hours(ENROLMENT_HOURS);
            let stored = NewEnrolment {
                code_hash: secrets::hash_token(&code),
                expires_at,
            };
            let shown = UserEnrolment {
                code: code.into(),
                expires_at,
            };
            (hash_new_password(&unknown).await?, Some((stored, shown)))
        }
    };
    let (stored, shown) = enrolment.unzip();
    let new = NewUser {
        name: name.clone(),
        email,
        role,
        team: admin.team.clone(),
        password_hash,
    };
    let change = AuditedChange::AddUser {
        new: Box::new(new),
        team: admin.team_id.clone(),
        enrolment: stored,
    };
    let password = if shown.is_some() {
        "enrolment code"
    } else {
        "set by the admin"
    };
    let (by, at) = (admin.clone(), hub.now());
    // The user and their record in one commit.
    let record = move |outcome: &ChangeOutcome| {
        let ChangeOutcome::User(user) = outcome else {
            return Vec::new();
        };
        let detail = serde_json::json!({
            "email": user.email,
            "role": user.role.as_str(),
            "password": password,
        });
        vec![entry_at(at, &by, AuditEvent::UserAdd, user, detail)]
    };
    let taken = name.clone();
    let outcome = hub.commit(change, record).await.map_err(|e| match e.code {
        // Also a removed user's: names are never reused.
        ErrorCode::Conflict => ProtocolError::new(
            ErrorCode::Conflict,
            format!("the name {taken:?} is taken (perhaps by a removed user): choose another"),
        ),
        _ => e,
    })?;
    let ChangeOutcome::User(user) = outcome else {
        return Err(ProtocolError::internal());
    };
    Ok(ConsoleReply::UserAdded {
        user: *user,
        enrolment: shown,
    })
}

/// Before login: a new user sets their password with their enrolment code. Every failure gets
/// the same answer (the code is 256 random bits: it cannot be guessed, only stolen).
pub(super) async fn redeem(
    hub: &Hub,
    request: ConsoleRequest,
    from: &str,
) -> Result<ConsoleReply, ProtocolError> {
    let ConsoleRequest::RedeemEnrolment {
        version,
        user,
        code,
        password,
    } = request
    else {
        return Err(ProtocolError::bad_request("not an enrolment"));
    };
    if version != PROTOCOL_VERSION {
        return Err(super::socket::version_mismatch(version));
    }
    // Lengths first: nothing oversized is hashed or looked up.
    if user.len() > 64 || code.expose().len() > 64 {
        return Err(invalid_code());
    }
    let code_hash = secrets::hash_token(code.expose());
    let now = hub.now();
    // Only a valid code costs a password hash: before login, nobody makes the hub hash at will.
    let (name, hash) = (user.clone(), code_hash.clone());
    if !hub
        .db(move |s| s.enrolment_pending(&name, &hash, now))
        .await?
    {
        tracing::debug!(from, "an enrolment code was refused");
        return Err(invalid_code());
    }
    let password_hash = hash_new_password(&password).await?;
    let change = AuditedChange::RedeemEnrolment {
        name: user,
        code_hash,
        now,
        password_hash,
    };
    // The new password and its record in one commit.
    let detail = serde_json::json!({ "from": from });
    let record = move |outcome: &ChangeOutcome| {
        let ChangeOutcome::User(info) = outcome else {
            return Vec::new();
        };
        vec![NewAudit {
            at: now,
            actor: info.name.clone(),
            actor_email: Some(info.email.clone()),
            team_id: Some(info.team_id.clone()),
            action: AuditEvent::UserEnrol,
            target: Some(info.name.clone()),
            detail: {
                let mut detail = detail.clone();
                detail["user_id"] = info.id.clone().into();
                detail
            },
        }]
    };
    if !hub.commit(change, record).await?.changed() {
        tracing::debug!(from, "an enrolment code was refused");
        return Err(invalid_code());
    }
    Ok(ConsoleReply::Done)
}

fn invalid_code() -> ProtocolError {
    ProtocolError::new(
        ErrorCode::InvalidCredentials,
        "this enrolment code is not valid for that user, was already used or has expired: ask your admin for a new one",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_checked() {
        assert_eq!(user_name(" bob ").ok().as_deref(), Some("bob"));
        assert!(user_name("").is_err());
        assert!(user_name("a b").is_err());
        assert!(user_name(&"x".repeat(65)).is_err());
    }
}
