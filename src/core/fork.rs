//! Fork-join on a worker ([`join`](crate::join)): the second closure is
//! queued as a [`StackJob`] in this frame, on the worker's fork deque
//! (`forks.rs`), the first runs at once, and then the second is either
//! taken back off the deque and run here (nobody stole it: the common
//! case, no allocation, no atomic read-modify-write, and no fence while
//! no thief is looking) or waited for
//! through the one waiting loop ([`WorkerCtx::wait_until`] on the job's
//! latch), which keeps the worker running other work meanwhile and moves
//! the wait to a fresh stack when this one runs low.
//!
//! The entry must never outlive the frame: this function leaves only after
//! the entry was taken back or the job's latch was set (a thief ran it, or
//! a terminating pool handed it back unrun), and nothing it calls between
//! the push and that point can unwind (the first closure runs under
//! `catch_unwind`).

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use crate::core::job_ref::{JobRef, StackJob};
use crate::core::sync::lock_std;
use crate::core::worker::WorkerCtx;

impl WorkerCtx {
    /// Runs `a` and `b`, `b` possibly on another worker of this pool;
    /// re-raises a panic of either once both are over (`a`'s first).
    pub(crate) fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        let (a, b) = if self.stack.is_low() {
            // Deep recursion: go on on a fresh stack (`stack.rs`), or here
            // if no thread can be started.
            let parts = std::sync::Mutex::new(Some((a, b)));
            let take = || lock_std(&parts).take().expect("taken once");
            if let Some(both) = self.on_fresh_stack(|ctx| {
                let (a, b) = take();
                ctx.join(a, b)
            }) {
                return both;
            }
            take()
        } else {
            (a, b)
        };
        if self.is_overflow() {
            // Nobody can steal from an overflow thread's deque: queueing
            // `b` would only delay it.
            return one_after_the_other(a, b);
        }
        let job = StackJob::new(b);
        // SAFETY: `job` stays in this frame, unmoved, until the entry is
        // taken back (`take_back_fork` true) or its latch is set
        // (`wait_until` returns only then: it has no deadline); `a` runs
        // under catch_unwind, so nothing unwinds out of this frame before.
        #[allow(unsafe_code)]
        let entry = unsafe { job.as_job_ref() };
        self.push_fork(entry);
        let ra = match catch_unwind(AssertUnwindSafe(a)) {
            Ok(ra) => ra,
            Err(payload) => {
                // `b` still runs to its end before `a`'s panic goes on.
                self.settle_fork(&job, true);
                drop(job.complete());
                resume_unwind(payload)
            }
        };
        if self.take_back_fork(job.addr()) {
            // Nobody took it: run it right here, as a plain call (`a` is
            // done, so a panic of `b` may unwind from here as it is).
            return (ra, job.run_taken_back());
        }
        self.settle_fork(&job, false);
        match job.complete() {
            Ok(rb) => (ra, rb),
            Err(payload) => resume_unwind(payload),
        }
    }

    /// Once `a` is over: takes the fork back (if `take_back`) or waits
    /// until whoever took it is done with it. By reference: the job must
    /// not move while its entry may be queued or running.
    #[cold]
    fn settle_fork<F, R>(&self, job: &StackJob<F, R>, take_back: bool)
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        if !(take_back && self.take_back_fork(job.addr())) {
            self.wait_until(&job.latch, None);
        }
    }

    /// Queues a fork on this worker's fork deque, where thieves can see
    /// it.
    #[inline]
    fn push_fork(&self, job: JobRef) {
        let registry = &*self.registry;
        if let Some(bound) = &registry.bound {
            // Every entry taken off a queue gives a place back.
            bound.add_unchecked();
        }
        self.forks.push(job);
        // No fence (see `Parking::wake_one_if_parked`): a parked worker
        // that misses this fork costs parallelism, never progress, since
        // this worker runs the fork itself if nobody took it.
        registry.parking.wake_one_if_parked();
    }

    /// Takes the fork at `target` back off this worker's fork deque;
    /// false if it was taken already.
    ///
    /// Only forks go on that deque, and every `join` settles its fork
    /// before it returns, so the forks pushed since this one are gone:
    /// the newest entry is this fork, or, if this fork was taken (by a
    /// thief, or run by this worker while the first closure waited), an
    /// older one, which goes back where it was.
    #[inline]
    fn take_back_fork(&self, target: usize) -> bool {
        match self.forks.pop(&self.registry.thieves) {
            Some(job) if job.addr() == target => {
                self.fork_taken_back(job);
                true
            }
            Some(older) => {
                self.forks.push(older);
                false
            }
            None => false,
        }
    }

    /// Ends the entry of a fork taken back.
    #[inline]
    fn fork_taken_back(&self, job: JobRef) {
        self.release_place();
        // A stack entry holds nothing of its job: forgetting it is its
        // drop, without the call through its table.
        std::mem::forget(job);
    }
}

/// `join` with no queue: `a`, then `b`, then the first panic if any.
pub(crate) fn one_after_the_other<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA,
    B: FnOnce() -> RB,
{
    let ra = catch_unwind(AssertUnwindSafe(a));
    let rb = catch_unwind(AssertUnwindSafe(b));
    match (ra, rb) {
        (Ok(ra), Ok(rb)) => (ra, rb),
        (Err(payload), _) | (_, Err(payload)) => resume_unwind(payload),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    //! Small enough for Miri: forks taken back, stolen, panicking, and
    //! handed back by a terminating pool, each touching borrowed data.
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::{join, ThreadPool};

    fn fib(n: u64) -> u64 {
        if n < 2 {
            return n;
        }
        let (a, b) = join(|| fib(n - 1), || fib(n - 2));
        a + b
    }

    #[test]
    fn forks_taken_back_or_stolen_write_borrowed_data() {
        let pool = ThreadPool::new(2).unwrap();
        let mut left = [0u64; 4];
        let mut right = [0u64; 4];
        pool.install(|| {
            join(
                || left.iter_mut().for_each(|x| *x = fib(5)),
                || right.iter_mut().for_each(|x| *x = fib(6)),
            )
        });
        assert_eq!((left, right), ([5; 4], [8; 4]));
    }

    #[test]
    fn a_panicking_fork_is_re_raised_after_the_other_side() {
        let pool = ThreadPool::new(2).unwrap();
        let count = AtomicUsize::new(0);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            pool.install(|| {
                join(
                    || count.fetch_add(1, Ordering::SeqCst),
                    || -> usize { panic!("fork side") },
                )
            })
        }));
        assert!(caught.is_err());
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_fork_handed_back_by_terminate_runs_on_its_owner() {
        let pool = std::sync::Arc::new(ThreadPool::new(1).unwrap());
        let p = pool.clone();
        let text = String::from("owner");
        let (_, len) = pool.install(|| join(|| p.terminate(), || text.len()));
        assert_eq!(len, 5);
    }
}
