//! Waiting: the one loop every wait of the crate goes through.
//!
//! A wait is for a [`Waitable`]: a condition that can say whether it holds
//! and ask to be woken when it may. [`block`] is the entry point for
//! every blocking call (`get`, `wait`, `scope`, `ScopedHandle::join`,
//! `block_on`, `futurepool::wait`, `as_completed`, `imap_unordered`):
//!
//! * On a thread outside the pool it polls the condition briefly (see
//!   [`spin_wait`]) and then parks until woken.
//! * On a pool worker it runs [`WorkerCtx::wait_until`], the same loop the
//!   worker's main loop is (its condition: "the pool is done",
//!   [`PoolDone`]), after one check every waiting path shares: a worker
//!   low on stack moves the wait to an overflow thread first (`stack.rs`).
//!   Then, in order: is the condition met; may the worker run the awaited
//!   task itself (it has not started and is this pool's: offered once per
//!   wait, [`TaskRef::run_here`](crate::core::job::TaskRef::run_here));
//!   is there other work to run; else look again for a few rounds,
//!   backing off and polling the condition, and then park, as an idle
//!   worker would, until the condition's own wake-up or new work (the
//!   protocol in `parking.rs`).
//!
//! So a worker waiting for a result keeps the pool going, nested waits
//! cannot deadlock on work queued behind them, and none of them can
//! overflow the stack.
//!
//! `get` tries two shortcuts first, each a case of the loop's first step
//! done without building a wait: [`take_alone`], for a task nobody else
//! can reach any more (it runs with no synchronisation at all), and
//! [`take_in_place`], for an unstarted task of this worker's pool.

use std::time::{Duration, Instant};

use crate::core::completion::Completion;
use crate::core::counters::Outcome;
use crate::core::job::{JobRef, Ran, Runner, TaskPtr, TaskRef};
use crate::core::parking::Unparked;
use crate::core::registry::Registry;
use crate::core::sync::{current_thread, park_until, Thread};
use crate::core::waitable::Waitable;
use crate::core::worker::{Search, WorkerCtx};
use crate::error::TaskError;

/// Blocks the current thread until `cond` holds or `deadline` passes;
/// true if it holds. On a pool worker, runs that pool's work meanwhile.
pub(crate) fn block(cond: &dyn Waitable, deadline: Option<Instant>) -> bool {
    if cond.is_done() {
        return true;
    }
    WorkerCtx::with_current(|ctx| match ctx {
        Some(ctx) => ctx.wait_until(cond, deadline),
        None => park_wait(cond, deadline),
    })
}

/// `get` of a task that has not started, on a worker of the task's pool
/// with stack to spare: runs the task right here and hands its value
/// straight back, as the first step of [`WorkerCtx::wait_until`] would,
/// without building a wait: the common case of nested `submit(..).get()`,
/// where this saves an eighth of the instructions per task (W3 in the
/// benchmark suite, measured with callgrind). `None` when this does not
/// apply (not a worker, another pool's task, started or over, low stack,
/// a terminated pool) or when the value went to the slot after all
/// (callbacks were queued): the caller then waits as usual, and that wait
/// handles every such case.
#[inline]
pub(crate) fn take_in_place<T>(task: &dyn TaskRef<T>) -> Option<Result<T, TaskError>> {
    WorkerCtx::with_current(|ctx| {
        let ctx = ctx?;
        if ctx.stack.is_low() {
            return None;
        }
        ctx.run_in_place(|runner| task.run_here_and_take(runner))
            .flatten()
    })
}

/// `get` of a task on the worker that queued it, when nobody else can
/// reach it: the common case of nested `submit(..).get()`, where the
/// task's entry is still on top of this worker's deque and the handle
/// being consumed is its only other reference. Then the task runs here
/// with no transition of its state word, no lock and no reference count
/// going down: claiming, publishing and counting would be for other
/// threads, and there are none (about a third of the instructions per
/// task of W3's submit + get in the benchmark suite, measured with
/// callgrind; see [`WorkerCtx::run_alone`]). The task comes back when
/// this does not apply, and the caller goes on with [`take_in_place`] and
/// the general wait.
#[inline]
pub(crate) fn take_alone<T>(task: TaskPtr<T>) -> Result<Result<T, TaskError>, TaskPtr<T>> {
    // First what needs no thread-local: a task that started or is over
    // (the value of a finished task, collected from outside the pool) goes
    // straight on.
    let completion = task.completion();
    if !completion.untouched() {
        return Err(task);
    }
    let ran = WorkerCtx::with_current(|ctx| match ctx {
        Some(ctx) if !ctx.stack.is_low() => ctx.run_alone(&task, completion),
        _ => None,
    });
    match ran {
        Some((result, entry)) => {
            #[allow(unsafe_code)]
            // SAFETY: `run_alone` gave back the task's own entry after the
            // task ran alone, the handle and that entry being all its
            // references (its steps 2 and 3).
            unsafe {
                task.free_with_entry(entry)
            };
            Ok(result)
        }
        None => Err(task),
    }
}

/// A worker's main condition: the pool is closed, every queue is empty,
/// and no async task is alive (a suspended one may still be woken and
/// must find a worker). The wait also ends, returning false, when the
/// worker has been parked for the keep-alive (`timed_out` is then set) or
/// a resize asks workers to leave (`core/threads.rs`).
pub(crate) struct PoolDone<'a> {
    pub(crate) registry: &'a Registry,
    pub(crate) timed_out: std::sync::atomic::AtomicBool,
}

impl Waitable for PoolDone<'_> {
    fn is_done(&self) -> bool {
        let registry = self.registry;
        if !registry.is_closed() {
            return false;
        }
        // Work still in sight needs no fence to say "not done"; a worker of
        // a closed pool draining its queues asks this once per job.
        if registry.has_queued() || registry.async_tasks.any_live() {
            return false;
        }
        // The worker's half of the handshake with the submitter's check of
        // `closed` after its push (`registry.rs`, `barrier.rs`).
        crate::core::barrier::heavy();
        !registry.has_queued() && !registry.async_tasks.any_live()
    }
    fn register(&self, _thread: &Thread) -> bool {
        // Nothing to register with: closing the pool and the end of the
        // last live async task of a closed pool wake every parked worker.
        true
    }
    fn deregister(&self, _thread: &Thread) {}
    fn is_idle_wait(&self) -> bool {
        true
    }
    fn park_limit(&self) -> Option<Duration> {
        self.registry.threads.park_limit()
    }
    fn park_timed_out(&self) {
        self.timed_out
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl WorkerCtx {
    /// The waiting loop (see the module docs). True if `cond` holds.
    pub(crate) fn wait_until(&self, cond: &dyn Waitable, deadline: Option<Instant>) -> bool {
        if self.stack.is_low() {
            if let Some(done) = self.on_fresh_stack(|ctx| ctx.wait_until(cond, deadline)) {
                return done;
            }
            // No thread could be started (the process is out of them): the
            // wait goes on here, and once this stack is nearly spent it
            // starts no more work on it, leaving the awaited task to the
            // other workers rather than overflow.
            if self.stack.is_nearly_spent() {
                return park_wait(cond, deadline);
            }
        }
        // Once per wait, first: the awaited task itself, if it is ours to
        // run (the common fork-join case ends here).
        if self.run_offered(cond) && cond.is_done() {
            return true;
        }
        let registry = &*self.registry;
        let idle = cond.is_idle_wait();
        loop {
            if cond.is_done() {
                return true;
            }
            if idle && registry.threads.shrinking() {
                // A resize asked for fewer workers: see whether this one
                // should go (it has just finished a task, if any).
                return false;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                cond.deregister(&self.thread);
                return cond.is_done();
            }
            match self.search((!idle).then_some(cond)) {
                Search::Job(job) => {
                    self.execute(job);
                    continue;
                }
                Search::Done => return true,
                Search::Nothing => {}
            }
            if !cond.register(&self.thread) {
                // Done meanwhile: no longer looking for work.
                self.end_search();
                continue;
            }
            if idle {
                crate::core::idle::set_active(registry, self.counters(), false);
            }
            let limit = cond.park_limit();
            let park_deadline = match limit {
                Some(limit) => Instant::now().checked_add(limit),
                None => deadline,
            };
            let woken = registry.parking.park_with(
                &self.slot.notified,
                &self.thread,
                || self.end_search(),
                || {
                    cond.is_done()
                        || registry.has_queued()
                        || (idle && registry.threads.shrinking())
                },
                park_deadline,
            );
            if idle {
                crate::core::idle::set_active(registry, self.counters(), true);
            }
            match woken {
                Unparked::Timeout => {
                    cond.deregister(&self.thread);
                    if limit.is_some() {
                        cond.park_timed_out();
                    }
                    return cond.is_done();
                }
                Unparked::Notified if cond.is_done() => {
                    // A producer chose us for its job, but we are leaving:
                    // hand the wake-up to another parked worker.
                    registry.parking.wake_one();
                    return true;
                }
                _ => {}
            }
        }
    }

    /// Lets `cond` run the awaited task in place; true if it did.
    #[inline]
    fn run_offered(&self, cond: &dyn Waitable) -> bool {
        self.run_in_place(|runner| cond.run_here(runner).map(|ran| (ran, ())))
            .is_some()
    }

    /// Runs an awaited task in place through `run` (which says what ran,
    /// and what it hands back), counts it, and takes its entry back off
    /// this worker's deque. `None` if nothing ran here: the pool is
    /// terminated, the task is not this pool's or had started (`run` gave
    /// nothing), or another thread claimed it first.
    #[inline]
    fn run_in_place<R>(&self, run: impl FnOnce(&dyn Runner) -> Option<(Ran, R)>) -> Option<R> {
        if self.registry.is_terminated() {
            return None;
        }
        let mut offered = None;
        let outcome = crate::core::counters::counted(|| {
            offered = run(self);
            offered
                .as_ref()
                .map_or(Outcome::Skipped, |(ran, _)| ran.outcome)
        });
        let (ran, value) = offered?;
        self.counters().count(outcome);
        if ran.outcome == Outcome::Skipped {
            // Claimed by another thread first: nothing ran here.
            return None;
        }
        self.take_back(ran.entry);
        Some(value)
    }

    /// [`take_alone`] on this worker: runs the task held alone and gives
    /// back its outcome and its queue entry, for the caller to free the
    /// task with. The steps, each of which leaves the task as it was
    /// (`None`) if it fails:
    ///
    /// 1. The task is this pool's, and untouched (PENDING, nobody ever
    ///    watched it: [`take_alone`] checked): cheap loads that spare the
    ///    pop below for a task that is already over or another pool's.
    /// 2. The top of this worker's deque is the task's entry: popped (the
    ///    deque's own protocol makes the pop exclusive against thieves);
    ///    anything else on top is pushed back where it was
    ///    ([`pop_entry`](WorkerCtx::pop_entry)).
    /// 3. The task has two references (Acquire), the consumed handle and
    ///    that entry: nobody else can reach it, or ever will. Its state is
    ///    read again, untouched: a reference dropped just before step 3
    ///    may have changed it (the Acquire makes that visible).
    /// 4. The pool is not terminated. From step 2 on, the task counts as
    ///    claimed; this check comes after the pop's SeqCst fence, so it is
    ///    ordered against `terminate()` as the check after a claim is
    ///    (`job.rs`).
    ///
    /// Then the task is this thread's alone: it runs with
    /// [`TaskRef::run_alone`] and is counted as a run in place is.
    #[inline]
    fn run_alone<T>(
        &self,
        task: &TaskPtr<T>,
        completion: &Completion<T>,
    ) -> Option<(Result<T, TaskError>, JobRef)> {
        if completion.pool() != self.registry.id() {
            return None;
        }
        let entry = self.pop_entry(task.addr())?;
        if !task.held_with_entry_only() || !completion.untouched() || self.registry.is_terminated()
        {
            self.local.push(entry);
            return None;
        }
        let counters = self.counters();
        counters.start();
        #[allow(unsafe_code)]
        // SAFETY: steps 2 and 3 above: this thread holds every reference
        // to the task (the handle, and the entry it took off the deque),
        // and its state is untouched; the task is used afterwards only to
        // be freed.
        let result = unsafe { task.run_alone(self) };
        // What to count is the result's outcome: the closure of a handle's
        // task is the user's, whose panics the task catches itself, so no
        // mark of a panic kept inside can be left to read (`counted`, for
        // the scope's tasks, whose handles are not this one).
        counters.count(result.as_ref().map_or(Outcome::Skipped, Outcome::of));
        let Some(result) = result else {
            // Not a kind of task that runs alone (never so in practice:
            // only a plain or token task's block is its queue entry's
            // address): nothing happened to the task, and its entry,
            // counted as skipped here, goes back where it was.
            self.local.push(entry);
            return None;
        };
        self.release_place();
        Some((result, entry))
    }

    /// For a wait that cannot register a wake-up (a full bounded queue,
    /// `wait_idle` on a worker): runs one queued job if there is one
    /// (true), or finds none (false). Behind the same stack guard as
    /// [`wait_until`](WorkerCtx::wait_until).
    pub(crate) fn help_once(&self) -> bool {
        if self.stack.is_low() {
            if let Some(helped) = self.on_fresh_stack(WorkerCtx::help_once) {
                return helped;
            }
            // No thread could be started: as in `wait_until`.
            if self.stack.is_nearly_spent() {
                return false;
            }
        }
        match self.find_work() {
            Some(job) => {
                self.execute(job);
                true
            }
            None => false,
        }
    }
}

/// On a worker of `registry`: runs one queued job if there is one
/// (`Some(true)`), or finds none (`Some(false)`). `None` elsewhere.
pub(crate) fn help_once(registry: &Registry) -> Option<bool> {
    let ctx = WorkerCtx::current().filter(|ctx| ctx.serves(registry))?;
    Some(ctx.help_once())
}

/// The most a thread outside the pool polls a condition before it parks,
/// and the least it keeps trying with; see [`spin_wait`].
const WAITER_SPIN_MAX_NS: u32 = 20_000;
const WAITER_SPIN_MIN_NS: u32 = 500;

std::thread_local! {
    /// This thread's current polling budget, in ns: adapted to how waits
    /// have gone here lately (see [`spin_wait`]).
    static WAITER_SPIN_NS: std::cell::Cell<u32> = const { std::cell::Cell::new(WAITER_SPIN_MAX_NS) };
}

/// A thread outside the pool: poll briefly, then park until woken.
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

/// Polls `cond` for a short, adaptive while before a thread outside the
/// pool parks on it (never past `deadline`); true if it holds.
///
/// Parking costs the waiter a futex sleep and the publishing worker a
/// futex wake, each with a trip through the scheduler: W2 in the benchmark
/// suite (submit->get of a short task on an idle pool) spent two context
/// switches per round trip on that. Polling pays only when the worker can
/// run meanwhile: on an oversubscribed machine the poller takes the CPU
/// the worker needs. So, as adaptive mutexes do, the budget follows the
/// outcome: a wait that ended while polling doubles it (up to
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
    let mut end = start + Duration::from_nanos(u64::from(budget));
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

#[cfg(all(test, not(loom)))]
mod tests {
    //! The waiting loop's bookkeeping on paths a whole-pool test reaches
    //! only by chance.
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use crate::core::sync::Thread;
    use crate::core::waitable::Waitable;
    use crate::core::worker::WorkerCtx;
    use crate::Builder;

    /// Not done for its first `misses` looks, then done without a wake-up:
    /// the waiter finds it so when it tries to register, after it has
    /// looked for work in vain for every round.
    struct DoneAtRegistration {
        looks: AtomicUsize,
        misses: usize,
    }

    impl Waitable for DoneAtRegistration {
        fn is_done(&self) -> bool {
            self.looks.fetch_add(1, Ordering::SeqCst) >= self.misses
        }
        fn register(&self, _thread: &Thread) -> bool {
            self.looks.store(usize::MAX / 2, Ordering::SeqCst);
            false
        }
        fn deregister(&self, _thread: &Thread) {}
    }

    /// A waiter that searched for work (counted as a spare worker of an
    /// elastic pool) and then found its condition met, between two rounds
    /// or when it came to register, stops counting as spare: a count left behind would make
    /// the pool believe a worker is about to take new work, and it would
    /// never start another thread for a task that blocks.
    #[test]
    fn a_wait_that_ends_at_registration_leaves_no_spare_worker_counted() {
        let pool = Builder::new()
            .min_threads(1)
            .max_threads(2)
            .build()
            .unwrap();
        // Met at registration, after every round; and met during the
        // rounds (the third look), which ends the search there.
        for (misses, registered) in [(usize::MAX / 4, true), (3, false)] {
            let still_searching = pool.install(|| {
                WorkerCtx::with_current(|ctx| {
                    let ctx = ctx.expect("install runs on a worker");
                    let cond = DoneAtRegistration {
                        looks: AtomicUsize::new(0),
                        misses,
                    };
                    assert!(ctx.wait_until(&cond, None));
                    let looks = cond.looks.load(Ordering::SeqCst);
                    assert_eq!(looks >= usize::MAX / 2, registered, "{looks} looks");
                    // This worker's own part of the pool's spare count (the
                    // count itself also holds other workers' searches).
                    ctx.searching.get()
                })
            });
            assert!(!still_searching, "misses: {misses}");
        }
        // And the pool still grows for a task that blocks.
        let deadline = Instant::now() + Duration::from_secs(20);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let held =
            pool.submit(move || crate::blocking(|| rx.recv_timeout(Duration::from_secs(20))));
        let other = pool.submit(|| 7);
        assert_eq!(other.get_timeout(deadline - Instant::now()), Ok(7));
        tx.send(()).unwrap();
        assert!(held.get_timeout(Duration::from_secs(20)).unwrap().is_ok());
    }
}
