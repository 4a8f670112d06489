//! Awaitable delays for async tasks: [`sleep`] and [`sleep_until`].
//!
//! A sleeping future holds no worker: it registers a wake-up with a timer
//! thread and returns `Pending`; at the deadline the timer wakes the task,
//! which is re-queued on its own pool (or wakes `block_on`'s thread).
//!
//! The timer is one process-wide thread (`futurepool-sleep-timer`), started
//! on the first sleep and parked on a condvar until the earliest deadline,
//! so it burns no CPU while nothing is due. It is not a pool's timer on
//! purpose: a pool's timer shuts down when the pool closes, and a closing
//! pool still runs its async tasks to the end, sleeps included.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use once_cell::sync::OnceCell;

use crate::core::sync::lock_std;
use crate::timers::thread::{Timer, TimerId};

static SLEEP_TIMER: OnceCell<Timer> = OnceCell::new();

/// The process-wide sleep timer, started on first use; `None` while the
/// OS refuses to start its thread (the next call tries again).
fn timer() -> Option<&'static Timer> {
    SLEEP_TIMER
        .get_or_try_init(|| Timer::start(String::from("futurepool-sleep-timer")))
        .ok()
}

/// A future that completes at `deadline` (see [`sleep`]).
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        registered: None,
    }
}

/// A future that completes after `duration`, without holding a thread
/// meanwhile: the way for async tasks on a pool to wait, time out or tick
/// without bringing in another runtime.
///
/// Works under any executor (it only uses the task's waker). A `Sleep`
/// dropped before its deadline cancels its wake-up.
///
/// If the OS refuses to start the timer thread (the process is out of
/// threads), a sleep still never ends early and never panics: it wakes
/// itself to be polled again (yielding to other queued work) until its
/// deadline, trying to start the thread at each poll. That burns CPU, but
/// only while threads cannot be had.
///
/// # Examples
///
/// ```
/// use futurepool::ThreadPool;
/// use std::time::{Duration, Instant};
///
/// let pool = ThreadPool::new(1).unwrap();
/// let start = Instant::now();
/// let slept = pool.spawn_async(async move {
///     futurepool::sleep(Duration::from_millis(20)).await;
///     start.elapsed()
/// });
/// // The worker is free while the task sleeps.
/// assert_eq!(pool.apply(|| "meanwhile"), Ok("meanwhile"));
/// assert!(slept.get().unwrap() >= Duration::from_millis(20));
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    // A duration too long to represent is as good as forever.
    let deadline = Instant::now()
        .checked_add(duration)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(60 * 60 * 24 * 365 * 100));
    sleep_until(deadline)
}

/// The future returned by [`sleep`] and [`sleep_until`].
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    registered: Option<(Arc<Alarm>, TimerId)>,
}

/// What the timer's callback and the future share.
struct Alarm {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
    /// The pool whose async task first polled the sleep (0: none), whose
    /// panic handler hears of a waker that panics.
    pool: u32,
}

impl Alarm {
    fn ring(&self) {
        self.fired.store(true, Ordering::Release);
        let waker = lock_std(&self.waker).take();
        if let Some(waker) = waker {
            crate::core::panics::run_reporting(self.pool, || waker.wake());
        }
    }
}

impl Sleep {
    /// When this sleep ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_elapsed() {
            return Poll::Ready(());
        }
        match &self.registered {
            Some((alarm, _)) => {
                if alarm.fired.load(Ordering::Acquire) {
                    return Poll::Ready(());
                }
                *lock_std(&alarm.waker) = Some(cx.waker().clone());
                // The alarm may have rung between the check and storing the
                // waker (then it took no waker): look again.
                if alarm.fired.load(Ordering::Acquire) {
                    return Poll::Ready(());
                }
            }
            None => {
                let alarm = Arc::new(Alarm {
                    fired: AtomicBool::new(false),
                    waker: Mutex::new(Some(cx.waker().clone())),
                    pool: crate::core::live::Polling::pool(),
                });
                let ringer = alarm.clone();
                let Some(timer) = timer() else {
                    // No timer thread: be polled again (see `sleep`).
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                };
                match timer.schedule(self.deadline, Box::new(move || ringer.ring())) {
                    Some(id) => self.registered = Some((alarm, id)),
                    // The process-wide timer never shuts down; if it ever
                    // did, ending the sleep beats hanging the task.
                    None => return Poll::Ready(()),
                }
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some((alarm, id)) = self.registered.take() {
            if !alarm.fired.load(Ordering::Acquire) {
                if let Some(timer) = SLEEP_TIMER.get() {
                    timer.cancel(id);
                }
            }
        }
    }
}

impl std::fmt::Debug for Sleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("registered", &self.registered.is_some())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_sleep_cancels_its_wake_up() {
        let mut sleep = Box::pin(sleep(Duration::from_secs(3600)));
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        let (alarm, _) = sleep.registered.as_ref().unwrap();
        let alarm = alarm.clone();
        assert_eq!(Arc::strong_count(&alarm), 3, "the future, the timer, us");
        drop(sleep);
        assert_eq!(
            Arc::strong_count(&alarm),
            1,
            "the timer entry (and its callback) was dropped"
        );
    }

    #[test]
    fn an_elapsed_sleep_is_ready_without_the_timer() {
        let mut sleep = Box::pin(sleep(Duration::ZERO));
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(sleep.as_mut().poll(&mut cx).is_ready());
        assert!(sleep.registered.is_none());
    }
}
