//! Cooperative cancellation: `submit_cancellable`, `submit_with_token` and
//! `CancelToken`. Every wait is bounded; order is proven with channels.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use futurepool::{CancelToken, TaskError, ThreadPool};

const BOUND: Duration = Duration::from_secs(10);

#[test]
fn cancelling_a_running_task_sets_its_token_and_the_handle_ends_cancelled() {
    let pool = ThreadPool::new(2).unwrap();
    let (started_tx, started) = mpsc::channel();
    let saw_token = Arc::new(AtomicBool::new(false));
    let saw = saw_token.clone();
    let handle = pool.submit_cancellable(move |token: CancelToken| {
        started_tx.send(()).unwrap();
        // Bounded: a missed cancellation fails the test instead of hanging.
        for _ in 0..10_000 {
            if token.wait_timeout(Duration::from_millis(1)) {
                saw.store(true, Ordering::SeqCst);
                return 1;
            }
        }
        2
    });
    started.recv_timeout(BOUND).unwrap();
    assert!(handle.running());
    // The return value races with the task: false while it still runs,
    // true if it already saw the token and ended cancelled.
    let _ = handle.cancel();
    assert_eq!(handle.get_timeout(BOUND), Err(TaskError::Cancelled));
    assert!(handle.cancelled());
    assert_eq!(handle.successful(), Some(false));
    assert!(saw_token.load(Ordering::SeqCst), "the task saw its token");
}

#[test]
fn cancelling_before_start_means_it_never_runs_and_its_closure_is_dropped() {
    let pool = ThreadPool::new(1).unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let blocker = pool.submit(move || {
        started_tx.send(()).unwrap();
        gate.recv().unwrap()
    });
    started.recv_timeout(BOUND).unwrap();
    let captured = Arc::new(());
    let held = captured.clone();
    let ran = Arc::new(AtomicBool::new(false));
    let ran2 = ran.clone();
    let handle = pool.submit_cancellable(move |_token: CancelToken| {
        let _held = held;
        ran2.store(true, Ordering::SeqCst);
    });
    assert!(handle.cancel());
    assert!(handle.ready());
    assert_eq!(Arc::strong_count(&captured), 1, "closure released at once");
    release.send(()).unwrap();
    blocker.get_timeout(BOUND).unwrap();
    pool.join();
    assert!(!ran.load(Ordering::SeqCst));
    assert_eq!(handle.get(), Err(TaskError::Cancelled));
}

#[test]
fn an_uncancelled_task_returns_its_value() {
    let pool = ThreadPool::new(2).unwrap();
    let handle = pool.submit_cancellable(
        |token: CancelToken| {
            if token.is_cancelled() {
                0
            } else {
                42
            }
        },
    );
    assert_eq!(handle.get_timeout(BOUND), Ok(42));
}

/// Counts drops, to prove a value returned after cancellation is dropped.
struct Tracked(Arc<AtomicUsize>);
impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_value_returned_after_cancellation_is_dropped_and_the_handle_says_cancelled() {
    let pool = ThreadPool::new(2).unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let drops2 = drops.clone();
    let (started_tx, started) = mpsc::channel();
    let (cancelled_tx, cancelled) = mpsc::channel::<()>();
    // This task ignores its token: it waits for the test, then returns.
    let handle = pool.submit_cancellable(move |_token: CancelToken| {
        started_tx.send(()).unwrap();
        cancelled.recv().unwrap();
        Tracked(drops2)
    });
    started.recv_timeout(BOUND).unwrap();
    assert!(!handle.cancel());
    cancelled_tx.send(()).unwrap();
    assert!(matches!(
        handle.get_timeout(BOUND),
        Err(TaskError::Cancelled)
    ));
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_panic_wins_over_cancellation() {
    let pool = ThreadPool::new(1).unwrap();
    let (started_tx, started) = mpsc::channel();
    let handle = pool.submit_cancellable(move |token: CancelToken| -> () {
        started_tx.send(()).unwrap();
        for _ in 0..10_000 {
            if token.wait_timeout(Duration::from_millis(1)) {
                panic!("stopping badly");
            }
        }
    });
    started.recv_timeout(BOUND).unwrap();
    handle.cancel();
    let err = handle.get_timeout(BOUND).unwrap_err();
    assert_eq!(err.panic_message(), Some("stopping badly"));
}

#[test]
fn one_shared_token_stops_a_group() {
    let pool = ThreadPool::new(3).unwrap();
    let stop = CancelToken::new();
    let (started_tx, started) = mpsc::channel();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let started_tx = started_tx.clone();
            pool.submit_with_token(stop.clone(), move |token: CancelToken| {
                started_tx.send(()).unwrap();
                for _ in 0..10_000 {
                    if token.wait_timeout(Duration::from_millis(1)) {
                        return;
                    }
                }
            })
        })
        .collect();
    for _ in 0..3 {
        started.recv_timeout(BOUND).unwrap();
    }
    stop.cancel();
    for h in handles {
        assert_eq!(h.get_timeout(BOUND), Err(TaskError::Cancelled));
    }
}

#[test]
fn cancelling_one_handle_cancels_its_shared_token() {
    let pool = ThreadPool::new(2).unwrap();
    let stop = CancelToken::new();
    let (release, gate) = mpsc::channel::<()>();
    let first = pool.submit_with_token(stop.clone(), move |_t: CancelToken| {
        let _ = gate.recv();
    });
    first.cancel(); // whether or not it had started yet
    assert!(stop.is_cancelled());
    let _ = release.send(()); // the task may never have run
    assert_eq!(first.get_timeout(BOUND), Err(TaskError::Cancelled));
}

#[test]
fn cancelling_a_finished_task_changes_nothing() {
    let pool = ThreadPool::new(1).unwrap();
    let token = CancelToken::new();
    let handle = pool.submit_with_token(token.clone(), |_t: CancelToken| 7);
    assert!(handle.wait_timeout(BOUND));
    assert!(!handle.cancel());
    assert!(
        !token.is_cancelled(),
        "a done task's shared token is left alone"
    );
    assert_eq!(handle.get(), Ok(7));
}

#[test]
fn a_worker_waiting_on_a_cancellable_task_runs_it_itself() {
    // One worker: the outer task's get() must run the inner task inline.
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let inner_pool = pool.clone();
    let outer = pool.submit(move || {
        inner_pool
            .submit_cancellable(|token: CancelToken| !token.is_cancelled())
            .get()
    });
    assert_eq!(outer.get_timeout(BOUND), Ok(Ok(true)));
}

#[test]
fn wait_timeout_returns_at_once_once_cancelled() {
    let token = CancelToken::new();
    let sleeper = token.clone();
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || tx.send(sleeper.wait_timeout(Duration::from_secs(3600))));
    token.cancel();
    assert_eq!(rx.recv_timeout(BOUND), Ok(true));
    t.join().unwrap().unwrap();
    assert!(token.wait_timeout(Duration::from_secs(3600)));
}
