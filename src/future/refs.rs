//! The count of an async task's *polling references* ([`PollRefs`]):
//! its queue entry and the wakers that futures keep. Apart from the
//! count of its memory (the block's own count, see `core/recycle.rs`),
//! which its handle and the pool's list of live tasks hold too.
//!
//! The two counts are `Arc`'s strong and weak counts, turned around for
//! a task: while anything can still poll the future (a polling reference
//! is alive), the future is kept; when the last polling reference goes,
//! nothing can ever poll it again, so it is dropped and the task ends
//! cancelled, but the outcome stays readable in the block for as long as
//! the handle keeps it. All polling references together hold one memory
//! reference, given back by the thread that drops the last of them after
//! that ending (as all of an `Arc`'s strong references hold one weak).
//!
//! The protocol:
//!
//! * A new polling reference is made from a live one (a waker's clone, a
//!   wake by reference queueing the task): an increment, Relaxed, as
//!   `Arc::clone` (the live reference orders whatever the new one sees).
//! * Whoever holds only memory (the handle cancelling, `terminate`
//!   cancelling every live task) gets a polling reference by
//!   [`upgrade`](PollRefs::upgrade): a compare-and-swap that never moves
//!   the count up from zero (as `Weak::upgrade`). So once it is zero it
//!   stays zero, and exactly one thread saw it reach zero.
//! * A dropped reference decrements with Release; the thread that takes
//!   the count to zero reads it again with Acquire before it ends the
//!   task, so every use of the future through an earlier reference
//!   happens before the future's drop there.
//!
//! Proof sketch that the future is touched by one thread at a time, and
//! never after its drop: every thread that reaches the future holds a
//! polling reference for as long as it does (a worker through the queue
//! entry it took, a canceller through its upgrade); the one that drops it
//! for good at the end does so after the count reached zero, when no
//! reference exists and none can be made (an upgrade fails at zero, and a
//! clone needs a live reference). Among holders, the task's own state
//! machines decide (`PollState`, and the completion's move out of
//! PENDING, see `future/task.rs`). The loom model
//! `loom_poll_refs_end_the_task_once` checks the count against racing
//! upgrades and drops.

use crate::core::sync::{AtomicUsize, Ordering};

/// The most polling references a task may have: past it, the process
/// aborts rather than let the count wrap (as `Arc` does).
const MAX_REFS: usize = isize::MAX as usize;

/// The polling references of one task (see the module docs).
pub(crate) struct PollRefs(AtomicUsize);

/// What a dropped polling reference leaves.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Dropped {
    /// Other references are alive.
    Others,
    /// That was the last one: the caller ends the task and gives back the
    /// references' memory reference.
    Last,
}

impl PollRefs {
    /// `n` references, which the caller holds.
    pub(crate) fn new(n: usize) -> Self {
        PollRefs(AtomicUsize::new(n))
    }

    /// One more reference, made from one the caller holds.
    #[inline]
    pub(crate) fn add(&self) {
        if self.0.fetch_add(1, Ordering::Relaxed) >= MAX_REFS {
            std::process::abort();
        }
    }

    /// One more reference, unless there are none left (then the task is
    /// over for good and nothing may reach its future): for a thread that
    /// holds only the task's memory.
    #[must_use]
    pub(crate) fn upgrade(&self) -> bool {
        let mut n = self.0.load(Ordering::Relaxed);
        loop {
            if n == 0 {
                return false;
            }
            if n >= MAX_REFS {
                std::process::abort();
            }
            match self
                .0
                .compare_exchange_weak(n, n + 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => n = now,
            }
        }
    }

    /// Gives one reference back.
    #[inline]
    pub(crate) fn drop_one(&self) -> Dropped {
        if self.0.fetch_sub(1, Ordering::Release) != 1 {
            return Dropped::Others;
        }
        // An Acquire load rather than a fence (as `Arc` has): the same on
        // x86, and ThreadSanitizer, which does not model fences, sees the
        // synchronisation.
        let _ = self.0.load(Ordering::Acquire);
        Dropped::Last
    }

    /// How many there are now (tests).
    #[cfg(test)]
    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_last_drop_is_told_and_no_upgrade_follows_it() {
        let refs = PollRefs::new(2);
        assert!(refs.upgrade());
        refs.add();
        assert_eq!(refs.count(), 4);
        assert_eq!(refs.drop_one(), Dropped::Others);
        assert_eq!(refs.drop_one(), Dropped::Others);
        assert_eq!(refs.drop_one(), Dropped::Others);
        assert_eq!(refs.drop_one(), Dropped::Last);
        assert_eq!(refs.count(), 0);
        assert!(!refs.upgrade(), "an upgrade from zero must fail");
        assert_eq!(refs.count(), 0);
    }
}
