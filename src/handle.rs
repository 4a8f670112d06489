//! The result handle: [`AsyncResult`] and the state machine behind it
//! ([`Completion`]), which every task, whatever its closure type, carries.
//!
//! A task's life is one byte of state plus a small mutex-protected slot:
//!
//! ```text
//!   PENDING ──start──▶ RUNNING ──finish──▶ OK | FAILED
//!      │
//!      └──cancel / reject──▶ CANCELLED | FAILED
//! ```
//!
//! Only the thread that wins a compare-and-swap out of PENDING or RUNNING
//! owns the result; it runs the done-callbacks with a reference to it and
//! then *publishes* it into the slot (the `PUBLISHED` bit). Waiters wait for
//! that bit. A callback added after publication borrows the result out of the
//! slot (the `LENT` bit) and puts it back; takers wait while it is lent.
//! User code (callbacks, the task itself) never runs under the slot's lock.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::TaskError;
use crate::sync::{lock, AtomicBool, AtomicU8, Mutex, MutexGuard, Ordering, Thread};

pub(crate) const PENDING: u8 = 0;
pub(crate) const RUNNING: u8 = 1;
pub(crate) const OK: u8 = 2;
pub(crate) const FAILED: u8 = 3;
pub(crate) const CANCELLED: u8 = 4;
const PHASE: u8 = 0b0111;
/// The result (or its absence, once taken) is in the slot; waiters may go.
const PUBLISHED: u8 = 0b1000;
/// The result is out of the slot, lent to a thread running callbacks.
const LENT: u8 = 0b1_0000;

/// A done-callback, as given to [`AsyncResult::add_done_callback`].
pub(crate) type Callback<T> = Box<dyn FnOnce(&Result<T, TaskError>) + Send + 'static>;

/// Something woken when a result is published.
pub(crate) enum Waiter {
    /// A blocked thread (get, wait, or a worker helping while it waits).
    Thread(Thread),
    /// Another waiter (`as_completed`, `wait`), told which handle is done.
    Signal(Arc<dyn Signal>, usize),
}

/// A multi-handle waiter, notified with the token it registered with.
pub(crate) trait Signal: Send + Sync {
    fn signal(&self, token: usize);
}

impl Waiter {
    fn wake(self) {
        match self {
            Waiter::Thread(t) => t.unpark(),
            Waiter::Signal(s, token) => s.signal(token),
        }
    }
}

struct Slot<T> {
    result: Option<Result<T, TaskError>>,
    /// Whoever waits or listens. Most tasks are collected without ever
    /// blocking (the value is there, or the waiting worker runs the task
    /// itself), so this lives in its own allocation, made on first use: the
    /// task stays small (memory per queued task, copying it into its `Arc`)
    /// and publishing an unobserved task touches no vectors.
    watchers: Option<Box<Watchers<T>>>,
}

struct Watchers<T> {
    waiters: Vec<Waiter>,
    callbacks: Vec<Callback<T>>,
    /// The waker of the one task polling the handle as a future.
    future_waker: Option<Waker>,
}

impl<T> Slot<T> {
    fn watchers(&mut self) -> &mut Watchers<T> {
        self.watchers.get_or_insert_with(|| {
            Box::new(Watchers {
                waiters: Vec::new(),
                callbacks: Vec::new(),
                future_waker: None,
            })
        })
    }

    fn has_callbacks(&self) -> bool {
        self.watchers
            .as_ref()
            .is_some_and(|w| !w.callbacks.is_empty())
    }
}

/// The shared state of one task's outcome.
pub(crate) struct Completion<T> {
    state: AtomicU8,
    /// The task's handle was dropped before the outcome was published: a
    /// panic then has nowhere to go and is reported (see `panics.rs`).
    /// Written and read under the slot's lock; in the padding after
    /// `state`, so it costs no space.
    detached: AtomicBool,
    /// The pool a queued task belongs to (its registry's
    /// [`id`](crate::registry::Registry::id); 0 for anything else). Kept
    /// here, not in the task, because it fits in the padding after
    /// `state`: 16 bytes less per queued task (W6 in benches/suite.rs).
    pool: u32,
    slot: Mutex<Slot<T>>,
}

impl<T> Completion<T> {
    pub(crate) fn new() -> Self {
        Self::with_state(PENDING, None)
    }

    /// A pending completion of a task queued on pool `pool`.
    pub(crate) fn new_in(pool: u32) -> Self {
        Completion {
            pool,
            ..Self::new()
        }
    }

    /// The pool given to [`new_in`](Completion::new_in), else 0.
    pub(crate) fn pool(&self) -> u32 {
        self.pool
    }

    /// A completion that is already over (e.g. a submission refused because
    /// the pool is closed).
    pub(crate) fn new_done(phase: u8, result: Result<T, TaskError>) -> Self {
        Self::with_state(phase | PUBLISHED, Some(result))
    }

    fn with_state(state: u8, result: Option<Result<T, TaskError>>) -> Self {
        Completion {
            state: AtomicU8::new(state),
            detached: AtomicBool::new(false),
            pool: 0,
            slot: Mutex::new(Slot {
                result,
                watchers: None,
            }),
        }
    }

    pub(crate) fn phase(&self) -> u8 {
        self.state.load(Ordering::Acquire) & PHASE
    }

    /// Moves from one unpublished phase to another; the winner of a race
    /// owns what the new phase implies (running the closure, or publishing).
    /// SeqCst so a claim (PENDING -> RUNNING) and the terminated check that
    /// follows it are ordered against terminate() (see job.rs); on x86 and
    /// ARMv8 this costs nothing over AcqRel.
    pub(crate) fn transition(&self, from: u8, to: u8) -> bool {
        self.state
            .compare_exchange(from, to, Ordering::SeqCst, Ordering::Acquire)
            .is_ok()
    }

    /// Done: finished, panicked, cancelled or refused (callbacks may still
    /// be running).
    pub(crate) fn is_ready(&self) -> bool {
        self.phase() >= OK
    }

    /// Published: callbacks registered before completion have run, and
    /// every waiter may return.
    pub(crate) fn is_published(&self) -> bool {
        self.state.load(Ordering::Acquire) & PUBLISHED != 0
    }

    /// The value can be taken right now.
    pub(crate) fn is_available(&self) -> bool {
        self.state.load(Ordering::Acquire) & (PUBLISHED | LENT) == PUBLISHED
    }

    /// Called by the owner of a RUNNING task when its closure returned.
    /// A task that stopped because it was cancelled (a cooperative task
    /// that saw its token, an async task dropped at a pending point) ends
    /// CANCELLED, not FAILED.
    pub(crate) fn finish(&self, result: Result<T, TaskError>) {
        let moved = self.transition(RUNNING, outcome_phase(&result));
        debug_assert!(moved, "finish() on a task that was not running");
        self.publish(result);
    }

    /// [`finish`](Completion::finish) for a task run by the thread that is
    /// about to take its value (a `get` running its own task): the phase
    /// change, the publication and the take in one locked step, the value
    /// handed straight back instead of through the slot (which is left
    /// empty, as after any take). Nobody else can want the value: `get`
    /// owns the only handle. With callbacks queued (they must see the
    /// value) it finishes normally and returns `None`; the caller then
    /// takes the value from the slot as usual.
    pub(crate) fn finish_and_take(
        &self,
        result: Result<T, TaskError>,
    ) -> Option<Result<T, TaskError>> {
        let slot = lock(&self.slot);
        if slot.has_callbacks() {
            drop(slot);
            self.finish(result);
            return None;
        }
        // Only the owner of a RUNNING task moves it on (every other
        // transition starts from PENDING) and the flag bits only change
        // under this lock: one store is the phase change and publication.
        debug_assert_eq!(self.state.load(Ordering::Relaxed), RUNNING);
        self.state
            .store(outcome_phase(&result) | PUBLISHED, Ordering::Release);
        self.wake_watchers(slot);
        Some(result)
    }

    /// Runs the pending callbacks with `result`, then puts it into the slot
    /// and wakes every waiter. The caller owns `result`: it won the
    /// transition into a terminal phase, or it borrowed the result (LENT).
    pub(crate) fn publish(&self, result: Result<T, TaskError>) {
        loop {
            let mut slot = lock(&self.slot);
            if !slot.has_callbacks() {
                let lost = match result {
                    // Nobody can ever take it: report it instead.
                    Err(TaskError::Panicked(payload)) if self.detached.load(Ordering::Relaxed) => {
                        Some(payload)
                    }
                    result => {
                        slot.result = Some(result);
                        None
                    }
                };
                // One store, not two read-modify-writes: the phase is final
                // (no transition can succeed any more) and the flag bits
                // only change under the slot's lock, which we hold, so
                // nothing can change the state between the load and store.
                let state = self.state.load(Ordering::Relaxed);
                self.state
                    .store((state & !LENT) | PUBLISHED, Ordering::Release);
                self.wake_watchers(slot);
                if let Some(payload) = lost {
                    crate::panics::report(self.pool, payload);
                }
                return;
            }
            let callbacks = std::mem::take(&mut slot.watchers().callbacks);
            drop(slot);
            for callback in callbacks {
                run_callback(self.pool, callback, &result);
            }
        }
    }

    /// Takes the watchers out of the (just published) slot, unlocks it, and
    /// wakes them. Only with no callbacks queued, so none is lost.
    fn wake_watchers(&self, mut slot: MutexGuard<'_, Slot<T>>) {
        let watchers = slot.watchers.take();
        drop(slot);
        if let Some(watchers) = watchers {
            for waiter in watchers.waiters {
                waiter.wake();
            }
            if let Some(waker) = watchers.future_waker {
                // A foreign executor's waker is user code: its panic must
                // not unwind into the worker (or canceller) that completed
                // the task.
                crate::panics::run_reporting(self.pool, || waker.wake());
            }
        }
    }

    /// The handle was dropped: if the outcome is not published yet, a
    /// panic it turns out to be will be reported, not kept.
    pub(crate) fn detach(&self) {
        if self.is_published() {
            return;
        }
        let _slot = lock(&self.slot);
        self.detached.store(true, Ordering::Relaxed);
    }

    /// Runs `callback` once with the outcome: now, on this thread, if it is
    /// published; otherwise later, on the thread that completes the task.
    pub(crate) fn add_callback(&self, callback: Callback<T>) {
        let mut slot = lock(&self.slot);
        let state = self.state.load(Ordering::Acquire);
        if state & PUBLISHED == 0 || state & LENT != 0 {
            // Whoever holds the result runs queued callbacks before it
            // publishes (or returns) the result.
            slot.watchers().callbacks.push(callback);
            return;
        }
        match slot.result.take() {
            Some(result) => {
                self.state.fetch_or(LENT, Ordering::AcqRel);
                drop(slot);
                run_callback(self.pool, callback, &result);
                self.publish(result);
            }
            None => {
                drop(slot);
                run_callback(self.pool, callback, &Err(TaskError::ResultTaken));
            }
        }
    }

    /// Takes the value if it is available now.
    pub(crate) fn try_take(&self) -> Option<Result<T, TaskError>> {
        let mut slot = lock(&self.slot);
        if !self.is_available() {
            return None;
        }
        Some(slot.result.take().unwrap_or(Err(TaskError::ResultTaken)))
    }

    /// Registers `waiter` to be woken at the next publication. Returns false
    /// (and drops the waiter) if the condition is already met, so the caller
    /// need not sleep. A thread registers at most once.
    pub(crate) fn register(&self, waiter: Waiter, need_value: bool) -> bool {
        let mut slot = lock(&self.slot);
        if self.met(need_value) {
            return false;
        }
        let waiters = &mut slot.watchers().waiters;
        if let Waiter::Thread(t) = &waiter {
            let id = t.id();
            let known = waiters
                .iter()
                .any(|w| matches!(w, Waiter::Thread(o) if o.id() == id));
            if known {
                return true;
            }
        }
        waiters.push(waiter);
        true
    }

    /// Forgets a waiting thread that gave up (timed out).
    pub(crate) fn deregister_thread(&self, thread: &Thread) {
        let id = thread.id();
        if let Some(watchers) = lock(&self.slot).watchers.as_mut() {
            watchers
                .waiters
                .retain(|w| !matches!(w, Waiter::Thread(o) if o.id() == id));
        }
    }

    /// Forgets `signal`'s registration with `token`. Matched by both: two
    /// multi-waiters (say two `wait` calls on the same handles) use the same
    /// tokens, and one giving up must not unregister the other.
    pub(crate) fn deregister_signal(&self, signal: &Arc<dyn Signal>, token: usize) {
        let target = Arc::as_ptr(signal) as *const ();
        if let Some(watchers) = lock(&self.slot).watchers.as_mut() {
            watchers.waiters.retain(|w| {
                !matches!(w, Waiter::Signal(s, t)
                    if *t == token && Arc::as_ptr(s) as *const () == target)
            });
        }
    }

    pub(crate) fn met(&self, need_value: bool) -> bool {
        if need_value {
            self.is_available()
        } else {
            self.is_published()
        }
    }

    fn poll_take(&self, waker: &Waker) -> Poll<Result<T, TaskError>> {
        let mut slot = lock(&self.slot);
        if self.is_available() {
            return Poll::Ready(slot.result.take().unwrap_or(Err(TaskError::ResultTaken)));
        }
        let watchers = slot.watchers();
        match &watchers.future_waker {
            Some(old) if old.will_wake(waker) => {}
            _ => watchers.future_waker = Some(waker.clone()),
        }
        Poll::Pending
    }
}

/// The phase a task ends in with this outcome. A task that stopped because
/// it was cancelled (a cooperative task that saw its token, an async task
/// dropped at a pending point) ends CANCELLED, not FAILED.
fn outcome_phase<T>(result: &Result<T, TaskError>) -> u8 {
    match result {
        Ok(_) => OK,
        Err(TaskError::Cancelled) => CANCELLED,
        Err(_) => FAILED,
    }
}

fn run_callback<T>(pool: u32, callback: Callback<T>, result: &Result<T, TaskError>) {
    // A panicking callback must not take the completing thread (a worker,
    // or a user thread calling cancel) down with it, nor skip the others;
    // nor may its payload's Drop.
    crate::panics::run_reporting(pool, || callback(result));
}

/// What a handle needs from the task behind it, whatever its closure type.
pub(crate) trait TaskRef<T>: Send + Sync {
    fn completion(&self) -> &Completion<T>;
    /// Resolves the task to `error` if it has not started; false if it
    /// had started or was already over.
    fn abort(&self, error: TaskError) -> bool;
    /// [`AsyncResult::cancel`]: by default, only a task that has not
    /// started can be cancelled. Tasks that can be stopped while running
    /// (cooperative tokens, async tasks) override this.
    fn cancel(&self) -> bool {
        self.abort(TaskError::Cancelled)
    }
    /// Runs the task right here if this thread is a worker of its pool and
    /// the task has not started. Returns true if it ran it.
    fn run_here(&self) -> bool;
    /// [`run_here`](TaskRef::run_here) for [`AsyncResult::get`], which
    /// owns the only handle: the outcome of a run here comes straight back
    /// (see [`Completion::finish_and_take`]). `None` if the task was not
    /// run here, or its outcome went to the slot after all.
    fn run_here_and_take(&self) -> Option<Result<T, TaskError>> {
        None
    }
}

/// A condition a thread can block on: the building block of every wait.
pub(crate) trait Waitable {
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
}

struct WaitFor<'a, T> {
    completion: &'a Completion<T>,
    need_value: bool,
}

impl<T> Waitable for WaitFor<'_, T> {
    fn is_done(&self) -> bool {
        self.completion.met(self.need_value)
    }
    fn register(&self, thread: &Thread) -> bool {
        self.completion
            .register(Waiter::Thread(thread.clone()), self.need_value)
    }
    fn deregister(&self, thread: &Thread) {
        self.completion.deregister_thread(thread);
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
    task: Arc<dyn TaskRef<T>>,
}

impl<T: Send + 'static> AsyncResult<T> {
    pub(crate) fn from_task(task: Arc<dyn TaskRef<T>>) -> Self {
        AsyncResult { task }
    }

    /// A handle that is already over with `error` (refused submissions).
    pub(crate) fn failed(error: TaskError) -> Self {
        let phase = if matches!(error, TaskError::Cancelled) {
            CANCELLED
        } else {
            FAILED
        };
        AsyncResult {
            task: Arc::new(Finished(Completion::new_done(phase, Err(error)))),
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
        if let Some(result) = self.task.run_here_and_take() {
            return result;
        }
        loop {
            self.block(true, None);
            if let Some(result) = self.completion().try_take() {
                return result;
            }
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
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if !self.block(true, deadline) {
                return Err(TaskError::Timeout);
            }
            if let Some(result) = self.completion().try_take() {
                return result;
            }
        }
    }

    /// Blocks until the task is done (finished, panicked or cancelled).
    ///
    /// ```
    /// # use futurepool::ThreadPool;
    /// let pool = ThreadPool::new(1).unwrap();
    /// let handle = pool.submit(|| ());
    /// handle.wait();
    /// assert!(handle.ready());
    /// ```
    pub fn wait(&self) {
        self.block(false, None);
    }

    /// Blocks until the task is done or `timeout` passes; true if done.
    ///
    /// ```
    /// # use futurepool::ThreadPool;
    /// # use std::time::Duration;
    /// let pool = ThreadPool::new(1).unwrap();
    /// assert!(pool.submit(|| ()).wait_timeout(Duration::from_secs(5)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.block(false, Instant::now().checked_add(timeout))
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
            PENDING | RUNNING => None,
            phase => Some(phase == OK),
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
        self.completion().phase() == RUNNING
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

    /// Withdraws a task whose pool closed while it was being queued.
    pub(crate) fn refuse(&self) {
        self.task.abort(TaskError::PoolClosed);
    }

    /// Whether the task was cancelled.
    pub fn cancelled(&self) -> bool {
        self.completion().phase() == CANCELLED
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

    /// Blocks until published (or, with `need_value`, until the value can be
    /// taken), or the deadline. True if the condition holds.
    fn block(&self, need_value: bool, deadline: Option<Instant>) -> bool {
        if self.completion().met(need_value) {
            return true;
        }
        // Waiting may run the task (and others) nested on this stack;
        // deep chains continue on a fresh stack (see worker.rs).
        crate::worker::with_stack_room(|| self.block_here(need_value, deadline))
    }

    fn block_here(&self, need_value: bool, deadline: Option<Instant>) -> bool {
        let completion = self.completion();
        if self.task.run_here() && completion.met(need_value) {
            return true;
        }
        crate::worker::block_until(
            &WaitFor {
                completion,
                need_value,
            },
            deadline,
        )
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
            PENDING => "pending",
            RUNNING => "running",
            OK => "finished",
            FAILED => "failed",
            _ => "cancelled",
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
    fn run_here(&self) -> bool {
        false
    }
}
