"""A perpetual's own perpetuals data and the board metrics it yields. Pure.

`PerpState` holds one USD-M symbol's newest mark-price update, its last settled funding,
its open-interest samples of the last day and its liquidations of the last day, and
computes the `schemas.ranks.PERP_METRICS` of a row (definitions in `PerpState.values` and
on the `schemas.ranks.RankRow` fields). It is cheap by construction: an update is a
comparison and an append to flat lists; a row's windows are binary searches and C-level
sums over list slices, so the 400 perpetuals' marks at 1 Hz cost a few microseconds each
(`bench/signals.py --perps`).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from schemas.perps import FundingEvent, Liquidation, MarkPrice, OpenInterest
from schemas.ranks import LIQ_WINDOWS, OI_REF_SLACK_MS, OI_WINDOWS, PERP_METRICS, WINDOW_MS

HOUR_MS = 3_600_000
YEAR_MS = 365 * 24 * HOUR_MS
DEFAULT_FUNDING_INTERVAL_MS = 8 * HOUR_MS
"""Binance's standard funding interval; a symbol on a shorter one (1, 2 or 4 h) shows it
by its next funding time's distance from its last settled one."""

KEEP_MS = WINDOW_MS["24h"] + OI_REF_SLACK_MS
"""How far back open-interest samples and liquidations are kept, behind the newest."""

_NONE_VALUES: tuple[None, ...] = (None,) * len(PERP_METRICS)


def _ms(us: int) -> int:
    return us // 1_000


def funding_interval_ms(next_funding_ms: int, last_settled_ms: int | None) -> int:
    """The symbol's funding interval: the next funding time's distance from the last
    settled one, if that is a whole number of hours from 1 to 8; else the standard 8 h
    (no settled funding known yet, or a gap of missed ones in between)."""
    if last_settled_ms is None:
        return DEFAULT_FUNDING_INTERVAL_MS
    gap = next_funding_ms - last_settled_ms
    if 0 < gap <= DEFAULT_FUNDING_INTERVAL_MS and gap % HOUR_MS == 0:
        return gap
    return DEFAULT_FUNDING_INTERVAL_MS


class PerpState:
    """One perpetual's perpetuals data, newest first where only the newest counts.

    Feed it records in any order (`add_mark`, `add_funding`, `add_open_interest`,
    `add_liquidation`); `values(time_ms)` gives the row's perpetuals metrics.
    """

    __slots__ = (
        "_liq_long_q",
        "_liq_long_t",
        "_liq_seen",
        "_liq_short_q",
        "_liq_short_t",
        "_oi_t",
        "_oi_v",
        "funding_ms",
        "funding_rate",
        "index",
        "mark",
        "mark_ms",
        "mark_rate",
        "newest_ms",
        "next_funding_ms",
    )

    mark: float | None
    index: float | None
    mark_rate: float | None
    next_funding_ms: int | None
    funding_ms: int | None
    funding_rate: float | None

    def __init__(self) -> None:
        # The newest mark (time, prices, funding estimate, next funding time) and the
        # newest settled funding (time, rate).
        self.mark_ms = -1
        self.mark = self.index = self.mark_rate = self.funding_rate = None
        self.next_funding_ms = self.funding_ms = None
        # Open-interest samples and each side's liquidations: times ascending, figures.
        self._oi_t: list[int]
        self._oi_v: list[float]
        self._oi_t, self._oi_v = [], []
        self._liq_long_t: list[int]
        self._liq_short_t: list[int]
        self._liq_long_q: list[float]
        self._liq_short_q: list[float]
        self._liq_long_t, self._liq_long_q, self._liq_short_t, self._liq_short_q = [], [], [], []
        self._liq_seen: set[tuple[int, bool]] = set()
        """(time, is_long) of each liquidation held: a repeat counts once."""
        self.newest_ms = -1
        """Newest time of any record folded in (ms; -1 before any)."""

    def _saw(self, time_ms: int) -> None:
        if time_ms > self.newest_ms:
            self.newest_ms = time_ms

    def add_mark(self, mark: MarkPrice) -> None:
        """Keep the newest mark-price update (by the exchange's event time)."""
        time_ms = _ms(mark.time_us)
        self._saw(time_ms)
        if time_ms < self.mark_ms:
            return
        self.mark_ms = time_ms
        self.mark = float(mark.mark_price)
        self.index = float(mark.index_price)
        rate = mark.funding_rate
        self.mark_rate = None if rate is None else float(rate)
        self.next_funding_ms = _ms(mark.next_funding_time_us) or None

    def set_mark(
        self,
        time_ms: int,
        mark: float,
        index: float,
        rate: float | None,
        next_funding_ms: int | None,
    ) -> None:
        """Keep a stored mark (a warm start's), unless a newer one is held."""
        self._saw(time_ms)
        if time_ms < self.mark_ms:
            return
        self.mark_ms, self.mark, self.index = time_ms, mark, index
        self.mark_rate, self.next_funding_ms = rate, next_funding_ms or None

    def add_funding(self, event: FundingEvent) -> None:
        """Keep the newest settled funding time; a later word on the same time (the
        exchange's rate after the stream's estimate) replaces it."""
        self.set_funding(_ms(event.funding_time_us), float(event.funding_rate))

    def set_funding(self, time_ms: int, rate: float) -> None:
        """Keep a settled funding `(time, rate)` if it is the newest (see `add_funding`)."""
        self._saw(time_ms)
        if self.funding_ms is None or time_ms >= self.funding_ms:
            self.funding_ms, self.funding_rate = time_ms, rate

    def add_open_interest(self, sample: OpenInterest) -> None:
        """Keep an open-interest sample (a repeat of a held time replaces it)."""
        self.set_open_interest(_ms(sample.time_us), float(sample.open_interest))

    def set_open_interest(self, time_ms: int, contracts: float) -> None:
        """Keep an open-interest sample `(time, contracts)` (see `add_open_interest`)."""
        self._saw(time_ms)
        times, values = self._oi_t, self._oi_v
        if not times or time_ms > times[-1]:
            times.append(time_ms)
            values.append(contracts)
            if times[0] < time_ms - KEEP_MS:
                cut = bisect_left(times, time_ms - KEEP_MS)
                del times[:cut], values[:cut]
            return
        i = bisect_left(times, time_ms)
        if i < len(times) and times[i] == time_ms:
            values[i] = contracts
        else:
            times.insert(i, time_ms)
            values.insert(i, contracts)

    def add_liquidation(self, liquidation: Liquidation) -> None:
        """Count a liquidation's quote volume on its side (a repeat of the same order,
        same time and side, counts once: Binance sends at most one per second)."""
        self.set_liquidation(
            _ms(liquidation.time_us), liquidation.is_long, float(liquidation.quote_volume)
        )

    def set_liquidation(self, time_ms: int, is_long: bool, quote: float) -> None:
        """Count a liquidation `(time, side, quote volume)` (see `add_liquidation`)."""
        self._saw(time_ms)
        seen = (time_ms, is_long)
        if seen in self._liq_seen:
            return
        self._liq_seen.add(seen)
        times, quotes = (
            (self._liq_long_t, self._liq_long_q)
            if is_long
            else (self._liq_short_t, self._liq_short_q)
        )
        if not times or time_ms >= times[-1]:
            times.append(time_ms)
            quotes.append(quote)
        else:
            i = bisect_right(times, time_ms)
            times.insert(i, time_ms)
            quotes.insert(i, quote)
        if times[0] < time_ms - KEEP_MS:
            cut = bisect_left(times, time_ms - KEEP_MS)
            self._liq_seen.difference_update((t, is_long) for t in times[:cut])
            del times[:cut], quotes[:cut]

    def _oi_change(self, window_ms: int) -> float | None:
        times = self._oi_t
        start = times[-1] - window_ms
        i = bisect_right(times, start) - 1
        if i < 0 or times[i] < start - OI_REF_SLACK_MS:
            return None
        ref = self._oi_v[i]
        if ref <= 0:
            return None
        return (self._oi_v[-1] / ref - 1.0) * 100.0

    def values(self, time_ms: int) -> tuple[float | None, ...]:
        """The row's perpetuals metrics, in `schemas.ranks.PERP_METRICS` order.

        Definitions (``time_ms`` is the row's time):

        - ``mark_price``, ``index_price``: of the newest mark-price update;
          ``basis_bps`` = (mark - index) / index x 10,000.
        - ``funding_rate_pct``: its funding-rate estimate x 100; ``funding_last_pct``: the
          newest settled funding's rate x 100; ``funding_annual_pct`` =
          ``funding_rate_pct`` x 365 d / the funding interval (`funding_interval_ms`);
          ``next_funding_s`` = (its next funding time - ``time_ms``) / 1000.
        - ``open_interest``: the newest sample's contracts; ``open_interest_value`` = that
          x ``mark_price``; ``oi_change_pct_w`` = (newest / ref - 1) x 100 with ref the
          newest sample at or before the newest's time - w, and not more than
          `schemas.ranks.OI_REF_SLACK_MS` before that (else None).
        - ``liq_long_w`` / ``liq_short_w``: sum of the quote volumes of the liquidations of
          longs / shorts with a time in ``[end - w, end)``, end = max(``time_ms``, the
          newest record's time + 1 ms). Binance sends at most one per symbol per second:
          an undercount.

        Each is None until the data it reads has arrived (the liquidation sums are 0
        once any record has).

        Args:
            time_ms: The row's time (ms since the epoch, exchange time).
        """
        if self.newest_ms < 0:
            return _NONE_VALUES
        mark, index, rate = self.mark, self.index, self.mark_rate
        basis = None
        if mark is not None and index is not None and index > 0:
            basis = (mark - index) / index * 10_000.0
        rate_pct = annual = next_s = None
        next_ms = self.next_funding_ms
        if rate is not None:
            rate_pct = rate * 100.0
            if next_ms is not None:
                interval = funding_interval_ms(next_ms, self.funding_ms)
                annual = rate_pct * (YEAR_MS / interval)
        if next_ms is not None:
            next_s = (next_ms - time_ms) / 1000.0
        last_pct = None if self.funding_rate is None else self.funding_rate * 100.0
        oi = value = None
        changes: list[float | None] = [None] * len(OI_WINDOWS)
        if self._oi_t:
            oi = self._oi_v[-1]
            if mark is not None:
                value = oi * mark
            changes = [self._oi_change(WINDOW_MS[w]) for w in OI_WINDOWS]
        end = max(time_ms, self.newest_ms + 1)
        sums = [
            _window_sum(times, quotes, end - WINDOW_MS[w], end)
            for times, quotes in (
                (self._liq_long_t, self._liq_long_q),
                (self._liq_short_t, self._liq_short_q),
            )
            for w in LIQ_WINDOWS
        ]
        return (mark, index, basis, rate_pct, last_pct, annual, next_s, oi, value, *changes, *sums)


def _window_sum(times: list[int], quotes: list[float], start: int, end: int) -> float:
    """Sum of `quotes` whose time is in ``[start, end)`` (times ascending)."""
    if not times or times[-1] < start:
        return 0.0
    return float(sum(quotes[bisect_left(times, start) : bisect_left(times, end)]))
