//! A lazy pipeline with `imap_unordered` over an endless generator: test
//! numbers for primality in parallel, keep the primes with a long Collatz
//! trajectory, and stop after the first N hits. The generator is pulled
//! only as results are consumed, so it never runs ahead by more than the
//! in-flight window, and dropping the iterator cancels what is queued.
//!
//! Run with `cargo run --release --example imap_pipeline`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futurepool::ThreadPool;

const WANTED: usize = 20;
const START: u64 = 1_000_000_000;

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n % 2 == 0 {
        return n == 2;
    }
    let mut d = 3;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 2;
    }
    true
}

fn collatz_steps(mut n: u64) -> u32 {
    let mut steps = 0;
    while n != 1 {
        n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
        steps += 1;
    }
    steps
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ThreadPool::new(4)?;
    let pulled = Arc::new(AtomicU64::new(0));
    let counter = pulled.clone();

    // Endless: START, START + 1, ... (counted as the pipeline pulls them).
    let candidates = (START..).inspect(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    });

    let hits: Vec<(u64, u32)> = pool
        .imap_unordered(
            |n: u64| is_prime(n).then(|| (n, collatz_steps(n))),
            candidates,
        )
        .chunksize(16)
        .buffersize(8)
        .filter_map(|r| r.expect("the pipeline's function does not panic"))
        .filter(|&(_, steps)| steps > 150)
        .take(WANTED)
        .collect();

    for (n, steps) in &hits {
        println!("{n} is prime, {steps} Collatz steps");
    }
    let pulled = pulled.load(Ordering::Relaxed);
    let highest = hits.iter().map(|h| h.0).max().unwrap_or(START);
    println!(
        "{} hits; pulled {} candidates (up to {}), at most 8 chunks of 16 ahead",
        hits.len(),
        pulled,
        START + pulled - 1
    );
    assert_eq!(hits.len(), WANTED);
    assert!(
        pulled <= highest - START + 1 + 8 * 16 + 16,
        "ran ahead too far"
    );
    Ok(())
}
