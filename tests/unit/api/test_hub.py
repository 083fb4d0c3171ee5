"""The live hub: bounded queues that lose the oldest, shared filter evaluation, fan-out."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from api.errors import InvalidRequest, NotFound, TooManyClients, Unavailable
from api.live.board import Board
from api.live.clients import Client, ClientClosed, Message, Subscription, control
from api.live.feed import FeedBatch
from api.live.hub import Hub, SignalMatch
from api.services.filter_eval import CompiledFilter, SymbolLookup, compile_filter
from api.services.filter_query import parse_query
from api.settings import ApiSettings
from schemas.candles import Candle
from schemas.ranks import RankRow
from schemas.signals import Signal
from tests.fakes.clock import Clock

T0 = 1_723_161_300_000


def row(symbol: str, t: int = T0, change: float = 0.0, market: str = "spot") -> RankRow:
    return RankRow("binance", market, symbol, t, 1.0, change_pct_5m=change)  # type: ignore[arg-type]


def flt(query: str = "sort=-change_pct_5m") -> CompiledFilter:
    pairs = [tuple(part.split("=", 1)) for part in query.split("&") if part]
    return compile_filter(parse_query(pairs))  # type: ignore[arg-type]


class Counting:
    """A compiled filter that counts its evaluations."""

    def __init__(self, compiled: CompiledFilter) -> None:
        self.compiled = compiled
        self.key = compiled.key
        self.calls = 0

    def select(self, rows: Iterable[RankRow], symbols: SymbolLookup) -> list[RankRow]:
        self.calls += 1
        return self.compiled.select(rows, symbols)


def hub(queue: int = 8, max_clients: int = 100, clock: Clock | None = None, **kw: Any) -> Hub:
    settings = ApiSettings(client_queue=queue, max_clients=max_clients)
    return Hub(settings, Board(), clock=clock or Clock(), **kw)


def take(client: Client) -> list[tuple[str, dict[str, Any]]]:
    """What a reader of the client gets now: (type, body) per message."""
    batch = asyncio.run(asyncio.wait_for(client.next(), 5))
    return [(m.type, msgspec.json.decode(m.body)) for _, m in batch]


def change(h: Hub, *rows: RankRow) -> None:
    h.deliver(FeedBatch(ranks=list(rows)))
    h.views.publish()


# --- queues -----------------------------------------------------------------------------


def test_a_full_queue_loses_its_oldest_and_the_client_is_told_how_many() -> None:
    h = hub(queue=3)
    client = h.connect("sse")
    for i in range(5):
        client.put(None, control("signal", n=i))
    got = take(client)
    assert got == [
        ("dropped", {"count": 2}),
        ("signal", {"n": 2}),
        ("signal", {"n": 3}),
        ("signal", {"n": 4}),
    ]
    assert h.stats.drops == 2
    client.put(None, control("signal", n=5))
    assert take(client) == [("signal", {"n": 5})]  # told once, not again


def test_a_slow_client_never_slows_or_disturbs_a_fast_one() -> None:
    h = hub(queue=4)
    h.board.apply([row("A", change=1.0), row("B", change=2.0)])
    fast, slow = h.connect("sse"), h.connect("sse")
    h.subscribe_ranks(fast, "r", flt())
    h.subscribe_ranks(slow, "r", flt())
    assert [t for t, _ in take(fast)] == ["snapshot"]
    seqs = []
    for i in range(1, 21):
        change(h, row("A", T0 + i * 1000, change=float(i)))
        got = take(fast)  # the fast client reads after every update; the slow one never
        assert [t for t, _ in got] == ["diff"]
        seqs.append(got[0][1]["seq"])
    assert seqs == list(range(1, 21))  # every diff, in order, nothing lost
    assert len(slow.queue) <= 4  # the slow one's backlog stays bounded
    got = take(slow)
    assert got[0][0] == "dropped" and got[0][1]["count"] > 0
    # what it holds can be applied: a snapshot first, then the diffs that follow it
    types, seqs = [t for t, _ in got[1:]], [b["seq"] for _, b in got[1:]]
    assert types == ["snapshot"] + ["diff"] * (len(types) - 1)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) and seqs[-1] == 20


def test_a_client_that_lost_a_diff_gets_a_fresh_snapshot_instead_of_the_next_diff() -> None:
    h = hub(queue=2)
    h.board.apply([row("A", change=1.0)])
    client = h.connect("ws")
    h.subscribe_ranks(client, "r", flt())
    for i in range(1, 4):  # a snapshot and 3 diffs for a queue of 2
        change(h, row("A", T0 + i * 1000, change=float(i)))
    got = take(client)
    # diff 2 pushed the snapshot out: diff 1 and 2 are useless without it; the third
    # evaluation sends the new state whole
    assert got[0] == ("dropped", {"count": 3})
    assert [t for t, _ in got[1:]] == ["snapshot"]
    snapshot = got[1][1]
    assert snapshot["seq"] == 3 and snapshot["rows"][0]["change_pct_5m"] == 3.0
    change(h, row("A", T0 + 9000, change=9.0))
    assert [(t, b["seq"]) for t, b in take(client)] == [("diff", 4)]


def test_a_client_behind_for_too_long_is_closed_with_the_reason() -> None:
    clock = Clock()
    h = hub(queue=2, clock=clock, evict_after_s=30)
    client = h.connect("sse")
    for i in range(3):
        client.put(None, control("signal", n=i))  # a loss starts the clock
    clock.now = 29.0
    client.put(None, control("signal", n=3))
    assert client.closed is None
    take(client)  # it caught up: the clock restarts
    clock.now = 40.0
    for i in range(3):
        client.put(None, control("signal", n=i))
    clock.now = 69.5
    client.put(None, control("signal", n=4))
    assert client.closed is None
    clock.now = 70.0
    client.put(None, control("signal", n=5))
    with pytest.raises(ClientClosed) as closed:
        take(client)
    assert closed.value.code == "too_slow" and "too slow" in closed.value.message
    assert h.stats.evictions == 1


def test_going_away_closes_every_client_waits_for_them_and_refuses_new_ones() -> None:
    h = hub()
    clients = [h.connect("sse"), h.connect("ws")]

    async def scenario() -> list[str]:
        going = asyncio.create_task(h.going_away(5))
        codes = []
        for client in clients:
            with pytest.raises(ClientClosed) as closed:
                await client.next()
            codes.append(closed.value.code)
            assert not going.done()  # it waits until every client has gone
            h.disconnect(client)
        await asyncio.wait_for(going, 1)
        return codes

    assert asyncio.run(scenario()) == ["shutdown", "shutdown"]
    with pytest.raises(Unavailable):
        h.connect("sse")


def test_going_away_waits_no_longer_than_it_may_for_a_client_that_never_leaves() -> None:
    h = hub()
    stuck = h.connect("ws")
    asyncio.run(asyncio.wait_for(h.going_away(0.05), 5))
    assert stuck.closed is not None and stuck.closed.code == "shutdown"


def test_connections_beyond_max_clients_are_refused_until_one_leaves() -> None:
    h = hub(max_clients=2)
    first = h.connect("sse")
    h.connect("ws")
    with pytest.raises(TooManyClients):
        h.connect("sse")
    h.disconnect(first)
    h.disconnect(first)  # twice is harmless
    assert h.connect("sse").kind == "sse"


# --- ranks views ------------------------------------------------------------------------


def test_each_distinct_filter_is_evaluated_once_per_update_whatever_the_clients() -> None:
    h = hub()
    h.board.apply([row(s, change=float(i)) for i, s in enumerate("ABCD")])
    top, spot = Counting(flt("sort=-change_pct_5m&limit=2")), Counting(flt("market=spot"))
    clients = [h.connect("sse") for _ in range(10)]
    for i, client in enumerate(clients):
        h.subscribe_ranks(client, "r", top if i % 2 else spot)
    # a filter equal to one in use (another object, the same key) joins its view
    h.subscribe_ranks(h.connect("ws"), "r", flt("sort=-change_pct_5m&limit=2"))
    assert (top.calls, spot.calls) == (1, 1)  # each evaluated once, for the first client
    for client in clients:
        take(client)
    change(h, row("D", T0 + 1000, change=10.0))
    assert (top.calls, spot.calls) == (2, 2)
    assert all([t for t, _ in take(c)] == ["diff"] for c in clients)
    h.views.publish()  # nothing changed since: nothing evaluated, nothing sent
    assert (top.calls, spot.calls) == (2, 2)
    assert all(not c.queue for c in clients)


def test_changing_a_filter_sends_the_new_views_snapshot_and_no_stale_diffs() -> None:
    h = hub()
    h.board.apply([row("A", change=1.0), row("B", change=2.0, market="usdm")])
    client = h.connect("ws")
    h.subscribe_ranks(client, "r", flt("market=spot"))
    change(h, row("A", T0 + 1000, change=5.0))  # a diff still queued
    h.change_filter(client, "r", flt("market=usdm"))
    got = take(client)
    assert [t for t, _ in got] == ["snapshot"]
    assert got[0][1]["order"] == ["binance:usdm:B"]
    h.subscribe_signals(client, "s", SignalMatch())
    with pytest.raises(InvalidRequest):
        h.change_filter(client, "s", flt())  # not a ranks subscription
    with pytest.raises(NotFound):
        h.change_filter(client, "nope", flt())


def test_unsubscribing_ends_the_updates_and_frees_the_view() -> None:
    h = hub()
    h.board.apply([row("A", change=1.0)])
    counting = Counting(flt())
    client = h.connect("ws")
    h.subscribe_ranks(client, "r", counting)
    h.unsubscribe(client, "r")
    assert not client.queue  # its queued snapshot went with it
    change(h, row("A", T0 + 1000, change=2.0))
    assert counting.calls == 1 and not client.queue
    with pytest.raises(NotFound):
        h.unsubscribe(client, "r")
    h.subscribe_ranks(client, "r", flt())  # the id is free again
    with pytest.raises(InvalidRequest):
        h.subscribe_ranks(client, "r", flt())


def test_the_board_loop_coalesces_changes_into_one_diff() -> None:
    async def scenario() -> list[tuple[str, dict[str, Any]]]:
        h = hub(coalesce_s=0.01)
        h.board.apply([row("A", change=1.0), row("B", change=2.0)])
        client = h.connect("sse")
        h.subscribe_ranks(client, "r", flt())
        await client.next()
        runner = asyncio.create_task(h.views.run())
        h.deliver(FeedBatch(ranks=[row("A", T0 + 1000, change=3.0)]))
        h.deliver(FeedBatch(ranks=[row("B", T0 + 1000, change=4.0)]))
        batch = await asyncio.wait_for(client.next(), 5)
        runner.cancel()
        return [(m.type, msgspec.json.decode(m.body)) for _, m in batch]

    got = asyncio.run(scenario())
    assert [(t, b["seq"]) for t, b in got] == [("diff", 1)]
    assert {u["key"] for u in got[0][1]["upsert"]} == {"binance:spot:A", "binance:spot:B"}


def test_the_board_loop_waits_for_the_rest_of_a_second_that_came_split() -> None:
    async def scenario() -> list[tuple[str, dict[str, Any]]]:
        h = hub(coalesce_s=0.01, complete_wait_s=30)
        h.board.apply([row("A", change=1.0), row("B", change=2.0)])
        client = h.connect("sse")
        h.subscribe_ranks(client, "r", flt())
        await client.next()
        runner = asyncio.create_task(h.views.run())
        h.deliver(FeedBatch(ranks=[row("A", T0 + 1000, change=3.0)]))  # half the second
        await asyncio.sleep(0.1)  # well past coalesce_s: the loop is waiting for the rest
        h.deliver(FeedBatch(ranks=[row("B", T0 + 1000, change=4.0)]))
        batch = await asyncio.wait_for(client.next(), 5)
        runner.cancel()
        return [(m.type, msgspec.json.decode(m.body)) for _, m in batch]

    got = asyncio.run(scenario())
    assert [(t, b["seq"]) for t, b in got] == [("diff", 1)]  # one diff, not A then B
    assert {u["key"] for u in got[0][1]["upsert"]} == {"binance:spot:A", "binance:spot:B"}


def test_a_second_that_came_whole_is_evaluated_without_waiting() -> None:
    async def scenario() -> list[tuple[str, dict[str, Any]]]:
        h = hub(coalesce_s=30)  # a wait the test would notice
        h.board.apply([row("A", change=1.0), row("B", change=2.0)])
        client = h.connect("sse")
        h.subscribe_ranks(client, "r", flt())
        await client.next()
        runner = asyncio.create_task(h.views.run())
        h.deliver(FeedBatch(ranks=[row("A", T0 + 1000, change=3.0), row("B", T0 + 1000, 4.0)]))
        batch = await asyncio.wait_for(client.next(), 5)
        runner.cancel()
        return [(m.type, msgspec.json.decode(m.body)) for _, m in batch]

    got = asyncio.run(scenario())
    assert [(t, b["seq"]) for t, b in got] == [("diff", 1)]


def test_the_board_loop_collects_garbage_after_an_evaluation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    collected: list[float] = []
    evaluated: list[float] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        monkeypatch.setattr("api.live.views.collect_ahead", lambda: collected.append(loop.time()))
        h = hub()
        h.board.apply([row("A", change=1.0)])
        client = h.connect("sse")
        h.subscribe_ranks(client, "r", flt())
        await client.next()
        runner = asyncio.create_task(h.views.run())
        h.deliver(FeedBatch(ranks=[row("A", T0 + 1000, change=3.0)]))
        await asyncio.wait_for(client.next(), 5)
        evaluated.append(loop.time())
        for _ in range(100):
            if collected:
                break
            await asyncio.sleep(0.05)
        runner.cancel()

    asyncio.run(scenario())
    assert len(collected) == 1
    assert collected[0] >= evaluated[0]  # after the fan-out, not before or during it


# --- signals and candles ----------------------------------------------------------------


def signal(symbol: str, name: str = "volume_spike", timeframe: str = "1m") -> Signal:
    return Signal("binance", "spot", symbol, name, timeframe, T0, "up", 1.0, 3.5)  # type: ignore[arg-type]


def test_signals_reach_the_subscriptions_that_match_them() -> None:
    h = hub()
    h.board.apply([row("BTCUSDT"), row("ETHUSDT")])
    every, btc, key, breakout = (h.connect("sse") for _ in range(4))
    h.subscribe_signals(every, "s", SignalMatch.of())
    h.subscribe_signals(btc, "s", SignalMatch.of("BTCUSDT"))
    h.subscribe_signals(key, "s", SignalMatch.of("binance:spot:ETHUSDT", timeframe="1m"))
    h.subscribe_signals(breakout, "s", SignalMatch.of(name="breakout"))
    h.deliver(FeedBatch(signals=[signal("BTCUSDT"), signal("ETHUSDT", "breakout", "5m")]))
    assert [b["symbol"] for _, b in take(every)] == ["BTCUSDT", "ETHUSDT"]
    assert [b["symbol"] for _, b in take(btc)] == ["BTCUSDT"]
    assert not key.queue  # ETHUSDT's signal was on 5m
    assert [(t, b["name"]) for t, b in take(breakout)] == [("signal", "breakout")]


def test_signal_subscriptions_check_symbol_and_timeframe() -> None:
    h = hub()
    client = h.connect("ws")
    with pytest.raises(NotFound):
        h.subscribe_signals(client, "s", SignalMatch.of("NOPEUSDT"))
    with pytest.raises(InvalidRequest):
        SignalMatch.of(timeframe="7m")


def candle(t: int, price: str, interval: str = "1s", count: int = 1) -> Candle:
    length = 1_000 if interval == "1s" else 60_000
    p, v = Decimal(price), Decimal(1 if count else 0)
    return Candle(
        "binance",
        "spot",
        "BTCUSDT",
        interval,
        t,
        t + length - 1,
        p,
        p,
        p,
        p,
        v,  # type: ignore[arg-type]
        v * p,
        count,
        v,
        v * p,
        t if count else None,
        t if count else None,
        1,
    )


def test_a_candle_stream_sends_the_forming_bar_then_its_close() -> None:
    h = hub()
    h.board.apply([row("BTCUSDT")])
    client = h.connect("sse")
    asyncio.run(h.subscribe_candles(client, "c", "binance", "spot", "BTCUSDT", "1m"))
    assert not client.queue  # nothing formed yet (no ClickHouse to seed from here)
    h.deliver(FeedBatch(candles=[candle(T0, "100"), candle(T0 + 1000, "101")]))
    h.deliver(FeedBatch(candles=[candle(T0 + 59_000, "99")]))
    got = take(client)
    assert [(t, b["close"], b["closed"]) for t, b in got] == [
        ("candle", "100", False),
        ("candle", "101", False),
        ("close", "99", True),
    ]
    assert got[-1][1]["volume"] == "3" and got[-1][1]["open"] == "100"
    # a second subscriber of the same stream gets the current bar at once
    other = h.connect("ws")
    asyncio.run(h.subscribe_candles(other, "c", "binance", "spot", "BTCUSDT", "1m"))
    assert [(t, b["closed"]) for t, b in take(other)] == [("close", True)]


def test_candle_subscriptions_check_the_interval_and_the_symbol() -> None:
    h = hub()
    client = h.connect("ws")
    with pytest.raises(InvalidRequest):
        asyncio.run(h.subscribe_candles(client, "c", "binance", "spot", "BTCUSDT", "2m"))
    with pytest.raises(NotFound):
        asyncio.run(h.subscribe_candles(client, "c", "binance", "spot", "NOPE", "1m"))
    assert client.subscriptions == {}  # a refused subscription leaves nothing behind
    h.deliver(FeedBatch(candles=[candle(T0, "100")]))  # seen live: now it is known
    asyncio.run(h.subscribe_candles(client, "c", "binance", "spot", "BTCUSDT", "1s"))
    h.deliver(FeedBatch(candles=[candle(T0 + 1000, "101")]))
    assert [(t, b["open_time"]) for t, b in take(client)] == [("close", T0 + 1000)]


def test_closing_every_client_ends_their_readers() -> None:
    h = hub()
    clients = [h.connect("sse"), h.connect("ws")]
    asyncio.run(h.aclose())
    for client in clients:
        with pytest.raises(ClientClosed) as closed:
            take(client)
        assert closed.value.code == "shutdown"


# --- wire frames ------------------------------------------------------------------------


def test_messages_frame_once_for_sse_and_per_subscription_for_websockets() -> None:
    message = Message("diff", b'{"seq":7,"remove":[]}', 7)
    assert message.sse() == b'id: 7\r\nevent: diff\r\ndata: {"seq":7,"remove":[]}\r\n\r\n'
    assert message.sse() is message.sse()
    assert msgspec.json.decode(message.ws('my "id"')) == {
        "type": "diff",
        "id": 'my "id"',
        "seq": 7,
        "remove": [],
    }
    assert msgspec.json.decode(control("pong").ws(None)) == {"type": "pong"}
    assert Subscription("x", Client("ws", hub().policy), "ranks").needs_snapshot is False
