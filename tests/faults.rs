//! Faults and bad input: panicking Drops, panicking callbacks, tasks that
//! never return, handles dropped early, deep nesting. Each test bounds its
//! waits, so a regression fails instead of hanging.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use futurepool::{Builder, TaskError, ThreadPool};

const LONG: Duration = Duration::from_secs(30);

/// Counts its drops.
struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Panics when dropped (and counts that it was).
struct PanicOnDrop(Arc<AtomicUsize>);
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("PanicOnDrop dropped");
    }
}

/// A task that blocks until the returned sender is used (or dropped).
fn gate() -> (mpsc::Sender<()>, impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel::<()>();
    (tx, move || {
        let _ = rx.recv();
    })
}

/// Occupies one worker until the returned sender is used: returns once the
/// blocking task is running.
fn occupy(pool: &ThreadPool) -> (mpsc::Sender<()>, futurepool::AsyncResult<()>) {
    let (open, blocker) = gate();
    let (started_tx, started_rx) = mpsc::channel();
    let handle = pool.submit(move || {
        started_tx.send(()).unwrap();
        blocker();
    });
    started_rx.recv_timeout(LONG).expect("blocker started");
    (open, handle)
}

#[test]
fn cancelling_a_task_whose_closure_panics_on_drop_still_resolves_it() {
    // Regression: abort() dropped the closure before publishing, so the
    // panic escaped cancel() and the handle never resolved.
    let pool = ThreadPool::new(1).unwrap();
    let (open, blocker) = occupy(&pool);
    let drops = Arc::new(AtomicUsize::new(0));
    let bomb = PanicOnDrop(drops.clone());
    let queued = pool.submit(move || {
        let _keep = &bomb;
        1
    });
    assert!(queued.cancel(), "cancel must not panic and must succeed");
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the closure was released");
    assert_eq!(queued.get_timeout(LONG), Err(TaskError::Cancelled));
    open.send(()).unwrap();
    assert_eq!(blocker.get_timeout(LONG), Ok(()));
}

#[test]
fn terminate_cancels_everything_even_past_a_closure_that_panics_on_drop() {
    let pool = ThreadPool::new(1).unwrap();
    let (open, blocker) = occupy(&pool);
    let drops = Arc::new(AtomicUsize::new(0));
    let mut queued = Vec::new();
    for i in 0..10 {
        let bomb = PanicOnDrop(drops.clone());
        queued.push(pool.submit(move || {
            let _keep = &bomb;
            i
        }));
    }
    pool.terminate();
    for h in &queued {
        assert_eq!(h.get_timeout(LONG), Err(TaskError::Cancelled));
    }
    assert_eq!(drops.load(Ordering::SeqCst), 10);
    open.send(()).unwrap();
    assert_eq!(blocker.get_timeout(LONG), Ok(()));
    assert!(pool.join_timeout(LONG));
}

#[test]
fn a_result_that_panics_on_drop_does_not_kill_the_worker() {
    // Regression: the result of a task whose handle was dropped is dropped
    // on the worker; its panic unwound the worker thread, and a pool of one
    // then never ran anything again.
    let pool = ThreadPool::new(1).unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let d = drops.clone();
        drop(pool.submit(move || PanicOnDrop(d)));
    }
    assert_eq!(pool.submit(|| 5).get_timeout(LONG), Ok(5));
    assert!(pool.join_timeout(LONG));
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}

#[test]
fn panicking_tasks_and_callbacks_leave_every_worker_alive() {
    let pool = ThreadPool::new(2).unwrap();
    let called = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..200)
        .map(|i| {
            let h = pool.submit(move || -> u32 { panic!("task {i}") });
            let c = called.clone();
            h.add_done_callback(move |r| {
                assert!(r.is_err());
                c.fetch_add(1, Ordering::SeqCst);
                panic!("callback {i}");
            });
            h
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let err = h.get_timeout(LONG).unwrap_err();
        assert_eq!(err.panic_message(), Some(format!("task {i}").as_str()));
    }
    assert_eq!(called.load(Ordering::SeqCst), 200);
    // Both workers still serve: two tasks that need each other to finish.
    let (tx, rx) = mpsc::channel::<()>();
    let a = pool.submit(move || rx.recv_timeout(LONG).is_ok());
    let b = pool.submit(move || tx.send(()).is_ok());
    assert_eq!(a.get_timeout(LONG), Ok(true));
    assert_eq!(b.get_timeout(LONG), Ok(true));
}

#[test]
fn a_task_that_never_returns_does_not_stop_terminate_and_join_timeout_reports_it() {
    let pool = ThreadPool::new(2).unwrap();
    // Stands for a task that never returns: it is released only at the end
    // of the test so the thread does not outlive it.
    let (release, stuck) = gate();
    let (started_tx, started_rx) = mpsc::channel();
    let stuck = pool.submit(move || {
        started_tx.send(()).unwrap();
        stuck();
    });
    started_rx.recv_timeout(LONG).unwrap();
    // Keep the other worker busy too, so the rest stay queued.
    let (release2, busy) = gate();
    let (started2_tx, started2_rx) = mpsc::channel();
    let busy = pool.submit(move || {
        started2_tx.send(()).unwrap();
        busy();
    });
    started2_rx.recv_timeout(LONG).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let rest: Vec<_> = (0..100)
        .map(|_| {
            let ran = ran.clone();
            pool.submit(move || ran.fetch_add(1, Ordering::SeqCst))
        })
        .collect();
    pool.terminate();
    for h in &rest {
        assert_eq!(h.get_timeout(LONG), Err(TaskError::Cancelled));
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert!(stuck.running());
    assert!(
        !pool.join_timeout(Duration::from_millis(20)),
        "join_timeout must report the worker that is still busy"
    );
    release2.send(()).unwrap();
    assert_eq!(busy.get_timeout(LONG), Ok(()));
    assert!(!pool.join_timeout(Duration::from_millis(1)));
    release.send(()).unwrap();
    assert_eq!(stuck.get_timeout(LONG), Ok(()));
    assert!(pool.join_timeout(LONG));
    assert!(pool.join_timeout(Duration::ZERO), "idempotent once joined");
}

#[test]
fn join_timeout_on_an_own_worker_returns_false_without_deadlock() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let inner = pool.clone();
    let from_worker = pool.submit(move || inner.join_timeout(Duration::from_secs(1)));
    assert_eq!(from_worker.get_timeout(LONG), Ok(false));
    assert!(pool.join_timeout(LONG));
}

#[test]
fn a_handle_dropped_before_its_task_runs_releases_closure_and_result() {
    let pool = ThreadPool::new(1).unwrap();
    let (open, blocker) = occupy(&pool);
    let closure_drops = Arc::new(AtomicUsize::new(0));
    let result_drops = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..50 {
        let captured = Counted(closure_drops.clone());
        let result = result_drops.clone();
        let ran = ran.clone();
        drop(pool.submit(move || {
            let _c = &captured;
            ran.fetch_add(1, Ordering::SeqCst);
            Counted(result)
        }));
    }
    // Still queued: nothing released yet, nothing ran.
    assert_eq!(closure_drops.load(Ordering::SeqCst), 0);
    open.send(()).unwrap();
    assert_eq!(blocker.get_timeout(LONG), Ok(()));
    assert!(pool.join_timeout(LONG));
    assert_eq!(
        ran.load(Ordering::SeqCst),
        50,
        "dropping a handle does not cancel"
    );
    assert_eq!(closure_drops.load(Ordering::SeqCst), 50);
    assert_eq!(result_drops.load(Ordering::SeqCst), 50);
}

#[test]
fn a_cancelled_task_releases_its_closure_at_once() {
    let pool = ThreadPool::new(1).unwrap();
    let (open, blocker) = occupy(&pool);
    let drops = Arc::new(AtomicUsize::new(0));
    let captured = Counted(drops.clone());
    let h = pool.submit(move || {
        let _c = &captured;
    });
    assert!(h.cancel());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(h);
    open.send(()).unwrap();
    assert_eq!(blocker.get_timeout(LONG), Ok(()));
}

#[test]
fn a_panicking_initializer_fails_build_with_its_message() {
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let err = Builder::new()
        .num_threads(4)
        .initializer(move |i| {
            s.fetch_add(1, Ordering::SeqCst);
            if i == 2 {
                panic!("no connection for worker {i}");
            }
        })
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("no connection for worker 2"),
        "{err}"
    );
    assert_eq!(started.load(Ordering::SeqCst), 4);
}

#[test]
fn absurd_stack_sizes_are_build_errors() {
    for bytes in [usize::MAX, usize::MAX / 2, 1 << 46] {
        let err = Builder::new()
            .num_threads(3)
            .stack_size(bytes)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("spawn"), "{err}");
    }
}

#[test]
fn a_stack_below_the_minimum_is_a_config_error() {
    let err = Builder::new()
        .stack_size(Builder::MIN_STACK_SIZE - 1)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), futurepool::BuildErrorKind::InvalidConfig);
    assert!(err.to_string().contains("stack_size"), "{err}");
    let pool = Builder::new()
        .num_threads(1)
        .stack_size(Builder::MIN_STACK_SIZE)
        .build()
        .unwrap();
    assert_eq!(pool.submit(|| 3).get_timeout(LONG), Ok(3));
}

#[test]
fn deep_nesting_on_a_small_stack_continues_on_overflow_threads() {
    // 64 KiB stacks hold only a few dozen nested levels in a debug build:
    // without stack segments this would overflow and abort the process.
    for threads in [1, 2] {
        let pool = Arc::new(
            Builder::new()
                .num_threads(threads)
                .stack_size(64 << 10)
                .thread_name("tiny")
                .build()
                .unwrap(),
        );
        let p = pool.clone();
        let depth = pool
            .submit(move || common::chain(p, 2_000))
            .get_timeout(LONG);
        assert_eq!(depth, Ok(2_000));
        // Tasks on overflow threads still see the worker's name.
        let p = pool.clone();
        let name = pool
            .submit(move || {
                let inner = p.clone();
                common::chain(p, 500);
                inner
                    .submit(|| std::thread::current().name().map(String::from))
                    .get_timeout(LONG)
                    .unwrap()
            })
            .get_timeout(LONG)
            .unwrap()
            .unwrap();
        assert!(name.starts_with("tiny-"), "{name}");
        assert!(pool.join_timeout(LONG));
    }
}

/// A task's value that panics on drop, dropped by the pool because the
/// task was cancelled while it ran: the handle still ends `Cancelled`
/// (it stayed `running()` for ever) and the worker lives on.
#[test]
fn a_cancellable_task_cancelled_while_running_resolves_past_a_result_that_panics_on_drop() {
    let pool = ThreadPool::new(1).unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let (started_tx, started) = mpsc::channel();
    let d = drops.clone();
    let handle = pool.submit_cancellable(move |token| {
        started_tx.send(()).unwrap();
        token.wait_timeout(LONG);
        PanicOnDrop(d)
    });
    started.recv_timeout(LONG).unwrap();
    handle.cancel();
    assert!(handle.wait_timeout(LONG), "the handle never resolved");
    assert!(!handle.running());
    assert_eq!(handle.get_timeout(LONG).err(), Some(TaskError::Cancelled));
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(pool.apply(|| 1), Ok(1));
}

/// A periodic task whose closure panics on drop: however it ends (it
/// breaks, a run panics, it is cancelled during a run or between runs),
/// the closure is dropped once and the handle resolves.
#[test]
fn a_periodic_task_whose_closure_panics_on_drop_resolves_however_it_ends() {
    use std::ops::ControlFlow;
    let pool = ThreadPool::new(2).unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let period = Duration::from_millis(1);

    let guard = PanicOnDrop(drops.clone());
    let mut runs = 0;
    let broke = pool.submit_periodic(period, move || {
        let _ = &guard;
        runs += 1;
        if runs == 3 {
            ControlFlow::Break(runs)
        } else {
            ControlFlow::Continue(())
        }
    });
    assert_eq!(broke.get_timeout(LONG), Ok(3));

    let guard = PanicOnDrop(drops.clone());
    let panicked = pool.submit_periodic(period, move || -> ControlFlow<()> {
        let _ = &guard;
        panic!("a periodic run panicked");
    });
    assert!(panicked.get_timeout(LONG).unwrap_err().is_panic());

    let guard = PanicOnDrop(drops.clone());
    let (started_tx, started) = mpsc::channel();
    let (release, gate) = mpsc::channel::<()>();
    let during = pool.submit_periodic(period, move || -> ControlFlow<()> {
        let _ = &guard;
        let _ = started_tx.send(());
        let _ = gate.recv_timeout(LONG);
        ControlFlow::Continue(())
    });
    started.recv_timeout(LONG).unwrap();
    assert!(!during.cancel(), "cancelled during a run");
    release.send(()).unwrap();
    assert_eq!(during.get_timeout(LONG).err(), Some(TaskError::Cancelled));

    let guard = PanicOnDrop(drops.clone());
    let between = pool.submit_periodic(Duration::from_secs(3600), move || {
        let _ = &guard;
        ControlFlow::<()>::Continue(())
    });
    assert!(between.cancel());
    assert_eq!(between.get_timeout(LONG).err(), Some(TaskError::Cancelled));

    assert_eq!(drops.load(Ordering::SeqCst), 4);
    assert_eq!(pool.apply(|| 1), Ok(1));
}

/// A done-callback that panics with a payload whose own drop panics: the
/// handle still resolves and later callbacks still run, on a worker and
/// on a caller adding a callback to a finished handle.
#[test]
fn a_callback_whose_panic_payload_panics_on_drop_leaves_the_handle_resolvable() {
    let pool = ThreadPool::new(1).unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let (open, blocker) = gate();
    let handle = pool.submit(move || {
        blocker();
        5
    });
    let d = drops.clone();
    handle.add_done_callback(move |_| std::panic::panic_any(PanicOnDrop(d)));
    let (tx, rx) = mpsc::channel();
    handle.add_done_callback(move |r| tx.send(r.as_ref().ok().copied()).unwrap());
    open.send(()).unwrap();
    assert_eq!(handle.get_timeout(LONG), Ok(5));
    assert_eq!(rx.recv_timeout(LONG), Ok(Some(5)));

    let done = pool.submit(|| 6);
    assert!(done.wait_timeout(LONG));
    let d = drops.clone();
    done.add_done_callback(move |_| std::panic::panic_any(PanicOnDrop(d)));
    assert_eq!(done.get_timeout(LONG), Ok(6));
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert_eq!(pool.apply(|| 1), Ok(1));
}

/// Every way to submit, on a closed pool, with work that panics on drop:
/// the work is dropped unrun, no panic escapes the call, and the handle
/// says `PoolClosed`.
#[test]
fn submitting_to_a_closed_pool_work_that_panics_on_drop_never_panics() {
    use std::ops::ControlFlow;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let pool = ThreadPool::new(1).unwrap();
    pool.close();
    let drops = Arc::new(AtomicUsize::new(0));
    let guard = || PanicOnDrop(drops.clone());
    let refused = |what: &str, outcome: std::thread::Result<Option<TaskError>>| {
        assert_eq!(
            outcome.unwrap_or_else(|_| panic!("{what} panicked")),
            Some(TaskError::PoolClosed),
            "{what}"
        );
    };
    let g = guard();
    refused(
        "submit",
        catch_unwind(AssertUnwindSafe(|| {
            pool.submit(move || drop(g)).get().err()
        })),
    );
    let g = guard();
    refused(
        "submit_cancellable",
        catch_unwind(AssertUnwindSafe(|| {
            pool.submit_cancellable(move |_| drop(g)).get().err()
        })),
    );
    let g = guard();
    refused(
        "submit_with_priority",
        catch_unwind(AssertUnwindSafe(|| {
            pool.submit_with_priority(3, move || drop(g)).get().err()
        })),
    );
    let g = guard();
    refused(
        "submit_after",
        catch_unwind(AssertUnwindSafe(|| {
            pool.submit_after(Duration::ZERO, move || drop(g))
                .get()
                .err()
        })),
    );
    let g = guard();
    refused(
        "submit_periodic",
        catch_unwind(AssertUnwindSafe(|| {
            pool.submit_periodic(Duration::ZERO, move || {
                let _ = &g;
                ControlFlow::<()>::Continue(())
            })
            .get()
            .err()
        })),
    );
    let g = guard();
    refused(
        "spawn_async",
        catch_unwind(AssertUnwindSafe(|| {
            pool.spawn_async(async move { drop(g) }).get().err()
        })),
    );
    let (f, items) = (guard(), vec![guard()]);
    refused(
        "map_async",
        catch_unwind(AssertUnwindSafe(|| {
            pool.map_async(
                move |_: PanicOnDrop| {
                    let _ = &f;
                },
                items,
            )
            .get()
            .err()
        })),
    );
    assert_eq!(drops.load(Ordering::SeqCst), 8);
}

/// `Builder::panic_handler` receives the panics no handle can carry: a
/// task (closure or future) whose handle was dropped before it finished, a
/// done-callback (on a worker or on the caller), a waker the pool wakes.
/// A panic a handle does carry is not reported. A handler that panics
/// itself is contained.
#[test]
fn the_panic_handler_receives_panics_with_nowhere_to_go() {
    use std::future::Future;
    use std::sync::Mutex;
    use std::task::{Context, Wake, Waker};
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let pool = Builder::new()
        .num_threads(2)
        .panic_handler(move |e: &TaskError| {
            let msg = e.panic_message().unwrap_or("<not a string>").to_string();
            log.lock().unwrap().push(msg);
        })
        .build()
        .unwrap();

    let (open, blocker) = gate();
    drop(pool.submit(move || {
        blocker();
        panic!("detached task")
    }));
    open.send(()).unwrap();
    drop(pool.spawn_async(async { panic!("detached future") }));
    let kept = pool.submit(|| panic!("kept task"));
    assert!(kept.get_timeout(LONG).unwrap_err().is_panic());

    let (open, blocker) = gate();
    let pending = pool.submit(blocker);
    pending.add_done_callback(|_| panic!("callback on a worker"));
    struct PanickingWaker;
    impl Wake for PanickingWaker {
        fn wake(self: Arc<Self>) {
            panic!("waker")
        }
    }
    let waker = Waker::from(Arc::new(PanickingWaker));
    let mut polled = pool.submit(|| ());
    let mut pending = std::pin::pin!(pending);
    assert!(pending
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    open.send(()).unwrap();
    assert!(polled.wait_timeout(LONG));
    polled.add_done_callback(|_| panic!("callback on the caller"));
    polled = pool.submit(|| ());
    assert_eq!(polled.get_timeout(LONG), Ok(()));
    assert!(pool.wait_idle_timeout(LONG));

    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [
            "callback on a worker",
            "callback on the caller",
            "detached future",
            "detached task",
            "waker"
        ]
    );

    let pool = Builder::new()
        .num_threads(1)
        .panic_handler(|_| panic!("the handler itself"))
        .build()
        .unwrap();
    drop(pool.submit(|| panic!("detached task")));
    assert!(pool.wait_idle_timeout(LONG));
    assert_eq!(pool.apply(|| 1), Ok(1));
}
