//! A queued unit of work. A task is one allocation, `Arc<Task<T, F>>`, seen
//! two ways: as a [`JobRef`] in the scheduler's deques (type-erased, knows
//! how to run or cancel itself) and as a [`TaskRef<T>`] behind its
//! [`AsyncResult`](crate::AsyncResult). Whoever moves the task out of
//! PENDING (the runner, a canceller, a refusal) owns the closure.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::error::TaskError;
use crate::handle::{Completion, TaskRef, CANCELLED, FAILED, PENDING, RUNNING};
use crate::sync::{lock, Mutex};

/// What the scheduler sees of a task.
pub(crate) trait Job: Send + Sync {
    /// Runs the task unless it was already started or cancelled.
    fn run(self: Arc<Self>);
    /// Resolves a task that has not started to `error` (Cancelled or
    /// PoolClosed); returns false if it had started or was already over.
    fn abort(&self, error: TaskError) -> bool;
}

/// A queued job, as the deques hold it.
pub(crate) type JobRef = Arc<dyn Job>;

pub(crate) struct Task<T, F> {
    completion: Completion<T>,
    /// Taken exactly once, by the thread that moves the task out of PENDING.
    func: Mutex<Option<F>>,
    /// The registry (pool) the task was queued on, as an address: a worker
    /// may run a task it waits for only if the task is its own pool's.
    pool: usize,
}

impl<T, F> Task<T, F>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    pub(crate) fn new(func: F, pool: usize) -> Self {
        Task {
            completion: Completion::new(),
            func: Mutex::new(Some(func)),
            pool,
        }
    }

    fn execute(&self) -> bool {
        if !self.completion.transition(PENDING, RUNNING) {
            return false;
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
            return true;
        }
        let Some(func) = func else {
            // Unreachable: only the PENDING -> RUNNING winner takes it.
            self.completion.finish(Err(TaskError::Cancelled));
            return true;
        };
        let result = catch_unwind(AssertUnwindSafe(func)).map_err(TaskError::Panicked);
        self.completion.finish(result);
        true
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

    fn abort(&self, error: TaskError) -> bool {
        let phase = if matches!(error, TaskError::Cancelled) {
            CANCELLED
        } else {
            FAILED
        };
        if !self.completion.transition(PENDING, phase) {
            return false;
        }
        // Release what the closure captured before anyone is told. A
        // captured value whose Drop panics must not keep the handle from
        // resolving (nor unwind out of cancel() or terminate()), so the
        // panic is contained here.
        let func = lock(&self.func).take();
        let _ = catch_unwind(AssertUnwindSafe(move || drop(func)));
        self.completion.publish(Err(error));
        true
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

    fn run_here(&self) -> bool {
        if self.completion.phase() != PENDING || !crate::worker::on_pool(self.pool) {
            return false;
        }
        self.execute()
    }
}
