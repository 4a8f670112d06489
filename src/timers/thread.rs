//! A timer: one thread that runs short callbacks at their deadlines.
//!
//! Each pool starts one (named `{prefix}-timer`) the first time a delayed
//! or periodic task is submitted, and shuts it down when the pool closes.
//! The thread sleeps on a condvar until the earliest deadline (or until an
//! earlier one is scheduled), so a pool with pending timers and nothing
//! else to do burns no CPU. Callbacks must be short and must not block:
//! they are crate-internal (they queue a task on the pool, or wake a
//! future) and never user code; user closures always run on the workers.
//!
//! Entries are kept in a `BTreeMap` keyed by (deadline, sequence number),
//! so they fire in deadline order, first scheduled first among equal
//! deadlines, and a cancelled entry is removed (and its callback dropped)
//! at once rather than when its deadline comes.
//!
//! Shutting down drops every pending callback; owners of callbacks that
//! must end something (a task's handle) do it in the callback's `Drop`.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use crate::core::sync::lock_std as lock;
use crate::core::sync::{wait_std, wait_timeout_std};

/// A callback, run once on the timer thread at its deadline.
pub(crate) type TimerCallback = Box<dyn FnOnce() + Send + 'static>;

/// Names a scheduled callback, for [`Timer::cancel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerId {
    deadline: Instant,
    seq: u64,
}

#[derive(Default)]
struct State {
    entries: BTreeMap<TimerId, TimerCallback>,
    next_seq: u64,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

pub(crate) struct Timer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Timer {
    /// Starts the timer thread.
    ///
    /// # Errors
    ///
    /// The OS error if the thread cannot be spawned.
    pub(crate) fn start(name: String) -> std::io::Result<Timer> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let runner = shared.clone();
        let handle = thread::Builder::new()
            .name(name)
            .spawn(move || runner.run())?;
        Ok(Timer {
            shared,
            thread: Mutex::new(Some(handle)),
        })
    }

    /// Runs `callback` on the timer thread at `deadline` (at once if it has
    /// passed). Returns `None`, dropping the callback, if the timer is
    /// shut down.
    pub(crate) fn schedule(&self, deadline: Instant, callback: TimerCallback) -> Option<TimerId> {
        let mut state = lock(&self.shared.state);
        if state.shutdown {
            drop(state);
            drop(callback);
            return None;
        }
        let id = TimerId {
            deadline,
            seq: state.next_seq,
        };
        state.next_seq += 1;
        state.entries.insert(id, callback);
        // Only a new earliest deadline changes how long the thread sleeps.
        let earliest = state.entries.keys().next() == Some(&id);
        drop(state);
        if earliest {
            self.shared.changed.notify_one();
        }
        Some(id)
    }

    /// Removes a pending callback, dropping it now. False if it already
    /// ran (or is running), was cancelled, or the timer shut down.
    pub(crate) fn cancel(&self, id: TimerId) -> bool {
        let callback = lock(&self.shared.state).entries.remove(&id);
        // Dropped outside the lock: its Drop may run user callbacks.
        callback.is_some()
    }

    /// How many callbacks wait for their deadline.
    pub(crate) fn pending(&self) -> usize {
        lock(&self.shared.state).entries.len()
    }

    /// Stops the thread and drops every pending callback (outside the
    /// lock). Idempotent; does not wait for the thread (see `join`).
    pub(crate) fn shutdown(&self) {
        let entries = {
            let mut state = lock(&self.shared.state);
            state.shutdown = true;
            std::mem::take(&mut state.entries)
        };
        self.shared.changed.notify_all();
        drop(entries);
    }

    /// Waits for the thread to exit (after `shutdown`).
    pub(crate) fn join(&self) {
        let handle = lock(&self.thread).take();
        if let Some(handle) = handle {
            if handle.thread().id() != thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

impl Shared {
    fn run(&self) {
        loop {
            let due = {
                let mut state = lock(&self.state);
                loop {
                    if state.shutdown {
                        return;
                    }
                    let now = Instant::now();
                    match state.entries.keys().next() {
                        Some(first) if first.deadline <= now => break,
                        Some(first) => {
                            let wait = first.deadline - now;
                            state = wait_timeout_std(&self.changed, state, wait);
                        }
                        None => {
                            state = wait_std(&self.changed, state);
                        }
                    }
                }
                let now = Instant::now();
                let mut due = Vec::new();
                while let Some(entry) = state.entries.first_entry() {
                    if entry.key().deadline > now {
                        break;
                    }
                    due.push(entry.remove());
                }
                due
            };
            for callback in due {
                // A callback must not take the timer (and every other
                // pending timer) down with it.
                crate::core::panics::run_reporting(0, callback);
            }
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn fires_in_deadline_order_and_cancel_drops_at_once() {
        let timer = Timer::start("t-timer".into()).unwrap();
        let (tx, rx) = mpsc::channel();
        let now = Instant::now();
        // Scheduled out of order; the gate entry fires last.
        for (ms, tag) in [(30u64, 3), (10, 1), (20, 2)] {
            let tx = tx.clone();
            timer.schedule(
                now + Duration::from_millis(ms),
                Box::new(move || tx.send(tag).unwrap()),
            );
        }
        let dropped = Arc::new(());
        let held = dropped.clone();
        let id = timer
            .schedule(
                now + Duration::from_secs(3600),
                Box::new(move || drop(held)),
            )
            .unwrap();
        assert!(timer.cancel(id));
        assert_eq!(Arc::strong_count(&dropped), 1, "cancel drops the callback");
        let got: Vec<i32> = (0..3)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        assert_eq!(got, [1, 2, 3]);
        timer.shutdown();
        timer.join();
        assert!(timer
            .schedule(Instant::now(), Box::new(|| unreachable!()))
            .is_none());
    }
}
