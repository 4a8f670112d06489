//! Parking idle workers and waking exactly one when work arrives.
//!
//! The protocol is a Dekker-style handshake between a thread that makes
//! work visible and a worker that is about to sleep:
//!
//! ```text
//!   producer                          worker going idle
//!   push job                          push self on `idle`, sleepers += 1
//!   fence(SeqCst)                     fence(SeqCst)
//!   if sleepers > 0: wake one         if work visible (or must leave): don't park
//! ```
//!
//! With both fences, at least one side sees the other: either the producer
//! sees a sleeper and wakes it, or the worker sees the job. A wake pops one
//! worker off `idle`, sets its `notified` flag under the lock and unparks
//! it. A worker that leaves the sleep on its own (it saw work, its awaited
//! task finished, the pool closed) takes itself off `idle`; if it is no
//! longer there, a producer picked it, and it passes that wake on, so a
//! wake-up is never absorbed by a worker that will not look for work.

use std::time::Instant;

use crate::sync::{fence, lock, park_until, AtomicBool, AtomicUsize, Mutex, Ordering, Thread};

pub(crate) struct Sleep {
    /// How many workers are on `idle`; read without the lock by producers.
    sleepers: AtomicUsize,
    /// Sleeping workers, most recent last (woken first: its cache is warm).
    idle: Mutex<Vec<(usize, Thread)>>,
    /// Per worker: a producer chose it. Set under the `idle` lock.
    notified: Box<[AtomicBool]>,
}

/// How a sleep ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woken {
    /// A producer chose this worker: there is work to look for.
    Notified,
    /// `stay_awake` became true (or was at the start).
    Condition,
    /// The deadline passed.
    Timeout,
}

impl Sleep {
    pub(crate) fn new(workers: usize) -> Self {
        Sleep {
            sleepers: AtomicUsize::new(0),
            idle: Mutex::new(Vec::with_capacity(workers)),
            notified: (0..workers).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// Parks worker `index` (whose thread is `thread`, the current one)
    /// until a producer wakes it, `stay_awake()` holds, or `deadline`.
    ///
    /// `stay_awake` must be true whenever there is work visible to this
    /// worker or a reason to leave; it is checked after the worker is
    /// registered, so work made visible before a producer's
    /// [`wake_one`](Sleep::wake_one) is never slept through.
    pub(crate) fn sleep(
        &self,
        index: usize,
        thread: &Thread,
        stay_awake: impl Fn() -> bool,
        deadline: Option<Instant>,
    ) -> Woken {
        {
            let mut idle = lock(&self.idle);
            idle.push((index, thread.clone()));
            self.sleepers.fetch_add(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        if stay_awake() {
            self.leave(index);
            return Woken::Condition;
        }
        loop {
            let in_time = park_until(deadline);
            if self.notified[index].swap(false, Ordering::Acquire) {
                return Woken::Notified;
            }
            if stay_awake() {
                self.leave(index);
                return Woken::Condition;
            }
            if !in_time {
                self.leave(index);
                return Woken::Timeout;
            }
        }
    }

    /// Takes worker `index` off the idle list on its own initiative.
    fn leave(&self, index: usize) {
        let mut idle = lock(&self.idle);
        if let Some(pos) = idle.iter().position(|(i, _)| *i == index) {
            idle.remove(pos);
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        drop(idle);
        // A producer chose us meanwhile (and set the flag under the lock we
        // just held): its wake-up was meant for a worker that will look for
        // work, which we may not do now. Hand it to someone else.
        self.notified[index].store(false, Ordering::Relaxed);
        self.wake_one();
    }

    /// Wakes one sleeping worker, if any. Call it after making work visible
    /// (pushing a job); it supplies the fence that pairs with the sleeper's.
    /// The fence comes first, before anything else: `Registry::push` relies
    /// on it to order its push before its check of `closed`.
    /// Returns whether a worker was woken.
    pub(crate) fn wake_one(&self) -> bool {
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let chosen = {
            let mut idle = lock(&self.idle);
            let Some((index, thread)) = idle.pop() else {
                return false;
            };
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            self.notified[index].store(true, Ordering::Release);
            thread
        };
        chosen.unpark();
        true
    }

    /// Wakes every sleeping worker (close, terminate).
    pub(crate) fn wake_all(&self) {
        fence(Ordering::SeqCst);
        let chosen: Vec<(usize, Thread)> = {
            let mut idle = lock(&self.idle);
            self.sleepers.fetch_sub(idle.len(), Ordering::SeqCst);
            for (index, _) in idle.iter() {
                self.notified[*index].store(true, Ordering::Release);
            }
            std::mem::take(&mut *idle)
        };
        for (_, thread) in chosen {
            thread.unpark();
        }
    }

    /// How many workers are parked right now.
    #[cfg(test)]
    pub(crate) fn sleeping(&self) -> usize {
        self.sleepers.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn wake_one_with_nobody_asleep_is_a_no_op() {
        let sleep = Sleep::new(3);
        assert!(!sleep.wake_one());
        sleep.wake_all();
        assert_eq!(sleep.sleeping(), 0);
    }

    #[test]
    fn sleep_returns_at_its_deadline() {
        let sleep = Sleep::new(1);
        let me = std::thread::current();
        let woken = sleep.sleep(
            0,
            &me,
            || false,
            Some(Instant::now() + Duration::from_millis(5)),
        );
        assert_eq!(woken, Woken::Timeout);
        assert_eq!(
            sleep.sleeping(),
            0,
            "a timed-out sleeper leaves the idle list"
        );
    }
}
