//! Waiting for the pool to be idle: [`ThreadPool::wait_idle`](crate::ThreadPool::wait_idle) (the
//! `threadpool`-style join that keeps the pool open).
//!
//! "Idle" means every queue is empty, every worker is parked for lack of
//! work and no async task is alive (a suspended future holds no worker but
//! is not done), so every task submitted before the call has finished (tasks
//! submitted meanwhile may be waited for too). No counter on the submit
//! path is needed: each worker owns an activity mark (in its stats block),
//! odd while it is active and even while it is parked, bumped at each
//! change. A waiter reads all marks, then the queues, then the marks
//! again: if no worker was active in either read and no mark changed in
//! between, no worker ran or took anything in between, and no entry was
//! queued (only active workers and outside submitters queue work; a
//! submission racing with the call may or may not be waited for). This is
//! the classic double collect, and it cannot see a job "in flight" between
//! a queue and a worker as idle: a worker is marked active before it looks
//! for work.
//!
//! Blocking without polling: a worker that parks, or exits, checks (after
//! a SeqCst fence that pairs with the waiter's registration) whether
//! anyone waits for idleness and unparks them to look again. That costs a
//! relaxed load per park, nothing per task.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::core::counters::WorkerCounters;
use crate::core::registry::Registry;
use crate::core::sync::{
    current_thread, fence, lock, park_until, AtomicUsize, Mutex, Ordering, Thread,
};

/// Threads blocked in `wait_idle`.
#[derive(Default)]
pub(crate) struct IdleWaiters {
    waiting: AtomicUsize,
    threads: Mutex<Vec<Thread>>,
}

/// Marks a worker (by its counters) active (about to look for work) or
/// inactive (about to park or exit); an inactive mark wakes `wait_idle`
/// callers. A slot without a worker is inactive.
pub(crate) fn set_active(registry: &Registry, counters: &WorkerCounters, active: bool) {
    let mark = &counters.activity;
    let now = mark.load(Ordering::Relaxed);
    debug_assert_eq!(now % 2 == 1, !active, "activity mark out of step");
    mark.store(now + 1, Ordering::SeqCst);
    if !active {
        wake_waiters(registry);
    }
}

/// After a change that may make the pool idle (a worker parked or left,
/// an async task ended): unparks `wait_idle` callers to look again.
pub(crate) fn wake_waiters(registry: &Registry) {
    // Pairs with the fence after a waiter registers: either it sees the
    // change, or we see it waiting.
    fence(Ordering::SeqCst);
    if registry.idle.waiting.load(Ordering::Relaxed) > 0 {
        for thread in lock(&registry.idle.threads).iter() {
            thread.unpark();
        }
    }
}

/// The activity marks, or `None` if a worker (other than `except`) is
/// active.
fn marks(registry: &Registry, except: Option<usize>) -> Option<Vec<u64>> {
    registry
        .threads
        .slots
        .iter()
        .map(|slot| &slot.counters)
        .enumerate()
        .map(|(i, c)| {
            if Some(i) == except {
                return Some(0);
            }
            let mark = c.activity.load(Ordering::SeqCst);
            (mark % 2 == 0).then_some(mark)
        })
        .collect()
}

/// Whether the pool is idle (see the module docs); `except` is the
/// calling worker, which is busy waiting and does not count.
fn is_idle(registry: &Registry, except: Option<usize>) -> bool {
    // A live async task is not done, even while it is suspended (holding
    // no worker); the caller's own, if it is one, does not count.
    let own = usize::from(crate::core::live::Polling::here(registry.id()));
    if registry.async_tasks.count() > own {
        return false;
    }
    let Some(before) = marks(registry, except) else {
        return false;
    };
    fence(Ordering::SeqCst);
    if registry.has_queued() {
        return false;
    }
    fence(Ordering::SeqCst);
    marks(registry, except).is_some_and(|after| after == before)
}

fn wait_idle_until(registry: &Registry, deadline: Option<Instant>) -> bool {
    let me = crate::core::worker::index_in(registry);
    let thread = current_thread();
    lock(&registry.idle.threads).push(thread.clone());
    registry.idle.waiting.fetch_add(1, Ordering::SeqCst);
    fence(Ordering::SeqCst);
    let idle = loop {
        if me.is_some() {
            // A worker waiting for its own pool runs the queued work itself
            // (it may be the only one who can).
            while crate::core::wait::help_once(registry) == Some(true) {}
        }
        if is_idle(registry, me) {
            break true;
        }
        let mut until = deadline;
        if me.is_some() {
            // Work pushed while this worker looks away wakes a parked
            // worker, not this one: look again soon.
            let soon = Instant::now() + Duration::from_millis(5);
            until = Some(deadline.map_or(soon, |d| d.min(soon)));
        }
        if !park_until(until) && until == deadline {
            break is_idle(registry, me);
        }
    };
    registry.idle.waiting.fetch_sub(1, Ordering::SeqCst);
    let id = thread.id();
    lock(&registry.idle.threads).retain(|t| t.id() != id);
    idle
}

pub(crate) fn wait_idle(registry: &Arc<Registry>) {
    wait_idle_until(registry, None);
}

pub(crate) fn wait_idle_timeout(registry: &Arc<Registry>, timeout: Duration) -> bool {
    wait_idle_until(registry, Instant::now().checked_add(timeout))
}
