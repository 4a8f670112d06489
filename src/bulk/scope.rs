//! Scoped tasks: [`ThreadPool::scope`](crate::ThreadPool::scope) lets tasks borrow from the caller's
//! stack, because the scope joins every task it spawned before it returns
//! (as `std::thread::scope` and `rayon::scope` do).
//!
//! One of the two places the crate erases a lifetime (the other is
//! `ThreadPool::install`): a task that borrows for `'scope` is queued as an
//! ordinary `'static` task. It is sound because the scope counts its tasks
//! and does not return (nor unwind) until each one has ended, whether it
//! ran, was cancelled, or was refused by a closed pool; and a task gives
//! its count back only when its erased task has ended (`ScopeCount`), after
//! everything it borrowed (its closure and its result slot) is gone and
//! the call that ran it has returned (see `Scope::spawn`).

use std::fmt;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::core::completion::{Completion, Waiter};
use crate::core::job::Extra;
use crate::core::recycle::Recycled;
use crate::core::registry::Registry;
use crate::core::state::Claim;
use crate::core::sync::{lock, AtomicUsize, Mutex, Ordering, Thread};
use crate::core::waitable::Waitable;
use crate::error::{payload_message, TaskError};

/// A scope to spawn borrowing tasks in; see [`ThreadPool::scope`](crate::ThreadPool::scope).
///
/// `'scope` is the lifetime of the scope itself: spawned tasks may borrow
/// anything that outlives it. `'env` is the lifetime of what the scope's
/// closure borrows from outside.
pub struct Scope<'scope, 'env: 'scope> {
    state: Arc<ScopeState>,
    registry: Arc<Registry>,
    // Invariance, as in std::thread::Scope: neither lifetime may shrink or
    // grow to let a borrow escape.
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// What a scope's tasks share with it; `'static`, so a task can still
/// touch it after the scope has returned (see `ScopeState::task_done`).
struct ScopeState {
    /// Tasks spawned and not yet dropped.
    pending: AtomicUsize,
    /// The thread waiting in `scope` for `pending` to reach 0.
    waiter: Mutex<Option<Thread>>,
    next_id: AtomicUsize,
    /// Tasks that panicked and whose handle has not been joined: (id,
    /// message). The first one is re-raised when the scope ends.
    unjoined_panics: Mutex<Vec<(usize, String)>>,
}

impl ScopeState {
    fn task_done(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            let waiter = lock(&self.waiter).take();
            if let Some(thread) = waiter {
                thread.unpark();
            }
        }
    }
}

impl Waitable for ScopeState {
    fn is_done(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }
    fn register(&self, thread: &Thread) -> bool {
        let mut waiter = lock(&self.waiter);
        if self.is_done() {
            return false;
        }
        *waiter = Some(thread.clone());
        true
    }
    fn deregister(&self, _thread: &Thread) {
        *lock(&self.waiter) = None;
    }
}

/// What a scoped task's erased task carries: the scope, told when the
/// task has ended (`Extra::ended`: after its closure was consumed, by its
/// run or by being dropped unrun), which gives the scope's count back.
struct ScopeCount(Arc<ScopeState>);

impl Extra for ScopeCount {
    fn ended(&self) {
        self.0.task_done();
    }
}

/// One spawned task, as queued (inside an erased closure). It borrows the
/// scope's state and the registry for `'scope`, as its closure may borrow
/// anything: all of it is done with before the task ends (`ScopeCount`),
/// so no reference count is taken per task.
struct ScopedJob<'scope, F, T> {
    f: Option<F>,
    slot: Option<Recycled<Completion<T>>>,
    state: &'scope ScopeState,
    registry: &'scope Registry,
    id: usize,
}

impl<F, T> ScopedJob<'_, F, T>
where
    F: FnOnce() -> T,
{
    fn run(mut self) {
        let (Some(f), Some(slot)) = (self.f.take(), self.slot.as_ref()) else {
            return;
        };
        if slot.claim() == Claim::Lost {
            return; // unreachable: only this job moves its slot
        }
        let result = catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
            let msg = payload_message(payload.as_ref()).unwrap_or("non-string panic payload");
            lock(&self.state.unjoined_panics).push((self.id, msg.to_owned()));
            TaskError::Panicked(payload)
        });
        let panicked = result.is_err();
        slot.finish(result);
        if panicked {
            // The scope reports it; the pool's statistics count it too.
            crate::core::counters::note_panicked();
        }
        // `self` drops here: see Drop.
    }
}

impl<F, T> Drop for ScopedJob<'_, F, T> {
    fn drop(&mut self) {
        // Drop what borrows from 'scope, panics contained: nothing may stop
        // the task from ending, which gives the count back.
        if let Some(f) = self.f.take() {
            // Never ran: cancelled by terminate, or refused by a closed pool.
            crate::core::panics::drop_reporting(self.registry.id(), f);
            if let Some(slot) = &self.slot {
                let error = if self.registry.is_closed() && !self.registry.is_terminated() {
                    TaskError::PoolClosed
                } else {
                    TaskError::Cancelled
                };
                // Only this job moves its slot, so the abort always wins.
                let _ = slot.abort(error, || {});
            }
        }
        let slot = self.slot.take();
        crate::core::panics::drop_reporting(self.registry.id(), slot);
        // The count is given back when the erased task has ended (see
        // `Scope::spawn`), not here: this runs inside the call that owns
        // the job by value, where the job's borrows are still live.
    }
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Spawns `f` on the pool. It may borrow anything that outlives the
    /// scope, and it is joined before [`ThreadPool::scope`](crate::ThreadPool::scope) returns. The
    /// returned handle can [`join`](ScopedHandle::join) it earlier and take
    /// its value; tasks may spawn more tasks through the scope.
    ///
    /// On a closed pool the task does not run: its handle resolves to
    /// [`TaskError::PoolClosed`] (or [`TaskError::Cancelled`] if the pool
    /// was terminated), and the scope still returns.
    ///
    /// ```
    /// use futurepool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let words = vec!["alpha", "beta", "gamma"];
    /// let total = pool.scope(|s| {
    ///     let handles: Vec<_> = words.iter().map(|w| s.spawn(move || w.len())).collect();
    ///     handles.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
    /// });
    /// assert_eq!(total, 14);
    /// ```
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        // The result slot, shared by the job and the handle: a block this
        // thread's free lists reuse (`core/recycle.rs`).
        let slot = Recycled::new(Completion::new());
        let id = self.state.next_id.fetch_add(1, Ordering::Relaxed);
        self.state.pending.fetch_add(1, Ordering::AcqRel);
        let job = ScopedJob {
            f: Some(f),
            slot: Some(slot.clone()),
            state: &self.state,
            registry: &self.registry,
            id,
        };
        let task: Box<dyn FnOnce() + Send + 'scope> = Box::new(move || job.run());
        #[allow(unsafe_code)]
        // SAFETY: only the lifetime bound changes; the layout of the box
        // (data pointer + vtable) is the same. The closure may borrow data
        // that lives for 'scope. `ThreadPool::scope` does not return or
        // unwind before `pending` is back to 0, and this task gives its
        // count back only when the erased task has ended (`ScopeCount`,
        // told by the task after its publication): the task ends only
        // after the boxed closure has
        // been consumed, by its call (which ran `f` and dropped the job,
        // its slot included) or by being dropped unrun (cancelled,
        // refused: the job's Drop drops `f` and the slot). So nothing that
        // borrows from 'scope is live, nor held by a frame that owns it by
        // value, when the scope may return: giving the count back from the
        // job's own Drop, inside the call that owns the job, let the scope
        // read its data while that call's borrow of it was still protected
        // (found by Miri under Tree Borrows). Leaking the task (never ending
        // it) would block the scope forever, never free borrowed memory
        // under it; the pool never leaks a queued task.
        let task: Box<dyn FnOnce() + Send + 'static> = unsafe {
            std::mem::transmute::<
                Box<dyn FnOnce() + Send + 'scope>,
                Box<dyn FnOnce() + Send + 'static>,
            >(task)
        };
        // The erased task's own handle is not needed: its end is seen
        // through `ScopeCount`, and its closure never panics (`run`
        // catches the task's panic for the scoped handle).
        let _ = self
            .registry
            .submit_task(task, ScopeCount(self.state.clone()), None);
        ScopedHandle {
            slot,
            state: &self.state,
            id,
        }
    }

    fn wait_all(&self) {
        crate::core::wait::block(&*self.state, None);
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("pending", &self.state.pending.load(Ordering::Relaxed))
            .finish()
    }
}

/// The handle of a task spawned with [`Scope::spawn`]: join it to take its
/// value before the scope ends. Dropping it does not cancel the task; the
/// scope joins it anyway.
pub struct ScopedHandle<'scope, T> {
    slot: Recycled<Completion<T>>,
    state: &'scope ScopeState,
    id: usize,
}

impl<T> ScopedHandle<'_, T> {
    /// Waits for the task and returns its value. On a pool worker, the wait
    /// runs the pool's queued work meanwhile.
    ///
    /// # Errors
    ///
    /// [`TaskError::Panicked`] if the task panicked (the panic then counts as
    /// handled: the scope does not re-raise it), [`TaskError::Cancelled`] or
    /// [`TaskError::PoolClosed`] if it never ran.
    ///
    /// ```
    /// use futurepool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(1).unwrap();
    /// pool.scope(|s| {
    ///     let h = s.spawn(|| -> u8 { panic!("handled") });
    ///     assert_eq!(h.join().unwrap_err().panic_message(), Some("handled"));
    /// }); // does not panic: the failure was joined
    /// ```
    pub fn join(self) -> Result<T, TaskError>
    where
        T: Send,
    {
        let wait = ValueReady(&self.slot);
        loop {
            crate::core::wait::block(&wait, None);
            if let Some(result) = self.slot.try_take() {
                if matches!(result, Err(TaskError::Panicked(_))) {
                    lock(&self.state.unjoined_panics).retain(|(id, _)| *id != self.id);
                }
                return result;
            }
        }
    }

    /// Whether the task is done (finished, panicked or cancelled).
    ///
    /// ```
    /// use futurepool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(1).unwrap();
    /// pool.scope(|s| {
    ///     let h = s.spawn(|| 1);
    ///     let _ = h.is_finished(); // may be either, until joined
    ///     assert_eq!(h.join(), Ok(1));
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.slot.is_ready()
    }
}

impl<T> fmt::Debug for ScopedHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Waits until a slot's value can be taken.
struct ValueReady<'a, T>(&'a Completion<T>);

impl<T: Send> Waitable for ValueReady<'_, T> {
    fn is_done(&self) -> bool {
        self.0.met(true)
    }
    fn register(&self, thread: &Thread) -> bool {
        self.0.register(Waiter::Thread(thread.clone()), true)
    }
    fn deregister(&self, thread: &Thread) {
        self.0.deregister_thread(thread);
    }
}

pub(crate) fn scope<'env, F, R>(registry: &Arc<Registry>, f: F) -> R
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
{
    let scope = Scope {
        state: Arc::new(ScopeState {
            pending: AtomicUsize::new(0),
            waiter: Mutex::new(None),
            next_id: AtomicUsize::new(0),
            unjoined_panics: Mutex::new(Vec::new()),
        }),
        registry: registry.clone(),
        scope: PhantomData,
        env: PhantomData,
    };
    let result = catch_unwind(AssertUnwindSafe(|| f(&scope)));
    scope.wait_all();
    match result {
        Err(payload) => resume_unwind(payload),
        Ok(value) => {
            let unjoined = lock(&scope.state.unjoined_panics).first().cloned();
            if let Some((_, msg)) = unjoined {
                panic!("a scoped task panicked: {msg}");
            }
            value
        }
    }
}
