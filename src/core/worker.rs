//! A worker thread: its context (the thread-local every query about "am I
//! a worker, of which pool" goes through), where it finds work, and how it
//! runs a job. How it waits, for work or for a result, is `wait.rs`; its
//! main loop is one such wait: "until the pool is done".
//!
//! Finding work, in order: the worker's own deques, forks first (LIFO: the
//! fork or task it pushed last is the one it is most likely waiting for,
//! and hot in cache), then a batch from the outside queues, then a steal
//! from the other workers starting at a random one (a victim's forks, the
//! oldest first, then its tasks; before its first fork a thief announces
//! itself, `forks.rs`). Every [`INJECTOR_INTERVAL`] picks the outside
//! queues come first, so outside submissions never starve behind a stream
//! of internal work. "The outside queues" are the injector and the
//! priority heap, which is looked at first, and only when its atomic
//! length says it holds work (see `pool/priority.rs` for the ordering
//! this gives).
//!
//! Around each job a worker updates its own counters (`counters.rs`) and,
//! on a bounded pool, releases the job's place (`pool/bounded.rs`).

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;

use crossbeam_deque::{Steal, Worker};

use crate::core::counters::{Outcome, WorkerCounters};
use crate::core::forks::Forks;
use crate::core::job::{JobRef, Runner};
use crate::core::registry::Registry;
use crate::core::slots::{Deques, Slot};
use crate::core::stack::StackBudget;
use crate::core::sync::{current_thread, Thread};
use crate::core::wait::PoolDone;
use crate::core::waitable::Waitable;

/// One pick in this many looks at the outside queues before the local
/// deque.
const INJECTOR_INTERVAL: u32 = 61;
/// Rounds of looking for work, backing off, before parking.
const SPIN_ROUNDS: u32 = 10;

/// What [`WorkerCtx::search`] came to.
pub(crate) enum Search {
    /// A job to run.
    Job(JobRef),
    /// The awaited condition holds (the worker no longer counts as spare).
    Done,
    /// Nothing, after every round: the caller parks (an elastic pool still
    /// counts the worker as spare until it has registered as parked).
    Nothing,
}

/// The pause after round `round` of looking for work in vain: a few spins,
/// doubling, then yields.
#[inline]
fn back_off(round: u32) {
    if round < SPIN_ROUNDS / 2 {
        for _ in 0..(1 << round) {
            std::hint::spin_loop();
        }
    } else {
        std::thread::yield_now();
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<WorkerCtx>>> = const { RefCell::new(None) };
    /// The same context as a plain pointer, for the hot path that only
    /// borrows it ([`WorkerCtx::with_current`]): set and cleared by
    /// [`WorkerCtx::enter`] around the body that the context outlives.
    static CURRENT_PTR: Cell<*const WorkerCtx> = const { Cell::new(std::ptr::null()) };
}

/// What a worker thread knows about itself.
pub(crate) struct WorkerCtx {
    pub(crate) registry: Arc<Registry>,
    pub(crate) index: usize,
    /// The worker's slot: its counters, parking flag and deques' stealers.
    pub(crate) slot: Arc<Slot>,
    /// The deque of tasks: submitted from this worker, or a batch taken
    /// from the injector.
    pub(crate) local: Worker<JobRef>,
    /// The deque of `join`'s forks (`forks.rs`).
    pub(crate) forks: Forks,
    pub(crate) thread: Thread,
    /// Counted as spare in an elastic pool's word: looking for work in
    /// its idle wait, or just started (`threads.rs`).
    pub(crate) searching: Cell<bool>,
    /// How deep in `blocking` calls this thread is.
    pub(crate) blocking: Cell<u32>,
    rng: Cell<u64>,
    tick: Cell<u32>,
    /// How far nesting may go on this thread's stack (`stack.rs`).
    pub(crate) stack: StackBudget,
    /// An overflow thread acting for worker `index` while that worker waits
    /// for it (`stack.rs`). Its own deque is invisible to thieves, so it
    /// never keeps work there.
    overflow: bool,
}

impl WorkerCtx {
    /// The context of worker `index`, created on that worker's thread with
    /// the stack size the thread was spawned with.
    pub(crate) fn new(
        registry: Arc<Registry>,
        index: usize,
        slot: Arc<Slot>,
        deques: Deques,
        stack_size: usize,
    ) -> Self {
        WorkerCtx {
            stack: StackBudget::here(stack_size),
            overflow: false,
            searching: Cell::new(false),
            blocking: Cell::new(0),
            registry,
            index,
            slot,
            local: deques.tasks,
            forks: deques.forks,
            thread: current_thread(),
            // Any odd seed works for xorshift; spread them per worker.
            rng: Cell::new(0x9E37_79B9_7F4A_7C15 ^ ((index as u64 + 1) << 17) | 1),
            tick: Cell::new(0),
        }
    }

    /// The context of an overflow thread standing in for worker `index`.
    pub(crate) fn new_overflow(
        registry: Arc<Registry>,
        index: usize,
        slot: Arc<Slot>,
        stack_size: usize,
    ) -> Self {
        WorkerCtx {
            overflow: true,
            searching: Cell::new(false),
            ..WorkerCtx::new(
                registry,
                index,
                slot,
                Deques {
                    tasks: Worker::new_lifo(),
                    forks: Forks::new(),
                },
                stack_size,
            )
        }
    }

    /// The current thread's worker context, if it is a worker (or an
    /// overflow thread). `None` too in a thread-local destructor that runs
    /// after this thread's context was destroyed.
    pub(crate) fn current() -> Option<Rc<WorkerCtx>> {
        CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
    }

    /// Runs `f` with the current thread's worker context (`None` if it is
    /// not a worker): [`current`](WorkerCtx::current) without the
    /// reference count, for the hot paths (`join`).
    #[inline]
    pub(crate) fn with_current<R>(f: impl FnOnce(Option<&WorkerCtx>) -> R) -> R {
        // A thread-local destructor running after ours finds no context.
        let ptr = CURRENT_PTR.try_with(Cell::get).unwrap_or(std::ptr::null());
        #[allow(unsafe_code)]
        // SAFETY: a non-null pointer was set by `enter` on this thread and
        // points to the context `enter` keeps alive (its `Rc`) until after
        // it clears the pointer again; whatever runs on this thread in
        // between runs inside `enter`'s body, and the borrow given to `f`
        // ends before `f` returns, so before `enter` can.
        f(unsafe { ptr.as_ref() })
    }

    /// Installs `ctx` as the current thread's worker context for the
    /// duration of `body`.
    pub(crate) fn enter<R>(ctx: WorkerCtx, body: impl FnOnce(&WorkerCtx) -> R) -> R {
        Self::serve(ctx, body).0
    }

    /// [`enter`](WorkerCtx::enter), giving the context back afterwards
    /// (unless something still holds it), so a retiring worker can return
    /// its deque to its slot.
    pub(crate) fn serve<R>(
        ctx: WorkerCtx,
        body: impl FnOnce(&WorkerCtx) -> R,
    ) -> (R, Option<WorkerCtx>) {
        let ctx = Rc::new(ctx);
        CURRENT.with(|c| *c.borrow_mut() = Some(ctx.clone()));
        CURRENT_PTR.with(|p| p.set(Rc::as_ptr(&ctx)));
        struct Exit;
        impl Drop for Exit {
            fn drop(&mut self) {
                // The pointer first: `ctx` outlives this guard.
                let _ = CURRENT_PTR.try_with(|p| p.set(std::ptr::null()));
                let _ = CURRENT.try_with(|c| c.borrow_mut().take());
            }
        }
        let exit = Exit;
        let r = body(&ctx);
        drop(exit);
        (r, Rc::try_unwrap(ctx).ok())
    }

    /// The owner's ends of this worker's deques.
    pub(crate) fn into_deque(self) -> Deques {
        Deques {
            tasks: self.local,
            forks: self.forks,
        }
    }

    /// Whether this is an overflow thread standing in for a worker.
    pub(crate) fn is_overflow(&self) -> bool {
        self.overflow
    }

    /// Whether this context serves `registry`'s pool.
    pub(crate) fn serves(&self, registry: &Registry) -> bool {
        std::ptr::eq(&*self.registry, registry)
    }

    /// The worker's main loop: run work until the pool is closed, every
    /// queue is empty and no async task is alive, or until this worker
    /// retires (it stayed idle for the keep-alive above the pool's
    /// minimum, or a resize asked for fewer workers: `threads.rs`).
    pub(crate) fn run(&self) {
        let threads = &self.registry.threads;
        loop {
            let idle = PoolDone {
                registry: &self.registry,
                timed_out: std::sync::atomic::AtomicBool::new(false),
            };
            if self.wait_until(&idle, None) {
                self.end_search();
                threads.exit_done();
                break;
            }
            self.end_search();
            if threads.try_retire(self, idle.timed_out.into_inner()) {
                break;
            }
        }
        crate::core::idle::set_active(&self.registry, self.counters(), false);
    }

    #[inline]
    pub(crate) fn counters(&self) -> &WorkerCounters {
        &self.slot.counters
    }

    /// This worker stops counting as spare (it found work, parked or
    /// leaves). Only workers of elastic pools count as spare, while they
    /// search.
    #[inline]
    pub(crate) fn end_search(&self) {
        if self.searching.replace(false) {
            self.registry.threads.counts.end_search();
        }
    }

    #[inline]
    fn begin_search(&self) {
        if self.registry.threads.is_elastic() && !self.searching.replace(true) {
            self.registry.threads.counts.begin_search();
        }
    }

    /// The entry on top of this worker's deque if it is the job at
    /// `target`; anything else on top is put back where it was (LIFO: push
    /// is the top).
    #[inline]
    pub(crate) fn pop_entry(&self, target: usize) -> Option<JobRef> {
        let job = self.local.pop()?;
        if job.addr() == target {
            Some(job)
        } else {
            self.local.push(job);
            None
        }
    }

    /// An entry taken back off this worker's deque instead of being run
    /// from it gives back its place in a bounded queue, as running it from
    /// the deque would have.
    #[inline]
    pub(crate) fn release_place(&self) {
        if let Some(bound) = &self.registry.bound {
            bound.release(1);
        }
    }

    /// Drops the entry on top of this worker's deque if it is the job at
    /// `target`, which has just run in place (see
    /// [`pop_entry`](WorkerCtx::pop_entry) and
    /// [`release_place`](WorkerCtx::release_place)).
    ///
    /// A worker waits for the task it pushed last far more often than for
    /// any other, so this leaves no stale entry behind for a later pop to
    /// find finished.
    pub(crate) fn take_back(&self, target: usize) {
        if let Some(job) = self.pop_entry(target) {
            self.release_place();
            drop(job);
        }
    }

    /// Runs one job taken from a queue, and counts what it came to.
    pub(crate) fn execute(&self, job: JobRef) {
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
                crate::core::counters::counted(|| job.run(self))
            }
        }))
        .unwrap_or_else(|payload| {
            crate::core::panics::report(registry.id(), payload);
            Outcome::Panicked
        });
        counters.count(outcome);
    }

    /// Looks for work a few times, backing off, before the caller parks.
    /// In an elastic pool the worker counts as spare from its first miss
    /// until it finds work or has registered as parked (`wait.rs`), so a
    /// submission never starts a thread for work it is about to take.
    ///
    /// A worker waiting on a condition it can poll cheaply (a fork's latch,
    /// a handle: `until`) stops as soon as the condition holds. What it
    /// waits for is mostly a task another worker is finishing, often within
    /// microseconds (a stolen fork near the leaves of fork-join): parking
    /// at the first miss made the waiter pay a membarrier and a futex sleep
    /// and the other worker a futex wake, about 7% of fib(24) with `join`
    /// at two threads (W3 in the benchmark suite, side by side). A
    /// condition behind a lock is not polled: one look for work, then the
    /// caller parks.
    pub(crate) fn search(&self, until: Option<&dyn Waitable>) -> Search {
        if until.is_some_and(|cond| !cond.cheap_to_poll()) {
            return self.find_work().map_or(Search::Nothing, Search::Job);
        }
        for round in 0..SPIN_ROUNDS {
            if let Some(job) = self.find_work() {
                self.end_search();
                return Search::Job(job);
            }
            if until.is_some_and(|cond| cond.is_done()) {
                self.end_search();
                return Search::Done;
            }
            self.begin_search();
            back_off(round);
        }
        Search::Nothing
    }

    pub(crate) fn find_work(&self) -> Option<JobRef> {
        let tick = self.tick.get().wrapping_add(1);
        self.tick.set(tick);
        if tick % INJECTOR_INTERVAL == 0 {
            if let Some(job) = self.take_outside() {
                return Some(job);
            }
        }
        self.forks
            .pop(&self.registry.thieves)
            .or_else(|| self.local.pop())
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
                        // We took a batch: let a parked peer share it, or
                        // start one if the pool may grow.
                        self.registry.announce_work();
                    }
                    return Some(job);
                }
                Steal::Empty => return None,
                Steal::Retry => std::hint::spin_loop(),
            }
        }
    }

    fn steal_other(&self) -> Option<JobRef> {
        let slots = &self.registry.threads.slots;
        let n = slots.used();
        if n <= 1 && !self.overflow {
            return None;
        }
        let start = (self.next_random() % n as u64) as usize;
        // Taken at the first fork seen, given up on the way out (see
        // `forks.rs`: a thief announces itself before it steals a fork).
        let mut announced = None;
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
                let Some(slot) = slots.get(victim) else {
                    continue;
                };
                match slot.forks.steal(&self.registry.thieves, &mut announced) {
                    Steal::Success(job) => {
                        self.counters().stolen();
                        return Some(job);
                    }
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
                match slot.stealer.steal() {
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
}

impl Runner for WorkerCtx {
    fn pool(&self) -> u32 {
        self.registry.id()
    }

    fn terminated(&self) -> bool {
        self.registry.is_terminated_seqcst()
    }

    fn started_here(&self) {
        self.counters().start();
    }
}

/// Pushes `job` on the current thread's deque if it is a worker of
/// `registry`; gives the job back otherwise.
#[inline]
pub(crate) fn push_local(registry: &Registry, job: JobRef) -> Result<(), JobRef> {
    WorkerCtx::with_current(|ctx| match ctx {
        Some(ctx) if ctx.serves(registry) && !ctx.overflow => {
            ctx.local.push(job);
            Ok(())
        }
        _ => Err(job),
    })
}

/// This thread's worker index, if it is a worker of `registry`.
pub(crate) fn index_in(registry: &Registry) -> Option<usize> {
    WorkerCtx::with_current(|ctx| ctx.filter(|ctx| ctx.serves(registry)).map(|ctx| ctx.index))
}

/// Whether the current thread is one of this pool's workers.
pub(crate) fn is_worker_of(registry: &Registry) -> bool {
    index_in(registry).is_some()
}
