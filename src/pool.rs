//! [`ThreadPool`]: the public face. Submitting work, and the pool's
//! lifecycle (close, terminate, join, shutdown, drop).

use std::fmt;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::builder::Builder;
use crate::error::{BuildError, TaskError};
use crate::handle::AsyncResult;
use crate::registry::Registry;

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
    threads: Mutex<Vec<JoinHandle<()>>>,
    daemon: bool,
}

impl ThreadPool {
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

    pub(crate) fn from_parts(
        registry: Arc<Registry>,
        threads: Vec<JoinHandle<()>>,
        daemon: bool,
    ) -> Self {
        ThreadPool {
            registry,
            threads: Mutex::new(threads),
            daemon,
        }
    }

    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

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
    pub fn submit<F, T>(&self, f: F) -> AsyncResult<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.registry.submit(f)
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
        self.registry.submit(f)
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
        self.registry.submit(f).get()
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
        crate::task_async::spawn(&self.registry, future)
    }

    /// The number of worker threads.
    pub fn num_threads(&self) -> usize {
        self.registry.num_threads()
    }

    /// Whether the pool has been closed (or terminated).
    pub fn is_closed(&self) -> bool {
        self.registry.is_closed()
    }

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
        if crate::worker::is_worker_of(&self.registry) {
            return;
        }
        // Held while joining, so a concurrent join also returns only after
        // the workers are gone.
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        for handle in threads.drain(..) {
            let _ = handle.join();
        }
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
        if crate::worker::is_worker_of(&self.registry) {
            return false;
        }
        let deadline = Instant::now().checked_add(timeout);
        if !self.registry.wait_exited(self.num_threads(), deadline) {
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
