//! The per-worker counters workers bump as they run tasks, and
//! [`Outcome`], what one queue entry came to. Summed into the public
//! [`PoolStats`](crate::PoolStats) by `pool/stats.rs`.
//!
//! Cheap enough to leave on: each worker owns one cache-line-aligned block
//! of counters that only it writes (a plain load + store, no locked
//! read-modify-write, no line shared with other writers). Nothing is
//! counted on the submit path.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::TaskError;

/// What became of one queue entry when a worker took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The task ran and returned a value (for a periodic task: one run).
    Completed,
    /// The task ran and panicked.
    Panicked,
    /// The task ended cancelled: it saw its token, or the entry belonged to
    /// a task cancelled before it started.
    Cancelled,
    /// Nothing to count: the task had already run elsewhere (a waiting
    /// worker ran it in place) or was refused.
    Skipped,
}

std::thread_local! {
    /// Set by a task whose closure caught a panic of its own (a scoped
    /// task keeps its panic for the scope): the entry running it counts as
    /// panicked. No destructor, so usable at any time.
    static PANICKED_INSIDE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the entry running on this thread as panicked (see
/// [`counted`]).
pub(crate) fn note_panicked() {
    PANICKED_INSIDE.with(|p| p.set(true));
}

/// Runs an entry and returns what to count for it: `run`'s outcome, or
/// `Panicked` if the entry's task caught a panic of its own and said so
/// with [`note_panicked`]. Nested runs each see only their own mark.
#[inline]
pub(crate) fn counted(run: impl FnOnce() -> Outcome) -> Outcome {
    let outer = PANICKED_INSIDE.with(|p| p.replace(false));
    let outcome = run();
    let panicked = PANICKED_INSIDE.with(|p| p.replace(outer));
    if panicked && outcome == Outcome::Completed {
        Outcome::Panicked
    } else {
        outcome
    }
}

impl Outcome {
    /// What the statistics count for a task that ran to this result.
    pub(crate) fn of<T>(result: &Result<T, TaskError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Completed,
            Err(TaskError::Cancelled) => Outcome::Cancelled,
            Err(_) => Outcome::Panicked,
        }
    }
}

/// One worker's counters. Written only by that worker.
///
/// Every entry a worker takes is counted twice: `started` before it runs,
/// and one outcome after, so `running` (started minus outcomes) needs no
/// gauge of its own: two plain stores per task in all.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct WorkerCounters {
    started: AtomicU64,
    completed: AtomicU64,
    panicked: AtomicU64,
    cancelled: AtomicU64,
    /// Entries of tasks that had already run elsewhere (in place, by a
    /// waiting worker) or were refused: they end nothing.
    skipped: AtomicU64,
    stolen: AtomicU64,
    /// Odd while the worker is active (looking for or running work), even
    /// while it is parked for lack of work; bumped at each change. See
    /// `pool/idle.rs`.
    pub(crate) activity: AtomicU64,
}

/// The counters of one worker, read at one moment.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub(crate) started: u64,
    pub(crate) completed: u64,
    pub(crate) panicked: u64,
    pub(crate) cancelled: u64,
    pub(crate) skipped: u64,
    pub(crate) stolen: u64,
}

/// A single-writer increment: a plain load and store, no locked RMW.
#[inline]
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

impl WorkerCounters {
    /// A fresh block, marked inactive: its slot has no worker yet (the
    /// thread that starts one marks it active, see `core/threads.rs`).
    pub(crate) fn new() -> Self {
        WorkerCounters::default()
    }

    /// Entries started so far (the starvation monitor's progress gauge).
    pub(crate) fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn count(&self, outcome: Outcome) {
        match outcome {
            Outcome::Completed => bump(&self.completed),
            Outcome::Panicked => bump(&self.panicked),
            Outcome::Cancelled => bump(&self.cancelled),
            Outcome::Skipped => bump(&self.skipped),
        }
    }

    #[inline]
    pub(crate) fn stolen(&self) {
        bump(&self.stolen);
    }

    /// Before an entry runs; pair it with one [`count`](Self::count).
    #[inline]
    pub(crate) fn start(&self) {
        bump(&self.started);
    }

    /// Reads the counters. Outcomes before starts: an outcome is counted
    /// after its start, so a racing read rather over-counts running tasks.
    pub(crate) fn read(&self) -> Counts {
        let completed = self.completed.load(Ordering::Relaxed);
        let panicked = self.panicked.load(Ordering::Relaxed);
        let cancelled = self.cancelled.load(Ordering::Relaxed);
        let skipped = self.skipped.load(Ordering::Relaxed);
        Counts {
            started: self.started.load(Ordering::Relaxed),
            completed,
            panicked,
            cancelled,
            skipped,
            stolen: self.stolen.load(Ordering::Relaxed),
        }
    }
}
