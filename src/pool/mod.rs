//! [`ThreadPool`]: the public face. Every public method of the pool is
//! here, in one `impl` block, each a short delegation to the module that
//! owns its mechanism: the core (`core/`) for submitting and the
//! lifecycle, and beside this file the builder (`builder.rs`), the bounded
//! queue (`bounded.rs`), cooperative cancellation (`cancel.rs`),
//! priorities (`priority.rs`), waiting for idleness (`idle.rs`) and the
//! statistics (`stats.rs`); bulk work is in `bulk/`, delayed and periodic
//! tasks in `timers/`, async tasks in `future/`.
//!
//! This file is long only because it holds every method's documentation
//! and examples, which belong where users look for them.

pub(crate) mod bounded;
pub(crate) mod builder;
pub(crate) mod cancel;
pub(crate) mod elastic;
pub(crate) mod install;
pub(crate) mod priority;
pub(crate) mod stats;

use std::fmt;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bulk::map::{self, IMap, IMapUnordered};
use crate::bulk::scope::{self, Scope};
use crate::core::job::{Plain, Tokened};
use crate::core::registry::Registry;
use crate::error::{BuildError, ResizeError, TaskError};
use crate::handle::AsyncResult;
use crate::timers::delayed;
use bounded::TrySubmitError;
use builder::Builder;
use cancel::CancelToken;
use stats::PoolStats;

/// A work-stealing thread pool whose submissions return [`AsyncResult`]
/// handles.
///
/// `ThreadPool` is `Send + Sync`: share it with an `Arc`; tasks may submit to
/// their own pool. Tasks run only on the pool's worker threads.
///
/// # Shutting down
///
/// * [`close`](ThreadPool::close): accept no new work; queued work still runs.
/// * [`terminate`](ThreadPool::terminate): accept no new work and cancel
///   what has not started.
/// * [`join`](ThreadPool::join): close, then wait until every worker exited.
/// * [`shutdown`](ThreadPool::shutdown): `concurrent.futures` style.
/// * Drop: a normal pool closes and joins (all queued work runs first, as
///   leaving a `with ThreadPoolExecutor(...)` block does); a daemon pool
///   ([`Builder::daemon`]) closes and returns at once.
///
/// # Examples
///
/// ```
/// use futurepool::ThreadPool;
///
/// let pool = ThreadPool::new(4).unwrap();
/// let handles: Vec<_> = (0..10u64).map(|i| pool.submit(move || i * i)).collect();
/// let squares: Vec<u64> = handles.into_iter().map(|h| h.get().unwrap()).collect();
/// assert_eq!(squares[9], 81);
/// ```
pub struct ThreadPool {
    registry: Arc<Registry>,
    daemon: bool,
}

impl ThreadPool {
    // ---- construction ----------------------------------------------------------

    /// A pool of `num_threads` workers with the default settings.
    ///
    /// # Errors
    ///
    /// [`BuildError`] if `num_threads` is 0 or a thread cannot be started.
    ///
    /// ```
    /// use futurepool::ThreadPool;
    /// assert_eq!(ThreadPool::new(2).unwrap().num_threads(), 2);
    /// assert!(ThreadPool::new(0).is_err());
    /// ```
    pub fn new(num_threads: usize) -> Result<ThreadPool, BuildError> {
        Builder::new().num_threads(num_threads).build()
    }

    /// A [`Builder`] to configure a pool.
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn from_parts(registry: Arc<Registry>, daemon: bool) -> Self {
        ThreadPool { registry, daemon }
    }

    // ---- submitting one task ---------------------------------------------------

    /// Queues `f` and returns its handle at once.
    ///
    /// On a closed pool the closure is dropped unrun and the handle resolves
    /// to [`TaskError::PoolClosed`]; this never panics.
    ///
    /// ```
    /// # use futurepool::ThreadPool;
    /// let pool = ThreadPool::new(2).unwrap();
    /// let handle = pool.submit(|| "done");
    /// assert_eq!(handle.get(), Ok("done"));
    /// ```
    // Inline: the caller's frame takes the work of this one's (a fork of
    // W3's submit + get, 346 -> 334 instructions, callgrind).
    #[inline]
    pub fn submit<F, T>(&self, f: F) -> AsyncResult<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        AsyncResult::submitted(self.registry.submit(f))
    }

    /// The same as [`submit`](ThreadPool::submit), under the name Python's
    /// `multiprocessing.pool.ThreadPool` uses.
    ///
    /// ```
    /// # use futurepool::ThreadPool;
    /// let pool = ThreadPool::new(1).unwrap();
    /// let greeting = pool.apply_async(|| format!("hello {}", "world"));
    /// assert_eq!(greeting.get().unwrap(), "hello world");
    /// ```
    pub fn apply_async<F, T>(&self, f: F) -> AsyncResult<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        AsyncResult::submitted(self.registry.submit(f))
    }

    /// Submits `f` and waits for its value.
    ///
    /// # Errors
    ///
    /// As [`AsyncResult::get`]: a panic in `f` is [`TaskError::Panicked`], a
    /// closed pool [`TaskError::PoolClosed`].
    ///
    /// ```
    /// # use futurepool::ThreadPool;
    /// let pool = ThreadPool::new(1).unwrap();
    /// assert_eq!(pool.apply(|| 2 + 2), Ok(4));
    /// ```
    pub fn apply<F, T>(&self, f: F) -> Result<T, TaskError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        AsyncResult::submitted(self.registry.submit(f)).get()
    }

    /// Queues a task that can be stopped while it runs: `f` receives a
    /// [`CancelToken`] and should return soon after it is cancelled.
    ///
    /// [`cancel`](AsyncResult::cancel) on the handle sets the token. If the
    /// task has not started, it never will (and `cancel` returns true, as
    /// for any task). If it is running, the task sees the token, and
    /// `cancel` returns false (it had started, as Python's `Future.cancel`
    /// reports) unless the task has already ended cancelled by the time
    /// `cancel` returns. If the token is set by the time `f` returns, the handle
    /// resolves to [`TaskError::Cancelled`](crate::TaskError::Cancelled)
    /// and [`cancelled`](AsyncResult::cancelled) becomes true; the value
    /// `f` returned is dropped. A panic is still reported as `Panicked`.
    ///
    /// [`terminate`](ThreadPool::terminate) does not set running tasks'
    /// tokens: cancel their handles for that.
    ///
    /// ```
    /// use futurepool::{CancelToken, TaskError, ThreadPool};
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(1).unwrap();
    /// let (started_tx, started) = std::sync::mpsc::channel();
    /// // A Python-style CountdownTask: count down, checking for termination.
    /// let countdown = pool.submit_cancellable(move |token: CancelToken| {
    ///     started_tx.send(()).unwrap();
    ///     let mut n = 1_000_000;
    ///     while n > 0 && !token.wait_timeout(Duration::from_millis(5)) {
    ///         n -= 1;
    ///     }
    ///     n
    /// });
    /// started.recv().unwrap();
    /// countdown.cancel(); // c.terminate()
    /// assert_eq!(countdown.get_timeout(Duration::from_secs(10)), Err(TaskError::Cancelled));
    /// assert!(countdown.cancelled());
    /// ```
    pub fn submit_cancellable<F, T>(&self, f: F) -> AsyncResult<T>
    where
        F: FnOnce(CancelToken) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_with_token(CancelToken::new(), f)
    }

    /// Like [`submit_cancellable`](ThreadPool::submit_cancellable), with a
    /// token of your own: share one token among several tasks to stop
    /// them all with one [`CancelToken::cancel`] (each handle then resolves
    /// to `Cancelled` if its task was still running, and tasks that had not
    /// started still start, see the token and can return at once).
    /// Cancelling any of their handles cancels the shared token.
    ///
    /// ```
    /// use futurepool::{CancelToken, ThreadPool};
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let stop = CancelToken::new();
    /// let workers: Vec<_> = (0..2)
    ///     .map(|_| pool.submit_with_token(stop.clone(), |token: CancelToken| {
    ///         while !token.wait_timeout(Duration::from_millis(5)) {}
    ///     }))
    ///     .collect();
    /// stop.cancel();
    /// for w in workers {
    ///     assert!(w.get_timeout(Duration::from_secs(10)).unwrap_err().is_cancelled());
    /// }
    /// ```
    pub fn submit_with_token<F, T>(&self, token: CancelToken, f: F) -> AsyncResult<T>
    where
        F: FnOnce(CancelToken) -> T + Send + 'static,
        T: Send + 'static,
    {
        let for_task = token.clone();
        AsyncResult::submitted(self.registry.submit_task(
            move || f(for_task),
            Tokened::new(token),
            None,
        ))
    }

    /// Queues `f` with a priority: among queued prioritized tasks, workers
    /// take the highest priority first, and the oldest first among equal
    /// priorities (Python's `heapq` + `Condition` priority queue, as one call).
    ///
    /// A plain [`submit`](ThreadPool::submit) counts as priority 0. See the
    /// [`priority` notes](crate#priorities) for what work-stealing does and
    /// does not preserve. On a closed pool the handle resolves to
    /// [`TaskError::PoolClosed`](crate::TaskError::PoolClosed). On a pool
    /// with [`Builder::max_queued`](crate::Builder::max_queued) it waits
    /// for room as `submit` does.
    ///
    /// ```
    /// use futurepool::ThreadPool;
    /// use std::sync::{mpsc, Arc, Mutex};
    ///
    /// let pool = ThreadPool::new(1).unwrap();
    /// // Hold the only worker so the next three wait in the queue.
    /// let (release, gate) = mpsc::channel::<()>();
    /// let blocker = pool.submit(move || gate.recv().unwrap());
    /// let order = Arc::new(Mutex::new(Vec::new()));
    /// for (priority, name) in [(1, "low"), (5, "high"), (3, "mid")] {
    ///     let order = order.clone();
    ///     pool.submit_with_priority(priority, move || order.lock().unwrap().push(name));
    /// }
    /// release.send(()).unwrap();
    /// blocker.get().unwrap();
    /// pool.wait_idle();
    /// assert_eq!(*order.lock().unwrap(), ["high", "mid", "low"]);
    /// ```
    pub fn submit_with_priority<F, T>(&self, priority: i32, f: F) -> AsyncResult<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        AsyncResult::submitted(self.registry.submit_task(f, Plain, Some(priority)))
    }

    /// Queues `f` if there is room right now; never blocks.
    ///
    /// On a pool built with [`Builder::max_queued`](crate::Builder::max_queued),
    /// a full queue gives the closure back in [`TrySubmitError::Full`]
    /// (Python's `queue.put_nowait` raising `queue.Full`, minus the lost
    /// item). Without that option the queue is never full.
    ///
    /// # Errors
    ///
    /// [`TrySubmitError::Full`] if the queue is at its limit,
    /// [`TrySubmitError::Closed`] if the pool is closed; both carry `f`.
    /// (If the pool closes while the task is being queued, the task is
    /// withdrawn and the handle resolves to
    /// [`TaskError::PoolClosed`](crate::TaskError::PoolClosed), as with
    /// `submit`.)
    ///
    /// ```
    /// use futurepool::{ThreadPool, TrySubmitError};
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::builder().num_threads(1).max_queued(1).build().unwrap();
    /// let (release, gate) = mpsc::channel::<()>();
    /// let (started_tx, started) = mpsc::channel();
    /// let busy = pool.submit(move || { started_tx.send(()).unwrap(); gate.recv().unwrap() });
    /// started.recv().unwrap();               // the worker is busy
    /// let queued = pool.try_submit(|| 1).unwrap(); // takes the one place
    /// let refused = pool.try_submit(|| 2).unwrap_err();
    /// assert!(refused.is_full());
    /// release.send(()).unwrap();
    /// busy.get().unwrap();
    /// assert_eq!(queued.get(), Ok(1));
    /// assert_eq!(refused.into_inner()(), 2); // the closure was never lost
    /// ```
    pub fn try_submit<F, T>(&self, f: F) -> Result<AsyncResult<T>, TrySubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.registry.try_submit(f).map(AsyncResult::submitted)
    }

    /// Runs `f` on the pool once `delay` has passed (Python's
    /// `threading.Timer`, but on the pool). Returns its handle at once.
    ///
    /// The pool's timer thread, started on first use, only queues the task
    /// at its deadline (it then waits its turn like any submission); timers
    /// fire in deadline order. [`cancel`](AsyncResult::cancel) before it
    /// fires removes it and drops `f` at once. Closing or terminating the
    /// pool cancels every timer that has not fired (their handles resolve
    /// to [`TaskError::Cancelled`]); one that already fired is queued work
    /// and runs as such. A delayed task is not counted by
    /// [`wait_idle`](ThreadPool::wait_idle) until it fires.
    ///
    /// On a closed pool the handle resolves to [`TaskError::PoolClosed`].
    /// If the timer thread cannot be started, to [`TaskError::Panicked`]
    /// with the OS error as its message.
    ///
    /// ```
    /// use futurepool::ThreadPool;
    /// use std::time::{Duration, Instant};
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let start = Instant::now();
    /// let later = pool.submit_after(Duration::from_millis(20), move || start.elapsed());
    /// let waited = later.get_timeout(Duration::from_secs(10)).unwrap();
    /// assert!(waited >= Duration::from_millis(20));
    ///
    /// let never = pool.submit_after(Duration::from_secs(3600), || "too late");
    /// assert!(never.cancel());
    /// assert!(never.cancelled());
    /// ```
    pub fn submit_after<F, T>(&self, delay: Duration, f: F) -> AsyncResult<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        delayed::submit_after(&self.registry, delay, f)
    }

    /// Runs `f` every `period` on the pool until it returns
    /// [`ControlFlow::Break`] (the handle's value), panics (the handle's
    /// error; no further runs), is cancelled, or the pool closes. Python's hand-made
    /// `PeriodicTimer` thread with its `Condition`, as one call.
    ///
    /// The first run is one period from now. Runs never overlap: the next
    /// run is scheduled when the current one returns, for one period after
    /// the previous deadline; a run that overran its period makes the next
    /// start one period after it ended (missed ticks are skipped, not
    /// caught up). A zero period runs `f` again as soon as it returns and
    /// other queued work has had its turn.
    ///
    /// [`cancel`](AsyncResult::cancel) between runs stops it at once (true;
    /// `f` is dropped now); during a run the handle resolves to
    /// [`TaskError::Cancelled`] when that run returns, and `cancel` returns
    /// false (unless that run has already returned when it looks). Closing
    /// the pool ends it the same way. Each run counts as one completed task
    /// in [`stats`](ThreadPool::stats).
    ///
    /// ```
    /// use futurepool::ThreadPool;
    /// use std::ops::ControlFlow;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let mut ticks = 0;
    /// let handle = pool.submit_periodic(Duration::from_millis(5), move || {
    ///     ticks += 1;
    ///     if ticks == 3 { ControlFlow::Break(ticks) } else { ControlFlow::Continue(()) }
    /// });
    /// assert_eq!(handle.get_timeout(Duration::from_secs(10)), Ok(3));
    /// ```
    pub fn submit_periodic<F, T>(&self, period: Duration, f: F) -> AsyncResult<T>
    where
        F: FnMut() -> ControlFlow<T> + Send + 'static,
        T: Send + 'static,
    {
        delayed::submit_periodic(&self.registry, period, f)
    }

    /// Runs `future` on the pool's workers and returns its handle at once.
    ///
    /// A worker polls the future; when it returns `Pending` it holds no
    /// worker until its waker fires, and a wake queues it again (on the
    /// waking worker's own deque when the wake comes from one of this pool's
    /// workers, else on the shared queue). Wakes are coalesced: a task woken
    /// many times while queued is polled once, and a wake during a poll is
    /// never lost. The handle is like every other: `get`, `get_timeout`,
    /// callbacks, `.await`, `as_completed`, `wait`.
    ///
    /// * A panic inside `poll` is caught: the future is dropped, the handle
    ///   resolves to [`TaskError::Panicked`], the worker lives on.
    /// * [`cancel`](AsyncResult::cancel) works even after the future
    ///   started, unlike a closure's: the future is dropped on a worker at
    ///   its next `Pending` (at once if it is waiting for a wake) and the
    ///   handle resolves to [`TaskError::Cancelled`]. If the future completes
    ///   in the poll under way, its value is kept.
    /// * A future that can never be polled again (it returned `Pending` and
    ///   every clone of its waker was dropped) is dropped, and its handle
    ///   resolves to [`TaskError::Cancelled`] instead of waiting forever.
    /// * Lifecycle: [`close`](ThreadPool::close) and [`join`](ThreadPool::join)
    ///   (and so dropping the pool) wait for async tasks that are suspended,
    ///   as for queued closures; [`terminate`](ThreadPool::terminate) and
    ///   `shutdown(_, true)` cancel them. On a closed pool the future is
    ///   dropped unpolled and the handle resolves to [`TaskError::PoolClosed`].
    ///
    /// ```
    /// use futurepool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// // Async tasks can await closure tasks (and the other way round).
    /// let squared = pool.submit(|| 7 * 7);
    /// let handle = pool.spawn_async(async move { squared.await.unwrap() + 1 });
    /// assert_eq!(handle.get(), Ok(50));
    /// ```
    pub fn spawn_async<F>(&self, future: F) -> AsyncResult<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        crate::future::task::spawn(&self.registry, future)
    }

    // ---- bulk work -------------------------------------------------------------

    /// Applies `f` to every item in parallel and returns the results in
    /// input order, as Python's `Pool.map`.
    ///
    /// Items are grouped into chunks (one task each) so that many tiny items
    /// cost few allocations and wake-ups: when the input's length is known
    /// (its `size_hint` is exact) the chunk size is `len / (4 * threads)`,
    /// rounded up, as Python picks it; otherwise the input is collected
    /// first to learn its length. [`map_chunked`](ThreadPool::map_chunked)
    /// takes an explicit chunk size.
    ///
    /// Fail fast: as soon as one item panics, the call returns that panic
    /// and the chunks not yet started never run (running ones finish and
    /// their results are dropped). The pool stays usable. Called on one of
    /// the pool's own workers, the wait runs queued work (including this
    /// map's own chunks), so it cannot deadlock.
    ///
    /// # Errors
    ///
    /// [`TaskError::Panicked`] with the first failing item's panic (its
    /// message kept), also if iterating `items` panicked;
    /// [`TaskError::PoolClosed`] on a closed pool;
    /// [`TaskError::Cancelled`] if the pool was terminated meanwhile.
    ///
    /// # Examples
    ///
    /// ```
    /// use futurepool::{TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(4).unwrap();
    /// let squares = pool.map(|x: u64| x * x, 0..10u64).unwrap();
    /// assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
    ///
    /// let err = pool.map(|x: u32| if x == 3 { panic!("bad item {x}") } else { x }, 0..8)
    ///     .unwrap_err();
    /// assert_eq!(err.panic_message(), Some("bad item 3"));
    /// assert_eq!(pool.map(|x: u8| x + 1, [1, 2]), Ok(vec![2, 3])); // still usable
    /// ```
    pub fn map<F, T, I, U>(&self, f: F, items: T) -> Result<Vec<U>, TaskError>
    where
        F: Fn(I) -> U + Send + Sync + 'static,
        T: IntoIterator<Item = I>,
        I: Send + 'static,
        U: Send + 'static,
    {
        map::map(&self.registry, f, items)
    }

    /// [`map`](ThreadPool::map) with an explicit chunk size: how many items
    /// each task processes.
    ///
    /// # Errors
    ///
    /// [`TaskError::InvalidArgument`] if `chunksize` is 0 (nothing runs);
    /// otherwise as [`map`](ThreadPool::map).
    ///
    /// ```
    /// use futurepool::{TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// assert_eq!(pool.map_chunked(|x: i32| -x, vec![1, 2, 3], 2), Ok(vec![-1, -2, -3]));
    /// assert!(matches!(
    ///     pool.map_chunked(|x: i32| x, vec![1], 0),
    ///     Err(TaskError::InvalidArgument(_))
    /// ));
    /// ```
    pub fn map_chunked<F, T, I, U>(
        &self,
        f: F,
        items: T,
        chunksize: usize,
    ) -> Result<Vec<U>, TaskError>
    where
        F: Fn(I) -> U + Send + Sync + 'static,
        T: IntoIterator<Item = I>,
        I: Send + 'static,
        U: Send + 'static,
    {
        map::map_chunked(&self.registry, f, items, chunksize)
    }

    /// Starts a [`map`](ThreadPool::map) and returns its handle at once
    /// (after the input has been cut into chunks and queued, on this
    /// thread; on a [`max_queued`](crate::Builder::max_queued) pool each
    /// chunk waits for room), as Python's `Pool.map_async`.
    ///
    /// The handle resolves to the whole result vector, in input order, or to
    /// the first error (fail fast, as [`map`](ThreadPool::map)).
    /// [`cancel`](AsyncResult::cancel) on it stops the map even while it
    /// runs: chunks not started never run, running chunks finish and their
    /// results are dropped, and the handle resolves to
    /// [`TaskError::Cancelled`]; it returns false only once the map is over.
    ///
    /// ```
    /// use futurepool::ThreadPool;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let handle = pool.map_async(|s: String| s.len(), vec!["a".to_string(), "bcd".into()]);
    /// assert_eq!(handle.get_timeout(Duration::from_secs(5)), Ok(vec![1, 3]));
    /// ```
    pub fn map_async<F, T, I, U>(&self, f: F, items: T) -> AsyncResult<Vec<U>>
    where
        F: Fn(I) -> U + Send + Sync + 'static,
        T: IntoIterator<Item = I>,
        I: Send + 'static,
        U: Send + 'static,
    {
        map::map_async(&self.registry, f, items)
    }

    /// [`map_async`](ThreadPool::map_async) with an explicit chunk size.
    /// A chunk size of 0 gives a handle already resolved to
    /// [`TaskError::InvalidArgument`].
    ///
    /// ```
    /// use futurepool::{TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let h = pool.map_async_chunked(|x: u64| x + 1, 0..100u64, 7);
    /// assert_eq!(h.get().unwrap().len(), 100);
    /// let bad = pool.map_async_chunked(|x: u64| x, 0..1u64, 0);
    /// assert!(matches!(bad.get(), Err(TaskError::InvalidArgument(_))));
    /// ```
    pub fn map_async_chunked<F, T, I, U>(
        &self,
        f: F,
        items: T,
        chunksize: usize,
    ) -> AsyncResult<Vec<U>>
    where
        F: Fn(I) -> U + Send + Sync + 'static,
        T: IntoIterator<Item = I>,
        I: Send + 'static,
        U: Send + 'static,
    {
        map::map_async_chunked(&self.registry, f, items, chunksize)
    }

    /// A lazy iterator of `f(item)` over `items`, in input order, as
    /// Python's `Pool.imap`. See [`IMap`] for laziness, the in-flight
    /// bound ([`IMap::buffersize`], default `2 * num_threads`), chunking
    /// ([`IMap::chunksize`], default 1), failures and dropping.
    ///
    /// `items` is pulled on the thread that consumes the iterator, so it
    /// need not be `Send` and may borrow local data; only the items cross
    /// to the workers.
    ///
    /// ```
    /// use futurepool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(4).unwrap();
    /// let mut it = pool.imap(|x: u32| if x == 1 { panic!("one") } else { x * 10 }, 0..3);
    /// assert_eq!(it.next(), Some(Ok(0)));
    /// assert_eq!(it.next().unwrap().unwrap_err().panic_message(), Some("one"));
    /// assert_eq!(it.next(), Some(Ok(20))); // goes on past a failed item
    /// assert_eq!(it.next(), None);
    /// ```
    pub fn imap<F, T, I, U>(&self, f: F, items: T) -> IMap<T::IntoIter, U>
    where
        F: Fn(I) -> U + Send + Sync + 'static,
        T: IntoIterator<Item = I>,
        I: Send + 'static,
        U: Send + 'static,
    {
        map::imap(&self.registry, f, items)
    }

    /// A lazy iterator of `f(item)` over `items`, in completion order, as
    /// Python's `Pool.imap_unordered`. See [`IMapUnordered`].
    ///
    /// ```
    /// use futurepool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(4).unwrap();
    /// // Stop after 5 results from an endless input.
    /// let firsts: Vec<u64> = pool
    ///     .imap_unordered(|x: u64| x * 3, 0u64..)
    ///     .take(5)
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(firsts.len(), 5);
    /// assert!(firsts.iter().all(|v| v % 3 == 0));
    /// ```
    pub fn imap_unordered<F, T, I, U>(&self, f: F, items: T) -> IMapUnordered<T::IntoIter, U>
    where
        F: Fn(I) -> U + Send + Sync + 'static,
        T: IntoIterator<Item = I>,
        I: Send + 'static,
        U: Send + 'static,
    {
        map::imap_unordered(&self.registry, f, items)
    }

    /// Runs `f` with a [`Scope`] whose tasks may borrow from the caller's
    /// stack, and returns `f`'s value once every task spawned in the scope
    /// has finished, as `std::thread::scope` and `rayon::scope` do.
    ///
    /// Called on one of the pool's own workers, the wait runs queued work,
    /// so nested scopes cannot deadlock, even on a pool of one thread.
    ///
    /// # Panics
    ///
    /// Every task is joined first, even if `f` or a task panicked. Then, if
    /// `f` panicked, its panic is resumed; otherwise, if a task panicked and
    /// its handle was not [`join`](crate::ScopedHandle::join)ed, this panics with
    /// `"a scoped task panicked: {message}"`.
    ///
    /// # Examples
    ///
    /// ```
    /// use futurepool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(4).unwrap();
    /// let mut data = vec![1u64, 2, 3, 4, 5, 6, 7, 8];
    /// let factor = 10;
    /// pool.scope(|s| {
    ///     for chunk in data.chunks_mut(3) {
    ///         s.spawn(move || chunk.iter_mut().for_each(|x| *x *= factor));
    ///     }
    /// });
    /// assert_eq!(data, [10, 20, 30, 40, 50, 60, 70, 80]);
    /// ```
    ///
    /// Borrows cannot outlive the scope, and a handle cannot leave it:
    ///
    /// ```compile_fail
    /// let pool = futurepool::ThreadPool::new(1).unwrap();
    /// let escaped = pool.scope(|s| s.spawn(|| 1));
    /// ```
    ///
    /// ```compile_fail
    /// let pool = futurepool::ThreadPool::new(1).unwrap();
    /// pool.scope(|s| {
    ///     let local = vec![1];
    ///     s.spawn(|| local.len()); // `local` dies before the scope ends
    /// });
    /// ```
    ///
    /// ```compile_fail
    /// let pool = futurepool::ThreadPool::new(1).unwrap();
    /// let mut v = vec![1];
    /// pool.scope(|s| {
    ///     s.spawn(|| v.len());
    ///     v.push(2); // mutated while a task may read it
    /// });
    /// ```
    pub fn scope<'env, F, R>(&self, f: F) -> R
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
    {
        scope::scope(&self.registry, f)
    }

    /// Runs `f` on one of this pool's workers and returns its value; `f`
    /// may borrow from the caller. Inside `f`, [`join`](crate::join) and
    /// nested waits use this pool. Called on one of this pool's workers,
    /// `f` simply runs there; from anywhere else the caller blocks until
    /// `f` is done (a worker of another pool keeps running its own pool's
    /// work meanwhile). On a pool that is closed (it takes no new work),
    /// `f` runs on the calling thread instead.
    ///
    /// # Panics
    ///
    /// A panic in `f` is re-raised in the caller.
    ///
    /// # Examples
    ///
    /// ```
    /// use futurepool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let words = vec!["fork", "join"];
    /// let (a, b) = pool.install(|| futurepool::join(|| words[0].len(), || words[1].len()));
    /// assert_eq!(a + b, 8);
    /// ```
    pub fn install<F, R>(&self, f: F) -> R
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        install::install(&self.registry, f)
    }

    // ---- the pool's state ------------------------------------------------------

    /// The pool's size: for a fixed pool ([`Builder::num_threads`] or
    /// [`ThreadPool::new`]) its number of workers, as last set; for an
    /// elastic pool ([`Builder::max_threads`] alone) its `max_threads`, the
    /// size it grows to under load. Threads alive right now are
    /// [`stats().threads`](PoolStats::threads); a fixed pool may briefly
    /// have more than its size while workers sit in
    /// [`blocking`](crate::blocking).
    ///
    /// ```
    /// use futurepool::{Builder, ThreadPool};
    /// assert_eq!(ThreadPool::new(3).unwrap().num_threads(), 3);
    /// let elastic = Builder::new().max_threads(64).build().unwrap();
    /// assert_eq!(elastic.num_threads(), 64);
    /// assert_eq!(elastic.stats().threads, 0);
    /// ```
    pub fn num_threads(&self) -> usize {
        self.registry.num_threads()
    }

    /// The most threads the pool may have alive at once: an elastic pool's
    /// `max_threads`; for a fixed pool, its size plus the threads it may add
    /// to stand in for workers inside [`blocking`](crate::blocking)
    /// (`num_threads + 512` unless [`Builder::max_threads`] says otherwise).
    ///
    /// ```
    /// use futurepool::{Builder, ThreadPool};
    /// assert_eq!(Builder::new().max_threads(128).build().unwrap().max_threads(), 128);
    /// assert_eq!(ThreadPool::new(2).unwrap().max_threads(), 2 + 512);
    /// ```
    pub fn max_threads(&self) -> usize {
        self.registry.threads.sizes().cap
    }

    /// Changes the cap on threads alive at once (Python's `max_workers`)
    /// while the pool runs. On an elastic pool this is its size: growing
    /// lets submissions start more workers; shrinking below the threads
    /// alive lets workers exit after their current task (parked ones at
    /// once), never dropping queued work. On a fixed pool it caps the
    /// threads added for [`blocking`](crate::blocking).
    ///
    /// # Errors
    ///
    /// [`ResizeError`] (and no change) if `n` is 0, above
    /// [`Builder::MAX_THREADS`], below the pool's minimum (`min_threads`,
    /// or a fixed pool's size).
    ///
    /// ```
    /// use futurepool::Builder;
    ///
    /// let pool = Builder::new().max_threads(2).build().unwrap();
    /// pool.set_max_threads(32).unwrap();
    /// assert_eq!(pool.max_threads(), 32);
    /// assert!(pool.set_max_threads(0).is_err());
    /// assert_eq!(pool.max_threads(), 32);
    /// ```
    pub fn set_max_threads(&self, n: usize) -> Result<(), ResizeError> {
        elastic::set_max_threads(&self.registry, n)
    }

    /// Changes how many workers an elastic pool keeps while idle; growing
    /// it starts workers now. On a fixed pool it lets workers above `n`
    /// retire when idle for the keep-alive and start again on demand,
    /// making the pool elastic between `n` and its size.
    ///
    /// # Errors
    ///
    /// [`ResizeError`] (and no change) if `n` is above the pool's size
    /// ([`num_threads`](ThreadPool::num_threads)).
    ///
    /// ```
    /// use futurepool::Builder;
    ///
    /// let pool = Builder::new().max_threads(8).build().unwrap();
    /// pool.set_min_threads(3).unwrap();
    /// assert_eq!(pool.stats().threads, 3);
    /// assert!(pool.set_min_threads(9).is_err());
    /// ```
    pub fn set_min_threads(&self, n: usize) -> Result<(), ResizeError> {
        elastic::set_min_threads(&self.registry, n)
    }

    /// Makes the pool a fixed pool of `n` workers (the `threadpool`
    /// crate's `set_num_threads`): growing starts threads now; shrinking
    /// lets workers exit after their current task, never dropping queued
    /// work. The cap ([`max_threads`](ThreadPool::max_threads)) is raised
    /// to `n` if it was lower.
    ///
    /// # Errors
    ///
    /// [`ResizeError`] (and no change) if `n` is 0 or above
    /// [`Builder::MAX_THREADS`].
    ///
    /// ```
    /// use futurepool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// pool.set_num_threads(4).unwrap();
    /// assert_eq!((pool.num_threads(), pool.stats().threads), (4, 4));
    /// assert!(pool.set_num_threads(0).is_err());
    /// ```
    pub fn set_num_threads(&self, n: usize) -> Result<(), ResizeError> {
        elastic::set_num_threads(&self.registry, n)
    }

    /// Whether the pool has been closed (or terminated).
    pub fn is_closed(&self) -> bool {
        self.registry.is_closed()
    }

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
        stats::snapshot(&self.registry)
    }

    /// Blocks until the pool is idle: every queue empty, every worker
    /// waiting for work and every [`spawn_async`](ThreadPool::spawn_async)
    /// task over (also one suspended between polls), so every task
    /// submitted before the call has finished. The pool stays open (unlike [`join`](ThreadPool::join)):
    /// this is the `threadpool` crate's `join`, or waiting on a
    /// `queue.Queue`'s `join()` for all `task_done()` calls.
    ///
    /// Delayed and periodic tasks that have not fired yet are not waited
    /// for (a periodic task would never let the pool be idle); a fired
    /// one, queued or running, is. Submissions made while this waits may
    /// be waited for too, so a stream of them can keep it waiting.
    ///
    /// Called on one of the pool's own workers, it runs queued work itself
    /// and returns when everything but the calling task is done.
    ///
    /// ```
    /// use futurepool::ThreadPool;
    /// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
    ///
    /// let pool = ThreadPool::new(4).unwrap();
    /// let done = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..100 {
    ///     let done = done.clone();
    ///     pool.submit(move || done.fetch_add(1, Ordering::SeqCst));
    /// }
    /// pool.wait_idle();
    /// assert_eq!(done.load(Ordering::SeqCst), 100);
    /// assert_eq!(pool.apply(|| "still open"), Ok("still open"));
    /// ```
    pub fn wait_idle(&self) {
        crate::core::idle::wait_idle(&self.registry)
    }

    /// Like [`wait_idle`](ThreadPool::wait_idle), giving up after
    /// `timeout`; true if the pool became idle.
    ///
    /// ```
    /// use futurepool::ThreadPool;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(1).unwrap();
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// pool.submit(move || rx.recv());
    /// assert!(!pool.wait_idle_timeout(Duration::from_millis(10)));
    /// tx.send(()).unwrap();
    /// assert!(pool.wait_idle_timeout(Duration::from_secs(10)));
    /// ```
    pub fn wait_idle_timeout(&self, timeout: Duration) -> bool {
        crate::core::idle::wait_idle_timeout(&self.registry, timeout)
    }

    // ---- lifecycle -------------------------------------------------------------

    /// Accept no new work; queued work still runs. Idempotent.
    ///
    /// ```
    /// # use futurepool::{ThreadPool, TaskError};
    /// let pool = ThreadPool::new(1).unwrap();
    /// let queued = pool.submit(|| 1);
    /// pool.close();
    /// assert_eq!(pool.submit(|| 2).get(), Err(TaskError::PoolClosed));
    /// assert_eq!(queued.get(), Ok(1));
    /// ```
    pub fn close(&self) {
        self.registry.close();
    }

    /// Accept no new work, and cancel every queued task that has not started
    /// (their handles resolve to [`TaskError::Cancelled`] at once). Running
    /// tasks finish; this does not wait for them. Idempotent.
    pub fn terminate(&self) {
        self.registry.terminate();
    }

    /// Closes the pool if needed, then blocks until every worker has exited
    /// (so all queued work has run). Idempotent.
    ///
    /// Called on one of the pool's own workers, it closes the pool and
    /// returns without waiting: a worker cannot wait for itself, and waiting
    /// for the others could deadlock with a task that waits on this one.
    ///
    /// ```
    /// # use futurepool::ThreadPool;
    /// # use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
    /// let pool = ThreadPool::new(2).unwrap();
    /// let count = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..100 {
    ///     let count = count.clone();
    ///     pool.submit(move || count.fetch_add(1, Ordering::Relaxed));
    /// }
    /// pool.join();
    /// assert_eq!(count.load(Ordering::Relaxed), 100);
    /// ```
    pub fn join(&self) {
        self.close();
        if crate::core::worker::is_worker_of(&self.registry) {
            return;
        }
        // Also the threads that retired earlier, and any started meanwhile
        // for work queued before the close.
        self.registry.threads.join_all();
        // Closing shut the timer down (if one was started): reap it too.
        self.registry.join_timer();
    }

    /// Like [`join`](ThreadPool::join), but gives up after `timeout`:
    /// closes the pool, then waits at most `timeout` for every worker to
    /// exit. Returns true if they all have (the pool is then fully joined),
    /// false if some worker is still busy, e.g. with a task that never
    /// returns. The pool stays closed either way; call again to keep
    /// waiting.
    ///
    /// Called on one of the pool's own workers, it closes the pool and
    /// returns false at once (that worker has not exited).
    ///
    /// ```
    /// # use futurepool::ThreadPool;
    /// # use std::time::Duration;
    /// let pool = ThreadPool::new(1).unwrap();
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// let busy = pool.submit(move || { let _ = rx.recv(); });
    /// assert!(!pool.join_timeout(Duration::from_millis(10)));
    /// tx.send(()).unwrap();
    /// assert!(pool.join_timeout(Duration::from_secs(10)));
    /// assert_eq!(busy.get(), Ok(()));
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.close();
        if crate::core::worker::is_worker_of(&self.registry) {
            return false;
        }
        let deadline = Instant::now().checked_add(timeout);
        if !self.registry.threads.wait_exited(deadline) {
            return false;
        }
        // Every worker has left its loop: this join is immediate.
        self.join();
        true
    }

    /// As Python's `Executor.shutdown(wait, cancel_futures)`: close; if
    /// `cancel_futures`, first cancel every task that has not started; then,
    /// if `wait`, [`join`](ThreadPool::join).
    ///
    /// ```
    /// # use futurepool::ThreadPool;
    /// let pool = ThreadPool::new(2).unwrap();
    /// let h = pool.submit(|| 1);
    /// pool.shutdown(true, false);
    /// assert_eq!(h.get(), Ok(1));
    /// ```
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        if cancel_futures {
            self.registry.close();
            self.registry.cancel_queued();
        } else {
            self.close();
        }
        if wait {
            self.join();
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        if self.daemon {
            self.close();
        } else {
            self.join();
        }
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("num_threads", &self.num_threads())
            .field("closed", &self.is_closed())
            .field("daemon", &self.daemon)
            .finish()
    }
}
