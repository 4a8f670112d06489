//! Errors: why a task produced no value ([`TaskError`]) and why a pool could
//! not be built ([`BuildError`]).

use std::any::Any;
use std::fmt;

/// Why a handle holds no value.
///
/// Errors that a task *means* to return belong in its return type
/// (`T = Result<U, E>`); `TaskError` only says what happened to the task
/// itself: it panicked, it was cancelled, the wait timed out, or the pool was
/// closed before it could be accepted.
///
/// `TaskError` is `Send`, implements [`std::error::Error`], and compares equal
/// by kind (two `Panicked` errors are equal when their messages are).
///
/// # Examples
///
/// ```
/// use futurepool::{TaskError, ThreadPool};
///
/// let pool = ThreadPool::new(1).unwrap();
/// let err = pool.apply(|| -> u32 { panic!("boom") }).unwrap_err();
/// assert!(matches!(err, TaskError::Panicked(_)));
/// assert!(err.to_string().contains("boom"));
/// // The original payload can be taken back, e.g. to resume the panic.
/// let payload = err.into_panic().unwrap();
/// assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
/// ```
#[non_exhaustive]
pub enum TaskError {
    /// The task panicked. Holds the panic payload, as given to
    /// [`std::panic::resume_unwind`].
    Panicked(Box<dyn Any + Send + 'static>),
    /// The task was cancelled before it started (by
    /// [`AsyncResult::cancel`](crate::AsyncResult::cancel),
    /// [`ThreadPool::terminate`](crate::ThreadPool::terminate) or
    /// `shutdown(_, true)`), or, for a cooperative task, while it ran.
    Cancelled,
    /// A bounded wait ([`AsyncResult::get_timeout`](crate::AsyncResult::get_timeout))
    /// ran out before the task finished. The handle stays usable.
    Timeout,
    /// The pool was closed (or terminated) when the task was submitted, so
    /// it was never accepted and never runs.
    PoolClosed,
    /// The value was already taken out of this handle by an earlier
    /// `get_timeout` (or a poll of the handle as a future): a value is
    /// handed out once.
    ResultTaken,
    /// A bulk call was given an argument it cannot work with (for example
    /// a chunk size of 0); the message says which. Nothing was run.
    InvalidArgument(&'static str),
    /// The pool had no worker thread and could not start one (the OS
    /// refused, or a start hook panicked on a thread started after
    /// `build`): nothing would ever run the task. The message says why.
    /// Only a pool that can shrink to no thread at all (an elastic pool
    /// with `min_threads(0)`) ever reports it.
    ThreadStart(String),
}

impl TaskError {
    /// Whether this is [`TaskError::Panicked`].
    pub fn is_panic(&self) -> bool {
        matches!(self, TaskError::Panicked(_))
    }

    /// Whether this is [`TaskError::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        matches!(self, TaskError::Cancelled)
    }

    /// Whether this is [`TaskError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, TaskError::Timeout)
    }

    /// The panic message, when this is a panic whose payload is a `&str` or
    /// a `String` (what `panic!` produces).
    ///
    /// ```
    /// # use futurepool::ThreadPool;
    /// let pool = ThreadPool::new(1).unwrap();
    /// let err = pool.apply(|| -> () { panic!("bad input {}", 7) }).unwrap_err();
    /// assert_eq!(err.panic_message(), Some("bad input 7"));
    /// ```
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            TaskError::Panicked(payload) => payload_message(payload.as_ref()),
            _ => None,
        }
    }

    /// Takes back the panic payload, e.g. for [`std::panic::resume_unwind`].
    /// `None` for the other kinds.
    pub fn into_panic(self) -> Option<Box<dyn Any + Send + 'static>> {
        match self {
            TaskError::Panicked(payload) => Some(payload),
            _ => None,
        }
    }

    /// Re-raises a panic on the calling thread, with its original payload;
    /// any other kind is returned unchanged.
    ///
    /// ```should_panic
    /// # use futurepool::ThreadPool;
    /// let pool = ThreadPool::new(1).unwrap();
    /// let err = pool.apply(|| -> () { panic!("boom") }).unwrap_err();
    /// err.resume_panic(); // panics again here with "boom"
    /// ```
    pub fn resume_panic(self) -> TaskError {
        match self {
            TaskError::Panicked(payload) => std::panic::resume_unwind(payload),
            other => other,
        }
    }
}

/// The text of a panic payload, when it is one `panic!` makes.
pub(crate) fn payload_message(payload: &(dyn Any + Send)) -> Option<&str> {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        Some(s)
    } else if let Some(s) = payload.downcast_ref::<String>() {
        Some(s.as_str())
    } else {
        None
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Panicked(payload) => match payload_message(payload.as_ref()) {
                Some(msg) => write!(f, "task panicked: {msg}"),
                None => f.write_str("task panicked (with a non-string payload)"),
            },
            TaskError::Cancelled => f.write_str("task was cancelled"),
            TaskError::Timeout => f.write_str("timed out waiting for the task"),
            TaskError::PoolClosed => {
                f.write_str("the pool is closed: the task was not accepted and will not run")
            }
            TaskError::ResultTaken => {
                f.write_str("the task's result was already taken from this handle")
            }
            TaskError::InvalidArgument(msg) => write!(f, "invalid argument: {msg}"),
            TaskError::ThreadStart(why) => {
                write!(
                    f,
                    "the pool has no worker thread and could not start one: {why}"
                )
            }
        }
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Panicked(payload) => {
                let msg = payload_message(payload.as_ref()).unwrap_or("<non-string payload>");
                f.debug_tuple("Panicked").field(&msg).finish()
            }
            TaskError::Cancelled => f.write_str("Cancelled"),
            TaskError::Timeout => f.write_str("Timeout"),
            TaskError::PoolClosed => f.write_str("PoolClosed"),
            TaskError::ResultTaken => f.write_str("ResultTaken"),
            TaskError::InvalidArgument(msg) => f.debug_tuple("InvalidArgument").field(msg).finish(),
            TaskError::ThreadStart(why) => f.debug_tuple("ThreadStart").field(why).finish(),
        }
    }
}

impl PartialEq for TaskError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (TaskError::Panicked(a), TaskError::Panicked(b)) => {
                payload_message(a.as_ref()) == payload_message(b.as_ref())
            }
            (TaskError::InvalidArgument(a), TaskError::InvalidArgument(b)) => a == b,
            (TaskError::ThreadStart(a), TaskError::ThreadStart(b)) => a == b,
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

impl Eq for TaskError {}

impl std::error::Error for TaskError {}

/// Why [`Builder::build`](crate::Builder::build) (or
/// [`ThreadPool::new`](crate::ThreadPool::new)) failed. No worker thread is
/// left running when it is returned.
///
/// ```
/// use futurepool::ThreadPool;
///
/// let err = ThreadPool::new(0).unwrap_err();
/// assert_eq!(err.to_string(), "num_threads must be at least 1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    kind: BuildErrorKind,
    message: String,
}

/// What kind of problem a [`BuildError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BuildErrorKind {
    /// `num_threads` was 0.
    ZeroThreads,
    /// The operating system refused to start a worker thread (for example
    /// an absurd `stack_size`).
    Spawn,
    /// A worker's initializer panicked.
    InitializerPanicked,
    /// Another builder option was out of range.
    InvalidConfig,
}

impl BuildError {
    pub(crate) fn new(kind: BuildErrorKind, message: impl Into<String>) -> Self {
        BuildError {
            kind,
            message: message.into(),
        }
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> BuildErrorKind {
        self.kind
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BuildError {}

/// Why [`ThreadPool::set_max_threads`](crate::ThreadPool::set_max_threads),
/// [`set_min_threads`](crate::ThreadPool::set_min_threads) or
/// [`set_num_threads`](crate::ThreadPool::set_num_threads) refused a size.
/// The pool is unchanged when it is returned.
///
/// ```
/// use futurepool::ThreadPool;
///
/// let pool = ThreadPool::builder().max_threads(4).build().unwrap();
/// let err = pool.set_max_threads(0).unwrap_err();
/// assert_eq!(err.to_string(), "max_threads must be at least 1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResizeError {
    message: String,
}

impl ResizeError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        ResizeError {
            message: message.into(),
        }
    }
}

impl fmt::Display for ResizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ResizeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panicked_display_reads_str_and_string_payloads() {
        let a = TaskError::Panicked(Box::new("static"));
        let b = TaskError::Panicked(Box::new(String::from("owned")));
        let c = TaskError::Panicked(Box::new(42_u32));
        assert_eq!(a.to_string(), "task panicked: static");
        assert_eq!(b.to_string(), "task panicked: owned");
        assert!(c.to_string().contains("non-string"));
        assert_eq!(format!("{b:?}"), "Panicked(\"owned\")");
    }

    #[test]
    fn equality_is_by_kind_and_message() {
        assert_eq!(TaskError::Cancelled, TaskError::Cancelled);
        assert_ne!(TaskError::Cancelled, TaskError::Timeout);
        assert_eq!(
            TaskError::Panicked(Box::new("x")),
            TaskError::Panicked(Box::new(String::from("x")))
        );
        assert_ne!(
            TaskError::Panicked(Box::new("x")),
            TaskError::Panicked(Box::new("y"))
        );
        assert_eq!(
            TaskError::InvalidArgument("chunksize must be at least 1"),
            TaskError::InvalidArgument("chunksize must be at least 1")
        );
        assert_ne!(
            TaskError::InvalidArgument("a"),
            TaskError::InvalidArgument("b")
        );
        let e = TaskError::InvalidArgument("chunksize must be at least 1");
        assert_eq!(
            e.to_string(),
            "invalid argument: chunksize must be at least 1"
        );
        assert_eq!(
            format!("{e:?}"),
            "InvalidArgument(\"chunksize must be at least 1\")"
        );
    }

    #[test]
    fn task_error_is_send_and_error() {
        fn assert_send<E: Send + std::error::Error + 'static>() {}
        assert_send::<TaskError>();
        assert_send::<BuildError>();
    }
}
