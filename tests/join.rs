//! Fork-join: `futurepool::join` and `ThreadPool::install`, tested like
//! `get`: deep recursion, panics on either side with the other side's
//! borrows intact, from outside any pool, inside a scope, inside a task,
//! on a closing and a terminated pool.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use common::*;
use futurepool::{join, Builder, ThreadPool};

fn pool(threads: usize, name: &str) -> ThreadPool {
    Builder::new()
        .num_threads(threads)
        .thread_name(name)
        .build()
        .unwrap()
}

fn on_thread_named(prefix: &str) -> bool {
    std::thread::current()
        .name()
        .is_some_and(|n| n.starts_with(prefix))
}

/// A chain of joins `depth` deep, recursing on side `a` or side `b`.
fn deep(depth: usize, on_b: bool) -> usize {
    if depth == 0 {
        return 0;
    }
    let (x, y) = if on_b {
        join(|| 1, || deep(depth - 1, on_b))
    } else {
        join(|| deep(depth - 1, on_b), || 1)
    };
    x + y
}

#[test]
fn recursion_ten_thousand_deep_on_one_and_two_threads() {
    for threads in [1, 2] {
        for on_b in [false, true] {
            let pool = pool(threads, &format!("fj-deep{threads}{on_b}"));
            let depth = within("deep join", move || pool.install(|| deep(10_000, on_b)));
            assert_eq!(depth, 10_000, "threads {threads}, recursing on b: {on_b}");
        }
    }
}

fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = join(|| fib(n - 1), || fib(n - 2));
    a + b
}

#[test]
fn fib_on_one_and_two_threads() {
    for threads in [1, 2] {
        let pool = pool(threads, "fj-fib");
        assert_eq!(within("fib", move || pool.install(|| fib(20))), 6765);
    }
}

/// Both sides borrow the caller's data, one of them mutably.
#[test]
fn closures_borrow_from_the_caller() {
    let _watchdog = watchdog("closures_borrow_from_the_caller");
    let pool = pool(2, "fj-borrow");
    let mut left = vec![1, 2, 3];
    let right = String::from("right");
    let (sum, len) = pool.install(|| {
        join(
            || {
                left.push(4);
                left.iter().sum::<i32>()
            },
            || right.len(),
        )
    });
    assert_eq!((sum, len), (10, 5));
    assert_eq!(left, [1, 2, 3, 4]);
}

/// A panic on either side is re-raised only after the other side has
/// finished with what it borrowed: its writes are all there.
#[test]
fn a_panic_on_either_side_leaves_the_other_sides_borrows_intact() {
    let _watchdog = watchdog("a_panic_on_either_side_leaves_the_other_sides_borrows_intact");
    quiet_panics();
    for threads in [1, 2] {
        let pool = pool(threads, "fj-panic");
        for panic_in_a in [true, false] {
            let mut written = Vec::new();
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                pool.install(|| {
                    let work = || {
                        for i in 0..1000 {
                            written.push(i);
                        }
                    };
                    let boom = || panic!("intentional: join side");
                    if panic_in_a {
                        join(boom, work);
                    } else {
                        join(work, boom);
                    }
                })
            }));
            let payload = outcome.expect_err("the panic was re-raised");
            assert_eq!(
                payload.downcast_ref::<&str>(),
                Some(&"intentional: join side")
            );
            assert_eq!(
                written.len(),
                1000,
                "threads {threads}, a panics: {panic_in_a}"
            );
            assert_eq!(written.iter().sum::<i32>(), 499_500);
        }
        // The pool lives on.
        assert_eq!(pool.install(|| join(|| 1, || 2)), (1, 2));
    }
}

#[test]
fn when_both_sides_panic_the_first_sides_panic_is_raised() {
    let _watchdog = watchdog("when_both_sides_panic_the_first_sides_panic_is_raised");
    quiet_panics();
    let pool = pool(2, "fj-both");
    let payload = catch_unwind(AssertUnwindSafe(|| {
        pool.install(|| {
            join(
                || panic!("intentional: a"),
                || -> () { panic!("intentional: b") },
            )
        })
    }))
    .unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"intentional: a"));
}

/// From a thread outside any pool, both closures run on the global pool.
#[test]
fn join_outside_any_pool_runs_on_the_global_pool() {
    let _watchdog = watchdog("join_outside_any_pool_runs_on_the_global_pool");
    let (a, b) = join(
        || on_thread_named("futurepool-global"),
        || on_thread_named("futurepool-global"),
    );
    assert!(a && b, "ran on the global pool: a {a}, b {b}");
}

/// Inside a task, join uses the task's pool (not the global one).
#[test]
fn join_inside_a_task_uses_that_pool() {
    let pool = pool(2, "fj-task");
    let handle = pool.submit(|| join(|| on_thread_named("fj-task"), || on_thread_named("fj-task")));
    assert_eq!(handle.get_timeout(LONG), Ok((true, true)));
}

/// In a scope's body (on the caller: the global pool) and in a scoped task
/// (the scope's pool), with borrowed data.
#[test]
fn join_inside_a_scope() {
    let _watchdog = watchdog("join_inside_a_scope");
    let pool = pool(2, "fj-scope");
    let data = vec![1u64; 1000];
    let (in_task, in_body) = pool.scope(|s| {
        let task = s.spawn(|| {
            let (a, b) = join(|| data[..500].iter().sum::<u64>(), || data[500..].len());
            (a, b, on_thread_named("fj-scope"))
        });
        let body = join(|| data.len(), || on_thread_named("futurepool-global"));
        (task.join().unwrap(), body)
    });
    assert_eq!(in_task, (500, 500, true));
    assert_eq!(in_body, (1000, true));
}

/// The second closure runs on another worker when one is free: `a`
/// waits until `b` has run, which only a thief can make happen.
#[test]
fn the_second_closure_is_stolen_by_an_idle_worker() {
    let pool = pool(2, "fj-steal");
    let ran = within("a waits for b", move || {
        pool.install(|| {
            let (tx, rx) = mpsc::channel();
            join(
                move || rx.recv_timeout(LONG).is_ok(),
                move || tx.send(()).unwrap(),
            )
        })
    });
    assert_eq!(ran, (true, ()));
}

/// Marks leaf `i` of a join tree over `leaves`; every 512th leaf pauses,
/// so that thieves also meet owners that take nothing back for a while.
fn mark_leaves(leaves: std::ops::Range<usize>, marks: &[AtomicUsize]) {
    if leaves.len() == 1 {
        if leaves.start % 512 == 0 {
            std::thread::sleep(std::time::Duration::from_micros(20));
        }
        marks[leaves.start].fetch_add(1, Ordering::Relaxed);
        return;
    }
    let mid = leaves.start + leaves.len() / 2;
    join(
        || mark_leaves(leaves.start..mid, marks),
        || mark_leaves(mid..leaves.end, marks),
    );
}

/// Every fork runs exactly once, taken back by its owner or stolen, while
/// the other worker steals all along: no leaf of the tree is run twice or
/// lost, round after round.
#[test]
fn every_fork_runs_exactly_once_while_the_other_worker_steals() {
    let pool = Arc::new(pool(2, "fj-once"));
    let rounds = if cfg!(miri) { 2 } else { 40 };
    let leaves = if cfg!(miri) { 64 } else { 1 << 12 };
    let marks = Arc::new((0..leaves).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
    let (p, m) = (pool.clone(), marks.clone());
    let stolen = within("the join trees", move || {
        for _ in 0..rounds {
            p.install(|| mark_leaves(0..leaves, &m));
        }
        p.stats().stolen
    });
    assert!(
        marks.iter().all(|c| c.load(Ordering::Relaxed) == rounds),
        "a leaf ran other than once per round"
    );
    assert!(stolen > 0, "the other worker never stole a fork");
}

/// Tasks the first closure submitted (queued above the fork on the
/// worker's deque) do not run before the second closure: they could be
/// waiting for what the caller does after the join.
#[test]
fn the_fork_is_taken_back_before_the_tasks_queued_above_it() {
    let pool = Arc::new(pool(1, "fj-above"));
    let log = Arc::new(Mutex::new(Vec::new()));
    let (p, l) = (pool.clone(), log.clone());
    let outer = pool.submit(move || {
        let push = |name: &'static str| {
            let l = l.clone();
            move || l.lock().unwrap().push(name)
        };
        let mut above = None;
        join(|| above = Some(p.submit(push("above"))), push("b"));
        l.lock().unwrap().push("joined");
        above.unwrap().get_timeout(LONG).unwrap();
    });
    outer.get_timeout(LONG).unwrap();
    assert_eq!(*log.lock().unwrap(), ["b", "joined", "above"]);
}

/// A pool closed while joins are in flight still completes them.
#[test]
fn join_on_a_closing_pool_completes() {
    let pool = Arc::new(pool(2, "fj-closing"));
    let gate = Gate::new();
    let g = gate.clone();
    let handle = pool.submit(move || {
        g.wait();
        fib(15)
    });
    pool.close();
    gate.open();
    assert_eq!(handle.get_timeout(LONG), Ok(610));
    within("join after close", move || pool.join());
}

/// Terminating the pool while the fork is queued hands it back to the
/// forking worker, which runs it: `join` still returns both values.
#[test]
fn join_on_a_terminated_pool_runs_the_fork_itself() {
    let pool = Arc::new(pool(1, "fj-term"));
    let p = pool.clone();
    let handle = pool.submit(move || join(|| p.terminate(), || 7));
    assert_eq!(handle.get_timeout(LONG), Ok(((), 7)));
}

#[test]
fn install_runs_on_a_worker_and_borrows() {
    let _watchdog = watchdog("install_runs_on_a_worker_and_borrows");
    let pool = pool(2, "fj-install");
    let mut hits = 0;
    let on_worker = pool.install(|| {
        hits += 1;
        on_thread_named("fj-install")
    });
    assert!(on_worker);
    assert_eq!(hits, 1);
    // From one of its own workers: runs right there.
    let pool = Arc::new(pool);
    let p = pool.clone();
    let nested = pool.submit(move || p.install(|| on_thread_named("fj-install")));
    assert_eq!(nested.get_timeout(LONG), Ok(true));
}

#[test]
fn install_re_raises_the_closures_panic() {
    let _watchdog = watchdog("install_re_raises_the_closures_panic");
    quiet_panics();
    let pool = pool(1, "fj-install-panic");
    let payload = catch_unwind(AssertUnwindSafe(|| {
        pool.install(|| -> u8 { panic!("intentional: installed") })
    }))
    .unwrap_err();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"intentional: installed")
    );
    assert_eq!(pool.install(|| 5), 5);
}

/// A closed pool takes no work: install runs the closure on the caller,
/// and a join inside it, not on any pool's worker, uses the global pool.
#[test]
fn install_on_a_closed_pool_runs_on_the_caller() {
    let _watchdog = watchdog("install_on_a_closed_pool_runs_on_the_caller");
    let pool = pool(1, "fj-closed");
    pool.close();
    let runs = AtomicUsize::new(0);
    let here = pool.install(|| {
        runs.fetch_add(1, Ordering::SeqCst);
        !on_thread_named("fj-closed")
    });
    assert!(here);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// Nested joins from many outside threads at once on a small pool.
#[test]
fn concurrent_installs_from_many_threads() {
    let _watchdog = watchdog("concurrent_installs_from_many_threads");
    let pool = Arc::new(pool(2, "fj-many"));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || pool.install(|| fib(16)))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 987);
    }
}
