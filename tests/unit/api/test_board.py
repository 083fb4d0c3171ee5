"""The live board: newest row per symbol wins, and a filter's view as snapshots and diffs."""

from __future__ import annotations

from typing import Any

import msgspec

from api.live.board import Board, FilteredBoard
from api.services.filter_eval import compile_filter
from api.services.filter_query import parse_query
from schemas.ranks import RankRow

T0 = 1_723_161_300_000


def row(symbol: str, t: int = T0, price: float = 1.0, **metrics: Any) -> RankRow:
    return RankRow("binance", "spot", symbol, t, price, **metrics)


def view(query: str) -> FilteredBoard:
    pairs = [tuple(part.split("=", 1)) for part in query.split("&") if part]
    return FilteredBoard(compile_filter(parse_query(pairs)))  # type: ignore[arg-type]


def decode(body: bytes) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.json.decode(body)
    return data


# --- Board ------------------------------------------------------------------------------


def test_newer_rows_replace_older_ones_and_older_ones_are_ignored() -> None:
    board = Board()
    assert board.apply([row("BTCUSDT", T0, 100.0), row("ETHUSDT", T0, 10.0)]) == 2
    assert board.apply([row("BTCUSDT", T0 + 1000, 101.0), row("ETHUSDT", T0 - 1000, 9.0)]) == 1
    assert board.rows["binance:spot:BTCUSDT"].price == 101.0
    assert board.rows["binance:spot:ETHUSDT"].price == 10.0  # the late, older row lost
    assert board.as_of_ms == T0 + 1000


def test_a_row_republished_for_the_same_second_replaces_it() -> None:
    board = Board()
    board.apply([row("BTCUSDT", T0, 100.0)])
    board.apply([row("BTCUSDT", T0, 100.5)])  # a revised candle re-published that second
    assert board.rows["binance:spot:BTCUSDT"].price == 100.5


def test_version_rises_only_when_something_changed() -> None:
    board = Board()
    board.apply([row("BTCUSDT", T0, 100.0)])
    version = board.version
    assert board.apply([row("BTCUSDT", T0, 100.0)]) == 0  # the same row again
    assert board.apply([row("BTCUSDT", T0 - 1, 99.0)]) == 0  # an older one
    assert board.version == version
    board.apply([row("BTCUSDT", T0 + 1000, 100.0)])
    assert board.version == version + 1


def test_a_second_is_complete_once_it_has_as_many_rows_as_the_one_before() -> None:
    board = Board()
    board.apply([row("A", T0), row("B", T0), row("C", T0)])
    board.apply([row("A", T0 + 1000), row("B", T0 + 1000)])
    assert (board.previous_count, board.newest_count) == (3, 2)
    assert not board.second_complete
    board.apply([row("C", T0 + 1000)])
    assert board.second_complete


def test_an_empty_board_has_no_as_of() -> None:
    board = Board()
    assert board.apply([]) == 0
    assert board.as_of_ms is None and board.rows == {} and board.version == 0


# --- FilteredBoard ----------------------------------------------------------------------


def test_first_evaluation_makes_the_snapshot_in_the_filters_order() -> None:
    board = Board()
    board.apply([row("A", change_pct_5m=1.0), row("B", change_pct_5m=3.0), row("C")])
    v = view("sort=-change_pct_5m&min_change_pct_5m=0.5")
    assert v.evaluate(board, {}) is None  # nothing to diff against yet
    snapshot = decode(v.snapshot())
    assert snapshot["order"] == ["binance:spot:B", "binance:spot:A"]
    assert [r["symbol"] for r in snapshot["rows"]] == ["B", "A"]
    assert snapshot["rows"][0] == msgspec.to_builtins(board.rows["binance:spot:B"])
    assert snapshot["as_of_ms"] == T0 and snapshot["seq"] == 0


def test_a_diff_carries_only_the_changed_fields_and_no_order_when_it_held() -> None:
    board = Board()
    board.apply([row("A", price=1.0, change_pct_5m=1.0), row("B", price=2.0, change_pct_5m=3.0)])
    v = view("sort=-change_pct_5m")
    v.evaluate(board, {})
    board.apply([row("A", T0 + 1000, price=1.5, change_pct_5m=1.0)])
    diff = v.evaluate(board, {})
    assert diff is not None and diff.rows == 1
    body = decode(diff.body)
    assert body == {
        "upsert": [{"key": "binance:spot:A", "time_ms": T0 + 1000, "price": 1.5}],
        "remove": [],
        "as_of_ms": T0 + 1000,
        "seq": 1,
    }


def test_a_diff_adds_new_rows_whole_removes_leavers_and_sends_the_new_order() -> None:
    board = Board()
    board.apply([row("A", change_pct_5m=1.0), row("B", change_pct_5m=3.0)])
    v = view("sort=-change_pct_5m&min_change_pct_5m=0.5")
    v.evaluate(board, {})
    board.apply([row("A", T0 + 1000, change_pct_5m=0.1), row("C", T0 + 1000, change_pct_5m=5.0)])
    diff = v.evaluate(board, {})
    assert diff is not None and diff.rows == 2
    body = decode(diff.body)
    new_row = msgspec.to_builtins(board.rows["binance:spot:C"])
    assert body["upsert"] == [{"key": "binance:spot:C", **new_row}]
    assert body["remove"] == ["binance:spot:A"]
    assert body["order"] == ["binance:spot:C", "binance:spot:B"]
    assert body["seq"] == 1
    # the snapshot now shows the new state at the new seq
    snapshot = decode(v.snapshot())
    assert snapshot["order"] == body["order"] and snapshot["seq"] == 1


def test_a_reorder_alone_is_a_diff_with_the_order() -> None:
    board = Board()
    board.apply([row("A", change_pct_5m=1.0), row("B", change_pct_5m=3.0)])
    v = view("sort=-change_pct_5m")
    v.evaluate(board, {})
    board.apply([row("A", T0, change_pct_5m=4.0)])
    diff = v.evaluate(board, {})
    assert diff is not None
    body = decode(diff.body)
    assert body["order"] == ["binance:spot:A", "binance:spot:B"]
    assert body["upsert"] == [{"key": "binance:spot:A", "change_pct_5m": 4.0}]


def test_no_diff_when_the_view_did_not_change() -> None:
    board = Board()
    board.apply([row("A", change_pct_5m=1.0), row("Z", change_pct_5m=-1.0)])
    v = view("min_change_pct_5m=0")
    v.evaluate(board, {})
    board.apply([row("Z", T0 + 1000, change_pct_5m=-2.0)])  # outside the filter
    assert v.evaluate(board, {}) is None
    assert v.seq == 0
    assert v.board_version == board.version


def test_applying_the_diffs_to_the_snapshot_gives_the_next_snapshot() -> None:
    """What a client does: start from a snapshot, patch each diff, and hold the board."""
    board = Board()
    board.apply([row(s, change_pct_5m=float(i)) for i, s in enumerate("ABCDEF")])
    v = view("sort=-change_pct_5m&limit=3")
    v.evaluate(board, {})
    held = decode(v.snapshot())
    rows = {r["exchange"] + ":" + r["market"] + ":" + r["symbol"]: r for r in held["rows"]}
    order = held["order"]
    changes = [
        [row("A", T0 + 1000, change_pct_5m=9.0)],
        [row("F", T0 + 2000, price=7.0, change_pct_5m=5.0)],
        [row("B", T0 + 3000, change_pct_5m=8.5), row("E", T0 + 3000, change_pct_5m=0.0)],
    ]
    for change in changes:
        board.apply(change)
        diff = v.evaluate(board, {})
        assert diff is not None
        body = decode(diff.body)
        for upsert in body["upsert"]:
            key = upsert.pop("key")
            rows[key] = {**rows.get(key, {}), **upsert}
        for key in body["remove"]:
            del rows[key]
        order = body.get("order", order)
    expected = decode(v.snapshot())
    assert order == expected["order"] == ["binance:spot:A", "binance:spot:B", "binance:spot:F"]
    assert [rows[key] for key in order] == expected["rows"]


# --- Perp premium over spot ---------------------------------------------------------------


def perp(symbol: str, t: int = T0, price: float = 1.0, **metrics: Any) -> RankRow:
    return RankRow("binance", "usdm", symbol, t, price, **metrics)


def test_a_perpetual_gets_its_premium_over_the_spot_pair_whichever_row_comes_first() -> None:
    board = Board()
    board.apply([perp("BTCUSDT", T0, 100_050.0)])
    assert board.rows["binance:usdm:BTCUSDT"].premium_bps is None  # no spot pair yet
    assert board.apply([row("BTCUSDT", T0, 100_000.0)]) == 2  # the spot row, and the perp's premium
    held = board.rows["binance:usdm:BTCUSDT"]
    assert held.premium_bps == (100_050.0 / 100_000.0 - 1) * 10_000  # 5 bp
    board.apply([perp("BTCUSDT", T0 + 1000, 99_900.0)])
    assert board.rows["binance:usdm:BTCUSDT"].premium_bps == (99_900.0 / 100_000.0 - 1) * 10_000
    # a spot row that moves nothing for the perpetual changes only itself
    assert board.apply([row("BTCUSDT", T0 + 1000, 100_000.0)]) == 1
    # no spot pair, no premium; spot rows never have one
    board.apply([perp("1000PEPEUSDT", T0, 0.01)])
    assert board.rows["binance:usdm:1000PEPEUSDT"].premium_bps is None
    assert board.rows["binance:spot:BTCUSDT"].premium_bps is None


def test_a_filter_on_the_premium_sees_it() -> None:
    board = Board()
    board.apply([row("AAAUSDT", T0, 10.0), perp("AAAUSDT", T0, 10.1), perp("BBBUSDT", T0, 5.0)])
    selected = view("min_premium_bps=50").compiled.select(board.rows.values(), {})
    assert [r.key for r in selected] == ["binance:usdm:AAAUSDT"]  # 100 bp; BBB has no pair
