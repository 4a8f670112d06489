//! [`ThreadPool::install`](crate::ThreadPool::install): run a closure that
//! may borrow on one of the pool's workers, and wait for it.
//!
//! On a worker of the pool the closure simply runs there. From anywhere
//! else it goes to the pool as an ordinary task whose closure borrows two
//! slots in the caller's frame (the closure to run, and its value), with
//! the borrow's lifetime erased, as `scope` does: sound because the caller
//! does not leave its frame before the task's handle is over, and a handle
//! is over only once the task's closure has been consumed or dropped. A
//! pool that refuses or cancels the task (it is closed or terminated)
//! leaves the closure in its slot, and it runs on the calling thread: an
//! install never waits for a worker that is not coming.

use std::panic::resume_unwind;

use crate::core::registry::Registry;
use crate::core::sync::lock_std;
use crate::core::worker::is_worker_of;
use crate::error::TaskError;
use crate::handle::AsyncResult;

/// Runs `f` on a worker of `registry`'s pool and returns its value (see the
/// module docs); re-raises its panic.
pub(crate) fn install<F, R>(registry: &Registry, f: F) -> R
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    if is_worker_of(registry) {
        return f();
    }
    let func = std::sync::Mutex::new(Some(f));
    let value = std::sync::Mutex::new(None);
    let task = || {
        if let Some(f) = lock_std(&func).take() {
            let r = f();
            *lock_std(&value) = Some(r);
        }
    };
    let task: Box<dyn FnOnce() + Send + '_> = Box::new(task);
    #[allow(unsafe_code)]
    // SAFETY: only the lifetime bound changes (a box's layout does not
    // depend on it). The task borrows `func` and `value` in this frame;
    // `get` below returns only once the task's handle is over, which is
    // after its closure was consumed (run) or dropped (refused,
    // cancelled), and `get` does not unwind. Nothing touches the borrows
    // after that: the task drops its emptied closure slot only.
    let task: Box<dyn FnOnce() + Send + 'static> = unsafe {
        std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Box<dyn FnOnce() + Send + 'static>>(
            task,
        )
    };
    match AsyncResult::submitted(registry.submit(task)).get() {
        Ok(()) => {}
        Err(TaskError::Panicked(payload)) => resume_unwind(payload),
        // Refused or cancelled unrun: the closure is still in its slot.
        Err(_) => {}
    }
    if let Some(f) = lock_std(&func).take() {
        return f();
    }
    let value = lock_std(&value).take();
    value.expect("an installed closure that ran left its value")
}
