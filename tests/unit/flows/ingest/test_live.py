"""Live ingest's pure parts: the symbol universe, the streams per market, the policy."""

from __future__ import annotations

from flows.ingest.run import streams_for, trading_symbols, ws_policy
from flows.ingest.settings import IngestSettings
from flows.sources.binance.markets import USDM
from flows.sources.binance.streams import perpetual_symbols


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


def test_only_trading_perpetuals_get_a_mark_price() -> None:
    info = {
        "symbols": [
            {"symbol": "BTCUSDT", "status": "TRADING", "contractType": "PERPETUAL"},
            {"symbol": "BTCUSDT_261225", "status": "TRADING", "contractType": "CURRENT_QUARTER"},
            {"symbol": "LUNAUSDT", "status": "SETTLING", "contractType": "PERPETUAL"},
            {"symbol": "BNBUSDT", "status": "TRADING"},  # a spot pair: no contract type
        ]
    }
    assert perpetual_symbols(info) == {"BTCUSDT"}


def test_perpetuals_add_their_mark_price_and_the_liquidations_once() -> None:
    streams = streams_for("usdm", ["BTCUSDT", "ETHUSDT", "BTCUSDT_261225"],
                          perpetuals=["BTCUSDT", "ETHUSDT"])  # fmt: skip
    marks = {s: v for s, v in streams.items() if "@markPrice" in s}
    assert marks == {"btcusdt@markPrice@1s": "BTCUSDT", "ethusdt@markPrice@1s": "ETHUSDT"}
    assert streams["!forceOrder@arr"] == "" and len(streams) == 3 * 2 + 2 + 1
    # Without perpetuals (spot, or none followed) neither is followed.
    assert not any("@markPrice" in s or "forceOrder" in s for s in streams_for("usdm", ["X"]))
    # Both ride the /market connections with the trades, as Binance routes them.
    paths = {USDM.stream_path(s) for s in streams if not s.endswith("@bookTicker")}
    assert paths == {"/market/stream"}


def test_settings_shape_the_connection_policy() -> None:
    spot = ws_policy("spot", IngestSettings())
    usdm = ws_policy("usdm", IngestSettings(max_connection_age_s=5, max_streams=7))
    assert spot.max_streams == 200 and spot.max_age_s == 23 * 3600
    assert (usdm.max_streams, usdm.max_age_s, usdm.messages_per_s) == (7, 5, 10.0)
