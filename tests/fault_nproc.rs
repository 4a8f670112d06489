//! The OS refusing threads (RLIMIT_NPROC): an elastic pool loses no task
//! when it cannot grow (its existing worker takes the work), a pool with
//! no thread at all resolves its handles to a clear error, and a fixed
//! pool's build fails cleanly.
//!
//! The test re-runs itself in a child process under a low RLIMIT_NPROC
//! (through util-linux's `prlimit`; as root, which the limit does not
//! bind, the child runs as `nobody` through `setpriv`). The child first fills the limit with
//! idle threads and frees exactly one, so the numbers do not depend on
//! how many threads the test harness itself uses.

mod common;

use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use common::{Gate, LONG};
use futurepool::{BuildErrorKind, Builder, TaskError};

const CHILD: &str = "FUTUREPOOL_NPROC_CHILD";
const PASSED: &str = "nproc child scenario passed";

#[test]
fn thread_start_failures_under_rlimit_nproc() {
    if std::env::var_os(CHILD).is_some() {
        child();
        println!("{PASSED}");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let mut cmd = if is_root {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "prlimit",
        ]);
        c
    } else {
        Command::new("prlimit")
    };
    cmd.args(["--nproc=48:48", "--"])
        .arg(&exe)
        .args([
            "--exact",
            "thread_start_failures_under_rlimit_nproc",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1");
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => {
            eprintln!("cannot run the child ({e}): RLIMIT_NPROC scenario skipped");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(PASSED),
        "child failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

/// Runs under the low limit.
fn child() {
    // Fill the limit with idle threads, then free one.
    let mut fillers = Vec::new();
    for _ in 0..10_000 {
        let (release, parked) = mpsc::channel::<()>();
        match std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn(move || {
                let _ = parked.recv_timeout(LONG * 3);
            }) {
            Ok(h) => fillers.push((release, h)),
            Err(_) => break,
        }
    }
    assert!(
        !fillers.is_empty() && fillers.len() < 10_000,
        "the limit did not bind ({} threads started)",
        fillers.len()
    );
    let blocked_without_limit = std::thread::Builder::new().spawn(|| ());
    assert!(blocked_without_limit.is_err(), "at the limit now");
    let (release, freed) = fillers.pop().unwrap();
    drop(release);
    freed.join().unwrap();
    // Give the kernel a moment to drop the exited thread from the count.
    let mut probe = None;
    for _ in 0..1000 {
        match std::thread::Builder::new().spawn(|| ()) {
            Ok(h) => {
                probe = Some(h);
                break;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    probe.expect("one thread may start again").join().unwrap();
    std::thread::sleep(Duration::from_millis(20));

    // An elastic pool gets the one free thread; it cannot grow further.
    let pool = Builder::new().max_threads(4).build().unwrap();
    let gate = Gate::new();
    let g = gate.clone();
    let first = pool.submit(move || g.wait());
    let rest: Vec<_> = (0..5).map(|i| pool.submit(move || i)).collect();
    // A start that is failing holds a second place for as long as the
    // spawn takes (the worker that took a batch of these tasks may be
    // trying to start a peer right now): wait for it to end, then the
    // pool has its one thread, and never had more.
    let deadline = std::time::Instant::now() + LONG;
    let mut stats = pool.stats();
    while stats.threads != 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
        stats = pool.stats();
    }
    assert_eq!((stats.threads, stats.peak_threads), (1, 1), "{stats:?}");
    // A second pool has no thread at all: its task gets a clear error.
    let starved = Builder::new().max_threads(2).build().unwrap();
    let err = starved.submit(|| ()).get_timeout(LONG).unwrap_err();
    assert!(matches!(err, TaskError::ThreadStart(_)), "{err:?}");
    assert!(err.to_string().contains("failed to spawn"), "{err}");
    // A fixed pool cannot even be built.
    let err = Builder::new().num_threads(2).build().unwrap_err();
    assert_eq!(err.kind(), BuildErrorKind::Spawn, "{err}");
    // The existing worker runs everything queued.
    gate.open();
    assert_eq!(first.get_timeout(LONG), Ok(true));
    for (i, h) in rest.into_iter().enumerate() {
        assert_eq!(h.get_timeout(LONG), Ok(i));
    }
    pool.join();
    for (release, f) in fillers {
        drop(release);
        f.join().unwrap();
    }
}
