#!/usr/bin/env bash
# Regenerates everything docs/performance.md reports, from ONE full run of
# the benchmark suite:
#   1. runs `cargo bench -p futurepool-benches --bench suite` with the thread
#      sweep (W1, W2 at 1..128 workers; the other workloads at 2),
#   2. keeps its samples as docs/bench-results.json (with the machine, the
#      toolchain and the load average before and after added to "meta"),
#   3. redraws docs/plots/*.svg from that file (scripts/plot_bench.py),
#   4. prints the markdown tables (scripts/bench_tables.py) and replaces the
#      generated block of docs/performance.md with them.
# The prose around the tables (where futurepool wins and loses) is not
# generated: read it against the new numbers.
#
#   scripts/bench_report.sh                   # full run: several minutes on 2 cores
#   scripts/bench_report.sh --from FILE.json  # only steps 2-4, from an earlier run
#   SWEEP=1,2,4 REPS=3 scripts/bench_report.sh  # a shorter run
#
# The machine should be otherwise idle: other processes' load moves the
# numbers (the suite interleaves systems so that it hits all of them alike).
set -euo pipefail
cd "$(dirname "$0")/.."

SWEEP=${SWEEP:-1,2,4,8,32,128}
REPS=${REPS:-5}
results=""
if [ "${1:-}" = "--from" ]; then
    results=${2:?--from needs a results JSON file}
fi

if [ -z "$results" ]; then
    target=$(cargo metadata --format-version 1 --no-deps \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    load_before=$(cut -d' ' -f1-3 /proc/loadavg)
    echo "bench_report: load average before: $load_before"
    cargo bench -p futurepool-benches --bench suite -- \
        --sweep "$SWEEP" --reps "$REPS" --out "$target/bench-results"
    load_after=$(cut -d' ' -f1-3 /proc/loadavg)
    echo "bench_report: load average after: $load_after"
    results="$target/bench-results.json"
    LOAD_BEFORE=$load_before LOAD_AFTER=$load_after SWEEP=$SWEEP REPS=$REPS \
    RUSTC_VERSION=$(rustc --version) python3 - "$results" <<'PY'
import json, os, platform, sys
path = sys.argv[1]
with open(path) as f:
    data = json.load(f)
cpu = "unknown"
try:
    with open("/proc/cpuinfo") as f:
        cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
except (OSError, StopIteration):
    pass
meta = data["meta"]
meta["command"] = ("cargo bench -p futurepool-benches --bench suite -- "
                   f"--sweep {os.environ['SWEEP']} --reps {os.environ['REPS']}")
meta["cpu"] = cpu
meta["kernel"] = platform.release()
meta["rustc"] = os.environ["RUSTC_VERSION"]
meta["loadavg_before_build"] = os.environ["LOAD_BEFORE"]
meta["loadavg_after"] = os.environ["LOAD_AFTER"]
with open(path, "w") as f:
    json.dump(data, f, indent=1, ensure_ascii=False)
    f.write("\n")
PY
fi

if [ "$(realpath "$results")" != "$(realpath docs/bench-results.json 2>/dev/null || true)" ]; then
    cp "$results" docs/bench-results.json
fi
python3 scripts/plot_bench.py docs/bench-results.json docs/plots
python3 scripts/bench_tables.py docs/bench-results.json --splice docs/performance.md
echo "bench_report: docs/bench-results.json, docs/plots/*.svg and the tables of docs/performance.md are regenerated"
