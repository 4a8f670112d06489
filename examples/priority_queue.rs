//! A priority queue of work: highest priority first, first come first
//! served among equals.
//!
//! Python builds one from heapq, a counter and a Condition:
//!
//! ```python
//! class PriorityQueue:
//!     def put(self, item, priority):
//!         with self._cv:
//!             heapq.heappush(self._queue, (-priority, self._count, item))
//!             self._count += 1
//!             self._cv.notify()
//!     def get(self):
//!         with self._cv:
//!             while len(self._queue) == 0:
//!                 self._cv.wait()
//!             return heapq.heappop(self._queue)[-1]
//! ```
//!
//! futurepool: `submit_with_priority(priority, f)`. The worker here is held
//! busy while the queue fills, so the order in which the items run is the
//! queue's order.
//!
//! Run with `cargo run --release --example priority_queue`.

use std::sync::mpsc;
use std::time::Duration;

use futurepool::ThreadPool;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ThreadPool::new(1)?;
    let (release, gate) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let busy = pool.submit(move || {
        started_tx.send(()).unwrap();
        let _ = gate.recv();
    });
    started.recv_timeout(Duration::from_secs(10))?;

    let items = [
        ("write report", 1),
        ("fix production outage", 10),
        ("reply to email", 3),
        ("page the on-call", 10),
        ("water the plants", -2),
        ("review pull request", 3),
    ];
    let handles: Vec<_> = items
        .into_iter()
        .map(|(item, priority)| {
            println!("put({item:?}, priority={priority})");
            pool.submit_with_priority(priority, move || println!("get -> {item} ({priority})"))
        })
        .collect();

    release.send(())?;
    busy.get()?;
    for h in handles {
        h.get()?;
    }
    Ok(())
}
