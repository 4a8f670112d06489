//! Running a future to completion on the calling thread ([`block_on`]),
//! parked between wakes; on a pool worker, running the pool's other work
//! while it waits.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::core::sync::{lock, AtomicBool, Mutex, Ordering, Thread};
use crate::core::waitable::Waitable;

/// Runs `future` to completion on this thread and returns its output.
///
/// Between polls the thread parks until the future's waker fires (no
/// spinning). Called on one of a pool's workers (inside a task), the worker
/// keeps running that pool's other queued work while it waits, as
/// [`AsyncResult::get`](crate::AsyncResult::get) does, so a task may
/// `block_on` a future that needs the pool itself, even on a pool of one
/// thread.
///
/// Prefer [`ThreadPool::spawn_async`](crate::ThreadPool::spawn_async) inside
/// async code: `block_on` ties up the calling thread (or, on a worker, its
/// stack) until the future is done.
///
/// # Panics
///
/// If polling the future panics, the panic propagates to the caller (the
/// future runs on this thread, not on a worker).
///
/// # Examples
///
/// ```
/// use futurepool::ThreadPool;
///
/// let pool = ThreadPool::new(2).unwrap();
/// let handle = pool.submit(|| 20);
/// let total = futurepool::block_on(async move { handle.await.unwrap() + 22 });
/// assert_eq!(total, 42);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let signal = Arc::new(Signal {
        woken: AtomicBool::new(false),
        thread: Mutex::new(None),
    });
    let waker = Waker::from(signal.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        // Cleared before the poll: a wake during the poll must not be lost,
        // a wake from before it is answered by this poll. A swap, not a
        // store: reading the waker's write (Acquire) makes what the waker
        // wrote before waking visible to this poll.
        signal.woken.swap(false, Ordering::SeqCst);
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        crate::core::wait::block(&*signal, None);
    }
}

/// The waker of a [`block_on`]: a flag, and the thread to unpark.
struct Signal {
    woken: AtomicBool,
    /// The blocked thread, while it is registered. Read and written under
    /// this lock, so a wake either finds the thread or happens before the
    /// thread checks `woken` (under the same lock) and skips its sleep.
    thread: Mutex<Option<Thread>>,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.woken.swap(true, Ordering::SeqCst) {
            // Already woken since the last poll: the thread knows.
            return;
        }
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            thread.unpark();
        }
    }
}

impl Waitable for Signal {
    fn is_done(&self) -> bool {
        self.woken.load(Ordering::SeqCst)
    }

    fn register(&self, thread: &Thread) -> bool {
        let mut slot = lock(&self.thread);
        if self.woken.load(Ordering::SeqCst) {
            return false;
        }
        *slot = Some(thread.clone());
        true
    }

    fn deregister(&self, _thread: &Thread) {
        lock(&self.thread).take();
    }
}
