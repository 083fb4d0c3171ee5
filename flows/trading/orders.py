"""An order's life as values: created, filled, ended, amended; and what a working order
remembers outside the fold.

Orders are immutable `schemas.trading.Order` values; each change here returns the next
one, which an event then carries (the fold stores it). `Working` is the engine's own
note about an open order that the log does not need: its queue position, or since when a
market order has been waiting for a fresh book.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from flows.trading.matching import QueuePosition
from flows.trading.rules import Rejection
from schemas.trading import Order, OrderRequest, OrderStatus

TAKER_TYPES = frozenset({"market", "stop_market", "take_profit_market"})
"""Types that execute as market orders (the stops once triggered)."""
STOP_TYPES = frozenset({"stop_market", "stop_limit", "take_profit_market"})


def new_order(account_id: str, order_id: int, request: OrderRequest, now_us: int) -> Order:
    """A fresh order for `request`, status ``new``."""
    return Order(
        account_id=account_id,
        order_id=order_id,
        request=request,
        status="new",
        created_us=now_us,
        updated_us=now_us,
        quantity=request.quantity,
        price=request.price,
        stop_price=request.stop_price,
    )


def refused(order: Order, rejection: Rejection, now_us: int) -> Order:
    """The order as `rejection` ends it."""
    return msgspec.structs.replace(
        order,
        status=rejection.status,
        reason=rejection.reason,
        code=rejection.code,
        updated_us=now_us,
    )


def ended(order: Order, status: OrderStatus, now_us: int, reason: str | None = None) -> Order:
    """The order canceled or expired (with Binance's or the paper venue's reason)."""
    return msgspec.structs.replace(order, status=status, reason=reason, updated_us=now_us)


def with_fill(
    order: Order, qty: Decimal, price: Decimal, fee: Decimal, fee_asset: str, now_us: int
) -> Order:
    """The order after one more fill."""
    filled = order.filled_qty + qty
    target = order.quantity
    status: OrderStatus = (
        "filled" if target is not None and filled >= target else "partially_filled"
    )
    return msgspec.structs.replace(
        order,
        filled_qty=filled,
        filled_quote=order.filled_quote + price * qty,
        fees=order.fees + fee,
        fee_asset=fee_asset,
        status=status,
        updated_us=now_us,
    )


def remaining(order: Order) -> Decimal:
    """Base quantity still to fill."""
    return Decimal(0) if order.quantity is None else order.quantity - order.filled_qty


def acts_as_market(order: Order) -> bool:
    """Whether it takes liquidity at any price once working (market, triggered stops)."""
    return order.request.type in TAKER_TYPES


def is_waiting_stop(order: Order) -> bool:
    """A stop or take-profit that has not triggered yet."""
    return order.request.type in STOP_TYPES and not order.triggered


def must_take_now(order: Order) -> bool:
    """Whether it executes at once or not at all: market orders, triggered market stops,
    IOC and FOK. With no fresh book such an order waits for one (up to
    `PaperSettings.market_order_wait_s`) rather than fill at a stale price."""
    return acts_as_market(order) or order.request.time_in_force in ("IOC", "FOK")


@dataclass(slots=True)
class Working:
    """The engine's note about one open order of one account.

    Attributes:
        account_id: Its account.
        order_id: Its id.
        queue: Its place at its price level while it rests.
        waiting_since_us: Market time a must-take-now order started waiting for a fresh
            book (None when it is not waiting).
    """

    account_id: str
    order_id: int
    queue: QueuePosition = field(default_factory=QueuePosition)
    waiting_since_us: int | None = None

    @property
    def key(self) -> tuple[str, int]:
        """Its identity, which also orders working orders deterministically."""
        return (self.account_id, self.order_id)
