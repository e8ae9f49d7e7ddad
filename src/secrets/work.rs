//! Argon2id under a bound, for the hub and the agent alike.
//!
//! Each run holds 19 MiB for ~25 ms: left to tokio's blocking pool (~512 threads), 48 parallel
//! logins grew a hub by ~750 MiB, never given back (glibc keeps a freed run's memory in the
//! arena of the thread that ran it, and every new blocking thread may get an arena of its
//! own). So runs happen on a fixed set of threads, one per core (`available_parallelism`): at
//! most that many at a time and that many arenas holding their memory. Behind them a bounded
//! queue, and past the queue a clear "busy" answer instead of more waiting. The bound is
//! process-wide because the memory is.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};

/// Callers that may wait for a run, per core: a valid login queued behind a full queue still
/// answers in about a second (32 runs of ~25 ms per core).
const QUEUE_PER_CORE: usize = 32;

/// Why a run did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WorkError {
    /// Every core is busy and the queue is full: try again shortly.
    #[error("busy checking passwords: try again in a second")]
    Busy,
    /// The run panicked, or its threads could not be started.
    #[error("the password check was interrupted")]
    Interrupted,
}

type Job = Box<dyn FnOnce() + Send>;

struct Gate {
    /// Runs for the worker threads; `None` when none could be started.
    jobs: Option<mpsc::SyncSender<Job>>,
    /// Callers admitted (running or waiting), against `admit_max`.
    admitted: AtomicUsize,
    admit_max: usize,
}

fn gate() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let admit_max = cores * (QUEUE_PER_CORE + 1);
        let (tx, rx) = mpsc::sync_channel::<Job>(admit_max);
        let rx = std::sync::Arc::new(Mutex::new(rx));
        let mut workers = 0;
        for n in 0..cores {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    KEEP_BLOCKS.with(|keep| keep.set(true));
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        match job {
                            // A panicking run drops its answer (the caller sees Interrupted);
                            // the thread lives on for the next.
                            Ok(job) => {
                                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                            }
                            Err(_) => return,
                        }
                    }
                });
            match spawned {
                Ok(_) => workers += 1,
                Err(e) => tracing::error!(%e, "cannot start a password-checking thread"),
            }
        }
        Gate {
            jobs: (workers > 0).then_some(tx),
            admitted: AtomicUsize::new(0),
            admit_max,
        }
    })
}

thread_local! {
    /// Argon2 memory kept between runs on this thread.
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Set on the per-core threads: only they keep their memory.
    static KEEP_BLOCKS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Lend `n` blocks of argon2 memory to `run`. The per-core threads keep theirs between runs
/// (one 19 MiB allocation each, for the life of the process); any other thread (an admin
/// command, a test) allocates for the run and frees after.
pub(super) fn with_blocks<T>(n: usize, run: impl FnOnce(&mut [argon2::Block]) -> T) -> T {
    let mut blocks = BLOCKS.with(|b| std::mem::take(&mut *b.borrow_mut()));
    if blocks.len() < n {
        blocks = vec![argon2::Block::default(); n];
    }
    let out = run(&mut blocks[..n]);
    if KEEP_BLOCKS.with(std::cell::Cell::get) {
        BLOCKS.with(|b| *b.borrow_mut() = blocks);
    }
    out
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

/// Run `work` (argon2id hashing or checking) on one of the per-core threads once one is free.
/// Refuses at once with [`WorkError::Busy`] when the queue is full.
pub async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, WorkError> {
    let gate = gate();
    let Some(jobs) = &gate.jobs else {
        return Err(WorkError::Interrupted);
    };
    if gate.admitted.fetch_add(1, Ordering::AcqRel) >= gate.admit_max {
        gate.admitted.fetch_sub(1, Ordering::AcqRel);
        return Err(WorkError::Busy);
    }
    // Held until the run has finished, so the queue counts runs, not waiting futures.
    let admission = Admission(gate);
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _admission = admission;
        let _ = done.send(work());
    });
    jobs.try_send(job).map_err(|e| match e {
        mpsc::TrySendError::Full(_) => WorkError::Busy,
        mpsc::TrySendError::Disconnected(_) => WorkError::Interrupted,
    })?;
    result.await.map_err(|_| WorkError::Interrupted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_are_bounded_by_cores_and_the_queue_refuses_past_its_bound() {
        let gate = gate();
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let release =
            std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
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
                let mut go = lock
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                while !*go {
                    go = cv
                        .wait(go)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
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
