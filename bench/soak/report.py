"""What the soak saw, minute by minute, and the report it ends with (last line JSON)."""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.soak.memory import Probe
from flows.ingest.status import IngestReport

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_S = 10.0  # RSS and counters


@dataclass
class Sample:
    t: float  # seconds since ingest was subscribed
    rss: float
    trades: int
    quotes: int
    reconnects: int
    repaired: int
    open_holes: int
    broker_rss: float | None
    fake_rss: float | None


@dataclass
class Run:
    """What the soak saw; filled while it runs."""

    samples: list[Sample] = field(default_factory=list)
    queue_max: dict[int, int] = field(default_factory=lambda: collections.defaultdict(int))
    events: dict[int, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    mid: Probe | None = None
    end: Probe | None = None
    chdb_mb: dict[int, float | None] = field(default_factory=dict)  # by minute
    py_blocks: dict[int, int] = field(default_factory=dict)  # pymalloc blocks, by minute
    fds: dict[int, int] = field(default_factory=dict)  # open file descriptors, by minute
    after_gc: str = ""
    report: IngestReport | None = None
    minutes: int = 0  # soaked, after which the exchange stopped trading
    withheld: int = 0  # ids the fake was still withholding when it stopped trading
    stopped_early: str = ""
    verified: dict[str, Any] = field(default_factory=dict)
    drained_s: float = 0.0


HEADER = (
    f"{'min':>4} {'RSS MB':>8} {'trades/s':>9} {'quotes/s':>9} {'queue max':>9} "
    f"{'reconn':>6} {'repaired':>8} {'holes':>5} {'broker MB':>9} {'fake MB':>8} "
    f"{'py kblk':>7} {'chdb MB':>7} {'fds':>4}  events"
)


def row(run: Run, minute: int) -> str:
    a, b = run.samples[6 * (minute - 1)], run.samples[6 * minute]
    dt = b.t - a.t
    fmt = lambda v: f"{v:,.0f}" if v is not None else "-"  # noqa: E731
    fmt1 = lambda v: f"{v:,.1f}" if v is not None else "-"  # noqa: E731
    return (
        f"{minute:>4} {b.rss:>8.1f} {(b.trades - a.trades) / dt:>9,.0f} "
        f"{(b.quotes - a.quotes) / dt:>9,.0f} {run.queue_max.get(minute, 0):>9,} "
        f"{b.reconnects - a.reconnects:>6} {b.repaired - a.repaired:>8} {b.open_holes:>5} "
        f"{fmt(b.broker_rss):>9} {fmt(b.fake_rss):>8} "
        f"{run.py_blocks.get(minute, 0) / 1000:>7,.0f} {fmt1(run.chdb_mb.get(minute)):>7} "
        f"{run.fds.get(minute, 0):>4}  "
        f"{', '.join(run.events.get(minute, []))}"
    )


def slope_per_h(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per hour."""
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    cov = sum((t - mt) * (v - mv) for t, v in points)
    return cov / var * 3600 if var else 0.0


def source_state() -> str:
    """Which code ran: HEAD, the files that differ from it, and a digest of them all."""
    dirs = ["flows", "runtime", "schemas", "tests/fakes"]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", *dirs],
            cwd=ROOT, capture_output=True, text=True,
        ).stdout.splitlines()  # fmt: skip
    except OSError:
        return "git unavailable"
    files = sorted(p for d in dirs for p in (ROOT / d).rglob("*.py"))
    digest = hashlib.sha1(b"".join(p.read_bytes() for p in files)).hexdigest()[:10]
    state = f"changed: {', '.join(c.strip() for c in changed)}" if changed else "clean"
    return f"HEAD {head}, {state} (sha1 of {', '.join(dirs)}: {digest})"


def report(args: argparse.Namespace, run: Run, wall_s: float) -> None:
    warm = args.warmup_min
    if run.minutes <= warm:
        print(f"{run.stopped_early}: nothing to report after a {warm}-minute warm-up")
        raise SystemExit(1)
    kept = [s for s in run.samples if s.t >= warm * 60 - 1e-6]
    start, end = kept[0], kept[-1]
    rss_max = max(s.rss for s in kept)
    rss_mean = sum(s.rss for s in kept) / len(kept)
    slope = slope_per_h([(s.t, s.rss) for s in kept])
    broker_slope = slope_per_h([(s.t, s.broker_rss) for s in kept if s.broker_rss is not None])
    span = end.t - start.t
    assert run.report is not None
    rep, v = run.report, run.verified
    trades_per_s = (end.trades - start.trades) / span
    quotes_per_s = (end.quotes - start.quotes) / span

    print()
    print(f"per minute, after a {warm}-minute warm-up (RSS of this process only):")
    print(HEADER)
    for minute in range(warm + 1, run.minutes + 1):
        print(row(run, minute))
    print()
    print(f"RSS at warm-up end (minute {warm}): {start.rss:.1f} MB")
    print(f"RSS at the end (minute {run.minutes}):   {end.rss:.1f} MB")
    print(f"RSS max after warm-up:        {rss_max:.1f} MB (min {min(s.rss for s in kept):.1f})")
    print(
        f"RSS slope (least squares, {len(kept)} samples every {SAMPLE_S:g} s): "
        f"{slope:+.1f} MB/h = {100 * slope / rss_mean:+.2f} % of the mean "
        f"({rss_mean:.1f} MB) per hour"
    )
    if start.broker_rss is not None and end.broker_rss is not None:
        print(
            f"(broker, not ours: {start.broker_rss:,.0f} -> {end.broker_rss:,.0f} MB, "
            f"{broker_slope:+,.0f} MB/h: Tansu keeps every message in memory)"
        )
    print(
        f"throughput after warm-up: {trades_per_s:,.0f} trades/s, {quotes_per_s:,.0f} quotes/s "
        f"(offered {args.symbols * args.rate:,.0f} each); queue max "
        f"{max((q for m, q in run.queue_max.items() if m > warm), default=0):,}"
    )
    print(
        f"reconnects by cause: {dict(rep.reconnects)}; gaps by cause: {dict(rep.repairs.gaps)}, "
        f"{rep.repairs.repaired} repaired, {rep.repairs.unrepairable} unrepairable, "
        f"{rep.repairs.recovered:,} trades recovered; {rep.counts.duplicates:,} duplicates "
        f"dropped; drained in {run.drained_s:.1f} s"
    )
    print(
        f"ground truth: {v.get('ids_expected', 0):,} ids over {v.get('symbols_seen')} symbols "
        f"(unseen {len(v.get('symbols_unseen', []))}), {v.get('consumed', 0):,} on the topic; "
        f"missing {v.get('missing')}, duplicates {v.get('duplicates')}, "
        f"beyond truth {v.get('beyond_truth')}, before first {v.get('before_first')}, "
        f"undecodable {v.get('undecodable')}, unread {v.get('unread_at_end')}"
    )
    if v.get("holes"):
        print("first missing id ranges: " + ", ".join(f"{s} {a}..{b}" for s, a, b in v["holes"]))
    if run.withheld:
        print(f"{run.withheld} ids were still being withheld when trading stopped: never sent")
    a, b = run.mid, run.end
    if a is not None and b is not None:
        fmt = lambda v: "?" if v is None else f"{v:,.1f}"  # noqa: E731
        grown = (b.types - a.types).most_common(8)
        print(f"where memory went, minute {a.minute} -> minute {b.minute}:")
        print(f"  RSS {a.rss:.1f} -> {b.rss:.1f} MB")
        print(
            f"  chdb MemoryTracking {fmt(a.chdb_tracked_mb)} -> {fmt(b.chdb_tracked_mb)} MB; "
            f"data_quality active parts {a.dq_parts} -> {b.dq_parts}"
        )
        if a.traced_mb is not None and b.traced_mb is not None:
            print(f"  Python heap (tracemalloc) {a.traced_mb:.1f} -> {b.traced_mb:.1f} MB")
        print(
            f"  gc-tracked objects {sum(a.types.values()):,} -> {sum(b.types.values()):,}; "
            "grown most: " + (", ".join(f"{n} +{c:,}" for n, c in grown) or "none")
        )
        if run.after_gc:
            print(f"  {run.after_gc}")
        if a.malloc is not None and b.malloc is not None:
            print(f"  tracemalloc, minute {a.minute} -> {b.minute}, top 15 by size growth:")
            for stat in b.malloc.compare_to(a.malloc, "traceback")[:15]:
                print(f"    {stat.size_diff / 1024:+10.1f} KiB {stat.count_diff:+8} blocks")
                for line in stat.traceback.format()[-6:]:
                    print(f"        {line}")
    if run.stopped_early:
        print(run.stopped_early)
    print(f"wall time {wall_s / 60:.1f} min")
    missing = v.get("missing")
    if missing is None or v.get("symbols_unseen") or v.get("unread_at_end"):
        missing = -1  # could not be verified: never report a clean 0
    print(
        json.dumps(
            {
                "minutes": run.minutes,
                "rss_start_mb": round(start.rss, 1),
                "rss_end_mb": round(end.rss, 1),
                "rss_max_mb": round(rss_max, 1),
                "slope_mb_per_h": round(slope, 2),
                "slope_pct_of_mean_per_h": round(100 * slope / rss_mean, 3),
                "trades": v.get("consumed", 0),
                "trades_per_s": round(trades_per_s),
                "quotes_per_s": round(quotes_per_s),
                "gaps_repaired": rep.repairs.repaired,
                "unrepairable": rep.repairs.unrepairable,
                "missing": missing,
            }
        )
    )
