//! The AsyncResult handle: values, panics, timeouts, states, cancel,
//! done-callbacks, and awaiting it as a future.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futurepool::{AsyncResult, TaskError, ThreadPool};

/// A pool of one worker, blocked on `gate` until the test opens it, so
/// anything submitted next stays queued.
fn blocked_pool(gate: &Gate) -> (ThreadPool, AsyncResult<()>) {
    let pool = ThreadPool::new(1).unwrap();
    let blocker = start_blocked(&pool, gate, ());
    (pool, blocker)
}

#[test]
fn submit_and_apply_async_return_the_value() {
    let pool = ThreadPool::new(2).unwrap();
    assert_eq!(pool.submit(|| 40 + 2).get(), Ok(42));
    assert_eq!(
        pool.apply_async(|| String::from("foo") + "bar").get(),
        Ok("foobar".to_string())
    );
    assert_eq!(pool.apply(|| vec![1, 2, 3]), Ok(vec![1, 2, 3]));
}

#[test]
fn handles_return_at_once_before_the_task_runs() {
    let gate = Gate::new();
    let (pool, blocker) = blocked_pool(&gate);
    let h = pool.submit(|| 1);
    assert!(!h.ready());
    assert!(!h.running());
    assert_eq!(h.successful(), None);
    gate.open();
    assert_eq!(h.get_timeout(LONG), Ok(1));
    blocker.get_timeout(LONG).unwrap();
}

#[test]
fn a_panic_is_caught_with_its_message_and_payload() {
    quiet_panics();
    let pool = ThreadPool::new(1).unwrap();
    let err = pool
        .submit(|| -> u32 { panic!("intentional: static str") })
        .get()
        .unwrap_err();
    assert!(matches!(err, TaskError::Panicked(_)));
    assert!(err.to_string().contains("intentional: static str"), "{err}");
    assert_eq!(err.panic_message(), Some("intentional: static str"));

    let err = pool
        .submit(|| -> u32 {
            // A runtime argument, so the payload is a String (a constant one
            // would be folded into a &'static str).
            let n = std::hint::black_box(7);
            panic!("intentional: formatted {n}")
        })
        .get()
        .unwrap_err();
    assert!(err.to_string().contains("intentional: formatted 7"));
    let payload = err.into_panic().expect("a panic payload");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("intentional: formatted 7")
    );
    // resume_unwind with the payload re-raises the original panic.
    let resumed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        std::panic::resume_unwind(payload)
    }));
    assert_eq!(
        resumed
            .unwrap_err()
            .downcast_ref::<String>()
            .map(String::as_str),
        Some("intentional: formatted 7")
    );

    // A non-string payload still gives a readable error.
    let err = pool
        .submit(|| std::panic::panic_any(17_u8))
        .get()
        .unwrap_err();
    assert!(err.to_string().contains("panicked"));
    assert_eq!(*err.into_panic().unwrap().downcast::<u8>().unwrap(), 17);
}

#[test]
fn a_panicking_task_does_not_kill_its_worker() {
    quiet_panics();
    let pool = ThreadPool::new(1).unwrap();
    for i in 0..100 {
        let h = pool.submit(move || {
            if i % 2 == 0 {
                panic!("intentional");
            }
            i
        });
        let r = h.get_timeout(LONG);
        if i % 2 == 0 {
            assert!(matches!(r, Err(TaskError::Panicked(_))));
        } else {
            assert_eq!(r, Ok(i));
        }
    }
    // Still the same single worker.
    let name = pool
        .apply(|| std::thread::current().name().unwrap().to_string())
        .unwrap();
    assert_eq!(name, "futurepool-0");
}

#[test]
fn get_timeout_times_out_and_the_handle_stays_usable() {
    let gate = Gate::new();
    let pool = ThreadPool::new(1).unwrap();
    let g = gate.clone();
    let h = pool.submit(move || {
        g.wait();
        "late"
    });
    assert_eq!(
        h.get_timeout(Duration::from_millis(20)),
        Err(TaskError::Timeout)
    );
    assert_eq!(h.get_timeout(Duration::ZERO), Err(TaskError::Timeout));
    assert!(!h.wait_timeout(Duration::from_millis(1)));
    assert!(!h.ready());
    gate.open();
    assert_eq!(h.get_timeout(LONG), Ok("late"));
    // The value is handed out once.
    assert_eq!(h.get_timeout(LONG), Err(TaskError::ResultTaken));
    assert!(h.ready());
    assert_eq!(h.successful(), Some(true));
}

#[test]
fn a_huge_timeout_does_not_overflow() {
    let pool = ThreadPool::new(1).unwrap();
    let h = pool.submit(|| 3);
    assert_eq!(h.get_timeout(Duration::MAX), Ok(3));
    let h = pool.submit(|| 4);
    assert!(h.wait_timeout(Duration::MAX));
    assert_eq!(h.get(), Ok(4));
}

#[test]
fn wait_and_ready_and_successful_and_running() {
    quiet_panics();
    let pool = ThreadPool::new(1).unwrap();
    let gate = Gate::new();
    let h = start_blocked(&pool, &gate, ());
    assert!(h.running());
    assert!(!h.ready());
    assert_eq!(h.successful(), None);
    gate.open();
    h.wait();
    assert!(h.ready());
    assert!(!h.running());
    assert_eq!(h.successful(), Some(true));
    assert!(!h.cancelled());

    let bad = pool.submit(|| panic!("intentional"));
    assert!(bad.wait_timeout(LONG));
    assert!(bad.ready());
    assert_eq!(bad.successful(), Some(false));
    assert!(!bad.cancelled());
}

#[test]
fn cancel_a_queued_task_it_never_runs_and_resolves_at_once() {
    let gate = Gate::new();
    let (pool, blocker) = blocked_pool(&gate);
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let h = pool.submit(move || {
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert!(h.cancel());
    assert!(h.cancel(), "cancelling twice still reports cancelled");
    assert!(h.cancelled());
    assert!(h.ready(), "a cancelled task is done at once");
    assert!(h.wait_timeout(Duration::ZERO));
    assert_eq!(h.successful(), Some(false));
    gate.open();
    blocker.get_timeout(LONG).unwrap();
    // Later work runs; the cancelled one never does.
    pool.apply(|| ()).unwrap();
    drop(pool);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(h.get(), Err(TaskError::Cancelled));
}

#[test]
fn cancel_a_running_or_finished_task_fails() {
    let pool = ThreadPool::new(1).unwrap();
    let gate = Gate::new();
    let h = start_blocked(&pool, &gate, 5);
    assert!(!h.cancel(), "a running task cannot be cancelled");
    assert!(!h.cancelled());
    gate.open();
    assert!(h.wait_timeout(LONG));
    assert!(!h.cancel(), "a finished task cannot be cancelled");
    assert_eq!(h.get(), Ok(5));
}

#[test]
fn cancel_drops_the_closure_at_once() {
    struct Flag(Arc<AtomicUsize>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let gate = Gate::new();
    let (pool, blocker) = blocked_pool(&gate);
    let dropped = Arc::new(AtomicUsize::new(0));
    let flag = Flag(dropped.clone());
    let h = pool.submit(move || {
        let _keep = &flag;
    });
    assert_eq!(dropped.load(Ordering::SeqCst), 0);
    assert!(h.cancel());
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "closure released on cancel"
    );
    gate.open();
    blocker.get_timeout(LONG).unwrap();
}

#[test]
fn done_callback_runs_once_with_the_outcome() {
    let pool = ThreadPool::new(2).unwrap();
    let gate = Gate::new();
    let g = gate.clone();
    let h = pool.submit(move || {
        g.wait();
        21 * 2
    });
    let calls = Arc::new(Mutex::new(Vec::new()));
    let c = calls.clone();
    let done = Signals::new();
    let tx = done.sender();
    h.add_done_callback(move |r| {
        c.lock().unwrap().push(r.as_ref().ok().copied());
        tx.send(()).unwrap();
    });
    assert!(calls.lock().unwrap().is_empty());
    gate.open();
    done.recv();
    assert_eq!(*calls.lock().unwrap(), vec![Some(42)]);
    // When the callback has run the handle is done, and the value is still
    // there for get().
    assert!(h.ready());
    assert_eq!(h.get_timeout(LONG), Ok(42));
    assert_eq!(calls.lock().unwrap().len(), 1);
}

#[test]
fn done_callback_on_a_finished_task_runs_at_once_on_the_caller() {
    let pool = ThreadPool::new(1).unwrap();
    let h = pool.submit(|| 7);
    h.wait();
    let caller = std::thread::current().id();
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    h.add_done_callback(move |r| {
        *s.lock().unwrap() = Some((std::thread::current().id(), r.as_ref().ok().copied()));
    });
    assert_eq!(*seen.lock().unwrap(), Some((caller, Some(7))));
    assert_eq!(h.get(), Ok(7));
}

#[test]
fn done_callback_sees_cancellation_and_panics() {
    quiet_panics();
    let gate = Gate::new();
    let (pool, blocker) = blocked_pool(&gate);
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let queued = pool.submit(|| 1);
    let o = outcomes.clone();
    queued.add_done_callback(move |r| o.lock().unwrap().push(format!("{r:?}")));
    assert!(queued.cancel());
    // The callback ran inside cancel(), on this thread.
    assert_eq!(
        *outcomes.lock().unwrap(),
        vec!["Err(Cancelled)".to_string()]
    );
    gate.open();
    blocker.get_timeout(LONG).unwrap();

    let bad = pool.submit(|| -> i32 { panic!("intentional: cb") });
    let done = Signals::new();
    let tx = done.sender();
    bad.add_done_callback(move |r| tx.send(r.as_ref().unwrap_err().to_string()).unwrap());
    assert!(done.recv().contains("intentional: cb"));
}

#[test]
fn a_panicking_callback_is_contained_and_the_others_still_run() {
    quiet_panics();
    let pool = ThreadPool::new(1).unwrap();
    let gate = Gate::new();
    let g = gate.clone();
    let h = pool.submit(move || {
        g.wait();
        1
    });
    let ran = Arc::new(AtomicUsize::new(0));
    h.add_done_callback(|_| panic!("intentional: callback"));
    let r = ran.clone();
    h.add_done_callback(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    gate.open();
    assert_eq!(h.get_timeout(LONG), Ok(1));
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    // The worker survived the panicking callback.
    assert_eq!(pool.apply(|| 2), Ok(2));
    // A panicking callback on an already-done handle does not reach the caller.
    let done = pool.submit(|| 3);
    done.wait();
    done.add_done_callback(|_| panic!("intentional: late callback"));
    assert_eq!(done.get(), Ok(3));
}

#[test]
fn many_callbacks_each_run_exactly_once() {
    let pool = ThreadPool::new(2).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for i in 0..200 {
        let h = pool.submit(move || i);
        for _ in 0..3 {
            let c = count.clone();
            h.add_done_callback(move |_| {
                c.fetch_add(1, Ordering::SeqCst);
            });
        }
        handles.push(h);
    }
    for h in &handles {
        assert!(h.wait_timeout(LONG));
    }
    assert_eq!(count.load(Ordering::SeqCst), 600);
}

/// As with Python's futures, a done-callback may wait on its own handle:
/// the task is done when the callback runs, so `wait` returns at once
/// (and so does `wait_timeout`, with true), on the completing worker and
/// for a callback added after completion alike. The value is being handed
/// to the callbacks, so `get_timeout` there says `Timeout` at once instead
/// of waiting for itself.
#[test]
fn a_done_callback_can_wait_on_its_own_handle() {
    // Daemon: if `wait` inside the callback hung, the failing test would
    // still end (the bounded receive below fails, and dropping the pool
    // does not join the stuck worker).
    let pool = ThreadPool::builder()
        .num_threads(1)
        .daemon(true)
        .build()
        .unwrap();
    let gate = Gate::new();
    let g = gate.clone();
    let handle = Arc::new(pool.submit(move || {
        g.wait();
        5
    }));
    let seen = Signals::new();
    for _ in 0..2 {
        let (h, tx) = (handle.clone(), seen.sender());
        handle.add_done_callback(move |r| {
            h.wait();
            assert_eq!(h.get_timeout(LONG), Err(TaskError::Timeout));
            tx.send((*r.as_ref().unwrap(), h.wait_timeout(LONG), h.ready()))
                .unwrap();
        });
    }
    gate.open();
    assert_eq!(seen.recv(), (5, true, true));
    assert_eq!(seen.recv(), (5, true, true));
    // Added after completion: runs at once, on this thread.
    let h = handle.clone();
    handle.add_done_callback(move |_| assert!(h.wait_timeout(LONG)));
    assert_eq!(handle.get_timeout(LONG), Ok(5));
}

#[test]
fn dropping_a_handle_does_not_cancel_its_task() {
    let pool = ThreadPool::new(1).unwrap();
    let ran = Signals::new();
    let tx = ran.sender();
    drop(pool.submit(move || tx.send(()).unwrap()));
    ran.recv();
}

#[test]
fn a_dropped_handles_value_is_dropped_when_the_task_finishes() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let pool = ThreadPool::new(1).unwrap();
    let d = drops.clone();
    drop(pool.submit(move || Counted(d)));
    pool.join();
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "value leaked or dropped twice"
    );
}

#[test]
fn the_handle_is_a_future() {
    let pool = ThreadPool::new(2).unwrap();
    let h = pool.submit(|| 6 * 7);
    assert_eq!(futures::executor::block_on(h), Ok(42));

    // A pending handle wakes its task when the value is published.
    let gate = Gate::new();
    let g = gate.clone();
    let h = pool.submit(move || {
        g.wait();
        "woken"
    });
    let opener = gate.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        opener.open();
    });
    let out = within("awaiting a handle", move || futures::executor::block_on(h));
    assert_eq!(out, Ok("woken"));
}

#[test]
fn the_handle_works_under_tokio() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let p = pool.clone();
    let sum = rt.block_on(async move {
        let a = p.submit(|| 1);
        let b = p.submit(|| 2);
        a.await.unwrap() + b.await.unwrap()
    });
    assert_eq!(sum, 3);
}

#[test]
fn debug_shows_the_state() {
    let pool = ThreadPool::new(1).unwrap();
    let h = pool.submit(|| 1);
    h.wait();
    assert_eq!(format!("{h:?}"), "AsyncResult { state: \"finished\" }");
}

/// Threads racing to take one handle's value (and late callbacks
/// borrowing it meanwhile): the value is handed out exactly once, every
/// other taker gets `ResultTaken`, and every callback runs once, seeing
/// the value or `ResultTaken`. Many rounds, each racing the task's end.
#[test]
fn racing_takers_and_late_callbacks_share_one_value() {
    let pool = ThreadPool::new(2).unwrap();
    let rounds = if cfg!(miri) { 3 } else { 200 };
    for round in 0..rounds {
        let gate = Arc::new(Gate::new());
        let g = gate.clone();
        let handle = Arc::new(pool.submit(move || {
            g.wait();
            round
        }));
        let calls = Arc::new(AtomicUsize::new(0));
        let start = Arc::new(std::sync::Barrier::new(5));
        let takers: Vec<_> = (0..4)
            .map(|i| {
                let (handle, calls, start) = (handle.clone(), calls.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    if i % 2 == 0 {
                        let calls = calls.clone();
                        handle.add_done_callback(move |r| {
                            assert!(matches!(r, Ok(_) | Err(TaskError::ResultTaken)), "{r:?}");
                            calls.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                    handle.get_timeout(LONG)
                })
            })
            .collect();
        start.wait();
        gate.open();
        let results: Vec<_> = takers.into_iter().map(|t| t.join().unwrap()).collect();
        let values = results.iter().filter(|r| **r == Ok(round)).count();
        assert_eq!(values, 1, "round {round}: {results:?}");
        assert!(results
            .iter()
            .all(|r| *r == Ok(round) || *r == Err(TaskError::ResultTaken)));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
