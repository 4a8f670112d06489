//! loom models of the crate's concurrency protocols. Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release --lib loom_`.
//!
//! Each model explores every interleaving (up to loom's preemption bound)
//! of a small scenario and checks that nothing is lost: a result is
//! published exactly once, every callback runs exactly once, no waiter
//! sleeps through a publication, no worker sleeps through a wake-up.

use std::sync::Arc;

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

use crate::error::TaskError;
use crate::handle::{Completion, Waiter, CANCELLED, OK, PENDING, RUNNING};
use crate::sleep::Sleep;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

/// Blocks the current (loom) thread until the completion is published.
fn park_until_published<T>(c: &Completion<T>) {
    loop {
        if c.is_published() {
            return;
        }
        if !c.register(Waiter::Thread(thread::current()), false) {
            return;
        }
        thread::park();
    }
}

#[test]
fn loom_run_races_cancel_exactly_one_wins() {
    model(|| {
        let c = Arc::new(Completion::<u32>::new());
        let runner = {
            let c = c.clone();
            thread::spawn(move || {
                if c.transition(PENDING, RUNNING) {
                    c.finish(Ok(7));
                    true
                } else {
                    false
                }
            })
        };
        let cancelled = if c.transition(PENDING, CANCELLED) {
            c.publish(Err(TaskError::Cancelled));
            true
        } else {
            false
        };
        let ran = runner.join().unwrap();
        assert!(ran != cancelled, "exactly one of run and cancel wins");
        park_until_published(&c);
        let outcome = c.try_take().expect("published and not lent");
        if ran {
            assert_eq!(c.phase(), OK);
            assert_eq!(outcome, Ok(7));
        } else {
            assert_eq!(c.phase(), CANCELLED);
            assert_eq!(outcome, Err(TaskError::Cancelled));
        }
        assert_eq!(c.try_take(), Some(Err(TaskError::ResultTaken)));
    });
}

#[test]
fn loom_waiter_never_sleeps_through_publication() {
    model(|| {
        let c = Arc::new(Completion::<u32>::new());
        assert!(c.transition(PENDING, RUNNING));
        let worker = {
            let c = c.clone();
            thread::spawn(move || c.finish(Ok(1)))
        };
        // If the wake-up could be lost, loom reports a deadlock here.
        park_until_published(&c);
        assert_eq!(c.try_take(), Some(Ok(1)));
        worker.join().unwrap();
    });
}

#[test]
fn loom_callbacks_run_exactly_once_whatever_the_interleaving() {
    model(|| {
        let c = Arc::new(Completion::<u32>::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let seen_ok = Arc::new(AtomicBool::new(true));
        assert!(c.transition(PENDING, RUNNING));
        let finisher = {
            let c = c.clone();
            thread::spawn(move || c.finish(Ok(3)))
        };
        let adder = {
            let (c, calls, seen_ok) = (c.clone(), calls.clone(), seen_ok.clone());
            thread::spawn(move || {
                c.add_callback(Box::new(move |r| {
                    if r != &Ok(3) {
                        seen_ok.store(false, Ordering::SeqCst);
                    }
                    calls.fetch_add(1, Ordering::SeqCst);
                }));
            })
        };
        finisher.join().unwrap();
        adder.join().unwrap();
        park_until_published(&c);
        // A late callback borrows the result; once everyone has joined it
        // is back, so the value is still there for the taker.
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(seen_ok.load(Ordering::SeqCst));
        assert_eq!(c.try_take(), Some(Ok(3)));
    });
}

#[test]
fn loom_late_callback_and_taker_both_see_the_value_once() {
    model(|| {
        let c = Arc::new(Completion::<u32>::new());
        assert!(c.transition(PENDING, RUNNING));
        c.finish(Ok(5));
        let seen = Arc::new(AtomicUsize::new(0));
        let adder = {
            let (c, seen) = (c.clone(), seen.clone());
            thread::spawn(move || {
                c.add_callback(Box::new(move |r| {
                    // Either the value (taker not yet there) or ResultTaken.
                    let v = match r {
                        Ok(5) => 1,
                        Err(TaskError::ResultTaken) => 2,
                        _ => 100,
                    };
                    seen.store(v, Ordering::SeqCst);
                }));
            })
        };
        // The taker waits out a lend instead of seeing a hole.
        let taken = loop {
            if let Some(r) = c.try_take() {
                break r;
            }
            if c.register(Waiter::Thread(thread::current()), true) {
                thread::park();
            }
        };
        adder.join().unwrap();
        assert_eq!(taken, Ok(5));
        let v = seen.load(Ordering::SeqCst);
        assert!(v == 1 || v == 2, "callback saw {v}");
    });
}

#[test]
fn loom_sleeping_worker_is_never_left_with_queued_work() {
    model(|| {
        let sleep = Arc::new(Sleep::new(1));
        let queued = Arc::new(AtomicBool::new(false));
        let worker = {
            let (sleep, queued) = (sleep.clone(), queued.clone());
            thread::spawn(move || {
                let me = thread::current();
                // The worker's loop: look for work, sleep if none.
                while !queued.load(Ordering::SeqCst) {
                    sleep.sleep(0, &me, || queued.load(Ordering::SeqCst), None);
                }
            })
        };
        // Producer: make work visible, then wake.
        queued.store(true, Ordering::SeqCst);
        sleep.wake_one();
        worker.join().unwrap();
    });
}

// ---- the wake/poll state machine of async tasks (task_async::Schedule) ----

use crate::task_async::{Schedule, DONE, IDLE};

/// One async task as its wakers and workers see it: the schedule, and a
/// queue that holds the entries pushed by whoever moved it into SCHEDULED.
struct AsyncHarness {
    sched: Schedule,
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
            sched: Schedule::new_scheduled(),
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
