"""What the paper engine's answer to a command means for the API: the order or orders it
left, or the error to answer with (a rejection, a refusal, an answer not understood).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import msgspec

from api.errors import ApiError, Unavailable
from schemas.trading import (
    AccountEvent,
    CommandRefused,
    LeverageChanged,
    Order,
    OrderAccepted,
    OrderFilled,
    OrderRejected,
    OrderRepeated,
    OrderUpdated,
    encode,
)

logger = logging.getLogger(__name__)


class OrderRejectedError(ApiError):
    """The venue rejected an order: Binance's wording, its code, and the order."""

    status = 400
    code = "order_rejected"

    def __init__(self, order: Order) -> None:
        super().__init__(
            order.reason or "Order rejected.",
            extra={"binance_code": order.code, "order": _plain_json(order)},
        )


class CommandRefusedError(ApiError):
    """The venue refused a command that is not an order (an unknown order to cancel,
    a leverage it does not allow)."""

    status = 400
    code = "command_refused"

    def __init__(self, refused: CommandRefused) -> None:
        super().__init__(refused.reason, extra={"binance_code": refused.code})


def _plain_json(value: object) -> Any:
    return msgspec.json.decode(encode(value))


def answers_order(event: AccountEvent) -> bool:
    """Whether an event answers an order command (the engine may log others first, e.g.
    the leverage a symbol's first order starts at)."""
    return isinstance(event, OrderAccepted | OrderRejected | OrderRepeated | OrderUpdated)


def _client_id(event: AccountEvent) -> str | None:
    order = getattr(event, "order", None)
    return order.request.client_order_id if isinstance(order, Order) else None


def placed(events: Sequence[AccountEvent], client_order_id: str) -> tuple[Order, bool]:
    """The placed order as the last of the command's events left it, and whether the
    command was a repeat.

    Raises:
        OrderRejectedError: For a rejection.
        CommandRefusedError: For a refusal.
    """
    answers = [
        event
        for event in events
        if isinstance(event, CommandRefused) or _client_id(event) == client_order_id
    ]
    if not answers:
        raise unexpected(events[-1])
    first = order_of(answers[0])
    last = answers[-1]
    order = last.order if isinstance(last, OrderFilled | OrderUpdated) else first
    return order, isinstance(answers[0], OrderRepeated)


def answers_leverage(event: AccountEvent) -> bool:
    return isinstance(event, LeverageChanged)


def order_of(event: AccountEvent) -> Order:
    """The order an answer to an order command carries.

    Raises:
        OrderRejectedError: For a rejection.
        CommandRefusedError: For a refusal.
    """
    if isinstance(event, OrderRejected):
        raise OrderRejectedError(event.order)
    if isinstance(event, OrderAccepted | OrderUpdated | OrderRepeated):
        return event.order
    raise unexpected(event)


def unexpected(event: AccountEvent) -> ApiError:
    if isinstance(event, CommandRefused):
        return CommandRefusedError(event)
    logger.error("paper engine answered %s to a command", type(event).__name__)
    return Unavailable("the paper engine gave an answer the API does not understand")


def orders_of(events: Sequence[AccountEvent]) -> list[Order]:
    """The orders a multi-order command touched, each as its last event left it, in the
    order they were first touched."""
    latest: dict[int, Order] = {}
    for event in events:
        if isinstance(event, CommandRefused):
            raise CommandRefusedError(event)
        order = getattr(event, "order", None)
        if isinstance(order, Order):
            latest[order.order_id] = order
    return list(latest.values())
