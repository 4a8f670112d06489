//! The state a pool's workers share: the queues, the sleep protocol and the
//! lifecycle flags. It owns the rules for how a task enters the pool
//! ([`Registry::submit`]) and how the pool stops taking and running tasks
//! ([`Registry::close`], [`Registry::terminate`]).
//!
//! Outside submissions go to the global [`Injector`]; submissions from one
//! of the pool's own workers go to that worker's local deque (LIFO for the
//! owner, FIFO for thieves).
//!
//! Close versus submit: a submitter pushes first and then checks `closed`
//! again (with a SeqCst fence in between); a worker decides to exit only
//! after it has seen `closed` and then found every queue empty (with a
//! fence in between). So either the submitter sees the pool closed and
//! withdraws its own task (`PoolClosed`), or the task is visible to the
//! workers before they exit. No task is left in a queue nobody serves.

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crossbeam_deque::{Injector, Steal, Stealer};

use crate::error::TaskError;
use crate::handle::AsyncResult;
use crate::job::{JobRef, Task};
use crate::sleep::Sleep;

pub(crate) struct Registry {
    pub(crate) injector: Injector<JobRef>,
    pub(crate) stealers: Box<[Stealer<JobRef>]>,
    pub(crate) sleep: Sleep,
    closed: AtomicBool,
    terminated: AtomicBool,
    /// How many worker threads have left their loop (for bounded joins).
    exited: Mutex<usize>,
    exited_cv: Condvar,
}

impl Registry {
    pub(crate) fn new(stealers: Vec<Stealer<JobRef>>) -> Self {
        let n = stealers.len();
        Registry {
            injector: Injector::new(),
            stealers: stealers.into_boxed_slice(),
            sleep: Sleep::new(n),
            closed: AtomicBool::new(false),
            terminated: AtomicBool::new(false),
            exited: Mutex::new(0),
            exited_cv: Condvar::new(),
        }
    }

    pub(crate) fn num_threads(&self) -> usize {
        self.stealers.len()
    }

    /// This pool's identity, as tasks record it.
    pub(crate) fn id(&self) -> usize {
        self as *const Registry as usize
    }

    pub(crate) fn submit<F, T>(&self, func: F) -> AsyncResult<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if self.is_closed() {
            return AsyncResult::failed(TaskError::PoolClosed);
        }
        let task = Arc::new(Task::new(func, self.id()));
        let handle = AsyncResult::from_task(task.clone());
        if self.push(task) {
            // The pool closed while we pushed: take the task back unless a
            // worker already started it (then it simply runs).
            handle.refuse();
        }
        handle
    }

    /// Queues `job` (on the current worker's deque if it is one of ours,
    /// else on the injector) and wakes a sleeping worker if there is one.
    /// Returns true if the pool was found closed after the push: the caller
    /// must then withdraw the job (see the module docs).
    pub(crate) fn push(&self, job: JobRef) -> bool {
        if let Err(job) = crate::worker::push_local(self, job) {
            self.injector.push(job);
        }
        // wake_one starts with a SeqCst fence, which also serves as the
        // fence between the push and the load of `closed` that pairs with
        // the one a worker runs between seeing `closed` and deciding the
        // queues are empty (see the module docs): one fence, not two.
        self.sleep.wake_one();
        self.closed.load(Ordering::Relaxed)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.terminated.load(Ordering::Relaxed)
    }

    /// [`is_terminated`](Registry::is_terminated), totally ordered with
    /// terminate()'s store (for the check after a task is claimed).
    pub(crate) fn is_terminated_seqcst(&self) -> bool {
        self.terminated.load(Ordering::SeqCst)
    }

    /// Accept no new work; queued work still runs, then workers exit.
    pub(crate) fn close(&self) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            self.sleep.wake_all();
        }
    }

    /// Close, and cancel every task that has not started.
    pub(crate) fn terminate(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.terminated.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.cancel_queued();
        self.sleep.wake_all();
    }

    /// Called by each worker thread as it exits (also if it unwinds).
    pub(crate) fn worker_exited(&self) {
        *self.exited.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.exited_cv.notify_all();
    }

    /// Waits until `workers` workers have exited, or `deadline`; true if
    /// they have.
    pub(crate) fn wait_exited(&self, workers: usize, deadline: Option<Instant>) -> bool {
        let mut exited = self.exited.lock().unwrap_or_else(|e| e.into_inner());
        while *exited < workers {
            let timeout = match deadline {
                None => None,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return false,
                },
            };
            exited = match timeout {
                None => self
                    .exited_cv
                    .wait(exited)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(left) => match self.exited_cv.wait_timeout(exited, left) {
                    Ok((guard, _)) => guard,
                    Err(e) => e.into_inner().0,
                },
            };
        }
        true
    }

    /// Cancels every queued task that has not started (they resolve to
    /// `Cancelled` at once); running tasks are untouched.
    pub(crate) fn cancel_queued(&self) {
        drain(|| self.injector.steal());
        for stealer in self.stealers.iter() {
            drain(|| stealer.steal());
        }
    }

    /// Whether any queue holds a job (call after a SeqCst fence when the
    /// answer decides whether to sleep or exit).
    pub(crate) fn has_queued(&self) -> bool {
        !self.injector.is_empty() || self.stealers.iter().any(|s| !s.is_empty())
    }
}

fn drain(mut steal: impl FnMut() -> Steal<JobRef>) {
    loop {
        match steal() {
            Steal::Success(job) => {
                job.abort(TaskError::Cancelled);
            }
            Steal::Empty => return,
            Steal::Retry => std::hint::spin_loop(),
        }
    }
}
