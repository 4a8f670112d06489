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
use std::sync::{Arc, Mutex, Weak};

use crate::core::sync::lock_std;
use crate::error::TaskError;

/// A caught panic's payload.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// The handler function, as [`Builder::panic_handler`](crate::Builder::panic_handler) takes it.
type HandlerFn = dyn Fn(&TaskError) + Send + Sync + 'static;

/// What [`Builder::panic_handler`](crate::Builder::panic_handler) stores.
pub(crate) type PanicHandler = Arc<HandlerFn>;

/// The handlers of the pools that have one, by pool id. A panic can be
/// caught on any thread (a worker, a canceller, a caller adding a callback
/// to a finished handle, a timer thread) and only knows its pool's id; the
/// list is read only when a panic is reported. Weak: the pool's registry
/// owns its handler, and a dead entry is pruned at the next registration.
static HANDLERS: Mutex<Vec<(u32, Weak<HandlerFn>)>> = Mutex::new(Vec::new());

/// Routes the contained panics of pool `pool` to `handler` from now on.
pub(crate) fn register(pool: u32, handler: &PanicHandler) {
    let mut handlers = lock_std(&HANDLERS);
    handlers.retain(|(id, h)| *id != pool && h.strong_count() > 0);
    handlers.push((pool, Arc::downgrade(handler)));
}

fn handler_of(pool: u32) -> Option<PanicHandler> {
    if pool == 0 {
        return None;
    }
    let handlers = lock_std(&HANDLERS);
    handlers
        .iter()
        .find(|(id, _)| *id == pool)
        .and_then(|(_, h)| h.upgrade())
}

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
pub(crate) fn report(pool: u32, payload: Payload) {
    let Some(handler) = handler_of(pool) else {
        // The default: std's panic hook has already printed it.
        forget_payload(payload);
        return;
    };
    let error = TaskError::Panicked(payload);
    if let Err(nested) = catch_unwind(AssertUnwindSafe(|| handler(&error))) {
        forget_payload(nested);
    }
    if let Some(payload) = error.into_panic() {
        forget_payload(payload);
    }
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
