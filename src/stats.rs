//! Pool metrics: the per-worker counters workers bump as they run tasks,
//! and [`PoolStats`], their sum, read by [`ThreadPool::stats`].
//!
//! Cheap enough to leave on: each worker owns one cache-line-aligned block
//! of counters that only it writes (a plain load + store, no locked
//! read-modify-write, no line shared with other writers). Nothing is
//! counted on the submit path: `queued` is read from the queues' lengths.
//! Readers sum the blocks without stopping anyone, so a snapshot taken
//! while the pool is busy is approximate; in a quiescent pool it is exact.
//!
//! Every queue entry ends in exactly one of `completed`, `panicked` or
//! `cancelled`, counted when it leaves the queue: a task cancelled while
//! queued (its handle resolves at once) stays in `queued` until a worker
//! discards its entry or the pool terminates. Cancellations that never
//! reach a queue (a timer cancelled before it fires) go to one shared
//! counter, off the hot path.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::pool::ThreadPool;

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
    /// worker ran it inline) or was refused.
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
    /// Entries of tasks that had already run elsewhere (inline, by a
    /// waiting worker) or were refused: they end nothing.
    skipped: AtomicU64,
    stolen: AtomicU64,
    /// Odd while the worker is active (looking for or running work), even
    /// while it is parked idle; bumped at each change. See `idle.rs`.
    pub(crate) activity: AtomicU64,
}

/// A single-writer increment: a plain load and store, no locked RMW.
#[inline]
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

impl WorkerCounters {
    pub(crate) fn new() -> Self {
        WorkerCounters {
            // Workers start active: they look for work before they park.
            activity: AtomicU64::new(1),
            ..Default::default()
        }
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
}

/// A snapshot of a pool's activity, from [`ThreadPool::stats`].
///
/// Counts are totals since the pool was built. A snapshot of a busy pool
/// is approximate (the workers are not stopped to take it); once the pool
/// is idle (see [`ThreadPool::wait_idle`]) it is exact, and then
/// `completed + panicked + cancelled` is the number of tasks that went
/// through the pool's queues (a periodic task counts once per run).
///
/// # Examples
///
/// ```
/// use futurepool::ThreadPool;
///
/// let pool = ThreadPool::new(2).unwrap();
/// for i in 0..10 {
///     pool.submit(move || if i == 3 { panic!("three") });
/// }
/// pool.wait_idle();
/// let stats = pool.stats();
/// assert_eq!((stats.completed, stats.panicked), (9, 1));
/// assert_eq!((stats.queued, stats.running), (0, 0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PoolStats {
    /// Tasks waiting in the queues (a task cancelled while queued is
    /// counted here until a worker discards its entry).
    pub queued: usize,
    /// Tasks running right now.
    pub running: usize,
    /// Tasks that returned a value (a periodic task: runs that returned).
    pub completed: u64,
    /// Tasks that panicked.
    pub panicked: u64,
    /// Tasks that ended cancelled: before they started (handle, terminate,
    /// shutdown, a timer cancelled or dropped by close) or cooperatively
    /// while running.
    pub cancelled: u64,
    /// Tasks a worker took from another worker's deque.
    pub stolen: u64,
    /// Delayed and periodic tasks waiting for their time
    /// ([`ThreadPool::submit_after`], [`ThreadPool::submit_periodic`]).
    pub scheduled: usize,
    /// Workers parked for lack of work.
    pub idle_workers: usize,
}

impl ThreadPool {
    /// A snapshot of the pool's counters: queued, running, completed,
    /// panicked, cancelled, stolen, scheduled timers, idle workers.
    ///
    /// Cheap (it sums one small block per worker) and never blocks the
    /// workers; see [`PoolStats`] for how exact it is.
    ///
    /// ```
    /// use futurepool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(1).unwrap();
    /// pool.apply(|| ()).unwrap();
    /// pool.wait_idle();
    /// assert_eq!(pool.stats().completed, 1);
    /// ```
    pub fn stats(&self) -> PoolStats {
        let registry = self.registry();
        let mut stats = PoolStats {
            queued: registry.queued_len(),
            cancelled: registry.cancelled_elsewhere.load(Ordering::Relaxed),
            scheduled: registry.scheduled_timers(),
            ..PoolStats::default()
        };
        // Idle: parked for lack of work, as `wait_idle` sees it (the
        // worker's activity mark is even), not counting exited workers.
        let parked = registry
            .counters
            .iter()
            .filter(|c| c.activity.load(Ordering::SeqCst) % 2 == 0)
            .count();
        stats.idle_workers = parked.saturating_sub(registry.exited_workers());
        let mut started = 0;
        let mut ended = 0;
        for c in registry.counters.iter() {
            // Outcomes before starts: an outcome is counted after its
            // start, so a racing snapshot rather over-counts `running`
            // (and the subtraction saturates).
            let (completed, panicked, cancelled, skipped) = (
                c.completed.load(Ordering::Relaxed),
                c.panicked.load(Ordering::Relaxed),
                c.cancelled.load(Ordering::Relaxed),
                c.skipped.load(Ordering::Relaxed),
            );
            started += c.started.load(Ordering::Relaxed);
            ended += completed + panicked + cancelled + skipped;
            stats.completed += completed;
            stats.panicked += panicked;
            stats.cancelled += cancelled;
            stats.stolen += c.stolen.load(Ordering::Relaxed);
        }
        stats.running = started.saturating_sub(ended) as usize;
        stats
    }
}
