//! Work-while-waiting: get() on a pool worker runs other queued tasks, so
//! nested submit + get never deadlocks; and tasks never run outside the pool.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use futurepool::{TaskError, ThreadPool};

fn fib(pool: &Arc<ThreadPool>, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let p = pool.clone();
    let left = pool.submit(move || fib(&p, n - 1));
    let right = fib(pool, n - 2);
    left.get().unwrap() + right
}

#[test]
fn nested_submit_and_get_on_a_one_thread_pool() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let p = pool.clone();
    let h = pool.submit(move || {
        let inner = p.submit(|| 20);
        inner.get().unwrap() + 1
    });
    assert_eq!(h.get_timeout(LONG), Ok(21));
}

#[test]
fn recursive_fork_join_on_one_and_two_threads() {
    for threads in [1, 2] {
        let pool = Arc::new(ThreadPool::new(threads).unwrap());
        let p = pool.clone();
        let h = pool.submit(move || fib(&p, 16));
        assert_eq!(h.get_timeout(LONG), Ok(987), "{threads} threads");
    }
}

#[test]
fn a_waiting_worker_runs_other_queued_tasks() {
    // One worker: the outer task waits on a task submitted *before* its
    // own child, from outside. Only work-while-waiting can finish both.
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let gate = Gate::new();
    let started = Signals::new();
    let (g, tx) = (gate.clone(), started.sender());
    let p = pool.clone();
    let outer = pool.submit(move || {
        tx.send(()).unwrap();
        g.wait();
        let child = p.submit(|| "child");
        child.get().unwrap()
    });
    started.recv();
    let queued_first = pool.submit(|| "outside");
    gate.open();
    assert_eq!(outer.get_timeout(LONG), Ok("child"));
    assert_eq!(queued_first.get_timeout(LONG), Ok("outside"));
}

#[test]
fn get_timeout_on_a_worker_keeps_working_and_times_out() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let gate = Gate::new();
    let p = pool.clone();
    let g = gate.clone();
    let h = pool.submit(move || {
        // A task on another pool that stays blocked: the wait must time out.
        let other = ThreadPool::new(1).unwrap();
        let g2 = g.clone();
        let blocked = other.submit(move || {
            g2.wait();
        });
        let first = blocked.get_timeout(std::time::Duration::from_millis(20));
        // Meanwhile nested work on our own pool still completes.
        let nested = p.submit(|| 5).get_timeout(LONG);
        g.open();
        (first, nested)
    });
    let (first, nested) = h.get_timeout(LONG).unwrap();
    assert_eq!(first, Err(TaskError::Timeout));
    assert_eq!(nested, Ok(5));
    gate.open();
}

#[test]
fn tasks_never_run_on_a_thread_outside_the_pool() {
    let pool = ThreadPool::new(2).unwrap();
    let me = std::thread::current().id();
    let handles: Vec<_> = (0..200)
        .map(|_| pool.submit(|| std::thread::current().id()))
        .collect();
    for h in handles {
        assert_ne!(
            h.get().unwrap(),
            me,
            "a task ran on the thread blocked in get()"
        );
    }
    // Not even a task this thread waits for, while it is still queued.
    let gate = Gate::new();
    let single = ThreadPool::new(1).unwrap();
    let g = gate.clone();
    let blocker = single.submit(move || {
        g.wait();
    });
    let queued = single.submit(|| std::thread::current().id());
    let opener = gate.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(20));
        opener.open();
    });
    assert_ne!(queued.get_timeout(LONG).unwrap(), me);
    blocker.get_timeout(LONG).unwrap();
}

#[test]
fn a_worker_of_another_pool_does_not_run_this_pools_tasks() {
    let a = Arc::new(
        ThreadPool::builder()
            .num_threads(1)
            .thread_name("a")
            .build()
            .unwrap(),
    );
    let b = ThreadPool::builder()
        .num_threads(1)
        .thread_name("b")
        .build()
        .unwrap();
    let a2 = a.clone();
    let h = b.submit(move || {
        a2.submit(|| std::thread::current().name().unwrap().to_string())
            .get()
            .unwrap()
    });
    assert_eq!(h.get_timeout(LONG).unwrap(), "a-0");
}

#[test]
fn a_waiting_worker_hands_on_a_wake_it_cannot_use() {
    // Worker A waits (in get) on a task of another pool; worker B idles.
    // The awaited task completes at the moment new work arrives. Whichever
    // worker the wake picks, the new work must run while A's task is still
    // blocked after its get() returned.
    for _ in 0..50 {
        let pool = Arc::new(ThreadPool::new(2).unwrap());
        let other = ThreadPool::new(1).unwrap();
        let release_inner = Gate::new();
        let hold_outer = Gate::new();
        let waiting = Signals::new();
        let g = release_inner.clone();
        let awaited = other.submit(move || {
            g.wait();
        });
        let (hold, tx) = (hold_outer.clone(), waiting.sender());
        let outer = pool.submit(move || {
            tx.send(()).unwrap();
            awaited.get().unwrap();
            hold.wait(); // stays busy after its get() returned
        });
        waiting.recv();
        std::thread::yield_now();
        release_inner.open();
        let job = pool.submit(|| 7);
        assert_eq!(job.get_timeout(LONG), Ok(7), "the job was slept through");
        hold_outer.open();
        outer.get_timeout(LONG).unwrap();
    }
}

#[test]
fn deep_nesting_on_two_threads() {
    fn chain(pool: Arc<ThreadPool>, depth: usize) -> usize {
        if depth == 0 {
            return 0;
        }
        let p = pool.clone();
        pool.submit(move || chain(p, depth - 1)).get().unwrap() + 1
    }
    let pool = Arc::new(
        ThreadPool::builder()
            .num_threads(2)
            .stack_size(64 << 20)
            .build()
            .unwrap(),
    );
    let p = pool.clone();
    assert_eq!(
        pool.submit(move || chain(p, 500)).get_timeout(LONG),
        Ok(500)
    );
}

#[test]
fn many_outside_submitters_every_result_exactly_once() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let sum = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (p, sum) = (pool.clone(), sum.clone());
            std::thread::spawn(move || {
                let hs: Vec<_> = (0..2_000)
                    .map(|i| p.submit(move || t * 10_000 + i))
                    .collect();
                for (i, h) in hs.into_iter().enumerate() {
                    assert_eq!(h.get_timeout(LONG), Ok(t * 10_000 + i));
                    sum.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(sum.load(Ordering::Relaxed), 8_000);
}

#[test]
fn the_global_pool() {
    let g = futurepool::global();
    assert_eq!(g.num_threads(), num_cpus::get());
    assert!(std::ptr::eq(g, futurepool::global()));
    assert_eq!(futurepool::submit(|| 2 + 3).get_timeout(LONG), Ok(5));
    let name = g
        .apply(|| std::thread::current().name().unwrap().to_string())
        .unwrap();
    assert!(name.starts_with("futurepool"), "{name}");
}
