#!/usr/bin/env python3
"""Prints the result tables of docs/performance.md from one run of the
benchmark suite (the JSON that `cargo bench -p futurepool-benches --bench
suite` writes), as markdown. With --splice FILE it also replaces the part of
FILE between the two marker lines

  <!-- BEGIN bench tables (scripts/bench_report.sh) -->
  <!-- END bench tables -->

with the same tables. Standard library only:

  python3 scripts/bench_tables.py [results.json] [--splice docs/performance.md]

Every value is the median of the run's repetitions; the range after it is
the lowest and highest repetition. A ratio's range is taken over the
repetitions pairwise: repetitions are interleaved across systems, so
repetition i of futurepool and repetition i of the reference ran back to
back.
"""

import json
import statistics
import sys

BEGIN = "<!-- BEGIN bench tables (scripts/bench_report.sh) -->"
END = "<!-- END bench tables -->"

FP = "futurepool"
FP_MAP = "futurepool pool.map"


def num(v):
    """A number with three significant digits, thousands separated."""
    if v != v:  # NaN
        return "-"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


class Run:
    def __init__(self, data):
        self.meta = data["meta"]
        self.records = data["records"]
        self.skipped = data.get("skipped", [])
        self.threads = int(self.meta.get("threads", 2))

    def rec(self, workload, system, metric, threads=None):
        threads = self.threads if threads is None else threads
        for r in self.records:
            if (r["workload"], r["system"], r["metric"], r["threads"]) == (
                workload, system, metric, threads):
                return r
        return None

    def systems(self, workload, threads=None):
        out = []
        for r in self.records:
            if r["workload"] == workload and (threads is None or r["threads"] == threads):
                if r["system"] not in out:
                    out.append(r["system"])
        return out

    def thread_counts(self, workload):
        return sorted({r["threads"] for r in self.records if r["workload"] == workload})


def med(r, scale=1.0):
    return statistics.median(r["samples"]) * scale


def value_range(r, scale=1.0):
    """'median (lowest-highest)'."""
    s = [x * scale for x in r["samples"]]
    if num(min(s)) == num(max(s)):
        return num(statistics.median(s))
    return f"{num(statistics.median(s))} ({num(min(s))}–{num(max(s))})"


def ratio(r, ref, higher_better=False):
    """futurepool's cost over the reference's: median and pairwise range."""
    if r is None or ref is None:
        return "-"
    if r is ref:
        return "1 (reference)"
    a, b = r["samples"], ref["samples"]
    if higher_better:  # rates: cost is 1/rate
        pair = [y / x for x, y in zip(a, b)]
        mid = statistics.median(b) / statistics.median(a)
    else:
        pair = [x / y for x, y in zip(a, b)]
        mid = statistics.median(a) / statistics.median(b)
    if len(pair) < 2 or f"{min(pair):.2f}" == f"{max(pair):.2f}":
        return f"{mid:.2f}×"
    return f"{mid:.2f}× ({min(pair):.2f}–{max(pair):.2f})"


def excess(r, none):
    """W5: CPU per idle second over the no-pool process, pairwise."""
    if r is none:
        return "(reference)"
    pair = [x - y for x, y in zip(r["samples"], none["samples"])]
    mid = statistics.median(r["samples"]) - statistics.median(none["samples"])
    if len(pair) < 2:
        return f"{mid:+.0f} µs/s"
    return f"{mid:+.0f} µs/s ({min(pair):+.0f} to {max(pair):+.0f})"


# workload: (title, metric, unit label, scale, reference, higher is better)
WORKLOADS = [
    ("W1", "throughput: 200,000 tasks submitted from one outside thread, every result collected",
     "ns_per_task", "ns per task", 1.0, "rayon spawn+oneshot", False),
    ("W2", "latency: sequential submit → get round trips on an idle pool",
     "p50_ns", "p50 µs", 1e-3, "rayon install", False),
    ("W3", "nested fork-join: fib(24), one branch submitted per call",
     "ms", "ms", 1.0, "rayon join", False),
    ("W4", "map: 1,000,000 u64 through x*x+1, results in input order",
     "ns_per_item", "ns per item", 1.0, "rayon par_iter", False),
    ("W5", "idle cost: CPU time in the idle second after one task",
     "cpu_us_per_idle_s", "CPU µs per idle s", 1.0, "no pool", False),
    ("W6", "memory: resident bytes per task queued behind blocked workers",
     "bytes_per_task", "bytes per task", 1.0, "rayon spawn (no handle)", False),
    ("W7", "contention: 4 outside threads submitting and collecting at once",
     "tasks_per_s", "M tasks per s", 1e-6, "rayon spawn+oneshot", True),
    ("W8", "scope: 100,000 tasks spawned into one scope inside the pool, each borrowing a counter",
     "ns_per_task", "ns per task", 1.0, "rayon scope", False),
]


def summary(run):
    t = run.threads
    rows = [f"#### Summary: futurepool against the reference, {t} worker threads", "",
            "| workload | futurepool | reference | futurepool's cost over the reference's |",
            "|---|---:|---:|---:|"]

    def row(label, fp, ref, unit, scale=1.0, higher=False):
        if fp is None or ref is None:
            return
        rows.append(f"| {label} | {num(med(fp, scale))} {unit} | {num(med(ref, scale))} {unit} "
                    f"| {ratio(fp, ref, higher)} |")

    row("W1 throughput (vs rayon spawn + oneshot)", run.rec("W1", FP, "ns_per_task"),
        run.rec("W1", "rayon spawn+oneshot", "ns_per_task"), "ns/task")
    row("W2 round trip p50 (vs rayon install)", run.rec("W2", FP, "p50_ns"),
        run.rec("W2", "rayon install", "p50_ns"), "µs", 1e-3)
    row("W2 round trip p99 (vs rayon install)", run.rec("W2", FP, "p99_ns"),
        run.rec("W2", "rayon install", "p99_ns"), "µs", 1e-3)
    for threads in sorted({1, t}):
        for system, how in ((FP, "submit + get per call"), ("futurepool join", "futurepool::join")):
            row(f"W3 fib(24), {how}, {threads} thread{'s' if threads > 1 else ''} (vs rayon::join)",
                run.rec("W3", system, "ms", threads), run.rec("W3", "rayon join", "ms", threads),
                "ms")
    row("W4 map (vs rayon par_iter)", run.rec("W4", FP_MAP, "ns_per_item"),
        run.rec("W4", "rayon par_iter", "ns_per_item"), "ns/item")
    fp5, ry5, no5 = (run.rec("W5", s, "cpu_us_per_idle_s") for s in (FP, "rayon install", "no pool"))
    if fp5 and ry5 and no5:
        rows.append(f"| W5 idle CPU over a process with no pool (vs rayon) | {excess(fp5, no5)} "
                    f"| {excess(ry5, no5)} | (difference, not a ratio) |")
    row("W6 memory per queued task (vs rayon spawn, no handle)", run.rec("W6", FP, "bytes_per_task"),
        run.rec("W6", "rayon spawn (no handle)", "bytes_per_task"), "B")
    row("W6 memory per queued task (vs rayon spawn + oneshot)", run.rec("W6", FP, "bytes_per_task"),
        run.rec("W6", "rayon spawn+oneshot", "bytes_per_task"), "B")
    row("W7 4 submitters (vs rayon spawn + oneshot)", run.rec("W7", FP, "tasks_per_s"),
        run.rec("W7", "rayon spawn+oneshot", "tasks_per_s"), "M tasks/s", 1e-6, higher=True)
    row("W8 scope spawns (vs rayon scope)", run.rec("W8", "futurepool scope", "ns_per_task"),
        run.rec("W8", "rayon scope", "ns_per_task"), "ns/task")
    rows.append("")
    rows.append("Below 1× futurepool is faster (or smaller); ranges are the lowest and highest "
                "of the repetitions.")
    return rows


def workload_table(run, w, title, metric, label, scale, reference, higher):
    t = run.threads
    systems = run.systems(w, t)
    if not systems:
        return []
    rows = [f"#### {w}: {title}", ""]
    if w == "W2":
        rows += [f"| system ({t} threads) | p50 µs (range) | p99 µs (range) | p50 over {reference} |",
                 "|---|---:|---:|---:|"]
        ref = run.rec(w, reference, "p50_ns")
        for s in systems:
            p50, p99 = run.rec(w, s, "p50_ns"), run.rec(w, s, "p99_ns")
            rows.append(f"| {s} | {value_range(p50, 1e-3)} | {value_range(p99, 1e-3)} "
                        f"| {ratio(p50, ref)} |")
    elif w == "W5":
        none = run.rec(w, "no pool", metric)
        rows += [f"| system ({t} threads) | {label} (range) | over no pool |", "|---|---:|---:|"]
        for s in systems:
            r = run.rec(w, s, metric)
            rows.append(f"| {s} | {value_range(r)} | {excess(r, none) if none else '-'} |")
    else:
        head = "time over" if higher else "over"
        rows += [f"| system ({t} threads) | {label} (range) | {head} {reference} |",
                 "|---|---:|---:|"]
        ref = run.rec(w, reference, metric)
        for s in systems:
            r = run.rec(w, s, metric)
            rows.append(f"| {s} | {value_range(r, scale)} | {ratio(r, ref, higher)} |")
    for sk in run.skipped:
        if sk["workload"] == w:
            rows.append(f"| {sk['system']} | {sk['why']} | |" if w != "W2"
                        else f"| {sk['system']} | {sk['why']} | | |")
    rows.append("")
    return rows


def sweep_table(run, w, metric, label, scale):
    counts = run.thread_counts(w)
    if len(counts) < 2:
        return []
    rows = [f"#### {w} across thread counts: median {label}", "",
            "| system | " + " | ".join(str(c) for c in counts) + " |",
            "|---|" + "---:|" * len(counts)]
    for s in run.systems(w):
        cells = []
        for c in counts:
            r = run.rec(w, s, metric, c)
            cells.append(num(med(r, scale)) if r else "-")
        rows.append(f"| {s} | " + " | ".join(cells) + " |")
    rows.append("")
    return rows


def tables(run):
    m = run.meta
    out = [f"Run: `{m.get('command', 'cargo bench -p futurepool-benches --bench suite')}`, "
           f"{m.get('reps', '?')} repetitions per system (W3: three times as many, W5: 3, W6: 2, "
           f"W4: at least 3), "
           f"interleaved across systems; {run.threads} worker threads unless a table says "
           f"otherwise; the suite took {m.get('seconds', '?')} s. "
           f"Raw samples: [bench-results.json](bench-results.json).", ""]
    out += summary(run)
    out.append("")
    for spec in WORKLOADS:
        out += workload_table(run, *spec)
    out += sweep_table(run, "W1", "ns_per_task", "ns per task", 1.0)
    out += sweep_table(run, "W2", "p50_ns", "p50 round trip, µs", 1e-3)
    out += sweep_table(run, "W2", "p99_ns", "p99 round trip, µs", 1e-3)
    out += sweep_table(run, "W3", "ms", "ms", 1.0)
    return "\n".join(out).rstrip() + "\n"


def splice(path, text):
    with open(path) as f:
        page = f.read()
    if BEGIN not in page or END not in page:
        sys.exit(f"{path}: the marker lines {BEGIN!r} and {END!r} are missing")
    head, rest = page.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(path, "w") as f:
        f.write(head + BEGIN + "\n\n" + text + "\n" + END + tail)


def main():
    args = sys.argv[1:]
    target = None
    if "--splice" in args:
        i = args.index("--splice")
        target = args[i + 1]
        del args[i:i + 2]
    src = args[0] if args else "target/bench-results.json"
    with open(src) as f:
        run = Run(json.load(f))
    text = tables(run)
    try:
        print(text)
    except BrokenPipeError:
        pass
    if target:
        splice(target, text)
        print(f"(tables replaced in {target})", file=sys.stderr)


if __name__ == "__main__":
    main()
