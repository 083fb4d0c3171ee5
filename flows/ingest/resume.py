"""Where a restarted live ingest picks up: the last trade id of each symbol already published.

A live ingest that starts cold begins each symbol's sequence at its first new trade, so
what the exchange printed while ingest was down would be missed without a word. At start
it therefore seeds `flows.ingest.sequence.TradeSequencer` with each followed symbol's highest
trade id already published for this exchange and market; the first live trade then
reveals the ids in between as a ``restart`` gap, repaired from REST like any other.

Two places hold those ids, and the seed is the larger of the two:

- the tail of md.trades.v1 (`last_trades_in_topic`), the spine the ingest itself wrote:
  each partition is read back from its end, chunk by chunk, until every followed symbol
  is found or a bound is reached. A quiet symbol may lie beyond the bound, and a
  partition's newest records of a symbol may be gap repairs (published after the live
  trades with higher ids), so the tail alone can under-state a symbol's last id;
- ClickHouse ``trades`` (`last_trades_in_clickhouse`), which the trade store fills from
  that topic: complete for every symbol, but behind the topic by the store's lag, or
  empty where no trade store runs.

Every id either holds was published, so the maximum is never past what was published
(no trade is fetched and published twice) and is as close to the end as the two
together know (as few trades as possible are fetched again, each a duplicate only if
both under-state it). `last_published` reads both and keeps the larger. Here too:
`restart_gap_refusal`, the bound on what a restart gap may fetch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from confluent_kafka import Consumer, TopicPartition

from flows.ingest.parts import ConsumerFactory
from flows.ingest.sequence import Gap
from schemas.trades import Market, trade_decoder

logger = logging.getLogger(__name__)

_CHUNK = 10_000  # records read back at a time, per partition
_QUIET_S = 0.5  # no record for this long at a partition's end: its end is reached
_SCAN_S = 10.0  # a chunk's read ends after this even if a producer keeps writing
_METADATA_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class LastTrade:
    """A symbol's last trade already published.

    Attributes:
        trade_id: Its id (raw id on spot, aggregate id on USDⓈ-M).
        time_us: Its exchange time, µs since the epoch.
    """

    trade_id: int
    time_us: int


# -- pure logic ------------------------------------------------------------------------


def newest(*sources: Mapping[str, LastTrade]) -> dict[str, LastTrade]:
    """Per symbol, the last trade with the highest id among `sources`."""
    out: dict[str, LastTrade] = {}
    for source in sources:
        for symbol, last in source.items():
            known = out.get(symbol)
            if known is None or last.trade_id > known.trade_id:
                out[symbol] = last
    return out


def restart_gap_refusal(
    gap: Gap,
    last: LastTrade,
    resumed_us: int,
    *,
    market: Market,
    max_trades: int,
    max_age_s: float,
) -> str:
    """Why a restart gap must not be fetched from REST, or ``""`` to repair it.

    A gap of more than `max_trades` ids would spend the REST weight budget that live
    gaps need; one reaching further back than `max_age_s` (the candle flow's revision
    horizon) would only be dead-lettered as too late by the candle flow. Either is for
    ``tickscan backfill``, and the reason says for which range.

    Args:
        gap: The restart gap.
        last: The symbol's last trade published before the restart.
        resumed_us: Exchange time of the first trade received after it.
        market: The market, for the backfill command.
        max_trades: Largest gap fetched (`IngestSettings.max_restart_gap_trades`).
        max_age_s: Oldest gap fetched (`IngestSettings.max_restart_gap_s`).

    Returns:
        The reason with the ``tickscan backfill`` command to run, or ``""``.
    """
    age_s = (resumed_us - last.time_us) / 1e6
    if gap.missing > max_trades:
        why = f"more than max_restart_gap_trades ({max_trades})"
    elif age_s > max_age_s:
        why = f"older than the candle flow's revision horizon ({max_age_s:.0f} s)"
    else:
        return ""
    start = _utc(last.time_us // 60_000_000 * 60_000_000)
    end = _utc(-(-(resumed_us + 1) // 60_000_000) * 60_000_000)
    return (
        f"{gap.missing} trades (ids {gap.first_id}..{gap.last_id}) printed while ingest was "
        f"down for {age_s:.0f} s, between {_utc(last.time_us)} and {_utc(resumed_us)}: {why}, "
        f"so not fetched; run `tickscan backfill --market {market} --symbols {gap.symbol} "
        f"--from {start} --to {end}`"
    )


def _utc(time_us: int) -> str:
    return datetime.fromtimestamp(time_us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- readers ---------------------------------------------------------------------------


def last_trades_in_topic(
    consumers: ConsumerFactory,
    topic: str,
    partitions: int,
    exchange: str,
    market: Market,
    symbols: Collection[str],
    *,
    max_records: int,
) -> dict[str, LastTrade]:
    """Each symbol's highest trade id in the tail of the trades topic.

    Partitions are assigned explicitly (no consumer group). Each is read back from its
    end, `_CHUNK` records at a time, until every symbol of `symbols` has been found or
    `max_records` of the partition have been read. The newest chunk is read past the
    high watermark until the partition stays quiet, since Tansu reports it late.

    Args:
        consumers: Opens a consumer of the cluster (the ingest's, handed down).
        topic: The trades topic (md.trades.v1).
        partitions: Its partition count.
        exchange: Only trades of this exchange ...
        market: ... and market count.
        symbols: The symbols looked for.
        max_records: Records read back at most, per partition.

    Returns:
        The symbols of `symbols` found, with their highest id and its time.
    """
    prefix = f"{exchange}:{market}:".encode()
    wanted = set(symbols)
    found: dict[str, LastTrade] = {}
    consumer = consumers()
    try:
        for partition in range(partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=_METADATA_TIMEOUT_S
            )
            start, stop = max(low, high - _CHUNK), None
            while True:
                _scan(consumer, TopicPartition(topic, partition, start), stop, prefix, found)
                if start <= low or high - start >= max_records or wanted <= found.keys():
                    break
                start, stop = max(low, start - _CHUNK), start
    finally:
        consumer.close()
    return {s: last for s, last in found.items() if s in wanted}


def _scan(
    consumer: Consumer,
    start: TopicPartition,
    stop: int | None,
    prefix: bytes,
    found: dict[str, LastTrade],
) -> None:
    """Fold the trades from `start` up to offset `stop` (exclusive; None: the end) into
    `found`, keeping each symbol's highest id."""
    decode = trade_decoder().decode
    deadline = time.monotonic() + _SCAN_S
    consumer.assign([start])
    try:
        while time.monotonic() < deadline:
            messages = consumer.consume(num_messages=_CHUNK, timeout=_QUIET_S)
            if not messages:
                return
            for msg in messages:
                if msg.error() is not None:
                    logger.warning("%s: %s", start.topic, msg.error())
                    continue
                offset = msg.offset()
                if stop is not None and offset is not None and offset >= stop:
                    return
                key, value = msg.key(), msg.value()
                if not key or not key.startswith(prefix) or not value:
                    continue
                try:
                    trade = decode(value)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    continue  # a control record (end-of-run marker): not a trade
                known = found.get(trade.symbol)
                if known is None or trade.trade_id > known.trade_id:
                    found[trade.symbol] = LastTrade(trade.trade_id, trade.time_us)
    finally:
        consumer.unassign()


def last_trades_in_clickhouse(
    client: Any, database: str, exchange: str, market: Market, symbols: Collection[str]
) -> dict[str, LastTrade]:
    """Each symbol's highest trade id in the ClickHouse ``trades`` table.

    ``GROUP BY`` needs no ``FINAL``: a row stored twice has the same id.

    Args:
        client: A clickhouse-connect client.
        database: Database holding ``trades``.
        exchange: Only trades of this exchange ...
        market: ... and market count.
        symbols: The symbols looked for.

    Returns:
        The symbols of `symbols` stored, with their highest id and its time.
    """
    if not symbols:
        return {}
    result = client.query(
        "SELECT symbol, max(trade_id), toUnixTimestamp64Micro(argMax(time, trade_id))"
        " FROM {db:Identifier}.trades"
        " WHERE exchange = {exchange:String} AND market = {market:String}"
        " AND symbol IN {symbols:Array(String)}"
        " GROUP BY symbol",
        parameters={
            "db": database,
            "exchange": exchange,
            "market": market,
            "symbols": sorted(symbols),
        },
    )
    return {symbol: LastTrade(int(tid), int(at)) for symbol, tid, at in result.result_rows}


async def last_published(
    consumers: ConsumerFactory,
    topic: str,
    partitions: int,
    client: Any,
    database: str,
    exchange: str,
    market: Market,
    symbols: Collection[str],
    *,
    max_records: int,
) -> dict[str, LastTrade]:
    """Each symbol's last trade already published, to resume from: the newest of the
    topic's tail and ClickHouse ``trades``, each read in a worker thread.

    Args:
        consumers: Opens the consumer that reads the topic's tail (closed after).
        topic: The trades topic (md.trades.v1).
        partitions: Its partition count.
        client: A clickhouse-connect client.
        database: Database holding ``trades``.
        exchange: Only trades of this exchange ...
        market: ... and market count.
        symbols: The symbols looked for.
        max_records: Records of the topic read back at most, per partition.

    Returns:
        The symbols of `symbols` found in either, with their highest id and its time.
    """
    started = time.monotonic()
    in_topic = await asyncio.to_thread(
        last_trades_in_topic, consumers, topic, partitions, exchange, market, symbols,
        max_records=max_records,
    )  # fmt: skip
    stored = await asyncio.to_thread(
        last_trades_in_clickhouse, client, database, exchange, market, symbols
    )
    published = newest(in_topic, stored)
    logger.info(
        "%s: %d of %d symbols resume from their last published trade (%d found in %s, "
        "%d in ClickHouse trades) after %.1f s",
        market, len(published), len(symbols), len(in_topic), topic, len(stored),
        time.monotonic() - started,
    )  # fmt: skip
    return published
