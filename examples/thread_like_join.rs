//! A thread-like task whose join returns its value.
//!
//! Python subclasses Thread to keep the target's return value and hand it
//! back from join(), and checks is_alive() meanwhile:
//!
//! ```python
//! class ThreadWithReturnValue(Thread):
//!     def run(self):
//!         self._return = self._target(*self._args, **self._kwargs)
//!     def join(self):
//!         Thread.join(self)
//!         return self._return
//! twrv = ThreadWithReturnValue(target=foo, args=('world!',))
//! twrv.start()
//! print(twrv.join())   # prints foo
//! ```
//!
//! A futurepool handle is that object already: `ready()` is the opposite
//! of `is_alive()`, `get()` is the join that returns the value, and a
//! panic comes back as an error instead of vanishing into the thread.
//!
//! Run with `cargo run --release --example thread_like_join`.

use std::time::Duration;

use futurepool::ThreadPool;

fn foo(bar: &str) -> &'static str {
    std::thread::sleep(Duration::from_millis(30));
    println!("hello {bar}");
    "foo"
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ThreadPool::new(2)?;

    let twrv = pool.submit(|| foo("world!"));
    println!(
        "{}",
        if twrv.ready() {
            "Completed"
        } else {
            "Still running"
        }
    );
    println!("join returned {:?}", twrv.get()?);

    // The "Sleepy" subclass: run in the background, join, then go on.
    let sleepy = pool.submit(|| {
        std::thread::sleep(Duration::from_millis(20));
        println!("Hello from the task");
    });
    sleepy.get()?;
    println!("The main program continues to run in the foreground.");

    // What a Thread subclass cannot do: report a crash to the joiner.
    // (A one-line panic message instead of the default report.)
    std::panic::set_hook(Box::new(|info| eprintln!("[task panicked: {info}]")));
    let crashed = pool.submit(|| -> u32 { panic!("bad input") });
    match crashed.get() {
        Ok(_) => unreachable!(),
        Err(e) => println!("join reported: {e}"),
    }
    Ok(())
}
