"""The fold: an account's state is its events applied in `seq` order, and nothing else.

`apply` is the only code that changes an `AccountState`. The live engine applies every
event it emits through it, and a restart replays the log through it, so both reach the
same balances, orders and positions by construction. Balances move only by the
`LedgerEntry` lines events carry; USDⓈ-M positions move by
`flows.trading.futures.apply_fill` from each fill; spot locks are not stored at all
(`flows.trading.spot.locked` derives them from the open orders).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from flows.errors import FlowError
from flows.trading import futures
from flows.trading.state import AccountState, PositionState
from schemas.trading import (
    AccountEvent,
    AccountOpened,
    AccountReset,
    CommandRefused,
    FundingPaid,
    LedgerEntry,
    LedgerKind,
    LeverageChanged,
    Liquidated,
    Order,
    OrderAccepted,
    OrderFilled,
    OrderRejected,
    OrderRepeated,
    OrderUpdated,
)


class LedgerError(FlowError):
    """An event that cannot follow the account's state (a gap or a foreign account)."""


def open_account(event: AccountOpened) -> AccountState:
    """A new account as its opening event leaves it."""
    state = AccountState(
        account_id=event.account_id,
        owner=event.owner,
        name=event.name,
        market=event.market,
        exchange=event.exchange,
        venue=event.venue,
    )
    apply(state, event)
    return state


def apply(state: AccountState, event: AccountEvent) -> None:
    """Apply one event to its account.

    Raises:
        LedgerError: When the event belongs to another account or does not follow
            `state.seq` by exactly one.
    """
    if event.account_id != state.account_id:
        raise LedgerError(f"event of {event.account_id} applied to {state.account_id}")
    if event.seq != state.seq + 1:
        raise LedgerError(f"{state.account_id}: event seq {event.seq} after {state.seq}")
    _APPLY[type(event)](state, event)
    state.seq = event.seq
    state.time_us = event.time_us


def book_entries(state: AccountState, entries: list[LedgerEntry]) -> None:
    """Move the wallet by each entry, in order."""
    for entry in entries:
        state.balances[entry.asset] = state.balances.get(entry.asset, Decimal(0)) + entry.amount


def entries(
    state: AccountState, moves: list[tuple[str, LedgerKind, Decimal]], symbol: str = ""
) -> list[LedgerEntry]:
    """Ledger lines for `moves` (asset, kind, amount) in order, each with the balance it
    leaves; zero amounts are left out."""
    running = dict(state.balances)
    out: list[LedgerEntry] = []
    for asset, kind, amount in moves:
        if amount == 0:
            continue
        after = running.get(asset, Decimal(0)) + amount
        running[asset] = after
        out.append(
            LedgerEntry(asset=asset, kind=kind, amount=amount, balance_after=after, symbol=symbol)
        )
    return out


def position(state: AccountState, symbol: str, default_leverage: int) -> PositionState:
    """The symbol's position and settings, created flat at `default_leverage`."""
    pos = state.positions.get(symbol)
    if pos is None:
        pos = PositionState(exchange=state.exchange, symbol=symbol, leverage=default_leverage)
        state.positions[symbol] = pos
    return pos


def _put_order(state: AccountState, order: Order) -> None:
    state.client_ids[order.request.client_order_id] = order.order_id
    state.next_order_id = max(state.next_order_id, order.order_id + 1)
    if order.is_open:
        state.orders[order.order_id] = order
    else:
        state.orders.pop(order.order_id, None)
        state.closed[order.order_id] = order


def _opened(state: AccountState, event: AccountOpened) -> None:
    book_entries(state, event.entries)


def _reset(state: AccountState, event: AccountReset) -> None:
    for order_id in sorted(state.orders):
        order = state.orders[order_id]
        state.closed[order_id] = _canceled(order, event.time_us)
    state.orders.clear()
    state.positions.clear()
    book_entries(state, event.entries)
    for asset in [a for a, amount in state.balances.items() if not amount]:
        del state.balances[asset]


def _canceled(order: Order, time_us: int) -> Order:
    return msgspec.structs.replace(order, status="canceled", updated_us=time_us)


def _order(state: AccountState, event: OrderAccepted | OrderRejected | OrderUpdated) -> None:
    _put_order(state, event.order)


def _filled(state: AccountState, event: OrderFilled) -> None:
    book_entries(state, event.entries)
    _put_order(state, event.order)
    state.next_fill_id = max(state.next_fill_id, event.fill.fill_id + 1)
    if state.market == "usdm":
        _fill_position(state, event)


def _fill_position(state: AccountState, event: OrderFilled) -> None:
    fill = event.fill
    pos = state.positions[fill.symbol]
    held = pos.qty
    _, closed = futures.apply_fill(pos, fill.side, fill.qty, fill.price)
    if pos.margin_mode == "isolated":
        pos.isolated_margin = futures.isolated_margin_after_fill(
            pos.isolated_margin, held=held, closed=closed, opened=fill.qty - closed,
            price=fill.price, leverage=pos.leverage, realized=fill.realized_pnl, fee=fill.fee,
        )  # fmt: skip
    pos.realized_pnl += fill.realized_pnl
    pos.fees += fill.fee


def _leverage(state: AccountState, event: LeverageChanged) -> None:
    pos = position(state, event.symbol, event.leverage)
    pos.leverage = event.leverage
    pos.margin_mode = event.margin_mode


def _funding(state: AccountState, event: FundingPaid) -> None:
    book_entries(state, [event.entry])
    pos = state.positions[event.symbol]
    pos.funding += event.entry.amount
    pos.last_funding_us = event.funding_time_us
    if pos.margin_mode == "isolated":
        pos.isolated_margin += event.entry.amount


def _nothing(state: AccountState, event: Any) -> None:
    """Events that change nothing but `seq` (a repeat, a refusal, the liquidation
    notice: its fill follows as its own event)."""


_APPLY: dict[type, Callable[[AccountState, Any], None]] = {
    AccountOpened: _opened,
    AccountReset: _reset,
    OrderAccepted: _order,
    OrderRejected: _order,
    OrderUpdated: _order,
    OrderRepeated: _nothing,
    OrderFilled: _filled,
    LeverageChanged: _leverage,
    FundingPaid: _funding,
    Liquidated: _nothing,
    CommandRefused: _nothing,
}
