//! Elastic pools against their peers (docs/performance.md, "Elastic
//! pools"):
//!
//! * E1 IO-like: 5,000 tasks each sleeping 1 ms, on a pool capped at 128
//!   threads and built fresh for each run (thread start-up included):
//!   futurepool `max_threads(128)`, Python's `ThreadPoolExecutor(128)`
//!   (through `python3`), the `threadpool` crate with 128 threads, tokio's
//!   `spawn_blocking` with `max_blocking_threads(128)`. Wall time and the
//!   threads each started; the ideal is 5,000 x 1 ms / 128 = 39 ms.
//! * E2 blocking compensation: a fixed pool of 2, 64 tasks each spending
//!   20 ms inside `futurepool::blocking` and then ~1 ms of CPU work;
//!   against the same tasks without `blocking` (64 x 20 ms / 2 = 640 ms of
//!   sleeping alone) and against 64 plain threads.
//! * E3 idle: an elastic pool that served an E1 burst shrinks to
//!   `min_threads` after its keep-alive; then the process's CPU time
//!   (getrusage) per idle second.
//! * E4 many workers: W1 (200,000 tiny tasks from outside, ns per task) and
//!   W2 (submit->get round trip on an idle pool, p50/p99) on a fixed pool
//!   of 2 and on an elastic pool capped at 128 (the echo-server setting).
//!
//! ```text
//! cargo bench -p futurepool-benches --bench elastic               # all, 5 reps
//! cargo bench -p futurepool-benches --bench elastic -- --reps 9 --only E1,E4
//! ```
//!
//! Repetitions are interleaved across systems (A, B, C, then A, B, C) so
//! load from other processes spreads over all of them; each row gives the
//! median and the range over the repetitions.

mod common;
use common::cpu_time_us;
use std::hint::black_box;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futurepool::{Builder, ThreadPool};

const TASKS: usize = 5_000;
const CAP: usize = 128;
const SLEEP: Duration = Duration::from_millis(1);

struct Row {
    name: String,
    samples: Vec<f64>,
    threads: Vec<usize>,
}

fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (s[s.len() / 2], s[0], s[s.len() - 1])
}

fn print_rows(title: &str, unit: &str, rows: &[Row]) {
    println!("\n{title}");
    println!("| system | median {unit} | range | threads started |");
    println!("|---|---|---|---|");
    for r in rows {
        let (med, lo, hi) = stats(&r.samples);
        let threads = if r.threads.is_empty() {
            "-".to_string()
        } else {
            let (lo, hi) = (
                r.threads.iter().min().unwrap(),
                r.threads.iter().max().unwrap(),
            );
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        };
        println!("| {} | {med:.1} | {lo:.1}-{hi:.1} | {threads} |", r.name);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------- E1 ---

fn e1_futurepool() -> (f64, usize) {
    let start = Instant::now();
    let pool = Builder::new().max_threads(CAP).build().unwrap();
    let handles: Vec<_> = (0..TASKS)
        .map(|_| pool.submit(|| std::thread::sleep(SLEEP)))
        .collect();
    for h in handles {
        h.get().unwrap();
    }
    let t = ms(start.elapsed());
    let threads = pool.stats().peak_threads;
    drop(pool);
    (t, threads)
}

fn e1_threadpool() -> (f64, usize) {
    let start = Instant::now();
    let pool = threadpool::ThreadPool::new(CAP);
    let (tx, rx) = std::sync::mpsc::channel();
    for _ in 0..TASKS {
        let tx = tx.clone();
        pool.execute(move || {
            std::thread::sleep(SLEEP);
            let _ = tx.send(());
        });
    }
    drop(tx);
    assert_eq!(rx.iter().count(), TASKS);
    let t = ms(start.elapsed());
    pool.join();
    (t, CAP)
}

fn e1_tokio() -> (f64, usize) {
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let start = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(CAP)
        .on_thread_start(move || {
            s.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    let handles: Vec<_> = (0..TASKS)
        .map(|_| rt.spawn_blocking(|| std::thread::sleep(SLEEP)))
        .collect();
    rt.block_on(async {
        for h in handles {
            h.await.unwrap();
        }
    });
    let t = ms(start.elapsed());
    drop(rt);
    // One of the threads is the runtime's worker, not a blocking thread.
    (t, started.load(Ordering::Relaxed).saturating_sub(1))
}

const PYTHON: &str = r#"
import time, concurrent.futures as cf
def work(_): time.sleep(0.001)
start = time.perf_counter()
ex = cf.ThreadPoolExecutor(max_workers=128)
list(ex.map(work, range(5000)))
t = (time.perf_counter() - start) * 1e3
print(t, len(ex._threads))
ex.shutdown()
"#;

fn e1_python() -> Option<(f64, usize)> {
    let out = Command::new("python3").args(["-c", PYTHON]).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut it = text.split_whitespace();
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// One empty row per system name.
fn rows_named(names: &[&str]) -> Vec<Row> {
    names
        .iter()
        .map(|n| Row {
            name: n.to_string(),
            samples: vec![],
            threads: vec![],
        })
        .collect()
}

fn e1(reps: usize) {
    let mut rows = rows_named(&[
        "futurepool max_threads(128)",
        "Python ThreadPoolExecutor(128)",
        "threadpool crate (128)",
        "tokio spawn_blocking (max 128)",
    ]);
    for _ in 0..reps {
        let runs: [Option<(f64, usize)>; 4] = [
            Some(e1_futurepool()),
            e1_python(),
            Some(e1_threadpool()),
            Some(e1_tokio()),
        ];
        for (row, run) in rows.iter_mut().zip(runs) {
            if let Some((t, n)) = run {
                row.samples.push(t);
                row.threads.push(n);
            }
        }
    }
    rows.retain(|r| !r.samples.is_empty());
    print_rows(
        "E1 IO-like: 5,000 x 1 ms sleeps, cap 128 (ideal 39.1 ms)",
        "ms",
        &rows,
    );
}

// ---------------------------------------------------------------- E2 ---

/// About 1 ms of CPU work.
fn cpu_work() -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..400_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    black_box(x)
}

const E2_TASKS: usize = 64;
const E2_BLOCK: Duration = Duration::from_millis(20);

fn e2_pool(mark: bool) -> (f64, usize) {
    let pool = ThreadPool::new(2).unwrap();
    let start = Instant::now();
    let handles: Vec<_> = (0..E2_TASKS)
        .map(|_| {
            pool.submit(move || {
                if mark {
                    futurepool::blocking(|| std::thread::sleep(E2_BLOCK));
                } else {
                    std::thread::sleep(E2_BLOCK);
                }
                cpu_work()
            })
        })
        .collect();
    for h in handles {
        h.get().unwrap();
    }
    let t = ms(start.elapsed());
    (t, pool.stats().peak_threads)
}

fn e2_threads() -> (f64, usize) {
    let start = Instant::now();
    let threads: Vec<_> = (0..E2_TASKS)
        .map(|_| {
            std::thread::spawn(|| {
                std::thread::sleep(E2_BLOCK);
                cpu_work()
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    (ms(start.elapsed()), E2_TASKS)
}

fn e2(reps: usize) {
    let start = Instant::now();
    cpu_work();
    let one = ms(start.elapsed());
    let mut rows = rows_named(&[
        "fixed pool of 2, with blocking(..)",
        "fixed pool of 2, without",
        "64 OS threads",
    ]);
    for _ in 0..reps {
        for (row, (t, n)) in rows
            .iter_mut()
            .zip([e2_pool(true), e2_pool(false), e2_threads()])
        {
            row.samples.push(t);
            row.threads.push(n);
        }
    }
    print_rows(
        &format!("E2 blocking compensation: 64 x (20 ms blocked + {one:.2} ms CPU) on 2 workers"),
        "ms",
        &rows,
    );
}

// ---------------------------------------------------------------- E3 ---

/// Threads of this process (Linux), or 0 where /proc is not there.
fn os_threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Waits until the process's thread count has not changed for 50 ms, at
/// most 5 s.
fn settle_threads() {
    let start = Instant::now();
    let mut last = os_threads();
    let mut stable_since = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
        let now = os_threads();
        if now != last {
            last = now;
            stable_since = Instant::now();
        } else if stable_since.elapsed() >= Duration::from_millis(50) {
            return;
        }
    }
}

fn e3(reps: usize) {
    println!("\nE3 idle: after a burst on max_threads(128), keep_alive 200 ms");
    println!("| min_threads | threads after the burst | after keep-alive | shrink took | idle CPU µs/s (range) |");
    println!("|---|---|---|---|---|");
    for min in [0usize, 2] {
        let mut cpu = vec![];
        let mut peak = 0;
        let mut after = 0;
        let mut took = vec![];
        for _ in 0..reps {
            let pool = Builder::new()
                .min_threads(min)
                .max_threads(CAP)
                .keep_alive(Duration::from_millis(200))
                .build()
                .unwrap();
            let handles: Vec<_> = (0..TASKS)
                .map(|_| pool.submit(|| std::thread::sleep(SLEEP)))
                .collect();
            for h in handles {
                h.get().unwrap();
            }
            peak = pool.stats().threads;
            let done = Instant::now();
            while pool.stats().threads > min && done.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(5));
            }
            took.push(ms(done.elapsed()));
            after = pool.stats().threads;
            // A retired worker leaves the count at its retire decision; its
            // OS thread then still runs its exit path (thread-local
            // destructors, unmapping its stack). Measure the pool at rest,
            // not 128 thread exits: wait until the process's thread count
            // has stopped falling (bounded).
            settle_threads();
            let secs = 2.0;
            let c0 = cpu_time_us();
            std::thread::sleep(Duration::from_secs_f64(secs));
            cpu.push((cpu_time_us() - c0) / secs);
            drop(pool);
        }
        let (med, lo, hi) = stats(&cpu);
        let (tmed, _, _) = stats(&took);
        println!("| {min} | {peak} | {after} | {tmed:.0} ms | {med:.1} ({lo:.1}-{hi:.1}) |");
    }
    let c0 = cpu_time_us();
    std::thread::sleep(Duration::from_secs(2));
    println!("(no pool at all: {:.1} µs/s)", (cpu_time_us() - c0) / 2.0);
}

// ---------------------------------------------------------------- E4 ---

fn w1(pool: &ThreadPool, n: usize) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..n as u64).map(|i| pool.submit(move || i)).collect();
    let sum: u64 = handles.into_iter().map(|h| h.get().unwrap()).sum();
    assert_eq!(sum, (n as u64 - 1) * n as u64 / 2);
    start.elapsed().as_nanos() as f64 / n as f64
}

fn w2(pool: &ThreadPool, trips: usize) -> (f64, f64) {
    for _ in 0..200 {
        pool.submit(|| black_box(1u64)).get().unwrap();
    }
    let mut lat: Vec<f64> = (0..trips)
        .map(|_| {
            let start = Instant::now();
            black_box(pool.submit(|| black_box(1u64)).get().unwrap());
            start.elapsed().as_nanos() as f64
        })
        .collect();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (lat[trips / 2], lat[trips * 99 / 100])
}

fn e4(reps: usize) {
    let pools = [
        ("fixed pool of 2", Builder::new().num_threads(2)),
        ("elastic, max_threads(128)", Builder::new().max_threads(CAP)),
    ];
    let mut w1s = vec![vec![]; 2];
    let mut p50 = vec![vec![]; 2];
    let mut p99 = vec![vec![]; 2];
    let mut threads = vec![vec![]; 2];
    for _ in 0..reps {
        for (i, (_, builder)) in pools.iter().enumerate() {
            let pool = builder.clone().build().unwrap();
            w1s[i].push(w1(&pool, 200_000));
            let (a, b) = w2(&pool, 20_000);
            p50[i].push(a);
            p99[i].push(b);
            threads[i].push(pool.stats().peak_threads);
        }
    }
    println!("\nE4 many workers: W1 (200,000 tasks) and W2 (20,000 round trips)");
    println!(
        "| pool | W1 ns/task (range) | W2 p50 ns (range) | W2 p99 ns (range) | threads started |"
    );
    println!("|---|---|---|---|---|");
    for (i, (name, _)) in pools.iter().enumerate() {
        let f = |v: &[f64]| {
            let (m, lo, hi) = stats(v);
            format!("{m:.0} ({lo:.0}-{hi:.0})")
        };
        let (tlo, thi) = (
            threads[i].iter().min().unwrap(),
            threads[i].iter().max().unwrap(),
        );
        println!(
            "| {name} | {} | {} | {} | {tlo}-{thi} |",
            f(&w1s[i]),
            f(&p50[i]),
            f(&p99[i])
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let reps: usize = value("--reps").and_then(|v| v.parse().ok()).unwrap_or(5);
    let only = value("--only");
    let runs = |w: &str| only.as_ref().is_none_or(|o| o.split(',').any(|x| x == w));
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", load.trim());
    }
    if runs("E1") {
        e1(reps);
    }
    if runs("E2") {
        e2(reps);
    }
    if runs("E3") {
        e3(reps.min(3));
    }
    if runs("E4") {
        e4(reps);
    }
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("\nload average at end: {}", load.trim());
    }
}
