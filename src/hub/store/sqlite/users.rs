//! SQLite side of the user lifecycle (issue 11): see `store::users`.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    SqliteStore, StoreResult, USER_COLS, db, finish_user, new_id, parse_ts, ts, user_record,
};
use crate::hub::store::users::{NewEnrolment, Revocation, RevocationRow, UserStatus, UserStore};
use crate::hub::store::{NewUser, StoreError};
use crate::protocol::{Role, TeamId, UserId, UserInfo};

/// Revocation log entries older than this are pruned: every hub has long since read them.
const REVOCATION_KEEP_HOURS: i64 = 24;

/// Delete `user`'s login tokens and log why, inside the caller's transaction.
pub(super) fn revoke_in(conn: &Connection, user: &UserId, why: Revocation) -> StoreResult<usize> {
    let now = Utc::now();
    let deleted = conn
        .execute("DELETE FROM login_tokens WHERE user_id = ?1", [user])
        .map_err(db)?;
    conn.execute(
        "DELETE FROM user_revocations WHERE at < ?1",
        [ts(now - chrono::Duration::hours(REVOCATION_KEEP_HOURS))],
    )
    .map_err(db)?;
    conn.execute(
        "INSERT INTO user_revocations (user_id, reason, at) VALUES (?1, ?2, ?3)",
        params![user, why.as_str(), ts(now)],
    )
    .map_err(db)?;
    Ok(deleted)
}

pub(super) fn add_user(
    tx: &Connection,
    new: NewUser,
    team: &TeamId,
    enrolment: Option<NewEnrolment>,
) -> StoreResult<UserInfo> {
    let team_name: String = tx
        .query_row("SELECT name FROM teams WHERE id = ?1", [team], |r| r.get(0))
        .optional()
        .map_err(db)?
        .ok_or_else(|| StoreError::Database(format!("no team {team:?}")))?;
    let id = new_id("us")?;
    tx.execute(
        "INSERT INTO users (id, name, email, role, team_id, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![id, new.name, new.email, new.role.as_str(), team, new.password_hash, ts(Utc::now())],
    )
    .map_err(|e| match db(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("user {:?}", new.name)),
        other => other,
    })?;
    if let Some(e) = enrolment {
        tx.execute(
            "INSERT INTO user_enrolments (code_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
            params![e.code_hash, id, ts(e.expires_at)],
        )
        .map_err(db)?;
    }
    Ok(UserInfo {
        id,
        name: new.name,
        email: new.email,
        role: new.role,
        team_id: team.clone(),
        team: team_name,
    })
}

pub(super) fn redeem_enrolment(
    tx: &Connection,
    name: &str,
    code_hash: &str,
    now: DateTime<Utc>,
    password_hash: &str,
) -> StoreResult<Option<UserInfo>> {
    // The DELETE is the single use: of two redemptions of one code, one finds no row.
    let user: Option<String> = tx
        .query_row(
            "DELETE FROM user_enrolments WHERE code_hash = ?1 AND expires_at > ?3 AND user_id = \
             (SELECT id FROM users WHERE name = ?2 AND disabled = 0 AND removed_at IS NULL) \
             RETURNING user_id",
            params![code_hash, name, ts(now)],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?;
    let Some(user) = user else {
        return Ok(None);
    };
    tx.execute(
        "UPDATE users SET password_hash = ?2, failed_logins = 0, locked_until = NULL WHERE id = ?1",
        params![user, password_hash],
    )
    .map_err(db)?;
    let sql =
        format!("SELECT {USER_COLS} FROM users u JOIN teams t ON t.id = u.team_id WHERE u.id = ?1");
    let raw = tx.query_row(&sql, [&user], user_record).map_err(db)?;
    Ok(Some(finish_user(raw)?.info))
}

pub(super) fn set_user_role(tx: &Connection, user: &UserId, role: Role) -> StoreResult<()> {
    tx.execute(
        "UPDATE users SET role = ?2 WHERE id = ?1",
        params![user, role.as_str()],
    )
    .map_err(db)?;
    // Only the open connections end: they hold the old role. A resume reads the new one.
    tx.execute(
        "INSERT INTO user_revocations (user_id, reason, at) VALUES (?1, ?2, ?3)",
        params![user, Revocation::RoleChanged.as_str(), ts(Utc::now())],
    )
    .map_err(db)?;
    Ok(())
}

pub(super) fn set_user_disabled(
    tx: &Connection,
    user: &UserId,
    disabled: bool,
) -> StoreResult<usize> {
    let revoked = if disabled {
        tx.execute("UPDATE users SET disabled = 1 WHERE id = ?1", [user])
            .map_err(db)?;
        revoke_in(tx, user, Revocation::Disabled)?
    } else {
        // Enabling also unlocks: an admin looked at the account.
        tx.execute(
            "UPDATE users SET disabled = 0, failed_logins = 0, locked_until = NULL \
             WHERE id = ?1 AND removed_at IS NULL",
            [user],
        )
        .map_err(db)?;
        0
    };
    Ok(revoked)
}

pub(super) fn remove_user(tx: &Connection, user: &UserId) -> StoreResult<usize> {
    tx.execute(
        "UPDATE users SET disabled = 1, removed_at = ?2, totp_secret = NULL, totp_pending = NULL \
         WHERE id = ?1",
        params![user, ts(Utc::now())],
    )
    .map_err(db)?;
    tx.execute("DELETE FROM user_enrolments WHERE user_id = ?1", [user])
        .map_err(db)?;
    let revoked = revoke_in(tx, user, Revocation::Removed)?;
    Ok(revoked)
}

impl UserStore for SqliteStore {
    fn add_user(
        &self,
        new: NewUser,
        team: &TeamId,
        enrolment: Option<NewEnrolment>,
    ) -> StoreResult<UserInfo> {
        self.in_tx(|tx| add_user(tx, new, team, enrolment))
    }

    fn redeem_enrolment(
        &self,
        name: &str,
        code_hash: &str,
        now: DateTime<Utc>,
        password_hash: &str,
    ) -> StoreResult<Option<UserInfo>> {
        self.in_tx(|tx| redeem_enrolment(tx, name, code_hash, now, password_hash))
    }

    fn enrolment_pending(
        &self,
        name: &str,
        code_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM user_enrolments e JOIN users u ON u.id = e.user_id \
             WHERE e.code_hash = ?1 AND u.name = ?2 AND e.expires_at > ?3 AND u.disabled = 0 \
             AND u.removed_at IS NULL)",
            params![code_hash, name, ts(now)],
            |r| r.get(0),
        )
        .map_err(db)
    }

    fn user_status(&self, user: &UserId) -> StoreResult<UserStatus> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                "SELECT disabled, removed_at IS NOT NULL FROM users WHERE id = ?1",
                [user],
                |r| {
                    Ok(UserStatus {
                        disabled: r.get(0)?,
                        removed: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(db)?
            .unwrap_or_default())
    }

    fn team_user(&self, team: Option<&TeamId>, name_or_id: &str) -> StoreResult<Option<UserInfo>> {
        let conn = self.conn()?;
        let sql = format!(
            "SELECT {USER_COLS} FROM users u JOIN teams t ON t.id = u.team_id \
             WHERE (u.name = ?1 OR u.id = ?1) AND (?2 IS NULL OR u.team_id = ?2) AND u.removed_at IS NULL"
        );
        conn.query_row(&sql, params![name_or_id, team], user_record)
            .optional()
            .map_err(db)?
            .map(|raw| finish_user(raw).map(|r| r.info))
            .transpose()
    }

    fn set_user_role(&self, user: &UserId, role: Role) -> StoreResult<()> {
        self.in_tx(|tx| set_user_role(tx, user, role))
    }

    fn set_user_disabled(&self, user: &UserId, disabled: bool) -> StoreResult<usize> {
        self.in_tx(|tx| set_user_disabled(tx, user, disabled))
    }

    fn remove_user(&self, user: &UserId) -> StoreResult<usize> {
        self.in_tx(|tx| remove_user(tx, user))
    }

    fn revoke_user_logins(&self, user: &UserId, why: Revocation) -> StoreResult<usize> {
        self.in_tx(|tx| revoke_in(tx, user, why))
    }

    fn revocations_after(&self, seq: i64, limit: u32) -> StoreResult<Vec<RevocationRow>> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, user_id, reason, at FROM user_revocations WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map(params![seq, limit], |r| {
                let (reason, at): (String, String) = (r.get(2)?, r.get(3)?);
                Ok((r.get(0)?, r.get(1)?, reason, at))
            })
            .map_err(db)?;
        rows.map(|r| {
            let (seq, user, reason, at): (i64, String, String, String) = r.map_err(db)?;
            Ok(RevocationRow {
                seq,
                user,
                reason: Revocation::parse(&reason),
                at: parse_ts(&at)?,
            })
        })
        .collect()
    }

    fn last_revocation(&self) -> StoreResult<i64> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM user_revocations",
            [],
            |r| r.get(0),
        )
        .map_err(db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::store::Store;

    fn store_with_user() -> (SqliteStore, UserInfo, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open_dir(dir.path()).expect("store");
        let user = store
            .create_user(NewUser {
                name: "ann".into(),
                email: "ann@example.com".into(),
                role: Role::Technician,
                team: "desk".into(),
                password_hash: "x".into(),
            })
            .expect("user");
        (store, user, dir)
    }

    #[test]
    fn an_enrolment_code_is_redeemed_once() {
        let (store, ann, _dir) = store_with_user();
        let now = Utc::now();
        let new = NewUser {
            name: "bob".into(),
            email: "bob@example.com".into(),
            role: Role::Technician,
            team: String::new(),
            password_hash: "unusable".into(),
        };
        let enrolment = NewEnrolment {
            code_hash: "h".into(),
            expires_at: now + chrono::Duration::hours(1),
        };
        store
            .add_user(new, &ann.team_id, Some(enrolment))
            .expect("add");
        assert!(
            store
                .redeem_enrolment("ann", "h", now, "p")
                .expect("redeem")
                .is_none(),
            "another user's name"
        );
        let bob = store
            .redeem_enrolment("bob", "h", now, "p")
            .expect("redeem");
        assert_eq!(bob.map(|b| b.team), Some("desk".to_owned()));
        assert!(
            store
                .redeem_enrolment("bob", "h", now, "q")
                .expect("again")
                .is_none(),
            "single use"
        );
    }

    #[test]
    fn the_hard_lock_and_disabling_revoke_tokens_and_are_logged() {
        let (store, ann, _dir) = store_with_user();
        let later = Utc::now() + chrono::Duration::days(1);
        store
            .insert_login_token("t1", &ann.id, later)
            .expect("token");
        assert_eq!(store.last_revocation().expect("last"), 0);
        for _ in 0..crate::hub::MAX_FAILED_LOGINS {
            store.record_login_failure(&ann.id, None).expect("failure");
        }
        assert!(
            store
                .user_by_token("t1", Utc::now())
                .expect("lookup")
                .is_none(),
            "locked: token revoked"
        );
        let log = store.revocations_after(0, 10).expect("log");
        assert_eq!(
            log.len(),
            1,
            "one revocation when the lock is reached: {log:?}"
        );
        assert_eq!(log[0].reason, Some(Revocation::Locked));
        store
            .insert_login_token("t2", &ann.id, later)
            .expect("token");
        assert_eq!(store.set_user_disabled(&ann.id, true).expect("disable"), 1);
        assert_eq!(
            store.user_status(&ann.id).expect("status"),
            UserStatus {
                disabled: true,
                removed: false
            }
        );
        let log = store.revocations_after(log[0].seq, 10).expect("log");
        assert_eq!(log[0].reason, Some(Revocation::Disabled));
        store.set_user_disabled(&ann.id, false).expect("enable");
        let rec = store.user_by_name("ann").expect("ann").expect("exists");
        assert_eq!(rec.failed_logins, 0, "enabling unlocks");
    }
}
