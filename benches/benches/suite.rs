//! The futurepool benchmark suite: workloads W1..W8 of docs/performance.md,
//! run side by side against the peers a user would otherwise pick (rayon,
//! the `threadpool` crate, futures' `ThreadPool`, tokio's `spawn_blocking`,
//! `std::thread::spawn` where N is small), every pool with the same thread
//! count.
//!
//! A custom runner rather than criterion: W2 needs per-round-trip
//! percentiles, W5 needs process CPU time (getrusage) and W6 resident memory,
//! both measured in a fresh child process per system (the suite re-runs
//! itself with `--child`), so one system's freed memory or lingering threads
//! never pollute another's numbers. Repetitions are interleaved across
//! systems (system A, B, C, then A, B, C again) so that load from other
//! processes on a shared machine spreads over all of them, and the median is
//! reported.
//!
//! ```text
//! cargo bench -p futurepool-benches --bench suite             # full suite
//! cargo bench -p futurepool-benches --bench suite -- --quick  # CI smoke: seconds, no thresholds
//! cargo bench -p futurepool-benches --bench suite -- --only W1,W2 --threads 2 --reps 5
//! ```
//!
//! Results: a table on stdout, `target/bench-results.json` (every sample) and
//! `target/bench-results.md` (the tables of docs/performance.md), in the
//! workspace's target directory (`--out PATH` without extension to change).
//! `scripts/bench_report.sh` runs the full suite, keeps the JSON as
//! docs/bench-results.json and redraws the plots with
//! `scripts/plot_bench.py`.

mod common;
use common::cpu_time_us;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use futurepool::ThreadPool;
use futures::channel::oneshot;
use futures::executor::block_on;
use futures::task::SpawnExt;
use rayon::prelude::*;

// ---------------------------------------------------------------- config ---

struct Config {
    quick: bool,
    threads: usize,
    sweep: Vec<usize>,
    reps: usize,
    only: Option<Vec<String>>,
    /// Run only the systems whose name contains one of these.
    systems: Option<Vec<String>>,
    out: String,
}

/// `bench-results` in the workspace's target directory (cargo runs a bench
/// from its package's directory, so a relative path would land in
/// benches/).
fn default_out() -> String {
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .unwrap_or(tmp)
        .join("bench-results")
        .display()
        .to_string()
}

impl Config {
    fn from_args(args: &[String]) -> Config {
        let quick = args.iter().any(|a| a == "--quick");
        let value = |name: &str| {
            args.iter()
                .position(|a| a == name)
                .and_then(|i| args.get(i + 1))
                .cloned()
        };
        let threads = value("--threads")
            .map(|v| v.parse().expect("--threads N"))
            .unwrap_or(2);
        let sweep = match value("--sweep") {
            Some(v) => v
                .split(',')
                .map(|t| t.parse().expect("--sweep 1,2,4,8"))
                .collect(),
            None if quick => vec![threads],
            None => vec![1, 2, 4, 8, 32, 128],
        };
        Config {
            quick,
            threads,
            sweep,
            reps: value("--reps")
                .map(|v| v.parse().expect("--reps N"))
                .unwrap_or(if quick { 1 } else { 5 }),
            only: value("--only").map(|v| v.split(',').map(|s| s.to_uppercase()).collect()),
            systems: value("--systems").map(|v| v.split(',').map(str::to_string).collect()),
            out: value("--out").unwrap_or_else(default_out),
        }
    }

    fn wants(&self, workload: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|w| w == workload))
    }

    fn runs(&self, system: &str) -> bool {
        self.systems
            .as_ref()
            .is_none_or(|s| s.iter().any(|p| system.contains(p.as_str())))
    }

    /// `full` normally, `quick` in CI smoke mode.
    fn size(&self, full: usize, quick: usize) -> usize {
        if self.quick {
            quick
        } else {
            full
        }
    }
}

// --------------------------------------------------------------- results ---

/// One measured number: the median of its samples.
struct Record {
    workload: &'static str,
    system: String,
    threads: usize,
    metric: &'static str,
    unit: &'static str,
    samples: Vec<f64>,
    note: String,
}

impl Record {
    fn value(&self) -> f64 {
        median(&self.samples)
    }
}

#[derive(Default)]
struct Results {
    records: Vec<Record>,
    /// Systems that were not run, and why (e.g. they would deadlock).
    skipped: Vec<(&'static str, String, String)>,
}

impl Results {
    fn add(
        &mut self,
        workload: &'static str,
        system: &str,
        threads: usize,
        metric: &'static str,
        unit: &'static str,
        sample: f64,
    ) {
        match self.records.iter_mut().find(|r| {
            r.workload == workload
                && r.system == system
                && r.threads == threads
                && r.metric == metric
        }) {
            Some(r) => r.samples.push(sample),
            None => self.records.push(Record {
                workload,
                system: system.to_string(),
                threads,
                metric,
                unit,
                samples: vec![sample],
                note: String::new(),
            }),
        }
    }

    fn skip(&mut self, workload: &'static str, system: &str, why: &str) {
        self.skipped
            .push((workload, system.to_string(), why.to_string()));
    }

    fn get(&self, workload: &str, system: &str, threads: usize, metric: &str) -> Option<f64> {
        self.records
            .iter()
            .find(|r| {
                r.workload == workload
                    && r.system == system
                    && r.threads == threads
                    && r.metric == metric
            })
            .map(Record::value)
    }
}

fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).expect("no NaN samples"));
    if s.is_empty() {
        return f64::NAN;
    }
    let mid = s.len() / 2;
    if s.len() % 2 == 1 {
        s[mid]
    } else {
        (s[mid - 1] + s[mid]) / 2.0
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

// ----------------------------------------------------------------- pools ---

const FP: &str = "futurepool";
const FP_JOIN: &str = "futurepool join";
const RAYON_ONESHOT: &str = "rayon spawn+oneshot";
const RAYON_SHARED: &str = "rayon spawn+shared channel";
const RAYON_INSTALL: &str = "rayon install";
const RAYON_JOIN: &str = "rayon join";
const RAYON_PAR_ITER: &str = "rayon par_iter";
const RAYON_SPAWN: &str = "rayon spawn (no handle)";
const THREADPOOL: &str = "threadpool execute+mpsc";
const FUTURES: &str = "futures ThreadPool spawn_with_handle";
const TOKIO: &str = "tokio spawn_blocking";
const STD_THREAD: &str = "std::thread::spawn+join";
const SERIAL: &str = "serial loop";

fn futurepool(threads: usize) -> ThreadPool {
    ThreadPool::new(threads).expect("futurepool")
}

fn rayon_pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon")
}

fn futures_pool(threads: usize) -> futures::executor::ThreadPool {
    futures::executor::ThreadPool::builder()
        .pool_size(threads)
        .create()
        .expect("futures ThreadPool")
}

/// A current-thread runtime: its only threads are the `threads` blocking
/// threads that run `spawn_blocking` closures.
fn tokio_rt(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(threads)
        .build()
        .expect("tokio")
}

fn check_sum(n: usize, sum: u64) {
    let n = n as u64;
    assert_eq!(sum, n * (n - 1) / 2, "lost or wrong results");
}

/// Fire-and-forget submission, as each system spells it: for the workloads
/// where results come back some other way (a shared channel) and for
/// blocking every worker (W6).
trait Spawn {
    fn spawn_fn<F: FnOnce() + Send + 'static>(&self, f: F);
}

impl Spawn for ThreadPool {
    fn spawn_fn<F: FnOnce() + Send + 'static>(&self, f: F) {
        drop(self.submit(f));
    }
}

impl Spawn for rayon::ThreadPool {
    fn spawn_fn<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.spawn(f);
    }
}

impl Spawn for threadpool::ThreadPool {
    fn spawn_fn<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.execute(f);
    }
}

impl Spawn for futures::executor::ThreadPool {
    fn spawn_fn<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.spawn_ok(async move { f() });
    }
}

impl Spawn for tokio::runtime::Runtime {
    fn spawn_fn<F: FnOnce() + Send + 'static>(&self, f: F) {
        drop(self.spawn_blocking(f));
    }
}

/// rayon's nearest thing to a handle: `spawn` plus a oneshot channel per
/// task, whose receivers are returned in order.
fn rayon_oneshots(
    pool: &rayon::ThreadPool,
    items: std::ops::Range<u64>,
) -> Vec<oneshot::Receiver<u64>> {
    items
        .map(|i| {
            let (tx, rx) = oneshot::channel();
            pool.spawn(move || {
                let _ = tx.send(i);
            });
            rx
        })
        .collect()
}

/// W1 with no handle per task: every task sends `(index, value)` into one
/// shared channel, and the results are put back in order.
fn w1_shared_channel(pool: &impl Spawn, n: usize) -> Duration {
    let start = Instant::now();
    let (tx, rx) = mpsc::channel();
    for i in 0..n as u64 {
        let tx = tx.clone();
        pool.spawn_fn(move || {
            let _ = tx.send((i, i));
        });
    }
    drop(tx);
    let mut out = vec![0u64; n];
    for (i, v) in rx.iter() {
        out[i as usize] = v;
    }
    let t = start.elapsed();
    check_sum(n, out.iter().sum());
    t
}

// -------------------------------------------------------------------- W1 ---

/// W1: `n` tasks each returning its index, submitted from outside the pool,
/// every result collected. Returns the wall time.
fn w1(system: &str, threads: usize, n: usize) -> Duration {
    match system {
        FP => {
            let pool = futurepool(threads);
            let start = Instant::now();
            let handles: Vec<_> = (0..n as u64).map(|i| pool.submit(move || i)).collect();
            let sum: u64 = handles.into_iter().map(|h| h.get().unwrap()).sum();
            let t = start.elapsed();
            check_sum(n, sum);
            t
        }
        RAYON_ONESHOT => {
            let pool = rayon_pool(threads);
            let start = Instant::now();
            let rxs: Vec<_> = rayon_oneshots(&pool, 0..n as u64);
            let sum: u64 = rxs.into_iter().map(|rx| block_on(rx).unwrap()).sum();
            let t = start.elapsed();
            check_sum(n, sum);
            t
        }
        RAYON_SHARED => w1_shared_channel(&rayon_pool(threads), n),
        THREADPOOL => w1_shared_channel(&threadpool::ThreadPool::new(threads), n),
        FUTURES => {
            let pool = futures_pool(threads);
            let start = Instant::now();
            let handles: Vec<_> = (0..n as u64)
                .map(|i| pool.spawn_with_handle(async move { i }).unwrap())
                .collect();
            let sum: u64 = handles.into_iter().map(block_on).sum();
            let t = start.elapsed();
            check_sum(n, sum);
            t
        }
        TOKIO => {
            let rt = tokio_rt(threads);
            let start = Instant::now();
            let handles: Vec<_> = (0..n as u64)
                .map(|i| rt.spawn_blocking(move || i))
                .collect();
            let sum: u64 = rt.block_on(async {
                let mut sum = 0;
                for h in handles {
                    sum += h.await.unwrap();
                }
                sum
            });
            let t = start.elapsed();
            check_sum(n, sum);
            t
        }
        _ => unreachable!("W1 has no system {system}"),
    }
}

const W1_SYSTEMS: &[&str] = &[FP, RAYON_ONESHOT, RAYON_SHARED, THREADPOOL, FUTURES, TOKIO];

fn run_w1(cfg: &Config, res: &mut Results) {
    let n = cfg.size(200_000, 20_000);
    for &threads in &cfg.sweep {
        for _ in 0..cfg.reps {
            for &sys in W1_SYSTEMS.iter().filter(|s| cfg.runs(s)) {
                let t = w1(sys, threads, n);
                res.add(
                    "W1",
                    sys,
                    threads,
                    "ns_per_task",
                    "ns/task",
                    t.as_nanos() as f64 / n as f64,
                );
            }
        }
    }
    res.skip(
        "W1",
        STD_THREAD,
        "not run: one OS thread per task for 200,000 tasks",
    );
}

// -------------------------------------------------------------------- W2 ---

/// W2: `trips` sequential submit->get round trips on an otherwise idle
/// pool; every round trip's duration in ns.
fn w2(system: &str, threads: usize, trips: usize) -> Vec<f64> {
    let mut lat = Vec::with_capacity(trips);
    let warmup = 100;
    macro_rules! measure {
        ($body:expr) => {{
            for _ in 0..warmup {
                black_box($body);
            }
            for _ in 0..trips {
                let start = Instant::now();
                black_box($body);
                lat.push(start.elapsed().as_nanos() as f64);
            }
        }};
    }
    match system {
        FP => {
            let pool = futurepool(threads);
            measure!(pool.submit(|| black_box(1u64)).get().unwrap())
        }
        RAYON_INSTALL => {
            let pool = rayon_pool(threads);
            measure!(pool.install(|| black_box(1u64)))
        }
        RAYON_ONESHOT => {
            let pool = rayon_pool(threads);
            measure!({
                let (tx, rx) = oneshot::channel();
                pool.spawn(move || {
                    let _ = tx.send(black_box(1u64));
                });
                block_on(rx).unwrap()
            })
        }
        THREADPOOL => {
            let pool = threadpool::ThreadPool::new(threads);
            let (tx, rx) = mpsc::channel();
            measure!({
                let tx = tx.clone();
                pool.execute(move || {
                    let _ = tx.send(black_box(1u64));
                });
                rx.recv().unwrap()
            })
        }
        FUTURES => {
            let pool = futures_pool(threads);
            measure!(block_on(
                pool.spawn_with_handle(async { black_box(1u64) }).unwrap()
            ))
        }
        TOKIO => {
            let rt = tokio_rt(threads);
            measure!(rt.block_on(rt.spawn_blocking(|| black_box(1u64))).unwrap())
        }
        STD_THREAD => {
            measure!(std::thread::spawn(|| black_box(1u64)).join().unwrap())
        }
        _ => unreachable!("W2 has no system {system}"),
    }
    lat
}

const W2_SYSTEMS: &[&str] = &[
    FP,
    RAYON_INSTALL,
    RAYON_ONESHOT,
    THREADPOOL,
    FUTURES,
    TOKIO,
    STD_THREAD,
];

fn run_w2(cfg: &Config, res: &mut Results) {
    let trips = cfg.size(10_000, 500);
    for &threads in &cfg.sweep {
        for _ in 0..cfg.reps {
            for &sys in W2_SYSTEMS.iter().filter(|s| cfg.runs(s)) {
                let mut lat = w2(sys, threads, trips);
                lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
                res.add("W2", sys, threads, "p50_ns", "ns", percentile(&lat, 0.50));
                res.add("W2", sys, threads, "p99_ns", "ns", percentile(&lat, 0.99));
            }
        }
    }
}

// -------------------------------------------------------------------- W3 ---

fn fib_serial(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        fib_serial(n - 1) + fib_serial(n - 2)
    }
}

/// One branch submitted to the pool and collected with `get()` from inside
/// the pool (the worker runs other work, or the branch itself, meanwhile).
fn fib_fp(pool: &'static ThreadPool, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let left = pool.submit(move || fib_fp(pool, n - 1));
    let right = fib_fp(pool, n - 2);
    left.get().unwrap() + right
}

/// Both branches through `futurepool::join` (the same shape as rayon's).
fn fib_fp_join(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = futurepool::join(|| fib_fp_join(n - 1), || fib_fp_join(n - 2));
    a + b
}

fn fib_rayon(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = rayon::join(|| fib_rayon(n - 1), || fib_rayon(n - 2));
    a + b
}

/// W3 runs at one thread and at the suite's thread count: fork-join's
/// per-task cost shows at one thread, its scaling at more.
fn run_w3(cfg: &Config, res: &mut Results) {
    let mut counts = vec![1, cfg.threads];
    counts.dedup();
    for threads in counts {
        w3_at(cfg, res, threads);
    }
    for sys in [THREADPOOL, FUTURES, TOKIO] {
        res.skip(
            "W3",
            sys,
            "deadlocks (not run): a task blocking on a task queued behind it holds a worker forever",
        );
    }
    res.skip(
        "W3",
        STD_THREAD,
        "not run: one OS thread per call (75,024 threads)",
    );
}

/// One W3 run at `threads` workers. A repetition takes 0.4-5 ms, so W3
/// makes three times as many as the other workloads (15 by default): its
/// median then stands up to the spells of a few milliseconds in which a
/// shared machine runs at half speed, which otherwise land on one
/// system's repetition and not on the next one's.
fn w3_at(cfg: &Config, res: &mut Results, threads: usize) {
    let n = cfg.size(24, 18) as u64;
    let expect = fib_serial(n);
    // The recursion needs the pool from inside its tasks; a &'static pool
    // (as with futurepool::global()) costs no reference counting.
    let fp: &'static ThreadPool = Box::leak(Box::new(futurepool(threads)));
    let ry = rayon_pool(threads);
    for _ in 0..cfg.reps * 3 {
        if cfg.runs(FP) {
            let start = Instant::now();
            let v = fp.submit(move || fib_fp(fp, n)).get().unwrap();
            res.add("W3", FP, threads, "ms", "ms", ms(start.elapsed()));
            assert_eq!(v, expect);
        }

        if cfg.runs(FP_JOIN) {
            let start = Instant::now();
            let v = fp.install(|| fib_fp_join(n));
            res.add("W3", FP_JOIN, threads, "ms", "ms", ms(start.elapsed()));
            assert_eq!(v, expect);
        }

        if cfg.runs(RAYON_JOIN) {
            let start = Instant::now();
            let v = ry.install(|| fib_rayon(n));
            res.add("W3", RAYON_JOIN, threads, "ms", "ms", ms(start.elapsed()));
            assert_eq!(v, expect);
        }

        let start = Instant::now();
        let v = fib_serial(black_box(n));
        res.add("W3", SERIAL, threads, "ms", "ms", ms(start.elapsed()));
        assert_eq!(v, expect);
    }
    fp.join();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// -------------------------------------------------------------------- W4 ---

fn square_plus_one(x: u64) -> u64 {
    x.wrapping_mul(x).wrapping_add(1)
}

const FP_MAP: &str = "futurepool pool.map";

fn run_w4(cfg: &Config, res: &mut Results) {
    let n = cfg.size(1_000_000, 100_000);
    let threads = cfg.threads;
    let items: Arc<Vec<u64>> = Arc::new((0..n as u64).collect());
    let expect: Vec<u64> = items.iter().map(|&x| square_plus_one(x)).collect();
    let fp = futurepool(threads);
    let ry = rayon_pool(threads);
    for _ in 0..cfg.reps.max(3) {
        // pool.map takes its items by value (rayon borrows them): each gets
        // its input in its own form, made before the clock starts.
        let input: Vec<u64> = (*items).clone();
        let start = Instant::now();
        let out = fp.map(square_plus_one, input).unwrap();
        let t = start.elapsed();
        assert!(out == expect);
        res.add("W4", FP_MAP, threads, "ns_per_item", "ns/item", per(t, n));

        let start = Instant::now();
        let out: Vec<u64> = ry.install(|| items.par_iter().map(|&x| square_plus_one(x)).collect());
        let t = start.elapsed();
        assert!(out == expect);
        res.add(
            "W4",
            RAYON_PAR_ITER,
            threads,
            "ns_per_item",
            "ns/item",
            per(t, n),
        );

        let start = Instant::now();
        let out: Vec<u64> = black_box(&items)
            .iter()
            .map(|&x| square_plus_one(x))
            .collect();
        let t = start.elapsed();
        assert!(out == expect);
        res.add("W4", SERIAL, threads, "ns_per_item", "ns/item", per(t, n));
    }
}

fn per(t: Duration, n: usize) -> f64 {
    t.as_nanos() as f64 / n as f64
}

// -------------------------------------------------------------------- W5 ---

const NONE: &str = "no pool";

/// Child side of W5: one task, then CPU microseconds burnt per idle second.
fn w5_child(system: &str, threads: usize, secs: f64) -> f64 {
    let idle = || {
        let c0 = cpu_time_us();
        std::thread::sleep(Duration::from_secs_f64(secs));
        (cpu_time_us() - c0) / secs
    };
    match system {
        NONE => idle(),
        FP => {
            let pool = futurepool(threads);
            pool.submit(|| 1).get().unwrap();
            idle()
        }
        RAYON_INSTALL => {
            let pool = rayon_pool(threads);
            pool.install(|| black_box(1));
            idle()
        }
        THREADPOOL => {
            let pool = threadpool::ThreadPool::new(threads);
            let (tx, rx) = mpsc::channel();
            pool.execute(move || tx.send(1).unwrap());
            rx.recv().unwrap();
            idle()
        }
        FUTURES => {
            let pool = futures_pool(threads);
            block_on(pool.spawn_with_handle(async { 1 }).unwrap());
            idle()
        }
        TOKIO => {
            let rt = tokio_rt(threads);
            rt.block_on(rt.spawn_blocking(|| 1)).unwrap();
            idle()
        }
        _ => unreachable!("W5 has no system {system}"),
    }
}

const W5_SYSTEMS: &[&str] = &[NONE, FP, RAYON_INSTALL, THREADPOOL, FUTURES, TOKIO];

fn run_w5(cfg: &Config, res: &mut Results) {
    let secs = if cfg.quick { 0.1 } else { 1.0 };
    for _ in 0..cfg.reps.clamp(1, 3) {
        for &sys in W5_SYSTEMS.iter().filter(|s| cfg.runs(s)) {
            let v = child(&["w5", sys, &cfg.threads.to_string(), &secs.to_string()]);
            res.add("W5", sys, cfg.threads, "cpu_us_per_idle_s", "µs/s", v);
        }
    }
}

// -------------------------------------------------------------------- W6 ---

fn rss_bytes() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm resident field");
    #[allow(unsafe_code)]
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
    pages * page
}

/// A gate the blocking tasks wait on, and a count of how many arrived.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar, AtomicUsize)>);

impl Gate {
    fn block(&self) {
        self.0 .2.fetch_add(1, Ordering::SeqCst);
        let mut open = self.0 .0.lock().unwrap();
        while !*open {
            open = self.0 .1.wait(open).unwrap();
        }
    }
    /// Blocks all `threads` workers of `pool` on the gate.
    fn block_all(&self, pool: &impl Spawn, threads: usize) {
        for _ in 0..threads {
            let g = self.clone();
            pool.spawn_fn(move || g.block());
        }
        self.wait_blocked(threads);
    }

    fn wait_blocked(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.0 .2.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "workers never blocked");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }
}

/// Child side of W6: RSS bytes per task queued behind blocked workers,
/// including whatever the system hands back per task (its handle).
fn w6_child(system: &str, threads: usize, n: usize) -> f64 {
    let gate = Gate::default();
    let r0;
    let r1;
    match system {
        FP => {
            let pool = futurepool(threads);
            gate.block_all(&pool, threads);
            r0 = rss_bytes();
            let handles: Vec<_> = (0..n as u64).map(|i| pool.submit(move || i)).collect();
            r1 = rss_bytes();
            gate.open();
            check_sum(n, handles.into_iter().map(|h| h.get().unwrap()).sum());
        }
        RAYON_SPAWN => {
            let pool = rayon_pool(threads);
            gate.block_all(&pool, threads);
            let done = Arc::new(AtomicUsize::new(0));
            r0 = rss_bytes();
            for i in 0..n {
                let done = done.clone();
                pool.spawn(move || {
                    done.fetch_add(black_box(i), Ordering::Relaxed);
                });
            }
            r1 = rss_bytes();
            gate.open();
            drop(pool);
        }
        RAYON_ONESHOT => {
            let pool = rayon_pool(threads);
            gate.block_all(&pool, threads);
            r0 = rss_bytes();
            let rxs: Vec<_> = rayon_oneshots(&pool, 0..n as u64);
            r1 = rss_bytes();
            gate.open();
            check_sum(n, rxs.into_iter().map(|rx| block_on(rx).unwrap()).sum());
        }
        THREADPOOL => {
            let pool = threadpool::ThreadPool::new(threads);
            gate.block_all(&pool, threads);
            let (tx, rx) = mpsc::channel();
            r0 = rss_bytes();
            for i in 0..n as u64 {
                let tx = tx.clone();
                pool.execute(move || {
                    let _ = tx.send(i);
                });
            }
            r1 = rss_bytes();
            drop(tx);
            gate.open();
            check_sum(n, rx.iter().sum());
        }
        FUTURES => {
            let pool = futures_pool(threads);
            gate.block_all(&pool, threads);
            r0 = rss_bytes();
            let handles: Vec<_> = (0..n as u64)
                .map(|i| pool.spawn_with_handle(async move { i }).unwrap())
                .collect();
            r1 = rss_bytes();
            gate.open();
            check_sum(n, handles.into_iter().map(block_on).sum());
        }
        TOKIO => {
            let rt = tokio_rt(threads);
            gate.block_all(&rt, threads);
            r0 = rss_bytes();
            let handles: Vec<_> = (0..n as u64)
                .map(|i| rt.spawn_blocking(move || i))
                .collect();
            r1 = rss_bytes();
            gate.open();
            let sum = rt.block_on(async {
                let mut sum = 0;
                for h in handles {
                    sum += h.await.unwrap();
                }
                sum
            });
            check_sum(n, sum);
        }
        _ => unreachable!("W6 has no system {system}"),
    }
    (r1 - r0) / n as f64
}

const W6_SYSTEMS: &[&str] = &[FP, RAYON_SPAWN, RAYON_ONESHOT, THREADPOOL, FUTURES, TOKIO];

fn run_w6(cfg: &Config, res: &mut Results) {
    let n = cfg.size(1_000_000, 50_000);
    for _ in 0..cfg.reps.clamp(1, 2) {
        for &sys in W6_SYSTEMS.iter().filter(|s| cfg.runs(s)) {
            let v = child(&["w6", sys, &cfg.threads.to_string(), &n.to_string()]);
            res.add("W6", sys, cfg.threads, "bytes_per_task", "B/task", v);
        }
    }
}

// -------------------------------------------------------------------- W7 ---

const SUBMITTERS: usize = 4;

/// W7: `SUBMITTERS` outside threads each submit `n / SUBMITTERS` tasks at
/// once and collect their own results. Returns tasks per second.
fn w7(system: &str, threads: usize, n: usize) -> f64 {
    let per_thread = n / SUBMITTERS;
    let barrier = Arc::new(Barrier::new(SUBMITTERS + 1));
    let spawn_all = |work: Arc<dyn Fn() -> u64 + Send + Sync>| {
        let joins: Vec<_> = (0..SUBMITTERS)
            .map(|_| {
                let b = barrier.clone();
                let work = work.clone();
                std::thread::spawn(move || {
                    b.wait();
                    work()
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let sum: u64 = joins.into_iter().map(|j| j.join().unwrap()).sum();
        let t = start.elapsed();
        check_sum(per_thread, sum / SUBMITTERS as u64);
        n as f64 / t.as_secs_f64()
    };
    let m = per_thread as u64;
    match system {
        FP => {
            let pool = Arc::new(futurepool(threads));
            spawn_all(Arc::new(move || {
                let hs: Vec<_> = (0..m).map(|i| pool.submit(move || i)).collect();
                hs.into_iter().map(|h| h.get().unwrap()).sum()
            }))
        }
        RAYON_ONESHOT => {
            let pool = Arc::new(rayon_pool(threads));
            spawn_all(Arc::new(move || {
                let rxs: Vec<_> = rayon_oneshots(&pool, 0..m);
                rxs.into_iter().map(|rx| block_on(rx).unwrap()).sum()
            }))
        }
        THREADPOOL => {
            let pool = Mutex::new(threadpool::ThreadPool::new(threads));
            spawn_all(Arc::new(move || {
                let pool = pool.lock().unwrap().clone();
                let (tx, rx) = mpsc::channel();
                for i in 0..m {
                    let tx = tx.clone();
                    pool.execute(move || {
                        let _ = tx.send(i);
                    });
                }
                drop(tx);
                rx.iter().sum()
            }))
        }
        FUTURES => {
            let pool = futures_pool(threads);
            spawn_all(Arc::new(move || {
                let hs: Vec<_> = (0..m)
                    .map(|i| pool.spawn_with_handle(async move { i }).unwrap())
                    .collect();
                hs.into_iter().map(block_on).sum()
            }))
        }
        TOKIO => {
            let rt = tokio_rt(threads);
            let handle = rt.handle().clone();
            let rate = spawn_all(Arc::new(move || {
                let hs: Vec<_> = (0..m).map(|i| handle.spawn_blocking(move || i)).collect();
                hs.into_iter().map(|h| block_on(h).unwrap()).sum()
            }));
            drop(rt);
            rate
        }
        _ => unreachable!("W7 has no system {system}"),
    }
}

const W7_SYSTEMS: &[&str] = &[FP, RAYON_ONESHOT, THREADPOOL, FUTURES, TOKIO];

fn run_w7(cfg: &Config, res: &mut Results) {
    let n = cfg.size(200_000, 20_000);
    for _ in 0..cfg.reps {
        for &sys in W7_SYSTEMS.iter().filter(|s| cfg.runs(s)) {
            let rate = w7(sys, cfg.threads, n);
            res.add("W7", sys, cfg.threads, "tasks_per_s", "tasks/s", rate);
        }
    }
}

// -------------------------------------------------------------------- W8 ---

const FP_SCOPE: &str = "futurepool scope";
const RAYON_SCOPE: &str = "rayon scope";
const W8_SYSTEMS: &[&str] = &[FP_SCOPE, RAYON_SCOPE];

/// W8: `n` tasks spawned into one scope from inside the pool, each adding
/// its index to a counter it borrows from the caller; the scope returns
/// when all have run. Returns the wall time.
fn w8(system: &str, threads: usize, n: u64) -> Duration {
    let sum = std::sync::atomic::AtomicU64::new(0);
    let start;
    match system {
        FP_SCOPE => {
            let pool = futurepool(threads);
            start = Instant::now();
            pool.install(|| {
                pool.scope(|s| {
                    for i in 0..n {
                        let sum = &sum;
                        s.spawn(move || sum.fetch_add(i, Ordering::Relaxed));
                    }
                })
            });
        }
        RAYON_SCOPE => {
            let pool = rayon_pool(threads);
            start = Instant::now();
            pool.scope(|s| {
                for i in 0..n {
                    let sum = &sum;
                    s.spawn(move |_| {
                        sum.fetch_add(i, Ordering::Relaxed);
                    });
                }
            });
        }
        _ => unreachable!("W8 has no system {system}"),
    }
    let t = start.elapsed();
    assert_eq!(sum.into_inner(), n * (n - 1) / 2, "{system}: W8 sum");
    t
}

fn run_w8(cfg: &Config, res: &mut Results) {
    let n = cfg.size(100_000, 10_000);
    for _ in 0..cfg.reps {
        for &sys in W8_SYSTEMS.iter().filter(|s| cfg.runs(s)) {
            let t = w8(sys, cfg.threads, n as u64);
            let ns = t.as_nanos() as f64 / n as f64;
            res.add("W8", sys, cfg.threads, "ns_per_task", "ns/task", ns);
        }
    }
}

// ---------------------------------------------------------- child process ---

/// Runs one W5/W6 measurement in a fresh copy of this binary.
fn child(args: &[&str]) -> f64 {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .arg("--child")
        .args(args)
        .output()
        .expect("spawn child");
    assert!(
        out.status.success(),
        "child {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("child {args:?} printed no number"))
}

fn run_child(args: &[String]) {
    let threads: usize = args[2].parse().unwrap();
    let v = match args[0].as_str() {
        "w5" => w5_child(&args[1], threads, args[3].parse().unwrap()),
        "w6" => w6_child(&args[1], threads, args[3].parse().unwrap()),
        other => panic!("unknown child {other}"),
    };
    println!("{v}");
}

// ---------------------------------------------------------------- report ---

/// Per workload: the metric that decides, the reference system the ratio is
/// taken to, and whether lower is better.
const TABLES: &[(&str, &str, &str, &str, bool)] = &[
    (
        "W1",
        "throughput: 200,000 tasks from outside, all results collected",
        "ns_per_task",
        RAYON_ONESHOT,
        true,
    ),
    (
        "W2",
        "latency: sequential submit->get round trips on an idle pool",
        "p50_ns",
        RAYON_INSTALL,
        true,
    ),
    (
        "W3",
        "nested fork-join: fib(24), one branch submitted per call (futurepool) or joined (futurepool join)",
        "ms",
        RAYON_JOIN,
        true,
    ),
    (
        "W4",
        "map: 1,000,000 u64 through x*x+1, in order",
        "ns_per_item",
        RAYON_PAR_ITER,
        true,
    ),
    (
        "W5",
        "idle cost: CPU time over one idle second after one task",
        "cpu_us_per_idle_s",
        RAYON_INSTALL,
        true,
    ),
    (
        "W6",
        "memory: RSS per task queued behind blocked workers",
        "bytes_per_task",
        RAYON_SPAWN,
        true,
    ),
    (
        "W7",
        "contention: 4 outside threads submitting concurrently",
        "tasks_per_s",
        RAYON_ONESHOT,
        false,
    ),
    (
        "W8",
        "scope: 100,000 tasks spawned into one scope inside the pool, each borrowing a counter",
        "ns_per_task",
        RAYON_SCOPE,
        true,
    ),
];

fn fmt_num(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v.abs() >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Markdown tables, one per workload (and thread count where swept).
fn tables(res: &Results) -> String {
    let mut md = String::new();
    for &(w, title, main, reference, lower_better) in TABLES {
        let recs: Vec<&Record> = res.records.iter().filter(|r| r.workload == w).collect();
        if recs.is_empty() {
            continue;
        }
        let _ = writeln!(md, "\n### {w}: {title}\n");
        let metrics: Vec<&str> = {
            let mut m: Vec<&str> = recs.iter().map(|r| r.metric).collect();
            m.dedup();
            m.sort();
            m.dedup();
            m
        };
        let threads: Vec<usize> = {
            let mut t: Vec<usize> = recs.iter().map(|r| r.threads).collect();
            t.sort();
            t.dedup();
            t
        };
        let mut header = String::from("| system | threads |");
        let mut rule = String::from("|---|---:|");
        for m in &metrics {
            let unit = recs.iter().find(|r| r.metric == *m).unwrap().unit;
            let _ = write!(header, " {m} ({unit}) |");
            rule.push_str("---:|");
        }
        header.push_str(&format!(" ratio to {reference} |"));
        rule.push_str("---:|");
        let _ = writeln!(md, "{header}\n{rule}");
        for &t in &threads {
            let mut systems: Vec<&str> = Vec::new();
            for r in recs.iter().filter(|r| r.threads == t) {
                if !systems.contains(&r.system.as_str()) {
                    systems.push(&r.system);
                }
            }
            let base = res.get(w, reference, t, main);
            for sys in systems {
                let mut row = format!("| {sys} | {t} |");
                for m in &metrics {
                    let v = res.get(w, sys, t, m).unwrap_or(f64::NAN);
                    let _ = write!(row, " {} |", fmt_num(v));
                }
                let v = res.get(w, sys, t, main).unwrap_or(f64::NAN);
                let ratio = match (base, w) {
                    // W5 is judged against the no-pool process, not a ratio.
                    (_, "W5") => {
                        let none = res.get(w, NONE, t, main).unwrap_or(f64::NAN);
                        format!("+{} µs/s over no pool", fmt_num(v - none))
                    }
                    (Some(b), _) if lower_better => format!("{:.2}×", v / b),
                    (Some(b), _) => format!("{:.2}× (time)", b / v),
                    (None, _) => "-".into(),
                };
                let _ = writeln!(row, " {ratio} |");
                md.push_str(&row);
            }
        }
        for (sw, sys, why) in &res.skipped {
            if *sw == w {
                let _ = writeln!(md, "| {sys} | - | {why} |");
            }
        }
    }
    md
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json(res: &Results, meta: &BTreeMap<&str, String>) -> String {
    let mut j = String::from("{\n  \"meta\": {");
    let items: Vec<String> = meta
        .iter()
        .map(|(k, v)| format!("{}: {}", json_str(k), json_str(v)))
        .collect();
    j.push_str(&items.join(", "));
    j.push_str("},\n  \"records\": [\n");
    let recs: Vec<String> = res
        .records
        .iter()
        .map(|r| {
            let samples: Vec<String> = r.samples.iter().map(|s| format!("{s:.3}")).collect();
            format!(
                "    {{\"workload\": {}, \"system\": {}, \"threads\": {}, \"metric\": {}, \"unit\": {}, \"value\": {:.3}, \"samples\": [{}], \"note\": {}}}",
                json_str(r.workload),
                json_str(&r.system),
                r.threads,
                json_str(r.metric),
                json_str(r.unit),
                r.value(),
                samples.join(", "),
                json_str(&r.note)
            )
        })
        .collect();
    j.push_str(&recs.join(",\n"));
    j.push_str("\n  ],\n  \"skipped\": [\n");
    let skipped: Vec<String> = res
        .skipped
        .iter()
        .map(|(w, s, why)| {
            format!(
                "    {{\"workload\": {}, \"system\": {}, \"why\": {}}}",
                json_str(w),
                json_str(s),
                json_str(why)
            )
        })
        .collect();
    j.push_str(&skipped.join(",\n"));
    j.push_str("\n  ]\n}\n");
    j
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// A workload's runner, as `main` lists them.
type Workload = fn(&Config, &mut Results);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        run_child(&args[i + 1..]);
        return;
    }
    let cfg = Config::from_args(&args);
    let mut meta = BTreeMap::new();
    meta.insert("mode", if cfg.quick { "quick" } else { "full" }.to_string());
    meta.insert("threads", cfg.threads.to_string());
    meta.insert("reps", cfg.reps.to_string());
    meta.insert("cpus", num_cpus_online().to_string());
    meta.insert("loadavg_start", loadavg());
    let started = Instant::now();
    let mut res = Results::default();
    let workloads: &[(&str, Workload)] = &[
        ("W1", run_w1),
        ("W2", run_w2),
        ("W3", run_w3),
        ("W4", run_w4),
        ("W5", run_w5),
        ("W6", run_w6),
        ("W7", run_w7),
        ("W8", run_w8),
    ];
    for &(name, run) in workloads {
        if cfg.wants(name) {
            let t = Instant::now();
            run(&cfg, &mut res);
            eprintln!("{name} done in {:.1}s", t.elapsed().as_secs_f64());
        }
    }
    meta.insert("loadavg_end", loadavg());
    meta.insert("seconds", format!("{:.1}", started.elapsed().as_secs_f64()));
    let md = tables(&res);
    println!("{md}");
    println!(
        "suite finished in {:.1}s (load average {} -> {})",
        started.elapsed().as_secs_f64(),
        meta["loadavg_start"],
        meta["loadavg_end"]
    );
    let _ = std::fs::create_dir_all(
        std::path::Path::new(&cfg.out)
            .parent()
            .unwrap_or(std::path::Path::new(".")),
    );
    std::fs::write(format!("{}.json", cfg.out), json(&res, &meta)).expect("write results json");
    std::fs::write(format!("{}.md", cfg.out), md).expect("write results md");
    println!("results: {0}.json, {0}.md", cfg.out);
}

fn num_cpus_online() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
