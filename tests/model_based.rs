//! Model-based property tests: random sequences of operations on a pool,
//! checked against a simple sequential model of what each may lead to.
//!
//! What is checked, for every generated sequence:
//! * every handle ends exactly once, with an outcome the model permits for
//!   its kind and for what happened to it (a refused submission is
//!   `PoolClosed`, a successful `cancel()` is `Cancelled`, a task can only be
//!   `Cancelled` by `cancel()`, `terminate()` or `shutdown(_, true)`);
//! * a value is handed out once (then `ResultTaken`), a timed-out wait
//!   leaves the handle usable;
//! * every task that was not cancelled runs exactly once, on a worker;
//! * no task starts after `terminate()` has returned: one not yet running
//!   then (neither `running()` nor `ready()`) ends `Cancelled` without
//!   running;
//! * every callback runs exactly once;
//! * nothing hangs: every wait is bounded, and the pool joins in time.
//!
//! Cases: `PROPTEST_CASES` (default 96 per property in debug, 1024 in
//! release; `.ci/run` runs release).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use futurepool::{AsyncResult, Builder, TaskError, ThreadPool};
use proptest::prelude::*;
use proptest::sample::Index;

const LONG: Duration = Duration::from_secs(30);
const NESTED_REFUSED: u32 = 1_000_001;
const NESTED_CANCELLED: u32 = 1_000_002;

#[derive(Debug, Clone)]
enum Kind {
    Value(u32),
    Panic,
    /// Blocks until gate `usize` opens.
    Gated(usize),
    /// Submits an inner task to its own pool and waits for it.
    Nested(u32),
}

#[derive(Debug, Clone)]
enum Op {
    Submit(Kind),
    Cancel(Index),
    GetTimeout(Index, u8),
    WaitTimeout(Index, u8),
    AddCallback(Index),
    DropHandle(Index),
    OpenGate(usize),
    Close,
    Terminate,
    Shutdown { cancel_futures: bool },
    DropPool,
}

const GATES: usize = 3;

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => (0u32..1000).prop_map(Kind::Value),
        1 => Just(Kind::Panic),
        2 => (0..GATES).prop_map(Kind::Gated),
        2 => (0u32..1000).prop_map(Kind::Nested),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => kind().prop_map(Op::Submit),
        3 => any::<Index>().prop_map(Op::Cancel),
        3 => (any::<Index>(), 0u8..3).prop_map(|(i, ms)| Op::GetTimeout(i, ms)),
        2 => (any::<Index>(), 0u8..3).prop_map(|(i, ms)| Op::WaitTimeout(i, ms)),
        2 => any::<Index>().prop_map(Op::AddCallback),
        1 => any::<Index>().prop_map(Op::DropHandle),
        2 => (0..GATES).prop_map(Op::OpenGate),
        1 => Just(Op::Close),
        1 => Just(Op::Terminate),
        1 => any::<bool>().prop_map(|cancel_futures| Op::Shutdown { cancel_futures }),
        1 => Just(Op::DropPool),
    ]
}

/// What the test knows about one submitted task.
struct Entry {
    kind: Kind,
    handle: Option<AsyncResult<u32>>,
    /// Submitted after close/terminate/shutdown: must be refused.
    refused: bool,
    /// cancel() returned true / false at least once.
    cancel_won: bool,
    cancel_lost: bool,
    /// A terminate or shutdown(_, true) came after the submission.
    mass_cancel_after: bool,
    /// Neither running nor done when a terminate() returned.
    pending_at_terminate: bool,
    /// The outcome, once a get handed it out.
    outcome: Option<Result<u32, TaskError>>,
    callbacks_added: usize,
    callbacks_run: Arc<AtomicUsize>,
    /// Outcome classes the callbacks saw (0 value, 1 panic, 2 cancelled,
    /// 3 refused, 4 taken).
    callback_seen: Arc<Mutex<Vec<u8>>>,
    runs: Arc<AtomicUsize>,
}

fn class(r: &Result<u32, TaskError>) -> u8 {
    match r {
        Ok(_) => 0,
        Err(TaskError::Panicked(_)) => 1,
        Err(TaskError::Cancelled) => 2,
        Err(TaskError::PoolClosed) => 3,
        Err(TaskError::ResultTaken) => 4,
        Err(_) => 5,
    }
}

/// Shared with every task.
struct World {
    gates: Vec<Mutex<Option<mpsc::Sender<()>>>>,
    gate_rx: Vec<Mutex<mpsc::Receiver<()>>>,
    ran_off_pool: AtomicUsize,
}

impl World {
    fn new() -> Arc<World> {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..GATES).map(|_| mpsc::channel()).unzip();
        Arc::new(World {
            gates: txs.into_iter().map(|t| Mutex::new(Some(t))).collect(),
            gate_rx: rxs.into_iter().map(Mutex::new).collect(),
            ran_off_pool: AtomicUsize::new(0),
        })
    }

    /// Opening drops the sender: every waiter on the gate goes at once.
    fn open(&self, g: usize) {
        self.gates[g].lock().unwrap().take();
    }

    fn open_all(&self) {
        (0..GATES).for_each(|g| self.open(g));
    }

    fn on_start(&self) {
        let on_pool = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("model-"));
        if !on_pool {
            self.ran_off_pool.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn task(
    kind: &Kind,
    world: &Arc<World>,
    pool: &Arc<ThreadPool>,
    runs: &Arc<AtomicUsize>,
) -> impl FnOnce() -> u32 + Send + 'static {
    let (kind, world, pool, runs) = (kind.clone(), world.clone(), pool.clone(), runs.clone());
    move || {
        world.on_start();
        runs.fetch_add(1, Ordering::SeqCst);
        match kind {
            Kind::Value(v) => v,
            Kind::Panic => panic!("model: planned panic"),
            Kind::Gated(g) => {
                // Gates are opened by dropping the sender; recv then fails.
                let rx = world.gate_rx[g].lock().unwrap();
                match rx.recv_timeout(LONG) {
                    Err(mpsc::RecvTimeoutError::Disconnected) => g as u32,
                    _ => panic!("model: gate never opened"),
                }
            }
            Kind::Nested(v) => {
                let w = world.clone();
                match pool
                    .submit(move || {
                        w.on_start();
                        v
                    })
                    .get_timeout(LONG)
                {
                    Ok(v) => v,
                    Err(TaskError::PoolClosed) => NESTED_REFUSED,
                    Err(TaskError::Cancelled) => NESTED_CANCELLED,
                    Err(e) => panic!("model: nested {e}"),
                }
            }
        }
    }
}

/// Whether `r` is a final outcome the model permits for `e`.
fn permitted(e: &Entry, r: &Result<u32, TaskError>) -> Result<(), String> {
    let ok = match r {
        _ if e.refused => matches!(r, Err(TaskError::PoolClosed)),
        _ if e.cancel_won => matches!(r, Err(TaskError::Cancelled)),
        // Without a cancel that won, only a terminate (or shutdown with
        // cancel) ends a task CANCELLED; it may do so even after a cancel
        // that lost: a worker that took the task off its queue before
        // terminate() claims it (a cancel then sees it running) and finds
        // the pool terminated, and the closure never runs (checked below).
        Err(TaskError::Cancelled) => e.mass_cancel_after,
        Ok(v) => match e.kind {
            Kind::Value(x) => *v == x,
            Kind::Gated(g) => *v == g as u32,
            Kind::Nested(x) => *v == x || *v == NESTED_REFUSED || *v == NESTED_CANCELLED,
            Kind::Panic => false,
        },
        Err(TaskError::Panicked(_)) => {
            matches!(e.kind, Kind::Panic)
                && r.as_ref().unwrap_err().panic_message() == Some("model: planned panic")
        }
        Err(_) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{r:?} not permitted for {:?} (refused {}, cancel won {}, lost {}, mass cancel after {})",
            e.kind, e.refused, e.cancel_won, e.cancel_lost, e.mass_cancel_after))
    }
}

fn pick<'a>(entries: &'a mut [Entry], i: &Index) -> Option<&'a mut Entry> {
    if entries.is_empty() {
        None
    } else {
        let n = entries.len();
        Some(&mut entries[i.index(n)])
    }
}

/// Records a value handed out by a get, checking it against the model.
fn record(e: &mut Entry, r: Result<u32, TaskError>) -> Result<(), TestCaseError> {
    if matches!(r, Err(TaskError::Timeout)) {
        prop_assert!(e.outcome.is_none(), "timeout after the value was taken");
        return Ok(());
    }
    match &e.outcome {
        None => {
            permitted(e, &r).map_err(TestCaseError::fail)?;
            e.outcome = Some(r);
        }
        Some(_) => prop_assert!(
            matches!(r, Err(TaskError::ResultTaken)),
            "value handed out twice: {:?}",
            r
        ),
    }
    Ok(())
}

fn run(threads: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let world = World::new();
    let mut pool = Some(Arc::new(
        Builder::new()
            .num_threads(threads)
            .thread_name("model")
            .build()
            .unwrap(),
    ));
    // The last reference may sit in a nested task; keep a way to join.
    let keep = pool.as_ref().unwrap().clone();
    let mut closed = false;
    let mut entries: Vec<Entry> = Vec::new();

    for op in ops {
        match op {
            Op::Submit(kind) => {
                let Some(p) = &pool else { continue };
                let runs = Arc::new(AtomicUsize::new(0));
                let handle = p.submit(task(&kind, &world, p, &runs));
                entries.push(Entry {
                    kind,
                    handle: Some(handle),
                    refused: closed,
                    cancel_won: false,
                    cancel_lost: false,
                    mass_cancel_after: false,
                    pending_at_terminate: false,
                    outcome: None,
                    callbacks_added: 0,
                    callbacks_run: Arc::new(AtomicUsize::new(0)),
                    callback_seen: Arc::new(Mutex::new(Vec::new())),
                    runs,
                });
            }
            Op::Cancel(i) => {
                let Some(e) = pick(&mut entries, &i) else {
                    continue;
                };
                let Some(h) = &e.handle else { continue };
                let was_cancelled = h.cancelled();
                if h.cancel() {
                    prop_assert!(!e.refused, "a refused task reported cancelled");
                    if !was_cancelled && !e.mass_cancel_after {
                        // Only our cancel can have done it.
                        prop_assert!(
                            e.outcome.is_none()
                                || matches!(e.outcome, Some(Err(TaskError::Cancelled)))
                        );
                    }
                    e.cancel_won = true;
                    prop_assert!(h.ready() && h.cancelled());
                } else {
                    e.cancel_lost = true;
                    prop_assert!(!h.cancelled());
                }
            }
            Op::GetTimeout(i, ms) => {
                let Some(e) = pick(&mut entries, &i) else {
                    continue;
                };
                let Some(h) = &e.handle else { continue };
                let r = h.get_timeout(Duration::from_millis(ms.into()));
                record(e, r)?;
            }
            Op::WaitTimeout(i, ms) => {
                let Some(e) = pick(&mut entries, &i) else {
                    continue;
                };
                let Some(h) = &e.handle else { continue };
                let done = h.wait_timeout(Duration::from_millis(ms.into()));
                if done {
                    prop_assert!(h.ready() && h.successful().is_some());
                }
            }
            Op::AddCallback(i) => {
                let Some(e) = pick(&mut entries, &i) else {
                    continue;
                };
                let Some(h) = &e.handle else { continue };
                let (run, seen) = (e.callbacks_run.clone(), e.callback_seen.clone());
                e.callbacks_added += 1;
                h.add_done_callback(move |r| {
                    seen.lock().unwrap().push(class(r));
                    run.fetch_add(1, Ordering::SeqCst);
                });
            }
            Op::DropHandle(i) => {
                let Some(e) = pick(&mut entries, &i) else {
                    continue;
                };
                e.handle = None;
            }
            Op::OpenGate(g) => world.open(g),
            Op::Close => {
                if let Some(p) = &pool {
                    p.close();
                    closed = true;
                }
            }
            Op::Terminate => {
                if let Some(p) = &pool {
                    p.terminate();
                    closed = true;
                    for e in entries.iter_mut() {
                        e.mass_cancel_after = true;
                        if let Some(h) = &e.handle {
                            e.pending_at_terminate |= !h.running() && !h.ready();
                        }
                    }
                }
            }
            Op::Shutdown { cancel_futures } => {
                if let Some(p) = &pool {
                    p.shutdown(false, cancel_futures);
                    closed = true;
                    if cancel_futures {
                        entries.iter_mut().for_each(|e| e.mass_cancel_after = true);
                    }
                }
            }
            Op::DropPool => {
                // Dropping joins: open the gates first, or it would wait
                // for tasks that wait for us.
                world.open_all();
                if let Some(p) = pool.take() {
                    drop(p);
                    closed = true;
                }
            }
        }
    }

    world.open_all();
    for e in entries.iter_mut() {
        if let Some(h) = e.handle.take() {
            let r = h.get_timeout(LONG);
            prop_assert!(
                !matches!(r, Err(TaskError::Timeout)),
                "a handle never resolved"
            );
            record(e, r)?;
        }
    }
    drop(pool);
    prop_assert!(keep.join_timeout(LONG), "the pool did not join in time");

    for (n, e) in entries.iter().enumerate() {
        let runs = e.runs.load(Ordering::SeqCst);
        prop_assert!(runs <= 1, "task {} ran {} times", n, runs);
        if e.pending_at_terminate {
            prop_assert_eq!(runs, 0, "task {} started after terminate()", n);
            if let Some(out) = &e.outcome {
                prop_assert!(
                    matches!(out, Err(TaskError::Cancelled)),
                    "task {}: {:?}",
                    n,
                    out
                );
            }
        }
        match &e.outcome {
            Some(Ok(_)) | Some(Err(TaskError::Panicked(_))) => {
                prop_assert_eq!(runs, 1, "task {} finished without running once", n)
            }
            Some(Err(TaskError::Cancelled)) | Some(Err(TaskError::PoolClosed)) => {
                prop_assert_eq!(runs, 0, "task {} ran although {:?}", n, e.outcome)
            }
            Some(r) => prop_assert!(false, "task {}: final {:?}", n, r),
            None => {
                // The handle was dropped: it still runs unless cancelled.
                if !e.refused && !e.cancel_won && !e.mass_cancel_after {
                    prop_assert_eq!(runs, 1, "dropped handle {}: task did not run", n);
                }
            }
        }
        prop_assert_eq!(
            e.callbacks_run.load(Ordering::SeqCst),
            e.callbacks_added,
            "task {}: callbacks",
            n
        );
        if let Some(out) = &e.outcome {
            for c in e.callback_seen.lock().unwrap().iter() {
                prop_assert!(
                    *c == class(out) || *c == 4,
                    "callback saw class {} for {:?}",
                    c,
                    out
                );
            }
        }
    }
    prop_assert_eq!(world.ran_off_pool.load(Ordering::SeqCst), 0);
    Ok(())
}

fn cases() -> u32 {
    let default = if cfg!(debug_assertions) { 96 } else { 1024 };
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Counts cases and operations per property, and prints the totals when
/// the last case has run (the figures in docs/reliability.md).
struct Tally {
    name: &'static str,
    cases: AtomicUsize,
    ops: AtomicUsize,
}

impl Tally {
    const fn new(name: &'static str) -> Self {
        Tally {
            name,
            cases: AtomicUsize::new(0),
            ops: AtomicUsize::new(0),
        }
    }

    fn count(&self, ops: usize) {
        let total_ops = self.ops.fetch_add(ops, Ordering::Relaxed) + ops;
        let done = self.cases.fetch_add(1, Ordering::Relaxed) + 1;
        if done == cases() as usize {
            println!("model: {}: {done} cases, {total_ops} operations", self.name);
        }
    }
}

static ALL_OPS: Tally = Tally::new("all operations");
static NO_LIFECYCLE: Tally = Tally::new("no lifecycle operations");

fn silence_planned_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info.payload().downcast_ref::<&str>().copied();
            if msg != Some("model: planned panic") {
                default(info);
            }
        }));
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_operation_sequences_match_the_model(
        threads in 1usize..=3,
        ops in prop::collection::vec(op(), 1..48),
    ) {
        silence_planned_panics();
        ALL_OPS.count(ops.len());
        run(threads, ops)?;
    }

    #[test]
    fn sequences_without_lifecycle_ops_run_every_task(
        threads in 1usize..=3,
        ops in prop::collection::vec(op().prop_filter("no lifecycle", |o| !matches!(
            o, Op::Close | Op::Terminate | Op::Shutdown { .. } | Op::DropPool | Op::Cancel(_)
        )), 1..48),
    ) {
        silence_planned_panics();
        NO_LIFECYCLE.count(ops.len());
        run(threads, ops)?;
    }
}
