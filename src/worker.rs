//! A worker thread: where it finds work, how it runs it, how it idles, and
//! how a thread waits for a result (a worker keeps working while it waits).
//!
//! Finding work, in order: the worker's own deque (LIFO: the task it pushed
//! last is the one it is most likely waiting for, and hot in cache), then a
//! batch from the injector, then a steal from the other workers starting at
//! a random one. Every [`INJECTOR_INTERVAL`] picks the injector comes first,
//! so outside submissions never starve behind a stream of internal work.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_deque::{Steal, Worker};

use crate::handle::Waitable;
use crate::job::JobRef;
use crate::registry::Registry;
use crate::sleep::Woken;
use crate::sync::{current_thread, park_until, Thread};

/// One pick in this many looks at the injector before the local deque.
const INJECTOR_INTERVAL: u32 = 61;
/// Rounds of looking for work, backing off, before parking.
const SPIN_ROUNDS: u32 = 10;

thread_local! {
    static CURRENT: RefCell<Option<Rc<WorkerCtx>>> = const { RefCell::new(None) };
}

/// What a worker thread knows about itself.
pub(crate) struct WorkerCtx {
    pub(crate) registry: Arc<Registry>,
    pub(crate) index: usize,
    local: Worker<JobRef>,
    thread: Thread,
    rng: Cell<u64>,
    tick: Cell<u32>,
}

impl WorkerCtx {
    pub(crate) fn new(registry: Arc<Registry>, index: usize, local: Worker<JobRef>) -> Self {
        WorkerCtx {
            registry,
            index,
            local,
            thread: current_thread(),
            // Any odd seed works for xorshift; spread them per worker.
            rng: Cell::new(0x9E37_79B9_7F4A_7C15 ^ ((index as u64 + 1) << 17) | 1),
            tick: Cell::new(0),
        }
    }

    /// Installs `ctx` as the current thread's worker context for the
    /// duration of `body`.
    pub(crate) fn enter<R>(ctx: WorkerCtx, body: impl FnOnce(&WorkerCtx) -> R) -> R {
        let ctx = Rc::new(ctx);
        CURRENT.with(|c| *c.borrow_mut() = Some(ctx.clone()));
        struct Exit;
        impl Drop for Exit {
            fn drop(&mut self) {
                let _ = CURRENT.try_with(|c| c.borrow_mut().take());
            }
        }
        let _exit = Exit;
        body(&ctx)
    }

    /// The worker's main loop: run work until the pool is closed and every
    /// queue is empty.
    pub(crate) fn run(&self) {
        loop {
            if let Some(job) = self.find_work_spinning() {
                self.execute(job);
                continue;
            }
            let registry = &*self.registry;
            if registry.is_closed() {
                // Pairs with the fence in Registry::push (see registry.rs).
                std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
                if !registry.has_queued() {
                    return;
                }
                continue;
            }
            registry.sleep.sleep(
                self.index,
                &self.thread,
                || registry.is_closed() || registry.has_queued(),
                None,
            );
        }
    }

    fn execute(&self, job: JobRef) {
        if self.registry.is_terminated() {
            job.abort(crate::TaskError::Cancelled);
        } else {
            job.run();
        }
    }

    /// Looks for work a few times, backing off, before giving up.
    fn find_work_spinning(&self) -> Option<JobRef> {
        for round in 0..SPIN_ROUNDS {
            if let Some(job) = self.find_work() {
                return Some(job);
            }
            if round < SPIN_ROUNDS / 2 {
                for _ in 0..(1 << round) {
                    std::hint::spin_loop();
                }
            } else {
                std::thread::yield_now();
            }
        }
        None
    }

    pub(crate) fn find_work(&self) -> Option<JobRef> {
        let tick = self.tick.get().wrapping_add(1);
        self.tick.set(tick);
        if tick % INJECTOR_INTERVAL == 0 {
            if let Some(job) = self.steal_injector() {
                return Some(job);
            }
        }
        self.local
            .pop()
            .or_else(|| self.steal_injector())
            .or_else(|| self.steal_other())
    }

    fn steal_injector(&self) -> Option<JobRef> {
        loop {
            match self.registry.injector.steal_batch_and_pop(&self.local) {
                Steal::Success(job) => {
                    if !self.local.is_empty() {
                        // We took a batch: let a sleeping peer share it.
                        self.registry.sleep.wake_one();
                    }
                    return Some(job);
                }
                Steal::Empty => return None,
                Steal::Retry => std::hint::spin_loop(),
            }
        }
    }

    fn steal_other(&self) -> Option<JobRef> {
        let stealers = &self.registry.stealers;
        let n = stealers.len();
        if n <= 1 {
            return None;
        }
        let start = (self.next_random() % n as u64) as usize;
        let mut retry = true;
        while retry {
            retry = false;
            for k in 0..n {
                let victim = (start + k) % n;
                if victim == self.index {
                    continue;
                }
                match stealers[victim].steal() {
                    Steal::Success(job) => return Some(job),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
        }
        None
    }

    fn next_random(&self) -> u64 {
        // xorshift64: cheap, and good enough to spread victims.
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x
    }

    /// Waits for `cond` while running the pool's other work.
    fn wait_working(&self, cond: &dyn Waitable, deadline: Option<Instant>) -> bool {
        loop {
            if cond.is_done() {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                cond.deregister(&self.thread);
                return cond.is_done();
            }
            if let Some(job) = self.find_work() {
                self.execute(job);
                continue;
            }
            if !cond.register(&self.thread) {
                continue;
            }
            let registry = &*self.registry;
            let woken = registry.sleep.sleep(
                self.index,
                &self.thread,
                || cond.is_done() || registry.has_queued(),
                deadline,
            );
            match woken {
                Woken::Timeout => {
                    cond.deregister(&self.thread);
                    return cond.is_done();
                }
                Woken::Notified if cond.is_done() => {
                    // A producer chose us for its job, but we are going back
                    // to our task: hand the wake-up to another sleeper.
                    registry.sleep.wake_one();
                    return true;
                }
                _ => {}
            }
        }
    }
}

/// Pushes `job` on the current thread's deque if it is a worker of
/// `registry`; gives the job back otherwise.
pub(crate) fn push_local(registry: &Registry, job: JobRef) -> Result<(), JobRef> {
    CURRENT.with(|c| match &*c.borrow() {
        Some(ctx) if std::ptr::eq(&*ctx.registry, registry) => {
            ctx.local.push(job);
            Ok(())
        }
        _ => Err(job),
    })
}

/// Where a task stands relative to the current thread's own deque.
pub(crate) enum Local {
    /// The current thread is not a running worker of the task's pool.
    Foreign,
    /// The task was on top of this worker's deque; here is the queue's
    /// reference to it, now off the deque.
    Taken(JobRef),
    /// A worker of the pool, but the task is not on top of its deque.
    Elsewhere,
}

/// Pops the job at `target` off the top of the current worker's deque if it
/// is there. A worker waits for the task it pushed last far more often than
/// for any other (nested fork-join), so taking it back here means running it
/// leaves no stale entry behind in the deque. Anything else on top is put
/// back where it was.
pub(crate) fn take_local(pool: usize, target: *const ()) -> Local {
    CURRENT.with(|c| match &*c.borrow() {
        Some(ctx) if ctx.registry.id() == pool && !ctx.registry.is_terminated() => {
            match ctx.local.pop() {
                Some(job) if Arc::as_ptr(&job) as *const () == target => Local::Taken(job),
                Some(job) => {
                    // LIFO deque: push puts it back on top, where it was.
                    ctx.local.push(job);
                    Local::Elsewhere
                }
                None => Local::Elsewhere,
            }
        }
        _ => Local::Foreign,
    })
}

/// Whether the current thread is one of this pool's workers.
pub(crate) fn is_worker_of(registry: &Registry) -> bool {
    CURRENT.with(|c| matches!(&*c.borrow(), Some(ctx) if std::ptr::eq(&*ctx.registry, registry)))
}

/// Blocks the current thread until `cond` holds or `deadline` passes;
/// true if it holds. On a pool worker, runs that pool's work meanwhile.
pub(crate) fn block_until(cond: &dyn Waitable, deadline: Option<Instant>) -> bool {
    if cond.is_done() {
        return true;
    }
    let ctx = CURRENT.with(|c| c.borrow().clone());
    match ctx {
        Some(ctx) => ctx.wait_working(cond, deadline),
        None => park_wait(cond, deadline),
    }
}

fn park_wait(cond: &dyn Waitable, deadline: Option<Instant>) -> bool {
    let me = current_thread();
    loop {
        if cond.is_done() {
            return true;
        }
        if !cond.register(&me) {
            continue;
        }
        if !park_until(deadline) {
            cond.deregister(&me);
            return cond.is_done();
        }
    }
}
