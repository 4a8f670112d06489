//! The wakers of async tasks: an owning waker is one reference to the
//! task (an [`OwnedWaker`]: the task's own one-word reference kind, or an
//! `Arc` of a [`Wake`] type), and a *borrowed* one, [`WakerRef`], lends
//! the reference of the caller to one poll without touching the count.
//!
//! A poll needs a `&Waker` only for as long as it runs, and the worker
//! polling holds a reference to the task all that time; building an
//! owning waker for it cost a count increment and a decrement per poll,
//! two atomic read-modify-writes (an async task that awaits once is
//! polled twice). A future that keeps the waker clones it, and the clone
//! is an owning waker like any other. The same table serves both, so
//! `Waker::will_wake` sees a borrowed waker and its clones as one.
//!
//! The table's functions treat the data pointer as
//! [`RawRef::into_raw`] of a `W`: every waker made here, borrowed or
//! owned, points to a live task for as long as it exists (an owned one
//! holds its own reference; a borrowed one lives inside a call that holds
//! one).

#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{RawWaker, RawWakerVTable, Wake, Waker};

use crate::core::job::RawRef;

/// An owning reference to a task that a waker can be: one pointer (see
/// [`RawRef`]), the task's own one-word reference kind or an `Arc` of a
/// [`Wake`] type.
pub(crate) trait OwnedWaker: RawRef + Clone + Send + Sync + 'static {
    /// Wakes the task, using up this reference.
    fn wake(self);
    /// Wakes the task, keeping this reference.
    fn wake_by_ref(&self);
}

// SAFETY: `Arc::as_ptr` and `Arc::from_raw` are one pointer to one `W`,
// whose strong count the reference is.
unsafe impl<W: Wake + Send + Sync + 'static> RawRef for Arc<W> {
    fn as_raw(&self) -> NonNull<()> {
        // SAFETY: `Arc::as_ptr` is never null. (Not a pointer made from
        // `&W`: `from_raw` reaches the counts before `W`, outside a
        // reference's range.)
        unsafe { NonNull::new_unchecked(Arc::as_ptr(self).cast_mut()) }.cast()
    }
    unsafe fn from_raw(ptr: NonNull<()>) -> Self {
        // SAFETY: the caller's promise.
        unsafe { Arc::from_raw(ptr.cast::<W>().as_ptr()) }
    }
}

impl<W: Wake + Send + Sync + 'static> OwnedWaker for Arc<W> {
    fn wake(self) {
        Wake::wake(self);
    }
    fn wake_by_ref(&self) {
        Wake::wake_by_ref(self);
    }
}

/// A waker that borrows `W`'s reference instead of holding one (see the
/// module docs). Lives no longer than the `&W` it was made from.
pub(crate) struct WakerRef<'a, W> {
    waker: ManuallyDrop<Waker>,
    _task: PhantomData<&'a W>,
}

impl<'a, W: OwnedWaker> WakerRef<'a, W> {
    pub(crate) fn new(task: &'a W) -> Self {
        let data = task.as_raw().as_ptr().cast_const();
        // SAFETY: `data` points to the task of a live `W`, which the
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

/// The waker functions for a `W`.
struct Table<W>(PhantomData<W>);

impl<W: OwnedWaker> Table<W> {
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

    /// SAFETY (all four): `data` is the pointer of a `W` that is alive for
    /// the call (see the module docs).
    unsafe fn clone(data: *const ()) -> RawWaker {
        // SAFETY: see above; the reference stays the waker's, and the new
        // waker owns the clone taken here.
        let task = ManuallyDrop::new(unsafe { Self::task(data) });
        Self::raw(W::clone(&task).into_raw().as_ptr().cast_const())
    }

    /// The reference `data` stands for.
    ///
    /// SAFETY: as for the four, and the caller takes the reference back
    /// once, or holds it in `ManuallyDrop`.
    unsafe fn task(data: *const ()) -> W {
        // SAFETY: see above; a waker's data pointer is never null.
        unsafe { W::from_raw(NonNull::new_unchecked(data.cast_mut())) }
    }

    /// Consumes an owning waker (never a borrowed one: `Waker::wake` takes
    /// the waker by value, and a `WakerRef` is never given away).
    unsafe fn wake(data: *const ()) {
        // SAFETY: see above; this waker's own reference is used up.
        unsafe { Self::task(data) }.wake();
    }

    unsafe fn wake_by_ref(data: *const ()) {
        // SAFETY: see above; the reference stays the waker's (ManuallyDrop).
        let task = ManuallyDrop::new(unsafe { Self::task(data) });
        task.wake_by_ref();
    }

    /// Drops an owning waker (a borrowed one is never dropped).
    unsafe fn drop(data: *const ()) {
        // SAFETY: see above; this waker's own reference is given back.
        drop(unsafe { Self::task(data) });
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
