//! Delayed and periodic tasks: `submit_after`, `submit_periodic`. Every
//! wait is bounded; order is proven with gates and recorded sequences.

mod common;

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::{hold_workers, LONG};
use futurepool::{TaskError, ThreadPool};

/// Polls `cond` for up to LONG; false if it never held.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + LONG;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}

#[test]
fn a_delayed_task_runs_no_earlier_than_its_delay() {
    let pool = ThreadPool::new(2).unwrap();
    let start = Instant::now();
    let delay = Duration::from_millis(30);
    let handle = pool.submit_after(delay, move || start.elapsed());
    assert!(!handle.ready());
    let elapsed = handle.get_timeout(LONG).unwrap();
    assert!(elapsed >= delay, "ran after {elapsed:?}");
}

#[test]
fn timers_fire_in_deadline_order() {
    let pool = ThreadPool::new(1).unwrap();
    let held = hold_workers(&pool);
    let order = Arc::new(Mutex::new(Vec::new()));
    // Submitted out of order; all come due while the worker is held, so
    // the queue order is the firing order.
    let handles: Vec<_> = [30u64, 10, 40, 20, 0]
        .into_iter()
        .map(|ms| {
            let order = order.clone();
            pool.submit_after(Duration::from_millis(ms), move || {
                order.lock().unwrap().push(ms)
            })
        })
        .collect();
    assert!(eventually(
        || pool.stats().scheduled == 0 && pool.stats().queued == 5
    ));
    held.release();
    for h in handles {
        h.get_timeout(LONG).unwrap();
    }
    assert_eq!(*order.lock().unwrap(), [0, 10, 20, 30, 40]);
}

#[test]
fn a_cancelled_timer_never_runs_and_releases_its_closure_at_once() {
    let pool = ThreadPool::new(1).unwrap();
    let captured = Arc::new(());
    let held = captured.clone();
    let ran = Arc::new(AtomicBool::new(false));
    let ran2 = ran.clone();
    let handle = pool.submit_after(Duration::from_secs(3600), move || {
        let _held = held;
        ran2.store(true, Ordering::SeqCst);
    });
    assert_eq!(pool.stats().scheduled, 1);
    assert!(handle.cancel());
    assert!(handle.cancelled());
    assert_eq!(Arc::strong_count(&captured), 1, "closure dropped by cancel");
    assert_eq!(pool.stats().scheduled, 0, "the timer entry is gone");
    assert_eq!(handle.get(), Err(TaskError::Cancelled));
    pool.join();
    assert!(!ran.load(Ordering::SeqCst));
    assert_eq!(pool.stats().cancelled, 1);
}

#[test]
fn closing_the_pool_ends_pending_timers() {
    let pool = ThreadPool::builder()
        .num_threads(2)
        .thread_name("closetimers")
        .build()
        .unwrap();
    let delayed = pool.submit_after(Duration::from_secs(3600), || 1);
    let periodic = pool.submit_periodic(Duration::from_secs(3600), || {
        ControlFlow::<u32>::Continue(())
    });
    pool.close();
    assert_eq!(delayed.get_timeout(LONG), Err(TaskError::Cancelled));
    assert_eq!(periodic.get_timeout(LONG), Err(TaskError::Cancelled));
    pool.join();
    assert_eq!(pool.stats().scheduled, 0);
    assert_eq!(
        pool.submit_after(Duration::ZERO, || 2).get_timeout(LONG),
        Err(TaskError::PoolClosed)
    );
    // A joined thread can linger in /proc for a moment while the kernel
    // finishes its exit, so look until it is gone (bounded).
    #[cfg(target_os = "linux")]
    assert!(
        eventually(|| !thread_names().iter().any(|n| n.starts_with("closetimers"))),
        "join reaps the workers and the timer thread"
    );
}

#[test]
fn terminate_ends_pending_timers_too() {
    let pool = ThreadPool::new(1).unwrap();
    let delayed = pool.submit_after(Duration::from_secs(3600), || 1);
    pool.terminate();
    assert_eq!(delayed.get_timeout(LONG), Err(TaskError::Cancelled));
}

#[test]
fn a_periodic_task_runs_until_it_breaks() {
    let pool = ThreadPool::new(2).unwrap();
    let mut n = 0u32;
    let handle = pool.submit_periodic(Duration::from_millis(2), move || {
        n += 1;
        if n == 5 {
            ControlFlow::Break(n)
        } else {
            ControlFlow::Continue(())
        }
    });
    assert_eq!(handle.get_timeout(LONG), Ok(5));
    pool.wait_idle();
    assert_eq!(pool.stats().completed, 5, "one completed count per run");
}

#[test]
fn periodic_runs_never_overlap_even_when_they_overrun() {
    let pool = ThreadPool::new(4).unwrap();
    let inside = Arc::new(AtomicBool::new(false));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let (inside2, overlaps2) = (inside.clone(), overlaps.clone());
    let mut runs = 0;
    // Each run takes longer than the period.
    let handle = pool.submit_periodic(Duration::from_millis(1), move || {
        if inside2.swap(true, Ordering::SeqCst) {
            overlaps2.fetch_add(1, Ordering::SeqCst);
        }
        std::thread::sleep(Duration::from_millis(3));
        inside2.store(false, Ordering::SeqCst);
        runs += 1;
        if runs == 10 {
            ControlFlow::Break(runs)
        } else {
            ControlFlow::Continue(())
        }
    });
    assert_eq!(handle.get_timeout(LONG), Ok(10));
    assert_eq!(overlaps.load(Ordering::SeqCst), 0);
}

#[test]
fn cancelling_a_periodic_task_between_runs_stops_it_and_drops_its_closure() {
    let pool = ThreadPool::new(2).unwrap();
    let captured = Arc::new(());
    let held = captured.clone();
    let runs = Arc::new(AtomicUsize::new(0));
    let runs2 = runs.clone();
    let handle = pool.submit_periodic(Duration::from_secs(3600), move || {
        let _ = &held;
        runs2.fetch_add(1, Ordering::SeqCst);
        ControlFlow::<()>::Continue(())
    });
    assert!(handle.cancel());
    assert_eq!(Arc::strong_count(&captured), 1);
    assert_eq!(handle.get_timeout(LONG), Err(TaskError::Cancelled));
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(pool.stats().scheduled, 0);
}

#[test]
fn cancelling_a_periodic_task_during_a_run_ends_it_when_the_run_returns() {
    let pool = ThreadPool::new(2).unwrap();
    let (in_run_tx, in_run) = mpsc::channel();
    let (finish_tx, finish) = mpsc::channel::<()>();
    let finish = Mutex::new(finish);
    let runs = Arc::new(AtomicUsize::new(0));
    let runs2 = runs.clone();
    let handle = pool.submit_periodic(Duration::from_millis(1), move || {
        runs2.fetch_add(1, Ordering::SeqCst);
        in_run_tx.send(()).unwrap();
        finish.lock().unwrap().recv().unwrap();
        ControlFlow::<()>::Continue(())
    });
    in_run.recv_timeout(LONG).unwrap();
    assert!(handle.running());
    assert!(!handle.cancel(), "running: stop requested, not yet stopped");
    finish_tx.send(()).unwrap();
    assert_eq!(handle.get_timeout(LONG), Err(TaskError::Cancelled));
    assert_eq!(runs.load(Ordering::SeqCst), 1, "no run after the cancel");
}

#[test]
fn a_panicking_periodic_task_stops_with_the_panic() {
    let pool = ThreadPool::new(1).unwrap();
    let mut n = 0;
    let handle = pool.submit_periodic(Duration::from_millis(1), move || -> ControlFlow<()> {
        n += 1;
        if n == 3 {
            panic!("tick {n}");
        }
        ControlFlow::Continue(())
    });
    let err = handle.get_timeout(LONG).unwrap_err();
    assert_eq!(err.panic_message(), Some("tick 3"));
}

#[test]
fn a_zero_period_runs_back_to_back_without_starving_other_work() {
    let pool = ThreadPool::new(1).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let spinner = pool.submit_periodic(Duration::ZERO, move || {
        if stop2.load(Ordering::SeqCst) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    // Other work still gets its turn on the single worker.
    assert_eq!(pool.submit(|| 5).get_timeout(LONG), Ok(5));
    stop.store(true, Ordering::SeqCst);
    assert_eq!(spinner.get_timeout(LONG), Ok(()));
}

#[test]
fn an_idle_pool_with_a_pending_timer_parks_every_thread() {
    let pool = ThreadPool::builder()
        .num_threads(2)
        .thread_name("idletimer")
        .build()
        .unwrap();
    let handle = pool.submit_after(Duration::from_secs(3600), || ());
    assert!(eventually(|| pool.stats().idle_workers == 2));
    #[cfg(target_os = "linux")]
    assert!(
        eventually(|| thread_states("idletimer").iter().all(|s| s == "S")),
        "workers and timer thread all sleep: {:?}",
        thread_states("idletimer")
    );
    handle.cancel();
}

#[test]
fn a_huge_delay_is_not_an_overflow() {
    let pool = ThreadPool::new(1).unwrap();
    let handle = pool.submit_after(Duration::MAX, || ());
    assert!(!handle.wait_timeout(Duration::from_millis(5)));
    assert!(handle.cancel());
}

#[cfg(target_os = "linux")]
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .map(|s| s.trim().to_string())
        .collect()
}

/// The scheduler state letter of each thread whose name starts with
/// `prefix` (R running, S sleeping, ...).
#[cfg(target_os = "linux")]
fn thread_states(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = std::fs::read_to_string(path.join("comm")).ok()?;
            if !name.trim().starts_with(prefix) {
                return None;
            }
            let stat = std::fs::read_to_string(path.join("stat")).ok()?;
            // "pid (comm) S ...": the state follows the last ')'.
            let rest = &stat[stat.rfind(')')? + 2..];
            Some(rest[..1].to_string())
        })
        .collect()
}

#[test]
fn a_timer_submitted_while_the_pool_closes_still_ends_and_join_returns() {
    for _ in 0..50 {
        let pool = Arc::new(ThreadPool::new(1).unwrap());
        let submitter = {
            let pool = pool.clone();
            std::thread::spawn(move || pool.submit_after(Duration::from_secs(3600), || ()))
        };
        pool.close();
        let handle = submitter.join().unwrap();
        let outcome = handle.get_timeout(LONG).unwrap_err();
        assert!(
            matches!(outcome, TaskError::Cancelled | TaskError::PoolClosed),
            "{outcome:?}"
        );
        let (done_tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            pool.join();
            done_tx.send(()).unwrap();
        });
        done.recv_timeout(LONG)
            .expect("join returns: the timer thread was stopped");
    }
}
