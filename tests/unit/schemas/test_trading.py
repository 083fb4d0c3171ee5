"""Trading messages: wire round trips and the request checks."""

from __future__ import annotations

from decimal import Decimal

import pytest

from schemas import trading as tr


def _request(**changes: object) -> tr.OrderRequest:
    fields: dict[str, object] = {
        "client_order_id": "c1",
        "exchange": "binance",
        "market": "usdm",
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "limit",
        "quantity": Decimal("0.010"),
        "price": Decimal("60000.10"),
    }
    fields.update(changes)
    return tr.OrderRequest(**fields)  # type: ignore[arg-type]


def test_a_command_round_trips_with_exact_decimals() -> None:
    command = tr.PlaceOrder(command_id="k", account_id="a", sent_us=1, order=_request())
    wire = tr.encode(command)
    assert b'"kind":"place"' in wire and b'"60000.10"' in wire
    assert tr.command_decoder().decode(wire) == command


def test_an_event_round_trips_as_its_own_kind() -> None:
    order = tr.Order(
        account_id="a", order_id=1, request=_request(), status="new", created_us=5, updated_us=5
    )
    event = tr.OrderAccepted(account_id="a", seq=2, time_us=5, command_id="k", order=order)
    decoded = tr.event_decoder().decode(tr.encode(event))
    assert isinstance(decoded, tr.OrderAccepted)
    assert decoded.order.request.price == Decimal("60000.10")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"price": None}, "needs a price"),
        ({"type": "market"}, "takes no price"),
        ({"quote_quantity": Decimal(10)}, "exactly one"),
        ({"quantity": Decimal(0)}, "positive"),
        ({"type": "stop_market", "price": None}, "needs a stop_price"),
        ({"market": "spot", "reduce_only": True}, "reduce_only"),
        (
            {"market": "spot", "type": "stop_limit", "stop_price": Decimal(1), "trigger": "mark"},
            "mark",
        ),
        ({"client_order_id": ""}, "client_order_id"),
    ],
)
def test_contradictory_requests_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(tr.InvalidTradingMessage, match=message):
        tr.check_request(_request(**changes))


def test_a_consistent_request_passes() -> None:
    request = _request()
    assert tr.check_request(request) is request
