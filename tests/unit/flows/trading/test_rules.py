"""Symbol filters and trigger rules, each refusal in Binance's words and codes."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from flows.trading import rules
from schemas.symbols import SymbolInfo
from schemas.trading import OrderRequest

PRICE = ("Filter failure: PRICE_FILTER", -1013)
LOT = ("Filter failure: LOT_SIZE", -1013)
MARKET_LOT = ("Filter failure: MARKET_LOT_SIZE", -1013)
NOTIONAL = ("Filter failure: NOTIONAL", -1013)

INFO = SymbolInfo(
    exchange="binance", market="spot", symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT",
    status="TRADING", kind="spot", tick_size=D("0.01"), step_size=D("0.00001"),
    min_qty=D("0.00001"), max_qty=D("9000"), market_max_qty=D("100"), min_notional=D("5"),
)  # fmt: skip


def _request(market: str = "spot", **fields: Any) -> OrderRequest:
    base: dict[str, object] = {"client_order_id": "x", "exchange": "binance", "market": market,
                               "symbol": "BTCUSDT", "side": "BUY", "type": "limit"}  # fmt: skip
    base.update(fields)
    return OrderRequest(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "reference", "expected"),
    [
        # 100.005 is not a multiple of the 0.01 tick
        ({"price": D("100.005"), "quantity": D("1")}, None, PRICE),
        # a stop price off the tick fails the same filter
        ({"type": "stop_limit", "price": D("100"), "stop_price": D("99.999"), "quantity": D("1")},
         None, PRICE),
        # 0.000015 is not a multiple of the 0.00001 step
        ({"price": D("100"), "quantity": D("0.000015")}, None, LOT),
        # below min qty 0.00001
        ({"price": D("100"), "quantity": D("0.000001")}, None, LOT),
        # above max qty 9000 (a limit order)
        ({"price": D("1"), "quantity": D("9001")}, None, LOT),
        # a market order above MARKET_LOT_SIZE's 100
        ({"type": "market", "quantity": D("101")}, D("100"), MARKET_LOT),
        # 0.04 × 100 = 4 < 5 min notional
        ({"price": D("100"), "quantity": D("0.04")}, None, NOTIONAL),
        # a market order's notional at the reference: 0.04 × 100.01 = 4.0004 < 5
        ({"type": "market", "quantity": D("0.04")}, D("100.01"), NOTIONAL),
        # a quote amount is its own notional: 4.99 < 5
        ({"type": "market", "quote_quantity": D("4.99")}, None, NOTIONAL),
    ],
)  # fmt: skip
def test_filter_failures_use_binance_wording(
    fields: dict[str, Any], reference: D | None, expected: tuple[str, int]
) -> None:
    found = rules.check_filters(INFO, _request(**fields), reference)
    assert found is not None
    assert (found.reason, found.code) == expected


@pytest.mark.parametrize(
    ("fields", "reference"),
    [
        ({"price": D("100.01"), "quantity": D("0.05")}, None),  # 5.0005 >= 5, on tick and step
        ({"type": "market", "quantity": D("100")}, D("100")),  # exactly MARKET_LOT_SIZE
        ({"type": "market", "quantity": D("0.01")}, None),  # no price known: notional waits
        ({"price": D("1"), "quantity": D("9000")}, None),  # exactly max qty, notional 9000
    ],
)
def test_orders_within_every_filter_pass(fields: dict[str, Any], reference: D | None) -> None:
    assert rules.check_filters(INFO, _request(**fields), reference) is None


def test_usdm_min_notional_names_the_minimum_and_spares_reduce_only() -> None:
    usdm = SymbolInfo(
        exchange="binance", market="usdm", symbol="BTCUSDT", base_asset="BTC",
        quote_asset="USDT", status="TRADING", kind="perpetual", min_notional=D("5.0"),
    )  # fmt: skip
    # 0.001 × 100 = 0.1 < 5
    found = rules.check_filters(usdm, _request("usdm", price=D("100"), quantity=D("0.001")), None)
    assert found is not None
    assert found.code == -4164
    assert found.reason == (
        "Order's notional must be no smaller than 5 (unless you choose reduce only)."
    )
    small_close = _request("usdm", price=D("100"), quantity=D("0.001"), reduce_only=True)
    assert rules.check_filters(usdm, small_close, None) is None


def test_a_symbol_not_trading_is_an_invalid_symbol() -> None:
    halted = SymbolInfo(
        exchange="binance", market="spot", symbol="BTCUSDT", base_asset="BTC",
        quote_asset="USDT", status="BREAK", kind="spot",
    )  # fmt: skip
    found = rules.check_filters(halted, _request(price=D("1"), quantity=D("1")), None)
    assert found == rules.Rejection("Invalid symbol.", -1121)


@pytest.mark.parametrize(
    ("order_type", "side", "stop", "price", "reached"),
    [
        ("stop_market", "BUY", "100", "100", True),  # a buy stop fires when price rises to it
        ("stop_market", "BUY", "100", "99.99", False),
        ("stop_market", "SELL", "100", "99.99", True),  # a sell stop fires on the fall
        ("stop_market", "SELL", "100", "100.01", False),
        ("take_profit_market", "SELL", "100", "100.01", True),  # take-profit sells on a rise
        ("take_profit_market", "BUY", "100", "100.01", False),
        ("take_profit_market", "BUY", "100", "99", True),
        ("stop_limit", "SELL", "100", "100", True),
    ],
)
def test_stop_reached(order_type: str, side: str, stop: str, price: str, reached: bool) -> None:
    assert rules.stop_reached(order_type, side, D(stop), D(price)) is reached  # type: ignore[arg-type]


def test_floor_to_step_and_on_step() -> None:
    assert rules.floor_to_step(D("0.123456"), D("0.001")) == D("0.123")
    assert rules.floor_to_step(D("5"), None) == D("5")
    assert rules.on_step(D("0.5"), D("0.1"))
    assert not rules.on_step(D("0.55"), D("0.1"))
