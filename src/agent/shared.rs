//! What the agent's parts share: the hub link, the control socket, the terminal prompt and the
//! daily passcode rotation all work on one [`AgentShared`].
//!
//! Slow work (argon2id: issuing a passcode, setting a password, checking a secret) runs on
//! tokio's blocking pool, never while the policy's lock is held.

use std::path::{Path, PathBuf};
use std::sync::{Arc, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::AgentStatus;
use super::consent::Consent;
use super::policy::{PermanentPassword, Policy, PolicyError, TemporaryPasscode};
use crate::protocol::{
    AccessEvent, AgentPolicy, Refusal, Secret, SecretKind, SecretRequirements, SessionInfo,
    UnattendedState,
};

/// The state the agent's tasks share.
#[derive(Debug)]
pub struct AgentShared {
    pub data_dir: PathBuf,
    pub policy: std::sync::Mutex<Policy>,
    pub consent: Consent,
    /// Bumped on every local policy change so the hub link re-sends `AgentRequest::Policy`.
    pub policy_changed: watch::Sender<u64>,
    /// Live sessions on this workstation, as the hub reported them (`HubToAgent::Session`).
    pub sessions: std::sync::Mutex<Vec<SessionInfo>>,
    pub status: watch::Sender<AgentStatus>,
    /// Bumped on every change a person at the machine would want to see: the policy (local or
    /// from the hub, passcode included) and the sessions. For displays, not for the hub link.
    pub shown: watch::Sender<u64>,
    /// Set while the end user is being asked for unattended access, so a repeated request
    /// does not stack a second question.
    pub asking_access: std::sync::atomic::AtomicBool,
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PolicyError> + Send + 'static,
) -> Result<T, PolicyError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| PolicyError::Interrupted(e.to_string()))?
}

fn bump(tx: &watch::Sender<u64>) {
    tx.send_modify(|n| *n = n.wrapping_add(1));
}

impl AgentShared {
    pub fn new(data_dir: PathBuf, policy: Policy, consent: Consent) -> Self {
        Self {
            data_dir,
            policy: std::sync::Mutex::new(policy),
            consent,
            policy_changed: watch::Sender::new(0),
            sessions: std::sync::Mutex::new(Vec::new()),
            status: watch::Sender::new(AgentStatus::Connecting { attempt: 0 }),
            shown: watch::Sender::new(0),
            asking_access: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Load the policy from `data_dir` (issuing a new passcode when it is on) and share it.
    pub async fn open(data_dir: &Path, consent: Consent) -> Result<Arc<Self>, PolicyError> {
        let dir = data_dir.to_path_buf();
        let policy = blocking(move || Policy::load(&dir, Utc::now())).await?;
        Ok(Arc::new(Self::new(data_dir.to_path_buf(), policy, consent)))
    }

    /// Tell the hub link (and displays) that the policy changed locally.
    pub fn notify_policy_changed(&self) {
        bump(&self.policy_changed);
        bump(&self.shown);
    }

    /// The policy, locked. Never hold it across an `.await`.
    pub fn policy(&self) -> MutexGuard<'_, Policy> {
        // Every policy change is a single commit, so a panicking holder leaves it consistent.
        self.policy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the hub is told (`AgentRequest::Policy`).
    pub fn policy_snapshot(&self) -> AgentPolicy {
        self.policy().snapshot()
    }

    /// The end user's side of the unattended state machine (grant, deny, revoke; and the
    /// request itself, when a technician asks). Persists and notifies.
    pub fn apply_access_event(&self, event: AccessEvent) -> Result<UnattendedState, PolicyError> {
        let state = self.policy().apply(event)?;
        self.notify_policy_changed();
        Ok(state)
    }

    /// Take the hub's view of unattended access (a technician withdrew it, say). Persists and
    /// updates displays, but does not bump `policy_changed`: the hub already knows.
    pub fn set_unattended(&self, state: UnattendedState) -> Result<(), PolicyError> {
        let before = {
            let mut policy = self.policy();
            let before = policy.unattended();
            policy.set_unattended(state)?;
            before
        };
        if before != state {
            bump(&self.shown);
        }
        Ok(())
    }

    /// Check a secret a technician presented (from `HubToAgent::ConnectAttempt`).
    pub async fn verify_secret(
        &self,
        presented: Option<&Secret>,
    ) -> Result<Vec<SecretKind>, Refusal> {
        // Longer than any secret can be: wrong, without reaching argon2id.
        if presented
            .is_some_and(|s| !crate::hub::preauth::Field::WorkstationSecret.fits(s.expose()))
        {
            return Err(Refusal::WrongSecret);
        }
        let check = self.policy().secret_check();
        let presented = presented.map(|s| s.expose().to_owned());
        match crate::secrets::work::bounded(move || check.verify(presented.as_deref())).await {
            Ok(result) => result,
            // Every core busy checking and the queue full: not a wrong secret, so not counted
            // against the technician; they try again.
            Err(crate::secrets::work::WorkError::Busy) => Err(Refusal::NoAnswer),
            Err(e) => {
                // Only a panic gets here; refusing is the safe answer.
                tracing::error!(%e, "secret check failed");
                Err(Refusal::WrongSecret)
            }
        }
    }

    /// Replace the passcode now; the old one stops working at once. Returns the new one, as
    /// shown. `Err(PasscodeOff)` when the passcode is off.
    pub async fn refresh_passcode(&self) -> Result<Secret, PolicyError> {
        if !self.policy().passcode_on() {
            return Err(PolicyError::PasscodeOff);
        }
        let new = blocking(|| Ok(TemporaryPasscode::generate(Utc::now())?)).await?;
        let shown = new.formatted();
        {
            let mut policy = self.policy();
            // Turned off while the new one was being made: stay off.
            if !policy.passcode_on() {
                return Err(PolicyError::PasscodeOff);
            }
            policy.install_passcode(new)?;
        }
        self.notify_policy_changed();
        Ok(shown)
    }

    /// Turn the temporary passcode on (a new one is issued) or off.
    pub async fn set_passcode_enabled(&self, on: bool) -> Result<(), PolicyError> {
        if on {
            if self.policy().passcode_on() {
                return Ok(());
            }
            let new = blocking(|| Ok(TemporaryPasscode::generate(Utc::now())?)).await?;
            let mut policy = self.policy();
            if policy.passcode_on() {
                return Ok(());
            }
            policy.install_passcode(new)?;
        } else {
            let mut policy = self.policy();
            if !policy.passcode_on() {
                return Ok(());
            }
            policy.disable_passcode()?;
        }
        self.notify_policy_changed();
        Ok(())
    }

    /// Set the permanent password (at least 8 characters; stored only as argon2id).
    pub async fn set_password(&self, password: Secret) -> Result<(), PolicyError> {
        let hashed = blocking(move || PermanentPassword::new(password.expose())).await?;
        self.policy().set_password(hashed)?;
        self.notify_policy_changed();
        Ok(())
    }

    pub fn clear_password(&self) -> Result<(), PolicyError> {
        self.policy().clear_password()?;
        self.notify_policy_changed();
        Ok(())
    }

    /// Apply the group's security defaults (`AgentReply::Enrolled { defaults }`).
    pub async fn apply_defaults(&self, defaults: SecretRequirements) -> Result<(), PolicyError> {
        let passcode = if defaults.passcode && !self.policy().passcode_on() {
            Some(blocking(|| Ok(TemporaryPasscode::generate(Utc::now())?)).await?)
        } else {
            None
        };
        {
            let mut policy = self.policy();
            if let Some(passcode) = passcode
                && !policy.passcode_on()
            {
                policy.install_passcode(passcode)?;
            }
            // The passcode (if asked for) is on now, so this only marks the password required.
            policy.apply_defaults(defaults, Utc::now())?;
        }
        self.notify_policy_changed();
        Ok(())
    }

    /// Record a session the hub reported: added or updated, or removed once it has ended.
    pub fn update_session(&self, session: SessionInfo) {
        {
            let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            sessions.retain(|s| s.id != session.id);
            if session.ended_at.is_none() {
                sessions.push(session);
            }
        }
        bump(&self.shown);
    }

    /// The live sessions, oldest first.
    pub fn live_sessions(&self) -> Vec<SessionInfo> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forget every session (the hub link dropped: the hub ends them).
    pub fn clear_sessions(&self) {
        let had = {
            let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            let had = !sessions.is_empty();
            sessions.clear();
            had
        };
        if had {
            bump(&self.shown);
        }
    }
}

/// Replace the passcode every 24 h: sleep until it is due, replace it, notify; again. Follows
/// the passcode being turned on, off or replaced meanwhile. `clock` gives the current time
/// (`Utc::now` in the agent; tests derive it from tokio's paused clock). Runs until aborted.
pub async fn rotate_passcode_daily(
    shared: Arc<AgentShared>,
    clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static,
) {
    let mut changes = shared.shown.subscribe();
    let clock = Arc::new(clock);
    loop {
        changes.mark_unchanged();
        let next = shared.policy().next_rotation();
        let wait = match next {
            // Already due: no wait. Chrono to std only fails for negative spans.
            Some(due) => (due - clock()).to_std().unwrap_or_default(),
            None => {
                // Off: wait until something changes.
                if changes.changed().await.is_err() {
                    return;
                }
                continue;
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        }
        let now = clock();
        let due = shared.policy().next_rotation().is_some_and(|d| d <= now);
        if !due {
            continue;
        }
        let new = {
            let clock = clock.clone();
            blocking(move || Ok(TemporaryPasscode::generate(clock())?)).await
        };
        let installed = match new {
            Ok(new) => {
                let mut policy = shared.policy();
                // Turned off, or replaced by hand, meanwhile: nothing to do.
                if policy.next_rotation().is_some_and(|d| d <= now) {
                    policy.install_passcode(new).map(|()| true)
                } else {
                    Ok(false)
                }
            }
            Err(e) => Err(e),
        };
        match installed {
            Ok(true) => {
                tracing::info!("temporary passcode replaced (daily)");
                shared.notify_policy_changed();
            }
            Ok(false) => {}
            Err(e) => {
                // Try again in a minute rather than spin; the old passcode stays until then.
                tracing::warn!(%e, "cannot replace the temporary passcode");
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::agent::consent::ConsentPolicy;

    async fn shared() -> (tempfile::TempDir, Arc<AgentShared>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = AgentShared::open(dir.path(), Consent::new(ConsentPolicy::Deny))
            .await
            .expect("open");
        (dir, shared)
    }

    fn passcode(shared: &AgentShared) -> Secret {
        shared.policy().passcode().expect("passcode on").formatted()
    }

    async fn changed(rx: &mut watch::Receiver<u64>) {
        changed_within(rx, Duration::from_secs(10)).await;
    }

    /// With tokio's clock paused, a timeout shorter than the awaited timer would fire first.
    async fn changed_within(rx: &mut watch::Receiver<u64>, within: Duration) {
        tokio::time::timeout(within, rx.changed())
            .await
            .expect("a change in time")
            .expect("sender alive");
    }

    #[tokio::test]
    async fn local_changes_notify_the_hub_link() {
        let (_dir, shared) = shared().await;
        let mut hub_link = shared.policy_changed.subscribe();
        shared.set_passcode_enabled(true).await.expect("on");
        changed(&mut hub_link).await;
        assert!(shared.policy_snapshot().requires.passcode);

        let old = passcode(&shared);
        let new = shared.refresh_passcode().await.expect("refresh");
        changed(&mut hub_link).await;
        assert_ne!(old, new);
        assert_eq!(
            shared.verify_secret(Some(&old)).await,
            Err(Refusal::WrongSecret)
        );
        assert_eq!(
            shared.verify_secret(Some(&new)).await,
            Ok(vec![SecretKind::Passcode])
        );

        shared
            .set_password(Secret::new("orchid lantern"))
            .await
            .expect("password");
        changed(&mut hub_link).await;
        assert!(matches!(
            shared.set_password(Secret::new("short")).await,
            Err(PolicyError::PasswordTooShort)
        ));
        assert_eq!(
            shared
                .verify_secret(Some(&Secret::new("orchid lantern")))
                .await,
            Ok(vec![SecretKind::Password])
        );
        assert_eq!(
            shared.verify_secret(None).await,
            Err(Refusal::SecretRequired)
        );
    }

    #[tokio::test]
    async fn hub_reconciliation_updates_displays_but_not_the_hub_link() {
        let (_dir, shared) = shared().await;
        shared
            .apply_access_event(AccessEvent::Request)
            .expect("request");
        shared
            .apply_access_event(AccessEvent::Grant)
            .expect("grant");
        let hub_link = shared.policy_changed.subscribe();
        let mut display = shared.shown.subscribe();
        shared
            .set_unattended(UnattendedState::Withdrawn)
            .expect("withdrawn");
        changed(&mut display).await;
        assert!(!hub_link.has_changed().expect("alive"));
        assert_eq!(
            shared.policy_snapshot().unattended,
            UnattendedState::Withdrawn
        );
    }

    #[tokio::test]
    async fn group_defaults_turn_secrets_on() {
        let (_dir, shared) = shared().await;
        shared
            .apply_defaults(SecretRequirements {
                passcode: true,
                password: true,
            })
            .await
            .expect("defaults");
        let policy = shared.policy_snapshot();
        assert!(policy.requires.passcode && policy.requires.password);
        assert!(shared.policy().password_required());
    }

    #[tokio::test]
    async fn ended_sessions_leave_the_list() {
        let (_dir, shared) = shared().await;
        let mut session = SessionInfo {
            id: "se_1".into(),
            workstation_id: "ws_1".into(),
            hostname: "pc".into(),
            technician: crate::protocol::TechnicianRef {
                name: "Alice".into(),
                email: "alice@example.com".into(),
            },
            method: crate::protocol::AuthMethod::Attended,
            secrets: vec![],
            view_only: false,
            started_at: Utc::now(),
            ended_at: None,
            end_reason: None,
        };
        shared.update_session(session.clone());
        assert_eq!(shared.live_sessions().len(), 1);
        session.ended_at = Some(Utc::now());
        shared.update_session(session);
        assert!(shared.live_sessions().is_empty());
    }

    const DAY: Duration = Duration::from_secs(25 * 3600);

    #[tokio::test(start_paused = true)]
    async fn the_passcode_is_replaced_every_24_hours() {
        let (_dir, shared) = shared().await;
        // The wall clock as tokio's paused clock moves it.
        let base = Utc::now();
        let start = tokio::time::Instant::now();
        let clock = move || base + chrono::TimeDelta::from_std(start.elapsed()).unwrap_or_default();
        {
            let mut policy = shared.policy();
            policy
                .install_passcode(TemporaryPasscode::generate(clock()).expect("passcode"))
                .expect("on");
        }
        let first = passcode(&shared);
        let mut hub_link = shared.policy_changed.subscribe();
        let task = tokio::spawn(rotate_passcode_daily(shared.clone(), clock));

        // Just before the day is out, nothing has changed.
        tokio::time::advance(Duration::from_secs(24 * 3600 - 60)).await;
        assert!(!hub_link.has_changed().expect("alive"));
        assert_eq!(passcode(&shared), first);

        // Then it is replaced, and the old one fails.
        changed_within(&mut hub_link, DAY).await;
        // Read before checking the old code: argon2 runs on its own threads, and the paused
        // clock may jump ahead while it does.
        let elapsed = start.elapsed();
        let second = passcode(&shared);
        assert_ne!(second, first);
        assert_eq!(
            shared.verify_secret(Some(&first)).await,
            Err(Refusal::WrongSecret)
        );
        assert!(
            elapsed >= Duration::from_secs(24 * 3600)
                && elapsed < Duration::from_secs(24 * 3600 + 60),
            "{elapsed:?}"
        );

        // And again a day later.
        changed_within(&mut hub_link, DAY).await;
        assert_ne!(passcode(&shared), second);
        assert!(start.elapsed() >= Duration::from_secs(48 * 3600));
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn rotation_follows_a_passcode_turned_on_later() {
        let (_dir, shared) = shared().await;
        let base = Utc::now();
        let start = tokio::time::Instant::now();
        let clock = move || base + chrono::TimeDelta::from_std(start.elapsed()).unwrap_or_default();
        let mut hub_link = shared.policy_changed.subscribe();
        let task = tokio::spawn(rotate_passcode_daily(shared.clone(), clock));
        tokio::time::advance(Duration::from_secs(3600)).await;
        {
            let mut policy = shared.policy();
            policy
                .install_passcode(TemporaryPasscode::generate(clock()).expect("passcode"))
                .expect("on");
        }
        shared.notify_policy_changed();
        changed_within(&mut hub_link, DAY).await;
        let first = passcode(&shared);
        changed_within(&mut hub_link, DAY).await;
        assert_ne!(passcode(&shared), first);
        assert!(start.elapsed() >= Duration::from_secs(25 * 3600));
        task.abort();
    }
}
