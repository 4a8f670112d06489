//! Building pools: the builder's options, worker names, initializers, and
//! every way a build can fail.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use futurepool::{BuildError, BuildErrorKind, Builder, ThreadPool};

#[test]
fn zero_threads_is_a_clear_error() {
    let err = ThreadPool::new(0).unwrap_err();
    assert_eq!(err.to_string(), "num_threads must be at least 1");
    assert_eq!(err.kind(), BuildErrorKind::ZeroThreads);
    let err = Builder::new().num_threads(0).build().unwrap_err();
    assert!(err.to_string().contains("at least 1"));
    let _: &dyn std::error::Error = &err;
}

#[test]
fn default_thread_count_is_the_cpu_count() {
    let pool = Builder::new().build().unwrap();
    assert_eq!(pool.num_threads(), num_cpus::get());
    let pool = Builder::default().build().unwrap();
    assert_eq!(pool.num_threads(), num_cpus::get());
    let pool = ThreadPool::builder().num_threads(3).build().unwrap();
    assert_eq!(pool.num_threads(), 3);
}

#[test]
fn workers_are_named_prefix_dash_index() {
    let pool = ThreadPool::new(3).unwrap();
    let names = Arc::new(Mutex::new(HashSet::new()));
    // One gated task per worker, so each worker reports its own name.
    let gate = Gate::new();
    let started = Signals::new();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let (gate, names, tx) = (gate.clone(), names.clone(), started.sender());
            pool.submit(move || {
                let name = std::thread::current().name().unwrap().to_string();
                names.lock().unwrap().insert(name);
                tx.send(()).unwrap();
                gate.wait();
            })
        })
        .collect();
    for _ in 0..3 {
        started.recv();
    }
    gate.open();
    for h in handles {
        h.get_timeout(LONG).unwrap();
    }
    let expected: HashSet<String> = (0..3).map(|i| format!("futurepool-{i}")).collect();
    assert_eq!(*names.lock().unwrap(), expected);

    let custom = Builder::new()
        .num_threads(1)
        .thread_name("crunch")
        .build()
        .unwrap();
    let name = custom
        .apply(|| std::thread::current().name().map(str::to_string))
        .unwrap();
    assert_eq!(name.as_deref(), Some("crunch-0"));
}

#[test]
fn initializer_runs_once_per_worker_with_its_index_before_any_task() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = seen.clone();
    let pool = Builder::new()
        .num_threads(4)
        .initializer(move |i| {
            let name = std::thread::current().name().unwrap().to_string();
            recorder.lock().unwrap().push((i, name));
        })
        .build()
        .unwrap();
    // build() returned: every initializer has finished.
    let mut seen_now = seen.lock().unwrap().clone();
    seen_now.sort();
    let expected: Vec<_> = (0..4).map(|i| (i, format!("futurepool-{i}"))).collect();
    assert_eq!(seen_now, expected);
    for _ in 0..50 {
        pool.submit(|| ()).get_timeout(LONG).unwrap();
    }
    assert_eq!(
        seen.lock().unwrap().len(),
        4,
        "initializers ran exactly once"
    );
}

#[test]
fn initializer_state_is_visible_to_tasks_on_that_worker() {
    thread_local!(static WORKER: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) });
    let pool = Builder::new()
        .num_threads(2)
        .initializer(|i| WORKER.with(|w| w.set(Some(i))))
        .build()
        .unwrap();
    for _ in 0..20 {
        let (index, name) = pool
            .apply(|| {
                (
                    WORKER.with(|w| w.get()),
                    std::thread::current().name().unwrap().to_string(),
                )
            })
            .unwrap();
        assert_eq!(Some(name), index.map(|i| format!("futurepool-{i}")));
    }
}

#[test]
fn panicking_initializer_fails_build_with_its_message_and_leaves_no_thread() {
    quiet_panics();
    let finished = Arc::new(AtomicUsize::new(0));
    let counter = finished.clone();
    let err = Builder::new()
        .num_threads(4)
        .thread_name("init-fails")
        .initializer(move |i| {
            if i == 2 {
                panic!("intentional: cannot open database");
            }
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), BuildErrorKind::InitializerPanicked);
    assert!(err.to_string().contains("cannot open database"), "{err}");
    assert!(err.to_string().contains("worker 2"), "{err}");
    // build() waited for every other initializer before returning.
    assert_eq!(finished.load(Ordering::SeqCst), 3);
    assert!(
        no_threads_named("init-fails-"),
        "a worker thread was left behind"
    );
}

#[test]
fn absurd_stack_size_is_a_build_error_and_leaves_no_thread() {
    let result = Builder::new()
        .num_threads(3)
        .thread_name("absurd-stack")
        .stack_size(usize::MAX / 2)
        .build();
    let err: BuildError = result.unwrap_err();
    assert_eq!(err.kind(), BuildErrorKind::Spawn);
    assert!(err.to_string().contains("spawn"), "{err}");
    assert!(
        no_threads_named("absurd-stack-"),
        "a worker thread was left behind"
    );
}

#[test]
fn a_workable_stack_size_is_used() {
    let pool = Builder::new()
        .num_threads(1)
        .stack_size(32 << 20)
        .build()
        .unwrap();
    // Recursion that needs several MiB of stack: fine on a 32 MiB worker.
    fn depth(n: u64, pad: [u8; 1024]) -> u64 {
        if n == 0 {
            pad[0] as u64
        } else {
            depth(n - 1, std::hint::black_box(pad)) + 1
        }
    }
    assert_eq!(pool.apply(|| depth(8_000, [0; 1024])), Ok(8_000));
}

#[test]
fn pool_and_handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<ThreadPool>();
    send::<futurepool::AsyncResult<String>>();
    send::<futurepool::TaskError>();
    send_sync::<Builder>();
}

#[test]
fn builder_is_debug_and_clone() {
    let b = Builder::new().num_threads(2).thread_name("x").daemon(true);
    let c = b.clone();
    let s = format!("{c:?}");
    assert!(
        s.contains("num_threads: Some(2)") && s.contains("daemon: true"),
        "{s}"
    );
}

/// Thread counts no machine can start are refused with an error, not a
/// capacity-overflow panic or an abort on a huge allocation.
#[test]
fn absurd_thread_counts_are_a_build_error() {
    for n in [
        usize::MAX,
        usize::MAX / 2,
        1 << 40,
        Builder::MAX_THREADS + 1,
    ] {
        let err = Builder::new().num_threads(n).build().unwrap_err();
        assert_eq!(err.kind(), BuildErrorKind::InvalidConfig, "{n}: {err}");
        assert!(err.to_string().contains("num_threads"), "{err}");
    }
}
