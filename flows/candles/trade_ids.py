"""Which trades a consumer has already taken: each (exchange, market, symbol, trade id) once.

Kafka delivers at least once. The candle flow and the trade store see a trade twice when
an ingest restarts and publishes again what it had published, when two archives (or the
same one twice) overlap in a replay, or when a producer session retries a batch the
broker had already stored (idempotence holds within one producer session only). Counted
twice, such a trade doubles its candle's volume and count. This module decides, print by
print, whether it is new.

What is compared. Ids of raw trades: a plain trade is its `trade_id`, an aggregate trade
(Binance ``aggTrade``) the range `first_trade_id`..`last_trade_id` of raw trades it
folds. So an aggTrade and the raw trades it stands for (a ``trades`` and an ``aggTrades``
archive of the same day) are the same trades. A print whose ids were all taken is a
duplicate; one of which some but not all were is an overlap, which no exact candle can
be made of (its quantity cannot be split between the raw trades): the caller sends it to
the dead-letter topic.

What ordering is relied on. Messages are keyed by ``exchange:market:symbol``, so a
symbol's trades are in one partition, read in order by one flow state (which is where
this state lives). Within a partition the order is the order of publication, which is not
the order of ids: a gap repaired from REST is published after the live trades that follow
it, another producer (a replay, a restarted ingest) interleaves with the first. So the
state keeps every taken id, not only the highest: as disjoint ranges of ids, which for an
exchange that numbers each symbol's trades consecutively (Binance does) is one range per
symbol however many trades pass, and one more per hole not yet filled.

Memory is bounded: at most `max_ranges` ranges a symbol. Opening one more forgets the
oldest range: the ids below the next one are then unknown, and a print among them is
taken as new (a hole that old was given up on long before: 63 newer ones are open). The
candle flow still dead-letters such a print as too late once it is older than its
revision horizon. Nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from enum import IntEnum


class Seen(IntEnum):
    """What `TradeIds.take` decided about one print."""

    NEW = 0
    """None of its ids was taken before: fold it."""
    DUPLICATE = 1
    """Every one of its ids was taken before: drop it, and count it."""
    OVERLAP = 2
    """Some of its ids were taken before, some not: it cannot be folded exactly."""


DEFAULT_MAX_RANGES = 64
"""Ranges of ids kept per symbol: 63 holes below the newest id before the oldest is
forgotten (a hole is repaired within seconds, or reported as a gap and left)."""


def raw_ids(
    trade_id: int, first_trade_id: int | None, last_trade_id: int | None
) -> tuple[int, int]:
    """The raw trade ids a print stands for, as an inclusive range.

    Args:
        trade_id: The print's id (a plain trade's raw id, an aggTrade's aggregate id).
        first_trade_id: An aggTrade's first raw id, None for a plain trade.
        last_trade_id: An aggTrade's last raw id, None for a plain trade.

    Returns:
        `(first, last)`: the aggTrade's raw range, or `(trade_id, trade_id)`.
    """
    if first_trade_id is None or last_trade_id is None:
        return trade_id, trade_id
    return first_trade_id, last_trade_id


class TradeIds:
    """The raw trade ids one symbol has had taken, as sorted disjoint ranges.

    `ranges` holds `[first, last]` pairs (inclusive), sorted, neither overlapping nor
    touching (touching ranges are merged). Ids below `floor` were forgotten to keep within
    `max_ranges`. The common case, the next id after the newest, is one comparison and one
    store; a caller on a hot path may inline it (`ranges[-1][1] + 1 == first`, then
    `ranges[-1][1] = last`) and call `take` for the rest.

    Args:
        max_ranges: Ranges kept at most (at least 1).
    """

    __slots__ = ("floor", "max_ranges", "ranges")

    def __init__(self, max_ranges: int = DEFAULT_MAX_RANGES) -> None:
        if max_ranges < 1:
            raise ValueError(f"max_ranges must be at least 1, got {max_ranges}")
        self.max_ranges = max_ranges
        self.ranges: list[list[int]] = []
        self.floor: int | None = None

    def __getstate__(self) -> tuple[int, list[list[int]], int | None]:
        return self.max_ranges, self.ranges, self.floor

    def __setstate__(self, state: tuple[int, list[list[int]], int | None]) -> None:
        self.max_ranges, self.ranges, self.floor = state

    def take(self, first: int, last: int) -> Seen:
        """Decide about a print of raw ids `first..last` and, if it is new, take them.

        Args:
            first: Its first raw id (see `raw_ids`).
            last: Its last raw id, not below `first`.

        Returns:
            `Seen.NEW` (its ids are taken now), `Seen.DUPLICATE` or `Seen.OVERLAP` (nothing
            changes).
        """
        ranges = self.ranges
        if not ranges:
            if self.floor is not None and first < self.floor:
                return Seen.NEW  # below what is remembered: taken as new, not recorded
            ranges.append([first, last])
            return Seen.NEW
        top = ranges[-1]
        if first > top[1]:
            if first == top[1] + 1:
                top[1] = last
            else:
                ranges.append([first, last])
                self._bound()
            return Seen.NEW
        if self.floor is not None and first < self.floor:
            return Seen.NEW
        # The range that starts at or before `first`, if any, and the one after it.
        i = bisect_right(ranges, first, key=_first) - 1
        before = ranges[i] if i >= 0 else None
        after = ranges[i + 1] if i + 1 < len(ranges) else None
        if before is not None and first <= before[1]:
            return Seen.DUPLICATE if last <= before[1] else Seen.OVERLAP
        if after is not None and last >= after[0]:
            return Seen.OVERLAP
        # New ids in a hole (or below every range): join the neighbours they touch.
        joins_before = before is not None and before[1] + 1 == first
        joins_after = after is not None and after[0] == last + 1
        if joins_before and joins_after:
            assert before is not None and after is not None
            before[1] = after[1]
            del ranges[i + 1]
        elif joins_before:
            assert before is not None
            before[1] = last
        elif joins_after:
            assert after is not None
            after[0] = first
        else:
            ranges.insert(i + 1, [first, last])
            self._bound()
        return Seen.NEW

    def mark(self, spans: Iterable[tuple[int, int]]) -> None:
        """Record ids as taken whatever was taken before: a state rebuilt from stored
        candles, whose `(first, last)` spans come in any order and may touch or overlap.

        Args:
            spans: Inclusive `(first, last)` ranges of raw ids.
        """
        floor = self.floor
        merged: list[list[int]] = []
        for lo, hi in sorted([*map(tuple, self.ranges), *spans]):
            if floor is not None:
                if hi < floor:
                    continue
                lo = max(lo, floor)
            if merged and lo <= merged[-1][1] + 1:
                if hi > merged[-1][1]:
                    merged[-1][1] = hi
            else:
                merged.append([lo, hi])
        self.ranges = merged
        self._bound()

    def _bound(self) -> None:
        ranges = self.ranges
        while len(ranges) > self.max_ranges:
            oldest = ranges.pop(0)
            self.floor = oldest[1] + 1


def _first(pair: list[int]) -> int:
    return pair[0]
