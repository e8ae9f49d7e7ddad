//! Technician 2FA on the hub (DOMAIN.md, "Technician two-factor authentication"): the code at
//! login, enrolment, the admins' settings, and the session-start rule.
//!
//! Rules kept here:
//! - A code is valid for the current 30 s step or the previous one, by the hub's clock only.
//! - The last accepted step is stored per user and only a newer one is accepted, in one
//!   conditional UPDATE: a code is never accepted twice, not by two parallel logins and not
//!   after a restart.
//! - A wrong or replayed code counts as a failed login (the same growing delays and the same
//!   100-in-a-row lock as wrong passwords), so 10^6 codes cannot be tried.
//! - Required (globally or for the user) but not active: the password alone is an unfinished
//!   login (hub/dispatch.rs): it may only enrol in 2FA or log out until 2FA is active.
//! - Admin changes ask for the admin's password again; every change is audited. Who may make
//!   them, and over which teams, the gate decides (hub/dispatch.rs): services get the scope.

use super::Hub;
use super::principal::Teams;
use super::store::users::Revocation;
use super::store::{AuditedChange, ChangeOutcome, NewAudit, UserRecord};
use crate::hub::audit::AuditEvent;
use crate::protocol::{
    ConsoleReply, ErrorCode, ProtocolError, Role, Secret, TwoFactorState, TwoFactorStatus,
    UserInfo, UserTwoFactor,
};
use crate::secrets::seal::Purpose;
use crate::secrets::{self, totp};

/// The hub setting that requires 2FA for everyone ("on" / "off").
pub const GLOBAL_SETTING: &str = "require_2fa";

/// `record` with how many login tokens the change revoked.
fn with_revoked(record: &NewAudit, outcome: &ChangeOutcome) -> NewAudit {
    record.with_logins_revoked(outcome)
}

fn unix(hub: &Hub) -> u64 {
    u64::try_from(hub.now().timestamp()).unwrap_or(0)
}

/// A user's sealed TOTP secret (pending or active), opened with the hub's key.
fn open_totp(hub: &Hub, user_id: &str, sealed: &str) -> Option<totp::TotpSecret> {
    hub.seal_key
        .open(Purpose::Totp(user_id), sealed)
        .map(totp::TotpSecret::from_bytes)
}

fn forbidden(message: &str) -> ProtocolError {
    ProtocolError::new(ErrorCode::Forbidden, message)
}

async fn global_required(hub: &Hub) -> Result<bool, ProtocolError> {
    let value = hub.db(|s| s.setting(GLOBAL_SETTING)).await?;
    Ok(value.as_deref() == Some("on"))
}

/// The technician's own 2FA status.
async fn status(hub: &Hub, user: &UserInfo) -> Result<TwoFactorStatus, ProtocolError> {
    let global = global_required(hub).await?;
    let id = user.id.clone();
    let rec = hub.db(move |s| s.two_factor(&id)).await?;
    let required = global || rec.required;
    Ok(TwoFactorStatus {
        state: TwoFactorState::of(rec.secret.is_some(), required),
        required,
        global,
        enrolling: rec.pending.is_some() && rec.secret.is_none(),
    })
}

/// At login, after the password matched: where 2FA is active, the code must be present, valid
/// and of a step newer than the last accepted. Returns whether a code was checked.
pub(super) async fn check_login(
    hub: &Hub,
    rec: &UserRecord,
    code: Option<&Secret>,
    from: &str,
) -> Result<bool, ProtocolError> {
    let id = rec.info.id.clone();
    let tf = hub.db(move |s| s.two_factor(&id)).await?;
    let Some(sealed) = tf.secret else {
        return Ok(false);
    };
    let Some(code) = code else {
        // The password was right: still a login that did not happen, and audited as such
        // (a guessed password must not be checkable without a trace).
        let detail = serde_json::json!({ "from": from, "reason": "2fa code missing" });
        hub.audit(hub.user_record(&rec.info, AuditEvent::LoginFail, None, detail))
            .await?;
        return Err(ProtocolError::new(
            ErrorCode::TwoFactorRequired,
            "enter the 6-digit code from your authenticator app",
        ));
    };
    let Some(secret) = open_totp(hub, &rec.info.id, &sealed) else {
        tracing::error!(user = %rec.info.name, "a stored TOTP secret does not open with this hub's seal.key");
        return Err(ProtocolError::internal());
    };
    let (reason, accepted) = match totp::matching_step(&secret, code.expose(), unix(hub)) {
        None => ("wrong 2fa code", false),
        Some(step) => {
            let (id, step) = (rec.info.id.clone(), i64::try_from(step).unwrap_or(i64::MAX));
            if hub.db(move |s| s.accept_totp_step(&id, step)).await? {
                ("", true)
            } else {
                ("2fa code already used", false)
            }
        }
    };
    if accepted {
        return Ok(true);
    }
    let now = hub.now();
    let change = AuditedChange::LoginFailed {
        user: rec.info.id.clone(),
        locked_until: super::lockout_delay(rec.failed_logins + 1).map(|d| now + d),
        // A wrong code is the second factor's failure, not the password's: the device stays.
        trusted_device: None,
    };
    let detail = serde_json::json!({ "from": from, "reason": reason });
    let record = hub.user_record(&rec.info, AuditEvent::LoginFail, None, detail);
    // The count and its record in one commit.
    hub.db(move |s| {
        s.commit_audited(change, &|outcome| {
            let mut record = record.clone();
            if let ChangeOutcome::Count(failures) = outcome {
                record.detail["failures"] = (*failures).into();
            }
            vec![record]
        })
    })
    .await?;
    Err(ProtocolError::new(
        ErrorCode::TwoFactorRequired,
        "the 2FA code is wrong or was already used: enter the code your app shows now",
    ))
}

/// Before any session starts: refused while 2FA is required for the technician but not active.
pub(super) async fn check_session_start(
    hub: &Hub,
    user: &UserInfo,
    workstation: &str,
) -> Result<(), ProtocolError> {
    let st = status(hub, user).await?;
    if st.state != TwoFactorState::Pending {
        return Ok(());
    }
    let detail =
        serde_json::json!({ "reason": "2fa required but not active", "workstation": workstation });
    hub.audit(hub.user_record(user, AuditEvent::ConnectRefused, None, detail))
        .await?;
    Err(ProtocolError::new(
        ErrorCode::TwoFactorSetupRequired,
        "two-factor authentication is required for you: activate it (user menu, Enable 2FA) before starting a session",
    ))
}

/// At session start, for a connection that logged in without a code (or resumed a token made
/// before): where 2FA has become active since, the session is refused until the user logs in
/// again with a code. (Tokens made without a code are revoked when 2FA becomes active; this
/// covers connections that were already up then.)
pub(super) async fn check_connection(
    hub: &Hub,
    user: &UserInfo,
    second_factor: bool,
) -> Result<(), ProtocolError> {
    if second_factor || status(hub, user).await?.state != TwoFactorState::Active {
        return Ok(());
    }
    Err(ProtocolError::new(
        ErrorCode::TwoFactorRequired,
        "your 2FA became active after this login: log in again with your code",
    ))
}

/// Whether the user owes 2FA enrolment: required for them (or for everyone) but not active.
pub(super) async fn enrolment_owed(hub: &Hub, user: &UserInfo) -> Result<bool, ProtocolError> {
    Ok(status(hub, user).await?.state == TwoFactorState::Pending)
}

/// Whether the user's 2FA is active now (a resumed token then was made with a code: those made
/// without one were revoked when it became active).
pub(super) async fn is_active(hub: &Hub, user: &UserInfo) -> Result<bool, ProtocolError> {
    Ok(status(hub, user).await?.state == TwoFactorState::Active)
}

/// Check the admin's own password again (admin 2FA changes).
async fn reauthenticate(
    hub: &Hub,
    admin: &UserInfo,
    password: &Secret,
    what: &str,
) -> Result<(), ProtocolError> {
    // The same turn, lock-out and failure count as a login: an open admin console is no
    // place to guess the admin's password.
    let _turn = hub.login_gate.enter(&admin.name).await;
    let name = admin.name.clone();
    let rec = hub
        .db(move |s| s.user_by_name(&name))
        .await?
        .ok_or_else(ProtocolError::internal)?;
    let now = hub.now();
    if rec.failed_logins >= super::MAX_FAILED_LOGINS || rec.locked_until.is_some_and(|t| t > now) {
        let mut err = ProtocolError::new(
            ErrorCode::RateLimited,
            "too many wrong passwords: try again later",
        );
        err.retry_after_secs = rec
            .locked_until
            .filter(|t| *t > now)
            .map(|t| super::preauth::wait_secs(t, now));
        return Err(err);
    }
    let password = password.expose().to_owned();
    let hash = rec.password_hash.clone();
    let ok = secrets::work::bounded(move || secrets::verify_password(&password, &hash))
        .await
        .map_err(super::preauth::work_error)?;
    if ok {
        return Ok(());
    }
    let id = rec.info.id.clone();
    let until = super::lockout_delay(rec.failed_logins + 1).map(|d| now + d);
    let failures = hub.db(move |s| s.record_login_failure(&id, until)).await?;
    let detail =
        serde_json::json!({ "reason": "wrong password", "change": what, "failures": failures });
    hub.audit(hub.user_record(admin, AuditEvent::TwoFactorReauthFail, None, detail))
        .await?;
    Err(ProtocolError::new(
        ErrorCode::InvalidCredentials,
        "your password is wrong: 2FA changes need your own password",
    ))
}

/// An admin resets another user's 2FA (a lost or replaced phone): the secret and any
/// enrolment go, so the user is off again, or pending where 2FA is required (they enrol anew
/// at their next login); every login token of theirs is revoked. Audited as `2fa.reset`.
pub(super) async fn reset_user(
    hub: &Hub,
    admin: &UserInfo,
    teams: &Teams,
    target: &str,
    password: &Secret,
) -> Result<ConsoleReply, ProtocolError> {
    reauthenticate(hub, admin, password, "reset").await?;
    let (info, rec) = managed_user(hub, teams, target).await?;
    if info.id == admin.id {
        return Err(ProtocolError::new(
            ErrorCode::Conflict,
            "you cannot reset your own 2FA: ask another admin (this keeps a stolen admin login from removing it)",
        ));
    }
    let global = global_required(hub).await?;
    let before = TwoFactorState::of(rec.secret.is_some(), global || rec.required);
    // The user's login turn: a login with the old code cannot slip a token in between.
    let _turn = hub.login_gate.enter(&info.name).await;
    let after = TwoFactorState::of(false, global || rec.required);
    let detail = serde_json::json!({
        "user": info.name,
        "email": info.email,
        "team": info.team,
        "was_active": rec.secret.is_some(),
        "before": before.label(),
        "after": after.label(),
    });
    // 2FA off, the user's logins revoked (in the revocation log) and the record: one commit.
    let record = hub.user_record(
        admin,
        AuditEvent::TwoFactorReset,
        Some(info.name.clone()),
        detail,
    );
    let change = AuditedChange::ResetTwoFactor {
        user: info.id.clone(),
    };
    hub.db(move |s| s.commit_audited(change, &|o| vec![with_revoked(&record, o)]))
        .await?;
    // Logins ended: so do the connections made with them.
    hub.end_user_connections(
        &info.id,
        super::user_ends::message(Some(Revocation::TwoFactorReset)),
    );
    Ok(ConsoleReply::Done)
}

/// A user the manager may manage: in one of `teams` (any other is "not found", the same answer
/// as a missing one), and an owner's account only for an owner.
async fn managed_user(
    hub: &Hub,
    teams: &Teams,
    target: &str,
) -> Result<(UserInfo, crate::hub::store::TwoFactorRecord), ProtocolError> {
    let rows = hub.db(|s| s.users_two_factor()).await?;
    let (info, rec) = rows
        .into_iter()
        .find(|(u, _)| (u.name == target || u.id == target) && teams.covers(&u.team_id))
        .ok_or_else(|| ProtocolError::not_found("user"))?;
    if info.role == Role::Owner && *teams != Teams::All {
        return Err(forbidden(
            "only the hub's owner manages the owner's account",
        ));
    }
    Ok((info, rec))
}

/// The technician's own 2FA status.
pub(super) async fn status_reply(
    hub: &Hub,
    user: &UserInfo,
) -> Result<ConsoleReply, ProtocolError> {
    Ok(ConsoleReply::TwoFactor {
        status: status(hub, user).await?,
    })
}

/// Start (or restart) enrolment: a new TOTP secret, shown once.
pub(super) async fn enable(hub: &Hub, user: &UserInfo) -> Result<ConsoleReply, ProtocolError> {
    let id = user.id.clone();
    let rec = hub.db(move |s| s.two_factor(&id)).await?;
    if rec.secret.is_some() {
        return Err(ProtocolError::new(
            ErrorCode::Conflict,
            "2FA is already active for you",
        ));
    }
    let secret = totp::TotpSecret::generate().map_err(|_| ProtocolError::internal())?;
    let uri = secret
        .otpauth_uri(&user.name)
        .map_err(|_| ProtocolError::internal())?;
    let base32 = secret.base32().map_err(|_| ProtocolError::internal())?;
    let sealed = hub
        .seal_key
        .seal(Purpose::Totp(&user.id), secret.as_bytes())
        .map_err(|_| ProtocolError::internal())?;
    let record = hub.user_record(
        user,
        AuditEvent::TwoFactorEnable,
        Some(user.name.clone()),
        serde_json::json!({}),
    );
    let change = AuditedChange::StartTwoFactor {
        user: user.id.clone(),
        sealed,
    };
    hub.db(move |s| s.commit_audited(change, &|_| vec![record.clone()]))
        .await?;
    Ok(ConsoleReply::TwoFactorEnrolment {
        uri: uri.into(),
        secret: base32.into(),
    })
}

/// Confirm enrolment with one valid code (spent by it): 2FA is active from then on.
pub(super) async fn confirm(
    hub: &Hub,
    user: &UserInfo,
    code: Secret,
) -> Result<ConsoleReply, ProtocolError> {
    // The user's login turn: a password-only login cannot slip its token in between
    // the activation and the revocation of the logins made without a code.
    let _turn = hub.login_gate.enter(&user.name).await;
    let id = user.id.clone();
    let rec = hub.db(move |s| s.two_factor(&id)).await?;
    if rec.secret.is_some() {
        return Err(ProtocolError::new(
            ErrorCode::Conflict,
            "2FA is already active for you",
        ));
    }
    let Some(sealed) = rec.pending else {
        return Err(ProtocolError::bad_request(
            "no 2FA enrolment is waiting: enable 2FA first",
        ));
    };
    let secret = open_totp(hub, &user.id, &sealed).ok_or_else(ProtocolError::internal)?;
    let step = totp::matching_step(&secret, code.expose(), unix(hub));
    // Activation, the end of logins made without a code and `2fa.confirm`: one commit.
    let record = hub.user_record(
        user,
        AuditEvent::TwoFactorConfirm,
        Some(user.name.clone()),
        serde_json::json!({}),
    );
    let activated = match step {
        Some(step) => {
            let change = AuditedChange::ActivateTwoFactor {
                user: user.id.clone(),
                sealed,
                step: i64::try_from(step).unwrap_or(i64::MAX),
            };
            hub.db(move |s| s.commit_audited(change, &|o| vec![with_revoked(&record, o)]))
                .await?
                .changed()
        }
        None => false,
    };
    if !activated {
        hub.audit(hub.user_record(
            user,
            AuditEvent::TwoFactorConfirmFail,
            Some(user.name.clone()),
            serde_json::json!({ "reason": "wrong code" }),
        ))
        .await?;
        return Err(ProtocolError::new(
            ErrorCode::InvalidCredentials,
            "that code is not valid: type the code your app shows now (and check the phone's clock)",
        ));
    }
    // Logins made without a code ended with the activation: the next one needs a code.
    Ok(ConsoleReply::TwoFactor {
        status: status(hub, user).await?,
    })
}

/// The users of the managed teams, with their 2FA state.
pub(super) async fn list_users(
    hub: &Hub,
    teams: &Teams,
    page: crate::protocol::PageRequest,
) -> Result<ConsoleReply, ProtocolError> {
    let global = global_required(hub).await?;
    let rows = hub.db(|s| s.users_two_factor()).await?;
    let users = rows
        .into_iter()
        .filter(|(info, _)| teams.covers(&info.team_id))
        .map(|(info, rec)| UserTwoFactor {
            state: TwoFactorState::of(rec.secret.is_some(), global || rec.required),
            required: rec.required,
            disabled: rec.disabled,
            id: info.id,
            name: info.name,
            email: info.email,
            role: info.role,
            team_id: info.team_id,
            team: info.team,
        })
        .collect::<Vec<_>>();
    let total = users.len() as u64;
    let page =
        super::pager::page_in_memory("users", users, &page, |u| (u.name.clone(), u.id.clone()))?;
    Ok(ConsoleReply::Users {
        users: page.rows,
        global,
        next: page.next,
        total: Some(total),
    })
}

/// Require 2FA for one user of the managed teams, or not.
pub(super) async fn set_user(
    hub: &Hub,
    user: &UserInfo,
    teams: &Teams,
    target: String,
    required: bool,
    password: Secret,
) -> Result<ConsoleReply, ProtocolError> {
    if global_required(hub).await? {
        return Err(ProtocolError::new(
            ErrorCode::Conflict,
            "2FA is required for everyone: per-user settings are unavailable while the global setting is on",
        ));
    }
    let what = if required { "require" } else { "unrequire" };
    reauthenticate(hub, user, &password, what).await?;
    let (info, _) = managed_user(hub, teams, &target).await?;
    let detail = serde_json::json!({ "user": info.name, "email": info.email, "team": info.team });
    let record = hub.user_record(
        user,
        if required {
            AuditEvent::TwoFactorRequire
        } else {
            AuditEvent::TwoFactorUnrequire
        },
        Some(info.name.clone()),
        detail,
    );
    let change = AuditedChange::SetTwoFactorRequired {
        user: info.id.clone(),
        required,
    };
    hub.db(move |s| s.commit_audited(change, &|_| vec![record.clone()]))
        .await?;
    Ok(ConsoleReply::Done)
}

/// Require 2FA for everyone, or not (the gate lets only the owner ask).
pub(super) async fn set_global(
    hub: &Hub,
    user: &UserInfo,
    required: bool,
    password: Secret,
) -> Result<ConsoleReply, ProtocolError> {
    let what = if required { "global on" } else { "global off" };
    reauthenticate(hub, user, &password, what).await?;
    let value = if required { "on" } else { "off" };
    let record = hub.user_record(
        user,
        AuditEvent::TwoFactorGlobal,
        None,
        serde_json::json!({ "required": required }),
    );
    let change = AuditedChange::SetSetting {
        key: GLOBAL_SETTING.into(),
        value: value.into(),
    };
    hub.db(move |s| s.commit_audited(change, &|_| vec![record.clone()]))
        .await?;
    Ok(ConsoleReply::Done)
}

/// The audit records of the managed teams, filtered, newest first.
pub(super) async fn search_audit(
    hub: &Hub,
    teams: &Teams,
    query: crate::protocol::AuditQuery,
    limit: u32,
    before: Option<i64>,
    page: crate::protocol::PageRequest,
) -> Result<ConsoleReply, ProtocolError> {
    // Newest first by id: the cursor is the last id sent, and the page starts below it.
    let after: Option<i64> = super::pager::start("audit", &page)?;
    let before = match (before, after) {
        (Some(b), Some(a)) => Some(b.min(a)),
        (b, a) => b.or(a),
    };
    let limit = page.limit.map_or(limit, |l| l.min(limit.max(1)));
    let limit = limit.clamp(1, super::pager::MAX_PAGE_ROWS);
    let scope = teams.only().cloned();
    let records = hub
        .db(move |s| s.search_audit(scope.as_ref(), &query, limit + 1, before))
        .await?;
    let page =
        super::pager::paginate("audit", records, limit, super::pager::PAGE_BUDGET, |r| r.id)?;
    Ok(ConsoleReply::Audit {
        records: page.rows,
        next: page.next,
        total: None,
    })
}
