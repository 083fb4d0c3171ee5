"""Which symbols the paper accounts need (flows.trading.interest)."""

from __future__ import annotations

from decimal import Decimal

from flows.trading.interest import Interest, Pairs, account_needs
from flows.trading.state import AccountState, PositionState
from schemas.symbols import SymbolInfo
from schemas.trading import Order, OrderRequest


def _info(symbol: str, base: str, quote: str) -> SymbolInfo:
    return SymbolInfo("sim", "spot", symbol, base, quote, "TRADING", "spot")


PAIRS = Pairs([_info("ETHUSDT", "ETH", "USDT"), _info("ETHBTC", "ETH", "BTC"),
               _info("SOLBTC", "SOL", "BTC")])  # fmt: skip


def _order(symbol: str, market: str = "spot") -> Order:
    request = OrderRequest(
        client_order_id="c", exchange="sim", market=market, symbol=symbol,  # type: ignore[arg-type]
        side="BUY", type="limit", quantity=Decimal(1), price=Decimal(1),
    )  # fmt: skip
    return Order(account_id="a", order_id=1, request=request, status="new", created_us=0,
                 updated_us=0)  # fmt: skip


def test_a_spot_account_needs_its_order_symbols_and_the_pairs_of_what_it_holds() -> None:
    account = AccountState("a", "u", "n", "spot", "sim", "paper")
    account.balances = {"USDT": Decimal(5), "ETH": Decimal("0.5"), "SOL": Decimal(2),
                        "DOGE": Decimal(0)}  # fmt: skip
    account.orders = {1: _order("BNBUSDT")}
    needs = account_needs(account, ["USDT"], PAIRS)
    # SOL has no pair with USDT: it cannot be valued, so nothing is read for it.
    assert needs == {b"sim:spot:BNBUSDT", b"sim:spot:ETHUSDT"}


def test_a_usdm_account_needs_its_open_positions_only() -> None:
    account = AccountState("a", "u", "n", "usdm", "sim", "paper")
    account.balances = {"USDT": Decimal(100)}
    account.positions = {
        "BTCUSDT": PositionState("sim", "BTCUSDT", 20, qty=Decimal("0.1")),
        "ETHUSDT": PositionState("sim", "ETHUSDT", 10),  # leverage set, flat
    }
    assert account_needs(account, ["USDT"], PAIRS) == {b"sim:usdm:BTCUSDT"}


def test_interest_counts_each_key_until_its_last_account_lets_go() -> None:
    interest = Interest()
    assert interest.update("a", frozenset({b"k1", b"k2"})) == {b"k1", b"k2"}
    assert interest.update("b", frozenset({b"k2", b"k3"})) == {b"k3"}
    assert interest.update("a", frozenset({b"k1"})) == frozenset()
    assert b"k2" in interest  # b still needs it
    assert interest.update("b", frozenset()) == frozenset()
    assert set(interest.keys) == {b"k1"}
    assert b"k2" not in interest and b"k3" not in interest
