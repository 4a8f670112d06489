//! Helpers shared by the tests of the seeds capabilities (timers,
//! priorities, the bounded queue).

use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use futurepool::{AsyncResult, ThreadPool};

/// How long any single wait in these tests may take before it fails.
pub const BOUND: Duration = Duration::from_secs(10);

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
            h.get_timeout(BOUND).expect("a held worker was released");
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
        started.recv_timeout(BOUND).expect("a worker started");
    }
    Held { release, handles }
}
