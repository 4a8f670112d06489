//! The echo server example, driven in-process by real clients: 200
//! concurrent std `TcpStream` clients on loopback send 100 lines each, and
//! every byte must come back; then the server shuts down cleanly, leaving
//! no thread behind. Every read and wait is bounded.

#[path = "../examples/echo_server.rs"]
#[allow(dead_code)]
mod echo_server;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use echo_server::EchoServer;

const CLIENTS: usize = 200;
const LINES: usize = 100;
const BOUND: Duration = Duration::from_secs(60);

/// One client: sends LINES distinct lines, reads each one back in full,
/// and compares it byte for byte. Returns the bytes checked.
fn client(addr: SocketAddr, id: usize) -> Result<usize, String> {
    let mut sock = TcpStream::connect(addr).map_err(|e| format!("client {id}: connect: {e}"))?;
    sock.set_read_timeout(Some(BOUND)).unwrap();
    sock.set_write_timeout(Some(BOUND)).unwrap();
    let mut checked = 0;
    let mut back = Vec::new();
    for line in 0..LINES {
        // Lines of varying length, with every byte value in the payload.
        let mut sent = format!("client {id:03} line {line:03} ").into_bytes();
        sent.extend((0..(id + line) % 97).map(|k| (k * 7 + id) as u8 | 1));
        sent.push(b'\n');
        sock.write_all(&sent)
            .map_err(|e| format!("client {id} line {line}: write: {e}"))?;
        back.resize(sent.len(), 0);
        sock.read_exact(&mut back)
            .map_err(|e| format!("client {id} line {line}: read: {e}"))?;
        if back != sent {
            return Err(format!("client {id} line {line}: echo differs"));
        }
        checked += sent.len();
    }
    Ok(checked)
}

#[cfg(target_os = "linux")]
fn echo_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("echo-"))
        .count()
}

#[test]
fn two_hundred_clients_get_every_byte_back_and_the_server_shuts_down_cleanly() {
    let server = EchoServer::start(0, 128).expect("server starts");
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);
    // A new thread names itself once it runs: give the acceptor a moment.
    // The pool is lazy: no worker before the first client.
    #[cfg(target_os = "linux")]
    assert!(
        (0..1000).any(|_| {
            std::thread::sleep(Duration::from_millis(1));
            echo_threads() == 1
        }),
        "only the acceptor"
    );
    assert_eq!(server.stats().threads, 0);

    let (tx, rx) = mpsc::channel();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let tx = tx.clone();
            std::thread::spawn(move || tx.send((id, client(addr, id))).unwrap())
        })
        .collect();
    let mut total = 0;
    for _ in 0..CLIENTS {
        let (id, result) = rx.recv_timeout(BOUND).expect("a client finished in time");
        total += result.unwrap_or_else(|e| panic!("client {id} failed: {e}"));
    }
    for c in clients {
        c.join().unwrap();
    }
    assert!(total > CLIENTS * LINES * 20);
    let used = server.stats().peak_threads;
    assert!((1..=128).contains(&used), "used {used} threads");

    // A connection still open (and idle) when the server shuts down.
    let mut lingering = TcpStream::connect(addr).unwrap();
    lingering.set_read_timeout(Some(BOUND)).unwrap();
    lingering.write_all(b"ping\n").unwrap();
    let mut pong = [0u8; 5];
    lingering.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"ping\n");

    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || done_tx.send(server.shutdown()).unwrap());
    let served = done.recv_timeout(BOUND).expect("shutdown does not hang");
    assert!(served > CLIENTS, "served {served} connections");

    // The server closed the lingering connection.
    let mut rest = Vec::new();
    assert_eq!(
        lingering.read_to_end(&mut rest).map(|_| rest.len()).ok(),
        Some(0)
    );
    // A joined thread can linger in /proc for a moment while the kernel
    // finishes its exit, so look until it is gone (bounded).
    #[cfg(target_os = "linux")]
    assert!(
        (0..1000).any(|_| {
            std::thread::sleep(Duration::from_millis(1));
            echo_threads() == 0
        }),
        "no server thread left: {} remain",
        echo_threads()
    );
}
