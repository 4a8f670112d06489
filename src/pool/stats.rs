//! Pool metrics: [`PoolStats`], the sum of the per-worker counters
//! (`core/counters.rs`) read by [`ThreadPool::stats`](crate::ThreadPool::stats)(crate::ThreadPool::stats).
//!
//! Nothing is counted on the submit path: `queued` is read from the
//! queues' lengths. Readers sum the blocks without stopping anyone, so a snapshot taken
//! while the pool is busy is approximate; in a quiescent pool it is exact.
//!
//! Every queue entry ends in exactly one of `completed`, `panicked` or
//! `cancelled`, counted when it leaves the queue: a task cancelled while
//! queued (its handle resolves at once) stays in `queued` until a worker
//! discards its entry or the pool terminates. Cancellations that never
//! reach a queue (a timer cancelled before it fires) go to one shared
//! counter, off the hot path.

use std::sync::atomic::Ordering;

use crate::core::counters::WorkerCounters;
use crate::core::registry::Registry;

/// A snapshot of a pool's activity, from [`ThreadPool::stats`](crate::ThreadPool::stats).
///
/// Counts are totals since the pool was built. A snapshot of a busy pool
/// is approximate (the workers are not stopped to take it); once the pool
/// is idle (see [`ThreadPool::wait_idle`](crate::ThreadPool::wait_idle)) it is exact, and then
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
    /// ([`ThreadPool::submit_after`](crate::ThreadPool::submit_after), [`ThreadPool::submit_periodic`](crate::ThreadPool::submit_periodic)).
    pub scheduled: usize,
    /// Workers parked for lack of work.
    pub idle_workers: usize,
    /// Worker threads alive now (including one being started). For a fixed
    /// pool, its size plus any thread standing in for a worker inside
    /// [`blocking`](crate::blocking); for an elastic pool, between its
    /// `min_threads` and its `max_threads`.
    pub threads: usize,
    /// The most worker threads alive at once since the pool was built.
    pub peak_threads: usize,
}

/// The pool's counters, summed (see [`PoolStats`]).
pub(crate) fn snapshot(registry: &Registry) -> PoolStats {
    let mut stats = PoolStats {
        queued: registry.queued_len(),
        cancelled: registry.cancelled_elsewhere.load(Ordering::Relaxed),
        scheduled: registry.scheduled_timers(),
        threads: registry.threads.alive(),
        peak_threads: registry.threads.peak(),
        ..PoolStats::default()
    };
    // Idle: parked for lack of work, as `wait_idle` sees it (the worker's
    // activity mark is even), not counting slots without a worker (their
    // marks are even too).
    let slots = &registry.threads.slots;
    let parked = slots
        .iter()
        .filter(|s| s.counters.activity.load(Ordering::SeqCst) % 2 == 0)
        .count();
    stats.idle_workers = parked.saturating_sub(slots.vacant());
    let mut started = 0;
    let mut ended = 0;
    for c in registry
        .threads
        .slots
        .iter()
        .map(|slot| WorkerCounters::read(&slot.counters))
    {
        started += c.started;
        ended += c.completed + c.panicked + c.cancelled + c.skipped;
        stats.completed += c.completed;
        stats.panicked += c.panicked;
        stats.cancelled += c.cancelled;
        stats.stolen += c.stolen;
    }
    // A racing snapshot rather over-counts `running` (each worker's
    // outcomes are read before its starts), and the subtraction saturates.
    stats.running = started.saturating_sub(ended) as usize;
    stats
}
