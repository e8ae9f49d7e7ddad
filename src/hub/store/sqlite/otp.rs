//! `OtpStore` on SQLite.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SqliteStore, db, parse_ts, ts};
use crate::hub::store::{NewOtp, NewOutbox, OtpRow, OtpStore, OtpUse, OutboxRow, StoreResult};
use crate::protocol::{ClientId, TeamId, UserId, WorkstationId};
use chrono::{DateTime, Utc};

const OTP_COLS: &str = "id, user_id, workstation_id, team_id, issued_at, expires_at, used_at, emergency, reason, sealed";

type RawOtp = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    bool,
    Option<String>,
    String,
);

fn otp_row(r: &Row<'_>) -> rusqlite::Result<RawOtp> {
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
    ))
}

fn finish_otp(raw: RawOtp) -> StoreResult<OtpRow> {
    let (id, user_id, workstation_id, team_id, issued, expires, used, emergency, reason, sealed) =
        raw;
    Ok(OtpRow {
        id,
        user_id,
        workstation_id,
        team_id,
        issued_at: parse_ts(&issued)?,
        expires_at: parse_ts(&expires)?,
        used_at: used.as_deref().map(parse_ts).transpose()?,
        emergency,
        reason,
        sealed,
    })
}

pub(super) fn set_workstation_otp(
    conn: &Connection,
    id: &WorkstationId,
    required: bool,
) -> StoreResult<()> {
    conn.execute(
        "UPDATE workstations SET require_otp = ?2 WHERE id = ?1",
        params![id, required],
    )
    .map_err(db)?;
    Ok(())
}

pub(super) fn set_group_otp(
    conn: &Connection,
    team: &TeamId,
    client: Option<&ClientId>,
    required: bool,
) -> StoreResult<()> {
    let scope = match client {
        Some(c) => format!("client:{c}"),
        None => format!("team:{team}"),
    };
    if required {
        conn.execute(
            "INSERT INTO otp_groups (scope, team_id, client_id) VALUES (?1, ?2, ?3) \
             ON CONFLICT (scope) DO NOTHING",
            params![scope, team, client],
        )
    } else {
        conn.execute("DELETE FROM otp_groups WHERE scope = ?1", [scope])
    }
    .map_err(db)?;
    Ok(())
}

pub(super) fn use_otp(
    conn: &Connection,
    code_hash: &str,
    user: &UserId,
    workstation: &WorkstationId,
    now: DateTime<Utc>,
) -> StoreResult<OtpUse> {
    let now = ts(now);
    // The one statement that decides: only one caller can move used_at from NULL.
    let accepted = conn
        .query_row(
            &format!(
                "UPDATE otps SET used_at = ?4 WHERE code_hash = ?1 AND user_id = ?2 \
                 AND workstation_id = ?3 AND used_at IS NULL AND expires_at > ?4 \
                 RETURNING {OTP_COLS}"
            ),
            params![code_hash, user, workstation, now],
            otp_row,
        )
        .optional()
        .map_err(db)?;
    if let Some(raw) = accepted {
        return Ok(OtpUse::Accepted(finish_otp(raw)?));
    }
    let found = conn
        .query_row(
            &format!("SELECT {OTP_COLS} FROM otps WHERE code_hash = ?1"),
            [code_hash],
            otp_row,
        )
        .optional()
        .map_err(db)?;
    let Some(raw) = found else {
        return Ok(OtpUse::Unknown);
    };
    let row = finish_otp(raw)?;
    Ok(
        if &row.user_id != user || &row.workstation_id != workstation {
            OtpUse::NotYours(row)
        } else if row.used_at.is_some() {
            OtpUse::Used(row)
        } else {
            OtpUse::Expired(row)
        },
    )
}

pub(super) fn release_otp(conn: &Connection, id: &str) -> StoreResult<()> {
    conn.execute("UPDATE otps SET used_at = NULL WHERE id = ?1", [id])
        .map_err(db)?;
    Ok(())
}

pub(super) fn expire_otps(conn: &Connection, now: DateTime<Utc>) -> StoreResult<Vec<OtpRow>> {
    let mut stmt = conn
        .prepare(&format!(
            "UPDATE otps SET expiry_noted = 1 WHERE used_at IS NULL AND expiry_noted = 0 \
             AND expires_at <= ?1 RETURNING {OTP_COLS}"
        ))
        .map_err(db)?;
    let rows = stmt.query_map([ts(now)], otp_row).map_err(db)?;
    rows.map(|r| finish_otp(r.map_err(db)?)).collect()
}

pub(super) fn insert_otp_unless_recent(
    conn: &Connection,
    o: NewOtp,
    since: DateTime<Utc>,
) -> StoreResult<Option<OtpRow>> {
    let inserted = conn
        .execute(
            "INSERT INTO otps (id, code_hash, user_id, workstation_id, team_id, issued_at, \
             expires_at, emergency, reason, sealed) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 WHERE NOT EXISTS (\
             SELECT 1 FROM otps WHERE user_id = ?3 AND workstation_id = ?4 \
             AND emergency = ?8 AND issued_at > ?11)",
            params![
                o.id,
                o.code_hash,
                o.user_id,
                o.workstation_id,
                o.team_id,
                ts(o.issued_at),
                ts(o.expires_at),
                o.emergency,
                o.reason,
                o.sealed,
                ts(since)
            ],
        )
        .map_err(db)?;
    if inserted == 1 {
        return Ok(None);
    }
    // Still under the store's one connection lock: the row that refused it.
    conn.query_row(
        &format!(
            "SELECT {OTP_COLS} FROM otps WHERE user_id = ?1 AND workstation_id = ?2 \
             AND emergency = ?3 AND issued_at > ?4 ORDER BY issued_at DESC, rowid DESC LIMIT 1"
        ),
        params![o.user_id, o.workstation_id, o.emergency, ts(since)],
        otp_row,
    )
    .optional()
    .map_err(db)?
    .map(finish_otp)
    .transpose()?
    .map(Some)
    .ok_or_else(|| {
        crate::hub::store::StoreError::Database("otp insert refused without a cause".into())
    })
}

pub(super) fn delete_otp(conn: &Connection, id: &str) -> StoreResult<()> {
    conn.execute("DELETE FROM otps WHERE id = ?1", [id])
        .map_err(db)?;
    Ok(())
}

pub(super) fn add_outbox(conn: &Connection, m: NewOutbox) -> StoreResult<i64> {
    conn.execute(
        "INSERT INTO outbox (at, recipients, subject, body_sealed, kind, why, otp_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            ts(m.at),
            m.recipients,
            m.subject,
            m.body_sealed,
            m.kind,
            m.why,
            m.otp_id
        ],
    )
    .map_err(db)?;
    Ok(conn.last_insert_rowid())
}

impl OtpStore for SqliteStore {
    fn set_workstation_otp(&self, id: &WorkstationId, required: bool) -> StoreResult<()> {
        set_workstation_otp(&*self.conn()?, id, required)
    }

    fn set_group_otp(
        &self,
        team: &TeamId,
        client: Option<&ClientId>,
        required: bool,
    ) -> StoreResult<()> {
        set_group_otp(&*self.conn()?, team, client, required)
    }

    fn otp_groups(&self, team: &TeamId) -> StoreResult<Vec<Option<ClientId>>> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare(
                "SELECT client_id FROM otp_groups WHERE team_id = ?1 \
                 ORDER BY client_id IS NOT NULL, client_id",
            )
            .map_err(db)?;
        let rows = stmt.query_map([team], |r| r.get(0)).map_err(db)?;
        rows.map(|r| r.map_err(db)).collect()
    }

    fn insert_otp(&self, o: NewOtp) -> StoreResult<()> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO otps (id, code_hash, user_id, workstation_id, team_id, issued_at, expires_at, \
             emergency, reason, sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                o.id,
                o.code_hash,
                o.user_id,
                o.workstation_id,
                o.team_id,
                ts(o.issued_at),
                ts(o.expires_at),
                o.emergency,
                o.reason,
                o.sealed
            ],
        )
        .map_err(db)?;
        Ok(())
    }

    fn insert_otp_unless_recent(
        &self,
        o: NewOtp,
        since: DateTime<Utc>,
    ) -> StoreResult<Option<OtpRow>> {
        insert_otp_unless_recent(&*self.conn()?, o, since)
    }

    fn delete_otp(&self, id: &str) -> StoreResult<()> {
        delete_otp(&*self.conn()?, id)
    }

    fn next_otp_expiry(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let conn = self.conn()?;
        let next: Option<String> = conn
            .query_row(
                "SELECT MIN(expires_at) FROM otps WHERE used_at IS NULL AND expiry_noted = 0",
                [],
                |r| r.get(0),
            )
            .map_err(db)?;
        next.as_deref().map(parse_ts).transpose()
    }

    fn latest_otp(
        &self,
        user: &UserId,
        workstation: &WorkstationId,
        emergency: Option<bool>,
    ) -> StoreResult<Option<OtpRow>> {
        let conn = self.conn()?;
        conn.query_row(
            &format!(
                "SELECT {OTP_COLS} FROM otps WHERE user_id = ?1 AND workstation_id = ?2 \
                 AND (?3 IS NULL OR emergency = ?3) ORDER BY issued_at DESC, rowid DESC LIMIT 1"
            ),
            params![user, workstation, emergency],
            otp_row,
        )
        .optional()
        .map_err(db)?
        .map(finish_otp)
        .transpose()
    }

    fn use_otp(
        &self,
        code_hash: &str,
        user: &UserId,
        workstation: &WorkstationId,
        now: DateTime<Utc>,
    ) -> StoreResult<OtpUse> {
        use_otp(&*self.conn()?, code_hash, user, workstation, now)
    }

    fn release_otp(&self, id: &str) -> StoreResult<()> {
        release_otp(&*self.conn()?, id)
    }

    fn expire_otps(&self, now: DateTime<Utc>) -> StoreResult<Vec<OtpRow>> {
        expire_otps(&*self.conn()?, now)
    }

    fn admin_emails(&self, team: &TeamId) -> StoreResult<Vec<String>> {
        let conn = self.conn()?;
        // An owner's role column says 'admin' too (hub_owners lists them).
        let mut stmt = conn
            .prepare(
                "SELECT email FROM users WHERE role = 'admin' AND team_id = ?1 \
                 AND email <> '' ORDER BY name",
            )
            .map_err(db)?;
        let rows = stmt.query_map([team], |r| r.get(0)).map_err(db)?;
        rows.map(|r| r.map_err(db)).collect()
    }

    fn add_outbox(&self, m: NewOutbox) -> StoreResult<i64> {
        add_outbox(&*self.conn()?, m)
    }

    fn outbox(
        &self,
        reader: &UserId,
        admin_of: Option<&TeamId>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxRow>> {
        let conn = self.conn()?;
        // Every message carries a code: its recipients follow from the code's row.
        let mut stmt = conn
            .prepare(
                "SELECT o.id, o.at, o.recipients, o.subject, o.body_sealed, o.kind, o.why, \
                 o.otp_id FROM outbox o JOIN otps p ON p.id = o.otp_id \
                 WHERE (p.emergency = 0 AND p.user_id = ?1) \
                    OR (p.emergency = 1 AND p.team_id = ?2) \
                 ORDER BY o.id DESC LIMIT ?3",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map(params![reader, admin_of, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })
            .map_err(db)?;
        rows.map(|r| {
            let (id, at, recipients, subject, body_sealed, kind, why, otp_id) = r.map_err(db)?;
            Ok(OutboxRow {
                id,
                at: parse_ts(&at)?,
                recipients,
                subject,
                body_sealed,
                kind,
                why,
                otp_id,
            })
        })
        .collect()
    }
}
