"""Live ingest soak: does our RSS stay flat over a long run at a high message rate?

Runs `tests.fakes.binance.FakeBinance` in a child process (its memory and its GIL are
not ours), `flows.ingest.run.LiveIngest` in this process against the embedded broker (Tansu,
another process: the messages it stores grow *its* RSS, not ours), and a verifier in a
third process that reads the trades topic as fast as it fills, keeps a compact map of
the ids seen, and at the end compares it with the fake's ground truth.

While it runs, the exchange misbehaves on a schedule, so the soak exercises reconnects
and gap repair too, not just the happy path. In each `--disturb-every-s` period (5 min):

- at 1/5 of it, a run of ids of three symbols is withheld from the streams (REST still
  has them): 15, 150 or 1,200 ids, the last more than one REST page;
- at `--max-connection-s` (170 s) the fake cuts every socket, as Binance does at 24 h
  (scaled down, and shorter than the period: a drop renews every socket);
- at its end every connection is aborted (a network cut), except in the middle of the
  run, where the fake sends ``serverShutdown`` instead (replacement with overlap).

A cut or a drop leaves a gap in each of the 400 symbols, and a spot repair costs 25 of
Binance's 6,000 REST weight a minute: 400 gaps take ~1.7 min of repairs, so the events
are spaced for each batch to be repaired before the next one.

Our RSS (``/proc/self/statm``) is sampled every 10 s. The first `--warmup-min` minutes
(connections, buffers, caches and the allocator's arenas filling up) are left out; for
each later minute it prints RSS, trades/s, quotes/s, the largest queue depth seen (sampled
every second), reconnects, gaps repaired and the broker's and the fake's RSS for
comparison; then RSS at the end of warm-up and at the end, the peak, and the least-squares
slope of RSS against time in MB/hour and relative to the mean. At the end the exchange
stops trading, ingest drains and repairs what is open, and the verifier counts the ids
missing from the topic against the fake's ground truth: it must be 0.

The rate is bounded by the broker's memory, not by ingest: Tansu's memory storage keeps
every message (~330 bytes each, measured) and cannot delete any (no retention, no
DeleteRecords), so at 20k trades/s + 20k quotes/s (half of bench/live_ingest.py's ceiling
on our 2-core machines) it grows ~750 MB a minute and would exhaust this 24 GB box before
30 minutes. The default, 400 symbols x 25 trades/s (10k trades/s + 10k quotes/s, ~390 MB
a minute, ~13 GB at the end), fits with room to spare; the soak stops early, and says so,
if the machine's available memory falls below `--min-free-mb`. A 30-minute run::

    nohup .venv/bin/python bench/soak_ingest.py > /tmp/soak.log 2>&1 &

Not for CI. Last line, JSON:
{"minutes": M, "rss_start_mb": .., "rss_end_mb": .., "rss_max_mb": .., "slope_mb_per_h": ..,
 "trades": .., "trades_per_s": .., "gaps_repaired": .., "missing": ..}
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import gc
import hashlib
import json
import logging
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgspec

# The fake exchange lives in tests/, which is not installed: import it from the checkout.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows.ingest.status import IngestReport  # noqa: E402
from runtime.broker import EmbeddedBroker  # noqa: E402
from runtime.clickhouse import connect  # noqa: E402
from runtime.kafka import consumer_config, ensure_topics  # noqa: E402
from runtime.process import tune_for_streaming  # noqa: E402
from runtime.settings import (  # noqa: E402
    ClickHouseSettings,
    IngestSettings,
    KafkaSettings,
    Settings,
)
from schemas import topics  # noqa: E402
from tickscan.ingest import LiveIngest  # noqa: E402

logger = logging.getLogger("soak")

MB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")
SAMPLE_S = 10.0  # RSS and counters
QUEUE_SAMPLE_S = 1.0  # queue depth, whose peaks are short
HISTORY_KEEP_S = 600.0  # trades the fake keeps for REST (repairs look back minutes)
GAP_SKIPS = (15, 150, 1200)  # ids withheld from the streams, per id-gap disturbance
DRAIN_TIMEOUT_S = 300.0
BROKER_BYTES_PER_MESSAGE = 330  # Tansu's memory storage, measured by this soak


def mem_available_mb() -> float:
    """The machine's available memory (MemAvailable) in MB."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("inf")


class _NoRepairChatter(logging.Filter):
    """Drops flows.ingest.gaps' line per gap found (thousands per run; the table counts them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).endswith("; repairing")


def rss_mb(pid: int | str = "self") -> float | None:
    """Resident set size of a process in MB (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE / MB
    except (OSError, ValueError, IndexError):
        return None


# -- the exchange, in a child process ----------------------------------------------------------


def _trim_history(fake: Any, keep_s: float) -> None:
    """Forget the fake's trades older than `keep_s`.

    The fake keeps every trade it made, as ground truth for REST: ~390 bytes each, 14 GB
    in 30 minutes at 20k trades/s. Gap repair asks for ids seconds to minutes old, and
    the verifier needs only each symbol's next id, so older trades go.
    """
    cutoff = fake.now_ms() - int(keep_s * 1000)

    def trim() -> None:
        for sym in fake._symbols.values():
            n = bisect.bisect_left(sym.times, cutoff)
            if n:
                del sym.prints[:n], sym.times[:n], sym.firsts[:n]

    fake._apply(trim)


def _last_ids(fake: Any) -> dict[str, dict[str, int]]:
    """Each symbol's last id made so far (withheld ones included), the ids ingest follows;
    and the ids still to be withheld (a run that did not end before the market stopped
    leaves ids no later trade reveals as missing)."""
    last: dict[str, int] = {}
    withheld: dict[str, int] = {}

    def read() -> None:
        for name, sym in fake._symbols.items():
            last[name] = (sym.next_raw if fake.market == "spot" else sym.next_agg) - 1
            if sym.skip:
                withheld[name] = sym.skip

    fake._apply(read)
    return {"last": last, "withheld": withheld}


def exchange(
    market: str, symbols: int, rate: float, max_connection_s: float, conn: Connection
) -> None:
    """Child process: run the fake exchange and obey the commands sent over `conn`."""
    from tests.fakes.binance import FakeBinance

    fake = FakeBinance(market, symbols=symbols, rate=rate, seed=1)  # type: ignore[arg-type]
    fake.max_connection_s = max_connection_s
    fake.start_in_thread()
    try:
        conn.send((fake.rest_url, fake.ws_url, fake.symbols))
        next_trim = time.monotonic() + 60.0
        while True:
            if conn.poll(max(0.0, next_trim - time.monotonic())):
                cmd, arg = conn.recv()
                result: Any = None
                if cmd == "stop":
                    conn.send(None)
                    return
                if cmd == "drop":
                    fake.drop_connections()
                elif cmd == "shutdown":
                    fake.server_shutdown()
                elif cmd == "skip":
                    fake.skip_ids(*arg)
                elif cmd == "freeze":
                    fake._apply(lambda: setattr(fake, "rate", 0.0))
                elif cmd == "truth":
                    result = _last_ids(fake)
                else:
                    result = f"unknown command {cmd!r}"
                conn.send(result)
            if time.monotonic() >= next_trim:
                _trim_history(fake, HISTORY_KEEP_S)
                next_trim += 60.0
    finally:
        fake.stop_in_thread()


class Exchange:
    """This side of the exchange child's pipe; one command at a time, off the event loop."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()

    async def call(self, cmd: str, arg: Any = None) -> Any:
        def roundtrip() -> Any:
            self._conn.send((cmd, arg))
            if not self._conn.poll(60):
                raise RuntimeError(f"the fake exchange did not answer {cmd!r}")
            return self._conn.recv()

        async with self._lock:
            return await asyncio.to_thread(roundtrip)


# -- the verifier, in a child process -------------------------------------------------------------


class _TradeId(msgspec.Struct):
    symbol: str
    trade_id: int


class _Coverage:
    """The ids of one symbol seen on the topic: all of first..low, plus `above` past low."""

    __slots__ = ("above", "first", "low")

    def __init__(self, first: int) -> None:
        self.first = first
        self.low = first
        self.above: set[int] = set()


def verifier(bootstrap: str, topic: str, conn: Connection) -> None:
    """Child process: read `topic` from the start until told to finish, then count the
    ids missing against the ground truth it is sent ({symbol: last id})."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(consumer_config(bootstrap))
    partitions = sorted(consumer.list_topics(topic, timeout=30).topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    decode = msgspec.json.Decoder(_TradeId).decode
    cover: dict[str, _Coverage] = {}
    counts = collections.Counter[str]()

    def take(messages: list[Any]) -> None:
        for msg in messages:
            if msg.error() is not None:
                counts["errors"] += 1
                continue
            try:
                t = decode(msg.value())
            except msgspec.DecodeError:
                counts["undecodable"] += 1
                continue
            counts["consumed"] += 1
            c = cover.get(t.symbol)
            tid = t.trade_id
            if c is None:
                cover[t.symbol] = _Coverage(tid)
            elif tid == c.low + 1:
                c.low = tid
                above = c.above
                while above and c.low + 1 in above:
                    above.remove(c.low + 1)
                    c.low += 1
            elif tid <= c.low or tid in c.above:
                counts["duplicates" if tid >= c.first else "before_first"] += 1
            else:
                c.above.add(tid)

    try:
        while not conn.poll():
            take(consumer.consume(10_000, 0.5))
        _, truth = conn.recv()
        # Ingest has flushed: read up to the end of every partition.
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in partitions
        }
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            positions = consumer.position([TopicPartition(topic, p) for p in partitions])
            if all(tp.offset >= ends[tp.partition] for tp in positions):
                break
            take(consumer.consume(10_000, 0.5))
        else:
            counts["unread_at_end"] = 1
        missing = beyond = 0
        unseen: list[str] = []
        holes: list[tuple[str, int, int]] = []  # the first few missing id ranges
        for symbol, last in truth.items():
            c = cover.get(symbol)
            if c is None:
                unseen.append(symbol)
                continue
            got_above = sum(1 for i in c.above if i <= last)
            beyond += len(c.above) - got_above + max(0, c.low - last)
            lost = max(0, last - c.low) - got_above
            missing += lost
            if lost and len(holes) < 5:
                start = None
                for i in range(c.low + 1, last + 2):
                    if i <= last and i not in c.above:
                        start = i if start is None else start
                    elif start is not None:
                        holes.append((symbol, start, i - 1))
                        start = None
        conn.send(
            {
                "consumed": counts["consumed"],
                "ids_expected": sum(truth[s] - c.first + 1 for s, c in cover.items() if s in truth),
                "missing": missing,
                "duplicates": counts["duplicates"],
                "before_first": counts["before_first"],
                "beyond_truth": beyond,
                "undecodable": counts["undecodable"],
                "errors": counts["errors"],
                "unread_at_end": counts["unread_at_end"],
                "symbols_seen": len(cover),
                "symbols_unseen": unseen,
                "holes": holes[:5],
                "rss_mb": rss_mb(),
            }
        )
    finally:
        consumer.close()


# -- the soak ----------------------------------------------------------------------------------


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
class Probe:
    """Where memory is, at minute 5 and at the end, to tell what grows."""

    minute: int
    rss: float
    types: collections.Counter[str]  # gc-tracked objects by type
    chdb_tracked_mb: float | None  # ClickHouse's MemoryTracking: the embedded engine's heap
    dq_parts: int | None  # active parts of data_quality (one per insert until merged)
    malloc: tracemalloc.Snapshot | None = None
    traced_mb: float | None = None


async def chdb_memory(settings: Settings) -> tuple[float | None, int | None]:
    """ClickHouse's MemoryTracking in MB (the embedded engine's own heap) and the active
    parts of data_quality; a second client on the chdb engine shares it with ingest."""

    def chdb() -> tuple[float, int]:
        client = connect(settings.clickhouse_dsn())
        try:
            tracked = client.query(
                "SELECT value FROM system.metrics WHERE metric = 'MemoryTracking'"
            ).result_rows[0][0]
            parts = client.query(
                "SELECT count() FROM system.parts WHERE database = {db:String} "
                "AND table = 'data_quality' AND active",
                parameters={"db": settings.clickhouse.database},
            ).result_rows[0][0]
        finally:
            client.close()
        return tracked / MB, parts

    try:
        return await asyncio.to_thread(chdb)
    except Exception as exc:  # a diagnostic: never let it end the soak
        logger.warning("cannot read chdb's memory: %s", exc)
        return None, None


async def probe(minute: int, settings: Settings) -> Probe:
    """Take a `Probe`."""
    tracked, parts = await chdb_memory(settings)
    tracing = tracemalloc.is_tracing()
    return Probe(
        minute=minute,
        rss=rss_mb() or 0.0,
        types=gc_types(),
        chdb_tracked_mb=tracked,
        dq_parts=parts,
        malloc=tracemalloc.take_snapshot() if tracing else None,
        traced_mb=tracemalloc.get_traced_memory()[0] / MB if tracing else None,
    )


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


def schedule(
    seconds: float, every_s: float, symbols: list[str], rate: float
) -> list[tuple[float, str, Any]]:
    """The disturbances: (time since start, command, argument), none in the last minute.

    A withheld run lasts at most 50 s at `rate`, so that it ends before the market stops
    (its ids are seen missing only when the next trade comes)."""
    plan: list[tuple[float, str, Any]] = []
    drops = int((seconds - 60) // every_s)
    middle = max(1, (drops + 1) // 2)
    for k in range(1, drops + 1):
        plan.append((k * every_s, "shutdown" if k == middle and drops > 1 else "drop", None))
    k = 0
    while (k + 0.2) * every_s < seconds - 60:
        size = min(GAP_SKIPS[k % len(GAP_SKIPS)], max(1, int(rate * 50)))
        for j in range(3):
            symbol = symbols[(7 * k + 131 * j) % len(symbols)]
            plan.append(((k + 0.2) * every_s, "skip", (symbol, size)))
        k += 1
    return sorted(plan, key=lambda e: e[0])


def gc_types() -> collections.Counter[str]:
    """Live objects the cyclic collector tracks, by type (containers: dicts, lists, ...)."""
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


async def soak(
    args: argparse.Namespace,
    settings: Settings,
    names: dict[str, str],
    rest: str,
    ws: str,
    symbols: list[str],
    exchange_: Exchange,
    pids: dict[str, int],
    verify: Connection,
) -> Run:
    run = Run()
    live = LiveIngest(
        settings,
        market=args.market,
        rest_url=rest,
        ws_base=ws,
        trades_topic=names["trades"],
        quotes_topic=names["quotes"],
        deadletter_topic=names["deadletter"],
    )
    stop = asyncio.Event()
    task = asyncio.create_task(live.run(stop), name="ingest")
    wanted = 2 * len(symbols)
    deadline = time.monotonic() + 120
    while len(live.status().freshness) < wanted:
        if task.done():
            await task  # raises what stopped it
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(live.status().freshness)}/{wanted} streams heard")
        await asyncio.sleep(0.2)
    t0 = time.monotonic()
    seconds = args.minutes * 60.0
    mid_minute = min(5, args.minutes - 1)
    print(f"subscribed {wanted} streams; soaking {args.minutes} min", flush=True)
    print(HEADER, flush=True)

    def now() -> float:
        return time.monotonic() - t0

    async def disturb() -> None:
        for at, cmd, arg in schedule(seconds, args.disturb_every_s, symbols, args.rate):
            await asyncio.sleep(max(0.0, at - now()))
            label = cmd if cmd != "skip" else f"gap {arg[0]}:{arg[1]}"
            await exchange_.call(cmd, arg)
            run.events[int(now() // 60) + 1].append(label)

    async def watch_queue() -> None:
        while True:
            minute = int(now() // 60) + 1
            run.queue_max[minute] = max(run.queue_max[minute], live.status().queued)
            await asyncio.sleep(QUEUE_SAMPLE_S)

    def sample(t: float) -> Sample:
        s = live.status()
        return Sample(
            t=t,
            rss=rss_mb() or 0.0,
            trades=s.counts.trades,
            quotes=s.counts.quotes,
            reconnects=sum(s.reconnects.values()),
            repaired=s.repairs.repaired,
            open_holes=s.open_holes,
            broker_rss=rss_mb(pids["broker"]),
            fake_rss=rss_mb(pids["fake"]),
        )

    helpers = [asyncio.create_task(disturb()), asyncio.create_task(watch_queue())]
    try:
        run.samples.append(sample(0.0))
        k = 1
        while k * SAMPLE_S <= seconds + 1e-6:
            await asyncio.sleep(max(0.0, k * SAMPLE_S - now()))
            if args.collect_every_s and (k * SAMPLE_S) % args.collect_every_s < 1e-6:
                gc.collect()
            if task.done():
                await task
                raise RuntimeError("ingest stopped by itself")
            run.samples.append(sample(now()))
            free = mem_available_mb()
            if free < args.min_free_mb:
                run.stopped_early = (
                    f"stopped early after {now() / 60:.1f} min: the machine has "
                    f"{free:,.0f} MB available, under --min-free-mb {args.min_free_mb:,}"
                )
                print(run.stopped_early, flush=True)
                break
            if k % 6 == 0:
                minute = k // 6
                run.minutes = minute
                run.py_blocks[minute] = sys.getallocatedblocks()
                run.fds[minute] = len(os.listdir("/proc/self/fd"))
                run.chdb_mb[minute] = (await chdb_memory(settings))[0]
                if minute > args.warmup_min:
                    print(row(run, minute), flush=True)
                if minute == mid_minute:
                    run.mid = await probe(minute, settings)
            k += 1
        del run.samples[6 * run.minutes + 1 :]  # a partial last minute, if stopped early
        run.end = await probe(run.minutes, settings)
        # After the figures: how much of the end's memory was garbage in reference cycles,
        # waiting for a full collection (rare under tune_for_streaming's thresholds)?
        before = rss_mb() or 0.0
        freed = gc.collect()
        after = gc_types()
        grown = (after - run.mid.types).most_common(6) if run.mid is not None else []
        run.after_gc = (
            f"a full gc.collect() after the last sample freed {freed:,} objects "
            f"(InsertContext {run.end.types['InsertContext']:,} -> {after['InsertContext']:,}, "
            f"gc-tracked {sum(run.end.types.values()):,} -> {sum(after.values()):,}); "
            f"RSS {before:.1f} -> {rss_mb() or 0.0:.1f} MB; still more than at the first "
            "probe: " + (", ".join(f"{n} +{c:,}" for n, c in grown) or "nothing")
        )
    finally:
        for h in helpers:
            h.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)

    # Stop trading, let ingest drain and repair, then compare with the ground truth.
    await exchange_.call("freeze")
    started = time.monotonic()
    quiet_since: float | None = None
    grace = settings.ingest.gap_grace_s + 2.0
    while time.monotonic() - started < DRAIN_TIMEOUT_S:
        s = live.status()
        if s.queued or s.open_holes or s.repairs_running:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= grace:
            break
        await asyncio.sleep(0.25)
    run.drained_s = time.monotonic() - started
    truth = await exchange_.call("truth")
    run.withheld = sum(truth["withheld"].values())
    stop.set()
    run.report = await task
    verify.send(("finish", truth["last"]))
    run.verified = await asyncio.to_thread(lambda: verify.recv() if verify.poll(600) else {})
    return run


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--symbols", type=int, default=400)
    parser.add_argument(
        "--rate", type=float, default=25.0,
        help="trades/s per symbol (default 25: 10k trades/s + 10k quotes/s in all)",
    )  # fmt: skip
    parser.add_argument("--market", default="spot", choices=["spot", "usdm"])
    parser.add_argument("--warmup-min", type=int, default=3, help="minutes left out of the figures")
    parser.add_argument(
        "--disturb-every-s", type=float, default=300.0,
        help="a connection drop (one serverShutdown mid-run) this often; id gaps in between",
    )  # fmt: skip
    parser.add_argument(
        "--max-connection-s", type=float, default=170.0,
        help="the fake cuts each socket this long after it opened (less than --disturb-every-s)",
    )  # fmt: skip
    parser.add_argument(
        "--min-free-mb", type=int, default=2048,
        help="stop early (and report) if the machine's available memory falls below this",
    )  # fmt: skip
    parser.add_argument(
        "--collect-every-s", type=float, default=0.0,
        help="run a full gc.collect() this often (a diagnostic: 0, the default, never does)",
    )  # fmt: skip
    parser.add_argument(
        "--tracemalloc", type=int, default=0, metavar="FRAMES",
        help="trace allocations with FRAMES frames and diff minute 5 vs the end (slow: "
        "ingest then keeps up with ~1k trades/s, so lower --rate)",
    )  # fmt: skip
    args = parser.parse_args()
    args.minutes = float(args.minutes)
    if args.minutes * 60 < (args.warmup_min + 1) * 60:
        parser.error("--minutes must leave at least one minute after the warm-up")
    args.minutes = int(args.minutes)
    tune_for_streaming()
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("flows.ingest.gaps").addFilter(_NoRepairChatter())
    if args.tracemalloc:
        tracemalloc.start(args.tracemalloc)
    if args.max_connection_s >= args.disturb_every_s:
        logger.warning("--max-connection-s >= --disturb-every-s: the drops pre-empt every cut")
    broker_gb = (
        2 * args.symbols * args.rate * (args.minutes + 5) * 60 * BROKER_BYTES_PER_MESSAGE / 1e9
    )
    if broker_gb * 1000 > mem_available_mb() - args.min_free_mb:
        logger.warning(
            "the broker will need ~%.1f GB by the end; %.1f GB are available: "
            "the soak will stop early", broker_gb, mem_available_mb() / 1000,
        )  # fmt: skip

    print(
        f"soak {args.market}: {args.symbols} symbols x {args.rate:g} trades/s = "
        f"{args.symbols * args.rate:,.0f} trades/s + as many quotes offered, {args.minutes} min "
        f"(warm-up {args.warmup_min}); drop every {args.disturb_every_s:g} s, sockets cut at "
        f"{args.max_connection_s:g} s; broker to reach ~{broker_gb:.0f} GB; "
        + (f"gc.collect() every {args.collect_every_s:g} s; " if args.collect_every_s else "")
        + f"code: {source_state()}",
        flush=True,
    )
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    fake = ctx.Process(
        target=exchange,
        args=(args.market, args.symbols, args.rate, args.max_connection_s, theirs),
        daemon=True,
        name="fake-binance",
    )
    fake.start()
    verify_ours, verify_theirs = ctx.Pipe()
    started = time.monotonic()
    try:
        if not ours.poll(120):
            raise RuntimeError("the fake exchange did not start")
        rest, ws, symbols = ours.recv()
        with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(Path(tmp)) as broker:
            settings = Settings(
                kafka=KafkaSettings(bootstrap=broker.bootstrap),
                clickhouse=ClickHouseSettings(dsn=f"chdb://{tmp}/ch", database="soak"),
                ingest=IngestSettings(status_every_s=3600),
            )
            prefix = f"soak{uuid.uuid4().hex[:6]}-"
            names = {
                "trades": prefix + topics.TRADES,
                "quotes": prefix + topics.QUOTES,
                "deadletter": prefix + topics.DEADLETTER,
            }
            ensure_topics(
                broker.bootstrap, list(names.values()), settings.kafka.partitions,
                settings.kafka.replication_factor,
            )  # fmt: skip
            verify_proc = ctx.Process(
                target=verifier,
                args=(broker.bootstrap, names["trades"], verify_theirs),
                daemon=True,
                name="verifier",
            )
            verify_proc.start()
            finished = False
            try:
                assert broker.pid is not None and fake.pid is not None
                pids = {"broker": broker.pid, "fake": fake.pid}
                run = asyncio.run(
                    soak(
                        args, settings, names, rest, ws, symbols, Exchange(ours), pids, verify_ours
                    )
                )
                finished = True
            finally:
                # Before the broker stops: a verifier left behind would retry it noisily.
                verify_proc.join(timeout=30 if finished else 0.1)
                if verify_proc.is_alive():
                    verify_proc.terminate()
                    verify_proc.join(timeout=10)
    finally:
        if fake.is_alive():
            try:
                ours.send(("stop", None))
                ours.poll(30)
            except (OSError, EOFError):
                pass
        fake.join(timeout=30)
    report(args, run, time.monotonic() - started)


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


if __name__ == "__main__":
    main()
