//! `ThreadPool::stats` and `wait_idle`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use futurepool::{CancelToken, ThreadPool};

const BOUND: Duration = Duration::from_secs(10);

#[test]
fn counts_completed_panicked_and_cancelled_tasks() {
    let pool = ThreadPool::new(1).unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    pool.submit(move || {
        started_tx.send(()).unwrap();
        let _ = gate.recv();
    });
    started.recv_timeout(BOUND).unwrap();
    let s = pool.stats();
    assert_eq!((s.running, s.queued), (1, 0));
    for i in 0..6 {
        pool.submit(move || {
            if i % 3 == 0 {
                panic!("task {i}")
            }
        });
    }
    let doomed = pool.submit(|| ());
    assert!(doomed.cancel());
    assert_eq!(
        pool.stats().queued,
        7,
        "a cancelled entry waits to be discarded"
    );
    release.send(()).unwrap();
    assert!(pool.wait_idle_timeout(BOUND));
    let s = pool.stats();
    assert_eq!(
        (s.completed, s.panicked, s.cancelled, s.queued, s.running),
        (5, 2, 1, 0, 0)
    );
}

#[test]
fn counts_cooperative_cancellations_and_terminated_tasks() {
    let pool = ThreadPool::new(1).unwrap();
    let (started_tx, started) = mpsc::channel();
    let coop = pool.submit_cancellable(move |t: CancelToken| {
        started_tx.send(()).unwrap();
        while !t.wait_timeout(Duration::from_millis(1)) {}
    });
    started.recv_timeout(BOUND).unwrap();
    let queued: Vec<_> = (0..3).map(|_| pool.submit(|| ())).collect();
    // Terminate first: cancelling the running task first would free the
    // worker to run the queued ones.
    pool.terminate();
    coop.cancel();
    for h in queued {
        assert!(h.get_timeout(BOUND).unwrap_err().is_cancelled());
    }
    assert!(coop.get_timeout(BOUND).unwrap_err().is_cancelled());
    pool.join();
    let s = pool.stats();
    assert_eq!((s.cancelled, s.completed, s.queued), (4, 0, 0));
}

#[test]
fn counts_steals() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let inner = pool.clone();
    let outer = pool.submit(move || {
        let me = std::thread::current().id();
        let (tx, rx) = mpsc::channel();
        // Queued on this worker's own deque; this worker then blocks in
        // recv (not get, which would run it here), so only the other worker
        // can run it, by stealing it.
        inner.submit(move || tx.send(std::thread::current().id()).unwrap());
        rx.recv_timeout(BOUND).map(|id| id != me)
    });
    assert_eq!(outer.get_timeout(BOUND), Ok(Ok(true)));
    assert!(pool.stats().stolen >= 1);
}

#[test]
fn wait_idle_waits_for_nested_work_and_keeps_the_pool_open() {
    let pool = Arc::new(ThreadPool::new(3).unwrap());
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..20 {
        let (inner, done) = (pool.clone(), done.clone());
        pool.submit(move || {
            for _ in 0..5 {
                let done = done.clone();
                inner.submit(move || {
                    std::thread::sleep(Duration::from_micros(200));
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
            done.fetch_add(1, Ordering::SeqCst);
        });
    }
    assert!(pool.wait_idle_timeout(BOUND));
    assert_eq!(done.load(Ordering::SeqCst), 120);
    assert_eq!(pool.submit(|| 1).get_timeout(BOUND), Ok(1));
    assert!(!pool.is_closed());
}

#[test]
fn wait_idle_timeout_reports_a_busy_pool() {
    let pool = ThreadPool::new(1).unwrap();
    let (release, gate) = mpsc::channel::<()>();
    pool.submit(move || {
        let _ = gate.recv();
    });
    assert!(!pool.wait_idle_timeout(Duration::from_millis(20)));
    release.send(()).unwrap();
    assert!(pool.wait_idle_timeout(BOUND));
}

#[test]
fn wait_idle_on_a_worker_runs_the_queue_itself() {
    // One worker: it must run the queued tasks itself, then return.
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let inner = pool.clone();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    let outer = pool.submit(move || {
        for i in 0..10 {
            let log = log2.clone();
            inner.submit(move || log.lock().unwrap().push(i));
        }
        inner.wait_idle();
        log2.lock().unwrap().len()
    });
    assert_eq!(outer.get_timeout(BOUND), Ok(10));
    assert_eq!(log.lock().unwrap().len(), 10);
}

#[test]
fn wait_idle_does_not_wait_for_timers_that_have_not_fired() {
    let pool = ThreadPool::new(2).unwrap();
    let later = pool.submit_after(Duration::from_secs(3600), || ());
    pool.submit(|| ());
    assert!(pool.wait_idle_timeout(BOUND));
    assert_eq!(pool.stats().scheduled, 1);
    later.cancel();
}

#[test]
fn wait_idle_from_many_threads_at_once() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    for i in 0..200u64 {
        pool.submit(move || std::hint::black_box(i * i));
    }
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || pool.wait_idle_timeout(BOUND))
        })
        .collect();
    for w in waiters {
        assert!(w.join().unwrap());
    }
    assert_eq!(pool.stats().completed, 200);
}

#[test]
fn wait_idle_after_close_returns_once_the_work_is_done() {
    let pool = ThreadPool::new(2).unwrap();
    let h = pool.submit(|| 3);
    pool.close();
    assert!(pool.wait_idle_timeout(BOUND));
    assert_eq!(h.get(), Ok(3));
}

/// An async task suspended (here on `futurepool::sleep`, which holds no
/// worker) is not done, so the pool is not idle: `wait_idle` returns only
/// once its handle is ready, however it ends (value, cancelled off the
/// pool, abandoned). And right after `wait_idle`, `idle_workers` says
/// every worker.
#[test]
fn wait_idle_waits_for_suspended_async_tasks_and_idle_workers_agree() {
    let pool = ThreadPool::new(2).unwrap();
    for round in 0..20 {
        let slept = pool.spawn_async(async {
            futurepool::sleep(Duration::from_millis(2)).await;
            1
        });
        assert!(pool.wait_idle_timeout(BOUND));
        assert!(slept.ready(), "round {round}: wait_idle returned early");
        assert_eq!(pool.stats().idle_workers, 2, "round {round}");
        assert_eq!(slept.get_timeout(BOUND), Ok(1));
    }
    // Cancelled from outside the pool while suspended: the pool is idle
    // again once it ended.
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    let parked = pool.spawn_async(async move {
        let _ = rx.await;
    });
    assert!(!pool.wait_idle_timeout(Duration::from_millis(20)));
    assert!(parked.cancel());
    assert!(pool.wait_idle_timeout(BOUND));
    drop(tx);
    // Abandoned: every waker dropped, so it ends cancelled.
    let abandoned = pool.spawn_async(std::future::pending::<()>());
    assert!(pool.wait_idle_timeout(BOUND));
    assert!(abandoned.cancelled());
    // From inside an async task, the caller's own task does not count.
    let inner = pool.spawn_async(async {
        futurepool::sleep(Duration::from_millis(20)).await;
    });
    let (tx, rx) = mpsc::channel();
    let own = Arc::new(pool);
    let p = own.clone();
    let outer = own.spawn_async(async move {
        let _ = tx.send(p.wait_idle_timeout(BOUND));
    });
    assert_eq!(rx.recv_timeout(BOUND), Ok(true));
    assert!(inner.ready());
    assert_eq!(outer.get_timeout(BOUND), Ok(()));
}

/// Panics are counted as panics wherever they happen: in a spawned
/// future, a scoped task, a map chunk; and an async task counts once,
/// however many polls it took.
#[test]
fn panics_of_futures_scoped_tasks_and_map_chunks_count_as_panicked() {
    let pool = ThreadPool::new(2).unwrap();
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let boom = pool.spawn_async(async {
        futurepool::sleep(Duration::from_millis(1)).await;
        panic!("future")
    });
    assert!(boom.get_timeout(BOUND).unwrap_err().is_panic());
    let scoped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.scope(|s| {
            s.spawn(|| panic!("scoped"));
        })
    }));
    assert!(scoped.is_err());
    assert!(pool
        .map_chunked(|x: u32| if x == 0 { panic!("chunk") } else { x }, [0u32], 1)
        .is_err());
    std::panic::set_hook(quiet);
    assert!(pool.wait_idle_timeout(BOUND));
    let s = pool.stats();
    assert_eq!((s.panicked, s.completed), (3, 0), "{s:?}");

    // A future that takes several polls counts once.
    let polls = pool.spawn_async(async {
        for _ in 0..5 {
            futurepool::sleep(Duration::from_millis(1)).await;
        }
    });
    assert_eq!(polls.get_timeout(BOUND), Ok(()));
    assert!(pool.wait_idle_timeout(BOUND));
    assert_eq!(pool.stats().completed, 1);
}
