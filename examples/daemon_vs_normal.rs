//! Daemon versus normal pools at program exit.
//!
//! Python: the interpreter waits for non-daemon threads; daemon threads
//! are killed when the main thread ends.
//!
//! ```python
//! t = Thread(target=countdown, args=(10,))              # main waits for it
//! t = Thread(target=countdown, args=(10,), daemon=True) # killed at exit
//! ```
//!
//! futurepool: dropping a normal pool waits for all queued and running
//! work (like leaving a `with ThreadPoolExecutor()` block); dropping a
//! daemon pool (`Builder::daemon(true)`) returns at once and its work is
//! abandoned when the process exits.
//!
//! Run with `cargo run --release --example daemon_vs_normal`.

use std::time::{Duration, Instant};

use futurepool::Builder;

fn countdown(name: &'static str, n: u32) {
    for i in (1..=n).rev() {
        println!("{name}: T-minus {i}");
        std::thread::sleep(Duration::from_millis(15));
    }
    println!("{name}: liftoff");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    {
        let normal = Builder::new().num_threads(1).build()?;
        normal.submit(|| countdown("normal", 3));
        println!("main: dropping the normal pool (it waits for the countdown)");
    }
    println!("main: normal pool dropped after {:?}\n", start.elapsed());

    let start = Instant::now();
    {
        let daemon = Builder::new().num_threads(1).daemon(true).build()?;
        daemon.submit(|| countdown("daemon", 100));
        std::thread::sleep(Duration::from_millis(40));
        println!("main: dropping the daemon pool (it does not wait)");
    }
    println!(
        "main: daemon pool dropped after {:?}; exiting now abandons its countdown",
        start.elapsed()
    );
    Ok(())
}
