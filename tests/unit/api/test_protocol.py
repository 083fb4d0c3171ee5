"""The WebSocket protocol: operations in, replies and data out, errors as messages."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec

from api.accounts.db import AccountsDb
from api.accounts.deps import Accounts
from api.accounts.tokens import TokenService
from api.live.board import Board
from api.live.feed import FeedBatch
from api.live.hub import Hub
from api.live.protocol import MAX_SUBSCRIPTIONS, Session
from api.settings import AccountsSettings, ApiSettings, BillingSettings
from schemas.ranks import RankRow
from schemas.signals import Signal
from tests.fakes.clock import Clock
from tickscan.settings import Settings

T0 = 1_723_161_300_000


def session(queue: int = 64, clock: Clock | None = None) -> Session:
    hub = Hub(ApiSettings(client_queue=queue), Board(), clock=clock or Clock())
    hub.board.apply(
        [
            RankRow("binance", "spot", "BTCUSDT", T0, 60_000.0, change_pct_5m=1.0),
            RankRow("binance", "usdm", "ETHUSDT", T0, 3_000.0, change_pct_5m=2.0),
        ]
    )
    return Session(hub, hub.connect("ws"))


def send(s: Session, *messages: Any) -> list[dict[str, Any]]:
    """Send messages (objects are encoded, text goes as is); the frames the client gets."""

    async def exchange() -> list[dict[str, Any]]:
        for message in messages:
            await s.handle(message if isinstance(message, str) else msgspec.json.encode(message))
        try:  # whatever is queued is ready at once; nothing queued: nothing to take
            batch = await asyncio.wait_for(s.client.next(), 0.01)
        except TimeoutError:
            return []
        return [msgspec.json.decode(m.ws(None if sub is None else sub.id)) for sub, m in batch]

    return asyncio.run(exchange())


def test_ping_gets_pong() -> None:
    assert send(session(), {"op": "ping"}) == [{"type": "pong"}]


def test_subscribing_to_ranks_confirms_then_sends_the_snapshot() -> None:
    frames = send(
        session(),
        {"op": "subscribe", "channel": "ranks", "id": "top", "filter": {"markets": ["usdm"]}},
    )
    assert frames[0] == {"type": "subscribed", "id": "top", "channel": "ranks"}
    assert frames[1]["type"] == "snapshot" and frames[1]["id"] == "top"
    assert frames[1]["order"] == ["binance:usdm:ETHUSDT"]


def test_a_subscription_without_an_id_gets_one() -> None:
    s = session()
    frames = send(
        s, {"op": "subscribe", "channel": "ranks"}, {"op": "subscribe", "channel": "signals"}
    )
    ids = [f["id"] for f in frames if f["type"] == "subscribed"]
    assert ids == ["s1", "s2"] and set(s.client.subscriptions) == {"s1", "s2"}


def test_changing_the_filter_sends_a_new_snapshot_and_unsubscribe_confirms() -> None:
    s = session()
    send(s, {"op": "subscribe", "channel": "ranks", "id": "b"})
    frames = send(s, {"op": "filter", "id": "b", "filter": {"watch": ["BTCUSDT"]}})
    assert [(f["type"], f["order"]) for f in frames] == [("snapshot", ["binance:spot:BTCUSDT"])]
    assert send(s, {"op": "unsubscribe", "id": "b"}) == [{"type": "unsubscribed", "id": "b"}]
    assert s.client.subscriptions == {}


def test_signals_subscriptions_receive_matching_signals() -> None:
    s = session()
    send(s, {"op": "subscribe", "channel": "signals", "id": "sig", "symbol": "BTCUSDT"})
    spike = Signal("binance", "spot", "BTCUSDT", "volume_spike", "1m", T0, "up", 1.0, 4.0)
    s.hub.deliver(FeedBatch(signals=[spike]))
    frames = send(s)
    assert [(f["type"], f["id"], f["name"]) for f in frames] == [("signal", "sig", "volume_spike")]


def error_of(*messages: Any) -> dict[str, Any]:
    s = session()
    frames = send(s, *messages)
    assert frames[-1]["type"] == "error", frames
    assert s.client.closed is None  # an error never closes the connection
    return frames[-1]


def test_bad_messages_are_answered_with_errors() -> None:
    assert error_of("{not json")["code"] == "bad_json"
    assert error_of("[1, 2]")["code"] == "bad_json"
    assert error_of({"op": "dance"})["code"] == "unknown_op"
    assert error_of({"nothing": 1})["code"] == "unknown_op"
    assert error_of("x" * 70_000)["code"] == "too_large"
    unknown_channel = error_of({"op": "subscribe", "channel": "weather"})
    assert unknown_channel["code"] == "invalid_request" and "weather" in unknown_channel["message"]
    extra = error_of({"op": "ping", "extra": True})
    assert extra["code"] == "invalid_request" and "extra" in extra["message"]


def test_an_invalid_filter_or_unknown_symbol_is_an_error_about_that_subscription() -> None:
    bad = error_of(
        {
            "op": "subscribe",
            "channel": "ranks",
            "id": "x",
            "filter": {"sort": "price; DROP TABLE users"},
        }
    )
    assert bad["code"] == "invalid_request" and bad["id"] == "x" and "sort" in bad["message"]
    unknown = error_of(
        {
            "op": "subscribe",
            "channel": "candles",
            "id": "c",
            "exchange": "binance",
            "market": "spot",
            "symbol": "NOPE",
            "interval": "1m",
        }
    )
    assert (unknown["code"], unknown["id"]) == ("unknown_symbol", "c")
    partial = error_of({"op": "subscribe", "channel": "candles", "symbol": "BTCUSDT"})
    assert partial["code"] == "invalid_request" and "interval" in partial["message"]
    assert error_of({"op": "unsubscribe", "id": "nope"})["code"] == "unknown_subscription"
    assert error_of({"op": "filter", "id": "nope", "filter": {}})["code"] == "unknown_subscription"


def test_a_duplicate_id_or_one_subscription_too_many_is_refused() -> None:
    s = session()
    send(s, {"op": "subscribe", "channel": "signals", "id": "a"})
    frames = send(s, {"op": "subscribe", "channel": "signals", "id": "a"})
    assert frames[-1]["code"] == "duplicate_id"
    for i in range(MAX_SUBSCRIPTIONS - 1):
        send(s, {"op": "subscribe", "channel": "signals", "id": f"n{i}"})
    frames = send(s, {"op": "subscribe", "channel": "signals", "id": "last"})
    assert frames[-1]["code"] == "too_many_subscriptions"
    assert len(s.client.subscriptions) == MAX_SUBSCRIPTIONS


def test_a_free_connection_is_refused_signals_and_1s_candles_and_gets_the_delayed_board(
    tmp_path: Path,
) -> None:
    async def scenario() -> list[dict[str, Any]]:
        settings = Settings(
            data_dir=tmp_path,
            accounts=AccountsSettings(
                free_delay_s=60, billing=BillingSettings(stripe_api_key="sk_test_x")
            ),
        )
        db = AccountsDb(settings.accounts_url())
        await db.migrate()
        try:
            accounts = Accounts(settings, db, TokenService(b"k" * 48, 900, 3600))
            hub = Hub(ApiSettings(), Board(), free_delay_s=60)
            hub.deliver(FeedBatch(ranks=[RankRow("binance", "spot", "BTCUSDT", T0, 1.0)]))
            s = Session(hub, hub.connect("ws"), accounts)  # anonymous: the free tier
            for message in (
                {"op": "subscribe", "channel": "signals", "id": "sig"},
                {
                    "op": "subscribe",
                    "channel": "candles",
                    "id": "c1",
                    "exchange": "binance",
                    "market": "spot",
                    "symbol": "BTCUSDT",
                    "interval": "1s",
                },
                {"op": "subscribe", "channel": "ranks", "id": "top"},
            ):
                await s.handle(msgspec.json.encode(message))
            batch = await s.client.next()
            return [msgspec.json.decode(m.ws(None if sub is None else sub.id)) for sub, m in batch]
        finally:
            await db.aclose()

    frames = asyncio.run(scenario())
    errors = {f["id"]: f["code"] for f in frames if f["type"] == "error"}
    assert errors == {"sig": "not_entitled", "c1": "not_entitled"}
    snapshot = next(f for f in frames if f["type"] == "snapshot")
    assert snapshot["id"] == "top" and snapshot["order"] == []  # the live row is not there yet


# --- bursts: replies are never lost, the client's rate is bounded ----------------------


def test_a_burst_of_32_subscribes_gets_32_subscribed_whatever_the_queue() -> None:
    s = session(queue=4)  # far fewer than the replies and snapshots of the burst
    frames = send(s, *({"op": "subscribe", "channel": "ranks", "id": f"r{i}"} for i in range(32)))
    assert [f["id"] for f in frames if f["type"] == "subscribed"] == [f"r{i}" for i in range(32)]
    assert len(s.client.subscriptions) == 32


def test_every_ping_of_a_flood_gets_a_pong_or_is_counted_in_a_rate_limited_error() -> None:
    s = session()
    frames = send(s, *({"op": "ping"} for _ in range(10_000)))
    pongs = sum(f == {"type": "pong"} for f in frames)
    limited = [f for f in frames if f["type"] == "error"]
    assert all(f["code"] == "rate_limited" and "a second" in f["message"] for f in limited)
    assert 0 < pongs < 10_000 and limited  # a limit holds, and the client is told
    assert pongs + sum(f["count"] for f in limited) == 10_000  # none silently lost
    assert s.client.closed is None  # one burst is answered, not punished


def test_the_messages_refused_and_served_keep_their_order() -> None:
    clock = Clock()
    s = session(clock=clock)
    send(s, *({"op": "ping"} for _ in range(1_000)))  # the bucket is empty
    clock.now = 1.0  # a second refills it partly
    frames = send(s, {"op": "ping"}, *({"op": "dance"} for _ in range(2_000)), {"op": "ping"})
    kinds = [f.get("code", f["type"]) for f in frames]
    assert kinds[0] == "pong" and kinds[-1] == "rate_limited"
    assert "unknown_op" in kinds  # the refill served some of the bad ones, answered as usual
    first_refusal = kinds.index("rate_limited")
    assert set(kinds[:first_refusal]) <= {"pong", "unknown_op"}
    assert frames[first_refusal]["count"] == 2_002 - first_refusal


def test_a_client_that_keeps_exceeding_its_rate_is_closed_with_the_reason() -> None:
    clock = Clock()
    s = session(clock=clock)

    async def flood() -> None:
        for tick in range(200):  # 1,000 messages a second, far over the limit, for 20 s
            clock.now = tick / 10
            for _ in range(100):
                await s.handle(b'{"op": "ping"}')
            if s.client.closed is not None:
                return

    asyncio.run(flood())
    assert s.client.closed is not None
    assert s.client.closed.code == "rate_limited"
    assert 5.0 <= clock.now <= 15.0, clock.now  # it persisted for seconds, not one burst


def test_a_busy_but_normal_client_is_never_limited() -> None:
    clock = Clock()
    s = session(clock=clock)
    opening = [{"op": "subscribe", "channel": "ranks", "id": f"r{i}"} for i in range(32)]
    frames = send(s, *opening, {"op": "ping"})
    for tick in range(600):  # a minute of typing into a filter: 10 changes a second
        clock.now = 0.1 * (tick + 1)
        frames += send(s, {"op": "filter", "id": f"r{tick % 32}", "filter": {"limit": tick + 1}})
        if tick % 200 == 0:
            frames += send(s, {"op": "ping"})
    assert not [f for f in frames if f["type"] == "error"]
    assert s.client.closed is None
