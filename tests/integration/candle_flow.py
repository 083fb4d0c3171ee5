"""The candle flow over trades of the past, as the integration tests run it."""

from __future__ import annotations

from typing import Any

from bytewax.dataflow import Dataflow
from clickhouse_connect.driver.client import Client

from flows.candles.flow import CandleFlowSettings, FlowCounters, build_kafka_flow
from flows.sources.kafka import RunBounds, StartAt


def past_candle_flow(
    bootstrap: str,
    client: Client,
    database: str,
    start: StartAt | RunBounds,
    topics: tuple[str, str, str],
    counters: FlowCounters,
    **options: Any,
) -> tuple[Dataflow, Any]:
    """The candle flow from `start`, writing through `client` into `database`.

    Windows close on event time only (the trades are from the past): what the test
    publishes decides what is emitted, not how long the machine takes.

    Args:
        bootstrap: The Kafka bootstrap servers.
        client: The ClickHouse client the flow writes with.
        database: The database holding the candle tables.
        start: Where the flow starts reading (and, as bounds, where it stops).
        topics: The trades, candles and dead-letter topics, in that order.
        counters: Counted into while the flow runs.
        options: More of `build_kafka_flow`'s arguments (`stop`, `resume_from_store`).

    Returns:
        The dataflow and its candle writer.
    """
    trades, candles, dead = topics
    return build_kafka_flow(
        CandleFlowSettings(idle_close_ms=None),
        bootstrap=bootstrap,
        clickhouse=lambda: client,
        database=database,
        start=start,
        trades_topic=trades,
        candles_topic=candles,
        dead_letter_topic=dead,
        counters=counters,
        **options,
    )
