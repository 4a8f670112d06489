//! A queued unit of work. A task is one allocation, `Arc<Task<T, F>>`, seen
//! two ways: as a [`JobRef`] in the scheduler's deques (type-erased, knows
//! how to run or cancel itself) and as a [`TaskRef<T>`] behind its
//! [`AsyncResult`](crate::AsyncResult). Whoever moves the task out of
//! PENDING (the runner, a canceller, a refusal) owns the closure.
//!
//! A task may carry a [`CancelToken`] (`submit_cancellable`): cancelling
//! its handle while it runs sets the token, and a task whose token is set
//! when its closure returns ends CANCELLED (see `cancel.rs`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::cancel::CancelToken;
use crate::error::TaskError;
use crate::handle::{Completion, TaskRef, CANCELLED, FAILED, PENDING, RUNNING};
use crate::stats::Outcome;
use crate::sync::{lock, AtomicBool, Mutex, Ordering};

/// What the scheduler sees of a task.
pub(crate) trait Job: Send + Sync {
    /// Runs the task unless it was already started or cancelled.
    fn run(self: Arc<Self>);
    /// Resolves a task that has not started to `error` (Cancelled or
    /// PoolClosed); returns false if it had started or was already over.
    fn abort(&self, error: TaskError) -> bool;
    /// [`run`](Job::run), telling the pool's statistics what became of
    /// this entry. The default suits jobs that always run to completion.
    fn run_counted(self: Arc<Self>) -> Outcome {
        self.run();
        Outcome::Completed
    }
    /// Cancels the task if it has not started (terminate, a dropped
    /// timer). True if this entry stands for a task that ended cancelled
    /// without running (now or earlier, e.g. through its handle): the
    /// caller counts it.
    fn discard(&self) -> bool {
        self.abort(TaskError::Cancelled)
    }
}

/// A queued job, as the deques hold it.
pub(crate) type JobRef = Arc<dyn Job>;

/// Resolves a PENDING task to `error` (CANCELLED for `Cancelled`, else
/// FAILED), dropping its closure before anyone is told. False if the task
/// had left PENDING. Shared by every job type with a closure slot.
pub(crate) fn abort_pending<T, F>(
    completion: &Completion<T>,
    func: &Mutex<Option<F>>,
    error: TaskError,
) -> bool {
    let phase = if matches!(error, TaskError::Cancelled) {
        CANCELLED
    } else {
        FAILED
    };
    if !completion.transition(PENDING, phase) {
        return false;
    }
    // Release what the closure captured before anyone is told. A captured
    // value whose Drop panics must not keep the handle from resolving (nor
    // unwind out of cancel() or terminate()), so the panic is contained.
    let func = lock(func).take();
    let _ = catch_unwind(AssertUnwindSafe(move || drop(func)));
    completion.publish(Err(error));
    true
}

pub(crate) struct Task<T, F> {
    completion: Completion<T>,
    /// Taken exactly once, by the thread that moves the task out of PENDING.
    func: Mutex<Option<F>>,
    /// The registry (pool) the task was queued on, as an address: a worker
    /// may run a task it waits for only if the task is its own pool's.
    pool: usize,
    /// Set for `submit_cancellable` tasks; see the module docs.
    token: Option<CancelToken>,
    /// A token task's closure was started. Tells the statistics whether a
    /// CANCELLED task was cancelled before it ran (its queue entry counts
    /// it) or cooperatively by a worker that ran it inline (counted then).
    /// Plain tasks only reach CANCELLED unstarted, so only token tasks set it.
    ran: AtomicBool,
}

impl<T, F> Task<T, F>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    pub(crate) fn with_token(func: F, pool: usize, token: Option<CancelToken>) -> Self {
        Task {
            completion: Completion::new(),
            func: Mutex::new(Some(func)),
            pool,
            token,
            ran: AtomicBool::new(false),
        }
    }

    /// Ended CANCELLED without its closure having started.
    fn cancelled_unstarted(&self) -> bool {
        // The phase load (Acquire) orders the `ran` load after the finish
        // that published CANCELLED.
        self.completion.phase() == CANCELLED && !self.ran.load(Ordering::Relaxed)
    }

    /// Runs the closure if this thread wins the task; `None` if it had
    /// already started or ended.
    fn execute(&self) -> Option<Outcome> {
        if !self.completion.transition(PENDING, RUNNING) {
            return None;
        }
        if self.token.is_some() {
            // Before finish(): whoever sees the final phase sees this too.
            self.ran.store(true, Ordering::Relaxed);
        }
        let func = lock(&self.func).take();
        // A worker may have taken this task off a queue just before the
        // pool was terminated (so terminate() did not find it to cancel).
        // Checked after the claim, ordered against terminate()'s store:
        // once terminate() returns, every task that will ever run is
        // already RUNNING; any other is cancelled without running.
        if crate::worker::pool_terminated_here(self.pool) {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(func)));
            self.completion.finish(Err(TaskError::Cancelled));
            return Some(Outcome::Cancelled);
        }
        let Some(func) = func else {
            // Unreachable: only the PENDING -> RUNNING winner takes it.
            self.completion.finish(Err(TaskError::Cancelled));
            return Some(Outcome::Cancelled);
        };
        let mut result = catch_unwind(AssertUnwindSafe(func)).map_err(TaskError::Panicked);
        if result.is_ok() && self.token.as_ref().is_some_and(CancelToken::is_cancelled) {
            // Cancellation was requested before the closure returned: the
            // handle says cancelled, and the value is dropped here.
            result = Err(TaskError::Cancelled);
        }
        let outcome = match &result {
            Ok(_) => Outcome::Completed,
            Err(TaskError::Cancelled) => Outcome::Cancelled,
            Err(_) => Outcome::Panicked,
        };
        self.completion.finish(result);
        Some(outcome)
    }
}

impl<T, F> Job for Task<T, F>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Arc<Self>) {
        self.execute();
    }

    fn run_counted(self: Arc<Self>) -> Outcome {
        match self.execute() {
            Some(outcome) => outcome,
            None if self.cancelled_unstarted() => Outcome::Cancelled,
            None => Outcome::Skipped,
        }
    }

    fn discard(&self) -> bool {
        Job::abort(self, TaskError::Cancelled) || self.cancelled_unstarted()
    }

    fn abort(&self, error: TaskError) -> bool {
        abort_pending(&self.completion, &self.func, error)
    }
}

impl<T, F> TaskRef<T> for Task<T, F>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
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
        if let Some(token) = &self.token {
            if aborted || self.completion.phase() == RUNNING {
                token.cancel();
            }
        }
        aborted
    }

    fn run_here(&self) -> bool {
        if self.completion.phase() != PENDING {
            return false;
        }
        crate::worker::run_inline(self.pool, || self.execute())
    }
}
