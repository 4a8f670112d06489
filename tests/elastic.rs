//! Elastic pools: lazy start up to `max_threads`, `min_threads` and the
//! keep-alive, resizing at run time, `blocking`, the starvation monitor,
//! thread hooks, and what happens when a thread cannot start.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{quiet_panics, start_blocked, Gate, Signals, LONG};
use futurepool::{BuildErrorKind, Builder, PoolStats, TaskError, ThreadPool};

/// Waits (bounded) until `pred(stats)` holds; returns the last stats.
fn stats_until(pool: &ThreadPool, pred: impl Fn(&PoolStats) -> bool) -> PoolStats {
    let deadline = Instant::now() + LONG;
    loop {
        let stats = pool.stats();
        if pred(&stats) || Instant::now() > deadline {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `n` tasks that each signal when they start and then wait on `gate`.
fn busy(pool: &ThreadPool, gate: &Gate, n: usize) -> Vec<futurepool::AsyncResult<usize>> {
    (0..n).map(|i| start_blocked(pool, gate, i)).collect()
}

#[test]
fn an_elastic_pool_starts_no_thread_until_work_arrives_and_reuses_an_idle_one() {
    let pool = Builder::new().max_threads(8).build().unwrap();
    assert_eq!(pool.stats().threads, 0);
    for i in 0..20 {
        pool.wait_idle();
        assert_eq!(pool.submit(move || i).get_timeout(LONG), Ok(i));
    }
    let stats = pool.stats();
    assert_eq!((stats.threads, stats.peak_threads), (1, 1), "{stats:?}");
}

#[test]
fn a_submission_that_finds_every_worker_busy_starts_one_more_up_to_the_cap() {
    let pool = Builder::new().max_threads(4).build().unwrap();
    let gate = Gate::new();
    // Each of the four starts only if a thread was started for it.
    let running = busy(&pool, &gate, 4);
    let queued = pool.submit(|| "fifth");
    let stats = pool.stats();
    assert_eq!((stats.threads, stats.peak_threads), (4, 4), "{stats:?}");
    assert_eq!(stats.queued, 1, "the cap holds: the fifth waits");
    gate.open();
    for (i, h) in running.into_iter().enumerate() {
        assert_eq!(h.get_timeout(LONG), Ok(i));
    }
    assert_eq!(queued.get_timeout(LONG), Ok("fifth"));
}

#[test]
fn min_threads_start_in_build_and_idle_workers_above_it_retire_after_the_keep_alive() {
    let stopped = Arc::new(AtomicUsize::new(0));
    let s = stopped.clone();
    let pool = Builder::new()
        .min_threads(1)
        .max_threads(4)
        .keep_alive(Duration::from_millis(20))
        .on_thread_stop(move |_| {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    assert_eq!(pool.stats().threads, 1);
    let gate = Gate::new();
    let running = busy(&pool, &gate, 4);
    assert_eq!(pool.stats().threads, 4);
    gate.open();
    for h in running {
        h.get_timeout(LONG).unwrap();
    }
    let stats = stats_until(&pool, |s| s.threads == 1);
    assert_eq!(stats.threads, 1, "back to min_threads: {stats:?}");
    let deadline = Instant::now() + LONG;
    while stopped.load(Ordering::SeqCst) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        stopped.load(Ordering::SeqCst),
        3,
        "each retired thread ran its stop hook"
    );
    // The pool still works, growing again.
    let gate = Gate::new();
    let again = busy(&pool, &gate, 2);
    assert_eq!(pool.stats().threads, 2);
    gate.open();
    for h in again {
        h.get_timeout(LONG).unwrap();
    }
    pool.join();
    assert_eq!(stopped.load(Ordering::SeqCst), 5, "and at join");
}

#[test]
fn bad_sizes_are_build_errors_not_panics() {
    let cases = [
        Builder::new().max_threads(0),
        Builder::new().min_threads(5).max_threads(4),
        Builder::new().max_threads(usize::MAX),
        Builder::new().max_threads(Builder::MAX_THREADS + 1),
        Builder::new().min_threads(usize::MAX).max_threads(4),
        Builder::new().num_threads(usize::MAX),
        Builder::new().num_threads(4).max_threads(3),
    ];
    for builder in cases {
        let shown = format!("{builder:?}");
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), BuildErrorKind::InvalidConfig, "{shown}: {err}");
        assert!(err.to_string().contains("_threads"), "{err}");
    }
    let at_the_limit = Builder::new().max_threads(Builder::MAX_THREADS).build();
    assert!(at_the_limit.is_ok(), "a lazy pool may have a high cap");
}

#[test]
fn set_max_threads_grows_for_queued_work_and_shrinks_after_the_current_task() {
    let pool = Builder::new().max_threads(1).build().unwrap();
    let gate = Gate::new();
    let first = start_blocked(&pool, &gate, 1);
    let second = pool.submit(|| 2);
    assert_eq!(pool.stats().queued, 1, "capped at one thread");
    pool.set_max_threads(4).unwrap();
    // The queued task runs now, while the first still holds its worker.
    assert_eq!(second.get_timeout(LONG), Ok(2));
    let more = busy(&pool, &gate, 2);
    // Three busy; the worker that ran `second` may or may not have been
    // back to look for work when the first of them came (it reuses it,
    // or a thread is started).
    let threads = pool.stats().threads;
    assert!((3..=4).contains(&threads), "{threads}");
    pool.set_max_threads(1).unwrap();
    assert_eq!(pool.max_threads(), 1);
    gate.open();
    assert_eq!(first.get_timeout(LONG), Ok(1));
    for h in more {
        h.get_timeout(LONG).unwrap();
    }
    let stats = stats_until(&pool, |s| s.threads == 1);
    assert_eq!(stats.threads, 1, "{stats:?}");
    let after: Vec<_> = (0..50).map(|i| pool.submit(move || i)).collect();
    for (i, h) in after.into_iter().enumerate() {
        assert_eq!(h.get_timeout(LONG), Ok(i));
    }
    assert_eq!(pool.stats().threads, 1);
}

#[test]
fn set_num_threads_resizes_a_fixed_pool_both_ways() {
    let pool = ThreadPool::new(2).unwrap();
    pool.set_num_threads(5).unwrap();
    assert_eq!((pool.num_threads(), pool.stats().threads), (5, 5));
    pool.set_num_threads(1).unwrap();
    let stats = stats_until(&pool, |s| s.threads == 1);
    assert_eq!(stats.threads, 1, "{stats:?}");
    let handles: Vec<_> = (0..100).map(|i| pool.submit(move || i * 2)).collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.get_timeout(LONG), Ok(i * 2));
    }
    assert_eq!(pool.stats().peak_threads, 5);
}

#[test]
fn bad_resizes_are_errors_and_change_nothing() {
    let pool = Builder::new()
        .min_threads(2)
        .max_threads(4)
        .build()
        .unwrap();
    assert!(pool.set_max_threads(0).is_err());
    assert!(pool.set_max_threads(1).is_err(), "below min_threads");
    assert!(pool.set_max_threads(usize::MAX).is_err());
    assert!(pool.set_min_threads(5).is_err(), "above max_threads");
    assert!(pool.set_num_threads(0).is_err());
    assert!(pool.set_num_threads(usize::MAX).is_err());
    let err = pool.set_min_threads(5).unwrap_err();
    assert!(err.to_string().contains("min_threads (5)"), "{err}");
    assert_eq!((pool.max_threads(), pool.num_threads()), (4, 4));
    assert_eq!(pool.stats().threads, 2);
    let fixed = ThreadPool::new(3).unwrap();
    assert!(
        fixed.set_max_threads(2).is_err(),
        "below a fixed pool's size"
    );
    assert_eq!(fixed.max_threads(), 3 + 512);
}

#[test]
fn set_min_threads_starts_workers_now() {
    let pool = Builder::new().max_threads(6).build().unwrap();
    pool.set_min_threads(4).unwrap();
    assert_eq!(pool.stats().threads, 4);
}

#[test]
fn a_fixed_pool_of_two_serves_eight_tasks_that_all_block_at_once() {
    let pool = ThreadPool::new(2).unwrap();
    let all_here = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let all_here = all_here.clone();
            pool.submit(move || {
                futurepool::blocking(|| {
                    all_here.wait();
                });
                i
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.get_timeout(LONG), Ok(i));
    }
    assert!(pool.stats().peak_threads >= 8);
}

#[test]
fn blocking_outside_a_pool_just_runs_and_nested_blocking_counts_once() {
    assert_eq!(futurepool::blocking(|| futurepool::blocking(|| 7)), 7);
    let pool = Builder::new()
        .num_threads(1)
        .max_threads(2)
        .build()
        .unwrap();
    let gate = Gate::new();
    let (g, g2) = (gate.clone(), gate.clone());
    // Nested: the outer call already counts this worker as blocked, so the
    // pool adds one thread (the cap), not two; the queued task runs on it.
    let outer = pool.submit(move || futurepool::blocking(|| futurepool::blocking(|| g.wait())));
    let other = pool.submit(move || {
        g2.open();
        "ran"
    });
    assert_eq!(other.get_timeout(LONG), Ok("ran"));
    assert_eq!(outer.get_timeout(LONG), Ok(true));
    assert!(pool.stats().peak_threads <= 2);
}

#[test]
fn a_panic_inside_blocking_propagates_and_restores_the_count() {
    quiet_panics();
    let pool = Builder::new()
        .num_threads(1)
        .max_threads(2)
        .build()
        .unwrap();
    let err = pool
        .submit(|| futurepool::blocking(|| panic!("intentional: in blocking")))
        .get_timeout(LONG)
        .unwrap_err();
    assert_eq!(err.panic_message(), Some("intentional: in blocking"));
    let threads_before = pool.stats().threads;
    // The worker is busy without `blocking` now: a submission must not
    // start a thread (it would if the panic had left it counted blocked).
    let gate = Gate::new();
    let held = start_blocked(&pool, &gate, ());
    let queued = pool.submit(|| "after");
    assert_eq!(pool.stats().threads, threads_before);
    assert_eq!(pool.stats().queued, 1);
    gate.open();
    held.get_timeout(LONG).unwrap();
    assert_eq!(queued.get_timeout(LONG), Ok("after"));
}

#[test]
fn blocking_deep_in_nested_waits_still_frees_the_pool() {
    // One worker, a chain of nested submit+get deep enough to move to
    // overflow threads, and at its bottom a wait that only another task
    // can end: only a thread started for `blocking` can run that task.
    let pool = Arc::new(
        Builder::new()
            .num_threads(1)
            .stack_size(128 << 10)
            .thread_name("deepblock")
            .build()
            .unwrap(),
    );
    let gate = Gate::new();
    fn nest(pool: Arc<ThreadPool>, depth: usize, gate: Gate) -> bool {
        if depth == 0 {
            return futurepool::blocking(|| gate.wait());
        }
        let p = pool.clone();
        pool.submit(move || nest(p, depth - 1, gate))
            .get_timeout(LONG)
            .unwrap()
    }
    let (p, g) = (pool.clone(), gate.clone());
    let deep = pool.submit(move || nest(p, 300, g));
    let opener = {
        let gate = gate.clone();
        // Submitted once the chain is at its bottom (the worker and its
        // overflow threads are all busy in it).
        std::thread::sleep(Duration::from_millis(50));
        pool.submit(move || gate.open())
    };
    opener.get_timeout(LONG).unwrap();
    assert_eq!(deep.get_timeout(LONG), Ok(true));
}

#[test]
fn the_monitor_adds_a_worker_when_queued_work_makes_no_progress() {
    // Thread 1's start hook hangs: the thread started for the queued task
    // never takes it, and no later submission starts another. Only the
    // starvation monitor can get the queued task running.
    let hook_gate = Gate::new();
    let hg = hook_gate.clone();
    let pool = Builder::new()
        .max_threads(4)
        .on_thread_start(move |i| {
            if i == 1 {
                hg.wait();
            }
        })
        .build()
        .unwrap();
    let gate = Gate::new();
    let held = start_blocked(&pool, &gate, ());
    let starved = pool.submit(|| "ran");
    assert_eq!(starved.get_timeout(LONG), Ok("ran"));
    assert!(pool.stats().peak_threads >= 3);
    hook_gate.open();
    gate.open();
    held.get_timeout(LONG).unwrap();
}

#[test]
fn hooks_run_on_every_thread_including_ones_started_later() {
    let (starts, stops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (a, b) = (starts.clone(), stops.clone());
    let pool = Builder::new()
        .max_threads(3)
        .on_thread_start(move |_| {
            a.fetch_add(1, Ordering::SeqCst);
        })
        .on_thread_stop(move |_| {
            b.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    assert_eq!(starts.load(Ordering::SeqCst), 0);
    let gate = Gate::new();
    let running = busy(&pool, &gate, 3);
    assert_eq!(starts.load(Ordering::SeqCst), 3);
    gate.open();
    for h in running {
        h.get_timeout(LONG).unwrap();
    }
    pool.join();
    assert_eq!(stops.load(Ordering::SeqCst), 3);
}

#[test]
fn a_start_hook_that_panics_later_loses_no_task() {
    quiet_panics();
    let pool = Builder::new()
        .max_threads(3)
        .on_thread_start(|i| {
            if i > 0 {
                panic!("intentional: no thread {i}");
            }
        })
        .build()
        .unwrap();
    let gate = Gate::new();
    let held = start_blocked(&pool, &gate, 0);
    // Its thread fails to start: the task waits for worker 0.
    let later: Vec<_> = (1..5).map(|i| pool.submit(move || i)).collect();
    gate.open();
    assert_eq!(held.get_timeout(LONG), Ok(0));
    for (i, h) in later.into_iter().enumerate() {
        assert_eq!(h.get_timeout(LONG), Ok(i + 1));
    }
}

#[test]
fn with_no_thread_at_all_a_handle_resolves_to_a_clear_error() {
    quiet_panics();
    // The OS refuses every thread (an absurd stack), and a lazy pool has
    // none to fall back on.
    let pool = Builder::new()
        .max_threads(4)
        .stack_size(1 << 46)
        .build()
        .unwrap();
    let err = pool.submit(|| 1).get_timeout(LONG).unwrap_err();
    assert!(matches!(err, TaskError::ThreadStart(_)), "{err:?}");
    assert!(err.to_string().contains("could not start"), "{err}");
    // And again with a start hook that panics.
    let pool = Builder::new()
        .max_threads(2)
        .on_thread_start(|_| panic!("intentional: hook"))
        .build()
        .unwrap();
    let err = pool.submit(|| 1).get_timeout(LONG).unwrap_err();
    assert!(err.to_string().contains("intentional: hook"), "{err}");
    let err = pool.submit(|| 2).get_timeout(LONG).unwrap_err();
    assert!(matches!(err, TaskError::ThreadStart(_)), "{err:?}");
}

#[test]
fn wait_idle_and_join_see_threads_started_later() {
    let pool = Builder::new().max_threads(8).build().unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let started = Signals::new();
    for _ in 0..8 {
        let (done, tx) = (done.clone(), started.sender());
        pool.submit(move || {
            let _ = tx.send(());
            std::thread::sleep(Duration::from_millis(5));
            done.fetch_add(1, Ordering::SeqCst);
        });
    }
    started.recv();
    pool.wait_idle();
    assert_eq!(done.load(Ordering::SeqCst), 8);
    assert!(pool.join_timeout(LONG));
    assert_eq!(pool.stats().threads, 0);
}
