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

use crate::error::TaskError;
use crate::handle::{AsyncResult, Completion, TaskRef, CANCELLED, PENDING, RUNNING};
use crate::job::{abort_pending, Job, JobRef, Task};
use crate::pool::ThreadPool;
use crate::registry::Registry;
use crate::stats::Outcome;
use crate::sync::{fence, lock, AtomicBool, Mutex, Ordering};
use crate::timer::TimerId;

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

    fn run_here(&self) -> bool {
        // Never before its time; once queued, a waiting worker finds it
        // among the queued work anyway.
        false
    }
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
        crate::panics::drop_reporting(self.completion.pool(), func);
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
            let cancelled = self.completion.phase() == CANCELLED;
            record(&self.registry, &self.timer_id, id, cancelled);
        }
    }
}

impl<T, F> Job for Periodic<T, F>
where
    F: FnMut() -> ControlFlow<T> + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Arc<Self>) {
        self.run_counted();
    }

    fn run_counted(self: Arc<Self>) -> Outcome {
        if !self.completion.transition(PENDING, RUNNING) {
            // Only one entry of a periodic task exists at a time, so a
            // cancelled one is counted here, once.
            return if self.completion.phase() == CANCELLED {
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
                crate::panics::drop_reporting(self.completion.pool(), flow);
                self.end(Err(TaskError::Cancelled))
            }
            Ok(ControlFlow::Break(value)) => self.end(Ok(value)),
            Ok(ControlFlow::Continue(())) => {
                let moved = self.completion.transition(RUNNING, PENDING);
                debug_assert!(moved, "a running periodic task left RUNNING");
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
        Job::abort(self, TaskError::Cancelled) || self.completion.phase() == CANCELLED
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

    fn run_here(&self) -> bool {
        false
    }
}

impl ThreadPool {
    /// Runs `f` on the pool once `delay` has passed (Python's
    /// `threading.Timer`, but on the pool). Returns its handle at once.
    ///
    /// The pool's timer thread, started on first use, only queues the task
    /// at its deadline (it then waits its turn like any submission); timers
    /// fire in deadline order. [`cancel`](AsyncResult::cancel) before it
    /// fires removes it and drops `f` at once. Closing or terminating the
    /// pool cancels every timer that has not fired (their handles resolve
    /// to [`TaskError::Cancelled`]); one that already fired is queued work
    /// and runs as such. A delayed task is not counted by
    /// [`wait_idle`](ThreadPool::wait_idle) until it fires.
    ///
    /// On a closed pool the handle resolves to [`TaskError::PoolClosed`].
    /// If the timer thread cannot be started, to [`TaskError::Panicked`]
    /// with the OS error as its message.
    ///
    /// ```
    /// use futurepool::ThreadPool;
    /// use std::time::{Duration, Instant};
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let start = Instant::now();
    /// let later = pool.submit_after(Duration::from_millis(20), move || start.elapsed());
    /// let waited = later.get_timeout(Duration::from_secs(10)).unwrap();
    /// assert!(waited >= Duration::from_millis(20));
    ///
    /// let never = pool.submit_after(Duration::from_secs(3600), || "too late");
    /// assert!(never.cancel());
    /// assert!(never.cancelled());
    /// ```
    pub fn submit_after<F, T>(&self, delay: Duration, f: F) -> AsyncResult<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let registry = self.registry();
        if registry.is_closed() {
            crate::panics::drop_reporting(registry.id(), f);
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

    /// Runs `f` every `period` on the pool until it returns
    /// [`ControlFlow::Break`] (the handle's value), panics (the handle's
    /// error; no further runs), is cancelled, or the pool closes. The seeds'
    /// `PeriodicTimer` thread with its `Condition`, as one call.
    ///
    /// The first run is one period from now. Runs never overlap: the next
    /// run is scheduled when the current one returns, for one period after
    /// the previous deadline; a run that overran its period makes the next
    /// start one period after it ended (missed ticks are skipped, not
    /// caught up). A zero period runs `f` again as soon as it returns and
    /// other queued work has had its turn.
    ///
    /// [`cancel`](AsyncResult::cancel) between runs stops it at once (true;
    /// `f` is dropped now); during a run the handle resolves to
    /// [`TaskError::Cancelled`] when that run returns, and `cancel` returns
    /// false (unless that run has already returned when it looks). Closing
    /// the pool ends it the same way. Each run counts as one completed task
    /// in [`stats`](ThreadPool::stats).
    ///
    /// ```
    /// use futurepool::ThreadPool;
    /// use std::ops::ControlFlow;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let mut ticks = 0;
    /// let handle = pool.submit_periodic(Duration::from_millis(5), move || {
    ///     ticks += 1;
    ///     if ticks == 3 { ControlFlow::Break(ticks) } else { ControlFlow::Continue(()) }
    /// });
    /// assert_eq!(handle.get_timeout(Duration::from_secs(10)), Ok(3));
    /// ```
    pub fn submit_periodic<F, T>(&self, period: Duration, f: F) -> AsyncResult<T>
    where
        F: FnMut() -> ControlFlow<T> + Send + 'static,
        T: Send + 'static,
    {
        let registry = self.registry();
        if registry.is_closed() {
            crate::panics::drop_reporting(registry.id(), f);
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
}
