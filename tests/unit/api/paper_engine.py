"""In-memory stand-ins for the paper engine and the paper history tables, for unit tests
of the API's paper trading.

It answers commands the way the engine's contract says (one event per change, `seq`
counting per account, the command id echoed, a view after each command), through the
same `TradingStreams.deliver` the Kafka feed calls, on the next turn of the event loop.
Its rules are a sketch: limit orders rest, market orders fill at once at `PRICE`,
quantities under `MIN_QTY` are rejected with Binance's LOT_SIZE wording.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from msgspec.structs import replace

from api.live.trading import TradingRecord, TradingStreams
from schemas import trading as t

PRICE = Decimal("100")
MIN_QTY = Decimal("0.001")
T0_US = 1_723_161_300_000_000
UNKNOWN = "Unknown order sent."


def _fields(message: object, *names: str) -> dict[str, Any]:
    return {name: getattr(message, name) for name in names}


@dataclass
class _Account:
    opened: t.OpenAccount
    seq: int = 0
    balances: dict[str, Decimal] = field(default_factory=dict)
    orders: dict[str, t.Order] = field(default_factory=dict)
    positions: dict[str, Decimal] = field(default_factory=dict)
    fills: int = 0
    symbols: set[str] = field(default_factory=set)
    """USDⓈ-M symbols it has ordered: the first order of one logs its leverage first."""


class FakeEngine:
    """Answers commands sent through `streams` (install it with `attach`).

    Attributes:
        silent: When set, commands are taken and never answered (a stopped engine).
        commands: Every command received, in order.
    """

    def __init__(self) -> None:
        self.accounts: dict[str, _Account] = {}
        self.commands: list[t.Command] = []
        self.silent = False
        self.max_accounts = 1_000
        self.streams: TradingStreams | None = None

    def attach(self, streams: TradingStreams) -> FakeEngine:
        """Answer the commands `streams` sends."""
        self.streams = streams
        streams.sender = self.receive
        return self

    def receive(self, command: t.Command) -> None:
        """Take one command; its events and the view after them arrive on the next turn."""
        self.commands.append(command)
        if self.silent:
            return
        records = self.apply(command)
        assert self.streams is not None
        asyncio.get_running_loop().call_soon(self.streams.deliver, records)

    def apply(self, command: t.Command) -> list[TradingRecord]:
        """The events of one command, and the account's view after them."""
        if isinstance(command, t.OpenAccount):
            if len(self.accounts) >= self.max_accounts:  # as the engine refuses: no log, seq 0
                return [
                    t.CommandRefused(
                        account_id=command.account_id,
                        seq=0,
                        time_us=T0_US,
                        command_id=command.command_id,
                        command="open",
                        reason="Too many accounts.",
                    )
                ]
            account = self.accounts[command.account_id] = _Account(command)
        else:
            account = self.accounts[command.account_id]
        events = list(self._events(account, command))
        return [*events, self.view(account)]

    def _event(
        self, account: _Account, kind: type, cause: t.Command, /, **fields: object
    ) -> object:
        account.seq += 1
        return kind(
            account_id=cause.account_id,
            seq=account.seq,
            time_us=T0_US + account.seq,
            command_id=cause.command_id,
            **fields,
        )

    def _events(self, account: _Account, command: t.Command) -> list[t.AccountEvent]:
        if isinstance(command, t.OpenAccount | t.ResetAccount):
            account.balances = dict(command.balances)
            account.orders, account.positions = {}, {}
            entries = [
                t.LedgerEntry(
                    asset, "deposit" if isinstance(command, t.OpenAccount) else "reset", a, a
                )
                for asset, a in command.balances.items()
            ]
            if isinstance(command, t.ResetAccount):
                return [self._event(account, t.AccountReset, command, entries=entries)]  # type: ignore[list-item]
            opened = _fields(command, "owner", "name", "market", "exchange")
            return [
                self._event(
                    account, t.AccountOpened, command, **opened, venue="paper", entries=entries
                )
            ]  # type: ignore[list-item]
        if isinstance(command, t.PlaceOrder):
            return self._place(account, command)
        if isinstance(command, t.CancelOrder | t.AmendOrder):
            order = account.orders.get(command.client_order_id)
            if order is None or not order.is_open:
                what = type(command).__name__
                refused = self._event(
                    account, t.CommandRefused, command, command=what, reason=UNKNOWN, code=-2011
                )
                return [refused]  # type: ignore[list-item]
            if isinstance(command, t.CancelOrder):
                order = replace(order, status="canceled", updated_us=T0_US + account.seq + 1)
            else:
                order = replace(order, price=command.price or order.price)
            account.orders[order.request.client_order_id] = order
            return [self._event(account, t.OrderUpdated, command, order=order)]  # type: ignore[list-item]
        if isinstance(command, t.CancelAll):
            events = []
            for coid, order in list(account.orders.items()):
                if order.is_open and command.symbol in (None, order.request.symbol):
                    account.orders[coid] = order = replace(order, status="canceled")
                    events.append(self._event(account, t.OrderUpdated, command, order=order))
            return events  # type: ignore[return-value]
        if isinstance(command, t.SetLeverage):
            changed = _fields(command, "symbol", "leverage", "margin_mode")
            return [self._event(account, t.LeverageChanged, command, **changed)]  # type: ignore[list-item]
        assert isinstance(command, t.ClosePosition)
        events = []
        for symbol, qty in list(account.positions.items()):
            if command.symbol in (None, symbol) and qty:
                request = t.OrderRequest(
                    client_order_id=f"close-{command.command_id}-{symbol}"[:36],
                    exchange=account.opened.exchange,
                    market=account.opened.market,
                    symbol=symbol,
                    side="SELL" if qty > 0 else "BUY",
                    type="market",
                    quantity=abs(qty),
                    reduce_only=True,
                )
                close = t.PlaceOrder(command.command_id, command.account_id, 0, request)
                events += self._place(account, close)
        return events

    def _place(self, account: _Account, command: t.PlaceOrder) -> list[t.AccountEvent]:
        request = command.order
        first = account.orders.get(request.client_order_id)
        if first is not None:
            return [self._event(account, t.OrderRepeated, command, order=first)]  # type: ignore[list-item]
        order = t.Order(
            account_id=command.account_id,
            order_id=len(account.orders) + 1,
            request=request,
            status="new",
            created_us=T0_US + account.seq + 1,
            updated_us=T0_US + account.seq + 1,
            quantity=request.quantity,
            price=request.price,
        )
        qty = request.quantity or Decimal(0)
        if qty < MIN_QTY:
            order = replace(order, status="rejected", reason="Filter failure: LOT_SIZE", code=-1013)
            account.orders[request.client_order_id] = order
            return [self._event(account, t.OrderRejected, command, order=order)]  # type: ignore[list-item]
        account.orders[request.client_order_id] = order
        events: list[t.AccountEvent] = []
        if request.market == "usdm" and request.symbol not in account.symbols:
            account.symbols.add(request.symbol)
            leverage = {"symbol": request.symbol, "leverage": 20, "margin_mode": "cross"}
            events.append(self._event(account, t.LeverageChanged, command, **leverage))  # type: ignore[arg-type]
        events.append(self._event(account, t.OrderAccepted, command, order=order))  # type: ignore[arg-type]
        if request.type == "market":
            account.fills += 1
            fill = t.Fill(
                account_id=command.account_id,
                fill_id=account.fills,
                order_id=order.order_id,
                **_fields(request, "client_order_id", "exchange", "market", "symbol", "side"),
                price=PRICE,
                qty=qty,
                quote_qty=PRICE * qty,
                fee=Decimal("0.05"),
                fee_asset="USDT",
                liquidity="taker",
                time_us=T0_US + account.seq + 1,
            )
            order = replace(order, status="filled", filled_qty=qty, filled_quote=PRICE * qty)
            account.orders[request.client_order_id] = order
            signed = qty if request.side == "BUY" else -qty
            if request.market == "usdm":
                account.positions[request.symbol] = (
                    account.positions.get(request.symbol, 0) + signed
                )
            fill_event = self._event(
                account, t.OrderFilled, command, fill=fill, order=order, entries=[]
            )
            events.append(fill_event)  # type: ignore[arg-type]
        return events

    def view(self, account: _Account) -> t.AccountView:
        """The account as it stands (valued at `PRICE`)."""
        opened = account.opened
        positions = [
            t.Position(opened.exchange, symbol, qty, PRICE, 20, "cross", mark_price=PRICE)
            for symbol, qty in account.positions.items()
            if qty
        ]
        return t.AccountView(
            **_fields(opened, "account_id", "owner", "name", "market", "exchange"),
            venue="paper",
            seq=account.seq,
            time_us=T0_US + account.seq,
            balances=[t.Balance(asset, free) for asset, free in account.balances.items()],
            positions=positions,
            open_orders=[o for o in account.orders.values() if o.is_open],
            equity=sum(account.balances.values(), Decimal(0)),
        )


@dataclass
class FakeStore:
    """Answers the paper history queries with the rows set per table; keeps each query."""

    database: str = "tickscan"
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    queries: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def query(self, sql: str, parameters: dict[str, Any]) -> tuple[list[str], list[Any]]:
        self.queries.append((sql, dict(parameters)))
        table = re.search(r"\.(paper_\w+) FINAL", sql)
        selected = re.search(r"SELECT(.*?)FROM", sql, re.DOTALL)
        assert table is not None and selected is not None, sql
        columns = [item.split(" AS ")[-1].strip() for item in selected.group(1).split(",")]
        return columns, list(self.rows.get(table.group(1), []))
