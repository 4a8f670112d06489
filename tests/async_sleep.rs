//! futurepool::sleep: async tasks wait without holding a worker, wake in
//! deadline order, never early, and under any executor.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use futurepool::{sleep, sleep_until, ThreadPool};

#[test]
fn a_sleep_never_ends_before_its_deadline() {
    let pool = ThreadPool::new(2).unwrap();
    let handles: Vec<_> = [0u64, 1, 5, 15]
        .into_iter()
        .map(|ms| {
            pool.spawn_async(async move {
                let start = Instant::now();
                sleep(Duration::from_millis(ms)).await;
                (ms, start.elapsed())
            })
        })
        .collect();
    for h in handles {
        let (ms, elapsed) = h.get_timeout(LONG).unwrap();
        assert!(
            elapsed >= Duration::from_millis(ms),
            "{ms} ms sleep took {elapsed:?}"
        );
    }
}

#[test]
fn a_sleeping_task_does_not_hold_the_only_worker() {
    let pool = ThreadPool::new(1).unwrap();
    let sleeper = pool.spawn_async(async {
        sleep(Duration::from_secs(3600)).await;
    });
    // The single worker keeps serving other work while the task sleeps.
    for i in 0..20 {
        assert_eq!(pool.apply(move || i * 2), Ok(i * 2));
    }
    assert!(!sleeper.ready());
    assert!(sleeper.cancel());
    assert_eq!(
        sleeper.get_timeout(LONG),
        Err(futurepool::TaskError::Cancelled)
    );
}

#[test]
fn sleepers_wake_in_deadline_order() {
    // One worker: the timer wakes tasks in deadline order and each is
    // queued in that order behind the others.
    let pool = ThreadPool::new(1).unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let base = Instant::now() + Duration::from_millis(20);
    let handles: Vec<_> = [3u32, 1, 4, 0, 2]
        .into_iter()
        .map(|k| {
            let order = order.clone();
            pool.spawn_async(async move {
                sleep_until(base + Duration::from_millis(15 * k as u64)).await;
                order.lock().unwrap().push(k);
            })
        })
        .collect();
    for h in handles {
        h.get_timeout(LONG).unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
}

#[test]
fn sleep_works_under_block_on_and_other_executors() {
    let start = Instant::now();
    futurepool::block_on(sleep(Duration::from_millis(10)));
    assert!(start.elapsed() >= Duration::from_millis(10));
    let start = Instant::now();
    futures::executor::block_on(sleep(Duration::from_millis(10)));
    assert!(start.elapsed() >= Duration::from_millis(10));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let start = Instant::now();
    rt.block_on(sleep(Duration::from_millis(10)));
    assert!(start.elapsed() >= Duration::from_millis(10));
}

#[test]
fn a_sleep_as_a_timeout_in_a_select() {
    use futures::future::{select, Either};
    let pool = ThreadPool::new(2).unwrap();
    let gate = Gate::new();
    let g = gate.clone();
    let never = pool.submit(move || g.wait());
    let outcome = futurepool::block_on(async {
        match select(never, sleep(Duration::from_millis(10))).await {
            Either::Left(_) => "task",
            Either::Right((_, still_pending)) => {
                assert!(!still_pending.ready());
                "timeout"
            }
        }
    });
    assert_eq!(outcome, "timeout");
    gate.open();
}

#[test]
fn a_sleeping_task_keeps_a_closing_pool_alive_until_it_ends() {
    let pool = ThreadPool::new(1).unwrap();
    let h = pool.spawn_async(async {
        sleep(Duration::from_millis(20)).await;
        "woke after close"
    });
    within("join with a sleeping async task", move || pool.join());
    assert_eq!(h.get_timeout(LONG), Ok("woke after close"));
}

#[test]
fn cancelling_a_sleeping_task_ends_it_at_once() {
    let pool = ThreadPool::new(1).unwrap();
    let h = pool.spawn_async(async {
        sleep(Duration::from_secs(3600)).await;
    });
    // Let it start and suspend.
    while !h.running() && !h.ready() {
        std::thread::yield_now();
    }
    assert!(h.cancel());
    assert_eq!(h.get_timeout(LONG), Err(futurepool::TaskError::Cancelled));
    within("join after cancelling a sleeper", move || pool.join());
}
