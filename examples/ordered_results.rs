//! Results of many tasks, in submission order.
//!
//! Python collects them through a shared list that each thread writes at
//! its own index, then joins every thread:
//!
//! ```python
//! threads = [None] * 10
//! results = [None] * 10
//! for i in range(len(threads)):
//!     threads[i] = Thread(target=foo, args=('world!', results, i))
//!     threads[i].start()
//! for i in range(len(threads)):
//!     threads[i].join()
//! print(" ".join(results))
//! ```
//!
//! With futurepool each task returns its value and the handles are
//! collected in the order they were submitted: no shared list, no index
//! bookkeeping, whatever order the tasks finish in.
//!
//! Run with `cargo run --release --example ordered_results`.

use std::time::Duration;

use futurepool::ThreadPool;

fn foo(bar: &str, index: usize) -> String {
    // Later tasks finish first, to show that the order still holds.
    std::thread::sleep(Duration::from_millis(2 * (10 - index as u64)));
    println!("hello {bar} (task {index} finishing)");
    String::from("foo")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ThreadPool::new(4)?;
    let handles: Vec<_> = (0..10)
        .map(|i| pool.submit(move || foo("world!", i)))
        .collect();
    let results = handles
        .into_iter()
        .map(|h| h.get())
        .collect::<Result<Vec<_>, _>>()?;
    println!("{}", results.join(" "));
    Ok(())
}
