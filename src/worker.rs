//! A worker thread: where it finds work, how it runs it, how it idles, and
//! how a thread waits for a result (a worker keeps working while it waits).
//!
//! Finding work, in order: the worker's own deque (LIFO: the task it pushed
//! last is the one it is most likely waiting for, and hot in cache), then a
//! batch from the injector, then a steal from the other workers starting at
//! a random one. Every [`INJECTOR_INTERVAL`] picks the injector comes first,
//! so outside submissions never starve behind a stream of internal work.
//!
//! Stack segments: a worker that waits runs other tasks on its own stack,
//! so nested submit+get chains nest stack frames (a few hundred bytes per
//! level in release, over a kilobyte in debug). When a worker that is about
//! to wait has used its stack budget (all but a reserve), the wait moves to a fresh
//! *overflow* thread (same name, same stack size) that acts for the worker
//! while the worker blocks on it; nesting goes on there. So chains of any
//! depth run without overflowing a stack, at the cost of one thread per
//! stack's worth of nesting.
//!
//! "The injector" here means the outside queues: the priority heap is
//! looked at first, and only when its atomic length says it holds work
//! (see `priority.rs` for the ordering this gives).
//!
//! Around each task a worker updates its own counters (`stats.rs`) and, on
//! a bounded pool, releases the task's place (`bounded.rs`). Around each
//! idle sleep it flips its activity mark, which `wait_idle` reads
//! (`idle.rs`).

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_deque::{Steal, Worker};

use crate::handle::Waitable;
use crate::job::JobRef;
use crate::registry::Registry;
use crate::sleep::Woken;
use crate::stats::{Outcome, WorkerCounters};
use crate::sync::{current_thread, park_until, Thread};

/// One pick in this many looks at the injector before the local deque.
const INJECTOR_INTERVAL: u32 = 61;
/// Rounds of looking for work, backing off, before parking.
const SPIN_ROUNDS: u32 = 10;
/// The most a thread outside the pool polls a handle it waits for before
/// it parks, and the least it keeps trying with; see [`spin_wait`].
const WAITER_SPIN_MAX_NS: u32 = 20_000;
const WAITER_SPIN_MIN_NS: u32 = 500;

std::thread_local! {
    /// This thread's current polling budget, in ns: adapted to how waits
    /// have gone here lately (see [`spin_wait`]).
    static WAITER_SPIN_NS: std::cell::Cell<u32> = const { std::cell::Cell::new(WAITER_SPIN_MAX_NS) };
}

/// Polls `cond` for a short, adaptive while before a thread outside the
/// pool parks on it (never past `deadline`); true if it holds.
///
/// Parking costs the waiter a futex sleep and the publishing worker a
/// futex wake, each with a trip through the scheduler: W2 in
/// benches/suite.rs (submit->get of a short task on an idle pool) spent
/// two context switches per round trip on that. Polling pays only when
/// the worker can run meanwhile: on an oversubscribed machine the poller
/// takes the CPU the worker needs. So, as adaptive mutexes do, the budget
/// follows the outcome: a wait that ended while polling doubles it (up to
/// `WAITER_SPIN_MAX_NS`), one that had to park halves it (down to
/// `WAITER_SPIN_MIN_NS`, so a quiet spell can grow it again). Pure
/// spinning, no `yield_now`: a yield on a busy machine can cost a whole
/// scheduler time slice (milliseconds).
fn spin_wait(cond: &dyn Waitable, deadline: Option<Instant>) -> bool {
    if !cond.cheap_to_poll() {
        return cond.is_done();
    }
    // A wait in a thread-local destructor finds no budget: it parks.
    let Ok(budget) = WAITER_SPIN_NS.try_with(std::cell::Cell::get) else {
        return cond.is_done();
    };
    let start = Instant::now();
    let mut end = start + std::time::Duration::from_nanos(u64::from(budget));
    if let Some(deadline) = deadline {
        end = end.min(deadline);
    }
    let done = loop {
        if cond.is_done() {
            break true;
        }
        for _ in 0..32 {
            std::hint::spin_loop();
        }
        if Instant::now() >= end {
            break cond.is_done();
        }
    };
    let next = if done {
        budget.saturating_mul(2).min(WAITER_SPIN_MAX_NS)
    } else {
        (budget / 2).max(WAITER_SPIN_MIN_NS)
    };
    let _ = WAITER_SPIN_NS.try_with(|b| b.set(next));
    done
}

/// The part of a worker's stack nesting leaves free for the code that runs
/// at the deepest level (the task, the wait, starting an overflow thread):
/// a quarter of the stack, and at least this much.
const STACK_RESERVE_MIN: usize = 32 << 10;
/// The stack size std gives a thread when none is asked for.
const STD_DEFAULT_STACK: usize = 2 << 20;

/// The stack size a worker gets when the builder sets none: what std
/// would give it (`RUST_MIN_STACK`, else 2 MiB). Workers are always
/// spawned with an explicit size so [`WorkerCtx`] knows its budget.
pub(crate) fn default_stack_size() -> usize {
    std::env::var("RUST_MIN_STACK")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(STD_DEFAULT_STACK)
}

/// The address of a local of the caller's frame: a stack depth gauge.
#[inline(always)]
fn stack_position() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<WorkerCtx>>> = const { RefCell::new(None) };
}

/// The current thread's worker context, if it has one.
///
/// Every look at [`CURRENT`] goes through here: on a thread whose
/// thread-locals are being destroyed (user code submitting or waiting from
/// a thread-local's destructor, after this one was destroyed), `with`
/// would panic; such a thread is no worker, so it gets `None`.
fn current() -> Option<Rc<WorkerCtx>> {
    CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
}

fn with_current<R>(f: impl FnOnce(Option<&Rc<WorkerCtx>>) -> R) -> R {
    f(current().as_ref())
}

/// What a worker thread knows about itself.
pub(crate) struct WorkerCtx {
    pub(crate) registry: Arc<Registry>,
    pub(crate) index: usize,
    local: Worker<JobRef>,
    thread: Thread,
    rng: Cell<u64>,
    tick: Cell<u32>,
    /// Where this thread's stack started, and how far nesting may go.
    stack_base: usize,
    stack_size: usize,
    /// An overflow thread acting for worker `index` while that worker waits
    /// for it (see the module docs). Its own deque is invisible to thieves,
    /// so it never keeps work there.
    overflow: bool,
}

impl WorkerCtx {
    /// The context of worker `index`, created on that worker's thread with
    /// the stack size the thread was spawned with.
    pub(crate) fn new(
        registry: Arc<Registry>,
        index: usize,
        local: Worker<JobRef>,
        stack_size: usize,
    ) -> Self {
        WorkerCtx {
            stack_base: stack_position(),
            stack_size,
            overflow: false,
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
        // A worker's own thread: its thread-locals are alive until it
        // returns from here.
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
            let closed = registry.is_closed();
            if closed {
                // Pairs with the fence in Registry::push (see registry.rs).
                std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
                if registry.has_queued() {
                    continue;
                }
                if !registry.async_tasks.any_live() {
                    crate::idle::set_active(registry, self.index, false);
                    return;
                }
            }
            // Nothing to run. An open pool: park until there is work or it
            // closes. A closed one: a suspended async task may still be
            // woken and queued, so park until there is work or the last
            // live one has ended (it wakes everyone).
            self.park_idle(|| {
                registry.has_queued()
                    || if closed {
                        !registry.async_tasks.any_live()
                    } else {
                        registry.is_closed()
                    }
            });
        }
    }

    /// Parks as an idle worker (its `wait_idle` mark down meanwhile) until
    /// woken or `stay_awake` holds.
    fn park_idle(&self, stay_awake: impl Fn() -> bool) {
        let registry = &*self.registry;
        crate::idle::set_active(registry, self.index, false);
        registry
            .sleep
            .sleep(self.index, &self.thread, stay_awake, None);
        crate::idle::set_active(registry, self.index, true);
    }

    #[inline]
    fn counters(&self) -> &WorkerCounters {
        &self.registry.counters[self.index]
    }

    /// Drops the entry on top of this worker's deque if it is the job at
    /// `target`, which has just run inline; releases its place in a
    /// bounded queue, as running it from the deque would have. Anything
    /// else on top is put back where it was (LIFO: push is the top).
    fn take_back(&self, target: *const ()) {
        match self.local.pop() {
            Some(job) if Arc::as_ptr(&job) as *const () == target => {
                if let Some(bound) = &self.registry.bound {
                    bound.release(1);
                }
            }
            Some(job) => self.local.push(job),
            None => {}
        }
    }

    fn execute(&self, job: JobRef) {
        let registry = &*self.registry;
        if let Some(bound) = &registry.bound {
            bound.release(1);
        }
        let counters = self.counters();
        counters.start();
        // The task's own panics are caught inside it; what can still unwind
        // here is user code the task does not own: the Drop of a result
        // nobody holds a handle to any more (dropped with the job's last
        // reference), or a waker that panics. A worker must survive that,
        // or the pool silently loses a thread and, at the last one, hangs.
        let outcome = catch_unwind(AssertUnwindSafe(move || {
            if registry.is_terminated() {
                if job.discard() {
                    Outcome::Cancelled
                } else {
                    Outcome::Skipped
                }
            } else {
                crate::stats::counted(|| job.run_counted())
            }
        }))
        .unwrap_or_else(|payload| {
            crate::panics::report(registry.id(), payload);
            Outcome::Panicked
        });
        counters.count(outcome);
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
            if let Some(job) = self.take_outside() {
                return Some(job);
            }
        }
        self.local
            .pop()
            .or_else(|| self.take_outside())
            .or_else(|| self.steal_other())
    }

    /// Outside work: prioritized tasks above priority 0, then plain
    /// submissions, then the remaining prioritized ones.
    #[inline]
    fn take_outside(&self) -> Option<JobRef> {
        let priority = &self.registry.priority;
        if priority.len() == 0 {
            return self.steal_injector();
        }
        priority
            .pop_above(Some(0))
            .or_else(|| self.steal_injector())
            .or_else(|| priority.pop_above(None))
    }

    fn steal_injector(&self) -> Option<JobRef> {
        if self.overflow {
            // A batch would land in a deque nobody else can steal from.
            loop {
                match self.registry.injector.steal() {
                    Steal::Success(job) => return Some(job),
                    Steal::Empty => return None,
                    Steal::Retry => std::hint::spin_loop(),
                }
            }
        }
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
        if n <= 1 && !self.overflow {
            return None;
        }
        let start = (self.next_random() % n as u64) as usize;
        let mut retry = true;
        while retry {
            retry = false;
            for k in 0..n {
                let victim = (start + k) % n;
                // An overflow thread may take from the deque of the worker it
                // stands in for: that worker is blocked until it is done.
                if victim == self.index && !self.overflow {
                    continue;
                }
                match stealers[victim].steal() {
                    Steal::Success(job) => {
                        self.counters().stolen();
                        return Some(job);
                    }
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
    with_current(|ctx| match ctx {
        Some(ctx) if std::ptr::eq(&*ctx.registry, registry) && !ctx.overflow => {
            ctx.local.push(job);
            Ok(())
        }
        _ => Err(job),
    })
}

/// Runs `execute` (a task's closure, if it wins the task) right here if
/// the current thread is a worker of the pool with this id and that pool
/// still runs tasks (not terminated); counts it in this worker's stats.
/// Returns whether the task ran here.
///
/// `target` is the task's address: if it ran and its queue entry is on
/// top of this worker's deque (a worker waits for the task it pushed last
/// far more often than for any other), the entry is taken off, so running
/// it leaves no stale entry behind for a later pop to find finished.
pub(crate) fn run_inline(
    pool: u32,
    target: *const (),
    execute: impl FnOnce() -> Option<Outcome>,
) -> bool {
    // Never nested on a worker whose stack is nearly spent: waits move to
    // an overflow thread well before that, so this is a worker that could
    // not start one (the process is out of threads). It leaves the task
    // to the other workers rather than overflow its stack.
    let ctx = with_current(|ctx| match ctx {
        Some(ctx)
            if ctx.registry.id() == pool
                && !ctx.registry.is_terminated()
                && !ctx.stack_nearly_spent() =>
        {
            Some(ctx.clone())
        }
        _ => None,
    });
    let Some(ctx) = ctx else {
        return false;
    };
    let counters = ctx.counters();
    counters.start();
    let mut ran = false;
    let outcome = crate::stats::counted(|| {
        let outcome = execute();
        ran = outcome.is_some();
        outcome.unwrap_or(Outcome::Skipped)
    });
    if ran {
        ctx.take_back(target);
    }
    counters.count(outcome);
    ran
}

/// On a worker of `registry`: runs one queued task if there is one
/// (`Some(true)`), or finds none (`Some(false)`). `None` elsewhere.
/// For waits that a worker must not block in (a full bounded queue).
pub(crate) fn help_once(registry: &Registry) -> Option<bool> {
    // Stack nearly spent (see `run_inline`): wait as a thread outside the
    // pool does.
    let ctx = with_current(|ctx| match ctx {
        Some(ctx) if std::ptr::eq(&*ctx.registry, registry) && !ctx.stack_nearly_spent() => {
            Some(ctx.clone())
        }
        _ => None,
    })?;
    match ctx.find_work() {
        Some(job) => {
            ctx.execute(job);
            Some(true)
        }
        None => Some(false),
    }
}

/// This thread's worker index, if it is a worker of `registry`.
pub(crate) fn index_in(registry: &Registry) -> Option<usize> {
    with_current(|ctx| match ctx {
        Some(ctx) if std::ptr::eq(&*ctx.registry, registry) => Some(ctx.index),
        _ => None,
    })
}

/// Whether the current thread is a worker of the pool with this id and that
/// pool has been terminated. Called right after a task is claimed
/// (PENDING -> RUNNING, a SeqCst read-modify-write); this SeqCst load and
/// the SeqCst store in [`Registry::terminate`] order the two: either the
/// claim comes first (and terminate() finds the task running), or this
/// sees the pool terminated.
pub(crate) fn pool_terminated_here(pool: u32) -> bool {
    with_current(|ctx| match ctx {
        Some(ctx) => ctx.registry.id() == pool && ctx.registry.is_terminated_seqcst(),
        None => false,
    })
}

/// Whether the current thread is one of this pool's workers.
pub(crate) fn is_worker_of(registry: &Registry) -> bool {
    with_current(|ctx| matches!(ctx, Some(ctx) if std::ptr::eq(&*ctx.registry, registry)))
}

/// Blocks the current thread until `cond` holds or `deadline` passes;
/// true if it holds. On a pool worker, runs that pool's work meanwhile.
///
/// A worker low on stack does not run work while it waits (callers that
/// can, wrap their wait in [`with_stack_room`] to keep helping on a fresh
/// stack instead).
pub(crate) fn block_until(cond: &dyn Waitable, deadline: Option<Instant>) -> bool {
    if cond.is_done() {
        return true;
    }
    let ctx = with_current(|ctx| ctx.cloned());
    match ctx {
        Some(ctx) if !ctx.stack_low() => ctx.wait_working(cond, deadline),
        _ => park_wait(cond, deadline),
    }
}

/// Runs `wait` (a wait that may run nested tasks) here, or, on a worker
/// that has used its stack budget, on a fresh overflow thread acting for
/// this worker, which blocks until it is done (see the module docs).
pub(crate) fn with_stack_room<R: Send>(wait: impl FnOnce() -> R + Send) -> R {
    let ctx = with_current(|ctx| ctx.cloned());
    match ctx {
        Some(ctx) if ctx.stack_low() => ctx.on_fresh_stack(wait),
        _ => wait(),
    }
}

impl WorkerCtx {
    /// Whether nesting here has used the stack budget.
    fn stack_low(&self) -> bool {
        let used = self.stack_base.abs_diff(stack_position());
        let reserve = (self.stack_size / 4).max(STACK_RESERVE_MIN);
        used > self.stack_size.saturating_sub(reserve)
    }

    /// Whether nesting here has used half the reserve too: only a worker
    /// that could not move its wait to an overflow thread gets this far,
    /// and it must start no more work on this stack.
    fn stack_nearly_spent(&self) -> bool {
        let used = self.stack_base.abs_diff(stack_position());
        let reserve = (self.stack_size / 4).max(STACK_RESERVE_MIN);
        used > self.stack_size.saturating_sub(reserve / 2)
    }

    fn on_fresh_stack<R: Send>(&self, wait: impl FnOnce() -> R + Send) -> R {
        let registry = self.registry.clone();
        let (index, stack_size) = (self.index, self.stack_size);
        // Kept here, so it can still run on this thread if no thread can be
        // started (then nesting goes on here, as it would without segments).
        let wait = std::sync::Mutex::new(Some(wait));
        let take = || wait.lock().unwrap_or_else(|e| e.into_inner()).take();
        let mut builder = std::thread::Builder::new().stack_size(stack_size);
        if let Some(name) = std::thread::current().name() {
            builder = builder.name(name.to_owned());
        }
        std::thread::scope(|scope| {
            let spawned = builder.spawn_scoped(scope, || {
                let mut ctx = WorkerCtx::new(registry, index, Worker::new_lifo(), stack_size);
                ctx.overflow = true;
                // The first wait on a fresh stack always runs here, so a
                // chain of overflow threads always makes progress.
                WorkerCtx::enter(ctx, |_| take().map(|wait| wait()))
            });
            let result = match spawned {
                Ok(thread) => thread
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p)),
                Err(_) => None,
            };
            match result {
                Some(r) => r,
                None => (take().expect("the wait ran nowhere"))(),
            }
        })
    }
}

fn park_wait(cond: &dyn Waitable, deadline: Option<Instant>) -> bool {
    if spin_wait(cond, deadline) {
        return true;
    }
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
