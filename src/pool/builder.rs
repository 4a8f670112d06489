//! [`Builder`]: how a pool is configured, and how its workers are started
//! (all of them running, initializers done, or none left behind).

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use crossbeam_deque::Worker;

use crate::core::registry::Registry;
use crate::core::worker::WorkerCtx;
use crate::error::{payload_message, BuildError, BuildErrorKind};
use crate::pool::ThreadPool;

type Initializer = Arc<dyn Fn(usize) + Send + Sync + 'static>;

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
    initializer: Option<Initializer>,
    daemon: bool,
    max_queued: Option<usize>,
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
            .field("panic_handler", &self.panic_handler.is_some())
            .finish()
    }
}

impl Builder {
    /// The smallest [`stack_size`](Builder::stack_size) accepted: 64 KiB.
    pub const MIN_STACK_SIZE: usize = 64 << 10;

    /// The most worker threads a pool may have: 65,536. Far above what
    /// any machine runs usefully, and low enough that the per-worker
    /// bookkeeping `build` allocates up front stays small, so an absurd
    /// count is a clear [`BuildError`] rather than a failed allocation.
    pub const MAX_THREADS: usize = 1 << 16;

    /// A builder with the defaults: `num_cpus::get()` threads named
    /// `futurepool-0`, `futurepool-1`, ..., the platform's stack size, no
    /// initializer, not a daemon.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many worker threads (default: the number of logical CPUs).
    /// 0, or more than [`MAX_THREADS`](Builder::MAX_THREADS), makes
    /// [`build`](Builder::build) fail; so does a count the OS will not
    /// start (then with [`BuildErrorKind::Spawn`], every thread already
    /// started joined first).
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

    /// Starts the workers.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] if `num_threads` or `max_queued` is 0, if
    /// `num_threads` is above [`MAX_THREADS`](Builder::MAX_THREADS), if the
    /// OS refuses to start a thread (an absurd stack size, a process out of
    /// threads), or if an initializer panics. In
    /// every case the threads already started are stopped and joined first.
    pub fn build(self) -> Result<ThreadPool, BuildError> {
        let n = self.num_threads.unwrap_or_else(num_cpus::get);
        if n == 0 {
            return Err(BuildError::new(
                BuildErrorKind::ZeroThreads,
                "num_threads must be at least 1",
            ));
        }
        if n > Self::MAX_THREADS {
            return Err(BuildError::new(
                BuildErrorKind::InvalidConfig,
                format!(
                    "num_threads must be at most {} (got {n})",
                    Self::MAX_THREADS
                ),
            ));
        }
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
        let locals: Vec<Worker<_>> = (0..n).map(|_| Worker::new_lifo()).collect();
        let registry = Arc::new(Registry::new(
            locals.iter().map(|w| w.stealer()).collect(),
            self.max_queued,
            self.thread_name.clone(),
            self.panic_handler.clone(),
        ));
        let startup = Arc::new(Startup::default());

        let mut threads = Vec::with_capacity(n);
        let mut failure = None;
        for (index, local) in locals.into_iter().enumerate() {
            match self.spawn(index, local, &registry, &startup) {
                Ok(handle) => threads.push(handle),
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        if let Some(error) = startup.wait(threads.len()) {
            failure.get_or_insert(error);
        }
        if let Some(error) = failure {
            registry.close();
            for handle in threads {
                let _ = handle.join();
            }
            return Err(error);
        }
        Ok(ThreadPool::from_parts(registry, threads, self.daemon))
    }

    fn spawn(
        &self,
        index: usize,
        local: Worker<crate::core::job::JobRef>,
        registry: &Arc<Registry>,
        startup: &Arc<Startup>,
    ) -> Result<thread::JoinHandle<()>, BuildError> {
        let name = format!("{}-{}", self.thread_name, index);
        let stack_size = self
            .stack_size
            .unwrap_or_else(crate::core::stack::default_stack_size);
        let builder = thread::Builder::new()
            .name(name.clone())
            .stack_size(stack_size);
        let registry = registry.clone();
        let startup = startup.clone();
        let initializer = self.initializer.clone();
        let body = move || {
            // Counted however the thread ends, for ThreadPool::join_timeout.
            struct Exit(Arc<Registry>);
            impl Drop for Exit {
                fn drop(&mut self) {
                    self.0.worker_exited();
                }
            }
            let _exit = Exit(registry.clone());
            let ctx = WorkerCtx::new(registry, index, local, stack_size);
            WorkerCtx::enter(ctx, |ctx| {
                let init = match &initializer {
                    Some(init) => catch_unwind(AssertUnwindSafe(|| init(index))).map_err(|p| {
                        let msg = payload_message(p.as_ref()).unwrap_or("non-string panic payload");
                        format!("initializer panicked on worker {index} ({name}): {msg}")
                    }),
                    None => Ok(()),
                };
                let ok = init.is_ok();
                startup.report(init.err());
                if ok {
                    ctx.run();
                }
            });
        };
        // std may panic rather than return an error for some absurd sizes.
        match catch_unwind(AssertUnwindSafe(|| builder.spawn(body))) {
            Ok(Ok(handle)) => Ok(handle),
            Ok(Err(e)) => Err(BuildError::new(
                BuildErrorKind::Spawn,
                format!("failed to spawn worker thread {index}: {e}"),
            )),
            Err(p) => Err(BuildError::new(
                BuildErrorKind::Spawn,
                format!(
                    "failed to spawn worker thread {index}: {}",
                    payload_message(p.as_ref()).unwrap_or("spawn panicked")
                ),
            )),
        }
    }
}

/// Counts workers through their initializers; keeps the first failure.
#[derive(Default)]
struct Startup {
    state: Mutex<(usize, Option<String>)>,
    all_reported: Condvar,
}

impl Startup {
    fn report(&self, error: Option<String>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 += 1;
        if state.1.is_none() {
            state.1 = error;
        }
        self.all_reported.notify_all();
    }

    fn wait(&self, workers: usize) -> Option<BuildError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.0 < workers {
            state = match self.all_reported.wait(state) {
                Ok(s) => s,
                Err(p) => p.into_inner(),
            };
        }
        state
            .1
            .take()
            .map(|msg| BuildError::new(BuildErrorKind::InitializerPanicked, msg))
    }
}
