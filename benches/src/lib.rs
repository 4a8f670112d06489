//! The benchmark harness of futurepool, as a workspace member of its own so
//! that the peers it measures against (rayon, the `threadpool` crate,
//! futures' and tokio's pools, criterion) are never dependencies of the
//! library. Not published. The benchmarks are in `benches/benches/`:
//!
//! ```text
//! cargo bench -p futurepool-benches --bench suite             # W1..W7
//! cargo bench -p futurepool-benches --bench suite -- --quick  # smoke run
//! cargo bench -p futurepool-benches --bench map
//! cargo bench -p futurepool-benches --bench async_oneshot
//! ```
//!
//! `scripts/bench_report.sh` runs the full suite and regenerates
//! `docs/bench-results.json`, the plots and the tables of
//! `docs/performance.md`.
