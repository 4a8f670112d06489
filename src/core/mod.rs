//! The engine: a task's state and outcome, the queues and the workers
//! that run them, and how any thread waits. Everything outside `core`
//! builds jobs and hands them in; nothing outside it touches a state
//! word, a deque or a parked thread.
//!
//! Layers, each depending only on the ones above it (checked by reading
//! the `use` lines: the task layer has no import cycle and never imports
//! the scheduler):
//!
//! * `state` owns the state word of a task's outcome and its named
//!   transitions (the state machine, drawn once, is there).
//! * `completion` is a task's outcome: the state word, the result slot,
//!   the waiters and callbacks.
//! * `runner` says what a task needs from the thread that runs it
//!   ([`runner::Runner`]); `job_ref` is what a queue holds
//!   ([`job_ref::Job`], [`job_ref::JobRef`], and `StackJob`, a fork-join
//!   job in its owner's frame); `job` is a submitted task and what a handle
//!   holds ([`job::TaskRef`]); `latch` and `fork` are `join`'s
//!   synchronisation; `waitable` is what any wait is written against;
//!   `live` the set of a pool's async tasks that are not over; `recycle`
//!   the reference-counted pointer whose memory blocks each thread reuses
//!   (plain and token tasks live in one).
//! * The scheduler: `registry` (the queues and the pool's lifecycle),
//!   `worker` (a worker thread: finding and running work), `wait` (the one
//!   waiting loop), `parking` (the park/wake protocol), `stack` (overflow
//!   threads for deep nesting), `idle` (the activity marks `wait_idle`
//!   reads), `threads` (the set of worker threads, elastic or fixed:
//!   starting one when a submission finds nobody idle, retiring idle ones,
//!   resizing, standing in for workers inside `blocking`; its protocol and
//!   proof sketch are there), `counts` (the one word it decides with),
//!   `slots` (the per-worker state reached by index), `forks` (the
//!   deque `join` queues forks on, whose owner fences only while a thief
//!   is announced) and `monitor` (the
//!   starvation safety net). These know each other, as rayon-core's
//!   registry and worker do: the one import cycle of the crate.
//! * `counters` are the per-worker statistics, `panics` where contained
//!   panics go, `sync` picks std's or loom's primitives.

pub(crate) mod barrier;
pub(crate) mod completion;
pub(crate) mod counters;
pub(crate) mod counts;
pub(crate) mod fork;
pub(crate) mod forks;
pub(crate) mod idle;
pub(crate) mod job;
pub(crate) mod job_ref;
pub(crate) mod latch;
pub(crate) mod live;
pub(crate) mod monitor;
pub(crate) mod panics;
pub(crate) mod parking;
pub(crate) mod recycle;
pub(crate) mod registry;
pub(crate) mod runner;
pub(crate) mod slots;
pub(crate) mod stack;
pub(crate) mod state;
pub(crate) mod sync;
pub(crate) mod threads;
pub(crate) mod wait;
pub(crate) mod waitable;
pub(crate) mod worker;
