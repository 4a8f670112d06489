//! The starvation monitor of an elastic pool: the safety net for tasks
//! that block without saying so (a syscall, a lock, a long computation
//! outside [`blocking`](crate::blocking)).
//!
//! Submissions start workers on demand, but a worker that was idle when a
//! task arrived may take it and then block, or take another task first;
//! so queued work can sit while every worker is busy. The monitor, one
//! thread per elastic pool started the first time it is needed
//! (`{prefix}-monitor`), samples the pool every [`PERIOD`] while it is
//! *armed*: if work was queued at two consecutive samples, no worker
//! started any task in between and none is parked, it starts one more
//! worker (up to the cap). So a stall is noticed at most `2 * PERIOD`
//! after the last task started, and the pool then grows by one thread per
//! `PERIOD` for as long as it lasts (each new worker also starts another
//! when it finds more work queued and nobody idle, as any worker does).
//!
//! Armed and disarmed, without cost while idle: the armed bit lives in the
//! pool's count word (`counts.rs`). A submission that finds no parked
//! worker reads that word anyway; if nobody can be started and the bit is
//! clear, it arms the monitor. The monitor disarms itself when it sees
//! nothing queued and parks with no timeout: an idle pool wakes it never.
//! Disarming is the same write-fence-check handshake as the rest of the
//! protocol (clear the bit, fence, look at the queues again), so work
//! queued while it disarms either is seen by it or arms it again.

use std::sync::{Mutex, Weak};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use once_cell::sync::OnceCell;

use crate::core::registry::Registry;
use crate::core::sync::lock_std as lock;

/// How often an armed monitor samples the pool.
pub(crate) const PERIOD: Duration = Duration::from_millis(50);

#[derive(Default)]
pub(crate) struct Monitor {
    thread: OnceCell<Thread>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Monitor {
    /// Sets the armed bit and wakes (or starts) the monitor thread.
    #[cold]
    pub(crate) fn arm(&self, registry: &Registry) {
        let counts = &registry.threads.counts;
        if counts
            .update(|c| (!c.armed()).then(|| c.with_armed(true)))
            .is_none()
        {
            return;
        }
        if let Some(thread) = self.thread.get() {
            thread.unpark();
            return;
        }
        let mut handle = lock(&self.handle);
        if let Some(thread) = self.thread.get() {
            thread.unpark();
            return;
        }
        if registry.is_closed() {
            return;
        }
        let weak = registry.weak();
        let spawned = thread::Builder::new()
            .name(format!("{}-monitor", registry.thread_name()))
            .stack_size(64 << 10)
            .spawn(move || watch(weak));
        // If the thread cannot start there is no safety net; submissions
        // and `blocking` still grow the pool. The bit stays set, so this
        // is not retried per submission.
        if let Ok(h) = spawned {
            let _ = self.thread.set(h.thread().clone());
            *handle = Some(h);
        }
    }

    /// Lets the monitor see that the pool closed.
    pub(crate) fn stop(&self) {
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }

    /// Joins the monitor thread (after close), if one was started.
    pub(crate) fn join(&self) {
        if let Some(h) = lock(&self.handle).take() {
            let _ = h.join();
        }
    }
}

/// The monitor thread. Holds the pool only weakly, and not while parked.
fn watch(weak: Weak<Registry>) {
    let mut last: Option<u64> = None;
    loop {
        let Some(registry) = weak.upgrade() else {
            return;
        };
        if registry.is_closed() {
            return;
        }
        if !registry.threads.counts.load().armed() {
            drop(registry);
            last = None;
            thread::park();
            continue;
        }
        drop(registry);
        let until = Instant::now() + PERIOD;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            thread::park_timeout(left);
            if weak.upgrade().map_or(true, |r| r.is_closed()) {
                return;
            }
        }
        let Some(registry) = weak.upgrade() else {
            return;
        };
        let threads = &registry.threads;
        if !registry.has_queued() {
            threads.counts.update(|c| Some(c.with_armed(false)));
            crate::core::barrier::heavy();
            if registry.has_queued() {
                threads.counts.update(|c| Some(c.with_armed(true)));
            }
            last = None;
            continue;
        }
        let started: u64 = threads.slots.iter().map(|s| s.counters.started()).sum();
        if last == Some(started) && registry.parking.parked() == 0 {
            threads.grow_starved(&registry);
        }
        last = Some(started);
    }
}
