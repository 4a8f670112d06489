//! Waking exactly one waiting worker per piece of work.
//!
//! Python uses a Semaphore so that each release() wakes a single thread:
//!
//! ```python
//! def worker(n, sema):
//!     sema.acquire()
//!     print('Working', n)
//! sema = threading.Semaphore(0)
//! for n in range(10):
//!     Thread(target=worker, args=(n, sema)).start()
//! sema.release()   # Working 0
//! sema.release()   # Working 1
//! ```
//!
//! A futurepool pool is that semaphore built in: its idle workers sleep,
//! and each submission wakes exactly one of them (not all, as an Event
//! would). The stats show one fewer idle worker per task in progress.
//!
//! Run with `cargo run --release --example wake_one_worker`.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use futurepool::{Builder, ThreadPool};

fn wait_for_idle_workers(pool: &ThreadPool, n: usize) {
    let end = Instant::now() + Duration::from_secs(10);
    while pool.stats().idle_workers != n && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Builder::new()
        .num_threads(10)
        .thread_name("worker")
        .build()?;
    wait_for_idle_workers(&pool, 10);
    println!("{} workers asleep", pool.stats().idle_workers);

    let mut gates = Vec::new();
    let mut handles = Vec::new();
    for n in 0..2 {
        let (release, gate) = mpsc::channel::<()>();
        let (working_tx, working) = mpsc::channel();
        // sema.release(): one task, one worker woken.
        handles.push(pool.submit(move || {
            let me = std::thread::current().name().unwrap_or("?").to_string();
            println!("Working {n} (on {me})");
            working_tx.send(()).unwrap();
            let _ = gate.recv(); // hold the worker so the count is visible
        }));
        working.recv_timeout(Duration::from_secs(10))?;
        wait_for_idle_workers(&pool, 10 - (n + 1));
        println!("  -> {} workers still asleep", pool.stats().idle_workers);
        gates.push(release);
    }
    drop(gates);
    for h in handles {
        h.get()?;
    }
    Ok(())
}
