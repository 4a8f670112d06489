//! futurepool in one screen: submit and get, a panic caught, a timeout,
//! cancel, callbacks, nested work, and a graceful shutdown.
//!
//! Run with `cargo run --release --example quickstart`.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futurepool::{TaskError, ThreadPool};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Arc::new(
        ThreadPool::builder()
            .num_threads(4)
            .thread_name("quick")
            .build()?,
    );
    println!("built a pool of {} workers", pool.num_threads());

    // 1. Submit now, collect later (Python: apply_async(...).get()).
    let handle = pool.submit(|| (1..=10u64).product::<u64>());
    println!("10! = {}", handle.get()?);

    // 2. Many tasks, results in submission order.
    let handles: Vec<_> = (0..8u64).map(|i| pool.submit(move || i * i)).collect();
    let squares: Vec<u64> = handles
        .into_iter()
        .map(|h| h.get())
        .collect::<Result<_, _>>()?;
    println!("squares: {squares:?}");

    // 3. A panicking task is caught; the pool carries on.
    std::panic::set_hook(Box::new(|_| {})); // keep the demo output tidy
    let boom = pool.submit(|| -> u32 { panic!("something went wrong") });
    match boom.get() {
        Err(e @ TaskError::Panicked(_)) => println!("caught: {e}"),
        other => println!("unexpected: {other:?}"),
    }
    let _ = std::panic::take_hook();
    println!("pool still works: 2 + 2 = {}", pool.apply(|| 2 + 2)?);

    // 4. A bounded wait that runs out leaves the handle usable.
    let (release, gate) = mpsc::channel::<()>();
    let slow = pool.submit(move || {
        let _ = gate.recv();
        "finally"
    });
    match slow.get_timeout(Duration::from_millis(50)) {
        Err(TaskError::Timeout) => println!("not done after 50 ms (timeout), still pending"),
        other => println!("unexpected: {other:?}"),
    }
    release.send(())?;
    println!("then: {}", slow.get_timeout(Duration::from_secs(5))?);

    // 5. Cancel a task that has not started.
    let single = ThreadPool::new(1)?;
    let (release, gate) = mpsc::channel::<()>();
    let blocker = single.submit(move || {
        let _ = gate.recv();
    });
    let queued = single.submit(|| "never runs");
    println!(
        "cancel queued task: {} (cancelled: {})",
        queued.cancel(),
        queued.cancelled()
    );
    println!("its outcome: {:?}", queued.get());
    release.send(())?;
    blocker.get()?;

    // 6. A callback, run when the task is done.
    let (tx, rx) = mpsc::channel();
    let h = pool.submit(|| 99);
    h.add_done_callback(move |r| {
        let _ = tx.send(format!("callback saw {r:?}"));
    });
    println!("{}", rx.recv_timeout(Duration::from_secs(5))?);

    // 7. Nested submit + get from inside the pool never deadlocks.
    let inner = pool.clone();
    let nested = pool.submit(move || {
        let parts: Vec<_> = (0..4u64).map(|i| inner.submit(move || i + 1)).collect();
        parts.into_iter().map(|p| p.get().unwrap()).sum::<u64>()
    });
    println!("nested sum = {}", nested.get()?);

    // 8. Graceful shutdown: queued work runs, then the workers exit.
    let started = Instant::now();
    let last: Vec<_> = (0..4)
        .map(|i| {
            pool.submit(move || {
                std::thread::sleep(Duration::from_millis(20));
                i
            })
        })
        .collect();
    pool.shutdown(true, false);
    println!(
        "shutdown(wait=true) returned after {:?}; results: {:?}",
        started.elapsed(),
        last.into_iter().map(|h| h.get()).collect::<Vec<_>>()
    );
    println!(
        "submit after shutdown: {:?}",
        pool.submit(|| 1).get().unwrap_err()
    );
    Ok(())
}
