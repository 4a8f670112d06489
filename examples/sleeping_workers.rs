//! Five sleeping workers finish together, in about one sleep.
//!
//! Python:
//!
//! ```python
//! def worker(i):
//!     print("sleeping 10 sec from thread {}".format(i))
//!     time.sleep(10)
//!     print("finished sleeping from thread {}".format(i))
//! for i in range(5):
//!     Thread(target=worker, args=(i,)).start()
//! ```
//!
//! The same on a pool of five (the sleep shortened to 100 ms): the whole
//! run takes about one sleep, not five.
//!
//! Run with `cargo run --release --example sleeping_workers`.

use std::time::{Duration, Instant};

use futurepool::ThreadPool;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ThreadPool::new(5)?;
    let nap = Duration::from_millis(100);
    let start = Instant::now();
    let handles: Vec<_> = (0..5)
        .map(|i| {
            pool.submit(move || {
                println!("sleeping {nap:?} from task {i}");
                std::thread::sleep(nap);
                println!("finished sleeping from task {i}");
            })
        })
        .collect();
    for h in handles {
        h.get()?;
    }
    let took = start.elapsed();
    println!(
        "5 sleeps of {nap:?} took {took:?} in all ({:.1} sleeps' worth)",
        took.as_secs_f64() / nap.as_secs_f64()
    );
    Ok(())
}
