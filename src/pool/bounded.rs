//! A bounded queue with backpressure ([`Builder::max_queued`]): the count
//! of queued tasks, the wait for room, and [`ThreadPool::try_submit`](crate::ThreadPool::try_submit).
//!
//! Only a pool built with `max_queued` has a [`Bound`]; without it the
//! submit path pays one `Option` check and nothing else.
//!
//! The count covers every queue entry, whoever pushed it, from the push
//! until a worker takes the entry (to run it, or to discard a task that
//! was cancelled while queued) or terminate drains it. Submitters outside
//! the pool reserve a place first (blocking on a condvar while the queue
//! is full); pushes that must not block (a timer firing, a task queued by
//! another part of the crate) are counted without waiting, so the count
//! can briefly exceed the cap, and the next submitters wait longer.
//!
//! A worker of the pool that submits to its full pool does not block (it
//! could be the only one able to make room): it runs queued tasks itself
//! until there is room, as `get()` does while it waits.
//!
//! [`Builder::max_queued`]: crate::Builder::max_queued

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use crate::core::sync::lock_std as lock;
use crate::core::sync::wait_std;

pub(crate) struct Bound {
    max: usize,
    count: AtomicUsize,
    /// Submitters blocked for room; read without the lock by releasers.
    waiting: AtomicUsize,
    lock: Mutex<()>,
    room: Condvar,
}

impl Bound {
    pub(crate) fn new(max: usize) -> Self {
        Bound {
            max,
            count: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            lock: Mutex::new(()),
            room: Condvar::new(),
        }
    }

    /// Takes a place if there is one.
    pub(crate) fn try_reserve(&self) -> bool {
        let mut current = self.count.load(Ordering::Relaxed);
        while current < self.max {
            match self.count.compare_exchange_weak(
                current,
                current + 1,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
        false
    }

    /// Counts a push that must not wait.
    pub(crate) fn add_unchecked(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    /// An entry left the queues: make its place available.
    pub(crate) fn release(&self, places: usize) {
        if places == 0 {
            return;
        }
        let before = self.count.fetch_sub(places, Ordering::SeqCst);
        debug_assert!(before >= places, "bounded queue count underflow");
        // Pairs with `waiting += 1` then `try_reserve` in
        // `reserve_blocking`: either the waiter sees the new count, or we
        // see the waiter and notify it under the lock it waits with.
        if self.waiting.load(Ordering::SeqCst) > 0 {
            let _guard = lock(&self.lock);
            if places == 1 {
                self.room.notify_one();
            } else {
                self.room.notify_all();
            }
        }
    }

    /// Wakes every blocked submitter so it can see the pool closed.
    pub(crate) fn wake_all(&self) {
        let _guard = lock(&self.lock);
        self.room.notify_all();
    }

    /// Blocks until a place is taken (true) or `closed()` holds (false).
    pub(crate) fn reserve_blocking(&self, closed: impl Fn() -> bool) -> bool {
        if self.try_reserve() {
            return true;
        }
        let mut guard = lock(&self.lock);
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let reserved = loop {
            if self.try_reserve() {
                break true;
            }
            if closed() {
                break false;
            }
            guard = wait_std(&self.room, guard);
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        drop(guard);
        reserved
    }
}

/// Why [`ThreadPool::try_submit`](crate::ThreadPool::try_submit) did not queue a task. Either way the
/// closure comes back untouched, so nothing is lost.
///
/// ```
/// use futurepool::{ThreadPool, TrySubmitError};
///
/// let pool = ThreadPool::new(1).unwrap();
/// pool.close();
/// match pool.try_submit(|| 1) {
///     Err(TrySubmitError::Closed(f)) => assert_eq!(f(), 1),
///     other => panic!("expected Closed, got {other:?}"),
/// }
/// ```
#[non_exhaustive]
pub enum TrySubmitError<F> {
    /// The pool's queue is at its [`max_queued`](crate::Builder::max_queued)
    /// limit.
    Full(F),
    /// The pool is closed (or terminated).
    Closed(F),
}

impl<F> TrySubmitError<F> {
    /// The closure that was not queued.
    pub fn into_inner(self) -> F {
        match self {
            TrySubmitError::Full(f) | TrySubmitError::Closed(f) => f,
        }
    }

    /// Whether the queue was full (as opposed to the pool closed).
    pub fn is_full(&self) -> bool {
        matches!(self, TrySubmitError::Full(_))
    }
}

impl<F> fmt::Debug for TrySubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySubmitError::Full(_) => f.write_str("Full(..)"),
            TrySubmitError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<F> fmt::Display for TrySubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySubmitError::Full(_) => f.write_str("the pool's queue is full"),
            TrySubmitError::Closed(_) => f.write_str("the pool is closed"),
        }
    }
}

impl<F> std::error::Error for TrySubmitError<F> {}
