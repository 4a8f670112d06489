//! loom models of the elastic thread protocol (`core/threads.rs`, with the
//! real count word of `core/counts.rs` and the real `core/parking.rs`): a
//! worker leaving the count, entering `blocking` or searching before it
//! parks never strands a job a submitter pushes at the same moment.
//!
//! A "queue" is a job counter; "starting a worker" spawns a loom thread
//! that takes a job. Each model asserts that the job was taken.

use std::sync::Arc;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use super::model;
use crate::core::counts::{Counts, CountsCell};
use crate::core::parking::Parking;
use crate::core::sync::fence;

struct Pool {
    queued: AtomicUsize,
    taken: AtomicUsize,
    counts: CountsCell,
    parking: Parking,
}

impl Pool {
    fn new(alive: usize, cap: usize, target: usize) -> Arc<Pool> {
        Arc::new(Pool {
            queued: AtomicUsize::new(0),
            taken: AtomicUsize::new(0),
            counts: CountsCell::new(Counts::new(
                alive,
                cap as isize - alive as isize,
                target as isize - alive as isize,
            )),
            parking: Parking::new(2),
        })
    }

    fn take(&self) -> bool {
        let mut n = self.queued.load(Ordering::SeqCst);
        while n > 0 {
            match self
                .queued
                .compare_exchange(n, n - 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => {
                    self.taken.fetch_add(1, Ordering::SeqCst);
                    return true;
                }
                Err(now) => n = now,
            }
        }
        false
    }

    /// `Registry::announce_work` with `Threads::unserved`: wake a parked
    /// worker, else start one if the word allows. Returns the started
    /// worker's thread, which takes a job (it starts spare and looks).
    fn announce(self: &Arc<Self>) -> Option<thread::JoinHandle<()>> {
        if self.parking.wake_one() {
            return None;
        }
        if !self.counts.load().may_grow() {
            return None;
        }
        self.counts.update(|c| c.may_grow().then(|| c.reserved()))?;
        let pool = self.clone();
        Some(thread::spawn(move || {
            pool.take();
        }))
    }

    /// A submitter: push, then announce.
    fn submit(self: &Arc<Self>) -> Option<thread::JoinHandle<()>> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        self.announce()
    }
}

#[test]
fn loom_a_retiring_worker_and_a_submission_never_strand_the_job() {
    model(|| {
        // One worker, cap 1, minimum 0; its keep-alive just ran out.
        let pool = Pool::new(1, 1, 1);
        let worker = {
            let pool = pool.clone();
            thread::spawn(move || {
                // `Threads::try_retire` for a timed-out worker.
                let left = pool.counts.update(|c| (c.alive() > 0).then(|| c.exited()));
                assert!(left.is_some());
                fence(crate::core::sync::Ordering::SeqCst);
                if pool.queued.load(Ordering::SeqCst) > 0 {
                    let back = pool
                        .counts
                        .update(|c| (c.cap_room() > 0).then(|| c.rejoined()));
                    if back.is_some() {
                        // It stays, and its loop takes the job.
                        assert!(pool.take());
                        return None;
                    }
                    return pool.announce();
                }
                None
            })
        };
        let started = pool.submit();
        let started_by_worker = worker.join().unwrap();
        for t in started.into_iter().chain(started_by_worker) {
            t.join().unwrap();
        }
        assert_eq!(pool.taken.load(Ordering::SeqCst), 1, "the job was stranded");
        assert!(pool.counts.load().alive() <= 1, "never above the cap");
    });
}

#[test]
fn loom_a_worker_entering_blocking_and_a_submission_start_a_stand_in() {
    model(|| {
        // A fixed pool of one (cap 2); its worker is about to block.
        let pool = Pool::new(1, 2, 1);
        let worker = {
            let pool = pool.clone();
            thread::spawn(move || {
                // `Threads::begin_blocking`.
                pool.counts.begin_blocking();
                fence(crate::core::sync::Ordering::SeqCst);
                if pool.queued.load(Ordering::SeqCst) > 0 {
                    return pool.announce();
                }
                None
                // ... and it blocks for the rest of the model.
            })
        };
        let started = pool.submit();
        let started_by_worker = worker.join().unwrap();
        let stand_ins: Vec<_> = started.into_iter().chain(started_by_worker).collect();
        assert_eq!(stand_ins.len(), 1, "exactly one stand-in is started");
        for t in stand_ins {
            t.join().unwrap();
        }
        assert_eq!(pool.taken.load(Ordering::SeqCst), 1, "the job was stranded");
    });
}

#[test]
fn loom_a_searching_worker_that_parks_never_sleeps_through_a_job_it_was_counted_for() {
    model(|| {
        // An elastic pool (cap 2) with one worker, searching (spare).
        let pool = Pool::new(1, 2, 2);
        pool.counts.begin_search();
        let worker = {
            let pool = pool.clone();
            thread::spawn(move || {
                let me = thread::current();
                let flag = Parking::flag();
                let mut searching = true;
                loop {
                    if pool.take() {
                        if searching {
                            pool.counts.end_search();
                        }
                        return;
                    }
                    // The idle wait: park, ending the search once counted
                    // as parked (`Parking::park_with`).
                    pool.parking.park_with(
                        &flag,
                        &me,
                        || {
                            if std::mem::take(&mut searching) {
                                pool.counts.end_search();
                            }
                        },
                        // In the model, a job taken elsewhere ends the
                        // worker's part too (the main thread wakes it).
                        || {
                            pool.queued.load(Ordering::SeqCst) > 0
                                || pool.taken.load(Ordering::SeqCst) > 0
                        },
                        None,
                    );
                    if pool.taken.load(Ordering::SeqCst) > 0 {
                        return;
                    }
                }
            })
        };
        let started = pool.submit();
        if let Some(t) = started {
            t.join().unwrap();
            // A stand-in took the job: the worker may still be parked.
            pool.parking.wake_all();
        }
        worker.join().unwrap();
        assert_eq!(pool.taken.load(Ordering::SeqCst), 1, "the job was stranded");
    });
}
