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
//! * [`TaskError`]: why a handle holds no value. [`BuildError`]: why a pool
//!   could not be built.
//! * [`global`] and [`submit`]: a lazily built process-wide pool.
//! * Async: [`ThreadPool::spawn_async`] runs futures on the same workers,
//!   with the same handles; [`spawn_async`] does so on the global pool;
//!   [`block_on`] runs a future on the calling thread. See `docs/async.md`.
//!
//! The design (scheduling, the handle's state machine, the sleep protocol)
//! is described in `docs/design.md` in the repository.

#![warn(missing_docs)]
#![deny(unsafe_code)]

mod block_on;
mod builder;
mod error;
mod global;
mod handle;
mod job;
mod pool;
mod registry;
mod sleep;
mod sync;
mod task_async;
mod worker;

#[cfg(all(test, loom))]
mod loom_tests;

pub use block_on::block_on;
pub use builder::Builder;
pub use error::{BuildError, BuildErrorKind, TaskError};
pub use global::{global, submit};
pub use handle::AsyncResult;
pub use pool::ThreadPool;
pub use task_async::spawn_async;
