//! Passing arguments to a task and getting its return value back.
//!
//! Python (multiprocessing.pool.ThreadPool):
//!
//! ```python
//! def foo(bar, baz):
//!     print('hello {0}'.format(bar))
//!     return 'foo' + baz
//! pool = ThreadPool(processes=1)
//! async_result = pool.apply_async(foo, ('world', 'foo'))
//! # do some other stuff in the main process
//! return_val = async_result.get()
//! ```
//!
//! In Rust the arguments are whatever the closure captures (moved in), and
//! the return value comes back typed, through the handle.
//!
//! Run with `cargo run --release --example apply_async_args`.

use futurepool::ThreadPool;

/// Python's `foo(bar, baz)`.
fn foo(name: &str, suffix: &str) -> String {
    println!("hello {name}");
    format!("foo{suffix}")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ThreadPool::new(1)?;

    // The argument tuple ('world', 'foo'): values moved into the closure.
    let (name, suffix) = (String::from("world"), String::from("foo"));
    let async_result = pool.apply_async(move || foo(&name, &suffix));

    println!("main: doing some other stuff while the task runs");

    let return_val = async_result.get()?;
    println!("main: the task returned {return_val:?}");
    assert_eq!(return_val, "foofoo");
    Ok(())
}
