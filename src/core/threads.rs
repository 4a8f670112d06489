//! The pool's worker threads as a set that grows and shrinks: starting a
//! worker when a submission finds nobody to take it, retiring one that
//! stayed idle for the keep-alive, resizing at run time, and compensating
//! for workers inside [`blocking`](crate::blocking). The numbers it
//! decides with are one packed word (`counts.rs`); the per-worker state is
//! in `slots.rs`; the starvation safety net is `monitor.rs`. (A little
//! over the usual file length: the protocol and its proof sketch are kept
//! beside the code.)
//!
//! # Policy
//!
//! A pool has a *cap* (`max_threads`: never more threads alive), a
//! *target* (how many workers not inside `blocking` it provides on
//! demand: `num_threads` for a fixed pool, the cap for an elastic one) and
//! a *minimum* kept alive while idle (`num_threads` for a fixed pool,
//! `min_threads` for an elastic one). A submission that finds no parked
//! worker and no spare one (searching for work) starts
//! one more if the pool is below both cap and target; an idle worker is
//! always reused first. A worker above the minimum that stays parked for
//! the keep-alive exits; a resize below the number alive lets workers
//! exit after their current task.
//!
//! # Protocol: no task is stranded
//!
//! The hazard is a worker deciding to exit while a submission arrives:
//! the submitter sees enough workers and starts none, the worker sees no
//! work and leaves, and the task sits in a queue nobody serves. Both sides
//! write first and read second, with a SeqCst fence in between:
//!
//! ```text
//!   submitter                              worker that may exit
//!   push the job                           leave the count (word RMW)
//!   light fence     (in wake_one)          heavy fence
//!   (barrier.rs: SeqCst fences on both sides where membarrier is missing)
//!   parked? wake one; else read the word:  work queued? take the place back
//!     room and nobody spare? start one       (or, if none is left, wake or
//!                                            start one as a submitter would)
//! ```
//!
//! Sketch of the proof. Call a worker *counted* while it is in `alive`. A
//! counted worker that is not inside `blocking` looks at the queues again
//! before it can block for good: a running one after its task, a spare one
//! before it parks (it checks the queues after registering as parked), a
//! parked one when a producer wakes it. So a job is stranded only if, after
//! its push, no counted worker is left and nobody starts one. By the two
//! fences, for each worker that leaves the count either its post-fence
//! check sees the job (and it stays, or hands the job on as a submitter
//! would), or the submitter's post-fence read of the word sees the worker
//! gone. In the second case the submitter starts a worker unless the word
//! still shows room taken: a spare worker (which will look, as above), or
//! as many counted workers as the target (which will look). Entering
//! `blocking` lowers the pool's serving capacity the same way (the target
//! room grows) and follows the same write-fence-check rule; so does a
//! failed start. The loom model `loom/elastic.rs` checks this protocol.
//!
//! A start that fails (the OS refuses a thread, or an initializer panics
//! on a thread started after `build`) undoes its reservation and checks
//! again: existing workers take the job; when the pool has no thread at
//! all, every queued job resolves to [`TaskError::ThreadStart`] rather than
//! waiting forever.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as StdOrdering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use once_cell::sync::OnceCell;

use crate::core::counts::{Counts, CountsCell};
use crate::core::monitor::Monitor;
use crate::core::registry::Registry;
use crate::core::slots::{Deques, Slot, Slots};
use crate::core::sync::lock_std as lock;
use crate::core::sync::{wait_std, wait_timeout_std};
use crate::core::worker::WorkerCtx;
use crate::error::payload_message;

/// A user hook run on worker threads with the worker's index.
pub(crate) type Hook = Arc<dyn Fn(usize) + Send + Sync + 'static>;

/// The most threads a pool may have (`Builder::MAX_THREADS`).
pub(crate) const MAX_THREADS: usize = 16_384;
const _: () = assert!(MAX_THREADS <= crate::core::counts::LIMIT);

/// How many threads beyond its size a fixed pool may start to stand in for
/// workers inside `blocking`, unless `max_threads` says otherwise.
pub(crate) const BLOCKING_EXTRA: usize = 512;

/// The default keep-alive.
pub(crate) const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// How a pool starts its threads and how it sizes itself.
pub(crate) struct Config {
    pub(crate) thread_name: String,
    pub(crate) stack_size: usize,
    pub(crate) initializer: Option<Hook>,
    pub(crate) on_start: Option<Hook>,
    pub(crate) on_stop: Option<Hook>,
    pub(crate) keep_alive: Duration,
    /// Built with `max_threads` and no `num_threads`: workers searching
    /// for work count as spare, and the starvation monitor runs.
    pub(crate) elastic: bool,
    pub(crate) sizes: Sizes,
}

/// The three sizes (see the module docs); `min <= target <= cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sizes {
    pub(crate) min: usize,
    pub(crate) target: usize,
    pub(crate) cap: usize,
    /// A fixed pool (`num_threads`): its cap only bounds the threads added
    /// for `blocking`. Otherwise elastic: target and cap are one.
    pub(crate) fixed: bool,
}

/// The thread set of one pool.
pub(crate) struct Threads {
    pub(crate) counts: CountsCell,
    pub(crate) slots: Slots,
    config: Config,
    /// The sizes as last set (changed under this lock).
    sizes: Mutex<Sizes>,
    min: AtomicUsize,
    /// A resize went below the threads alive: workers check after each
    /// task whether they should leave.
    shrinking: AtomicBool,
    peak: AtomicUsize,
    /// Join handles of threads started and not yet joined.
    handles: Mutex<Vec<JoinHandle<()>>>,
    /// Threads whose body has not returned (for bounded joins).
    running: Mutex<usize>,
    running_cv: Condvar,
    /// Why a thread could not start, if one could not: the error a job gets
    /// when the pool has no thread at all.
    last_failure: Mutex<Option<String>>,
    /// An initializer or start hook panicked on a thread started after
    /// `build`: the pool starts no more threads.
    broken: OnceCell<String>,
    pub(crate) monitor: Monitor,
}

impl Threads {
    pub(crate) fn new(config: Config) -> Self {
        let Sizes {
            min, target, cap, ..
        } = config.sizes;
        Threads {
            counts: CountsCell::new(Counts::new(0, cap as isize, target as isize)),
            // Indices are given back only after a worker's exit hook, so
            // exiting and starting workers can hold twice the cap at once.
            slots: Slots::new(2 * MAX_THREADS),
            sizes: Mutex::new(config.sizes),
            config,
            min: AtomicUsize::new(min),
            shrinking: AtomicBool::new(false),
            peak: AtomicUsize::new(0),
            handles: Mutex::new(Vec::new()),
            running: Mutex::new(0),
            running_cv: Condvar::new(),
            last_failure: Mutex::new(None),
            broken: OnceCell::new(),
            monitor: Monitor::default(),
        }
    }

    pub(crate) fn is_elastic(&self) -> bool {
        self.config.elastic
    }

    pub(crate) fn sizes(&self) -> Sizes {
        *lock(&self.sizes)
    }

    pub(crate) fn alive(&self) -> usize {
        self.counts.load().alive()
    }

    pub(crate) fn peak(&self) -> usize {
        self.peak.load(StdOrdering::Relaxed)
    }

    // ---- growing --------------------------------------------------------------

    /// A job was pushed and no parked worker was woken (the fence of the
    /// protocol is behind us, in `wake_one`): start a worker if the pool
    /// has room and nobody spare, or let the starvation monitor watch.
    /// One atomic load when there is nothing to do.
    #[inline]
    pub(crate) fn unserved(&self, registry: &Registry) {
        let counts = self.counts.load();
        if counts.may_grow() {
            self.grow(registry);
        } else if self.config.elastic && !counts.armed() {
            self.monitor.arm(registry);
        }
    }

    #[cold]
    #[inline(never)]
    fn grow(&self, registry: &Registry) {
        if self.broken.get().is_some() {
            self.if_no_thread_fail_queued(registry);
            return;
        }
        if self
            .counts
            .update(|c| c.may_grow().then(|| c.reserved()))
            .is_some()
        {
            self.start_reserved(registry, None);
        }
    }

    /// Starts one worker beyond what submissions asked for (the starvation
    /// monitor's remedy), if below the cap. True if one was started.
    pub(crate) fn grow_starved(&self, registry: &Registry) -> bool {
        if self.broken.get().is_some() {
            return false;
        }
        let reserved = self
            .counts
            .update(|c| (c.cap_room() > 0 && c.target_room() > 0).then(|| c.reserved()));
        reserved.is_some() && self.start_reserved(registry, None)
    }

    /// Reserves and starts `n` workers at build (no conditions: the pool
    /// is new) and waits for their start hooks.
    pub(crate) fn start_initial(&self, registry: &Registry, n: usize) -> Result<(), StartError> {
        let startup = Arc::new(Startup::default());
        let mut started = 0;
        let mut failure = None;
        for _ in 0..n {
            self.counts.update(|c| Some(c.reserved()));
            if self.start(registry, Some(&startup)).is_err() {
                self.counts.update(|c| Some(c.unreserved()));
                failure = Some(StartError::Spawn(self.last_failure().unwrap_or_default()));
                break;
            }
            started += 1;
        }
        if let Some(error) = startup.wait(started) {
            failure.get_or_insert(StartError::Hook(error));
        }
        failure.map_or(Ok(()), Err)
    }

    /// Starts a thread for a reservation already in the word; on failure
    /// undoes it (see the module docs). True if a thread was started.
    fn start_reserved(&self, registry: &Registry, startup: Option<&Arc<Startup>>) -> bool {
        match self.start(registry, startup) {
            Ok(()) => {
                if self.config.elastic && !self.counts.load().armed() {
                    self.monitor.arm(registry);
                }
                true
            }
            Err(()) => {
                self.start_failed(registry);
                false
            }
        }
    }

    fn start(&self, registry: &Registry, startup: Option<&Arc<Startup>>) -> Result<(), ()> {
        let Some(me) = registry.arc() else {
            self.failed("the pool is being dropped".into());
            return Err(());
        };
        let Some((index, slot, deque)) = self.slots.take() else {
            self.failed(format!("all {} worker slots are in use", 2 * MAX_THREADS));
            return Err(());
        };
        // Active from now: `wait_idle` must not call the pool idle while a
        // thread it started for queued work is on its way.
        crate::core::idle::set_active(registry, &slot.counters, true);
        *lock(&self.running) += 1;
        let name = format!("{}-{}", self.config.thread_name, index);
        let builder = thread::Builder::new()
            .name(name.clone())
            .stack_size(self.config.stack_size);
        let startup = startup.cloned();
        // The deque goes into the thread; if the spawn fails it comes back
        // through this cell (the closure is dropped unrun).
        let parts = Arc::new(Mutex::new(Some(deque)));
        let theirs = parts.clone();
        let their_slot = slot.clone();
        let body = move || {
            let deque = lock(&theirs).take().expect("the deque is handed over once");
            drop(theirs);
            run_thread(me, index, their_slot, deque, name, startup);
        };
        // std may panic rather than return an error for some absurd sizes.
        let spawned = catch_unwind(AssertUnwindSafe(|| builder.spawn(body)));
        match spawned {
            Ok(Ok(handle)) => {
                let mut handles = lock(&self.handles);
                reap_finished(&mut handles);
                handles.push(handle);
                drop(handles);
                self.peak
                    .fetch_max(self.counts.load().alive(), StdOrdering::Relaxed);
                Ok(())
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    Err(p) => payload_message(p.as_ref())
                        .unwrap_or("spawn panicked")
                        .to_owned(),
                    Ok(Ok(_)) => unreachable!(),
                };
                let deque = lock(&parts).take().expect("an unspawned closure keeps it");
                crate::core::idle::set_active(registry, &slot.counters, false);
                self.slots.give_back(index, &slot, deque);
                self.thread_exited();
                self.failed(format!("failed to spawn worker thread {index}: {why}"));
                Err(())
            }
        }
    }

    fn failed(&self, why: String) {
        *lock(&self.last_failure) = Some(why);
    }

    /// The first start failure's message, if a start has failed.
    pub(crate) fn last_failure(&self) -> Option<String> {
        lock(&self.last_failure).clone()
    }

    /// Undoes a reservation whose thread never took a job, then makes sure
    /// queued work is not stranded (see the module docs).
    fn start_failed(&self, registry: &Registry) {
        self.counts.update(|c| Some(c.unreserved()));
        crate::core::barrier::heavy();
        if registry.has_queued() && !registry.parking.wake_one() {
            self.if_no_thread_fail_queued(registry);
        }
    }

    /// With no worker alive, nothing will ever run the queued jobs: they
    /// resolve to [`TaskError::ThreadStart`].
    fn if_no_thread_fail_queued(&self, registry: &Registry) {
        if self.counts.load().alive() == 0 {
            let why = self
                .broken
                .get()
                .cloned()
                .or_else(|| self.last_failure())
                .unwrap_or_else(|| "no worker thread could be started".into());
            registry.fail_queued(&why);
        }
    }

    // ---- shrinking --------------------------------------------------------------

    /// How long a parked worker waits before it may retire: the keep-alive
    /// when more than the minimum are alive, else forever.
    #[inline]
    pub(crate) fn park_limit(&self) -> Option<Duration> {
        (self.counts.load().alive() > self.min.load(StdOrdering::Relaxed))
            .then_some(self.config.keep_alive)
    }

    /// Whether a resize asked workers to leave after their task.
    #[inline]
    pub(crate) fn shrinking(&self) -> bool {
        self.shrinking.load(StdOrdering::Relaxed)
    }

    /// The worker's idle wait gave up: its keep-alive ran out
    /// (`timed_out`) or a resize asked for fewer workers. True if it left
    /// the count and must exit; its deque is empty either way.
    pub(crate) fn try_retire(&self, ctx: &WorkerCtx, timed_out: bool) -> bool {
        let registry = &*ctx.registry;
        // Nothing stays behind in a deque nobody will own (its fork deque
        // is empty: a worker in its idle wait is inside no `join`).
        debug_assert!(ctx.forks.is_empty(), "a retiring worker has forks queued");
        while let Some(job) = ctx.local.pop() {
            registry.injector.push(job);
        }
        let min = self.min.load(StdOrdering::Relaxed);
        let shrinking = self.shrinking();
        let left = self.counts.update(|c| {
            let over = c.cap_room() < 0 || c.target_room() < 0;
            let may = c.alive() > min && (timed_out || (shrinking && over));
            may.then(|| c.exited())
        });
        let Some(left) = left else {
            if shrinking && self.counts.load().cap_room() >= 0 {
                self.done_shrinking();
            }
            return false;
        };
        if shrinking && left.cap_room() >= 0 && left.target_room() >= 0 {
            self.done_shrinking();
        }
        crate::core::barrier::heavy();
        if registry.has_queued() {
            if timed_out
                && self
                    .counts
                    .update(|c| (c.cap_room() > 0).then(|| c.rejoined()))
                    .is_some()
            {
                return false;
            }
            registry.announce_work();
        }
        true
    }

    fn done_shrinking(&self) {
        self.shrinking.store(false, StdOrdering::Relaxed);
        // A resize that raced with us sets it again after its own update.
        let c = self.counts.load();
        if c.cap_room() < 0 || c.target_room() < 0 {
            self.shrinking.store(true, StdOrdering::Relaxed);
        }
    }

    /// A worker leaves because the pool is done (closed, nothing queued).
    pub(crate) fn exit_done(&self) {
        self.counts.update(|c| Some(c.exited()));
    }

    // ---- blocking -----------------------------------------------------------------

    /// A worker of this pool enters `blocking`: the pool wants one more
    /// worker, and queued work must not wait for this one.
    pub(crate) fn begin_blocking(&self, registry: &Registry) {
        self.counts.begin_blocking();
        crate::core::barrier::heavy();
        if registry.has_queued() {
            registry.announce_work();
        }
    }

    pub(crate) fn end_blocking(&self) {
        self.counts.end_blocking();
    }

    // ---- resizing -------------------------------------------------------------------

    /// Sets new sizes (validated by the caller), starting workers to reach
    /// the minimum, or letting workers go after their task.
    pub(crate) fn resize(&self, registry: &Registry, new: Sizes) {
        let mut sizes = lock(&self.sizes);
        let old = *sizes;
        *sizes = new;
        self.min.store(new.min, StdOrdering::Relaxed);
        let cap_delta = new.cap as isize - old.cap as isize;
        let target_delta = new.target as isize - old.target as isize;
        let now = self
            .counts
            .update(|c| Some(c.resized(cap_delta, target_delta)))
            .expect("always applied");
        drop(sizes);
        if now.cap_room() < 0 || now.target_room() < 0 {
            self.shrinking.store(true, StdOrdering::SeqCst);
            // Parked workers look at once.
            registry.parking.wake_all();
        }
        if registry.is_closed() {
            return;
        }
        // Up to the minimum now; beyond it, on demand.
        while self.counts.load().alive() < new.min {
            let reserved = self
                .counts
                .update(|c| (c.alive() < new.min && c.cap_room() > 0).then(|| c.reserved()));
            if reserved.is_none() || !self.start_reserved(registry, None) {
                break;
            }
        }
        // Growth may now be allowed for work already queued.
        crate::core::barrier::heavy();
        if registry.has_queued() {
            registry.announce_work();
        }
    }

    // ---- joining --------------------------------------------------------------------

    /// Called as each worker thread's body returns (also if it unwinds).
    pub(crate) fn thread_exited(&self) {
        *lock(&self.running) -= 1;
        self.running_cv.notify_all();
    }

    /// Waits until no worker thread is running, or `deadline`; true if none
    /// is.
    pub(crate) fn wait_exited(&self, deadline: Option<Instant>) -> bool {
        let mut running = lock(&self.running);
        while *running > 0 {
            let timeout = match deadline {
                None => None,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return false,
                },
            };
            running = match timeout {
                None => wait_std(&self.running_cv, running),
                Some(left) => wait_timeout_std(&self.running_cv, running, left),
            };
        }
        true
    }

    /// Joins every worker thread (after close): those that retired earlier
    /// and those leaving now, including any started while this runs.
    pub(crate) fn join_all(&self) {
        loop {
            let handles = std::mem::take(&mut *lock(&self.handles));
            let none = handles.is_empty();
            for handle in handles {
                let _ = handle.join();
            }
            if none {
                self.wait_exited(None);
                if lock(&self.handles).is_empty() {
                    break;
                }
            }
        }
        self.monitor.join();
    }

    // ---- hooks --------------------------------------------------------------------

    fn run_start_hooks(&self, index: usize, name: &str) -> Result<(), String> {
        let run = |what: &str, hook: &Option<Hook>| match hook {
            Some(hook) => catch_unwind(AssertUnwindSafe(|| hook(index))).map_err(|p| {
                let msg = payload_message(p.as_ref()).unwrap_or("non-string panic payload");
                format!("{what} panicked on worker {index} ({name}): {msg}")
            }),
            None => Ok(()),
        };
        run("on_thread_start", &self.config.on_start)?;
        run("initializer", &self.config.initializer)
    }
}

/// Joins the handles of threads that have finished (they are gone; this
/// only frees what the OS keeps for a joinable thread).
fn reap_finished(handles: &mut Vec<JoinHandle<()>>) {
    let mut i = 0;
    while i < handles.len() {
        if handles[i].is_finished() {
            let _ = handles.swap_remove(i).join();
        } else {
            i += 1;
        }
    }
}

/// A worker thread's whole life.
fn run_thread(
    registry: Arc<Registry>,
    index: usize,
    slot: Arc<Slot>,
    deque: Deques,
    name: String,
    startup: Option<Arc<Startup>>,
) {
    // Counted however the thread ends, for join_timeout.
    struct Exit(Arc<Registry>);
    impl Drop for Exit {
        fn drop(&mut self) {
            self.0.threads.thread_exited();
        }
    }
    let _exit = Exit(registry.clone());
    let threads = &registry.threads;
    let stack_size = threads.config.stack_size;
    let ctx = WorkerCtx::new(registry.clone(), index, slot.clone(), deque, stack_size);
    // A thread that fails its start hooks in `build` keeps its index: the
    // build fails anyway, and every worker it starts gets its own index.
    let in_build = startup.is_some();
    let (ok, ctx) = WorkerCtx::serve(ctx, |ctx| {
        let started = threads.run_start_hooks(index, &name);
        let ok = started.is_ok();
        match (startup, started) {
            (Some(startup), started) => startup.report(started.err()),
            (None, Err(why)) => {
                let _ = threads.broken.set(why);
            }
            (None, Ok(())) => {}
        }
        if ok {
            ctx.run();
        } else {
            threads.start_failed(&registry);
            crate::core::idle::set_active(&registry, &slot.counters, false);
        }
        if let Some(hook) = &threads.config.on_stop {
            // The thread is leaving: a panic here has nowhere to go.
            let _ = catch_unwind(AssertUnwindSafe(|| hook(index)));
        }
        ok
    });
    if let Some(ctx) = ctx.filter(|_| ok || !in_build) {
        threads.slots.give_back(index, &slot, ctx.into_deque());
    }
}

/// Why `build` could not start its workers.
pub(crate) enum StartError {
    /// The OS refused a thread.
    Spawn(String),
    /// An initializer or start hook panicked.
    Hook(String),
}

/// Counts workers started in `build` through their start hooks; keeps the
/// first failure.
#[derive(Default)]
pub(crate) struct Startup {
    state: Mutex<(usize, Option<String>)>,
    all_reported: Condvar,
}

impl Startup {
    fn report(&self, error: Option<String>) {
        let mut state = lock(&self.state);
        state.0 += 1;
        if state.1.is_none() {
            state.1 = error;
        }
        self.all_reported.notify_all();
    }

    fn wait(&self, workers: usize) -> Option<String> {
        let mut state = lock(&self.state);
        while state.0 < workers {
            state = wait_std(&self.all_reported, state);
        }
        state.1.take()
    }
}
