//! Bulk work and waiting on many: `map` and its lazy siblings (`map.rs`,
//! over the in-place buffers of `inplace.rs`), scoped tasks that borrow
//! from the caller (`scope.rs`), and `as_completed` / `wait`
//! (`wait_many.rs`). Each builds ordinary jobs and hands them to the core.

pub(crate) mod inplace;
pub(crate) mod map;
pub(crate) mod scope;
pub(crate) mod wait_many;
