//! The state word of a task's outcome: the one place that reads its bits
//! and the only code that changes them. Everything else asks for a named
//! transition and is told, by a `#[must_use]` answer, whether it won.
//!
//! ```text
//!                  claim                 finish
//!   PENDING ────────────────▶ RUNNING ───────────▶ OK | FAILED | CANCELLED
//!     │   ▲                      │
//!     │   └──────── pause ───────┘   (a periodic task between two runs)
//!     │
//!     └──── abort ────▶ CANCELLED | FAILED   (cancelled before it started,
//!                                             or refused by a closed pool)
//! ```
//!
//! * `claim` (PENDING → RUNNING) is won by exactly one thread, which then
//!   owns the closure and, later, the outcome. A task made of many parts
//!   that run side by side (a `map`'s chunks) is moved by
//!   [`start_shared`](State::start_shared) instead: the first part moves
//!   it, the others find it moved.
//! * `abort` (PENDING → CANCELLED or FAILED) is won by at most one thread,
//!   and only while nobody has claimed the task.
//! * `finish` (RUNNING → a final phase) is done by the owner of a running
//!   task. A task that stopped because it was cancelled (a cooperative
//!   task that saw its token, an async task dropped at a pending point)
//!   ends CANCELLED, not FAILED ([`Phase::of`]).
//! * `pause` (RUNNING → PENDING) is a periodic task's step back to waiting
//!   for its next run, so a cancel between runs is an ordinary `abort`.
//!
//! Five flag bits ride along: PUBLISHED, the final result (or its
//! absence, once taken) is in the completion's value cell and every
//! callback registered before has run; LENT, the result is out of the
//! cell, lent to a thread running a late callback; TAKEN, the result was
//! handed out (the cell is empty for good); WATCHED, someone registered
//! with the completion's slot (a waiting thread, a callback, a waker) at
//! least once; DETACHED, the task's handle was dropped before the outcome
//! was published, so a panic it ends with has nobody to take it and is
//! reported instead (see [`detach`](State::detach)). A final phase is *ready*; a ready result that is published
//! and not lent is *available* to take. PUBLISHED, LENT (and its
//! clearing) and WATCHED are set under the lock of the completion's slot
//! (`completion.rs`), with the exceptions below; TAKEN and LENT are
//! won by compare-and-swap ([`take_value`](State::take_value),
//! [`lend_value`](State::lend_value)), which is what gives the winner the
//! value cell to itself: a taker needs no lock.
//!
//! The exception is [`finish_unwatched`](State::finish_unwatched): the
//! owner of a running task that nobody ever watched (no waiter, callback
//! or waker; its handle may have been dropped) moves it from RUNNING to its
//! final phase and PUBLISHED in one compare-and-swap, without the lock:
//! there is nobody to wake and no callback to run. The value is either
//! already in the value cell (a worker that ran the task put it there
//! first) or never enters it (a `get` that ran its own task keeps it, and
//! TAKEN is set with the rest). This is safe against a thread that starts watching at
//! the same moment because [`watch`](State::watch) sets WATCHED with one
//! read-modify-write of the same word and reads what it replaced: either
//! the swap came first, and the watcher sees the task published (it does
//! not wait; a late callback finds the value taken, as after any `get`),
//! or the watch came first, and the swap fails (the word is no longer
//! plain RUNNING), so the owner takes the locked path, which wakes it.
//! [`publish_unwatched`](State::publish_unwatched) does the same for the
//! publication of an abort (a cancel, a terminate, a refused task).
//! Every other transition keeps the flags it finds, each by one
//! read-modify-write (a plain store could lose a DETACHED set without the
//! lock).
//!
//! DETACHED is set without the lock, by one read-modify-write (a dropped
//! handle must not make the slot: fire-and-forget submissions would pay
//! an allocation each). After a handle is dropped nobody can start
//! watching (every watcher goes through the handle), so an unwatched
//! detached task stays unwatched: [`finish_unwatched`](State::finish_unwatched)
//! publishes it with the same one swap, keeping the bit, and tells the
//! owner, who reports a panic instead of leaving it in the cell. On a
//! watched task the owner reads the bit once, under the lock, before it
//! publishes: a bit set after that read leaves the panic in the cell,
//! exactly as a handle dropped just after the publication would (its
//! drop then drops the panic with the completion); a bit set before it
//! makes the owner report the panic. So the lock would order nothing
//! that matters, and the drop does not take it. Setting the bit after
//! the publication changes nothing: only a finish or a publication reads
//! it.

use crate::core::sync::{AtomicU8, Ordering};
use crate::error::TaskError;

const PENDING: u8 = 0;
const RUNNING: u8 = 1;
const OK: u8 = 2;
const FAILED: u8 = 3;
const CANCELLED: u8 = 4;
const PHASE: u8 = 0b0111;
const PUBLISHED: u8 = 0b1000;
const LENT: u8 = 0b1_0000;
const WATCHED: u8 = 0b10_0000;
const TAKEN: u8 = 0b100_0000;
const DETACHED: u8 = 0b1000_0000;

/// Where a task is in its life (the state word without its flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Queued (or between two runs of a periodic task).
    Pending,
    /// Claimed by a thread that runs it.
    Running,
    /// Returned a value.
    Ok,
    /// Panicked, or was refused by a closed pool.
    Failed,
    /// Cancelled, before or (cooperatively) while it ran.
    Cancelled,
}

impl Phase {
    /// The final phase a task ends in with this outcome.
    pub(crate) fn of<T>(result: &Result<T, TaskError>) -> Phase {
        match result {
            Ok(_) => Phase::Ok,
            Err(TaskError::Cancelled) => Phase::Cancelled,
            Err(_) => Phase::Failed,
        }
    }

    /// The phase an unstarted task is aborted into with `error`.
    pub(crate) fn of_abort(error: &TaskError) -> Phase {
        if matches!(error, TaskError::Cancelled) {
            Phase::Cancelled
        } else {
            Phase::Failed
        }
    }

    /// Finished, panicked, cancelled or refused.
    #[inline]
    pub(crate) fn is_final(self) -> bool {
        !matches!(self, Phase::Pending | Phase::Running)
    }

    fn bits(self) -> u8 {
        match self {
            Phase::Pending => PENDING,
            Phase::Running => RUNNING,
            Phase::Ok => OK,
            Phase::Failed => FAILED,
            Phase::Cancelled => CANCELLED,
        }
    }

    #[inline]
    fn from_bits(bits: u8) -> Phase {
        match bits & PHASE {
            PENDING => Phase::Pending,
            RUNNING => Phase::Running,
            OK => Phase::Ok,
            FAILED => Phase::Failed,
            _ => Phase::Cancelled,
        }
    }
}

/// The answer to [`State::claim`].
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// This thread moved the task to RUNNING: it owns the closure and must
    /// finish the task.
    Won,
    /// The task had already left PENDING (run, cancelled or refused).
    Lost,
}

/// The answer to [`State::abort`].
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Abort {
    /// This thread ended the unstarted task: it must drop the closure and
    /// publish the error.
    Won,
    /// The task had already left PENDING.
    TooLate,
}

/// The answer to [`State::take_value`] and [`State::lend_value`].
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    /// This thread has the value cell to itself (to take the value, or to
    /// borrow it and put it back).
    Won,
    /// The value was handed out already: the cell is empty for good.
    Taken,
    /// Not published yet, or lent to another thread: wait.
    NotAvailable,
}

/// The answer to [`State::finish_unwatched`].
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// Finished and published: the owner keeps the outcome.
    Published,
    /// Finished and published, but the handle was dropped before: nobody
    /// will take the outcome (a panic in it must be reported).
    PublishedDetached,
    /// Someone watches the task: nothing changed; finish under the lock.
    Watched,
}

/// The state word as one read saw it (see [`State::watch`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot(u8);

impl Snapshot {
    /// Final: finished, panicked, cancelled or refused.
    #[inline]
    pub(crate) fn is_ready(self) -> bool {
        Phase::from_bits(self.0).is_final()
    }

    /// Published: callbacks registered before completion have run.
    #[inline]
    pub(crate) fn is_published(self) -> bool {
        self.0 & PUBLISHED != 0
    }

    /// Published and not lent: the value can be taken now.
    #[inline]
    pub(crate) fn is_available(self) -> bool {
        self.0 & (PUBLISHED | LENT) == PUBLISHED
    }

    /// The handle was dropped before publication.
    #[inline]
    pub(crate) fn is_detached(self) -> bool {
        self.0 & DETACHED != 0
    }
}

/// The state word of one task's outcome (see the module docs).
pub(crate) struct State(AtomicU8);

impl State {
    /// A task waiting to run.
    pub(crate) fn pending() -> Self {
        State(AtomicU8::new(PENDING))
    }

    /// A task that is over before it was ever queued (a refused
    /// submission), its result already in the slot.
    pub(crate) fn published(phase: Phase) -> Self {
        debug_assert!(phase.is_final());
        State(AtomicU8::new(phase.bits() | PUBLISHED))
    }

    #[inline]
    fn load(&self) -> u8 {
        self.0.load(Ordering::Acquire)
    }

    #[inline]
    pub(crate) fn phase(&self) -> Phase {
        Phase::from_bits(self.load())
    }

    /// The word as it is now.
    #[inline]
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot(self.load())
    }

    /// Final: finished, panicked, cancelled or refused (callbacks may
    /// still be running).
    #[inline]
    pub(crate) fn is_ready(&self) -> bool {
        self.snapshot().is_ready()
    }

    /// Published: callbacks registered before completion have run.
    #[inline]
    pub(crate) fn is_published(&self) -> bool {
        self.snapshot().is_published()
    }

    /// Published and not lent: the value can be taken now.
    #[inline]
    pub(crate) fn is_available(&self) -> bool {
        self.snapshot().is_available()
    }

    /// Moves the phase from `from` to `to`, keeping the flags, by
    /// compare-and-swap; false if the phase was not `from`. SeqCst, so a
    /// claim and the terminated check that follows it are ordered against
    /// `terminate()` (see `job.rs`); on x86 and ARMv8 this costs nothing
    /// over AcqRel. The first attempt assumes no flag is set (the common
    /// case), so it needs no load first.
    #[inline]
    fn move_phase(&self, from: Phase, to: Phase) -> bool {
        let mut current = from.bits();
        loop {
            let next = (current & !PHASE) | to.bits();
            match self
                .0
                .compare_exchange(current, next, Ordering::SeqCst, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(actual) if actual & PHASE == from.bits() => current = actual,
                Err(_) => return false,
            }
        }
    }

    /// PENDING → `to`.
    fn leave_pending(&self, to: Phase) -> bool {
        self.move_phase(Phase::Pending, to)
    }

    /// PENDING → RUNNING: the winner owns the closure and the outcome.
    pub(crate) fn claim(&self) -> Claim {
        if self.leave_pending(Phase::Running) {
            Claim::Won
        } else {
            Claim::Lost
        }
    }

    /// PENDING → RUNNING if nobody has moved it yet, for a task made of
    /// parts that run side by side: whichever part starts first moves it.
    /// Its outcome is owned by whoever the task itself elects (a `map`'s
    /// "decided" flag), not by the claim.
    pub(crate) fn start_shared(&self) {
        // Losing means another part moved it (or it is over): both fine.
        let _ = self.leave_pending(Phase::Running);
    }

    /// PENDING → `to` (CANCELLED or FAILED) for a task that never started.
    pub(crate) fn abort(&self, to: Phase) -> Abort {
        debug_assert!(matches!(to, Phase::Cancelled | Phase::Failed));
        if self.leave_pending(to) {
            Abort::Won
        } else {
            Abort::TooLate
        }
    }

    /// RUNNING → `to` (a final phase), by the owner of the running task.
    pub(crate) fn finish(&self, to: Phase) {
        debug_assert!(to.is_final());
        let moved = self.move_phase(Phase::Running, to);
        debug_assert!(moved, "finish() on a task that was not running");
    }

    /// PENDING with no flag: the task has not started (or, for a periodic
    /// task, is between two runs) and nobody ever watched it, so its
    /// completion holds no watcher and no value. For a thread that holds a
    /// plain task alone (see `job.rs`, `TaskRef::run_alone`), this is what
    /// lets it run the task without any transition: no other thread can
    /// ever look at the word again.
    #[inline]
    pub(crate) fn untouched(&self) -> bool {
        self.load() == PENDING
    }

    /// Running and never watched (no flag but DETACHED): whether
    /// [`finish_unwatched`](State::finish_unwatched) is worth trying. Only
    /// a hint (a watcher may come right after): the swap decides.
    #[inline]
    pub(crate) fn unwatched(&self) -> bool {
        self.0.load(Ordering::Relaxed) & !DETACHED == RUNNING
    }

    /// RUNNING → `to` and PUBLISHED at once, without the slot's lock, if
    /// nobody ever watched the task (see the module docs). With `taken`,
    /// the owner of the running task keeps the outcome (TAKEN is set with
    /// the rest); without, it put the outcome into the value cell before,
    /// and this publishes it. [`Finish::Watched`] if someone watched:
    /// nothing changed, and the owner finishes under the lock.
    #[inline]
    pub(crate) fn finish_unwatched(&self, to: Phase, taken: bool) -> Finish {
        debug_assert!(to.is_final());
        let next = to.bits() | PUBLISHED | if taken { TAKEN } else { 0 };
        // The first attempt assumes the common word (plain RUNNING), so it
        // needs no load; a dropped handle may have added DETACHED, which
        // is kept; any other change means a watcher.
        let mut current = RUNNING;
        loop {
            match self.0.compare_exchange(
                current,
                next | (current & DETACHED),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) if current & DETACHED != 0 => return Finish::PublishedDetached,
                Ok(_) => return Finish::Published,
                Err(actual) if actual == RUNNING | DETACHED => current = actual,
                Err(_) => return Finish::Watched,
            }
        }
    }

    /// Sets PUBLISHED on a final phase, without the slot's lock, if nobody
    /// ever watched the task: the publication of an abort (a cancel, a
    /// terminate, a refusal), with the same argument against a watcher
    /// coming at once as [`finish_unwatched`](State::finish_unwatched).
    /// The owner put the value into the cell before. [`Finish::Watched`]:
    /// nothing changed; publish under the lock.
    pub(crate) fn publish_unwatched(&self) -> Finish {
        let set = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |state| {
                debug_assert!(Phase::from_bits(state).is_final());
                (state & !(PHASE | DETACHED) == 0).then_some(state | PUBLISHED)
            });
        match set {
            Ok(before) if before & DETACHED != 0 => Finish::PublishedDetached,
            Ok(_) => Finish::Published,
            Err(_) => Finish::Watched,
        }
    }

    /// The handle is dropped: sets DETACHED, without the slot's lock (see
    /// the module docs).
    pub(crate) fn detach(&self) {
        self.0.fetch_or(DETACHED, Ordering::AcqRel);
    }

    /// The flags as they are now (read under the slot's lock by the owner
    /// that publishes, to see DETACHED).
    #[inline]
    pub(crate) fn now(&self) -> Snapshot {
        Snapshot(self.load())
    }

    /// Sets WATCHED (slot's lock held) and returns the word as it was, as
    /// a [`Snapshot`] to decide from whether the watcher must wait: read
    /// by the same read-modify-write, so it is ordered against
    /// [`finish_unwatched`](State::finish_unwatched) (see the module docs).
    pub(crate) fn watch(&self) -> Snapshot {
        Snapshot(self.0.fetch_or(WATCHED, Ordering::AcqRel))
    }

    /// RUNNING → PENDING, by the owner of a periodic task's run.
    pub(crate) fn pause(&self) {
        let moved = self.move_phase(Phase::Running, Phase::Pending);
        debug_assert!(moved, "pause() on a task that was not running");
    }

    /// Sets PUBLISHED (and clears LENT) on a final phase. Called with the
    /// slot's lock held, after the phase became final (no transition
    /// succeeds any more), on a word that is not published or is lent: no
    /// taker or lender can win it then, and watchers change it only under
    /// the lock; a dropped handle may still add DETACHED, hence one
    /// read-modify-write rather than a load and a store.
    pub(crate) fn set_published(&self) {
        self.update(|state| {
            debug_assert!(Phase::from_bits(state).is_final());
            (state & !LENT) | PUBLISHED
        });
    }

    /// Replaces the word by `f` of it, in one read-modify-write.
    #[inline]
    fn update(&self, f: impl Fn(u8) -> u8) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |state| Some(f(state)));
    }

    /// RUNNING → `to`, published at once: the finish of a task with no
    /// callback queued (`Completion::finish`, `finish_and_take`). Called by
    /// the owner of the running task with the slot's lock held: nobody else
    /// moves a RUNNING task, and every other change of its word (a watcher
    /// setting WATCHED) is made under that lock but a dropped handle's
    /// DETACHED, so one read-modify-write is the whole step.
    /// With `taken`, the value went to the owner instead of the cell
    /// (TAKEN is set with the rest).
    pub(crate) fn finish_published(&self, to: Phase, taken: bool) {
        debug_assert!(to.is_final());
        let taken = if taken { TAKEN } else { 0 };
        self.update(|state| {
            debug_assert_eq!(state & PHASE, RUNNING);
            (state & !PHASE) | to.bits() | PUBLISHED | taken
        });
    }

    /// Wins the value cell to take the value out for good (TAKEN), if it
    /// is available and was not taken; see [`Hold`]. No lock: the
    /// compare-and-swap decides between takers, and against a lend.
    #[inline]
    pub(crate) fn take_value(&self) -> Hold {
        self.hold(TAKEN)
    }

    /// Wins the value cell to lend the value to a late callback (LENT; the
    /// slot's lock held), if it is available and was not taken; the lender
    /// puts it back with [`set_published`](State::set_published).
    pub(crate) fn lend_value(&self) -> Hold {
        self.hold(LENT)
    }

    #[inline]
    fn hold(&self, flag: u8) -> Hold {
        let set = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                (state & (PUBLISHED | LENT | TAKEN) == PUBLISHED).then_some(state | flag)
            });
        match set {
            Ok(_) => Hold::Won,
            Err(state) if state & (PUBLISHED | LENT) != PUBLISHED => Hold::NotAvailable,
            Err(_) => Hold::Taken,
        }
    }

    /// The lent cell turned out empty (its value went to the thread that
    /// ran the task): given back as taken (slot's lock held).
    pub(crate) fn set_taken_unlent(&self) {
        self.update(|state| (state & !LENT) | TAKEN);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_of_claim_and_abort_wins() {
        let s = State::pending();
        assert_eq!(s.claim(), Claim::Won);
        assert_eq!(s.abort(Phase::Cancelled), Abort::TooLate);
        assert_eq!(s.claim(), Claim::Lost);
        s.finish(Phase::Ok);
        assert!(s.is_ready() && !s.is_published());
        let s = State::pending();
        assert_eq!(s.abort(Phase::Failed), Abort::Won);
        assert_eq!(s.claim(), Claim::Lost);
        assert_eq!(s.phase(), Phase::Failed);
    }

    #[test]
    fn pause_returns_a_run_to_pending_and_start_shared_is_idempotent() {
        let s = State::pending();
        assert_eq!(s.claim(), Claim::Won);
        s.pause();
        assert_eq!(s.phase(), Phase::Pending);
        s.start_shared();
        s.start_shared();
        assert_eq!(s.phase(), Phase::Running);
    }

    #[test]
    fn flags_publish_lend_and_take() {
        let s = State::pending();
        assert_eq!(s.claim(), Claim::Won);
        s.finish(Phase::Cancelled);
        assert_eq!(s.take_value(), Hold::NotAvailable);
        s.set_published();
        assert!(s.is_published() && s.is_available());
        assert_eq!(s.lend_value(), Hold::Won);
        assert!(!s.is_available());
        assert_eq!(s.take_value(), Hold::NotAvailable);
        s.set_published();
        assert!(s.is_published() && s.is_available());
        assert_eq!(s.take_value(), Hold::Won);
        assert_eq!(s.take_value(), Hold::Taken);
        assert_eq!(s.lend_value(), Hold::Taken);
        assert!(s.is_available());
        assert_eq!(s.phase(), Phase::Cancelled);
    }
}
