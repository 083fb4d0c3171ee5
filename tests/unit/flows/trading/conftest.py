"""A paper market to drive the engine in tests: one spot and one USDⓈ-M BTCUSDT, every
input recorded so a test can replay or repeat it.

Filters (close to Binance's): spot tick 0.01, step 0.00001, min qty 0.00001, max qty
9000, market max 100, min notional 5; USDⓈ-M tick 0.1, step 0.001, min qty 0.001, max
qty 1000, market max 120, min notional 5. Times are microseconds from T0.

`Paper.default_depth` is the spot book the tests work their numbers from:
asks 100.00 × 0.5, 100.10 × 0.3, 100.50 × 1; bids 99.90 × 0.4, 99.00 × 2, 98.00 × 4.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import pytest

from flows.trading.engine import PaperEngine
from flows.trading.settings import PaperSettings
from schemas.depth import BookDepth
from schemas.perps import MarkPrice
from schemas.quotes import Quote
from schemas.symbols import SymbolInfo
from schemas.trades import Market, Trade
from schemas.trading import (
    AccountEvent,
    Command,
    OpenAccount,
    OrderRequest,
    PlaceOrder,
)

T0 = 1_700_000_000_000_000
S = 1_000_000
EX = "binance"

SYMBOLS = [
    SymbolInfo(
        exchange=EX, market="spot", symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT",
        status="TRADING", kind="spot", tick_size=D("0.01"), step_size=D("0.00001"),
        min_qty=D("0.00001"), max_qty=D("9000"), market_max_qty=D("100"), min_notional=D("5"),
    ),
    SymbolInfo(
        exchange=EX, market="usdm", symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT",
        status="TRADING", kind="perpetual", tick_size=D("0.1"), step_size=D("0.001"),
        min_qty=D("0.001"), max_qty=D("1000"), market_max_qty=D("120"), min_notional=D("5"),
    ),
]  # fmt: skip


ASKS = [("100.00", "0.5"), ("100.10", "0.3"), ("100.50", "1")]
BIDS = [("99.90", "0.4"), ("99.00", "2"), ("98.00", "4")]


class Paper:
    """A `PaperEngine` plus a recorder of every input and every event it returned."""

    def __init__(self, settings: PaperSettings | None = None) -> None:
        self.settings = settings or PaperSettings()
        self.symbols = SYMBOLS
        self.engine = PaperEngine(self.settings, SYMBOLS)
        self.inputs: list[tuple[str, Any]] = []
        self.events: list[AccountEvent] = []
        self._ids = 0

    def _feed(self, kind: str, value: Any) -> list[Any]:
        self.inputs.append((kind, value))
        out = getattr(self.engine, kind)(value)
        self.events.extend(out)
        return out

    def command(self, command: Command) -> list[Any]:
        return self._feed("command", command)

    def next_id(self, prefix: str = "c") -> str:
        self._ids += 1
        return f"{prefix}{self._ids}"

    def open(self, market: Market = "spot", account: str = "a1", **balances: str) -> list[Any]:
        return self.command(OpenAccount(
            command_id=self.next_id(), account_id=account, sent_us=0, owner="u1", name=account,
            market=market, exchange=EX, balances={k: D(v) for k, v in balances.items()},
        ))  # fmt: skip

    def place(self, market: Market = "spot", account: str = "a1", **fields: Any) -> list[Any]:
        fields.setdefault("client_order_id", self.next_id("o"))
        fields.setdefault("symbol", "BTCUSDT")
        for name in ("quantity", "quote_quantity", "price", "stop_price"):
            if isinstance(fields.get(name), str):
                fields[name] = D(fields[name])
        request = OrderRequest(exchange=EX, market=market, **fields)
        return self.command(
            PlaceOrder(command_id=self.next_id(), account_id=account, sent_us=0, order=request)
        )

    def quote(
        self,
        bid: str,
        ask: str,
        t: int,
        market: Market = "spot",
        bid_qty: str = "1",
        ask_qty: str = "1",
        uid: int | None = None,
    ) -> list[Any]:
        self._ids += 1
        return self._feed("quote", Quote(
            exchange=EX, market=market, symbol="BTCUSDT", update_id=uid or self._ids,
            bid_price=D(bid), bid_qty=D(bid_qty), ask_price=D(ask), ask_qty=D(ask_qty),
            received_us=T0 + t, time_us=T0 + t,
        ))  # fmt: skip

    def depth(
        self,
        bids: list[tuple[str, str]],
        asks: list[tuple[str, str]],
        t: int,
        market: Market = "spot",
    ) -> list[Any]:
        self._ids += 1
        return self._feed("depth", BookDepth(
            exchange=EX, market=market, symbol="BTCUSDT", update_id=self._ids,
            bids=[(D(p), D(q)) for p, q in bids], asks=[(D(p), D(q)) for p, q in asks],
            received_us=T0 + t, time_us=T0 + t,
        ))  # fmt: skip

    def default_depth(self, t: int = 0) -> list[Any]:
        """The spot book of the module docstring, at `t`."""
        return self.depth(BIDS, ASKS, t=t)

    def trade_record(self, price: str, qty: str, t: int, market: Market = "spot") -> Trade:
        self._ids += 1
        return Trade(
            exchange=EX, market=market, symbol="BTCUSDT", trade_id=self._ids, price=D(price),
            qty=D(qty), time_us=T0 + t, buyer_is_maker=False,
        )  # fmt: skip

    def trade(self, price: str, qty: str, t: int, market: Market = "spot") -> list[Any]:
        return self._feed("trade", self.trade_record(price, qty, t, market))

    def mark_record(
        self, price: str, t: int, rate: str = "0.0001", next_funding: int = 0
    ) -> MarkPrice:
        return MarkPrice(
            exchange=EX, market="usdm", symbol="BTCUSDT", time_us=T0 + t, mark_price=D(price),
            index_price=D(price), estimated_settle_price=D(price),
            next_funding_time_us=T0 + next_funding if next_funding else 0,
            received_us=T0 + t, funding_rate=D(rate),
        )  # fmt: skip

    def mark(self, price: str, t: int, rate: str = "0.0001", next_funding: int = 0) -> list[Any]:
        return self._feed("mark", self.mark_record(price, t, rate, next_funding))


@pytest.fixture
def paper() -> Paper:
    """A fresh paper market with default settings."""
    return Paper()


@pytest.fixture
def make_paper() -> Callable[..., Paper]:
    """Build a paper market with settings overrides."""

    def build(**settings: Any) -> Paper:
        return Paper(PaperSettings(**settings))

    return build
