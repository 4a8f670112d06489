//! The wakers of async tasks: an owning waker is one strong reference to
//! the task's `Arc` (as std's `Waker::from(Arc<impl Wake>)` makes), and a
//! *borrowed* one, [`WakerRef`], lends the task's own reference to one
//! poll without touching the count.
//!
//! A poll needs a `&Waker` only for as long as it runs, and the worker
//! polling holds a reference to the task all that time; building an
//! owning waker for it cost a strong-count increment and a decrement per
//! poll, two atomic read-modify-writes (an async task that awaits once is
//! polled twice). A future that keeps the waker clones it, and the clone
//! is an owning waker like any other. The same table serves both, so
//! `Waker::will_wake` sees a borrowed waker and its clones as one.
//!
//! The table's functions treat the data pointer as `Arc::into_raw` of an
//! `Arc<W>`: every waker made here, borrowed or owned, points to a live
//! `W` for as long as it exists (an owned one holds its own reference; a
//! borrowed one lives inside a call that holds one).

#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::sync::Arc;
use std::task::{RawWaker, RawWakerVTable, Wake, Waker};

/// A waker that borrows `W`'s reference instead of holding one (see the
/// module docs). Lives no longer than the `&Arc<W>` it was made from.
pub(crate) struct WakerRef<'a, W> {
    waker: ManuallyDrop<Waker>,
    _task: PhantomData<&'a Arc<W>>,
}

impl<'a, W: Wake + Send + Sync + 'static> WakerRef<'a, W> {
    pub(crate) fn new(task: &'a Arc<W>) -> Self {
        let data = Arc::as_ptr(task).cast::<()>();
        // SAFETY: `data` points to the `W` of a live `Arc<W>`, which the
        // borrow keeps alive for as long as this waker exists; the waker
        // is never dropped (ManuallyDrop), so it gives back no reference
        // it does not hold, and its clones take their own (`clone` below).
        let waker = unsafe { Waker::from_raw(Table::<W>::raw(data)) };
        WakerRef {
            waker: ManuallyDrop::new(waker),
            _task: PhantomData,
        }
    }
}

impl<W> Deref for WakerRef<'_, W> {
    type Target = Waker;
    fn deref(&self) -> &Waker {
        &self.waker
    }
}

/// The waker functions for an `Arc<W>`.
struct Table<W>(PhantomData<W>);

impl<W: Wake + Send + Sync + 'static> Table<W> {
    const VTABLE: &'static RawWakerVTable =
        &RawWakerVTable::new(Self::clone, Self::wake, Self::wake_by_ref, Self::drop);

    /// A waker of this table for `data`. Every waker made here, borrowed
    /// or cloned, comes from this one function: a constant's address is
    /// not guaranteed to be the same at every place that names it (each
    /// codegen unit may get its own copy), and `Waker::will_wake` compares
    /// the table's address. Out of line, so the crate has one copy of it
    /// per `W`, and so one table address.
    #[inline(never)]
    fn raw(data: *const ()) -> RawWaker {
        RawWaker::new(data, Self::VTABLE)
    }

    /// SAFETY (all four): `data` is `Arc::as_ptr` of an `Arc<W>` that is
    /// alive for the call (see the module docs).
    unsafe fn clone(data: *const ()) -> RawWaker {
        // SAFETY: see above; the new waker owns the reference taken here.
        unsafe { Arc::increment_strong_count(data.cast::<W>()) };
        Self::raw(data)
    }

    /// Consumes an owning waker (never a borrowed one: `Waker::wake` takes
    /// the waker by value, and a `WakerRef` is never given away).
    unsafe fn wake(data: *const ()) {
        // SAFETY: see above; this waker's own reference moves into the Arc.
        unsafe { Arc::from_raw(data.cast::<W>()) }.wake();
    }

    unsafe fn wake_by_ref(data: *const ()) {
        // SAFETY: see above; the reference stays the waker's (ManuallyDrop).
        let task = ManuallyDrop::new(unsafe { Arc::from_raw(data.cast::<W>()) });
        W::wake_by_ref(&task);
    }

    /// Drops an owning waker (a borrowed one is never dropped).
    unsafe fn drop(data: *const ()) {
        // SAFETY: see above; this waker's own reference is given back.
        drop(unsafe { Arc::from_raw(data.cast::<W>()) });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A borrowed waker takes no reference; its clones each take one and
    /// give it back when dropped or woken; every wake reaches the task.
    /// Run under Miri by CI, which also catches a reference given back
    /// twice or never.
    #[test]
    fn a_borrowed_waker_counts_nothing_and_its_clones_own_their_reference() {
        let task = Arc::new(Counter::default());
        let borrowed = WakerRef::new(&task);
        assert_eq!(Arc::strong_count(&task), 1);
        borrowed.wake_by_ref();
        let owned = (*borrowed).clone();
        assert_eq!(Arc::strong_count(&task), 2);
        assert!(owned.will_wake(&borrowed));
        let second = owned.clone();
        assert_eq!(Arc::strong_count(&task), 3);
        owned.wake();
        assert_eq!(Arc::strong_count(&task), 2);
        second.wake_by_ref();
        drop(second);
        assert_eq!(Arc::strong_count(&task), 1);
        assert_eq!(task.0.load(Ordering::SeqCst), 3);
    }
}
