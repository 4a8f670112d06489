//! A work-stealing thread pool and futures executor with Python-style
//! result handles.
//!
//! Submit a closure, get an [`AsyncResult`] back at once, and collect the
//! value later with [`get`](AsyncResult::get), as with Python's
//! `ThreadPool.apply_async(...).get()` or
//! `ThreadPoolExecutor.submit(...).result()`, but with true parallelism.
//!
//! # Quick start
//!
//! ```
//! use futurepool::{ThreadPool, TaskError};
//! use std::time::Duration;
//!
//! let pool = ThreadPool::new(4)?;
//!
//! // Submit now, collect later.
//! let answer = pool.submit(|| 6 * 7);
//! assert_eq!(answer.get(), Ok(42));
//!
//! // A panic is caught and handed back; the worker lives on.
//! let oops = pool.submit(|| -> u32 { panic!("boom") });
//! assert!(matches!(oops.get(), Err(TaskError::Panicked(_))));
//!
//! // Bounded waits, callbacks, cancellation.
//! let slow = pool.submit(|| { std::thread::sleep(Duration::from_millis(50)); "late" });
//! slow.add_done_callback(|r| println!("done: {r:?}"));
//! assert_eq!(slow.get_timeout(Duration::from_secs(5)), Ok("late"));
//!
//! // Tasks may submit to their own pool and wait: the waiting worker keeps
//! // running queued work, so this cannot deadlock.
//! let pool = std::sync::Arc::new(pool);
//! let inner = pool.clone();
//! let nested = pool.submit(move || inner.submit(|| 1).get().unwrap() + 1);
//! assert_eq!(nested.get(), Ok(2));
//!
//! // Dropping the last reference closes the pool and waits for queued work.
//! # Ok::<(), futurepool::BuildError>(())
//! ```
//!
//! # Overview
//!
//! * [`ThreadPool`] and its [`Builder`]: workers, names, stack size,
//!   initializer, daemon mode; submitting with [`ThreadPool::submit`],
//!   [`ThreadPool::apply_async`], [`ThreadPool::apply`]; shutting down with
//!   [`close`](ThreadPool::close), [`terminate`](ThreadPool::terminate),
//!   [`join`](ThreadPool::join), [`shutdown`](ThreadPool::shutdown) or drop.
//! * [`AsyncResult`]: get, get_timeout, wait, ready, successful, running,
//!   cancel, add_done_callback, and `.await`.
//! * Bulk work: [`ThreadPool::map`] / [`ThreadPool::map_async`] (chunked,
//!   input order, fail fast), the lazy [`ThreadPool::imap`] /
//!   [`ThreadPool::imap_unordered`], and [`ThreadPool::scope`] for tasks
//!   that borrow from the caller's stack.
//! * Fork-join: [`join`] runs two closures that may borrow, possibly in
//!   parallel, without allocating on a worker; [`ThreadPool::install`]
//!   runs a borrowing closure on a pool's worker.
//! * Waiting on many handles: [`as_completed`] and [`wait`] with
//!   [`ReturnWhen`].
//! * [`TaskError`]: why a handle holds no value. [`BuildError`]: why a pool
//!   could not be built.
//! * [`global`] and [`submit`]: a lazily built process-wide pool.
//! * Beyond Python's pools (each replacing a hand-built pattern, see
//!   `docs/python_patterns.md`): cooperative cancellation of running tasks
//!   ([`ThreadPool::submit_cancellable`], [`CancelToken`]); delayed and
//!   periodic tasks ([`ThreadPool::submit_after`],
//!   [`ThreadPool::submit_periodic`]); priorities
//!   ([`ThreadPool::submit_with_priority`]); a bounded queue with
//!   backpressure ([`Builder::max_queued`], [`ThreadPool::try_submit`]);
//!   waiting for idle ([`ThreadPool::wait_idle`]); metrics
//!   ([`ThreadPool::stats`], [`PoolStats`]).
//! * Async: [`ThreadPool::spawn_async`] runs futures on the same workers,
//!   with the same handles; [`spawn_async`] does so on the global pool;
//!   [`block_on`] runs a future on the calling thread. See `docs/async.md`.
//!
//! # Priorities
//!
//! [`ThreadPool::submit_with_priority`] queues a task on a priority heap
//! kept apart from the lock-free queues. Guaranteed: among queued
//! prioritized tasks, each task a worker takes is the highest-priority one
//! queued at that moment, the oldest first among equals; with one worker
//! they start in exactly that order. A plain submission counts as priority
//! 0: prioritized tasks above 0 are taken before plain ones, those at or
//! below 0 after them. Not guaranteed once work-stealing is involved: with
//! several workers tasks start in priority order but run side by side; a
//! worker that took a batch of plain outside work into its own deque runs
//! that batch before it looks at priorities again; and tasks submitted from
//! inside the pool go to the submitting worker's deque, which it serves
//! first.
//!
//! # Timers
//!
//! [`ThreadPool::submit_after`] and [`ThreadPool::submit_periodic`] use one
//! timer thread per pool (named `{prefix}-timer`), started on first use.
//! It sleeps until the earliest deadline and then only queues the task,
//! which runs on a worker; an idle pool with pending timers burns no CPU.
//! Closing the pool cancels the timers that have not fired, and
//! [`join`](ThreadPool::join) joins the timer thread too.
//!
//! The design (scheduling, the handle's state machine, the sleep protocol)
//! is described in `docs/design.md` in the repository.

#![warn(missing_docs)]
#![deny(unsafe_code)]

mod bulk;
mod core;
mod error;
mod future;
mod global;
mod handle;
mod pool;
mod timers;

#[cfg(all(test, loom))]
mod loom;

pub use bulk::join::join;
pub use bulk::map::{IMap, IMapUnordered};
pub use bulk::scope::{Scope, ScopedHandle};
pub use bulk::wait_many::{as_completed, wait, AsCompleted, ReturnWhen};
pub use error::{BuildError, BuildErrorKind, ResizeError, TaskError};
pub use future::block_on::block_on;
pub use global::{global, spawn_async, submit, try_global};
pub use handle::AsyncResult;
pub use pool::bounded::TrySubmitError;
pub use pool::builder::Builder;
pub use pool::cancel::CancelToken;
pub use pool::elastic::blocking;
pub use pool::stats::PoolStats;
pub use pool::ThreadPool;
pub use timers::sleep::{sleep, sleep_until, Sleep};
