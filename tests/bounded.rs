//! `Builder::max_queued`, blocking `submit` on a full queue, `try_submit`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{hold_workers, LONG};
use futurepool::{BuildErrorKind, Builder, TaskError, ThreadPool, TrySubmitError};

fn bounded(threads: usize, max: usize) -> ThreadPool {
    Builder::new()
        .num_threads(threads)
        .max_queued(max)
        .build()
        .unwrap()
}

#[test]
fn zero_is_a_build_error() {
    let err = Builder::new().max_queued(0).build().unwrap_err();
    assert_eq!(err.kind(), BuildErrorKind::InvalidConfig);
    assert!(err.to_string().contains("max_queued"));
}

#[test]
fn try_submit_on_a_full_queue_gives_the_closure_back() {
    let pool = bounded(1, 2);
    let held = hold_workers(&pool);
    let a = pool.try_submit(|| 1).unwrap();
    let b = pool.try_submit(|| 2).unwrap();
    let refused = pool.try_submit(|| 3).unwrap_err();
    assert!(refused.is_full());
    assert_eq!(refused.to_string(), "the pool's queue is full");
    assert_eq!(pool.stats().queued, 2);
    held.release();
    assert_eq!(a.get_timeout(LONG), Ok(1));
    assert_eq!(b.get_timeout(LONG), Ok(2));
    // Room again, and the refused closure was never lost.
    let f = refused.into_inner();
    assert_eq!(pool.try_submit(f).unwrap().get_timeout(LONG), Ok(3));
}

#[test]
fn try_submit_on_a_closed_pool_gives_the_closure_back() {
    let pool = bounded(1, 4);
    pool.close();
    match pool.try_submit(|| 5) {
        Err(TrySubmitError::Closed(f)) => assert_eq!(f(), 5),
        other => panic!("expected Closed, got {other:?}"),
    }
}

#[test]
fn an_unbounded_pool_is_never_full() {
    let pool = ThreadPool::new(1).unwrap();
    let held = hold_workers(&pool);
    let handles: Vec<_> = (0..1000)
        .map(|i| pool.try_submit(move || i).unwrap())
        .collect();
    held.release();
    let sum: i32 = handles
        .into_iter()
        .map(|h| h.get_timeout(LONG).unwrap())
        .sum();
    assert_eq!(sum, 499_500);
}

#[test]
fn submit_on_a_full_queue_blocks_until_a_worker_makes_room() {
    let pool = Arc::new(bounded(1, 1));
    let held = hold_workers(&pool);
    let first = pool.submit(|| 1); // takes the one place
    let (returned_tx, returned) = mpsc::channel();
    let submitter = {
        let pool = pool.clone();
        std::thread::spawn(move || {
            let h = pool.submit(|| 2);
            returned_tx.send(()).unwrap();
            h
        })
    };
    // Still full: the submitter must be waiting. (A wrong implementation
    // could pass this check by luck, never fail it by mistake.)
    assert!(returned.recv_timeout(Duration::from_millis(50)).is_err());
    held.release();
    returned.recv_timeout(LONG).unwrap();
    assert_eq!(first.get_timeout(LONG), Ok(1));
    assert_eq!(submitter.join().unwrap().get_timeout(LONG), Ok(2));
}

#[test]
fn closing_wakes_a_blocked_submitter_with_pool_closed() {
    let pool = Arc::new(bounded(1, 1));
    let held = hold_workers(&pool);
    let queued = pool.submit(|| 1);
    let submitter = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.submit(|| 2))
    };
    // Whether the submitter blocked before or after the close, it ends
    // with PoolClosed and never hangs.
    pool.close();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(submitter.join().unwrap()));
    let refused = rx.recv_timeout(LONG).unwrap();
    assert_eq!(refused.get_timeout(LONG), Err(TaskError::PoolClosed));
    held.release();
    assert_eq!(queued.get_timeout(LONG), Ok(1), "queued work still runs");
}

#[test]
fn a_task_submitting_to_its_own_full_pool_does_not_deadlock() {
    // One worker, one place: the task must make room by itself.
    let pool = Arc::new(bounded(1, 1));
    let inner = pool.clone();
    let outer = pool.submit(move || {
        let handles: Vec<_> = (0..50).map(|i| inner.submit(move || i)).collect();
        handles.into_iter().map(|h| h.get().unwrap()).sum::<i32>()
    });
    assert_eq!(outer.get_timeout(LONG), Ok(1225));
}

#[test]
fn many_producers_on_a_bounded_pool_lose_nothing() {
    let pool = Arc::new(bounded(2, 8));
    let done = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..4)
        .map(|_| {
            let (pool, done) = (pool.clone(), done.clone());
            std::thread::spawn(move || {
                for _ in 0..500 {
                    let done = done.clone();
                    pool.submit(move || done.fetch_add(1, Ordering::SeqCst));
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    assert!(pool.wait_idle_timeout(LONG));
    assert_eq!(done.load(Ordering::SeqCst), 2000);
    assert_eq!(pool.stats().queued, 0);
    assert_eq!(pool.stats().completed, 2000);
}

#[test]
fn terminate_frees_the_places_of_the_tasks_it_cancels() {
    let pool = bounded(1, 2);
    let held = hold_workers(&pool);
    let a = pool.submit(|| 1);
    let b = pool.submit(|| 2);
    assert!(pool.try_submit(|| 3).unwrap_err().is_full());
    pool.terminate();
    assert_eq!(a.get_timeout(LONG), Err(TaskError::Cancelled));
    assert_eq!(b.get_timeout(LONG), Err(TaskError::Cancelled));
    held.release();
    assert!(matches!(
        pool.try_submit(|| 4),
        Err(TrySubmitError::Closed(_))
    ));
}

#[test]
fn priorities_respect_the_bound_too() {
    let pool = bounded(1, 1);
    let held = hold_workers(&pool);
    let a = pool.submit_with_priority(3, || 1);
    assert!(pool.try_submit(|| 2).unwrap_err().is_full());
    held.release();
    assert_eq!(a.get_timeout(LONG), Ok(1));
}

/// A future that wakes itself while it is being polled is queued again;
/// that entry counts against the cap like any other, so once the future
/// is done the queue has exactly its `max_queued` places again.
#[test]
fn a_future_that_wakes_itself_leaves_the_count_right() {
    struct YieldN(u32);
    impl std::future::Future for YieldN {
        type Output = u32;
        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<u32> {
            if self.0 == 0 {
                return std::task::Poll::Ready(7);
            }
            self.0 -= 1;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
    let pool = bounded(1, 2);
    let handles: Vec<_> = (0..3).map(|_| pool.spawn_async(YieldN(50))).collect();
    for h in handles {
        assert_eq!(h.get_timeout(LONG), Ok(7));
    }
    assert!(pool.wait_idle_timeout(LONG));
    assert_eq!(pool.stats().queued, 0);
    // Exactly two places, as before.
    let held = hold_workers(&pool);
    let a = pool.try_submit(|| 1).expect("first place");
    let b = pool.try_submit(|| 2).expect("second place");
    assert!(pool.try_submit(|| 3).unwrap_err().is_full());
    held.release();
    assert_eq!((a.get_timeout(LONG), b.get_timeout(LONG)), (Ok(1), Ok(2)));
    // And a blocking submit does not block with nothing queued.
    let p = Arc::new(pool);
    let (tx, rx) = mpsc::channel();
    let q = p.clone();
    std::thread::spawn(move || tx.send(q.submit(|| 4).get_timeout(LONG)));
    assert_eq!(rx.recv_timeout(LONG), Ok(Ok(4)));
}

/// `map`/`map_async` chunks and `spawn_async` futures take places in the
/// queue like submissions: with the workers busy, a caller outside the
/// pool waits for room instead of queueing past the cap.
#[test]
fn map_chunks_and_async_tasks_respect_max_queued() {
    let pool = Arc::new(bounded(1, 2));
    let held = hold_workers(&pool);
    let (tx, rx) = mpsc::channel();
    let p = pool.clone();
    let mapper = std::thread::spawn(move || {
        let handle = p.map_async_chunked(|x: u32| x * 2, 0..150u32, 1);
        tx.send(()).unwrap();
        handle.get_timeout(LONG)
    });
    // The map fills the two places and waits for more.
    let deadline = std::time::Instant::now() + LONG;
    while pool.stats().queued < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the map queued nothing"
        );
        std::thread::yield_now();
    }
    assert!(
        rx.recv_timeout(Duration::from_millis(50)).is_err(),
        "map_async queued past the cap"
    );
    assert_eq!(pool.stats().queued, 2);
    held.release();
    rx.recv_timeout(LONG)
        .expect("map_async returned once there was room");
    let expected: Vec<u32> = (0..150).map(|x| x * 2).collect();
    assert_eq!(mapper.join().unwrap(), Ok(expected));

    let held = hold_workers(&pool);
    let (tx, rx) = mpsc::channel();
    let p = pool.clone();
    let spawner = std::thread::spawn(move || {
        let handles: Vec<_> = (0..5u32).map(|i| p.spawn_async(async move { i })).collect();
        tx.send(()).unwrap();
        handles
            .into_iter()
            .map(|h| h.get_timeout(LONG).unwrap())
            .sum::<u32>()
    });
    let deadline = std::time::Instant::now() + LONG;
    while pool.stats().queued < 2 {
        assert!(std::time::Instant::now() < deadline, "nothing spawned");
        std::thread::yield_now();
    }
    assert!(
        rx.recv_timeout(Duration::from_millis(50)).is_err(),
        "spawn_async queued past the cap"
    );
    assert_eq!(pool.stats().queued, 2);
    held.release();
    assert_eq!(spawner.join().unwrap(), 10);
}
