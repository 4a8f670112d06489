//! Waiting on many handles at once: [`as_completed`], [`wait`] and
//! [`ReturnWhen`], and the [`Notifier`] they (and `imap_unordered`) share.
//!
//! Nothing here polls. Each handle that is not done gets one registration,
//! `Waiter::Signal(notifier, index)`; when the handle is published it pushes
//! its index onto the notifier's queue and unparks the one waiting thread.
//! The waiting thread blocks through [`crate::core::worker::block_until`], so a
//! pool worker waiting on many handles keeps running queued work meanwhile.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::core::completion::{Completion, Signal, Waiter};
use crate::core::state::Phase;
use crate::core::sync::{lock, Mutex, Thread};
use crate::core::waitable::Waitable;
use crate::error::TaskError;
use crate::handle::AsyncResult;

/// A queue of "this one is done" tokens, filled by handles as they are
/// published, drained by one waiting thread.
pub(crate) struct Notifier {
    inner: Mutex<NotifierInner>,
}

struct NotifierInner {
    ready: VecDeque<usize>,
    waiter: Option<Thread>,
}

impl Notifier {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Notifier {
            inner: Mutex::new(NotifierInner {
                ready: VecDeque::new(),
                waiter: None,
            }),
        })
    }

    /// Queues `token` without waking anyone (the caller is the waiter).
    pub(crate) fn push(&self, token: usize) {
        lock(&self.inner).ready.push_back(token);
    }

    pub(crate) fn pop(&self) -> Option<usize> {
        lock(&self.inner).ready.pop_front()
    }

    /// Blocks until a token is queued or `deadline` passes, then pops one.
    pub(crate) fn pop_until(&self, deadline: Option<Instant>) -> Option<usize> {
        loop {
            if let Some(token) = self.pop() {
                return Some(token);
            }
            if !crate::core::wait::block(self, deadline) {
                return None;
            }
        }
    }

    /// Asks `completion` to signal `token` here when its value can be
    /// taken; queues the token at once if it already can.
    pub(crate) fn watch<T>(
        self: &Arc<Self>,
        completion: &Completion<T>,
        token: usize,
        value: bool,
    ) {
        let signal: Arc<dyn Signal> = self.clone();
        if !completion.register(Waiter::Signal(signal, token), value) {
            self.push(token);
        }
    }

    /// Withdraws a registration made by [`watch`](Notifier::watch).
    pub(crate) fn unwatch<T>(self: &Arc<Self>, completion: &Completion<T>, token: usize) {
        let signal: Arc<dyn Signal> = self.clone();
        completion.deregister_signal(&signal, token);
    }
}

impl Signal for Notifier {
    fn signal(&self, token: usize) {
        let waiter = {
            let mut inner = lock(&self.inner);
            inner.ready.push_back(token);
            inner.waiter.take()
        };
        if let Some(thread) = waiter {
            thread.unpark();
        }
    }
}

impl Waitable for Notifier {
    fn is_done(&self) -> bool {
        !lock(&self.inner).ready.is_empty()
    }
    fn cheap_to_poll(&self) -> bool {
        false
    }
    fn register(&self, thread: &Thread) -> bool {
        let mut inner = lock(&self.inner);
        if !inner.ready.is_empty() {
            return false;
        }
        inner.waiter = Some(thread.clone());
        true
    }
    fn deregister(&self, _thread: &Thread) {
        lock(&self.inner).waiter = None;
    }
}

/// An iterator over handles as they finish: `(index, outcome)`, where
/// `index` is the handle's position in the input. Made by [`as_completed`].
///
/// Handles that are already done when it is made come first, in input
/// order; the rest follow in the order they finish. Waiting costs no CPU:
/// the iterator sleeps until some handle is published. On a pool worker it
/// keeps running the pool's queued work while it waits.
///
/// Dropping it part-way withdraws its registrations; the handles it still
/// held are dropped (which, as always, does not cancel their tasks).
pub struct AsCompleted<T: Send + 'static> {
    handles: Vec<Option<AsyncResult<T>>>,
    notifier: Arc<Notifier>,
    remaining: usize,
}

/// Yields each handle's outcome as soon as it is done, as Python's
/// `concurrent.futures.as_completed` does: `(index, result)` pairs, where
/// `index` is the handle's position in `handles`.
///
/// Already-done handles come first (in input order), then the others in the
/// order they finish. A cancelled handle is done at once and comes out with
/// `Err(TaskError::Cancelled)`. No busy-polling: waiting on 10,000 handles
/// costs nothing while none finishes. Use
/// [`AsCompleted::next_timeout`] for a bounded wait.
///
/// # Examples
///
/// ```
/// use futurepool::{as_completed, ThreadPool};
/// use std::sync::mpsc;
///
/// let pool = ThreadPool::new(2).unwrap();
/// let (tx, rx) = mpsc::channel::<()>();
/// let slow = pool.submit(move || { rx.recv().unwrap(); "slow" });
/// let fast = pool.submit(|| "fast");
///
/// let mut done = as_completed(vec![slow, fast]);
/// assert_eq!(done.next(), Some((1, Ok("fast"))));
/// tx.send(()).unwrap();
/// assert_eq!(done.next(), Some((0, Ok("slow"))));
/// assert_eq!(done.next(), None);
/// ```
pub fn as_completed<T, I>(handles: I) -> AsCompleted<T>
where
    I: IntoIterator<Item = AsyncResult<T>>,
    T: Send + 'static,
{
    let handles: Vec<Option<AsyncResult<T>>> = handles.into_iter().map(Some).collect();
    let notifier = Notifier::new();
    // Two passes so that every handle already done goes first, in input
    // order, even if another finishes while we register.
    let mut waiting = Vec::new();
    for (i, h) in handles.iter().enumerate() {
        let h = h.as_ref().expect("fresh");
        if h.completion().is_available() {
            notifier.push(i);
        } else {
            waiting.push(i);
        }
    }
    for i in waiting {
        let h = handles[i].as_ref().expect("fresh");
        notifier.watch(h.completion(), i, true);
    }
    let remaining = handles.len();
    AsCompleted {
        handles,
        notifier,
        remaining,
    }
}

impl<T: Send + 'static> AsCompleted<T> {
    /// Like [`next`](Iterator::next), but waits at most `timeout` for a
    /// handle to finish (as the `timeout` of Python's `as_completed`).
    ///
    /// Returns `Ok(Some((index, outcome)))` for the next finished handle,
    /// `Ok(None)` when every handle has been yielded.
    ///
    /// # Errors
    ///
    /// [`TaskError::Timeout`] if no handle finished in time; the iterator
    /// stays usable.
    ///
    /// ```
    /// use futurepool::{as_completed, TaskError, ThreadPool};
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(1).unwrap();
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// let mut it = as_completed(vec![pool.submit(move || rx.recv().is_ok())]);
    /// assert_eq!(it.next_timeout(Duration::from_millis(10)), Err(TaskError::Timeout));
    /// tx.send(()).unwrap();
    /// assert_eq!(it.next_timeout(Duration::from_secs(5)), Ok(Some((0, Ok(true)))));
    /// assert_eq!(it.next_timeout(Duration::from_secs(5)), Ok(None));
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn next_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<(usize, Result<T, TaskError>)>, TaskError> {
        self.next_until(Instant::now().checked_add(timeout))
    }

    #[allow(clippy::type_complexity)]
    fn next_until(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<(usize, Result<T, TaskError>)>, TaskError> {
        while self.remaining > 0 {
            let Some(i) = self.notifier.pop_until(deadline) else {
                return Err(TaskError::Timeout);
            };
            let Some(handle) = self.handles[i].as_ref() else {
                continue;
            };
            match handle.completion().try_take() {
                Some(result) => {
                    self.handles[i] = None;
                    self.remaining -= 1;
                    return Ok(Some((i, result)));
                }
                // Published but lent to a callback right now: the lender
                // publishes again when it is done, and that wakes us.
                None => self.notifier.watch(handle.completion(), i, true),
            }
        }
        Ok(None)
    }
}

impl<T: Send + 'static> Iterator for AsCompleted<T> {
    type Item = (usize, Result<T, TaskError>);

    fn next(&mut self) -> Option<Self::Item> {
        self.next_until(None).unwrap_or(None)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<T: Send + 'static> ExactSizeIterator for AsCompleted<T> {}

impl<T: Send + 'static> Drop for AsCompleted<T> {
    fn drop(&mut self) {
        for (i, h) in self.handles.iter().enumerate() {
            if let Some(h) = h {
                self.notifier.unwatch(h.completion(), i);
            }
        }
    }
}

impl<T: Send + 'static> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("remaining", &self.remaining)
            .finish()
    }
}

/// When [`wait`] returns, as `concurrent.futures.wait`'s `return_when`.
///
/// ```
/// use futurepool::ReturnWhen;
/// assert_eq!(ReturnWhen::default(), ReturnWhen::AllCompleted);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReturnWhen {
    /// As soon as any handle is done (finished, panicked or cancelled).
    FirstCompleted,
    /// As soon as any handle is done with an error (it panicked, or it was
    /// refused by a closed pool). A cancelled handle does not count as an
    /// error. If no handle fails, this is [`AllCompleted`](ReturnWhen::AllCompleted).
    FirstException,
    /// When every handle is done.
    #[default]
    AllCompleted,
}

/// Waits until `when` is met or `timeout` passes, then returns the indices
/// of the handles that are done and of those that are not, each in input
/// order: `(done, not_done)`, as Python's `concurrent.futures.wait`.
///
/// `timeout: None` waits as long as it takes. Running out of time is not an
/// error: the split is returned as it stands. A cancelled handle counts as
/// done at once. The handles are only looked at, never consumed; their
/// values stay in them for [`get`](AsyncResult::get). Waiting costs no CPU
/// (no polling), and on a pool worker it keeps running queued work.
///
/// # Examples
///
/// ```
/// use futurepool::{wait, ReturnWhen, ThreadPool};
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// let pool = ThreadPool::new(2).unwrap();
/// let (tx, rx) = mpsc::channel::<()>();
/// let handles = vec![
///     pool.submit(move || rx.recv().is_ok()),
///     pool.submit(|| true),
/// ];
/// let (done, not_done) = wait(&handles, Some(Duration::from_secs(5)), ReturnWhen::FirstCompleted);
/// assert_eq!((done, not_done), (vec![1], vec![0]));
///
/// tx.send(()).unwrap();
/// let (done, not_done) = wait(&handles, Some(Duration::from_secs(5)), ReturnWhen::AllCompleted);
/// assert_eq!((done, not_done), (vec![0, 1], vec![]));
/// ```
pub fn wait<T: Send + 'static>(
    handles: &[AsyncResult<T>],
    timeout: Option<Duration>,
    when: ReturnWhen,
) -> (Vec<usize>, Vec<usize>) {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    // `timeout` so large that the deadline overflows means: no deadline.
    let mut tracker = Tracker::new(handles.len());
    for (i, h) in handles.iter().enumerate() {
        if h.ready() {
            tracker.mark(i, h.completion());
        }
    }
    let notifier = Notifier::new();
    let mut watched = Vec::new();
    if !tracker.met(when) && timeout != Some(Duration::ZERO) {
        for (i, h) in handles.iter().enumerate() {
            if !tracker.done[i] {
                notifier.watch(h.completion(), i, false);
                watched.push(i);
            }
        }
        loop {
            while let Some(i) = notifier.pop() {
                tracker.mark(i, handles[i].completion());
            }
            if tracker.met(when) {
                break;
            }
            if !crate::core::wait::block(&*notifier, deadline) {
                break;
            }
        }
    }
    for i in watched {
        if !tracker.done[i] {
            notifier.unwatch(handles[i].completion(), i);
        }
    }
    // Report the state as it is now, as Python does: a handle finishing
    // while we were returning counts as done.
    let (done, not_done): (Vec<usize>, Vec<usize>) =
        (0..handles.len()).partition(|&i| tracker.done[i] || handles[i].ready());
    (done, not_done)
}

/// What [`wait`] has seen so far.
struct Tracker {
    done: Vec<bool>,
    n_done: usize,
    failed: bool,
}

impl Tracker {
    fn new(n: usize) -> Self {
        Tracker {
            done: vec![false; n],
            n_done: 0,
            failed: false,
        }
    }

    fn mark<T>(&mut self, i: usize, completion: &Completion<T>) {
        if !self.done[i] {
            self.done[i] = true;
            self.n_done += 1;
            self.failed |= completion.phase() == Phase::Failed;
        }
    }

    fn met(&self, when: ReturnWhen) -> bool {
        let all = self.n_done == self.done.len();
        match when {
            ReturnWhen::FirstCompleted => self.n_done > 0 || all,
            ReturnWhen::FirstException => self.failed || all,
            ReturnWhen::AllCompleted => all,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::core::state::Claim;

    #[test]
    fn unwatching_one_notifier_keeps_another_with_the_same_token() {
        let completion: Completion<u8> = Completion::new();
        let a = Notifier::new();
        let b = Notifier::new();
        a.watch(&completion, 0, false);
        b.watch(&completion, 0, false);
        a.unwatch(&completion, 0);
        assert_eq!(completion.claim(), Claim::Won);
        completion.finish(Ok(1));
        assert_eq!(completion.phase(), Phase::Ok);
        assert_eq!(a.pop(), None, "a withdrew");
        assert_eq!(b.pop(), Some(0), "b is still told");
    }

    #[test]
    fn return_when_conditions() {
        let mut t = Tracker::new(2);
        assert!(!t.met(ReturnWhen::FirstCompleted));
        t.done[0] = true;
        t.n_done = 1;
        assert!(t.met(ReturnWhen::FirstCompleted));
        assert!(!t.met(ReturnWhen::FirstException));
        t.failed = true;
        assert!(t.met(ReturnWhen::FirstException));
        assert!(!t.met(ReturnWhen::AllCompleted));
        assert!(Tracker::new(0).met(ReturnWhen::AllCompleted));
    }
}
