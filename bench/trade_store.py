"""Trade store end to end: Kafka -> trade store -> ClickHouse `trades`, one worker.

Publishes N synthetic trades to a fresh topic on the embedded broker (or --kafka), then
times the trade store over exactly those trades, one Bytewax worker, inserting every
trade into chDB (or --clickhouse), and checks that every one of them is in the table.

Prints where the time goes, and a last line of JSON:
{"trades_per_s": N, "trades": T, "flow_s": S, "insert_share": I, "rss_mb": R}
where `insert_share` is the part of the flow's time spent inside ClickHouse inserts.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from bytewax.testing import run_main

# The benchmarks' shared start is in bench/, which is not installed: import it from the checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.published_trades import add_arguments, published_trades
from flows.candles import trade_store
from runtime.process import tune_for_streaming


class TimedInserts:
    """Wraps a client to add up the time its raw inserts take."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.seconds = 0.0

    def raw_insert(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self._client.raw_insert(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, rate_help="trades/s of event time")
    args = parser.parse_args(argv)
    tune_for_streaming()

    with published_trades(args, "store") as published:
        bootstrap, client, database = published.bootstrap, published.client, published.database
        trades_topic, dl_topic = published.topics["trades"], published.topics["deadletter"]
        bounds = published.report.bounds()
        total = published.report.published
        print(f"published {total:,} trades in {published.publish_s:.1f} s", file=sys.stderr)

        timed = TimedInserts(client)
        counters = trade_store.TradeStoreCounters()
        flow, writer = trade_store.build_kafka_flow(
            trade_store.TradeStoreSettings(),
            bootstrap=bootstrap,
            clickhouse=lambda: timed,
            database=database,
            start=bounds,
            trades_topic=trades_topic,
            dead_letter_topic=dl_topic,
            counters=counters,
        )
        started = time.perf_counter()
        run_main(flow)
        flow_s = time.perf_counter() - started
        stored = client.query(
            "SELECT count() FROM {db:Identifier}.trades FINAL", parameters={"db": database}
        ).result_rows[0][0]
        if counters.trades != total or stored != total:
            raise SystemExit(f"read {counters.trades} and stored {stored} of {total} trades")
        trades_per_s = total / flow_s
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"trade store: {flow_s:.2f} s ({trades_per_s:,.0f} trades/s), "
            f"{writer.written['trades']:,} rows inserted ({timed.seconds:.2f} s in inserts), "
            f"{stored:,} in the table, {counters.dead_letters} dead letters",
            file=sys.stderr,
        )
        print(
            json.dumps(
                {
                    "trades_per_s": round(trades_per_s),
                    "trades": total,
                    "flow_s": round(flow_s, 2),
                    "insert_share": round(timed.seconds / flow_s, 3),
                    "rss_mb": round(rss_mb),
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
