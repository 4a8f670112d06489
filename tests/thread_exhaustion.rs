//! A process that cannot start threads: building a pool is an error, and
//! the parts that start threads on demand (a pool's timer, the sleep
//! timer, overflow threads for deep waits) leave every handle resolvable
//! and never panic.
//!
//! Thread creation is refused with `RLIMIT_NPROC` (as a non-root user:
//! root is exempt from it, so the child drops to `nobody` first). The
//! limit cannot be lifted again, so the checks run in a child process: the
//! test re-runs its own binary with an environment variable set.
#![cfg(not(loom))] // libc is not a dev-dependency under loom

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futurepool::{BuildErrorKind, Builder, TaskError, ThreadPool};

const CHILD: &str = "FUTUREPOOL_THREAD_EXHAUSTION_CHILD";
const LONG: Duration = Duration::from_secs(60);

#[test]
fn thread_exhaustion() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "thread_exhaustion",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + LONG * 2;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child did not finish in time (deadlock?)");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(status.success(), "child failed: {status}");
    assert!(text.contains("exhaustion checks done"), "{text}");
}

/// Refuses every new thread of this process from now on; false if this
/// system does not let us (then the checks are skipped, and say so).
fn refuse_threads() -> bool {
    // SAFETY: plain libc calls with valid arguments; no memory is shared.
    unsafe {
        if libc::geteuid() == 0 {
            let nobody = 65534;
            if libc::setgid(nobody) != 0 || libc::setuid(nobody) != 0 {
                return false;
            }
        }
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::setrlimit(libc::RLIMIT_NPROC, &none) != 0 {
            return false;
        }
    }
    std::thread::Builder::new().spawn(|| ()).is_err()
}

fn child() {
    // Built while threads can still be had: 2 workers with small stacks.
    let pool = Builder::new()
        .num_threads(2)
        .stack_size(512 << 10)
        .build()
        .unwrap();
    if !refuse_threads() {
        println!("thread creation cannot be refused here: checks skipped");
        println!("exhaustion checks done");
        return;
    }

    // Building is an error, with nothing left behind.
    let err = ThreadPool::new(2).unwrap_err();
    assert_eq!(err.kind(), BuildErrorKind::Spawn, "{err}");
    assert!(futurepool::try_global().is_err());
    // `join` outside any pool, with no global pool to be had: it runs both
    // closures here instead of panicking.
    let local = [1u64, 2];
    assert_eq!(futurepool::join(|| local[0], || local[1]), (1, 2));

    // The pool built before keeps working.
    assert_eq!(pool.submit(|| 1).get_timeout(LONG), Ok(1));

    // Its timer thread cannot start: delayed and periodic tasks resolve
    // with an error that says so.
    let delayed = pool.submit_after(Duration::from_millis(1), || 1);
    let msg = delayed.get_timeout(LONG).unwrap_err();
    assert!(msg.to_string().contains("timer thread"), "{msg}");
    let periodic =
        pool.submit_periodic(Duration::from_millis(1), || std::ops::ControlFlow::Break(1));
    assert!(periodic.get_timeout(LONG).unwrap_err().is_panic());

    // The sleep timer cannot start: sleeps still end, on time, no panic.
    let start = Instant::now();
    let slept = pool.spawn_async(async {
        futurepool::sleep(Duration::from_millis(20)).await;
        7
    });
    assert_eq!(slept.get_timeout(LONG), Ok(7));
    assert!(start.elapsed() >= Duration::from_millis(20));
    futurepool::block_on(futurepool::sleep(Duration::from_millis(5)));

    // Waits nested deeper than a stack holds cannot move to overflow
    // threads: no crash, and every handle resolves (here each level gives
    // up after a while, so the chain unwinds with errors at worst).
    let pool = std::sync::Arc::new(pool);
    let top = chain(pool.clone(), 2_000);
    assert!(
        matches!(top, Ok(2_000) | Err(TaskError::Timeout)),
        "{top:?}"
    );
    assert_eq!(pool.submit(|| 2).get_timeout(LONG), Ok(2));
    println!("exhaustion checks done");
}

/// Nested `submit` + `get_timeout`, `depth` levels deep.
fn chain(pool: std::sync::Arc<ThreadPool>, depth: usize) -> Result<usize, TaskError> {
    if depth == 0 {
        return Ok(0);
    }
    let p = pool.clone();
    pool.submit(move || chain(p, depth - 1))
        .get_timeout(Duration::from_secs(2))
        .and_then(|inner| inner)
        .map(|n| n + 1)
}
