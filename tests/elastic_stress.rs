//! Stress for the grow/shrink protocol: submissions racing workers that
//! retire at their keep-alive, resizes, `blocking`, and the pool's end.
//! Every handle must resolve; no wait is unbounded.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{within, LONG};
use futurepool::{Builder, TaskError, ThreadPool};

#[test]
fn bursts_timed_to_the_keep_alive_never_lose_a_task() {
    let pool = Builder::new()
        .max_threads(4)
        .keep_alive(Duration::from_millis(1))
        .build()
        .unwrap();
    let mut total = 0;
    for round in 0..2000usize {
        let burst = round % 5 + 1;
        let handles: Vec<_> = (0..burst).map(|i| pool.submit(move || i)).collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.get_timeout(LONG), Ok(i), "round {round}");
            total += 1;
        }
        // Land the next burst around the moment idle workers retire.
        if round % 3 == 0 {
            std::thread::sleep(Duration::from_micros(500 + (round % 7) as u64 * 150));
        }
    }
    assert!(pool.stats().peak_threads <= 4);
    pool.wait_idle();
    assert_eq!(pool.stats().completed, total as u64);
}

#[test]
fn resizes_racing_submitters_never_lose_a_task() {
    let pool = Arc::new(
        Builder::new()
            .max_threads(4)
            .keep_alive(Duration::from_millis(2))
            .build()
            .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let resizer = {
        let (pool, stop) = (pool.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let max = i % 6 + 1;
                let _ = pool.set_min_threads(0);
                pool.set_max_threads(max).unwrap();
                let _ = pool.set_min_threads(i % 2);
                i += 1;
                std::thread::yield_now();
            }
        })
    };
    let done = Arc::new(AtomicUsize::new(0));
    let submitters: Vec<_> = (0..3)
        .map(|s| {
            let (pool, done) = (pool.clone(), done.clone());
            std::thread::spawn(move || {
                for round in 0..300 {
                    let handles: Vec<_> = (0..4)
                        .map(|i| {
                            let done = done.clone();
                            pool.submit(move || {
                                done.fetch_add(1, Ordering::Relaxed);
                                s * 10_000 + round * 10 + i
                            })
                        })
                        .collect();
                    for (i, h) in handles.into_iter().enumerate() {
                        assert_eq!(h.get_timeout(LONG), Ok(s * 10_000 + round * 10 + i));
                    }
                }
            })
        })
        .collect();
    for s in submitters {
        s.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    resizer.join().unwrap();
    assert_eq!(done.load(Ordering::Relaxed), 3 * 300 * 4);
    assert!(pool.stats().peak_threads <= 6);
}

#[test]
fn the_pool_ends_cleanly_while_it_grows() {
    for round in 0..150usize {
        let pool = Arc::new(
            Builder::new()
                .max_threads(8)
                .keep_alive(Duration::from_millis(1))
                .daemon(round % 4 == 3)
                .build()
                .unwrap(),
        );
        let p = pool.clone();
        let submitter = std::thread::spawn(move || {
            (0..40)
                .map(|i| {
                    p.submit(move || {
                        if i % 8 == 0 {
                            futurepool::blocking(|| std::thread::sleep(Duration::from_micros(200)));
                        }
                        i
                    })
                })
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_micros(100 * (round % 5) as u64));
        match round % 4 {
            0 => pool.close(),
            1 => pool.terminate(),
            2 => within("join during growth", {
                let pool = pool.clone();
                move || pool.join()
            }),
            _ => {}
        }
        let handles = submitter.join().unwrap();
        drop(pool);
        for (i, h) in handles.into_iter().enumerate() {
            match h.get_timeout(LONG) {
                Ok(v) => assert_eq!(v, i),
                Err(TaskError::PoolClosed) | Err(TaskError::Cancelled) => {}
                Err(e) => panic!("round {round}: task {i}: {e}"),
            }
        }
    }
}

#[test]
fn many_blocking_tasks_on_a_small_fixed_pool_all_run() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let handles: Vec<_> = (0..64)
        .map(|i| {
            let p = pool.clone();
            pool.submit(move || {
                let inner = futurepool::blocking(|| {
                    std::thread::sleep(Duration::from_millis(2));
                    // Submitting and waiting from inside `blocking`.
                    p.submit(move || i * 2).get_timeout(LONG).unwrap()
                });
                inner + 1
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.get_timeout(LONG), Ok(i * 2 + 1));
    }
    assert!(pool.stats().peak_threads > 2);
    assert!(pool.stats().peak_threads <= 2 + 512);
}
