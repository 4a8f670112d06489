//! `pool.map` over 1,000,000 u64 (`x * x + 1`) against rayon's
//! `par_iter().map().collect()` and a plain serial loop, side by side in
//! one run. Criterion reports time per call; with
//! `Throughput::Elements` it also reports elements per second, and the
//! summary printed at the end gives ns per item for each.
//!
//! Run: `cargo bench -p futurepool-benches --bench map`

use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, Criterion, Throughput};
use futurepool::ThreadPool;
use rayon::prelude::*;

const N: usize = 1_000_000;

fn f(x: u64) -> u64 {
    x.wrapping_mul(x).wrapping_add(1)
}

fn pools() -> (ThreadPool, rayon::ThreadPool) {
    let threads = num_cpus::get();
    let ours = ThreadPool::new(threads).unwrap();
    let theirs = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    (ours, theirs)
}

fn bench_map(c: &mut Criterion) {
    let data: Vec<u64> = (0..N as u64).collect();
    let (ours, theirs) = pools();
    let mut group = c.benchmark_group("map_1M_u64");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(5));

    group.bench_function("serial", |b| {
        b.iter(|| black_box(&data).iter().map(|&x| f(x)).collect::<Vec<u64>>())
    });
    group.bench_function("rayon_par_iter", |b| {
        b.iter(|| {
            theirs.install(|| {
                black_box(&data)
                    .par_iter()
                    .map(|&x| f(x))
                    .collect::<Vec<u64>>()
            })
        })
    });
    // pool.map takes its items by value ('static), so each call gets its own
    // copy of the input, made outside the timed part. The result is dropped
    // inside it, as `b.iter` does for the others (keeping it alive longer
    // would make every output a fresh, page-faulting allocation).
    group.bench_function("futurepool_map", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let input = data.clone();
                let start = Instant::now();
                black_box(ours.map(f, input).unwrap());
                timed += start.elapsed();
            }
            timed
        })
    });
    // The same from a range: the input is materialised inside the call.
    group.bench_function("futurepool_map_range", |b| {
        b.iter(|| ours.map(f, 0..black_box(N as u64)).unwrap())
    });
    group.finish();
}

/// A plain side-by-side summary in ns per item (median of a few rounds,
/// interleaved so background load hits all three alike).
fn summary() {
    let data: Vec<u64> = (0..N as u64).collect();
    let (ours, theirs) = pools();
    let rounds = 31;
    let mut serial = Vec::new();
    let mut rayon_t = Vec::new();
    let mut pool_t = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        black_box(data.iter().map(|&x| f(x)).collect::<Vec<u64>>());
        serial.push(t.elapsed());

        let t = Instant::now();
        black_box(theirs.install(|| data.par_iter().map(|&x| f(x)).collect::<Vec<u64>>()));
        rayon_t.push(t.elapsed());

        let input = data.clone();
        let t = Instant::now();
        black_box(ours.map(f, input).unwrap());
        pool_t.push(t.elapsed());
    }
    for (label, pick) in [("min", 0), ("median", rounds / 2)] {
        let per_item = |v: &mut Vec<Duration>| {
            v.sort();
            v[pick].as_nanos() as f64 / N as f64
        };
        let (s, r, p) = (
            per_item(&mut serial),
            per_item(&mut rayon_t),
            per_item(&mut pool_t),
        );
        println!(
            "summary, {} threads, {label} of {rounds}, ns per item: serial {s:.3}, rayon {r:.3}, \
             futurepool map {p:.3} (map/rayon {:.2}x, map/serial {:.2}x)",
            num_cpus::get(),
            p / r,
            p / s
        );
    }
}

criterion_group!(benches, bench_map);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
