//! The synchronization primitives the concurrent protocols are written
//! against: std's normally, loom's under `--cfg loom`, so the handle state
//! machine ([`crate::handle`]) and the sleep protocol ([`crate::core::parking`]) can
//! be model-checked unchanged.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::thread::{current as current_thread, park, Thread};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use loom::thread::{current as current_thread, park, Thread};

use std::time::Instant;

/// Locks a mutex, ignoring poisoning: no code in this crate panics while
/// holding one of its locks (user code always runs outside them). Every
/// lock and condvar wait of the crate goes through this and the `_std`
/// helpers below: poisoning is handled one way everywhere.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// [`lock`] for a std mutex, in modules whose protocols are not
/// loom-modelled (they use std's primitives under loom too).
pub(crate) fn lock_std<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits on a std condvar, ignoring poisoning (as [`lock_std`]).
pub(crate) fn wait_std<'a, T>(
    cv: &std::sync::Condvar,
    guard: std::sync::MutexGuard<'a, T>,
) -> std::sync::MutexGuard<'a, T> {
    cv.wait(guard)
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits on a std condvar for at most `timeout`, ignoring poisoning.
pub(crate) fn wait_timeout_std<'a, T>(
    cv: &std::sync::Condvar,
    guard: std::sync::MutexGuard<'a, T>,
    timeout: std::time::Duration,
) -> std::sync::MutexGuard<'a, T> {
    match cv.wait_timeout(guard, timeout) {
        Ok((guard, _)) => guard,
        Err(poisoned) => poisoned.into_inner().0,
    }
}

/// Parks the current thread until unparked, or until `deadline`.
/// Returns false once the deadline has passed (without parking).
pub(crate) fn park_until(deadline: Option<Instant>) -> bool {
    match deadline {
        None => {
            park();
            true
        }
        Some(deadline) => {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            park_timeout(deadline - now);
            true
        }
    }
}

#[cfg(not(loom))]
fn park_timeout(d: std::time::Duration) {
    std::thread::park_timeout(d);
}

#[cfg(loom)]
fn park_timeout(_: std::time::Duration) {
    // loom has no timed park; the models only use untimed waits.
    park();
}
