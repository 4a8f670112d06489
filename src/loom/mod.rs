//! loom models of the crate's concurrency protocols, one file per
//! protocol. Run with `RUSTFLAGS="--cfg loom" cargo test --release --lib loom_`.
//!
//! Each model explores every interleaving (up to loom's preemption bound)
//! of a small scenario and checks that nothing is lost: a result is
//! published exactly once, every callback runs exactly once, no waiter
//! sleeps through a publication, no worker sleeps through a wake-up, no
//! task is left in a queue nobody serves. Each model prints how many
//! interleavings it explored (`-- --nocapture`).
//!
//! * `completion.rs`: a task's state word and outcome (`core/state.rs`,
//!   `core/completion.rs`): run vs cancel, waiters, callbacks, takers,
//!   timed-out waiters, a dropped handle.
//! * `parking.rs`: parking and waking workers (`core/parking.rs`).
//! * `shutdown.rs`: close and terminate racing submit (`core/registry.rs`).
//! * `latch.rs`: the fork-join latch (`core/latch.rs`): set versus a
//!   waiter that registers, parks and frees the latch once it is set.
//! * `async_task.rs`: the wake/poll state machine of async tasks
//!   (`future/task.rs`).
//! * `forks.rs`: the fork deque (`core/forks.rs`): owner against thief,
//!   with a fence in every take-back and with the acknowledgement path
//!   of the asymmetric form.
//! * `elastic.rs`: workers leaving the count, entering `blocking` or
//!   searching, racing a submission (`core/threads.rs`, `core/counts.rs`).

mod async_task;
mod completion;
mod elastic;
mod forks;
mod latch;
mod parking;
mod shutdown;

use std::sync::Arc;

use loom::thread;

use crate::core::completion::{Completion, Waiter};

pub(super) fn model(f: impl Fn() + Sync + Send + 'static) {
    // Counts the interleavings explored, for docs/reliability.md.
    let iterations = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = iterations.clone();
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f()
    });
    println!(
        "loom: {} interleavings (preemption bound 3) in {}",
        iterations.load(std::sync::atomic::Ordering::Relaxed),
        std::thread::current().name().unwrap_or("?")
    );
}

/// Blocks the current (loom) thread until the completion is published.
pub(super) fn park_until_published<T>(c: &Completion<T>) {
    loop {
        if c.is_published() {
            return;
        }
        if !c.register(Waiter::Thread(thread::current()), true) {
            return;
        }
        thread::park();
    }
}
