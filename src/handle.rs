//! The result handle, [`AsyncResult`]: what `submit` and its siblings
//! return. It holds the task behind it through [`TaskRef`], whatever the
//! task's kind (closure, async, periodic, map), and waits through the one
//! waiting loop (`core/wait.rs`). The states it reports are the ones
//! `core/state.rs` defines.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::core::completion::{Completion, Waiter};
use crate::core::job::{Ran, Runner, TaskPtr, TaskRef};
use crate::core::recycle::Recycled;
use crate::core::registry::Submitted;
use crate::core::state::Phase;
use crate::core::sync::lock_std;
use crate::core::sync::Thread;
use crate::core::wait::{block, take_alone, take_in_place};
use crate::core::waitable::Waitable;
use crate::error::TaskError;

/// What a handle waits for: its task to be done (`wait`), or its value to
/// be available (`get`). A wait for the value offers a waiting worker to
/// run the task in place and keeps the value that run hands back.
struct WaitFor<'a, T> {
    task: &'a dyn TaskRef<T>,
    need_value: bool,
    /// The value a run in place handed straight back (`get`), and whether
    /// there is one (so the common case, no run in place, takes no lock).
    /// Written by the waiting thread, or by an overflow thread acting for
    /// it that it joins before it reads.
    taken: Mutex<Option<Result<T, TaskError>>>,
    has_taken: AtomicBool,
}

impl<'a, T> WaitFor<'a, T> {
    fn new(task: &'a dyn TaskRef<T>, need_value: bool) -> Self {
        WaitFor {
            task,
            need_value,
            taken: Mutex::new(None),
            has_taken: AtomicBool::new(false),
        }
    }

    /// The value: the one a run in place handed back, else the slot's.
    /// Consumes the wait, so the value a run in place left is moved out
    /// without taking its lock again.
    fn take(self) -> Result<Result<T, TaskError>, Self> {
        if self.has_taken.load(Ordering::Relaxed) {
            let taken = self.taken.into_inner().unwrap_or_else(|e| e.into_inner());
            // Set only with a value in place.
            return Ok(taken.unwrap_or(Err(TaskError::ResultTaken)));
        }
        self.task.completion().try_take().ok_or(self)
    }
}

impl<T: Send> Waitable for WaitFor<'_, T> {
    fn is_done(&self) -> bool {
        self.task.completion().met(self.need_value)
    }
    fn register(&self, thread: &Thread) -> bool {
        self.task
            .completion()
            .register(Waiter::Thread(thread.clone()), self.need_value)
    }
    fn deregister(&self, thread: &Thread) {
        self.task.completion().deregister_thread(thread);
    }
    fn run_here(&self, runner: &dyn Runner) -> Option<Ran> {
        if !self.need_value {
            return self.task.run_here(runner);
        }
        let (ran, taken) = self.task.run_here_and_take(runner)?;
        if taken.is_some() {
            *lock_std(&self.taken) = taken;
            self.has_taken.store(true, Ordering::Relaxed);
        }
        Some(ran)
    }
}

/// A handle to the outcome of a task submitted to a [`ThreadPool`](crate::ThreadPool).
///
/// Returned at once by [`submit`](crate::ThreadPool::submit) and
/// [`apply_async`](crate::ThreadPool::apply_async); the task's value is
/// collected later with [`get`](AsyncResult::get) (blocking),
/// [`get_timeout`](AsyncResult::get_timeout), or by `.await`ing the handle
/// under any executor. Every handle ends: with the value, with a panic
/// ([`TaskError::Panicked`]), or with a cancellation.
///
/// Dropping a handle does not cancel its task (as in Python and tokio): the
/// task still runs, and its value is dropped when it finishes.
///
/// # Examples
///
/// ```
/// use futurepool::ThreadPool;
/// use std::time::Duration;
///
/// let pool = ThreadPool::new(2).unwrap();
/// let handle = pool.submit(|| 6 * 7);
/// assert!(handle.wait_timeout(Duration::from_secs(5)));
/// assert!(handle.ready());
/// assert_eq!(handle.successful(), Some(true));
/// assert_eq!(handle.get(), Ok(42));
/// ```
pub struct AsyncResult<T> {
    task: TaskPtr<T>,
}

impl<T: Send + 'static> AsyncResult<T> {
    pub(crate) fn from_task(task: Arc<dyn TaskRef<T>>) -> Self {
        AsyncResult {
            task: TaskPtr::shared(task),
        }
    }

    /// The handle of a task in a recycled block (reached without the
    /// adapter an `Arc` task needs).
    pub(crate) fn from_recycled<J: TaskRef<T> + 'static>(task: Recycled<J>) -> Self {
        AsyncResult {
            task: TaskPtr::recycled(task),
        }
    }

    /// The handle of a submission (see [`Submitted`]).
    pub(crate) fn submitted(submitted: Submitted<T>) -> Self {
        match submitted {
            Ok(task) => AsyncResult { task },
            Err(error) => AsyncResult::failed(error),
        }
    }

    /// A handle that is already over with `error` (refused submissions).
    pub(crate) fn failed(error: TaskError) -> Self {
        AsyncResult {
            task: TaskPtr::recycled(Recycled::new(Finished(Completion::new_done(Err(error))))),
        }
    }

    pub(crate) fn completion(&self) -> &Completion<T> {
        self.task.completion()
    }

    /// Waits for the task and returns its value.
    ///
    /// Called on one of the pool's own workers, the worker keeps running
    /// other queued tasks while it waits (it runs the awaited task itself if
    /// that has not started), so nested `submit(..).get()` never deadlocks,
    /// even on a pool of one thread.
    ///
    /// # Errors
    ///
    /// [`TaskError::Panicked`] if the task panicked, [`TaskError::Cancelled`]
    /// if it was cancelled, [`TaskError::PoolClosed`] if it was submitted to
    /// a closed pool, [`TaskError::ResultTaken`] if an earlier
    /// [`get_timeout`](AsyncResult::get_timeout) already took the value.
    ///
    /// ```
    /// # use futurepool::{ThreadPool, TaskError};
    /// let pool = ThreadPool::new(1).unwrap();
    /// assert_eq!(pool.submit(|| "hi").get(), Ok("hi"));
    /// let boom = pool.submit(|| -> () { panic!("boom") });
    /// assert!(matches!(boom.get(), Err(TaskError::Panicked(_))));
    /// ```
    pub fn get(self) -> Result<T, TaskError> {
        // On the worker that queued the task, with nobody else able to
        // reach it, it runs right here with no synchronisation at all.
        let this = match take_alone(self.into_task()) {
            Ok(result) => return result,
            Err(task) => AsyncResult { task },
        };
        this.take_until(None)
            .expect("a wait without a deadline ends with the value")
    }

    /// The handle's reference to its task, without the handle's drop.
    fn into_task(self) -> TaskPtr<T> {
        let this = std::mem::ManuallyDrop::new(self);
        #[allow(unsafe_code)]
        // SAFETY: `this` is never dropped nor used again, so the field is
        // moved out of it once.
        unsafe {
            std::ptr::read(&this.task)
        }
    }

    /// Like [`get`](AsyncResult::get), but gives up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`TaskError::Timeout`] if the task is not done in time; the handle
    /// stays usable and a later call can still collect the value. Otherwise
    /// as [`get`](AsyncResult::get). The value is handed out once: after a
    /// call has returned it, the next returns [`TaskError::ResultTaken`].
    /// Inside one of the task's own done-callbacks that run before its value
    /// is published, the value is being handed to those callbacks: this
    /// returns [`TaskError::Timeout`] at once rather than wait for itself
    /// (the callback has the outcome by reference).
    ///
    /// ```
    /// # use futurepool::{ThreadPool, TaskError};
    /// # use std::time::Duration;
    /// let pool = ThreadPool::new(1).unwrap();
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// let handle = pool.submit(move || rx.recv().map(|_| 1).unwrap_or(0));
    /// assert_eq!(handle.get_timeout(Duration::from_millis(10)), Err(TaskError::Timeout));
    /// tx.send(()).unwrap();
    /// assert_eq!(handle.get_timeout(Duration::from_secs(5)), Ok(1));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, TaskError> {
        self.take_until(Instant::now().checked_add(timeout))
            .unwrap_or(Err(TaskError::Timeout))
    }

    /// Blocks until the task is done (finished, panicked or cancelled) and
    /// the done-callbacks added before that have run. Called inside one of
    /// those callbacks (which run before it returns), it returns at once.
    ///
    /// ```
    /// # use futurepool::ThreadPool;
    /// let pool = ThreadPool::new(1).unwrap();
    /// let handle = pool.submit(|| ());
    /// handle.wait();
    /// assert!(handle.ready());
    /// ```
    pub fn wait(&self) {
        block(&WaitFor::new(&*self.task, false), None);
    }

    /// Blocks until the task is done or `timeout` passes; true if done. As
    /// [`wait`](AsyncResult::wait) about callbacks.
    ///
    /// ```
    /// # use futurepool::ThreadPool;
    /// # use std::time::Duration;
    /// let pool = ThreadPool::new(1).unwrap();
    /// assert!(pool.submit(|| ()).wait_timeout(Duration::from_secs(5)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        block(
            &WaitFor::new(&*self.task, false),
            Instant::now().checked_add(timeout),
        )
    }

    /// Whether the task is done: finished, panicked or cancelled.
    ///
    /// ```
    /// # use futurepool::ThreadPool;
    /// let pool = ThreadPool::new(1).unwrap();
    /// let handle = pool.submit(|| ());
    /// handle.wait();
    /// assert!(handle.ready());
    /// ```
    pub fn ready(&self) -> bool {
        self.completion().is_ready()
    }

    /// `None` while the task is not done; `Some(true)` if it returned a
    /// value, `Some(false)` if it panicked, was cancelled or was refused.
    ///
    /// ```
    /// # use futurepool::ThreadPool;
    /// let pool = ThreadPool::new(1).unwrap();
    /// let handle = pool.submit(|| -> () { panic!("no") });
    /// handle.wait();
    /// assert_eq!(handle.successful(), Some(false));
    /// ```
    pub fn successful(&self) -> Option<bool> {
        match self.completion().phase() {
            Phase::Pending | Phase::Running => None,
            phase => Some(phase == Phase::Ok),
        }
    }

    /// Whether the task is running right now.
    ///
    /// ```
    /// # use futurepool::ThreadPool;
    /// let pool = ThreadPool::new(1).unwrap();
    /// let handle = pool.submit(|| ());
    /// handle.wait();
    /// assert!(!handle.running());
    /// ```
    pub fn running(&self) -> bool {
        self.completion().phase() == Phase::Running
    }

    /// Cancels the task if it has not started: it then never runs, its
    /// closure is dropped, and the handle resolves at once to
    /// [`TaskError::Cancelled`] (waiters and callbacks see it now). Returns
    /// true if the task is cancelled (also when it already was), false if it
    /// is running or done: a running closure cannot be stopped from outside.
    /// An async task ([`ThreadPool::spawn_async`](crate::ThreadPool::spawn_async))
    /// can: its future is dropped at its next `Pending` and this returns true.
    ///
    /// ```
    /// # use futurepool::{ThreadPool, TaskError};
    /// let pool = ThreadPool::new(1).unwrap();
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// let blocker = pool.submit(move || { let _ = rx.recv(); });
    /// let queued = pool.submit(|| 1);
    /// assert!(queued.cancel());
    /// assert!(queued.cancelled());
    /// assert_eq!(queued.get(), Err(TaskError::Cancelled));
    /// tx.send(()).unwrap();
    /// blocker.get().unwrap();
    /// ```
    pub fn cancel(&self) -> bool {
        self.task.cancel() || self.cancelled()
    }

    /// Whether the task was cancelled.
    pub fn cancelled(&self) -> bool {
        self.completion().phase() == Phase::Cancelled
    }

    /// Runs `callback` exactly once with the task's outcome, when it is
    /// done: on the thread that completes it, or at once on this thread if
    /// it already is. A panic inside the callback is caught and ignored.
    ///
    /// The callback sees the outcome by reference; the value stays in the
    /// handle for [`get`](AsyncResult::get). A callback added after the value
    /// was taken sees `Err(TaskError::ResultTaken)`.
    ///
    /// ```
    /// # use futurepool::ThreadPool;
    /// let pool = ThreadPool::new(1).unwrap();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let handle = pool.submit(|| 5);
    /// handle.add_done_callback(move |r| tx.send(*r.as_ref().unwrap()).unwrap());
    /// assert_eq!(rx.recv().unwrap(), 5);
    /// assert_eq!(handle.get(), Ok(5));
    /// ```
    pub fn add_done_callback<F>(&self, callback: F)
    where
        F: FnOnce(&Result<T, TaskError>) + Send + 'static,
    {
        self.completion().add_callback(Box::new(callback));
    }

    /// Waits for the value until `deadline`, then takes it; `None` if the
    /// deadline passed first. On a worker of the task's pool, the wait
    /// runs the task in place if it has not started and hands its value
    /// straight back.
    fn take_until(&self, deadline: Option<Instant>) -> Option<Result<T, TaskError>> {
        // The two common cases first, without building a wait: the value
        // is there (a task collected after it finished), or this is a
        // worker that can run the task right here.
        let completion = self.completion();
        if let Some(result) = completion.try_take() {
            return Some(result);
        }
        if completion.phase() == Phase::Pending {
            if let Some(result) = take_in_place(&*self.task) {
                return Some(result);
            }
        }
        let mut wait = WaitFor::new(&*self.task, true);
        loop {
            if !block(&wait, deadline) {
                return None;
            }
            // Available, unless another thread took it or lent it to a
            // late callback meanwhile (then wait again), or this thread is
            // inside one of the task's own callbacks, to which the value is
            // being handed: no wait here can end with it.
            wait = match wait.take() {
                Ok(result) => return Some(result),
                Err(wait) => wait,
            };
            if self.completion().in_own_callback() {
                return None;
            }
        }
    }
}

impl<T> Drop for AsyncResult<T> {
    fn drop(&mut self) {
        self.task.completion().detach();
    }
}

impl<T: Send + 'static> Future for AsyncResult<T> {
    type Output = Result<T, TaskError>;

    /// Polling never blocks and never runs the task on the polling thread;
    /// the waker is woken when the outcome is published. Polling again after
    /// `Ready` gives `Err(TaskError::ResultTaken)`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.completion().poll_take(cx.waker())
    }
}

impl<T> fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.task.completion().phase() {
            Phase::Pending => "pending",
            Phase::Running => "running",
            Phase::Ok => "finished",
            Phase::Failed => "failed",
            Phase::Cancelled => "cancelled",
        };
        f.debug_struct("AsyncResult")
            .field("state", &state)
            .finish()
    }
}

/// The task behind a handle that was over before it was ever queued.
struct Finished<T>(Completion<T>);

impl<T: Send> TaskRef<T> for Finished<T> {
    fn completion(&self) -> &Completion<T> {
        &self.0
    }
    fn abort(&self, _: TaskError) -> bool {
        false
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::core::recycle::Recycled;
    use crate::core::state::Phase;
    use crate::{TaskError, ThreadPool};
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::time::Duration;

    const LONG: Duration = Duration::from_secs(10);

    /// Runs `body` on the only worker of a one-thread pool, so every task
    /// it submits sits on that worker's deque until the body gets it.
    fn on_worker<R: Send + 'static>(body: impl FnOnce(&ThreadPool) -> R + Send + 'static) -> R {
        let pool = Arc::new(ThreadPool::new(1).unwrap());
        let inner = pool.clone();
        let outcome = pool.submit(move || body(&inner)).get_timeout(LONG);
        pool.close();
        assert!(pool.join_timeout(LONG));
        outcome.unwrap()
    }

    /// A task that something besides its handle and its queue entry still
    /// reaches is not run as if held alone: it is claimed and published,
    /// and the other reference finds it over and its block alive.
    #[test]
    fn a_task_with_another_reference_is_published_for_it() {
        let (phase, count) = on_worker(|pool| {
            let handle = pool.submit(|| 7);
            let other = handle.task.another();
            assert_eq!(handle.get(), Ok(7));
            (other.completion().phase(), Recycled::count(&other))
        });
        assert_eq!(phase, Phase::Ok);
        assert_eq!(count, 1);
    }

    /// A callback registered before `get` runs: the task was watched, so
    /// `get` does not run it alone.
    #[test]
    fn a_watched_task_still_runs_its_callbacks_when_got_in_place() {
        let (tx, rx) = mpsc::channel();
        let got = on_worker(move |pool| {
            let handle = pool.submit(|| 5);
            handle.add_done_callback(move |r| tx.send(r.as_ref().ok().copied()).unwrap());
            handle.get()
        });
        assert_eq!(got, Ok(5));
        assert_eq!(rx.recv_timeout(LONG), Ok(Some(5)));
    }

    /// `get` of the task on top of its worker's deque counts it as a task
    /// run by the pool, panicked or not, and leaves nothing queued.
    #[test]
    fn tasks_got_in_place_are_counted_and_leave_no_entry() {
        let pool = Arc::new(ThreadPool::new(1).unwrap());
        let inner = pool.clone();
        let outer = pool.submit(move || {
            let oks: Vec<_> = (0..50).map(|i| inner.submit(move || i).get()).collect();
            let boom = inner.submit(|| -> u32 { panic!("boom") }).get();
            (oks, boom.is_err(), inner.stats().queued)
        });
        let (oks, panicked, queued) = outer.get_timeout(LONG).unwrap();
        assert_eq!(oks, (0..50).map(Ok).collect::<Vec<_>>());
        assert!(panicked);
        assert_eq!(queued, 0);
        pool.close();
        assert!(pool.join_timeout(LONG));
        let stats = pool.stats();
        assert_eq!((stats.completed, stats.panicked, stats.running), (51, 1, 0));
    }

    /// A token task run alone still ends CANCELLED when its token is set
    /// before its closure returns, and a task cancelled before its `get`
    /// is not run. Each `get` comes while the task's entry is on top of
    /// the worker's deque.
    #[test]
    fn token_and_cancel_hold_for_tasks_got_in_place() {
        let (cancelled_run, cancelled_queued) = on_worker(|pool| {
            let running = pool.submit_cancellable(|token| {
                token.cancel();
                1
            });
            let cancelled_run = running.get();
            let never = pool.submit(|| -> u32 { unreachable!("cancelled before it ran") });
            assert!(never.cancel());
            (cancelled_run, never.get())
        });
        assert_eq!(cancelled_run, Err(TaskError::Cancelled));
        assert_eq!(cancelled_queued, Err(TaskError::Cancelled));
    }
}
