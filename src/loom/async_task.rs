//! loom models of the wake/poll state machine of async tasks
//! (`future/task.rs`): wakes are never lost and never poll twice.

use std::sync::Arc;

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

use super::model;
use crate::future::task::{PollState, DONE, IDLE};

/// One async task as its wakers and workers see it: the schedule, and a
/// queue that holds the entries pushed by whoever moved it into SCHEDULED.
struct AsyncHarness {
    sched: PollState,
    queue: loom::sync::Mutex<usize>,
    wakes: AtomicUsize,
    polling: AtomicBool,
    polls: AtomicUsize,
    /// How many wakes the latest poll had seen when it started.
    last_seen: AtomicUsize,
    cancel: AtomicBool,
}

impl AsyncHarness {
    /// A spawned task: SCHEDULED, with its first queue entry.
    fn spawned() -> Arc<Self> {
        Arc::new(AsyncHarness {
            sched: PollState::new_scheduled(),
            queue: loom::sync::Mutex::new(1),
            wakes: AtomicUsize::new(0),
            polling: AtomicBool::new(false),
            polls: AtomicUsize::new(0),
            last_seen: AtomicUsize::new(0),
            cancel: AtomicBool::new(false),
        })
    }

    fn push(&self) {
        *self.queue.lock().unwrap() += 1;
    }

    fn pop(&self) -> bool {
        let mut q = self.queue.lock().unwrap();
        if *q == 0 {
            return false;
        }
        *q -= 1;
        true
    }

    fn wake(&self) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        if self.sched.wake() {
            self.push();
        }
    }

    /// A worker runs one queue entry: polls the task once. The future is
    /// ready once it has seen `ready_after` wakes (never, if None).
    fn run_one(&self, ready_after: Option<usize>) {
        assert!(
            self.sched.start(),
            "every queue entry finds its task SCHEDULED (one entry per schedule)"
        );
        if self.cancel.load(Ordering::SeqCst) {
            self.sched.finish();
            return;
        }
        assert!(!self.polling.swap(true, Ordering::SeqCst), "double poll");
        let seen = self.wakes.load(Ordering::SeqCst);
        self.last_seen.store(seen, Ordering::SeqCst);
        self.polls.fetch_add(1, Ordering::SeqCst);
        self.polling.store(false, Ordering::SeqCst);
        let ready = ready_after.is_some_and(|n| seen >= n);
        if ready || self.cancel.load(Ordering::SeqCst) {
            self.sched.finish();
        } else if self.sched.suspend() {
            self.push();
        }
    }

    fn drain(&self, ready_after: Option<usize>) {
        while self.pop() {
            self.run_one(ready_after);
        }
    }
}

#[test]
fn loom_async_wakes_are_never_lost_and_never_poll_twice() {
    model(|| {
        let h = AsyncHarness::spawned();
        let wakers: Vec<_> = (0..2)
            .map(|_| {
                let h = h.clone();
                thread::spawn(move || h.wake())
            })
            .collect();
        let worker = {
            let h = h.clone();
            thread::spawn(move || {
                for _ in 0..2 {
                    if h.pop() {
                        h.run_one(None);
                    }
                }
            })
        };
        for w in wakers {
            w.join().unwrap();
        }
        worker.join().unwrap();
        h.drain(None);
        // The last poll saw every wake: none was lost.
        assert_eq!(h.last_seen.load(Ordering::SeqCst), 2);
        assert_eq!(h.sched.state(), IDLE);
        assert_eq!(*h.queue.lock().unwrap(), 0);
        // Coalesced: the first poll plus at most one per wake (both wakes
        // may come before the first poll, which then answers them both).
        let polls = h.polls.load(Ordering::SeqCst);
        assert!((1..=3).contains(&polls), "{polls} polls");
    });
}

#[test]
fn loom_async_completion_races_a_wake() {
    model(|| {
        let h = AsyncHarness::spawned();
        let waker = {
            let h = h.clone();
            thread::spawn(move || h.wake())
        };
        let worker = {
            let h = h.clone();
            thread::spawn(move || {
                for _ in 0..2 {
                    if h.pop() {
                        h.run_one(Some(1));
                    }
                }
            })
        };
        waker.join().unwrap();
        worker.join().unwrap();
        h.drain(Some(1));
        // Completed exactly when it saw the wake; nothing queued after.
        assert_eq!(h.sched.state(), DONE);
        assert_eq!(h.last_seen.load(Ordering::SeqCst), 1);
        assert_eq!(*h.queue.lock().unwrap(), 0);
    });
}

#[test]
fn loom_async_cancel_is_seen_by_the_worker_whatever_the_interleaving() {
    model(|| {
        let h = AsyncHarness::spawned();
        let canceller = {
            let h = h.clone();
            thread::spawn(move || {
                // As LiveTask::cancel on a started task: flag, then wake.
                h.cancel.store(true, Ordering::SeqCst);
                if h.sched.wake() {
                    h.push();
                }
            })
        };
        let worker = {
            let h = h.clone();
            thread::spawn(move || {
                if h.pop() {
                    h.run_one(None);
                }
            })
        };
        canceller.join().unwrap();
        worker.join().unwrap();
        h.drain(None);
        assert_eq!(h.sched.state(), DONE, "the cancel was lost");
        assert_eq!(*h.queue.lock().unwrap(), 0);
    });
}

/// A task's polling references (`future/refs.rs`) against an upgrade from
/// its memory: the future (a loom cell, which reports any access not
/// ordered after the previous one) is dropped exactly once, by the thread
/// whose drop was the last, after every use through any reference; an
/// upgrade either gets a reference before that or fails.
#[test]
#[allow(unsafe_code)] // loom's cell hands out raw pointers
fn loom_poll_refs_end_the_task_once() {
    use crate::future::refs::{Dropped, PollRefs};
    use loom::cell::UnsafeCell;

    const LIVE: u32 = 1;
    const DROPPED: u32 = 2;

    struct Harness {
        refs: PollRefs,
        future: UnsafeCell<u32>,
        ends: AtomicUsize,
    }

    impl Harness {
        /// Uses the future through a reference the caller holds, then
        /// gives that reference back (ending the task if it was the last).
        fn use_and_drop(&self) {
            self.future
                .with(|f| assert_eq!(unsafe { *f }, LIVE, "used after its drop"));
            if self.refs.drop_one() == Dropped::Last {
                self.future.with_mut(|f| unsafe { *f = DROPPED });
                self.ends.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    model(|| {
        // Two polling references: a queue entry and a waker.
        let h = Arc::new(Harness {
            refs: PollRefs::new(2),
            future: UnsafeCell::new(LIVE),
            ends: AtomicUsize::new(0),
        });
        let entry = {
            let h = h.clone();
            thread::spawn(move || h.use_and_drop())
        };
        let handle = {
            let h = h.clone();
            // The handle cancelling: only memory, so an upgrade first.
            thread::spawn(move || {
                if h.refs.upgrade() {
                    h.use_and_drop();
                    true
                } else {
                    false
                }
            })
        };
        h.use_and_drop();
        entry.join().unwrap();
        let upgraded = handle.join().unwrap();
        assert_eq!(
            h.ends.load(Ordering::Relaxed),
            1,
            "ended {} times",
            h.ends.load(Ordering::Relaxed)
        );
        assert!(!h.refs.upgrade(), "an upgrade after the end succeeded");
        // Whether the upgrade came in time or not, the count ends at zero.
        let _ = upgraded;
        h.future.with(|f| assert_eq!(unsafe { *f }, DROPPED));
    });
}
