//! Deep nesting on every waiting path: a task that waits for a task that
//! waits for a task ... thousands of levels deep, on pools whose workers
//! have small stacks. Every wait of a worker runs other work on its own
//! stack, so each path must move to a fresh stack when the worker's runs
//! low; a path that does not either overflows (the test binary aborts) or
//! parks while the awaited task sits in its own deque (the bounded wait
//! fails).

mod common;

use std::sync::Arc;

use common::{within, LONG};
use futurepool::{as_completed, block_on, wait, ReturnWhen, ThreadPool};

/// How each level waits for the next.
#[derive(Clone, Copy, Debug)]
enum Path {
    Get,
    GetTimeout,
    Wait,
    BlockOn,
    Scope,
    ScopedJoin,
    WaitMany,
    AsCompleted,
    ImapUnordered,
}

/// `depth` nested levels, each waiting for the next through `path`;
/// returns `depth`.
fn nest(pool: Arc<ThreadPool>, depth: usize, path: Path) -> usize {
    if depth == 0 {
        return 0;
    }
    let next = {
        let pool = pool.clone();
        move || nest(pool, depth - 1, path)
    };
    let below = match path {
        Path::Get => pool.submit(next).get().unwrap(),
        Path::GetTimeout => pool.submit(next).get_timeout(LONG).unwrap(),
        Path::Wait => {
            let h = pool.submit(next);
            h.wait();
            h.get().unwrap()
        }
        Path::BlockOn => block_on(pool.submit(next)).unwrap(),
        Path::Scope => {
            let mut below = 0;
            pool.scope(|s| {
                s.spawn(|| below = next());
            });
            below
        }
        Path::ScopedJoin => pool.scope(|s| s.spawn(next).join().unwrap()),
        Path::WaitMany => {
            let handles = [pool.submit(next)];
            let (done, _) = wait(&handles, None, ReturnWhen::AllCompleted);
            assert_eq!(done, [0]);
            let [h] = handles;
            h.get().unwrap()
        }
        Path::AsCompleted => as_completed([pool.submit(next)]).next().unwrap().1.unwrap(),
        Path::ImapUnordered => {
            let p = pool.clone();
            pool.imap_unordered(move |_: u8| nest(p.clone(), depth - 1, path), [0u8])
                .next()
                .unwrap()
                .unwrap()
        }
    };
    below + 1
}

/// Runs a chain `depth` deep on a pool of `threads` workers with 64 KiB
/// stacks (the smallest the builder accepts), from outside the pool.
fn chain_on_small_stacks(threads: usize, depth: usize, path: Path) {
    let pool = Arc::new(
        ThreadPool::builder()
            .num_threads(threads)
            .stack_size(64 << 10)
            .build()
            .unwrap(),
    );
    let got = within(
        &format!("{path:?} chain on {threads} thread(s)"),
        move || {
            let p = pool.clone();
            pool.submit(move || nest(p, depth, path))
                .get_timeout(LONG)
                .unwrap()
        },
    );
    assert_eq!(got, depth, "{path:?} on {threads} thread(s)");
}

const DEPTH: usize = 2_000;

macro_rules! deep_tests {
    ($($name:ident: $path:expr,)*) => {$(
        #[test]
        fn $name() {
            for threads in [1, 2] {
                chain_on_small_stacks(threads, DEPTH, $path);
            }
        }
    )*};
}

deep_tests! {
    nested_get_on_small_stacks: Path::Get,
    nested_get_timeout_on_small_stacks: Path::GetTimeout,
    nested_wait_on_small_stacks: Path::Wait,
    nested_block_on_on_small_stacks: Path::BlockOn,
    nested_scope_on_small_stacks: Path::Scope,
    nested_scoped_join_on_small_stacks: Path::ScopedJoin,
    nested_wait_many_on_small_stacks: Path::WaitMany,
    nested_as_completed_on_small_stacks: Path::AsCompleted,
    nested_imap_unordered_on_small_stacks: Path::ImapUnordered,
}

/// The default 2 MiB stacks and a chain well past what fits on one.
#[test]
fn nested_get_5000_deep_on_default_stacks() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let got = within("5,000-deep get chain", move || {
        let p = pool.clone();
        pool.submit(move || nest(p, 5_000, Path::Get))
            .get_timeout(LONG)
            .unwrap()
    });
    assert_eq!(got, 5_000);
}
