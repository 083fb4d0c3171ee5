"""Paper trading's pure pieces: which exchange a new account trades on, and stored rows
read back exactly (no padding zeros, no positive exponents, a quote-amount order's
request)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from api.errors import Unavailable
from api.services.paper.commands import exchange_for
from api.services.paper.reads import fill_of_row, order_of_row
from schemas.trading import encode

ORDER_COLUMNS = [
    "order_id", "client_order_id", "exchange", "market", "symbol", "side", "type",
    "time_in_force", "trigger", "reduce_only", "quantity", "quote_quantity", "price",
    "stop_price", "status", "filled_qty", "filled_quote", "fees", "fee_asset", "triggered",
    "reason", "code", "created_us", "updated_us",
]  # fmt: skip


@pytest.mark.parametrize(
    ("keys", "market", "exchange"),
    [
        (["sim:spot:AAAUSDT", "sim:spot:BBBUSDT", "binance:spot:BTCUSDT"], "spot", "sim"),
        (["sim:spot:AAAUSDT", "binance:usdm:BTCUSDT"], "usdm", "binance"),
        (["binance:spot:BTCUSDT", "sim:spot:AAAUSDT"], "spot", "binance"),  # a tie: by name
    ],
)
def test_a_new_account_trades_on_the_exchange_with_most_of_its_market(
    keys: list[str], market: str, exchange: str
) -> None:
    assert exchange_for(market, keys) == exchange


def test_no_market_data_for_the_market_is_a_503() -> None:
    with pytest.raises(Unavailable, match="no usdm market data"):
        exchange_for("usdm", ["binance:spot:BTCUSDT", "not-a-key"])


def test_a_stored_quote_amount_order_reads_back_as_asked_with_exact_decimals() -> None:
    row = [
        4, "q-1", "binance", "spot", "BTCUSDT", "BUY", "market", "GTC", "last", 0,
        D("0.000100000000000000"), D("100.000000000000000000"), None, None, "filled",
        D("0.000100000000000000"), D("6E+1"), D("0.000000100000000000"), "BTC", 0, None, None,
        1, 2,
    ]  # fmt: skip
    order = order_of_row("a1", ORDER_COLUMNS, row)
    assert order.request.quantity is None and order.request.quote_quantity == D("100")
    wire = encode(order)
    assert b'"quantity":"0.0001"' in wire and b'"quote_quantity":"100"' in wire
    assert b'"filled_quote":"60"' in wire  # never "6E+1"
    assert order.fees == D("0.0000001") and order.fees.as_tuple().exponent == -7


def test_a_stored_fill_reads_back_with_its_flags() -> None:
    columns = [
        "fill_id", "order_id", "client_order_id", "exchange", "market", "symbol", "side",
        "price", "qty", "quote_qty", "fee", "fee_asset", "liquidity", "reference_price",
        "slippage", "realized_pnl", "liquidation", "time_us",
    ]  # fmt: skip
    row = [
        7, 4, "close-x", "binance", "usdm", "BTCUSDT", "SELL", D("59000.10"), D("0.010"),
        D("590.001"), D("0.2950005"), "USDT", "taker", D("59000.500000000000000000"),
        D("0.400000000000000000"), D("-12.5"), 1, 3,
    ]  # fmt: skip
    fill = fill_of_row("a1", columns, row)
    assert fill.liquidation is True and fill.liquidity == "taker"
    assert (fill.price, fill.qty, fill.reference_price, fill.slippage) == (
        D("59000.1"),
        D("0.01"),
        D("59000.5"),
        D("0.4"),
    )
