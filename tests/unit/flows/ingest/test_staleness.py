"""Stale symbols: found once when their heartbeat goes silent, resumed once it delivers."""

from __future__ import annotations

from datetime import UTC, datetime

from flows.ingest.staleness import StaleWatch

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
