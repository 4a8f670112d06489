//! Async tasks: futures run on the pool's workers
//! ([`ThreadPool::spawn_async`](crate::ThreadPool::spawn_async)), their
//! wakers, and the pool's list of async tasks that are still alive.
//!
//! An async task is one block ([`AsyncTask`], in a [`Recycled`] block)
//! seen four ways: as a [`JobRef`] in the deques (a worker *runs* it by
//! polling the future once), as the [`Waker`](std::task::Waker) handed to
//! the future (a wake queues it again), as an entry in the pool's
//! [`LiveSet`], and as its [`AsyncResult`], which reads the outcome from
//! the same block. Queue entries and wakers are *polling references*
//! ([`Task`]); the handle and the live list hold only the block's memory
//! (see `future/refs.rs`). So when nothing can ever poll the future again
//! (no queue entry, no waker left anywhere), the future is dropped and
//! the handle resolves to `Cancelled` instead of hanging.
//!
//! One block rather than a task and a separate handle: collecting a
//! finished task then touches one block, which the collecting thread
//! frees, instead of two (measured on 100,000 finished tasks collected
//! from outside the pool: 13–14 ms with two blocks, 6.3–6.5 ms with one,
//! tokio 6.1–6.9 ms in the same runs).
//!
//! Scheduling is a small state machine of its own ([`PollState`], apart
//! from the outcome's state word in `core/state.rs`), so that every wake is
//! seen and no future is polled twice at once:
//!
//! ```text
//!   state      a wake                      the worker holding the task
//!   IDLE       -> SCHEDULED, queue it      -
//!   SCHEDULED  no-op (already queued)      pops it: -> POLLING, polls
//!   POLLING    -> NOTIFIED                 Pending: -> IDLE
//!   NOTIFIED   no-op                       Pending: -> SCHEDULED, queues it
//!   DONE       no-op                       -
//!   (POLLING or NOTIFIED: Ready, a panic or a cancellation -> DONE)
//! ```
//!
//! Only the wake that moves IDLE → SCHEDULED queues the task, so a task
//! woken many times while queued is polled once; a wake during the poll
//! (POLLING → NOTIFIED) makes the worker queue it again when the poll ends.
//!
//! Lifecycle: a pool keeps its workers while async tasks are alive, even
//! after `close()` (a suspended task may still be woken and must find a
//! worker); `terminate()` and `shutdown(_, true)` cancel them all. See
//! `docs/async.md`.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering as StdOrdering};
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::core::completion::Completion;
use crate::core::counters::Outcome;
use crate::core::job::{JobRef, OwnedJob, RawRef, Runner, TaskRef};
use crate::core::live::{LiveTask, Polling, SlotId};
use crate::core::recycle::{RcBox, Recycled};
use crate::core::registry::{PoolLink, Registry};
use crate::core::state::{Abort, Claim, Phase};
use crate::core::sync::{AtomicU8, Ordering};
use crate::core::worker::WorkerCtx;
use crate::error::TaskError;
use crate::future::refs::{Dropped, PollRefs};
use crate::future::waker::{OwnedWaker, WakerRef};
use crate::handle::AsyncResult;

/// Not queued, not running: waiting for a wake.
pub(crate) const IDLE: u8 = 0;
/// In a queue (or being pushed to one); further wakes are no-ops.
pub(crate) const SCHEDULED: u8 = 1;
/// A worker is polling the future.
pub(crate) const POLLING: u8 = 2;
/// Woken while being polled: queue again when the poll ends.
pub(crate) const NOTIFIED: u8 = 3;
/// Over (value, panic or cancellation): wakes are ignored.
pub(crate) const DONE: u8 = 4;

/// The wake/poll state machine of one async task (see the module docs).
/// Whoever moves it into SCHEDULED must queue the task; whoever takes a
/// queue entry moves it out of SCHEDULED. So a task has at most one queue
/// entry, and at most one thread polls it.
pub(crate) struct PollState {
    state: AtomicU8,
}

impl PollState {
    /// A new task, about to be queued for its first poll.
    pub(crate) fn new_scheduled() -> Self {
        PollState {
            state: AtomicU8::new(SCHEDULED),
        }
    }

    #[allow(dead_code)] // read by the loom models
    pub(crate) fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// A wake. Returns true if the caller must queue the task (it moved it
    /// from IDLE to SCHEDULED); false if it is queued, running (then it
    /// will be queued again when the poll ends) or done.
    ///
    /// A wake of a task that is already SCHEDULED or NOTIFIED still writes
    /// the state (the same value back): a read-modify-write with Release,
    /// which the next poll's Acquire of the state reads from, so that poll
    /// sees whatever the waker wrote before waking (the value a channel
    /// delivered). A plain load would let the waker and the poller miss
    /// each other's writes (store buffering), and the wake would be lost;
    /// the loom model `loom_async_wakes_are_never_lost_and_never_poll_twice`
    /// finds that interleaving.
    pub(crate) fn wake(&self) -> bool {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            let next = match state {
                IDLE => SCHEDULED,
                POLLING => NOTIFIED,
                SCHEDULED | NOTIFIED => state,
                _ => return false,
            };
            match self
                .state
                .compare_exchange(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return state == IDLE,
                Err(actual) => state = actual,
            }
        }
    }

    /// A worker took the task's queue entry and is about to poll it.
    /// False if the task is over (nothing to poll).
    pub(crate) fn start(&self) -> bool {
        self.state
            .compare_exchange(SCHEDULED, POLLING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The poll returned `Pending`. Returns true if the task was woken
    /// during the poll and must be queued again (it is SCHEDULED now);
    /// false if it is IDLE, waiting for a wake.
    pub(crate) fn suspend(&self) -> bool {
        match self
            .state
            .compare_exchange(POLLING, IDLE, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => false,
            Err(_) => {
                // NOTIFIED: wakers leave that state alone, only we move it.
                // A swap rather than a store: every write to the state is
                // a read-modify-write, which keeps loom's model exact
                // (a plain store may be misplaced against a concurrent
                // RMW there, tokio-rs/loom#254).
                self.state.swap(SCHEDULED, Ordering::AcqRel);
                true
            }
        }
    }

    /// The task is over; later wakes do nothing. Called by the thread that
    /// holds the task (POLLING or NOTIFIED), or by one that found it over.
    pub(crate) fn finish(&self) {
        // A swap, as in `suspend`.
        self.state.swap(DONE, Ordering::AcqRel);
    }
}

/// One future spawned on a pool: one block (a [`Recycled`] one), which
/// its handle, its entry in the pool's list of live tasks and its
/// polling references ([`Task`]: queue entries and wakers) share; see
/// `future/refs.rs`.
struct AsyncTask<T, F> {
    /// The outcome: what the task's [`AsyncResult`] reads.
    completion: Completion<T>,
    /// How many [`Task`]s there are: the references that may poll.
    refs: PollRefs,
    sched: PollState,
    /// Set by `cancel()` on a started task: the worker that next holds it
    /// drops the future instead of polling it (or right after a poll).
    cancel_requested: AtomicBool,
    /// Dropped exactly once: by the poll that returns Ready (or panics),
    /// by a cancellation, or when nothing can poll it any more. No lock: see
    /// [`FutureSlot`] for who may reach it.
    future: FutureSlot<F>,
    /// Weak: a queued task must not keep its pool's queues alive (the
    /// queues hold the task). The registry's shared weak reference
    /// ([`Registry::link`]), not one of the task's own.
    registry: Arc<PoolLink>,
    /// The task's place in the pool's list of live tasks ([`SlotId`]),
    /// set while the list's lock is held, before anyone can find the task.
    slot: std::sync::atomic::AtomicUsize,
    /// The memory reference that all [`Task`]s hold together (see
    /// `future/refs.rs`): taken out and dropped by the thread that drops
    /// the last of them, after it has ended the task.
    keep: Keep<AsyncTask<T, F>>,
}

/// The cell of [`AsyncTask::keep`].
struct Keep<V>(std::cell::UnsafeCell<Option<Recycled<V>>>);

// SAFETY: the cell is written by the spawning thread before the task is
// shared, and taken by the thread that drops the last polling reference,
// which the count's Acquire orders after every other use of the task
// through a polling reference; nobody else touches it. The reference
// moves between threads (`Recycled<V>: Send` when V is Send + Sync).
#[allow(unsafe_code)]
unsafe impl<V: Send + Sync> Sync for Keep<V> {}

/// A polling reference to an async task (see `future/refs.rs`): what its
/// queue entry and its wakers hold. One pointer to the task; a clone
/// counts one more, a drop one less, and the last one's drop ends the
/// task if it is not over (nothing can poll it again) and gives back the
/// references' memory reference.
struct Task<T, F>(NonNull<AsyncTask<T, F>>);

// SAFETY: a `Task` is a shared reference to an `AsyncTask` that keeps it
// alive (as an `Arc` is): Send and Sync when the task is Sync and Send.
#[allow(unsafe_code)]
unsafe impl<T, F> Send for Task<T, F> where AsyncTask<T, F>: Send + Sync {}
// SAFETY: as above.
#[allow(unsafe_code)]
unsafe impl<T, F> Sync for Task<T, F> where AsyncTask<T, F>: Send + Sync {}

impl<T, F> std::ops::Deref for Task<T, F> {
    type Target = AsyncTask<T, F>;
    #[inline]
    fn deref(&self) -> &AsyncTask<T, F> {
        #[allow(unsafe_code)]
        // SAFETY: while a polling reference is alive, the memory reference
        // they hold together (`keep`) is too: the task is alive.
        unsafe {
            self.0.as_ref()
        }
    }
}

impl<T, F> Clone for Task<T, F> {
    #[inline]
    fn clone(&self) -> Self {
        self.refs.add();
        Task(self.0)
    }
}

impl<T, F> Drop for Task<T, F> {
    #[inline]
    fn drop(&mut self) {
        if self.refs.drop_one() == Dropped::Last {
            #[allow(unsafe_code)]
            // SAFETY: that was the last polling reference.
            unsafe {
                AsyncTask::unreachable(self.0)
            };
        }
    }
}

impl<T, F> AsyncTask<T, F> {
    /// The last polling reference is gone: nothing can poll the task
    /// again (no queue entry, no waker). End it, if it is not over, so its
    /// handle does not wait forever; then give back the memory reference
    /// the polling references held.
    ///
    /// # Safety
    ///
    /// `task` points to a task whose last polling reference the caller
    /// just dropped.
    #[allow(unsafe_code)]
    unsafe fn unreachable(task: NonNull<Self>) {
        let keep = {
            // SAFETY: the memory the polling references held is still
            // theirs (`keep`, taken below), so the task is alive.
            let this = unsafe { task.as_ref() };
            this.end_unreachable();
            // SAFETY: only the thread that drops the last polling reference
            // touches `keep` after the spawn, once.
            unsafe { (*this.keep.0.get()).take() }
        };
        // Out of the borrow: this may be the last reference to the block.
        drop(keep);
    }

    /// See [`unreachable`](AsyncTask::unreachable).
    fn end_unreachable(&self) {
        let completion = &self.completion;
        if completion.phase().is_final() {
            return;
        }
        // Off the live list first, as in `abort_unstarted`: the future may
        // own the last handle to the pool. Ended with no queue entry left
        // to count it: counted as cancelled here.
        if let Some(registry) = self.registry.0.upgrade() {
            leave_live(&registry, self.slot());
            registry
                .cancelled_elsewhere
                .fetch_add(1, StdOrdering::Relaxed);
        }
        #[allow(unsafe_code)]
        // SAFETY: no polling reference is left and none can be made (an
        // upgrade fails at zero), so no other thread can reach the future.
        let error = match unsafe { self.drop_future() } {
            Some(payload) => TaskError::Panicked(payload),
            None => TaskError::Cancelled,
        };
        if completion.abort(TaskError::Cancelled, || {}) == Abort::TooLate {
            completion.finish(Err(error));
        }
    }

    fn slot(&self) -> SlotId {
        SlotId(self.slot.load(StdOrdering::Relaxed))
    }

    /// Drops the future where it lies (see [`FutureCell`]), if it is still
    /// there; a panic in its `Drop` is caught and returned.
    ///
    /// # Safety
    ///
    /// This thread may reach the future (see [`FutureSlot`]): it holds
    /// the task with its completion RUNNING, it won the completion's move
    /// out of PENDING, or it dropped the last polling reference.
    #[allow(unsafe_code)]
    unsafe fn drop_future(&self) -> Option<Payload> {
        // SAFETY: the caller's promise.
        unsafe { self.future.get() }.drop_future()
    }
}

impl<T, F> AsyncTask<T, F>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    fn completion(&self) -> &Completion<T> {
        &self.completion
    }

    /// A polling reference made from the task's memory (the handle's, or
    /// the live list's), unless none is left: then the task is over for
    /// good and its future gone.
    fn hold(&self) -> Option<Task<T, F>> {
        self.refs.upgrade().then(|| Task(NonNull::from(self)))
    }

    /// Resolves a task that was never polled to `error`; false if it had
    /// been started (or was over).
    fn abort_unstarted(&self, error: TaskError) -> bool {
        // The winner, before anyone is told: off the live list, then the
        // future dropped (what it captured released). In that order: the
        // future may own the last handle to its pool, whose drop waits for
        // the workers, which wait for the live list to empty.
        let release = || {
            self.retire();
            #[allow(unsafe_code)]
            // SAFETY: `abort` runs this only on the thread that won the
            // completion's move out of PENDING (see `FutureSlot`).
            unsafe {
                self.drop_future_reporting()
            };
        };
        self.completion().abort(error, release) == Abort::Won
    }

    /// Runs `f` with the task's pool, `None` if the pool is gone. On a
    /// worker of that pool (where a task is polled, ends, and is mostly
    /// woken), the worker's own reference, with no count changed;
    /// elsewhere the pool's shared weak one ([`Registry::link`]),
    /// upgraded.
    #[inline]
    fn with_registry<R>(&self, f: impl FnOnce(&Registry) -> R) -> Option<R> {
        // The same allocation as the worker's registry: the same pool (the
        // weak reference keeps the allocation from being reused).
        let pool = self.registry.0.as_ptr();
        WorkerCtx::with_current(|ctx| match ctx {
            Some(ctx) if std::ptr::eq(&*ctx.registry, pool) => Some(f(&ctx.registry)),
            _ => self.registry.0.upgrade().map(|registry| f(&registry)),
        })
    }

    /// Ends a started task that this thread holds without a value: drops
    /// the future here (a panic in its destructor is reported instead).
    /// Returns what the statistics count for it.
    ///
    /// # Safety
    ///
    /// This thread holds the task, and its completion is RUNNING (see
    /// [`FutureSlot`]).
    #[allow(unsafe_code)]
    unsafe fn stop(&self, error: TaskError) -> Outcome {
        // SAFETY: the caller's promise.
        let error = match unsafe { self.drop_future() } {
            Some(payload) => TaskError::Panicked(payload),
            None => error,
        };
        let outcome = if error.is_panic() {
            Outcome::Panicked
        } else {
            Outcome::Cancelled
        };
        self.end(Err(error));
        outcome
    }

    /// Publishes the outcome of a started task this thread holds.
    fn end(&self, result: Result<T, TaskError>) {
        self.sched.finish();
        if self.completion().phase() == Phase::Running {
            self.completion().finish(result);
            self.retire();
        }
    }

    /// [`drop_future`](AsyncTask::drop_future), the panic reported.
    ///
    /// # Safety
    ///
    /// As for [`drop_future`](AsyncTask::drop_future).
    #[allow(unsafe_code)]
    unsafe fn drop_future_reporting(&self) {
        // SAFETY: the caller's promise.
        let dropped = unsafe { self.drop_future() };
        self.report(dropped);
    }

    /// Reports the panic of a `Drop` the pool ran, if there was one.
    fn report(&self, dropped: Option<Payload>) {
        if let Some(payload) = dropped {
            crate::core::panics::report(self.completion().pool(), payload);
        }
    }

    /// Takes the task off its pool's live list (exactly once, by whoever
    /// moved its completion into a final phase); the last one out lets
    /// the workers of a closed pool exit.
    fn retire(&self) {
        let _ = self.with_registry(|registry| leave_live(registry, self.slot()));
    }
}

impl<T, F> Task<T, F>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    /// Wakes the task: queues it unless it is queued, running or done.
    fn schedule(&self) {
        if self.sched.wake() {
            self.clone().enqueue(false);
        }
    }

    /// [`schedule`](Self::schedule) with a reference to give: a waker
    /// woken by value hands its reference to the queue entry, instead of
    /// the entry taking a new one and the waker dropping its own (two
    /// read-modify-writes of the task's count per wake, on the task's
    /// first line, which the worker that polls it next reads).
    fn schedule_owned(self) {
        if self.sched.wake() {
            self.enqueue(false);
        }
    }

    /// Queues a task that this thread just moved into SCHEDULED. `back`:
    /// behind everything else (a task that woke itself), not on top of this
    /// worker's deque, so a task that keeps yielding cannot starve the work
    /// queued under it.
    fn enqueue(self, back: bool) {
        let unqueued = self.with_registry_owned(|registry, task| {
            let job = JobRef::owned(task);
            if back {
                // Counted on a bounded pool, as every entry a worker takes
                // is; never waits for room (a poll must not block).
                let _closed = registry.push_behind(job);
            } else {
                // A task already accepted is not withdrawn when the pool
                // has closed meanwhile: workers stay while it is alive.
                let _closed = registry.push(job);
            }
        });
        let Some(task) = unqueued else { return };
        if task.sched.start() {
            // The pool is gone (its workers exited, which they do only when
            // no async task is alive, so this is a stale entry at most):
            // nobody will poll the task again; end it here.
            if task.completion().phase() == Phase::Running {
                #[allow(unsafe_code)]
                // SAFETY: this thread holds the task (`start`), RUNNING.
                let _ = unsafe { task.stop(TaskError::Cancelled) };
            } else {
                task.sched.finish();
            }
        }
    }

    /// [`with_registry`](Self::with_registry) for a call that takes the
    /// task's reference along (into a queue entry): the task back if the
    /// pool is gone.
    #[inline]
    fn with_registry_owned(self, f: impl FnOnce(&Registry, Self)) -> Option<Self> {
        let pool = self.registry.0.as_ptr();
        WorkerCtx::with_current(move |ctx| match ctx {
            Some(ctx) if std::ptr::eq(&*ctx.registry, pool) => {
                f(&ctx.registry, self);
                None
            }
            _ => match self.registry.0.upgrade() {
                Some(registry) => {
                    f(&registry, self);
                    None
                }
                None => Some(self),
            },
        })
    }

    /// Polls the future once through the queue entry's reference (the
    /// caller holds the task: POLLING); what the statistics count for it: the
    /// task's outcome if this poll ended it, else nothing (`Skipped`), so
    /// a task counts once however many polls it takes.
    fn poll_once(self) -> Outcome {
        // Borrows this entry's reference: no count change per poll.
        let waker = WakerRef::new(&self);
        let mut cx = Context::from_waker(&waker);
        #[allow(unsafe_code)]
        // SAFETY: this thread holds the task (POLLING) and claimed its
        // completion (RUNNING): see `FutureSlot`.
        let slot = unsafe { self.future.get() };
        let polled = {
            let _polling = Polling::enter(self.completion().pool());
            catch_unwind(AssertUnwindSafe(|| slot.poll(&mut cx)))
        };
        match polled {
            #[allow(unsafe_code)]
            // SAFETY (both `stop`s): this thread holds the task, RUNNING,
            // as for the poll; the cell's reference is no longer used.
            Ok(None) => {
                // Unreachable: the future is dropped only when the task ends.
                unsafe { self.stop(TaskError::Cancelled) }
            }
            Ok(Some(Poll::Pending)) => {
                if self.cancel_requested.load(StdOrdering::SeqCst) {
                    #[allow(unsafe_code)]
                    // SAFETY: as above.
                    return unsafe { self.stop(TaskError::Cancelled) };
                } else if self.sched.suspend() {
                    // Woken during the poll: this entry's reference goes
                    // to the new entry (no count change).
                    self.enqueue(true);
                }
                Outcome::Skipped
            }
            Ok(Some(Poll::Ready(value))) => {
                // The value is already made: a panicking destructor now
                // cannot take it back.
                let dropped = slot.drop_future();
                self.report(dropped);
                self.end(Ok(value));
                Outcome::Completed
            }
            Err(payload) => {
                let dropped = slot.drop_future();
                self.report(dropped);
                self.end(Err(TaskError::Panicked(payload)));
                Outcome::Panicked
            }
        }
    }
}

/// Takes a task that is over off its pool's live list: the last one out
/// lets the workers of a closed pool exit, and any end may make the pool
/// idle (`wait_idle` waits for live tasks).
fn leave_live(registry: &Registry, slot: SlotId) {
    let Some(left) = registry.async_tasks.remove(slot) else {
        return;
    };
    if left == 0 && registry.is_closed() {
        registry.parking.wake_all();
    }
    // The pool can be idle only with at most one task alive (the waiter's
    // own, for a `wait_idle` inside an async task; see `core/idle.rs`):
    // only the ends that get there may have made it idle, and only they
    // pay the fence of the wake-up (the decrements are totally ordered,
    // so the end that brings the count to one or zero is the one after
    // which a waiter can see it there).
    if left <= 1 {
        crate::core::idle::wake_waiters(registry);
    }
}

/// Drops a future, catching a panic in its destructor.
/// A panic payload.
type Payload = Box<dyn std::any::Any + Send>;

/// Where an async task keeps its [`FutureCell`], without a lock: two
/// atomic read-modify-writes less per poll (async tasks in
/// docs/performance.md). One thread at a time reaches it, as the task's
/// two state words decide:
///
/// - the thread that holds the task (its [`PollState`] moved it out of
///   SCHEDULED, so no other thread holds it) while its completion is
///   RUNNING: it polls the future, or drops it (a cancellation, the end of
///   the poll that made the value);
/// - the thread that won the completion's move out of PENDING by an abort
///   (`abort_unstarted`), which drops the future: no poller can hold the
///   task with its completion RUNNING then or later, since only a claim
///   (the same compare-and-swap out of PENDING) makes it RUNNING, and the
///   abort won it;
/// - the thread that dropped the task's last polling reference
///   ([`AsyncTask::unreachable`]): no other can be made then.
///
/// Each of them gets there through an acquire of the word the previous
/// one released (the poll state, the completion's word, the count of
/// polling references), so each sees what the previous one did.
struct FutureSlot<F>(std::cell::UnsafeCell<FutureCell<F>>);

// SAFETY: the future moves to whichever thread polls or drops it (F:
// Send), one thread at a time (see the type's docs); `get` is unsafe with
// that contract, and nothing else reaches the cell through `&FutureSlot`.
#[allow(unsafe_code)]
unsafe impl<F: Send> Sync for FutureSlot<F> {}

impl<F> FutureSlot<F> {
    /// The cell.
    ///
    /// # Safety
    ///
    /// The calling thread is the one the type's docs let reach the future
    /// now, and it drops the reference before it lets the task go.
    #[allow(unsafe_code, clippy::mut_from_ref)]
    #[inline]
    unsafe fn get(&self) -> &mut FutureCell<F> {
        // SAFETY: the caller's promise: no other thread reaches the cell.
        unsafe { &mut *self.0.get() }
    }
}

/// An async task's future, kept inline in the task rather than in a box of
/// its own (one allocation less per task; see docs/performance.md) and
/// pinned there. Pinning in place is sound because the cell never moves:
/// it lives inside the task's `Arc` allocation, in a [`FutureSlot`] that holds
/// it inline, and nothing moves it out (there is no `take`); the future is
/// dropped where it lies, by [`drop_future`](FutureCell::drop_future) or
/// by the cell's own `Drop` when the task is freed, before the memory can
/// be reused (`Pin`'s drop guarantee).
struct FutureCell<F> {
    future: ManuallyDrop<F>,
    /// The future is there (not dropped yet).
    live: bool,
}

impl<F: Future> FutureCell<F> {
    fn new(future: F) -> Self {
        FutureCell {
            future: ManuallyDrop::new(future),
            live: true,
        }
    }

    /// Polls the future once; `None` if it was already dropped.
    fn poll(&mut self, cx: &mut Context<'_>) -> Option<Poll<F::Output>> {
        if !self.live {
            return None;
        }
        #[allow(unsafe_code)]
        // SAFETY: the future is pinned where it lies: the cell never moves
        // and the future is never moved out of it (see the type's docs).
        let future = unsafe { Pin::new_unchecked(&mut *self.future) };
        Some(future.poll(cx))
    }
}

impl<F> FutureCell<F> {
    /// Drops the future in place if it is still there; a panic in its
    /// `Drop` is caught and returned (the future counts as dropped then:
    /// it is never dropped twice).
    fn drop_future(&mut self) -> Option<Payload> {
        if !std::mem::replace(&mut self.live, false) {
            return None;
        }
        let future = &mut self.future;
        #[allow(unsafe_code)]
        // SAFETY: `live` was true, so the future has not been dropped, and
        // it is now false, so it never will be again, not even if this
        // drop unwinds.
        catch_unwind(AssertUnwindSafe(|| unsafe { ManuallyDrop::drop(future) })).err()
    }
}

impl<F> Drop for FutureCell<F> {
    fn drop(&mut self) {
        if let Some(payload) = self.drop_future() {
            // Dropped with the task: nobody left to tell but the default
            // hook, which has printed it.
            crate::core::panics::forget_payload(payload);
        }
    }
}

#[allow(unsafe_code)]
// SAFETY: the task pointer is the whole reference (its count is in the
// task).
unsafe impl<T, F> RawRef for Task<T, F> {
    #[inline]
    fn as_raw(&self) -> NonNull<()> {
        self.0.cast()
    }

    #[inline]
    unsafe fn from_raw(ptr: NonNull<()>) -> Self {
        Task(ptr.cast())
    }
}

impl<T, F> OwnedJob for Task<T, F>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    fn run(self, _runner: &dyn Runner) -> Outcome {
        if !self.sched.start() {
            return Outcome::Skipped;
        }
        let claimed = match self.completion().phase() {
            Phase::Pending => self.completion().claim() == Claim::Won,
            phase => phase == Phase::Running,
        };
        if !claimed {
            // Cancelled (or refused) before its first poll: this entry is
            // the task's last, so a cancellation counts here.
            self.sched.finish();
            return if self.completion().phase() == Phase::Cancelled {
                Outcome::Cancelled
            } else {
                Outcome::Skipped
            };
        }
        if self.cancel_requested.load(StdOrdering::SeqCst) {
            #[allow(unsafe_code)]
            // SAFETY: this thread holds the task (`start`) and it is
            // RUNNING (claimed here or before).
            return unsafe { self.stop(TaskError::Cancelled) };
        }
        self.poll_once()
    }

    /// Cancels the task, whose queue entry the caller took (terminate, or a
    /// worker that found it after termination): a task never polled ends
    /// with `error`, a started one is dropped here and ends `Cancelled`.
    fn abort(&self, error: TaskError) -> bool {
        if self.abort_unstarted(error) {
            return true;
        }
        if !self.sched.start() {
            return false;
        }
        if self.completion().phase() != Phase::Running {
            self.sched.finish();
            return false;
        }
        #[allow(unsafe_code)]
        // SAFETY: this thread holds the task (`start`), RUNNING.
        let _ = unsafe { self.stop(TaskError::Cancelled) };
        true
    }
}

impl<T, F> OwnedWaker for Task<T, F>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    fn wake(self) {
        self.schedule_owned();
    }

    fn wake_by_ref(&self) {
        self.schedule();
    }
}

impl<T, F> Task<T, F>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    /// As [`AsyncResult::cancel`].
    fn cancel(&self) -> bool {
        if self.abort_unstarted(TaskError::Cancelled) {
            return true;
        }
        if self.completion().phase() != Phase::Running {
            return false;
        }
        // Started: the future can only be dropped by the thread that holds
        // it, between polls. Flag it, then wake it so a worker does that
        // soon; a poll under way sees the flag when it returns.
        self.cancel_requested.store(true, StdOrdering::SeqCst);
        self.schedule();
        true
    }
}

impl<T, F> LiveTask for AsyncTask<T, F>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    fn cancel(&self) -> bool {
        TaskRef::cancel(self)
    }
}

/// What the task's [`AsyncResult`] sees of it: the outcome, and a way to
/// reach the future for `cancel()` while something may still poll it.
impl<T, F> TaskRef<T> for AsyncTask<T, F>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    fn completion(&self) -> &Completion<T> {
        &self.completion
    }

    fn abort(&self, error: TaskError) -> bool {
        self.hold().is_some_and(|task| task.abort_unstarted(error))
    }

    fn cancel(&self) -> bool {
        self.hold().is_some_and(|task| task.cancel())
    }

    // No `run_here`: a waiting worker finds the task in the queues like
    // any other job; polling it here, outside its queue entry, would break
    // the one-entry rule of the poll state machine.
}

/// Spawns `future` on the pool whose registry this is.
pub(crate) fn spawn<F>(registry: &Arc<Registry>, future: F) -> AsyncResult<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    // A place in a bounded queue first, as `submit` takes one (later
    // re-queues after a wake are counted without waiting).
    if !registry.reserve_place() {
        // Dropped unpolled; its Drop must not make the call panic.
        crate::core::panics::drop_reporting(registry.id(), future);
        return AsyncResult::failed(TaskError::PoolClosed);
    }
    // One block, with three references to it: the handle's, the live
    // list's, and the one the polling references hold together (the
    // first of which is the queue entry).
    let [handle, live, keep] = Recycled::new_refs::<3>(AsyncTask {
        completion: Completion::new_in(registry.id()),
        refs: PollRefs::new(1),
        sched: PollState::new_scheduled(),
        cancel_requested: AtomicBool::new(false),
        future: FutureSlot(std::cell::UnsafeCell::new(FutureCell::new(future))),
        registry: registry.link(),
        slot: std::sync::atomic::AtomicUsize::new(0),
        keep: Keep(std::cell::UnsafeCell::new(None)),
    });
    #[allow(unsafe_code)]
    // SAFETY: no other thread can reach the task yet.
    unsafe {
        *handle.keep.0.get() = Some(keep)
    };
    let entry = Task(NonNull::from(&*handle));
    #[allow(unsafe_code)]
    // SAFETY: the closure is the unsizing coercion to the trait object.
    let live = unsafe { live.unsize(|p| p as *mut RcBox<dyn LiveTask>) };
    registry.async_tasks.insert(live, |slot| {
        handle.slot.store(slot.0, StdOrdering::Relaxed);
    });
    if registry.push_reserved(JobRef::owned(entry)) {
        // The pool closed while we queued: take the task back unless a
        // worker already started it (then it runs; workers stay for it).
        TaskRef::abort(&*handle, TaskError::PoolClosed);
    }
    AsyncResult::from_recycled(handle)
}

#[cfg(all(test, not(loom)))]
mod tests {
    //! The future kept inline and pinned in its task (`FutureCell`): run
    //! under Miri by CI, which checks the pinning and the in-place drops.
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use crate::{TaskError, ThreadPool};

    const LONG: Duration = Duration::from_secs(20);

    /// Pending until the flag is set (polled again by any wake).
    struct Gate(Arc<AtomicUsize>);

    impl Future for Gate {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0.load(Ordering::SeqCst) != 0 {
                Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    /// Counts its drops; panics in `Drop` when asked to.
    struct Counted(Arc<AtomicUsize>, bool);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
            if self.1 {
                panic!("a future's capture panics on drop");
            }
        }
    }

    /// A future that borrows its own state across a suspension point (it
    /// is self-referential): it must stay where it was first polled.
    #[test]
    fn a_self_referential_future_runs_pinned_in_its_task() {
        let pool = ThreadPool::new(2).unwrap();
        let open = Arc::new(AtomicUsize::new(0));
        let gate = Gate(open.clone());
        let handle = pool.spawn_async(async move {
            let data = [1u64, 2, 3, 4];
            let view = &data[1..];
            gate.await;
            view.iter().sum::<u64>()
        });
        open.store(1, Ordering::SeqCst);
        assert_eq!(handle.get_timeout(LONG), Ok(9));
    }

    /// The future is dropped exactly once, where it lies, whichever way
    /// its task ends: finished, panicked, cancelled while suspended, or
    /// with a capture whose `Drop` panics after the value was made.
    #[test]
    fn the_future_is_dropped_once_however_its_task_ends() {
        let pool = ThreadPool::new(2).unwrap();
        let drops = Arc::new(AtomicUsize::new(0));

        let guard = Counted(drops.clone(), false);
        let finished = pool.spawn_async(async move {
            let _guard = guard;
            5
        });
        assert_eq!(finished.get_timeout(LONG), Ok(5));

        let guard = Counted(drops.clone(), false);
        let panicked = pool.spawn_async(async move {
            let _guard = guard;
            panic!("the future panics");
        });
        assert!(matches!(
            panicked.get_timeout(LONG),
            Err(TaskError::Panicked(_))
        ));

        let guard = Counted(drops.clone(), false);
        let never = Gate(Arc::new(AtomicUsize::new(0)));
        let suspended = pool.spawn_async(async move {
            let _guard = guard;
            never.await;
        });
        assert!(suspended.cancel());
        assert_eq!(suspended.get_timeout(LONG), Err(TaskError::Cancelled));

        // Ready at once, its field dropped only with the future itself.
        struct ReadyHolding {
            _guard: Counted,
        }
        impl Future for ReadyHolding {
            type Output = u32;
            fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
                Poll::Ready(7)
            }
        }
        let bad_drop = pool.spawn_async(ReadyHolding {
            _guard: Counted(drops.clone(), true),
        });
        // The value was made before the future's drop panicked: it stands.
        assert_eq!(bad_drop.get_timeout(LONG), Ok(7));

        pool.join();
        assert_eq!(drops.load(Ordering::SeqCst), 4);
    }

    /// The two other threads that may reach the future: the canceller of
    /// a task never polled (it wins the completion's move out of PENDING
    /// and drops the future there), and the task's own drop when nothing
    /// can wake it any more (a future that returned `Pending` and kept no
    /// waker). Each drops it once, and the handle resolves `Cancelled`.
    #[test]
    fn the_future_is_dropped_once_by_a_canceller_or_with_its_task() {
        let pool = ThreadPool::new(1).unwrap();
        let drops = Arc::new(AtomicUsize::new(0));

        // The one worker is busy until `open` is set: the task stays queued.
        let open = Arc::new(AtomicUsize::new(0));
        let gate = open.clone();
        let blocker = pool.submit(move || {
            while gate.load(Ordering::SeqCst) == 0 {
                std::thread::yield_now();
            }
        });
        let guard = Counted(drops.clone(), false);
        let unstarted = pool.spawn_async(async move {
            let _guard = guard;
        });
        assert!(unstarted.cancel());
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped by the canceller");
        open.store(1, Ordering::SeqCst);
        assert_eq!(blocker.get_timeout(LONG), Ok(()));
        assert_eq!(unstarted.get_timeout(LONG), Err(TaskError::Cancelled));

        /// Pending for good, and keeps no waker.
        struct Forgotten(#[allow(dead_code)] Counted);
        impl Future for Forgotten {
            type Output = ();
            fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
                Poll::Pending
            }
        }
        let forgotten = pool.spawn_async(Forgotten(Counted(drops.clone(), false)));
        assert_eq!(forgotten.get_timeout(LONG), Err(TaskError::Cancelled));
        assert_eq!(drops.load(Ordering::SeqCst), 2, "dropped with its task");
        pool.join();
    }

    /// Pending until `open`, which wakes the stored waker on the calling
    /// thread.
    #[derive(Clone, Default)]
    struct Signal(Arc<std::sync::Mutex<(bool, Option<std::task::Waker>)>>);

    impl Signal {
        fn open(&self) {
            let waker = {
                let mut state = self.0.lock().unwrap();
                state.0 = true;
                state.1.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    impl Future for Signal {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let mut state = self.0.lock().unwrap();
            if state.0 {
                Poll::Ready(())
            } else {
                state.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Tasks of one pool woken by the workers of another: each pool's
    /// queues and live list get only its own tasks (a worker takes the
    /// shortcut to its own pool only for that pool's tasks), so both
    /// pools count their own tasks, close and join.
    #[test]
    fn tasks_woken_by_another_pools_workers_stay_with_their_pool() {
        // Daemon pools: if a task were retired from the wrong pool, the
        // failed join below must not turn into a drop that waits forever.
        let pool = || {
            ThreadPool::builder()
                .num_threads(1)
                .daemon(true)
                .build()
                .unwrap()
        };
        let (a, b) = (pool(), pool());
        let signals: Vec<Signal> = (0..20).map(|_| Signal::default()).collect();
        let handles: Vec<_> = signals
            .iter()
            .enumerate()
            .map(|(i, signal)| {
                let signal = signal.clone();
                a.spawn_async(async move {
                    signal.await;
                    i
                })
            })
            .collect();
        // Every task polled once and suspended, so each is woken by `b`.
        let deadline = std::time::Instant::now() + LONG;
        while !signals.iter().all(|s| s.0.lock().unwrap().1.is_some()) {
            assert!(
                std::time::Instant::now() < deadline,
                "tasks never suspended"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let openers: Vec<_> = signals
            .iter()
            .map(|signal| {
                let signal = signal.clone();
                b.submit(move || signal.open())
            })
            .collect();
        for opener in openers {
            assert_eq!(opener.get_timeout(LONG), Ok(()));
        }
        for (i, handle) in handles.into_iter().enumerate() {
            assert_eq!(handle.get_timeout(LONG), Ok(i));
        }
        a.close();
        b.close();
        assert!(a.join_timeout(LONG));
        assert!(b.join_timeout(LONG));
        // Counted once the workers are done (a worker counts a task after
        // its handle can already see it over).
        assert_eq!((a.stats().completed, b.stats().completed), (20, 20));
    }

    /// A waker woken by value from outside the pool hands its reference
    /// to the queue entry (`schedule_owned`): after that wake the task is
    /// held by nothing but its entry, so when its next poll returns
    /// `Pending` keeping no waker, the task is dropped and its handle
    /// resolves `Cancelled`. A reference kept by the wake would leave the
    /// handle waiting (the bounded `get` fails); one given back twice
    /// would free the task under its worker (Miri runs this).
    #[test]
    fn a_wake_by_value_from_outside_gives_the_task_its_reference() {
        use std::sync::Mutex;
        use std::task::Waker;

        struct KeepsFirstWaker(Arc<Mutex<Option<Waker>>>, bool);
        impl Future for KeepsFirstWaker {
            type Output = ();
            fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
                if !self.1 {
                    self.1 = true;
                    *self.0.lock().unwrap() = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }

        let pool = ThreadPool::new(2).unwrap();
        let slot = Arc::new(Mutex::new(None));
        let handle = pool.spawn_async(KeepsFirstWaker(slot.clone(), false));
        let deadline = std::time::Instant::now() + LONG;
        let waker = loop {
            if let Some(waker) = slot.lock().unwrap().take() {
                break waker;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the task was never polled"
            );
            std::thread::yield_now();
        };
        waker.wake();
        let outcome = handle.get_timeout(LONG);
        // Before the check: a task kept alive would keep the workers too.
        pool.terminate();
        pool.join();
        assert_eq!(outcome, Err(TaskError::Cancelled));
    }
}
