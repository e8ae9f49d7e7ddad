//! SQLite side of [`CredentialStore`]: the `support_credentials` and `guest_tokens` tables.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{SqliteStore, db, parse_ts, ts};
use crate::hub::store::{
    CredentialRecord, CredentialStore, IssueOutcome, NewCredential, StoreError, StoreResult,
};
use crate::protocol::{
    CredentialId, CredentialInfo, CredentialScopes, CredentialState, CredentialTarget, TeamId,
};

const COLS: &str = "c.id, c.user_name, c.target_kind, c.target_id, c.target_label, c.scope_control, \
     c.scope_chat, c.scope_history, u.name, c.issued_at, c.expires_at, c.revoked_at, c.team_id, \
     c.issued_by, u.email, c.password_hash, c.code_hash, c.failed_logins, c.locked_until, c.expiry_noted";

const FROM: &str = "support_credentials c JOIN users u ON u.id = c.issued_by";

struct Raw {
    id: String,
    user: String,
    kind: String,
    target_id: String,
    target_label: String,
    scopes: CredentialScopes,
    issued_by: String,
    issued_at: String,
    expires_at: String,
    revoked_at: Option<String>,
    team_id: String,
    issued_by_id: String,
    issued_by_email: String,
    password_hash: String,
    code_hash: String,
    failed_logins: u32,
    locked_until: Option<String>,
    expiry_noted: bool,
}

fn row(r: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok(Raw {
        id: r.get(0)?,
        user: r.get(1)?,
        kind: r.get(2)?,
        target_id: r.get(3)?,
        target_label: r.get(4)?,
        scopes: CredentialScopes {
            control: r.get(5)?,
            chat: r.get(6)?,
            history: r.get(7)?,
        },
        issued_by: r.get(8)?,
        issued_at: r.get(9)?,
        expires_at: r.get(10)?,
        revoked_at: r.get(11)?,
        team_id: r.get(12)?,
        issued_by_id: r.get(13)?,
        issued_by_email: r.get(14)?,
        password_hash: r.get(15)?,
        code_hash: r.get(16)?,
        failed_logins: r.get(17)?,
        locked_until: r.get(18)?,
        expiry_noted: r.get(19)?,
    })
}

fn finish(raw: Raw) -> StoreResult<CredentialRecord> {
    let target = match raw.kind.as_str() {
        "workstation" => CredentialTarget::Workstation {
            workstation: raw.target_id,
        },
        "client" => CredentialTarget::Client {
            client: raw.target_id,
        },
        other => return Err(StoreError::Corrupt(format!("credential target {other:?}"))),
    };
    let revoked_at = raw.revoked_at.as_deref().map(parse_ts).transpose()?;
    Ok(CredentialRecord {
        info: CredentialInfo {
            id: raw.id,
            user: raw.user,
            target,
            target_label: raw.target_label,
            scopes: raw.scopes,
            issued_by: raw.issued_by,
            issued_at: parse_ts(&raw.issued_at)?,
            expires_at: parse_ts(&raw.expires_at)?,
            state: if revoked_at.is_some() {
                CredentialState::Revoked
            } else if raw.expiry_noted {
                CredentialState::Expired
            } else {
                CredentialState::Active
            },
            revoked_at,
        },
        team_id: raw.team_id,
        issued_by_id: raw.issued_by_id,
        issued_by_email: raw.issued_by_email,
        password_hash: raw.password_hash,
        code_hash: raw.code_hash,
        failed_logins: raw.failed_logins,
        locked_until: raw.locked_until.as_deref().map(parse_ts).transpose()?,
        expiry_noted: raw.expiry_noted,
    })
}

fn credentials_in(
    conn: &Connection,
    clause: &str,
    args: &[&dyn rusqlite::ToSql],
) -> StoreResult<Vec<CredentialRecord>> {
    let sql = format!("SELECT {COLS} FROM {FROM} WHERE {clause} ORDER BY c.issued_at DESC");
    let mut stmt = conn.prepare(&sql).map_err(db)?;
    let raws = stmt
        .query_map(args, row)
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    raws.into_iter().map(finish).collect()
}

pub(super) fn insert_in(conn: &Connection, new: &NewCredential) -> StoreResult<()> {
    let i = &new.info;
    conn.execute(
        "INSERT INTO support_credentials (id, team_id, issued_by, user_name, password_hash, code_hash, \
         target_kind, target_id, target_label, scope_control, scope_chat, scope_history, issued_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            i.id,
            new.team_id,
            new.issued_by_id,
            i.user,
            new.password_hash,
            new.code_hash,
            i.target.kind(),
            i.target.id(),
            i.target_label,
            i.scopes.control,
            i.scopes.chat,
            i.scopes.history,
            ts(i.issued_at),
            ts(i.expires_at),
        ],
    )
    .map_err(db)?;
    Ok(())
}

/// Revoke one credential and drop its guests' tokens; true when this call revoked it.
pub(super) fn revoke_in(
    conn: &Connection,
    id: &CredentialId,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    let n = conn
        .execute(
            "UPDATE support_credentials SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, ts(at)],
        )
        .map_err(db)?;
    conn.execute("DELETE FROM guest_tokens WHERE credential_id = ?1", [id])
        .map_err(db)?;
    Ok(n == 1)
}

/// The issuer's credentials for the same target that are still active at `now`.
pub(super) fn active_for_in(
    conn: &Connection,
    new: &NewCredential,
    now: DateTime<Utc>,
) -> StoreResult<Option<CredentialRecord>> {
    let now = ts(now);
    let (kind, target) = (new.info.target.kind(), new.info.target.id());
    Ok(credentials_in(
        conn,
        "c.team_id = ?1 AND c.issued_by = ?2 AND c.target_kind = ?3 AND c.target_id = ?4 \
         AND c.revoked_at IS NULL AND c.expires_at > ?5",
        &[&new.team_id, &new.issued_by_id, &kind, &target, &now],
    )?
    .into_iter()
    .next())
}

impl SqliteStore {
    fn credentials_where(
        &self,
        clause: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> StoreResult<Vec<CredentialRecord>> {
        credentials_in(&*self.conn()?, clause, args)
    }

    fn one_credential(
        &self,
        clause: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> StoreResult<Option<CredentialRecord>> {
        Ok(self.credentials_where(clause, args)?.into_iter().next())
    }
}

impl CredentialStore for SqliteStore {
    fn insert_credential(&self, new: NewCredential) -> StoreResult<()> {
        insert_in(&*self.conn()?, &new)
    }

    fn issue_credential(
        &self,
        new: NewCredential,
        replacing: Option<&CredentialId>,
        now: DateTime<Utc>,
    ) -> StoreResult<IssueOutcome> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let revoked = match replacing {
            Some(old) => revoke_in(&tx, old, now)?,
            None => false,
        };
        if let Some(active) = active_for_in(&tx, &new, now)? {
            // Dropping `tx` rolls back: a replaced credential stays as it was.
            return Ok(IssueOutcome::AlreadyActive(Box::new(active)));
        }
        insert_in(&tx, &new)?;
        tx.commit().map_err(db)?;
        Ok(IssueOutcome::Issued { revoked })
    }

    fn credential(&self, id: &CredentialId) -> StoreResult<Option<CredentialRecord>> {
        self.one_credential("c.id = ?1", &[id])
    }

    fn credential_by_user(&self, user: &str) -> StoreResult<Option<CredentialRecord>> {
        self.one_credential("c.user_name = ?1", &[&user])
    }

    fn team_credentials(
        &self,
        team: &TeamId,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<CredentialRecord>> {
        let since = ts(since);
        self.credentials_where(
            "c.team_id = ?1 AND (c.issued_at >= ?2 OR c.expires_at >= ?2)",
            &[team, &since],
        )
    }

    fn live_credentials(&self) -> StoreResult<Vec<CredentialRecord>> {
        self.credentials_where("c.revoked_at IS NULL AND c.expiry_noted = 0", &[])
    }

    fn revoke_credential(&self, id: &CredentialId, at: DateTime<Utc>) -> StoreResult<bool> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(db)?;
        let changed = revoke_in(&tx, id, at)?;
        tx.commit().map_err(db)?;
        Ok(changed)
    }

    fn note_credential_expired(&self, id: &CredentialId) -> StoreResult<bool> {
        self.in_tx(|tx| super::changes::note_credential_expired(tx, id))
    }

    fn record_guest_failure(
        &self,
        id: &CredentialId,
        locked_until: Option<DateTime<Utc>>,
    ) -> StoreResult<u32> {
        super::changes::record_guest_failure(&*self.conn()?, id, locked_until)
    }

    fn reset_guest_failures(&self, id: &CredentialId) -> StoreResult<()> {
        super::changes::reset_guest_failures(&*self.conn()?, id)
    }

    fn insert_guest_token(
        &self,
        token_hash: &str,
        id: &CredentialId,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        super::changes::insert_guest_token(&*self.conn()?, token_hash, id, expires_at)
    }

    fn credential_by_guest_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<CredentialRecord>> {
        let id: Option<String> = {
            let conn = self.conn()?;
            conn.query_row(
                "SELECT credential_id FROM guest_tokens WHERE token_hash = ?1 AND expires_at > ?2",
                params![token_hash, ts(now)],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?
        };
        match id {
            Some(id) => self.credential(&id),
            None => Ok(None),
        }
    }

    fn delete_guest_token(&self, token_hash: &str) -> StoreResult<()> {
        super::changes::delete_guest_token(&*self.conn()?, token_hash).map(|_| ())
    }
}
