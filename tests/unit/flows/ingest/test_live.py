"""Live ingest's pure parts: the symbol universe, the streams per market, the policy."""

from __future__ import annotations

from flows.ingest.run import streams_for, trading_symbols, ws_policy
from flows.ingest.settings import IngestSettings
from flows.sources.binance.markets import USDM


def test_only_trading_symbols_are_followed() -> None:
    info = {
        "symbols": [
            {"symbol": "BTCUSDT", "status": "TRADING"},
            {"symbol": "LUNAUSDT", "status": "BREAK"},
            {"symbol": "NEWUSDT", "status": "PENDING_TRADING"},
            {"symbol": "ETHUSDT", "status": "TRADING"},
            {"status": "TRADING"},
        ]
    }
    assert trading_symbols(info) == {"BTCUSDT", "ETHUSDT"}
    assert trading_symbols({}) == set()


def test_streams_per_market() -> None:
    assert streams_for("spot", ["BTCUSDT"]) == {
        "btcusdt@trade": "BTCUSDT",
        "btcusdt@bookTicker": "BTCUSDT",
    }
    assert streams_for("usdm", ["ETHUSDT"]) == {
        "ethusdt@aggTrade": "ETHUSDT",
        "ethusdt@bookTicker": "ETHUSDT",
    }


def test_the_crosscheck_adds_the_1m_klines_on_the_market_path() -> None:
    streams = streams_for("usdm", ["ETHUSDT"], klines=True)
    assert streams["ethusdt@kline_1m"] == "ETHUSDT" and len(streams) == 3
    assert USDM.stream_path("ethusdt@kline_1m") == USDM.stream_path("ethusdt@aggTrade")
    assert "btcusdt@kline_1m" in streams_for("spot", ["BTCUSDT"], klines=True)


def test_settings_shape_the_connection_policy() -> None:
    spot = ws_policy("spot", IngestSettings())
    usdm = ws_policy("usdm", IngestSettings(max_connection_age_s=5, max_streams=7))
    assert spot.max_streams == 200 and spot.max_age_s == 23 * 3600
    assert (usdm.max_streams, usdm.max_age_s, usdm.messages_per_s) == (7, 5, 10.0)
