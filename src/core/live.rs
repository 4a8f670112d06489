//! The async tasks of one pool that are not over yet ([`LiveSet`]): a
//! closed pool's workers stay while any is alive (a suspended task may
//! still be woken and must find a worker), `terminate` cancels them all,
//! and `wait_idle` waits for them. The tasks themselves are
//! `future/task.rs`; the set only knows what [`LiveTask`] lets it do.

use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};
use std::sync::Mutex as StdMutex;

use crate::core::recycle::Recycled;
use crate::core::sync::lock_std;

/// What the pool's [`LiveSet`] can do with an async task it lists.
pub(crate) trait LiveTask: Send + Sync {
    /// As [`AsyncResult::cancel`](crate::AsyncResult::cancel) on the
    /// task's handle.
    fn cancel(&self) -> bool;
}

/// One shard of a [`LiveSet`]: a slab, so insert and remove are O(1)
/// with no hashing (a task keeps its slot number).
#[derive(Default)]
struct Slab {
    /// Each entry holds its task's memory (not the right to poll it, see
    /// `future/refs.rs`).
    entries: Vec<Option<Recycled<dyn LiveTask>>>,
    free: Vec<usize>,
}

/// The async tasks of one pool that are not over yet. Workers do not exit
/// while it is non-empty (a suspended task may be woken later), and
/// terminate cancels every task in it. Sharded, so spawning and finishing
/// on several threads rarely contend for one lock.
pub(crate) struct LiveSet {
    live: AtomicUsize,
    shards: Box<[StdMutex<Slab>]>,
}

/// A task's place in a [`LiveSet`]: shard and slot, packed.
#[derive(Clone, Copy)]
pub(crate) struct SlotId(pub(crate) usize);

const SHARD_BITS: usize = 6;

impl LiveSet {
    pub(crate) fn new(workers: usize) -> Self {
        let n = (workers * 4).next_power_of_two().min(1 << SHARD_BITS);
        LiveSet {
            live: AtomicUsize::new(0),
            shards: (0..n).map(|_| StdMutex::new(Slab::default())).collect(),
        }
    }

    fn lock(&self, shard: usize) -> std::sync::MutexGuard<'_, Slab> {
        lock_std(&self.shards[shard])
    }

    /// Whether any async task of the pool is still alive. SeqCst: a worker
    /// reads it after its exit fence (see [`Registry::push`]).
    pub(crate) fn any_live(&self) -> bool {
        self.live.load(StdOrdering::SeqCst) != 0
    }

    /// Lists `task`; `placed` is told its slot before the lock is let go,
    /// so whoever finds the task here (`cancel_all`) finds it placed.
    pub(crate) fn insert(&self, task: Recycled<dyn LiveTask>, placed: impl FnOnce(SlotId)) {
        // Counted before the task is queued, so a worker that sees the
        // queue empty after close also sees the task alive.
        self.live.fetch_add(1, StdOrdering::SeqCst);
        // Spread by the task's address (its allocation is unique).
        let addr = &*task as *const dyn LiveTask as *const () as usize;
        let shard = (addr >> 4).wrapping_mul(0x9E37_79B9) >> 8 & (self.shards.len() - 1);
        let mut slab = self.lock(shard);
        let index = match slab.free.pop() {
            Some(index) => {
                slab.entries[index] = Some(task);
                index
            }
            None => {
                slab.entries.push(Some(task));
                slab.entries.len() - 1
            }
        };
        placed(SlotId(index << SHARD_BITS | shard));
    }

    /// How many async tasks of the pool are alive.
    pub(crate) fn count(&self) -> usize {
        self.live.load(StdOrdering::SeqCst)
    }

    /// Forgets a task; how many are left alive (`None` if it was already
    /// forgotten).
    pub(crate) fn remove(&self, slot: SlotId) -> Option<usize> {
        let (shard, index) = (slot.0 & ((1 << SHARD_BITS) - 1), slot.0 >> SHARD_BITS);
        let entry = {
            let mut slab = self.lock(shard);
            let entry = slab.entries[index].take()?;
            slab.free.push(index);
            entry
        };
        // Outside the lock: in case it was the last reference to the
        // task's memory, whose drop runs the outcome's destructor.
        drop(entry);
        Some(self.live.fetch_sub(1, StdOrdering::SeqCst) - 1)
    }

    /// Cancels every live task (terminate, `shutdown(_, true)`).
    pub(crate) fn cancel_all(&self) {
        let tasks: Vec<Recycled<dyn LiveTask>> = (0..self.shards.len())
            .flat_map(|shard| {
                let slab = self.lock(shard);
                slab.entries.iter().flatten().cloned().collect::<Vec<_>>()
            })
            .collect();
        // Outside the locks: cancelling may finish a task, which removes it.
        for task in tasks {
            task.cancel();
        }
    }
}

/// Marks the current thread as polling an async task of pool `pool`
/// while it lives: `wait_idle` called from inside that poll does not wait
/// for the caller's own task.
pub(crate) struct Polling(u32);

std::thread_local! {
    /// The pool whose async task this thread is polling (0: none).
    static POLLING_POOL: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

impl Polling {
    pub(crate) fn enter(pool: u32) -> Polling {
        Polling(POLLING_POOL.try_with(|p| p.replace(pool)).unwrap_or(0))
    }

    /// Whether this thread is polling an async task of pool `pool`.
    pub(crate) fn here(pool: u32) -> bool {
        Self::pool() == pool
    }

    /// The pool whose async task this thread is polling (0: none).
    pub(crate) fn pool() -> u32 {
        POLLING_POOL.try_with(std::cell::Cell::get).unwrap_or(0)
    }
}

impl Drop for Polling {
    fn drop(&mut self) {
        let _ = POLLING_POOL.try_with(|p| p.set(self.0));
    }
}
