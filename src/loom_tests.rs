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
