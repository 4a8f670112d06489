//! Bulk work: [`ThreadPool::map`](crate::ThreadPool::map) and [`ThreadPool::map_async`](crate::ThreadPool::map_async) (chunked,
//! input order, fail fast) and the lazy iterators [`IMap`] and
//! [`IMapUnordered`] behind [`ThreadPool::imap`](crate::ThreadPool::imap) and
//! [`ThreadPool::imap_unordered`](crate::ThreadPool::imap_unordered).
//!
//! `map` takes all the items (a `Vec` passes through without a copy), cuts
//! them into chunks (Python's `chunksize`) and queues one job per chunk.
//! Each job moves its items out of the input buffer and writes each result
//! straight into its slot of the output vector ([`crate::bulk::inplace`]); the
//! job that finishes last publishes the vector. So a million tiny items
//! cost a few dozen jobs and wake-ups, one output allocation and no copy.
//! The first chunk that panics decides the outcome at once (fail fast) and
//! every chunk not yet started is skipped.
//!
//! The iterators pull from their input on the consumer's thread, only as
//! results are consumed, keeping at most `buffersize` chunks in flight.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bulk::inplace::InPlace;
use crate::bulk::wait_many::Notifier;
use crate::core::completion::Completion;
use crate::core::counters::Outcome;
use crate::core::job::{Job, JobRef};
use crate::core::job::{Runner, TaskRef};
use crate::core::registry::Registry;
use crate::core::sync::{AtomicBool, AtomicUsize, Ordering};
use crate::error::{payload_message, TaskError};
use crate::handle::AsyncResult;

/// How many chunks per worker an automatic chunk size aims for (Python's
/// `Pool.map` uses the same factor): enough to even out uneven items,
/// few enough that per-chunk costs vanish.
const CHUNKS_PER_THREAD: usize = 4;

/// The most elements a chunk's buffer reserves up front, whatever the
/// chunk size or the input's size hint says.
const MAX_PREALLOC: usize = 1 << 16;

const CHUNKSIZE_ZERO: &str = "chunksize must be at least 1";
const BUFFERSIZE_ZERO: &str = "buffersize must be at least 1";

/// Python's automatic chunk size: `len / (4 * threads)`, rounded up, at
/// least 1.
fn auto_chunksize(len: usize, threads: usize) -> usize {
    let per = threads.saturating_mul(CHUNKS_PER_THREAD).max(1);
    (len / per + usize::from(len % per != 0)).max(1)
}

// ---- map / map_async --------------------------------------------------------

/// The state one `map` call shares between its chunks and its handle.
struct MapShared<I, F, U> {
    f: F,
    buf: InPlace<I, U>,
    completion: Completion<Vec<U>>,
    /// Set once the outcome is an error: chunks not started skip their
    /// items and the submitter stops queuing.
    stop: AtomicBool,
    /// Whoever swaps this first owns publishing the outcome.
    decided: AtomicBool,
    /// Chunk jobs not yet dropped, plus one held by the submitter until it
    /// has queued the last chunk.
    remaining: AtomicUsize,
}

impl<I, F, U> MapShared<I, F, U> {
    /// Ends the map with `error` unless its outcome is already decided.
    fn fail(&self, error: TaskError) -> bool {
        self.stop.store(true, Ordering::Release);
        if self.decided.swap(true, Ordering::AcqRel) {
            return false;
        }
        // Already RUNNING if a chunk started; either way it is now.
        self.completion.start_shared();
        self.completion.finish(Err(error));
        true
    }

    /// Accounts for one chunk job (or the submitter) being gone; the last
    /// one frees the buffers and publishes the results, unless the map
    /// already failed.
    fn part_done(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        // SAFETY: every chunk job has been dropped (each gives its count
        // back as the last thing it does) and the submitter has queued them
        // all, so no chunk runs now or later.
        #[allow(unsafe_code)]
        let (results, spent_input) = unsafe { self.buf.finish() };
        if !self.decided.swap(true, Ordering::AcqRel) {
            self.completion.start_shared();
            // Not every chunk written but nobody failed: cannot happen (a
            // chunk skipped or dropped unrun fails the map first).
            self.completion.finish(results.ok_or(TaskError::Cancelled));
        }
        // Freed after publishing: the waiter need not wait for it.
        drop(spent_input);
    }
}

impl<I, F, U> TaskRef<Vec<U>> for MapShared<I, F, U>
where
    I: Send,
    F: Send + Sync,
    U: Send + 'static,
{
    fn completion(&self) -> &Completion<Vec<U>> {
        &self.completion
    }

    /// Stops the whole map: chunks not started never run, running ones
    /// finish and their results are dropped.
    fn abort(&self, error: TaskError) -> bool {
        self.fail(error)
    }
    // No `run_here`: a waiting worker runs the queued chunks anyway,
    // through its normal work-while-waiting loop.
}

/// One chunk of a `map`, as queued on the pool.
struct Chunk<I, F, U> {
    shared: Arc<MapShared<I, F, U>>,
    index: usize,
}

impl<I, F, U> Job for Chunk<I, F, U>
where
    I: Send + 'static,
    F: Fn(I) -> U + Send + Sync + 'static,
    U: Send + 'static,
{
    fn run(self: Arc<Self>, _runner: &dyn Runner) -> Outcome {
        let shared = &*self.shared;
        if shared.stop.load(Ordering::Acquire) {
            // Skipped, the map having failed: dropped below, which
            // discards its items.
            return Outcome::Cancelled;
        }
        shared.completion.start_shared();
        match shared.buf.run(self.index, &shared.f) {
            Some(Err(payload)) => {
                shared.fail(TaskError::Panicked(payload));
                Outcome::Panicked
            }
            Some(Ok(())) => Outcome::Completed,
            None => Outcome::Skipped,
        }
        // `self` drops here: that accounts for the chunk (see Drop).
    }

    fn into_job_ref(self: Arc<Self>) -> JobRef {
        JobRef::new(self)
    }

    fn abort(&self, error: TaskError) -> bool {
        if !self.shared.buf.discard(self.index) {
            return false;
        }
        self.shared.fail(error);
        true
    }
}

impl<I, F, U> Drop for Chunk<I, F, U> {
    fn drop(&mut self) {
        // Every chunk is accounted for exactly once, when it is freed: after
        // it ran, after it was aborted, or if it was skipped or dropped
        // unrun (then its items are dropped and the map cannot succeed).
        if self.shared.buf.discard(self.index) {
            self.shared.fail(TaskError::Cancelled);
        }
        self.shared.part_done();
    }
}

fn map_async_impl<F, T, I, U>(
    registry: &Arc<Registry>,
    f: F,
    items: T,
    chunksize: Option<usize>,
) -> AsyncResult<Vec<U>>
where
    F: Fn(I) -> U + Send + Sync + 'static,
    T: IntoIterator<Item = I>,
    I: Send + 'static,
    U: Send + 'static,
{
    // Refused calls drop `f` and `items` here, one at a time (two panics
    // in one drop would abort); their Drop must not make the call panic.
    if chunksize == Some(0) {
        crate::core::panics::drop_reporting(registry.id(), f);
        crate::core::panics::drop_reporting(registry.id(), items);
        return AsyncResult::failed(TaskError::InvalidArgument(CHUNKSIZE_ZERO));
    }
    if registry.is_closed() {
        crate::core::panics::drop_reporting(registry.id(), f);
        crate::core::panics::drop_reporting(registry.id(), items);
        return AsyncResult::failed(TaskError::PoolClosed);
    }
    // All items first, as Python's map does. A Vec passes through without
    // a copy. The input is the caller's code, run on the caller's thread:
    // a panic in it fails the map instead of unwinding through the library.
    let items: Vec<I> = match catch_unwind(AssertUnwindSafe(|| items.into_iter().collect())) {
        Ok(items) => items,
        Err(payload) => return AsyncResult::failed(TaskError::Panicked(payload)),
    };
    let chunksize =
        chunksize.unwrap_or_else(|| auto_chunksize(items.len(), registry.num_threads()));
    let buf = InPlace::new(items, chunksize);
    let chunks = buf.chunks();
    let shared = Arc::new(MapShared {
        f,
        buf,
        completion: Completion::new_in(registry.id()),
        stop: AtomicBool::new(false),
        decided: AtomicBool::new(false),
        remaining: AtomicUsize::new(chunks + 1),
    });
    let handle = AsyncResult::from_task(shared.clone());
    for index in 0..chunks {
        let chunk = Arc::new(Chunk {
            shared: shared.clone(),
            index,
        });
        if shared.stop.load(Ordering::Acquire) {
            continue; // dropped unqueued: accounted for, items dropped
        }
        // Each chunk takes a place in a bounded queue, waiting for room as
        // `submit` does.
        if !registry.reserve_place() {
            shared.fail(TaskError::PoolClosed);
            continue;
        }
        if registry.push_reserved(JobRef::new(chunk)) {
            // Closed while we queued: the chunk still drains (skipped).
            shared.fail(TaskError::PoolClosed);
        }
    }
    shared.part_done();
    handle
}

// ---- imap / imap_unordered ----------------------------------------------------

/// What one chunk task of an imap returns: each item's own outcome.
type ChunkResults<U> = Vec<Result<U, TaskError>>;

/// An entry of an imap's window: a queued chunk of `n` items, or an error
/// that takes one place in the output (the input panicked).
enum Pulled<U> {
    Chunk(AsyncResult<ChunkResults<U>>, usize),
    Failed(TaskError),
}

/// The input side of an imap: pulls chunks from the caller's iterator on
/// the consumer's thread and queues them.
struct Feeder<It: Iterator, U> {
    registry: Arc<Registry>,
    f: Arc<dyn Fn(It::Item) -> U + Send + Sync>,
    /// `None` once exhausted, broken (it panicked) or the pool closed.
    source: Option<It>,
    /// An error to hand out after the chunks already pulled.
    error: Option<TaskError>,
    chunksize: usize,
    buffersize: usize,
}

impl<It, U> Feeder<It, U>
where
    It: Iterator,
    It::Item: Send + 'static,
    U: Send + 'static,
{
    fn new<F>(registry: &Arc<Registry>, f: F, source: It) -> Self
    where
        F: Fn(It::Item) -> U + Send + Sync + 'static,
    {
        Feeder {
            registry: registry.clone(),
            f: Arc::new(f),
            source: Some(source),
            error: None,
            chunksize: 1,
            buffersize: registry.num_threads().saturating_mul(2),
        }
    }

    fn set_chunksize(&mut self, n: usize) {
        if n == 0 {
            self.reject(CHUNKSIZE_ZERO);
        }
        self.chunksize = n.max(1);
    }

    fn set_buffersize(&mut self, n: usize) {
        if n == 0 {
            self.reject(BUFFERSIZE_ZERO);
        }
        self.buffersize = n.max(1);
    }

    /// A bad setting: pull nothing more, and say why in the output.
    fn reject(&mut self, why: &'static str) {
        self.source = None;
        self.error.get_or_insert(TaskError::InvalidArgument(why));
    }

    /// Pulls and queues the next chunk; `None` when nothing is left.
    fn pull(&mut self) -> Option<Pulled<U>> {
        if let Some(source) = self.source.as_mut() {
            let chunksize = self.chunksize;
            let mut items = Vec::with_capacity(chunksize.min(MAX_PREALLOC));
            let more = catch_unwind(AssertUnwindSafe(|| {
                while items.len() < chunksize {
                    match source.next() {
                        Some(item) => items.push(item),
                        None => return false,
                    }
                }
                true
            }));
            match more {
                Ok(true) => {}
                Ok(false) => self.source = None,
                Err(payload) => {
                    // A panicking iterator is broken: never call it again.
                    self.source = None;
                    self.error = Some(TaskError::Panicked(payload));
                }
            }
            if !items.is_empty() {
                let n = items.len();
                let f = self.f.clone();
                let handle = AsyncResult::submitted(self.registry.submit(move || {
                    items
                        .into_iter()
                        .map(|item| {
                            catch_unwind(AssertUnwindSafe(|| f(item))).map_err(TaskError::Panicked)
                        })
                        .collect::<ChunkResults<U>>()
                }));
                if self.registry.is_closed() {
                    // Queued before the close: runs. Refused: says so. Either
                    // way, an endless input must not become endless errors.
                    self.source = None;
                }
                return Some(Pulled::Chunk(handle, n));
            }
        }
        self.error.take().map(Pulled::Failed)
    }
}

/// Moves a chunk's outcome into `out`, one entry per item.
fn spread<U>(
    outcome: Result<ChunkResults<U>, TaskError>,
    n: usize,
    out: &mut VecDeque<Result<U, TaskError>>,
) {
    match outcome {
        Ok(results) => out.extend(results),
        Err(error) => {
            // The chunk as a whole did not run (cancelled, pool closed):
            // every item in it gets an error of that kind.
            for _ in 1..n {
                out.push_back(Err(same_kind(&error)));
            }
            out.push_front(Err(error));
        }
    }
}

fn same_kind(error: &TaskError) -> TaskError {
    match error {
        TaskError::Panicked(payload) => TaskError::Panicked(Box::new(
            payload_message(payload.as_ref())
                .unwrap_or("task panicked")
                .to_owned(),
        )),
        TaskError::Cancelled => TaskError::Cancelled,
        TaskError::Timeout => TaskError::Timeout,
        TaskError::PoolClosed => TaskError::PoolClosed,
        TaskError::ResultTaken => TaskError::ResultTaken,
        TaskError::InvalidArgument(why) => TaskError::InvalidArgument(why),
        TaskError::ThreadStart(why) => TaskError::ThreadStart(why.clone()),
    }
}

fn remaining(deadline: Option<Instant>) -> Duration {
    match deadline {
        Some(d) => d.saturating_duration_since(Instant::now()),
        None => Duration::MAX,
    }
}

/// The lazy, ordered iterator returned by [`ThreadPool::imap`](crate::ThreadPool::imap): yields
/// `f(item)` for each item, in input order, as `Result<U, TaskError>`.
///
/// It pulls from the input only as results are consumed, on the consuming
/// thread, keeping at most [`buffersize`](IMap::buffersize) chunks of
/// [`chunksize`](IMap::chunksize) items queued or finished-but-unconsumed.
/// An endless input is fine. A panicking item yields its
/// [`TaskError::Panicked`] at its place and iteration goes on; a panicking
/// input iterator yields one `Err(Panicked)` after the items it gave
/// before, and then the iterator ends. Dropping it cancels the chunks it
/// queued that have not started.
///
/// It owns what it needs (not a borrow of the pool), so it can be kept or
/// moved to another thread (if the input iterator can).
///
/// # Examples
///
/// ```
/// use futurepool::ThreadPool;
///
/// let pool = ThreadPool::new(4).unwrap();
/// let lengths: Vec<usize> = pool
///     .imap(|s: &str| s.len(), vec!["a", "bb", "ccc"])
///     .map(Result::unwrap)
///     .collect();
/// assert_eq!(lengths, [1, 2, 3]);
/// ```
pub struct IMap<It, U>
where
    It: Iterator,
    It::Item: Send + 'static,
    U: Send + 'static,
{
    feeder: Feeder<It, U>,
    window: VecDeque<Pulled<U>>,
    ready: VecDeque<Result<U, TaskError>>,
}

impl<It, U> IMap<It, U>
where
    It: Iterator,
    It::Item: Send + 'static,
    U: Send + 'static,
{
    /// Sets how many items go into one task (Python's `chunksize`; default
    /// 1). Larger chunks cut the per-item cost for cheap `f`; each item
    /// still gets its own outcome. Applies to chunks pulled from now on.
    ///
    /// A chunk size of 0 is an error: the iterator then yields one
    /// `Err(TaskError::InvalidArgument(..))` (after anything already
    /// pulled) and ends, without pulling from the input.
    ///
    /// ```
    /// use futurepool::{TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let sum: u64 = pool.imap(|x: u64| x * 2, 0..1000u64).chunksize(64)
    ///     .map(Result::unwrap).sum();
    /// assert_eq!(sum, 999_000);
    ///
    /// let mut bad = pool.imap(|x: u64| x, 0..10u64).chunksize(0);
    /// assert!(matches!(bad.next(), Some(Err(TaskError::InvalidArgument(_)))));
    /// assert!(bad.next().is_none());
    /// ```
    pub fn chunksize(mut self, chunksize: usize) -> Self {
        self.feeder.set_chunksize(chunksize);
        self
    }

    /// Sets how many chunks may be in flight (queued, running, or done but
    /// not yet consumed) at once; Python 3.14 calls it `buffersize`. The
    /// default is twice the pool's thread count. Memory stays bounded by
    /// `buffersize * chunksize` results, whatever the input's length.
    ///
    /// A buffer size of 0 is an error, reported as for
    /// [`chunksize`](IMap::chunksize).
    ///
    /// ```
    /// use futurepool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// // An endless input: only a few items are ever pulled ahead.
    /// let first: Vec<u64> = pool.imap(|x: u64| x + 1, 0u64..).buffersize(4)
    ///     .take(3).map(Result::unwrap).collect();
    /// assert_eq!(first, [1, 2, 3]);
    /// ```
    pub fn buffersize(mut self, buffersize: usize) -> Self {
        self.feeder.set_buffersize(buffersize);
        self
    }

    /// Like [`next`](Iterator::next), but waits at most `timeout` for the
    /// next result (as Python's `IMapIterator.next(timeout)`).
    ///
    /// Returns `Ok(Some(result))` for the next item, `Ok(None)` at the end.
    ///
    /// # Errors
    ///
    /// [`TaskError::Timeout`] if the next result is not ready in time; the
    /// iterator stays usable and the result comes later.
    ///
    /// ```
    /// use futurepool::{TaskError, ThreadPool};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(1).unwrap();
    /// let (tx, rx) = mpsc::channel::<()>();
    /// let rx = std::sync::Mutex::new(rx);
    /// let mut it = pool.imap(move |x: u32| { rx.lock().unwrap().recv().unwrap(); x }, vec![7]);
    /// assert_eq!(it.next_timeout(Duration::from_millis(10)), Err(TaskError::Timeout));
    /// tx.send(()).unwrap();
    /// assert_eq!(it.next_timeout(Duration::from_secs(5)), Ok(Some(Ok(7))));
    /// assert_eq!(it.next_timeout(Duration::from_secs(5)), Ok(None));
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn next_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Result<U, TaskError>>, TaskError> {
        self.next_until(Instant::now().checked_add(timeout))
    }

    fn top_up(&mut self) {
        while self.window.len() < self.feeder.buffersize {
            match self.feeder.pull() {
                Some(entry) => self.window.push_back(entry),
                None => return,
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn next_until(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<Result<U, TaskError>>, TaskError> {
        loop {
            if let Some(result) = self.ready.pop_front() {
                return Ok(Some(result));
            }
            self.top_up();
            let outcome = match self.window.front() {
                None => return Ok(None),
                Some(Pulled::Failed(_)) => None,
                Some(Pulled::Chunk(handle, _)) => match handle.get_timeout(remaining(deadline)) {
                    Err(TaskError::Timeout) => return Err(TaskError::Timeout),
                    outcome => Some(outcome),
                },
            };
            match (self.window.pop_front(), outcome) {
                (Some(Pulled::Chunk(_, n)), Some(outcome)) => spread(outcome, n, &mut self.ready),
                (Some(Pulled::Failed(error)), _) => return Ok(Some(Err(error))),
                _ => unreachable!("the front entry was just looked at"),
            }
        }
    }
}

impl<It, U> Iterator for IMap<It, U>
where
    It: Iterator,
    It::Item: Send + 'static,
    U: Send + 'static,
{
    type Item = Result<U, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_until(None).unwrap_or(None)
    }
}

impl<It, U> Drop for IMap<It, U>
where
    It: Iterator,
    It::Item: Send + 'static,
    U: Send + 'static,
{
    fn drop(&mut self) {
        for entry in &self.window {
            if let Pulled::Chunk(handle, _) = entry {
                handle.cancel();
            }
        }
    }
}

impl<It, U> fmt::Debug for IMap<It, U>
where
    It: Iterator,
    It::Item: Send + 'static,
    U: Send + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IMap")
            .field("chunksize", &self.feeder.chunksize)
            .field("buffersize", &self.feeder.buffersize)
            .field("in_flight", &self.window.len())
            .finish()
    }
}

/// The lazy iterator returned by [`ThreadPool::imap_unordered`](crate::ThreadPool::imap_unordered): yields
/// `f(item)` for each item as `Result<U, TaskError>`, in the order the
/// items finish.
///
/// Everything else is as for [`IMap`]: lazy pulling, at most
/// [`buffersize`](IMapUnordered::buffersize) chunks in flight, one outcome
/// per item, a panicking input reported once and then the end, and
/// cancellation of what was queued and not started when it is dropped.
/// Waiting for the next result costs no CPU: finished chunks signal the
/// iterator, which sleeps in between.
///
/// # Examples
///
/// ```
/// use futurepool::ThreadPool;
///
/// let pool = ThreadPool::new(4).unwrap();
/// let mut squares: Vec<u64> = pool
///     .imap_unordered(|x: u64| x * x, 1..=5u64)
///     .map(Result::unwrap)
///     .collect();
/// squares.sort();
/// assert_eq!(squares, [1, 4, 9, 16, 25]);
/// ```
pub struct IMapUnordered<It, U>
where
    It: Iterator,
    It::Item: Send + 'static,
    U: Send + 'static,
{
    feeder: Feeder<It, U>,
    /// In-flight chunks by token; a token is reused once its chunk is
    /// consumed (its one signal has then been received).
    slots: Vec<Option<(AsyncResult<ChunkResults<U>>, usize)>>,
    free: Vec<usize>,
    in_flight: usize,
    notifier: Arc<Notifier>,
    ready: VecDeque<Result<U, TaskError>>,
    /// The input's error (it panicked, or a bad setting), held back until
    /// every chunk pulled before it has been handed out.
    failed: Option<TaskError>,
}

impl<It, U> IMapUnordered<It, U>
where
    It: Iterator,
    It::Item: Send + 'static,
    U: Send + 'static,
{
    /// Sets how many items go into one task; as [`IMap::chunksize`].
    ///
    /// ```
    /// use futurepool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let n = pool.imap_unordered(|x: u64| x, 0..100u64).chunksize(10).count();
    /// assert_eq!(n, 100);
    /// ```
    pub fn chunksize(mut self, chunksize: usize) -> Self {
        self.feeder.set_chunksize(chunksize);
        self
    }

    /// Sets how many chunks may be in flight at once; as
    /// [`IMap::buffersize`].
    ///
    /// ```
    /// use futurepool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let n = pool.imap_unordered(|x: u64| x, 0u64..).buffersize(3).take(10).count();
    /// assert_eq!(n, 10);
    /// ```
    pub fn buffersize(mut self, buffersize: usize) -> Self {
        self.feeder.set_buffersize(buffersize);
        self
    }

    /// Like [`next`](Iterator::next), but waits at most `timeout`; as
    /// [`IMap::next_timeout`].
    ///
    /// # Errors
    ///
    /// [`TaskError::Timeout`] if no result is ready in time; the iterator
    /// stays usable.
    ///
    /// ```
    /// use futurepool::ThreadPool;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let mut it = pool.imap_unordered(|x: u32| x + 1, vec![1]);
    /// assert_eq!(it.next_timeout(Duration::from_secs(5)), Ok(Some(Ok(2))));
    /// assert_eq!(it.next_timeout(Duration::from_secs(5)), Ok(None));
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn next_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Result<U, TaskError>>, TaskError> {
        self.next_until(Instant::now().checked_add(timeout))
    }

    /// Fills the window; an input error is kept for after the chunks
    /// already in flight.
    fn top_up(&mut self) {
        while self.in_flight < self.feeder.buffersize {
            match self.feeder.pull() {
                Some(Pulled::Chunk(handle, n)) => {
                    let token = match self.free.pop() {
                        Some(token) => token,
                        None => {
                            self.slots.push(None);
                            self.slots.len() - 1
                        }
                    };
                    self.notifier.watch(handle.completion(), token, true);
                    self.slots[token] = Some((handle, n));
                    self.in_flight += 1;
                }
                Some(Pulled::Failed(error)) => {
                    self.failed = Some(error);
                    return;
                }
                None => return,
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn next_until(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<Result<U, TaskError>>, TaskError> {
        loop {
            if let Some(result) = self.ready.pop_front() {
                return Ok(Some(result));
            }
            if self.failed.is_none() {
                self.top_up();
            }
            if self.in_flight == 0 {
                // Nothing pulled is left: now the input's error, if any.
                return Ok(self.failed.take().map(Err));
            }
            let Some(token) = self.notifier.pop_until(deadline) else {
                return Err(TaskError::Timeout);
            };
            let Some((handle, _)) = self.slots[token].as_ref() else {
                continue;
            };
            match handle.completion().try_take() {
                Some(outcome) => {
                    let (_, n) = self.slots[token].take().expect("looked at above");
                    self.free.push(token);
                    self.in_flight -= 1;
                    spread(outcome, n, &mut self.ready);
                }
                // Lent to a callback: it publishes again, which signals.
                None => self.notifier.watch(handle.completion(), token, true),
            }
        }
    }
}

impl<It, U> Iterator for IMapUnordered<It, U>
where
    It: Iterator,
    It::Item: Send + 'static,
    U: Send + 'static,
{
    type Item = Result<U, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_until(None).unwrap_or(None)
    }
}

impl<It, U> Drop for IMapUnordered<It, U>
where
    It: Iterator,
    It::Item: Send + 'static,
    U: Send + 'static,
{
    fn drop(&mut self) {
        for (token, slot) in self.slots.iter().enumerate() {
            if let Some((handle, _)) = slot {
                handle.cancel();
                self.notifier.unwatch(handle.completion(), token);
            }
        }
    }
}

impl<It, U> fmt::Debug for IMapUnordered<It, U>
where
    It: Iterator,
    It::Item: Send + 'static,
    U: Send + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IMapUnordered")
            .field("chunksize", &self.feeder.chunksize)
            .field("buffersize", &self.feeder.buffersize)
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

// ---- the ThreadPool methods -----------------------------------------------------

pub(crate) fn map<F, T, I, U>(registry: &Arc<Registry>, f: F, items: T) -> Result<Vec<U>, TaskError>
where
    F: Fn(I) -> U + Send + Sync + 'static,
    T: IntoIterator<Item = I>,
    I: Send + 'static,
    U: Send + 'static,
{
    map_async_impl(registry, f, items, None).get()
}

pub(crate) fn map_chunked<F, T, I, U>(
    registry: &Arc<Registry>,
    f: F,
    items: T,
    chunksize: usize,
) -> Result<Vec<U>, TaskError>
where
    F: Fn(I) -> U + Send + Sync + 'static,
    T: IntoIterator<Item = I>,
    I: Send + 'static,
    U: Send + 'static,
{
    map_async_impl(registry, f, items, Some(chunksize)).get()
}

pub(crate) fn map_async<F, T, I, U>(registry: &Arc<Registry>, f: F, items: T) -> AsyncResult<Vec<U>>
where
    F: Fn(I) -> U + Send + Sync + 'static,
    T: IntoIterator<Item = I>,
    I: Send + 'static,
    U: Send + 'static,
{
    map_async_impl(registry, f, items, None)
}

pub(crate) fn map_async_chunked<F, T, I, U>(
    registry: &Arc<Registry>,
    f: F,
    items: T,
    chunksize: usize,
) -> AsyncResult<Vec<U>>
where
    F: Fn(I) -> U + Send + Sync + 'static,
    T: IntoIterator<Item = I>,
    I: Send + 'static,
    U: Send + 'static,
{
    map_async_impl(registry, f, items, Some(chunksize))
}

pub(crate) fn imap<F, T, I, U>(registry: &Arc<Registry>, f: F, items: T) -> IMap<T::IntoIter, U>
where
    F: Fn(I) -> U + Send + Sync + 'static,
    T: IntoIterator<Item = I>,
    I: Send + 'static,
    U: Send + 'static,
{
    IMap {
        feeder: Feeder::new(registry, f, items.into_iter()),
        window: VecDeque::new(),
        ready: VecDeque::new(),
    }
}

pub(crate) fn imap_unordered<F, T, I, U>(
    registry: &Arc<Registry>,
    f: F,
    items: T,
) -> IMapUnordered<T::IntoIter, U>
where
    F: Fn(I) -> U + Send + Sync + 'static,
    T: IntoIterator<Item = I>,
    I: Send + 'static,
    U: Send + 'static,
{
    IMapUnordered {
        feeder: Feeder::new(registry, f, items.into_iter()),
        slots: Vec::new(),
        free: Vec::new(),
        in_flight: 0,
        notifier: Notifier::new(),
        ready: VecDeque::new(),
        failed: None,
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn auto_chunksize_matches_python() {
        // divmod(len, 4 * threads), plus one if there is a remainder.
        assert_eq!(auto_chunksize(0, 4), 1);
        assert_eq!(auto_chunksize(1, 4), 1);
        assert_eq!(auto_chunksize(16, 4), 1);
        assert_eq!(auto_chunksize(17, 4), 2);
        assert_eq!(auto_chunksize(1_000_000, 2), 125_000);
        assert_eq!(auto_chunksize(1_000_001, 2), 125_001);
        assert_eq!(auto_chunksize(usize::MAX, usize::MAX), 1);
    }

    #[test]
    fn same_kind_copies_the_kind_and_message() {
        let p = TaskError::Panicked(Box::new("boom"));
        assert_eq!(same_kind(&p), p);
        assert_eq!(same_kind(&TaskError::Cancelled), TaskError::Cancelled);
        assert_eq!(same_kind(&TaskError::PoolClosed), TaskError::PoolClosed);
    }
}
