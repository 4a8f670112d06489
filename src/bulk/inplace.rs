//! The buffers a chunked `map` works in: items are moved out of the input
//! vector by the one chunk that owns them, and each result is written
//! straight into its slot of the output vector. So a map copies no item and
//! allocates its output once, whatever the number of chunks; when a result
//! has the layout of an item (`u64 -> u64`), it is written over the item
//! in the same buffer, and the map allocates nothing.
//!
//! Measured on `benches/map.rs` (1,000,000 u64, `x * x + 1`, 2 threads):
//! the safe predecessor (one `Vec` per chunk, copied in and joined at the
//! end) took about 4x the serial loop; in place, `pool.map` is on par with
//! the serial loop and rayon under load (numbers in `docs/bulk.md`).
//!
//! Every item and every result is owned by exactly one party at a time:
//! a chunk is claimed once (a compare-and-swap on its state), its claimer
//! reads each of its items once and writes each of its slots once, and a
//! failed or skipped chunk drops exactly what it still owns. The buffers
//! themselves are freed by [`InPlace::finish`], once no chunk can run.

#![allow(unsafe_code)]

use std::alloc::Layout;
use std::any::Any;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use crate::core::sync::{AtomicBool, AtomicU8, Ordering};

/// The chunk is untouched: its items are in the input buffer.
const FRESH: u8 = 0;
/// The chunk was claimed; when its claimer is done it owns nothing (its
/// items were consumed or dropped, its results dropped).
const TAKEN: u8 = 1;
/// The chunk ran to the end: its results are in the output buffer.
const WRITTEN: u8 = 2;

pub(crate) struct InPlace<I, U> {
    /// The input vector's buffer; its items are owned by their chunks.
    input: *mut I,
    input_cap: usize,
    /// An allocation for `len` results (or the input buffer itself, when
    /// `I` and `U` have the same layout); slot `i` holds a result once the
    /// chunk of `i` is WRITTEN.
    output: *mut U,
    output_cap: usize,
    /// Results are written over the items, in the input buffer.
    shared: bool,
    len: usize,
    chunksize: usize,
    states: Box<[AtomicU8]>,
    finished: AtomicBool,
}

// SAFETY: the buffers own `I`s and `U`s and hand each to one thread at a
// time (see the module docs); that needs `I: Send` and `U: Send`, nothing
// more, as for `Vec<I>` and `Vec<U>`. Shared access goes only through the
// chunk claims (atomics) and `finish` (whose caller guarantees exclusion).
unsafe impl<I: Send, U: Send> Send for InPlace<I, U> {}
// SAFETY: as above; `&InPlace` gives access to an item only through a
// successful claim, which exactly one thread wins.
unsafe impl<I: Send, U: Send> Sync for InPlace<I, U> {}

/// A panic payload.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

impl<I, U> InPlace<I, U> {
    /// Takes ownership of `items`, to be processed in chunks of `chunksize`
    /// (at least 1).
    pub(crate) fn new(items: Vec<I>, chunksize: usize) -> Self {
        let chunksize = chunksize.max(1);
        let mut items = ManuallyDrop::new(items);
        let len = items.len();
        let input = items.as_mut_ptr();
        let input_cap = items.capacity();
        // When a result has an item's size and alignment, it goes into the
        // item's own slot, as std's in-place `collect` does: no second
        // allocation, and the pages are already touched.
        let shared = Layout::new::<I>() == Layout::new::<U>();
        let (output, output_cap) = if shared {
            (input.cast::<U>(), input_cap)
        } else {
            let mut out = ManuallyDrop::new(Vec::<U>::with_capacity(len));
            (out.as_mut_ptr(), out.capacity())
        };
        let chunks = len / chunksize + usize::from(len % chunksize != 0);
        InPlace {
            input,
            input_cap,
            output,
            output_cap,
            shared,
            len,
            chunksize,
            states: (0..chunks).map(|_| AtomicU8::new(FRESH)).collect(),
            finished: AtomicBool::new(false),
        }
    }

    pub(crate) fn chunks(&self) -> usize {
        self.states.len()
    }

    /// The item indices of chunk `k`.
    fn range(&self, k: usize) -> (usize, usize) {
        // k < chunks, so k * chunksize < len: no overflow.
        let start = k * self.chunksize;
        (start, start + (self.len - start).min(self.chunksize))
    }

    fn claim(&self, k: usize) -> bool {
        self.states[k]
            .compare_exchange(FRESH, TAKEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Runs chunk `k`: moves each item out, writes `f(item)` in its place
    /// in the output. `None` if the chunk was already claimed; `Some(Err)`
    /// with the panic if `f` panicked (what the chunk still owned is then
    /// dropped).
    pub(crate) fn run<F>(&self, k: usize, f: &F) -> Option<Result<(), Payload>>
    where
        F: Fn(I) -> U,
    {
        if !self.claim(k) {
            return None;
        }
        let (start, end) = self.range(k);
        // The next item to move out; items before it are consumed.
        let mut next = start;
        let ran = catch_unwind(AssertUnwindSafe(|| {
            while next < end {
                // SAFETY: `next` is in this chunk, which this thread claimed,
                // and below `len`, so the item is initialised and nobody
                // else reads it; it is read once, as `next` moves past it
                // before `f` can panic.
                let item = unsafe { self.input.add(next).read() };
                next += 1;
                let value = f(item);
                // SAFETY: slot `next - 1` < len <= output_cap, owned by this
                // chunk, written once.
                unsafe { self.output.add(next - 1).write(value) };
            }
        }));
        match ran {
            Ok(()) => {
                self.states[k].store(WRITTEN, Ordering::Release);
                Some(Ok(()))
            }
            Err(payload) => {
                // `f` panicked on item `next - 1` (consumed by the call):
                // results [start, next - 1) are written, items [next, end)
                // are still in the input.
                // SAFETY: exactly those ranges are initialised and owned by
                // this chunk, and nobody else will touch them (the chunk
                // stays TAKEN).
                let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
                    drop_range(self.output, start, next - 1);
                    drop_range(self.input, next, end);
                }));
                Some(Err(payload))
            }
        }
    }

    /// Drops chunk `k`'s items unprocessed, if nobody claimed it yet;
    /// returns whether it did.
    pub(crate) fn discard(&self, k: usize) -> bool {
        if !self.claim(k) {
            return false;
        }
        let (start, end) = self.range(k);
        // SAFETY: the chunk was FRESH and is now ours: its items are
        // initialised and nobody else will read them.
        let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
            drop_range(self.input, start, end)
        }));
        true
    }

    /// Drops whatever the buffers still hold and gives them back: the
    /// results if every chunk was written, and the emptied input buffer
    /// (an empty `Vec` with its capacity), for the caller to free when it
    /// suits (after publishing the results). Later calls return `None`s.
    ///
    /// # Safety
    ///
    /// No chunk may be running, nor be run or discarded after this call.
    pub(crate) unsafe fn finish(&self) -> (Option<Vec<U>>, Option<Vec<I>>) {
        if self.finished.swap(true, Ordering::AcqRel) {
            return (None, None);
        }
        let complete = self
            .states
            .iter()
            .all(|s| s.load(Ordering::Acquire) == WRITTEN);
        let _ = catch_unwind(AssertUnwindSafe(|| {
            for k in 0..self.chunks() {
                let (start, end) = self.range(k);
                match self.states[k].load(Ordering::Acquire) {
                    // SAFETY: a FRESH chunk's items are initialised, and by
                    // the caller's promise nobody else will touch them.
                    FRESH => unsafe { drop_range(self.input, start, end) },
                    // SAFETY: a WRITTEN chunk's results are initialised; they
                    // are dropped here only if not handed out below.
                    WRITTEN if !complete => unsafe { drop_range(self.output, start, end) },
                    _ => {}
                }
            }
        }));
        let output_len = if complete { self.len } else { 0 };
        if self.shared {
            return if complete {
                // SAFETY: the buffer came from a Vec<I> of this capacity, and
                // I and U have the same layout; every slot [0, len) holds a
                // result.
                let output =
                    unsafe { Vec::from_raw_parts(self.output, output_len, self.output_cap) };
                (Some(output), None)
            } else {
                // SAFETY: the buffer came from a Vec<I> of this capacity; what
                // it held was dropped above, so length 0.
                let spent = unsafe { Vec::from_raw_parts(self.input, 0, self.input_cap) };
                (None, Some(spent))
            };
        }
        // SAFETY: the input buffer came from a Vec<I> with this capacity;
        // every item in it has been moved out or dropped, so length 0.
        let spent = unsafe { Vec::from_raw_parts(self.input, 0, self.input_cap) };
        // SAFETY: the output buffer came from a Vec<U> with this capacity;
        // if every chunk is WRITTEN, slots [0, len) are initialised.
        let output = unsafe { Vec::from_raw_parts(self.output, output_len, self.output_cap) };
        (complete.then_some(output), Some(spent))
    }
}

impl<I, U> Drop for InPlace<I, U> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no chunk can be running or run later.
        drop(unsafe { self.finish() });
    }
}

/// Drops the initialised elements `[start, end)` of `base`.
///
/// # Safety
///
/// They must be initialised and owned by the caller, and never used again.
unsafe fn drop_range<T>(base: *mut T, start: usize, end: usize) {
    if start < end {
        // SAFETY: as promised by the caller.
        unsafe { ptr::drop_in_place(ptr::slice_from_raw_parts_mut(base.add(start), end - start)) };
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicIsize;
    use std::sync::Arc;

    /// Counts live values, to catch a leak (> 0) or a double drop (< 0).
    struct Tracked(Arc<AtomicIsize>, u32);

    impl Tracked {
        fn new(live: &Arc<AtomicIsize>, v: u32) -> Self {
            live.fetch_add(1, Ordering::SeqCst);
            Tracked(live.clone(), v)
        }
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn items(live: &Arc<AtomicIsize>, n: u32) -> Vec<Tracked> {
        (0..n).map(|v| Tracked::new(live, v)).collect()
    }

    #[test]
    fn every_chunk_written_gives_the_results_in_order() {
        let live = Arc::new(AtomicIsize::new(0));
        let buf = InPlace::new(items(&live, 10), 3);
        assert_eq!(buf.chunks(), 4);
        for k in [3, 1, 0, 2] {
            assert!(buf.run(k, &|t: Tracked| t.1 * 2).unwrap().is_ok());
            assert!(buf.run(k, &|t: Tracked| t.1).is_none(), "claimed once");
        }
        assert_eq!(live.load(Ordering::SeqCst), 0, "inputs consumed");
        let out = unsafe { buf.finish() }.0.unwrap();
        assert_eq!(out, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
        assert!(unsafe { buf.finish() }.0.is_none());
    }

    #[test]
    fn a_panic_mid_chunk_drops_exactly_what_the_chunk_owned() {
        let live = Arc::new(AtomicIsize::new(0));
        let out_live = Arc::new(AtomicIsize::new(0));
        let buf = InPlace::new(items(&live, 10), 4);
        let f = |t: Tracked| {
            if t.1 == 5 {
                panic!("five");
            }
            Tracked::new(&out_live, t.1)
        };
        assert!(buf.run(0, &f).unwrap().is_ok()); // 0..4 written
        assert!(buf.run(1, &f).unwrap().is_err()); // 4 written, 5 panics
        assert!(buf.discard(2)); // 8..10 dropped unrun
        assert!(!buf.discard(2));
        assert!(!buf.discard(0));
        assert_eq!(live.load(Ordering::SeqCst), 0, "every input dropped once");
        assert_eq!(out_live.load(Ordering::SeqCst), 4, "chunk 0's results live");
        assert!(unsafe { buf.finish() }.0.is_none());
        assert_eq!(out_live.load(Ordering::SeqCst), 0, "and freed at the end");
    }

    #[test]
    fn dropping_unfinished_buffers_frees_everything_once() {
        let live = Arc::new(AtomicIsize::new(0));
        let out_live = Arc::new(AtomicIsize::new(0));
        let buf = InPlace::new(items(&live, 7), 2);
        let f = |t: Tracked| Tracked::new(&out_live, t.1);
        assert!(buf.run(1, &f).unwrap().is_ok());
        drop(buf);
        assert_eq!(live.load(Ordering::SeqCst), 0);
        assert_eq!(out_live.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn same_layout_results_reuse_the_input_buffer() {
        let numbers: Vec<u64> = (0..10).collect();
        let ptr = numbers.as_ptr() as usize;
        let buf = InPlace::new(numbers, 4);
        for k in 0..buf.chunks() {
            assert!(buf.run(k, &|x: u64| (x * 2) as i64).unwrap().is_ok());
        }
        let out = unsafe { buf.finish() }.0.unwrap();
        assert_eq!(out.as_ptr() as usize, ptr, "no new allocation");
        assert_eq!(out, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);

        // Sharing with values that own memory: a panic mid-chunk drops the
        // right kind of value in each slot, once.
        let live = Arc::new(AtomicIsize::new(0));
        let out_live = Arc::new(AtomicIsize::new(0));
        let buf = InPlace::new(items(&live, 9), 3);
        let f = |t: Tracked| {
            if t.1 == 4 {
                panic!("four");
            }
            Tracked::new(&out_live, t.1 + 100)
        };
        assert!(buf.run(2, &f).unwrap().is_ok());
        assert!(buf.run(1, &f).unwrap().is_err());
        assert_eq!(live.load(Ordering::SeqCst), 3, "chunk 0 untouched");
        // Chunk 2's results; chunk 1's one result (item 3) was dropped with
        // its unread item 5 when item 4 panicked.
        assert_eq!(out_live.load(Ordering::SeqCst), 3);
        drop(buf);
        assert_eq!(live.load(Ordering::SeqCst), 0);
        assert_eq!(out_live.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn empty_and_zero_sized() {
        let buf: InPlace<u8, u8> = InPlace::new(Vec::new(), 5);
        assert_eq!(buf.chunks(), 0);
        assert_eq!(unsafe { buf.finish() }.0, Some(vec![]));
        let buf = InPlace::new(vec![(); 5], 2);
        for k in 0..buf.chunks() {
            assert!(buf.run(k, &|()| ()).unwrap().is_ok());
        }
        assert_eq!(unsafe { buf.finish() }.0.unwrap().len(), 5);
        let buf = InPlace::new(vec![1u8, 2, 3], usize::MAX);
        assert_eq!(buf.chunks(), 1);
        assert!(buf.run(0, &|x| x + 1).unwrap().is_ok());
        assert_eq!(unsafe { buf.finish() }.0, Some(vec![2, 3, 4]));
    }
}
