"""The flow benchmarks' start: N synthetic trades on a fresh topic, and a fresh database.

The broker is the embedded one (or `--kafka`), the store chDB in a temporary directory
(or `--clickhouse`); topics and database are named after one random run id.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

from flows.ingest.trades import PublishReport, TradePublisher
from flows.sources.simulator import SyntheticMarket
from runtime.broker import EmbeddedBroker
from runtime.clickhouse import connect
from runtime.kafka import ensure_topics
from runtime.migrate import migrate


def add_arguments(parser: argparse.ArgumentParser, *, rate_help: str) -> None:
    """The options every flow benchmark takes: the trades, where they go."""
    parser.add_argument("--trades", type=int, default=2_000_000)
    parser.add_argument("--symbols", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=20_000, help=rate_help)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--kafka", help="bootstrap servers; default: embedded broker")
    parser.add_argument("--clickhouse", help="DSN; default: chdb in a temporary directory")


@dataclass(frozen=True)
class Published:
    """The trades on their topic, and where a flow over them reads and writes."""

    bootstrap: str
    client: Client
    database: str
    topics: dict[str, str]
    """Topic by name: `trades`, `deadletter` and those asked for."""
    report: PublishReport
    publish_s: float
    """Seconds publishing took, generating the trades included."""


@contextmanager
def published_trades(
    args: argparse.Namespace, name: str, more_topics: Sequence[str] = ()
) -> Iterator[Published]:
    """Publish `args.trades` trades of `args.symbols` symbols at `args.rate` (seed 7).

    Args:
        args: The options of `add_arguments`.
        name: The benchmark's name, in its temporary directory's.
        more_topics: Names of more fresh topics the flow writes to.
    """
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-{name}-")))
        bootstrap = args.kafka or stack.enter_context(EmbeddedBroker(workdir)).bootstrap
        run = uuid.uuid4().hex[:8]
        topics = {t: f"bench-{run}-{t}" for t in ("trades", *more_topics, "deadletter")}
        ensure_topics(bootstrap, list(topics.values()), args.partitions)
        client = connect(args.clickhouse or f"chdb://{workdir / 'ch'}")
        stack.callback(client.close)
        database = f"bench_{run}"
        migrate(client, database)

        market = SyntheticMarket(args.symbols, args.rate, seed=7)
        started = time.perf_counter()
        with TradePublisher(
            bootstrap, topic=topics["trades"], deadletter_topic=topics["deadletter"]
        ) as pub:
            pub.publish_many(market.trades(args.trades))
            pub.mark_end(f"bench-{run}")
            report = pub.report()
        publish_s = time.perf_counter() - started
        yield Published(bootstrap, client, database, topics, report, publish_s)
