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
from schemas.trading import (
    AccountEvent,
    AccountOpened,
    AccountReset,
    AccountView,
    AmendOrder,
    Balance,
    CancelAll,
    CancelOrder,
    ClosePosition,
    Command,
    CommandRefused,
    Fill,
    LedgerEntry,
    LeverageChanged,
    OpenAccount,
    Order,
    OrderAccepted,
    OrderFilled,
    OrderRejected,
    OrderRepeated,
    OrderRequest,
    OrderUpdated,
    PlaceOrder,
    Position,
    ResetAccount,
    SetLeverage,
)

PRICE = Decimal("100")
MIN_QTY = Decimal("0.001")
T0_US = 1_723_161_300_000_000


@dataclass
class _Account:
    opened: OpenAccount
    seq: int = 0
    balances: dict[str, Decimal] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    positions: dict[str, Decimal] = field(default_factory=dict)
    fills: int = 0


class FakeEngine:
    """Answers commands sent through `streams` (install it with `attach`).

    Attributes:
        silent: When set, commands are taken and never answered (a stopped engine).
        commands: Every command received, in order.
    """

    def __init__(self) -> None:
        self.accounts: dict[str, _Account] = {}
        self.commands: list[Command] = []
        self.silent = False
        self.streams: TradingStreams | None = None

    def attach(self, streams: TradingStreams) -> FakeEngine:
        """Answer the commands `streams` sends."""
        self.streams = streams
        streams.sender = self.receive
        return self

    def receive(self, command: Command) -> None:
        """Take one command; its events and the view after them arrive on the next turn."""
        self.commands.append(command)
        if self.silent:
            return
        records = self.apply(command)
        assert self.streams is not None
        asyncio.get_running_loop().call_soon(self.streams.deliver, records)

    def apply(self, command: Command) -> list[TradingRecord]:
        """The events of one command, and the account's view after them."""
        if isinstance(command, OpenAccount):
            account = self.accounts[command.account_id] = _Account(command)
        else:
            account = self.accounts[command.account_id]
        events = list(self._events(account, command))
        return [*events, self.view(account)]

    def _event(self, account: _Account, kind: type, cause: Command, /, **fields: object) -> object:
        account.seq += 1
        return kind(
            account_id=cause.account_id,
            seq=account.seq,
            time_us=T0_US + account.seq,
            command_id=cause.command_id,
            **fields,
        )

    def _events(self, account: _Account, command: Command) -> list[AccountEvent]:
        if isinstance(command, OpenAccount | ResetAccount):
            account.balances = dict(command.balances)
            account.orders, account.positions = {}, {}
            entries = [
                LedgerEntry(asset, "deposit" if isinstance(command, OpenAccount) else "reset", a, a)
                for asset, a in command.balances.items()
            ]
            if isinstance(command, ResetAccount):
                return [self._event(account, AccountReset, command, entries=entries)]  # type: ignore[list-item]
            opened = command
            return [
                self._event(  # type: ignore[list-item]
                    account,
                    AccountOpened,
                    command,
                    owner=opened.owner,
                    name=opened.name,
                    market=opened.market,
                    exchange=opened.exchange,
                    venue="paper",
                    entries=entries,
                )
            ]
        if isinstance(command, PlaceOrder):
            return self._place(account, command)
        if isinstance(command, CancelOrder | AmendOrder):
            order = account.orders.get(command.client_order_id)
            if order is None or not order.is_open:
                refused = self._event(
                    account,
                    CommandRefused,
                    command,
                    command=type(command).__name__,
                    reason="Unknown order sent.",
                    code=-2011,
                )
                return [refused]  # type: ignore[list-item]
            if isinstance(command, CancelOrder):
                order = replace(order, status="canceled", updated_us=T0_US + account.seq + 1)
            else:
                order = replace(order, price=command.price or order.price)
            account.orders[order.request.client_order_id] = order
            return [self._event(account, OrderUpdated, command, order=order)]  # type: ignore[list-item]
        if isinstance(command, CancelAll):
            events = []
            for coid, order in list(account.orders.items()):
                if order.is_open and command.symbol in (None, order.request.symbol):
                    account.orders[coid] = order = replace(order, status="canceled")
                    events.append(self._event(account, OrderUpdated, command, order=order))
            return events  # type: ignore[return-value]
        if isinstance(command, SetLeverage):
            return [
                self._event(  # type: ignore[list-item]
                    account,
                    LeverageChanged,
                    command,
                    symbol=command.symbol,
                    leverage=command.leverage,
                    margin_mode=command.margin_mode,
                )
            ]
        assert isinstance(command, ClosePosition)
        events = []
        for symbol, qty in list(account.positions.items()):
            if command.symbol in (None, symbol) and qty:
                request = OrderRequest(
                    client_order_id=f"close-{command.command_id}-{symbol}"[:36],
                    exchange=account.opened.exchange,
                    market=account.opened.market,
                    symbol=symbol,
                    side="SELL" if qty > 0 else "BUY",
                    type="market",
                    quantity=abs(qty),
                    reduce_only=True,
                )
                close = PlaceOrder(command.command_id, command.account_id, 0, request)
                events += self._place(account, close)
        return events

    def _place(self, account: _Account, command: PlaceOrder) -> list[AccountEvent]:
        request = command.order
        first = account.orders.get(request.client_order_id)
        if first is not None:
            return [self._event(account, OrderRepeated, command, order=first)]  # type: ignore[list-item]
        order = Order(
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
            return [self._event(account, OrderRejected, command, order=order)]  # type: ignore[list-item]
        account.orders[request.client_order_id] = order
        events: list[AccountEvent] = [self._event(account, OrderAccepted, command, order=order)]  # type: ignore[list-item]
        if request.type == "market":
            account.fills += 1
            fill = Fill(
                account_id=command.account_id,
                fill_id=account.fills,
                order_id=order.order_id,
                client_order_id=request.client_order_id,
                exchange=request.exchange,
                market=request.market,
                symbol=request.symbol,
                side=request.side,
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
                account, OrderFilled, command, fill=fill, order=order, entries=[]
            )
            events.append(fill_event)  # type: ignore[arg-type]
        return events

    def view(self, account: _Account) -> AccountView:
        """The account as it stands (valued at `PRICE`)."""
        opened = account.opened
        positions = [
            Position(opened.exchange, symbol, qty, PRICE, 20, "cross", mark_price=PRICE)
            for symbol, qty in account.positions.items()
            if qty
        ]
        return AccountView(
            account_id=opened.account_id,
            owner=opened.owner,
            name=opened.name,
            market=opened.market,
            exchange=opened.exchange,
            venue="paper",
            seq=account.seq,
            time_us=T0_US + account.seq,
            balances=[Balance(asset, free) for asset, free in account.balances.items()],
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
