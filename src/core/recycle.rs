//! Task memory that is reused instead of going back to the allocator:
//! [`Recycled<V>`], a reference-counted owning pointer (as `Arc` without
//! weak references) whose block comes from a per-thread free list.
//!
//! Why: a submitted task is allocated by the submitting thread and freed
//! by whichever thread drops its last reference (the handle or the queue
//! entry), in the stack-like order nested tasks make. glibc keeps only
//! seven freed chunks per size in its per-thread cache, so a nesting
//! deeper than that goes through its slow paths on every task.
//!
//! The algorithm:
//!
//! * A block is the count followed by the value ([`RcBox`]). Its layout
//!   picks a size class: 8, 16, 24 ... 256 bytes, aligned to 16. A
//!   bigger or more aligned block is not recycled: it comes from and goes
//!   back to the global allocator, with its own layout.
//! * Each thread has one free list per class (a thread-local [`Lists`]):
//!   an intrusive singly-linked list threaded through the freed blocks
//!   themselves, and its length. Allocating pops the head of the list of
//!   the block's class, or asks the global allocator for a block of the
//!   class's size when the list is empty.
//! * The thread that drops the last reference drops the value, then
//!   pushes the block onto its own list of that class if the list holds
//!   fewer than [`KEEP`] blocks plus as many as this thread has taken
//!   from the global allocator for that class (its *share*, at most
//!   [`KEEP_SHARE`]). Otherwise the block goes back to the global
//!   allocator. A block may so move from the thread that allocated it to
//!   another; every block of a class has the same layout, so any thread
//!   may reuse or free it. The share is what lets a thread that makes a
//!   burst of tasks and collects them (200,000 at once in W1 of the
//!   benchmark suite) reuse that memory for its next burst, while a
//!   thread that only frees blocks others made (a worker running
//!   submissions from outside) keeps no more than [`KEEP`]: what a thread
//!   holds is bounded by what it once had to allocate, never by how many
//!   blocks pass through it. A block made beside another allocation
//!   ([`Recycled::new_beside`]) adds nothing to the share.
//! * When a thread exits, its lists' destructor gives every block back
//!   to the global allocator. Code that runs after that destructor (or
//!   during thread-local destruction before the lists exist) finds the
//!   lists gone ([`LocalKey::try_with`](std::thread::LocalKey::try_with)
//!   fails) and uses the global allocator directly.
//! * The count follows `Arc`'s protocol: a new reference increments it
//!   (Relaxed; the process aborts rather than let it wrap), a dropped one
//!   decrements it (Release), and the thread that takes it to zero
//!   synchronises with every earlier drop (an Acquire load) before it
//!   drops the value.
//!
//! No user code runs while a list is being changed (the value is dropped
//! before its block is pushed), so a drop that submits more work, or that
//! runs inside another thread-local's destructor, only ever finds the
//! lists in a consistent state.

#![allow(unsafe_code)]

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The size step of the classes, and their alignment. A block takes the
/// smallest malloc chunk a request of its size can (glibc adds its 8-byte
/// header and rounds up to 16): a plain task of a small closure returning
/// a word is 72 bytes with its count, an 80-byte chunk, where a 16-byte
/// step (an 80-byte block) took a 96-byte one, and an `Arc` (16-byte
/// header) did too: 16 bytes less per queued task (W6 in the benchmark
/// suite).
const CLASS_SIZE: usize = 8;
const CLASS_ALIGN: usize = 16;
/// Classes of 8, 16, ... 256 bytes.
const CLASSES: usize = 32;
/// How many free blocks any thread keeps per class, whoever took them.
/// Nested tasks free their blocks in stack order, so a thread reuses
/// without the allocator as many tasks as its nesting is deep, up to
/// this. Measured on the nested fib(24) benchmark (one thread,
/// callgrind): keeping 8 still spent about 4.5 times the instructions of
/// keeping 16 in malloc and free, and 16, 32 and 128 measured the same
/// (every task's block recycled). 32 leaves room for deeper nesting and
/// for handles dropped in batches: 32 blocks of one task size (3 KiB for
/// plain tasks of a small closure), 132 KiB if every class were full.
const KEEP: usize = 32;
/// The most a thread's share (see the module docs) may add to [`KEEP`]
/// for one class: 262,144 blocks, 21 MiB of the 80-byte blocks of small
/// plain tasks, reached only by a thread that once had to allocate that
/// many blocks of the class (after a burst of that many tasks, the
/// allocator would have kept their memory in its arena as well). Measured
/// on W1 (200,000 tasks submitted from one thread, then collected; side by
/// side, one run each): keeping 32 0.45–0.49× rayon's time, keeping up to
/// 65,536 0.31–0.36×, keeping every block 0.16–0.21×, keeping what the
/// thread took and gave back itself (a debt counted on every take and
/// give) 0.15–0.17×, this share 0.15–0.19×.
const KEEP_SHARE: usize = 1 << 18;

/// The block behind a [`Recycled`]: the count, then the value.
#[repr(C)]
pub(crate) struct RcBox<V: ?Sized> {
    count: AtomicUsize,
    value: V,
}

/// A reference-counted owning pointer whose block is recycled per thread
/// (see the module docs). Like `Arc`, it derefs to a shared `V`.
pub(crate) struct Recycled<V: ?Sized> {
    ptr: NonNull<RcBox<V>>,
    owns: PhantomData<RcBox<V>>,
}

// SAFETY: as for `Arc<V>`: the value is shared between threads (Sync) and
// dropped by whichever thread drops the last reference (Send); the count
// is atomic, and the free lists are per thread (a block is pushed only by
// the thread that holds it alone).
unsafe impl<V: ?Sized + Send + Sync> Send for Recycled<V> {}
// SAFETY: as above; `&Recycled<V>` gives `&V` and clones.
unsafe impl<V: ?Sized + Send + Sync> Sync for Recycled<V> {}

// As `Arc`: pinning a pointer does not pin its block, and a reference is
// unwind-safe when a shared value is.
impl<V: ?Sized> Unpin for Recycled<V> {}
impl<V: ?Sized + std::panic::RefUnwindSafe> std::panic::UnwindSafe for Recycled<V> {}

impl<V> Recycled<V> {
    /// Moves `value` into a block of this thread's free list (or a new one).
    pub(crate) fn new(value: V) -> Self {
        Self::with_count(value, 1, Share::Counts)
    }

    /// [`new`](Self::new) for a block made beside an allocation of the
    /// global allocator (an `Arc` task's adapter): it does not add to the
    /// thread's share (see the module docs), so beyond [`KEEP`] such
    /// blocks go back to the allocator, which keeps them near what they
    /// were made with. Measured when an async task was an `Arc` with its
    /// handle part in a block beside it: keeping 100,000 of those parts
    /// on the thread that collected them made the async benchmark
    /// (`async_oneshot`) about 30% slower.
    pub(crate) fn new_beside(value: V) -> Self {
        Self::with_count(value, 1, Share::None)
    }

    /// [`new`](Self::new) with two references at once (a task's handle and
    /// its queue entry): the same as `new` and `clone`, without the
    /// clone's atomic read-modify-write.
    pub(crate) fn new_pair(value: V) -> (Self, Self) {
        let first = Self::with_count(value, 2, Share::Counts);
        let second = Recycled {
            ptr: first.ptr,
            owns: PhantomData,
        };
        (first, second)
    }

    /// [`new`](Self::new) with `N` references at once (an async task's
    /// handle, its entry in the pool's list of live tasks and its polling
    /// references, see `future/refs.rs`), without a clone's
    /// read-modify-write each.
    pub(crate) fn new_refs<const N: usize>(value: V) -> [Self; N] {
        assert!(N > 0, "a block with no reference would leak");
        let first = Self::with_count(value, N, Share::Counts);
        let ptr = first.ptr;
        std::mem::forget(first);
        [(); N].map(|()| Recycled {
            ptr,
            owns: PhantomData,
        })
    }

    /// A block holding `value` with `count` references, which the caller
    /// makes (one `Recycled` each).
    #[inline]
    fn with_count(value: V, count: usize, share: Share) -> Self {
        let layout = Layout::new::<RcBox<V>>();
        let block = alloc_block(layout, share).cast::<RcBox<V>>();
        // SAFETY: `block` is valid for writes of `layout`, which is
        // `RcBox<V>`'s (a class block is at least as big and as aligned).
        unsafe {
            block.as_ptr().write(RcBox {
                count: AtomicUsize::new(count),
                value,
            });
        }
        Recycled {
            ptr: block,
            owns: PhantomData,
        }
    }

    /// Where the value sits in its block.
    fn value_offset() -> usize {
        // `RcBox` is `repr(C)`: the value follows the count, padded to its
        // alignment, as `Layout::extend` computes.
        match Layout::new::<AtomicUsize>().extend(Layout::new::<V>()) {
            Ok((_, offset)) => offset,
            Err(_) => unreachable!("RcBox<V> has a layout"),
        }
    }

    /// Gives up this reference as a pointer to the value (which is what
    /// the queue entry of a task points to); [`from_raw`](Self::from_raw)
    /// takes it back.
    pub(crate) fn into_raw(this: Self) -> NonNull<V> {
        let ptr = this.ptr;
        std::mem::forget(this);
        // SAFETY: the block is live (this reference kept it); the field
        // address is in bounds and not null.
        unsafe { NonNull::new_unchecked(std::ptr::addr_of_mut!((*ptr.as_ptr()).value)) }
    }

    /// The reference given up by [`into_raw`](Self::into_raw).
    ///
    /// # Safety
    ///
    /// `value` came from `into_raw` of a `Recycled<V>` (the same `V`), and
    /// that reference is taken back once.
    pub(crate) unsafe fn from_raw(value: NonNull<V>) -> Self {
        // SAFETY: the value sits `value_offset` bytes into its block (the
        // caller's promise); the block start is in the same allocation.
        let block = unsafe { value.as_ptr().cast::<u8>().sub(Self::value_offset()) };
        Recycled {
            // SAFETY: a block address, not null.
            ptr: unsafe { NonNull::new_unchecked(block.cast::<RcBox<V>>()) },
            owns: PhantomData,
        }
    }
}

impl<V: ?Sized> Recycled<V> {
    /// This reference as a `Recycled<U>` of an unsized `U` (a trait
    /// object `V` implements): `coerce` is the unsizing coercion,
    /// `|p| p as *mut RcBox<dyn Trait>`.
    ///
    /// # Safety
    ///
    /// `coerce` must return its argument, unsized: the same address, with
    /// the metadata of `V` as a `U` (a plain coercion does).
    pub(crate) unsafe fn unsize<U: ?Sized>(
        self,
        coerce: impl FnOnce(*mut RcBox<V>) -> *mut RcBox<U>,
    ) -> Recycled<U> {
        let ptr = self.ptr;
        std::mem::forget(self);
        let unsized_ptr = coerce(ptr.as_ptr());
        debug_assert_eq!(unsized_ptr.cast::<u8>(), ptr.as_ptr().cast::<u8>());
        Recycled {
            // SAFETY: the caller's promise: the same (non-null) block.
            ptr: unsafe { NonNull::new_unchecked(unsized_ptr) },
            owns: PhantomData,
        }
    }

    /// Whether the value has exactly `n` references now. Acquire, as the
    /// last drop's load is: when all `n` are the caller's, every use of the
    /// value through a reference dropped before happens before what the
    /// caller does next.
    #[inline]
    pub(crate) fn has_count(this: &Self, n: usize) -> bool {
        this.inner().count.load(Ordering::Acquire) == n
    }

    /// Drops the value and frees the block at once, without counting down:
    /// what dropping every reference would do, less one atomic
    /// read-modify-write per reference.
    ///
    /// # Safety
    ///
    /// The caller holds every reference to the block: this one and the
    /// others it has given up without dropping them (forgotten, or turned
    /// into pointers by [`into_raw`](Recycled::into_raw)), which it never
    /// uses again. [`has_count`](Recycled::has_count) says how many there
    /// are.
    #[inline]
    pub(crate) unsafe fn free_alone(this: Self) {
        let this = std::mem::ManuallyDrop::new(this);
        let layout = Layout::for_value(this.inner());
        // SAFETY: the caller's promise: no other reference exists, so the
        // value is dropped once, here, as by the last reference's drop
        // (`drop_slow`, inlined here: a caller of a known `V` gets a
        // constant layout and the value's drop in line).
        unsafe { std::ptr::drop_in_place(this.ptr.as_ptr()) };
        // SAFETY: as in `drop_slow`: the block came from
        // `alloc_block(layout)` and is no longer used.
        unsafe { free_block(this.ptr.cast::<u8>(), layout) };
    }

    /// How many references the value has (tests).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn count(this: &Self) -> usize {
        this.inner().count.load(Ordering::Acquire)
    }

    fn inner(&self) -> &RcBox<V> {
        // SAFETY: this reference keeps the block and the value alive.
        unsafe { self.ptr.as_ref() }
    }

    /// Drops the value and frees the block: the last reference is gone.
    /// Out of line, as `Arc`'s: the drop of a reference stays small.
    #[inline(never)]
    unsafe fn drop_slow(&mut self) {
        // The layout first, while the value is still there to read it from.
        let layout = Layout::for_value(self.inner());
        // SAFETY: the count reached zero: nobody else can reach the block
        // (the caller's promise), so the value is dropped once, here.
        unsafe { std::ptr::drop_in_place(self.ptr.as_ptr()) };
        // SAFETY: the block came from `alloc_block(layout)` (`new`: the
        // same type, so the same layout, whatever the pointer's type is
        // now) and is no longer used.
        unsafe { free_block(self.ptr.cast::<u8>(), layout) };
    }
}

impl<V: ?Sized> Clone for Recycled<V> {
    fn clone(&self) -> Self {
        // As `Arc::clone`: the new reference is made from an existing one,
        // so no ordering is needed; a count past isize::MAX means leaked
        // references by the billion, and wrapping would free a live block.
        let old = self.inner().count.fetch_add(1, Ordering::Relaxed);
        if old > isize::MAX as usize {
            std::process::abort();
        }
        Recycled {
            ptr: self.ptr,
            owns: PhantomData,
        }
    }
}

impl<V: ?Sized> Deref for Recycled<V> {
    type Target = V;
    fn deref(&self) -> &V {
        &self.inner().value
    }
}

impl<V: ?Sized> Drop for Recycled<V> {
    fn drop(&mut self) {
        // As `Arc`'s drop: Release so that this thread's uses of the value
        // happen before its drop; the last one's Acquire load of the count
        // (which reads its own decrement, the end of every earlier
        // decrement's release sequence) synchronises with each of them.
        // A load rather than a fence: the same on x86 and ARM, and
        // ThreadSanitizer, which does not model fences, sees it (it
        // reported the value's drop racing an earlier use with the fence).
        if self.inner().count.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        let _ = self.inner().count.load(Ordering::Acquire);
        // SAFETY: this was the last reference.
        unsafe { self.drop_slow() };
    }
}

/// A freed block, as its list sees it.
struct FreeBlock {
    next: Option<NonNull<FreeBlock>>,
}

/// One free list: its head and length, and how many blocks it may hold:
/// [`KEEP`] plus the thread's share (see the module docs).
struct List {
    head: Cell<Option<NonNull<FreeBlock>>>,
    len: Cell<usize>,
    limit: Cell<usize>,
}

/// A thread's free lists, one per class (see the module docs).
struct Lists([List; CLASSES]);

impl Lists {
    const fn new() -> Self {
        // A constant, so that the array can repeat it (List is not Copy);
        // each element is a fresh copy of it, never shared.
        #[allow(clippy::declare_interior_mutable_const)]
        const EMPTY: List = List {
            head: Cell::new(None),
            len: Cell::new(0),
            limit: Cell::new(KEEP),
        };
        Lists([EMPTY; CLASSES])
    }

    /// A block from the global allocator was taken for `class`: the
    /// thread's share grows, unless the block is made beside another
    /// allocation ([`Recycled::new_beside`]).
    #[cold]
    fn fetched(&self, class: usize, share: Share) {
        if let Share::Counts = share {
            let list = &self.0[class];
            list.limit
                .set((list.limit.get() + 1).min(KEEP + KEEP_SHARE));
        }
    }

    #[inline]
    fn pop(&self, class: usize) -> Option<NonNull<u8>> {
        let list = &self.0[class];
        let head = list.head.get()?;
        // SAFETY: a block on the list is this list's alone, and its first
        // word was written by `push` (`FreeBlock` fits any class block).
        let next = unsafe { head.as_ptr().read().next };
        list.head.set(next);
        list.len.set(list.len.get() - 1);
        Some(head.cast())
    }

    /// Keeps `block` (of `class`); false if the list is full (it holds
    /// its limit: [`KEEP`] plus the thread's share).
    #[inline]
    fn push(&self, class: usize, block: NonNull<u8>) -> bool {
        let list = &self.0[class];
        let len = list.len.get();
        if len >= list.limit.get() {
            return false;
        }
        let block = block.cast::<FreeBlock>();
        // SAFETY: the block is free and ours (the caller's promise), at
        // least 16 bytes aligned to 16: room for a `FreeBlock`.
        unsafe {
            block.as_ptr().write(FreeBlock {
                next: list.head.get(),
            })
        };
        list.head.set(Some(block));
        list.len.set(len + 1);
        true
    }
}

impl Drop for Lists {
    fn drop(&mut self) {
        for class in 0..CLASSES {
            while let Some(block) = self.pop(class) {
                // SAFETY: every block on the list of `class` was allocated
                // with that class's layout and is no longer used.
                unsafe { dealloc(block.as_ptr(), class_layout(class)) };
            }
        }
    }
}

thread_local! {
    static LISTS: Lists = const { Lists::new() };
}

/// The class of a block of `layout`, or `None` if it is not recycled.
#[inline]
fn class_of(layout: Layout) -> Option<usize> {
    if layout.align() > CLASS_ALIGN || layout.size() > CLASS_SIZE * CLASSES {
        return None;
    }
    // Every RcBox has the count, so the size is at least one word.
    Some(layout.size().saturating_sub(1) / CLASS_SIZE)
}

/// The layout every block of `class` has.
fn class_layout(class: usize) -> Layout {
    match Layout::from_size_align((class + 1) * CLASS_SIZE, CLASS_ALIGN) {
        Ok(layout) => layout,
        Err(_) => unreachable!("class sizes are small multiples of their alignment"),
    }
}

/// From the global allocator; aborts as `Box` does if there is no memory.
fn global_alloc(layout: Layout) -> NonNull<u8> {
    // SAFETY: `layout` has a non-zero size (an RcBox holds its count).
    let ptr = unsafe { alloc(layout) };
    NonNull::new(ptr).unwrap_or_else(|| handle_alloc_error(layout))
}

/// Whether a block the thread takes from the global allocator adds to its
/// share (see the module docs).
#[derive(Clone, Copy)]
enum Share {
    Counts,
    None,
}

/// A block for a value of `layout`: recycled if this thread has one of its
/// class, else new.
#[inline]
fn alloc_block(layout: Layout, share: Share) -> NonNull<u8> {
    let Some(class) = class_of(layout) else {
        return global_alloc(layout);
    };
    let recycled = LISTS.try_with(|lists| {
        let block = lists.pop(class);
        if block.is_none() {
            // A new block: the thread may keep one more.
            lists.fetched(class, share);
        }
        block
    });
    match recycled {
        Ok(Some(block)) => block,
        // Empty, or this thread's lists are already destroyed.
        _ => global_alloc(class_layout(class)),
    }
}

/// Frees a block that [`alloc_block`] gave for `layout`: onto this
/// thread's list if it has room, else back to the global allocator.
///
/// # Safety
///
/// `block` came from `alloc_block(layout)` and is no longer used.
#[inline]
unsafe fn free_block(block: NonNull<u8>, layout: Layout) {
    let Some(class) = class_of(layout) else {
        // SAFETY: not a class block: allocated with `layout` itself.
        unsafe { dealloc(block.as_ptr(), layout) };
        return;
    };
    if LISTS.try_with(|lists| lists.push(class, block)) != Ok(true) {
        // SAFETY: a class block, allocated with the class's layout.
        unsafe { dealloc(block.as_ptr(), class_layout(class)) };
    }
}

/// How many free blocks this thread keeps of `class`; `None` once its
/// lists are destroyed (tests).
#[cfg(all(test, not(loom)))]
fn kept(class: usize) -> Option<usize> {
    LISTS.try_with(|lists| lists.0[class].len.get()).ok()
}

/// How many free blocks this thread keeps, all classes (tests).
#[cfg(all(test, not(loom)))]
pub(crate) fn kept_total() -> usize {
    (0..CLASSES).filter_map(kept).sum()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    /// Counts its drops; padded to `N` bytes to pick a class.
    struct Counted<const N: usize> {
        drops: Arc<AtomicUsize>,
        _pad: [u8; N],
    }
    impl<const N: usize> Counted<N> {
        fn new(drops: &Arc<AtomicUsize>) -> Self {
            Counted {
                drops: drops.clone(),
                _pad: [0; N],
            }
        }
    }
    impl<const N: usize> Drop for Counted<N> {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn addr<V: ?Sized>(r: &Recycled<V>) -> usize {
        r.ptr.as_ptr().cast::<u8>() as usize
    }

    #[test]
    fn classes_step_by_8_bytes_up_to_256_aligned_to_16() {
        let l = |size, align| Layout::from_size_align(size, align).unwrap();
        assert_eq!(class_of(l(8, 8)), Some(0));
        assert_eq!(class_of(l(16, 16)), Some(1));
        assert_eq!(class_of(l(17, 8)), Some(2));
        // A plain task of a small closure: 72 bytes, an 80-byte chunk.
        assert_eq!(class_of(l(72, 8)), Some(8));
        assert_eq!(class_layout(8).size(), 72);
        assert_eq!(class_of(l(80, 8)), Some(9));
        assert_eq!(class_of(l(256, 16)), Some(31));
        assert_eq!(class_of(l(257, 8)), None);
        assert_eq!(class_of(l(64, 32)), None);
        for class in 0..CLASSES {
            assert_eq!(class_of(class_layout(class)), Some(class));
        }
    }

    /// The value is dropped once, when the last of many references made
    /// and dropped on several threads goes.
    #[test]
    fn value_is_dropped_exactly_once_across_threads() {
        let drops = Arc::new(AtomicUsize::new(0));
        let (threads, each) = if cfg!(miri) { (3, 4) } else { (4, 100) };
        for _ in 0..if cfg!(miri) { 2 } else { 50 } {
            let r = Recycled::new(Counted::<40>::new(&drops));
            let before = drops.load(Ordering::SeqCst);
            let joins: Vec<_> = (0..threads)
                .map(|_| {
                    let mine: Vec<_> = (0..each).map(|_| r.clone()).collect();
                    std::thread::spawn(move || drop(mine))
                })
                .collect();
            assert_eq!(drops.load(Ordering::SeqCst), before);
            drop(r);
            for join in joins {
                join.join().unwrap();
            }
            assert_eq!(drops.load(Ordering::SeqCst), before + 1);
        }
    }

    /// `new_refs` makes its references at once: one block, the count
    /// theirs, the value dropped once with the last, on whichever thread.
    #[test]
    fn new_refs_share_one_block_and_drop_the_value_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let [a, b, c] = Recycled::new_refs::<3>(Counted::<40>::new(&drops));
        assert_eq!(Recycled::count(&a), 3);
        assert!(addr(&a) == addr(&b) && addr(&b) == addr(&c));
        let other = std::thread::spawn(move || drop(b));
        drop(c);
        other.join().unwrap();
        assert_eq!(Recycled::count(&a), 1);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(a);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    /// A pair starts with two references: the value outlives the first
    /// dropped, on either thread, and goes with the second, once.
    #[test]
    fn a_pair_holds_two_references_and_drops_the_value_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        for other_first in [true, false] {
            let (a, b) = Recycled::new_pair(Counted::<24>::new(&drops));
            assert_eq!(Recycled::count(&a), 2);
            let before = drops.load(Ordering::SeqCst);
            let other = std::thread::spawn(move || drop(b));
            if other_first {
                other.join().unwrap();
                assert_eq!(drops.load(Ordering::SeqCst), before);
                assert_eq!(Recycled::count(&a), 1);
                drop(a);
            } else {
                drop(a);
                other.join().unwrap();
            }
            assert_eq!(drops.load(Ordering::SeqCst), before + 1);
        }
    }

    /// A freed block goes on this thread's list and is the next one of its
    /// class handed out; the count starts at one again.
    #[test]
    fn freed_block_is_reused_by_the_next_value_of_its_class() {
        std::thread::spawn(|| {
            let drops = Arc::new(AtomicUsize::new(0));
            let a = Recycled::new(Counted::<100>::new(&drops));
            let class = class_of(Layout::new::<RcBox<Counted<100>>>()).unwrap();
            assert_eq!(class_of(Layout::new::<RcBox<[u64; 14]>>()), Some(class));
            let kept_before = kept(class).unwrap();
            let at = addr(&a);
            drop(a);
            assert_eq!(drops.load(Ordering::SeqCst), 1);
            assert_eq!(kept(class), Some(kept_before + 1));
            // Another type of the same class gets the same block.
            let b = Recycled::new([7u64; 14]);
            assert_eq!(addr(&b), at);
            assert_eq!(Recycled::count(&b), 1);
            assert_eq!(*b, [7u64; 14]);
            assert_eq!(kept(class), Some(kept_before));
        })
        .join()
        .unwrap();
    }

    /// A thread keeps KEEP blocks per class plus as many as it took from
    /// the allocator (its share), so a burst it makes and collects is
    /// reused whole; a thread that only frees blocks others made keeps
    /// KEEP: what passes through a thread does not pile up there
    /// (valgrind and Miri see the others freed).
    #[test]
    fn a_thread_keeps_its_share_and_a_bounded_number_of_others() {
        let class = class_of(Layout::new::<RcBox<usize>>()).unwrap();
        let made_elsewhere = || {
            std::thread::spawn(|| (0..2 * KEEP).map(Recycled::new).collect::<Vec<_>>())
                .join()
                .unwrap()
        };
        let theirs = made_elsewhere();
        std::thread::spawn(move || {
            let mine: Vec<_> = (0..KEEP + 5).map(Recycled::new).collect();
            drop(mine);
            assert_eq!(kept(class), Some(KEEP + 5));
            let again: Vec<_> = (0..KEEP + 5).map(Recycled::new).collect();
            assert_eq!(kept(class), Some(0), "reused");
            drop(again);
            assert_eq!(kept(class), Some(KEEP + 5), "no new share");
            drop(theirs);
            assert_eq!(kept(class), Some(2 * KEEP + 5), "KEEP plus the share");
        })
        .join()
        .unwrap();
        let theirs = made_elsewhere();
        std::thread::spawn(move || {
            drop(theirs);
            assert_eq!(kept(class), Some(KEEP));
        })
        .join()
        .unwrap();
        // Blocks made beside another allocation add nothing to the share.
        std::thread::spawn(move || {
            let beside: Vec<_> = (0..KEEP + 5).map(Recycled::new_beside).collect();
            drop(beside);
            assert_eq!(kept(class), Some(KEEP));
        })
        .join()
        .unwrap();
    }

    /// The share is capped: a thread keeps at most KEEP + KEEP_SHARE
    /// blocks of a class however many it took (too many blocks for Miri).
    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_thread_keeps_at_most_keep_plus_its_capped_share() {
        std::thread::spawn(|| {
            let class = class_of(Layout::new::<RcBox<usize>>()).unwrap();
            let all: Vec<_> = (0..KEEP + KEEP_SHARE + 10).map(Recycled::new).collect();
            drop(all);
            assert_eq!(kept(class), Some(KEEP + KEEP_SHARE));
        })
        .join()
        .unwrap();
    }

    /// Too big or too aligned for a class: straight to the allocator, and
    /// the value is still dropped once and readable.
    #[test]
    fn big_or_overaligned_values_use_the_global_allocator() {
        #[repr(align(64))]
        struct Aligned(u8);
        assert_eq!(class_of(Layout::new::<RcBox<Aligned>>()), None);
        assert_eq!(class_of(Layout::new::<RcBox<[u8; 1024]>>()), None);
        let kept_before: Vec<_> = (0..CLASSES).map(kept).collect();
        let a = Recycled::new(Aligned(3));
        assert_eq!(addr(&a) % 64, 0);
        assert_eq!(a.0, 3);
        let big = Recycled::new([5u8; 1024]);
        let big2 = big.clone();
        assert_eq!(big2[1023], 5);
        drop((a, big, big2));
        let drops = Arc::new(AtomicUsize::new(0));
        drop(Recycled::new(Counted::<1000>::new(&drops)));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        let kept_after: Vec<_> = (0..CLASSES).map(kept).collect();
        assert_eq!(kept_before, kept_after);
    }

    /// A value made on one thread and last dropped on another: its block
    /// goes on the dropping thread's list, and both threads' lists are
    /// freed when they exit.
    #[test]
    fn last_reference_dropped_on_another_thread() {
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        let made = std::thread::spawn(move || Recycled::new(Counted::<24>::new(&d)))
            .join()
            .unwrap();
        let clone = made.clone();
        drop(made);
        let at = addr(&clone);
        let class = class_of(Layout::new::<RcBox<Counted<24>>>()).unwrap();
        std::thread::spawn(move || {
            let kept_before = kept(class).unwrap();
            drop(clone);
            assert_eq!(kept(class), Some(kept_before + 1));
            assert_eq!(
                addr(&Recycled::new(Counted::<24>::new(&Arc::new(
                    AtomicUsize::new(0)
                )))),
                at
            );
        })
        .join()
        .unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    /// Through a trait object: the drop and the layout come from the
    /// vtable, and the block goes back to the right class.
    #[test]
    fn unsized_references_drop_through_the_vtable() {
        trait Named: Send + Sync {
            fn name(&self) -> usize;
        }
        impl<const N: usize> Named for Counted<N> {
            fn name(&self) -> usize {
                N
            }
        }
        std::thread::spawn(|| {
            let drops = Arc::new(AtomicUsize::new(0));
            let sized = Recycled::new(Counted::<150>::new(&drops));
            let class = class_of(Layout::new::<RcBox<Counted<150>>>()).unwrap();
            let kept_before = kept(class).unwrap();
            // SAFETY: the closure is the unsizing coercion.
            let dynamic: Recycled<dyn Named> =
                unsafe { sized.clone().unsize(|p| p as *mut RcBox<dyn Named>) };
            assert_eq!(dynamic.name(), 150);
            drop(sized);
            assert_eq!(drops.load(Ordering::SeqCst), 0);
            drop(dynamic);
            assert_eq!(drops.load(Ordering::SeqCst), 1);
            assert_eq!(kept(class), Some(kept_before + 1));
        })
        .join()
        .unwrap();
    }

    /// `into_raw` points at the value; `from_raw` gives the reference back.
    #[test]
    fn raw_round_trip_points_at_the_value() {
        let drops = Arc::new(AtomicUsize::new(0));
        let r = Recycled::new(Counted::<8>::new(&drops));
        let other = r.clone();
        let raw = Recycled::into_raw(r);
        assert_eq!(raw.as_ptr() as *const Counted<8>, &*other as *const _);
        // SAFETY: `raw` came from `into_raw` just above, taken back once.
        let back = unsafe { Recycled::from_raw(raw) };
        assert_eq!(Recycled::count(&back), 2);
        drop((back, other));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    /// Values made and dropped inside thread-local destructors, before
    /// and after this thread's lists are destroyed: no crash, no double
    /// free (Miri), no leak (valgrind), each value dropped once.
    #[test]
    fn usable_from_thread_local_destructors() {
        /// Whether the lists were still there, per destructor run.
        static SAW_LISTS: std::sync::Mutex<Vec<bool>> = std::sync::Mutex::new(Vec::new());
        struct OnExit(Arc<AtomicUsize>);
        impl Drop for OnExit {
            fn drop(&mut self) {
                SAW_LISTS.lock().unwrap().push(kept(0).is_some());
                let held = Recycled::new(Counted::<16>::new(&self.0));
                drop(held.clone());
                drop(Recycled::new(Counted::<100>::new(&self.0)));
                // Kept past the lists' destruction, if they go first.
                drop(held);
            }
        }
        thread_local! {
            static FIRST: std::cell::RefCell<Option<OnExit>> = const { std::cell::RefCell::new(None) };
            static LAST: std::cell::RefCell<Option<OnExit>> = const { std::cell::RefCell::new(None) };
        }
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        std::thread::spawn(move || {
            // Registered before and after the lists: destroyed on either
            // side of them, whatever order the platform runs them in.
            FIRST.with(|f| *f.borrow_mut() = Some(OnExit(d.clone())));
            drop(Recycled::new(1u8));
            LAST.with(|l| *l.borrow_mut() = Some(OnExit(d)));
        })
        .join()
        .unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 4);
        let mut saw = SAW_LISTS.lock().unwrap().clone();
        saw.sort();
        // glibc runs thread-local destructors in the reverse order of
        // their registration: one on each side of the lists'.
        #[cfg(target_os = "linux")]
        assert_eq!(saw, [false, true], "both paths exercised");
        assert_eq!(saw.len(), 2);
    }
}
