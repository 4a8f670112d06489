//! Download many pages concurrently, then compile them once all are in.
//!
//! Python (the sketch, completed):
//!
//! ```python
//! q = Queue(maxsize=20)
//! def put_page_to_q(page_num):
//!     q.put(requests.get('...%d' % page_num))
//! threads = [Thread(target=put_page_to_q, args=(n,)) for n in range(20)]
//! for t in threads: t.start()
//! for t in threads: t.join()
//! compile(q)   # needs all pages
//! ```
//!
//! Here the "website" is a tiny HTTP-like server on 127.0.0.1 (no
//! internet needed), each download is a pool task over a real TCP
//! connection, and the compile step collects the handles in page order, so
//! it runs only when every page is in and the pages come out in order
//! whatever order they arrived in.
//!
//! Run with `cargo run --release --example download_compile`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use futurepool::ThreadPool;

const PAGES: usize = 20;

/// Serves `GET <n>` with the text of page n, slowly, each connection on
/// a pool of its own, until a `GET quit` arrives.
fn serve(listener: TcpListener) {
    let handlers = ThreadPool::new(8).expect("server pool");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let mut reader = BufReader::new(stream);
        let mut request = String::new();
        if reader.read_line(&mut request).is_err() {
            continue;
        }
        let page = request.trim().trim_start_matches("GET ").to_string();
        if page == "quit" {
            return; // dropping `handlers` waits for the pages being served
        }
        handlers.submit(move || {
            // A "slow network": every page takes 20 ms to serve.
            std::thread::sleep(Duration::from_millis(20));
            let body = format!("<p>content of page {page}</p>\n");
            let _ = reader.get_mut().write_all(body.as_bytes());
        });
    }
}

fn download(addr: std::net::SocketAddr, page: usize) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    writeln!(stream, "GET {page}")?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    println!("downloaded page {page}");
    Ok(body)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = std::thread::spawn(move || serve(listener));

    let pool = ThreadPool::new(8)?;
    let start = Instant::now();
    let pages: Vec<_> = (0..PAGES)
        .map(|page| pool.submit(move || download(addr, page)))
        .collect();

    // compile(): needs all pages, in order.
    let mut book = String::new();
    for page in pages {
        book.push_str(&page.get()??);
    }
    println!(
        "Done compiling {} pages ({} bytes) in {:?} (one after another: about {:?})",
        PAGES,
        book.len(),
        start.elapsed(),
        Duration::from_millis(20) * PAGES as u32
    );
    assert_eq!(book.lines().count(), PAGES);

    let mut quit = TcpStream::connect(addr)?;
    writeln!(quit, "GET quit")?;
    server.join().expect("server panicked");
    Ok(())
}
