//! The store's changes as functions of a connection, so each runs alone (the trait methods) or
//! inside an audited transaction with its record (`audit::apply`, issue 11 point 7).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    LINK_COLS, SESSION_COLS, WS_COLS, db, finish_link, finish_session, finish_ws, link_row, new_id,
    parse_ts, session_row, ts, users, ws_row,
};
use crate::hub::store::{
    NewLink, NewUser, NewWorkstation, StoreError, StoreResult, WorkstationRow,
};
use crate::protocol::{
    ClientId, ClientInfo, CredentialId, LinkId, LinkInfo, Role, SecretRequirements, SessionId,
    SessionInfo, TeamId, UserId, UserInfo, WorkstationId,
};

/// One more failed login; the account's logins end in the same transaction when it locks.
pub(super) fn record_login_failure(
    conn: &Connection,
    user: &UserId,
    locked_until: Option<DateTime<Utc>>,
) -> StoreResult<u32> {
    let failures = conn
        .query_row(
            "UPDATE users SET failed_logins = failed_logins + 1, locked_until = ?2 WHERE id = ?1 RETURNING failed_logins",
            params![user, locked_until.map(ts)],
            |r| r.get(0),
        )
        .map_err(db)?;
    // Locked until an admin unlocks it: the account's logins end with it, in this transaction.
    if failures == crate::hub::MAX_FAILED_LOGINS {
        users::revoke_in(conn, user, crate::hub::store::users::Revocation::Locked)?;
    }
    Ok(failures)
}

pub(super) fn reset_login_failures(conn: &Connection, user: &UserId) -> StoreResult<()> {
    conn.execute(
        "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?1",
        [user],
    )
    .map_err(db)?;
    Ok(())
}

pub(super) fn insert_login_token(
    conn: &Connection,
    token_hash: &str,
    user: &UserId,
    expires_at: DateTime<Utc>,
) -> StoreResult<()> {
    // Expired tokens are swept whenever a new one is made, so the table does not grow forever.
    conn.execute(
        "DELETE FROM login_tokens WHERE expires_at < ?1",
        [ts(Utc::now())],
    )
    .map_err(db)?;
    conn.execute(
        "INSERT INTO login_tokens (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
        params![token_hash, user, ts(expires_at)],
    )
    .map_err(db)?;
    Ok(())
}

pub(super) fn delete_login_token(conn: &Connection, token_hash: &str) -> StoreResult<usize> {
    conn.execute(
        "DELETE FROM login_tokens WHERE token_hash = ?1",
        [token_hash],
    )
    .map_err(db)
}

pub(super) fn create_client(
    conn: &Connection,
    id: &ClientId,
    team: &TeamId,
    name: &str,
    at: DateTime<Utc>,
) -> StoreResult<ClientInfo> {
    conn.execute(
        "INSERT INTO clients (id, team_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![id, team, name, ts(at)],
    )
    .map_err(|e| match db(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("client {name:?}")),
        other => other,
    })?;
    Ok(ClientInfo {
        id: id.clone(),
        name: name.to_owned(),
        created_at: parse_ts(&ts(at))?,
    })
}

pub(super) fn create_link(conn: &Connection, link: &NewLink) -> StoreResult<LinkInfo> {
    conn.execute(
        "INSERT INTO enrolment_links (id, client_id, token_hash, created_by, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![link.id, link.client_id, link.token_hash, link.created_by, ts(link.created_at), ts(link.expires_at)],
    )
    .map_err(db)?;
    let sql = format!("SELECT {LINK_COLS} FROM enrolment_links l WHERE l.id = ?1");
    finish_link(conn.query_row(&sql, [&link.id], link_row).map_err(db)?)
}

pub(super) fn revoke_link(
    conn: &Connection,
    team: &TeamId,
    link: &LinkId,
) -> StoreResult<Option<LinkInfo>> {
    let changed = conn
        .execute(
            "UPDATE enrolment_links SET revoked = 1 WHERE id = ?1 \
             AND client_id IN (SELECT id FROM clients WHERE team_id = ?2)",
            params![link, team],
        )
        .map_err(db)?;
    if changed == 0 {
        return Ok(None);
    }
    let sql = format!("SELECT {LINK_COLS} FROM enrolment_links l WHERE l.id = ?1");
    Ok(Some(finish_link(
        conn.query_row(&sql, [link], link_row).map_err(db)?,
    )?))
}

/// Register a workstation and count a use of its link (in the caller's transaction).
pub(super) fn enrol_workstation(
    conn: &Connection,
    new: &NewWorkstation,
) -> StoreResult<WorkstationRow> {
    let at = ts(new.at);
    let r = &new.report;
    conn.execute(
        "INSERT INTO workstations (id, client_id, link_id, key_hash, hostname, os, os_user, screen_w, screen_h, \
         agent_version, enrolled_at, last_seen, require_passcode, require_password) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?13)",
        params![
            new.id,
            new.client_id,
            new.link_id,
            new.key_hash,
            r.hostname,
            r.os,
            r.user,
            r.screen.map(|s| s.width),
            r.screen.map(|s| s.height),
            r.agent_version,
            at,
            new.requires.passcode,
            new.requires.password
        ],
    )
    .map_err(db)?;
    conn.execute(
        "UPDATE enrolment_links SET uses = uses + 1 WHERE id = ?1",
        [&new.link_id],
    )
    .map_err(db)?;
    let sql = format!(
        "SELECT {WS_COLS} FROM workstations w JOIN clients c ON c.id = w.client_id WHERE w.id = ?1"
    );
    let raw = conn.query_row(&sql, [&new.id], ws_row).map_err(db)?;
    Ok(finish_ws(raw)?.0)
}

pub(super) fn set_security_defaults(
    conn: &Connection,
    team: &TeamId,
    client: Option<&ClientId>,
    requires: SecretRequirements,
) -> StoreResult<()> {
    let scope = match client {
        Some(c) => format!("client:{c}"),
        None => format!("team:{team}"),
    };
    conn.execute(
        "INSERT INTO security_defaults (scope, team_id, client_id, require_passcode, require_password) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (scope) DO UPDATE SET \
         require_passcode = excluded.require_passcode, require_password = excluded.require_password",
        params![scope, team, client, requires.passcode, requires.password],
    )
    .map_err(db)?;
    Ok(())
}

pub(super) fn reset_connect_failures(
    conn: &Connection,
    user: &UserId,
    workstation: &WorkstationId,
) -> StoreResult<()> {
    conn.execute(
        "DELETE FROM connect_failures WHERE user_id = ?1 AND workstation_id = ?2",
        params![user, workstation],
    )
    .map_err(db)?;
    conn.execute(
        "UPDATE workstations SET secret_failures = 0 WHERE id = ?1",
        [workstation],
    )
    .map_err(db)?;
    Ok(())
}

pub(super) fn insert_session(conn: &Connection, team: &TeamId, s: &SessionInfo) -> StoreResult<()> {
    let secrets =
        serde_json::to_string(&s.secrets).map_err(|e| StoreError::Database(e.to_string()))?;
    conn.execute(
        "INSERT INTO sessions (id, workstation_id, team_id, hostname, technician, technician_email, method, \
         secrets, view_only, started_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            s.id,
            s.workstation_id,
            team,
            s.hostname,
            s.technician.name,
            s.technician.email,
            s.method.label(),
            secrets,
            s.view_only,
            ts(s.started_at)
        ],
    )
    .map_err(db)?;
    Ok(())
}

pub(super) fn end_session(
    conn: &Connection,
    id: &SessionId,
    at: DateTime<Utc>,
    reason: &str,
) -> StoreResult<Option<SessionInfo>> {
    let changed = conn
        .execute(
            "UPDATE sessions SET ended_at = ?2, end_reason = ?3 WHERE id = ?1 AND ended_at IS NULL",
            params![id, ts(at), reason],
        )
        .map_err(db)?;
    if changed == 0 {
        return Ok(None);
    }
    let sql = format!("SELECT {SESSION_COLS} FROM sessions WHERE id = ?1");
    Ok(Some(
        finish_session(conn.query_row(&sql, [id], session_row).map_err(db)?)?.1,
    ))
}

pub(super) fn close_open_sessions(
    conn: &Connection,
    at: DateTime<Utc>,
    reason: &str,
) -> StoreResult<Vec<(TeamId, SessionInfo)>> {
    let mut stmt = conn
        .prepare(&format!(
            "UPDATE sessions SET ended_at = ?1, end_reason = ?2 WHERE ended_at IS NULL RETURNING {SESSION_COLS}"
        ))
        .map_err(db)?;
    let rows = stmt
        .query_map(params![ts(at), reason], session_row)
        .map_err(db)?;
    rows.map(|r| finish_session(r.map_err(db)?)).collect()
}

/// Once the workstation's count reached `after`, start it again, for exactly one caller.
pub(super) fn claim_passcode_replacement(
    conn: &Connection,
    workstation: &WorkstationId,
    after: u32,
) -> StoreResult<Option<u32>> {
    // One statement: of parallel callers past the count, only the first finds it there.
    conn.query_row(
        "UPDATE workstations SET secret_failures = 0 WHERE id = ?1 AND secret_failures >= ?2 \
         RETURNING ?2",
        params![workstation, after],
        |r| r.get(0),
    )
    .optional()
    .map_err(db)
}

/// A workstation as the transaction sees it.
pub(super) fn workstation(
    conn: &Connection,
    id: &WorkstationId,
) -> StoreResult<Option<WorkstationRow>> {
    let sql = format!(
        "SELECT {WS_COLS} FROM workstations w JOIN clients c ON c.id = w.client_id WHERE w.id = ?1"
    );
    conn.query_row(&sql, [id], ws_row)
        .optional()
        .map_err(db)?
        .map(|raw| finish_ws(raw).map(|(row, _)| row))
        .transpose()
}

/// One more failed guest login on these credentials; returns the new count.
pub(super) fn record_guest_failure(
    conn: &Connection,
    id: &CredentialId,
    locked_until: Option<DateTime<Utc>>,
) -> StoreResult<u32> {
    conn.query_row(
        "UPDATE support_credentials SET failed_logins = failed_logins + 1, locked_until = ?2 \
         WHERE id = ?1 RETURNING failed_logins",
        params![id, locked_until.map(ts)],
        |r| r.get(0),
    )
    .map_err(db)
}

pub(super) fn reset_guest_failures(conn: &Connection, id: &CredentialId) -> StoreResult<()> {
    conn.execute(
        "UPDATE support_credentials SET failed_logins = 0, locked_until = NULL WHERE id = ?1",
        [id],
    )
    .map_err(db)?;
    Ok(())
}

pub(super) fn insert_guest_token(
    conn: &Connection,
    token_hash: &str,
    id: &CredentialId,
    expires_at: DateTime<Utc>,
) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO guest_tokens (token_hash, credential_id, expires_at) VALUES (?1, ?2, ?3)",
        params![token_hash, id, ts(expires_at)],
    )
    .map_err(db)?;
    Ok(())
}

pub(super) fn delete_guest_token(conn: &Connection, token_hash: &str) -> StoreResult<usize> {
    conn.execute(
        "DELETE FROM guest_tokens WHERE token_hash = ?1",
        [token_hash],
    )
    .map_err(db)
}

/// Keep a new sealed 2FA secret awaiting its confirming code.
pub(super) fn set_two_factor_pending(
    conn: &Connection,
    user: &UserId,
    sealed: &str,
) -> StoreResult<()> {
    conn.execute(
        "UPDATE users SET totp_pending = ?2 WHERE id = ?1",
        params![user, sealed],
    )
    .map_err(db)?;
    Ok(())
}

/// Mark credentials' expiry as audited (once) and end their guests' tokens; true the first time.
pub(super) fn note_credential_expired(conn: &Connection, id: &CredentialId) -> StoreResult<bool> {
    let n = conn
        .execute(
            "UPDATE support_credentials SET expiry_noted = 1 WHERE id = ?1 AND expiry_noted = 0",
            [id],
        )
        .map_err(db)?;
    conn.execute("DELETE FROM guest_tokens WHERE credential_id = ?1", [id])
        .map_err(db)?;
    Ok(n == 1)
}

/// As [`crate::hub::store::Store::create_user`] (the hub-side `tether admin create-user`): the
/// team is made when new.
pub(super) fn create_user(tx: &Connection, new: NewUser) -> StoreResult<UserInfo> {
    let now = ts(Utc::now());
    let team_id: Option<String> = tx
        .query_row("SELECT id FROM teams WHERE name = ?1", [&new.team], |r| {
            r.get(0)
        })
        .optional()
        .map_err(db)?;
    let team_id = match team_id {
        Some(id) => id,
        None => {
            let id = new_id("tm")?;
            tx.execute(
                "INSERT INTO teams (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![id, new.team, now],
            )
            .map_err(db)?;
            id
        }
    };
    let id = new_id("us")?;
    // An owner is an admin of their own team, and listed in hub_owners (see the migration).
    let role = match new.role {
        Role::Owner => Role::Admin,
        other => other,
    };
    tx.execute(
        "INSERT INTO users (id, name, email, role, team_id, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![id, new.name, new.email, role.as_str(), team_id, new.password_hash, now],
    )
    .map_err(|e| match db(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("user {:?}", new.name)),
        other => other,
    })?;
    if new.role == Role::Owner {
        tx.execute("INSERT INTO hub_owners (user_id) VALUES (?1)", [&id])
            .map_err(db)?;
    }
    Ok(UserInfo {
        id,
        name: new.name,
        email: new.email,
        role: new.role,
        team_id,
        team: new.team,
    })
}
