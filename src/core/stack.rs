//! Stack segments: how a worker that waits keeps nesting without
//! overflowing its stack.
//!
//! A worker that waits runs other tasks on its own stack (`wait.rs`), so
//! nested waits (`submit(..).get()` inside a task, a scope in a scope,
//! `block_on` in a task, ...) nest stack frames: a few hundred bytes per
//! level in release, over a kilobyte in debug. Every wait of a worker goes
//! through one entry, [`WorkerCtx::wait_until`], and that entry checks the
//! budget first: once the worker has used all of its stack but a reserve,
//! the wait moves to a fresh *overflow* thread (same name, same stack
//! size) that acts for the worker while the worker blocks on it; nesting
//! goes on there. So chains of any depth run without overflowing a stack,
//! at the cost of one thread per stack's worth of nesting.
//!
//! An overflow thread serves the worker's pool like the worker did, with
//! two differences: its own deque is invisible to thieves, so it never
//! keeps work there (it takes outside work one job at a time), and it may
//! steal from the deque of the worker it stands in for, which is blocked
//! until it is done. If no thread can be started (the process is out of
//! threads), the wait goes on where it is, and once the stack is nearly
//! spent (a quarter of the reserve used too) it runs no more work there: it parks
//! until the condition holds, leaving the awaited task to the other
//! workers (with one worker, only a bounded wait then ends, timed out),
//! rather than overflow the stack.

use crate::core::sync::lock_std;
use crate::core::worker::WorkerCtx;

/// The part of a worker's stack nesting leaves free for the code that runs
/// at the deepest level (the task, the wait, starting an overflow thread):
/// a quarter of the stack, and at least this much.
const STACK_RESERVE_MIN: usize = 32 << 10;
/// The stack size std gives a thread when none is asked for.
const STD_DEFAULT_STACK: usize = 2 << 20;

/// The stack size a worker gets when the builder sets none: what std
/// would give it (`RUST_MIN_STACK`, else 2 MiB). Workers are always
/// spawned with an explicit size so they know their budget.
pub(crate) fn default_stack_size() -> usize {
    std::env::var("RUST_MIN_STACK")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(STD_DEFAULT_STACK)
}

/// The address of a local of the caller's frame: a stack depth gauge.
#[inline(always)]
pub(crate) fn stack_position() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// Where a thread's stack started and how big it is.
pub(crate) struct StackBudget {
    base: usize,
    size: usize,
    /// The deepest address nesting may reach before [`is_low`]: computed
    /// once, so the check every wait and every `join` makes is one
    /// comparison (stacks grow down on every target std runs threads on
    /// but hppa, where this only errs towards moving to a fresh stack).
    ///
    /// [`is_low`]: StackBudget::is_low
    limit: usize,
}

impl StackBudget {
    /// The budget of the current thread, spawned with `size` bytes of
    /// stack; measured from here.
    pub(crate) fn here(size: usize) -> Self {
        let base = stack_position();
        let reserve = (size / 4).max(STACK_RESERVE_MIN);
        StackBudget {
            base,
            size,
            limit: base.saturating_sub(size.saturating_sub(reserve)),
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Whether nesting here has used the budget (all of the stack but
    /// the reserve).
    #[inline]
    pub(crate) fn is_low(&self) -> bool {
        stack_position() < self.limit
    }

    /// Whether nesting here has used a quarter of the reserve too: only a
    /// worker that could not move its wait to an overflow thread gets this
    /// far, and it must start no more work on this stack (what is left is
    /// for the task already running and the wait it is in).
    pub(crate) fn is_nearly_spent(&self) -> bool {
        self.used_more_than(self.reserve() / 4 * 3)
    }

    fn reserve(&self) -> usize {
        (self.size / 4).max(STACK_RESERVE_MIN)
    }

    /// Whether less than `left` bytes of the stack are left.
    fn used_more_than(&self, left: usize) -> bool {
        let used = self.base.abs_diff(stack_position());
        used > self.size.saturating_sub(left)
    }
}

impl WorkerCtx {
    /// Runs `wait` on a fresh overflow thread acting for this worker, and
    /// blocks until it is done (see the module docs). `wait` gets the
    /// overflow thread's context. `None`, with `wait` not run, if no
    /// thread can be started.
    pub(crate) fn on_fresh_stack<R: Send>(
        &self,
        wait: impl FnOnce(&WorkerCtx) -> R + Send,
    ) -> Option<R> {
        let wait = std::sync::Mutex::new(Some(wait));
        let take = || lock_std(&wait).take();
        let stack_size = self.stack.size();
        let (registry, index, slot) = (self.registry.clone(), self.index, self.slot.clone());
        let mut builder = std::thread::Builder::new().stack_size(stack_size);
        if let Some(name) = std::thread::current().name() {
            builder = builder.name(name.to_owned());
        }
        std::thread::scope(|scope| {
            let spawned = builder.spawn_scoped(scope, || {
                let ctx = WorkerCtx::new_overflow(registry, index, slot, stack_size);
                // The first wait on a fresh stack always runs here, so a
                // chain of overflow threads always makes progress.
                WorkerCtx::enter(ctx, |ctx| take().map(|wait| wait(ctx)))
            });
            match spawned {
                Ok(thread) => thread
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p)),
                Err(_) => None,
            }
        })
    }
}
