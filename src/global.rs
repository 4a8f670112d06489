//! The process-wide pool, built lazily on first use.

use once_cell::sync::OnceCell;

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
/// threads).
///
/// ```
/// let pool = futurepool::global();
/// assert!(pool.num_threads() >= 1);
/// assert_eq!(pool.apply(|| 1 + 1), Ok(2));
/// ```
pub fn global() -> &'static ThreadPool {
    GLOBAL.get_or_init(|| {
        Builder::new()
            .thread_name("futurepool-global")
            .build()
            .unwrap_or_else(|e| panic!("futurepool: cannot build the global pool: {e}"))
    })
}

/// Submits `f` to the [`global`] pool.
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
