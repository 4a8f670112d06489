//! loom models of the fork deque (`core/forks.rs`): an owner that pushes
//! and takes back, against a thief that steals, and every entry taken
//! exactly once. In the plain form (a fence in every take-back), and in
//! the asymmetric form's acknowledgement path: take-backs skip their fence
//! while no thief is announced, and a thief steals only once the owner
//! has acknowledged it (the model leaves out the `membarrier` fall-back,
//! which loom cannot express: a thief not acknowledged in time gives up).
//!
//! Each of these mutations fails a model: a relaxed read of the thieves'
//! count, no fence before an acknowledgement, a thief that steals without
//! waiting for one, a take-back with no fence in the plain form.

use std::sync::Arc;

use crossbeam_deque::Steal;
use loom::thread;

use super::model;
use crate::core::forks::{Forks, Thieves, MODEL_ASYMMETRIC};
use crate::core::job_ref::{JobRef, Numbered};

/// Which of `jobs` the entry is.
fn which(entry: &JobRef, jobs: &[Arc<Numbered>]) -> usize {
    jobs.iter()
        .position(|j| Arc::as_ptr(j) as usize == entry.addr())
        .expect("one of the jobs")
}

/// What the owner does, and the thief.
struct Scenario {
    /// Entries queued before the thief starts.
    queued: usize,
    /// Whether the owner takes one back and queues one more (the ring, two
    /// entries in the model, grows) before it takes back the rest.
    requeue: bool,
    /// The thief's announcements, and its steals under each.
    announcements: usize,
    steals: usize,
}

/// Runs `scenario`: each entry is taken once, by the owner or the thief.
fn check(scenario: Scenario, asymmetric: bool) {
    model(move || {
        MODEL_ASYMMETRIC.with(|m| m.set(asymmetric));
        let total = scenario.queued + usize::from(scenario.requeue);
        let jobs: Arc<Vec<_>> = Arc::new((0..total).map(|_| Arc::new(Numbered)).collect());
        let thieves = loom::sync::Arc::new(Thieves::new());
        let forks = Forks::new();
        for job in jobs.iter().take(scenario.queued) {
            forks.push(JobRef::new(job.clone()));
        }
        let thief = {
            let (stealer, thieves, jobs) = (forks.stealer(), thieves.clone(), jobs.clone());
            let (announcements, steals) = (scenario.announcements, scenario.steals);
            thread::spawn(move || {
                MODEL_ASYMMETRIC.with(|m| m.set(asymmetric));
                let mut taken = Vec::new();
                for _ in 0..announcements {
                    let mut announced = None;
                    for _ in 0..steals {
                        if let Steal::Success(job) = stealer.steal(&thieves, &mut announced) {
                            taken.push(which(&job, &jobs));
                        }
                    }
                }
                taken
            })
        };
        let mut taken = Vec::new();
        if scenario.requeue {
            if let Some(job) = forks.pop(&thieves) {
                taken.push(which(&job, &jobs));
            }
            forks.push(JobRef::new(jobs[scenario.queued].clone()));
        }
        while let Some(job) = forks.pop(&thieves) {
            taken.push(which(&job, &jobs));
        }
        taken.extend(thief.join().unwrap());
        taken.sort_unstable();
        assert_eq!(
            taken,
            (0..total).collect::<Vec<_>>(),
            "each entry taken exactly once"
        );
    });
}

/// Two queued, one taken back and one more queued while a thief makes two
/// announcements of one steal each.
const REQUEUE: Scenario = Scenario {
    queued: 2,
    requeue: true,
    announcements: 2,
    steals: 1,
};

/// Three queued and taken back while a thief announced once steals twice:
/// the take-backs after the one that acknowledged the thief must fence,
/// or two steals and one unfenced take-back can take an entry twice.
const AFTER_ACKNOWLEDGING: Scenario = Scenario {
    queued: 3,
    requeue: false,
    announcements: 1,
    steals: 2,
};

#[test]
fn loom_forks_each_entry_is_taken_once() {
    check(REQUEUE, false);
    check(AFTER_ACKNOWLEDGING, false);
}

#[test]
fn loom_forks_take_backs_without_a_fence_are_covered_by_acknowledgements() {
    check(REQUEUE, true);
    check(AFTER_ACKNOWLEDGING, true);
}
