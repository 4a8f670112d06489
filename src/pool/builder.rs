//! [`Builder`]: how a pool is configured (its sizes checked here), handing
//! the starting of its workers to `core/threads.rs` (all of them running,
//! initializers done, or none left behind).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::core::registry::Registry;
use crate::core::threads::{Config, Hook, Sizes, StartError, BLOCKING_EXTRA, DEFAULT_KEEP_ALIVE};
use crate::error::{BuildError, BuildErrorKind};
use crate::pool::ThreadPool;

/// Configures and builds a [`ThreadPool`].
///
/// ```
/// use futurepool::Builder;
///
/// let pool = Builder::new()
///     .num_threads(3)
///     .thread_name("crunch")
///     .stack_size(4 << 20)
///     .initializer(|i| println!("worker {i} ready"))
///     .build()
///     .unwrap();
/// let name = pool.apply(|| std::thread::current().name().unwrap().to_string()).unwrap();
/// assert!(name.starts_with("crunch-"));
/// ```
#[derive(Clone)]
pub struct Builder {
    num_threads: Option<usize>,
    thread_name: String,
    stack_size: Option<usize>,
    initializer: Option<Hook>,
    daemon: bool,
    max_queued: Option<usize>,
    max_threads: Option<usize>,
    min_threads: Option<usize>,
    keep_alive: Duration,
    on_thread_start: Option<Hook>,
    on_thread_stop: Option<Hook>,
    panic_handler: Option<crate::core::panics::PanicHandler>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            num_threads: None,
            thread_name: String::from("futurepool"),
            stack_size: None,
            initializer: None,
            daemon: false,
            max_queued: None,
            max_threads: None,
            min_threads: None,
            keep_alive: DEFAULT_KEEP_ALIVE,
            on_thread_start: None,
            on_thread_stop: None,
            panic_handler: None,
        }
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("num_threads", &self.num_threads)
            .field("thread_name", &self.thread_name)
            .field("stack_size", &self.stack_size)
            .field("initializer", &self.initializer.is_some())
            .field("daemon", &self.daemon)
            .field("max_queued", &self.max_queued)
            .field("max_threads", &self.max_threads)
            .field("min_threads", &self.min_threads)
            .field("keep_alive", &self.keep_alive)
            .field("on_thread_start", &self.on_thread_start.is_some())
            .field("on_thread_stop", &self.on_thread_stop.is_some())
            .field("panic_handler", &self.panic_handler.is_some())
            .finish()
    }
}

impl Builder {
    /// The smallest [`stack_size`](Builder::stack_size) accepted: 64 KiB.
    pub const MIN_STACK_SIZE: usize = 64 << 10;

    /// A builder with the defaults: `num_cpus::get()` threads named
    /// `futurepool-0`, `futurepool-1`, ..., the platform's stack size, no
    /// initializer, not a daemon.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fixed pool of `n` worker threads, all started in
    /// [`build`](Builder::build) and kept until the pool ends (default: the
    /// number of logical CPUs, unless [`max_threads`](Builder::max_threads)
    /// alone makes the pool elastic). 0 or more than
    /// [`MAX_THREADS`](Builder::MAX_THREADS) makes `build` fail.
    ///
    /// ```
    /// use futurepool::{Builder, BuildErrorKind};
    /// let err = Builder::new().num_threads(usize::MAX).build().unwrap_err();
    /// assert_eq!(err.kind(), BuildErrorKind::InvalidConfig);
    /// ```
    pub fn num_threads(mut self, n: usize) -> Self {
        self.num_threads = Some(n);
        self
    }

    /// Workers are named `"{prefix}-{index}"`, index from 0 (default prefix
    /// `"futurepool"`).
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name = prefix.into();
        self
    }

    /// The stack size of each worker, in bytes (default: what std gives a
    /// thread: `RUST_MIN_STACK`, else 2 MiB). A worker waiting in `get()`
    /// runs other tasks on its stack; when nesting has used all but a
    /// quarter of it, the wait continues on a fresh overflow thread of the
    /// same size (see `docs/design.md`), so deep nesting never overflows.
    ///
    /// Below [`MIN_STACK_SIZE`](Builder::MIN_STACK_SIZE) bytes
    /// [`build`](Builder::build) fails with
    /// [`BuildErrorKind::InvalidConfig`]: such a stack cannot even hold a
    /// thread's own exit path in a debug build.
    ///
    /// ```
    /// use futurepool::{Builder, BuildErrorKind};
    /// let pool = Builder::new().num_threads(1).stack_size(256 << 10).build().unwrap();
    /// assert_eq!(pool.apply(|| 1), Ok(1));
    /// let err = Builder::new().stack_size(4096).build().unwrap_err();
    /// assert_eq!(err.kind(), BuildErrorKind::InvalidConfig);
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Runs `f(index)` once on each worker, before it takes any task; the
    /// index is the one in the worker's name. [`build`](Builder::build)
    /// returns only after every initializer has finished; if one panics,
    /// `build` fails with its message and no worker is left behind.
    ///
    /// ```
    /// use futurepool::Builder;
    ///
    /// let err = Builder::new()
    ///     .num_threads(2)
    ///     .initializer(|i| if i == 1 { panic!("no database") })
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("no database"));
    /// ```
    pub fn initializer(mut self, f: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.initializer = Some(Arc::new(f));
        self
    }

    /// A daemon pool's drop closes it and returns at once: queued and
    /// running work still completes in the background (unless the process
    /// exits first). A normal pool's drop waits for all of it.
    pub fn daemon(mut self, yes: bool) -> Self {
        self.daemon = yes;
        self
    }

    /// Caps the number of queued tasks (waiting to start; running ones do
    /// not count) at `n`: Python's `Queue(maxsize=n)` in front of the
    /// workers. A [`submit`](ThreadPool::submit) on a full queue blocks
    /// until a worker takes a task (or the pool closes: then its handle
    /// resolves to [`TaskError::PoolClosed`](crate::TaskError::PoolClosed));
    /// [`try_submit`](ThreadPool::try_submit) gives the closure back
    /// instead. Default: unbounded, which costs nothing.
    ///
    /// A task running on the pool that submits to its full pool does not
    /// block (it might be the one that has to make room): it runs queued
    /// tasks itself until there is room. Every queue entry counts:
    /// [`map`](ThreadPool::map) and [`map_async`](ThreadPool::map_async)
    /// chunks and [`spawn_async`](ThreadPool::spawn_async) futures wait for
    /// room as `submit` does (so `map_async` on a full queue returns once
    /// its last chunk is queued). Pushes that must not block (a delayed
    /// task coming due, an async task queued again by its waker) are
    /// queued even when the queue is full, so the count can briefly exceed
    /// `n`. A task cancelled while queued keeps its place until a worker
    /// discards it.
    ///
    /// 0 makes [`build`](Builder::build) fail.
    ///
    /// ```
    /// use futurepool::{Builder, BuildErrorKind};
    ///
    /// let pool = Builder::new().num_threads(2).max_queued(20).build().unwrap();
    /// let handles: Vec<_> = (0..100).map(|i| pool.submit(move || i)).collect(); // never more than 20 waiting
    /// assert_eq!(handles.into_iter().map(|h| h.get().unwrap()).sum::<i32>(), 4950);
    ///
    /// let err = Builder::new().max_queued(0).build().unwrap_err();
    /// assert_eq!(err.kind(), BuildErrorKind::InvalidConfig);
    /// ```
    pub fn max_queued(mut self, n: usize) -> Self {
        self.max_queued = Some(n);
        self
    }

    /// Receives the panics the pool catches that no handle can report,
    /// each as a [`TaskError::Panicked`](crate::TaskError::Panicked) (its
    /// [`panic_message`](crate::TaskError::panic_message) reads it):
    ///
    /// * a task (closure, future, periodic task, map) whose handle was
    ///   dropped before the task finished, and which panicked;
    /// * a done-callback ([`AsyncResult::add_done_callback`](crate::AsyncResult::add_done_callback))
    ///   that panicked, wherever it ran;
    /// * a waker the pool woke that panicked (a foreign executor's waker
    ///   polling a handle, a waker woken by [`sleep`](crate::sleep) for a
    ///   task of this pool);
    /// * the `Drop` of a value the pool drops for you that panicked (the
    ///   closure of a cancelled or refused task, a value nobody collects).
    ///
    /// A panic a handle does carry (its task panicked and the handle is
    /// alive) is not reported here: `get` returns it.
    ///
    /// The handler runs on the thread that caught the panic (a worker, a
    /// thread calling `cancel` or `add_done_callback`, a timer thread),
    /// after the panic was contained: it cannot stop the pool, and a panic
    /// inside the handler is itself contained and dropped. Keep it short.
    ///
    /// Default: no handler. The pool still contains these panics (no
    /// worker dies, every handle still resolves) and drops them; std's
    /// panic hook has already printed each one (with the thread's name)
    /// when it happened, unless the program replaced that hook.
    ///
    /// ```
    /// use futurepool::{Builder, TaskError};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let lost = Arc::new(Mutex::new(Vec::new()));
    /// let log = lost.clone();
    /// let pool = Builder::new()
    ///     .num_threads(1)
    ///     .panic_handler(move |e: &TaskError| {
    ///         log.lock().unwrap().push(e.panic_message().unwrap_or("?").to_string())
    ///     })
    ///     .build()
    ///     .unwrap();
    /// drop(pool.submit(|| panic!("nobody is listening"))); // handle dropped
    /// pool.wait_idle();
    /// assert_eq!(*lost.lock().unwrap(), ["nobody is listening"]);
    /// ```
    pub fn panic_handler(mut self, f: impl Fn(&crate::TaskError) + Send + Sync + 'static) -> Self {
        self.panic_handler = Some(Arc::new(f));
        self
    }

    /// The most threads a pool may have: the largest accepted
    /// [`num_threads`](Builder::num_threads),
    /// [`max_threads`](Builder::max_threads) or
    /// [`min_threads`](Builder::min_threads): 16,384. Far above what any
    /// machine runs usefully, and small enough for the pool's thread
    /// counts to share one atomic word (see `docs/design.md`), so an
    /// absurd count is a clear [`BuildError`].
    pub const MAX_THREADS: usize = crate::core::threads::MAX_THREADS;

    /// The cap on threads alive at once, as Python's `max_workers`.
    ///
    /// Without [`num_threads`](Builder::num_threads) the pool is
    /// *elastic*: `build` starts [`min_threads`](Builder::min_threads)
    /// workers (default 0), and a submission that finds no idle worker
    /// starts one more while fewer than `n` are alive (an idle worker is
    /// always reused first). Workers above the minimum that stay idle for
    /// the [`keep_alive`](Builder::keep_alive) exit. If every worker is
    /// busy while work waits (tasks that block without
    /// [`blocking`](crate::blocking)), a monitor adds a worker within about
    /// 100 ms (see `docs/design.md`).
    ///
    /// With `num_threads(k)` too, the pool is fixed at `k` workers and `n`
    /// (at least `k`) caps the threads it may add to stand in for workers
    /// inside [`blocking`](crate::blocking); without `max_threads` that cap
    /// is `k + 512`.
    ///
    /// 0, more than [`MAX_THREADS`](Builder::MAX_THREADS), less than
    /// `min_threads` or less than `num_threads` makes
    /// [`build`](Builder::build) fail with [`BuildErrorKind::InvalidConfig`].
    ///
    /// ```
    /// use futurepool::Builder;
    ///
    /// let pool = Builder::new().max_threads(8).build().unwrap();
    /// assert_eq!(pool.stats().threads, 0); // lazy: nothing started yet
    /// assert_eq!(pool.apply(|| 2 + 2), Ok(4));
    /// assert_eq!(pool.stats().threads, 1); // one was enough
    /// assert_eq!(pool.max_threads(), 8);
    /// ```
    pub fn max_threads(mut self, n: usize) -> Self {
        self.max_threads = Some(n);
        self
    }

    /// How many workers an elastic pool (see
    /// [`max_threads`](Builder::max_threads)) starts in `build` and keeps
    /// while idle. Default 0. Ignored with
    /// [`num_threads`](Builder::num_threads) (a fixed pool keeps all of
    /// its workers). More than `max_threads` makes
    /// [`build`](Builder::build) fail.
    ///
    /// ```
    /// use futurepool::Builder;
    ///
    /// let pool = Builder::new().min_threads(2).max_threads(16).build().unwrap();
    /// assert_eq!(pool.stats().threads, 2);
    /// assert!(Builder::new().min_threads(9).max_threads(8).build().is_err());
    /// ```
    pub fn min_threads(mut self, n: usize) -> Self {
        self.min_threads = Some(n);
        self
    }

    /// How long a worker above the minimum may stay idle before it exits
    /// (default 10 s, as tokio's blocking pool). Applies to an elastic
    /// pool's workers above `min_threads` and to the threads a fixed pool
    /// adds for [`blocking`](crate::blocking).
    ///
    /// ```
    /// use futurepool::Builder;
    /// use std::time::{Duration, Instant};
    ///
    /// let pool = Builder::new()
    ///     .max_threads(4)
    ///     .keep_alive(Duration::from_millis(20))
    ///     .build()
    ///     .unwrap();
    /// pool.apply(|| ()).unwrap();
    /// let deadline = Instant::now() + Duration::from_secs(30);
    /// while pool.stats().threads > 0 && Instant::now() < deadline {
    ///     std::thread::sleep(Duration::from_millis(5));
    /// }
    /// assert_eq!(pool.stats().threads, 0); // back to min_threads
    /// ```
    pub fn keep_alive(mut self, d: Duration) -> Self {
        self.keep_alive = d;
        self
    }

    /// Runs `f(index)` on every worker thread as it starts, before the
    /// [`initializer`](Builder::initializer) and before it takes any task,
    /// including threads an elastic pool starts later and threads standing
    /// in for workers inside [`blocking`](crate::blocking). `index` is the
    /// one in the thread's name (indices of exited threads are reused).
    /// A panic fails `build` as an initializer's does; on a thread started
    /// later, it stops that thread and the pool starts no more.
    ///
    /// ```
    /// use futurepool::Builder;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let (started, stopped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    /// let (s, t) = (started.clone(), stopped.clone());
    /// let pool = Builder::new()
    ///     .num_threads(2)
    ///     .on_thread_start(move |_| { s.fetch_add(1, Ordering::SeqCst); })
    ///     .on_thread_stop(move |_| { t.fetch_add(1, Ordering::SeqCst); })
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(started.load(Ordering::SeqCst), 2);
    /// pool.join();
    /// assert_eq!(stopped.load(Ordering::SeqCst), 2);
    /// ```
    pub fn on_thread_start(mut self, f: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.on_thread_start = Some(Arc::new(f));
        self
    }

    /// Runs `f(index)` on every worker thread as it exits: retired after
    /// its keep-alive, let go by a resize, or at the pool's end. A panic in
    /// it is ignored (the thread is leaving). [`join`](ThreadPool::join)
    /// returns after every such call has returned.
    pub fn on_thread_stop(mut self, f: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.on_thread_stop = Some(Arc::new(f));
        self
    }

    /// The sizes this builder asks for (see [`max_threads`](Builder::max_threads)).
    fn sizes(&self) -> Result<(bool, Sizes), BuildError> {
        let invalid = |msg: String| Err(BuildError::new(BuildErrorKind::InvalidConfig, msg));
        let most = Self::MAX_THREADS;
        for (name, value) in [
            ("num_threads", self.num_threads),
            ("max_threads", self.max_threads),
            ("min_threads", self.min_threads),
        ] {
            if let Some(n) = value.filter(|n| *n > most) {
                return invalid(format!("{name} must be at most {most} (got {n})"));
            }
        }
        if self.max_threads == Some(0) {
            return invalid("max_threads must be at least 1".into());
        }
        match (self.num_threads, self.max_threads) {
            (None, Some(max)) => {
                let min = self.min_threads.unwrap_or(0);
                if min > max {
                    return invalid(format!(
                        "min_threads ({min}) must not exceed max_threads ({max})"
                    ));
                }
                Ok((
                    true,
                    Sizes {
                        min,
                        target: max,
                        cap: max,
                        fixed: false,
                    },
                ))
            }
            (n, max) => {
                let n = n.unwrap_or_else(num_cpus::get).min(most);
                if n == 0 {
                    return Err(BuildError::new(
                        BuildErrorKind::ZeroThreads,
                        "num_threads must be at least 1",
                    ));
                }
                let cap = match max {
                    Some(max) if max < n => {
                        return invalid(format!(
                            "max_threads ({max}) must not be less than num_threads ({n})"
                        ))
                    }
                    Some(max) => max,
                    None => (n + BLOCKING_EXTRA).min(most),
                };
                Ok((
                    false,
                    Sizes {
                        min: n,
                        target: n,
                        cap,
                        fixed: true,
                    },
                ))
            }
        }
    }

    /// Starts the workers.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] if a size is out of range (`num_threads`,
    /// `max_threads` or `max_queued` is 0, a size above
    /// [`MAX_THREADS`](Builder::MAX_THREADS), `min_threads` above
    /// `max_threads`), if the OS refuses to start a thread (e.g. an absurd
    /// stack size), or if an initializer or start hook panics. In every
    /// case the threads already started are stopped and joined first.
    pub fn build(self) -> Result<ThreadPool, BuildError> {
        let (elastic, sizes) = self.sizes()?;
        match self.stack_size {
            Some(bytes) if bytes < Self::MIN_STACK_SIZE => {
                return Err(BuildError::new(
                    BuildErrorKind::InvalidConfig,
                    format!(
                        "stack_size must be at least {} bytes (got {bytes})",
                        Self::MIN_STACK_SIZE
                    ),
                ));
            }
            _ => {}
        }
        if self.max_queued == Some(0) {
            return Err(BuildError::new(
                BuildErrorKind::InvalidConfig,
                "max_queued must be at least 1",
            ));
        }
        let config = Config {
            thread_name: self.thread_name,
            stack_size: self
                .stack_size
                .unwrap_or_else(crate::core::stack::default_stack_size),
            initializer: self.initializer,
            on_start: self.on_thread_start,
            on_stop: self.on_thread_stop,
            keep_alive: self.keep_alive,
            elastic,
            sizes,
        };
        let registry = Registry::new(config, self.max_queued, self.panic_handler);
        if let Err(error) = registry.threads.start_initial(&registry, sizes.min) {
            registry.close();
            registry.threads.join_all();
            return Err(match error {
                StartError::Spawn(msg) => BuildError::new(BuildErrorKind::Spawn, msg),
                StartError::Hook(msg) => BuildError::new(BuildErrorKind::InitializerPanicked, msg),
            });
        }
        Ok(ThreadPool::from_parts(registry, self.daemon))
    }
}
