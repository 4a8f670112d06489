//! The shared state of one task's outcome ([`Completion`]), which every
//! task, whatever its closure type, carries: the state word (`state.rs`,
//! which owns the phases and their transitions), a cell for the result
//! ([`ValueCell`], reached by whoever wins it on the state word, no lock)
//! and a small mutex-protected slot for the waiters and the callbacks.
//!
//! Only the thread that wins a transition into a final phase owns the
//! result; it runs the done-callbacks with a reference to it and then
//! *publishes* it into the cell; waiters are woken then, so a thread whose
//! wait returned sees every callback registered before completion done. The
//! one exception is the thread running those callbacks: a callback that
//! waits on its own handle finds it done at once instead of waiting for a
//! publication that waits for it. A callback added after publication
//! borrows the result out of the cell (LENT) and puts it back; takers wait
//! while it is lent. A task nobody ever watched is finished and published
//! with one compare-and-swap, and a `get` takes a published value with
//! one: its outcome then takes no lock at all. User code (callbacks, the
//! task itself) never runs under the slot's lock.

use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::task::{Poll, Waker};

use crate::core::state::{Abort, Claim, Finish, Hold, Phase, Snapshot, State};
use crate::core::sync::{current_thread, lock, AtomicBool, Mutex, MutexGuard, Ordering, Thread};
use crate::error::TaskError;

/// A done-callback, as given to [`AsyncResult::add_done_callback`](crate::AsyncResult::add_done_callback).
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

/// Where a task's result waits for its taker, outside the slot's lock:
/// who may touch it is decided by the state word (`state.rs`), not by a
/// lock. Before PUBLISHED, only the task's owner (the thread that moved it
/// to its final phase) writes it, before it sets PUBLISHED (release).
/// After, a thread touches it only once it has won the cell with a
/// compare-and-swap on the word: TAKEN, to take the value out for good (a
/// `get`, lock-free), or LENT, to borrow it for a late callback and put it
/// back before clearing LENT (under the slot's lock). Both need the value
/// published and not lent, and only one can win.
struct ValueCell<T>(Cell<Option<Result<T, TaskError>>>);

#[cfg(not(loom))]
type Cell<V> = std::cell::UnsafeCell<V>;
#[cfg(loom)]
type Cell<V> = loom::cell::UnsafeCell<V>;

// SAFETY: the value is moved between threads (T: Send) and reached by one
// thread at a time, as the state word grants it (see the type's docs);
// `&ValueCell` gives no access by itself: `put` and `take` are unsafe with
// that contract.
#[allow(unsafe_code)]
unsafe impl<T: Send> Sync for ValueCell<T> {}

impl<T> ValueCell<T> {
    fn new(value: Option<Result<T, TaskError>>) -> Self {
        ValueCell(Cell::new(value))
    }

    /// Puts the value in (the cell is empty).
    ///
    /// # Safety
    ///
    /// This thread owns the cell: it is the task's owner before the value
    /// is published, or it won the cell with LENT (see the type's docs).
    #[allow(unsafe_code)]
    unsafe fn put(&self, value: Result<T, TaskError>) {
        #[cfg(not(loom))]
        // SAFETY: the caller's promise: nobody else touches the cell now.
        unsafe {
            *self.0.get() = Some(value);
        }
        #[cfg(loom)]
        // SAFETY: as above.
        self.0.with_mut(|cell| unsafe { *cell = Some(value) });
    }

    /// Takes the value out (`None` if it went elsewhere).
    ///
    /// # Safety
    ///
    /// This thread won the cell with TAKEN or LENT (see the type's docs).
    #[allow(unsafe_code)]
    unsafe fn take(&self) -> Option<Result<T, TaskError>> {
        #[cfg(not(loom))]
        // SAFETY: the caller's promise: nobody else touches the cell now.
        return unsafe { (*self.0.get()).take() };
        #[cfg(loom)]
        // SAFETY: as above.
        return self.0.with_mut(|cell| unsafe { (*cell).take() });
    }
}

struct Slot<T> {
    /// Whoever waits or listens; whoever adds one sets WATCHED in the
    /// state word first (`state.rs`). Most tasks are collected without ever
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
    /// The thread running the callbacks before publication, while it does.
    callback_thread: Option<Thread>,
}

impl<T> Slot<T> {
    fn watchers(&mut self) -> &mut Watchers<T> {
        self.watchers.get_or_insert_with(|| {
            Box::new(Watchers {
                waiters: Vec::new(),
                callbacks: Vec::new(),
                future_waker: None,
                callback_thread: None,
            })
        })
    }

    /// Whether the current thread is running this task's callbacks ahead
    /// of publication.
    fn on_callback_thread(&self) -> bool {
        self.watchers
            .as_ref()
            .and_then(|w| w.callback_thread.as_ref())
            .is_some_and(|t| t.id() == current_thread().id())
    }

    fn has_callbacks(&self) -> bool {
        self.watchers
            .as_ref()
            .is_some_and(|w| !w.callbacks.is_empty())
    }
}

/// The shared state of one task's outcome.
pub(crate) struct Completion<T> {
    state: State,
    /// The task's handle was dropped before the outcome was published: a
    /// panic then has nowhere to go and is reported (see `panics.rs`).
    /// Written and read under the slot's lock; in the padding after the
    /// state byte, so it costs no space.
    detached: AtomicBool,
    /// The pool a queued task belongs to (its registry's
    /// [`id`](crate::core::registry::Registry::id); 0 for anything else).
    /// Kept here, not in the task, because it fits in the padding after
    /// the state byte: 16 bytes less per queued task (W6 in the benchmark
    /// suite).
    pool: u32,
    /// Dropped by [`Completion`]'s `Drop`, unless the state says it holds
    /// nothing (as the value cell).
    slot: ManuallyDrop<Mutex<Slot<T>>>,
    /// The result, once published (see [`ValueCell`]).
    value: ManuallyDrop<ValueCell<T>>,
}

impl<T> Drop for Completion<T> {
    fn drop(&mut self) {
        // Untouched (PENDING, never watched): no watcher was ever added
        // (every one is added after setting WATCHED) and no value put (only
        // a move out of PENDING puts one), so there is nothing to drop:
        // the common end of a task run by the `get` that held it alone,
        // spared a call per task (W3 in the benchmark suite, callgrind).
        if self.state.untouched() {
            return;
        }
        #[allow(unsafe_code)]
        // SAFETY: each field is dropped once, here, and never used again
        // (this is the completion's drop).
        unsafe {
            ManuallyDrop::drop(&mut self.slot);
            ManuallyDrop::drop(&mut self.value);
        }
    }
}

impl<T> Completion<T> {
    /// A pending completion of a task that belongs to no pool's queues.
    pub(crate) fn new() -> Self {
        Self::new_in(0)
    }

    /// A pending completion of a task queued on pool `pool`.
    pub(crate) fn new_in(pool: u32) -> Self {
        Completion {
            state: State::pending(),
            detached: AtomicBool::new(false),
            pool,
            slot: ManuallyDrop::new(Mutex::new(Slot { watchers: None })),
            value: ManuallyDrop::new(ValueCell::new(None)),
        }
    }

    /// A completion that is already over (e.g. a submission refused because
    /// the pool is closed).
    pub(crate) fn new_done(result: Result<T, TaskError>) -> Self {
        Completion {
            state: State::published(Phase::of(&result)),
            detached: AtomicBool::new(false),
            pool: 0,
            slot: ManuallyDrop::new(Mutex::new(Slot { watchers: None })),
            value: ManuallyDrop::new(ValueCell::new(Some(result))),
        }
    }

    /// The pool given to [`new_in`](Completion::new_in), else 0.
    pub(crate) fn pool(&self) -> u32 {
        self.pool
    }

    #[inline]
    pub(crate) fn phase(&self) -> Phase {
        self.state.phase()
    }

    /// Done: finished, panicked, cancelled or refused (callbacks may still
    /// be running).
    #[inline]
    pub(crate) fn is_ready(&self) -> bool {
        self.state.is_ready()
    }

    /// Published: callbacks registered before completion have run.
    #[inline]
    pub(crate) fn is_published(&self) -> bool {
        self.state.is_published()
    }

    /// The value can be taken right now.
    #[inline]
    pub(crate) fn is_available(&self) -> bool {
        self.state.is_available()
    }

    /// See [`State::claim`]: the winner runs the task and must
    /// [`finish`](Completion::finish) it.
    pub(crate) fn claim(&self) -> Claim {
        self.state.claim()
    }

    /// See [`State::start_shared`].
    pub(crate) fn start_shared(&self) {
        self.state.start_shared();
    }

    /// See [`State::pause`]: a periodic task's run returned, and the task
    /// waits for its next one.
    pub(crate) fn pause(&self) {
        self.state.pause();
    }

    /// Ends a task that has not started with `error` (CANCELLED for
    /// `Cancelled`, else FAILED). The winner calls `release` (to drop what
    /// the task captured) before anyone is told; a panic there is
    /// contained, so a captured value whose `Drop` panics cannot keep the
    /// handle from resolving nor unwind into the canceller.
    pub(crate) fn abort(&self, error: TaskError, release: impl FnOnce()) -> Abort {
        let answer = self.state.abort(Phase::of_abort(&error));
        if answer == Abort::Won {
            crate::core::panics::run_reporting(self.pool, release);
            self.publish(Err(error));
        }
        answer
    }

    /// Called by the owner of a RUNNING task when it is over. A task that
    /// stopped because it was cancelled ends CANCELLED, not FAILED.
    pub(crate) fn finish(&self, result: Result<T, TaskError>) {
        let phase = Phase::of(&result);
        // Nobody ever watched the task (no waiter, callback or waker, its
        // handle not dropped): the value goes into the cell and one
        // compare-and-swap publishes it, no lock (see `state.rs`). A
        // watched task goes straight to the lock (a plain load decides, not
        // a swap that would fail).
        let result = if self.state.unwatched() {
            #[allow(unsafe_code)]
            // SAFETY: this thread owns the running task, and the value is
            // not published: the cell is this thread's (see `ValueCell`).
            unsafe {
                self.value.put(result)
            };
            if self.state.finish_unwatched(phase, false) == Finish::Published {
                return;
            }
            // A watcher came between the load and the swap.
            #[allow(unsafe_code)]
            // SAFETY: still this thread's: the swap failed, nothing is
            // published.
            let Some(result) = (unsafe { self.value.take() }) else {
                unreachable!("the value was put into the cell just now");
            };
            result
        } else {
            result
        };
        let slot = lock(&self.slot);
        if !slot.has_callbacks() {
            // The common case: the phase change and the publication in one
            // store under the lock (a running task's word changes only by
            // its owner, or under this lock), one atomic read-modify-write
            // less than the two steps.
            self.store_and_wake(slot, result, |state| state.finish_published(phase, false));
            return;
        }
        // Callbacks see the task ready before it is published.
        drop(slot);
        self.state.finish(phase);
        self.publish(result);
    }

    /// [`finish`](Completion::finish) for a task run by the thread that is
    /// about to take its value (a `get` running its own task): the phase
    /// change, the publication and the take in one step, the value handed
    /// straight back instead of through the slot (which is left empty, as
    /// after any take). That step is one compare-and-swap if nobody ever
    /// watched the task, else it is taken under the slot's lock and wakes
    /// the watchers. Nobody else can want the value: the
    /// handle is not `Clone`, and its holder is the one taking. With
    /// callbacks queued (they must see the value) it finishes normally and
    /// returns `None`; the caller then takes the value from the slot.
    pub(crate) fn finish_and_take(
        &self,
        result: Result<T, TaskError>,
    ) -> Option<Result<T, TaskError>> {
        // Nobody ever watched the task (no waiter, callback or waker):
        // one compare-and-swap, no lock (see `state.rs`).
        // (No load first, as `finish` makes: a task its own getter runs is
        // rarely watched, and the swap is the check.)
        if self.state.finish_unwatched(Phase::of(&result), true) == Finish::Published {
            return Some(result);
        }
        let slot = lock(&self.slot);
        if slot.has_callbacks() {
            drop(slot);
            self.finish(result);
            return None;
        }
        self.state.finish_published(Phase::of(&result), true);
        self.wake_watchers(slot);
        Some(result)
    }

    /// Runs the pending callbacks with `result`, then puts it into the slot
    /// and wakes every waiter. The caller owns `result`: it moved the task
    /// into a final phase, or it borrowed the result (LENT).
    fn publish(&self, result: Result<T, TaskError>) {
        loop {
            let mut slot = lock(&self.slot);
            if !slot.has_callbacks() {
                self.store_and_wake(slot, result, State::set_published);
                return;
            }
            let watchers = slot.watchers();
            let callbacks = std::mem::take(&mut watchers.callbacks);
            // A callback that waits on its own handle must not wait for
            // this very publication: see `met`.
            watchers.callback_thread = Some(current_thread());
            drop(slot);
            for callback in callbacks {
                run_callback(self.pool, callback, &result);
            }
        }
    }

    /// With no callback queued: puts `result` into the slot (or reports
    /// it, a panic nobody can take any more), marks the word published
    /// (`mark`), and wakes the watchers.
    ///
    /// The caller owns the value cell: it is the task's owner and the value
    /// is not published yet, or it borrowed the value (LENT).
    fn store_and_wake(
        &self,
        slot: MutexGuard<'_, Slot<T>>,
        result: Result<T, TaskError>,
        mark: impl FnOnce(&State),
    ) {
        let lost = match result {
            // Nobody can ever take it: report it instead.
            Err(TaskError::Panicked(payload)) if self.detached.load(Ordering::Relaxed) => {
                Some(payload)
            }
            result => {
                #[allow(unsafe_code)]
                // SAFETY: this thread owns the cell (see above); `mark`
                // publishes what it wrote (a release store).
                unsafe {
                    self.value.put(result)
                };
                None
            }
        };
        mark(&self.state);
        self.wake_watchers(slot);
        if let Some(payload) = lost {
            crate::core::panics::report(self.pool, payload);
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
                crate::core::panics::run_reporting(self.pool, || waker.wake());
            }
        }
    }

    /// Pending and never watched (see [`State::untouched`]).
    #[inline]
    pub(crate) fn untouched(&self) -> bool {
        self.state.untouched()
    }

    /// The handle was dropped: if the outcome is not published yet, a
    /// panic it turns out to be will be reported, not kept.
    pub(crate) fn detach(&self) {
        if self.state.is_published() {
            return;
        }
        let _slot = lock(&self.slot);
        // Watched, so the owner finishes under the lock and sees the flag.
        let _ = self.state.watch();
        self.detached.store(true, Ordering::Relaxed);
    }

    /// Runs `callback` once with the outcome: now, on this thread, if it is
    /// published; otherwise later, on the thread that completes the task.
    pub(crate) fn add_callback(&self, callback: Callback<T>) {
        let mut slot = lock(&self.slot);
        if !self.state.watch().is_available() {
            // Not published, or lent: whoever holds the result runs queued
            // callbacks before it publishes (or returns) the result.
            slot.watchers().callbacks.push(callback);
            return;
        }
        // Published and not lent (only a holder of this lock lends): the
        // value is here, or it was taken.
        let won = self.state.lend_value() == Hold::Won;
        let lent = if won {
            #[allow(unsafe_code)]
            // SAFETY: this thread won the cell (LENT).
            unsafe {
                self.value.take()
            }
        } else {
            None
        };
        match lent {
            Some(result) => {
                slot.watchers().callback_thread = Some(current_thread());
                drop(slot);
                run_callback(self.pool, callback, &result);
                self.publish(result);
            }
            None => {
                if won {
                    // The cell was empty (the value went to the thread that
                    // ran the task, or was reported): give it back as taken.
                    self.state.set_taken_unlent();
                }
                drop(slot);
                run_callback(self.pool, callback, &Err(TaskError::ResultTaken));
            }
        }
    }

    /// Takes the value if it is available now.
    /// No lock: one compare-and-swap on the state word wins the value.
    pub(crate) fn try_take(&self) -> Option<Result<T, TaskError>> {
        match self.state.take_value() {
            #[allow(unsafe_code)]
            // SAFETY: this thread won the cell (TAKEN).
            Hold::Won => Some(unsafe { self.value.take() }.unwrap_or(Err(TaskError::ResultTaken))),
            Hold::Taken => Some(Err(TaskError::ResultTaken)),
            Hold::NotAvailable => None,
        }
    }

    /// Registers `waiter` to be woken when the condition may hold (see
    /// [`met`](Completion::met)). Returns false (and drops the waiter) if
    /// it already holds, so the caller need not sleep. A thread registers
    /// at most once.
    pub(crate) fn register(&self, waiter: Waiter, need_value: bool) -> bool {
        let mut slot = lock(&self.slot);
        if self.met_locked(self.state.watch(), &slot, need_value) {
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

    /// The condition a waiter waits for: with `need_value`, the value can
    /// be taken; without, the task is done and its callbacks have run
    /// (published). On a thread running the task's own callbacks, either
    /// holds as soon as the task is done: such a wait cannot wait for the
    /// publication (or lend) that waits for it.
    #[inline]
    pub(crate) fn met(&self, need_value: bool) -> bool {
        let met = if need_value {
            self.is_available()
        } else {
            self.is_published()
        };
        met || (self.is_ready() && self.in_callbacks_here())
    }

    /// [`met`](Completion::met) as `seen` says, with the slot's lock held.
    fn met_locked(&self, seen: Snapshot, slot: &Slot<T>, need_value: bool) -> bool {
        let met = if need_value {
            seen.is_available()
        } else {
            seen.is_published()
        };
        met || (seen.is_ready() && slot.on_callback_thread())
    }

    /// Whether the current thread runs this (done) task's callbacks now.
    #[cold]
    fn in_callbacks_here(&self) -> bool {
        lock(&self.slot).on_callback_thread()
    }

    /// Whether the current thread is inside one of this task's callbacks
    /// while the value is out of reach (being handed to the callbacks, or
    /// lent to a late one): waiting for it would wait for this thread.
    pub(crate) fn in_own_callback(&self) -> bool {
        self.is_ready() && !self.is_available() && self.in_callbacks_here()
    }

    /// The handle's `Future::poll`: the value if available, else the
    /// waker is kept for the publication.
    pub(crate) fn poll_take(&self, waker: &Waker) -> Poll<Result<T, TaskError>> {
        let mut slot = lock(&self.slot);
        let _ = self.state.watch();
        if let Some(result) = self.try_take() {
            return Poll::Ready(result);
        }
        // Not published, or lent: the publication (or the lender's return
        // of the value) takes this lock, and wakes the waker kept here.
        let watchers = slot.watchers();
        match &watchers.future_waker {
            Some(old) if old.will_wake(waker) => {}
            _ => watchers.future_waker = Some(waker.clone()),
        }
        Poll::Pending
    }
}

fn run_callback<T>(pool: u32, callback: Callback<T>, result: &Result<T, TaskError>) {
    // A panicking callback must not take the completing thread (a worker,
    // or a user thread calling cancel) down with it, nor skip the others;
    // nor may its payload's Drop.
    crate::core::panics::run_reporting(pool, || callback(result));
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts its drops.
    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// A completion drops what it holds, once, whichever way it got it
    /// (a value never taken, a callback that never ran, a refusal's
    /// error), and an untouched one (which holds nothing) drops nothing.
    #[test]
    fn a_completion_drops_what_it_holds_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let count = || drops.load(std::sync::atomic::Ordering::SeqCst);

        drop(Completion::<Counted>::new());
        assert_eq!(count(), 0);

        let finished = Completion::new();
        assert_eq!(finished.claim(), Claim::Won);
        finished.finish(Ok(Counted(drops.clone())));
        drop(finished);
        assert_eq!(count(), 1, "a value nobody took");

        let watched = Completion::<()>::new();
        let guard = Counted(drops.clone());
        watched.add_callback(Box::new(move |_| drop(guard)));
        drop(watched);
        assert_eq!(count(), 2, "a callback that never ran");

        drop(Completion::new_done(Ok(Counted(drops.clone()))));
        assert_eq!(count(), 3, "a completion over from the start");
    }
}
