//! Worker slots: the per-worker state other threads reach by index (the
//! deques' stealers, the statistics block, the parking flag), allocated
//! the first time a worker needs that index and kept for the pool's life.
//!
//! A pool may grow to thousands of threads at run time, so nothing is
//! sized to the cap in advance: the slots live in chunks of [`CHUNK`],
//! each allocated on first use, behind one small table of chunk pointers.
//! Indices are handed out lowest first and reused after a worker exits,
//! together with the slot's deques (empty by then), so a pool that grows
//! and shrinks keeps its names (`"{prefix}-{index}"`) and its scans short.
//! The statistics of a slot's earlier occupants stay in it.

use std::sync::{Arc, Mutex};

use crossbeam_deque::{Stealer, Worker};
use once_cell::sync::OnceCell;

use crate::core::counters::WorkerCounters;
use crate::core::forks::{ForkStealer, Forks};
use crate::core::job::JobRef;
use crate::core::parking::{Notified, Parking};
use crate::core::sync::lock_std;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Slots per chunk.
const CHUNK: usize = 128;

/// What the pool keeps for one worker index.
pub(crate) struct Slot {
    /// The statistics of every worker that held this index.
    pub(crate) counters: WorkerCounters,
    /// Thieves' end of the index's task deque.
    pub(crate) stealer: Stealer<JobRef>,
    /// Thieves' end of the index's fork deque.
    pub(crate) forks: ForkStealer,
    /// The parking flag of the worker holding the index.
    pub(crate) notified: Notified,
    /// The owner's ends of the deques while no worker holds the index.
    deque: Mutex<Option<Deques>>,
}

/// The owner's ends of a worker's two deques: tasks (submitted from the
/// worker, batches of outside work) and `join`'s forks (`forks.rs`).
pub(crate) struct Deques {
    pub(crate) tasks: Worker<JobRef>,
    pub(crate) forks: Forks,
}

impl Deques {
    /// Whether both are empty (exact for the owner).
    pub(crate) fn is_empty(&self) -> bool {
        self.tasks.is_empty() && self.forks.is_empty()
    }
}

type Chunk = [OnceCell<Arc<Slot>>; CHUNK];

/// Every slot of a pool. Read on every steal and queue check, written only
/// when a thread starts or exits: kept off the lines of hot counters.
#[repr(align(128))]
pub(crate) struct Slots {
    chunks: Box<[OnceCell<Box<Chunk>>]>,
    /// One past the highest index ever handed out: scans stop here.
    used: AtomicUsize,
    /// Indices handed out and given back.
    free: Mutex<Vec<usize>>,
    /// How many indices there are.
    capacity: usize,
}

impl Slots {
    /// Room for `capacity` indices.
    pub(crate) fn new(capacity: usize) -> Self {
        Slots {
            chunks: (0..(capacity + CHUNK - 1) / CHUNK)
                .map(|_| OnceCell::new())
                .collect(),
            used: AtomicUsize::new(0),
            free: Mutex::new(Vec::new()),
            capacity,
        }
    }

    /// One past the highest index handed out so far.
    #[inline]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The slot at `index`, if one was ever handed out there.
    #[inline]
    pub(crate) fn get(&self, index: usize) -> Option<&Arc<Slot>> {
        self.chunks.get(index / CHUNK)?.get()?[index % CHUNK].get()
    }

    /// Indices handed out before and free now (a snapshot).
    pub(crate) fn vacant(&self) -> usize {
        lock_std(&self.free).len()
    }

    /// Every slot handed out so far, in index order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Slot>> + '_ {
        (0..self.used()).filter_map(|i| self.get(i))
    }

    /// Takes the lowest free index, with its slot and the deque's owner
    /// ends; `None` if every index is taken.
    pub(crate) fn take(&self) -> Option<(usize, Arc<Slot>, Deques)> {
        let mut free = lock_std(&self.free);
        let index = match free.iter().enumerate().min_by_key(|(_, i)| **i) {
            Some((pos, _)) => free.swap_remove(pos),
            None => {
                let next = self.used.load(Ordering::Relaxed);
                if next >= self.capacity {
                    return None;
                }
                next
            }
        };
        let chunk = self.chunks[index / CHUNK]
            .get_or_init(|| Box::new(std::array::from_fn(|_| OnceCell::new())));
        let slot = chunk[index % CHUNK].get_or_init(|| {
            let deques = Deques {
                tasks: Worker::new_lifo(),
                forks: Forks::new(),
            };
            Arc::new(Slot {
                counters: WorkerCounters::new(),
                stealer: deques.tasks.stealer(),
                forks: deques.forks.stealer(),
                notified: Parking::flag(),
                deque: Mutex::new(Some(deques)),
            })
        });
        // Published after the slot exists (scans read `used` first).
        if index >= self.used.load(Ordering::Relaxed) {
            self.used.store(index + 1, Ordering::Release);
        }
        let deque = lock_std(&slot.deque)
            .take()
            .expect("a free slot keeps its deque");
        Some((index, slot.clone(), deque))
    }

    /// Gives an index back with its (empty) deques.
    pub(crate) fn give_back(&self, index: usize, slot: &Slot, deque: Deques) {
        debug_assert!(deque.is_empty(), "a worker left jobs in its deque");
        *lock_std(&slot.deque) = Some(deque);
        lock_std(&self.free).push(index);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn indices_are_reused_lowest_first_and_run_out_cleanly() {
        let slots = Slots::new(3);
        let (a, sa, da) = slots.take().unwrap();
        let (b, _, _db) = slots.take().unwrap();
        let (c, sc, dc) = slots.take().unwrap();
        assert_eq!((a, b, c), (0, 1, 2));
        assert!(slots.take().is_none(), "no fourth index");
        slots.give_back(c, &sc, dc);
        slots.give_back(a, &sa, da);
        assert_eq!(slots.take().unwrap().0, 0);
        assert_eq!(slots.take().unwrap().0, 2);
        assert_eq!(slots.used(), 3);
        assert_eq!(slots.iter().count(), 3);
    }
}
