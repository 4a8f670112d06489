#!/usr/bin/env python3
"""Turns the benchmark suite's results (target/bench-results.json, written by
`cargo bench -p futurepool-benches --bench suite`) into the SVG plots of
docs/performance.md (scripts/bench_report.sh runs both):

  docs/plots/w1_threads.svg   W1 time per task as the thread count varies
  docs/plots/w2_threads.svg   W2 p50 and p99 round trip as the thread count varies

Standard library only, so it runs wherever python3 does:

  python3 scripts/plot_bench.py [results.json] [output-dir]
"""

import json
import math
import os
import sys
from xml.sax.saxutils import escape

COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"]
W, H = 900, 440
LEFT, RIGHT, TOP, BOTTOM = 80, 340, 50, 60


def series(records, workload, metric):
    """{system: [(threads, value), ...]} for one workload and metric."""
    out = {}
    for r in records:
        if r["workload"] == workload and r["metric"] == metric:
            out.setdefault(r["system"], []).append((r["threads"], r["value"]))
    for pts in out.values():
        pts.sort()
    return out


def nice_log_ticks(lo, hi):
    ticks = []
    e = math.floor(math.log10(lo))
    while 10 ** e <= hi * 1.0001:
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo / 1.0001 <= v <= hi * 1.0001:
                ticks.append(v)
        e += 1
    return ticks or [lo, hi]


def fmt(v):
    if v >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


def plot(path, title, ylabel, lines):
    """lines: list of (label, [(x, y)], color, dashed)."""
    xs = sorted({x for _, pts, _, _ in lines for x, _ in pts})
    ys = [y for _, pts, _, _ in lines for _, y in pts if y > 0]
    if not xs or not ys:
        return False
    ylo, yhi = min(ys) / 1.3, max(ys) * 1.3
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x):
        if len(xs) == 1:
            return LEFT + pw / 2
        # Thread counts grow geometrically: a log2 axis spaces them evenly.
        lx = [math.log2(v) for v in xs]
        return LEFT + (math.log2(x) - lx[0]) / (lx[-1] - lx[0]) * pw

    def py(y):
        return TOP + ph - (math.log10(y) - math.log10(ylo)) / (math.log10(yhi) - math.log10(ylo)) * ph

    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{LEFT}" y="28" font-size="15" font-weight="bold">{escape(title)}</text>']
    for t in nice_log_ticks(ylo, yhi):
        y = py(t)
        s.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        s.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{fmt(t)}</text>')
    for x in xs:
        X = px(x)
        s.append(f'<line x1="{X:.1f}" x2="{X:.1f}" y1="{TOP}" y2="{TOP + ph}" stroke="#eee"/>')
        s.append(f'<text x="{X:.1f}" y="{TOP + ph + 18}" text-anchor="middle">{x}</text>')
    s.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    s.append(f'<text x="{LEFT + pw / 2}" y="{H - 15}" text-anchor="middle">worker threads</text>')
    s.append(f'<text transform="translate(18,{TOP + ph / 2}) rotate(-90)" '
             f'text-anchor="middle">{escape(ylabel)} (log scale)</text>')
    for i, (label, pts, color, dashed) in enumerate(lines):
        dash = ' stroke-dasharray="6,4"' if dashed else ""
        width = 3 if label.startswith("futurepool") else 1.8
        d = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts if y > 0)
        s.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="{width}"{dash}/>')
        for x, y in pts:
            if y > 0:
                s.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"/>')
        ly = TOP + 10 + i * 18
        s.append(f'<line x1="{LEFT + pw + 12}" x2="{LEFT + pw + 36}" y1="{ly}" y2="{ly}" '
                 f'stroke="{color}" stroke-width="{width}"{dash}/>')
        s.append(f'<text x="{LEFT + pw + 42}" y="{ly + 4}">{escape(label)}</text>')
    s.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(s) + "\n")
    return True


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "target/bench-results.json"
    out = sys.argv[2] if len(sys.argv) > 2 else "docs/plots"
    with open(src) as f:
        data = json.load(f)
    recs = data["records"]
    os.makedirs(out, exist_ok=True)
    note = f" ({data['meta'].get('mode', '?')} run)"

    w1 = series(recs, "W1", "ns_per_task")
    lines = [(sys_, pts, COLORS[i % len(COLORS)], False) for i, (sys_, pts) in enumerate(w1.items())]
    if plot(os.path.join(out, "w1_threads.svg"),
            "W1: 200,000 tasks from outside, time per task" + note, "ns per task", lines):
        print("wrote", os.path.join(out, "w1_threads.svg"))

    p50 = series(recs, "W2", "p50_ns")
    p99 = series(recs, "W2", "p99_ns")
    lines = []
    # A thread per round trip is off this scale (its p99 is milliseconds):
    # it is in the tables, not the plot.
    p50 = {k: v for k, v in p50.items() if not k.startswith("std::thread")}
    for i, sys_ in enumerate(p50):
        c = COLORS[i % len(COLORS)]
        lines.append((sys_ + " p50", [(x, y / 1000) for x, y in p50[sys_]], c, False))
        if sys_ in p99:
            lines.append((sys_ + " p99", [(x, y / 1000) for x, y in p99[sys_]], c, True))
    if plot(os.path.join(out, "w2_threads.svg"),
            "W2: submit -> get round trip on an idle pool" + note, "µs per round trip", lines):
        print("wrote", os.path.join(out, "w2_threads.svg"))


if __name__ == "__main__":
    main()
