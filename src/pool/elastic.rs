//! Resizing a pool while it runs (`set_max_threads`, `set_min_threads`,
//! `set_num_threads`: the checks and what each size means for each kind
//! of pool) and [`blocking`], which tells the pool that the calling
//! worker is about to block. The mechanism is `core/threads.rs`.

use std::rc::Rc;

use crate::core::registry::Registry;
use crate::core::threads::{Sizes, MAX_THREADS};
use crate::core::worker::WorkerCtx;
use crate::error::ResizeError;

fn at_most(name: &str, n: usize) -> Result<(), ResizeError> {
    if n > MAX_THREADS {
        return Err(ResizeError::new(format!(
            "{name} must be at most {MAX_THREADS} (got {n})"
        )));
    }
    Ok(())
}

pub(crate) fn set_max_threads(registry: &Registry, n: usize) -> Result<(), ResizeError> {
    if n == 0 {
        return Err(ResizeError::new("max_threads must be at least 1"));
    }
    at_most("max_threads", n)?;
    let now = registry.threads.sizes();
    let new = if now.fixed {
        if n < now.target {
            return Err(ResizeError::new(format!(
                "max_threads ({n}) must not be less than num_threads ({})",
                now.target
            )));
        }
        Sizes { cap: n, ..now }
    } else {
        if n < now.min {
            return Err(ResizeError::new(format!(
                "max_threads ({n}) must not be less than min_threads ({})",
                now.min
            )));
        }
        Sizes {
            target: n,
            cap: n,
            ..now
        }
    };
    registry.threads.resize(registry, new);
    Ok(())
}

pub(crate) fn set_min_threads(registry: &Registry, n: usize) -> Result<(), ResizeError> {
    at_most("min_threads", n)?;
    let now = registry.threads.sizes();
    if n > now.target {
        return Err(ResizeError::new(format!(
            "min_threads ({n}) must not exceed the pool's size ({})",
            now.target
        )));
    }
    let fixed = now.fixed && n == now.target;
    registry.threads.resize(
        registry,
        Sizes {
            min: n,
            fixed,
            ..now
        },
    );
    Ok(())
}

pub(crate) fn set_num_threads(registry: &Registry, n: usize) -> Result<(), ResizeError> {
    if n == 0 {
        return Err(ResizeError::new("num_threads must be at least 1"));
    }
    at_most("num_threads", n)?;
    let now = registry.threads.sizes();
    let new = Sizes {
        min: n,
        target: n,
        cap: now.cap.max(n),
        fixed: true,
    };
    registry.threads.resize(registry, new);
    Ok(())
}

/// Runs `f` on the calling thread, first making sure that, if this is a
/// pool worker, the pool goes on serving its queue while `f` blocks (on a
/// socket, a file, a lock, a sleep, a child process). Returns what `f`
/// returns. As tokio's `block_in_place` and Java's `ManagedBlocker`.
///
/// On a worker, the pool counts this worker as blocked for the duration
/// of `f`: work queued now (including this worker's own deque, which the
/// others can take from) goes to a parked worker or to a newly started
/// one, and later submissions may start threads as if this worker were
/// not there, up to the pool's cap ([`ThreadPool::max_threads`]; for a
/// fixed pool of `n`, `n + 512` unless
/// [`Builder::max_threads`](crate::Builder::max_threads) says otherwise).
/// Threads added this way retire after the keep-alive once idle. So a
/// fixed pool of 2 whose 8 tasks all wait inside `blocking` at once still
/// runs all 8.
///
/// Outside a pool it just calls `f`. Nested calls count once. A panic in
/// `f` propagates to the caller after the pool's count is restored.
///
/// [`ThreadPool::max_threads`]: crate::ThreadPool::max_threads
///
/// # Panics
///
/// Only if `f` panics (the panic is resumed unchanged).
///
/// # Examples
///
/// ```
/// use futurepool::ThreadPool;
/// use std::sync::{Arc, Barrier};
/// use std::time::Duration;
///
/// // Two workers, eight tasks that can only finish together: without
/// // `blocking` this would deadlock.
/// let pool = ThreadPool::new(2).unwrap();
/// let all_here = Arc::new(Barrier::new(8));
/// let handles: Vec<_> = (0..8)
///     .map(|i| {
///         let all_here = all_here.clone();
///         pool.submit(move || futurepool::blocking(|| { all_here.wait(); i }))
///     })
///     .collect();
/// for (i, h) in handles.into_iter().enumerate() {
///     assert_eq!(h.get_timeout(Duration::from_secs(30)), Ok(i));
/// }
/// assert_eq!(futurepool::blocking(|| "outside a pool: just runs"), "outside a pool: just runs");
/// ```
pub fn blocking<F, R>(f: F) -> R
where
    F: FnOnce() -> R,
{
    let Some(ctx) = WorkerCtx::current() else {
        return f();
    };
    if ctx.blocking.get() > 0 {
        return f();
    }
    ctx.blocking.set(1);
    ctx.registry.threads.begin_blocking(&ctx.registry);
    /// Restores the count however `f` ends.
    struct Unblock(Rc<WorkerCtx>);
    impl Drop for Unblock {
        fn drop(&mut self) {
            self.0.blocking.set(0);
            self.0.registry.threads.end_blocking();
        }
    }
    let _unblock = Unblock(ctx);
    f()
}
