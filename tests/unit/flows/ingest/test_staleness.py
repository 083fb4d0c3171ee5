"""Stale symbols: found once when their heartbeat goes silent, resumed once it delivers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from flows.ingest.data_quality import DataQualityLog
from flows.ingest.staleness import MARK_PRICE_WATCH, StaleMonitor, StaleWatch

WALL = datetime(2024, 1, 2, 3, 4, 5, 123_456, tzinfo=UTC)


def test_a_silent_bookticker_makes_its_symbol_stale_until_it_delivers() -> None:
    watch = StaleWatch()
    heard: dict[str, float] = {"btcusdt@bookTicker": 10.0, "btcusdt@trade": 9.0}
    silent = {"btcusdt@bookTicker": 10.0, "btcusdt@trade": 9.0}
    found, resumed = watch.update(silent, heard.get, 75.0, WALL)
    assert resumed == [] and len(found) == 1
    stale = found[0]
    assert (stale.symbol, stale.streams, stale.since) == (
        "BTCUSDT",
        ("btcusdt@bookTicker", "btcusdt@trade"),
        10.0,
    )
    assert stale.detected_at == WALL.replace(microsecond=123_000)
    assert watch.stale == ["BTCUSDT"]
    # Still silent: not found again.
    assert watch.update(silent, heard.get, 76.0, WALL) == ([], [])
    # Its trades resuming is not enough; its bookTicker is.
    heard["btcusdt@trade"] = 77.0
    assert watch.update({"btcusdt@bookTicker": 10.0}, heard.get, 77.5, WALL) == ([], [])
    heard["btcusdt@bookTicker"] = 80.0
    found, resumed = watch.update({}, heard.get, 80.5, WALL)
    assert found == [] and [(r.silence, r.silent_s) for r in resumed] == [(stale, 70.0)]
    assert watch.stale == []


def test_a_symbol_quiet_on_trades_while_its_bookticker_flows_is_not_stale() -> None:
    watch = StaleWatch()
    heard = {"ethusdt@bookTicker": 99.0, "ethusdt@trade": 10.0}
    assert watch.update({"ethusdt@trade": 10.0}, heard.get, 100.0, WALL) == ([], [])
    assert watch.stale == []


def test_a_bookticker_never_heard_from_is_judged_from_when_it_was_watched() -> None:
    watch = StaleWatch()
    found, _ = watch.update({"xrpusdt@bookTicker": 5.0}, {}.get, 70.0, WALL)
    assert [f.symbol for f in found] == ["XRPUSDT"]
    # A message from before that moment is no resumption.
    assert watch.update({}, {"xrpusdt@bookTicker": 5.0}.get, 71.0, WALL) == ([], [])
    assert watch.stale == ["XRPUSDT"]


def test_a_delisted_symbol_is_no_longer_stale() -> None:
    watch = StaleWatch()
    watch.update({"solusdt@bookTicker": 1.0}, {}.get, 70.0, WALL)
    watch.forget(["SOLUSDT"])
    assert watch.stale == []


def test_a_silent_mark_price_is_a_perpetual_without_mark_price_whatever_its_trades_do() -> None:
    watch = StaleWatch(MARK_PRICE_WATCH.heartbeat)
    heard = {"btcusdt@markPrice@1s": 10.0, "btcusdt@bookTicker": 44.0}
    # Its book is silent too at first: still the mark price alone judges.
    assert watch.update({"btcusdt@bookTicker": 40.0}, heard.get, 45.0, WALL) == ([], [])
    found, _ = watch.update({"btcusdt@markPrice@1s": 10.0}, heard.get, 45.0, WALL)
    assert [(f.symbol, f.streams) for f in found] == [("BTCUSDT", ("btcusdt@markPrice@1s",))]
    assert watch.stale == ["BTCUSDT"]
    heard["btcusdt@markPrice@1s"] = 50.0
    _, resumed = watch.update({}, heard.get, 50.5, WALL)
    assert [r.silent_s for r in resumed] == [40.0] and watch.stale == []


class FakeClient:
    """Records the rows a `DataQualityLog` inserts, as a ClickHouse client would take them."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def insert(self, table: str, rows: list[list[Any]], column_names: list[str]) -> None:
        assert table == "tickscan.data_quality"
        self.rows += [dict(zip(column_names, row, strict=True)) for row in rows]


def test_a_perpetual_without_mark_price_is_recorded_open_then_repaired() -> None:
    client = FakeClient()
    log = DataQualityLog(client, "tickscan", "usdm")
    heard: dict[str, float] = {}
    silent: dict[str, float] = {}

    async def main() -> StaleMonitor:
        monitor = StaleMonitor(
            lambda after_s: dict(silent), heard.get, log,
            market="usdm", after_s=0.04, watched=MARK_PRICE_WATCH,
        )  # fmt: skip
        running = asyncio.create_task(monitor.run())
        silent["ethusdt@markPrice@1s"] = since = time.monotonic()
        while not client.rows:
            await asyncio.sleep(0.01)
        assert monitor.watch.stale == ["ETHUSDT"] and monitor.found == 1
        silent.clear()
        heard["ethusdt@markPrice@1s"] = since + 3.0
        while len(client.rows) < 2:
            await asyncio.sleep(0.01)
        monitor.stop()
        await asyncio.wait_for(running, 5)
        return monitor

    monitor = asyncio.run(asyncio.wait_for(main(), 10))
    assert [(r["symbol"], r["status"], r["version"], r["kind"]) for r in client.rows] == [
        ("ETHUSDT", "open", 1, "no_mark_price"), ("ETHUSDT", "repaired", 2, "no_mark_price"),
    ]  # fmt: skip
    opened, repaired = client.rows
    assert "ethusdt@markPrice@1s silent for" in opened["detail"]
    assert repaired["detected_at"] == opened["detected_at"]  # the same finding, rewritten
    assert opened["resolved_at"] is None and repaired["resolved_at"] is not None
    assert monitor.watch.stale == []
