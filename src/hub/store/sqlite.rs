//! The default store: one SQLite file in the hub's data dir, WAL mode, migrations embedded.
//!
//! Times are stored as RFC 3339 text with microseconds in UTC, which sorts as it reads. The
//! audit table refuses UPDATE and DELETE by trigger; its chain is checked by `verify_audit`.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

mod audit;
mod changes;
mod devices;
mod twofa;

use super::*;
use crate::hub::audit::{self as chain, AuditFields, AuditKeys, GENESIS, HeadFile, LinkKind};
use crate::protocol::{
    AuthMethod, Presence, ScreenSize, SecretKind, SecretRequirements, SessionInfo, TechnicianRef,
    UnattendedState,
};

mod lockout;
mod otp;
#[cfg(test)]
mod page_tests;
mod users;

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE teams (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'technician')),
    team_id TEXT NOT NULL REFERENCES teams(id),
    password_hash TEXT NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE login_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at TEXT NOT NULL
);
CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL REFERENCES teams(id),
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (team_id, name)
);
CREATE TABLE enrolment_links (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id),
    token_hash TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    uses INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE workstations (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id),
    link_id TEXT NOT NULL REFERENCES enrolment_links(id),
    key_hash TEXT NOT NULL,
    hostname TEXT NOT NULL,
    os TEXT NOT NULL,
    os_user TEXT NOT NULL,
    screen_w INTEGER,
    screen_h INTEGER,
    agent_version TEXT NOT NULL,
    enrolled_at TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE INDEX workstations_client ON workstations(client_id);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    actor_email TEXT,
    team_id TEXT,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_team ON audit(team_id, id);
CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"#,
    r#"
ALTER TABLE workstations ADD COLUMN unattended TEXT NOT NULL DEFAULT 'none';
ALTER TABLE workstations ADD COLUMN require_passcode INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workstations ADD COLUMN require_password INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workstations ADD COLUMN secret_failures INTEGER NOT NULL DEFAULT 0;
-- A group's security defaults: scope is 'team:<id>' or 'client:<id>'.
CREATE TABLE security_defaults (
    scope TEXT PRIMARY KEY,
    team_id TEXT NOT NULL REFERENCES teams(id),
    client_id TEXT REFERENCES clients(id),
    require_passcode INTEGER NOT NULL,
    require_password INTEGER NOT NULL
);
-- Consecutive secret failures of one technician on one workstation.
CREATE TABLE connect_failures (
    user_id TEXT NOT NULL REFERENCES users(id),
    workstation_id TEXT NOT NULL REFERENCES workstations(id),
    failures INTEGER NOT NULL,
    locked_until TEXT,
    PRIMARY KEY (user_id, workstation_id)
);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    workstation_id TEXT NOT NULL REFERENCES workstations(id),
    team_id TEXT NOT NULL REFERENCES teams(id),
    hostname TEXT NOT NULL,
    technician TEXT NOT NULL,
    technician_email TEXT NOT NULL,
    method TEXT NOT NULL,
    secrets TEXT NOT NULL,
    view_only INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    end_reason TEXT
);
CREATE INDEX sessions_open ON sessions(team_id, ended_at);
"#,
    r#"
-- issue 5: twofa
-- TOTP secrets are sealed with the key in the data dir's twofa.key (never stored in clear).
ALTER TABLE users ADD COLUMN totp_required INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_pending TEXT;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER;
CREATE TABLE hub_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
    r#"
-- issue 5: support credentials
-- Time-boxed credentials for guests: only hashes of the password (argon2id) and of the
-- security code (SHA-256). `expiry_noted` is set once the expiry is audited.
CREATE TABLE support_credentials (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL REFERENCES teams(id),
    issued_by TEXT NOT NULL REFERENCES users(id),
    user_name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id TEXT NOT NULL,
    target_label TEXT NOT NULL,
    scope_control INTEGER NOT NULL,
    scope_chat INTEGER NOT NULL,
    scope_history INTEGER NOT NULL,
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT,
    expiry_noted INTEGER NOT NULL DEFAULT 0,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT
);
CREATE INDEX support_credentials_team ON support_credentials(team_id, expires_at);
-- A guest's login tokens (SHA-256), valid no longer than their credentials.
CREATE TABLE guest_tokens (
    token_hash TEXT PRIMARY KEY,
    credential_id TEXT NOT NULL REFERENCES support_credentials(id),
    expires_at TEXT NOT NULL
);
"#,
    r#"
-- issue 5: otp
-- One-time passwords (hub/otp.rs). A workstation requires one when its own flag is set or
-- its client's group or its team requires one (otp_groups, scope as in security_defaults).
ALTER TABLE workstations ADD COLUMN require_otp INTEGER NOT NULL DEFAULT 0;
CREATE TABLE otp_groups (
    scope TEXT PRIMARY KEY,
    team_id TEXT NOT NULL REFERENCES teams(id),
    client_id TEXT REFERENCES clients(id)
);
-- code_hash: SHA-256 of the canonical code; sealed: the code under the hub's otp.key (AEAD),
-- only so that it can be sent again.
CREATE TABLE otps (
    id TEXT PRIMARY KEY,
    code_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users(id),
    workstation_id TEXT NOT NULL REFERENCES workstations(id),
    team_id TEXT NOT NULL REFERENCES teams(id),
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    expiry_noted INTEGER NOT NULL DEFAULT 0,
    emergency INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    sealed TEXT NOT NULL
);
CREATE INDEX otps_pair ON otps(user_id, workstation_id, issued_at);
-- Mail the hub did not send (no mail server, or delivery failed); bodies sealed like codes.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    recipients TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_sealed TEXT NOT NULL,
    kind TEXT NOT NULL,
    why TEXT NOT NULL,
    otp_id TEXT REFERENCES otps(id)
);
"#,
    r#"
-- Guests' security codes were stored as plain SHA-256: a million possible codes, reversed at
-- once from a copy of the database. Codes are now an HMAC under a key outside the database
-- (hub/credentials.rs); the old hashes go, and the hub revokes (audited) those still active.
UPDATE support_credentials SET code_hash = 'unkeyed-code-removed'
    WHERE code_hash NOT LIKE 'hmac-sha256:%';
"#,
    r#"
-- issue 10: lists are paged by keyset, walking these in order: a team's clients by name, a
-- client's workstations by host name (both in any case, ids breaking ties).
CREATE INDEX IF NOT EXISTS clients_team_name ON clients(team_id, name COLLATE NOCASE, id);
CREATE INDEX IF NOT EXISTS workstations_client_host
    ON workstations(client_id, hostname COLLATE NOCASE, id);
"#,
    r#"
-- issue 11: the hub's owner (every team, the hub-wide settings). Kept beside the role, whose
-- column says 'admin' for an owner: its CHECK predates owners, and SQLite changes a CHECK only
-- by rebuilding the table, which every other table references. (Re-runnable, as the paging
-- indexes are: a test replays the migrations after the code migration.)
CREATE TABLE IF NOT EXISTS hub_owners (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE
);
"#,
    r#"
-- issue 11: user lifecycle. A removed user's row stays (disabled, removed_at set) so the name
-- in audit records and sessions always names one person.
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN removed_at TEXT;
-- One-time enrolment codes (SHA-256): the new user sets their own password with one.
CREATE TABLE user_enrolments (
    code_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    expires_at TEXT NOT NULL
);
-- Ended logins (disabled, removed, 2FA reset, locked, role changed): every hub polls this for
-- new rows and closes that user's open connections, whoever wrote them (tether admin too).
CREATE TABLE user_revocations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
"#,
    r#"
-- issue 11: the audit chain is keyed (hub/audit.rs). Records already written keep their plain
-- SHA-256 links; the first keyed record links to the last of them. Where keyed links start is
-- kept here (one row, written once) and in the signed head beside the database. Idempotent, as
-- tests re-run migrations.
CREATE TABLE IF NOT EXISTS audit_keying (keyed_from INTEGER NOT NULL);
"#,
    r#"
-- issue 11 point 5: trusted devices (OWASP's device cookies, store/devices.rs): the SHA-256 of
-- a console's device token, bound to the user it logged in as. Disabling, removing and
-- resetting 2FA forget them with the user's logins; the failure lock does not (else anyone
-- who knows a name could end its owner's trusted devices by guessing). Idempotent, as tests
-- re-run migrations.
CREATE TABLE IF NOT EXISTS trusted_devices (
    device_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    last_login_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS trusted_devices_user ON trusted_devices(user_id, last_login_at);
CREATE TRIGGER IF NOT EXISTS trusted_devices_revoked AFTER INSERT ON user_revocations
    WHEN NEW.reason IN ('disabled', 'removed', '2fa_reset')
BEGIN
    DELETE FROM trusted_devices WHERE user_id = NEW.user_id;
END;
"#,
];

/// One client's workstations in list order (host name in any case, then id), after `after`,
/// added to `page` until it holds `want` rows; only those matching `filter`.
fn workstations_of_client(
    conn: &Connection,
    client: &str,
    after: Option<(&String, &String)>,
    filter: Option<&WorkstationFilter>,
    want: usize,
    page: &mut Vec<WorkstationRow>,
) -> StoreResult<()> {
    let base = format!(
        "SELECT {WS_COLS} FROM workstations w JOIN clients c ON c.id = w.client_id WHERE w.client_id = ?1"
    );
    // Two forms, so the first page's has no cursor test that would keep SQLite from seeking.
    let sql = match after {
        Some(_) => format!(
            "{base} AND w.hostname >= ?2 COLLATE NOCASE AND (w.hostname > ?2 COLLATE NOCASE OR w.id > ?3) \
             ORDER BY w.hostname COLLATE NOCASE, w.id"
        ),
        None => format!("{base} ORDER BY w.hostname COLLATE NOCASE, w.id"),
    };
    let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
    let mut rows = match after {
        Some((host, id)) => stmt.query(params![client, host, id]),
        None => stmt.query(params![client]),
    }
    .map_err(db)?;
    while page.len() < want {
        let Some(row) = rows.next().map_err(db)? else {
            break;
        };
        let row = finish_ws(ws_row(row).map_err(db)?)?.0;
        if filter.is_none_or(|f| f.matches(&row.info)) {
            page.push(row);
        }
    }
    Ok(())
}

#[path = "sqlite_credentials.rs"]
mod credentials;

/// The database file's name inside the hub's data dir.
pub const DB_FILE: &str = "hub.sqlite3";

pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// The data dir, where the audit head is written beside the database.
    dir: std::path::PathBuf,
    /// The audit chain's keys, derived from the dir's `seal.key`.
    audit_keys: AuditKeys,
    /// The audit head last read, so an unchanged head is not checked again at each append.
    head_cache: chain::HeadCache,
}

fn db(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, msg)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(msg.unwrap_or_else(|| "record".into()))
        }
        other => StoreError::Database(other.to_string()),
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_ts(s: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("time {s:?}: {e}")))
}

fn parse_role(s: &str) -> StoreResult<Role> {
    s.parse().map_err(StoreError::Corrupt)
}

impl SqliteStore {
    /// Open (creating and migrating) the store in `dir`, with the audit keys derived from the
    /// dir's `seal.key` (made at first start).
    pub fn open_dir(dir: &Path) -> StoreResult<Self> {
        crate::paths::create_private_dir(dir)
            .map_err(|e| StoreError::Database(format!("{}: {e}", dir.display())))?;
        let seal = crate::secrets::seal::SealKey::load_or_create(dir)
            .map_err(|e| StoreError::Database(e.to_string()))?;
        let audit_keys = AuditKeys::derive(&seal).map_err(StoreError::Database)?;
        let conn = Connection::open(dir.join(DB_FILE)).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        let store = Self {
            conn: Mutex::new(conn),
            dir: dir.to_owned(),
            audit_keys,
            head_cache: chain::HeadCache::default(),
        };
        store.migrate()?;
        store.start_audit_head()?;
        Ok(store)
    }

    fn conn(&self) -> StoreResult<MutexGuard<'_, Connection>> {
        self.conn
            .lock()
            .map_err(|_| StoreError::Database("store lock poisoned".into()))
    }

    /// Run `f` in one immediate transaction, committed if it returns `Ok`.
    fn in_tx<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let value = f(&tx)?;
        tx.commit().map_err(db)?;
        Ok(value)
    }

    fn migrate(&self) -> StoreResult<()> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db)?;
        let version = usize::try_from(version).unwrap_or(usize::MAX);
        if version > MIGRATIONS.len() {
            return Err(StoreError::Database(format!(
                "the database is at schema version {version}, newer than this hub knows ({}): upgrade tether",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(sql).map_err(db)?;
            tx.pragma_update(
                None,
                "user_version",
                i64::try_from(i + 1).unwrap_or(i64::MAX),
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
    }
}

const USER_COLS: &str = "u.id, u.name, u.email, \
    CASE WHEN EXISTS (SELECT 1 FROM hub_owners o WHERE o.user_id = u.id) THEN 'owner' ELSE u.role END, \
    u.team_id, t.name, u.password_hash, u.failed_logins, u.locked_until";

fn user_record(r: &Row<'_>) -> rusqlite::Result<(UserInfo, String, u32, Option<String>, String)> {
    let role: String = r.get(3)?;
    Ok((
        UserInfo {
            id: r.get(0)?,
            name: r.get(1)?,
            email: r.get(2)?,
            role: Role::Technician,
            team_id: r.get(4)?,
            team: r.get(5)?,
        },
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        role,
    ))
}

fn finish_user(raw: (UserInfo, String, u32, Option<String>, String)) -> StoreResult<UserRecord> {
    let (mut info, password_hash, failed_logins, locked_until, role) = raw;
    info.role = parse_role(&role)?;
    let locked_until = locked_until.as_deref().map(parse_ts).transpose()?;
    Ok(UserRecord {
        info,
        password_hash,
        failed_logins,
        locked_until,
    })
}

const CLIENT_COLS: &str = "id, name, created_at";

fn client_row(r: &Row<'_>) -> rusqlite::Result<(String, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

fn finish_client((id, name, created_at): (String, String, String)) -> StoreResult<ClientInfo> {
    Ok(ClientInfo {
        id,
        name,
        created_at: parse_ts(&created_at)?,
    })
}

const LINK_COLS: &str = "l.id, l.client_id, l.created_at, l.expires_at, l.revoked, l.uses";

type RawLink = (String, String, String, String, bool, u32);

fn link_row(r: &Row<'_>) -> rusqlite::Result<RawLink> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn finish_link(
    (id, client_id, created_at, expires_at, revoked, uses): RawLink,
) -> StoreResult<LinkInfo> {
    Ok(LinkInfo {
        id,
        client_id,
        created_at: parse_ts(&created_at)?,
        expires_at: parse_ts(&expires_at)?,
        revoked,
        uses,
    })
}

const WS_COLS: &str = "w.id, w.client_id, c.name, w.hostname, w.os, w.os_user, w.screen_w, w.screen_h, \
     w.agent_version, w.last_seen, w.enrolled_at, c.team_id, w.key_hash, w.unattended, w.require_passcode, \
     w.require_password, \
     (w.require_otp OR EXISTS (SELECT 1 FROM otp_groups g WHERE g.scope IN ('client:' || w.client_id, 'team:' || c.team_id)))";

struct RawWorkstation {
    id: String,
    client_id: String,
    client_name: String,
    hostname: String,
    os: String,
    user: String,
    screen: Option<(u32, u32)>,
    agent_version: String,
    last_seen: String,
    enrolled_at: String,
    team_id: String,
    key_hash: String,
    unattended: String,
    requires: SecretRequirements,
    otp_required: bool,
}

fn ws_row(r: &Row<'_>) -> rusqlite::Result<RawWorkstation> {
    let w: Option<u32> = r.get(6)?;
    let h: Option<u32> = r.get(7)?;
    Ok(RawWorkstation {
        id: r.get(0)?,
        client_id: r.get(1)?,
        client_name: r.get(2)?,
        hostname: r.get(3)?,
        os: r.get(4)?,
        user: r.get(5)?,
        screen: w.zip(h),
        agent_version: r.get(8)?,
        last_seen: r.get(9)?,
        enrolled_at: r.get(10)?,
        team_id: r.get(11)?,
        key_hash: r.get(12)?,
        unattended: r.get(13)?,
        requires: SecretRequirements {
            passcode: r.get(14)?,
            password: r.get(15)?,
        },
        otp_required: r.get(16)?,
    })
}

fn finish_ws(raw: RawWorkstation) -> StoreResult<(WorkstationRow, String)> {
    let info = WorkstationInfo {
        id: raw.id,
        client_id: raw.client_id,
        client_name: raw.client_name,
        hostname: raw.hostname,
        os: raw.os,
        user: raw.user,
        screen: raw
            .screen
            .map(|(width, height)| ScreenSize { width, height }),
        agent_version: raw.agent_version,
        presence: Presence::Offline,
        last_seen: parse_ts(&raw.last_seen)?,
        enrolled_at: parse_ts(&raw.enrolled_at)?,
        unattended: raw.unattended.parse().map_err(StoreError::Corrupt)?,
        requires: raw.requires,
        otp_required: raw.otp_required,
    };
    Ok((
        WorkstationRow {
            info,
            team_id: raw.team_id,
        },
        raw.key_hash,
    ))
}

const AUDIT_COLS: &str =
    "id, at, actor, actor_email, team_id, action, target, detail, prev_hash, hash";

struct RawAudit {
    id: i64,
    at: String,
    actor: String,
    actor_email: Option<String>,
    team_id: Option<String>,
    action: String,
    target: Option<String>,
    detail: String,
    prev_hash: String,
    hash: String,
}

impl RawAudit {
    fn fields(&self) -> AuditFields<'_> {
        AuditFields {
            id: self.id,
            at: &self.at,
            actor: &self.actor,
            actor_email: self.actor_email.as_deref(),
            team_id: self.team_id.as_deref(),
            action: &self.action,
            target: self.target.as_deref(),
            detail: &self.detail,
        }
    }
}

fn audit_row(r: &Row<'_>) -> rusqlite::Result<RawAudit> {
    Ok(RawAudit {
        id: r.get(0)?,
        at: r.get(1)?,
        actor: r.get(2)?,
        actor_email: r.get(3)?,
        team_id: r.get(4)?,
        action: r.get(5)?,
        target: r.get(6)?,
        detail: r.get(7)?,
        prev_hash: r.get(8)?,
        hash: r.get(9)?,
    })
}

/// A stored record as the chain verifier reads it; records from `keyed_from` on have keyed
/// links.
fn chain_record(raw: RawAudit, keyed_from: i64) -> chain::ChainRecord {
    chain::ChainRecord {
        link: if raw.id >= keyed_from {
            LinkKind::HmacSha256
        } else {
            LinkKind::Sha256
        },
        id: raw.id,
        at: raw.at,
        actor: raw.actor,
        actor_email: raw.actor_email,
        team_id: raw.team_id,
        action: raw.action,
        target: raw.target,
        detail: raw.detail,
        prev_hash: raw.prev_hash,
        hash: raw.hash,
    }
}

fn finish_audit(raw: RawAudit) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        id: raw.id,
        at: parse_ts(&raw.at)?,
        detail: serde_json::from_str(&raw.detail)
            .map_err(|e| StoreError::Corrupt(format!("audit detail: {e}")))?,
        actor: raw.actor,
        actor_email: raw.actor_email,
        team_id: raw.team_id,
        action: raw.action,
        target: raw.target,
        prev_hash: raw.prev_hash,
        hash: raw.hash,
    })
}

fn new_id(prefix: &str) -> StoreResult<String> {
    crate::secrets::new_id(prefix).map_err(|e| StoreError::Database(e.to_string()))
}

const SESSION_COLS: &str = "id, workstation_id, team_id, hostname, technician, technician_email, method, \
     secrets, view_only, started_at, ended_at, end_reason";

type RawSession = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    bool,
    String,
    Option<String>,
    Option<String>,
);

fn session_row(r: &Row<'_>) -> rusqlite::Result<RawSession> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
    ))
}

fn finish_session(raw: RawSession) -> StoreResult<(TeamId, SessionInfo)> {
    let (
        id,
        workstation_id,
        team,
        hostname,
        name,
        email,
        method,
        secrets,
        view_only,
        started,
        ended,
        reason,
    ) = raw;
    let method = match method.as_str() {
        "unattended" => AuthMethod::Unattended,
        "attended" => AuthMethod::Attended,
        "support credentials" => AuthMethod::SupportCredentials,
        other => return Err(StoreError::Corrupt(format!("session method {other:?}"))),
    };
    let secrets: Vec<SecretKind> = serde_json::from_str(&secrets)
        .map_err(|e| StoreError::Corrupt(format!("session secrets: {e}")))?;
    Ok((
        team,
        SessionInfo {
            id,
            workstation_id,
            hostname,
            technician: TechnicianRef { name, email },
            method,
            secrets,
            view_only,
            started_at: parse_ts(&started)?,
            ended_at: ended.as_deref().map(parse_ts).transpose()?,
            end_reason: reason,
        },
    ))
}

impl Store for SqliteStore {
    fn create_user(&self, new: NewUser) -> StoreResult<UserInfo> {
        self.in_tx(|tx| changes::create_user(tx, new))
    }

    fn user_by_name(&self, name: &str) -> StoreResult<Option<UserRecord>> {
        let conn = self.conn()?;
        let sql = format!(
            "SELECT {USER_COLS} FROM users u JOIN teams t ON t.id = u.team_id WHERE u.name = ?1"
        );
        conn.query_row(&sql, [name], user_record)
            .optional()
            .map_err(db)?
            .map(finish_user)
            .transpose()
    }

    fn record_login_failure(
        &self,
        user: &UserId,
        locked_until: Option<DateTime<Utc>>,
    ) -> StoreResult<u32> {
        self.in_tx(|tx| changes::record_login_failure(tx, user, locked_until))
    }

    fn reset_login_failures(&self, user: &UserId) -> StoreResult<()> {
        changes::reset_login_failures(&*self.conn()?, user)
    }

    fn insert_login_token(
        &self,
        token_hash: &str,
        user: &UserId,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        changes::insert_login_token(&*self.conn()?, token_hash, user, expires_at)
    }

    fn user_by_token(&self, token_hash: &str, now: DateTime<Utc>) -> StoreResult<Option<UserInfo>> {
        let conn = self.conn()?;
        let sql = format!(
            "SELECT {USER_COLS} FROM login_tokens k JOIN users u ON u.id = k.user_id JOIN teams t ON t.id = u.team_id \
             WHERE k.token_hash = ?1 AND k.expires_at > ?2"
        );
        let raw = conn
            .query_row(&sql, params![token_hash, ts(now)], user_record)
            .optional()
            .map_err(db)?;
        Ok(raw.map(finish_user).transpose()?.map(|r| r.info))
    }

    fn delete_login_token(&self, token_hash: &str) -> StoreResult<()> {
        changes::delete_login_token(&*self.conn()?, token_hash).map(|_| ())
    }

    fn create_client(
        &self,
        id: &ClientId,
        team: &TeamId,
        name: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<ClientInfo> {
        changes::create_client(&*self.conn()?, id, team, name, at)
    }

    fn clients(&self, team: &TeamId) -> StoreResult<Vec<ClientInfo>> {
        let conn = self.conn()?;
        let sql = format!(
            "SELECT {CLIENT_COLS} FROM clients WHERE team_id = ?1 ORDER BY name COLLATE NOCASE"
        );
        let mut stmt = conn.prepare(&sql).map_err(db)?;
        let rows = stmt.query_map([team], client_row).map_err(db)?;
        rows.map(|r| finish_client(r.map_err(db)?)).collect()
    }

    fn client(&self, team: &TeamId, id_or_name: &str) -> StoreResult<Option<ClientInfo>> {
        let conn = self.conn()?;
        let sql = format!(
            "SELECT {CLIENT_COLS} FROM clients WHERE team_id = ?1 AND (id = ?2 OR name = ?2) LIMIT 1"
        );
        conn.query_row(&sql, params![team, id_or_name], client_row)
            .optional()
            .map_err(db)?
            .map(finish_client)
            .transpose()
    }

    fn create_link(&self, link: NewLink) -> StoreResult<LinkInfo> {
        changes::create_link(&*self.conn()?, &link)
    }

    fn links(&self, client: &ClientId) -> StoreResult<Vec<LinkInfo>> {
        let conn = self.conn()?;
        let sql = format!(
            "SELECT {LINK_COLS} FROM enrolment_links l WHERE l.client_id = ?1 ORDER BY l.created_at DESC"
        );
        let mut stmt = conn.prepare(&sql).map_err(db)?;
        let rows = stmt.query_map([client], link_row).map_err(db)?;
        rows.map(|r| finish_link(r.map_err(db)?)).collect()
    }

    fn link_by_token(&self, token_hash: &str) -> StoreResult<Option<(LinkInfo, TeamId, String)>> {
        let conn = self.conn()?;
        let sql = format!(
            "SELECT {LINK_COLS}, c.team_id, c.name FROM enrolment_links l JOIN clients c ON c.id = l.client_id \
             WHERE l.token_hash = ?1"
        );
        let raw = conn
            .query_row(&sql, [token_hash], |r| {
                Ok((link_row(r)?, r.get::<_, String>(6)?, r.get::<_, String>(7)?))
            })
            .optional()
            .map_err(db)?;
        raw.map(|(l, team, name)| Ok((finish_link(l)?, team, name)))
            .transpose()
    }

    fn revoke_link(&self, team: &TeamId, link: &LinkId) -> StoreResult<Option<LinkInfo>> {
        changes::revoke_link(&*self.conn()?, team, link)
    }

    fn enrol_workstation(&self, new: NewWorkstation) -> StoreResult<WorkstationRow> {
        self.in_tx(|tx| changes::enrol_workstation(tx, &new))
    }

    fn workstation_with_key(
        &self,
        id: &WorkstationId,
    ) -> StoreResult<Option<(WorkstationRow, String)>> {
        let conn = self.conn()?;
        let sql = format!(
            "SELECT {WS_COLS} FROM workstations w JOIN clients c ON c.id = w.client_id WHERE w.id = ?1"
        );
        // Cached: every agent's hello and goodbye reads this (parsing it again each time was a
        // tenth of the hub's CPU in a reconnect storm).
        conn.prepare_cached(&sql)
            .and_then(|mut stmt| stmt.query_row([id], ws_row))
            .optional()
            .map_err(db)?
            .map(finish_ws)
            .transpose()
    }

    fn workstation(&self, id: &WorkstationId) -> StoreResult<Option<WorkstationRow>> {
        Ok(self.workstation_with_key(id)?.map(|(row, _)| row))
    }

    fn update_workstation(
        &self,
        id: &WorkstationId,
        r: &WorkstationReport,
        last_seen: DateTime<Utc>,
    ) -> StoreResult<()> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE workstations SET hostname = ?2, os = ?3, os_user = ?4, screen_w = ?5, screen_h = ?6, \
             agent_version = ?7, last_seen = ?8 WHERE id = ?1",
            params![
                id,
                r.hostname,
                r.os,
                r.user,
                r.screen.map(|s| s.width),
                r.screen.map(|s| s.height),
                r.agent_version,
                ts(last_seen)
            ],
        )
        .map_err(db)?;
        Ok(())
    }

    fn touch_workstation(&self, id: &WorkstationId, last_seen: DateTime<Utc>) -> StoreResult<()> {
        let conn = self.conn()?;
        conn.prepare_cached("UPDATE workstations SET last_seen = ?2 WHERE id = ?1")
            .and_then(|mut stmt| stmt.execute(params![id, ts(last_seen)]))
            .map_err(db)?;
        Ok(())
    }

    fn workstations(
        &self,
        team: &TeamId,
        client: Option<&ClientId>,
    ) -> StoreResult<Vec<WorkstationRow>> {
        let conn = self.conn()?;
        let sql = format!(
            "SELECT {WS_COLS} FROM workstations w JOIN clients c ON c.id = w.client_id \
             WHERE c.team_id = ?1 AND (?2 IS NULL OR c.id = ?2) ORDER BY c.name COLLATE NOCASE, w.hostname COLLATE NOCASE"
        );
        let mut stmt = conn.prepare(&sql).map_err(db)?;
        let rows = stmt.query_map(params![team, client], ws_row).map_err(db)?;
        rows.map(|r| Ok(finish_ws(r.map_err(db)?)?.0)).collect()
    }

    fn workstations_page(
        &self,
        team: &TeamId,
        client: Option<&ClientId>,
        filter: Option<&WorkstationFilter>,
        after: Option<&WorkstationKey>,
        limit: u32,
    ) -> StoreResult<Vec<WorkstationRow>> {
        let conn = self.conn()?;
        let want = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut page = Vec::new();
        // Keyset paging by walking the indexes: the clients in name order, and each client's
        // workstations in host-name order, seeking past the cursor. A page reads about as many
        // rows as it returns (plus those the filter skips), however large the team; one query
        // joining and sorting the whole team cost ~78 ms a page at 20,000 workstations.
        if let Some((name, client_id, host, id)) = after {
            if client.is_none_or(|c| c == client_id) {
                workstations_of_client(
                    &conn,
                    client_id,
                    Some((host, id)),
                    filter,
                    want,
                    &mut page,
                )?;
            }
            if client.is_none() {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT id FROM clients WHERE team_id = ?1 \
                         AND name >= ?2 COLLATE NOCASE AND (name > ?2 COLLATE NOCASE OR id > ?3) \
                         ORDER BY name COLLATE NOCASE, id",
                    )
                    .map_err(db)?;
                let ids = stmt
                    .query_map(params![team, name, client_id], |r| r.get::<_, String>(0))
                    .map_err(db)?;
                for id in ids {
                    if page.len() >= want {
                        break;
                    }
                    workstations_of_client(&conn, &id.map_err(db)?, None, filter, want, &mut page)?;
                }
            }
            return Ok(page);
        }
        let mut stmt = conn
            .prepare_cached(
                "SELECT id FROM clients WHERE team_id = ?1 AND (?2 IS NULL OR id = ?2) \
                 ORDER BY name COLLATE NOCASE, id",
            )
            .map_err(db)?;
        let ids = stmt
            .query_map(params![team, client], |r| r.get::<_, String>(0))
            .map_err(db)?;
        for id in ids {
            if page.len() >= want {
                break;
            }
            workstations_of_client(&conn, &id.map_err(db)?, None, filter, want, &mut page)?;
        }
        Ok(page)
    }

    fn count_workstations(&self, team: &TeamId, client: Option<&ClientId>) -> StoreResult<u64> {
        let conn = self.conn()?;
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM workstations w JOIN clients c ON c.id = w.client_id \
                 WHERE c.team_id = ?1 AND (?2 IS NULL OR c.id = ?2)",
                params![team, client],
                |r| r.get(0),
            )
            .map_err(db)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn append_audit(&self, e: NewAudit) -> StoreResult<AuditRecord> {
        let ((), records) = self.audited(|_| Ok(()), |()| vec![e])?;
        records
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Database("the audit record was not appended".into()))
    }

    fn commit_audited(
        &self,
        change: AuditedChange,
        audit: &dyn Fn(&ChangeOutcome) -> Vec<NewAudit>,
    ) -> StoreResult<ChangeOutcome> {
        let record = |o: &ChangeOutcome| if o.changed() { audit(o) } else { Vec::new() };
        self.audited(|tx| audit::apply(tx, change), record)
            .map(|(outcome, _)| outcome)
    }

    fn verify_audit(&self) -> StoreResult<AuditReport> {
        self.audit_report()
    }

    fn export_audit(
        &self,
        since: Option<DateTime<Utc>>,
        with_key: bool,
        out: &mut dyn std::io::Write,
    ) -> StoreResult<u64> {
        self.audit_export(since, with_key, out)
    }

    fn set_unattended(&self, id: &WorkstationId, state: UnattendedState) -> StoreResult<()> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE workstations SET unattended = ?2 WHERE id = ?1",
            params![id, state.label()],
        )
        .map_err(db)?;
        Ok(())
    }

    fn set_requirements(
        &self,
        id: &WorkstationId,
        requires: SecretRequirements,
    ) -> StoreResult<()> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE workstations SET require_passcode = ?2, require_password = ?3 WHERE id = ?1",
            params![id, requires.passcode, requires.password],
        )
        .map_err(db)?;
        Ok(())
    }

    fn security_defaults(
        &self,
        team: &TeamId,
        client: &ClientId,
    ) -> StoreResult<SecretRequirements> {
        let conn = self.conn()?;
        let found = conn
            .query_row(
                "SELECT require_passcode, require_password FROM security_defaults \
                 WHERE scope IN (?1, ?2) ORDER BY client_id IS NULL LIMIT 1",
                params![format!("client:{client}"), format!("team:{team}")],
                |r| {
                    Ok(SecretRequirements {
                        passcode: r.get(0)?,
                        password: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(db)?;
        Ok(found.unwrap_or_default())
    }

    fn set_security_defaults(
        &self,
        team: &TeamId,
        client: Option<&ClientId>,
        requires: SecretRequirements,
    ) -> StoreResult<()> {
        changes::set_security_defaults(&*self.conn()?, team, client, requires)
    }

    fn list_security_defaults(
        &self,
        team: &TeamId,
    ) -> StoreResult<Vec<(Option<ClientId>, SecretRequirements)>> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare(
                "SELECT client_id, require_passcode, require_password FROM security_defaults \
                 WHERE team_id = ?1 ORDER BY client_id IS NOT NULL, client_id",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map([team], |r| {
                Ok((
                    r.get(0)?,
                    SecretRequirements {
                        passcode: r.get(1)?,
                        password: r.get(2)?,
                    },
                ))
            })
            .map_err(db)?;
        rows.map(|r| r.map_err(db)).collect()
    }

    fn reserve_connect_attempt(
        &self,
        user: &UserId,
        workstation: &WorkstationId,
        now: DateTime<Utc>,
        lock: &dyn Fn(u32) -> Option<DateTime<Utc>>,
    ) -> StoreResult<ConnectReservation> {
        self.reserve_attempt(user, workstation, now, lock)
    }

    fn release_connect_attempt(
        &self,
        user: &UserId,
        workstation: &WorkstationId,
        lock: &dyn Fn(u32) -> Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        self.release_attempt(user, workstation, lock)
    }

    fn claim_passcode_replacement(
        &self,
        workstation: &WorkstationId,
        after: u32,
    ) -> StoreResult<Option<u32>> {
        self.claim_replacement(workstation, after)
    }

    fn reset_connect_failures(
        &self,
        user: &UserId,
        workstation: &WorkstationId,
    ) -> StoreResult<()> {
        changes::reset_connect_failures(&*self.conn()?, user, workstation)
    }

    fn reset_workstation_failures(&self, workstation: &WorkstationId) -> StoreResult<()> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE workstations SET secret_failures = 0 WHERE id = ?1",
            [workstation],
        )
        .map_err(db)?;
        Ok(())
    }

    fn insert_session(&self, team: &TeamId, s: &SessionInfo) -> StoreResult<()> {
        changes::insert_session(&*self.conn()?, team, s)
    }

    fn end_session(
        &self,
        id: &SessionId,
        at: DateTime<Utc>,
        reason: &str,
    ) -> StoreResult<Option<SessionInfo>> {
        changes::end_session(&*self.conn()?, id, at, reason)
    }

    fn sessions(
        &self,
        team: &TeamId,
        open_only: bool,
        limit: u32,
    ) -> StoreResult<Vec<SessionInfo>> {
        let conn = self.conn()?;
        let sql = format!(
            "SELECT {SESSION_COLS} FROM sessions WHERE team_id = ?1 AND (?2 = 0 OR ended_at IS NULL) \
             ORDER BY started_at DESC LIMIT ?3"
        );
        let mut stmt = conn.prepare(&sql).map_err(db)?;
        let rows = stmt
            .query_map(params![team, open_only, limit], session_row)
            .map_err(db)?;
        rows.map(|r| Ok(finish_session(r.map_err(db)?)?.1))
            .collect()
    }

    fn close_open_sessions(
        &self,
        at: DateTime<Utc>,
        reason: &str,
    ) -> StoreResult<Vec<(TeamId, SessionInfo)>> {
        self.in_tx(|tx| changes::close_open_sessions(tx, at, reason))
    }

    fn two_factor(&self, user: &UserId) -> StoreResult<TwoFactorRecord> {
        self.two_factor_record(user)
    }

    fn set_two_factor_required(&self, user: &UserId, required: bool) -> StoreResult<()> {
        self.two_factor_set_required(user, required)
    }

    fn set_two_factor_pending(&self, user: &UserId, sealed: &str) -> StoreResult<()> {
        self.two_factor_set_pending(user, sealed)
    }

    fn activate_two_factor(&self, user: &UserId, sealed: &str, step: i64) -> StoreResult<bool> {
        self.two_factor_activate(user, sealed, step)
    }

    fn delete_user_tokens(&self, user: &UserId) -> StoreResult<usize> {
        self.two_factor_delete_tokens(user)
    }

    fn reset_two_factor(&self, user: &UserId) -> StoreResult<()> {
        self.two_factor_reset(user)
    }

    fn accept_totp_step(&self, user: &UserId, step: i64) -> StoreResult<bool> {
        self.two_factor_accept_step(user, step)
    }

    fn users_two_factor(&self) -> StoreResult<Vec<(UserInfo, TwoFactorRecord)>> {
        self.two_factor_users()
    }

    fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        self.hub_setting(key)
    }

    fn set_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        self.set_hub_setting(key, value)
    }

    fn search_audit(
        &self,
        team: Option<&TeamId>,
        query: &crate::protocol::AuditQuery,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Vec<AuditRecord>> {
        self.audit_search(team, query, limit, before)
    }
}
