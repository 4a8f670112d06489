//! [`join`]: fork-join, the building block of recursive divide and
//! conquer. The mechanism on a worker (no allocation: the second closure
//! is queued in the caller's frame) is `core/fork.rs`.

use crate::core::worker::WorkerCtx;

/// Runs `a` and `b`, possibly in parallel, and returns both results.
///
/// The closures may borrow from the caller (they need not be `'static`):
/// `join` returns only after both have finished. Called on a pool worker,
/// it uses that worker's pool: `b` is queued on the worker's own deque,
/// where an idle worker can steal it, while `a` runs at once; if nobody
/// took `b` by then, it runs right here, otherwise the worker runs other
/// queued work while it waits for `b` (as [`AsyncResult::get`] does), so
/// nested joins cannot deadlock, even on a pool of one thread, and
/// recursion of any depth cannot overflow the stack. No heap allocation
/// is made on a worker. Called on any other thread, `join` runs on the
/// [`global`](crate::global) pool (as
/// [`ThreadPool::install`](crate::ThreadPool::install) would) and blocks
/// the caller until both are done; if that pool is closed, or cannot be
/// built (the OS refuses its threads), `a` and `b` run one after the other
/// on the caller.
///
/// [`AsyncResult::get`]: crate::AsyncResult::get
///
/// # Panics
///
/// If `a` or `b` panics, the panic is re-raised once both have finished
/// (`a`'s if both panic); the other closure still runs to its end, so
/// what both borrow stays intact.
///
/// # Examples
///
/// ```
/// fn sum(v: &[u64]) -> u64 {
///     if v.len() <= 1024 {
///         return v.iter().sum();
///     }
///     let (left, right) = v.split_at(v.len() / 2);
///     let (a, b) = futurepool::join(|| sum(left), || sum(right));
///     a + b
/// }
///
/// let pool = futurepool::ThreadPool::new(2).unwrap();
/// let data: Vec<u64> = (1..=100_000).collect();
/// assert_eq!(pool.install(|| sum(&data)), 5_000_050_000);
/// ```
pub fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    use crate::core::fork::one_after_the_other;
    join_here(a, b, |a, b| match crate::try_global() {
        // Inside, on a thread outside any pool still (the global pool is
        // closed and ran the install here): one after the other.
        Ok(global) => global.install(|| join_here(a, b, one_after_the_other)),
        Err(_) => one_after_the_other(a, b),
    })
}

/// The fork on the current thread's pool; `elsewhere` on a thread outside
/// any pool.
#[inline]
fn join_here<A, B, RA, RB>(a: A, b: B, elsewhere: impl FnOnce(A, B) -> (RA, RB)) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    WorkerCtx::with_current(|ctx| match ctx {
        Some(ctx) => ctx.join(a, b),
        None => elsewhere(a, b),
    })
}
