//! Delayed and periodic tasks: [`ThreadPool::submit_after`] and
//! [`ThreadPool::submit_periodic`], built on the pool's timer thread
//! (`timer.rs`), which only queues them: they run on the workers.
//!
//! A timer entry owns a [`Fire`]: at the deadline it queues its task on the
//! pool; dropped unfired (its handle was cancelled, or the pool closed and
//! shut the timer down) it cancels the task, so no handle waits forever.
//!
//! A periodic task is one allocation that goes around: timer entry, queue
//! entry, run, new timer entry. Its handle's state machine is the plain
//! task's, reused per run: PENDING between runs, RUNNING during one, back
//! to PENDING after (the `RUNNING -> PENDING` step is the only addition).
//! So cancelling between runs is the ordinary "cancel a task that has not
//! started" (it never runs again, its closure is dropped at once), and the
//! next run is scheduled only after the current one returned: runs never
//! overlap. Cancelling during a run sets a stop flag that the run's end
//! checks (with fences on both sides, so one of the two sides sees the
//! other) and the handle resolves to `Cancelled` then.

use std::ops::ControlFlow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::core::completion::Completion;
use crate::core::counters::Outcome;
use crate::core::job::{abort_pending, Job, JobRef, Task};
use crate::core::job::{Runner, TaskRef};
use crate::core::registry::Registry;
use crate::core::state::{Claim, Phase};
use crate::core::sync::{fence, lock, AtomicBool, Mutex, Ordering};
use crate::error::TaskError;
use crate::handle::AsyncResult;
use crate::pool::ThreadPool;
use crate::timers::thread::TimerId;

/// The deadline `delay` from now; a delay too large to represent is "so
/// far away it never comes" (about a century), not an overflow panic.
fn deadline_after(delay: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(delay)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// Queues its job at the deadline; cancels it if dropped unfired.
struct Fire {
    job: Option<JobRef>,
    registry: Weak<Registry>,
}

impl Fire {
    fn fire(mut self) {
        let Some(job) = self.job.take() else {
            return;
        };
        match self.registry.upgrade() {
            Some(registry) => {
                if registry.push(job.clone()) {
                    // The pool closed as we fired: withdraw the task. The
                    // entry stays queued, and is counted when it is taken.
                    job.discard();
                }
            }
            None => {
                job.discard();
            }
        }
    }
}

impl Drop for Fire {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            if job.discard() {
                if let Some(registry) = self.registry.upgrade() {
                    registry
                        .cancelled_elsewhere
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    }
}

/// Puts `job` on `registry`'s timer for `deadline`. Returns the entry's id,
/// or `None` if the timer is shut down (the job is then cancelled) or
/// cannot be started (the job then fails with that error).
fn arm(registry: &Arc<Registry>, deadline: Instant, job: JobRef) -> Option<TimerId> {
    let timer = match registry.timer() {
        Ok(timer) => timer,
        Err(e) => {
            let msg = format!("futurepool: cannot start the timer thread: {e}");
            job.abort(TaskError::Panicked(Box::new(msg)));
            return None;
        }
    };
    let fire = Fire {
        job: Some(job),
        registry: Arc::downgrade(registry),
    };
    timer.schedule(deadline, Box::new(move || fire.fire()))
}

/// Removes the entry recorded in `slot` from `registry`'s timer.
fn disarm(registry: &Weak<Registry>, slot: &Mutex<Option<TimerId>>) {
    let id = lock(slot).take();
    if let (Some(id), Some(registry)) = (id, registry.upgrade()) {
        if let Some(timer) = registry.timer_if_started() {
            timer.cancel(id);
        }
    }
}

/// Records a new timer entry for a task; if the task was cancelled
/// meanwhile (its canceller found no entry to remove), removes it now.
fn record(registry: &Weak<Registry>, slot: &Mutex<Option<TimerId>>, id: TimerId, cancelled: bool) {
    *lock(slot) = Some(id);
    if cancelled {
        disarm(registry, slot);
    }
}

/// The handle side of a delayed task: the task, plus its timer entry so
/// that cancelling removes it (and its closure) at once.
struct Delayed<T, F> {
    task: Arc<Task<T, F>>,
    timer_id: Mutex<Option<TimerId>>,
    registry: Weak<Registry>,
}

impl<T, F> TaskRef<T> for Delayed<T, F>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn completion(&self) -> &Completion<T> {
        TaskRef::completion(&*self.task)
    }

    fn abort(&self, error: TaskError) -> bool {
        Job::abort(&*self.task, error)
    }

    fn cancel(&self) -> bool {
        let cancelled = TaskRef::cancel(&*self.task);
        if cancelled {
            disarm(&self.registry, &self.timer_id);
        }
        cancelled
    }
    // No `run_here`: never before its time; once queued, a waiting worker
    // finds it among the queued work anyway.
}

/// A task that runs every period until it breaks, panics or is cancelled.
struct Periodic<T, F> {
    completion: Completion<T>,
    /// Taken (dropped) when the task ends.
    func: Mutex<Option<F>>,
    period: Duration,
    /// The deadline the current or next run was scheduled for.
    next: Mutex<Instant>,
    /// Cancellation requested while a run was in progress.
    stop: AtomicBool,
    timer_id: Mutex<Option<TimerId>>,
    registry: Weak<Registry>,
}

impl<T, F> Periodic<T, F>
where
    F: FnMut() -> ControlFlow<T> + Send + 'static,
    T: Send + 'static,
{
    /// Ends a RUNNING task: drops the closure first, then publishes.
    fn end(&self, result: Result<T, TaskError>) -> Outcome {
        let func = lock(&self.func).take();
        // A closure that panics on drop must not keep the task RUNNING.
        crate::core::panics::drop_reporting(self.completion.pool(), func);
        let outcome = match &result {
            Ok(_) => Outcome::Completed,
            Err(TaskError::Cancelled) => Outcome::Cancelled,
            Err(_) => Outcome::Panicked,
        };
        self.completion.finish(result);
        outcome
    }

    /// Queues the next run: through the timer, or straight onto the pool
    /// for a zero period (run again as soon as other queued work allows).
    fn schedule(self: &Arc<Self>, deadline: Instant) {
        let Some(registry) = self.registry.upgrade() else {
            self.discard();
            return;
        };
        *lock(&self.next) = deadline;
        let job: JobRef = self.clone();
        if self.period.is_zero() {
            if registry.push_behind(job.clone()) {
                job.discard();
            }
            return;
        }
        if let Some(id) = arm(&registry, deadline, job) {
            let cancelled = self.completion.phase() == Phase::Cancelled;
            record(&self.registry, &self.timer_id, id, cancelled);
        }
    }
}

impl<T, F> Job for Periodic<T, F>
where
    F: FnMut() -> ControlFlow<T> + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Arc<Self>, _runner: &dyn Runner) -> Outcome {
        if self.completion.claim() == Claim::Lost {
            // Only one entry of a periodic task exists at a time, so a
            // cancelled one is counted here, once.
            return if self.completion.phase() == Phase::Cancelled {
                Outcome::Cancelled
            } else {
                Outcome::Skipped
            };
        }
        let ran = {
            // Only the RUNNING owner touches the closure, so holding its
            // lock while it runs blocks nobody.
            let mut func = lock(&self.func);
            match func.as_mut() {
                Some(f) => catch_unwind(AssertUnwindSafe(f)),
                None => Ok(ControlFlow::Continue(())),
            }
        };
        match ran {
            Err(payload) => self.end(Err(TaskError::Panicked(payload))),
            Ok(flow) if self.stop.load(Ordering::SeqCst) => {
                crate::core::panics::drop_reporting(self.completion.pool(), flow);
                self.end(Err(TaskError::Cancelled))
            }
            Ok(ControlFlow::Break(value)) => self.end(Ok(value)),
            Ok(ControlFlow::Continue(())) => {
                self.completion.pause();
                // Pairs with the fence in `cancel`: either we see the stop
                // flag, or the canceller sees PENDING and cancels.
                fence(Ordering::SeqCst);
                if self.stop.load(Ordering::SeqCst) {
                    // Cancelled by us or by the canceller just now: either
                    // way no entry exists, so this run counts it.
                    self.discard();
                    return Outcome::Cancelled;
                }
                let now = Instant::now();
                let mut next = *lock(&self.next) + self.period;
                if next <= now {
                    // The run overran its period: skip the missed ticks
                    // rather than run back to back to catch up.
                    next = now + self.period;
                }
                self.schedule(next);
                Outcome::Completed
            }
        }
    }

    fn abort(&self, error: TaskError) -> bool {
        abort_pending(&self.completion, &self.func, error)
    }

    fn discard(&self) -> bool {
        Job::abort(self, TaskError::Cancelled) || self.completion.phase() == Phase::Cancelled
    }
}

impl<T, F> TaskRef<T> for Periodic<T, F>
where
    F: FnMut() -> ControlFlow<T> + Send + 'static,
    T: Send + 'static,
{
    fn completion(&self) -> &Completion<T> {
        &self.completion
    }

    fn abort(&self, error: TaskError) -> bool {
        Job::abort(self, error)
    }

    /// Between runs: no run starts again, the closure is dropped now, and
    /// true. During a run: the handle resolves to `Cancelled` when the run
    /// returns, and false (it is running), as for a token task.
    fn cancel(&self) -> bool {
        self.stop.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let cancelled = Job::abort(self, TaskError::Cancelled);
        if cancelled {
            disarm(&self.registry, &self.timer_id);
        }
        cancelled
    }
}

pub(crate) fn submit_after<F, T>(pool: &ThreadPool, delay: Duration, f: F) -> AsyncResult<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let registry = pool.registry();
    if registry.is_closed() {
        // Dropped unrun; its Drop must not make the call panic.
        crate::core::panics::drop_reporting(registry.id(), f);
        return AsyncResult::failed(TaskError::PoolClosed);
    }
    let task = Arc::new(Task::new(f, registry.id()));
    let delayed = Arc::new(Delayed {
        task: task.clone(),
        timer_id: Mutex::new(None),
        registry: Arc::downgrade(registry),
    });
    let handle = AsyncResult::from_task(delayed.clone());
    if let Some(id) = arm(registry, deadline_after(delay), task) {
        record(&delayed.registry, &delayed.timer_id, id, handle.cancelled());
    }
    handle
}

pub(crate) fn submit_periodic<F, T>(pool: &ThreadPool, period: Duration, f: F) -> AsyncResult<T>
where
    F: FnMut() -> ControlFlow<T> + Send + 'static,
    T: Send + 'static,
{
    let registry = pool.registry();
    if registry.is_closed() {
        // Dropped unrun; its Drop must not make the call panic.
        crate::core::panics::drop_reporting(registry.id(), f);
        return AsyncResult::failed(TaskError::PoolClosed);
    }
    let first = deadline_after(period);
    let periodic = Arc::new(Periodic {
        completion: Completion::new_in(registry.id()),
        func: Mutex::new(Some(f)),
        period,
        next: Mutex::new(first),
        stop: AtomicBool::new(false),
        timer_id: Mutex::new(None),
        registry: Arc::downgrade(registry),
    });
    let handle = AsyncResult::from_task(periodic.clone());
    periodic.schedule(first);
    handle
}
