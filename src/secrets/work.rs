//! Argon2id under a bound, for the hub and the agent alike.
//!
//! Each run holds 19 MiB for ~25 ms: left to tokio's blocking pool (~512 threads), 48 parallel
//! logins grew a hub by ~750 MiB. So at most one run per core at a time
//! (`available_parallelism`), a bounded queue behind them, and past the queue a clear "busy"
//! answer instead of more waiting. The bound is process-wide because the memory is.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::Semaphore;

/// Callers that may wait for a run, per core: a valid login queued behind a full queue still
/// answers in about a second (32 runs of ~25 ms per core).
const QUEUE_PER_CORE: usize = 32;

/// Why a run did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WorkError {
    /// Every core is busy and the queue is full: try again shortly.
    #[error("busy checking passwords: try again in a second")]
    Busy,
    /// The run panicked or the runtime is shutting down.
    #[error("the password check was interrupted")]
    Interrupted,
}

struct Gate {
    running: Semaphore,
    /// Callers admitted (running or waiting), against `admit_max`.
    admitted: AtomicUsize,
    admit_max: usize,
}

fn gate() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Gate {
            running: Semaphore::new(cores),
            admitted: AtomicUsize::new(0),
            admit_max: cores * (QUEUE_PER_CORE + 1),
        }
    })
}

/// Argon2id runs started in this process (hashes and checks): lets tests prove a refusal
/// never reached the hash.
static RUNS: AtomicU64 = AtomicU64::new(0);

/// How many argon2id runs this process has started.
pub fn argon2_runs() -> u64 {
    RUNS.load(Ordering::Relaxed)
}

pub(super) fn count_run() {
    RUNS.fetch_add(1, Ordering::Relaxed);
}

/// Releases an admission however the caller ends (cancelled futures included).
struct Admission(&'static Gate);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Run `work` (argon2id hashing or checking) on the blocking pool once a core is free.
/// Refuses at once with [`WorkError::Busy`] when the queue is full.
pub async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, WorkError> {
    let gate = gate();
    if gate.admitted.fetch_add(1, Ordering::AcqRel) >= gate.admit_max {
        gate.admitted.fetch_sub(1, Ordering::AcqRel);
        return Err(WorkError::Busy);
    }
    let _admission = Admission(gate);
    let _permit = gate
        .running
        .acquire()
        .await
        .map_err(|_| WorkError::Interrupted)?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| WorkError::Interrupted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_are_bounded_by_cores_and_the_queue_refuses_past_its_bound() {
        let gate = gate();
        let cores = gate.running.available_permits();
        let release = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let running = std::sync::Arc::new(AtomicUsize::new(0));
        let peak = std::sync::Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..gate.admit_max {
            let (release, running, peak) = (release.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(bounded(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                // Hold the core until the test has tried one caller too many.
                let (lock, cv) = &*release;
                let mut go = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                while !*go {
                    go = cv.wait(go).unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                running.fetch_sub(1, Ordering::SeqCst);
            })));
        }
        // Every admission is taken once the queue is full: one more is refused.
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while gate.admitted.load(Ordering::SeqCst) < gate.admit_max {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("callers admitted");
        assert_eq!(bounded(|| ()).await, Err(WorkError::Busy));
        *release.0.lock().expect("lock") = true;
        release.1.notify_all();
        for t in tasks {
            t.await.expect("task").expect("ran");
        }
        assert!(peak.load(Ordering::SeqCst) <= cores, "more runs than cores");
        assert_eq!(bounded(|| 7).await, Ok(7), "admitted again once drained");
    }
}
