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
use std::sync::{Condvar, Mutex, OnceLock};

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

/// Which queue a run waits in. Workers take every waiting `Trusted` run, then every `First`
/// one, before any `Normal` one: a login from a device that logged in before, then one from an
/// address with no recent failures, is checked ahead of a flood's (issue 11: under 500 wrong
/// logins from 250 addresses every valid login was answered "busy", then took 2.6 s at p99).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precedence {
    /// A login presenting a trusted device token for its name (at most one per device at a
    /// time, so never refused as busy: its callers bound it).
    Trusted,
    /// From a caller with no recent failures and no other check waiting. Bounded like
    /// `Normal` (else a flood from many new addresses queues all its first attempts here):
    /// callers that find it full wait as `Normal` instead (see [`has_room`]).
    First,
    /// Everything else: the agent's checks, and callers that failed lately. Past
    /// [`QUEUE_PER_CORE`] per core the answer is [`WorkError::Busy`].
    Normal,
}

impl Precedence {
    fn index(self) -> usize {
        match self {
            Self::Trusted => 0,
            Self::First => 1,
            Self::Normal => 2,
        }
    }

    /// Trusted devices' runs are never refused: their callers bound them (one per device).
    fn bounded(self) -> bool {
        !matches!(self, Self::Trusted)
    }
}

/// The runs waiting, one queue per [`Precedence`].
#[derive(Default)]
struct Queues {
    waiting: [std::collections::VecDeque<Job>; 3],
}

impl Queues {
    fn next(&mut self) -> Option<Job> {
        let [trusted, first, normal] = &mut self.waiting;
        trusted
            .pop_front()
            .or_else(|| first.pop_front())
            .or_else(|| normal.pop_front())
    }
}

type Shared = std::sync::Arc<(Mutex<Queues>, Condvar)>;

struct Gate {
    /// Runs for the worker threads; `None` when none could be started.
    queues: Option<Shared>,
    /// Callers admitted (running or waiting) per precedence, each but `Trusted` against
    /// `admit_max`.
    admitted: [AtomicUsize; 3],
    admit_max: usize,
}

fn gate() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let admit_max = cores * (QUEUE_PER_CORE + 1);
        let queues: Shared = std::sync::Arc::default();
        let mut workers = 0;
        for n in 0..cores {
            let queues = queues.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    KEEP_BLOCKS.with(|keep| keep.set(true));
                    let (lock, ready) = &*queues;
                    loop {
                        let job = {
                            let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
                            loop {
                                if let Some(job) = q.next() {
                                    break job;
                                }
                                q = ready.wait(q).unwrap_or_else(|p| p.into_inner());
                            }
                        };
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                });
            match spawned {
                Ok(_) => workers += 1,
                Err(e) => tracing::error!(%e, "cannot start a password-checking thread"),
            }
        }
        Gate {
            queues: (workers > 0).then_some(queues),
            admitted: [
                AtomicUsize::new(0),
                AtomicUsize::new(0),
                AtomicUsize::new(0),
            ],
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

/// Whether a run of `precedence` would be admitted now (racy: a caller may still be refused
/// after): lets a login that would be answered "busy" be answered before any other work.
pub fn has_room(precedence: Precedence) -> bool {
    !precedence.bounded() || admitted(precedence) < gate().admit_max
}

/// Runs of `precedence` admitted now (running or waiting): lets tests see a check queued.
pub fn admitted(precedence: Precedence) -> usize {
    gate().admitted[precedence.index()].load(Ordering::Acquire)
}

/// Releases an admission however the caller ends (cancelled futures included).
struct Admission(&'static Gate, usize);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.admitted[self.1].fetch_sub(1, Ordering::AcqRel);
    }
}

/// Run `work` (an argon2 hash or check) on the password threads, waiting with the
/// [`Precedence::Normal`] callers; [`WorkError::Busy`] at once when the queue is full.
pub async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, WorkError> {
    bounded_as(Precedence::Normal, work).await
}

/// As [`bounded`], waiting in the queue of `precedence` (each bounded but `Trusted`'s).
pub async fn bounded_as<T: Send + 'static>(
    precedence: Precedence,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, WorkError> {
    let gate = gate();
    let Some(queues) = &gate.queues else {
        return Err(WorkError::Interrupted);
    };
    let class = precedence.index();
    if gate.admitted[class].fetch_add(1, Ordering::AcqRel) >= gate.admit_max && precedence.bounded()
    {
        gate.admitted[class].fetch_sub(1, Ordering::AcqRel);
        return Err(WorkError::Busy);
    }
    let admission = Admission(gate, class);
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _admission = admission;
        let _ = done.send(work());
    });
    let (lock, ready) = &**queues;
    lock.lock().unwrap_or_else(|p| p.into_inner()).waiting[class].push_back(job);
    ready.notify_one();
    result.await.map_err(|_| WorkError::Interrupted)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool is process-wide: tests that fill it take turns.
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    #[tokio::test]
    async fn trusted_then_first_runs_overtake_the_normal_ones_waiting() {
        let _turn = TURN.lock().await;
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        // Hold every worker, each until the test lets that many go.
        let released = std::sync::Arc::new((Mutex::new(0usize), Condvar::new()));
        let running = std::sync::Arc::new(AtomicUsize::new(0));
        let mut blockers = Vec::new();
        for i in 0..cores {
            let (released, running) = (released.clone(), running.clone());
            blockers.push(tokio::spawn(bounded(move || {
                running.fetch_add(1, Ordering::SeqCst);
                let (lock, cv) = &*released;
                let mut n = lock
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                while *n <= i {
                    n = cv
                        .wait(n)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            })));
        }
        let wait_for = |what: &'static str, done: Box<dyn Fn() -> bool + Send>| async move {
            tokio::time::timeout(std::time::Duration::from_secs(10), async {
                while !done() {
                    tokio::task::yield_now().await;
                }
            })
            .await
            .expect(what);
        };
        let r = running.clone();
        wait_for(
            "every worker held",
            Box::new(move || r.load(Ordering::SeqCst) == cores),
        )
        .await;
        // Three normal runs wait, then one first, then one trusted.
        let order = std::sync::Arc::new(Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for (precedence, name) in [
            (Precedence::Normal, "normal"),
            (Precedence::Normal, "normal"),
            (Precedence::Normal, "normal"),
            (Precedence::First, "first"),
            (Precedence::Trusted, "trusted"),
        ] {
            let order = order.clone();
            waiting.push(tokio::spawn(bounded_as(precedence, move || {
                order
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(name);
            })));
        }
        let gate = gate();
        wait_for(
            "runs queued",
            Box::new(move || {
                gate.admitted[0].load(Ordering::SeqCst) >= 1
                    && gate.admitted[1].load(Ordering::SeqCst) >= 1
                    && gate.admitted[2].load(Ordering::SeqCst) >= cores + 3
            }),
        )
        .await;
        // One worker free: it takes the trusted run, then the first, though they came last.
        *released.0.lock().expect("lock") = 1;
        released.1.notify_all();
        let o = order.clone();
        wait_for(
            "the waiting runs, on the one free worker",
            Box::new(move || o.lock().expect("order").len() == 5),
        )
        .await;
        assert_eq!(
            *order.lock().expect("order"),
            ["trusted", "first", "normal", "normal", "normal"]
        );
        *released.0.lock().expect("lock") = cores;
        released.1.notify_all();
        for t in blockers.into_iter().chain(waiting) {
            t.await.expect("task").expect("ran");
        }
    }

    #[tokio::test]
    async fn runs_are_bounded_by_cores_and_the_queue_refuses_past_its_bound() {
        let _turn = TURN.lock().await;
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
            while gate.admitted[2].load(Ordering::SeqCst) < gate.admit_max {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("callers admitted");
        assert_eq!(bounded(|| ()).await, Err(WorkError::Busy));
        // A trusted device's check is never refused, and a clean source's has a queue of its
        // own: neither is refused because the flood's is full.
        let trusted = tokio::spawn(bounded_as(Precedence::Trusted, || "trusted"));
        let first = tokio::spawn(bounded_as(Precedence::First, || "first"));
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while gate.admitted[0].load(Ordering::SeqCst) < 1
                || gate.admitted[1].load(Ordering::SeqCst) < 1
            {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("admitted while the normal queue is full");
        *release.0.lock().expect("lock") = true;
        release.1.notify_all();
        for t in tasks {
            t.await.expect("task").expect("ran");
        }
        assert_eq!(trusted.await.expect("task"), Ok("trusted"));
        assert_eq!(first.await.expect("task"), Ok("first"));
        assert!(peak.load(Ordering::SeqCst) <= cores, "more runs than cores");
        assert_eq!(bounded(|| 7).await, Ok(7), "admitted again once drained");
    }
}
