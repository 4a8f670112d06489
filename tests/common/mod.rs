//! Helpers shared by the integration tests. Every wait is bounded, so a bug
//! fails a test instead of hanging it.
#![allow(dead_code)]

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use futurepool::{AsyncResult, ThreadPool};

/// Long enough for anything that should happen, short enough to fail fast.
pub const LONG: Duration = Duration::from_secs(20);

/// A one-shot gate: tasks block in `wait()` until the test calls `open()`.
/// A gate never blocks longer than `LONG`, so a failing test still ends.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }
    /// Blocks until opened; returns false if it gave up after `LONG`.
    pub fn wait(&self) -> bool {
        let guard = self.0 .0.lock().unwrap();
        let (guard, _) = self
            .0
             .1
            .wait_timeout_while(guard, LONG, |open| !*open)
            .unwrap();
        *guard
    }
}

/// Signals from tasks to the test ("started", ...), received with a bound.
pub struct Signals<T> {
    tx: mpsc::Sender<T>,
    rx: mpsc::Receiver<T>,
}

impl<T> Signals<T> {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::channel();
        Signals { tx, rx }
    }
    pub fn sender(&self) -> mpsc::Sender<T> {
        self.tx.clone()
    }
    pub fn recv(&self) -> T {
        self.rx
            .recv_timeout(LONG)
            .expect("signal not received in time")
    }
    pub fn try_recv(&self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Runs `f` on a helper thread and fails the test if it does not return
/// within `LONG` (a deadlock detector for calls that block by design).
pub fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(LONG)
        .unwrap_or_else(|_| panic!("{what} did not finish in time (deadlock?)"))
}

/// Silences the default panic hook's output for intentional panics.
pub fn quiet_panics() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if !msg.starts_with("intentional") {
                default(info);
            }
        }));
    });
}

/// The number of this process's threads whose name starts with `prefix`
/// (Linux). Tests give their pools unique names, so parallel tests do not
/// disturb the count.
pub fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
                .filter(|name| name.trim_end().starts_with(prefix))
                .count()
        })
        .unwrap_or(0)
}

/// Waits (bounded) until no thread named `prefix...` is left: a joined
/// thread can stay listed in /proc for a moment after it exited.
pub fn no_threads_named(prefix: &str) -> bool {
    let deadline = std::time::Instant::now() + LONG;
    while threads_named(prefix) != 0 {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// A chain of nested `submit(..).get()` calls `depth` deep; returns `depth`.
pub fn chain(pool: Arc<ThreadPool>, depth: usize) -> usize {
    if depth == 0 {
        return 0;
    }
    let p = pool.clone();
    pool.submit(move || chain(p, depth - 1))
        .get_timeout(LONG)
        .expect("nested level")
        + 1
}

/// Submits a task that blocks on `gate` and then returns `value`, and
/// returns its handle once the task is running (so the worker is busy).
pub fn start_blocked<T: Send + 'static>(
    pool: &ThreadPool,
    gate: &Gate,
    value: T,
) -> AsyncResult<T> {
    let started = Signals::new();
    let (g, tx) = (gate.clone(), started.sender());
    let handle = pool.submit(move || {
        tx.send(()).unwrap();
        g.wait();
        value
    });
    started.recv();
    handle
}

/// Busy workers, held until [`Held::release`].
pub struct Held {
    release: mpsc::Sender<()>,
    handles: Vec<AsyncResult<()>>,
}

impl Held {
    /// Lets the held workers go and waits (bounded) for them to finish.
    pub fn release(self) {
        drop(self.release);
        for h in self.handles {
            h.get_timeout(LONG).expect("a held worker was released");
        }
    }
}

/// Occupies every worker of `pool` with a task that waits for the
/// release; returns once all of them are running, so whatever is
/// submitted next waits in the queue.
pub fn hold_workers(pool: &ThreadPool) -> Held {
    let (release, gate) = mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new(gate));
    let (started_tx, started) = mpsc::channel();
    let handles = (0..pool.num_threads())
        .map(|_| {
            let (gate, started_tx) = (gate.clone(), started_tx.clone());
            pool.submit(move || {
                started_tx.send(()).unwrap();
                // Ends when the sender is dropped.
                let _ = gate.lock().unwrap().recv();
            })
        })
        .collect();
    for _ in 0..pool.num_threads() {
        started.recv_timeout(LONG).expect("a worker started");
    }
    Held { release, handles }
}
