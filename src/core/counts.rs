//! The one word an elastic pool decides with: how many workers are alive,
//! how many of them are spare (searching for work or still starting), and
//! how much room there is below the cap and below the target, packed so
//! that a submission reads it with a single atomic load and every change
//! is a single read-modify-write (the protocol is in `core/threads.rs`).
//!
//! ```text
//!   bits  0..16  alive     threads counted: running, or reserved and starting
//!   bits 16..31  spare     of those, searching for work (idle, not parked)
//!   bit  31      armed     the starvation monitor is watching (`monitor.rs`)
//!   bits 32..48  cap room  cap - alive                       (biased by 2^15)
//!   bits 48..64  target    target + blocked - alive          (biased by 2^15)
//! ```
//!
//! "target" is how many workers not inside `blocking` the pool wants: its
//! size for a fixed pool, its cap for an elastic one. A pool may start one
//! more worker when nobody is spare and both rooms are positive.

use crate::core::sync::{AtomicU64, Ordering};

const FIELD: u32 = 16;
const MASK: u64 = 0xFFFF;
const BIAS: i64 = 1 << 15;
const SPARE_MASK: u64 = 0x7FFF;
const ARMED: u64 = 1 << 31;
const SPARE_ONE: u64 = 1 << FIELD;
const TARGET_ONE: u64 = 1 << (3 * FIELD);

/// The most threads any count may hold (the fields are 15 bits of value).
pub(crate) const LIMIT: usize = (1 << 15) - 1;

/// A snapshot of the word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts(u64);

impl Counts {
    pub(crate) fn new(alive: usize, cap_room: isize, target_room: isize) -> Counts {
        Counts(0)
            .with_alive(alive)
            .with_cap_room(cap_room)
            .with_target_room(target_room)
    }

    pub(crate) fn alive(self) -> usize {
        (self.0 & MASK) as usize
    }
    pub(crate) fn spare(self) -> usize {
        ((self.0 >> FIELD) & SPARE_MASK) as usize
    }
    pub(crate) fn armed(self) -> bool {
        self.0 & ARMED != 0
    }
    pub(crate) fn cap_room(self) -> isize {
        (((self.0 >> (2 * FIELD)) & MASK) as i64 - BIAS) as isize
    }
    pub(crate) fn target_room(self) -> isize {
        (((self.0 >> (3 * FIELD)) & MASK) as i64 - BIAS) as isize
    }

    fn set(self, shift: u32, value: u64) -> Counts {
        Counts((self.0 & !(MASK << shift)) | ((value & MASK) << shift))
    }
    fn with_alive(self, n: usize) -> Counts {
        self.set(0, n as u64)
    }
    fn with_cap_room(self, n: isize) -> Counts {
        self.set(2 * FIELD, (n as i64 + BIAS) as u64)
    }
    fn with_target_room(self, n: isize) -> Counts {
        self.set(3 * FIELD, (n as i64 + BIAS) as u64)
    }

    /// Whether a submission that found no parked worker should start one.
    #[inline]
    pub(crate) fn may_grow(self) -> bool {
        self.spare() == 0 && self.cap_room() > 0 && self.target_room() > 0
    }

    /// One more thread reserved. Not spare: as in Python's
    /// `ThreadPoolExecutor`, a thread still starting does not count as
    /// idle, so a burst of submissions starts threads in parallel rather
    /// than one at a time.
    pub(crate) fn reserved(self) -> Counts {
        self.with_alive(self.alive() + 1)
            .with_cap_room(self.cap_room() - 1)
            .with_target_room(self.target_room() - 1)
    }

    /// A reservation undone (its thread never started).
    pub(crate) fn unreserved(self) -> Counts {
        self.exited()
    }

    /// A worker left the count (it exits).
    pub(crate) fn exited(self) -> Counts {
        self.with_alive(self.alive().saturating_sub(1))
            .with_cap_room(self.cap_room() + 1)
            .with_target_room(self.target_room() + 1)
    }

    /// A worker that had left the count takes its place back.
    pub(crate) fn rejoined(self) -> Counts {
        self.with_alive(self.alive() + 1)
            .with_cap_room(self.cap_room() - 1)
            .with_target_room(self.target_room() - 1)
    }

    /// The cap and the target moved by the given amounts.
    pub(crate) fn resized(self, cap_delta: isize, target_delta: isize) -> Counts {
        self.with_cap_room(self.cap_room() + cap_delta)
            .with_target_room(self.target_room() + target_delta)
    }

    pub(crate) fn with_armed(self, armed: bool) -> Counts {
        if armed {
            Counts(self.0 | ARMED)
        } else {
            Counts(self.0 & !ARMED)
        }
    }
}

/// The atomic word, alone on its cache lines: submissions read it and
/// must not miss because a neighbour (the parked count) was written.
#[repr(align(128))]
pub(crate) struct CountsCell(AtomicU64);

impl CountsCell {
    pub(crate) fn new(counts: Counts) -> Self {
        CountsCell(AtomicU64::new(counts.0))
    }

    #[inline]
    pub(crate) fn load(&self) -> Counts {
        Counts(self.0.load(Ordering::SeqCst))
    }

    /// Applies `f` atomically; `None` from `f` leaves the word alone.
    /// Returns the new value, or `None` if `f` declined.
    pub(crate) fn update(&self, mut f: impl FnMut(Counts) -> Option<Counts>) -> Option<Counts> {
        let mut now = self.0.load(Ordering::SeqCst);
        loop {
            let next = f(Counts(now))?;
            match self
                .0
                .compare_exchange_weak(now, next.0, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Some(next),
                Err(seen) => now = seen,
            }
        }
    }

    /// A worker starts searching for work (it counts as spare).
    #[inline]
    pub(crate) fn begin_search(&self) {
        self.0.fetch_add(SPARE_ONE, Ordering::SeqCst);
    }

    /// A spare worker found work or parked.
    #[inline]
    pub(crate) fn end_search(&self) {
        self.0.fetch_sub(SPARE_ONE, Ordering::SeqCst);
    }

    /// A worker enters `blocking` (the pool wants one more).
    pub(crate) fn begin_blocking(&self) {
        self.0.fetch_add(TARGET_ONE, Ordering::SeqCst);
    }

    /// A worker leaves `blocking`.
    pub(crate) fn end_blocking(&self) {
        self.0.fetch_sub(TARGET_ONE, Ordering::SeqCst);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_stay_apart() {
        let c = Counts::new(3, 5, -2);
        assert_eq!(
            (c.alive(), c.spare(), c.cap_room(), c.target_room()),
            (3, 0, 5, -2)
        );
        let r = c.reserved();
        assert_eq!(
            (r.alive(), r.spare(), r.cap_room(), r.target_room()),
            (4, 0, 4, -3)
        );
        assert!(!r.armed());
        let a = r.with_armed(true);
        assert!(a.armed() && a.spare() == 0 && a.alive() == 4);
        let u = a.unreserved();
        assert_eq!(
            (u.alive(), u.spare(), u.cap_room(), u.target_room()),
            (3, 0, 5, -2)
        );
        assert!(u.armed());
        let cell = CountsCell::new(Counts::new(LIMIT, 0, -(LIMIT as isize)));
        cell.begin_search();
        cell.begin_blocking();
        let now = cell.load();
        assert_eq!((now.alive(), now.spare(), now.cap_room()), (LIMIT, 1, 0));
        assert_eq!(now.target_room(), 1 - LIMIT as isize);
        cell.end_blocking();
        cell.end_search();
        assert_eq!(cell.load(), Counts::new(LIMIT, 0, -(LIMIT as isize)));
    }

    #[test]
    fn may_grow_needs_no_spare_and_both_rooms() {
        assert!(Counts::new(0, 4, 4).may_grow());
        assert!(
            Counts::new(0, 4, 4).reserved().may_grow(),
            "a starting thread is not spare"
        );
        let cell = CountsCell::new(Counts::new(1, 4, 4));
        cell.begin_search();
        assert!(!cell.load().may_grow(), "a searching worker is");
        assert!(!Counts::new(2, 0, 3).may_grow(), "at the cap");
        assert!(!Counts::new(2, 3, 0).may_grow(), "at the target");
    }
}
