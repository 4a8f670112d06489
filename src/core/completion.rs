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
use crate::core::sync::{current_thread, lock, AtomicPtr, Mutex, MutexGuard, Ordering, Thread};
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
///
/// The cell is an `Option<Result<T, TaskError>>` taken apart to fit the
/// task's header: the discriminant is a [`Tag`] byte in the completion's
/// padding (beside the state byte), the payload a union as large as `T`
/// or a pointer. An error with a payload (a panic's, say) is boxed;
/// `Cancelled` and `PoolClosed`, the errors a queue's worth of tasks can
/// end with at once (a terminate, a closed pool), need no payload and no
/// allocation. For a `u64` result that is 8 bytes where the `Option` took
/// 24: with the closure's flag (job.rs) and the lazily made slot (below),
/// a queued `submit(move || i)` is one 48-byte malloc chunk instead of 80
/// (W6 in the benchmark suite).
struct ValueCell<T> {
    stored: Cell<Stored<T>>,
}

/// The payload of a [`ValueCell`]; which field holds it is its [`Tag`].
union Stored<T> {
    ok: ManuallyDrop<T>,
    err: ManuallyDrop<Box<TaskError>>,
    none: (),
}

/// Which of [`Stored`]'s fields holds the value, if any. Reached by the
/// same threads, in the same turns, as the cell itself.
struct Tag(Cell<u8>);

/// No value (not put yet, or taken).
const EMPTY: u8 = 0;
/// `Ok`, in `Stored::ok`.
const OK: u8 = 1;
/// An error with a payload, boxed in `Stored::err`.
const BOXED: u8 = 2;
/// `Err(Cancelled)`, no payload.
const CANCELLED: u8 = 3;
/// `Err(PoolClosed)`, no payload.
const CLOSED: u8 = 4;

#[cfg(not(loom))]
type Cell<V> = std::cell::UnsafeCell<V>;
#[cfg(loom)]
type Cell<V> = loom::cell::UnsafeCell<V>;

/// Runs `f` with exclusive access to `cell`'s content (checked by loom
/// under `--cfg loom`).
///
/// # Safety
///
/// No other thread touches the cell meanwhile.
#[allow(unsafe_code)]
#[inline]
unsafe fn with_mut<V, R>(cell: &Cell<V>, f: impl FnOnce(&mut V) -> R) -> R {
    #[cfg(not(loom))]
    // SAFETY: the caller's promise.
    return f(unsafe { &mut *cell.get() });
    #[cfg(loom)]
    // SAFETY: as above.
    return cell.with_mut(|p| f(unsafe { &mut *p }));
}

// SAFETY: the value is moved between threads (T: Send) and reached by one
// thread at a time, as the state word grants it (see the type's docs);
// `&ValueCell` gives no access by itself: `put` and `take` are unsafe with
// that contract. The same holds for its tag.
#[allow(unsafe_code)]
unsafe impl<T: Send> Sync for ValueCell<T> {}
// SAFETY: as for the cell.
#[allow(unsafe_code)]
unsafe impl Sync for Tag {}

impl<T> ValueCell<T> {
    /// An empty cell, and its tag.
    fn empty() -> (Self, Tag) {
        (
            ValueCell {
                stored: Cell::new(Stored { none: () }),
            },
            Tag(Cell::new(EMPTY)),
        )
    }

    /// A cell holding `value`, and its tag.
    fn holding(value: Result<T, TaskError>) -> (Self, Tag) {
        let (cell, tag) = Self::empty();
        #[allow(unsafe_code)]
        // SAFETY: the cell is new: nobody else can reach it.
        unsafe {
            cell.put(&tag, value)
        };
        (cell, tag)
    }

    /// Puts the value in (the cell is empty).
    ///
    /// # Safety
    ///
    /// This thread owns the cell and `tag`, the cell's: it is the task's
    /// owner before the value is published, or it won the cell with LENT
    /// (see the type's docs).
    #[allow(unsafe_code)]
    #[inline]
    unsafe fn put(&self, tag: &Tag, value: Result<T, TaskError>) {
        let (t, stored) = match value {
            Ok(v) => (
                OK,
                Stored {
                    ok: ManuallyDrop::new(v),
                },
            ),
            Err(TaskError::Cancelled) => (CANCELLED, Stored { none: () }),
            Err(TaskError::PoolClosed) => (CLOSED, Stored { none: () }),
            Err(e) => (
                BOXED,
                Stored {
                    err: ManuallyDrop::new(Box::new(e)),
                },
            ),
        };
        // SAFETY: the caller's promise: nobody else touches the cell or
        // its tag now. The cell is empty, so nothing is overwritten.
        unsafe {
            with_mut(&self.stored, |s| *s = stored);
            with_mut(&tag.0, |tag| *tag = t);
        }
    }

    /// Takes the value out (`None` if it went elsewhere).
    ///
    /// # Safety
    ///
    /// This thread won the cell with TAKEN or LENT (see the type's docs),
    /// or is dropping it; `tag` is the cell's.
    #[allow(unsafe_code)]
    #[inline]
    unsafe fn take(&self, tag: &Tag) -> Option<Result<T, TaskError>> {
        // SAFETY: the caller's promise: nobody else touches the cell or its
        // tag now.
        let t = unsafe { with_mut(&tag.0, |tag| std::mem::replace(tag, EMPTY)) };
        // SAFETY: as above; the tag says which field holds the value, and
        // it now says EMPTY, so the value is read out exactly once.
        unsafe {
            with_mut(&self.stored, |s| match t {
                EMPTY => None,
                OK => Some(Ok(ManuallyDrop::take(&mut s.ok))),
                BOXED => Some(Err(*ManuallyDrop::take(&mut s.err))),
                CANCELLED => Some(Err(TaskError::Cancelled)),
                _ => Some(Err(TaskError::PoolClosed)),
            })
        }
    }
}

/// The slot: whoever waits or listens. Whoever adds one sets WATCHED in
/// the state word first (`state.rs`). Most tasks are collected without
/// ever being watched (the value is there, or the waiting worker runs the
/// task itself), so the slot, its lock included, lives in its own
/// allocation, made on first use and kept until the task is dropped: the
/// task keeps one null pointer (memory per queued task) and publishing an
/// unobserved task touches no lock and no vector. A watched task keeps it
/// until its last reference goes, with its vectors emptied at publication
/// (96 bytes of malloc chunk).
struct SlotPtr<T>(AtomicPtr<Mutex<Slot<T>>>);

struct Slot<T> {
    waiters: Vec<Waiter>,
    callbacks: Vec<Callback<T>>,
    /// The waker of the one task polling the handle as a future.
    future_waker: Option<Waker>,
    /// The thread running the callbacks before publication, while it does.
    callback_thread: Option<Thread>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            waiters: Vec::new(),
            callbacks: Vec::new(),
            future_waker: None,
            callback_thread: None,
        }
    }
}

impl<T> SlotPtr<T> {
    fn new() -> Self {
        SlotPtr(AtomicPtr::new(std::ptr::null_mut()))
    }

    /// Locks the slot, making it first if nobody has.
    #[inline]
    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        let slot = self.0.load(Ordering::Acquire);
        if slot.is_null() {
            return lock(self.make());
        }
        #[allow(unsafe_code)]
        // SAFETY: a slot, once installed (released by the install's swap,
        // acquired by the load), stays until the completion is dropped,
        // which `&self` outlives.
        lock(unsafe { &*slot })
    }

    /// Locks the slot if anyone made it (else nobody ever watched).
    fn lock_made(&self) -> Option<MutexGuard<'_, Slot<T>>> {
        let slot = self.0.load(Ordering::Acquire);
        #[allow(unsafe_code)]
        // SAFETY: as in `lock`.
        (!slot.is_null()).then(|| lock(unsafe { &*slot }))
    }

    /// Installs a new slot, or finds the one another thread installed
    /// first.
    #[cold]
    fn make(&self) -> &Mutex<Slot<T>> {
        let new = Box::into_raw(Box::new(Mutex::new(Slot::default())));
        match self.0.compare_exchange(
            std::ptr::null_mut(),
            new,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            #[allow(unsafe_code)]
            // SAFETY: installed, it lives as long as the completion (see
            // `lock`).
            Ok(_) => unsafe { &*new },
            Err(theirs) => {
                #[allow(unsafe_code)]
                // SAFETY: `new` came from `Box::into_raw` just now and was
                // never shared.
                drop(unsafe { Box::from_raw(new) });
                #[allow(unsafe_code)]
                // SAFETY: as for an installed slot in `lock`.
                unsafe {
                    &*theirs
                }
            }
        }
    }
}

impl<T> Drop for SlotPtr<T> {
    fn drop(&mut self) {
        let slot = self.0.load(Ordering::Acquire);
        if !slot.is_null() {
            #[allow(unsafe_code)]
            // SAFETY: installed from `Box::into_raw`, and this is the last
            // use: the completion is being dropped.
            drop(unsafe { Box::from_raw(slot) });
        }
    }
}

impl<T> Slot<T> {
    /// Whether the current thread is running this task's callbacks ahead
    /// of publication.
    fn on_callback_thread(&self) -> bool {
        self.callback_thread
            .as_ref()
            .is_some_and(|t| t.id() == current_thread().id())
    }

    fn has_callbacks(&self) -> bool {
        !self.callbacks.is_empty()
    }
}

/// A byte of the completion's padding lent to the task type that embeds
/// it: a plain task keeps there whether its closure is still in its cell
/// (`job.rs`, `ClosureCell`), 8 bytes less than an `Option` around a
/// closure with no spare bit. Reached only by the thread that owns the
/// closure (see `ClosureCell`) and by the task's drop.
pub(crate) struct Flag(std::cell::UnsafeCell<bool>);

// SAFETY: reached by one thread at a time, as the owner of the task's
// closure (see the type's docs): `get` and `set` are unsafe with that
// contract.
#[allow(unsafe_code)]
unsafe impl Sync for Flag {}

impl Flag {
    /// The flag's value.
    ///
    /// # Safety
    ///
    /// No other thread writes the flag meanwhile.
    #[allow(unsafe_code)]
    #[inline]
    pub(crate) unsafe fn get(&self) -> bool {
        // SAFETY: the caller's promise.
        unsafe { *self.0.get() }
    }

    /// Sets the flag.
    ///
    /// # Safety
    ///
    /// No other thread reaches the flag meanwhile.
    #[allow(unsafe_code)]
    #[inline]
    pub(crate) unsafe fn set(&self, value: bool) {
        // SAFETY: the caller's promise.
        unsafe { *self.0.get() = value }
    }
}

/// The shared state of one task's outcome.
pub(crate) struct Completion<T> {
    state: State,
    /// Which field of the value cell holds the value (see [`ValueCell`]),
    /// in the padding too.
    value_tag: Tag,
    /// The embedding task's byte (see [`Flag`]), in the padding too.
    flag: Flag,
    /// The pool a queued task belongs to (its registry's
    /// [`id`](crate::core::registry::Registry::id); 0 for anything else).
    /// Kept here, not in the task, because it fits in the padding after
    /// the state byte: 16 bytes less per queued task (W6 in the benchmark
    /// suite).
    pool: u32,
    /// Dropped by [`Completion`]'s `Drop`, unless the state says it holds
    /// nothing (as the value cell).
    slot: ManuallyDrop<SlotPtr<T>>,
    /// The result, once published (see [`ValueCell`]).
    value: ValueCell<T>,
}

impl<T> Drop for Completion<T> {
    #[inline]
    fn drop(&mut self) {
        // Untouched (PENDING, never watched): no watcher was ever added
        // (every one is added after setting WATCHED) and no value put (only
        // a move out of PENDING puts one), so there is nothing to drop:
        // the common end of a task run by the `get` that held it alone,
        // spared a call per task (W3 in the benchmark suite, callgrind:
        // 358 -> 346 instructions per fork with this check in line).
        if !self.state.untouched() {
            self.drop_contents();
        }
    }
}

impl<T> Completion<T> {
    /// The rest of the drop, out of line: the check above stays in the
    /// caller's frame.
    #[inline(never)]
    fn drop_contents(&mut self) {
        #[allow(unsafe_code)]
        // SAFETY: called only by the completion's drop: the slot is dropped
        // once, here, and never used again; the value cell is this thread's
        // (nobody else holds the completion), the tag its own.
        unsafe {
            ManuallyDrop::drop(&mut self.slot);
            drop(self.value.take(&self.value_tag));
        }
    }

    /// A pending completion of a task that belongs to no pool's queues.
    pub(crate) fn new() -> Self {
        Self::new_in(0)
    }

    /// A pending completion of a task queued on pool `pool`.
    pub(crate) fn new_in(pool: u32) -> Self {
        Self::with_flag(pool, false)
    }

    /// [`new_in`](Completion::new_in), with the embedding task's
    /// [`Flag`] set.
    pub(crate) fn with_flag(pool: u32, flag: bool) -> Self {
        let (value, value_tag) = ValueCell::empty();
        Completion {
            state: State::pending(),
            value_tag,
            flag: Flag(std::cell::UnsafeCell::new(flag)),
            pool,
            slot: ManuallyDrop::new(SlotPtr::new()),
            value,
        }
    }

    /// A completion that is already over (e.g. a submission refused because
    /// the pool is closed).
    pub(crate) fn new_done(result: Result<T, TaskError>) -> Self {
        let state = State::published(Phase::of(&result));
        let (value, value_tag) = ValueCell::holding(result);
        Completion {
            state,
            value_tag,
            flag: Flag(std::cell::UnsafeCell::new(false)),
            pool: 0,
            slot: ManuallyDrop::new(SlotPtr::new()),
            value,
        }
    }

    /// The embedding task's byte (see [`Flag`]).
    #[inline]
    pub(crate) fn flag(&self) -> &Flag {
        &self.flag
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
            // Nobody watched (the common end of a terminate's queue): one
            // swap, no lock and no slot made; else the locked way.
            #[allow(unsafe_code)]
            // SAFETY: this thread won the move out of PENDING and nothing
            // is published: the cell is this thread's (see `ValueCell`).
            unsafe {
                self.value.put(&self.value_tag, Err(error))
            };
            if self.state.publish_unwatched() == Finish::Watched {
                // A watcher is there: publish under the lock, which wakes it.
                #[allow(unsafe_code)]
                // SAFETY: still this thread's: nothing is published.
                let Some(result) = (unsafe { self.value.take(&self.value_tag) }) else {
                    unreachable!("the error was put into the cell just now");
                };
                self.publish(result);
            }
        }
        answer
    }

    /// Called by the owner of a RUNNING task when it is over. A task that
    /// stopped because it was cancelled ends CANCELLED, not FAILED.
    pub(crate) fn finish(&self, result: Result<T, TaskError>) {
        let phase = Phase::of(&result);
        // Nobody ever watched the task (no waiter, callback or waker; its
        // handle may be gone): the value goes into the cell and one
        // compare-and-swap publishes it, no lock (see `state.rs`). A
        // watched task goes straight to the lock (a plain load decides, not
        // a swap that would fail).
        let result = if self.state.unwatched() {
            let panicked = matches!(result, Err(TaskError::Panicked(_)));
            #[allow(unsafe_code)]
            // SAFETY: this thread owns the running task, and the value is
            // not published: the cell is this thread's (see `ValueCell`).
            unsafe {
                self.value.put(&self.value_tag, result)
            };
            match self.state.finish_unwatched(phase, false) {
                Finish::Published => return,
                Finish::PublishedDetached => {
                    // The handle is gone and nobody else can watch: a
                    // panic would sit in the cell unseen. Report it.
                    if panicked {
                        if let Some(Err(TaskError::Panicked(payload))) = self.try_take() {
                            crate::core::panics::report(self.pool, payload);
                        }
                    }
                    return;
                }
                Finish::Watched => {}
            }
            // A watcher came between the load and the swap.
            #[allow(unsafe_code)]
            // SAFETY: still this thread's: the swap failed, nothing is
            // published.
            let Some(result) = (unsafe { self.value.take(&self.value_tag) }) else {
                unreachable!("the value was put into the cell just now");
            };
            result
        } else {
            result
        };
        let slot = self.slot.lock();
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
        // (Never detached: the handle is the caller's.)
        if self.state.finish_unwatched(Phase::of(&result), true) != Finish::Watched {
            return Some(result);
        }
        let slot = self.slot.lock();
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
            let mut slot = self.slot.lock();
            if !slot.has_callbacks() {
                self.store_and_wake(slot, result, State::set_published);
                return;
            }
            let watchers = &mut *slot;
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
            // Nobody can ever take it: report it instead. (A flag set
            // after this read leaves the panic in the cell, as a handle
            // dropped just after the publication would: `State::detach`.)
            Err(TaskError::Panicked(payload)) if self.state.now().is_detached() => Some(payload),
            result => {
                #[allow(unsafe_code)]
                // SAFETY: this thread owns the cell (see above); `mark`
                // publishes what it wrote (a release store).
                unsafe {
                    self.value.put(&self.value_tag, result)
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
        // Everything, the callback thread included (the callbacks are
        // over): the slot stays, empty, for any late watcher.
        let watchers = std::mem::take(&mut *slot);
        drop(slot);
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

    /// Pending and never watched (see [`State::untouched`]).
    #[inline]
    pub(crate) fn untouched(&self) -> bool {
        self.state.untouched()
    }

    /// The handle was dropped: if the outcome is not published yet, a
    /// panic it turns out to be will be reported, not kept. One
    /// read-modify-write, no lock and no slot (a fire-and-forget
    /// submission pays no allocation for it): the owner's lock-free finish
    /// sees the flag, and so does one finishing under the lock if the flag
    /// came first (`State::detach`).
    pub(crate) fn detach(&self) {
        self.state.detach();
    }

    /// Runs `callback` once with the outcome: now, on this thread, if it is
    /// published; otherwise later, on the thread that completes the task.
    pub(crate) fn add_callback(&self, callback: Callback<T>) {
        let mut slot = self.slot.lock();
        if !self.state.watch().is_available() {
            // Not published, or lent: whoever holds the result runs queued
            // callbacks before it publishes (or returns) the result.
            slot.callbacks.push(callback);
            return;
        }
        // Published and not lent (only a holder of this lock lends): the
        // value is here, or it was taken.
        let won = self.state.lend_value() == Hold::Won;
        let lent = if won {
            #[allow(unsafe_code)]
            // SAFETY: this thread won the cell (LENT).
            unsafe {
                self.value.take(&self.value_tag)
            }
        } else {
            None
        };
        match lent {
            Some(result) => {
                slot.callback_thread = Some(current_thread());
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
            Hold::Won => Some(
                unsafe { self.value.take(&self.value_tag) }.unwrap_or(Err(TaskError::ResultTaken)),
            ),
            Hold::Taken => Some(Err(TaskError::ResultTaken)),
            Hold::NotAvailable => None,
        }
    }

    /// Registers `waiter` to be woken when the condition may hold (see
    /// [`met`](Completion::met)). Returns false (and drops the waiter) if
    /// it already holds, so the caller need not sleep. A thread registers
    /// at most once.
    pub(crate) fn register(&self, waiter: Waiter, need_value: bool) -> bool {
        let mut slot = self.slot.lock();
        if self.met_locked(self.state.watch(), &slot, need_value) {
            return false;
        }
        let waiters = &mut slot.waiters;
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
        if let Some(mut watchers) = self.slot.lock_made() {
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
        if let Some(mut watchers) = self.slot.lock_made() {
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
        self.slot
            .lock_made()
            .is_some_and(|slot| slot.on_callback_thread())
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
        // Over already (the common poll of a handle awaited late): taken
        // with one compare-and-swap, no lock and no slot made.
        if let Some(result) = self.try_take() {
            return Poll::Ready(result);
        }
        let mut slot = self.slot.lock();
        let _ = self.state.watch();
        if let Some(result) = self.try_take() {
            return Poll::Ready(result);
        }
        // Not published, or lent: the publication (or the lender's return
        // of the value) takes this lock, and wakes the waker kept here.
        let watchers = &mut *slot;
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

    /// A handle dropped before anyone watched makes no slot (one
    /// read-modify-write of the state word: what a fire-and-forget
    /// submission pays), and a panic the task then ends with is reported
    /// (its payload dropped at once) rather than kept in the cell; the
    /// same once the task was watched, where the flag is set under the
    /// slot's lock. Dropped after publication, it changes nothing.
    #[test]
    fn a_dropped_handle_makes_no_slot_and_its_lost_panic_is_not_kept() {
        let drops = Arc::new(AtomicUsize::new(0));
        let count = || drops.load(std::sync::atomic::Ordering::SeqCst);
        let made = |c: &Completion<u8>| !c.slot.0.load(Ordering::Acquire).is_null();

        for watched in [false, true] {
            let c = Completion::<u8>::new();
            assert_eq!(c.claim(), Claim::Won);
            if watched {
                c.add_callback(Box::new(|_| {}));
            }
            c.detach();
            assert_eq!(made(&c), watched, "a slot only for a watched task");
            let before = count();
            c.finish(Err(TaskError::Panicked(Box::new(Counted(drops.clone())))));
            assert_eq!(
                count(),
                before + 1,
                "reported and dropped (watched: {watched})"
            );
            assert!(c.is_published());
            drop(c);
            assert_eq!(count(), before + 1);
        }

        let c = Completion::<u8>::new();
        assert_eq!(c.claim(), Claim::Won);
        c.finish(Ok(3));
        c.detach();
        assert!(!made(&c));
        assert_eq!(c.try_take(), Some(Ok(3)));
    }

    /// Every outcome comes out of the value cell as it went in (the cell
    /// keeps an error's payload boxed, or none for `Cancelled` and
    /// `PoolClosed`), once: a second take finds it taken. A panic's
    /// payload is dropped once, whether it is taken or left in the cell.
    #[test]
    fn every_outcome_comes_out_as_it_went_in_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let count = || drops.load(std::sync::atomic::Ordering::SeqCst);
        let outcome = |i: usize| -> Result<u64, TaskError> {
            match i {
                0 => Ok(u64::MAX),
                1 => Err(TaskError::Panicked(Box::new(Counted(drops.clone())))),
                2 => Err(TaskError::Cancelled),
                3 => Err(TaskError::PoolClosed),
                4 => Err(TaskError::ThreadStart("refused".to_string())),
                5 => Err(TaskError::InvalidArgument("chunk size 0")),
                6 => Err(TaskError::Timeout),
                _ => Err(TaskError::ResultTaken),
            }
        };
        for i in 0..8 {
            let expected = format!("{:?}", outcome(i));
            for done in [false, true] {
                let completion = if done {
                    Completion::new_done(outcome(i))
                } else {
                    let c = Completion::new();
                    assert_eq!(c.claim(), Claim::Won);
                    c.finish(outcome(i));
                    c
                };
                let before = count();
                let taken = completion.try_take().expect("published");
                assert_eq!(format!("{taken:?}"), expected, "outcome {i}");
                drop(taken);
                assert_eq!(count(), before + usize::from(i == 1), "outcome {i}");
                assert!(matches!(
                    completion.try_take(),
                    Some(Err(TaskError::ResultTaken))
                ));
            }
        }
        // Left in the cell: dropped with the completion.
        let c = Completion::<u64>::new();
        assert_eq!(c.claim(), Claim::Won);
        let before = count();
        c.finish(Err(TaskError::Panicked(Box::new(Counted(drops.clone())))));
        drop(c);
        assert_eq!(count(), before + 1);
    }
}
