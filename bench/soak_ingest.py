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
import gc
import logging
import multiprocessing
import os
import sys
import tempfile
import time
import tracemalloc
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

# The fake exchange lives in tests/, which is not installed: import it from the checkout.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.soak.exchange import Exchange, exchange  # noqa: E402
from bench.soak.memory import (  # noqa: E402
    chdb_memory,
    gc_types,
    mem_available_mb,
    probe,
    rss_mb,
)
from bench.soak.report import (  # noqa: E402
    HEADER,
    SAMPLE_S,
    Run,
    Sample,
    report,
    row,
    source_state,
)
from bench.soak.verifier import verifier  # noqa: E402
from flows.ingest.settings import IngestSettings  # noqa: E402
from runtime.broker import EmbeddedBroker  # noqa: E402
from runtime.kafka import ensure_topics  # noqa: E402
from runtime.process import tune_for_streaming  # noqa: E402
from runtime.settings import ClickHouseSettings, KafkaSettings  # noqa: E402
from schemas import topics  # noqa: E402
from tickscan.ingest import LiveIngest  # noqa: E402
from tickscan.settings import Settings  # noqa: E402

logger = logging.getLogger("soak")

QUEUE_SAMPLE_S = 1.0  # queue depth, whose peaks are short
GAP_SKIPS = (15, 150, 1200)  # ids withheld from the streams, per id-gap disturbance
DRAIN_TIMEOUT_S = 300.0
BROKER_BYTES_PER_MESSAGE = 330  # Tansu's memory storage, measured by this soak


class _NoRepairChatter(logging.Filter):
    """Drops flows.ingest.gaps' line per gap found (thousands per run; the table counts them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).endswith("; repairing")


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
                broker.bootstrap, list(names.values()), settings.kafka.topic_partitions(),
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


if __name__ == "__main__":
    main()
