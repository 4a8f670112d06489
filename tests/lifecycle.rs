//! close, terminate, join, shutdown and drop: what runs, what is
//! cancelled, what is refused, and that nothing hangs or is left behind.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use futurepool::{AsyncResult, Builder, TaskError, ThreadPool};

fn counter_tasks(pool: &ThreadPool, n: usize, count: &Arc<AtomicUsize>) -> Vec<AsyncResult<()>> {
    (0..n)
        .map(|_| {
            let c = count.clone();
            pool.submit(move || {
                c.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect()
}

/// One worker blocked on a gate, and `n` counting tasks queued behind it.
fn blocked_with_queue(
    n: usize,
) -> (
    ThreadPool,
    Gate,
    AsyncResult<()>,
    Vec<AsyncResult<()>>,
    Arc<AtomicUsize>,
) {
    let pool = ThreadPool::new(1).unwrap();
    let gate = Gate::new();
    let blocker = start_blocked(&pool, &gate, ());
    let count = Arc::new(AtomicUsize::new(0));
    let queued = counter_tasks(&pool, n, &count);
    (pool, gate, blocker, queued, count)
}

#[test]
fn submit_after_close_is_refused_and_never_runs() {
    let pool = ThreadPool::new(2).unwrap();
    pool.close();
    assert!(pool.is_closed());
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let h = pool.submit(move || {
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert!(h.ready());
    assert_eq!(h.successful(), Some(false));
    assert!(!h.cancelled());
    assert_eq!(h.get(), Err(TaskError::PoolClosed));
    assert_eq!(pool.apply(|| 1), Err(TaskError::PoolClosed));
    assert_eq!(pool.apply_async(|| 1).get(), Err(TaskError::PoolClosed));
    pool.join();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert!(TaskError::PoolClosed.to_string().contains("closed"));
}

#[test]
fn close_lets_queued_work_run() {
    let (pool, gate, blocker, queued, count) = blocked_with_queue(50);
    pool.close();
    pool.close(); // idempotent
    assert_eq!(pool.submit(|| ()).get(), Err(TaskError::PoolClosed));
    gate.open();
    for h in queued {
        assert_eq!(h.get_timeout(LONG), Ok(()));
    }
    blocker.get_timeout(LONG).unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 50);
    within("join after close", move || pool.join());
}

#[test]
fn terminate_cancels_queued_work_at_once_and_lets_running_work_finish() {
    let (pool, gate, blocker, queued, count) = blocked_with_queue(20);
    pool.terminate();
    // Cancelled at once, while the running task is still blocked.
    for h in &queued {
        assert!(h.ready());
        assert!(h.cancelled());
    }
    assert!(!blocker.ready());
    assert_eq!(pool.submit(|| ()).get(), Err(TaskError::PoolClosed));
    pool.terminate(); // idempotent
    gate.open();
    assert_eq!(
        blocker.get_timeout(LONG),
        Ok(()),
        "the running task finished"
    );
    for h in queued {
        assert_eq!(h.get(), Err(TaskError::Cancelled));
    }
    within("join after terminate", move || pool.join());
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[test]
fn terminate_does_not_wait_for_running_tasks() {
    let pool = ThreadPool::new(1).unwrap();
    let gate = Gate::new();
    let h = start_blocked(&pool, &gate, ());
    // terminate() returns while the task is still blocked on the gate.
    pool.terminate();
    assert!(!h.ready());
    gate.open();
    h.get_timeout(LONG).unwrap();
}

#[test]
fn join_closes_and_waits_for_every_queued_task() {
    let pool = ThreadPool::new(2).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let _handles = counter_tasks(&pool, 500, &count);
    pool.join();
    assert_eq!(count.load(Ordering::SeqCst), 500);
    assert!(pool.is_closed());
    pool.join(); // idempotent
    assert_eq!(pool.submit(|| ()).get(), Err(TaskError::PoolClosed));
}

#[test]
fn concurrent_joins_all_wait_for_the_workers() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let gate = Gate::new();
    let g = gate.clone();
    let h = pool.submit(move || {
        g.wait();
    });
    let joiners: Vec<_> = (0..3)
        .map(|_| {
            let p = pool.clone();
            let h_ready = Arc::new(AtomicUsize::new(0));
            let flag = h_ready.clone();
            let t = std::thread::spawn(move || {
                p.join();
                flag.store(1, Ordering::SeqCst);
            });
            (t, h_ready)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    for (_, flag) in &joiners {
        assert_eq!(
            flag.load(Ordering::SeqCst),
            0,
            "join returned before the task ended"
        );
    }
    gate.open();
    for (t, _) in joiners {
        t.join().unwrap();
    }
    assert!(h.ready());
}

#[test]
fn shutdown_wait_runs_queued_work_and_joins() {
    let (pool, gate, blocker, queued, count) = blocked_with_queue(10);
    let opener = gate.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        opener.open();
    });
    within("shutdown(wait)", move || pool.shutdown(true, false));
    assert_eq!(count.load(Ordering::SeqCst), 10);
    blocker.get_timeout(LONG).unwrap();
    for h in queued {
        assert_eq!(h.get(), Ok(()));
    }
}

#[test]
fn shutdown_cancel_futures_cancels_pending_tasks() {
    let (pool, gate, blocker, queued, count) = blocked_with_queue(10);
    pool.shutdown(false, true);
    for h in &queued {
        assert!(h.cancelled());
    }
    assert_eq!(pool.submit(|| ()).get(), Err(TaskError::PoolClosed));
    gate.open();
    blocker.get_timeout(LONG).unwrap();
    within("shutdown(wait, cancel)", move || pool.shutdown(true, true));
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[test]
fn shutdown_without_wait_returns_at_once_and_work_still_runs() {
    let (pool, gate, blocker, queued, count) = blocked_with_queue(5);
    pool.shutdown(false, false);
    assert!(!blocker.ready(), "shutdown(false, _) must not wait");
    gate.open();
    for h in queued {
        assert_eq!(h.get_timeout(LONG), Ok(()));
    }
    assert_eq!(count.load(Ordering::SeqCst), 5);
}

#[test]
fn dropping_a_pool_runs_all_queued_work_first() {
    let (pool, gate, _blocker, _queued, count) = blocked_with_queue(100);
    let opener = gate.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        opener.open();
    });
    within("drop", move || drop(pool));
    assert_eq!(
        count.load(Ordering::SeqCst),
        100,
        "drop returned before queued work ran"
    );
}

#[test]
fn dropping_a_daemon_pool_returns_at_once_and_work_completes_in_the_background() {
    let pool = Builder::new().num_threads(1).daemon(true).build().unwrap();
    let gate = Gate::new();
    let g = gate.clone();
    let blocker = pool.submit(move || {
        g.wait();
    });
    let count = Arc::new(AtomicUsize::new(0));
    let queued = counter_tasks(&pool, 10, &count);
    drop(pool); // returns although the worker is blocked
    assert_eq!(count.load(Ordering::SeqCst), 0);
    gate.open();
    blocker.get_timeout(LONG).unwrap();
    for h in queued {
        assert_eq!(h.get_timeout(LONG), Ok(()));
    }
    assert_eq!(count.load(Ordering::SeqCst), 10);
}

#[test]
fn dropping_a_pool_leaves_no_thread_behind() {
    let pool = Builder::new()
        .num_threads(3)
        .thread_name("leakcheck")
        .build()
        .unwrap();
    assert_eq!(threads_named("leakcheck-"), 3);
    pool.submit(|| ()).get().unwrap();
    drop(pool);
    assert!(no_threads_named("leakcheck-"));
}

#[test]
fn dropping_the_pool_from_its_own_worker_does_not_deadlock() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let done = Signals::new();
    let tx = done.sender();
    let inner = pool.clone();
    // The task holds the last reference when the test drops its own.
    let h = pool.submit(move || {
        std::thread::sleep(Duration::from_millis(20));
        drop(inner);
        tx.send(()).unwrap();
        "dropped on a worker"
    });
    drop(pool);
    done.recv();
    assert_eq!(h.get_timeout(LONG), Ok("dropped on a worker"));
}

/// The last reference to the pool inside a nested task that its parent
/// collects right where it is queued (the worker runs it alone, in
/// `get`): dropping it closes the pool from its own worker, and the
/// child, the parent and the test all end.
#[test]
fn the_last_reference_inside_a_task_collected_on_its_worker() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let (dropped_tx, dropped_rx) = std::sync::mpsc::channel::<()>();
    let inner = pool.clone();
    let parent = pool.submit(move || {
        let last = inner.clone();
        let child = inner.submit(move || {
            drop(last);
            7
        });
        drop(inner);
        // The test's own reference is gone too: `last` is the only one.
        dropped_rx.recv_timeout(LONG).unwrap();
        child.get()
    });
    drop(pool);
    dropped_tx.send(()).unwrap();
    assert_eq!(parent.get_timeout(LONG), Ok(Ok(7)));
}

#[test]
fn joining_the_pool_from_its_own_worker_does_not_deadlock() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let inner = pool.clone();
    let h = pool.submit(move || {
        inner.join();
        inner.is_closed()
    });
    assert_eq!(h.get_timeout(LONG), Ok(true));
    within("join from outside after a join inside", move || pool.join());
}

#[test]
fn shutdown_wait_from_a_worker_does_not_deadlock() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let inner = pool.clone();
    let h = pool.submit(move || inner.shutdown(true, false));
    assert_eq!(h.get_timeout(LONG), Ok(()));
}

/// Two submitters race `stop(pool)`: every handle must end with its value
/// or one of `allowed`, never hang.
fn every_handle_ends_when_racing(stop: fn(&ThreadPool), allowed: &[TaskError]) {
    for _ in 0..20 {
        let pool = Arc::new(ThreadPool::new(2).unwrap());
        let submitters: Vec<_> = (0..2)
            .map(|_| {
                let p = pool.clone();
                std::thread::spawn(move || {
                    (0..200).map(|i| p.submit(move || i)).collect::<Vec<_>>()
                })
            })
            .collect();
        stop(&pool);
        for s in submitters {
            for (i, h) in s.join().unwrap().into_iter().enumerate() {
                match h.get_timeout(LONG) {
                    Ok(v) => assert_eq!(v, i),
                    Err(e) if allowed.contains(&e) => {}
                    other => panic!("unexpected outcome {other:?}"),
                }
            }
        }
    }
}

#[test]
fn every_handle_ends_when_close_races_submitters() {
    every_handle_ends_when_racing(ThreadPool::close, &[TaskError::PoolClosed]);
}

#[test]
fn every_handle_ends_when_terminate_races_submitters() {
    every_handle_ends_when_racing(
        ThreadPool::terminate,
        &[TaskError::PoolClosed, TaskError::Cancelled],
    );
}

/// Submitting and waiting from a thread-local destructor that runs after
/// the pool's own per-thread state on that thread is gone: `submit` never
/// panics and the waits work as anywhere else.
#[test]
fn submit_and_wait_from_a_thread_local_destructor() {
    use std::cell::RefCell;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::mpsc;

    type Outcome = Result<(Result<u32, TaskError>, Result<u32, TaskError>, u32, bool), String>;
    struct OnExit(Arc<ThreadPool>, mpsc::Sender<Outcome>);
    impl Drop for OnExit {
        fn drop(&mut self) {
            let pool = &self.0;
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let timed = pool.submit(|| 40).get_timeout(LONG);
                let untimed = pool.submit(|| 2).get();
                let awaited = futurepool::block_on(pool.spawn_async(async { 7 })).unwrap();
                let waited = pool.submit(|| ()).wait_timeout(LONG);
                (timed, untimed, awaited, waited)
            }))
            .map_err(|p| {
                p.downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_default()
            });
            let _ = self.1.send(outcome);
        }
    }
    thread_local! {
        static ON_EXIT: RefCell<Option<OnExit>> = const { RefCell::new(None) };
    }

    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let (tx, rx) = mpsc::channel();
    let p = pool.clone();
    std::thread::spawn(move || {
        // Registered first, so destroyed after every thread-local the
        // pool touches below.
        ON_EXIT.with(|slot| *slot.borrow_mut() = Some(OnExit(p.clone(), tx)));
        assert_eq!(p.submit(|| 1).get(), Ok(1));
        futurepool::block_on(p.spawn_async(async {})).unwrap();
    })
    .join()
    .unwrap();
    let outcome = rx.recv_timeout(LONG).expect("the destructor ran");
    assert_eq!(outcome, Ok((Ok(40), Ok(2), 7, true)));
}
