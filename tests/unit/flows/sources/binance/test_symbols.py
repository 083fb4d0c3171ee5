"""Symbol metadata from exchangeInfo: the fake exchange's spot and USDⓈ-M answers, and the
shapes the real one sends that the fake does not (delivered contracts, unset sizes)."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest

from flows.sources.binance.symbols import symbol_infos
from flows.sources.simulator import SyntheticMarket
from flows.sources.simulator import symbol_infos as simulated_infos
from schemas.symbols import SymbolInfo
from tests.fakes.binance import FakeBinance


def test_spot_exchange_info_gives_assets_status_and_exact_sizes() -> None:
    fake = FakeBinance("spot", ["BTCUSDT", "ETHBTC", "PEPEUSDT"])
    fake.delist("ETHBTC")
    info = fake._exchange_info({})
    got = symbol_infos("binance", "spot", info)
    d = Decimal
    assert got == [
        SymbolInfo(
            "binance", "spot", "BTCUSDT", "BTC", "USDT", "TRADING", "spot",
            d("0.01"), d("0.00001"), info["serverTime"],
            d("0.00001"), d("9000000"), d("90000"), d("5"),
        ),
        SymbolInfo(
            "binance", "spot", "ETHBTC", "ETH", "BTC", "BREAK", "spot",
            d("0.01"), d("0.0001"), info["serverTime"],
            d("0.0001"), d("9000000"), d("90000"), d("5"),
        ),
        SymbolInfo(
            "binance", "spot", "PEPEUSDT", "PEPE", "USDT", "TRADING", "spot",
            d("0.00000001"), d("1"), info["serverTime"],
            d("1"), d("9000000"), d("90000"), d("5"),
        ),
    ]  # fmt: skip
    assert got[0].key == "binance:spot:BTCUSDT"


def test_usdm_exchange_info_gives_the_contract_kind() -> None:
    info = FakeBinance("usdm", 3)._exchange_info({})
    got = symbol_infos("binance", "usdm", info)
    assert [(s.symbol, s.kind, s.status, s.quote_asset) for s in got] == [
        ("BTCUSDT", "perpetual", "TRADING", "USDT"),
        ("ETHUSDT", "perpetual", "TRADING", "USDT"),
        ("BNBUSDT", "perpetual", "TRADING", "USDT"),
    ]
    assert (got[0].tick_size, got[0].step_size) == (Decimal("0.1"), Decimal("0.001"))
    # LOT_SIZE min/max, MARKET_LOT_SIZE max, and MIN_NOTIONAL's `notional` on USDⓈ-M
    assert (got[0].min_qty, got[0].max_qty) == (Decimal("0.001"), Decimal("1000000"))
    assert (got[0].market_max_qty, got[0].min_notional) == (Decimal("100000"), Decimal("5"))


def entry(**fields: Any) -> dict[str, Any]:
    """A USDⓈ-M symbols entry shaped like the real one (BTCUSDT, 2022)."""
    base: dict[str, Any] = {
        "symbol": "BTCUSDT", "pair": "BTCUSDT", "contractType": "PERPETUAL",
        "deliveryDate": 4133404802000, "onboardDate": 1569398400000, "status": "TRADING",
        "baseAsset": "BTC", "quoteAsset": "USDT", "marginAsset": "USDT", "pricePrecision": 2,
        "filters": [
            {"minPrice": "402", "maxPrice": "1246396.60", "filterType": "PRICE_FILTER",
             "tickSize": "0.10"},
            {"stepSize": "0.001", "filterType": "LOT_SIZE", "maxQty": "1000", "minQty": "0.001"},
            {"limit": 200, "filterType": "MAX_NUM_ORDERS"},
            {"notional": "10", "filterType": "MIN_NOTIONAL"},
        ],
    }  # fmt: skip
    return base | fields


def test_quarterlies_delivered_contracts_and_unset_sizes() -> None:
    quarter = entry(symbol="BTCUSDT_240927", contractType="CURRENT_QUARTER")
    delivered = entry(symbol="ETHUSDT_240628", contractType="", status="DELIVERING")
    no_sizes = entry(symbol="XUSDT", filters=[{"filterType": "PRICE_FILTER", "tickSize": "0"}])
    got = symbol_infos(
        "binance", "usdm", {"serverTime": 7, "symbols": [quarter, delivered, no_sizes]}
    )
    assert [(s.symbol, s.kind, s.status) for s in got] == [
        ("BTCUSDT_240927", "current_quarter", "TRADING"),
        ("ETHUSDT_240628", "unknown", "DELIVERING"),
        ("XUSDT", "perpetual", "TRADING"),
    ]
    assert str(got[0].tick_size) == "0.10"  # exact, as printed
    assert (got[2].tick_size, got[2].step_size, got[2].updated_ms) == (None, None, 7)
    assert (got[2].min_qty, got[2].max_qty, got[2].market_max_qty, got[2].min_notional) == (
        None, None, None, None,
    )  # fmt: skip
    assert (got[0].min_qty, got[0].max_qty, got[0].min_notional) == (
        Decimal("0.001"), Decimal("1000"), Decimal("10"),
    )  # fmt: skip
    assert got[0].market_max_qty is None  # the 2022 entry lists no MARKET_LOT_SIZE


def test_older_spot_listings_give_min_notional_in_min_notional() -> None:
    """Before NOTIONAL, spot's minimum order value was MIN_NOTIONAL's ``minNotional``;
    a zero maximum (Binance's "no rule") is None."""
    old = entry(
        symbol="ETHBTC",
        contractType=None,
        filters=[
            {"filterType": "LOT_SIZE", "minQty": "0.00010000", "maxQty": "0.00000000",
             "stepSize": "0.00010000"},
            {"filterType": "MIN_NOTIONAL", "minNotional": "0.00010000", "applyToMarket": True,
             "avgPriceMins": 5},
        ],
    )  # fmt: skip
    (got,) = symbol_infos("binance", "spot", {"symbols": [old]})
    assert (got.min_qty, got.max_qty, got.min_notional) == (
        Decimal("0.0001"), None, Decimal("0.0001"),
    )  # fmt: skip


def test_malformed_entries_are_logged_and_left_out(caplog: pytest.LogCaptureFixture) -> None:
    bad = [
        {"symbol": "NOASSETS", "status": "TRADING"},
        entry(symbol="BADTICK", filters=[{"filterType": "PRICE_FILTER", "tickSize": "x"}]),
        entry(symbol="NEGATIVE", filters=[{"filterType": "LOT_SIZE", "stepSize": "-1"}]),
        entry(symbol="BADMIN", filters=[{"filterType": "MIN_NOTIONAL", "notional": "NaN"}]),
        "not an object",
    ]
    with caplog.at_level(logging.WARNING):
        got = symbol_infos("binance", "usdm", {"symbols": [*bad, entry()]})
    assert [s.symbol for s in got] == ["BTCUSDT"]
    assert got[0].updated_ms == 0  # no serverTime
    assert len(caplog.records) == len(bad)
    assert "NOASSETS" in caplog.records[0].getMessage()


def test_an_answer_without_symbols_gives_none() -> None:
    assert symbol_infos("binance", "spot", {"code": -1121, "msg": "Invalid symbol."}) == []


@pytest.mark.parametrize(("market", "kind"), [("spot", "spot"), ("usdm", "perpetual")])
def test_the_simulator_describes_its_symbols_like_an_exchange(market: Any, kind: str) -> None:
    sim = SyntheticMarket(symbols=3, rate=10.0, seed=4, market=market)
    got = simulated_infos(sim)
    assert [(s.exchange, s.market, s.symbol, s.kind, s.status) for s in got] == [
        ("sim", market, f"SYM000{i}USDT", kind, "TRADING") for i in (1, 2, 3)
    ]
    assert [(s.base_asset, s.quote_asset) for s in got] == [
        (f"SYM000{i}", "USDT") for i in (1, 2, 3)
    ]
    for spec, info in zip(sim.symbols, got, strict=True):
        assert (info.tick_size, info.step_size) == (spec.tick_size, spec.step_size)
        # Binance-like filters: one step the least order, 5 USDT the least value, limits
        # that are whole steps and worth ~100M (limit) and ~1M (market) USDT.
        assert (info.min_qty, info.min_notional) == (spec.step_size, Decimal(5))
        assert info.max_qty is not None and info.market_max_qty is not None
        assert info.max_qty % spec.step_size == 0 and info.market_max_qty % spec.step_size == 0
        assert 1e7 < float(info.max_qty * spec.initial_price) <= 1e8
        assert info.market_max_qty == info.max_qty / 100
    assert {s.updated_ms for s in got} == {sim.start_us // 1000}
    assert simulated_infos(SyntheticMarket(symbols=3, rate=10.0, seed=4, market=market)) == got
