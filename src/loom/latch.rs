//! loom model of the fork-join latch (`core/latch.rs`): the waiter never
//! sleeps through the set, sees what was written before it, and may free
//! the latch the moment it sees it set (the setter must not touch it
//! after its final store: the model marks it freed then, and a later
//! access by the setter fails the model).

#![allow(unsafe_code)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use super::model;
use crate::core::latch::Latch;
use crate::core::waitable::Waitable;

/// A raw latch pointer handed to the setting thread.
struct Shared(*const Latch);
// SAFETY: the latch is Sync; the pointer is only dereferenced by
// `Latch::set`, while the waiter keeps the latch alive.
unsafe impl Send for Shared {}

#[test]
fn loom_latch_waiter_is_woken_and_may_free_it_at_once() {
    model(|| {
        let latch = Box::into_raw(Box::new(Latch::new()));
        let value = Arc::new(AtomicUsize::new(0));
        let setter = {
            let (shared, value) = (Shared(latch), value.clone());
            thread::spawn(move || {
                let shared = shared;
                value.store(42, Ordering::Relaxed);
                // SAFETY: live until the waiter sees it set; set once.
                unsafe { Latch::set(shared.0) };
            })
        };
        let me = thread::current();
        loop {
            // SAFETY: freed only below, by this thread.
            let l = unsafe { &*latch };
            if l.is_done() {
                break;
            }
            if !l.register(&me) {
                continue;
            }
            // As the waiting loop does (`Parking::park`'s stay-awake
            // check): look once more after registering, then park.
            if l.is_done() {
                break;
            }
            thread::park();
        }
        // Written before the set: visible after it.
        assert_eq!(value.load(Ordering::Relaxed), 42);
        // "Frees" it (the setter must no longer touch it), and then frees
        // it for real once the setter is gone.
        // SAFETY: freed below, after the setter thread ended.
        unsafe { &*latch }.mark_freed();
        setter.join().unwrap();
        // SAFETY: nobody else holds the latch any more.
        drop(unsafe { Box::from_raw(latch) });
    });
}
