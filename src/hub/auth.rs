//! Who is on a console connection: logins (password, and the 2FA code where it is active),
//! resumed logins, guests' logins (hub/credentials.rs), and logging out. A login's result is a
//! [`Session`] with its [`Principal`]: a password alone where 2FA is owed is an unfinished one.

use crate::hub::audit::AuditEvent;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::credentials;
use super::principal::Principal;
use super::store::{AuditedChange, ChangeOutcome, NewAudit};
use super::{Hub, socket::version_mismatch};
use crate::protocol::{
    ConsoleReply, ConsoleRequest, ErrorCode, PROTOCOL_VERSION, ProtocolError, UserInfo,
};
use crate::secrets;

/// An authenticated technician (or guest) on this connection.
#[derive(Clone)]
pub(super) struct Session {
    pub user: UserInfo,
    pub token_hash: String,
    /// Who this is for the gate: every request is authorized against it.
    pub principal: Principal,
    /// This login proved a second factor (a TOTP code, or a guest's security code).
    pub second_factor: bool,
}

/// One request before authentication: a login, a resumed login or a guest's login makes the
/// connection's session; anything else is refused until then.
pub(super) async fn authenticate(
    hub: &Hub,
    request: ConsoleRequest,
    peer: SocketAddr,
) -> Result<(ConsoleReply, Session), ProtocolError> {
    match request {
        ConsoleRequest::Login { version, .. } | ConsoleRequest::Resume { version, .. }
            if version != PROTOCOL_VERSION =>
        {
            Err(version_mismatch(version))
        }
        ConsoleRequest::GuestLogin { version, .. } if version != PROTOCOL_VERSION => {
            Err(version_mismatch(version))
        }
        ConsoleRequest::GuestLogin {
            user,
            password,
            code,
            ..
        } => credentials::guest_login(
            hub,
            &user,
            password.expose().to_owned(),
            code.expose().to_owned(),
            peer,
        )
        .await
        .map(|g| {
            (
                g.reply,
                Session {
                    user: g.user,
                    token_hash: g.token_hash,
                    principal: Principal::Guest(g.grant),
                    second_factor: true,
                },
            )
        }),
        ConsoleRequest::Login {
            user,
            password,
            code,
            device,
            ..
        } => {
            let attempt = LoginAttempt {
                password: password.expose().to_owned(),
                code,
                device,
            };
            login(hub, &user, attempt, peer).await
        }
        ConsoleRequest::Resume { token, .. } => resume(hub, token.expose(), peer).await,
        // Not a login: nothing else is served before one.
        _ => Err(ProtocolError::new(
            ErrorCode::Unauthenticated,
            "log in first",
        )),
    }
}

/// Log out: the connection's login token goes (a guest's: theirs; the credentials stay).
pub(super) async fn logout(hub: &Hub, session: &Session) -> Result<ConsoleReply, ProtocolError> {
    if let Principal::Guest(grant) = &session.principal {
        return credentials::guest_logout(hub, grant, &session.user, &session.token_hash).await;
    }
    let change = AuditedChange::LoggedOut {
        token_hash: session.token_hash.clone(),
    };
    let record = hub.user_record(
        &session.user,
        AuditEvent::Logout,
        None,
        serde_json::json!({}),
    );
    hub.commit(change, move |_| vec![record.clone()]).await?;
    Ok(ConsoleReply::Done)
}

/// A failed login that names nobody (an unknown name or token, an over-long field).
fn failed_unknown(now: chrono::DateTime<chrono::Utc>, peer: SocketAddr, reason: &str) -> NewAudit {
    NewAudit {
        at: now,
        actor: "unknown".into(),
        actor_email: None,
        team_id: None,
        action: AuditEvent::LoginFail,
        target: None,
        detail: serde_json::json!({ "from": peer.ip().to_string(), "reason": reason }),
    }
}

/// What a login presents besides the name.
struct LoginAttempt {
    password: String,
    code: Option<crate::protocol::Secret>,
    /// The console's device token for this name (see [`trusted_device`]).
    device: Option<crate::protocol::Secret>,
}

/// How long a device stays trusted after its last login.
const DEVICE_TRUST_DAYS: i64 = 90;

/// Wrong passwords in a row after which a device is no longer trusted: a stolen device token
/// buys this many guesses beyond the name's own lock-out, no more.
const DEVICE_MAX_FAILURES: u32 = 5;

/// The SHA-256 of `device` when it is trusted for the user named `name`, compared in constant
/// time with each of that user's devices. The same query runs for names nobody holds.
async fn trusted_device(
    hub: &Hub,
    name: &str,
    device: Option<&crate::protocol::Secret>,
) -> Result<Option<String>, ProtocolError> {
    let Some(device) = device else {
        return Ok(None);
    };
    let presented = secrets::hash_token(device.expose());
    let (lookup, now) = (name.to_owned(), hub.now());
    let devices = hub.db(move |s| s.trusted_devices(&lookup, now)).await?;
    // Every one compared, so the time does not tell which matched.
    let trusted = devices.iter().fold(false, |found, d| {
        secrets::constant_time_eq(d.as_bytes(), presented.as_bytes()) | found
    });
    Ok(trusted.then_some(presented))
}

async fn login(
    hub: &Hub,
    name: &str,
    attempt: LoginAttempt,
    peer: SocketAddr,
) -> Result<(ConsoleReply, Session), ProtocolError> {
    use super::preauth::{Field, NameFailures, locked_answer};
    let LoginAttempt {
        password,
        code,
        device,
    } = attempt;
    let now = hub.now();
    let from = peer.ip().to_string();
    let unknown = |reason: &str| failed_unknown(now, peer, reason);
    // Before any lookup or hashing, with the answer a wrong password gets.
    let too_long = !Field::UserName.fits(name)
        || !Field::Password.fits(&password)
        || code.as_ref().is_some_and(|c| !Field::Code.fits(c.expose()))
        || device
            .as_ref()
            .is_some_and(|d| !Field::Token.fits(d.expose()));
    if too_long {
        hub.preauth_failed(peer, unknown("a field over its maximum"))
            .await?;
        return Err(ProtocolError::invalid_credentials());
    }
    // A trusted device's attempts take turns per device, not per name: a flood on the name
    // cannot hold it back, and its own guesses still take turns with its failure count.
    let trusted = trusted_device(hub, name, device.as_ref()).await?;
    let gate_key = match &trusted {
        // No user name is this long: the keys cannot meet.
        Some(hash) => format!("trusted device {hash}"),
        None => name.to_owned(),
    };
    // When no queue has room for a check, a login without a trusted device is answered "busy"
    // before any store work, so a flood answered "busy" costs no lookup.
    let room = |p| secrets::work::has_room(p);
    if trusted.is_none()
        && !room(secrets::work::Precedence::First)
        && !room(secrets::work::Precedence::Normal)
    {
        hub.preauth_counted(peer);
        return Err(super::preauth::busy());
    }
    let _turn = hub.login_gate.enter(&gate_key).await;
    let lookup = name.to_owned();
    let record = {
        // Without a trusted device, the lookup waits in line with the flood's.
        let _line = match trusted {
            Some(_) => None,
            None => hub.preauth.lookup_turn().await,
        };
        hub.db(move |s| s.user_by_name(&lookup)).await?
    };
    let now = hub.now();

    // Names nobody holds are counted too, so both lock the same way at the same try.
    let counted = match &record {
        Some(rec) => NameFailures {
            failures: rec.failed_logins,
            locked_until: rec.locked_until,
        },
        None => hub.preauth.unknown_name(name),
    };
    let locked_message =
        "this account is locked after too many failed logins: an admin must unlock it";
    // A trusted device is not held back by the lock-out that attempts from elsewhere build.
    let locked = locked_answer(counted, now, super::MAX_FAILED_LOGINS, locked_message)
        .filter(|_| trusted.is_none());
    if let Some(err) = locked {
        match &record {
            Some(rec) => {
                // No password was tried: summed per source a minute like the pre-auth
                // failures, so a flood on a locked name does not write one record per try.
                let detail = serde_json::json!({ "from": from, "failures": rec.failed_logins });
                let record = hub.user_record(&rec.info, AuditEvent::LoginLocked, None, detail);
                hub.preauth_failed(peer, record).await?;
            }
            None => {
                hub.preauth_failed(peer, unknown("unknown user, locked"))
                    .await?;
            }
        }
        return Err(err);
    }

    // Unknown users are checked against a dummy hash, so both failures cost the same time.
    let stored = record.as_ref().map(|r| r.password_hash.clone());
    // One source cannot queue more than a few checks ahead of everyone else's logins; a
    // trusted device waits ahead of all of them (one check at a time per device: its turn).
    let turn_at_hashing = match trusted {
        Some(_) => None,
        None => Some(hub.hash_turn(peer)?),
    };
    let precedence = match turn_at_hashing
        .as_ref()
        .map(super::preauth::HashTurn::precedence)
    {
        None => secrets::work::Precedence::Trusted,
        // Clean sources' queue full (a flood from many new addresses): wait with the rest.
        Some(secrets::work::Precedence::First) if !room(secrets::work::Precedence::First) => {
            secrets::work::Precedence::Normal
        }
        Some(p) => p,
    };
    let ok = secrets::work::bounded_as(precedence, move || {
        let hash = stored
            .as_deref()
            .unwrap_or_else(|| secrets::dummy_password_hash());
        secrets::verify_password(&password, hash) && stored.is_some()
    })
    .await
    .map_err(super::preauth::work_error)?;

    let disabled = super::users::is_disabled(hub, record.as_ref()).await?;
    let Some(rec) = record.clone().filter(|_| ok && !disabled) else {
        let until = |n| super::lockout_delay(n).map(|d| now + d);
        let Some(rec) = &record else {
            hub.preauth.unknown_name_failed(name, until);
            hub.preauth_failed(peer, unknown("unknown user")).await?;
            return Err(ProtocolError::invalid_credentials());
        };
        hub.preauth_counted(peer);
        let change = AuditedChange::LoginFailed {
            user: rec.info.id.clone(),
            locked_until: until(rec.failed_logins + 1),
            trusted_device: trusted.clone().map(|hash| (hash, DEVICE_MAX_FAILURES)),
        };
        let reason = if disabled {
            "account disabled"
        } else {
            "wrong password"
        };
        let device_now = if trusted.is_some() {
            "trusted"
        } else {
            "untrusted"
        };
        let entry = NewAudit {
            at: now,
            actor: name.to_owned(),
            actor_email: Some(rec.info.email.clone()),
            team_id: Some(rec.info.team_id.clone()),
            action: AuditEvent::LoginFail,
            target: None,
            detail: serde_json::json!({ "from": from, "reason": reason, "device": device_now }),
        };
        // The count and its record in one transaction.
        hub.commit(change, move |outcome| {
            let mut entry = entry.clone();
            if let ChangeOutcome::Count(failures) = outcome {
                entry.detail["failures"] = (*failures).into();
            }
            vec![entry]
        })
        .await?;
        return Err(ProtocolError::invalid_credentials());
    };

    let with_code = super::twofa::check_login(hub, &rec, code.as_ref(), &from).await?;
    // A password alone where 2FA is required but not active is an unfinished login.
    let owed = !with_code && super::twofa::enrolment_owed(hub, &rec.info).await?;

    let token = secrets::new_token().map_err(|_| ProtocolError::internal())?;
    let token_hash = secrets::hash_token(&token);
    let expires_at = now + hub.limits.token_ttl;
    let device_now = match &trusted {
        Some(_) => "trusted",
        None if device.is_some() => "new",
        None => "none",
    };
    // The device presented is trusted (again) from now on; a hash is all the hub keeps.
    let device_hash = trusted.or_else(|| device.map(|d| secrets::hash_token(d.expose())));
    let change = AuditedChange::LoggedIn {
        user: rec.info.id.clone(),
        token_hash: token_hash.clone(),
        expires_at,
        // A trusted device neither meets nor clears the lock-out others build on the name.
        clear_failures: device_now != "trusted",
        device: device_hash.map(|h| (h, now, now + chrono::Duration::days(DEVICE_TRUST_DAYS))),
    };
    let record = hub.user_record(
        &rec.info,
        AuditEvent::LoginOk,
        None,
        serde_json::json!({
            "from": from,
            "method": if with_code { "password+totp" } else { "password" },
            "device": device_now,
        }),
    );
    hub.commit(change, move |_| vec![record.clone()]).await?;
    let reply = ConsoleReply::LoggedIn {
        token: token.into(),
        expires_at,
        user: rec.info.clone(),
    };
    Ok((
        reply,
        Session {
            principal: Principal::of(&rec.info, owed),
            user: rec.info,
            token_hash,
            second_factor: with_code,
        },
    ))
}

async fn resume(
    hub: &Hub,
    token: &str,
    peer: SocketAddr,
) -> Result<(ConsoleReply, Session), ProtocolError> {
    let now = hub.now();
    let expired = || {
        ProtocolError::new(
            ErrorCode::Expired,
            "the login has expired or was revoked: log in again",
        )
    };
    let unknown = |reason: &str| failed_unknown(now, peer, reason);
    if !super::preauth::Field::Token.fits(token) {
        hub.preauth_failed(peer, unknown("a field over its maximum"))
            .await?;
        return Err(expired());
    }
    let token_hash = secrets::hash_token(token);
    let th = token_hash.clone();
    let user = hub.db(move |s| s.user_by_token(&th, now)).await?;
    let from = peer.ip().to_string();
    let guest = match user {
        Some(_) => None,
        None => credentials::guest_resume(hub, &token_hash, peer).await?,
    };
    if let Some(g) = guest {
        let session = Session {
            user: g.user,
            token_hash: g.token_hash,
            principal: Principal::Guest(g.grant),
            second_factor: true,
        };
        return Ok((g.reply, session));
    }
    match user {
        Some(user) => {
            super::users::check_resume(hub, &user).await?;
            let detail = serde_json::json!({ "from": from, "method": "token" });
            hub.audit(hub.user_record(&user, AuditEvent::LoginOk, None, detail))
                .await?;
            let second_factor = super::twofa::is_active(hub, &user).await?;
            let owed = !second_factor && super::twofa::enrolment_owed(hub, &user).await?;
            Ok((
                ConsoleReply::Resumed { user: user.clone() },
                Session {
                    principal: Principal::of(&user, owed),
                    user,
                    token_hash,
                    second_factor,
                },
            ))
        }
        None => {
            hub.preauth_failed(peer, unknown("unknown or expired token"))
                .await?;
            Err(expired())
        }
    }
}

/// Serialises password checks per account name (technician, admin re-entering their password,
/// or guest): the lock-out check, the password and code checks and the failure count then
/// happen as one step, so parallel wrong attempts cannot all pass one stale lock-out check.
/// Different accounts never wait for each other; an idle name holds no memory.
#[derive(Default)]
pub(super) struct LoginGate {
    names: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl LoginGate {
    /// Wait for this name's turn; the turn ends when the returned value is dropped.
    pub(super) async fn enter(&self, name: &str) -> LoginTurn<'_> {
        let lock = self
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_owned())
            .or_default()
            .clone();
        let guard = lock.lock_owned().await;
        LoginTurn {
            gate: self,
            name: name.to_owned(),
            guard: Some(guard),
        }
    }
}

/// A turn at the [`LoginGate`].
pub(super) struct LoginTurn<'a> {
    gate: &'a LoginGate,
    name: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for LoginTurn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut names = self.gate.names.lock().unwrap_or_else(|p| p.into_inner());
        // Nobody waiting (the map holds the only reference): forget the name.
        if names
            .get(&self.name)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            names.remove(&self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lockout_delays_grow_and_cap() {
        assert_eq!(crate::hub::lockout_delay(1), None);
        assert_eq!(crate::hub::lockout_delay(4), None);
        assert_eq!(
            crate::hub::lockout_delay(5),
            Some(chrono::Duration::seconds(1))
        );
        assert_eq!(
            crate::hub::lockout_delay(6),
            Some(chrono::Duration::seconds(2))
        );
        assert_eq!(
            crate::hub::lockout_delay(8),
            Some(chrono::Duration::seconds(8))
        );
        assert_eq!(
            crate::hub::lockout_delay(40),
            Some(chrono::Duration::seconds(900))
        );
        assert_eq!(
            crate::hub::lockout_delay(99),
            Some(chrono::Duration::seconds(900))
        );
    }
}
