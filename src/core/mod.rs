//! The engine: a task's state and outcome, the queues and the workers
//! that run them, and how any thread waits. Everything outside `core`
//! builds jobs and hands them in; nothing outside it touches a state
//! word, a deque or a parked thread.
//!
//! Layers, each depending only on the ones above it:
//!
//! * `state` owns the state word of a task's outcome and its named
//!   transitions (the state machine, drawn once, is there).
//! * `completion` is a task's outcome: the state word, the result slot,
//!   the waiters and callbacks.
//! * `job` is what a queue holds ([`job::Job`]) and what a handle holds
//!   ([`job::TaskRef`]); it says what it needs from the thread that runs
//!   it ([`job::Runner`]) and never imports the scheduler.
//! * `registry` (the queues and the pool's lifecycle), `worker` (a worker
//!   thread: finding and running work), `wait` (the one waiting loop),
//!   `parking` (the park/wake protocol) and `stack` (overflow threads for
//!   deep nesting) are the scheduler; registry and worker know each other,
//!   as rayon-core's do.
//! * `threads` is the set of worker threads, elastic or fixed: starting
//!   one when a submission finds nobody idle, retiring idle ones,
//!   resizing, standing in for workers inside `blocking` (its protocol
//!   and proof sketch are there); `counts` is the one word it decides
//!   with, `slots` the per-worker state reached by index, `monitor` the
//!   starvation safety net.
//! * `counters` are the per-worker statistics; `sync` picks std's or
//!   loom's primitives.

pub(crate) mod completion;
pub(crate) mod counters;
pub(crate) mod counts;
pub(crate) mod fork;
pub(crate) mod job;
pub(crate) mod job_ref;
pub(crate) mod latch;
pub(crate) mod monitor;
pub(crate) mod panics;
pub(crate) mod parking;
pub(crate) mod registry;
pub(crate) mod slots;
pub(crate) mod stack;
pub(crate) mod state;
pub(crate) mod sync;
pub(crate) mod threads;
pub(crate) mod wait;
pub(crate) mod worker;
