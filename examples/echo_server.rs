//! A TCP echo server whose connections are served by a futurepool pool.
//!
//! The Python original (Python Cookbook):
//!
//! ```python
//! def echo_server(addr):
//!     pool = ThreadPoolExecutor(128)
//!     sock = socket(AF_INET, SOCK_STREAM)
//!     sock.bind(addr)
//!     sock.listen(5)
//!     while True:
//!         client_sock, client_addr = sock.accept()
//!         pool.submit(echo_client, client_sock, client_addr)
//! ```
//!
//! Here, as there, the accept loop submits each connection to a pool of
//! at most 128 threads (`--workers N` to change it) that starts them
//! lazily: none before the first client, one more only when a connection
//! finds every thread busy, idle ones retiring after 10 s. Bound to
//! 127.0.0.1 only; it reports how many threads it used. Each connection
//! is a cancellable task (Python's `IOTask` pattern: reads with a timeout,
//! checking the token between them), so [`EchoServer::shutdown`] can stop
//! the server cleanly: stop accepting, cancel every connection, join every
//! thread. `tests/echo_server.rs` drives this same code with real clients.
//!
//! Run with `cargo run --release --example echo_server -- [PORT] [--workers N] [--forever]`.
//! Port 0 (the default) picks a free port. Without `--forever` it serves a
//! short demo of a few clients against itself and shuts down.

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use futurepool::{AsyncResult, CancelToken, PoolStats, ThreadPool};

/// How often an idle connection looks at its cancellation token.
const POLL: Duration = Duration::from_millis(50);

/// A running echo server: an accept thread and a pool serving connections.
pub struct EchoServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    pool: Arc<ThreadPool>,
    connections: Arc<Mutex<Vec<AsyncResult<io::Result<u64>>>>>,
}

impl EchoServer {
    /// Binds 127.0.0.1:`port` (0 = any free port) and starts serving, with
    /// up to `workers` threads (named `echo-N`, started as connections
    /// need them) for the connections.
    pub fn start(port: u16, workers: usize) -> io::Result<EchoServer> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let addr = listener.local_addr()?;
        let pool = ThreadPool::builder()
            .max_threads(workers)
            .thread_name("echo")
            .build()
            .map_err(|e| io::Error::new(ErrorKind::Other, e))?;
        let pool = Arc::new(pool);
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let (pool, stop, connections) = (pool.clone(), stop.clone(), connections.clone());
            std::thread::Builder::new()
                .name("echo-acceptor".into())
                .spawn(move || accept_loop(listener, &pool, &stop, &connections))?
        };
        Ok(EchoServer {
            addr,
            stop,
            acceptor: Some(acceptor),
            pool,
            connections,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The connection pool's counters.
    pub fn stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// Stops accepting, cancels every open connection (each ends within
    /// one read timeout), and joins the acceptor and every worker.
    /// Returns how many connections were served in all.
    pub fn shutdown(mut self) -> usize {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> usize {
        let Some(acceptor) = self.acceptor.take() else {
            return 0;
        };
        self.stop.store(true, Ordering::SeqCst);
        // accept() does not look at flags: wake it with a connection.
        let _ = TcpStream::connect(self.addr);
        let _ = acceptor.join();
        let connections = std::mem::take(&mut *self.connections.lock().unwrap());
        for connection in &connections {
            connection.cancel();
        }
        self.pool.join();
        let served = self.pool.stats();
        (served.completed + served.cancelled + served.panicked) as usize
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

fn accept_loop(
    listener: TcpListener,
    pool: &ThreadPool,
    stop: &AtomicBool,
    connections: &Mutex<Vec<AsyncResult<io::Result<u64>>>>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        // pool.submit(echo_client, client_sock, client_addr)
        let handle = pool.submit_cancellable(move |token| echo_client(stream, &token));
        let mut open = connections.lock().unwrap();
        open.retain(|c| !c.ready());
        open.push(handle);
    }
}

/// Echoes everything back until the client closes or the token is
/// cancelled. Returns the number of bytes echoed.
fn echo_client(mut sock: TcpStream, token: &CancelToken) -> io::Result<u64> {
    sock.set_read_timeout(Some(POLL))?;
    let mut buf = [0u8; 65536];
    let mut echoed = 0u64;
    while !token.is_cancelled() {
        match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                sock.write_all(&buf[..n])?;
                echoed += n as u64;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let _ = sock.shutdown(Shutdown::Both);
    Ok(echoed)
}

/// Connects, sends `lines` lines and checks each comes back intact.
fn demo_client(addr: SocketAddr, id: usize, lines: usize) -> io::Result<()> {
    let sock = TcpStream::connect(addr)?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(sock.try_clone()?);
    let mut writer = sock;
    for l in 0..lines {
        let line = format!("client {id} says hello #{l}\n");
        writer.write_all(line.as_bytes())?;
        let mut back = String::new();
        reader.read_line(&mut back)?;
        if back != line {
            return Err(io::Error::new(ErrorKind::InvalidData, "echo mismatch"));
        }
        print!("client {id} got back: {back}");
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut port = 0u16;
    let mut workers = 128;
    let mut forever = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--workers" => {
                workers = args.next().ok_or("--workers needs a number")?.parse()?;
            }
            "--forever" => forever = true,
            other => port = other.parse().map_err(|_| format!("not a port: {other}"))?,
        }
    }
    let server = EchoServer::start(port, workers)?;
    println!(
        "Echo server running at {} with up to {workers} workers (started as needed)",
        server.local_addr()
    );
    if forever {
        println!(
            "serving until killed (try: nc {} {})",
            server.local_addr().ip(),
            server.local_addr().port()
        );
        loop {
            std::thread::park();
        }
    }
    let addr = server.local_addr();
    let clients: Vec<_> = (0..4)
        .map(|id| std::thread::spawn(move || demo_client(addr, id, 3)))
        .collect();
    for c in clients {
        c.join().expect("client panicked")?;
    }
    // A client that stays connected and silent: shutdown still ends it.
    let _idle = TcpStream::connect(addr)?;
    let used = server.stats().peak_threads;
    let served = server.shutdown();
    println!(
        "server shut down cleanly after serving {served} connections \
         with {used} of its {workers} threads"
    );
    Ok(())
}
