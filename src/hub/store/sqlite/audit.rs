//! SQLite side of the audit chain (issue 11): appending a record in the same transaction as the
//! change it records, with the signed head written beside the database; verifying; exporting.

use crate::hub::audit::AuditEvent;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    AUDIT_COLS, AuditRecord, AuditedChange, ChangeOutcome, GENESIS, HeadFile, IssueOutcome,
    NewAudit, RawAudit, SqliteStore, Store, StoreError, StoreResult, audit_row, chain,
    chain_record, changes, credentials, db, finish_audit, ts,
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

/// The first keyed record, as the database keeps it; `None` before the chain was keyed.
fn stored_keyed_from(conn: &Connection) -> StoreResult<Option<i64>> {
    conn.query_row("SELECT MIN(keyed_from) FROM audit_keying", [], |r| r.get(0))
        .map_err(db)
}

fn tampered(what: String) -> StoreError {
    StoreError::Corrupt(format!(
        "{what}: nothing more is audited (so audited changes are refused) until an operator runs \
         `tether admin audit verify` and then `tether admin audit reseal`"
    ))
}

/// Make one audited change inside the transaction `tx`.
pub(super) fn apply(tx: &Connection, change: AuditedChange) -> StoreResult<ChangeOutcome> {
    let done = |rows| Ok(ChangeOutcome::Done { rows });
    match change {
        AuditedChange::ResetTwoFactor { user } => {
            tx.execute(
                "UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL \
                 WHERE id = ?1",
                [&user],
            )
            .map_err(db)?;
            // Logged in the revocation log too: every hub closes the user's consoles.
            done(super::users::revoke_in(
                tx,
                &user,
                crate::hub::store::users::Revocation::TwoFactorReset,
            )?)
        }
        AuditedChange::ActivateTwoFactor { user, sealed, step } => {
            let activated = tx
                .execute(
                    "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = ?3 \
                     WHERE id = ?1 AND totp_pending = ?2 AND (totp_last_step IS NULL OR totp_last_step < ?3)",
                    params![user, sealed, step],
                )
                .map_err(db)?;
            if activated == 1 {
                done(delete_tokens(tx, &user)?)
            } else {
                Ok(ChangeOutcome::Unchanged)
            }
        }
        AuditedChange::SetTwoFactorRequired { user, required } => {
            tx.execute(
                "UPDATE users SET totp_required = ?2 WHERE id = ?1",
                params![user, required],
            )
            .map_err(db)?;
            done(0)
        }
        AuditedChange::SetSetting { key, value } => {
            tx.execute(
                "INSERT INTO hub_settings (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(db)?;
            done(0)
        }
        AuditedChange::SetUnattended { workstation, state } => {
            tx.execute(
                "UPDATE workstations SET unattended = ?2 WHERE id = ?1",
                params![workstation, state.label()],
            )
            .map_err(db)?;
            done(0)
        }
        AuditedChange::UnlockUser { user } => {
            tx.execute(
                "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?1",
                [&user],
            )
            .map_err(db)?;
            done(0)
        }
        AuditedChange::IssueCredential {
            new,
            replacing,
            now,
        } => {
            let revoked = match &replacing {
                Some(old) => credentials::revoke_in(tx, old, now)?,
                None => false,
            };
            if let Some(active) = credentials::active_for_in(tx, &new, now)? {
                return Ok(ChangeOutcome::Issued(IssueOutcome::AlreadyActive(
                    Box::new(active),
                )));
            }
            credentials::insert_in(tx, &new)?;
            Ok(ChangeOutcome::Issued(IssueOutcome::Issued { revoked }))
        }
        AuditedChange::RevokeCredential { id, at } => {
            if credentials::revoke_in(tx, &id, at)? {
                done(0)
            } else {
                Ok(ChangeOutcome::Unchanged)
            }
        }
        AuditedChange::LoginFailed {
            user,
            locked_until,
            trusted_device,
        } => {
            let failures = changes::record_login_failure(tx, &user, locked_until)?;
            if let Some((hash, max)) = trusted_device {
                super::devices::trusted_device_failed(tx, &hash, max)?;
            }
            Ok(ChangeOutcome::Count(failures))
        }
        AuditedChange::LoggedIn {
            user,
            token_hash,
            expires_at,
            clear_failures,
            device,
        } => {
            if clear_failures {
                changes::reset_login_failures(tx, &user)?;
            }
            if let Some((hash, now, until)) = device {
                super::devices::trust_device(tx, &hash, &user, now, until)?;
            }
            changes::insert_login_token(tx, &token_hash, &user, expires_at)?;
            done(0)
        }
        AuditedChange::LoggedOut { token_hash } => {
            done(changes::delete_login_token(tx, &token_hash)?)
        }
        AuditedChange::CreateClient { id, team, name, at } => Ok(ChangeOutcome::Client(
            changes::create_client(tx, &id, &team, &name, at)?,
        )),
        AuditedChange::CreateLink(link) => {
            Ok(ChangeOutcome::Link(changes::create_link(tx, &link)?))
        }
        AuditedChange::RevokeLink { team, link } => Ok(changes::revoke_link(tx, &team, &link)?
            .map_or(ChangeOutcome::Unchanged, ChangeOutcome::Link)),
        AuditedChange::SetSecurityDefaults {
            team,
            client,
            requires,
        } => {
            changes::set_security_defaults(tx, &team, client.as_ref(), requires)?;
            done(0)
        }
        AuditedChange::EnrolWorkstation(new) => Ok(ChangeOutcome::Workstation(Box::new(
            changes::enrol_workstation(tx, &new)?,
        ))),
        AuditedChange::StartSession {
            team,
            session,
            counted,
        } => {
            changes::reset_connect_failures(tx, &counted, &session.workstation_id)?;
            changes::insert_session(tx, &team, &session)?;
            Ok(ChangeOutcome::Session(session))
        }
        AuditedChange::EndSession { id, at, reason } => Ok(changes::end_session(
            tx, &id, at, &reason,
        )?
        .map_or(ChangeOutcome::Unchanged, |s| {
            ChangeOutcome::Session(Box::new(s))
        })),
        AuditedChange::CloseOpenSessions { at, reason } => Ok(ChangeOutcome::Sessions(
            changes::close_open_sessions(tx, at, &reason)?,
        )),
        AuditedChange::ClaimPasscodeReplacement { workstation, after } => Ok(
            changes::claim_passcode_replacement(tx, &workstation, after)?
                .map_or(ChangeOutcome::Unchanged, ChangeOutcome::Count),
        ),
        AuditedChange::CreateUser { new } => Ok(ChangeOutcome::User(Box::new(
            changes::create_user(tx, *new)?,
        ))),
        AuditedChange::AddUser {
            new,
            team,
            enrolment,
        } => Ok(ChangeOutcome::User(Box::new(super::users::add_user(
            tx, *new, &team, enrolment,
        )?))),
        AuditedChange::RedeemEnrolment {
            name,
            code_hash,
            now,
            password_hash,
        } => Ok(
            super::users::redeem_enrolment(tx, &name, &code_hash, now, &password_hash)?
                .map_or(ChangeOutcome::Unchanged, |u| {
                    ChangeOutcome::User(Box::new(u))
                }),
        ),
        AuditedChange::SetUserRole { user, role } => {
            super::users::set_user_role(tx, &user, role)?;
            done(0)
        }
        AuditedChange::SetUserDisabled { user, disabled } => {
            done(super::users::set_user_disabled(tx, &user, disabled)?)
        }
        AuditedChange::RemoveUser { user } => done(super::users::remove_user(tx, &user)?),
        AuditedChange::SetWorkstationOtp {
            workstation,
            required,
        } => {
            super::otp::set_workstation_otp(tx, &workstation, required)?;
            Ok(
                changes::workstation(tx, &workstation)?.map_or(ChangeOutcome::Unchanged, |row| {
                    ChangeOutcome::Workstation(Box::new(row))
                }),
            )
        }
        AuditedChange::SetGroupOtp {
            team,
            client,
            required,
        } => {
            super::otp::set_group_otp(tx, &team, client.as_ref(), required)?;
            done(0)
        }
        AuditedChange::UseOtp {
            code_hash,
            user,
            workstation,
            now,
        } => Ok(ChangeOutcome::Otp(Box::new(super::otp::use_otp(
            tx,
            &code_hash,
            &user,
            &workstation,
            now,
        )?))),
        AuditedChange::IssueOtp { new, since } => Ok(
            match super::otp::insert_otp_unless_recent(tx, *new, since)? {
                None => ChangeOutcome::Done { rows: 1 },
                Some(last) => ChangeOutcome::OtpInTheWay(Box::new(last)),
            },
        ),
        AuditedChange::WithdrawOtp { id } => {
            super::otp::delete_otp(tx, &id)?;
            done(0)
        }
        AuditedChange::AddOutbox(mail) => {
            super::otp::add_outbox(tx, *mail)?;
            done(1)
        }
        AuditedChange::ReleaseOtp { id } => {
            super::otp::release_otp(tx, &id)?;
            done(0)
        }
        AuditedChange::NoteCredentialExpired { id } => {
            if changes::note_credential_expired(tx, &id)? {
                done(0)
            } else {
                Ok(ChangeOutcome::Unchanged)
            }
        }
        AuditedChange::GuestLoginFailed { id, locked_until } => Ok(ChangeOutcome::Count(
            changes::record_guest_failure(tx, &id, locked_until)?,
        )),
        AuditedChange::GuestLoggedIn {
            id,
            token_hash,
            expires_at,
        } => {
            changes::reset_guest_failures(tx, &id)?;
            changes::insert_guest_token(tx, &token_hash, &id, expires_at)?;
            done(0)
        }
        AuditedChange::GuestLoggedOut { token_hash } => {
            done(changes::delete_guest_token(tx, &token_hash)?)
        }
        AuditedChange::StartTwoFactor { user, sealed } => {
            changes::set_two_factor_pending(tx, &user, &sealed)?;
            done(0)
        }
        AuditedChange::ExpireOtps { now } => {
            Ok(ChangeOutcome::Otps(super::otp::expire_otps(tx, now)?))
        }
    }
}

fn delete_tokens(tx: &Connection, user: &str) -> StoreResult<usize> {
    tx.execute("DELETE FROM login_tokens WHERE user_id = ?1", [user])
        .map_err(db)
}

impl SqliteStore {
    /// The head beside the database, checked against this hub's key.
    fn head(&self) -> HeadFile {
        self.head_cache
            .read(&self.dir, self.audit_keys.public_key())
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
        let (count, last) = {
            let mut conn = self.conn()?;
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            if stored_keyed_from(&tx)?.is_some() {
                tracing::error!("the audit head is missing: run `tether admin audit verify`");
                return Ok(());
            }
            let (count, last) = tail(&tx)?;
            tx.execute(
                "INSERT INTO audit_keying (keyed_from) VALUES (?1)",
                [count + 1],
            )
            .map_err(db)?;
            let head = self
                .audit_keys
                .sign_head(count, &last, count + 1, &ts(Utc::now()));
            chain::reset_head(&self.dir, &head)
                .map_err(|e| StoreError::Database(format!("writing the audit head: {e}")))?;
            tx.commit().map_err(db)?;
            (count, last)
        };
        if count > 0 {
            self.append_audit(NewAudit {
                at: Utc::now(),
                actor: "hub".into(),
                actor_email: None,
                team_id: None,
                action: AuditEvent::AuditKeyed,
                target: None,
                detail: serde_json::json!({ "unkeyed_records": count, "last_unkeyed_link": last }),
            })?;
        }
        Ok(())
    }

    /// Make a change and append its audit records in one transaction: if the change, a record
    /// or the commit fails, nothing is kept. `audit` sees what the change returned; no records
    /// means nothing to record, and then nothing is kept either.
    pub(super) fn audited<T>(
        &self,
        change: impl FnOnce(&Connection) -> StoreResult<T>,
        audit: impl FnOnce(&T) -> Vec<NewAudit>,
    ) -> StoreResult<(T, Vec<AuditRecord>)> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let value = change(&tx)?;
        let entries = audit(&value);
        if entries.is_empty() {
            // Nothing to record: nothing is kept (dropping `tx` rolls back).
            return Ok((value, Vec::new()));
        }
        let mut appended = Vec::with_capacity(entries.len());
        for entry in entries {
            appended.push(self.append_in(&tx, entry)?);
        }
        tx.commit().map_err(db)?;
        // Still under the store's lock, so this process's heads are written in order.
        if let Some((raw, keyed_from)) = appended.last() {
            self.advance_head(raw.id, &raw.hash, *keyed_from);
        }
        let records = appended
            .into_iter()
            .map(|(raw, _)| finish_audit(raw))
            .collect::<StoreResult<_>>()?;
        Ok((value, records))
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
            action: e.action.as_str().to_owned(),
            target: e.target,
            detail,
            hash: String::new(),
            prev_hash,
        };
        raw.hash = chain::keyed_link(self.audit_keys.chain_key(), &raw.prev_hash, &raw.fields());
        tx.execute(
            "INSERT INTO audit (id, at, actor, actor_email, team_id, action, target, detail, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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
        if let Err(e) = self.head_cache.write(&self.dir, &head) {
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
        chain::reset_head(&self.dir, &head)
            .map_err(|e| StoreError::Database(format!("writing the audit head: {e}")))?;
        let findings: Vec<String> = found.findings.iter().map(ToString::to_string).collect();
        let (raw, keyed_from) = self.append_in(
            &tx,
            NewAudit {
                at: Utc::now(),
                actor: actor.into(),
                actor_email: None,
                team_id: None,
                action: AuditEvent::AuditReseal,
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
        let keyed_from = stored_keyed_from(&conn)?.unwrap_or(i64::MAX);
        let mut stmt = conn
            .prepare(&format!("SELECT {AUDIT_COLS} FROM audit ORDER BY id"))
            .map_err(db)?;
        let rows = stmt.query_map([], audit_row).map_err(db)?;
        chain::verify(
            rows.map(|r| {
                r.map(|raw| chain_record(raw, keyed_from))
                    .map_err(|e| e.to_string())
            }),
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
                "SELECT {AUDIT_COLS} FROM audit WHERE id >= ?1 AND id <= ?2 ORDER BY id"
            ))
            .map_err(db)?;
        let rows = stmt
            .query_map(params![first_id, upto], audit_row)
            .map_err(db)?;
        let keyed_from = match &head {
            HeadFile::Valid(h) => h.keyed_from,
            _ => stored_keyed_from(&conn)?.unwrap_or(i64::MAX),
        };
        let mut n = 0;
        for row in rows {
            let record = chain_record(row.map_err(db)?, keyed_from);
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

#[cfg(test)]
mod tests {
    use super::super::{DB_FILE, MIGRATIONS, NewUser, Store};
    use super::*;
    use crate::hub::audit::{AuditFields, AuditKeys, Finding, HEAD_FILE};
    use crate::protocol::Role;

    fn entry(action: AuditEvent) -> NewAudit {
        NewAudit {
            at: Utc::now(),
            actor: "ann".into(),
            actor_email: None,
            team_id: None,
            action,
            target: None,
            detail: serde_json::json!({}),
        }
    }

    fn raw(dir: &std::path::Path) -> Connection {
        let conn = Connection::open(dir.join(DB_FILE)).expect("open");
        conn.execute_batch(
            "DROP TRIGGER IF EXISTS audit_append_only_update; \
             DROP TRIGGER IF EXISTS audit_append_only_delete;",
        )
        .expect("drop the guards");
        conn
    }

    #[test]
    fn an_unkeyed_log_is_kept_and_the_keyed_chain_starts_after_it() {
        let dir = tempfile::tempdir().expect("dir");
        // A database as the hub before issue 11 left it: three records with SHA-256 links.
        {
            let conn = Connection::open(dir.path().join(DB_FILE)).expect("open");
            for sql in &MIGRATIONS[..7] {
                conn.execute_batch(sql).expect("migrate");
            }
            conn.pragma_update(None, "user_version", 7)
                .expect("version");
            let mut prev = GENESIS.to_owned();
            for id in 1..=3 {
                let at = format!("2026-01-0{id}T00:00:00.000000Z");
                let f = AuditFields {
                    id,
                    at: &at,
                    actor: "ann",
                    actor_email: None,
                    team_id: None,
                    action: "login.ok",
                    target: None,
                    detail: "{}",
                };
                let hash = chain::chain_hash(&prev, &f);
                conn.execute(
                    "INSERT INTO audit (id, at, actor, action, detail, prev_hash, hash) \
                     VALUES (?1, ?2, 'ann', 'login.ok', '{}', ?3, ?4)",
                    params![id, at, prev, hash],
                )
                .expect("insert");
                prev = hash;
            }
        }
        let store = SqliteStore::open_dir(dir.path()).expect("open and migrate");
        let report = store.verify_audit().expect("verify");
        assert!(report.intact(), "{report:?}");
        assert_eq!((report.records, report.keyed_from), (4, 4));
        let keyed = store
            .search_audit(None, &Default::default(), 1, None)
            .expect("search");
        assert_eq!(keyed[0].action, AuditEvent::AuditKeyed.as_str());
        assert_eq!(keyed[0].detail["unkeyed_records"], 3);
        // Opening again changes nothing.
        drop(store);
        let store = SqliteStore::open_dir(dir.path()).expect("reopen");
        assert_eq!(store.verify_audit().expect("verify").records, 4);
        // The unkeyed part is still covered: an edit there is found.
        raw(dir.path())
            .execute("UPDATE audit SET actor = 'mallory' WHERE id = 2", [])
            .expect("tamper");
        assert_eq!(
            store.verify_audit().expect("verify").findings,
            [Finding::Edited { ids: vec![2] }]
        );
    }

    #[test]
    fn a_log_cut_under_a_running_hub_is_not_covered_by_a_new_head() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SqliteStore::open_dir(dir.path()).expect("open");
        for _ in 0..5 {
            store
                .append_audit(entry(AuditEvent::LoginOk))
                .expect("append");
        }
        raw(dir.path())
            .execute("DELETE FROM audit WHERE id > 3", [])
            .expect("cut");
        let refused = store
            .append_audit(entry(AuditEvent::LoginOk))
            .expect_err("refused");
        assert!(refused.to_string().contains("signed head"), "{refused}");
        assert_eq!(
            store.verify_audit().expect("verify").findings,
            [Finding::Truncated {
                head_count: 5,
                last_id: 3
            }]
        );
        // An operator who has looked starts a new head; the reseal says what was found.
        let reseal = store
            .reseal_audit("admin-cli", "restored from backup")
            .expect("reseal");
        assert_eq!(reseal.id, 4);
        assert!(
            reseal.detail["found"][0]
                .as_str()
                .expect("text")
                .contains("truncated")
        );
        assert!(store.verify_audit().expect("verify").intact());
        store
            .append_audit(entry(AuditEvent::LoginOk))
            .expect("appends again");
    }

    #[test]
    fn a_deleted_or_forged_head_stops_appends_and_is_named() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SqliteStore::open_dir(dir.path()).expect("open");
        store
            .append_audit(entry(AuditEvent::LoginOk))
            .expect("append");
        std::fs::remove_file(dir.path().join(HEAD_FILE)).expect("delete head");
        drop(store);
        // Reopening does not quietly make a new head over keyed records.
        let store = SqliteStore::open_dir(dir.path()).expect("reopen");
        assert!(store.append_audit(entry(AuditEvent::LoginOk)).is_err());
        assert_eq!(
            store.verify_audit().expect("verify").findings,
            [Finding::HeadMissing]
        );
        // A head signed by another key (another hub's seal.key) is not this hub's.
        let other = AuditKeys::derive(&crate::secrets::seal::SealKey::generate().expect("key"))
            .expect("keys");
        let (id, link): (i64, String) = raw(dir.path())
            .query_row("SELECT id, hash FROM audit", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("tail");
        chain::write_head(dir.path(), &other.sign_head(id, &link, 1, "t")).expect("write");
        assert!(store.append_audit(entry(AuditEvent::LoginOk)).is_err());
        assert!(matches!(
            store.verify_audit().expect("verify").findings[..],
            [Finding::HeadInvalid(_)]
        ));
    }

    #[test]
    fn a_failure_to_audit_changes_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SqliteStore::open_dir(dir.path()).expect("open");
        let user = store
            .create_user(NewUser {
                name: "bob".into(),
                email: "bob@example.com".into(),
                role: Role::Technician,
                team: "Desk".into(),
                password_hash: "x".into(),
            })
            .expect("user");
        store
            .set_two_factor_pending(&user.id, "sealed")
            .expect("pending");
        assert!(
            store
                .activate_two_factor(&user.id, "sealed", 1)
                .expect("activate")
        );
        let far = Utc::now() + chrono::Duration::hours(1);
        store
            .insert_login_token("t1", &user.id, far)
            .expect("token");
        let records = || store.verify_audit().expect("verify").records;
        let before = records();
        let reset = || {
            let record = entry(AuditEvent::TwoFactorReset);
            store.commit_audited(
                AuditedChange::ResetTwoFactor {
                    user: user.id.clone(),
                },
                &|_| vec![record.clone()],
            )
        };
        // The audit append fails (its head cannot be trusted): no reset, no revoked token.
        std::fs::write(dir.path().join(HEAD_FILE), "{}").expect("spoil the head");
        assert!(reset().is_err());
        assert!(store.two_factor(&user.id).expect("2fa").secret.is_some());
        assert!(
            store
                .user_by_token("t1", Utc::now())
                .expect("token")
                .is_some()
        );
        assert_eq!(records(), before);
        // With the head back, the same call commits both.
        store.reseal_audit("admin-cli", "test").expect("reseal");
        let outcome = reset().expect("reset");
        assert_eq!(outcome.rows(), 1, "the token was revoked");
        assert!(store.two_factor(&user.id).expect("2fa").secret.is_none());
        assert!(
            store
                .user_by_token("t1", Utc::now())
                .expect("token")
                .is_none()
        );
        assert_eq!(records(), before + 2, "the reseal and the reset");
    }

    #[test]
    fn nothing_to_change_records_nothing_and_keeps_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SqliteStore::open_dir(dir.path()).expect("open");
        let outcome = store
            .commit_audited(
                AuditedChange::ActivateTwoFactor {
                    user: "us_none".into(),
                    sealed: "x".into(),
                    step: 1,
                },
                &|_| vec![entry(AuditEvent::TwoFactorConfirm)],
            )
            .expect("commit");
        assert!(!outcome.changed());
        assert_eq!(store.verify_audit().expect("verify").records, 0);
    }
}
