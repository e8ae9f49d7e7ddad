//! The wrong-secret lock-out, atomic: an attempt is reserved in the store per (technician,
//! workstation), counted as a failure in advance, before its secret is relayed to the agent.
//! So of 100 parallel wrong secrets at most [`FREE_FAILURES`](super::FREE_FAILURES) + 1 reach
//! the agent, and a burst replaces the passcode at most once. A success clears the count; an
//! attempt that did not fail on its secret (refused by the end user, no answer, offline) gives
//! its reservation back.

use crate::hub::audit::AuditEvent;
use chrono::{DateTime, Utc};

use super::Hub;
use super::access::PASSCODE_REPLACE_AFTER;
use super::store::{
    AuditedChange, ChangeOutcome, ConnectReservation, FailureCounts, WorkstationRow,
};
use crate::protocol::{ErrorCode, HubToAgent, ProtocolError, UserInfo};

impl Hub {
    /// The lock-out for a technician's `n`-th failure in a row, from `now`.
    fn lock_from(now: DateTime<Utc>) -> impl Fn(u32) -> Option<DateTime<Utc>> {
        move |n| super::lockout_delay(n).map(|d| now + d)
    }

    /// Reserve an attempt of `counted` (the technician, or the issuer of a guest's
    /// credentials) on `row`. Locked out: the rate-limited answer, with a wait rounded up.
    pub(super) async fn reserve_secret_attempt(
        &self,
        actor: &UserInfo,
        counted: &UserInfo,
        row: &WorkstationRow,
    ) -> Result<FailureCounts, ProtocolError> {
        let now = self.now();
        let (uid, wid) = (counted.id.clone(), row.info.id.clone());
        let reservation = self
            .db(move |s| s.reserve_connect_attempt(&uid, &wid, now, &Self::lock_from(now)))
            .await?;
        match reservation {
            ConnectReservation::Reserved(counts) => Ok(counts),
            ConnectReservation::Locked { failures, until } => {
                let wait_secs = super::preauth::wait_secs(until, now);
                let detail = serde_json::json!({ "failures": failures, "wait_secs": wait_secs });
                self.audit(self.user_audit(actor, AuditEvent::ConnectLocked, &row.info, detail))
                    .await?;
                let mut err = ProtocolError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "too many wrong secrets for {}: try again in {wait_secs} s",
                        row.info.hostname
                    ),
                );
                err.retry_after_secs = Some(wait_secs);
                Err(err)
            }
        }
    }

    /// Give back the reservation of an attempt that did not fail on its secret.
    pub(super) async fn release_secret_attempt(&self, counted: &UserInfo, row: &WorkstationRow) {
        let now = self.now();
        let (uid, wid) = (counted.id.clone(), row.info.id.clone());
        if let Err(e) = self
            .db(move |s| s.release_connect_attempt(&uid, &wid, &Self::lock_from(now)))
            .await
        {
            tracing::warn!(%e, "cannot give back a connection attempt's reservation");
        }
    }

    /// The reserved attempt failed on its secret: audit the lock-out it started and replace
    /// the passcode once enough wrong secrets reached the workstation. Returns the lock-out
    /// in seconds, if any.
    pub(super) async fn secret_failed(
        &self,
        actor: &UserInfo,
        row: &WorkstationRow,
        counts: FailureCounts,
    ) -> Result<Option<u64>, ProtocolError> {
        let wait = super::lockout_delay(counts.technician);
        if let Some(wait) = wait {
            let detail = serde_json::json!({ "failures": counts.technician, "wait_secs": wait.num_seconds() });
            self.audit(self.user_audit(actor, AuditEvent::ConnectLockout, &row.info, detail))
                .await?;
        }
        // The claim and its record in one commit; the agent is told once both are in.
        let change = AuditedChange::ClaimPasscodeReplacement {
            workstation: row.info.id.clone(),
            after: PASSCODE_REPLACE_AFTER,
        };
        let record = self.agent_audit(
            &row.team_id,
            AuditEvent::PasscodeReplace,
            &row.info,
            serde_json::json!({}),
        );
        let claimed = self
            .commit(change, move |outcome| {
                let mut record = record.clone();
                if let ChangeOutcome::Count(n) = outcome {
                    record.detail["reason"] = replace_reason(*n).into();
                }
                vec![record]
            })
            .await?;
        if let ChangeOutcome::Count(n) = claimed {
            self.send_to_agent(
                &row.info.id,
                &HubToAgent::RefreshPasscode {
                    reason: replace_reason(n),
                },
            );
        }
        Ok(wait.map(|d| u64::try_from(d.num_seconds()).unwrap_or(1)))
    }
}

/// Why a workstation's passcode was replaced, for its agent and the audit record.
fn replace_reason(wrong_secrets: u32) -> String {
    format!("{wrong_secrets} wrong secrets in a row")
}
