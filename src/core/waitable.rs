//! [`Waitable`]: a condition a thread can block on, the one thing every
//! wait of the crate is written against. The loop that waits for it is
//! `wait.rs`; the conditions are wherever their state lives (a handle, a
//! scope, a latch, a notifier, the pool's own "done"). Kept apart from
//! the loop so that conditions in the task layer (a fork-join latch) do
//! not depend on the scheduler.

use std::time::Duration;

use crate::core::runner::{Ran, Runner};
use crate::core::sync::Thread;

/// A condition a thread can block on: the building block of every wait.
/// `Sync`, because a worker low on stack hands its wait to another thread.
pub(crate) trait Waitable: Sync {
    fn is_done(&self) -> bool;
    /// Whether `is_done` is cheap enough (lock-free) to poll in a short
    /// spin before parking: a condition behind a lock is not, as polling
    /// it would contend with the threads that make it true.
    fn cheap_to_poll(&self) -> bool {
        true
    }
    /// Asks to be unparked when the condition may have become true; false
    /// if it is already true.
    fn register(&self, thread: &Thread) -> bool;
    fn deregister(&self, thread: &Thread);
    /// Offered once per wait to a waiting worker: run the awaited task in
    /// place if it is `runner`'s pool's and has not started.
    fn run_here(&self, _runner: &dyn Runner) -> Option<Ran> {
        None
    }
    /// True only for a worker's own idle wait ([`PoolDone`]): while it is
    /// parked the worker counts as idle (`wait_idle`, `stats`), and it
    /// spins a little for work before it parks.
    fn is_idle_wait(&self) -> bool {
        false
    }
    /// For an idle wait: how long one park may last before the worker
    /// should consider retiring (`None`: no limit).
    fn park_limit(&self) -> Option<Duration> {
        None
    }
    /// For an idle wait: a park reached its [`park_limit`](Waitable::park_limit).
    fn park_timed_out(&self) {}
}
