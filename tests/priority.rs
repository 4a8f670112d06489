//! `submit_with_priority`: higher priorities are taken first among queued
//! outside work, oldest first among equals. Order is proven by holding
//! the only worker with a gate while the queue fills.

mod common;

use std::sync::{Arc, Mutex};

use common::{hold_workers, LONG};
use futurepool::{TaskError, ThreadPool};

#[test]
fn queued_prioritized_tasks_start_highest_first_and_fifo_among_equals() {
    let pool = ThreadPool::new(1).unwrap();
    let held = hold_workers(&pool);
    let order = Arc::new(Mutex::new(Vec::new()));
    // A fixed shuffle of priorities, with repeats to check FIFO ties.
    let priorities = [3, -1, 7, 3, 0, 7, -5, 3, 1, 0, 7, -1];
    let handles: Vec<_> = priorities
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let order = order.clone();
            pool.submit_with_priority(p, move || order.lock().unwrap().push((p, i)))
        })
        .collect();
    held.release();
    for h in handles {
        h.get_timeout(LONG).unwrap();
    }
    let mut expected: Vec<(i32, usize)> = priorities.iter().copied().zip(0..).collect();
    expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    assert_eq!(*order.lock().unwrap(), expected);
}

#[test]
fn plain_submissions_count_as_priority_zero() {
    let pool = ThreadPool::new(1).unwrap();
    let held = hold_workers(&pool);
    let order = Arc::new(Mutex::new(Vec::new()));
    let push = |name: &'static str| {
        let order = order.clone();
        move || order.lock().unwrap().push(name)
    };
    let handles = vec![
        pool.submit(push("plain-a")),
        pool.submit_with_priority(-5, push("low")),
        pool.submit_with_priority(5, push("high")),
        pool.submit_with_priority(0, push("zero")),
        pool.submit(push("plain-b")),
    ];
    held.release();
    for h in handles {
        h.get_timeout(LONG).unwrap();
    }
    assert_eq!(
        *order.lock().unwrap(),
        ["high", "plain-a", "plain-b", "zero", "low"]
    );
}

#[test]
fn many_threads_submitting_with_priorities_lose_nothing() {
    let pool = Arc::new(ThreadPool::new(3).unwrap());
    let submitters: Vec<_> = (0..4)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                (0..500)
                    .map(|i| {
                        let n = t * 1000 + i;
                        pool.submit_with_priority(i % 7 - 3, move || n)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut sum = 0;
    for s in submitters {
        for h in s.join().unwrap() {
            sum += h.get_timeout(LONG).unwrap();
        }
    }
    let expected: i32 = (0..4)
        .map(|t| (0..500).map(|i| t * 1000 + i).sum::<i32>())
        .sum();
    assert_eq!(sum, expected);
}

#[test]
fn terminate_cancels_queued_prioritized_tasks() {
    let pool = ThreadPool::new(1).unwrap();
    let held = hold_workers(&pool);
    let queued = pool.submit_with_priority(9, || 1);
    pool.terminate();
    assert_eq!(queued.get_timeout(LONG), Err(TaskError::Cancelled));
    held.release();
    assert_eq!(
        pool.submit_with_priority(1, || 2).get_timeout(LONG),
        Err(TaskError::PoolClosed)
    );
    pool.join();
    assert_eq!(pool.stats().cancelled, 1);
}

#[test]
fn close_still_runs_queued_prioritized_tasks() {
    let pool = ThreadPool::new(1).unwrap();
    let held = hold_workers(&pool);
    let queued = pool.submit_with_priority(-3, || "ran");
    pool.close();
    held.release();
    pool.join();
    assert_eq!(queued.get(), Ok("ran"));
}

#[test]
fn a_queued_prioritized_task_can_be_cancelled() {
    let pool = ThreadPool::new(1).unwrap();
    let held = hold_workers(&pool);
    let doomed = pool.submit_with_priority(4, || ());
    let kept = pool.submit_with_priority(4, || "kept");
    assert!(doomed.cancel());
    held.release();
    assert_eq!(kept.get_timeout(LONG), Ok("kept"));
    assert_eq!(doomed.get(), Err(TaskError::Cancelled));
    pool.wait_idle();
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.cancelled, stats.queued), (2, 1, 0));
}
