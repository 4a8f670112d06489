//! as_completed and wait/ReturnWhen: completion order, already-done first,
//! cancelled handles, timeouts, and waiting from inside a worker. Every
//! wait is bounded; order is proven with gates, not sleeps.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use futurepool::{as_completed, wait, AsyncResult, ReturnWhen, TaskError, ThreadPool};

const LONG: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(20);

/// A task that returns `value` once its gate is opened.
fn gated<T: Send + 'static>(pool: &ThreadPool, value: T) -> (AsyncResult<T>, Sender<()>) {
    let (tx, rx): (Sender<()>, Receiver<()>) = channel();
    let h = pool.submit(move || {
        rx.recv_timeout(LONG).expect("gate never opened");
        value
    });
    (h, tx)
}

fn gated_panic(pool: &ThreadPool, msg: &'static str) -> (AsyncResult<u32>, Sender<()>) {
    let (tx, rx): (Sender<()>, Receiver<()>) = channel();
    let h = pool.submit(move || -> u32 {
        rx.recv_timeout(LONG).expect("gate never opened");
        panic!("{msg}")
    });
    (h, tx)
}

// ---- as_completed -----------------------------------------------------------------

#[test]
fn as_completed_yields_in_completion_order() {
    let pool = ThreadPool::new(3).unwrap();
    let (a, ga) = gated(&pool, 'a');
    let (b, gb) = gated(&pool, 'b');
    let (c, gc) = gated(&pool, 'c');
    let mut it = as_completed(vec![a, b, c]);
    assert_eq!(it.len(), 3);
    assert_eq!(it.next_timeout(SHORT), Err(TaskError::Timeout));
    gc.send(()).unwrap();
    assert_eq!(it.next_timeout(LONG), Ok(Some((2, Ok('c')))));
    ga.send(()).unwrap();
    assert_eq!(it.next_timeout(LONG), Ok(Some((0, Ok('a')))));
    gb.send(()).unwrap();
    assert_eq!(it.next_timeout(LONG), Ok(Some((1, Ok('b')))));
    assert_eq!(it.next_timeout(LONG), Ok(None));
    assert_eq!(it.next(), None);
}

#[test]
fn as_completed_yields_already_done_handles_first_in_input_order() {
    let pool = ThreadPool::new(2).unwrap();
    let (slow, gate) = gated(&pool, 0);
    let quick1 = pool.submit(|| 1);
    let quick2 = pool.submit(|| 2);
    assert!(quick1.wait_timeout(LONG) && quick2.wait_timeout(LONG));
    let mut it = as_completed(vec![slow, quick2, quick1]);
    assert_eq!(it.next_timeout(LONG), Ok(Some((1, Ok(2)))));
    assert_eq!(it.next_timeout(LONG), Ok(Some((2, Ok(1)))));
    assert_eq!(it.next_timeout(SHORT), Err(TaskError::Timeout));
    gate.send(()).unwrap();
    assert_eq!(it.next_timeout(LONG), Ok(Some((0, Ok(0)))));
}

#[test]
fn as_completed_sees_a_cancelled_handle_at_once_and_panics_as_errors() {
    let pool = ThreadPool::new(1).unwrap();
    let (blocker, gate) = gated(&pool, 7u32);
    let queued = pool.submit(|| 8u32);
    assert!(queued.cancel());
    let other = ThreadPool::new(1).unwrap();
    let (boom, boom_gate) = gated_panic(&other, "boom");
    let mut it = as_completed(vec![blocker, queued, boom]);
    assert_eq!(
        it.next_timeout(LONG),
        Ok(Some((1, Err(TaskError::Cancelled))))
    );
    boom_gate.send(()).unwrap();
    let (i, r) = it.next_timeout(LONG).unwrap().unwrap();
    assert_eq!(i, 2);
    assert_eq!(r.unwrap_err().panic_message(), Some("boom"));
    gate.send(()).unwrap();
    assert_eq!(it.next_timeout(LONG), Ok(Some((0, Ok(7)))));
}

#[test]
fn as_completed_of_nothing_ends_at_once() {
    let mut it = as_completed(Vec::<AsyncResult<u8>>::new());
    assert_eq!(it.next(), None);
}

#[test]
fn as_completed_over_ten_thousand_handles() {
    let pool = ThreadPool::new(2).unwrap();
    let (gate_tx, gate_rx) = channel::<()>();
    let gate_rx = Arc::new(Mutex::new(gate_rx));
    let (started_tx, started_rx) = channel::<()>();
    // Both workers are held, so all 10,000 are pending when we start.
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let g = gate_rx.clone();
            let started = started_tx.clone();
            pool.submit(move || {
                started.send(()).unwrap();
                g.lock().unwrap().recv_timeout(LONG).unwrap();
            })
        })
        .collect();
    for _ in 0..2 {
        started_rx.recv_timeout(LONG).unwrap();
    }
    let handles: Vec<_> = (0..10_000u32).map(|i| pool.submit(move || i)).collect();
    let (tx, rx) = channel();
    let waiter = thread::spawn(move || {
        let mut seen = vec![false; 10_000];
        for (i, r) in as_completed(handles) {
            assert_eq!(r, Ok(i as u32));
            assert!(!seen[i], "index {i} twice");
            seen[i] = true;
        }
        tx.send(seen.iter().all(|&s| s)).unwrap();
    });
    assert!(rx.recv_timeout(SHORT).is_err(), "nothing can finish yet");
    gate_tx.send(()).unwrap();
    gate_tx.send(()).unwrap();
    assert_eq!(rx.recv_timeout(LONG), Ok(true));
    waiter.join().unwrap();
    for h in holders {
        h.get_timeout(LONG).unwrap();
    }
}

#[test]
fn dropping_as_completed_early_leaves_the_handles_fine() {
    let pool = ThreadPool::new(2).unwrap();
    let (slow, gate) = gated(&pool, 1);
    let fast = pool.submit(|| 2);
    let mut it = as_completed(vec![slow, fast]);
    assert_eq!(it.next_timeout(LONG), Ok(Some((1, Ok(2)))));
    drop(it);
    gate.send(()).unwrap();
    pool.join();
}

// ---- wait -------------------------------------------------------------------------

#[test]
fn wait_first_completed_returns_the_one_that_finished() {
    let pool = ThreadPool::new(3).unwrap();
    let (a, _ga) = gated(&pool, 0);
    let (b, gb) = gated(&pool, 1);
    let (c, _gc) = gated(&pool, 2);
    let handles = vec![a, b, c];
    gb.send(()).unwrap();
    let (done, not_done) = wait(&handles, Some(LONG), ReturnWhen::FirstCompleted);
    assert_eq!(done, [1]);
    assert_eq!(not_done, [0, 2]);
    // Values are untouched by wait.
    assert_eq!(handles[1].get_timeout(LONG), Ok(1));
}

#[test]
fn wait_all_completed() {
    let pool = ThreadPool::new(2).unwrap();
    let handles: Vec<_> = (0..50u32).map(|i| pool.submit(move || i)).collect();
    let (done, not_done) = wait(&handles, Some(LONG), ReturnWhen::AllCompleted);
    assert_eq!(done, (0..50).collect::<Vec<_>>());
    assert!(not_done.is_empty());
}

#[test]
fn wait_first_exception_returns_on_the_first_failure() {
    let pool = ThreadPool::new(3).unwrap();
    let (a, _ga) = gated(&pool, 0u32);
    let (b, gb) = gated_panic(&pool, "bad");
    let (c, _gc) = gated(&pool, 2u32);
    let handles = vec![a, b, c];
    gb.send(()).unwrap();
    let (done, not_done) = wait(&handles, Some(LONG), ReturnWhen::FirstException);
    assert_eq!(done, [1]);
    assert_eq!(not_done, [0, 2]);
}

#[test]
fn wait_first_exception_without_failures_is_all_completed() {
    let pool = ThreadPool::new(2).unwrap();
    let (a, ga) = gated(&pool, 0u32);
    let (b, gb) = gated(&pool, 1u32);
    let handles = vec![a, b];
    // Nothing failed and one is still held: not done yet.
    let (done, not_done) = wait(&handles, Some(SHORT), ReturnWhen::FirstException);
    assert!(done.is_empty());
    assert_eq!(not_done, [0, 1]);
    ga.send(()).unwrap();
    assert!(handles[0].wait_timeout(LONG));
    let (done, not_done) = wait(&handles, Some(SHORT), ReturnWhen::FirstException);
    assert_eq!(
        (done, not_done),
        (vec![0], vec![1]),
        "a success does not end it"
    );
    gb.send(()).unwrap();
    let (done, not_done) = wait(&handles, Some(LONG), ReturnWhen::FirstException);
    assert_eq!((done, not_done), (vec![0, 1], vec![]));
}

#[test]
fn wait_counts_a_cancelled_handle_as_done_but_not_as_an_exception() {
    let pool = ThreadPool::new(1).unwrap();
    let (blocker, gate) = gated(&pool, 0u32);
    let queued = pool.submit(|| 1u32);
    let handles = vec![blocker, queued];
    let (done, _) = wait(&handles, Some(Duration::ZERO), ReturnWhen::FirstCompleted);
    assert!(done.is_empty());
    assert!(handles[1].cancel());
    let (done, not_done) = wait(&handles, Some(LONG), ReturnWhen::FirstCompleted);
    assert_eq!((done, not_done), (vec![1], vec![0]));
    let (done, not_done) = wait(&handles, Some(SHORT), ReturnWhen::FirstException);
    assert_eq!((done, not_done), (vec![1], vec![0]));
    gate.send(()).unwrap();
    let (done, _) = wait(&handles, Some(LONG), ReturnWhen::AllCompleted);
    assert_eq!(done, [0, 1]);
}

#[test]
fn wait_times_out_without_panicking() {
    let pool = ThreadPool::new(1).unwrap();
    let (h, gate) = gated(&pool, ());
    let handles = [h];
    for when in [
        ReturnWhen::FirstCompleted,
        ReturnWhen::FirstException,
        ReturnWhen::AllCompleted,
    ] {
        assert_eq!(wait(&handles, Some(SHORT), when), (vec![], vec![0]));
        assert_eq!(
            wait(&handles, Some(Duration::ZERO), when),
            (vec![], vec![0])
        );
    }
    // A timeout too large for an Instant means no deadline, not a panic.
    gate.send(()).unwrap();
    assert_eq!(
        wait(&handles, Some(Duration::MAX), ReturnWhen::AllCompleted),
        (vec![0], vec![])
    );
}

#[test]
fn wait_on_nothing_returns_at_once() {
    let none: Vec<AsyncResult<u8>> = Vec::new();
    assert_eq!(
        wait(&none, None, ReturnWhen::AllCompleted),
        (vec![], vec![])
    );
    assert_eq!(
        wait(&none, None, ReturnWhen::FirstCompleted),
        (vec![], vec![])
    );
}

#[test]
fn wait_and_as_completed_inside_a_worker_run_the_pools_work() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let inner = pool.clone();
    let h = pool.submit(move || {
        let handles: Vec<_> = (0..5u32).map(|i| inner.submit(move || i)).collect();
        let (done, _) = wait(&handles, None, ReturnWhen::AllCompleted);
        let more: Vec<_> = (0..5u32).map(|i| inner.submit(move || i * 2)).collect();
        let total: u32 = as_completed(more).map(|(_, r)| r.unwrap()).sum();
        (done.len(), total)
    });
    assert_eq!(h.get_timeout(LONG), Ok((5, 20)));
}

#[test]
fn concurrent_waits_on_the_same_handles_do_not_steal_each_others_wakeups() {
    let pool = ThreadPool::new(1).unwrap();
    let (h, gate) = gated(&pool, 5u32);
    let handles = Arc::new(vec![h]);
    let (tx, rx) = channel();
    let hs = handles.clone();
    let patient = thread::spawn(move || {
        tx.send(wait(&hs, None, ReturnWhen::AllCompleted)).unwrap();
    });
    // Several impatient waits come and go (and deregister) meanwhile.
    for _ in 0..20 {
        assert_eq!(
            wait(
                &handles,
                Some(Duration::from_millis(1)),
                ReturnWhen::AllCompleted
            ),
            (vec![], vec![0])
        );
    }
    gate.send(()).unwrap();
    assert_eq!(rx.recv_timeout(LONG), Ok((vec![0], vec![])));
    patient.join().unwrap();
}
