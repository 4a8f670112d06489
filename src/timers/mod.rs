//! Time: the timer thread that fires deadlines (`thread.rs`), delayed and
//! periodic tasks built on a pool's timer (`delayed.rs`), and the
//! awaitable delays `futurepool::sleep` / `sleep_until` on a process-wide
//! timer (`sleep.rs`).
//!
//! Words: a *timer* is a thread that fires deadlines; a *delay* is a task
//! or future waiting for one; *sleep* is only ever the public async delay.

pub(crate) mod delayed;
pub(crate) mod sleep;
pub(crate) mod thread;
