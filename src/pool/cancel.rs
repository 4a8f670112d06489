//! Cooperative cancellation: [`CancelToken`], the flag a running task polls
//! to learn that it should stop, and the rule for what its handle then
//! resolves to.
//!
//! A thread cannot be stopped from outside safely, so a long task that
//! should be stoppable checks its token at points of its choosing (as
//! Python's `CountdownTask` checks `self._running`). Checking costs one
//! atomic load. [`CancelToken::wait_timeout`] is the "sleep, but wake up
//! when cancelled" that Python's `IOTask` pattern builds with socket timeouts.
//!
//! The outcome rule (enforced in `job.rs`): a task submitted with
//! [`ThreadPool::submit_cancellable`](crate::ThreadPool::submit_cancellable)
//! whose token is cancelled by the time its closure returns resolves to
//! `Err(TaskError::Cancelled)` and its value is dropped, so
//! [`AsyncResult::cancelled`](crate::AsyncResult::cancelled) is true, as
//! Python's `Future.cancelled()` would be. A panic still wins: it is
//! reported as `Panicked`.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::core::sync::lock_std as lock;

/// A cheap, clonable cancellation flag shared by a task and whoever may
/// want it to stop.
///
/// Clones share one flag: cancelling any clone cancels them all. A token is
/// cancelled once and for all (there is no reset), so a task never misses a
/// request, however rarely it looks.
///
/// # Examples
///
/// ```
/// use futurepool::{CancelToken, TaskError, ThreadPool};
/// use std::time::Duration;
///
/// let pool = ThreadPool::new(2).unwrap();
/// let (started_tx, started_rx) = std::sync::mpsc::channel();
/// let countdown = pool.submit_cancellable(move |token: CancelToken| {
///     started_tx.send(()).unwrap();
///     let mut n = 0u64;
///     while !token.is_cancelled() {
///         n += 1;
///         token.wait_timeout(Duration::from_millis(1));
///     }
///     n
/// });
/// started_rx.recv().unwrap();
/// countdown.cancel(); // running: the task sees the token and stops
/// assert_eq!(countdown.get_timeout(Duration::from_secs(10)), Err(TaskError::Cancelled));
/// ```
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    /// Threads in [`CancelToken::wait_timeout`], to be unparked by `cancel`.
    sleepers: Mutex<Vec<Thread>>,
}

impl CancelToken {
    /// A token that is not cancelled.
    ///
    /// ```
    /// let token = futurepool::CancelToken::new();
    /// assert!(!token.is_cancelled());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether cancellation was requested. One atomic load: cheap enough
    /// for the inner loop of a task.
    ///
    /// ```
    /// let token = futurepool::CancelToken::new();
    /// let seen_by_task = token.clone();
    /// token.cancel();
    /// assert!(seen_by_task.is_cancelled());
    /// ```
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Requests cancellation: every clone sees it from now on, and threads
    /// in [`wait_timeout`](CancelToken::wait_timeout) wake at once.
    /// Idempotent.
    ///
    /// ```
    /// let token = futurepool::CancelToken::new();
    /// token.cancel();
    /// token.cancel();
    /// assert!(token.is_cancelled());
    /// ```
    pub fn cancel(&self) {
        if self.inner.cancelled.swap(true, Ordering::AcqRel) {
            return;
        }
        // A sleeper registers before it checks the flag, so taking the list
        // after setting the flag reaches everyone who could have missed it.
        let sleepers = std::mem::take(&mut *lock(&self.inner.sleepers));
        for thread in sleepers {
            thread.unpark();
        }
    }

    /// Sleeps for `timeout`, or less if the token is cancelled meanwhile.
    /// Returns true if the token is cancelled (the sleep was cut short, or
    /// it already was), false if the full time passed.
    ///
    /// This is the Python `IOTask` pattern (a blocking wait with a timeout
    /// in a loop that checks a flag) without the polling latency: the wait
    /// ends as soon as [`cancel`](CancelToken::cancel) is called.
    ///
    /// ```
    /// use std::time::Duration;
    /// let token = futurepool::CancelToken::new();
    /// assert!(!token.wait_timeout(Duration::from_millis(1)));
    /// token.cancel();
    /// assert!(token.wait_timeout(Duration::from_secs(3600))); // returns at once
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        if self.is_cancelled() {
            return true;
        }
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            return self.wait_until(None);
        };
        self.wait_until(Some(deadline))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let me = thread::current();
        lock(&self.inner.sleepers).push(me.clone());
        let cancelled = loop {
            if self.is_cancelled() {
                break true;
            }
            match deadline {
                None => thread::park(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break false;
                    }
                    thread::park_timeout(deadline - now);
                }
            }
        };
        // Cancelled after `cancel` took the list, we are no longer on it;
        // cancelled before we registered (or timed out), we still are.
        let id = me.id();
        lock(&self.inner.sleepers).retain(|t| t.id() != id);
        cancelled
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_wakes_a_long_wait() {
        let token = CancelToken::new();
        let waiter = token.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = thread::spawn(move || tx.send(waiter.wait_timeout(Duration::from_secs(3600))));
        token.cancel();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(true));
        t.join().unwrap().unwrap();
    }

    #[test]
    fn a_full_wait_leaves_no_registration_behind() {
        let token = CancelToken::new();
        assert!(!token.wait_timeout(Duration::from_millis(1)));
        assert!(lock(&token.inner.sleepers).is_empty());
    }
}
