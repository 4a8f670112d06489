//! A CPU-bound job that really runs faster on more threads.
//!
//! Python's threads cannot do this: the GIL lets one thread run Python
//! code at a time, so a CPU-bound job split across threads is no faster
//! (as the Python documentation says, threads "should generally not be used for
//! computationally intensive tasks"). Rust threads have no such lock.
//!
//! The job: count the primes below a limit by trial division, split into
//! chunks. It runs once on a one-thread pool and once on a pool with one
//! thread per CPU, and prints the speed-up (expect close to the number of
//! idle cores).
//!
//! Run with `cargo run --release --example cpu_speedup`.

use std::time::{Duration, Instant};

use futurepool::ThreadPool;

const LIMIT: u64 = 1_500_000;
const CHUNKS: u64 = 64;

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 1;
    }
    true
}

fn count_primes(pool: &ThreadPool) -> Result<(u64, Duration), futurepool::TaskError> {
    let start = Instant::now();
    let step = LIMIT / CHUNKS;
    let handles: Vec<_> = (0..CHUNKS)
        .map(|c| {
            let (lo, hi) = (
                c * step,
                if c == CHUNKS - 1 {
                    LIMIT
                } else {
                    (c + 1) * step
                },
            );
            pool.submit(move || (lo..hi).filter(|&n| is_prime(n)).count() as u64)
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.get()?;
    }
    Ok((total, start.elapsed()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cpus = num_cpus();
    let one = ThreadPool::new(1)?;
    let many = ThreadPool::new(cpus)?;

    let (primes1, t1) = count_primes(&one)?;
    println!("1 thread:   {primes1} primes below {LIMIT} in {t1:?}");
    let (primes_n, tn) = count_primes(&many)?;
    println!("{cpus} threads: {primes_n} primes below {LIMIT} in {tn:?}");
    assert_eq!(primes1, primes_n);
    println!(
        "speed-up: {:.2}x on {cpus} threads (Python threads: about 1x, because of the GIL)",
        t1.as_secs_f64() / tn.as_secs_f64()
    );
    Ok(())
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
