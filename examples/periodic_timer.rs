//! Two tasks ticking on a periodic timer.
//!
//! Python builds a PeriodicTimer out of a daemon thread, a Condition and a
//! flag, and two threads wait for its ticks:
//!
//! ```python
//! ptimer = PeriodicTimer(5)
//! ptimer.start()
//! def countdown(nticks):
//!     while nticks > 0:
//!         ptimer.wait_for_tick()
//!         print('T-minus', nticks)
//!         nticks -= 1
//! def countup(last):
//!     n = 0
//!     while n < last:
//!         ptimer.wait_for_tick()
//!         print('Counting', n)
//!         n += 1
//! ```
//!
//! futurepool: `submit_periodic(period, f)` runs `f` on the pool every
//! period until it returns `ControlFlow::Break(value)`; no thread sits in
//! a wait between ticks (the pool's one timer thread sleeps until the next
//! deadline), runs of one task never overlap, and a handle can cancel it.
//!
//! Run with `cargo run --release --example periodic_timer`.

use std::ops::ControlFlow;
use std::time::Duration;

use futurepool::ThreadPool;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ThreadPool::new(2)?;
    let tick = Duration::from_millis(20);

    let mut nticks = 10;
    let countdown = pool.submit_periodic(tick, move || {
        println!("T-minus {nticks}");
        nticks -= 1;
        if nticks == 0 {
            ControlFlow::Break("liftoff")
        } else {
            ControlFlow::Continue(())
        }
    });

    let mut n = 0;
    let countup = pool.submit_periodic(tick, move || {
        println!("Counting {n}");
        n += 1;
        if n == 5 {
            ControlFlow::Break(n)
        } else {
            ControlFlow::Continue(())
        }
    });

    // A third ticker that runs until it is cancelled.
    let heartbeat = pool.submit_periodic(Duration::from_millis(50), || {
        println!("(heartbeat)");
        ControlFlow::<()>::Continue(())
    });

    println!("countup finished: {:?}", countup.get()?);
    println!("countdown finished: {:?}", countdown.get()?);
    heartbeat.cancel();
    println!(
        "heartbeat cancelled: {:?}",
        heartbeat.get_timeout(Duration::from_secs(10))
    );
    pool.wait_idle();
    println!("stats: {:?}", pool.stats());
    Ok(())
}
