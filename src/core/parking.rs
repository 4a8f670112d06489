//! Parking workers that found no work, and waking exactly one when work
//! arrives: the protocol every worker park goes through (`wait.rs`).
//!
//! The protocol is a Dekker-style handshake between a thread that makes
//! work visible and a worker that is about to park:
//!
//! ```text
//!   producer                          worker about to park
//!   push job                          push self on `list`, count += 1
//!   barrier::light()                  barrier::heavy()
//!   if count > 0: wake one           if work visible (or must leave): don't park
//! ```
//!
//! The claim: a job made visible is never left queued while every worker
//! that could run it stays parked. Proof sketch, with a SeqCst fence on
//! both sides (the form the loom models check, and the one used where the
//! asymmetric form is not available; `barrier.rs` gives the argument for
//! a compiler fence against `membarrier`): SeqCst fences are totally
//! ordered, so one of the two fences comes first.
//!
//! * Producer's fence first: the push happened before it, and the worker's
//!   check of `stay_awake` comes after the worker's fence, so the check
//!   sees the job (crossbeam's deques publish a push with a Release store
//!   that the length check reads with Acquire) and the worker does not park.
//! * Worker's fence first: its registration (`count += 1`, SeqCst, under
//!   the lock) happened before it, so the producer's load of `count` after
//!   its own fence sees at least one parked worker and wakes one.
//!
//! The wake pops one worker off `list` (the most recently parked: its cache
//! is warm), sets its `notified` flag under the lock and unparks it. An
//! unpark that comes before the park is not lost (the thread's park token
//! makes the park return at once), and a spurious return finds `notified`
//! unset and parks again. The woken worker need not be the one that was
//! about to park: any worker that wakes notified looks for work. A worker
//! that leaves the park on its own (it saw work, its awaited task finished,
//! the pool closed) takes itself off `list`; if it is no longer there, a
//! producer picked it, and it passes that wake on, so a wake-up is never
//! absorbed by a worker that will not look for work.
//!
//! Modelled in `loom/parking.rs` (a parked worker is never left with
//! queued work; two workers take every job and leave on shutdown).

use std::sync::Arc;
use std::time::Instant;

use crate::core::sync::{
    fence, lock, park_until, AtomicBool, AtomicUsize, Mutex, Ordering, Thread,
};

/// A worker's "a producer chose you" flag, owned by its slot (so a pool
/// that grows needs no array sized in advance). Set under the `list` lock.
pub(crate) type Notified = Arc<AtomicBool>;

pub(crate) struct Parking {
    /// How many workers are on `list`; read without the lock by producers.
    count: AtomicUsize,
    /// Parked workers, most recent last (woken first: its cache is warm),
    /// each with its [`Notified`] flag.
    list: Mutex<Vec<(Notified, Thread)>>,
}

/// How a park ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unparked {
    /// A producer chose this worker: there is work to look for.
    Notified,
    /// `stay_awake` became true (or was at the start).
    Condition,
    /// The deadline passed.
    Timeout,
}

impl Parking {
    pub(crate) fn new(workers: usize) -> Self {
        Parking {
            count: AtomicUsize::new(0),
            list: Mutex::new(Vec::with_capacity(workers)),
        }
    }

    /// A fresh flag for a worker slot.
    pub(crate) fn flag() -> Notified {
        Arc::new(AtomicBool::new(false))
    }

    /// Parks the worker whose flag is `notified` (its thread is `thread`,
    /// the current one) until a producer wakes it, `stay_awake()` holds,
    /// or `deadline`.
    ///
    /// `stay_awake` must be true whenever there is work visible to this
    /// worker or a reason to leave; it is checked after the worker is
    /// registered, so work made visible before a producer's
    /// [`wake_one`](Parking::wake_one) is never slept through.
    #[cfg(any(test, loom))]
    pub(crate) fn park(
        &self,
        notified: &Notified,
        thread: &Thread,
        stay_awake: impl Fn() -> bool,
        deadline: Option<Instant>,
    ) -> Unparked {
        self.park_with(notified, thread, || {}, stay_awake, deadline)
    }

    /// [`park`](Parking::park), calling `registered` once the worker is
    /// counted as parked and before it checks `stay_awake`: an elastic pool
    /// stops counting it as searching there, so a producer always sees it
    /// as one or the other (`core/threads.rs`).
    pub(crate) fn park_with(
        &self,
        notified: &Notified,
        thread: &Thread,
        registered: impl FnOnce(),
        stay_awake: impl Fn() -> bool,
        deadline: Option<Instant>,
    ) -> Unparked {
        {
            let mut parked = lock(&self.list);
            parked.push((notified.clone(), thread.clone()));
            self.count.fetch_add(1, Ordering::SeqCst);
        }
        registered();
        // The worker's half of the handshake (`barrier.rs`).
        crate::core::barrier::heavy();
        if stay_awake() {
            self.leave(notified);
            return Unparked::Condition;
        }
        loop {
            let in_time = park_until(deadline);
            if notified.swap(false, Ordering::Acquire) {
                return Unparked::Notified;
            }
            if stay_awake() {
                self.leave(notified);
                return Unparked::Condition;
            }
            if !in_time {
                self.leave(notified);
                return Unparked::Timeout;
            }
        }
    }

    /// Takes the worker with flag `notified` off the parked list on its
    /// own initiative.
    fn leave(&self, notified: &Notified) {
        let mut parked = lock(&self.list);
        if let Some(pos) = parked.iter().position(|(f, _)| Arc::ptr_eq(f, notified)) {
            parked.remove(pos);
            self.count.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        drop(parked);
        // A producer chose us meanwhile (and set the flag under the lock we
        // just held): its wake-up was meant for a worker that will look for
        // work, which we may not do now. Hand it to someone else.
        notified.store(false, Ordering::Relaxed);
        self.wake_one();
    }

    /// Wakes one parked worker, if any. Call it after making work visible
    /// (pushing a job); it supplies the producer's half of the fence that
    /// pairs with the parked worker's (`barrier.rs`).
    /// The fence comes first, before anything else: `Registry::push` relies
    /// on it to order its push before its check of `closed`.
    /// Returns whether a worker was woken.
    #[inline]
    pub(crate) fn wake_one(&self) -> bool {
        // The producer's half of the handshake (`barrier.rs`): a compiler
        // fence where the parking side pays for both.
        crate::core::barrier::light();
        if self.count.load(Ordering::Relaxed) == 0 {
            return false;
        }
        self.wake_one_parked()
    }

    /// The rest of [`wake_one`](Parking::wake_one) once a parked worker
    /// was seen. Out of line: a push that finds nobody parked (the common
    /// case on a busy pool) stays a fence and a load, without the frame
    /// the lock and the unpark need (W3 in the benchmark suite, measured
    /// with callgrind).
    #[cold]
    #[inline(never)]
    fn wake_one_parked(&self) -> bool {
        let chosen = {
            let mut parked = lock(&self.list);
            let Some((notified, thread)) = parked.pop() else {
                return false;
            };
            self.count.fetch_sub(1, Ordering::SeqCst);
            notified.store(true, Ordering::Release);
            thread
        };
        chosen.unpark();
        true
    }

    /// [`wake_one`](Parking::wake_one) without its fence, for work that
    /// the thread making it visible runs itself if nobody takes it (a
    /// fork on the forking worker's own deque): a worker parking at the
    /// same moment may miss it, which costs parallelism for that one job,
    /// never progress. Saves a full fence per `join`.
    #[inline]
    pub(crate) fn wake_one_if_parked(&self) {
        if self.count.load(Ordering::Relaxed) != 0 {
            self.wake_one();
        }
    }

    /// Wakes every parked worker (close, terminate).
    pub(crate) fn wake_all(&self) {
        fence(Ordering::SeqCst);
        let chosen: Vec<(Notified, Thread)> = {
            let mut parked = lock(&self.list);
            self.count.fetch_sub(parked.len(), Ordering::SeqCst);
            for (notified, _) in parked.iter() {
                notified.store(true, Ordering::Release);
            }
            std::mem::take(&mut *parked)
        };
        for (_, thread) in chosen {
            thread.unpark();
        }
    }

    /// How many workers are parked right now (the starvation monitor's
    /// "is anyone idle").
    pub(crate) fn parked(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn wake_one_with_nobody_asleep_is_a_no_op() {
        let parking = Parking::new(3);
        assert!(!parking.wake_one());
        parking.wake_all();
        assert_eq!(parking.parked(), 0);
    }

    #[test]
    fn park_returns_at_its_deadline() {
        let parking = Parking::new(1);
        let me = std::thread::current();
        let woken = parking.park(
            &Parking::flag(),
            &me,
            || false,
            Some(Instant::now() + Duration::from_millis(5)),
        );
        assert_eq!(woken, Unparked::Timeout);
        assert_eq!(
            parking.parked(),
            0,
            "a timed-out worker leaves the parked list"
        );
    }
}
