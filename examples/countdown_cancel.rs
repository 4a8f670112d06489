//! A countdown that can be terminated, and an I/O task that stops while
//! blocked in a read: cooperative cancellation with `CancelToken`.
//!
//! Python polls a flag, and for blocking I/O loops on a socket timeout:
//!
//! ```python
//! class CountdownTask:
//!     def __init__(self):
//!         self._running = True
//!     def terminate(self):
//!         self._running = False
//!     def run(self, n):
//!         while self._running and n > 0:
//!             print('T-minus', n)
//!             n -= 1
//!             time.sleep(5)
//!
//! class IOTask:
//!     def run(self, sock):
//!         sock.settimeout(5)
//!         while self._running:
//!             try:
//!                 data = sock.recv(8192)
//!                 break
//!             except socket.timeout:
//!                 continue
//! ```
//!
//! With futurepool, `submit_cancellable` hands the task a token and
//! `cancel()` on the handle is `terminate()`. `token.wait_timeout` is the
//! sleep that wakes at once when cancelled, and the handle then says
//! `cancelled()`.
//!
//! Run with `cargo run --release --example countdown_cancel`.

use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use futurepool::{CancelToken, ThreadPool};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ThreadPool::new(2)?;

    // The countdown, terminated after three ticks.
    let (tick_tx, ticks) = std::sync::mpsc::channel();
    let countdown = pool.submit_cancellable(move |token: CancelToken| {
        let mut n = 10;
        while n > 0 && !token.is_cancelled() {
            println!("T-minus {n}");
            let _ = tick_tx.send(n);
            n -= 1;
            token.wait_timeout(Duration::from_millis(50)); // time.sleep(5), but wakes on cancel
        }
        n
    });
    for _ in 0..3 {
        ticks.recv_timeout(Duration::from_secs(10))?;
    }
    countdown.cancel(); // c.terminate()
    println!(
        "countdown ended: {:?} (cancelled: {})",
        countdown.get_timeout(Duration::from_secs(10)),
        countdown.cancelled()
    );

    // The IOTask: a read that would block forever, stopped by its token.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let _client = TcpStream::connect(listener.local_addr()?)?; // never sends
    let (mut sock, _) = listener.accept()?;
    let io_task = pool.submit_cancellable(move |token: CancelToken| {
        sock.set_read_timeout(Some(Duration::from_millis(20)))?;
        let mut buf = [0u8; 8192];
        let mut timeouts = 0;
        while !token.is_cancelled() {
            match sock.read(&mut buf) {
                Ok(n) => return Ok(n),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    timeouts += 1; // socket.timeout: look at the token again
                }
                Err(e) => return Err(e),
            }
        }
        println!("io task: terminated after {timeouts} read timeouts");
        Ok(0)
    });
    std::thread::sleep(Duration::from_millis(70));
    io_task.cancel();
    println!(
        "io task ended: cancelled = {}",
        io_task
            .get_timeout(Duration::from_secs(10))
            .unwrap_err()
            .is_cancelled()
    );
    Ok(())
}
