//! A queued unit of work, and the two faces of a task: the scheduler's
//! [`Job`] (type-erased, knows how to run or cancel itself) and the
//! handle's [`TaskRef<T>`]. A plain task is one block,
//! `Recycled<Task<T, F>>` (memory its threads reuse, see
//! `core/recycle.rs`), seen both ways; a handle holds it as a
//! [`TaskPtr`]. Whoever moves the task out of
//! PENDING (the runner, a canceller, a refusal) owns the closure.
//!
//! This layer does not know the scheduler: what it needs from the thread
//! that runs a task is the small [`Runner`] trait, which a worker
//! implements (and tests can fake).
//!
//! A task may carry a [`CancelToken`] (`submit_cancellable`): cancelling
//! its handle while it runs sets the token, and a task whose token is set
//! when its closure returns ends CANCELLED (see `pool/cancel.rs`).

use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::core::completion::{Completion, Flag};
use crate::core::counters::Outcome;
use crate::core::recycle::{RcBox, Recycled};
use crate::core::state::{Abort, Claim, Phase};
use crate::core::sync::{lock, AtomicBool, Mutex, Ordering};
use crate::error::TaskError;
use crate::pool::cancel::CancelToken;

pub(crate) use crate::core::job_ref::{Job, JobRef, OwnedJob, RawRef, RunShared};
pub(crate) use crate::core::runner::{Ran, Runner};

/// What a handle needs from the task behind it, whatever its kind.
pub(crate) trait TaskRef<T>: Send + Sync {
    fn completion(&self) -> &Completion<T>;
    /// Resolves the task to `error` if it has not started; false if it
    /// had started or was already over.
    fn abort(&self, error: TaskError) -> bool;
    /// [`AsyncResult::cancel`](crate::AsyncResult::cancel): by default,
    /// only a task that has not started can be cancelled. Tasks that can
    /// be stopped while running (cooperative tokens, async tasks, periodic
    /// tasks) override this.
    fn cancel(&self) -> bool {
        self.abort(TaskError::Cancelled)
    }
    /// Offered by a worker of `runner`'s pool that waits for this task:
    /// runs it right here if it is that pool's and has not started.
    fn run_here(&self, _runner: &dyn Runner) -> Option<Ran> {
        None
    }
    /// [`run_here`](TaskRef::run_here) for a wait that takes the value
    /// (`get`): the outcome of a run here comes straight back (see
    /// [`Completion::finish_and_take`]), or `None` inside if it went to
    /// the slot after all (callbacks were queued).
    fn run_here_and_take(
        &self,
        _runner: &dyn Runner,
    ) -> Option<(Ran, Option<Result<T, TaskError>>)> {
        None
    }
    /// Runs the task on this thread, which holds it alone, and hands back
    /// its outcome, with no transition of its state word and no lock:
    /// nobody else can ever look at the task again (`get` of a task whose
    /// queue entry its worker took back, see `wait.rs`). The task is over
    /// for good; all that is left is to free it. `None` if this kind of
    /// task cannot be run so (only plain and token tasks can); nothing
    /// happened then. The caller has checked that the pool is not
    /// terminated, after it came to hold the task alone.
    ///
    /// # Safety
    ///
    /// The caller holds every reference to the task (so no other thread
    /// can reach it, now or later), its state is
    /// [`untouched`](Completion::untouched), and it uses the task
    /// afterwards only to free it.
    #[allow(unsafe_code)]
    unsafe fn run_alone(&self, _runner: &dyn Runner) -> Option<Result<T, TaskError>> {
        None
    }
}

/// The closure of a plain task: taken at most once, by the thread that
/// wins the task's move out of PENDING (its claim or its abort: one
/// compare-and-swap from PENDING, so exactly one thread), or by the `get`
/// that holds the task alone. That makes a lock around it unnecessary:
/// two atomic read-modify-writes less per task, and 8 bytes less per
/// queued task. Whether it is still there is the completion's [`Flag`]
/// (in the padding of the task's header), not an `Option`: 8 bytes less
/// again for a closure with no spare bit (one that captures an integer).
pub(crate) struct ClosureCell<F>(std::cell::UnsafeCell<MaybeUninit<F>>);

// SAFETY: the closure is reached through `&ClosureCell` only by `take`,
// whose contract leaves exactly one thread (the winner of the move out of
// PENDING) able to call it, after that move's acquire; the closure is
// moved to that thread, which `F: Send` allows. Its creator wrote it
// before the task was shared (published by the queue's release).
#[allow(unsafe_code)]
unsafe impl<F: Send> Sync for ClosureCell<F> {}

impl<F> ClosureCell<F> {
    /// A cell holding `func`; its flag must say so.
    pub(crate) fn new(func: F) -> Self {
        ClosureCell(std::cell::UnsafeCell::new(MaybeUninit::new(func)))
    }

    /// Takes the closure, if `here` says it is still in the cell.
    ///
    /// # Safety
    ///
    /// `here` is the cell's flag. Only the thread that moved the task out
    /// of PENDING (a won [`claim`](Completion::claim) or abort), or that
    /// holds it alone, may call this, and no other thread ever touches the
    /// cell but to drop it with the task.
    #[allow(unsafe_code)]
    #[inline]
    pub(crate) unsafe fn take(&self, here: &Flag) -> Option<F> {
        // SAFETY: see the contract: this thread has exclusive access to the
        // cell and its flag; the flag says whether the cell holds a
        // closure, and is cleared as it is moved out, so it moves out once.
        unsafe {
            if !here.get() {
                return None;
            }
            here.set(false);
            Some((*self.0.get()).assume_init_read())
        }
    }

    /// Drops the closure if `here` says it is still in the cell.
    ///
    /// # Safety
    ///
    /// `here` is the cell's flag, and nobody else reaches the task any
    /// more (its drop).
    #[allow(unsafe_code)]
    unsafe fn drop_if_here(&mut self, here: &Flag) {
        // SAFETY: as in `take`, with `&mut self`: nobody else touches the
        // cell.
        unsafe {
            if here.get() {
                here.set(false);
                self.0.get_mut().assume_init_drop();
            }
        }
    }
}

/// What a handle holds: its task, in a [`Recycled`] block. Plain and
/// token tasks live there themselves (their memory is reused by the
/// threads that free it, see `core/recycle.rs`); the kinds that live in an
/// `Arc` (timers, map, async tasks) are reached through a recycled
/// [`Shared`] that holds the `Arc`. One pointer either way, so a handle is
/// two words (memory per queued task: an enum of the two pointers took
/// three).
pub(crate) struct TaskPtr<T>(Recycled<dyn TaskRef<T>>);

impl<T: 'static> TaskPtr<T> {
    /// The handle's reference to a recycled task.
    #[allow(unsafe_code)]
    pub(crate) fn recycled<J: TaskRef<T> + 'static>(task: Recycled<J>) -> Self {
        // SAFETY: the closure is the unsizing coercion to the trait object.
        TaskPtr(unsafe { task.unsize(|p| p as *mut RcBox<dyn TaskRef<T>>) })
    }

    /// The handle's reference to a task that lives in an `Arc`.
    pub(crate) fn shared(task: Arc<dyn TaskRef<T>>) -> Self {
        Self::recycled(Recycled::new_beside(Shared(task)))
    }
}

impl<T> TaskPtr<T> {
    /// The task's address: where its queue entry points, if it has one
    /// ([`JobRef::addr`]).
    #[inline]
    pub(crate) fn addr(&self) -> usize {
        &*self.0 as *const dyn TaskRef<T> as *const () as usize
    }

    /// Whether the handle and one other reference (its queue entry, taken
    /// off its queue by the caller) are all the task has.
    #[inline]
    pub(crate) fn held_with_entry_only(&self) -> bool {
        Recycled::has_count(&self.0, 2)
    }

    /// Frees a task held alone, with its queue entry, after
    /// [`run_alone`](TaskRef::run_alone): no count goes down, since nobody
    /// else can see it.
    ///
    /// # Safety
    ///
    /// `entry` is this task's queue entry (its [`addr`](TaskPtr::addr)),
    /// [`held_with_entry_only`](TaskPtr::held_with_entry_only) said true
    /// once `entry` was off its queue, and the task ran alone.
    #[allow(unsafe_code)]
    #[inline]
    pub(crate) unsafe fn free_with_entry(self, entry: JobRef) {
        // The handle's reference is given up, not counted down: the block
        // is freed through the entry, whose table knows the task's type.
        std::mem::forget(self);
        // SAFETY: the caller's promise: the entry is a recycled task's
        // (the handle's block, at its address), and it and the forgotten
        // handle were the block's only references.
        unsafe { entry.free_alone() };
    }
}

#[cfg(all(test, not(loom)))]
impl<T> TaskPtr<T> {
    /// Another reference to the task, as a test holds one.
    pub(crate) fn another(&self) -> Recycled<dyn TaskRef<T>> {
        self.0.clone()
    }
}

impl<T> std::ops::Deref for TaskPtr<T> {
    type Target = dyn TaskRef<T>;
    #[inline]
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// A task that lives in an `Arc`, as a handle reaches it (see
/// [`TaskPtr::shared`]): every call goes to the task.
struct Shared<T>(Arc<dyn TaskRef<T>>);

impl<T> TaskRef<T> for Shared<T> {
    fn completion(&self) -> &Completion<T> {
        self.0.completion()
    }
    fn abort(&self, error: TaskError) -> bool {
        self.0.abort(error)
    }
    fn cancel(&self) -> bool {
        self.0.cancel()
    }
    fn run_here(&self, runner: &dyn Runner) -> Option<Ran> {
        self.0.run_here(runner)
    }
    fn run_here_and_take(
        &self,
        runner: &dyn Runner,
    ) -> Option<(Ran, Option<Result<T, TaskError>>)> {
        self.0.run_here_and_take(runner)
    }
}

/// Resolves a PENDING task to `error`, dropping its closure before anyone
/// is told. False if the task had left PENDING. Shared by every job type
/// with a closure slot.
pub(crate) fn abort_pending<T, F>(
    completion: &Completion<T>,
    func: &Mutex<Option<F>>,
    error: TaskError,
) -> bool {
    let release = || drop(lock(func).take());
    completion.abort(error, release) == Abort::Won
}

/// What a task carries besides its closure and outcome: nothing for a
/// plain `submit` ([`Plain`], zero bytes, so every queued task is as small
/// as it can be), a [`CancelToken`] and a started flag for a
/// `submit_cancellable` task ([`Tokened`]), its scope for a scoped task
/// (`bulk/scope.rs`). The defaults are a task with nothing extra.
pub(crate) trait Extra: Send + Sync + 'static {
    /// The task's token, if it has one.
    fn token(&self) -> Option<&CancelToken> {
        None
    }
    /// Notes that the closure started (token tasks only).
    fn mark_ran(&self) {}
    /// Whether the closure started: tells the statistics whether a
    /// CANCELLED task was cancelled before it ran (its queue entry counts
    /// it) or cooperatively by a worker that ran it inline (counted then).
    /// Only a token task can end CANCELLED after it started.
    fn ran(&self) -> bool {
        false
    }
    /// The task's outcome was published, by whoever moved it out of
    /// PENDING (a run, an abort, a refusal): called once, after the
    /// closure has been consumed (run, or dropped unrun). A scoped task
    /// gives its scope's count back here (`bulk/scope.rs`).
    fn ended(&self) {}
}

/// A plain task: it only reaches CANCELLED unstarted.
pub(crate) struct Plain;

impl Extra for Plain {}

/// A `submit_cancellable` task's token; see the module docs.
pub(crate) struct Tokened {
    token: CancelToken,
    ran: AtomicBool,
}

impl Tokened {
    pub(crate) fn new(token: CancelToken) -> Self {
        Tokened {
            token,
            ran: AtomicBool::new(false),
        }
    }
}

impl Extra for Tokened {
    fn token(&self) -> Option<&CancelToken> {
        Some(&self.token)
    }
    fn mark_ran(&self) {
        // Before finish(): whoever sees the final phase sees this too.
        self.ran.store(true, Ordering::Relaxed);
    }
    fn ran(&self) -> bool {
        self.ran.load(Ordering::Relaxed)
    }
}

pub(crate) struct Task<T, F, X = Plain> {
    completion: Completion<T>,
    /// Taken exactly once, by the thread that moves the task out of PENDING.
    func: ClosureCell<F>,
    /// The token of a `submit_cancellable` task (nothing for a plain one).
    extra: X,
}

impl<T, F, X> Drop for Task<T, F, X> {
    fn drop(&mut self) {
        #[allow(unsafe_code)]
        // SAFETY: the flag is the closure's (see `with_extra`), and this is
        // the task's drop: nobody else reaches it.
        unsafe {
            self.func.drop_if_here(self.completion.flag())
        };
    }
}

impl<T, F> Task<T, F, Plain>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    pub(crate) fn new(func: F, pool: u32) -> Self {
        Task::with_extra(func, pool, Plain)
    }
}

impl<T, F, X> Task<T, F, X>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
    X: Extra,
{
    /// `pool` is the registry's [`id`](crate::core::registry::Registry::id),
    /// kept in the completion: a worker may run a task it waits for only if
    /// the task is its own pool's.
    pub(crate) fn with_extra(func: F, pool: u32, extra: X) -> Self {
        Task {
            // The completion's flag says whether the closure is still in
            // its cell (see `ClosureCell`).
            completion: Completion::with_flag(pool, true),
            func: ClosureCell::new(func),
            extra,
        }
    }

    /// The task's address, as its queue entries point to it.
    fn address(&self) -> usize {
        self as *const Self as *const () as usize
    }

    /// Ended CANCELLED without its closure having started.
    fn cancelled_unstarted(&self) -> bool {
        // The phase load (Acquire) orders the `ran` load after the finish
        // that published CANCELLED.
        self.completion.phase() == Phase::Cancelled && !self.extra.ran()
    }

    /// Whether a waiting worker of `runner`'s pool may run this task in
    /// place: it is that pool's and has not started.
    fn runnable_by(&self, runner: &dyn Runner) -> bool {
        self.completion.phase() == Phase::Pending && self.completion.pool() == runner.pool()
    }

    /// [`claim_and_run`](Task::claim_and_run), then finishes the task with
    /// the outcome and says what it was; `None` if it had started or
    /// ended.
    fn run_and_finish(&self, runner: &dyn Runner) -> Option<Outcome> {
        let result = self.claim_and_run(runner)?;
        let outcome = Outcome::of(&result);
        self.completion.finish(result);
        self.extra.ended();
        Some(outcome)
    }

    /// Claims the task (PENDING -> RUNNING) and runs its closure; returns
    /// the outcome, with which the caller (now its owner) must finish the
    /// task. `None` if it had already started or ended.
    fn claim_and_run(&self, runner: &dyn Runner) -> Option<Result<T, TaskError>> {
        if self.completion.claim() == Claim::Lost {
            return None;
        }
        #[allow(unsafe_code)]
        // SAFETY: this thread won the claim (PENDING -> RUNNING).
        Some(unsafe { self.run_owned(runner, true) })
    }

    /// Runs the closure of a task this thread owns and returns the
    /// outcome; with `check_terminated`, a terminated pool's task is
    /// cancelled instead (a task held alone was checked by its taker).
    ///
    /// # Safety
    ///
    /// This thread won the claim, or holds the task alone (see
    /// [`TaskRef::run_alone`]): either way it may take the closure.
    #[allow(unsafe_code)]
    #[inline]
    unsafe fn run_owned(
        &self,
        runner: &dyn Runner,
        check_terminated: bool,
    ) -> Result<T, TaskError> {
        self.extra.mark_ran();
        // SAFETY: the caller's promise.
        let func = unsafe { self.func.take(self.completion.flag()) };
        // A worker may have taken this task off a queue just before the
        // pool was terminated (so terminate() did not find it to cancel).
        // Checked after the claim, ordered against terminate()'s store:
        // once terminate() returns, every task that will ever run is
        // already RUNNING; any other is cancelled without running. (A task
        // held alone is seen by no other thread, terminate() included: it
        // counts as claimed from the moment its entry left the deque, and
        // its taker checks after that: `WorkerCtx::run_alone`.)
        if check_terminated && runner.terminated() {
            crate::core::panics::drop_reporting(runner.pool(), func);
            return Err(TaskError::Cancelled);
        }
        let Some(func) = func else {
            // Unreachable: only the owner takes it.
            return Err(TaskError::Cancelled);
        };
        let result = catch_unwind(AssertUnwindSafe(func)).map_err(TaskError::Panicked);
        if result.is_ok() && self.extra.token().is_some_and(CancelToken::is_cancelled) {
            // Cancellation was requested before the closure returned: the
            // handle says cancelled, and the value is dropped here (a
            // panic in its Drop must not keep the task RUNNING).
            crate::core::panics::drop_reporting(self.completion.pool(), result);
            return Err(TaskError::Cancelled);
        }
        result
    }
}

impl<T, F, X> Job for Task<T, F, X>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
    X: Extra,
{
    fn run(self: Arc<Self>, runner: &dyn Runner) -> Outcome {
        self.run_shared(runner)
    }

    fn discard(&self) -> bool {
        Job::abort(self, TaskError::Cancelled) || self.cancelled_unstarted()
    }

    fn into_job_ref(self: Arc<Self>) -> JobRef {
        JobRef::new(self)
    }

    fn abort(&self, error: TaskError) -> bool {
        #[allow(unsafe_code)]
        // SAFETY: `abort` calls the release only on the thread that won the
        // move out of PENDING (Abort::Won).
        let release = || drop(unsafe { self.func.take(self.completion.flag()) });
        let won = self.completion.abort(error, release) == Abort::Won;
        if won {
            self.extra.ended();
        }
        won
    }
}

impl<T, F, X> RunShared for Task<T, F, X>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
    X: Extra,
{
    fn run_shared(&self, runner: &dyn Runner) -> Outcome {
        match self.run_and_finish(runner) {
            Some(outcome) => outcome,
            None if self.cancelled_unstarted() => Outcome::Cancelled,
            None => Outcome::Skipped,
        }
    }
}

impl<T, F, X> TaskRef<T> for Task<T, F, X>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
    X: Extra,
{
    fn completion(&self) -> &Completion<T> {
        &self.completion
    }

    fn abort(&self, error: TaskError) -> bool {
        Job::abort(self, error)
    }

    /// Not started: it never will. Running with a token: the token is set
    /// and the task ends CANCELLED when its closure returns, but this
    /// returns false (it had started), as Python's `Future.cancel` does
    /// (`AsyncResult::cancel` still says true if it has ended cancelled
    /// by the time it looks).
    fn cancel(&self) -> bool {
        let aborted = Job::abort(self, TaskError::Cancelled);
        if let Some(token) = self.extra.token() {
            if aborted || self.completion.phase() == Phase::Running {
                token.cancel();
            }
        }
        aborted
    }

    fn run_here(&self, runner: &dyn Runner) -> Option<Ran> {
        if !self.runnable_by(runner) {
            return None;
        }
        runner.started_here();
        let outcome = self.run_and_finish(runner).unwrap_or(Outcome::Skipped);
        Some(Ran {
            outcome,
            entry: self.address(),
        })
    }

    fn run_here_and_take(
        &self,
        runner: &dyn Runner,
    ) -> Option<(Ran, Option<Result<T, TaskError>>)> {
        if !self.runnable_by(runner) {
            return None;
        }
        runner.started_here();
        let (outcome, taken) = match self.claim_and_run(runner) {
            Some(result) => {
                let outcome = Outcome::of(&result);
                let taken = self.completion.finish_and_take(result);
                self.extra.ended();
                (outcome, taken)
            }
            None => (Outcome::Skipped, None),
        };
        let ran = Ran {
            outcome,
            entry: self.address(),
        };
        Some((ran, taken))
    }

    #[allow(unsafe_code)]
    unsafe fn run_alone(&self, runner: &dyn Runner) -> Option<Result<T, TaskError>> {
        // SAFETY: the caller's promise: nobody else can reach the task and
        // nobody moved it out of PENDING, so this thread owns the closure
        // as the winner of a claim would.
        let result = unsafe { self.run_owned(runner, false) };
        self.extra.ended();
        Some(result)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::ThreadPool;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// A worker waiting on a task it queued runs that task, whether it is on
    /// top of its deque (taken back) or under a later one (run in place),
    /// and never runs the later, unrelated task first: that one could be
    /// waiting for something only the caller does after its `get` returns.
    #[test]
    fn waiting_worker_runs_the_awaited_task_and_not_the_one_above_it() {
        let pool = Arc::new(ThreadPool::new(1).unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let (p, l) = (pool.clone(), log.clone());
        let outer = pool.submit(move || {
            let push = |name: &'static str| {
                let l = l.clone();
                move || l.lock().unwrap().push(name)
            };
            let under = p.submit(push("under"));
            let top = p.submit(push("top"));
            under.get_timeout(Duration::from_secs(10)).unwrap();
            l.lock().unwrap().push("under collected");
            top.get_timeout(Duration::from_secs(10)).unwrap();
            let last = p.submit(push("last"));
            last.get_timeout(Duration::from_secs(10)).unwrap();
            // Entries left behind are finished tasks: running them again
            // must be a no-op, which the log below would show.
        });
        outer.get_timeout(Duration::from_secs(10)).unwrap();
        pool.submit(|| ())
            .get_timeout(Duration::from_secs(10))
            .unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            ["under", "under collected", "top", "last"]
        );
    }

    /// `get` on a worker that runs the task itself takes the value straight
    /// from the run (`Completion::finish_and_take`); a done-callback added
    /// before must still see the value, and the handle must end published.
    #[test]
    fn get_running_its_own_task_still_runs_callbacks_with_the_value() {
        let pool = Arc::new(ThreadPool::new(1).unwrap());
        let p = pool.clone();
        let outer = pool.submit(move || {
            let (tx, rx) = std::sync::mpsc::channel();
            let with_callback = p.submit(|| 7);
            with_callback.add_done_callback(move |r| tx.send(r.as_ref().ok().copied()).unwrap());
            let plain = p.submit(|| 8);
            // The one on top first (taken back), then the one under it.
            let b = plain.get().unwrap();
            let a = with_callback.get().unwrap();
            (a, b, rx.recv_timeout(Duration::from_secs(10)).unwrap())
        });
        assert_eq!(
            outer.get_timeout(Duration::from_secs(10)),
            Ok((7, 8, Some(7)))
        );
    }

    /// The closure is owned by whoever wins the move out of PENDING: racing
    /// cancels against workers starting the same tasks, every closure must
    /// be either run or cancelled, never both, and dropped exactly once.
    #[test]
    fn closure_is_run_or_dropped_exactly_once_when_cancel_races_the_start() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        struct Counted(Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let pool = ThreadPool::new(2).unwrap();
        // Miri runs every step interpreted (and checks the closure cell's
        // exclusive access): fewer rounds, same races.
        let (rounds, tasks) = if cfg!(miri) { (3, 8) } else { (100, 64) };
        for _ in 0..rounds {
            let drops = Arc::new(AtomicUsize::new(0));
            let runs = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    let guard = Counted(drops.clone());
                    let runs = runs.clone();
                    pool.submit(move || {
                        let _guard = guard;
                        runs.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            let cancelled = handles.iter().rev().filter(|h| h.cancel()).count();
            for h in &handles {
                assert!(h.wait_timeout(Duration::from_secs(10)));
            }
            let ran = handles
                .into_iter()
                .filter(|h| h.successful() == Some(true))
                .count();
            assert_eq!(ran + cancelled, tasks);
            assert_eq!(runs.load(Ordering::SeqCst), ran);
            assert_eq!(drops.load(Ordering::SeqCst), tasks);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod size_tests {
    use super::*;

    /// Memory per queued task (W6): the handle is one pointer to a trait
    /// object, whatever kind of task it holds.
    #[test]
    fn a_handle_is_two_words() {
        let words = std::mem::size_of::<crate::AsyncResult<u64>>() / std::mem::size_of::<usize>();
        assert_eq!(words, 2);
    }

    fn size_of_task<F: FnOnce() -> u64 + Send + 'static, X: Extra>(_: &F) -> usize {
        std::mem::size_of::<Task<u64, F, X>>()
    }

    /// Memory per queued task (W6 in benches/suite.rs): a plain task does
    /// not pay for the token field a cancellable one needs.
    #[test]
    fn a_plain_task_carries_no_token_field() {
        let i = 7u64;
        let f = move || i;
        let plain = size_of_task::<_, Plain>(&f);
        let tokened = size_of_task::<_, Tokened>(&f);
        eprintln!("Task<u64, 8-byte closure>: plain {plain} B, with token {tokened} B");
        assert!(plain < tokened, "plain {plain} B, tokened {tokened} B");
        // With its 8-byte count, 40 bytes: a block of the 40-byte class
        // (`core/recycle.rs`), one 48-byte malloc chunk (the closure's
        // presence and the value's tag sit in the header's padding, the
        // slot is made on first watch: `core/completion.rs`). Grown past
        // 40, it takes the next malloc chunk (W6 +16 B).
        #[cfg(all(target_pointer_width = "64", target_os = "linux"))]
        assert!(plain <= 32, "plain task grew to {plain} B");
    }
}

/// A plain or token task in its recycled block, seen by a handle and by a
/// queue entry, one reference each: whichever order they end in, the task
/// is dropped once, when the last goes, with its closure and value.
#[cfg(all(test, not(loom)))]
mod recycled_tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct TestRunner;
    impl Runner for TestRunner {
        fn pool(&self) -> u32 {
            0
        }
        fn terminated(&self) -> bool {
            false
        }
        fn started_here(&self) {}
    }

    /// Counts its drops.
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Drops of the closure's capture, of the value, and runs.
    #[derive(Default)]
    struct Tally {
        closure: Arc<AtomicUsize>,
        value: Arc<AtomicUsize>,
        runs: Arc<AtomicUsize>,
    }

    impl Tally {
        fn get(&self) -> (usize, usize, usize) {
            let load = |c: &Arc<AtomicUsize>| c.load(Ordering::SeqCst);
            (load(&self.closure), load(&self.value), load(&self.runs))
        }
    }

    type Queued = (
        TaskPtr<Counted>,
        JobRef,
        Recycled<Task<Counted, Box<dyn FnOnce() -> Counted + Send>>>,
    );

    /// A task as `Registry::enqueue_reserved` makes it, plus a third
    /// reference to read the count with (the caller drops it first).
    fn queued(tally: &Tally) -> Queued {
        let capture = Counted(tally.closure.clone());
        let (value, runs) = (tally.value.clone(), tally.runs.clone());
        let func: Box<dyn FnOnce() -> Counted + Send> = Box::new(move || {
            let _capture = capture;
            runs.fetch_add(1, Ordering::SeqCst);
            Counted(value)
        });
        let task = Recycled::new(Task::new(func, 0));
        let handle = TaskPtr::recycled(task.clone());
        let entry = JobRef::recycled(task.clone());
        assert_eq!(Recycled::count(&task), 3);
        (handle, entry, task)
    }

    #[test]
    fn run_then_drop_the_handle() {
        let tally = Tally::default();
        let (handle, entry, task) = queued(&tally);
        // The block goes back to this thread's list once, at the end.
        let kept = crate::core::recycle::kept_total();
        assert_eq!(entry.addr(), &*task as *const _ as *const () as usize);
        assert_eq!(entry.run(&TestRunner), Outcome::Completed);
        assert_eq!(Recycled::count(&task), 2);
        drop(task);
        assert_eq!(tally.get(), (1, 0, 1));
        assert_eq!(handle.completion().phase(), Phase::Ok);
        drop(handle);
        assert_eq!(tally.get(), (1, 1, 1));
        assert_eq!(crate::core::recycle::kept_total(), kept + 1);
    }

    #[test]
    fn drop_the_handle_then_run() {
        let tally = Tally::default();
        let (handle, entry, task) = queued(&tally);
        // The block goes back to this thread's list once, at the end.
        let kept = crate::core::recycle::kept_total();
        drop(handle);
        assert_eq!(Recycled::count(&task), 2);
        drop(task);
        assert_eq!(tally.get(), (0, 0, 0));
        assert_eq!(entry.run(&TestRunner), Outcome::Completed);
        assert_eq!(tally.get(), (1, 1, 1));
        assert_eq!(crate::core::recycle::kept_total(), kept + 1);
    }

    #[test]
    fn cancelled_through_the_handle_then_run_or_discarded() {
        for discard in [false, true] {
            let tally = Tally::default();
            let (handle, entry, task) = queued(&tally);
            let kept = crate::core::recycle::kept_total();
            drop(task);
            assert!(handle.cancel());
            assert_eq!(tally.get(), (1, 0, 0));
            if discard {
                assert!(entry.discard());
                drop(entry);
            } else {
                assert_eq!(entry.run(&TestRunner), Outcome::Cancelled);
            }
            assert_eq!(handle.completion().phase(), Phase::Cancelled);
            assert_eq!(tally.get(), (1, 0, 0));
            drop(handle);
            assert_eq!(tally.get(), (1, 0, 0));
            assert_eq!(crate::core::recycle::kept_total(), kept + 1);
        }
    }

    #[test]
    fn entry_dropped_unrun_then_the_handle() {
        let tally = Tally::default();
        let (handle, entry, task) = queued(&tally);
        // The block goes back to this thread's list once, at the end.
        let kept = crate::core::recycle::kept_total();
        drop(task);
        assert!(entry.abort(TaskError::PoolClosed));
        drop(entry);
        assert_eq!(tally.get(), (1, 0, 0));
        assert!(matches!(
            handle.completion().try_take(),
            Some(Err(TaskError::PoolClosed))
        ));
        drop(handle);
        assert_eq!(tally.get(), (1, 0, 0));
        assert_eq!(crate::core::recycle::kept_total(), kept + 1);
    }

    /// Nobody runs or aborts the task: its closure is dropped with it,
    /// once, by whichever reference goes last.
    #[test]
    fn never_run_nor_aborted_the_closure_goes_with_the_task() {
        for handle_first in [false, true] {
            let tally = Tally::default();
            let (handle, entry, task) = queued(&tally);
            drop(task);
            if handle_first {
                drop(handle);
                assert_eq!(tally.get(), (0, 0, 0));
                drop(entry);
            } else {
                drop(entry);
                assert_eq!(tally.get(), (0, 0, 0));
                drop(handle);
            }
            assert_eq!(tally.get(), (1, 0, 0));
        }
    }

    /// The handle and the entry end on different threads from the one
    /// that made the task, in both orders.
    #[test]
    fn handle_and_entry_end_on_other_threads() {
        for handle_first in [false, true] {
            let tally = Tally::default();
            let (handle, entry, task) = queued(&tally);
            drop(task);
            let run = move || assert_eq!(entry.run(&TestRunner), Outcome::Completed);
            if handle_first {
                std::thread::spawn(move || drop(handle)).join().unwrap();
                std::thread::spawn(run).join().unwrap();
            } else {
                std::thread::spawn(run).join().unwrap();
                assert_eq!(tally.get(), (1, 0, 1));
                std::thread::spawn(move || drop(handle)).join().unwrap();
            }
            assert_eq!(tally.get(), (1, 1, 1));
        }
    }

    /// A pool terminated with tasks still queued: each queued task ends
    /// cancelled, its closure dropped once and never run, whether its
    /// handle is dropped before the pool or after.
    #[test]
    fn pool_terminated_with_queued_tasks() {
        use crate::ThreadPool;
        use std::time::Duration;
        let pool = ThreadPool::new(1).unwrap();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
        let blocker = pool.submit(move || {
            started_tx.send(()).unwrap();
            let _ = gate_rx.recv_timeout(Duration::from_secs(10));
        });
        started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let tally = Tally::default();
        let mut handles: Vec<_> = (0..8)
            .map(|_| {
                let capture = Counted(tally.closure.clone());
                let (value, runs) = (tally.value.clone(), tally.runs.clone());
                pool.submit(move || {
                    let _capture = capture;
                    runs.fetch_add(1, Ordering::SeqCst);
                    Counted(value)
                })
            })
            .collect();
        drop(handles.split_off(4));
        pool.terminate();
        gate_tx.send(()).unwrap();
        assert!(blocker.wait_timeout(Duration::from_secs(10)));
        for handle in &handles {
            assert!(handle.wait_timeout(Duration::from_secs(10)));
            assert!(handle.cancelled());
        }
        drop(pool);
        drop(handles);
        assert_eq!(tally.get(), (8, 0, 0));
    }
}
