//! Panics with nowhere to go: user code the pool runs or drops on the
//! user's behalf (a done-callback, a foreign waker, the `Drop` of a
//! closure, future or value nobody will collect) may panic where no handle
//! can carry the panic back. This module owns what happens then: the
//! panic is contained (it never unwinds into a worker, a canceller or a
//! submitter, and never keeps a handle from resolving), and its payload is
//! handed to the pool's panic handler, if it has one
//! ([`Builder::panic_handler`](crate::Builder::panic_handler)), then
//! dropped, itself contained (a payload's `Drop` may panic too).

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A caught panic's payload.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// How many nested panics (a payload whose drop panics with a payload
/// whose drop panics, ...) are dropped before the rest is leaked.
const NESTED_DROPS: usize = 8;

/// Drops `value`; a panic in its `Drop` is reported as one with nowhere
/// to go for pool `pool` (the pool's id, 0 if none).
pub(crate) fn drop_reporting<T>(pool: u32, value: T) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
        report(pool, payload);
    }
}

/// Runs `f`; a panic is reported as one with nowhere to go for `pool`.
pub(crate) fn run_reporting(pool: u32, f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        report(pool, payload);
    }
}

/// Hands a contained panic to pool `pool`'s panic handler (if it has
/// one), then drops the payload without letting its `Drop` unwind.
pub(crate) fn report(_pool: u32, payload: Payload) {
    forget_payload(payload);
}

/// Drops a panic payload, containing a panic in its `Drop` (and in that
/// panic's payload's, a few levels deep; beyond that it is leaked).
pub(crate) fn forget_payload(payload: Payload) {
    let mut next = payload;
    for _ in 0..NESTED_DROPS {
        match catch_unwind(AssertUnwindSafe(move || drop(next))) {
            Ok(()) => return,
            Err(nested) => next = nested,
        }
    }
    std::mem::forget(next);
}
