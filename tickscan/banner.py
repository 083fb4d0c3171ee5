"""What `tickscan run` prints once it is up: where the web UI, Kafka and ClickHouse are."""

from __future__ import annotations

from dataclasses import dataclass

from schemas import topics
from tickscan.run_options import RunOptions


@dataclass(frozen=True)
class Endpoints:
    """Where a running tickscan keeps its data and what feeds it."""

    kafka: str
    clickhouse: str
    database: str
    source: str = "sim"
    api: str | None = None


def describe_source(source: str, options: RunOptions) -> str:
    """One line saying where the trades come from."""
    if source == "binance":
        return f"live Binance: {', '.join(options.markets)} (whole exchange)"
    if source == "sim":
        return (
            f"SIMULATED market: {options.symbols} symbols, {options.rate:,.0f} trades/s, "
            "labelled exchange 'sim'"
        )
    return f"replay of {source.removeprefix('replay:')}"


def banner(endpoints: Endpoints, options: RunOptions) -> str:
    """What a person needs to find the data of a running tickscan: the web UI first."""
    api = endpoints.api
    return "\n".join(
        [
            *(
                [
                    f"tickscan is running: open {api}/ in a browser (Ctrl-C to stop)",
                    f"  web UI      {api}/",
                    f"  API         {api}/api/v1  (OpenAPI docs: {api}/docs)",
                    f"              {api}/api/v1/scan?sort=-change_pct_5m&limit=20",
                ]
                if api
                else ["tickscan is running (Ctrl-C to stop)"]
            ),
            f"  source      {describe_source(endpoints.source, options)}",
            f"  Kafka       {endpoints.kafka}  topics {', '.join(topics.ALL)}",
            f"  ClickHouse  {endpoints.clickhouse}  database {endpoints.database}",
            f"              SELECT * FROM {endpoints.database}.candles_1m FINAL "
            "ORDER BY open_time DESC LIMIT 10",
            "              (an embedded chdb store opens in one process at a time: query it",
            "              once tickscan stops, or point TICKSCAN_CLICKHOUSE__DSN at a server)",
            f"  live        candles on {topics.CANDLES}, board rows on {topics.RANKS}, "
            f"signals on {topics.SIGNALS}",
        ]
    )
