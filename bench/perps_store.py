"""Perpetuals store end to end: Kafka -> perpetuals store -> ClickHouse, one worker.

Publishes `--seconds` seconds of 1 Hz mark prices of `--symbols` perpetuals (crossing a
funding time half-way, so every symbol settles one), with a liquidation and an
open-interest sample per symbol every 10 s, to fresh topics on the embedded broker (or
--kafka); then runs the store over them flat out, inserting into chDB (or --clickhouse),
and checks every mark second and funding row is in its table.

The same records are also run through the store's step alone (decode, check, funding
derivation, TabSeparated rows; no Kafka, no ClickHouse) to show what the Python side costs.

Prints where the time goes, and a last line of JSON:
{"records_per_s": N, "records": R, "flow_s": S, "cpu_s": C, "insert_share": I,
 "cores_at_1hz": K, "step_us_per_record": U, "step_cores_at_1hz": K2}
where `cores_at_1hz` is the CPU of this process (Kafka client and chDB inserts included)
the store would use for `--symbols` perpetuals at one mark a second, and
`step_cores_at_1hz` the same for the step alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from bytewax.testing import run_main
from confluent_kafka import Producer

# The benchmarks' shared parts are in bench/, which is not installed: import from the checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.trade_store import TimedInserts
from flows.perps.settings import PerpStoreSettings
from flows.perps.store import (
    PartitionFunding,
    PerpStoreCounters,
    build_kafka_flow,
    perp_rows,
    readers,
)
from flows.sinks.perps import TABLES
from flows.sources.kafka import Record
from runtime.broker import EmbeddedBroker
from runtime.clickhouse import connect
from runtime.kafka import ensure_topics, producer_config
from runtime.migrate import migrate
from runtime.process import tune_for_streaming
from schemas.perps import Liquidation, MarkPrice, OpenInterest, encode_perp
from schemas.topics import PerpTopics

S = 1_000_000


class TimedClient(TimedInserts):
    """Times raw inserts; the store's start-up queries (its funding state) pass through."""

    def query(self, *args: Any, **kwargs: Any) -> Any:
        return self._client.query(*args, **kwargs)


def market(symbols: int, seconds: int, funding_us: int) -> list[tuple[str, Any]]:
    """(kind, record) of the whole market, in time order: marks, liquidations, OI."""
    out: list[tuple[str, Any]] = []
    start = funding_us - seconds // 2 * S
    for second in range(seconds):
        for i in range(symbols):
            t = start + second * S + i * 317  # spread over the second
            due = funding_us if t < funding_us else funding_us + 8 * 3600 * S
            price = Decimal(10_000 + i) + Decimal(second) / 100
            rate = Decimal(i % 50 - 10) / 100_000
            out.append(
                ("marks", MarkPrice("binance", "usdm", f"P{i:04d}USDT", t, price, price,
                                    price, due, t + 900, rate))
            )  # fmt: skip
            if (second + i) % 10 == 0:
                out.append(
                    ("liquidations", Liquidation(
                        "binance", "usdm", f"P{i:04d}USDT", t, "SELL", price, price,
                        Decimal("0.5"), Decimal("0.5"), Decimal("0.5"), "FILLED", "LIMIT",
                        "IOC", t, t + 900,
                    ))
                )  # fmt: skip
                out.append(
                    ("open_interest", OpenInterest(
                        "binance", "usdm", f"P{i:04d}USDT", t, Decimal(1000 + second), "poll"
                    ))
                )  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=2_000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--kafka", help="bootstrap servers; default: embedded broker")
    parser.add_argument("--clickhouse", help="DSN; default: chdb in a temporary directory")
    args = parser.parse_args(argv)
    tune_for_streaming()

    with tempfile.TemporaryDirectory(prefix="bench-perps-") as tmp:
        workdir = Path(tmp)
        broker = None if args.kafka else EmbeddedBroker(workdir).__enter__()
        bootstrap = args.kafka or broker.bootstrap  # type: ignore[union-attr]
        client = connect(args.clickhouse or f"chdb://{workdir / 'ch'}")
        try:
            run = uuid.uuid4().hex[:8]
            names = PerpTopics(*(f"bench-{run}-{t}" for t in ("marks", "liq", "oi", "funding")))
            deadletter = f"bench-{run}-deadletter"
            ensure_topics(bootstrap, [*vars_of(names), deadletter], args.partitions)
            database = f"bench_{run}"
            migrate(client, database)

            funding_us = (time.time_ns() // 1000 // (3600 * S)) * 3600 * S  # this hour's start
            records = market(args.symbols, args.seconds, funding_us)
            topic = {
                "marks": names.marks,
                "liquidations": names.liquidations,
                "open_interest": names.open_interest,
            }
            started = time.perf_counter()
            producer = Producer(producer_config(bootstrap))
            for kind, record in records:
                while True:
                    try:
                        producer.produce(topic[kind], encode_perp(record), record.key.encode())
                        break
                    except BufferError:
                        producer.poll(0.05)
            assert producer.flush(60) == 0
            print(f"published {len(records):,} records in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr)  # fmt: skip

            timed = TimedClient(client)
            counters = PerpStoreCounters()
            stop = threading.Event()
            flow, writer = build_kafka_flow(
                PerpStoreSettings(), bootstrap=bootstrap, start="beginning", names=names,
                database=database, clickhouse=lambda: timed, dead_letter_topic=deadletter,
                counters=counters, stop=stop,
            )  # fmt: skip
            runner = threading.Thread(target=run_main, args=(flow,), name="perp-store")
            cpu0 = time.process_time()
            started = time.perf_counter()
            runner.start()
            while counters.records < len(records) and runner.is_alive():
                time.sleep(0.005)
            stop.set()
            runner.join()
            flow_s = time.perf_counter() - started
            cpu_s = time.process_time() - cpu0

            def count(sql: str) -> int:
                return int(client.query(sql, parameters={"db": database}).result_rows[0][0])

            marks = count("SELECT count() FROM {db:Identifier}.marks_1s FINAL")
            funding = count("SELECT count() FROM {db:Identifier}.funding FINAL")
            want_marks = args.symbols * args.seconds
            if counters.records != len(records) or marks != want_marks or funding != args.symbols:
                raise SystemExit(
                    f"read {counters.records} of {len(records)} records; {marks} of {want_marks} "
                    f"marks and {funding} of {args.symbols} funding rows stored"
                )
        finally:
            client.close()
            if broker is not None:
                broker.__exit__(None, None, None)

    step_s = step_cpu(names, records)
    per_s = len(records) / flow_s
    # At 1 Hz a symbol sends one mark a second and, here, 0.2 more records (liquidations
    # and open interest): the store's share of a core at that rate.
    live_rate = args.symbols * len(records) / (args.symbols * args.seconds)
    cores = cpu_s / len(records) * live_rate
    cores_step = step_s / len(records) * live_rate
    print(
        f"perpetuals store: {flow_s:.2f} s wall, {cpu_s:.2f} s CPU ({per_s:,.0f} records/s); "
        f"{sum(writer.written.values()):,} rows inserted ({timed.seconds:.2f} s in inserts), "
        f"{counters.funding_derived:,} funding times settled from marks, "
        f"{counters.dead_letters} dead letters",
        file=sys.stderr,
    )
    print(
        f"at 1 Hz for {args.symbols:,} perpetuals ({live_rate:,.0f} records/s): "
        f"{cores:.3f} cores; the step alone {step_s / len(records) * 1e6:.1f} us a record, "
        f"{cores_step:.4f} cores",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "records_per_s": round(per_s),
                "records": len(records),
                "flow_s": round(flow_s, 2),
                "cpu_s": round(cpu_s, 2),
                "insert_share": round(timed.seconds / flow_s, 3),
                "cores_at_1hz": round(cores, 4),
                "step_us_per_record": round(step_s / len(records) * 1e6, 2),
                "step_cores_at_1hz": round(cores_step, 4),
            }
        )
    )
    return 0


def step_cpu(names: PerpTopics, records: list[tuple[str, Any]]) -> float:
    """CPU seconds of the store's step over `records`: `perp_rows` on batches of 5,000
    Kafka records, then the writer's TabSeparated encoding of what it kept."""
    topic = {"marks": names.marks, "liquidations": names.liquidations,
             "open_interest": names.open_interest}  # fmt: skip
    kafka = [
        Record(topic[kind], 0, i, r.key.encode(), encode_perp(r))
        for i, (kind, r) in enumerate(records)
    ]
    state = PartitionFunding()
    started = time.process_time()
    for at in range(0, len(kafka), 5_000):
        out = perp_rows(kafka[at : at + 5_000], readers(names), state, 60 * S)
        by_type: dict[type, list[Any]] = {}
        for record in out.records:
            by_type.setdefault(type(record), []).append(record)
        for kind, rows in by_type.items():
            TABLES[kind].encode(rows)
    return time.process_time() - started


def vars_of(names: PerpTopics) -> list[str]:
    return [names.marks, names.liquidations, names.open_interest, names.funding]


if __name__ == "__main__":
    raise SystemExit(main())
