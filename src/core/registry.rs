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
//! again (with the light half of the handshake fence in between,
//! `barrier.rs`); a worker decides to exit only after it has seen `closed`
//! and then found every queue empty (with the heavy half in between). So
//! either the submitter sees the pool closed and
//! withdraws its own task (`PoolClosed`), or the task is visible to the
//! workers before they exit. No task is left in a queue nobody serves.

use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use crossbeam_deque::{Injector, Steal};
use once_cell::sync::OnceCell;

use crate::core::forks::Thieves;
use crate::core::idle::IdleWaiters;
use crate::core::job::{Extra, JobRef, Plain, Task, TaskPtr};
use crate::core::live::LiveSet;
use crate::core::parking::Parking;
use crate::core::recycle::Recycled;
use crate::core::threads::{Config, Threads};
use crate::error::TaskError;
use crate::pool::bounded::{Bound, TrySubmitError};
use crate::pool::priority::PriorityQueue;
use crate::timers::thread::Timer;

/// What a submission gives back to the code that makes its handle: the
/// task (which may already have been refused, if the pool closed while it
/// was queued), or the error of a submission refused outright. The
/// registry builds tasks, not handles: `AsyncResult` is the pool's face.
pub(crate) type Submitted<T> = Result<TaskPtr<T>, TaskError>;

pub(crate) struct Registry {
    pub(crate) injector: Injector<JobRef>,
    /// The threads announced as stealing forks (`forks.rs`).
    pub(crate) thieves: Thieves,
    /// The worker threads: slots (deques, counters), counts, growth and
    /// retirement (`threads.rs`).
    pub(crate) threads: Threads,
    pub(crate) parking: Parking,
    /// Async tasks not over yet: workers stay while any is alive, even
    /// after close (a suspended task may still be woken).
    pub(crate) async_tasks: LiveSet,
    closed: AtomicBool,
    terminated: AtomicBool,
    /// Prioritized submissions (`submit_with_priority`).
    pub(crate) priority: PriorityQueue,
    /// The cap on queued tasks, if the pool was built with `max_queued`.
    pub(crate) bound: Option<Bound>,
    /// Cancellations counted off the workers (terminate's drain, timers
    /// cancelled before they fired): rare paths, so one shared counter.
    pub(crate) cancelled_elsewhere: AtomicU64,
    /// Threads in `wait_idle`.
    pub(crate) idle: IdleWaiters,
    /// The thread behind `submit_after` / `submit_periodic`, started on
    /// first use and shut down when the pool closes.
    timer: OnceCell<Timer>,
    /// The workers' name prefix (the timer thread is "{prefix}-timer").
    thread_name: String,
    /// See [`id`](Registry::id).
    id: u32,
    /// This registry, weakly, in an allocation of its own: for starting
    /// threads from a `&self` method ([`arc`](Registry::arc)), and shared
    /// by the async tasks instead of each holding a weak reference to the
    /// registry (see [`link`](Registry::link)).
    link: Arc<PoolLink>,
    /// Where contained panics go (see `panics.rs`); kept alive here.
    _panic_handler: Option<crate::core::panics::PanicHandler>,
}

/// The weak reference to a registry that its async tasks share
/// ([`Registry::link`]). Aligned to two cache lines so that the reference
/// itself, read by every wake from outside the pool, is not on the line of
/// the `Arc`'s counts, which every spawn and every task's end write.
#[repr(align(128))]
pub(crate) struct PoolLink(pub(crate) Weak<Registry>);

/// The next pool's [`id`](Registry::id).
fn next_id() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    loop {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        if id != 0 {
            return id;
        }
    }
}

impl Registry {
    /// A registry with no thread yet (`Threads::start_initial` starts them).
    pub(crate) fn new(
        config: Config,
        max_queued: Option<usize>,
        panic_handler: Option<crate::core::panics::PanicHandler>,
    ) -> Arc<Self> {
        // Before the pool has a thread or a job: which form the fences of
        // its handshakes take (`barrier.rs`).
        crate::core::barrier::init();
        let n = config.sizes.target.min(64);
        let thread_name = config.thread_name.clone();
        let id = next_id();
        if let Some(handler) = &panic_handler {
            crate::core::panics::register(id, handler);
        }
        Arc::new_cyclic(|me| Registry {
            injector: Injector::new(),
            thieves: Thieves::new(),
            threads: Threads::new(config),
            parking: Parking::new(n),
            async_tasks: LiveSet::new(n),
            closed: AtomicBool::new(false),
            terminated: AtomicBool::new(false),
            priority: PriorityQueue::default(),
            bound: max_queued.map(Bound::new),
            cancelled_elsewhere: AtomicU64::new(0),
            idle: IdleWaiters::default(),
            timer: OnceCell::new(),
            thread_name,
            id,
            link: Arc::new(PoolLink(me.clone())),
            _panic_handler: panic_handler,
        })
    }

    /// The pool's size: the workers it provides on demand (a fixed pool's
    /// size, an elastic pool's cap); see `ThreadPool::num_threads`.
    pub(crate) fn num_threads(&self) -> usize {
        self.threads.sizes().target
    }

    /// A shared weak reference to this registry, for an async task to
    /// find its pool with from any thread. Shared rather than one weak
    /// reference per task: a task takes its reference when it is spawned
    /// and gives it back when it is dropped, on a worker, while a wake
    /// from outside the pool upgrades the weak reference (takes and gives
    /// back a strong one). With a weak reference per task, both counted
    /// on the registry's one count line, every outside wake waited for
    /// that line to come back from the workers ending tasks: 100,000
    /// wakes of suspended tasks from one thread (the async benchmark's
    /// `send` loop, median of 8, three runs) took 12-22 ms with a weak
    /// reference per task, 11-12 ms with this shared one (9 ms with no
    /// upgrade at all), against tokio's 9-17 ms in the same runs.
    pub(crate) fn link(&self) -> Arc<PoolLink> {
        self.link.clone()
    }

    /// This registry as an `Arc` (`None` only while it is being dropped).
    pub(crate) fn arc(&self) -> Option<Arc<Registry>> {
        self.link.0.upgrade()
    }

    pub(crate) fn weak(&self) -> Weak<Registry> {
        self.link.0.clone()
    }

    /// The workers' name prefix.
    pub(crate) fn thread_name(&self) -> &str {
        &self.thread_name
    }

    /// This pool's identity, as tasks record it: a number, not the
    /// registry's address, so a task stores it in 4 bytes of padding (see
    /// `Completion::new_in`). Unique among the first 2^32 - 1 pools of the
    /// process; after that the count wraps (skipping 0), and two live pools
    /// sharing one only lets a worker of one run a task of the other that
    /// it waits for in place (its value is still right).
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    pub(crate) fn submit<F, T>(&self, func: F) -> Submitted<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_task(func, Plain, None)
    }

    /// `submit` of a task with `extra` (a cancellation token, a scope to
    /// tell, or nothing) and optionally a priority: waits for room first
    /// on a bounded pool.
    #[inline]
    pub(crate) fn submit_task<F, T, X>(
        &self,
        func: F,
        extra: X,
        priority: Option<i32>,
    ) -> Submitted<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
        X: Extra,
    {
        if self.is_closed() || self.bound.as_ref().is_some_and(|b| !self.reserve(b)) {
            return self.refuse(func, extra);
        }
        self.enqueue_reserved(func, extra, priority)
    }

    /// Refuses a submission to a closed pool. Refused work is dropped
    /// here, unrun; its Drop is user code and must not make `submit`
    /// panic. Then the task has ended. Out of line, so that `submit`
    /// stays small.
    #[cold]
    #[inline(never)]
    fn refuse<F, T, X: Extra>(&self, func: F, extra: X) -> Submitted<T> {
        crate::core::panics::drop_reporting(self.id(), func);
        extra.ended();
        crate::core::panics::drop_reporting(self.id(), extra);
        Err(TaskError::PoolClosed)
    }

    /// Queues a task whose place (on a bounded pool) is already reserved.
    #[inline]
    pub(crate) fn enqueue_reserved<F, T, X>(
        &self,
        func: F,
        extra: X,
        priority: Option<i32>,
    ) -> Submitted<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
        X: Extra,
    {
        // What a task carries besides its closure is its type (`Extra`): a
        // plain task has no token field at all (memory per queued task).
        // The handle and the queue entry hold one reference each to the
        // one recycled block.
        let (handle, task) = Recycled::new_pair(Task::with_extra(func, self.id(), extra));
        let (handle, task) = (TaskPtr::recycled(handle), JobRef::recycled(task));
        let closed = match priority {
            None => self.push_reserved(task),
            Some(priority) => self.push_priority_reserved(priority, task),
        };
        if closed {
            // The pool closed while we pushed: take the task back unless a
            // worker already started it (then it simply runs).
            handle.abort(TaskError::PoolClosed);
        }
        Ok(handle)
    }

    /// [`submit`](Registry::submit) only if the pool is open and has room
    /// now; otherwise the closure comes back in the error.
    pub(crate) fn try_submit<F, T>(&self, f: F) -> Result<Submitted<T>, TrySubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if self.is_closed() {
            return Err(TrySubmitError::Closed(f));
        }
        if let Some(bound) = &self.bound {
            if !bound.try_reserve() {
                return Err(TrySubmitError::Full(f));
            }
        }
        Ok(self.enqueue_reserved(f, Plain, None))
    }

    /// Waits for a place in the queue if the pool is bounded (as
    /// `submit` does, see [`reserve`](Registry::reserve)); false if the
    /// pool is closed. Pair a true with one
    /// [`push_reserved`](Registry::push_reserved).
    pub(crate) fn reserve_place(&self) -> bool {
        match &self.bound {
            Some(bound) => self.reserve(bound),
            None => !self.is_closed(),
        }
    }

    /// Waits for a place in a bounded pool's queue; false if the pool
    /// closed first. A worker of this pool runs queued work meanwhile
    /// instead of blocking (see `bounded.rs`).
    fn reserve(&self, bound: &Bound) -> bool {
        loop {
            if bound.try_reserve() {
                return true;
            }
            if self.is_closed() {
                return false;
            }
            match crate::core::wait::help_once(self) {
                None => return bound.reserve_blocking(|| self.is_closed()),
                Some(true) => {}
                // The places are held by entries other workers are just
                // taking: their release is a few instructions away.
                Some(false) => std::thread::yield_now(),
            }
        }
    }

    /// Queues `job` (on the current worker's deque if it is one of ours,
    /// else on the injector) and wakes a sleeping worker if there is one.
    /// Returns true if the pool was found closed after the push: the caller
    /// must then withdraw the job (see the module docs). On a bounded pool
    /// the job is counted without waiting for room.
    pub(crate) fn push(&self, job: JobRef) -> bool {
        if let Some(bound) = &self.bound {
            bound.add_unchecked();
        }
        self.push_reserved(job)
    }

    /// Like [`push`](Registry::push), but always onto the injector, behind
    /// the outside work already queued, even from a worker (a periodic task
    /// with a zero period re-queues itself this way, so it cannot starve
    /// the rest).
    pub(crate) fn push_behind(&self, job: JobRef) -> bool {
        if let Some(bound) = &self.bound {
            bound.add_unchecked();
        }
        self.injector.push(job);
        self.announce()
    }

    fn push_priority_reserved(&self, priority: i32, job: JobRef) -> bool {
        self.priority.push(priority, job);
        self.announce()
    }

    /// [`push`](Registry::push) for a job whose place is reserved.
    #[inline]
    pub(crate) fn push_reserved(&self, job: JobRef) -> bool {
        if let Err(job) = crate::core::worker::push_local(self, job) {
            self.injector.push(job);
        }
        self.announce()
    }

    /// After a push: the close check and the wake-up (see the module docs).
    #[inline]
    fn announce(&self) -> bool {
        // wake_one starts with the producer's half of the handshake fence
        // (`barrier.rs`), which also serves between the push and the load
        // of `closed`, against the heavy half a worker runs between seeing
        // `closed` and deciding the queues are empty (`wait.rs`, PoolDone):
        // one fence, not two.
        self.announce_work();
        self.closed.load(Ordering::Relaxed)
    }

    /// Work was made visible: wake a parked worker, or else let the thread
    /// set start one (`threads.rs`; its fence is `wake_one`'s).
    #[inline]
    pub(crate) fn announce_work(&self) {
        if !self.parking.wake_one() {
            self.threads.unserved(self);
        }
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    #[inline]
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
            self.parking.wake_all();
            self.after_close();
        }
        self.threads.monitor.stop();
    }

    /// Close, and cancel every task that has not started.
    pub(crate) fn terminate(&self) {
        let was_closed = self.closed.swap(true, Ordering::SeqCst);
        self.terminated.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.cancel_queued();
        self.parking.wake_all();
        if !was_closed {
            self.after_close();
        }
        self.threads.monitor.stop();
    }

    /// What closing means for the optional parts: pending timers end
    /// (their handles resolve to `Cancelled`), and submitters blocked on a
    /// full queue wake up to see the pool closed.
    fn after_close(&self) {
        // Pairs with the fence in `timer()`: a timer started concurrently
        // with this close is shut down by one side or the other.
        fence(Ordering::SeqCst);
        if let Some(timer) = self.timer.get() {
            timer.shutdown();
        }
        if let Some(bound) = &self.bound {
            bound.wake_all();
        }
    }

    /// Cancels every queued task that has not started (they resolve to
    /// `Cancelled` at once); running closures are untouched. Every async
    /// task is cancelled too: one that is suspended or queued is dropped
    /// now, one being polled when its poll returns.
    pub(crate) fn cancel_queued(&self) {
        self.async_tasks.cancel_all();
        self.drain_queued(&|job| job.discard());
    }

    /// Resolves every queued task that has not started to `error` (the
    /// pool has no thread to run them: `threads.rs`); counted as
    /// cancelled in the statistics.
    pub(crate) fn fail_queued(&self, why: &str) {
        self.drain_queued(&|job| job.abort(TaskError::ThreadStart(why.to_owned())));
    }

    fn drain_queued(&self, end: &dyn Fn(&JobRef) -> bool) {
        let mut drained = Drained {
            end,
            entries: 0,
            cancelled: 0,
        };
        drained.drain(|| self.injector.steal());
        let mut announced = None;
        for slot in self.threads.slots.iter() {
            drained.drain(|| slot.forks.steal(&self.thieves, &mut announced));
            drained.drain(|| slot.stealer.steal());
        }
        drop(announced);
        for job in self.priority.take_all() {
            drained.discard(job);
        }
        if let Some(bound) = &self.bound {
            bound.release(drained.entries);
        }
        self.cancelled_elsewhere
            .fetch_add(drained.cancelled, Ordering::Relaxed);
    }

    /// Whether any queue holds a job (call after the heavy half of the
    /// handshake fence, `barrier.rs`, when the answer decides whether to
    /// sleep or exit).
    pub(crate) fn has_queued(&self) -> bool {
        !self.injector.is_empty()
            || self.priority.len() != 0
            || self
                .threads
                .slots
                .iter()
                .any(|s| !s.stealer.is_empty() || !s.forks.is_empty())
    }

    /// How many entries the queues hold (a snapshot).
    pub(crate) fn queued_len(&self) -> usize {
        self.injector.len()
            + self.priority.len()
            + self
                .threads
                .slots
                .iter()
                .map(|s| s.stealer.len() + s.forks.len())
                .sum::<usize>()
    }

    /// The pool's timer, started on first use.
    ///
    /// # Errors
    ///
    /// The OS error if the timer thread cannot be started.
    pub(crate) fn timer(&self) -> std::io::Result<&Timer> {
        let timer = self
            .timer
            .get_or_try_init(|| Timer::start(format!("{}-timer", self.thread_name)))?;
        // A close that ran while we started the timer may have found no
        // timer to shut down: then we do it (see `after_close`), so `join`
        // never waits for a timer thread nobody stops.
        fence(Ordering::SeqCst);
        if self.closed.load(Ordering::Relaxed) {
            timer.shutdown();
        }
        Ok(timer)
    }

    /// The pool's timer if it was started (never starts it).
    pub(crate) fn timer_if_started(&self) -> Option<&Timer> {
        self.timer.get()
    }

    /// Timers waiting for their deadline.
    pub(crate) fn scheduled_timers(&self) -> usize {
        self.timer.get().map_or(0, Timer::pending)
    }

    /// Joins the timer thread, if one was started (after close).
    pub(crate) fn join_timer(&self) {
        if let Some(timer) = self.timer.get() {
            timer.join();
        }
    }
}

/// Tallies what a drain took out of the queues.
struct Drained<'a> {
    /// Ends one entry's task; true if it ended unstarted.
    end: &'a dyn Fn(&JobRef) -> bool,
    entries: usize,
    cancelled: u64,
}

impl Drained<'_> {
    fn drain(&mut self, mut steal: impl FnMut() -> Steal<JobRef>) {
        loop {
            match steal() {
                Steal::Success(job) => self.discard(job),
                Steal::Empty => return,
                Steal::Retry => std::hint::spin_loop(),
            }
        }
    }

    fn discard(&mut self, job: JobRef) {
        self.entries += 1;
        if (self.end)(&job) {
            self.cancelled += 1;
        }
    }
}
