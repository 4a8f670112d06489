//! The queue entry, [`JobRef`]: two words, a pointer to a job and the
//! table of what can be done with it. Most jobs are reference-counted
//! tasks on the heap ([`JobRef::new`] from an `Arc` of any [`Job`], or
//! [`JobRef::recycled`] from a [`Recycled`] [`RunShared`] job, a plain
//! or token task whose memory its threads reuse); a
//! fork-join job lives in the stack frame of the worker that forked it
//! ([`StackJob`], queued by [`join`](crate::join) without any allocation).
//!
//! Every entry ends in exactly one of three ways: it is run
//! ([`JobRef::run`]), discarded ([`JobRef::discard`], then dropped), or
//! dropped. A heap entry holds one strong reference, given back when it
//! ends. A stack entry holds nothing: its job's owner does not leave its
//! frame before the job's latch is set (by a run or a discard) or before
//! it has taken the entry back off its own deque, so the entry is never
//! used after its job is gone.

#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::Arc;

use crate::core::counters::Outcome;
use crate::core::latch::Latch;
use crate::core::recycle::Recycled;
use crate::core::runner::Runner;
use crate::error::TaskError;

/// What the scheduler sees of a task.
pub(crate) trait Job: Send + Sync {
    /// Runs the task unless it was already started or cancelled, and says
    /// what the pool's statistics should count for this queue entry.
    fn run(self: Arc<Self>, runner: &dyn Runner) -> Outcome;
    /// Resolves a task that has not started to `error` (Cancelled or
    /// PoolClosed); returns false if it had started or was already over.
    fn abort(&self, error: TaskError) -> bool;
    /// Cancels the task if it has not started (terminate, a dropped
    /// timer). True if this entry stands for a task that ended cancelled
    /// without running (now or earlier, e.g. through its handle): the
    /// caller counts it.
    fn discard(&self) -> bool {
        self.abort(TaskError::Cancelled)
    }
    /// The queue entry for this job: one more strong reference, as a
    /// [`JobRef`] (`JobRef::new` for the concrete type).
    fn into_job_ref(self: Arc<Self>) -> JobRef;
}

/// A job that runs through a shared reference, so that its entry can
/// hold a [`Recycled`] reference to it (which cannot be turned into the
/// `Arc` [`Job::run`] takes): the entry gives its reference back after
/// the run.
pub(crate) trait RunShared: Job {
    /// As [`Job::run`].
    fn run_shared(&self, runner: &dyn Runner) -> Outcome;
}

/// An owning reference that is one pointer (an async task's polling
/// reference, an `Arc`): what a queue entry ([`OwnedJob`]) or a waker
/// (`future/waker.rs`) can hold in place of the reference.
///
/// # Safety
///
/// [`from_raw`](RawRef::from_raw) of the pointer that
/// [`as_raw`](RawRef::as_raw) gives of a live reference is that same
/// reference: the same referent, kept alive by the same count.
pub(crate) unsafe trait RawRef: Sized {
    /// This reference's pointer, the reference kept.
    fn as_raw(&self) -> NonNull<()>;
    /// Gives up this reference as its pointer.
    #[inline]
    fn into_raw(self) -> NonNull<()> {
        let ptr = self.as_raw();
        std::mem::forget(self);
        ptr
    }
    /// The reference given up by [`into_raw`](RawRef::into_raw).
    ///
    /// # Safety
    ///
    /// `ptr` came from `into_raw` of this type, and is taken back once;
    /// or from `as_raw` of a reference that outlives the result, which is
    /// then never dropped (held in `ManuallyDrop`).
    unsafe fn from_raw(ptr: NonNull<()>) -> Self;
}

/// A heap job whose queue entry is a one-word owning pointer of the job's
/// own kind ([`JobRef::owned`]): an async task's entry, which holds one of
/// the task's references that may poll it, counted apart from the memory
/// its handle keeps (see `future/task.rs`).
pub(crate) trait OwnedJob: RawRef + Send + Sync {
    /// As [`Job::run`]; consumes the reference.
    fn run(self, runner: &dyn Runner) -> Outcome;
    /// As [`Job::abort`], through a reference the caller keeps.
    fn abort(&self, error: TaskError) -> bool;
    /// As [`Job::discard`].
    fn discard(&self) -> bool {
        self.abort(TaskError::Cancelled)
    }
}

/// What a [`JobRef`] can do with the job it points to.
struct JobVTable {
    /// Runs the job; the entry ends here.
    run: unsafe fn(NonNull<()>, &dyn Runner) -> Outcome,
    /// Cancels a job that has not started (or hands a stack job back to
    /// its owner); true if it counts as a cancelled task.
    discard: unsafe fn(NonNull<()>) -> bool,
    /// Ends a job that has not started with `error` (or hands a stack job
    /// back to its owner); true if this thread ended it.
    abort: unsafe fn(NonNull<()>, TaskError) -> bool,
    /// Gives back what the entry holds.
    drop: unsafe fn(NonNull<()>),
    /// Frees a recycled job whose every reference the caller holds,
    /// without counting down (see [`JobRef::free_alone`]); for the other
    /// kinds, which that is never called on, the same as `drop`.
    free_alone: unsafe fn(NonNull<()>),
}

/// A queued job (see the module docs).
pub(crate) struct JobRef {
    data: NonNull<()>,
    vtable: &'static JobVTable,
}

// SAFETY: every job a JobRef can point to is Send + Sync: `Job` requires
// both, and a `StackJob` is Sync when its closure and result are Send (it
// hands them over through its latch, never sharing them).
unsafe impl Send for JobRef {}
// SAFETY: as above; `&JobRef` only allows `discard` and `addr`.
unsafe impl Sync for JobRef {}

impl JobRef {
    /// The entry for a heap job: owns one strong reference of `job`.
    pub(crate) fn new<J: Job + 'static>(job: Arc<J>) -> JobRef {
        JobRef {
            // SAFETY (for the vtable functions below): this pointer came
            // from `Arc::into_raw` of an `Arc<J>`, and `ArcJob::<J>::VTABLE`
            // treats it as exactly that.
            data: unsafe { NonNull::new_unchecked(Arc::into_raw(job).cast_mut()) }.cast(),
            vtable: &ArcJob::<J>::VTABLE,
        }
    }

    /// The entry for a recycled heap job: owns one reference of `job`.
    pub(crate) fn recycled<J: RunShared + 'static>(job: Recycled<J>) -> JobRef {
        JobRef {
            // SAFETY (for the vtable functions below): this pointer came
            // from `Recycled::into_raw` of a `Recycled<J>`, and
            // `RecycledJob::<J>::VTABLE` treats it as exactly that.
            data: Recycled::into_raw(job).cast(),
            vtable: &RecycledJob::<J>::VTABLE,
        }
    }

    /// The entry for a job of its own reference kind (see [`OwnedJob`]):
    /// owns `job`.
    pub(crate) fn owned<J: OwnedJob + 'static>(job: J) -> JobRef {
        JobRef {
            // SAFETY (for the vtable functions below): this pointer came
            // from `RawRef::into_raw` of a `J`, and
            // `OwnedJobTable::<J>::VTABLE` treats it as exactly that.
            data: job.into_raw(),
            vtable: &OwnedJobTable::<J>::VTABLE,
        }
    }

    /// The address of the job, as [`Ran::entry`](crate::core::job::Ran)
    /// and [`StackJob::addr`] give it: identifies the entry of a task that
    /// ran in place, or of a fork-join job taken back.
    #[inline]
    pub(crate) fn addr(&self) -> usize {
        self.data.as_ptr() as usize
    }

    /// The entry's two words, for a queue that stores them as atomics
    /// (`forks.rs`); [`from_raw`](JobRef::from_raw) makes the entry again.
    #[inline]
    pub(crate) fn into_raw(self) -> (*mut (), *mut ()) {
        let raw = (
            self.data.as_ptr(),
            (self.vtable as *const JobVTable).cast_mut().cast::<()>(),
        );
        std::mem::forget(self);
        raw
    }

    /// The entry whose words [`into_raw`](JobRef::into_raw) gave.
    ///
    /// # Safety
    ///
    /// `data` and `table` came from one `into_raw`, and this is the only
    /// entry made from them (the entry is live again, once).
    #[inline]
    pub(crate) unsafe fn from_raw(data: *mut (), table: *mut ()) -> JobRef {
        JobRef {
            // SAFETY: the caller's promise: `data` came from a live entry's
            // non-null pointer, `table` from its `&'static` table.
            data: unsafe { NonNull::new_unchecked(data) },
            vtable: unsafe { &*table.cast_const().cast::<JobVTable>() },
        }
    }

    /// Runs the job and ends the entry.
    #[inline]
    pub(crate) fn run(self, runner: &dyn Runner) -> Outcome {
        let (data, run) = (self.data, self.vtable.run);
        std::mem::forget(self);
        // SAFETY: the entry is live (not yet run, discarded or dropped) and
        // is consumed here, so the job runs once through it.
        unsafe { run(data, runner) }
    }

    /// Cancels the job if it has not started; true if that counts as a
    /// cancelled task. A stack job is handed back to its owner, who runs
    /// it: it is never counted. The entry must be dropped afterwards.
    pub(crate) fn discard(&self) -> bool {
        // SAFETY: the entry is live; discard ends what it may do but drop.
        unsafe { (self.vtable.discard)(self.data) }
    }

    /// Ends the job with `error` if it has not started (a pool that can
    /// start no thread to run it). A stack job is handed back to its
    /// owner, as by [`discard`](JobRef::discard). The entry must be
    /// dropped afterwards.
    pub(crate) fn abort(&self, error: TaskError) -> bool {
        // SAFETY: as for `discard`.
        unsafe { (self.vtable.abort)(self.data, error) }
    }

    /// Frees the recycled job this entry points to, held alone: the
    /// entry's reference and every other one are the caller's. The block
    /// is freed through the job's own type (known to the entry's table),
    /// so the drop of its value is inlined and its size a constant.
    ///
    /// # Safety
    ///
    /// The entry was made by [`JobRef::recycled`], and the caller holds
    /// every other reference to its job, gives them up without counting
    /// them down (forgets them) and never uses them again.
    #[allow(unsafe_code)]
    #[inline]
    pub(crate) unsafe fn free_alone(self) {
        let (data, free_alone) = (self.data, self.vtable.free_alone);
        std::mem::forget(self);
        // SAFETY: the caller's promise; the entry is consumed here.
        unsafe { free_alone(data) }
    }
}

impl Drop for JobRef {
    fn drop(&mut self) {
        // SAFETY: the entry is live and ends here.
        unsafe { (self.vtable.drop)(self.data) }
    }
}

/// `discard` of a heap entry, `Arc` or recycled.
///
/// SAFETY: `data` points to the `J` of a live entry, whose reference
/// keeps it alive during the call.
unsafe fn discard_heap<J: Job>(data: NonNull<()>) -> bool {
    // SAFETY: see above.
    unsafe { data.cast::<J>().as_ref() }.discard()
}

/// `abort` of a heap entry, `Arc` or recycled.
///
/// SAFETY: as `discard_heap`.
unsafe fn abort_heap<J: Job>(data: NonNull<()>, error: TaskError) -> bool {
    // SAFETY: see above.
    unsafe { data.cast::<J>().as_ref() }.abort(error)
}

/// The vtable of an `Arc<J>` entry.
struct ArcJob<J>(std::marker::PhantomData<J>);

impl<J: Job + 'static> ArcJob<J> {
    const VTABLE: JobVTable = JobVTable {
        run: Self::run,
        discard: discard_heap::<J>,
        abort: abort_heap::<J>,
        drop: Self::drop,
        free_alone: Self::drop,
    };

    /// SAFETY: `data` is the `Arc::into_raw` of an `Arc<J>` whose strong
    /// reference the entry owns (see `JobRef::new`); the entry ends here.
    unsafe fn run(data: NonNull<()>, runner: &dyn Runner) -> Outcome {
        // SAFETY: see above; the reference moves back into an Arc.
        let job = unsafe { Arc::from_raw(data.cast::<J>().as_ptr()) };
        job.run(runner)
    }

    /// SAFETY: as `run`; the entry ends here.
    unsafe fn drop(data: NonNull<()>) {
        // SAFETY: the entry's strong reference is given back.
        drop(unsafe { Arc::from_raw(data.cast::<J>().as_ptr()) });
    }
}

/// The vtable of a `Recycled<J>` entry.
struct RecycledJob<J>(std::marker::PhantomData<J>);

impl<J: RunShared + 'static> RecycledJob<J> {
    const VTABLE: JobVTable = JobVTable {
        run: Self::run,
        discard: discard_heap::<J>,
        abort: abort_heap::<J>,
        drop: Self::drop,
        free_alone: Self::free_alone,
    };

    /// SAFETY: `data` is the `Recycled::into_raw` of a `Recycled<J>` whose
    /// reference the entry owns (see `JobRef::recycled`); the entry ends
    /// here.
    unsafe fn run(data: NonNull<()>, runner: &dyn Runner) -> Outcome {
        // SAFETY: see above; the reference moves back into a Recycled,
        // which keeps the job alive during the run and gives the
        // reference back after it.
        let job = unsafe { Recycled::from_raw(data.cast::<J>()) };
        job.run_shared(runner)
    }

    /// SAFETY: as `run`; the entry ends here.
    unsafe fn drop(data: NonNull<()>) {
        // SAFETY: the entry's reference is given back.
        drop(unsafe { Recycled::from_raw(data.cast::<J>()) });
    }

    /// SAFETY: as `run`, and every reference to the job is the caller's
    /// (see `JobRef::free_alone`); the entry ends here.
    unsafe fn free_alone(data: NonNull<()>) {
        // SAFETY: the entry's reference comes back, and with the others
        // given up it is the only one left: the block is freed at once.
        unsafe { Recycled::free_alone(Recycled::from_raw(data.cast::<J>())) };
    }
}

/// The vtable of an [`OwnedJob`] entry.
struct OwnedJobTable<J>(std::marker::PhantomData<J>);

impl<J: OwnedJob + 'static> OwnedJobTable<J> {
    const VTABLE: JobVTable = JobVTable {
        run: Self::run,
        discard: Self::discard,
        abort: Self::abort,
        drop: Self::drop,
        free_alone: Self::drop,
    };

    /// SAFETY (all four): `data` is the `RawRef::into_raw` of a `J`
    /// whose reference the entry owns (see `JobRef::owned`); `run` and
    /// `drop` end the entry.
    unsafe fn run(data: NonNull<()>, runner: &dyn Runner) -> Outcome {
        // SAFETY: see above; the reference is taken back, once.
        unsafe { J::from_raw(data) }.run(runner)
    }

    unsafe fn discard(data: NonNull<()>) -> bool {
        // SAFETY: see above; the reference stays the entry's.
        std::mem::ManuallyDrop::new(unsafe { J::from_raw(data) }).discard()
    }

    unsafe fn abort(data: NonNull<()>, error: TaskError) -> bool {
        // SAFETY: as `discard`.
        std::mem::ManuallyDrop::new(unsafe { J::from_raw(data) }).abort(error)
    }

    unsafe fn drop(data: NonNull<()>) {
        // SAFETY: see above; the entry's reference is given back.
        drop(unsafe { J::from_raw(data) });
    }
}

/// A job in its owner's stack frame: the closure, the slot for its
/// outcome and the latch that says the outcome is there.
pub(crate) struct StackJob<F, R> {
    func: UnsafeCell<Option<F>>,
    result: UnsafeCell<Option<std::thread::Result<R>>>,
    pub(crate) latch: Latch,
}

impl<F, R> StackJob<F, R>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    pub(crate) fn new(func: F) -> Self {
        StackJob {
            func: UnsafeCell::new(Some(func)),
            result: UnsafeCell::new(None),
            latch: Latch::new(),
        }
    }

    /// The job's address, as its entry's [`JobRef::addr`] says it.
    pub(crate) fn addr(&self) -> usize {
        self as *const Self as usize
    }

    /// An entry for this job, to queue on a deque.
    ///
    /// # Safety
    ///
    /// The job must not move, and its frame must not be left (returned
    /// from or unwound through), until either its latch is set or the
    /// entry has been taken back off the queue (and dropped) by the
    /// caller: at most one entry may exist, and while it is queued only
    /// the entry touches the closure and the result.
    pub(crate) unsafe fn as_job_ref(&self) -> JobRef {
        JobRef {
            data: NonNull::from(self).cast(),
            vtable: &StackVTable::<F, R>::VTABLE,
        }
    }

    /// Runs the closure of a job whose entry its owner took back off the
    /// queue before anyone ran it: a plain call, its panic unwinds.
    #[inline]
    pub(crate) fn run_taken_back(self) -> R {
        match self.func.into_inner() {
            Some(func) => func(),
            None => unreachable!("a fork taken back still has its closure"),
        }
    }

    /// The outcome, once the latch is set or the entry was taken back
    /// and dropped: what a thief left, or else the closure run here (the
    /// job was taken back, or handed back by a terminating pool).
    pub(crate) fn complete(self) -> std::thread::Result<R> {
        match (self.func.into_inner(), self.result.into_inner()) {
            (_, Some(result)) => result,
            (Some(func), None) => catch_unwind(AssertUnwindSafe(func)),
            (None, None) => unreachable!("a thief ran the closure and left no outcome"),
        }
    }
}

/// The vtable of a [`StackJob`] entry.
struct StackVTable<F, R>(std::marker::PhantomData<(F, R)>);

impl<F, R> StackVTable<F, R>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    const VTABLE: JobVTable = JobVTable {
        run: Self::run,
        discard: Self::discard,
        abort: Self::abort,
        drop: Self::drop,
        free_alone: Self::drop,
    };

    /// SAFETY: `data` points to a live `StackJob<F, R>` whose only entry
    /// this is (see `StackJob::as_job_ref`); its owner waits for the latch.
    unsafe fn run(data: NonNull<()>, _runner: &dyn Runner) -> Outcome {
        let job = data.cast::<StackJob<F, R>>().as_ptr();
        // SAFETY: while the entry is queued only the entry touches the
        // closure; the owner reads it again only after the latch is set.
        let func = unsafe { (*(*job).func.get()).take() };
        if let Some(func) = func {
            let result = catch_unwind(AssertUnwindSafe(func));
            // SAFETY: as above, for the result slot.
            unsafe { *(*job).result.get() = Some(result) };
        }
        // SAFETY: the latch is live until set; nothing touches the job
        // after this call, which may free it.
        unsafe { Latch::set(std::ptr::addr_of!((*job).latch)) };
        // Not counted as a task: the value (or panic) goes back to the
        // fork, which belongs to the task that forked it.
        Outcome::Skipped
    }

    /// SAFETY: as `run`.
    unsafe fn discard(data: NonNull<()>) -> bool {
        let job = data.cast::<StackJob<F, R>>().as_ptr();
        // SAFETY: hands the job back unrun: the owner finds no result and
        // runs the closure itself. Nothing touches the job afterwards.
        unsafe { Latch::set(std::ptr::addr_of!((*job).latch)) };
        false
    }

    /// SAFETY: as `run`. The owner runs its own closure, whatever the pool
    /// lacks: it is a thread of the pool already.
    unsafe fn abort(data: NonNull<()>, _error: TaskError) -> bool {
        // SAFETY: as `discard`.
        unsafe { Self::discard(data) }
    }

    /// The entry owns nothing of the job.
    unsafe fn drop(_data: NonNull<()>) {}
}

/// A heap job that is only ever dropped, for tests of queues: its
/// address says which it is, and an entry taken twice gives its reference
/// back twice (a use after free under Miri, a wrong count otherwise).
#[cfg(any(test, loom))]
pub(crate) struct Numbered;

#[cfg(any(test, loom))]
impl Job for Numbered {
    fn run(self: Arc<Self>, _runner: &dyn Runner) -> Outcome {
        Outcome::Skipped
    }
    fn abort(&self, _error: TaskError) -> bool {
        false
    }
    fn into_job_ref(self: Arc<Self>) -> JobRef {
        JobRef::new(self)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct NoRunner;
    impl Runner for NoRunner {
        fn pool(&self) -> u32 {
            0
        }
        fn terminated(&self) -> bool {
            false
        }
        fn started_here(&self) {}
    }

    struct Counted(Arc<AtomicUsize>);
    impl Job for Counted {
        fn run(self: Arc<Self>, _runner: &dyn Runner) -> Outcome {
            self.0.fetch_add(1, Ordering::SeqCst);
            Outcome::Completed
        }
        fn abort(&self, _error: crate::TaskError) -> bool {
            self.0.fetch_add(100, Ordering::SeqCst);
            true
        }
        fn into_job_ref(self: Arc<Self>) -> JobRef {
            JobRef::new(self)
        }
    }

    /// A heap entry gives back its reference however it ends: run,
    /// discarded then dropped, or dropped.
    #[test]
    fn heap_entry_gives_back_its_reference_however_it_ends() {
        let hits = Arc::new(AtomicUsize::new(0));
        let job = Arc::new(Counted(hits.clone()));
        let entries: Vec<_> = (0..3).map(|_| JobRef::new(job.clone())).collect();
        assert_eq!(Arc::strong_count(&job), 4);
        assert!(entries
            .iter()
            .all(|e| e.addr() == Arc::as_ptr(&job) as usize));
        let mut entries = entries.into_iter();
        assert_eq!(entries.next().unwrap().run(&NoRunner), Outcome::Completed);
        let discarded = entries.next().unwrap();
        assert!(discarded.discard());
        drop(discarded);
        drop(entries);
        assert_eq!(Arc::strong_count(&job), 1);
        assert_eq!(hits.load(Ordering::SeqCst), 101);
    }

    /// A stack job run through its entry leaves its value for the owner
    /// and sets the latch; one discarded leaves its closure to run here.
    #[test]
    fn stack_entry_runs_or_hands_the_closure_back() {
        let borrowed = String::from("borrowed");
        let job = StackJob::new(|| borrowed.len());
        // SAFETY: the job stays in this frame until its latch is set
        // (asserted below) and the entry is consumed by `run`.
        let entry = unsafe { job.as_job_ref() };
        assert_eq!(entry.addr(), job.addr());
        assert_eq!(entry.run(&NoRunner), Outcome::Skipped);
        assert!(job.latch.probe());
        assert!(matches!(job.complete(), Ok(8)));

        let job = StackJob::new(|| borrowed.len() + 1);
        // SAFETY: as above, the entry is discarded and dropped here.
        let entry = unsafe { job.as_job_ref() };
        assert!(!entry.discard());
        drop(entry);
        assert!(job.latch.probe());
        assert!(matches!(job.complete(), Ok(9)));
    }

    /// A panicking closure run through the entry is kept for the owner.
    #[test]
    fn stack_entry_keeps_a_panic_for_the_owner() {
        let job = StackJob::new(|| -> u8 { panic!("thief side") });
        // SAFETY: as above.
        let entry = unsafe { job.as_job_ref() };
        let _ = entry.run(&NoRunner);
        match job.complete() {
            Err(payload) => {
                assert_eq!(payload.downcast_ref::<&str>(), Some(&"thief side"))
            }
            _ => panic!("the panic was lost"),
        }
    }
}
