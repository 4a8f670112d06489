//! An async pipeline on one pool: async stages that wait on channels, and
//! blocking CPU work as ordinary closure tasks, all on the same workers.
//!
//! ```text
//!   producer thread ──(bounded channel)──▶ dispatch (async task)
//!       block_on(send)                       │ submit(count_primes) per item
//!                                            ▼
//!                          (channel of AsyncResults, in order)
//!                                            │
//!                                 collect (async task): awaits each
//!                                 handle, sums, reports progress
//! ```
//!
//! The producer is a plain thread that pushes work with backpressure using
//! `futurepool::block_on`. The dispatcher, an async task, turns each item
//! into a blocking closure task and forwards its handle; the collector,
//! another async task, awaits the handles in order. Neither async task holds
//! a worker while it waits, so the CPU work gets every thread. The program
//! ends by itself when the producer is done.
//!
//! Run with `cargo run --release --example async_pipeline`.

use std::sync::Arc;
use std::time::Instant;

use futurepool::{AsyncResult, ThreadPool};
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};

/// Blocking CPU work: the number of primes below `n` (trial division).
fn count_primes_below(n: u64) -> u64 {
    (2..n)
        .filter(|&k| (2..).take_while(|d| d * d <= k).all(|d| k % d != 0))
        .count() as u64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let pool = Arc::new(
        ThreadPool::builder()
            .num_threads(4)
            .thread_name("pipe")
            .build()?,
    );
    const ITEMS: u64 = 200;

    // Stage 0: a producer outside the pool. The channel is bounded, so it
    // waits (parked, in block_on) whenever the pipeline is behind.
    let (mut raw_tx, mut raw_rx) = mpsc::channel::<u64>(8);
    let producer = std::thread::spawn(move || {
        for i in 0..ITEMS {
            futurepool::block_on(raw_tx.send(20_000 + i * 100)).expect("dispatcher is alive");
        }
        // Dropping the sender ends the stream: the pipeline drains and stops.
    });

    // Stage 1 (async): dispatch each item as a blocking closure task.
    let (mut handles_tx, mut handles_rx) = mpsc::channel::<(u64, AsyncResult<u64>)>(32);
    let dispatcher_pool = pool.clone();
    let dispatcher = pool.spawn_async(async move {
        let mut dispatched = 0u64;
        while let Some(n) = raw_rx.next().await {
            let handle = dispatcher_pool.submit(move || count_primes_below(n));
            handles_tx
                .send((n, handle))
                .await
                .expect("collector is alive");
            dispatched += 1;
        }
        dispatched
    });

    // Stage 2 (async): await the closure tasks in order and aggregate.
    let collector = pool.spawn_async(async move {
        let (mut total, mut largest) = (0u64, (0u64, 0u64));
        while let Some((n, handle)) = handles_rx.next().await {
            let primes = handle.await.expect("prime counting does not panic");
            total += primes;
            if primes > largest.1 {
                largest = (n, primes);
            }
            if n % 5_000 == 0 {
                println!("  below {n}: {primes} primes");
            }
        }
        (total, largest)
    });

    let (total, (n, primes)) = collector.get()?;
    let dispatched = dispatcher.get()?;
    producer.join().expect("producer thread");
    println!(
        "{dispatched} items through the pipeline on {} workers in {:.2?}",
        pool.num_threads(),
        started.elapsed()
    );
    println!("sum of the prime counts: {total}; the largest: {primes} primes below {n}");
    assert_eq!(dispatched, ITEMS);
    assert_eq!(primes, count_primes_below(n));
    Ok(())
}
