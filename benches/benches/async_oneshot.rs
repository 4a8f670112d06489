//! 100,000 async tasks, each awaiting a `futures::channel::oneshot` that the
//! bench thread (outside every pool) completes, then collected through each
//! executor's own handle. futurepool's `spawn_async` against futures'
//! `ThreadPool` and tokio's multi-thread runtime, with the same number of
//! worker threads.
//!
//! `cargo bench -p futurepool-benches --bench async_oneshot` runs the
//! criterion groups, then a side-by-side round (executors interleaved,
//! median of several runs each) and prints the ratios. `FUTUREPOOL_BENCH_THREADS` sets the thread count
//! (default: the number of CPUs).

use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use futures::channel::oneshot;
use futures::task::SpawnExt;

const N: usize = 100_000;

fn threads() -> usize {
    std::env::var("FUTUREPOOL_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(num_cpus::get)
}

/// The oneshots, and what every task's value adds up to.
fn channels() -> (Vec<oneshot::Sender<usize>>, Vec<oneshot::Receiver<usize>>) {
    (0..N).map(|_| oneshot::channel()).unzip()
}

fn expected() -> usize {
    (0..N).map(|i| i + 1).sum()
}

fn send_all(senders: Vec<oneshot::Sender<usize>>) {
    for (i, tx) in senders.into_iter().enumerate() {
        tx.send(i).unwrap();
    }
}

fn run_futurepool(pool: &futurepool::ThreadPool) {
    let (senders, receivers) = channels();
    let handles: Vec<_> = receivers
        .into_iter()
        .map(|rx| pool.spawn_async(async move { rx.await.unwrap() + 1 }))
        .collect();
    send_all(senders);
    let sum: usize = handles.into_iter().map(|h| h.get().unwrap()).sum();
    assert_eq!(sum, expected());
}

fn run_futures(pool: &futures::executor::ThreadPool) {
    let (senders, receivers) = channels();
    let handles: Vec<_> = receivers
        .into_iter()
        .map(|rx| {
            pool.spawn_with_handle(async move { rx.await.unwrap() + 1 })
                .unwrap()
        })
        .collect();
    send_all(senders);
    let sum = futures::executor::block_on(async move {
        let mut sum = 0;
        for h in handles {
            sum += h.await;
        }
        sum
    });
    assert_eq!(sum, expected());
}

fn run_tokio(rt: &tokio::runtime::Runtime) {
    let (senders, receivers) = channels();
    let handles: Vec<_> = receivers
        .into_iter()
        .map(|rx| rt.spawn(async move { rx.await.unwrap() + 1 }))
        .collect();
    send_all(senders);
    let sum = rt.block_on(async move {
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, expected());
}

struct Executors {
    futurepool: futurepool::ThreadPool,
    futures: futures::executor::ThreadPool,
    tokio: tokio::runtime::Runtime,
}

impl Executors {
    fn new(n: usize) -> Self {
        Executors {
            futurepool: futurepool::ThreadPool::new(n).unwrap(),
            futures: futures::executor::ThreadPool::builder()
                .pool_size(n)
                .create()
                .unwrap(),
            tokio: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(n)
                .build()
                .unwrap(),
        }
    }
}

fn oneshots(c: &mut Criterion) {
    let n = threads();
    let ex = Executors::new(n);
    let mut group = c.benchmark_group(format!("async_oneshot_100k_{n}threads"));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("futurepool", |b| b.iter(|| run_futurepool(&ex.futurepool)));
    group.bench_function("futures_executor", |b| b.iter(|| run_futures(&ex.futures)));
    group.bench_function("tokio", |b| b.iter(|| run_tokio(&ex.tokio)));
    group.finish();
}

criterion_group!(benches, oneshots);

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Runs the three executors in turn, `rounds` times, and prints each one's
/// median and futurepool's time as a ratio to the others'.
fn side_by_side(rounds: usize) {
    let n = threads();
    let ex = Executors::new(n);
    let (mut fp, mut fx, mut tk) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        run_futurepool(&ex.futurepool);
        fp.push(t.elapsed());
        let t = Instant::now();
        run_futures(&ex.futures);
        fx.push(t.elapsed());
        let t = Instant::now();
        run_tokio(&ex.tokio);
        tk.push(t.elapsed());
    }
    let (fp, fx, tk) = (median(fp), median(fx), median(tk));
    println!("\nside by side: {N} tasks awaiting a oneshot, {n} threads, median of {rounds}");
    println!("  futurepool        {fp:?}");
    println!("  futures-executor  {fx:?}");
    println!("  tokio             {tk:?}");
    println!(
        "  futurepool / futures-executor = {:.2}   futurepool / tokio = {:.2}   (below 1: futurepool faster)",
        fp.as_secs_f64() / fx.as_secs_f64(),
        fp.as_secs_f64() / tk.as_secs_f64()
    );
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--profile-time") {
        return; // profiling one executor: no side-by-side round
    }
    let quick = args.iter().any(|a| a == "--test");
    side_by_side(if quick { 1 } else { 9 });
}
