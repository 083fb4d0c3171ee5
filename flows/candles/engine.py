"""The exchange's kline rules as pure code: trades in, 1s and 1m candles (and revisions) out.

No Bytewax and no I/O here, so every rule can be table-tested. `flows.candles.flow` wires this
into a dataflow.

How time works. A `PartitionCandles` holds every symbol of one Kafka partition. Its
watermark is event time only: the largest trade time it has seen minus an allowed
lateness (optionally pushed on by `advance_idle` while a live partition is idle). A
symbol's 1s window is emitted once the watermark passes its end, so the candles depend
on the order of the input, never on how fast it is read: a replay at full speed gives the
candles a slow live run gives. A trade whose window was already emitted revises it (a
higher `version`), together with every candle the change reaches: flat candles that
carried the old close, and the 1m candle built from it.

1m candles are rolled up from the real (non-flat) 1s candles of the minute by the one
roll-up of every longer bar (`schemas.bars.rollup`), so each trade is folded once, into
its 1s candle only.

Each trade once. Kafka delivers at least once, so every symbol keeps the raw trade ids it
has folded (`flows.candles.trade_ids.TradeIds`: disjoint id ranges, bounded per symbol); a print
whose ids were all folded is dropped and counted (`EngineStats.duplicates`), before any
window or horizon is looked at, and one that only partly overlaps them comes back as
`Overlapping`. A symbol resumed from the store takes the ids of its stored candles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from flows.candles.symbol_state import (
    MINUTE_MS,
    SECOND_MS,
    ZERO,
    CandleAcc,
    Series,
    SymbolCandles,
    candle_of,
)
from flows.candles.trade_ids import DEFAULT_MAX_RANGES, Seen, raw_ids
from schemas.bars import Part, rollup
from schemas.candles import Candle
from schemas.trades import Trade

INF = Decimal("Infinity")


@dataclass
class EngineStats:
    """Counts a run reports: what went in and what came out."""

    trades: int = 0
    """Trades folded (duplicates and rejected trades not included)."""
    candles_1s: int = 0
    candles_1m: int = 0
    revisions: int = 0
    too_late: int = 0
    duplicates: int = 0
    """Trades dropped because every raw trade id of theirs was folded already."""
    overlapping: int = 0
    """Aggregate trades returned because some, not all, of their raw ids were folded."""


@dataclass
class TooLate:
    """A trade older than the revision horizon: the flow sends it to the dead-letter topic."""

    trade: Trade
    horizon_from: int


@dataclass
class Overlapping:
    """An aggregate trade some of whose raw trade ids, not all, were folded already (an
    aggTrade beside raw trades that split it otherwise): it cannot be folded exactly, so
    the flow sends it to the dead-letter topic."""

    trade: Trade


@dataclass
class PartitionCandles:
    """Candles of every symbol in one partition of the trade stream.

    Args:
        lateness_ms: How far behind the newest trade time a window stays open for
            stragglers from other symbols of the partition.
        horizon_ms: How long emitted candles stay revisable. A trade older than this
            comes back as `TooLate` instead of a revision.
        max_id_ranges: Ranges of folded trade ids kept per symbol (see
            `flows.candles.trade_ids.TradeIds`).
    """

    lateness_ms: int = 1_000
    horizon_ms: int = 300_000
    max_id_ranges: int = DEFAULT_MAX_RANGES
    symbols: dict[object, SymbolCandles] = field(default_factory=dict)
    max_time_ms: int | None = None
    watermark_ms: int | None = None
    stats: EngineStats = field(default_factory=EngineStats)

    # ----------------------------------------------------------------------- resume

    def resume(self, symbols: dict[object, SymbolCandles]) -> None:
        """Take over symbols rebuilt from the store (`flows.candles.resume`), before any trade.

        The partition's event time resumes where the newest of them was emitted, so the
        windows between then and the first new trade close as flats (or revise, if the
        trades of that time turn up later).
        """
        self.symbols.update(symbols)
        uptos = [s.s1.upto for s in symbols.values() if s.s1.upto is not None]
        if not uptos:
            return
        watermark = max(uptos)
        if self.watermark_ms is None or watermark > self.watermark_ms:
            self.watermark_ms = watermark
        newest = watermark + self.lateness_ms
        if self.max_time_ms is None or newest > self.max_time_ms:
            self.max_time_ms = newest

    # ----------------------------------------------------------------------- trades in

    def add(self, key: object, trade: Trade, out: list[Candle]) -> TooLate | Overlapping | None:
        """Fold a trade in; append any revised candles it causes to `out`.

        A trade whose raw ids were all folded already is dropped and counted in
        `stats.duplicates`.

        Args:
            key: The symbol's identity in this partition (the Kafka key).
            trade: A valid trade.
            out: Where candles that this trade revises are appended.

        Returns:
            None (folded, or a duplicate), `TooLate` when the trade is older than the
            revision horizon, or `Overlapping` when only some of its raw ids were folded.
        """
        state = self.symbols.get(key)
        if state is None:
            state = self.symbols[key] = SymbolCandles(
                trade.exchange, trade.market, trade.symbol, self.max_id_ranges
            )
        seen = state.ids.take(*raw_ids(trade.trade_id, trade.first_trade_id, trade.last_trade_id))
        if seen is Seen.DUPLICATE:
            self.stats.duplicates += 1
            return None
        if seen is Seen.OVERLAP:
            self.stats.overlapping += 1
            return Overlapping(trade)
        time_ms = trade.time_us // 1000
        window = time_ms - time_ms % SECOND_MS
        if self.max_time_ms is None or time_ms > self.max_time_ms:
            self.max_time_ms = time_ms
        self.stats.trades += 1
        s1 = state.s1
        if s1.upto is None or window >= s1.upto:
            acc = state.open.get(window)
            quote = trade.price * trade.qty
            if acc is None:
                state.open[window] = CandleAcc(window, trade, quote)
            else:
                acc.add(trade, quote)
            return None
        return self._revise(state, window, trade, out)

    def fold(
        self,
        records: Iterable[Any],
        decode: Callable[[bytes], Trade],
        out: list[Candle],
        reject: Callable[[Any, str, str], None],
    ) -> None:
        """Decode and fold a batch of raw records: the hot path of the candle flow.

        Equivalent to `add` for each record, with the common case (a trade for a window
        not yet emitted) inlined: it runs once per trade of the whole exchange.

        Args:
            records: Objects with `key()` (the symbol's identity) and `value()` (an
                encoded trade), e.g. Kafka messages.
            decode: Turns a value into a `Trade`; raises `msgspec.DecodeError` or
                `TypeError` on a bad one.
            out: Where emitted and revised candles are appended.
            reject: Called with `(record, reason, detail)` for a record that is not a
                valid trade, is older than the revision horizon (`too_late`) or overlaps
                trades folded already (`overlapping_trade`). A duplicate is counted in
                `stats.duplicates`, not rejected.
        """
        symbols = self.symbols
        stats = self.stats
        max_us = -1 if self.max_time_ms is None else self.max_time_ms * 1000 + 999
        count = 0
        duplicates = 0
        for record in records:
            try:
                trade = decode(record.value())
            except (msgspec.DecodeError, TypeError) as exc:
                reject(record, "undecodable", str(exc))
                continue
            price = trade.price
            quote = price * trade.qty
            try:
                # price > 0 and price * qty > 0 imply qty > 0; a finite product implies
                # finite factors. Three comparisons instead of four, on every trade.
                valid = price > ZERO and ZERO < quote < INF
            except ArithmeticError:  # NaN compares by raising
                valid = False
            if not valid:
                reject(record, "invalid_trade", f"price {price}, qty {trade.qty}")
                continue
            key = record.key()
            state = symbols.get(key)
            if state is None:
                state = symbols[key] = SymbolCandles(
                    trade.exchange, trade.market, trade.symbol, self.max_id_ranges
                )
            first = trade.first_trade_id
            if first is None:
                first = last = trade.trade_id
            else:
                last = trade.last_trade_id  # type: ignore[assignment]
                if last is None or last < first:
                    reject(record, "invalid_trade", f"aggregate trade ids {first}..{last}")
                    continue
            ranges = state.ids.ranges
            if ranges and ranges[-1][1] + 1 == first:
                ranges[-1][1] = last  # the next id: the common case, inlined
            else:
                seen = state.ids.take(first, last)
                if seen is Seen.DUPLICATE:
                    duplicates += 1
                    continue
                if seen is Seen.OVERLAP:
                    stats.overlapping += 1
                    reject(
                        record,
                        "overlapping_trade",
                        f"raw trade ids {first}..{last} are partly in trades already folded",
                    )
                    continue
            time_us = trade.time_us
            if time_us > max_us:
                max_us = time_us
            window = time_us // 1_000_000 * 1000
            upto = state.s1.upto
            count += 1
            if upto is None or window >= upto:
                acc = state.open.get(window)
                if acc is None:
                    state.open[window] = CandleAcc(window, trade, quote)
                else:
                    acc.add(trade, quote)
            else:
                late = self._revise(state, window, trade, out)
                if late is not None:
                    reject(
                        record,
                        "too_late",
                        f"trade time {time_us} us is before the revision horizon "
                        f"({late.horizon_from} ms); repair the candle from the trades table",
                    )
        stats.trades += count
        stats.duplicates += duplicates
        if max_us >= 0:
            self.max_time_ms = max_us // 1000

    # ------------------------------------------------------------------- time passes

    def advance(self, out: list[Candle]) -> None:
        """Emit every window the event-time watermark has passed."""
        if self.max_time_ms is None:
            return
        self._advance_to(self.max_time_ms - self.lateness_ms, out)

    def advance_idle(self, idle_ms: int, out: list[Candle]) -> None:
        """Let event time run on with wall time while a live partition has no trades.

        Called when the partition has been read to its end and `idle_ms` of wall time
        passed since its newest trade. Trades that turn up later for those windows
        revise them; none are lost.
        """
        if self.max_time_ms is None:
            return
        self._advance_to(self.max_time_ms + idle_ms - self.lateness_ms, out)

    def flush(self, out: list[Candle]) -> None:
        """The input is complete: emit every window up to the newest trade's.

        The newest trade's 1s and 1m windows are emitted even though the input may have
        ended inside them (every trade must reach a candle); no flat candle is claimed
        after them, since the input says nothing of that time.
        """
        if self.max_time_ms is None:
            return
        newest = self.max_time_ms
        self._advance_to(
            newest - newest % SECOND_MS + SECOND_MS, out, newest - newest % MINUTE_MS + MINUTE_MS
        )

    def _advance_to(self, watermark: int, out: list[Candle], minutes_to: int | None = None) -> None:
        boundary = watermark - watermark % SECOND_MS
        if self.watermark_ms is not None and boundary <= self.watermark_ms:
            return
        minute_boundary = boundary - boundary % MINUTE_MS if minutes_to is None else minutes_to
        self.watermark_ms = boundary
        horizon = self.horizon_ms
        for state in self.symbols.values():
            self._close_seconds(state, boundary, out)
            if state.m1.upto is None or minute_boundary > state.m1.upto:
                self._close_minutes(state, minute_boundary, out)
                self._prune(state, minute_boundary - horizon)

    def _close_seconds(self, state: SymbolCandles, boundary: int, out: list[Candle]) -> None:
        s1 = state.s1
        start = s1.upto
        opened = state.open
        if start is None:
            if not opened:
                return
            start = s1.first = min(opened)
        if start >= boundary:
            return
        history = state.history
        close = s1.last_close
        emitted = 0
        make = candle_of
        # A minute already emitted before all its seconds were (a flush at the end of an
        # input, then more input after a restart) is revised once its new seconds close.
        minutes_upto = state.m1.upto
        reopened: dict[int, Part | None] = {}
        for window in range(start, boundary, SECOND_MS):
            acc = opened.pop(window, None)
            if acc is not None:
                if minutes_upto is not None and window < minutes_upto:
                    minute = window - window % MINUTE_MS
                    if minute not in reopened:
                        reopened[minute] = self._minute(state, minute)
                history[window] = acc
                out.append(make(state, s1, window, acc, None, 1))
                close = acc.close
            else:
                assert close is not None
                out.append(make(state, s1, window, None, close, 1))
            emitted += 1
        s1.upto = boundary
        s1.last_close = close
        self.stats.candles_1s += emitted
        for minute, before in reopened.items():
            self._revise_minute(state, minute, before, out)

    def _minute(self, state: SymbolCandles, minute: int) -> Part | None:
        history = state.history
        return rollup(
            minute,
            (acc for w in range(minute, minute + MINUTE_MS, SECOND_MS) if (acc := history.get(w))),
        )

    def _close_minutes(self, state: SymbolCandles, boundary: int, out: list[Candle]) -> None:
        m1 = state.m1
        start = m1.upto
        if start is None:
            first = state.s1.first
            if first is None:
                return
            start = m1.first = first - first % MINUTE_MS
        if start >= boundary:
            return
        close = m1.last_close
        for minute in range(start, boundary, MINUTE_MS):
            acc = self._minute(state, minute)
            if acc is not None:
                out.append(candle_of(state, m1, minute, acc, None, 1))
                close = acc.close
            else:
                assert close is not None
                out.append(candle_of(state, m1, minute, None, close, 1))
            self.stats.candles_1m += 1
        m1.upto = boundary
        m1.last_close = close

    def _prune(self, state: SymbolCandles, before: int) -> None:
        """Drop revision history older than the horizon, a whole minute at a time."""
        emitted = state.m1.upto
        if emitted is None:
            return  # no minute rolled up yet: all of the history is still needed
        before = min(before - before % MINUTE_MS, emitted)
        if state.kept_from is not None and before <= state.kept_from:
            return
        history = state.history
        if history:
            for window in [w for w in history if w < before]:
                del history[window]
        state.s1.prune(before)
        state.m1.prune(before)
        state.kept_from = before

    # --------------------------------------------------------------------- revisions

    def _revise(
        self, state: SymbolCandles, window: int, trade: Trade, out: list[Candle]
    ) -> TooLate | None:
        minute = window - window % MINUTE_MS
        oldest = self._revisable_from(state)
        if minute < oldest:
            self.stats.too_late += 1
            return TooLate(trade, oldest)
        s1 = state.s1
        assert s1.first is not None and s1.upto is not None
        minute_before = self._minute(state, minute)
        acc = state.history.get(window)
        old_close = None if acc is None else acc.close
        if acc is None:
            acc = state.history[window] = CandleAcc(window, trade, trade.price * trade.qty)
        else:
            acc.add(trade, trade.price * trade.qty)
        if window < s1.first:
            self.stats.candles_1s += _prepend(state, s1, window, acc, out)
        else:
            version = s1.bump(window)
            out.append(candle_of(state, s1, window, acc, None, version))
            self.stats.revisions += 1
            if acc.close != old_close:
                self._carry_close(state, s1, window, acc.close, out, state.history)
        self._revise_minute(state, minute, minute_before, out)
        return None

    def _revisable_from(self, state: SymbolCandles) -> int:
        """Open time of the oldest minute a late trade may still revise."""
        assert self.watermark_ms is not None
        oldest = self.watermark_ms - self.horizon_ms
        oldest -= oldest % MINUTE_MS
        if state.kept_from is not None and state.kept_from > oldest:
            return state.kept_from
        return oldest

    def _carry_close(
        self,
        state: SymbolCandles,
        series: Series,
        window: int,
        close: Decimal,
        out: list[Candle],
        real: dict[int, CandleAcc] | None,
    ) -> None:
        """Re-emit the flats after `window` that carry its close, up to the next real one."""
        assert series.upto is not None
        step = series.interval_ms
        flat = window + step
        while flat < series.upto:
            if real is not None and flat in real:
                return
            if real is None and self._minute(state, flat) is not None:
                return
            out.append(candle_of(state, series, flat, None, close, series.bump(flat)))
            self.stats.revisions += 1
            flat += step
        series.last_close = close

    def _revise_minute(
        self, state: SymbolCandles, minute: int, before: Part | None, out: list[Candle]
    ) -> None:
        m1 = state.m1
        if m1.upto is None or minute >= m1.upto:
            return  # not emitted yet: it will be rolled up when it closes
        acc = self._minute(state, minute)
        assert acc is not None
        assert m1.first is not None
        if minute < m1.first:
            self.stats.candles_1m += _prepend(state, m1, minute, acc, out)
            return
        out.append(candle_of(state, m1, minute, acc, None, m1.bump(minute)))
        self.stats.revisions += 1
        if before is None or before.close != acc.close:
            self._carry_close(state, m1, minute, acc.close, out, None)


def _prepend(
    state: SymbolCandles, series: Series, window: int, acc: Part, out: list[Candle]
) -> int:
    """A late trade before a series' first candle: a new candle at `window`, and flats
    carrying its close up to the old first; returns how many candles that is."""
    first = series.first
    assert first is not None
    step = series.interval_ms
    out.append(candle_of(state, series, window, acc, None, 1))
    for flat in range(window + step, first, step):
        out.append(candle_of(state, series, flat, None, acc.close, 1))
    series.first = window
    return (first - window) // step
