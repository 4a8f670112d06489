//! Producer and consumers with a bounded queue and a graceful shutdown.
//!
//! Python shares a Queue between producer and consumer threads, and needs
//! a sentinel value to tell consumers to stop:
//!
//! ```python
//! _sentinel = object()
//! def consumer(in_q):
//!     while True:
//!         data = in_q.get()
//!         if data is _sentinel:
//!             in_q.put(_sentinel)
//!             break
//!         ...
//! q = Queue(maxsize=20)
//! ```
//!
//! futurepool: the pool is the queue plus the consumers. Each item is a
//! task; `Builder::max_queued` is `Queue(maxsize=...)` (a producer that
//! outruns the consumers blocks in `submit`); `close()` + `join()` is the
//! shutdown: everything queued is consumed, then the workers exit. No
//! sentinel.
//!
//! Run with `cargo run --release --example producer_consumer`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futurepool::Builder;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let consumers = Arc::new(
        Builder::new()
            .num_threads(3)
            .thread_name("consumer")
            .max_queued(5)
            .build()?,
    );
    let total = Arc::new(AtomicU64::new(0));

    let producer = {
        let consumers = consumers.clone();
        let total = total.clone();
        std::thread::spawn(move || {
            for item in 0..30u64 {
                let total = total.clone();
                // Blocks while 5 items are already waiting: backpressure.
                consumers.submit(move || {
                    std::thread::sleep(Duration::from_millis(2)); // "process the data"
                    let me = std::thread::current().name().unwrap_or("?").to_string();
                    println!("{me} consumed {item}");
                    total.fetch_add(item, Ordering::Relaxed);
                });
                println!("produced {item} (queued now: {})", consumers.stats().queued);
            }
        })
    };
    producer.join().expect("producer panicked");

    // The graceful shutdown: no more items, drain the queue, stop.
    consumers.close();
    consumers.join();
    println!(
        "all consumed: sum = {} (expected {})",
        total.load(Ordering::Relaxed),
        (0..30u64).sum::<u64>()
    );
    Ok(())
}
