"""A symbol's recent 1s and 1m candles in ring buffers: what its scanner metrics read.

Two rings (numpy arrays indexed by time modulo their length):

- **seconds** (`SECONDS_KEPT` = 1 h + 1 min of 1s candles): close, volume, quote volume
  and trade count of each second;
- **minutes** (`MINUTES_KEPT` = 24 h + 5 min): close, high, low, volume, quote volume
  and trade count of each minute. A minute is built from its 1s candles as they arrive
  (so the forming minute is always current, and the just-closed minute is usable before
  its 1m candle turns up behind the last second in the topic); the 1m candle, when it
  comes, replaces the built values with the exchange-rule ones. Flat seconds and flat
  minutes hold -inf/+inf as high/low: a flat candle carries the previous close and is
  not a trade, so it never sets a high or a low.

Memory: 3,660 x 4 + 1,445 x 6 float64 (186 KB), plus 1,445 int64 open times and two
flags per minute (14 KB), 3,660 int64 second open times (29 KB): about 230 KB per
symbol, whatever its activity (`bench/signals.py` measures 253 KB with the rest of a
symbol's state).

What is known. Seconds count from the first second after the last gap in the 1s
stream; minutes from the first whole minute after it, or earlier where 1m candles fill
in. A gap whose minutes all become known from 1m candles (the minute a restart cut
through, once the candle flow closes it) is bridged: seconds count from before it again,
and only a query that needs one of its missing seconds answers None. A query over
candles that are not all held answers None.

Revisions. A candle with a higher `version` for an open time already held replaces the
held values (a repeat or an older version is ignored); minute sums move by the
difference, so a revision is never counted twice. Exchange klines (version 0, backfilled
over REST) fill minutes the history lacks, also older ones inside the ring, and yield to
candles built from trades (version 1 and up); one for the forming minute is ignored (it
may be the exchange's partial kline, and the minute's seconds are here).

Warm start. `load` fills an empty history from columns of stored candles (the last hour
of 1s, the last day of 1m) in one pass of numpy, to the state that feeding the same
candles in topic order would leave: a candle the topic then delivers again is a repeat.
"""

from __future__ import annotations

import math

import numpy as np

from flows.signals.columns import (
    MINUTE_MS,
    SECOND_MS,
    CandleColumns,
    Values,
    candle_values,
    ceil_to,
    floor_to,
)
from schemas.candles import Candle

SECONDS_KEPT = 3_660
"""1s candles held: an hour and a minute (a 1h change needs the close 3,601 s back)."""

MINUTES_KEPT = 1_445
"""Minutes held: a 24h change needs the minute closing 24 h before the forming one,
1,442 back; the 1h relative volume needs 11 h."""

CLOSE, HIGH, LOW, VOLUME, QUOTE, TRADES = range(6)
"""The minutes ring's rows: what `minutes()` and `sum_since()` reduce."""

_SECOND_ROW = {CLOSE: 0, VOLUME: 1, QUOTE: 2, TRADES: 3}
"""The seconds ring's row of each figure it keeps (no high or low)."""

_INF = math.inf


class CandleHistory:
    """One symbol's held candles: fed in topic order, queried by time.

    Args:
        seconds_kept: Length of the seconds ring.
        minutes_kept: Length of the minutes ring.
    """

    def __init__(self, seconds_kept: int = SECONDS_KEPT, minutes_kept: int = MINUTES_KEPT) -> None:
        self._ns = seconds_kept
        self._nm = minutes_kept
        self._sec = np.zeros((4, seconds_kept))
        self._sec_open = np.full(seconds_kept, -1, dtype=np.int64)
        self._min = np.zeros((6, minutes_kept))
        self._min_open = np.full(minutes_kept, -1, dtype=np.int64)
        self._min_known = np.zeros(minutes_kept, dtype=bool)
        self._min_from_candle = np.zeros(minutes_kept, dtype=bool)
        # Versions other than 1 only (revisions, exchange klines): rare, so a dict beats a
        # ring of them.
        self._sec_versions: dict[int, int] = {}
        self._min_versions: dict[int, int] = {}
        self._s_since: int | None = None
        # Gaps not bridged yet, oldest first: (start of the run before, first missing
        # second, first second after).
        self._holes: list[tuple[int, int, int]] = []
        self._s_upto: int | None = None
        self._m_since: int | None = None
        # Derived from the three above after every change; read many times per row.
        self._forming: int | None = None
        self._minutes_from: int | None = None
        self._seconds_from: int | None = None
        self.latest = Values(0.0, -_INF, _INF, 0.0, 0.0, 0.0)
        """The latest second's figures."""
        self.forming_high = -_INF
        self.forming_low = _INF
        """High and low of the forming minute before its latest second."""
        self.revised = 0
        """Counts changes to minutes already held (1m candles, revisions), so that a
        reader can cache what it computed from closed minutes."""

    @property
    def time_ms(self) -> int | None:
        """End of the latest second held (its close_time + 1), or None before any."""
        return self._s_upto

    # ------------------------------------------------------------------ input

    def add_second(self, candle: Candle) -> bool:
        """Fold in a 1s candle.

        Returns:
            True when it is a new latest second; False for a revision, a repeat, or a
            candle too old to hold.
        """
        t = candle.open_time
        values = candle_values(candle)
        upto = self._s_upto
        if upto is not None and t < upto:
            self._revise_second(t, candle.version, values)
            return False
        gap = upto is None or t != upto
        if gap:
            if upto is not None and self._s_since is not None:
                self._holes.append((self._s_since, upto, t))
            self._s_since = t
        self._write_second(t, values)
        if candle.version != 1:
            self._sec_versions[t] = candle.version
        self._s_upto = t + SECOND_MS
        self.latest = values
        self._forming = floor_to(t, MINUTE_MS)
        self._fold_into_minute(t, gap, values)
        self._refresh_bounds()
        return True

    def _refresh_bounds(self) -> None:
        forming, upto = self._forming, self._s_upto
        if forming is None or upto is None or self._s_since is None:
            return
        self._seconds_from = max(self._s_since, upto - self._ns * SECOND_MS)
        self._minutes_from = (
            None
            if self._m_since is None
            else max(self._m_since, forming - (self._nm - 1) * MINUTE_MS)
        )

    def _write_second(self, t: int, values: Values) -> None:
        i = (t // SECOND_MS) % self._ns
        self._sec[:, i] = (values.close, values.volume, values.quote, values.trades)
        self._sec_open[i] = t

    def _covered(self, start: int, end: int) -> bool:
        """Whether every minute holding a second of [start, end) is known."""
        minutes = np.arange(floor_to(start, MINUTE_MS), end, MINUTE_MS, dtype=np.int64)
        j = (minutes // MINUTE_MS) % self._nm
        return bool(((self._min_open[j] == minutes) & self._min_known[j]).all())

    def _bridge(self) -> None:
        """Bridge the latest gaps whose minutes are all known now."""
        bridged = False
        while self._holes:
            since, start, end = self._holes[-1]
            if end <= (self._s_upto or 0) - self._ns * SECOND_MS:
                self._holes.clear()  # out of the ring's reach: nothing left to bridge
                break
            if not self._covered(start, end):
                break
            self._holes.pop()
            self._s_since = since
            bridged = True
        if bridged:
            self._refresh_bounds()

    def _revise_second(self, t: int, version: int, values: Values) -> None:
        upto = self._s_upto
        assert upto is not None and self._s_since is not None
        if t < upto - self._ns * SECOND_MS or self._sec_open[(t // SECOND_MS) % self._ns] != t:
            return
        if version <= self._sec_versions.get(t, 1):
            return
        self._sec_versions[t] = version
        before = self._sec[:, (t // SECOND_MS) % self._ns].copy()
        self._write_second(t, values)
        latest = upto - SECOND_MS
        if t == latest:
            old = self.latest
            self.latest = values._replace(
                high=max(old.high, values.high), low=min(old.low, values.low)
            )
        minute = floor_to(t, MINUTE_MS)
        j = (minute // MINUTE_MS) % self._nm
        if self._min_open[j] != minute or self._min_from_candle[j]:
            return  # the minute's own 1m revision carries the change
        m = self._min
        m[VOLUME, j] += values.volume - before[_SECOND_ROW[VOLUME]]
        m[QUOTE, j] += values.quote - before[_SECOND_ROW[QUOTE]]
        m[TRADES, j] += values.trades - before[_SECOND_ROW[TRADES]]
        m[HIGH, j] = max(m[HIGH, j], values.high)
        m[LOW, j] = min(m[LOW, j], values.low)
        if t == min(minute + MINUTE_MS - SECOND_MS, latest):
            m[CLOSE, j] = values.close  # a minute closes with its last second
        self.revised += 1

    def _fold_into_minute(self, t: int, gap: bool, values: Values) -> None:
        minute = floor_to(t, MINUTE_MS)
        j = (minute // MINUTE_MS) % self._nm
        m = self._min
        if self._min_open[j] != minute:
            # The first second of a minute: the slot's previous minute is out of reach.
            self._min_open[j] = minute
            self._min_from_candle[j] = False
            m[:, j] = list(values)
            whole = t == minute
            self._min_known[j] = whole
            self.forming_high, self.forming_low = -_INF, _INF
            if not whole:
                self._m_since = None
            elif gap or self._m_since is None:
                self._m_since = minute
                self._extend_minutes_back()
            self._prune_versions(t)
            return
        self.forming_high = float(m[HIGH, j])
        self.forming_low = float(m[LOW, j])
        if gap:
            self._min_known[j] = False
            self._m_since = None
        if self._min_from_candle[j]:
            return
        m[CLOSE, j] = values.close
        if values.high > m[HIGH, j]:
            m[HIGH, j] = values.high
        if values.low < m[LOW, j]:
            m[LOW, j] = values.low
        m[VOLUME, j] += values.volume
        m[QUOTE, j] += values.quote
        m[TRADES, j] += values.trades

    def _prune_versions(self, now: int) -> None:
        """Forget the versions of candles out of the rings' reach (once a minute)."""
        for versions, kept in (
            (self._sec_versions, self._ns * SECOND_MS),
            (self._min_versions, self._nm * MINUTE_MS),
        ):
            if versions:
                for t in [t for t in versions if t < now - kept]:
                    del versions[t]

    def add_minute(self, candle: Candle) -> None:
        """Fold in a 1m candle: it replaces the minute built from seconds (or an older
        version of itself), and may extend the known minutes back in time."""
        minute = candle.open_time
        if candle.version == 0 and self._forming is not None and minute >= self._forming:
            return  # an exchange kline of the forming minute: its seconds are here
        j = (minute // MINUTE_MS) % self._nm
        held = int(self._min_open[j])
        if held == minute:
            if self._min_from_candle[j] and candle.version <= self._min_versions.get(minute, 1):
                return
        elif held > minute:
            return  # the slot holds a newer minute: this one is out of reach
        self._min[:, j] = list(candle_values(candle))
        self._min_open[j] = minute
        self._min_from_candle[j] = True
        self._min_known[j] = True
        if candle.version != 1:
            self._min_versions[minute] = candle.version
        else:
            self._min_versions.pop(minute, None)
        self.revised += 1
        if self._m_since is None:
            if self._forming is None or minute != self._forming:
                if self._holes:
                    self._bridge()
                return
            self._m_since = minute
        elif minute != self._m_since - MINUTE_MS:
            if self._holes:
                self._bridge()
            return
        else:
            self._m_since = minute
        self._extend_minutes_back()
        self._refresh_bounds()
        if self._holes:
            self._bridge()

    def load(self, seconds: CandleColumns | None, minutes: CandleColumns | None) -> None:
        """Fill an empty history from stored candles (a warm start).

        The result is what feeding the same candles in topic order would leave (each 1m
        candle after its minute's seconds): 1m candles in their minutes; the seconds of the
        last unbroken run (clipped to the ring); the minutes of that run that have no 1m
        candle yet built from their seconds, the forming one included.

        Args:
            seconds: 1s candles, oldest first, one per open time (or None).
            minutes: 1m candles, oldest first, one per open time (or None).

        Raises:
            ValueError: The history already holds candles.
        """
        if self._s_upto is not None or bool((self._min_open >= 0).any()):
            raise ValueError("a history is loaded only when empty")
        have_seconds = seconds is not None and len(seconds.open_time) > 0
        have_minutes = minutes is not None and len(minutes.open_time) > 0
        if have_seconds:
            assert seconds is not None
            last = int(seconds.open_time[-1])
            seconds = seconds.tail(last + SECOND_MS - self._ns * SECOND_MS)
            forming = floor_to(last, MINUTE_MS)
        if have_minutes:
            assert minutes is not None
            top = int(minutes.open_time[-1])
            newest = max(forming, top) if have_seconds else top
            minutes = minutes.tail(newest - (self._nm - 1) * MINUTE_MS)
            if have_seconds:
                # An exchange kline of the forming minute yields to its seconds.
                t = minutes.open_time
                keep = (t < forming) | (minutes.version != 0)
                if not keep.all():
                    minutes = CandleColumns(*(column[keep] for column in minutes))
            self._load_minutes(minutes)
        if have_seconds:
            assert seconds is not None
            self._load_seconds(seconds)
        self.revised += 1

    def _load_minutes(self, minutes: CandleColumns) -> None:
        t = minutes.open_time
        j = (t // MINUTE_MS) % self._nm
        flat = minutes.trades == 0
        m = self._min
        m[CLOSE, j] = minutes.close
        m[HIGH, j] = np.where(flat, -_INF, minutes.high)
        m[LOW, j] = np.where(flat, _INF, minutes.low)
        m[VOLUME, j] = minutes.volume
        m[QUOTE, j] = minutes.quote
        m[TRADES, j] = minutes.trades
        self._min_open[j] = t
        self._min_known[j] = True
        self._min_from_candle[j] = True
        odd = np.flatnonzero(minutes.version != 1)
        self._min_versions.update(zip(t[odd].tolist(), minutes.version[odd].tolist(), strict=True))

    def _load_seconds(self, seconds: CandleColumns) -> None:
        t = seconds.open_time
        flat = seconds.trades == 0
        high = np.where(flat, -_INF, seconds.high)
        low = np.where(flat, _INF, seconds.low)
        i = (t // SECOND_MS) % self._ns
        self._sec[_SECOND_ROW[CLOSE], i] = seconds.close
        self._sec[_SECOND_ROW[VOLUME], i] = seconds.volume
        self._sec[_SECOND_ROW[QUOTE], i] = seconds.quote
        self._sec[_SECOND_ROW[TRADES], i] = seconds.trades
        self._sec_open[i] = t
        odd = np.flatnonzero(seconds.version != 1)
        self._sec_versions.update(zip(t[odd].tolist(), seconds.version[odd].tolist(), strict=True))
        # The runs between gaps, oldest first; a gap whose minutes are known is bridged.
        first = 0
        for b in (np.flatnonzero(np.diff(t) != SECOND_MS) + 1).tolist():
            start, end = int(t[b - 1]) + SECOND_MS, int(t[b])
            if not self._covered(start, end):
                self._holes.append((int(t[first]), start, end))
                first = b
        since = int(t[first])
        last = int(t[-1])
        self._s_since = since
        self._s_upto = last + SECOND_MS
        self._forming = forming = floor_to(last, MINUTE_MS)
        self.latest = Values(
            float(seconds.close[-1]),
            float(high[-1]),
            float(low[-1]),
            float(seconds.volume[-1]),
            float(seconds.quote[-1]),
            float(seconds.trades[-1]),
        )
        # The run's minutes without a 1m candle, built from their seconds.
        rt = t[first:]
        minute_of = rt - rt % MINUTE_MS
        begins = np.concatenate(([0], np.flatnonzero(np.diff(minute_of)) + 1))
        ends = np.append(begins[1:], len(rt))
        opens = minute_of[begins]
        j = (opens // MINUTE_MS) % self._nm
        built = ~((self._min_open[j] == opens) & self._min_from_candle[j])
        j = j[built]
        m = self._min
        m[CLOSE, j] = seconds.close[first:][ends[built] - 1]
        m[HIGH, j] = np.maximum.reduceat(high[first:], begins)[built]
        m[LOW, j] = np.minimum.reduceat(low[first:], begins)[built]
        # Sums in second order, as the live minute adds them (to the last bit): few
        # minutes lack their 1m candle, the forming one and perhaps the one before.
        for slot, b, e in zip(
            j.tolist(), begins[built].tolist(), ends[built].tolist(), strict=True
        ):
            for row, values in ((VOLUME, seconds.volume), (QUOTE, seconds.quote),
                                (TRADES, seconds.trades)):  # fmt: skip
                m[row, slot] = np.cumsum(values[first + b : first + e])[-1]
        self._min_open[j] = opens[built]
        self._min_from_candle[j] = False
        # The run's first minute is known only if the run began on its first second.
        self._min_known[j] = opens[built] >= since
        # High and low of the forming minute before its latest second.
        j = (forming // MINUTE_MS) % self._nm
        if self._min_from_candle[j]:
            self.forming_high, self.forming_low = float(m[HIGH, j]), float(m[LOW, j])
        else:
            lo = max(first, int(np.searchsorted(t, forming)))
            hi = len(t) - 1
            if lo < hi:
                self.forming_high = float(high[lo:hi].max())
                self.forming_low = float(low[lo:hi].min())
        if self._min_known[j] and self._min_open[j] == forming:
            # `_extend_minutes_back`, vectorised: the unbroken known minutes up to forming.
            back = forming - np.arange(self._nm, dtype=np.int64) * MINUTE_MS
            slots = (back // MINUTE_MS) % self._nm
            held = (self._min_open[slots] == back) & self._min_known[slots]
            broken = np.flatnonzero(~held)
            self._m_since = int(back[broken[0] - 1] if len(broken) else back[-1])
        self._refresh_bounds()

    def _extend_minutes_back(self) -> None:
        """Move the start of the known minutes back over held, complete minutes."""
        since = self._m_since
        assert since is not None
        for _ in range(self._nm):
            before = since - MINUTE_MS
            j = (before // MINUTE_MS) % self._nm
            if self._min_open[j] != before or not self._min_known[j]:
                break
            since = before
        self._m_since = since

    # ---------------------------------------------------------------- queries

    def seconds_since(self) -> int | None:
        """Open time of the first 1s candle of the unbroken run through the latest one (it
        may be older than the ring holds), or None before any."""
        return self._s_since if self._s_upto is not None else None

    def minutes_since(self) -> int | None:
        """Open time of the first minute of the unbroken run of known minutes through the
        forming one (it may be older than the ring holds), or None while the forming
        minute is not known (the seconds began inside it)."""
        return self._m_since

    def forming_minute(self) -> int | None:
        """Open time of the latest second's minute (complete when `time_ms` is whole)."""
        return self._forming

    def minutes_from(self) -> int | None:
        """Open time of the oldest minute known through the forming one, or None."""
        return self._minutes_from

    def seconds_from(self) -> int | None:
        """Open time of the oldest second known through the latest one, or None."""
        return self._seconds_from

    def second_close(self, t: int) -> float | None:
        """Close of the 1s candle opening at `t`, if known."""
        first, upto = self._seconds_from, self._s_upto
        if first is None or upto is None or not first <= t < upto:
            return None
        i = (t // SECOND_MS) % self._ns
        if self._sec_open[i] != t:
            return None  # in a bridged gap
        return float(self._sec[_SECOND_ROW[CLOSE], i])

    def minute_close(self, minute: int) -> float | None:
        """Close of the minute opening at `minute`, if known."""
        first, forming = self._minutes_from, self._forming
        if first is None or forming is None or not first <= minute <= forming:
            return None
        return float(self._min[CLOSE, (minute // MINUTE_MS) % self._nm])

    def minutes(self, row: int, start: int, end: int, how: np.ufunc) -> float | None:
        """`how` (np.add, np.maximum, np.minimum) over a row of the minutes opening from
        `start` to `end`, both included; None unless all are known."""
        first, forming = self._minutes_from, self._forming
        if first is None or forming is None or start < first or end > forming or end < start:
            return None
        n = (end - start) // MINUTE_MS + 1
        i = (start // MINUTE_MS) % self._nm
        data = self._min[row]
        if n == 1:
            return float(data[i])
        stop = i + n
        if stop <= self._nm:
            return float(how.reduce(data[i:stop]))
        return float(how(how.reduce(data[i:]), how.reduce(data[: stop - self._nm])))

    def closes(self, start: int, end: int) -> np.ndarray:
        """Closes of the minutes opening from `start` to `end` (known ones: check
        `minutes_from` first), oldest first."""
        n = (end - start) // MINUTE_MS + 1
        i = (start // MINUTE_MS) % self._nm
        return np.take(self._min[CLOSE], range(i, i + n), mode="wrap")

    def sum_since(self, row: int, start: int) -> float | None:
        """Sum of a row (VOLUME, QUOTE or TRADES) over `[start, time_ms)` at 1 s
        resolution: the seconds up to the first whole minute, then the minutes (the
        forming one included).

        Every second of the window must have been seen, even where a 1m candle stands
        for its minute: otherwise a window starting on that minute would be known and
        one starting a second later not, and the value would come and go. A bridged gap
        is the exception (its minutes are known): the value is None only while the
        seconds before the first whole minute reach into it.
        """
        first, forming = self._seconds_from, self._forming
        if first is None or forming is None or start < first:
            return None
        whole = ceil_to(start, MINUTE_MS)
        minutes = self.minutes(row, whole, forming, np.add)
        if minutes is None:
            return None
        if start == whole:
            return minutes
        n = (whole - start) // SECOND_MS
        i = (start // SECOND_MS) % self._ns
        data = self._sec[_SECOND_ROW[row]]
        opens = self._sec_open
        stop = i + n
        # A slot holds its own second or an older one: all of them are held iff none is
        # older than the window (a bridged gap leaves older ones).
        if stop <= self._ns:
            if opens[i:stop].min() < start:
                return None
            return float(data[i:stop].sum()) + minutes
        if min(opens[i:].min(), opens[: stop - self._ns].min()) < start:
            return None
        return float(data[i:].sum() + data[: stop - self._ns].sum()) + minutes
