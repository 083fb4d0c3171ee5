"""The free tier's delayed board: ranks applied only once their delay has passed, its own
views, and the hub handing it (never the live board) to ranks subscriptions that ask."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from api.errors import Unavailable
from api.live.board import Board
from api.live.clients import Client, LiveStats, Subscription
from api.live.delayed import DelayedBoard
from api.live.feed import FeedBatch
from api.live.hub import Hub
from api.live.views import Views
from api.services.filter_eval import CompiledFilter, compile_filter
from api.services.filter_query import parse_query
from api.settings import ApiSettings
from schemas.ranks import RankRow
from tests.fakes.clock import Clock

T0 = 1_723_161_300_000


def row(symbol: str, t: int = T0, change: float = 0.0) -> RankRow:
    return RankRow("binance", "spot", symbol, t, 1.0, change_pct_5m=change)


def flt(query: str = "sort=-change_pct_5m") -> CompiledFilter:
    pairs = [tuple(part.split("=", 1)) for part in query.split("&") if part]
    return compile_filter(parse_query(pairs))  # type: ignore[arg-type]


def views(board: Board) -> Views:
    return Views(board, dict, LiveStats(), 1.0)


def delayed(clock: Clock, delay_s: float = 5.0, **kw: Any) -> DelayedBoard:
    return DelayedBoard(delay_s, views, clock=clock, **kw)


def take(client: Client) -> list[tuple[str, dict[str, Any]]]:
    batch = asyncio.run(asyncio.wait_for(client.next(), 5))
    return [(m.type, msgspec.json.decode(m.body)) for _, m in batch]


def test_a_batch_reaches_the_board_only_once_its_delay_has_passed() -> None:
    clock = Clock(100.0)
    line = delayed(clock)
    line.push([row("A", change=1.0), row("B", change=2.0)])
    assert line.release() == 0
    assert line.board.rows == {} and line.board.as_of_ms is None
    assert line.held == 2
    clock.now += 4.9
    assert line.release() == 0
    clock.now += 0.1
    assert line.release() == 2
    assert set(line.board.rows) == {"binance:spot:A", "binance:spot:B"}
    assert line.board.as_of_ms == T0
    assert line.held == 0 and line.next_due() is None


def test_batches_are_applied_in_arrival_order_each_at_its_own_time() -> None:
    clock = Clock(100.0)
    line = delayed(clock)
    line.push([row("A", T0, change=1.0)])
    clock.now += 2.0
    line.push([row("A", T0 + 1000, change=2.0)])
    assert line.next_due() == 105.0
    clock.now += 3.0  # the first is due, the second not yet
    line.release()
    assert line.board.rows["binance:spot:A"].change_pct_5m == 1.0
    assert line.board.as_of_ms == T0
    clock.now += 2.0
    line.release()
    assert line.board.rows["binance:spot:A"].change_pct_5m == 2.0
    assert line.board.as_of_ms == T0 + 1000


def test_the_seed_applies_old_rows_now_and_holds_recent_ones() -> None:
    clock = Clock(100.0)
    line = delayed(clock, delay_s=60)
    now_ms = T0 + 120_000
    line.seed([row("OLD", T0), row("NEW", now_ms - 1000)], now_ms)
    assert set(line.board.rows) == {"binance:spot:OLD"}
    clock.now += 60
    line.release()
    assert set(line.board.rows) == {"binance:spot:OLD", "binance:spot:NEW"}


def test_a_full_delay_line_applies_its_oldest_batches_early() -> None:
    clock = Clock(100.0)
    line = delayed(clock, max_rows=3)
    line.push([row("A"), row("B")])
    line.push([row("C")])
    assert line.board.rows == {}
    line.push([row("D"), row("E")])  # 5 held > 3: the oldest batch goes now
    assert set(line.board.rows) == {"binance:spot:A", "binance:spot:B"}
    assert line.held == 3


def test_a_delayed_board_needs_a_delay() -> None:
    with pytest.raises(ValueError, match="delay"):
        delayed(Clock(100.0), delay_s=0)


def test_its_views_follow_the_delayed_board_not_the_pushes() -> None:
    clock = Clock(100.0)
    line = delayed(clock)
    line.board.apply([row("A", change=1.0)])
    client = Hub(ApiSettings(), Board(), clock=clock).connect("sse")
    line.views.join(Subscription("r", client, "ranks"), flt())
    assert [t for t, _ in take(client)] == ["snapshot"]
    line.push([row("A", T0 + 1000, change=7.0)])
    line.views.publish()
    assert not client.queue  # nothing before the delay
    clock.now += 5.0
    line.release()
    line.views.publish()
    ((kind, diff),) = take(client)
    assert kind == "diff" and diff["upsert"][0]["change_pct_5m"] == 7.0
    assert diff["as_of_ms"] == T0 + 1000


def hub_with_delay(clock: Clock) -> Hub:
    return Hub(ApiSettings(), Board(), clock=clock, free_delay_s=5.0)


def test_the_hub_gives_delayed_subscribers_the_old_board_and_live_ones_the_new() -> None:
    clock = Clock(100.0)
    h = hub_with_delay(clock)
    assert h.delayed is not None
    live, late = h.connect("sse"), h.connect("ws")
    h.subscribe_ranks(live, "r", flt())
    h.subscribe_ranks(late, "r", flt(), live=False)
    take(live), take(late)  # the empty snapshots
    h.deliver(FeedBatch(ranks=[row("A", change=3.0)]))
    h.views.publish()
    h.delayed.views.publish()
    ((kind, diff),) = take(live)
    assert kind == "diff" and diff["upsert"][0]["key"] == "binance:spot:A"
    assert not late.queue  # the free tier sees nothing of it yet
    clock.now += 5.0
    h.delayed.release()
    h.delayed.views.publish()
    ((kind, diff),) = take(late)
    assert kind == "diff" and diff["upsert"][0]["change_pct_5m"] == 3.0


def test_a_delayed_subscription_changes_filter_and_leaves_on_the_delayed_board() -> None:
    clock = Clock(100.0)
    h = hub_with_delay(clock)
    assert h.delayed is not None
    h.delayed.board.apply([row("A", change=1.0), row("B", change=2.0)])
    h.board.apply([row("C", change=9.0)])
    client = h.connect("ws")
    h.subscribe_ranks(client, "r", flt(), live=False)
    ((_, snapshot),) = take(client)
    assert snapshot["order"] == ["binance:spot:B", "binance:spot:A"]
    h.change_filter(client, "r", flt("watch=A"))
    ((kind, snapshot),) = take(client)
    assert (kind, snapshot["order"]) == ("snapshot", ["binance:spot:A"])
    h.unsubscribe(client, "r")
    h.delayed.board.apply([row("A", T0 + 1000, change=5.0)])
    h.delayed.views.publish()
    assert not client.queue and not client.subscriptions


def test_a_delayed_subscriber_that_lost_diffs_gets_a_snapshot_of_the_delayed_board() -> None:
    clock = Clock(100.0)
    h = Hub(ApiSettings(client_queue=2), Board(), clock=clock, free_delay_s=5.0)
    assert h.delayed is not None
    h.board.apply([row("LIVE", change=50.0)])
    client = h.connect("ws")
    h.subscribe_ranks(client, "r", flt(), live=False)
    for i in range(1, 4):  # a snapshot and 3 diffs for a queue of 2
        h.delayed.board.apply([row("A", T0 + i * 1000, change=float(i))])
        h.delayed.views.publish()
    got = take(client)
    assert got[0][0] == "dropped"
    assert [t for t, _ in got[1:]] == ["snapshot"]
    assert got[1][1]["order"] == ["binance:spot:A"]  # the delayed board, not the live one


def test_a_hub_without_a_delayed_board_never_hands_out_the_live_one_instead() -> None:
    h = Hub(ApiSettings(), Board(), clock=Clock(100.0))
    assert h.delayed is None
    client = h.connect("sse")
    with pytest.raises(Unavailable):
        h.subscribe_ranks(client, "r", flt(), live=False)
    assert not client.subscriptions


def test_run_releases_due_batches_on_its_own() -> None:
    async def scenario() -> dict[str, RankRow]:
        line = DelayedBoard(0.05, views)
        runner = asyncio.create_task(line.run())
        await asyncio.sleep(0)
        line.push([row("A")])
        assert line.board.rows == {}
        for _ in range(500):  # until it is applied; a generous bound, not a timing claim
            if line.board.rows:
                break
            await asyncio.sleep(0.01)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        return line.board.rows

    assert set(asyncio.run(scenario())) == {"binance:spot:A"}
