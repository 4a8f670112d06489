//! Async: futures run as pool tasks (`task.rs`: the poll state machine
//! and the pool's list of live async tasks; `refs.rs`: the count of the
//! references that may poll a task; `waker.rs`: their wakers) and
//! `block_on`
//! (`block_on.rs`), a future run on the calling thread.

pub(crate) mod block_on;
pub(crate) mod refs;
pub(crate) mod task;
pub(crate) mod waker;
