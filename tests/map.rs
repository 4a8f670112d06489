//! map, map_async, map_chunked, imap, imap_unordered: order, chunking,
//! fail fast, laziness, cancellation on drop, bad arguments. Every wait is
//! bounded; order is proven with gates, not sleeps.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use futurepool::{IMap, TaskError, ThreadPool};

const LONG: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(20);

/// Runs `f` on a helper thread and waits a bounded time for its value, so
/// a hang fails the test instead of stalling it.
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(LONG).expect("timed out: the call hung")
}

/// Per-item gates: item `i` blocks in `pass(i)` until `open(i)`.
#[derive(Clone)]
struct Gates {
    rx: Arc<Vec<Mutex<Receiver<()>>>>,
    tx: Arc<Vec<Mutex<Sender<()>>>>,
}

impl Gates {
    fn new(n: usize) -> Self {
        let (tx, rx): (Vec<_>, Vec<_>) = (0..n)
            .map(|_| {
                let (t, r) = channel();
                (Mutex::new(t), Mutex::new(r))
            })
            .unzip();
        Gates {
            rx: Arc::new(rx),
            tx: Arc::new(tx),
        }
    }
    fn pass(&self, i: usize) {
        self.rx[i]
            .lock()
            .unwrap()
            .recv_timeout(LONG)
            .expect("gate never opened");
    }
    fn open(&self, i: usize) {
        self.tx[i].lock().unwrap().send(()).unwrap();
    }
}

// ---- map ------------------------------------------------------------------------

#[test]
fn map_keeps_input_order_for_many_items() {
    let pool = ThreadPool::new(4).unwrap();
    let out = pool.map(|x: u64| x * x + 1, 0..100_000u64).unwrap();
    let expected: Vec<u64> = (0..100_000u64).map(|x| x * x + 1).collect();
    assert_eq!(out, expected);
}

#[test]
fn map_of_an_empty_input_is_empty() {
    let pool = ThreadPool::new(2).unwrap();
    assert_eq!(pool.map(|x: u8| x, Vec::new()), Ok(vec![]));
    assert_eq!(pool.map_async(|x: u8| x, 0..0).get(), Ok(vec![]));
}

#[test]
fn map_of_an_input_of_unknown_length() {
    let pool = ThreadPool::new(3).unwrap();
    let evens = (0..1000u32).filter(|x| x % 2 == 0); // size_hint is not exact
    let out = pool.map(|x: u32| x / 2, evens).unwrap();
    assert_eq!(out, (0..500).collect::<Vec<u32>>());
}

#[test]
fn map_moves_owned_values_through() {
    let pool = ThreadPool::new(2).unwrap();
    let words: Vec<String> = (0..1000).map(|i| format!("w{i}")).collect();
    let out = pool.map(|s: String| s + "!", words).unwrap();
    assert_eq!(out[999], "w999!");
    assert_eq!(out.len(), 1000);
}

/// Which worker ran each item, in input order.
fn runners(pool: &ThreadPool, n: usize, chunksize: Option<usize>) -> Vec<String> {
    let f = |_: usize| thread::current().name().unwrap_or("?").to_owned();
    match chunksize {
        Some(c) => pool.map_chunked(f, 0..n, c).unwrap(),
        None => pool.map(f, 0..n).unwrap(),
    }
}

#[test]
fn map_chunks_items_one_task_per_chunk() {
    let pool = ThreadPool::new(2).unwrap();
    // Explicit chunk size: every run of 10 consecutive items is one task,
    // so it ran on one worker.
    let names = runners(&pool, 100, Some(10));
    for chunk in names.chunks(10) {
        assert!(chunk.iter().all(|n| n == &chunk[0]), "{chunk:?}");
    }
    // Automatic: 1000 items on 2 threads -> 1000 / 8 = 125 per chunk.
    let names = runners(&pool, 1000, None);
    for chunk in names.chunks(125) {
        assert!(chunk.iter().all(|n| n == &chunk[0]), "{chunk:?}");
    }
}

#[test]
fn map_chunked_gives_the_same_result_for_any_chunk_size() {
    let pool = ThreadPool::new(3).unwrap();
    // Miri interprets every step: a shorter input, the same chunk shapes.
    let n: u32 = if cfg!(miri) { 50 } else { 1000 };
    let expected: Vec<u32> = (0..n).map(|x| x * 3).collect();
    let sizes = [
        1,
        2,
        7,
        n as usize - 1,
        n as usize,
        n as usize + 1,
        usize::MAX,
    ];
    for chunksize in sizes {
        let out = pool.map_chunked(|x: u32| x * 3, 0..n, chunksize);
        assert_eq!(out.as_ref(), Ok(&expected), "chunksize {chunksize}");
    }
}

#[test]
fn chunksize_zero_is_a_clear_error() {
    let pool = ThreadPool::new(2).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let err = pool
        .map_chunked(
            move |x: u8| {
                r.fetch_add(1, Ordering::SeqCst);
                x
            },
            [1, 2, 3],
            0,
        )
        .unwrap_err();
    assert_eq!(
        err,
        TaskError::InvalidArgument("chunksize must be at least 1")
    );
    assert!(err.to_string().contains("chunksize"));
    let h = pool.map_async_chunked(|x: u8| x, [1], 0);
    assert!(h.ready());
    assert!(matches!(h.get(), Err(TaskError::InvalidArgument(_))));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn map_fails_fast_with_the_failing_items_message() {
    // Two workers: item 0 panics at once, item 1 blocks until released.
    // map must return the panic without waiting for item 1.
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let gates = Gates::new(2);
    let g = gates.clone();
    let p = pool.clone();
    let err = bounded(move || {
        p.map_chunked(
            move |i: usize| {
                if i == 0 {
                    panic!("item {i} is bad");
                }
                g.pass(1);
                i
            },
            0..2usize,
            1,
        )
    })
    .unwrap_err();
    assert_eq!(err.panic_message(), Some("item 0 is bad"));
    gates.open(1);
    // The pool is still usable.
    assert_eq!(pool.map(|x: i32| x + 1, vec![1, 2, 3]), Ok(vec![2, 3, 4]));
}

#[test]
fn map_failure_cancels_the_chunks_not_started() {
    // One worker: item 0 runs first (FIFO) and panics once released; the 99
    // chunks queued behind it must never run.
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let gates = Gates::new(1);
    let ran = Arc::new(AtomicUsize::new(0));
    let (g, r, p) = (gates.clone(), ran.clone(), pool.clone());
    let (tx, rx) = channel();
    thread::spawn(move || {
        let out = p.map_chunked(
            move |i: usize| {
                if i == 0 {
                    g.pass(0);
                    panic!("first");
                }
                r.fetch_add(1, Ordering::SeqCst);
                i
            },
            0..100usize,
            1,
        );
        tx.send(out).unwrap();
    });
    // Not done while item 0 is held.
    assert!(rx.recv_timeout(SHORT).is_err());
    gates.open(0);
    let err = rx.recv_timeout(LONG).unwrap().unwrap_err();
    assert_eq!(err.panic_message(), Some("first"));
    assert_eq!(pool.apply(|| 1), Ok(1)); // after every skipped chunk
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn map_reports_a_panicking_input_iterator() {
    let pool = ThreadPool::new(2).unwrap();
    let input = (0..10u32).map(|x| if x == 5 { panic!("input broke") } else { x });
    let err = pool.map(|x: u32| x, input).unwrap_err();
    assert_eq!(err.panic_message(), Some("input broke"));
    assert_eq!(pool.map(|x: u32| x, 0..3u32), Ok(vec![0, 1, 2]));
}

#[test]
fn map_on_a_closed_pool_is_pool_closed() {
    let pool = ThreadPool::new(1).unwrap();
    pool.close();
    assert_eq!(pool.map(|x: u8| x, [1, 2]), Err(TaskError::PoolClosed));
    assert_eq!(
        pool.map_async(|x: u8| x, [1]).get(),
        Err(TaskError::PoolClosed)
    );
}

#[test]
fn map_inside_a_task_of_a_one_thread_pool_does_not_deadlock() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let inner = pool.clone();
    let h = pool.submit(move || inner.map(|x: u32| x * 2, 0..1000u32).unwrap().len());
    assert_eq!(h.get_timeout(LONG), Ok(1000));
}

#[test]
fn map_async_can_be_cancelled_before_it_starts() {
    let pool = ThreadPool::new(1).unwrap();
    let gates = Gates::new(1);
    let g = gates.clone();
    let blocker = pool.submit(move || g.pass(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let h = pool.map_async(
        move |x: u32| {
            r.fetch_add(1, Ordering::SeqCst);
            x
        },
        0..100u32,
    );
    assert!(!h.ready());
    assert!(h.cancel());
    assert!(h.cancelled());
    gates.open(0);
    blocker.get_timeout(LONG).unwrap();
    assert_eq!(h.get_timeout(LONG), Err(TaskError::Cancelled));
    assert_eq!(pool.apply(|| ()), Ok(()));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn map_async_resolves_to_the_whole_vector() {
    let pool = ThreadPool::new(2).unwrap();
    let h = pool.map_async(|x: u8| u32::from(x) * 2, 0..=255u8);
    let v = h.get_timeout(LONG).unwrap();
    assert_eq!(v.len(), 256);
    assert_eq!(v[255], 510);
}

#[test]
fn map_terminated_midway_resolves_to_cancelled() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let gates = Gates::new(1);
    let g = gates.clone();
    let h = pool.map_async_chunked(
        move |i: usize| {
            if i == 0 {
                g.pass(0);
            }
            i
        },
        0..10usize,
        1,
    );
    // Wait until item 0 runs (the map's handle then reports running).
    let p = pool.clone();
    let h = bounded(move || {
        while !h.running() {
            thread::yield_now();
        }
        p.terminate();
        h
    });
    // The queued chunks were cancelled by terminate: the map is over at
    // once, while item 0 still runs.
    assert_eq!(h.get_timeout(LONG), Err(TaskError::Cancelled));
    gates.open(0);
}

// ---- imap -----------------------------------------------------------------------

#[test]
fn imap_yields_in_input_order_whatever_the_completion_order() {
    let pool = ThreadPool::new(4).unwrap();
    let gates = Gates::new(4);
    let (done_tx, done_rx) = channel();
    let done_tx = Mutex::new(done_tx);
    let g = gates.clone();
    let mut it = pool.imap(
        move |i: usize| {
            g.pass(i);
            done_tx.lock().unwrap().send(i).unwrap();
            i * 10
        },
        0..4usize,
    );
    // The first call queues all four; item 0 is held, so nothing yet.
    assert_eq!(it.next_timeout(SHORT), Err(TaskError::Timeout));
    for i in [3, 2, 1] {
        gates.open(i);
        assert_eq!(done_rx.recv_timeout(LONG), Ok(i));
    }
    // Items 1..=3 are done, but item 0 comes first.
    assert_eq!(it.next_timeout(SHORT), Err(TaskError::Timeout));
    gates.open(0);
    let rest: Vec<_> = (0..5).map(|_| it.next_timeout(LONG).unwrap()).collect();
    assert_eq!(
        rest,
        [Some(Ok(0)), Some(Ok(10)), Some(Ok(20)), Some(Ok(30)), None]
    );
}

#[test]
fn imap_unordered_yields_in_completion_order() {
    let pool = ThreadPool::new(4).unwrap();
    let gates = Gates::new(4);
    let g = gates.clone();
    let mut it = pool.imap_unordered(
        move |i: usize| {
            g.pass(i);
            i
        },
        0..4usize,
    );
    assert_eq!(it.next_timeout(SHORT), Err(TaskError::Timeout));
    for i in [2, 0, 3, 1] {
        gates.open(i);
        assert_eq!(it.next_timeout(LONG), Ok(Some(Ok(i))));
    }
    assert_eq!(it.next_timeout(LONG), Ok(None));
}

fn counted_endless(pulled: &Arc<AtomicUsize>) -> impl Iterator<Item = u64> {
    let pulled = pulled.clone();
    (0u64..).inspect(move |_| {
        pulled.fetch_add(1, Ordering::SeqCst);
    })
}

#[test]
fn imap_is_lazy_over_an_endless_input() {
    let pool = ThreadPool::new(2).unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let mut it = pool
        .imap(|x: u64| x * 2, counted_endless(&pulled))
        .buffersize(3);
    assert_eq!(
        pulled.load(Ordering::SeqCst),
        0,
        "nothing pulled before next()"
    );
    for consumed in 1..=50u64 {
        assert_eq!(it.next_timeout(LONG), Ok(Some(Ok((consumed - 1) * 2))));
        let p = pulled.load(Ordering::SeqCst) as u64;
        assert!(
            p >= consumed && p <= consumed + 3,
            "pulled {p} after {consumed}"
        );
    }
}

#[test]
fn imap_unordered_is_lazy_over_an_endless_input_with_chunks() {
    let pool = ThreadPool::new(2).unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let mut it = pool
        .imap_unordered(|x: u64| x, counted_endless(&pulled))
        .chunksize(4)
        .buffersize(2);
    let mut seen = Vec::new();
    for consumed in 1..=40usize {
        let v = it.next_timeout(LONG).unwrap().unwrap().unwrap();
        seen.push(v);
        let p = pulled.load(Ordering::SeqCst);
        // At most `buffersize` chunks in flight plus the chunk being handed out.
        assert!(p <= consumed + 3 * 4, "pulled {p} after {consumed}");
    }
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 40, "every result once");
}

#[test]
fn imap_default_in_flight_is_tied_to_the_thread_count() {
    let pool = ThreadPool::new(3).unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let mut it = pool.imap(|x: u64| x, counted_endless(&pulled));
    assert_eq!(it.next_timeout(LONG), Ok(Some(Ok(0))));
    let p = pulled.load(Ordering::SeqCst);
    assert!((1..=2 * 3 + 1).contains(&p), "pulled {p}");
}

#[test]
fn imap_failed_item_yields_its_error_in_place_and_goes_on() {
    let pool = ThreadPool::new(2).unwrap();
    for chunksize in [1, 3] {
        let out: Vec<Result<u32, TaskError>> = pool
            .imap(
                |x: u32| if x % 4 == 1 { panic!("bad {x}") } else { x },
                0..8u32,
            )
            .chunksize(chunksize)
            .collect();
        assert_eq!(out.len(), 8);
        for (i, r) in out.iter().enumerate() {
            if i % 4 == 1 {
                assert_eq!(
                    r.as_ref().unwrap_err().panic_message(),
                    Some(&*format!("bad {i}"))
                );
            } else {
                assert_eq!(r, &Ok(i as u32));
            }
        }
    }
}

#[test]
fn imap_reports_a_panicking_input_once_then_ends() {
    let pool = ThreadPool::new(2).unwrap();
    let input = || {
        (0..10u32).map(|x| {
            if x == 3 {
                panic!("input broke at {x}")
            } else {
                x
            }
        })
    };
    let out: Vec<_> = pool.imap(|x: u32| x, input()).collect();
    assert_eq!(out.len(), 4);
    assert_eq!(out[..3], [Ok(0), Ok(1), Ok(2)]);
    assert_eq!(
        out[3].as_ref().unwrap_err().panic_message(),
        Some("input broke at 3")
    );

    let out: Vec<_> = pool
        .imap_unordered(|x: u32| x, input())
        .chunksize(2)
        .collect();
    assert_eq!(out.len(), 4);
    assert_eq!(out.iter().filter(|r| r.is_err()).count(), 1);
    // Workers are alive and well.
    assert_eq!(pool.map(|x: u8| x, [9]), Ok(vec![9]));
}

#[test]
fn dropping_imap_cancels_what_it_queued_and_did_not_start() {
    for unordered in [false, true] {
        let pool = ThreadPool::new(1).unwrap();
        let gates = Gates::new(1);
        let ran = Arc::new(AtomicUsize::new(0));
        let (g, r) = (gates.clone(), ran.clone());
        let f = move |i: usize| {
            if i == 0 {
                g.pass(0);
            }
            r.fetch_add(1, Ordering::SeqCst);
            i
        };
        if unordered {
            let mut it = pool.imap_unordered(f, 0..).buffersize(10);
            assert_eq!(it.next_timeout(SHORT), Err(TaskError::Timeout));
        } else {
            let mut it = pool.imap(f, 0..).buffersize(10);
            assert_eq!(it.next_timeout(SHORT), Err(TaskError::Timeout));
        } // dropped here, with item 0 running and 9 queued
        gates.open(0);
        assert_eq!(pool.apply(|| ()), Ok(()));
        drop(pool); // joins: every queued task is settled
        assert_eq!(ran.load(Ordering::SeqCst), 1, "unordered: {unordered}");
    }
}

#[test]
fn imap_zero_sizes_are_clear_errors() {
    let pool = ThreadPool::new(1).unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let mut it = pool.imap(|x: u64| x, counted_endless(&pulled)).chunksize(0);
    assert_eq!(
        it.next(),
        Some(Err(TaskError::InvalidArgument(
            "chunksize must be at least 1"
        )))
    );
    assert_eq!(it.next(), None);
    let mut it = pool
        .imap_unordered(|x: u64| x, counted_endless(&pulled))
        .buffersize(0);
    assert_eq!(
        it.next(),
        Some(Err(TaskError::InvalidArgument(
            "buffersize must be at least 1"
        )))
    );
    assert_eq!(it.next(), None);
    assert_eq!(pulled.load(Ordering::SeqCst), 0);
}

#[test]
fn imap_on_a_closed_pool_ends_even_with_an_endless_input() {
    let pool = ThreadPool::new(1).unwrap();
    pool.close();
    let out: Vec<_> = bounded({
        let it = pool.imap(|x: u64| x, 0u64..);
        let v: Vec<_> = it.collect();
        move || v
    });
    assert_eq!(out, [Err(TaskError::PoolClosed)]);
    let out: Vec<_> = pool.imap_unordered(|x: u64| x, 0u64..).collect();
    assert_eq!(out, [Err(TaskError::PoolClosed)]);
}

#[test]
fn imap_input_need_not_be_send_and_the_iterator_is_static() {
    let pool = ThreadPool::new(2).unwrap();
    let data = Rc::new(vec![5u32, 6, 7]);
    let input = (0..3).map(move |i| data[i]); // Rc: not Send
    let out: Vec<_> = pool
        .imap(|x: u32| x + 1, input)
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, [6, 7, 8]);

    fn make(pool: &ThreadPool) -> IMap<std::ops::Range<u32>, u32> {
        pool.imap(|x: u32| x * 2, 0..3)
    }
    fn assert_static_send<T: 'static + Send>(t: T) -> T {
        t
    }
    let it = assert_static_send(make(&pool));
    let out = thread::spawn(move || it.map(Result::unwrap).collect::<Vec<_>>())
        .join()
        .unwrap();
    assert_eq!(out, [0, 2, 4]);
}

#[test]
fn imap_inside_a_task_of_a_one_thread_pool_does_not_deadlock() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let inner = pool.clone();
    // Miri's clock runs with the steps it interprets: a shorter input.
    let n: u32 = if cfg!(miri) { 10 } else { 100 };
    let h = pool.submit(move || {
        let a: u32 = inner.imap(|x: u32| x, 0..n).map(Result::unwrap).sum();
        let b: u32 = inner
            .imap_unordered(|x: u32| x, 0..n)
            .map(Result::unwrap)
            .sum();
        (a, b)
    });
    let sum = n * (n - 1) / 2;
    assert_eq!(h.get_timeout(LONG), Ok((sum, sum)));
}

#[test]
fn panics_inside_map_do_not_escape_to_the_caller() {
    let pool = ThreadPool::new(2).unwrap();
    let r = catch_unwind(AssertUnwindSafe(|| {
        pool.map(|x: u8| -> u8 { panic!("x{x}") }, [1, 2, 3])
    }));
    assert!(matches!(r, Ok(Err(TaskError::Panicked(_)))));
}

/// Counts live values: a leak leaves it above 0, a double drop below.
#[derive(Debug)]
struct Tracked(Arc<std::sync::atomic::AtomicIsize>, usize);

impl Tracked {
    fn new(live: &Arc<std::sync::atomic::AtomicIsize>, v: usize) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Tracked(live.clone(), v)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn map_drops_every_item_and_result_exactly_once() {
    use std::sync::atomic::AtomicIsize;
    let pool = ThreadPool::new(3).unwrap();
    let inputs = Arc::new(AtomicIsize::new(0));
    let outputs = Arc::new(AtomicIsize::new(0));
    let make = |n| (0..n).map(|v| Tracked::new(&inputs, v)).collect::<Vec<_>>();

    // Success: inputs consumed, results handed out.
    let o = outputs.clone();
    let out = pool
        .map_chunked(move |t: Tracked| Tracked::new(&o, t.1), make(1000), 7)
        .unwrap();
    assert_eq!(inputs.load(Ordering::SeqCst), 0);
    assert_eq!(outputs.load(Ordering::SeqCst), 1000);
    assert!(out.iter().enumerate().all(|(i, t)| t.1 == i));
    drop(out);
    assert_eq!(outputs.load(Ordering::SeqCst), 0);

    // A panic in the middle of a chunk, others written, others skipped.
    let o = outputs.clone();
    let err = pool
        .map_chunked(
            move |t: Tracked| {
                if t.1 == 503 {
                    panic!("503");
                }
                Tracked::new(&o, t.1)
            },
            make(1000),
            10,
        )
        .unwrap_err();
    assert_eq!(err.panic_message(), Some("503"));
    pool.join(); // every chunk settled
    assert_eq!(
        inputs.load(Ordering::SeqCst),
        0,
        "no input leaked or dropped twice"
    );
    assert_eq!(
        outputs.load(Ordering::SeqCst),
        0,
        "no result leaked or dropped twice"
    );
}

#[test]
fn map_cancelled_or_terminated_drops_everything_once() {
    use std::sync::atomic::AtomicIsize;
    let inputs = Arc::new(AtomicIsize::new(0));
    let outputs = Arc::new(AtomicIsize::new(0));
    let pool = ThreadPool::new(1).unwrap();
    let gates = Gates::new(1);
    let g = gates.clone();
    let (started_tx, started_rx) = channel();
    let blocker = pool.submit(move || {
        started_tx.send(()).unwrap();
        g.pass(0)
    });
    started_rx.recv_timeout(LONG).unwrap();
    let o = outputs.clone();
    let h = pool.map_async_chunked(
        move |t: Tracked| Tracked::new(&o, t.1),
        (0..100)
            .map(|v| Tracked::new(&inputs, v))
            .collect::<Vec<_>>(),
        3,
    );
    assert!(h.cancel());
    pool.terminate();
    gates.open(0);
    blocker.get_timeout(LONG).unwrap();
    assert_eq!(h.get_timeout(LONG).unwrap_err(), TaskError::Cancelled);
    pool.join();
    assert_eq!(inputs.load(Ordering::SeqCst), 0);
    assert_eq!(outputs.load(Ordering::SeqCst), 0);
}

#[test]
fn closures_need_no_type_annotations() {
    let pool = ThreadPool::new(2).unwrap();
    assert_eq!(pool.map(|x| x * 2, vec![1, 2, 3]), Ok(vec![2, 4, 6]));
    assert_eq!(
        pool.map_async(|s| format!("{s}!"), ["a"]).get(),
        Ok(vec!["a!".to_string()])
    );
    let v: Vec<_> = pool.imap(|x| x + 1, 0..3).map(Result::unwrap).collect();
    assert_eq!(v, [1, 2, 3]);
    let n = pool
        .imap_unordered(|x| x % 2, 0..10)
        .filter(|r| r == &Ok(1))
        .count();
    assert_eq!(n, 5);
}

/// The promise for a panicking input holds for `imap_unordered` too: the
/// items the input gave before it broke all come out first (in completion
/// order), then its one error, then the end; also with the error found in
/// the middle of a chunk, and for a bad setting made after pulling began.
#[test]
fn imap_unordered_yields_a_broken_input_after_the_items_it_gave() {
    let pool = ThreadPool::new(2).unwrap();
    for chunksize in [1, 2, 5] {
        let input = (0..10u32).map(|x| {
            if x == 7 {
                panic!("input broke at {x}")
            } else {
                x
            }
        });
        let out: Vec<_> = pool
            .imap_unordered(|x: u32| x, input)
            .chunksize(chunksize)
            .buffersize(16)
            .collect();
        assert_eq!(out.len(), 8, "chunksize {chunksize}: {out:?}");
        let mut items: Vec<u32> = out[..7].iter().map(|r| *r.as_ref().unwrap()).collect();
        items.sort_unstable();
        assert_eq!(items, [0, 1, 2, 3, 4, 5, 6], "chunksize {chunksize}");
        assert_eq!(
            out[7].as_ref().unwrap_err().panic_message(),
            Some("input broke at 7"),
            "chunksize {chunksize}"
        );
    }
    // A chunk size of 0 set after the first result: the chunks already
    // pulled come out before the error.
    let mut it = pool.imap_unordered(|x: u32| x, 0..100u32).buffersize(4);
    assert!(it.next().unwrap().is_ok());
    let rest: Vec<_> = it.chunksize(0).collect();
    let (errors, oks): (Vec<_>, Vec<_>) = rest.iter().partition(|r| r.is_err());
    assert_eq!(errors.len(), 1);
    assert!(!oks.is_empty());
    assert!(rest.last().unwrap().is_err(), "{rest:?}");
}
