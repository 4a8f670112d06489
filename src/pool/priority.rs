//! Priorities: the pool's priority queue and
//! [`ThreadPool::submit_with_priority`](crate::ThreadPool::submit_with_priority).
//!
//! Prioritized submissions go to one `Mutex<BinaryHeap>`, apart from the
//! lock-free queues the plain `submit` path uses, so that path is
//! unchanged: workers look at the heap only when an atomic length says it
//! is non-empty (one relaxed load per look for outside work).
//!
//! What is guaranteed: among queued prioritized tasks, each one a worker
//! takes is the highest-priority one queued at that moment, oldest first
//! among equals (Python's `heapq` with a sequence number). With one worker
//! they therefore *start* in exactly that order; with several, they start
//! in that order but run side by side, so they may finish in any order.
//!
//! What is not: a plain submission counts as priority 0, and a worker
//! prefers the heap over the plain outside queue only for priorities
//! above 0 (below 0, plain work goes first; at 0, plain work goes first).
//! But work-stealing blurs this between the two queues: a worker takes
//! plain outside work in batches into its own deque, and it (and thieves)
//! run its deque before looking outside again, so a high-priority task
//! queued after such a batch can wait behind that batch. Tasks submitted
//! from inside the pool (to the worker's own deque) are not ordered
//! against the heap at all: a worker finishes its own deque first.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::core::job::JobRef;
use crate::core::sync::{lock, Mutex};

struct Entry {
    priority: i32,
    seq: u64,
    job: JobRef,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// The max-heap's top is the highest priority, then the lowest
    /// sequence number (first come, first served among equals).
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

#[derive(Default)]
struct Heap {
    entries: BinaryHeap<Entry>,
    next_seq: u64,
}

/// The pool's queue of prioritized tasks.
#[derive(Default)]
pub(crate) struct PriorityQueue {
    heap: Mutex<Heap>,
    /// The heap's length, readable without the lock; updated under it.
    len: AtomicUsize,
}

impl PriorityQueue {
    /// A lock-free hint: false means a worker need not take the lock.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub(crate) fn push(&self, priority: i32, job: JobRef) {
        let mut heap = lock(&self.heap);
        let seq = heap.next_seq;
        heap.next_seq += 1;
        heap.entries.push(Entry { priority, seq, job });
        self.len.store(heap.entries.len(), Ordering::Relaxed);
    }

    /// Pops the top entry if its priority is above `floor` (or any entry
    /// with `floor == None`).
    pub(crate) fn pop_above(&self, floor: Option<i32>) -> Option<JobRef> {
        if self.len() == 0 {
            return None;
        }
        let mut heap = lock(&self.heap);
        let top = heap.entries.peek()?.priority;
        if floor.is_some_and(|floor| top <= floor) {
            return None;
        }
        let entry = heap.entries.pop()?;
        self.len.store(heap.entries.len(), Ordering::Relaxed);
        Some(entry.job)
    }

    /// Takes every entry out (terminate, shutdown with cancel_futures).
    pub(crate) fn take_all(&self) -> Vec<JobRef> {
        let mut heap = lock(&self.heap);
        self.len.store(0, Ordering::Relaxed);
        std::mem::take(&mut heap.entries)
            .into_iter()
            .map(|e| e.job)
            .collect()
    }
}
