//! Async tasks on the pool: spawn_async, wakers, cancellation, panics,
//! block_on, the pool's lifecycle with suspended futures, and interplay
//! with closure tasks and other runtimes (futures channels, tokio timers).

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{quiet_panics, within, Gate, Signals, LONG};
use futurepool::{block_on, TaskError, ThreadPool};
use futures::channel::oneshot;

/// Counts its polls, then defers to the inner future.
struct Counted<F> {
    polls: Arc<AtomicUsize>,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        self.inner.as_mut().poll(cx)
    }
}

fn counted<F: Future>(polls: &Arc<AtomicUsize>, inner: F) -> Counted<F> {
    Counted {
        polls: polls.clone(),
        inner: Box::pin(inner),
    }
}

/// Tells the test (with the dropping thread's name) when it is dropped.
struct DropGuard(mpsc::Sender<Option<String>>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        let _ = self
            .0
            .send(std::thread::current().name().map(str::to_owned));
    }
}

/// Returns Pending once (waking itself), then Ready.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn yield_now() -> YieldNow {
    YieldNow(false)
}

/// A future that hands its waker to the test on every poll and is ready
/// once `ready` is set.
struct Manual {
    ready: Arc<AtomicBool>,
    wakers: mpsc::Sender<Waker>,
}

impl Future for Manual {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.ready.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        let _ = self.wakers.send(cx.waker().clone());
        Poll::Pending
    }
}

/// Occupies one worker until the gate opens; returns once it is running.
fn occupy_worker(pool: &ThreadPool) -> (Gate, futurepool::AsyncResult<bool>) {
    let gate = Gate::new();
    let started = Signals::new();
    let blocker = {
        let (gate, started) = (gate.clone(), started.sender());
        pool.submit(move || {
            started.send(()).unwrap();
            gate.wait()
        })
    };
    started.recv();
    (gate, blocker)
}

#[test]
fn a_future_woken_from_another_thread_completes() {
    let pool = ThreadPool::new(2).unwrap();
    let (tx, rx) = oneshot::channel::<u32>();
    let handle = pool.spawn_async(async move { rx.await.unwrap() * 2 });
    let sender = std::thread::spawn(move || tx.send(21).unwrap());
    assert_eq!(handle.get_timeout(LONG), Ok(42));
    sender.join().unwrap();
}

#[test]
fn a_wake_during_the_poll_is_not_lost() {
    let pool = ThreadPool::new(1).unwrap();
    let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
    let (woke_tx, woke_rx) = mpsc::channel::<()>();
    // Another thread wakes the task while its first poll is still running.
    let waker_thread = std::thread::spawn(move || {
        let waker = waker_rx.recv_timeout(LONG).unwrap();
        waker.wake();
        woke_tx.send(()).unwrap();
    });
    let polls = Arc::new(AtomicUsize::new(0));
    let mut first = true;
    let future = std::future::poll_fn(move |cx| {
        if first {
            first = false;
            waker_tx.send(cx.waker().clone()).unwrap();
            woke_rx.recv_timeout(LONG).unwrap();
            // No one will wake us again: only the wake above can.
            return Poll::Pending;
        }
        Poll::Ready("second poll")
    });
    let handle = pool.spawn_async(counted(&polls, future));
    assert_eq!(handle.get_timeout(LONG), Ok("second poll"));
    assert_eq!(polls.load(Ordering::SeqCst), 2);
    waker_thread.join().unwrap();
}

#[test]
fn many_wakes_while_queued_are_coalesced_into_one_poll() {
    let pool = ThreadPool::new(1).unwrap();
    let polls = Arc::new(AtomicUsize::new(0));
    let ready = Arc::new(AtomicBool::new(false));
    let (wakers_tx, wakers_rx) = mpsc::channel();
    let handle = pool.spawn_async(counted(
        &polls,
        Manual {
            ready: ready.clone(),
            wakers: wakers_tx,
        },
    ));
    let waker = wakers_rx.recv_timeout(LONG).unwrap();
    // Occupy the only worker, so the task stays queued while woken.
    let (gate, blocker) = occupy_worker(&pool);
    ready.store(true, Ordering::SeqCst);
    for _ in 0..1000 {
        waker.wake_by_ref();
    }
    for _ in 0..10 {
        // By value too (the clone is consumed by the wake).
        let clone = waker.clone();
        clone.wake();
    }
    gate.open();
    assert_eq!(blocker.get_timeout(LONG), Ok(true));
    assert_eq!(handle.get_timeout(LONG), Ok(()));
    assert_eq!(polls.load(Ordering::SeqCst), 2, "1010 wakes, one more poll");
    // Wakes after the end do nothing.
    waker.wake();
    assert_eq!(polls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_future_that_is_never_woken_does_not_hold_a_worker() {
    let pool = ThreadPool::new(1).unwrap();
    let (tx, rx) = oneshot::channel::<u8>();
    let polls = Arc::new(AtomicUsize::new(0));
    let suspended = pool.spawn_async(counted(&polls, rx));
    for i in 0..10 {
        assert_eq!(pool.submit(move || i).get_timeout(LONG), Ok(i));
    }
    assert!(!suspended.ready());
    assert!(
        suspended.running(),
        "started and suspended counts as running"
    );
    tx.send(1).unwrap();
    assert_eq!(suspended.get_timeout(LONG), Ok(Ok(1)));
    assert_eq!(polls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_future_nothing_can_wake_is_dropped_and_its_handle_ends() {
    let pool = ThreadPool::new(1).unwrap();
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let guard = DropGuard(dropped_tx);
    // pending() keeps no waker: after its first poll nothing can ever poll
    // it again.
    let handle = pool.spawn_async(async move {
        let _guard = guard;
        futures::future::pending::<()>().await
    });
    assert_eq!(handle.get_timeout(LONG), Err(TaskError::Cancelled));
    assert!(handle.cancelled());
    dropped_rx.recv_timeout(LONG).expect("future dropped");
}

#[test]
fn cancel_drops_a_suspended_future_on_a_worker() {
    let pool = ThreadPool::builder()
        .num_threads(2)
        .thread_name("async-cancel")
        .build()
        .unwrap();
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let (_keep_sender, rx) = oneshot::channel::<()>();
    let polled = Signals::new();
    let polled_tx = Mutex::new(polled.sender());
    let guard = DropGuard(dropped_tx);
    let handle = pool.spawn_async(async move {
        let _guard = guard;
        polled_tx.lock().unwrap().send(()).unwrap();
        rx.await.ok()
    });
    polled.recv();
    assert!(handle.cancel(), "a started async task can be cancelled");
    let dropped_on = dropped_rx.recv_timeout(LONG).expect("future dropped");
    assert!(
        dropped_on
            .as_deref()
            .is_some_and(|n| n.starts_with("async-cancel-")),
        "dropped on a worker, not on {dropped_on:?}"
    );
    assert_eq!(handle.get_timeout(LONG), Err(TaskError::Cancelled));
    assert!(handle.cancelled());
    assert_eq!(handle.successful(), Some(false));
    assert!(handle.cancel(), "cancel on a cancelled task still says so");
}

#[test]
fn cancel_before_the_first_poll_never_polls() {
    let pool = ThreadPool::new(1).unwrap();
    let (gate, blocker) = occupy_worker(&pool);
    let polls = Arc::new(AtomicUsize::new(0));
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let guard = DropGuard(dropped_tx);
    let handle = pool.spawn_async(counted(&polls, async move {
        drop(guard);
        1
    }));
    assert!(handle.cancel());
    // Not started: it is over at once, as a closure would be.
    assert!(handle.cancelled());
    assert!(handle.ready());
    dropped_rx.recv_timeout(LONG).expect("future dropped");
    gate.open();
    assert_eq!(blocker.get_timeout(LONG), Ok(true));
    assert_eq!(handle.get_timeout(LONG), Err(TaskError::Cancelled));
    // The queue entry is still run through; it must not poll.
    assert_eq!(pool.submit(|| ()).get_timeout(LONG), Ok(()));
    pool.join();
    assert_eq!(polls.load(Ordering::SeqCst), 0);
}

#[test]
fn cancel_during_a_poll_drops_the_future_when_it_returns_pending() {
    let pool = ThreadPool::new(1).unwrap();
    let in_poll = Signals::new();
    let in_poll_tx = Mutex::new(in_poll.sender());
    let gate = Gate::new();
    let gate2 = gate.clone();
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let guard = DropGuard(dropped_tx);
    let (_keep, rx) = oneshot::channel::<()>();
    let handle = pool.spawn_async(async move {
        let _guard = guard;
        in_poll_tx.lock().unwrap().send(()).unwrap();
        assert!(gate2.wait());
        rx.await.ok()
    });
    in_poll.recv();
    assert!(handle.cancel());
    assert!(!handle.ready(), "the poll under way is not interrupted");
    gate.open();
    dropped_rx.recv_timeout(LONG).expect("future dropped");
    assert_eq!(handle.get_timeout(LONG), Err(TaskError::Cancelled));
}

#[test]
fn cancel_after_completion_is_refused() {
    let pool = ThreadPool::new(1).unwrap();
    let handle = pool.spawn_async(async { 5 });
    assert!(handle.wait_timeout(LONG));
    assert!(!handle.cancel());
    assert_eq!(handle.get(), Ok(5));
}

#[test]
fn a_panic_in_poll_is_delivered_and_the_worker_lives_on() {
    quiet_panics();
    let pool = ThreadPool::new(1).unwrap();
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let guard = DropGuard(dropped_tx);
    let handle = pool.spawn_async(async move {
        let _guard = guard;
        yield_now().await;
        if true {
            panic!("intentional async panic");
        }
        1u8
    });
    let err = handle.get_timeout(LONG).unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("intentional async panic"));
    dropped_rx.recv_timeout(LONG).expect("future dropped");
    assert_eq!(pool.spawn_async(async { 2 }).get_timeout(LONG), Ok(2));
    assert_eq!(pool.submit(|| 3).get_timeout(LONG), Ok(3));
}

#[test]
fn block_on_outside_the_pool_parks_until_woken() {
    let (tx, rx) = oneshot::channel();
    let sender = std::thread::spawn(move || tx.send(9).unwrap());
    let value = within("block_on", move || {
        block_on(async move { rx.await.unwrap() })
    });
    assert_eq!(value, 9);
    sender.join().unwrap();
}

#[test]
fn block_on_on_a_worker_runs_nested_work_while_it_waits() {
    // One thread: the nested tasks can only run if block_on keeps the
    // worker busy with them.
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let inner = pool.clone();
    let handle = pool.submit(move || {
        block_on(async move {
            let closure = inner.submit(|| 20);
            let nested_async = inner.spawn_async(async {
                yield_now().await;
                2
            });
            closure.await.unwrap() + nested_async.await.unwrap()
        })
    });
    assert_eq!(handle.get_timeout(LONG), Ok(22));
}

#[test]
fn block_on_inside_an_async_task_on_a_one_thread_pool() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let inner = pool.clone();
    let handle = pool.spawn_async(async move {
        let nested = inner.spawn_async(async { 4 });
        block_on(nested).unwrap() * 2
    });
    assert_eq!(handle.get_timeout(LONG), Ok(8));
}

#[test]
fn a_hundred_thousand_tasks_awaiting_oneshots_each_complete_once() {
    const N: usize = 100_000;
    let pool = ThreadPool::new(2).unwrap();
    let finished = Arc::new(AtomicUsize::new(0));
    let callbacks = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::with_capacity(N);
    let mut handles = Vec::with_capacity(N);
    for i in 0..N {
        let (tx, rx) = oneshot::channel::<usize>();
        senders.push(tx);
        let finished = finished.clone();
        let handle = pool.spawn_async(async move {
            let v = rx.await.expect("sender kept");
            finished.fetch_add(1, Ordering::Relaxed);
            v
        });
        let callbacks = callbacks.clone();
        handle.add_done_callback(move |_| {
            callbacks.fetch_add(1, Ordering::Relaxed);
        });
        handles.push((i, handle));
    }
    let sender = std::thread::spawn(move || {
        for (i, tx) in senders.into_iter().enumerate() {
            tx.send(i * 3).unwrap();
        }
    });
    let mut seen = vec![false; N];
    for (i, handle) in handles {
        let v = handle.get_timeout(LONG).expect("result in time");
        assert_eq!(v, i * 3);
        assert!(!seen[i]);
        seen[i] = true;
    }
    sender.join().unwrap();
    assert!(seen.iter().all(|&s| s));
    assert_eq!(finished.load(Ordering::Relaxed), N);
    // Callbacks run before the value is published, so all have run.
    assert_eq!(callbacks.load(Ordering::Relaxed), N);
}

#[test]
fn async_tasks_and_closure_tasks_await_each_other() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    // Async awaits closures.
    let a = pool.submit(|| 3);
    let b = pool.submit(|| 4);
    let sum = pool.spawn_async(async move { a.await.unwrap() + b.await.unwrap() });
    // A closure waits for an async task (on the only worker: it must run
    // the async task while it waits).
    let p = pool.clone();
    let doubled = pool.submit(move || {
        let inner = p.spawn_async(async {
            yield_now().await;
            10
        });
        inner.get().unwrap() * 2
    });
    // And an async task awaits a closure that waits for an async task.
    let chained = pool.spawn_async(async move { doubled.await.unwrap() + sum.await.unwrap() });
    assert_eq!(chained.get_timeout(LONG), Ok(27));
}

#[test]
fn a_task_that_keeps_yielding_does_not_starve_work_queued_under_it() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let p = pool.clone();
    let handle = pool.spawn_async(async move {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        // Queued on this worker's own deque, under the yielding task.
        let setter = p.submit(move || f.store(true, Ordering::SeqCst));
        let mut spins = 0u64;
        while !flag.load(Ordering::SeqCst) {
            yield_now().await;
            spins += 1;
        }
        drop(setter);
        spins
    });
    assert!(handle.get_timeout(LONG).is_ok());
}

#[test]
fn a_tokio_timer_wakes_a_future_on_the_pool() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let pool = ThreadPool::new(2).unwrap();
    // Created inside the runtime (it registers with its timer), polled on
    // our workers.
    let sleep = {
        let _enter = rt.enter();
        tokio::time::sleep(Duration::from_millis(5))
    };
    let handle = pool.spawn_async(async move {
        sleep.await;
        "slept"
    });
    assert_eq!(handle.get_timeout(LONG), Ok("slept"));
}

#[test]
fn handles_of_async_tasks_await_under_other_executors() {
    let pool = ThreadPool::new(2).unwrap();
    let handle = pool.spawn_async(async {
        yield_now().await;
        "x"
    });
    let value = within("futures block_on", move || {
        futures::executor::block_on(handle)
    });
    assert_eq!(value, Ok("x"));
}

#[test]
fn the_global_pool_runs_async_tasks() {
    let handle = futurepool::spawn_async(async { 1 + 1 });
    assert_eq!(handle.get_timeout(LONG), Ok(2));
}

// ---- lifecycle --------------------------------------------------------------

thread_local! {
    /// Set on a worker by the pool's initializer; reports the worker's exit.
    static ON_EXIT: std::cell::RefCell<Option<ExitSignal>> = const { std::cell::RefCell::new(None) };
}

struct ExitSignal(mpsc::Sender<usize>, usize);

impl Drop for ExitSignal {
    fn drop(&mut self) {
        let _ = self.0.send(self.1);
    }
}

/// A pool whose workers report on the returned channel when they exit.
fn pool_reporting_exits(n: usize) -> (ThreadPool, mpsc::Receiver<usize>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let pool = ThreadPool::builder()
        .num_threads(n)
        .initializer(move |i| {
            let signal = ExitSignal(tx.lock().unwrap().clone(), i);
            ON_EXIT.with(|s| *s.borrow_mut() = Some(signal));
        })
        .build()
        .unwrap();
    (pool, rx)
}

#[test]
fn close_and_join_wait_for_a_suspended_task_that_is_woken_later() {
    let (pool, exits) = pool_reporting_exits(2);
    let pool = Arc::new(pool);
    let (tx, rx) = oneshot::channel::<u32>();
    let polled = Signals::new();
    let polled_tx = Mutex::new(polled.sender());
    let handle = pool.spawn_async(async move {
        polled_tx.lock().unwrap().send(()).unwrap();
        rx.await.unwrap() + 1
    });
    polled.recv();
    pool.close();
    assert_eq!(
        pool.spawn_async(async { 0 }).get_timeout(LONG),
        Err(TaskError::PoolClosed)
    );
    let joiner = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.join())
    };
    // Give a wrong implementation the chance to let its workers go: none
    // may exit while a task that can still be woken is alive.
    assert_eq!(
        exits.recv_timeout(Duration::from_millis(200)),
        Err(mpsc::RecvTimeoutError::Timeout),
        "a worker exited while an async task was suspended"
    );
    // Woken after close: it must still find a worker.
    tx.send(41).unwrap();
    assert_eq!(handle.get_timeout(LONG), Ok(42));
    within("join", move || joiner.join().unwrap());
    let mut exited: Vec<usize> = exits.try_iter().collect();
    exited.sort_unstable();
    assert_eq!(exited, vec![0, 1], "both workers exit after the task ends");
}

#[test]
fn terminate_cancels_suspended_tasks_and_lets_the_workers_exit() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let (wakers_tx, wakers_rx) = mpsc::channel();
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let guard = DropGuard(dropped_tx);
    let manual = Manual {
        ready: Arc::new(AtomicBool::new(false)),
        wakers: wakers_tx,
    };
    let handle = pool.spawn_async(async move {
        let _guard = guard;
        manual.await;
    });
    let waker = wakers_rx.recv_timeout(LONG).unwrap();
    pool.terminate();
    assert_eq!(handle.get_timeout(LONG), Err(TaskError::Cancelled));
    dropped_rx.recv_timeout(LONG).expect("future dropped");
    let p = pool.clone();
    within("join after terminate", move || p.join());
    // A wake after the workers are gone finds the task over: nothing
    // happens, nothing hangs.
    waker.wake();
    assert!(handle.cancelled());
}

#[test]
fn shutdown_with_cancel_futures_cancels_suspended_tasks() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let (_keep, rx) = oneshot::channel::<()>();
    let polled = Signals::new();
    let polled_tx = Mutex::new(polled.sender());
    let handle = pool.spawn_async(async move {
        polled_tx.lock().unwrap().send(()).unwrap();
        rx.await.ok()
    });
    polled.recv();
    let p = pool.clone();
    within("shutdown(true, true)", move || p.shutdown(true, true));
    assert_eq!(handle.get_timeout(LONG), Err(TaskError::Cancelled));
}

#[test]
fn dropping_a_pool_waits_for_a_suspended_task() {
    let pool = ThreadPool::new(1).unwrap();
    let (tx, rx) = oneshot::channel::<u32>();
    let polled = Signals::new();
    let polled_tx = Mutex::new(polled.sender());
    let handle = pool.spawn_async(async move {
        polled_tx.lock().unwrap().send(()).unwrap();
        rx.await.unwrap()
    });
    polled.recv();
    let dropper = std::thread::spawn(move || drop(pool));
    tx.send(7).unwrap();
    within("drop", move || dropper.join().unwrap());
    // Drop returned only after the task ended: it is ready now.
    assert!(handle.ready());
    assert_eq!(handle.get(), Ok(7));
}

#[test]
fn spawning_on_a_closed_pool_is_refused_and_drops_the_future() {
    let pool = ThreadPool::new(1).unwrap();
    pool.close();
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let guard = DropGuard(dropped_tx);
    let handle = pool.spawn_async(async move {
        drop(guard);
    });
    assert_eq!(handle.get_timeout(LONG), Err(TaskError::PoolClosed));
    dropped_rx.recv_timeout(LONG).expect("future dropped");
}

#[test]
fn a_waker_kept_after_the_task_finished_and_the_pool_dropped_is_harmless() {
    let pool = ThreadPool::new(1).unwrap();
    let (wakers_tx, wakers_rx) = mpsc::channel();
    let ready = Arc::new(AtomicBool::new(false));
    let handle = pool.spawn_async(Manual {
        ready: ready.clone(),
        wakers: wakers_tx,
    });
    let waker = wakers_rx.recv_timeout(LONG).unwrap();
    ready.store(true, Ordering::SeqCst);
    waker.wake_by_ref();
    assert_eq!(handle.get_timeout(LONG), Ok(()));
    drop(pool);
    waker.wake();
}

#[test]
fn many_async_tasks_with_cross_wakes_on_a_busy_pool() {
    // Tasks wake each other through a chain of oneshots, from workers.
    const N: usize = 2_000;
    let pool = ThreadPool::new(2).unwrap();
    let (first_tx, mut prev_rx) = oneshot::channel::<usize>();
    let mut handles = Vec::new();
    for _ in 0..N {
        let (tx, rx) = oneshot::channel::<usize>();
        let input = std::mem::replace(&mut prev_rx, rx);
        handles.push(pool.spawn_async(async move {
            let v = input.await.unwrap();
            tx.send(v + 1).unwrap();
            v
        }));
    }
    first_tx.send(0).unwrap();
    let last = pool.spawn_async(async move { prev_rx.await.unwrap() });
    assert_eq!(last.get_timeout(LONG), Ok(N));
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.get_timeout(LONG), Ok(i));
    }
}

#[test]
fn spawns_racing_close_and_terminate_all_end() {
    for round in 0..100 {
        let pool = Arc::new(ThreadPool::new(2).unwrap());
        let closer = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                if round % 2 == 0 {
                    pool.close();
                } else {
                    pool.terminate();
                }
            })
        };
        let mut keep = Vec::new();
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let (tx, rx) = oneshot::channel::<usize>();
                keep.push(tx);
                pool.spawn_async(async move {
                    yield_now().await;
                    if i % 2 == 0 {
                        rx.await.unwrap_or(0)
                    } else {
                        i
                    }
                })
            })
            .collect();
        closer.join().unwrap();
        // Complete the even ones (a terminated pool cancelled them).
        for (i, tx) in keep.into_iter().enumerate() {
            let _ = tx.send(i);
        }
        for (i, h) in handles.into_iter().enumerate() {
            match h.get_timeout(LONG) {
                Ok(v) => assert_eq!(v, i, "round {round}"),
                Err(TaskError::PoolClosed) | Err(TaskError::Cancelled) => {}
                Err(e) => panic!("round {round}: task {i} ended with {e}"),
            }
        }
        let p = pool.clone();
        within("join", move || p.join());
    }
}

/// A future that owns the last `Arc` of its own pool: whoever drops the
/// future drops the pool, whose drop waits for its workers. Dropping the
/// future must not itself keep them waiting: cancelling it before its
/// first poll, and dropping its last waker while it is suspended, both on
/// a thread outside the pool, end with the pool joined and the handle
/// cancelled.
#[test]
fn a_future_owning_the_last_arc_of_its_pool_can_be_cancelled_or_abandoned() {
    // Cancelled before its first poll (the only worker busy meanwhile).
    /// Tells when it is being dropped, then drops the pool.
    struct Owner(Option<Arc<ThreadPool>>, mpsc::Sender<()>);
    impl Drop for Owner {
        fn drop(&mut self) {
            let _ = self.1.send(());
            drop(self.0.take());
        }
    }
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let gate = Gate::new();
    let busy = common::start_blocked(&pool, &gate, ());
    let dropping = Signals::new();
    let owner = Owner(Some(pool.clone()), dropping.sender());
    let handle = pool.spawn_async(async move {
        let _owner = owner;
    });
    drop(pool);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let cancelled = handle.cancel();
        let _ = tx.send((cancelled, handle.get_timeout(LONG)));
    });
    // The pool's drop (inside cancel) waits for the busy worker, as any
    // last drop of a pool does.
    dropping.recv();
    gate.open();
    let (cancelled, outcome) = rx.recv_timeout(LONG).expect("cancel returned");
    assert!(cancelled);
    assert_eq!(outcome, Err(TaskError::Cancelled));
    assert_eq!(busy.get_timeout(LONG), Ok(()));

    // Suspended, its last waker held outside the pool and then dropped.
    struct Park {
        _pool: Arc<ThreadPool>,
        waker: Arc<Mutex<Option<Waker>>>,
    }
    impl Future for Park {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    }
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let waker = Arc::new(Mutex::new(None));
    let handle = pool.spawn_async(Park {
        _pool: pool.clone(),
        waker: waker.clone(),
    });
    let deadline = std::time::Instant::now() + LONG;
    while waker.lock().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "never polled");
        std::thread::yield_now();
    }
    drop(pool);
    within("dropping the last waker", move || {
        let last = waker.lock().unwrap().take();
        drop(last);
    });
    assert_eq!(handle.get_timeout(LONG), Err(TaskError::Cancelled));
}
