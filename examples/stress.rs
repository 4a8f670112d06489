//! A short, self-checking workout of the pool, meant to run under valgrind
//! (scripts/leak_check.sh): plain, panicking, cancelled, nested and
//! deep-nested tasks, callbacks, dropped handles, terminate and busy drops.
//!
//! `cargo run --release --example stress -- [scale]` (default scale 1).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futurepool::{Builder, TaskError, ThreadPool};

const LONG: Duration = Duration::from_secs(120);

fn chain(pool: Arc<ThreadPool>, depth: usize) -> usize {
    if depth == 0 {
        return 0;
    }
    let p = pool.clone();
    pool.submit(move || chain(p, depth - 1))
        .get_timeout(LONG)
        .expect("nested level")
        + 1
}

fn main() {
    let scale: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    // Planned panics: keep them off stderr.
    std::panic::set_hook(Box::new(|_| {}));
    let pool = Arc::new(
        Builder::new()
            .num_threads(2)
            .thread_name("stress")
            .build()
            .unwrap(),
    );

    // Plain tasks, with callbacks, some handles dropped.
    let called = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for i in 0..200 * scale {
        let h = pool.submit(move || vec![i; 8]);
        let c = called.clone();
        h.add_done_callback(move |_| {
            c.fetch_add(1, Ordering::Relaxed);
        });
        if i % 3 == 0 {
            drop(h);
        } else {
            handles.push((i, h));
        }
    }
    for (i, h) in handles {
        assert_eq!(h.get_timeout(LONG), Ok(vec![i; 8]));
    }

    // Panicking tasks and callbacks.
    for i in 0..50 * scale {
        let h = pool.submit(move || -> String { panic!("planned {i}") });
        h.add_done_callback(|_| panic!("planned callback"));
        assert!(h.get_timeout(LONG).unwrap_err().is_panic());
    }

    // Cancellation behind a blocker.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let blocker = pool.submit(move || {
        let _ = rx.recv_timeout(LONG);
    });
    let queued: Vec<_> = (0..20 * scale)
        .map(|i| pool.submit(move || i.to_string()))
        .collect();
    let cancelled = queued.iter().filter(|h| h.cancel()).count();
    tx.send(()).unwrap();
    blocker.get_timeout(LONG).unwrap();
    for h in queued {
        match h.get_timeout(LONG) {
            Ok(_) | Err(TaskError::Cancelled) => {}
            Err(e) => panic!("{e}"),
        }
    }

    // Nesting, deep enough to use overflow stacks in a debug build.
    let p = pool.clone();
    assert_eq!(
        pool.submit(move || chain(p, 300 * scale)).get_timeout(LONG),
        Ok(300 * scale)
    );

    // Pools dropped while busy, one terminated with work queued.
    for k in 0..5 * scale {
        let busy = ThreadPool::new(2).unwrap();
        let hs: Vec<_> = (0..50).map(|i| busy.submit(move || vec![i; 4])).collect();
        if k % 2 == 0 {
            busy.terminate();
        }
        drop(busy);
        drop(hs);
    }

    drop(pool);
    let _ = std::panic::take_hook();
    println!(
        "stress example: ok ({} callbacks, {cancelled} cancelled)",
        called.load(Ordering::Relaxed)
    );
}
