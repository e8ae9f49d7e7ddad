//! SQLite side of the wrong-secret lock-out: an attempt is reserved (counted as a failure in
//! advance) in one IMMEDIATE transaction before its secret reaches the agent.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, StoreResult, db, parse_ts, ts};
use crate::hub::store::{ConnectReservation, FailureCounts};
use crate::protocol::{UserId, WorkstationId};

impl SqliteStore {
    pub(super) fn reserve_attempt(
        &self,
        user: &UserId,
        workstation: &WorkstationId,
        now: DateTime<Utc>,
        lock: &dyn Fn(u32) -> Option<DateTime<Utc>>,
    ) -> StoreResult<ConnectReservation> {
        // IMMEDIATE (`in_tx`): the write lock is taken before the read, so no two reservations
        // read the same count (several hubs on one file included).
        self.in_tx(|tx| {
            let (previous, locked_until): (u32, Option<String>) = tx
                .query_row(
                    "SELECT failures, locked_until FROM connect_failures \
                 WHERE user_id = ?1 AND workstation_id = ?2",
                    params![user, workstation],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db)?
                .unwrap_or((0, None));
            if let Some(until) = locked_until.as_deref().map(parse_ts).transpose()?
                && until > now
            {
                return Ok(ConnectReservation::Locked {
                    failures: previous,
                    until,
                });
            }
            let technician = previous.saturating_add(1);
            tx.execute(
                "INSERT INTO connect_failures (user_id, workstation_id, failures, locked_until) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (user_id, workstation_id) DO UPDATE SET \
             failures = excluded.failures, locked_until = excluded.locked_until",
                params![user, workstation, technician, lock(technician).map(ts)],
            )
            .map_err(db)?;
            let on_workstation: u32 = tx
                .query_row(
                    "UPDATE workstations SET secret_failures = secret_failures + 1 WHERE id = ?1 \
                 RETURNING secret_failures",
                    [workstation],
                    |r| r.get(0),
                )
                .map_err(db)?;
            Ok(ConnectReservation::Reserved(FailureCounts {
                technician,
                workstation: on_workstation,
            }))
        })
    }

    pub(super) fn release_attempt(
        &self,
        user: &UserId,
        workstation: &WorkstationId,
        lock: &dyn Fn(u32) -> Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        self.in_tx(|tx| {
            let current: Option<u32> = tx
            .query_row(
                "SELECT failures FROM connect_failures WHERE user_id = ?1 AND workstation_id = ?2",
                params![user, workstation],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
            if let Some(n) = current {
                let lowered = n.saturating_sub(1);
                tx.execute(
                    "UPDATE connect_failures SET failures = ?3, locked_until = ?4 \
                 WHERE user_id = ?1 AND workstation_id = ?2",
                    params![user, workstation, lowered, lock(lowered).map(ts)],
                )
                .map_err(db)?;
            }
            tx.execute(
            "UPDATE workstations SET secret_failures = MAX(secret_failures - 1, 0) WHERE id = ?1",
            [workstation],
        )
        .map_err(db)?;
            Ok(())
        })
    }

    pub(super) fn claim_replacement(
        &self,
        workstation: &WorkstationId,
        after: u32,
    ) -> StoreResult<Option<u32>> {
        super::changes::claim_passcode_replacement(&*self.conn()?, workstation, after)
    }
}
