//! loom models of a task's state word and outcome: exactly one of run and
//! cancel wins, waiters never sleep through a publication, callbacks run
//! exactly once, late callbacks and takers share the value, timed-out
//! waiters deregister, a dropped handle drops the value once, and the
//! unlocked finish of a `get` that runs its own task strands no watcher,
//! lock-free takers and a late callback share the value once, two first
//! watchers at once make one slot, and a handle dropped without the lock
//! while its task panics leaves the panic reported or kept, once.

use std::sync::Arc;

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

use super::{model, park_until_published};
use crate::core::completion::{Completion, Waiter};
use crate::core::state::{Abort, Claim, Phase};
use crate::error::TaskError;

#[test]
fn loom_run_races_cancel_exactly_one_wins() {
    model(|| {
        let c = Arc::new(Completion::<u32>::new());
        let runner = {
            let c = c.clone();
            thread::spawn(move || {
                if c.claim() == Claim::Won {
                    c.finish(Ok(7));
                    true
                } else {
                    false
                }
            })
        };
        let cancelled = c.abort(TaskError::Cancelled, || {}) == Abort::Won;
        let ran = runner.join().unwrap();
        assert!(ran != cancelled, "exactly one of run and cancel wins");
        park_until_published(&c);
        let outcome = c.try_take().expect("published and not lent");
        if ran {
            assert_eq!(c.phase(), Phase::Ok);
            assert_eq!(outcome, Ok(7));
        } else {
            assert_eq!(c.phase(), Phase::Cancelled);
            assert_eq!(outcome, Err(TaskError::Cancelled));
        }
        assert_eq!(c.try_take(), Some(Err(TaskError::ResultTaken)));
    });
}

#[test]
fn loom_waiter_never_sleeps_through_publication() {
    model(|| {
        let c = Arc::new(Completion::<u32>::new());
        assert_eq!(c.claim(), Claim::Won);
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
        assert_eq!(c.claim(), Claim::Won);
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
        assert_eq!(c.claim(), Claim::Won);
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

// ---- the handle: cancel vs complete vs callbacks vs timed waits vs drop --

#[test]
fn loom_cancel_complete_and_callback_agree_on_one_outcome() {
    model(|| {
        let c = Arc::new(Completion::<u32>::new());
        let seen = Arc::new(AtomicUsize::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        let runner = {
            let c = c.clone();
            thread::spawn(move || {
                if c.claim() == Claim::Won {
                    c.finish(Ok(1));
                }
            })
        };
        {
            let (seen, calls) = (seen.clone(), calls.clone());
            c.add_callback(Box::new(move |r| {
                let v = match r {
                    Ok(1) => 1,
                    Err(TaskError::Cancelled) => 2,
                    _ => 100,
                };
                seen.store(v, Ordering::SeqCst);
                calls.fetch_add(1, Ordering::SeqCst);
            }));
        }
        let cancelled = c.abort(TaskError::Cancelled, || {}) == Abort::Won;
        runner.join().unwrap();
        park_until_published(&c);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the callback ran once");
        let outcome = c.try_take().expect("published");
        let expect = if cancelled { 2 } else { 1 };
        assert_eq!(seen.load(Ordering::SeqCst), expect);
        assert_eq!(outcome.is_ok(), !cancelled);
    });
}

#[test]
fn loom_timed_out_waiter_deregisters_and_a_later_wait_is_still_woken() {
    model(|| {
        let c = Arc::new(Completion::<u32>::new());
        assert_eq!(c.claim(), Claim::Won);
        let finisher = {
            let c = c.clone();
            thread::spawn(move || c.finish(Ok(9)))
        };
        // A get_timeout that gives up: register, then deregister.
        let me = thread::current();
        if c.register(Waiter::Thread(me.clone()), true) {
            c.deregister_thread(&me);
        }
        // The next get must still be woken (or find the value).
        let got = loop {
            if let Some(r) = c.try_take() {
                break r;
            }
            if c.register(Waiter::Thread(thread::current()), true) {
                thread::park();
            }
        };
        assert_eq!(got, Ok(9));
        finisher.join().unwrap();
    });
}

/// Counts drops of a task's value.
struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn loom_handle_dropped_while_the_task_completes_drops_the_value_once() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let c = loom::sync::Arc::new(Completion::<Counted>::new());
        assert_eq!(c.claim(), Claim::Won);
        let runner = {
            let (c, drops) = (c.clone(), drops.clone());
            // The worker's reference: finish, then drop it.
            thread::spawn(move || c.finish(Ok(Counted(drops))))
        };
        // The handle's reference, dropped without taking the value.
        drop(c);
        runner.join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped exactly once");
    });
}

// ---- a `get` that runs its own task: the unlocked finish vs watchers ----

/// A thread that waits, as a handle does, until `c.met(need_value)`:
/// registered and parked in between, so a publication that could miss it
/// leaves it parked, which loom reports as a deadlock.
fn spawn_waiter(c: &Arc<Completion<u32>>, need_value: bool) -> thread::JoinHandle<()> {
    let c = c.clone();
    thread::spawn(move || loop {
        if c.met(need_value) {
            break;
        }
        if c.register(Waiter::Thread(thread::current()), need_value) {
            thread::park();
        }
    })
}

#[test]
fn loom_unlocked_finish_never_strands_a_waiter_that_comes_at_once() {
    model(|| {
        let c = Arc::new(Completion::<u32>::new());
        assert_eq!(c.claim(), Claim::Won);
        let waiter = spawn_waiter(&c, false);
        // The owner takes its value whichever way it went: unlocked (the
        // waiter had not watched yet) or locked (it wakes the waiter).
        assert_eq!(c.finish_and_take(Ok(9)), Some(Ok(9)));
        // If the waiter could sleep through the finish, loom reports a
        // deadlock here.
        waiter.join().unwrap();
        assert!(c.is_published());
        assert_eq!(c.try_take(), Some(Err(TaskError::ResultTaken)));
    });
}

/// Adds, on a thread of its own, a callback that adds to `seen` what it
/// got: 1 for `Ok(value)`, 2 for `ResultTaken`, 100 for anything else.
fn add_scoring_callback(
    c: &Arc<Completion<u32>>,
    value: u32,
    seen: &Arc<AtomicUsize>,
) -> thread::JoinHandle<()> {
    let (c, seen) = (c.clone(), seen.clone());
    thread::spawn(move || {
        c.add_callback(Box::new(move |r| {
            let v = match r {
                Ok(v) if *v == value => 1,
                Err(TaskError::ResultTaken) => 2,
                _ => 100,
            };
            seen.fetch_add(v, Ordering::SeqCst);
        }));
    })
}

#[test]
fn loom_unlocked_finish_and_a_callback_added_at_once_share_the_value_once() {
    model(|| {
        let c = Arc::new(Completion::<u32>::new());
        let seen = Arc::new(AtomicUsize::new(0));
        assert_eq!(c.claim(), Claim::Won);
        let adder = add_scoring_callback(&c, 9, &seen);
        let taken = c.finish_and_take(Ok(9));
        adder.join().unwrap();
        park_until_published(&c);
        match taken {
            // Unlocked, or locked before the callback came: the callback
            // ran late and found the value taken.
            Some(value) => {
                assert_eq!(value, Ok(9));
                assert_eq!(seen.load(Ordering::SeqCst), 2);
            }
            // The callback was queued first: it saw the value, which then
            // went to the slot for the taker.
            None => {
                assert_eq!(seen.load(Ordering::SeqCst), 1);
                assert_eq!(c.try_take(), Some(Ok(9)));
            }
        }
    });
}

#[test]
fn loom_two_lock_free_takers_and_a_late_callback_share_the_value_once() {
    model(|| {
        let c = Arc::new(Completion::<u32>::new());
        assert_eq!(c.claim(), Claim::Won);
        c.finish(Ok(6));
        let seen = Arc::new(AtomicUsize::new(0));
        let lender = add_scoring_callback(&c, 6, &seen);
        let other = {
            let c = c.clone();
            thread::spawn(move || c.try_take())
        };
        // Unlike `get`, `try_take` does not wait out a lend: it may find
        // nothing now, and then the value is still there afterwards.
        let mine = c.try_take();
        let theirs = other.join().unwrap();
        lender.join().unwrap();
        let rest = c.try_take();
        let values = [&mine, &theirs, &rest]
            .iter()
            .filter(|r| matches!(r, Some(Ok(6))))
            .count();
        // The value is handed out exactly once (the cell is reached only
        // by the winner of its compare-and-swap: loom's cell checks it).
        assert_eq!(values, 1, "{mine:?} {theirs:?} {rest:?}");
        let v = seen.load(Ordering::SeqCst);
        assert!(v == 1 || v == 2, "callback saw {v}");
    });
}

/// The slot is made by whoever watches first: two first watchers at once
/// (a callback and a waiter) while the owner finishes share one slot,
/// the callback runs once with the value, and the waiter is not stranded.
#[test]
fn loom_two_first_watchers_make_one_slot() {
    model(|| {
        let c = Arc::new(Completion::<u32>::new());
        let calls = Arc::new(AtomicUsize::new(0));
        assert_eq!(c.claim(), Claim::Won);
        let adder = {
            let (c, calls) = (c.clone(), calls.clone());
            thread::spawn(move || {
                c.add_callback(Box::new(move |r| {
                    assert_eq!(r, &Ok(5));
                    calls.fetch_add(1, Ordering::SeqCst);
                }));
            })
        };
        let waiter = {
            let c = c.clone();
            thread::spawn(move || {
                if c.register(Waiter::Thread(thread::current()), false) {
                    while !c.is_published() {
                        thread::park();
                    }
                }
            })
        };
        c.finish(Ok(5));
        adder.join().unwrap();
        waiter.join().unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(c.try_take(), Some(Ok(5)));
    });
}

/// A handle dropped (without the lock: nobody watches) while the task
/// finishes with a panic: whichever comes first, the payload is either
/// reported or left in the cell, never both, and dropped exactly once.
/// (That a drop first means a report is checked by the unit test
/// `a_dropped_handle_makes_no_slot_and_its_lost_panic_is_not_kept`.)
#[test]
fn loom_handle_dropped_while_the_task_panics_drops_the_panic_once() {
    handle_dropped_while_the_task_panics(false);
}

/// The same with a watcher registered first (a callback added through the
/// handle):
/// the flag is still set without the lock, and the owner finishing under
/// the lock reads it once, so the panic is reported (flag first) or left
/// in the cell (flag after that read, as for a handle dropped after the
/// publication), never both.
#[test]
fn loom_handle_of_a_watched_task_dropped_while_it_panics_drops_the_panic_once() {
    handle_dropped_while_the_task_panics(true);
}

fn handle_dropped_while_the_task_panics(watched: bool) {
    model(move || {
        let drops = Arc::new(AtomicUsize::new(0));
        let c = Arc::new(Completion::<u8>::new());
        assert_eq!(c.claim(), Claim::Won);
        if watched {
            // A callback watches the task (it sees the panic by reference
            // and keeps nothing).
            c.add_callback(Box::new(|_| {}));
        }
        let detached = Arc::new(AtomicBool::new(false));
        let runner = {
            let (c, drops, detached) = (c.clone(), drops.clone(), detached.clone());
            thread::spawn(move || {
                // Whether the handle was gone before the task ended.
                let after_detach = detached.load(Ordering::SeqCst);
                c.finish(Err(TaskError::Panicked(Box::new(Counted(drops)))));
                after_detach
            })
        };
        c.detach();
        detached.store(true, Ordering::SeqCst);
        let after_detach = runner.join().unwrap();
        let kept = drops.load(Ordering::SeqCst) == 0;
        assert_eq!(
            kept,
            matches!(c.try_take(), Some(Err(TaskError::Panicked(_)))),
            "reported, or kept for the completion's drop"
        );
        // A panic of a task whose handle was already gone is reported
        // (nobody can take it), not kept.
        assert!(!(after_detach && kept), "a detached task's panic was kept");
        drop(c);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped exactly once");
    });
}

/// An abort (a cancel, a terminate) of a task nobody watched publishes
/// with one swap, no lock: a waiter registering at that moment is still
/// woken, and sees the abort's error.
#[test]
fn loom_unlocked_abort_never_strands_a_waiter_that_comes_at_once() {
    model(|| {
        let c = Arc::new(Completion::<u32>::new());
        let waiter = spawn_waiter(&c, true);
        assert_eq!(c.abort(TaskError::Cancelled, || {}), Abort::Won);
        // If the waiter could sleep through the publication, loom reports
        // a deadlock here.
        waiter.join().unwrap();
        assert_eq!(c.try_take(), Some(Err(TaskError::Cancelled)));
    });
}
