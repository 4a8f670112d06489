//! What the task layer needs from the thread that runs a task
//! ([`Runner`], which a worker implements), and what a run in place
//! reports back ([`Ran`]). A leaf: the task layer and the waiting
//! conditions depend on it, and it depends on neither.

use crate::core::counters::Outcome;

/// What a task needs from the thread that runs it.
pub(crate) trait Runner {
    /// The id of the pool this thread serves
    /// ([`Registry::id`](crate::core::registry::Registry::id)).
    fn pool(&self) -> u32;
    /// Whether that pool has been terminated. Asked right after a task is
    /// claimed (PENDING -> RUNNING, a SeqCst read-modify-write), with a
    /// SeqCst load that pairs with the SeqCst store in
    /// [`Registry::terminate`](crate::core::registry::Registry::terminate):
    /// either the claim comes first (and terminate() finds the task
    /// running), or the runner sees the pool terminated.
    fn terminated(&self) -> bool;
    /// A task the runner offered to run in place
    /// ([`TaskRef::run_here`]) was claimed: count it as started.
    fn started_here(&self);
}

/// A task a waiting worker ran in place ([`TaskRef::run_here`](crate::core::job::TaskRef::run_here)).
pub(crate) struct Ran {
    /// What the statistics count for it.
    pub(crate) outcome: Outcome,
    /// The address its queue entries point to, so the worker can take the
    /// entry back off its deque.
    pub(crate) entry: usize,
}
