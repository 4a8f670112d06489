//! Faults and bad input: panicking Drops, panicking callbacks, tasks that
//! never return, handles dropped early, deep nesting. Each test bounds its
//! waits, so a regression fails instead of hanging.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use futurepool::{Builder, TaskError, ThreadPool};

const LONG: Duration = Duration::from_secs(30);

/// Counts its drops.
struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Panics when dropped (and counts that it was).
struct PanicOnDrop(Arc<AtomicUsize>);
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("PanicOnDrop dropped");
    }
}

/// A task that blocks until the returned sender is used (or dropped).
fn gate() -> (mpsc::Sender<()>, impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel::<()>();
    (tx, move || {
        let _ = rx.recv();
    })
}

/// Occupies one worker until the returned sender is used: returns once the
/// blocking task is running.
fn occupy(pool: &ThreadPool) -> (mpsc::Sender<()>, futurepool::AsyncResult<()>) {
    let (open, blocker) = gate();
    let (started_tx, started_rx) = mpsc::channel();
    let handle = pool.submit(move || {
        started_tx.send(()).unwrap();
        blocker();
    });
    started_rx.recv_timeout(LONG).expect("blocker started");
    (open, handle)
}

#[test]
fn cancelling_a_task_whose_closure_panics_on_drop_still_resolves_it() {
    // Regression: abort() dropped the closure before publishing, so the
    // panic escaped cancel() and the handle never resolved.
    let pool = ThreadPool::new(1).unwrap();
    let (open, blocker) = occupy(&pool);
    let drops = Arc::new(AtomicUsize::new(0));
    let bomb = PanicOnDrop(drops.clone());
    let queued = pool.submit(move || {
        let _keep = &bomb;
        1
    });
    assert!(queued.cancel(), "cancel must not panic and must succeed");
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the closure was released");
    assert_eq!(queued.get_timeout(LONG), Err(TaskError::Cancelled));
    open.send(()).unwrap();
    assert_eq!(blocker.get_timeout(LONG), Ok(()));
}

#[test]
fn terminate_cancels_everything_even_past_a_closure_that_panics_on_drop() {
    let pool = ThreadPool::new(1).unwrap();
    let (open, blocker) = occupy(&pool);
    let drops = Arc::new(AtomicUsize::new(0));
    let mut queued = Vec::new();
    for i in 0..10 {
        let bomb = PanicOnDrop(drops.clone());
        queued.push(pool.submit(move || {
            let _keep = &bomb;
            i
        }));
    }
    pool.terminate();
    for h in &queued {
        assert_eq!(h.get_timeout(LONG), Err(TaskError::Cancelled));
    }
    assert_eq!(drops.load(Ordering::SeqCst), 10);
    open.send(()).unwrap();
    assert_eq!(blocker.get_timeout(LONG), Ok(()));
    assert!(pool.join_timeout(LONG));
}

#[test]
fn a_result_that_panics_on_drop_does_not_kill_the_worker() {
    // Regression: the result of a task whose handle was dropped is dropped
    // on the worker; its panic unwound the worker thread, and a pool of one
    // then never ran anything again.
    let pool = ThreadPool::new(1).unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let d = drops.clone();
        drop(pool.submit(move || PanicOnDrop(d)));
    }
    assert_eq!(pool.submit(|| 5).get_timeout(LONG), Ok(5));
    assert!(pool.join_timeout(LONG));
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}

#[test]
fn panicking_tasks_and_callbacks_leave_every_worker_alive() {
    let pool = ThreadPool::new(2).unwrap();
    let called = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..200)
        .map(|i| {
            let h = pool.submit(move || -> u32 { panic!("task {i}") });
            let c = called.clone();
            h.add_done_callback(move |r| {
                assert!(r.is_err());
                c.fetch_add(1, Ordering::SeqCst);
                panic!("callback {i}");
            });
            h
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let err = h.get_timeout(LONG).unwrap_err();
        assert_eq!(err.panic_message(), Some(format!("task {i}").as_str()));
    }
    assert_eq!(called.load(Ordering::SeqCst), 200);
    // Both workers still serve: two tasks that need each other to finish.
    let (tx, rx) = mpsc::channel::<()>();
    let a = pool.submit(move || rx.recv_timeout(LONG).is_ok());
    let b = pool.submit(move || tx.send(()).is_ok());
    assert_eq!(a.get_timeout(LONG), Ok(true));
    assert_eq!(b.get_timeout(LONG), Ok(true));
}

#[test]
fn a_task_that_never_returns_does_not_stop_terminate_and_join_timeout_reports_it() {
    let pool = ThreadPool::new(2).unwrap();
    // Stands for a task that never returns: it is released only at the end
    // of the test so the thread does not outlive it.
    let (release, stuck) = gate();
    let (started_tx, started_rx) = mpsc::channel();
    let stuck = pool.submit(move || {
        started_tx.send(()).unwrap();
        stuck();
    });
    started_rx.recv_timeout(LONG).unwrap();
    // Keep the other worker busy too, so the rest stay queued.
    let (release2, busy) = gate();
    let (started2_tx, started2_rx) = mpsc::channel();
    let busy = pool.submit(move || {
        started2_tx.send(()).unwrap();
        busy();
    });
    started2_rx.recv_timeout(LONG).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let rest: Vec<_> = (0..100)
        .map(|_| {
            let ran = ran.clone();
            pool.submit(move || ran.fetch_add(1, Ordering::SeqCst))
        })
        .collect();
    pool.terminate();
    for h in &rest {
        assert_eq!(h.get_timeout(LONG), Err(TaskError::Cancelled));
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert!(stuck.running());
    assert!(
        !pool.join_timeout(Duration::from_millis(20)),
        "join_timeout must report the worker that is still busy"
    );
    release2.send(()).unwrap();
    assert_eq!(busy.get_timeout(LONG), Ok(()));
    assert!(!pool.join_timeout(Duration::from_millis(1)));
    release.send(()).unwrap();
    assert_eq!(stuck.get_timeout(LONG), Ok(()));
    assert!(pool.join_timeout(LONG));
    assert!(pool.join_timeout(Duration::ZERO), "idempotent once joined");
}

#[test]
fn join_timeout_on_an_own_worker_returns_false_without_deadlock() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let inner = pool.clone();
    let from_worker = pool.submit(move || inner.join_timeout(Duration::from_secs(1)));
    assert_eq!(from_worker.get_timeout(LONG), Ok(false));
    assert!(pool.join_timeout(LONG));
}

#[test]
fn a_handle_dropped_before_its_task_runs_releases_closure_and_result() {
    let pool = ThreadPool::new(1).unwrap();
    let (open, blocker) = occupy(&pool);
    let closure_drops = Arc::new(AtomicUsize::new(0));
    let result_drops = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..50 {
        let captured = Counted(closure_drops.clone());
        let result = result_drops.clone();
        let ran = ran.clone();
        drop(pool.submit(move || {
            let _c = &captured;
            ran.fetch_add(1, Ordering::SeqCst);
            Counted(result)
        }));
    }
    // Still queued: nothing released yet, nothing ran.
    assert_eq!(closure_drops.load(Ordering::SeqCst), 0);
    open.send(()).unwrap();
    assert_eq!(blocker.get_timeout(LONG), Ok(()));
    assert!(pool.join_timeout(LONG));
    assert_eq!(
        ran.load(Ordering::SeqCst),
        50,
        "dropping a handle does not cancel"
    );
    assert_eq!(closure_drops.load(Ordering::SeqCst), 50);
    assert_eq!(result_drops.load(Ordering::SeqCst), 50);
}

#[test]
fn a_cancelled_task_releases_its_closure_at_once() {
    let pool = ThreadPool::new(1).unwrap();
    let (open, blocker) = occupy(&pool);
    let drops = Arc::new(AtomicUsize::new(0));
    let captured = Counted(drops.clone());
    let h = pool.submit(move || {
        let _c = &captured;
    });
    assert!(h.cancel());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(h);
    open.send(()).unwrap();
    assert_eq!(blocker.get_timeout(LONG), Ok(()));
}

#[test]
fn a_panicking_initializer_fails_build_with_its_message() {
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let err = Builder::new()
        .num_threads(4)
        .initializer(move |i| {
            s.fetch_add(1, Ordering::SeqCst);
            if i == 2 {
                panic!("no connection for worker {i}");
            }
        })
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("no connection for worker 2"),
        "{err}"
    );
    assert_eq!(started.load(Ordering::SeqCst), 4);
}

#[test]
fn absurd_stack_sizes_are_build_errors() {
    for bytes in [usize::MAX, usize::MAX / 2, 1 << 46] {
        let err = Builder::new()
            .num_threads(3)
            .stack_size(bytes)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("spawn"), "{err}");
    }
}

#[test]
fn a_stack_below_the_minimum_is_a_config_error() {
    let err = Builder::new()
        .stack_size(Builder::MIN_STACK_SIZE - 1)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), futurepool::BuildErrorKind::InvalidConfig);
    assert!(err.to_string().contains("stack_size"), "{err}");
    let pool = Builder::new()
        .num_threads(1)
        .stack_size(Builder::MIN_STACK_SIZE)
        .build()
        .unwrap();
    assert_eq!(pool.submit(|| 3).get_timeout(LONG), Ok(3));
}

#[test]
fn deep_nesting_on_a_small_stack_continues_on_overflow_threads() {
    // 64 KiB stacks hold only a few dozen nested levels in a debug build:
    // without stack segments this would overflow and abort the process.
    for threads in [1, 2] {
        let pool = Arc::new(
            Builder::new()
                .num_threads(threads)
                .stack_size(64 << 10)
                .thread_name("tiny")
                .build()
                .unwrap(),
        );
        let p = pool.clone();
        let depth = pool
            .submit(move || common::chain(p, 2_000))
            .get_timeout(LONG);
        assert_eq!(depth, Ok(2_000));
        // Tasks on overflow threads still see the worker's name.
        let p = pool.clone();
        let name = pool
            .submit(move || {
                let inner = p.clone();
                common::chain(p, 500);
                inner
                    .submit(|| std::thread::current().name().map(String::from))
                    .get_timeout(LONG)
                    .unwrap()
            })
            .get_timeout(LONG)
            .unwrap()
            .unwrap();
        assert!(name.starts_with("tiny-"), "{name}");
        assert!(pool.join_timeout(LONG));
    }
}
