//! SQLite side of technician 2FA, hub settings and the audit search (issue 5).

use rusqlite::{OptionalExtension, params};

use super::{
    AUDIT_COLS, SqliteStore, StoreResult, TwoFactorRecord, USER_COLS, audit_row, db, finish_audit,
    finish_user, ts, user_record,
};
use crate::protocol::{AuditQuery, AuditRecord, TeamId, UserId, UserInfo};

const TWOFA_COLS: &str =
    "u.totp_required, u.totp_secret, u.totp_pending, u.totp_last_step, u.disabled";

fn record_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<TwoFactorRecord> {
    Ok(TwoFactorRecord {
        required: r.get(at)?,
        secret: r.get(at + 1)?,
        pending: r.get(at + 2)?,
        last_step: r.get(at + 3)?,
        disabled: r.get(at + 4)?,
    })
}

impl SqliteStore {
    pub(super) fn two_factor_record(&self, user: &UserId) -> StoreResult<TwoFactorRecord> {
        let conn = self.conn()?;
        let sql = format!("SELECT {TWOFA_COLS} FROM users u WHERE u.id = ?1");
        Ok(conn
            .query_row(&sql, [user], |r| record_at(r, 0))
            .optional()
            .map_err(db)?
            .unwrap_or_default())
    }

    pub(super) fn two_factor_set_required(&self, user: &UserId, required: bool) -> StoreResult<()> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE users SET totp_required = ?2 WHERE id = ?1",
            params![user, required],
        )
        .map_err(db)?;
        Ok(())
    }

    pub(super) fn two_factor_set_pending(&self, user: &UserId, sealed: &str) -> StoreResult<()> {
        super::changes::set_two_factor_pending(&*self.conn()?, user, sealed)
    }

    pub(super) fn two_factor_activate(
        &self,
        user: &UserId,
        sealed: &str,
        step: i64,
    ) -> StoreResult<bool> {
        let conn = self.conn()?;
        let changed = conn
            .execute(
                "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = ?3 \
                 WHERE id = ?1 AND totp_pending = ?2 AND (totp_last_step IS NULL OR totp_last_step < ?3)",
                params![user, sealed, step],
            )
            .map_err(db)?;
        Ok(changed == 1)
    }

    pub(super) fn two_factor_delete_tokens(&self, user: &UserId) -> StoreResult<usize> {
        let conn = self.conn()?;
        conn.execute("DELETE FROM login_tokens WHERE user_id = ?1", [user])
            .map_err(db)
    }

    pub(super) fn two_factor_reset(&self, user: &UserId) -> StoreResult<()> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL WHERE id = ?1",
            [user],
        )
        .map_err(db)?;
        Ok(())
    }

    /// One conditional UPDATE: SQLite serialises writers, so the check and the write cannot
    /// interleave with another login's.
    pub(super) fn two_factor_accept_step(&self, user: &UserId, step: i64) -> StoreResult<bool> {
        let conn = self.conn()?;
        let changed = conn
            .execute(
                "UPDATE users SET totp_last_step = ?2 \
                 WHERE id = ?1 AND totp_secret IS NOT NULL AND (totp_last_step IS NULL OR totp_last_step < ?2)",
                params![user, step],
            )
            .map_err(db)?;
        Ok(changed == 1)
    }

    pub(super) fn two_factor_users(&self) -> StoreResult<Vec<(UserInfo, TwoFactorRecord)>> {
        let conn = self.conn()?;
        let sql = format!(
            "SELECT {USER_COLS}, {TWOFA_COLS} FROM users u JOIN teams t ON t.id = u.team_id \
             WHERE u.removed_at IS NULL ORDER BY u.name"
        );
        let mut stmt = conn.prepare(&sql).map_err(db)?;
        let rows = stmt
            .query_map([], |r| Ok((user_record(r)?, record_at(r, 9)?)))
            .map_err(db)?;
        rows.map(|r| {
            let (raw, rec) = r.map_err(db)?;
            Ok((finish_user(raw)?.info, rec))
        })
        .collect()
    }

    pub(super) fn hub_setting(&self, key: &str) -> StoreResult<Option<String>> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT value FROM hub_settings WHERE key = ?1",
            [key],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)
    }

    pub(super) fn set_hub_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO hub_settings (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )
        .map_err(db)?;
        Ok(())
    }

    pub(super) fn audit_search(
        &self,
        team: Option<&TeamId>,
        q: &AuditQuery,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Vec<AuditRecord>> {
        let conn = self.conn()?;
        // A workstation matches by id (the target) or by the host name the detail carries;
        // a kind matches exactly or as a dotted prefix ("login" finds login.ok, login.fail).
        let sql = format!(
            "SELECT {AUDIT_COLS} FROM audit WHERE (?1 IS NULL OR team_id = ?1) AND (?2 IS NULL OR id < ?2) \
             AND (?3 IS NULL OR actor = ?3) \
             AND (?4 IS NULL OR target = ?4 OR json_extract(detail, '$.hostname') = ?4 \
                  OR json_extract(detail, '$.workstation') = ?4) \
             AND (?5 IS NULL OR action = ?5 OR substr(action, 1, length(?5) + 1) = ?5 || '.') \
             AND (?6 IS NULL OR at >= ?6) AND (?7 IS NULL OR at < ?7) \
             ORDER BY id DESC LIMIT ?8"
        );
        let mut stmt = conn.prepare(&sql).map_err(db)?;
        let rows = stmt
            .query_map(
                params![
                    team,
                    before,
                    q.actor,
                    q.workstation,
                    q.kind,
                    q.since.map(ts),
                    q.until.map(ts),
                    limit
                ],
                audit_row,
            )
            .map_err(db)?;
        rows.map(|r| finish_audit(r.map_err(db)?)).collect()
    }
}
