//! The fork deque: where [`join`](crate::join) queues its second closure
//! for thieves to see, one per worker, apart from the deque of tasks. It
//! is a Chase-Lev deque (Chase and Lev, "Dynamic circular work-stealing
//! deque", SPAA 2005, in the C11 form of Lê, Pop, Cohen and Zappa
//! Nardelli, "Correct and efficient work-stealing for weak memory
//! models", PPoPP 2013) whose owner skips the take-back's fence while no
//! thief is looking.
//!
//! # Why a deque of its own
//!
//! A fork is taken back by its owner far more often than it is stolen
//! (fib(24) on two workers: 75,000 forks, about 7 steals), and a
//! Chase-Lev take-back needs a full fence between lowering the bottom
//! index and reading the top one: without it the owner and a thief could
//! both take the last entry. That fence is 4.8 ns here, and it was most
//! of the time of a `join` that nobody stole from: with it, fib(24) took
//! as long as `rayon::join` (same instruction count, same fence); with
//! the fence left out (unsoundly, to measure it) 25-30% less, at one
//! worker and at two.
//!
//! # Thieves announce themselves, owners acknowledge
//!
//! So the fence is paid by the rare side. A thread that wants to steal a
//! fork first *announces* itself: it increments the pool's [`Thieves`]
//! count, then takes a ticket (a second counter). The owner's take-back
//! lowers the bottom index, then (compiler fence only) reads the count
//! with Acquire: zero, and it reads the top index with no fence; not zero,
//! and it fences, as in the plain algorithm, and *acknowledges*: it reads
//! the newest ticket and stores it in its deque's `ack` with Release. The
//! thief steals from a deque only once that deque's `ack` has reached its
//! ticket ([`Announced::cover`]). It withdraws (decrements the count, with
//! Release) when it is done looking, found or not.
//!
//! Why that suffices, for a take-back T and a steal S from T's deque made
//! under an announcement A acknowledged by a take-back K of the owner:
//! - T before K (in the owner's program order): K's Release store of the
//!   acknowledgement, which S's thief read with Acquire, publishes T's
//!   lowered bottom index to S, and T's read of the top index cannot see
//!   a compare-and-swap that comes after S's read of the acknowledgement.
//!   T and S are ordered: the plain algorithm's take before its steal.
//! - T is K or comes after it: K read a ticket at least A's, which was
//!   taken after A's increment (Acquire on the ticket makes the increment
//!   visible), so T reads a count that includes A until A withdraws
//!   (every later value comes from read-modify-writes after A's), and T
//!   fences: the plain algorithm.
//! - A zero that T reads after A withdrew comes with A's steals (Release
//!   then Acquire), so T's read of the top index is at least as new as
//!   S's compare-and-swap.
//!
//! An owner that takes nothing back (it runs a long closure, is blocked,
//! or is the worker an overflow thread stands in for) never acknowledges.
//! After about 4 µs of waiting the thief covers every owner at once with
//! [`barrier::heavy`] instead, which returns once every running thread of
//! the process has passed a full memory barrier B. Proof sketch, for a
//! take-back T and a steal S made after that call:
//! - If T's read of the count comes after B, it sees the increment (made
//!   before `heavy` began, which starts with a full barrier): T fences,
//!   and T and S are the plain algorithm's take and steal.
//! - Otherwise T lowered the bottom index before B, so that store is
//!   visible to every thread once `heavy` returns, before S reads the
//!   bottom index. That is what the owner's fence gives in the plain
//!   algorithm (one of "T sees S's raised top" and "S sees T's lowered
//!   bottom" must hold); S's own fence and the compare-and-swap on the
//!   top index for the last entry do the rest, unchanged.
//!
//! The acknowledgement is what makes two workers fast, not only one: a
//! `membarrier` that interrupts a running thread costs 11 µs on the
//! machine measured (0.35 µs when no other thread of the process runs),
//! and in fine-grained fork-join the steals are on the critical path.
//! With `heavy` as the only cover, fib(24) on two workers was level with
//! `rayon::join`; with the acknowledgement it takes three quarters of its
//! time. A thief announces itself only once it sees a fork to take (a
//! look at both indices), once per look over all victims: fib(24) on two
//! workers does about seven times per run.
//!
//! Where the asymmetric form is not in use (`barrier.rs`: another OS, a
//! sandbox, Miri, more than `MAX_CPUS` CPUs) every take-back fences and a
//! thief waits for nothing: the plain algorithm. The loom models
//! (`loom/forks.rs`) check the plain form and the acknowledgement path;
//! `heavy`, which loom cannot express, rests on the sketch above, as the
//! sleep protocol's use of it does.
//!
//! # Memory
//!
//! Entries are two words (a [`JobRef`]), stored as two atomics so that a
//! thief reading a slot the owner is overwriting is a race the algorithm
//! tolerates (its compare-and-swap then fails and it drops what it read
//! unused), not undefined behaviour. The ring doubles when full; the
//! buffers it outgrew stay allocated until the deque is dropped, since a
//! thief may still be reading one (they add up to less than the current
//! one). It never shrinks: its depth is bounded by how deep `join`s nest
//! on one worker's stack.

use std::cell::Cell;
use std::sync::Arc;

use crossbeam_deque::Steal;

use crate::core::barrier;
use crate::core::job_ref::JobRef;
use crate::core::sync::{fence, AtomicPtr, AtomicU64, AtomicUsize, Mutex, Ordering};

/// Entries of a new deque's ring: 1 KiB. Small under loom, where every
/// atomic is modelled, so that a model reaches the growth path.
const MIN_CAP: usize = if cfg!(loom) { 2 } else { 64 };

/// The threads announced as thieves of a pool's forks (see the module
/// docs). On a line of its own: written only when a thief starts or stops
/// looking, read by every take-back.
#[repr(align(128))]
pub(crate) struct Thieves {
    /// How many are announced now.
    count: AtomicUsize,
    /// Announcements ever made: each thief's ticket, which an owner's
    /// acknowledgement must reach.
    tickets: AtomicU64,
}

/// A thief's announcement, withdrawn when dropped. Stealing a fork makes
/// one, at the first fork seen ([`ForkStealer::steal`]).
pub(crate) struct Announced<'a> {
    thieves: &'a Thieves,
    ticket: u64,
    /// Whether `heavy` has run since the announcement: then every owner is
    /// covered, acknowledged or not.
    barriered: Cell<bool>,
}

/// How many times a thief looks for an owner's acknowledgement before it
/// falls back to `heavy`: about 4 µs (a spin-loop hint is about 40 ns
/// here), less than a `membarrier` that interrupts a running thread costs
/// on the machine measured (11 µs). An owner busy with fine forks
/// acknowledges within nanoseconds.
const ACK_SPINS: u32 = if cfg!(loom) { 2 } else { 100 };

#[cfg(loom)]
std::thread_local! {
    /// Under loom: whether take-backs skip their fence while no thief is
    /// announced, as with the asymmetric form (set by the model of that
    /// form; loom has no `membarrier`, so there a thief that is not
    /// acknowledged gives up instead of falling back to it).
    pub(crate) static MODEL_ASYMMETRIC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether take-backs skip their fence while no thief is announced.
#[inline]
fn asymmetric() -> bool {
    #[cfg(loom)]
    return MODEL_ASYMMETRIC.with(std::cell::Cell::get);
    #[cfg(not(loom))]
    return barrier::asymmetric();
}

impl Thieves {
    pub(crate) fn new() -> Self {
        Thieves {
            count: AtomicUsize::new(0),
            tickets: AtomicU64::new(0),
        }
    }

    /// Announces the calling thread as a thief. Before it steals from a
    /// deque it waits until that deque's owner has seen the announcement
    /// ([`Announced::cover`]).
    pub(crate) fn announce(&self) -> Announced<'_> {
        self.count.fetch_add(1, Ordering::SeqCst);
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        Announced {
            thieves: self,
            ticket,
            barriered: Cell::new(false),
        }
    }

    /// Whether a thief may be looking (the owner's read, after lowering
    /// the bottom index). Acquire: a zero that a withdrawal wrote comes
    /// with that thief's steals, so the top index read next is at least
    /// as new as its last one (the loom model finds the entry taken twice
    /// with a relaxed read).
    #[inline]
    fn present(&self) -> bool {
        self.count.load(Ordering::Acquire) != 0
    }
}

impl Announced<'_> {
    /// Returns once the owner of `inner` cannot take an entry back without
    /// a fence while this announcement stands: it acknowledged a ticket at
    /// least as new as this one, or every running thread passed a full
    /// barrier since the announcement (`heavy`). False only in the loom
    /// model, which leaves `heavy` out.
    fn cover(&self, inner: &Inner) -> bool {
        if self.barriered.get() || !asymmetric() {
            // Where the asymmetric form is not in use, owners always fence.
            return true;
        }
        for _ in 0..ACK_SPINS {
            if inner.ack.load(Ordering::Acquire) >= self.ticket {
                return true;
            }
            #[cfg(loom)]
            loom::thread::yield_now();
            #[cfg(not(loom))]
            std::hint::spin_loop();
        }
        if cfg!(loom) {
            return false;
        }
        // The owner takes nothing back now (it runs a long closure, it is
        // blocked, or it is this thread's own worker standing still).
        barrier::heavy();
        self.barriered.set(true);
        true
    }
}

impl Drop for Announced<'_> {
    fn drop(&mut self) {
        // Release: the thief's steals come before the owner's next
        // take-back that reads the count (Acquire) and skips its fence.
        self.thieves.count.fetch_sub(1, Ordering::Release);
    }
}

/// One slot of the ring: a [`JobRef`]'s two words.
struct Entry {
    data: AtomicPtr<()>,
    table: AtomicPtr<()>,
}

/// A ring of `mask + 1` entries (a power of two), indexed modulo its size.
struct Buffer {
    mask: usize,
    entries: Box<[Entry]>,
}

impl Buffer {
    fn new(cap: usize) -> Box<Buffer> {
        debug_assert!(cap.is_power_of_two());
        Box::new(Buffer {
            mask: cap - 1,
            entries: (0..cap)
                .map(|_| Entry {
                    data: AtomicPtr::new(std::ptr::null_mut()),
                    table: AtomicPtr::new(std::ptr::null_mut()),
                })
                .collect(),
        })
    }

    fn cap(&self) -> usize {
        self.mask + 1
    }

    #[inline]
    fn write(&self, index: usize, (data, table): (*mut (), *mut ())) {
        let entry = &self.entries[index & self.mask];
        entry.data.store(data, Ordering::Relaxed);
        entry.table.store(table, Ordering::Relaxed);
    }

    #[inline]
    fn read(&self, index: usize) -> (*mut (), *mut ()) {
        let entry = &self.entries[index & self.mask];
        (
            entry.data.load(Ordering::Relaxed),
            entry.table.load(Ordering::Relaxed),
        )
    }
}

/// What the owner and the thieves share.
struct Inner {
    /// One past the newest entry: written by the owner only.
    bottom: AtomicUsize,
    /// The oldest entry: raised by a steal, or by the owner taking the
    /// last entry, always with a compare-and-swap.
    top: AtomicUsize,
    /// The current ring (from `Box::into_raw`), replaced by the owner when
    /// it grows; freed with the deque.
    buffer: AtomicPtr<Buffer>,
    /// Rings outgrown, kept until the deque is dropped (a thief may still
    /// read one). Boxed: thieves hold pointers to the rings themselves.
    #[allow(clippy::vec_box)]
    retired: Mutex<Vec<Box<Buffer>>>,
    /// The newest thief's ticket the owner has seen, after a fence.
    ack: AtomicU64,
}

impl Inner {
    /// The number of entries, as the indices read now give it (a thief's
    /// or a sleeper's snapshot; never below zero).
    fn len(&self) -> usize {
        let top = self.top.load(Ordering::Acquire);
        let bottom = self.bottom.load(Ordering::Acquire);
        (bottom.wrapping_sub(top) as isize).max(0) as usize
    }

    /// Takes the entry at `top` (the oldest) by raising the top index past
    /// it; false if the index moved since it was read.
    #[inline]
    fn claim(&self, top: usize) -> bool {
        self.top
            .compare_exchange(
                top,
                top.wrapping_add(1),
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    #[inline]
    fn buffer(&self) -> &Buffer {
        #[allow(unsafe_code)]
        // SAFETY: the pointer came from `Box::into_raw`, and every ring it
        // ever pointed to is freed only by `Inner::drop`, when nobody can
        // read it any more.
        unsafe {
            &*self.buffer.load(Ordering::Acquire)
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let top = self.top.load(Ordering::Relaxed);
        let bottom = self.bottom.load(Ordering::Relaxed);
        let buffer = self.buffer.load(Ordering::Relaxed);
        #[allow(unsafe_code)]
        // SAFETY: the last owner of the deque is dropping it, so no thread
        // can use the ring or its entries any more; the ring came from
        // `Box::into_raw` and is freed once, here. Entries between the
        // indices are live and owned by the deque (a stack entry owns
        // nothing, and only a worker that is done with its forks lets its
        // deque go; the tests put heap entries here).
        unsafe {
            let buffer = Box::from_raw(buffer);
            let mut index = top;
            while (bottom.wrapping_sub(index) as isize) > 0 {
                let (data, table) = buffer.read(index);
                drop(JobRef::from_raw(data, table));
                index = index.wrapping_add(1);
            }
        }
    }
}

/// The owner's end of a fork deque: one worker pushes and takes back.
pub(crate) struct Forks {
    inner: Arc<Inner>,
    /// Not `Sync`: only the owner uses this end.
    _owner: std::marker::PhantomData<std::cell::Cell<()>>,
}

/// A thief's end of a fork deque.
#[derive(Clone)]
pub(crate) struct ForkStealer {
    inner: Arc<Inner>,
}

impl Forks {
    /// An empty deque.
    pub(crate) fn new() -> Self {
        Forks {
            inner: Arc::new(Inner {
                bottom: AtomicUsize::new(0),
                top: AtomicUsize::new(0),
                buffer: AtomicPtr::new(Box::into_raw(Buffer::new(MIN_CAP))),
                retired: Mutex::new(Vec::new()),
                ack: AtomicU64::new(0),
            }),
            _owner: std::marker::PhantomData,
        }
    }

    /// The thieves' end of this deque.
    pub(crate) fn stealer(&self) -> ForkStealer {
        ForkStealer {
            inner: self.inner.clone(),
        }
    }

    /// Whether the deque is empty (exact for the owner).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        let bottom = self.inner.bottom.load(Ordering::Relaxed);
        let top = self.inner.top.load(Ordering::Relaxed);
        (bottom.wrapping_sub(top) as isize) <= 0
    }

    /// Queues `job` as the newest entry.
    #[inline]
    pub(crate) fn push(&self, job: JobRef) {
        let inner = &*self.inner;
        let bottom = inner.bottom.load(Ordering::Relaxed);
        // Acquire: a slot a thief has read (before raising the top index
        // past it) is only overwritten after that read.
        let top = inner.top.load(Ordering::Acquire);
        let mut buffer = inner.buffer();
        if bottom.wrapping_sub(top) >= buffer.cap() {
            buffer = self.grow(bottom, top);
        }
        buffer.write(bottom, job.into_raw());
        // Release: a thief that sees the new bottom index sees the entry
        // (and the ring it is in).
        inner
            .bottom
            .store(bottom.wrapping_add(1), Ordering::Release);
    }

    /// Moves the entries to a ring twice the size and retires the old one.
    #[cold]
    fn grow(&self, bottom: usize, top: usize) -> &Buffer {
        let inner = &*self.inner;
        let old = inner.buffer();
        let new = Buffer::new(old.cap().checked_mul(2).expect("fork deque size overflow"));
        let mut index = top;
        while index != bottom {
            new.write(index, old.read(index));
            index = index.wrapping_add(1);
        }
        let new = Box::into_raw(new);
        let old = inner.buffer.swap(new, Ordering::Release);
        #[allow(unsafe_code)]
        // SAFETY: `old` came from `Box::into_raw` and is no longer the
        // current ring; it is kept (not freed) until the deque is dropped.
        crate::core::sync::lock(&inner.retired).push(unsafe { Box::from_raw(old) });
        #[allow(unsafe_code)]
        // SAFETY: just allocated, freed only with the deque.
        unsafe {
            &*new
        }
    }

    /// Takes the newest entry back; `None` if the deque is empty or a
    /// thief took the last one. Fences only while a thief is announced
    /// (see the module docs).
    #[inline]
    pub(crate) fn pop(&self, thieves: &Thieves) -> Option<JobRef> {
        let inner = &*self.inner;
        let bottom = inner.bottom.load(Ordering::Relaxed);
        let top = inner.top.load(Ordering::Relaxed);
        if (bottom.wrapping_sub(top) as isize) <= 0 {
            // Empty (a stale top index is never above the real one).
            return None;
        }
        let bottom = bottom.wrapping_sub(1);
        inner.bottom.store(bottom, Ordering::Relaxed);
        owner_fence(thieves, inner);
        let top = inner.top.load(Ordering::Relaxed);
        let len = bottom.wrapping_sub(top) as isize;
        if len < 0 {
            // A thief took the last entry.
            inner
                .bottom
                .store(bottom.wrapping_add(1), Ordering::Relaxed);
            return None;
        }
        let (data, table) = inner.buffer().read(bottom);
        if len == 0 {
            // The last entry: a thief may be taking it too; the top index
            // decides.
            let won = inner.claim(top);
            inner
                .bottom
                .store(bottom.wrapping_add(1), Ordering::Relaxed);
            if !won {
                return None;
            }
        }
        #[allow(unsafe_code)]
        // SAFETY: the entry at `bottom` was pushed by this owner and is
        // now taken by it alone: above the top index after the fence (or
        // with every thief acknowledged or covered by its barrier: see the
        // module docs), or won with the compare-and-swap.
        Some(unsafe { JobRef::from_raw(data, table) })
    }
}

/// The owner's half between lowering the bottom index and reading the top
/// one: a SeqCst fence, unless the asymmetric form is in use and no thief
/// is announced; while one is, the owner also acknowledges the newest
/// ticket (see the module docs).
#[inline]
fn owner_fence(thieves: &Thieves, inner: &Inner) {
    if asymmetric() {
        // The count is read after the bottom index is lowered, in program
        // order: an acknowledgement or the announcement's barrier does the
        // rest.
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        if thieves.present() {
            acknowledge(thieves, inner);
        }
        return;
    }
    fence(Ordering::SeqCst);
}

/// Fences, then tells the thieves announced so far that this owner has
/// seen them: from here on each of its take-backs reads a count that
/// includes theirs (their tickets were taken after their counts went up),
/// so it fences too.
#[cold]
#[inline(never)]
fn acknowledge(thieves: &Thieves, inner: &Inner) {
    fence(Ordering::SeqCst);
    let ticket = thieves.tickets.load(Ordering::Acquire);
    if inner.ack.load(Ordering::Relaxed) < ticket {
        inner.ack.store(ticket, Ordering::Release);
    }
}

impl ForkStealer {
    /// Whether the deque looks empty (a snapshot).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.inner.len() == 0
    }

    /// How many entries the deque holds (a snapshot).
    pub(crate) fn len(&self) -> usize {
        self.inner.len()
    }

    /// Takes the oldest entry. The thief announces itself to `thieves` at
    /// its first steal from a deque that holds an entry, and keeps the
    /// announcement in `announced` for its next steals (from any deque of
    /// the pool) until it drops it.
    pub(crate) fn steal<'t>(
        &self,
        thieves: &'t Thieves,
        announced: &mut Option<Announced<'t>>,
    ) -> Steal<JobRef> {
        let inner = &*self.inner;
        if inner.len() == 0 {
            // Nothing to announce oneself, or wait for an owner, for.
            return Steal::Empty;
        }
        if !announced
            .get_or_insert_with(|| thieves.announce())
            .cover(inner)
        {
            return Steal::Empty;
        }
        let top = inner.top.load(Ordering::Acquire);
        fence(Ordering::SeqCst);
        let bottom = inner.bottom.load(Ordering::Acquire);
        if (bottom.wrapping_sub(top) as isize) <= 0 {
            return Steal::Empty;
        }
        // Read before the claim; used only if the claim succeeds (the
        // owner overwrites a slot only after the top index passed it).
        let (data, table) = inner.buffer().read(top);
        if !inner.claim(top) {
            return Steal::Retry;
        }
        #[allow(unsafe_code)]
        // SAFETY: the compare-and-swap made this thread the only one to
        // take the entry at `top`, which was pushed (the bottom index,
        // read with Acquire, was past it) and not overwritten (a slot is
        // reused only once the top index has passed it).
        Steal::Success(unsafe { JobRef::from_raw(data, table) })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    //! Heap entries stand in for forks here: an entry taken twice would
    //! give its reference back twice (a use after free under Miri, a wrong
    //! count otherwise), and one lost would keep it.
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use super::*;
    use crate::core::job_ref::Numbered;

    fn jobs(n: usize) -> Vec<Arc<Numbered>> {
        (0..n).map(|_| Arc::new(Numbered)).collect()
    }

    /// Which job an entry is, and the entry dropped.
    fn index_of(entry: JobRef, jobs: &[Arc<Numbered>]) -> usize {
        let addr = entry.addr();
        drop(entry);
        jobs.iter()
            .position(|j| Arc::as_ptr(j) as usize == addr)
            .expect("an entry of one of the jobs")
    }

    fn steal_one(stealer: &ForkStealer, thieves: &Thieves) -> Option<JobRef> {
        let mut announced = None;
        loop {
            match stealer.steal(thieves, &mut announced) {
                Steal::Success(job) => return Some(job),
                Steal::Empty => return None,
                Steal::Retry => {}
            }
        }
    }

    /// The owner takes back the newest entry, a thief the oldest, through
    /// two doublings of the ring; what is left when the deque is dropped
    /// is given back.
    #[test]
    fn owner_takes_the_newest_thief_the_oldest_across_growth() {
        let thieves = Thieves::new();
        let jobs = jobs(3 * MIN_CAP);
        let forks = Forks::new();
        let stealer = forks.stealer();
        assert!(forks.is_empty() && stealer.is_empty());
        for job in &jobs {
            forks.push(JobRef::new(job.clone()));
        }
        assert_eq!(stealer.len(), jobs.len());
        for expected in 0..3 {
            let stolen = steal_one(&stealer, &thieves).unwrap();
            assert_eq!(index_of(stolen, &jobs), expected);
        }
        for expected in (MIN_CAP..jobs.len()).rev() {
            let popped = forks.pop(&thieves).unwrap();
            assert_eq!(index_of(popped, &jobs), expected);
        }
        assert_eq!(stealer.len(), MIN_CAP - 3);
        drop(forks);
        drop(stealer);
        assert!(jobs.iter().all(|j| Arc::strong_count(j) == 1));
    }

    /// The last entry goes to the owner or to a thief, never both; an
    /// empty deque gives nothing to either.
    #[test]
    fn the_last_entry_is_taken_once() {
        let thieves = Thieves::new();
        let jobs = jobs(1);
        let forks = Forks::new();
        let stealer = forks.stealer();
        assert!(forks.pop(&thieves).is_none());
        assert!(steal_one(&stealer, &thieves).is_none());
        forks.push(JobRef::new(jobs[0].clone()));
        assert_eq!(index_of(forks.pop(&thieves).unwrap(), &jobs), 0);
        assert!(forks.pop(&thieves).is_none());
        assert!(steal_one(&stealer, &thieves).is_none());
        forks.push(JobRef::new(jobs[0].clone()));
        assert_eq!(index_of(steal_one(&stealer, &thieves).unwrap(), &jobs), 0);
        assert!(forks.pop(&thieves).is_none());
        assert_eq!(Arc::strong_count(&jobs[0]), 1);
    }

    /// The owner pushes and takes back in bursts, as nested `join`s do,
    /// while two thieves steal: every entry is taken exactly once. Where
    /// the asymmetric form is in use this runs the owner's fence-free
    /// take-backs, its acknowledgements, and thieves that fall back to
    /// `heavy` while the owner pauses.
    #[test]
    fn owner_and_thieves_take_every_entry_exactly_once() {
        barrier::init();
        let rounds = if cfg!(miri) { 20 } else { 5_000 };
        let burst = if cfg!(miri) { 3 } else { 5 };
        let jobs = Arc::new(jobs(rounds * burst));
        let thieves = Arc::new(Thieves::new());
        let forks = Forks::new();
        let done = Arc::new(AtomicBool::new(false));
        let taken: Vec<_> = (0..jobs.len())
            .map(|_| std::sync::atomic::AtomicUsize::new(0))
            .collect();
        let taken = Arc::new(taken);
        let thief = |stealer: ForkStealer| {
            let (jobs, thieves, done, taken) =
                (jobs.clone(), thieves.clone(), done.clone(), taken.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Acquire) || !stealer.is_empty() {
                    if stealer.is_empty() {
                        std::thread::yield_now();
                        continue;
                    }
                    if let Some(job) = steal_one(&stealer, &thieves) {
                        taken[index_of(job, &jobs)].fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        let thieves_threads = [thief(forks.stealer()), thief(forks.stealer())];
        for round in 0..rounds {
            for i in 0..burst {
                forks.push(JobRef::new(jobs[round * burst + i].clone()));
            }
            if round % 250 == 249 {
                // A pause: thieves find entries and no take-back to
                // acknowledge them.
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
            while let Some(job) = forks.pop(&thieves) {
                taken[index_of(job, &jobs)].fetch_add(1, Ordering::Relaxed);
            }
        }
        done.store(true, Ordering::Release);
        for t in thieves_threads {
            t.join().unwrap();
        }
        let counts: Vec<usize> = taken.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        assert!(counts.iter().all(|&c| c == 1), "taken other than once");
        assert!(jobs.iter().all(|j| Arc::strong_count(j) == 1));
    }
}
