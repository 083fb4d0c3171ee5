"""Table tests of flows.candles.trade_ids: duplicates, out-of-order ids, aggTrade ranges, memory."""

from __future__ import annotations

import pickle
import random
import sys

import pytest

from flows.candles.trade_ids import Seen, TradeIds, raw_ids

NEW, DUP, OVERLAP = Seen.NEW, Seen.DUPLICATE, Seen.OVERLAP


def takes(ids: TradeIds, prints: list[tuple[int, int]]) -> list[Seen]:
    return [ids.take(first, last) for first, last in prints]


def test_a_trade_is_new_once_and_a_duplicate_after() -> None:
    ids = TradeIds()
    assert takes(ids, [(5, 5), (6, 6), (5, 5), (6, 6), (7, 7), (6, 6)]) == [
        NEW, NEW, DUP, DUP, NEW, DUP,
    ]  # fmt: skip
    assert ids.ranges == [[5, 7]]


def test_out_of_order_ids_fill_holes_once() -> None:
    """A gap repair published after the live trades that follow it: the ids in the hole
    are new once, then duplicates; ids below the first one seen are new too."""
    ids = TradeIds()
    assert takes(ids, [(10, 10), (14, 14), (15, 15)]) == [NEW, NEW, NEW]
    assert ids.ranges == [[10, 10], [14, 15]]
    assert takes(ids, [(12, 12), (11, 11), (13, 13)]) == [NEW, NEW, NEW]
    assert ids.ranges == [[10, 15]]
    assert takes(ids, [(11, 11), (13, 13), (15, 15)]) == [DUP, DUP, DUP]
    assert takes(ids, [(8, 8), (9, 9), (8, 8)]) == [NEW, NEW, DUP]
    assert ids.ranges == [[8, 15]]


def test_an_aggtrade_is_its_range_of_raw_ids() -> None:
    assert raw_ids(7, 100, 104) == (100, 104)
    assert raw_ids(7, None, None) == (7, 7)
    ids = TradeIds()
    assert takes(ids, [(100, 104), (105, 105), (106, 110)]) == [NEW, NEW, NEW]
    # The same aggTrade again, and raw trades it stands for: already taken.
    assert takes(ids, [(100, 104), (102, 102), (106, 110), (100, 110)]) == [DUP] * 4
    # Part taken, part not: no exact fold is possible.
    assert takes(ids, [(108, 112), (95, 100)]) == [OVERLAP, OVERLAP]
    assert ids.ranges == [[100, 110]]
    # Across a hole: overlaps the range above it.
    ids.take(120, 125)
    assert takes(ids, [(112, 118), (115, 121), (119, 130)]) == [NEW, OVERLAP, OVERLAP]
    assert ids.ranges == [[100, 110], [112, 118], [120, 125]]
    assert takes(ids, [(119, 119), (111, 111)]) == [NEW, NEW]
    assert ids.ranges == [[100, 125]]


def test_many_trades_in_sequence_keep_one_range() -> None:
    ids = TradeIds()
    for tid in range(1_000_000, 1_200_000):
        assert ids.take(tid, tid) is NEW
    assert ids.ranges == [[1_000_000, 1_199_999]]
    assert ids.take(1_100_000, 1_100_000) is DUP


def test_memory_is_bounded_however_many_holes_stay_open() -> None:
    """Every other id missing forever: the ranges stop at the bound and the oldest are
    forgotten (ids below them are taken as new, not remembered)."""
    ids = TradeIds(max_ranges=8)
    for tid in range(0, 2_000, 2):
        assert ids.take(tid, tid) is NEW
    assert len(ids.ranges) == 8
    assert ids.ranges[0] == [1_984, 1_984] and ids.floor == 1_983
    assert ids.take(1_998, 1_998) is DUP  # recent ids are still known
    assert ids.take(1_997, 1_997) is NEW  # and so are recent holes
    assert ids.take(10, 10) is NEW  # forgotten: new, and not recorded
    assert ids.take(10, 10) is NEW
    assert len(ids.ranges) <= 8


def test_bounded_memory_across_many_symbols_and_trades() -> None:
    """2,000 symbols, 60 trades each, in shuffled order with every trade twice: each
    symbol ends at one range, and the per-symbol state stays small."""
    rng = random.Random(3)
    prints = [(s, 1_000 * s + n) for s in range(2_000) for n in range(60)]
    delivered = prints + prints[: len(prints) // 3]
    rng.shuffle(delivered)
    state: dict[int, TradeIds] = {}
    verdicts = {NEW: 0, DUP: 0, OVERLAP: 0}
    for symbol, tid in delivered:
        ids = state.get(symbol)
        if ids is None:
            ids = state[symbol] = TradeIds(max_ranges=16)
        verdicts[ids.take(tid, tid)] += 1
    assert verdicts[OVERLAP] == 0
    assert verdicts[NEW] + verdicts[DUP] == len(delivered)
    assert verdicts[NEW] >= len(prints)  # none lost (forgotten holes may let a few twice)
    assert all(len(ids.ranges) <= 16 for ids in state.values())
    assert sum(len(ids.ranges) == 1 for ids in state.values()) > 1_800
    # Contiguous delivery per symbol is exact: one range each, no duplicate let through.
    exact: dict[int, TradeIds] = {}
    counted = 0
    for symbol, tid in sorted(delivered):
        counted += exact.setdefault(symbol, TradeIds()).take(tid, tid) is NEW
    assert counted == len(prints)
    assert {len(ids.ranges) for ids in exact.values()} == {1}
    size = sum(sys.getsizeof(ids.ranges) + sys.getsizeof(ids.ranges[0]) for ids in exact.values())
    assert size / len(exact) < 200  # bytes a symbol, whatever the number of its trades


def test_mark_records_ranges_in_any_order_and_survives_pickling() -> None:
    ids = TradeIds()
    ids.mark([(50, 59), (30, 39), (40, 45)])
    ids.mark([(60, 60), (35, 41)])
    assert ids.ranges == [[30, 45], [50, 60]]
    assert takes(ids, [(46, 49), (33, 33), (61, 61)]) == [NEW, DUP, NEW]
    again = pickle.loads(pickle.dumps(ids))
    assert again.ranges == [[30, 61]] and again.take(45, 45) is DUP


def test_max_ranges_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_ranges"):
        TradeIds(max_ranges=0)
