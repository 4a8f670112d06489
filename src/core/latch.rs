//! The latch of a fork-join job ([`join`](crate::join)'s second closure
//! while it is queued): set once by whoever runs (or gives back) the job,
//! waited on by the worker that forked it.
//!
//! A latch lives in the forking worker's stack frame, which is freed as
//! soon as the waiter sees it set. So [`Latch::set`] takes a raw pointer
//! and touches nothing of the latch after its final store, and the waiter
//! only trusts the final state:
//!
//! ```text
//!   UNSET ──── set ─────────────────────────────▶ SET
//!     │                                             ▲
//!     └─ register (the waiter's thread is kept) ─▶ SLEEPY ── set: take the
//!                                                  thread, store SET, unpark
//! ```
//!
//! On the common path (the job is taken back, or runs before anybody
//! waits) setting costs one compare-and-swap and no lock. A waiter that
//! has to park first stores its thread under the small lock; the setter
//! takes the thread out (while the state still says SLEEPY, so the waiter
//! cannot leave and free the latch), stores SET, and only then unparks the
//! thread it took, which it owns.

use crate::core::sync::{lock, AtomicU8, Mutex, Ordering, Thread};
use crate::core::waitable::Waitable;

const UNSET: u8 = 0;
const SLEEPY: u8 = 1;
const SET: u8 = 2;

/// A one-shot flag a thread can wait on (see the module docs).
pub(crate) struct Latch {
    state: AtomicU8,
    sleeper: Mutex<Option<Thread>>,
    /// Under loom, the model's stand-in for the waiter freeing the latch:
    /// a setter touching it afterwards fails the model.
    #[cfg(loom)]
    freed: crate::core::sync::AtomicBool,
}

impl Latch {
    pub(crate) fn new() -> Self {
        Latch {
            state: AtomicU8::new(UNSET),
            sleeper: Mutex::new(None),
            #[cfg(loom)]
            freed: crate::core::sync::AtomicBool::new(false),
        }
    }

    /// The loom model's "the waiter freed the latch" (see `freed`).
    #[cfg(loom)]
    pub(crate) fn mark_freed(&self) {
        assert!(self.probe(), "freed before it was set");
        self.freed.store(true, Ordering::SeqCst);
    }

    #[cfg(loom)]
    fn assert_live(&self) {
        assert!(
            !self.freed.load(Ordering::SeqCst),
            "latch used after its waiter freed it"
        );
    }

    #[cfg(not(loom))]
    fn assert_live(&self) {}

    /// Whether the latch is set; what was written before the set is
    /// visible after a true answer.
    #[inline]
    pub(crate) fn probe(&self) -> bool {
        self.state.load(Ordering::Acquire) == SET
    }

    /// Sets the latch and wakes the thread waiting on it, if any.
    ///
    /// # Safety
    ///
    /// `this` points to a live latch, set at most once. The latch may be
    /// freed by its waiter the moment it is set: this call uses it no more
    /// after its final store, and the caller must not use it (or what holds
    /// it) after the call either.
    #[allow(unsafe_code)]
    pub(crate) unsafe fn set(this: *const Latch) {
        // SAFETY: the caller guarantees `this` is live until the latch is
        // set, and it is set only at the end of each branch below.
        let latch = unsafe { &*this };
        if latch
            .state
            .compare_exchange(UNSET, SET, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return;
        }
        // SLEEPY: only this call moves the state on from here, so the
        // waiter stays until the store below.
        latch.assert_live();
        let sleeper = lock(&latch.sleeper).take();
        latch.assert_live();
        latch.state.store(SET, Ordering::Release);
        // `latch` may be gone from here on; `sleeper` is ours.
        if let Some(thread) = sleeper {
            thread.unpark();
        }
    }
}

impl Waitable for Latch {
    fn is_done(&self) -> bool {
        self.probe()
    }

    fn register(&self, thread: &Thread) -> bool {
        let mut sleeper = lock(&self.sleeper);
        match self.state.load(Ordering::Acquire) {
            SET => false,
            SLEEPY => {
                // Registered before (a waiter that parked and came back);
                // the thread may be a stand-in on a fresh stack since.
                *sleeper = Some(thread.clone());
                true
            }
            _ => {
                *sleeper = Some(thread.clone());
                match self.state.compare_exchange(
                    UNSET,
                    SLEEPY,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => true,
                    Err(_) => {
                        // Set meanwhile (the only other way out of UNSET).
                        *sleeper = None;
                        false
                    }
                }
            }
        }
    }

    fn deregister(&self, _thread: &Thread) {
        // The state stays SLEEPY: a setter then takes nothing and wakes
        // nobody.
        *lock(&self.sleeper) = None;
    }
}
