//! The process-wide pool, built lazily on first use.

use once_cell::sync::OnceCell;

use crate::error::BuildError;
use crate::handle::AsyncResult;
use crate::pool::builder::Builder;
use crate::pool::ThreadPool;

static GLOBAL: OnceCell<ThreadPool> = OnceCell::new();

/// The global pool: `num_cpus::get()` workers named `futurepool-global-N`,
/// built on first use and never dropped. Closing it is allowed but final:
/// later submissions to it resolve to `PoolClosed`.
///
/// # Panics
///
/// If the pool cannot be built on first use (the OS refuses to start its
/// threads, e.g. the process is at its thread limit), with the
/// [`BuildError`]'s message. Nothing is kept from the failed attempt: the
/// next call tries again. [`try_global`] returns the error instead.
///
/// ```
/// let pool = futurepool::global();
/// assert!(pool.num_threads() >= 1);
/// assert_eq!(pool.apply(|| 1 + 1), Ok(2));
/// ```
pub fn global() -> &'static ThreadPool {
    try_global().unwrap_or_else(|e| panic!("futurepool: cannot build the global pool: {e}"))
}

/// The [`global`] pool, or why it cannot be built (on first use; a failed
/// attempt is not kept, so a later call tries again).
///
/// # Errors
///
/// The [`BuildError`] of building it, e.g. when the OS refuses to start
/// its threads.
///
/// ```
/// let pool = futurepool::try_global().expect("threads available");
/// assert_eq!(pool.apply(|| 2), Ok(2));
/// ```
pub fn try_global() -> Result<&'static ThreadPool, BuildError> {
    GLOBAL.get_or_try_init(|| Builder::new().thread_name("futurepool-global").build())
}

/// Submits `f` to the [`global`] pool.
///
/// # Panics
///
/// As [`global`], if the global pool cannot be built on first use.
///
/// ```
/// let handle = futurepool::submit(|| "from the global pool");
/// assert_eq!(handle.get(), Ok("from the global pool"));
/// ```
pub fn submit<F, T>(f: F) -> AsyncResult<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    global().submit(f)
}

/// Spawns `future` on the [`global`](crate::global) pool; see
/// [`ThreadPool::spawn_async`](crate::ThreadPool::spawn_async).
///
/// ```
/// let handle = futurepool::spawn_async(async { 6 * 7 });
/// assert_eq!(handle.get(), Ok(42));
/// ```
pub fn spawn_async<F>(future: F) -> AsyncResult<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    global().spawn_async(future)
}
