//! SQLite side of the audit chain (issue 11): appending a record in the same transaction as the
//! change it records, with the signed head written beside the database; verifying; exporting.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    AuditRecord, CHAIN_COLS, GENESIS, HeadFile, NewAudit, RawAudit, SqliteStore, Store, StoreError,
    StoreResult, chain, chain_record, chain_row, db, finish_audit, ts,
};
use crate::hub::audit::{AuditReport, ChainStart, ExportLine};

/// The chain's last record (id, link), or (0, genesis) when empty.
fn tail(conn: &Connection) -> StoreResult<(i64, String)> {
    Ok(conn
        .query_row(
            "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db)?
        .unwrap_or((0, GENESIS.to_owned())))
}

fn tampered(what: String) -> StoreError {
    StoreError::Corrupt(format!(
        "{what}: nothing more is audited (so audited changes are refused) until an operator runs \
         `tether admin audit verify` and then `tether admin audit reseal`"
    ))
}

impl SqliteStore {
    /// The head beside the database, checked against this hub's key.
    fn head(&self) -> HeadFile {
        chain::read_head(&self.dir, self.audit_keys.public_key())
    }

    /// The audit chain's public key (hex), for auditors to pin.
    pub fn audit_public_key(&self) -> String {
        self.audit_keys.public_key_hex()
    }

    /// At open: a database without a head (new, or from before the chain was keyed) gets one;
    /// its existing records stay as they are and the first keyed record says how many there
    /// were. A missing head over keyed records is not replaced: `verify` names it.
    pub(super) fn start_audit_head(&self) -> StoreResult<()> {
        if self.head() != HeadFile::Missing {
            return Ok(());
        }
        let (count, last, keyed) = {
            let conn = self.conn()?;
            let (count, last) = tail(&conn)?;
            let keyed: bool = conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM audit WHERE link <> 'sha256')",
                    [],
                    |r| r.get(0),
                )
                .map_err(db)?;
            (count, last, keyed)
        };
        if keyed {
            tracing::error!("the audit head is missing: run `tether admin audit verify`");
            return Ok(());
        }
        let head = self
            .audit_keys
            .sign_head(count, &last, count + 1, &ts(Utc::now()));
        chain::write_head(&self.dir, &head)
            .map_err(|e| StoreError::Database(format!("writing the audit head: {e}")))?;
        if count > 0 {
            self.append_audit(NewAudit {
                at: Utc::now(),
                actor: "hub".into(),
                actor_email: None,
                team_id: None,
                action: "audit.keyed".into(),
                target: None,
                detail: serde_json::json!({ "unkeyed_records": count, "last_unkeyed_link": last }),
            })?;
        }
        Ok(())
    }

    /// Make a change and append its audit record in one transaction: if the change, the record
    /// or the commit fails, neither is kept. `audit` sees what the change returned and may say
    /// there is nothing to record (nothing changed).
    pub(super) fn audited<T>(
        &self,
        change: impl FnOnce(&Connection) -> StoreResult<T>,
        audit: impl FnOnce(&T) -> Option<NewAudit>,
    ) -> StoreResult<(T, Option<AuditRecord>)> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let value = change(&tx)?;
        let appended = match audit(&value) {
            Some(entry) => Some(self.append_in(&tx, entry)?),
            None => None,
        };
        tx.commit().map_err(db)?;
        // Still under the store's lock, so this process's heads are written in order.
        let record = match appended {
            Some((raw, keyed_from)) => {
                self.advance_head(raw.id, &raw.hash, keyed_from);
                Some(finish_audit(raw)?)
            }
            None => None,
        };
        Ok((value, record))
    }

    /// Append a record inside `tx`, after checking that the log still extends its signed head
    /// (so records cut while the hub runs are not covered by a new head). Returns the record
    /// and where keyed links start.
    fn append_in(&self, tx: &Connection, e: NewAudit) -> StoreResult<(RawAudit, i64)> {
        let head = match self.head() {
            HeadFile::Valid(head) => head,
            HeadFile::Missing => {
                return Err(tampered("the audit head (audit.head) is missing".into()));
            }
            HeadFile::Invalid(why) => return Err(tampered(why)),
        };
        let (last_id, prev_hash) = tail(tx)?;
        let signed_link: Option<String> = if head.count == 0 {
            Some(GENESIS.to_owned())
        } else {
            tx.query_row("SELECT hash FROM audit WHERE id = ?1", [head.count], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db)?
        };
        if last_id < head.count || signed_link.as_deref() != Some(&head.last) {
            return Err(tampered(format!(
                "the audit log no longer extends its signed head (record {})",
                head.count
            )));
        }
        let detail =
            serde_json::to_string(&e.detail).map_err(|e| StoreError::Database(e.to_string()))?;
        let mut raw = RawAudit {
            id: last_id + 1,
            at: ts(e.at),
            actor: e.actor,
            actor_email: e.actor_email,
            team_id: e.team_id,
            action: e.action,
            target: e.target,
            detail,
            hash: String::new(),
            prev_hash,
        };
        raw.hash = chain::keyed_link(self.audit_keys.chain_key(), &raw.prev_hash, &raw.fields());
        tx.execute(
            "INSERT INTO audit (id, at, actor, actor_email, team_id, action, target, detail, prev_hash, hash, link) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'hmac-sha256')",
            params![
                raw.id,
                raw.at,
                raw.actor,
                raw.actor_email,
                raw.team_id,
                raw.action,
                raw.target,
                raw.detail,
                raw.prev_hash,
                raw.hash
            ],
        )
        .map_err(db)?;
        Ok((raw, head.keyed_from))
    }

    /// Sign and write the head for record `id` (committed). A failure here is logged, not
    /// returned: the change and its record are in; a head one behind is only a note to
    /// `verify`, and the next append writes a new one.
    fn advance_head(&self, id: i64, link: &str, keyed_from: i64) {
        // Another process (`tether admin`) may have appended and signed a newer head.
        if let HeadFile::Valid(h) = self.head()
            && h.count > id
        {
            return;
        }
        let head = self
            .audit_keys
            .sign_head(id, link, keyed_from, &ts(Utc::now()));
        if let Err(e) = chain::write_head(&self.dir, &head) {
            tracing::error!(%e, id, "cannot write the audit head");
        }
    }

    /// Start a new head at the log as it is now, after an operator has looked at what
    /// `verify` found; the reseal is the first record under the new head, with `reason`.
    pub fn reseal_audit(&self, actor: &str, reason: &str) -> StoreResult<AuditRecord> {
        let found = self.audit_report()?;
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let (count, last) = tail(&tx)?;
        let keyed_from = found.keyed_from.min(count + 1);
        let head = self
            .audit_keys
            .sign_head(count, &last, keyed_from, &ts(Utc::now()));
        chain::write_head(&self.dir, &head)
            .map_err(|e| StoreError::Database(format!("writing the audit head: {e}")))?;
        let findings: Vec<String> = found.findings.iter().map(ToString::to_string).collect();
        let (raw, keyed_from) = self.append_in(
            &tx,
            NewAudit {
                at: Utc::now(),
                actor: actor.into(),
                actor_email: None,
                team_id: None,
                action: "audit.reseal".into(),
                target: None,
                detail: serde_json::json!({ "reason": reason, "found": findings }),
            },
        )?;
        tx.commit().map_err(db)?;
        self.advance_head(raw.id, &raw.hash, keyed_from);
        finish_audit(raw)
    }

    pub(super) fn audit_report(&self) -> StoreResult<AuditReport> {
        let head = self.head();
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare(&format!("SELECT {CHAIN_COLS} FROM audit ORDER BY id"))
            .map_err(db)?;
        let rows = stmt.query_map([], chain_row).map_err(db)?;
        chain::verify(
            rows.map(|r| r.map_err(|e| e.to_string()).and_then(chain_record)),
            &ChainStart::default(),
            &head,
            self.audit_keys.chain_key(),
        )
        .map_err(StoreError::Corrupt)
    }

    /// Write the records from the first at or after `since` up to the signed head as JSON
    /// lines (see [`ExportLine`]), with the chain key when `with_key`. Returns how many.
    pub(super) fn audit_export(
        &self,
        since: Option<DateTime<Utc>>,
        with_key: bool,
        out: &mut dyn std::io::Write,
    ) -> StoreResult<u64> {
        let io = |e: std::io::Error| StoreError::Database(format!("writing the export: {e}"));
        let line = |out: &mut dyn std::io::Write, l: &ExportLine| -> StoreResult<()> {
            serde_json::to_writer(&mut *out, l).map_err(|e| io(e.into()))?;
            out.write_all(b"\n").map_err(io)
        };
        let conn = self.conn()?;
        // Under the store's lock, so the head read is the one for these records.
        let head = self.head();
        let upto = match &head {
            HeadFile::Valid(h) => h.count,
            _ => i64::MAX,
        };
        let first: Option<(i64, String)> = conn
            .query_row(
                "SELECT id, prev_hash FROM audit WHERE (?1 IS NULL OR at >= ?1) AND id <= ?2 \
                 ORDER BY id LIMIT 1",
                params![since.map(ts), upto],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db)?;
        let (first_id, prev_hash) = first.unwrap_or((upto.saturating_add(1), String::new()));
        let (head_ref, head_problem) = match &head {
            HeadFile::Valid(h) => (Some(h), None),
            HeadFile::Missing => (None, Some("missing".to_owned())),
            HeadFile::Invalid(why) => (None, Some(why.clone())),
        };
        line(
            out,
            &ExportLine::Header {
                format: "tether-audit-export".into(),
                version: 1,
                first_id,
                prev_hash,
                public_key: self.audit_keys.public_key_hex(),
                chain_key: with_key.then(|| hex::encode(self.audit_keys.chain_key())),
                head_problem,
            },
        )?;
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {CHAIN_COLS} FROM audit WHERE id >= ?1 AND id <= ?2 ORDER BY id"
            ))
            .map_err(db)?;
        let rows = stmt
            .query_map(params![first_id, upto], chain_row)
            .map_err(db)?;
        let mut n = 0;
        for row in rows {
            let record = chain_record(row.map_err(db)?).map_err(StoreError::Corrupt)?;
            line(out, &ExportLine::Record(record))?;
            n += 1;
        }
        if let Some(h) = head_ref {
            line(out, &ExportLine::Head(h.clone()))?;
        }
        out.flush().map_err(io)?;
        Ok(n)
    }
}
