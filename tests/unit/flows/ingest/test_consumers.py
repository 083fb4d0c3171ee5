"""The ingest reads Kafka only through the consumers its process hands down, and closes them."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

from flows.ingest.candle_feed import CandleFeed
from flows.ingest.depth_watch import DepthWatchFeed
from flows.ingest.resume import LastTrade, last_published
from flows.sources.kafka import Record
from schemas.candles import Candle, encode_candle
from schemas.depth import DepthWatch, encode_depth
from schemas.trades import Trade, encode_trade


class Fetched(Record):
    """A record as a consumer hands it over: a `confluent_kafka.Message` without an error."""

    def error(self) -> None:
        return None


class PartitionReader:
    """A consumer of one in-memory partition per topic, with what was asked of it."""

    def __init__(self, records: list[tuple[bytes, bytes]]) -> None:
        self.records = [Fetched("t", 0, i, k, v) for i, (k, v) in enumerate(records)]
        self.assigned: list[TopicPartition] = []
        self.closed = False
        self._at = 0

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float) -> tuple[int, int]:
        return 0, len(self.records)

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = partitions
        start = partitions[0].offset
        self._at = len(self.records) if start == OFFSET_END else max(0, start)  # or BEGINNING

    def unassign(self) -> None:
        self.assigned = []

    def consume(self, num_messages: int, timeout: float) -> list[Fetched]:
        batch = self.records[self._at : self._at + num_messages]
        self._at += len(batch)
        return batch

    def close(self) -> None:
        self.closed = True


def opener(consumers: list[PartitionReader], reader: PartitionReader) -> Any:
    def consumer() -> Consumer:
        consumers.append(reader)
        return reader  # type: ignore[return-value]

    return consumer


class NoTrades:
    """A ClickHouse client whose ``trades`` table is empty."""

    def query(self, sql: str, parameters: dict[str, Any]) -> Any:
        return SimpleNamespace(result_rows=[])


def trade(symbol: str, trade_id: int, market: str = "spot") -> tuple[bytes, bytes]:
    t = Trade("binance", market, symbol, trade_id, Decimal(1), Decimal(1), 1_000 + trade_id, False)  # type: ignore[arg-type]
    return f"binance:{market}:{symbol}".encode(), encode_trade(t)


def test_the_resume_scan_reads_the_topic_tail_through_the_consumer_it_is_handed() -> None:
    reader = PartitionReader(
        [trade("AUSDT", 7), trade("BUSDT", 3), trade("AUSDT", 9), trade("AUSDT", 50, "usdm")]
    )
    opened: list[PartitionReader] = []
    published = asyncio.run(
        last_published(
            opener(opened, reader), "md.trades.v1", 1, NoTrades(), "db", "binance", "spot",
            {"AUSDT", "BUSDT", "CUSDT"}, max_records=100,
        )
    )  # fmt: skip
    assert published == {"AUSDT": LastTrade(9, 1_009), "BUSDT": LastTrade(3, 1_003)}
    assert opened == [reader] and reader.closed


def candle(symbol: str, interval: str, minute: int) -> tuple[bytes, bytes]:
    one = Decimal(1)
    c = Candle(
        "binance", "spot", symbol, interval, minute * 60_000, minute * 60_000 + 59_999,  # type: ignore[arg-type]
        one, one, one, one, one, one, 1, one, one, 1, 1, 1,
    )  # fmt: skip
    return c.key.encode(), encode_candle(c)


def test_the_cross_check_reads_our_candles_from_the_end_through_the_consumer_it_is_handed() -> None:
    reader = PartitionReader([candle("AUSDT", "1m", 1)])
    feed = CandleFeed(reader, "md.candles.v1", 1, "binance", "spot")  # type: ignore[arg-type]
    assert [(p.topic, p.partition, p.offset) for p in reader.assigned] == [
        ("md.candles.v1", 0, OFFSET_END)
    ]
    assert feed.poll() == []  # what was there before it started is not ours to check
    reader.records += [
        Fetched("md.candles.v1", 0, 1, *candle("AUSDT", "1m", 2)),
        Fetched("md.candles.v1", 0, 2, *candle("AUSDT", "1s", 120)),
    ]
    assert [(c.symbol, c.interval, c.open_time) for c in feed.poll()] == [("AUSDT", "1m", 120_000)]
    feed.close()
    feed.close()
    assert reader.closed and feed.poll() == []


def test_the_depth_watch_is_read_from_the_beginning_and_the_latest_record_wins() -> None:
    def watch(exchange: str, market: str, symbols: list[str], at: int) -> tuple[bytes, bytes]:
        record = DepthWatch(exchange, market, symbols, at)  # type: ignore[arg-type]
        return record.key.encode(), encode_depth(record)

    reader = PartitionReader(
        [
            watch("binance", "spot", ["BTCUSDT"], 1),
            watch("binance", "usdm", ["ETHUSDT"], 2),
            watch("sim", "spot", ["SYM0001USDT"], 3),  # another exchange's
            (b"binance:spot", b"{not a watch"),
            watch("binance", "spot", ["BTCUSDT", "BNBUSDT"], 4),
        ]
    )
    feed = DepthWatchFeed(reader, "md.depth_watch.v1", 1, "binance")  # type: ignore[arg-type]
    assert [(p.topic, p.offset) for p in reader.assigned] == [
        ("md.depth_watch.v1", OFFSET_BEGINNING)
    ]
    latest = feed.poll()
    assert {m: (w.symbols, w.time_us) for m, w in latest.items()} == {
        "spot": (["BTCUSDT", "BNBUSDT"], 4),
        "usdm": (["ETHUSDT"], 2),
    }
    assert feed.undecodable == 1
    assert feed.poll() == {}  # nothing new
    feed.close()
    assert reader.closed
