"""Live paper trading: a command's answer is found by its id (the first event, or every
event up to the view after them), the latest view of an account is kept, and an account's
subscribers get its orders, fills, views, funding and liquidations."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from api.errors import Timeout, Unavailable
from api.live.trading import TradingFeed, TradingRecord, TradingStreams
from flows.sources.kafka import Record
from schemas import topics
from schemas.trading import (
    AccountEvent,
    AccountView,
    CancelAll,
    Command,
    CommandRefused,
    FundingPaid,
    LedgerEntry,
    LeverageChanged,
    Liquidated,
    Order,
    OrderRequest,
    OrderUpdated,
    PlaceOrder,
    encode,
)
from tests.unit.api.test_hub import hub, take

D = Decimal
T0_US = 1_723_161_300_000_000
ACCOUNT = "acc-1"


def view(seq: int, time_us: int = T0_US, equity: str = "10000") -> AccountView:
    return AccountView(
        ACCOUNT, "1", "a", "usdm", "binance", "paper", seq, time_us, [], [], [], D(equity)
    )


def order(n: int, status: str = "canceled") -> Order:
    request = OrderRequest(f"o{n}", "binance", "usdm", "BTCUSDT", "BUY", "limit", price=D(1))
    return Order(ACCOUNT, n, request, status, T0_US, T0_US)  # type: ignore[arg-type]


def updated(seq: int, command_id: str, n: int) -> OrderUpdated:
    return OrderUpdated(
        account_id=ACCOUNT, seq=seq, time_us=T0_US, command_id=command_id, order=order(n)
    )


def cancel_all(command_id: str = "c1") -> Command:
    return CancelAll(command_id, ACCOUNT, 0)


def ANY(event: AccountEvent) -> bool:
    return True


def answer_in_turns(
    streams: TradingStreams, *turns: list[TradingRecord]
) -> list[Command]:  # the commands the engine got
    """A sender whose engine answers with `turns`, one loop turn after another."""
    sent: list[Command] = []

    def send(command: Command) -> None:
        sent.append(command)
        loop = asyncio.get_running_loop()
        for i, records in enumerate(turns):
            loop.call_later(0.001 * (i + 1), streams.deliver, records)

    streams.sender = send
    return sent


def test_the_first_event_with_the_commands_id_answers_it() -> None:
    streams = TradingStreams(timeout_s=1)
    other = updated(1, "someone-else", 9)
    answer_in_turns(streams, [other, updated(2, "c1", 1), updated(3, "c1", 2)])
    events = asyncio.run(streams.send(cancel_all(), ANY))
    assert events == [updated(2, "c1", 1)]


def test_the_answer_is_the_first_event_it_names_and_a_refusal_ends_any_wait() -> None:
    streams = TradingStreams(timeout_s=1)
    leverage = LeverageChanged(
        account_id=ACCOUNT, seq=1, time_us=T0_US, command_id="c1", symbol="BTCUSDT",
        leverage=20, margin_mode="cross",
    )  # fmt: skip
    answer_in_turns(streams, [leverage, updated(2, "c1", 1)])
    events = asyncio.run(streams.send(cancel_all(), lambda e: isinstance(e, OrderUpdated)))
    assert events == [leverage, updated(2, "c1", 1)]
    refused = CommandRefused(
        account_id=ACCOUNT, seq=0, time_us=T0_US, command_id="c2", command="open",
        reason="Too many accounts.",
    )  # fmt: skip
    answer_in_turns(streams, [refused])  # and no view ever: a whole wait ends all the same
    assert asyncio.run(streams.send(cancel_all("c2"))) == [refused]


def test_a_whole_answer_waits_for_the_view_and_every_event_it_counts() -> None:
    streams = TradingStreams(timeout_s=1)
    # The view after the command comes before its last event (another topic, another
    # fetch): the answer waits for that event too.
    answer_in_turns(
        streams,
        [updated(1, "c1", 1)],
        [view(2)],
        [updated(2, "c1", 2)],
    )
    events = asyncio.run(streams.send(cancel_all()))
    assert events == [updated(1, "c1", 1), updated(2, "c1", 2)]
    assert streams.view(ACCOUNT) == view(2)


def test_a_view_from_before_the_command_does_not_settle_it() -> None:
    streams = TradingStreams(timeout_s=1)
    streams.deliver([view(5)])
    answer_in_turns(streams, [updated(6, "c1", 1)], [updated(7, "c1", 2), view(7)])
    assert len(asyncio.run(streams.send(cancel_all()))) == 2


def test_no_answer_is_a_timeout_and_a_partial_one_is_what_came() -> None:
    streams = TradingStreams(timeout_s=0.05)
    answer_in_turns(streams)
    with pytest.raises(Timeout, match=r"did not answer within 0\.05 s"):
        asyncio.run(streams.send(cancel_all(), ANY))
    answer_in_turns(streams, [updated(1, "c2", 1)])  # no view ever follows
    assert asyncio.run(streams.send(cancel_all("c2"))) == [updated(1, "c2", 1)]
    assert streams._pending == {}


def test_a_command_kafka_refuses_or_no_producer_is_a_503() -> None:
    streams = TradingStreams()
    with pytest.raises(Unavailable, match="not running"):
        asyncio.run(streams.send(cancel_all()))

    def full(command: Command) -> None:
        raise BufferError("queue full")

    streams.sender = full
    with pytest.raises(Unavailable, match="cannot be reached"):
        asyncio.run(streams.send(cancel_all()))
    assert streams._pending == {}


def test_an_older_view_never_replaces_a_newer_one() -> None:
    streams = TradingStreams()
    streams.deliver([view(3, T0_US + 5, "1"), view(3, T0_US + 4, "2"), view(2, T0_US + 9, "3")])
    assert streams.view(ACCOUNT) == view(3, T0_US + 5, "1")
    streams.deliver([view(3, T0_US + 6, "4")])  # a revaluation at the same seq
    assert streams.view(ACCOUNT) == view(3, T0_US + 6, "4")


def test_an_accounts_subscribers_get_its_updates_and_no_others() -> None:
    h = hub(queue=64)
    streams = h.trading
    streams.deliver([view(1)])
    mine, idle = h.connect("ws"), h.connect("ws")
    h.subscribe_trading(mine, "t", ACCOUNT)
    h.subscribe_trading(idle, "t", "acc-2")
    assert take(mine) == [("account", {"account": msg(view(1))})]
    funding = FundingPaid(
        account_id=ACCOUNT,
        seq=2,
        time_us=T0_US,
        symbol="BTCUSDT",
        funding_time_us=T0_US,
        rate=D("0.0001"),
        mark_price=D("60000"),
        position_qty=D("0.1"),
        entry=LedgerEntry("USDT", "funding", D("-0.6"), D("9999.4"), "BTCUSDT"),
    )
    liquidated = Liquidated(
        account_id=ACCOUNT,
        seq=3,
        time_us=T0_US,
        symbol="BTCUSDT",
        position_qty=D("0.1"),
        mark_price=D("50000"),
        margin_balance=D("1"),
        maintenance_margin=D("2"),
    )
    events: list[AccountEvent] = [updated(1, "", 1), funding, liquidated]
    streams.deliver([*events, view(3)])
    got = take(mine)
    assert [kind for kind, _ in got] == ["order", "funding", "liquidation", "account"]
    assert got[0][1] == {"order": msg(order(1))}
    assert got[1][1]["funding"]["entry"]["amount"] == "-0.6"
    assert got[2][1]["liquidation"]["mark_price"] == "50000"
    assert not idle.queue
    h.unsubscribe(mine, "t")
    streams.deliver([updated(4, "", 2)])
    assert not mine.queue and streams._subs.keys() == {"acc-2"}


def test_a_view_that_overtakes_its_events_waits_for_them() -> None:
    h = hub(queue=64)
    streams = h.trading
    streams.deliver([view(1)])  # no event of the account yet: nothing to wait for
    client = h.connect("ws")
    h.subscribe_trading(client, "t", ACCOUNT)
    take(client)
    streams.deliver([updated(1, "", 1)])
    streams.deliver([view(3, T0_US + 3), view(2, T0_US + 2)])  # ahead of events 2 and 3
    assert streams.view(ACCOUNT) == view(1)
    streams.deliver([updated(2, "", 2)])
    streams.deliver([updated(3, "", 3)])
    got = take(client)
    assert [kind for kind, _ in got] == ["order", "order", "order", "account"]
    assert got[3][1]["account"]["seq"] == 3 and streams.view(ACCOUNT) == view(3, T0_US + 3)


def msg(value: object) -> Any:
    return msgspec.json.decode(encode(value))


class Fetched(Record):
    """A fetched record that answers `error()` as a confluent-kafka Message does."""

    def error(self) -> None:
        return None


def test_the_feed_decodes_events_and_views_and_counts_what_it_cannot() -> None:
    names = topics.TradingTopics()
    feed = TradingFeed("unused:9092", names, lambda batch: None)
    place = PlaceOrder("c", ACCOUNT, 0, order(1).request)
    batch = feed._decode(
        [
            Fetched(names.events, 0, 0, b"acc-1", encode(updated(1, "c", 1))),
            Fetched(names.accounts, 0, 0, b"acc-1", encode(view(1))),
            Fetched(names.events, 0, 1, b"acc-1", encode(place)),  # a command: not an event
            Fetched(names.events, 0, 2, None, b"", [(topics.CONTROL_HEADER, b"end")]),
        ]
    )
    assert batch == [updated(1, "c", 1), view(1)]
    assert feed.decode_errors == 1
