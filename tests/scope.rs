//! pool.scope: tasks borrowing the caller's stack, joined before scope
//! returns, even when the body or a task panics; nested spawns and scopes;
//! closed and terminated pools. Every wait is bounded.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use futurepool::{TaskError, ThreadPool};

const LONG: Duration = Duration::from_secs(10);

fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(LONG).expect("timed out: the call hung")
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn tasks_borrow_and_mutate_the_callers_data() {
    let pool = ThreadPool::new(4).unwrap();
    let mut data: Vec<u64> = (0..1000).collect();
    let offset = 5u64; // borrowed by every task
    pool.scope(|s| {
        for chunk in data.chunks_mut(64) {
            s.spawn(|| {
                for x in chunk.iter_mut() {
                    *x = *x * 2 + offset;
                }
            });
        }
    });
    // Every task has finished: all writes are visible and `data` is ours.
    assert!(data.iter().enumerate().all(|(i, &x)| x == i as u64 * 2 + 5));
    data.push(1); // mutable again after the scope
}

#[test]
fn scope_returns_only_after_every_task_finished() {
    let pool = ThreadPool::new(2).unwrap();
    let (tx, rx) = channel::<()>();
    let rx = Mutex::new(rx);
    let mut slot = None;
    let opener = thread::spawn(move || {
        // Whenever this runs, the scope below cannot have returned yet.
        tx.send(()).unwrap();
    });
    pool.scope(|s| {
        s.spawn(|| {
            rx.lock().unwrap().recv_timeout(LONG).unwrap();
            slot = Some("written by the task");
        });
    });
    assert_eq!(slot, Some("written by the task"));
    opener.join().unwrap();
}

#[test]
fn handles_return_values() {
    let pool = ThreadPool::new(2).unwrap();
    let words = ["a", "bb", "ccc"];
    let lens = pool.scope(|s| {
        let hs: Vec<_> = words.iter().map(|w| s.spawn(move || w.len())).collect();
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(lens, [1, 2, 3]);
}

#[test]
fn a_panicking_task_is_still_joined_and_its_panic_propagates() {
    let pool = ThreadPool::new(2).unwrap();
    let finished = AtomicUsize::new(0);
    let (tx, rx) = channel::<()>();
    let rx = Mutex::new(rx);
    let r = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            s.spawn(|| -> () { panic!("task went wrong") });
            s.spawn(|| {
                rx.lock().unwrap().recv_timeout(LONG).unwrap();
                finished.fetch_add(1, Ordering::SeqCst);
            });
            tx.send(()).unwrap();
        })
    }));
    let payload = r.unwrap_err();
    let msg = panic_message(payload.as_ref());
    assert!(msg.contains("task went wrong"), "{msg}");
    assert_eq!(
        finished.load(Ordering::SeqCst),
        1,
        "the other task was joined"
    );
    assert_eq!(pool.apply(|| 3), Ok(3), "the pool is fine");
}

#[test]
fn a_joined_panic_is_not_raised_again() {
    let pool = ThreadPool::new(1).unwrap();
    let v = pool.scope(|s| {
        let h = s.spawn(|| -> u8 { panic!("seen") });
        h.join().unwrap_err().panic_message().map(str::to_owned)
    });
    assert_eq!(v.as_deref(), Some("seen"));
}

#[test]
fn a_panicking_body_still_joins_its_tasks_then_resumes_its_panic() {
    let pool = ThreadPool::new(2).unwrap();
    let finished = AtomicUsize::new(0);
    let (tx, rx) = channel::<()>();
    let rx = Mutex::new(rx);
    let opener = thread::spawn(move || tx.send(()).unwrap());
    let r = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            s.spawn(|| {
                rx.lock().unwrap().recv_timeout(LONG).unwrap();
                finished.fetch_add(1, Ordering::SeqCst);
            });
            panic!("body went wrong");
        })
    }));
    assert_eq!(panic_message(r.unwrap_err().as_ref()), "body went wrong");
    assert_eq!(finished.load(Ordering::SeqCst), 1);
    opener.join().unwrap();
}

#[test]
fn tasks_spawn_more_tasks_in_the_same_scope() {
    let pool = ThreadPool::new(2).unwrap();
    let count = AtomicUsize::new(0);
    pool.scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                count.fetch_add(1, Ordering::SeqCst);
                for _ in 0..4 {
                    s.spawn(|| {
                        count.fetch_add(1, Ordering::SeqCst);
                        s.spawn(|| count.fetch_add(1, Ordering::SeqCst));
                    });
                }
            });
        }
    });
    assert_eq!(count.load(Ordering::SeqCst), 4 + 16 + 16);
}

#[test]
fn nested_scopes_in_a_one_thread_pool_do_not_deadlock() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let p = pool.clone();
    let total = bounded(move || {
        let mut sums = [0u64; 3];
        p.scope(|s| {
            for (i, sum) in sums.iter_mut().enumerate() {
                let p = &p;
                s.spawn(move || {
                    let mut parts = [0u64; 4];
                    p.scope(|inner| {
                        for (j, part) in parts.iter_mut().enumerate() {
                            inner.spawn(move || *part = (i * 10 + j) as u64);
                        }
                    });
                    *sum = parts.iter().sum();
                });
            }
        });
        sums.iter().sum::<u64>()
    });
    assert_eq!(total, (0..3u64).map(|i| 40 * i + 6).sum());
}

#[test]
fn scope_inside_a_task_borrows_the_tasks_stack() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let p = pool.clone();
    let h = pool.submit(move || {
        let mut v = vec![1u32; 100];
        p.scope(|s| {
            for c in v.chunks_mut(10) {
                s.spawn(move || c.iter_mut().for_each(|x| *x += 1));
            }
        });
        v.iter().sum::<u32>()
    });
    assert_eq!(h.get_timeout(LONG), Ok(200));
}

#[test]
fn on_a_closed_pool_tasks_do_not_run_and_the_scope_returns() {
    let pool = ThreadPool::new(1).unwrap();
    pool.close();
    let ran = AtomicUsize::new(0);
    let r = pool.scope(|s| s.spawn(|| ran.fetch_add(1, Ordering::SeqCst)).join());
    assert_eq!(r, Err(TaskError::PoolClosed));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

/// Counts its drops into borrowed data: proves a cancelled task's closure
/// is dropped before the scope returns (while the borrow is still valid).
struct DropCounter<'a>(&'a AtomicUsize);

impl Drop for DropCounter<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn terminate_cancels_queued_scoped_tasks_and_drops_them_before_returning() {
    let pool = ThreadPool::new(1).unwrap();
    let dropped = AtomicUsize::new(0);
    let ran = AtomicUsize::new(0);
    let (started_tx, started_rx) = channel::<()>();
    let (gate_tx, gate_rx) = channel::<()>();
    let gate_rx = Mutex::new(gate_rx);
    let results = pool.scope(|s| {
        let blocker = s.spawn(|| {
            started_tx.send(()).unwrap();
            gate_rx.lock().unwrap().recv_timeout(LONG).unwrap();
        });
        let queued: Vec<_> = (0..5)
            .map(|_| {
                let counter = DropCounter(&dropped);
                let ran = &ran;
                s.spawn(move || {
                    let _keep = &counter;
                    ran.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        started_rx.recv_timeout(LONG).unwrap();
        pool.terminate();
        gate_tx.send(()).unwrap();
        blocker.join().unwrap();
        queued.into_iter().map(|h| h.join()).collect::<Vec<_>>()
    });
    assert!(results.iter().all(|r| r == &Err(TaskError::Cancelled)));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(dropped.load(Ordering::SeqCst), 5);
}

#[test]
fn a_result_not_joined_is_dropped_before_the_scope_returns() {
    let pool = ThreadPool::new(2).unwrap();
    let dropped = AtomicUsize::new(0);
    pool.scope(|s| {
        for _ in 0..8 {
            s.spawn(|| DropCounter(&dropped));
        }
    });
    assert_eq!(dropped.load(Ordering::SeqCst), 8);
}
