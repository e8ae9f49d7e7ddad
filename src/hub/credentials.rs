//! Time-boxed support credentials and guests (DOMAIN.md, "Time-boxed support credentials").
//!
//! A technician issues credentials for one workstation or for all of one client's; the hub
//! shows the password and the six-digit security code once and keeps only their hashes:
//! argon2id for the password, and for the code (a million values: any plain hash of it is
//! reversed at once) an HMAC under a subkey of the hub's `seal.key`, which is not in the
//! database ([`code_tag`]). A guest logs in with user name, password and code and then:
//!
//! - acts within the issuing technician's team, under their own guest name (audit, the agent's
//!   list of who is connected), with the issuer's e-mail as the responsible contact;
//! - sees only the target: lists are filtered here, every other request is refused as not
//!   found (objects) or not allowed (verbs);
//! - is authorised on a target workstation by the credentials themselves (DOMAIN "Connecting":
//!   valid support credentials are one of the three kinds of authorisation), so no grant or
//!   end-user prompt is needed; the workstation's secrets still apply, and wrong secrets count
//!   toward the issuing technician's lock-out on that workstation;
//! - without the control scope gets view-only sessions and every `Input` refused; without the
//!   history scope sees only their own open sessions.
//!
//! Expiry and revocation end the guest's connections, sessions and login tokens at once: a
//! timer on the hub's [`Clock`](super::Clock) sleeps until the next expiry (and re-checks
//! whenever the clock jumps, as a test's manual clock does).

use crate::hub::audit::AuditEvent;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};

use super::Hub;
use super::pager;
use super::principal::GuestGrant;
use super::store::{
    AuditedChange, ChangeOutcome, CredentialRecord, IssueOutcome, NewAudit, NewCredential,
    WorkstationFilter, WorkstationRow, workstation_key,
};
use crate::protocol::credentials::{already_active_message, check_duration_minutes};
use crate::protocol::{
    ConsoleReply, CredentialId, CredentialInfo, CredentialScopes, CredentialState,
    CredentialTarget, ErrorCode, GuestInfo, HubEvent, ProtocolError, RevealedCredential, SessionId,
    SessionInfo, UserInfo,
};
use crate::secrets;

/// Guest user names: `guest-` and this many characters.
const USER_CHARS: usize = 8;
/// Guest passwords: this many characters from [`PASSWORD_ALPHABET`] (about 115 bits).
pub const PASSWORD_CHARS: usize = 20;
/// No look-alikes (0 O o 1 l I).
const PASSWORD_ALPHABET: &[u8] = b"23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
const USER_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
/// Ended credentials stay listed this long.
const LIST_DAYS: i64 = 7;
/// The expiry timer re-reads the store at least this often (a wall clock may be set back).
const MAX_TIMER_SLEEP: Duration = Duration::from_secs(60);

/// Subkey label of security-code tags; stored tags start with [`CODE_TAG_PREFIX`].
const CODE_TAG_LABEL: &str = "guest-security-code";
const CODE_TAG_PREFIX: &str = "hmac-sha256:";
/// What the schema migration left in place of security codes stored as plain SHA-256 by older
/// hubs; such credentials are revoked at start ([`retire_unkeyed`]).
const UNKEYED_CODE_REMOVED: &str = "unkeyed-code-removed";

/// Why a guest's connection closes.
const EXPIRED: &str = "the support credentials expired";
const REVOKED: &str = "the support credentials were revoked";

/// The hub's live knowledge of guests: their connections and sessions, and the expiry timer's
/// wake-up.
#[derive(Default)]
pub(super) struct Registry {
    /// Per credential: set to the reason when its guests must go.
    ends: Mutex<HashMap<CredentialId, watch::Sender<Option<&'static str>>>>,
    /// Sessions guests opened.
    sessions: Mutex<HashMap<SessionId, CredentialId>>,
    /// New credentials: the timer re-plans.
    wake: Notify,
}

impl Registry {
    fn subscribe(&self, credential: &CredentialId) -> watch::Receiver<Option<&'static str>> {
        let mut ends = self.ends.lock().unwrap_or_else(|p| p.into_inner());
        // Forget credentials whose guests have all gone.
        ends.retain(|_, tx| tx.receiver_count() > 0);
        ends.entry(credential.clone())
            .or_insert_with(|| watch::channel(None).0)
            .subscribe()
    }

    fn track_session(&self, session: &SessionId, credential: &CredentialId) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(session.clone(), credential.clone());
    }

    /// A session ended (for whatever reason): it is nobody's any more.
    pub(super) fn forget_session(&self, session: &SessionId) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(session);
    }

    fn owns_session(&self, grant: &GuestGrant, session: &SessionId) -> bool {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(session)
            .is_some_and(|c| c == &grant.credential)
    }
}

/// A guest connection's end: the reason, once its credentials expire or are revoked. Never
/// resolves for a technician.
pub(super) async fn ended(rx: &mut Option<watch::Receiver<Option<&'static str>>>) -> &'static str {
    match rx {
        Some(rx) => loop {
            if let Some(why) = *rx.borrow_and_update() {
                return why;
            }
            if rx.changed().await.is_err() {
                return REVOKED;
            }
        },
        None => std::future::pending().await,
    }
}

/// Start watching a guest connection for its end. `None` for technicians.
pub(super) async fn watch_guest(
    hub: &Hub,
    grant: Option<&GuestGrant>,
) -> Option<watch::Receiver<Option<&'static str>>> {
    let grant = grant?;
    let rx = hub.credentials.subscribe(&grant.credential);
    // Ended between the login and now? Then this connection ends at once.
    let id = grant.credential.clone();
    let rec = hub.db(move |s| s.credential(&id)).await.ok().flatten();
    let why = match rec {
        Some(r) if r.info.revoked_at.is_some() => Some(REVOKED),
        Some(r) if r.info.expires_at <= hub.now() => Some(EXPIRED),
        Some(_) => None,
        None => Some(REVOKED),
    };
    match why {
        Some(why) => Some(watch::channel(Some(why)).1),
        None => Some(rx),
    }
}

fn state_at(rec: &CredentialRecord, now: DateTime<Utc>) -> CredentialState {
    if rec.info.revoked_at.is_some() {
        CredentialState::Revoked
    } else if rec.info.expires_at <= now {
        CredentialState::Expired
    } else {
        CredentialState::Active
    }
}

fn info_at(rec: &CredentialRecord, now: DateTime<Utc>) -> CredentialInfo {
    CredentialInfo {
        state: state_at(rec, now),
        ..rec.info.clone()
    }
}

fn random_string(alphabet: &[u8], len: usize) -> Result<String, ProtocolError> {
    // Rejection sampling keeps every character equally likely.
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        secrets::random_bytes(&mut buf).map_err(|_| ProtocolError::internal())?;
        for b in buf {
            if usize::from(b) < limit && out.len() < len {
                out.push(alphabet[usize::from(b) % alphabet.len()] as char);
            }
        }
    }
    Ok(out)
}

/// A new guest password: [`PASSWORD_CHARS`] characters from the OS's CSPRNG.
pub fn new_password() -> Result<String, ProtocolError> {
    random_string(PASSWORD_ALPHABET, PASSWORD_CHARS)
}

/// A new six-digit security code, uniform over 000000..=999999.
pub fn new_code() -> Result<String, ProtocolError> {
    random_string(b"0123456789", 6)
}

/// The stored form of a security code: an HMAC of the credential id and the code, under the
/// hub's subkey for codes (bound to the row, so equal codes of two credentials differ).
fn code_tag(hub: &Hub, credential: &str, code: &str) -> String {
    let mac = hub
        .seal_key
        .keyed_hash(CODE_TAG_LABEL, format!("{credential}:{code}").as_bytes());
    format!("{CODE_TAG_PREFIX}{}", hex::encode(mac))
}

/// The one answer to a failed guest login, whatever was wrong.
fn invalid_guest() -> ProtocolError {
    ProtocolError::new(
        ErrorCode::InvalidCredentials,
        "invalid user name, password or security code",
    )
}

fn audit(
    hub: &Hub,
    actor: &str,
    email: Option<&str>,
    team: Option<&str>,
    action: AuditEvent,
    target: Option<String>,
    detail: serde_json::Value,
) -> NewAudit {
    NewAudit {
        at: hub.now(),
        actor: actor.to_owned(),
        actor_email: email.map(str::to_owned),
        team_id: team.map(str::to_owned),
        action,
        target,
        detail,
    }
}

fn user_audit(
    hub: &Hub,
    user: &UserInfo,
    action: AuditEvent,
    rec: &CredentialInfo,
    mut detail: serde_json::Value,
) -> NewAudit {
    if let Some(map) = detail.as_object_mut() {
        map.insert("guest".into(), rec.user.clone().into());
        map.insert("target_kind".into(), rec.target.kind().into());
        map.insert("target_id".into(), rec.target.id().into());
        map.insert("target".into(), rec.target_label.clone().into());
    }
    audit(
        hub,
        &user.name,
        Some(&user.email),
        Some(&user.team_id),
        action,
        Some(rec.id.clone()),
        detail,
    )
}

/// A successful guest authentication: the reply, who they are on this connection, the token
/// hash (for logout) and their grant.
pub(super) struct GuestAuth {
    pub reply: ConsoleReply,
    pub user: UserInfo,
    pub token_hash: String,
    pub grant: GuestGrant,
}

async fn guest_identity(
    hub: &Hub,
    rec: &CredentialRecord,
) -> Result<(UserInfo, GuestInfo), ProtocolError> {
    let issuer = rec.info.issued_by.clone();
    let team = hub
        .db(move |s| s.user_by_name(&issuer))
        .await?
        .map(|u| u.info.team)
        .unwrap_or_default();
    let user = UserInfo {
        id: rec.info.id.clone(),
        name: rec.info.user.clone(),
        email: rec.issued_by_email.clone(),
        role: crate::protocol::Role::Technician,
        team_id: rec.team_id.clone(),
        team,
    };
    let guest = GuestInfo {
        credential: rec.info.id.clone(),
        target: rec.info.target.clone(),
        target_label: rec.info.target_label.clone(),
        scopes: rec.info.scopes,
        issued_by: rec.info.issued_by.clone(),
        expires_at: rec.info.expires_at,
    };
    Ok((user, guest))
}

/// A guest logs in. Unknown user, wrong password and wrong code give one answer in the same
/// time; failures count toward the same lock-out as technicians' logins.
pub(super) async fn guest_login(
    hub: &Hub,
    name: &str,
    password: String,
    code: String,
    peer: SocketAddr,
) -> Result<GuestAuth, ProtocolError> {
    use super::preauth::{Field, NameFailures, locked_answer};
    let unknown = |reason: &str| NewAudit {
        at: hub.now(),
        actor: "unknown".into(),
        actor_email: None,
        team_id: None,
        action: AuditEvent::LoginFail,
        target: None,
        detail: serde_json::json!({ "from": peer.ip().to_string(), "guest": true, "reason": reason }),
    };
    // Before any lookup or hashing, with the answer a wrong password gets.
    if !(Field::UserName.fits(name) && Field::Password.fits(&password) && Field::Code.fits(&code)) {
        hub.preauth_failed(peer, unknown("a field over its maximum"))
            .await?;
        return Err(invalid_guest());
    }
    let _turn = hub.login_gate.enter(name).await;
    let lookup = name.to_owned();
    let record = hub.db(move |s| s.credential_by_user(&lookup)).await?;
    let now = hub.now();
    let from = peer.ip().to_string();
    let team = record.as_ref().map(|r| r.team_id.clone());
    let email = record.as_ref().map(|r| r.issued_by_email.clone());

    // Names nobody holds are counted too, so both lock the same way at the same try.
    let counted = match &record {
        Some(rec) => NameFailures {
            failures: rec.failed_logins,
            locked_until: rec.locked_until,
        },
        None => hub.preauth.unknown_name(name),
    };
    let locked_message = "these credentials are locked after too many failed logins: ask your technician for new ones";
    let max = super::MAX_FAILED_LOGINS;
    if let Some(err) = locked_answer(counted, now, max, locked_message) {
        let Some(rec) = &record else {
            hub.preauth_failed(peer, unknown("unknown user, locked"))
                .await?;
            return Err(err);
        };
        hub.preauth_counted(peer);
        let detail =
            serde_json::json!({ "from": from, "failures": rec.failed_logins, "guest": true });
        hub.audit(audit(
            hub,
            name,
            email.as_deref(),
            team.as_deref(),
            AuditEvent::LoginLocked,
            Some(rec.info.id.clone()),
            detail,
        ))
        .await?;
        return Err(err);
    }

    // Unknown users are checked against a dummy hash (and a dummy code hash), so every failure
    // costs the same time.
    let given_tag = code_tag(
        hub,
        record.as_ref().map_or("sc_unknown", |r| r.info.id.as_str()),
        code.trim(),
    );
    let stored = record
        .as_ref()
        .map(|r| (r.password_hash.clone(), r.code_hash.clone()));
    // One source cannot queue more than a few checks ahead of everyone else's logins.
    let turn_at_hashing = hub.hash_turn(peer)?;
    let ok = secrets::work::bounded_as(turn_at_hashing.precedence(), move || {
        let (hash, code_hash) = match &stored {
            Some((h, c)) => (h.as_str(), c.clone()),
            None => (secrets::dummy_password_hash(), UNKEYED_CODE_REMOVED.into()),
        };
        let password_ok = secrets::verify_password(&password, hash);
        let code_ok = secrets::constant_time_eq(given_tag.as_bytes(), code_hash.as_bytes());
        password_ok & code_ok & stored.is_some()
    })
    .await
    .map_err(super::preauth::work_error)?;

    let Some(rec) = record.clone().filter(|_| ok) else {
        let until = |n| super::lockout_delay(n).map(|d| now + d);
        let Some(rec) = &record else {
            hub.preauth.unknown_name_failed(name, until);
            hub.preauth_failed(peer, unknown("unknown user")).await?;
            return Err(invalid_guest());
        };
        hub.preauth_counted(peer);
        let change = AuditedChange::GuestLoginFailed {
            id: rec.info.id.clone(),
            locked_until: until(rec.failed_logins + 1),
        };
        let detail = serde_json::json!({
            "from": from,
            "guest": true,
            "reason": "wrong password or security code",
        });
        let entry = audit(
            hub,
            name,
            email.as_deref(),
            team.as_deref(),
            AuditEvent::LoginFail,
            Some(rec.info.id.clone()),
            detail,
        );
        // The count and its record in one commit.
        hub.commit(change, move |outcome| {
            let mut entry = entry.clone();
            if let ChangeOutcome::Count(failures) = outcome {
                entry.detail["failures"] = (*failures).into();
            }
            vec![entry]
        })
        .await?;
        return Err(invalid_guest());
    };

    if state_at(&rec, now) != CredentialState::Active {
        let detail = serde_json::json!({ "from": from, "guest": true, "reason": state_at(&rec, now).label() });
        hub.audit(audit(
            hub,
            name,
            email.as_deref(),
            team.as_deref(),
            AuditEvent::LoginFail,
            Some(rec.info.id.clone()),
            detail,
        ))
        .await?;
        return Err(ProtocolError::new(
            ErrorCode::Expired,
            "these support credentials have expired or were revoked: ask your technician for new ones",
        ));
    }

    let token = secrets::new_token().map_err(|_| ProtocolError::internal())?;
    let token_hash = secrets::hash_token(&token);
    let (user, guest) = guest_identity(hub, &rec).await?;
    let record = audit(
        hub,
        &user.name,
        Some(&user.email),
        Some(&user.team_id),
        AuditEvent::CredentialsUse,
        Some(rec.info.id.clone()),
        serde_json::json!({ "from": from, "use": "guest login", "target": rec.info.target_label }),
    );
    let change = AuditedChange::GuestLoggedIn {
        id: rec.info.id.clone(),
        token_hash: token_hash.clone(),
        expires_at: rec.info.expires_at,
    };
    hub.commit(change, move |_| vec![record.clone()]).await?;
    Ok(GuestAuth {
        reply: ConsoleReply::GuestLoggedIn {
            token: token.into(),
            expires_at: rec.info.expires_at,
            user: user.clone(),
            guest: Box::new(guest),
        },
        user,
        token_hash,
        grant: GuestGrant::from_record(&rec),
    })
}

/// A stored guest token: the guest, if the token and its credentials are still valid.
pub(super) async fn guest_resume(
    hub: &Hub,
    token_hash: &str,
    peer: SocketAddr,
) -> Result<Option<GuestAuth>, ProtocolError> {
    let now = hub.now();
    let th = token_hash.to_owned();
    let Some(rec) = hub
        .db(move |s| s.credential_by_guest_token(&th, now))
        .await?
        .filter(|r| state_at(r, now) == CredentialState::Active)
    else {
        return Ok(None);
    };
    let (user, guest) = guest_identity(hub, &rec).await?;
    hub.audit(audit(
        hub,
        &user.name,
        Some(&user.email),
        Some(&user.team_id),
        AuditEvent::CredentialsUse,
        Some(rec.info.id.clone()),
        serde_json::json!({ "from": peer.ip().to_string(), "use": "guest token", "target": rec.info.target_label }),
    ))
    .await?;
    Ok(Some(GuestAuth {
        reply: ConsoleReply::GuestResumed {
            user: user.clone(),
            guest: Box::new(guest),
        },
        user,
        token_hash: token_hash.to_owned(),
        grant: GuestGrant::from_record(&rec),
    }))
}

/// The team's live events, as a guest may see them: their target's workstations and client,
/// their own sessions (and, with the history scope, every session on the target).
pub(super) fn guest_event(
    hub: &Hub,
    grant: Option<&GuestGrant>,
    event: HubEvent,
) -> Option<HubEvent> {
    let grant = grant?;
    let visible = match &event {
        HubEvent::Workstation { workstation } => grant.covers_info(workstation),
        HubEvent::Client { client } => {
            matches!(&grant.target, CredentialTarget::Client { client: c } if c == &client.id)
        }
        HubEvent::Session { session } => {
            hub.credentials.owns_session(grant, &session.id)
                || (grant.scopes.history
                    && match &grant.target {
                        CredentialTarget::Workstation { workstation } => {
                            &session.workstation_id == workstation
                        }
                        // Sessions carry no client: only the guest's own, live.
                        CredentialTarget::Client { .. } => false,
                    })
        }
        // Sent only to the stream's own viewer, never to a team.
        HubEvent::StreamEnded { .. } => false,
        HubEvent::Resync => true,
    };
    visible.then_some(event)
}

/// A guest logs out: their token goes (the credentials stay valid until they end).
pub(super) async fn guest_logout(
    hub: &Hub,
    grant: &GuestGrant,
    user: &UserInfo,
    token_hash: &str,
) -> Result<ConsoleReply, ProtocolError> {
    let record = audit(
        hub,
        &user.name,
        Some(&user.email),
        Some(&user.team_id),
        AuditEvent::Logout,
        Some(grant.credential.clone()),
        serde_json::json!({ "guest": true }),
    );
    let change = AuditedChange::GuestLoggedOut {
        token_hash: token_hash.to_owned(),
    };
    hub.commit(change, move |_| vec![record.clone()]).await?;
    Ok(ConsoleReply::Done)
}

/// The client of the guest's target, the only one a guest sees.
pub(super) async fn guest_clients(
    hub: &Hub,
    grant: &GuestGrant,
    user: &UserInfo,
    page: crate::protocol::PageRequest,
) -> Result<ConsoleReply, ProtocolError> {
    let rows = target_workstations(hub, grant).await?;
    let team = user.team_id.clone();
    let ids: Vec<String> = rows.iter().map(|r| r.info.client_id.clone()).collect();
    let client_id = match &grant.target {
        CredentialTarget::Client { client } => Some(client.clone()),
        CredentialTarget::Workstation { .. } => ids.first().cloned(),
    };
    let clients = hub
        .db(move |s| s.clients(&team))
        .await?
        .into_iter()
        .filter(|c| client_id.as_ref() == Some(&c.id))
        .collect::<Vec<_>>();
    super::clients::clients_page(clients, &page)
}

/// The guest's target workstations, with live presence.
pub(super) async fn guest_workstations(
    hub: &Hub,
    grant: &GuestGrant,
    client: Option<String>,
    filter: Option<String>,
    page: crate::protocol::PageRequest,
) -> Result<ConsoleReply, ProtocolError> {
    let filter = filter.as_deref().and_then(WorkstationFilter::new);
    let workstations = target_workstations(hub, grant)
        .await?
        .into_iter()
        .filter(|r| {
            client
                .as_ref()
                .is_none_or(|c| c == &r.info.client_id || c == &r.info.client_name)
        })
        .map(|r| hub.with_presence(r.info))
        .filter(|w| filter.as_ref().is_none_or(|f| f.matches(w)))
        .collect::<Vec<_>>();
    let total = workstations.len() as u64;
    let page = pager::page_in_memory("workstations", workstations, &page, workstation_key)?;
    Ok(ConsoleReply::Workstations {
        workstations: page.rows,
        next: page.next,
        total: Some(total),
    })
}

/// The workstation a guest's connection is for (one of the target, by id or host name), and
/// whether it must be view only (without the control scope it always is).
pub(super) async fn guest_connect(
    hub: &Hub,
    grant: &GuestGrant,
    workstation: &str,
    view_only: bool,
) -> Result<(String, bool), ProtocolError> {
    let row = guest_workstation(hub, grant, workstation).await?;
    // Where the workstation requires a one-time password, a guest's Connect is refused for
    // want of one: codes are issued to technicians only.
    Ok((row.info.id, view_only || !grant.scopes.control))
}

/// The guest's own sessions (and, with the history scope, every session on the target).
pub(super) async fn guest_sessions(
    hub: &Hub,
    grant: &GuestGrant,
    user: &UserInfo,
    page: crate::protocol::PageRequest,
) -> Result<ConsoleReply, ProtocolError> {
    let mut sessions: Vec<SessionInfo> = hub
        .open_sessions(&user.team_id)
        .into_iter()
        .filter(|s| hub.credentials.owns_session(grant, &s.id))
        .collect();
    if grant.scopes.history {
        let targets: Vec<String> = target_workstations(hub, grant)
            .await?
            .into_iter()
            .map(|r| r.info.id)
            .collect();
        let team = user.team_id.clone();
        let past = hub.db(move |s| s.sessions(&team, false, 500)).await?;
        for s in past {
            if targets.contains(&s.workstation_id) && !sessions.iter().any(|m| m.id == s.id) {
                sessions.push(s);
            }
        }
    }
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

/// A session a guest may watch or end: only one they opened.
pub(super) fn guest_session(
    hub: &Hub,
    grant: &GuestGrant,
    session: &SessionId,
) -> Result<(), ProtocolError> {
    if hub.credentials.owns_session(grant, session) {
        Ok(())
    } else {
        Err(ProtocolError::not_found("open session"))
    }
}

/// The workstations a guest's credentials cover.
async fn target_workstations(
    hub: &Hub,
    grant: &GuestGrant,
) -> Result<Vec<WorkstationRow>, ProtocolError> {
    let (target, team) = (grant.target.clone(), grant.team_id.clone());
    let rows = hub
        .db(move |s| match &target {
            CredentialTarget::Workstation { workstation } => {
                Ok(s.workstation(workstation)?.into_iter().collect::<Vec<_>>())
            }
            CredentialTarget::Client { client } => s.workstations(&team, Some(client)),
        })
        .await?;
    Ok(rows
        .into_iter()
        .filter(|r| grant.covers(r) && r.team_id == grant.team_id)
        .collect())
}

/// One of the guest's target workstations, by id or host name; anything else is not found.
async fn guest_workstation(
    hub: &Hub,
    grant: &GuestGrant,
    key: &str,
) -> Result<WorkstationRow, ProtocolError> {
    let mut found: Vec<WorkstationRow> = target_workstations(hub, grant)
        .await?
        .into_iter()
        .filter(|r| r.info.id == key || r.info.hostname == key)
        .collect();
    match found.len() {
        1 => found.pop().ok_or_else(ProtocolError::internal),
        0 => Err(ProtocolError::not_found("workstation")),
        n => Err(ProtocolError::bad_request(format!(
            "{n} workstations have that host name: use the id"
        ))),
    }
}

/// The session-start hook (hub/access.rs `connect`): for a guest, the credentials must still
/// be valid and cover the workstation. Returns the guest's grant, `None` for a technician.
pub(super) async fn check_session_start(
    hub: &Hub,
    user: &UserInfo,
    row: &WorkstationRow,
) -> Result<Option<GuestGrant>, ProtocolError> {
    // A guest's user id is their credentials' id; a technician's matches no credentials.
    let id = user.id.clone();
    let Some(rec) = hub.db(move |s| s.credential(&id)).await? else {
        return Ok(None);
    };
    let grant = GuestGrant::from_record(&rec);
    if state_at(&rec, hub.now()) != CredentialState::Active {
        return Err(ProtocolError::new(
            ErrorCode::Expired,
            "these support credentials have expired or were revoked",
        ));
    }
    if !grant.covers(row) || rec.team_id != row.team_id {
        return Err(ProtocolError::not_found("workstation"));
    }
    Ok(Some(grant))
}

/// A guest's session opened: tracked (expiry and revocation end it) and audited as a use of
/// the credentials.
pub(super) async fn session_started(
    hub: &Hub,
    user: &UserInfo,
    grant: &GuestGrant,
    session: &SessionInfo,
) -> Result<(), ProtocolError> {
    hub.credentials
        .track_session(&session.id, &grant.credential);
    hub.audit(audit(
        hub,
        &user.name,
        Some(&user.email),
        Some(&user.team_id),
        AuditEvent::CredentialsUse,
        Some(grant.credential.clone()),
        serde_json::json!({
            "use": "guest session",
            "session": session.id,
            "workstation": session.workstation_id,
            "hostname": session.hostname,
            "view_only": session.view_only,
        }),
    ))
    .await
}

/// The team's support credentials: active, and those ended in the last 7 days.
pub(super) async fn list(
    hub: &Hub,
    user: &UserInfo,
    page: crate::protocol::PageRequest,
) -> Result<ConsoleReply, ProtocolError> {
    let now = hub.now();
    let team = user.team_id.clone();
    let since = now - chrono::Duration::days(LIST_DAYS);
    let credentials = hub
        .db(move |s| s.team_credentials(&team, since))
        .await?
        .iter()
        .map(|r| info_at(r, now))
        .collect::<Vec<_>>();
    let total = credentials.len() as u64;
    let page = pager::page_in_memory("credentials", credentials, &page, |c| {
        (std::cmp::Reverse(c.issued_at), c.id.clone())
    })?;
    Ok(ConsoleReply::Credentials {
        credentials: page.rows,
        next: page.next,
        total: Some(total),
    })
}

/// Revoke a team's credentials (any technician of the team may).
pub(super) async fn revoke_by(
    hub: &Hub,
    user: &UserInfo,
    credential: CredentialId,
) -> Result<ConsoleReply, ProtocolError> {
    let rec = team_credential(hub, user, &credential).await?;
    let now = hub.now();
    match state_at(&rec, now) {
        CredentialState::Active => {}
        other => {
            return Err(ProtocolError::new(
                ErrorCode::Conflict,
                format!("these support credentials are already {}", other.label()),
            ));
        }
    }
    revoke(hub, user, &rec, "revoked").await?;
    let id = rec.info.id.clone();
    let rec = hub
        .db(move |s| s.credential(&id))
        .await?
        .ok_or_else(ProtocolError::internal)?;
    Ok(ConsoleReply::Credential {
        credential: Box::new(info_at(&rec, hub.now())),
    })
}

/// Revoke and issue new ones for the same target, duration and scopes.
pub(super) async fn regenerate(
    hub: &Hub,
    user: &UserInfo,
    credential: CredentialId,
) -> Result<ConsoleReply, ProtocolError> {
    let rec = team_credential(hub, user, &credential).await?;
    let minutes = (rec.info.expires_at - rec.info.issued_at).num_minutes();
    let minutes = u32::try_from(minutes.clamp(1, i64::from(u32::MAX))).unwrap_or(1);
    // Revoking the old and issuing the new happen in one transaction (or neither).
    let replacing = (state_at(&rec, hub.now()) == CredentialState::Active).then_some(&rec);
    let target = rec.info.target.clone();
    issue(hub, user, target, minutes, rec.info.scopes, replacing).await
}

async fn team_credential(
    hub: &Hub,
    user: &UserInfo,
    id: &CredentialId,
) -> Result<CredentialRecord, ProtocolError> {
    let cid = id.clone();
    hub.db(move |s| s.credential(&cid))
        .await?
        .filter(|r| r.team_id == user.team_id)
        .ok_or_else(|| ProtocolError::not_found("support credentials"))
}

async fn revoke(
    hub: &Hub,
    user: &UserInfo,
    rec: &CredentialRecord,
    why: &str,
) -> Result<(), ProtocolError> {
    let change = AuditedChange::RevokeCredential {
        id: rec.info.id.clone(),
        at: hub.now(),
    };
    let record = user_audit(
        hub,
        user,
        AuditEvent::CredentialsRevoke,
        &rec.info,
        serde_json::json!({ "reason": why }),
    );
    hub.db(move |s| s.commit_audited(change, &|_| vec![record.clone()]))
        .await?;
    end_guests(hub, &rec.info.id, REVOKED).await;
    Ok(())
}

/// Revoke every live credential that `issuer` issued: their account was disabled or removed,
/// and a guest acts on their behalf (issue 11). Returns how many.
pub(super) async fn revoke_issued_by(
    hub: &Hub,
    admin: &UserInfo,
    issuer: &crate::protocol::UserId,
    why: &str,
) -> Result<usize, ProtocolError> {
    let live = hub.db(|s| s.live_credentials()).await?;
    let theirs: Vec<CredentialRecord> = live
        .into_iter()
        .filter(|r| &r.issued_by_id == issuer)
        .collect();
    for rec in &theirs {
        revoke(hub, admin, rec, why).await?;
    }
    Ok(theirs.len())
}

/// Issue credentials; with `replacing`, revoke those in the same store transaction
/// (Regenerate), so a failure leaves the old ones as they were.
pub(super) async fn issue(
    hub: &Hub,
    user: &UserInfo,
    target: CredentialTarget,
    minutes: u32,
    scopes: CredentialScopes,
    replacing: Option<&CredentialRecord>,
) -> Result<ConsoleReply, ProtocolError> {
    check_duration_minutes(minutes).map_err(ProtocolError::bad_request)?;
    // Credentials open sessions: a technician who may not start one (2FA required but not
    // active) may not hand that power to a guest either.
    super::twofa::check_session_start(hub, user, "support credentials").await?;
    let (target, label) = match target {
        CredentialTarget::Workstation { workstation } => {
            let row = hub.team_workstation(&user.team_id, &workstation).await?;
            (
                CredentialTarget::Workstation {
                    workstation: row.info.id,
                },
                row.info.hostname,
            )
        }
        CredentialTarget::Client { client } => {
            let team = user.team_id.clone();
            let found = hub
                .db(move |s| s.client(&team, &client))
                .await?
                .ok_or_else(|| ProtocolError::not_found("client"))?;
            (CredentialTarget::Client { client: found.id }, found.name)
        }
    };
    let now = hub.now();
    let (team, since) = (
        user.team_id.clone(),
        now - chrono::Duration::days(LIST_DAYS),
    );
    let replaced_id = replacing.map(|r| r.info.id.clone());
    // A quick look first, to skip the password hashing in the common case; the store's
    // transaction below is what guarantees one active set per technician and target.
    let existing = hub
        .db(move |s| s.team_credentials(&team, since))
        .await?
        .into_iter()
        .find(|r| {
            r.issued_by_id == user.id
                && r.info.target == target
                && Some(&r.info.id) != replaced_id.as_ref()
                && state_at(r, now) == CredentialState::Active
        });
    if let Some(rec) = existing {
        return Ok(already_active(&rec, now));
    }

    let guest_user = format!("guest-{}", random_string(USER_ALPHABET, USER_CHARS)?);
    let password = new_password()?;
    let code = new_code()?;
    let pw = password.clone();
    let password_hash = secrets::work::bounded(move || secrets::hash_password(&pw))
        .await
        .map_err(super::preauth::work_error)?
        .map_err(|_| ProtocolError::internal())?;
    let info = CredentialInfo {
        id: secrets::new_id("sc").map_err(|_| ProtocolError::internal())?,
        user: guest_user,
        target,
        target_label: label,
        scopes,
        issued_by: user.name.clone(),
        issued_at: now,
        expires_at: now + chrono::Duration::minutes(i64::from(minutes)),
        revoked_at: None,
        state: CredentialState::Active,
    };
    let new = NewCredential {
        info: info.clone(),
        team_id: user.team_id.clone(),
        issued_by_id: user.id.clone(),
        password_hash,
        code_hash: code_tag(hub, &info.id, &code),
    };
    // The replaced credentials' revocation, the new ones and both records: one commit.
    let revoke_record = replacing.map(|old| {
        user_audit(
            hub,
            user,
            AuditEvent::CredentialsRevoke,
            &old.info,
            serde_json::json!({ "reason": "regenerated" }),
        )
    });
    let issue_record = user_audit(
        hub,
        user,
        AuditEvent::CredentialsIssue,
        &info,
        serde_json::json!({
            "minutes": minutes,
            "expires_at": info.expires_at,
            "scopes": scopes,
        }),
    );
    let change = AuditedChange::IssueCredential {
        new: Box::new(new),
        replacing: replacing.map(|r| r.info.id.clone()),
        now,
    };
    let outcome = hub
        .db(move |s| {
            s.commit_audited(change, &|o| {
                let revoked = matches!(
                    o,
                    ChangeOutcome::Issued(IssueOutcome::Issued { revoked: true })
                );
                let revoke = revoke_record.clone().filter(|_| revoked);
                revoke.into_iter().chain([issue_record.clone()]).collect()
            })
        })
        .await?;
    match outcome {
        ChangeOutcome::Issued(IssueOutcome::AlreadyActive(rec)) => {
            return Ok(already_active(&rec, now));
        }
        _ => {
            if let Some(old) = replacing {
                end_guests(hub, &old.info.id, REVOKED).await;
            }
        }
    }
    hub.credentials.wake.notify_one();
    let reveal = RevealedCredential {
        hub: format!("wss://{}", hub.public_addr()),
        fingerprint: hub.fingerprint().to_owned(),
        user: info.user.clone(),
        password: password.into(),
        code: code.into(),
        expires_at: info.expires_at,
    };
    Ok(ConsoleReply::CredentialsIssued {
        credential: Box::new(info),
        reveal: Box::new(reveal),
    })
}

fn already_active(rec: &CredentialRecord, now: DateTime<Utc>) -> ConsoleReply {
    let credential = info_at(rec, now);
    ConsoleReply::CredentialsAlreadyActive {
        message: already_active_message(&credential, now),
        credential: Box::new(credential),
    }
}

/// Make `change` to `rec` as the hub itself, with its record (its guest, issuer and target,
/// and `extra`) in the same commit.
async fn commit_by_hub(
    hub: &Hub,
    rec: &CredentialRecord,
    change: AuditedChange,
    action: AuditEvent,
    (key, value): (&str, serde_json::Value),
) {
    let mut detail = serde_json::json!({
        "guest": rec.info.user,
        "issued_by": rec.info.issued_by,
        "target": rec.info.target_label,
    });
    detail[key] = value;
    let entry = audit(
        hub,
        "hub",
        None,
        Some(&rec.team_id),
        action,
        Some(rec.info.id.clone()),
        detail,
    );
    if let Err(e) = hub.commit(change, move |_| vec![entry.clone()]).await {
        tracing::error!(%e, action = action.as_str(), "credentials change not made: not audited");
    }
}

/// Revoke (audited) unexpired credentials whose security code an older hub stored as plain
/// SHA-256: the migration removed those hashes, so their guests could not log in any more.
async fn retire_unkeyed(hub: &Hub) {
    let live = match hub.db(|s| s.live_credentials()).await {
        Ok(live) => live,
        Err(e) => {
            tracing::error!(%e, "cannot read support credentials");
            return;
        }
    };
    let now = hub.now();
    for rec in live {
        if rec.code_hash != UNKEYED_CODE_REMOVED || rec.info.expires_at <= now {
            continue;
        }
        let reason = "security code stored unkeyed by an older hub: issue new credentials";
        let change = AuditedChange::RevokeCredential {
            id: rec.info.id.clone(),
            at: now,
        };
        commit_by_hub(
            hub,
            &rec,
            change,
            AuditEvent::CredentialsRevoke,
            ("reason", reason.into()),
        )
        .await;
    }
}

/// End every guest connection and session of these credentials.
async fn end_guests(hub: &Hub, credential: &CredentialId, why: &'static str) {
    let tx = hub
        .credentials
        .ends
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(credential);
    if let Some(tx) = tx {
        let _ = tx.send(Some(why));
    }
    let sessions: Vec<SessionId> = {
        let mut map = hub
            .credentials
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let ids = map
            .iter()
            .filter(|(_, c)| *c == credential)
            .map(|(s, _)| s.clone())
            .collect::<Vec<_>>();
        for id in &ids {
            map.remove(id);
        }
        ids
    };
    for id in sessions {
        hub.end_session(&id, why).await;
    }
}

/// Expire what is due: audit once, end its guests. Returns the next expiry still ahead.
async fn expire_due(hub: &Hub) -> Option<DateTime<Utc>> {
    let live = match hub.db(|s| s.live_credentials()).await {
        Ok(live) => live,
        Err(e) => {
            tracing::error!(%e, "cannot read support credentials for expiry");
            return None;
        }
    };
    let now = hub.now();
    let mut next: Option<DateTime<Utc>> = None;
    for rec in live {
        if rec.info.expires_at > now {
            next = Some(next.map_or(rec.info.expires_at, |n| n.min(rec.info.expires_at)));
            continue;
        }
        let expires_at = serde_json::json!(rec.info.expires_at);
        let change = AuditedChange::NoteCredentialExpired {
            id: rec.info.id.clone(),
        };
        commit_by_hub(
            hub,
            &rec,
            change,
            AuditEvent::CredentialsExpire,
            ("expires_at", expires_at),
        )
        .await;
        end_guests(hub, &rec.info.id, EXPIRED).await;
    }
    next
}

/// The expiry timer: sleeps until the next expiry on the hub's clock, and re-plans when
/// credentials are issued or the clock jumps.
pub(super) async fn expiry_timer(hub: Arc<Hub>, mut stop: watch::Receiver<bool>) {
    retire_unkeyed(&hub).await;
    let mut jumps = hub.clock.jumps();
    loop {
        let next = expire_due(&hub).await;
        let wait = next
            .and_then(|t| (t - hub.now()).to_std().ok())
            .map_or(MAX_TIMER_SLEEP, |d| {
                d.min(MAX_TIMER_SLEEP) + Duration::from_millis(1)
            });
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = hub.credentials.wake.notified() => {}
            _ = async {
                match jumps.as_mut() {
                    Some(rx) => rx.changed().await,
                    None => std::future::pending().await,
                }
            } => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_codes_have_their_shape() {
        let p = new_password().expect("password");
        assert_eq!(p.len(), PASSWORD_CHARS);
        assert!(p.bytes().all(|b| PASSWORD_ALPHABET.contains(&b)));
        assert_ne!(p, new_password().expect("another"));
        let c = new_code().expect("code");
        assert_eq!(c.len(), 6);
        assert!(c.bytes().all(|b| b.is_ascii_digit()));
    }
}
