//! Coordinating startup: know that the workers are ready, and that a task
//! has started.
//!
//! Python passes an Event to the thread and waits on it:
//!
//! ```python
//! def countdown(n, started_evt):
//!     print('countdown starting')
//!     started_evt.set()
//!     ...
//! started_evt = Event()
//! t = Thread(target=countdown, args=(10, started_evt))
//! t.start()
//! started_evt.wait()
//! print('countdown is running')
//! ```
//!
//! futurepool: `Builder::initializer` runs on every worker before it takes
//! any task, and `build()` returns only once all of them have finished, so
//! a built pool is a ready pool. For "this task has started", a one-shot
//! channel is Rust's Event; and `AsyncResult::running()` says it too.
//!
//! Run with `cargo run --release --example startup_event`.

use std::sync::mpsc;
use std::time::Duration;

use futurepool::Builder;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("Launching the pool");
    let pool = Builder::new()
        .num_threads(3)
        .thread_name("countdown")
        .initializer(|i| println!("worker countdown-{i} starting (connecting, warming caches...)"))
        .build()?;
    println!("build() returned: every worker has run its initializer");

    let (started_evt, started) = mpsc::channel();
    let countdown = pool.submit(move || {
        println!("countdown starting");
        started_evt.send(()).unwrap(); // started_evt.set()
        for n in (1..=5).rev() {
            println!("T-minus {n}");
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    started.recv_timeout(Duration::from_secs(10))?; // started_evt.wait()
    println!("countdown is running (running() = {})", countdown.running());
    countdown.get()?;
    Ok(())
}
