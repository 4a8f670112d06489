//! loom models of the park/wake protocol (`core/parking.rs`): a parked
//! worker is never left with queued work, and workers leave on shutdown
//! after taking every job.

use std::sync::Arc;

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

use super::model;
use crate::core::parking::Parking;

#[test]
fn loom_sleeping_worker_is_never_left_with_queued_work() {
    model(|| {
        let parking = Arc::new(Parking::new(1));
        let queued = Arc::new(AtomicBool::new(false));
        let worker = {
            let (parking, queued) = (parking.clone(), queued.clone());
            thread::spawn(move || {
                let me = thread::current();
                let flag = Parking::flag();
                // The worker's loop: look for work, sleep if none.
                while !queued.load(Ordering::SeqCst) {
                    parking.park(&flag, &me, || queued.load(Ordering::SeqCst), None);
                }
            })
        };
        // Producer: make work visible, then wake.
        queued.store(true, Ordering::SeqCst);
        parking.wake_one();
        worker.join().unwrap();
    });
}

// ---- two workers, two jobs, then shutdown ---------------------------------

#[test]
fn loom_two_workers_take_every_job_and_all_leave_on_shutdown() {
    model(|| {
        let parking = Arc::new(Parking::new(2));
        let jobs = Arc::new(AtomicUsize::new(0));
        let done_jobs = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicBool::new(false));
        let take = |jobs: &AtomicUsize| {
            let mut n = jobs.load(Ordering::SeqCst);
            while n > 0 {
                match jobs.compare_exchange(n, n - 1, Ordering::SeqCst, Ordering::SeqCst) {
                    Ok(_) => return true,
                    Err(now) => n = now,
                }
            }
            false
        };
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (parking, jobs, done_jobs, closed) = (
                    parking.clone(),
                    jobs.clone(),
                    done_jobs.clone(),
                    closed.clone(),
                );
                thread::spawn(move || {
                    let me = thread::current();
                    let flag = Parking::flag();
                    loop {
                        if take(&jobs) {
                            done_jobs.fetch_add(1, Ordering::SeqCst);
                            continue;
                        }
                        if closed.load(Ordering::SeqCst) {
                            loom::sync::atomic::fence(Ordering::SeqCst);
                            if jobs.load(Ordering::SeqCst) == 0 {
                                return;
                            }
                            continue;
                        }
                        parking.park(
                            &flag,
                            &me,
                            || closed.load(Ordering::SeqCst) || jobs.load(Ordering::SeqCst) > 0,
                            None,
                        );
                    }
                })
            })
            .collect();
        // Producer: one job, then shutdown (close + wake everyone).
        jobs.fetch_add(1, Ordering::SeqCst);
        parking.wake_one();
        closed.store(true, Ordering::SeqCst);
        parking.wake_all();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(
            done_jobs.load(Ordering::SeqCst),
            1,
            "the job ran before exit"
        );
        assert_eq!(jobs.load(Ordering::SeqCst), 0);
    });
}
