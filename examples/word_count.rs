//! Parallel word count with `pool.map`: generates a real text file in a
//! temporary directory, reads it back, counts words over chunks of lines in
//! parallel, merges the counts, checks them against a serial count, and
//! prints the most common words.
//!
//! Run with `cargo run --release --example word_count`.

use std::collections::HashMap;
use std::fs;
use std::io::{BufWriter, Write};
use std::time::Instant;

use futurepool::ThreadPool;

const LINES: usize = 200_000;
const LINES_PER_TASK: usize = 5_000;

const VOCABULARY: &[&str] = &[
    "the", "pool", "thread", "future", "result", "wait", "map", "chunk", "worker", "queue",
    "steal", "park", "wake", "task", "handle", "panic", "cancel", "scope", "borrow", "rust",
    "python", "parallel", "lazy", "order", "input", "output", "deque", "signal", "join", "close",
];

/// A small deterministic generator (xorshift), so the file is the same on
/// every run and the example needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Skewed towards the start of the vocabulary, like real text.
    fn word(&mut self) -> &'static str {
        let a = self.next() as usize % VOCABULARY.len();
        let b = self.next() as usize % VOCABULARY.len();
        VOCABULARY[a.min(b)]
    }
}

fn count_words(lines: Vec<String>) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for line in &lines {
        for word in line.split_whitespace() {
            let word = word
                .trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase();
            if !word.is_empty() {
                *counts.entry(word).or_insert(0) += 1;
            }
        }
    }
    counts
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Write a real text file.
    let dir = std::env::temp_dir().join(format!("futurepool-word-count-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    let path = dir.join("corpus.txt");
    {
        let mut out = BufWriter::new(fs::File::create(&path)?);
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        for _ in 0..LINES {
            let n = 5 + rng.next() % 10;
            let words: Vec<&str> = (0..n).map(|_| rng.word()).collect();
            writeln!(out, "{}.", words.join(" "))?;
        }
        out.flush()?;
    }
    let text = fs::read_to_string(&path)?;
    println!(
        "wrote and read {} ({} lines, {} bytes)",
        path.display(),
        LINES,
        text.len()
    );

    // 2. Count in parallel: one item per block of lines.
    let pool = ThreadPool::new(num_threads())?;
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let blocks: Vec<Vec<String>> = lines
        .chunks(LINES_PER_TASK)
        .map(<[String]>::to_vec)
        .collect();
    let started = Instant::now();
    let partial = pool.map(count_words, blocks)?;
    let mut totals: HashMap<String, usize> = HashMap::new();
    for counts in partial {
        for (word, n) in counts {
            *totals.entry(word).or_insert(0) += n;
        }
    }
    let parallel_time = started.elapsed();

    // 3. Check against a serial count.
    let started = Instant::now();
    let serial = count_words(lines);
    let serial_time = started.elapsed();
    assert_eq!(totals, serial, "parallel and serial counts differ");

    // 4. Report.
    let mut top: Vec<(&String, &usize)> = totals.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    println!(
        "{} words, {} distinct; parallel {:?} on {} threads, serial {:?}",
        totals.values().sum::<usize>(),
        totals.len(),
        parallel_time,
        pool.num_threads(),
        serial_time
    );
    println!("top words:");
    for (word, n) in top.iter().take(10) {
        println!("  {word:>10} {n}");
    }

    fs::remove_dir_all(&dir)?;
    Ok(())
}

fn num_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
