//! Failed builds leave no thread behind. One test alone in its binary, so
//! the process's thread count (from /proc/self/task) is not disturbed by
//! other tests running in parallel.

use std::time::{Duration, Instant};

use futurepool::{BuildErrorKind, Builder};

fn threads_now() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/task").ok()?.count())
}

/// The thread count once it settles at `expected`. A joined thread can stay
/// listed for a moment (pthread_join returns when the thread has cleared
/// its id, slightly before the kernel reaps it), so look again, boundedly.
fn threads_settled(expected: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = threads_now().unwrap();
        if n == expected || Instant::now() >= deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn failed_builds_leave_no_thread_behind() {
    let Some(before) = threads_now() else {
        eprintln!("no /proc/self/task here: thread counting skipped");
        return;
    };
    for bytes in [usize::MAX, 1 << 46] {
        let err = Builder::new()
            .num_threads(4)
            .stack_size(bytes)
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), BuildErrorKind::Spawn, "{err}");
        assert_eq!(threads_settled(before), before, "after stack_size {bytes}");
    }
    // Workers 0..7 start; worker 5's initializer panics after the others
    // are already running: build must stop and join all of them.
    let err = Builder::new()
        .num_threads(8)
        .initializer(|i| {
            if i == 5 {
                panic!("init {i} failed");
            }
        })
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), BuildErrorKind::InitializerPanicked);
    assert!(err.to_string().contains("init 5 failed"), "{err}");
    assert_eq!(
        threads_settled(before),
        before,
        "after a panicking initializer"
    );
    // And a pool that worked gives its threads back on join.
    let pool = Builder::new().num_threads(3).build().unwrap();
    assert_eq!(threads_settled(before + 3), before + 3);
    assert!(pool.join_timeout(Duration::from_secs(30)));
    drop(pool);
    assert_eq!(threads_settled(before), before);
}
