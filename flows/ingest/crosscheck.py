"""Cross-check: our 1m candles against the exchange's own closed klines.

Binance publishes every closed 1m kline on `<symbol>@kline_1m` (`k.x` true). Our candle
for the same minute must equal it on every field the exchange publishes. The check waits
a settle time after the kline arrived, because a late trade or a gap repair may still
revise our candle; it then records each mismatch (the fields that differ, ours and
theirs) for the data-quality table and counts it.

A minute is judged only if ingest was following the symbol when it began (the kline's
first trade id is one we followed from): the minute a live ingest starts in, or resumes
a symbol in, is partial on our side by construction and says nothing about our candles.

The pure logic (`CrossChecker`) is on top; at the bottom, `LiveCrossCheck` runs it
inside `flows.ingest.run.LiveIngest`: klines from the ingest's WebSocket pool, our candles
from md.candles.v1 (`flows.ingest.candle_feed.CandleFeed`), mismatches
(`flows.ingest.mismatch.Mismatch`) to ``data_quality`` every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from flows.ingest.candle_feed import CandleFeed
from flows.ingest.data_quality import DataQualityLog
from flows.ingest.mismatch import Mismatch
from schemas.candles import KLINE_FIELDS, Candle
from schemas.trades import Trade

logger = logging.getLogger(__name__)

FIELDS = KLINE_FIELDS
"""The kline fields both sides have."""


class _RawKline(msgspec.Struct):
    t: int
    T: int
    s: str
    i: str
    f: int
    o: Decimal
    c: Decimal
    h: Decimal
    l: Decimal  # noqa: E741 (Binance's field name)
    v: Decimal
    n: int
    x: bool
    q: Decimal
    V: Decimal
    Q: Decimal


class _RawKlineEvent(msgspec.Struct):
    e: str
    s: str
    k: _RawKline


class _Wrapped(msgspec.Struct):
    stream: str
    data: _RawKlineEvent


@dataclass(frozen=True, slots=True)
class ExchangeKline:
    """A closed kline as the exchange published it."""

    symbol: str
    interval: str
    open_time: int
    values: tuple[Any, ...]
    """In `FIELDS` order."""
    first_trade_id: int | None = None
    """Its first (raw) trade id; None when it has no trade or the source does not say."""


_decode_wrapped = msgspec.json.Decoder(_Wrapped).decode
_decode_bare = msgspec.json.Decoder(_RawKlineEvent).decode


def decode_closed_kline(raw: bytes | str) -> ExchangeKline | None:
    """A closed kline from a `kline_<interval>` WebSocket message, or None.

    Real payload (USDⓈ-M, combined stream)::

        {"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1723161360012,"s":"BTCUSDT",
         "k":{"t":1723161300000,"T":1723161359999,"s":"BTCUSDT","i":"1m","f":5266584991,
         "L":5266586995,"o":"61807.70","c":"61760.30","h":"61839.90","l":"61760.30",
         "v":"136.450","n":2005,"x":true,"q":"8432904.62160","V":"57.185",
         "Q":"3534417.70220","B":"0"}}}

    Returns None for an open (not yet closed) kline.

    Raises:
        msgspec.DecodeError: The message is not a kline event.
    """
    text = raw.encode() if isinstance(raw, str) else raw
    event = _decode_wrapped(text).data if text.startswith(b'{"stream"') else _decode_bare(text)
    k = event.k
    if not k.x:
        return None
    values = (k.o, k.h, k.l, k.c, k.v, k.q, k.n, k.V, k.Q)
    # A kline without trades has no first trade; whatever its `f` holds means nothing.
    return ExchangeKline(k.s, k.i, k.t, values, k.f if k.n > 0 else None)


def differences(ours: Candle, theirs: ExchangeKline) -> list[str]:
    """Fields on which our candle differs from the exchange's kline, `name: ours != theirs`."""
    out = []
    for name, value in zip(FIELDS, theirs.values, strict=True):
        mine = getattr(ours, name)
        if mine != value:
            out.append(f"{name}: {mine} != {value}")
    return out


@dataclass(frozen=True, slots=True)
class CheckCounts:
    """What the cross-check has done.

    Attributes:
        klines: Closed klines received.
        checked: Klines judged against our candle.
        mismatched: Judged klines our candle disagreed with (or had no candle for).
        missing: Of those, klines we had no candle for.
        unfollowed: Klines not judged: the minute began before we followed the symbol.
        pending: Klines waiting for their settle time.
        recorded: Mismatches written to ``data_quality``.
    """

    klines: int = 0
    checked: int = 0
    mismatched: int = 0
    missing: int = 0
    unfollowed: int = 0
    pending: int = 0
    recorded: int = 0


@dataclass
class CrossChecker:
    """Pairs our 1m candles with the exchange's closed klines and reports mismatches.

    Args:
        exchange: Whose klines these are (e.g. binance).
        market: spot or usdm.
        settle_ms: How long after a kline arrived to wait before judging it against our
            latest version of the minute: revisions may still come.
        max_pending: Bound on minutes held; the oldest are judged first when it is hit.
        followed: Where a live ingest began following each symbol, ``symbol ->
            (first raw trade id, its time in ms)``, filled by `follow`; klines of minutes
            that began earlier are not judged. None judges every kline (offline checks).
    """

    exchange: str
    market: str
    settle_ms: int = 30_000
    max_pending: int = 100_000
    followed: dict[str, tuple[int, int]] | None = None
    klines: int = 0
    checked: int = 0
    mismatched: int = 0
    missing: int = 0
    unfollowed: int = 0
    _ours: OrderedDict[tuple[str, int], Candle] = field(default_factory=OrderedDict)
    _theirs: OrderedDict[tuple[str, int], tuple[ExchangeKline, int]] = field(
        default_factory=OrderedDict
    )

    def follow(self, symbol: str, first_trade_id: int, time_ms: int) -> None:
        """Note the first trade ingest received for `symbol` (later calls are ignored).

        Args:
            symbol: The symbol.
            first_trade_id: Its raw trade id (an aggregate's first raw id).
            time_ms: Its exchange time.
        """
        if self.followed is not None and symbol not in self.followed:
            self.followed[symbol] = (first_trade_id, time_ms)

    def forget(self, symbols: Iterable[str]) -> None:
        """Stop counting `symbols` as followed (they were unsubscribed)."""
        if self.followed is not None:
            for symbol in symbols:
                self.followed.pop(symbol, None)

    def covers(self, kline: ExchangeKline) -> bool:
        """Whether we followed the symbol for the kline's whole minute."""
        if self.followed is None:
            return True
        start = self.followed.get(kline.symbol)
        if start is None:
            return False
        first_id, first_ms = start
        if kline.first_trade_id is None:
            return kline.open_time >= first_ms
        return kline.first_trade_id >= first_id

    def add_candle(self, candle: Candle) -> None:
        """Keep our latest version of a 1m candle of this exchange and market."""
        if candle.interval != "1m" or candle.exchange != self.exchange:
            return
        if candle.market != self.market:
            return
        key = (candle.symbol, candle.open_time)
        held = self._ours.get(key)
        if held is None or candle.version >= held.version:
            self._ours[key] = candle
            self._ours.move_to_end(key)
        while len(self._ours) > self.max_pending:
            self._ours.popitem(last=False)

    def add_kline(self, kline: ExchangeKline, now_ms: int) -> None:
        """Hold a closed kline until its settle time has passed."""
        if kline.interval != "1m":
            return
        self.klines += 1
        if not self.covers(kline):
            self.unfollowed += 1
            self._ours.pop((kline.symbol, kline.open_time), None)
            return
        self._theirs[(kline.symbol, kline.open_time)] = (kline, now_ms)

    def due(self, now_ms: int) -> list[Mismatch]:
        """Judge every kline whose settle time has passed; return the mismatches."""
        found: list[Mismatch] = []
        overflow = len(self._theirs) - self.max_pending
        while self._theirs:
            key, (kline, seen) = next(iter(self._theirs.items()))
            if now_ms - seen < self.settle_ms and overflow <= 0:
                break
            del self._theirs[key]
            overflow -= 1
            ours = self._ours.pop(key, None)
            self.checked += 1
            if ours is None:
                self.missing += 1
                found.append(
                    Mismatch(self.exchange, self.market, kline.symbol, kline.open_time, [], True)
                )
                continue
            fields = differences(ours, kline)
            if fields:
                found.append(
                    Mismatch(self.exchange, self.market, kline.symbol, kline.open_time, fields)
                )
        self.mismatched += len(found)
        return found

    def counts(self, recorded: int = 0) -> CheckCounts:
        """A snapshot of the counts (`recorded` comes from whoever writes the findings)."""
        return CheckCounts(
            self.klines, self.checked, self.mismatched, self.missing, self.unfollowed,
            len(self._theirs), recorded,
        )  # fmt: skip


# -- wiring: the check inside a live ingest ------------------------------------------------


class LiveCrossCheck:
    """Runs a `CrossChecker` inside a live ingest and records what it finds.

    The ingest hands it every closed kline frame (`kline`) and every trade it publishes
    (`trade`, to know from where each symbol is followed); `run` polls our candles and
    judges settled minutes every `every_s` seconds, writing each mismatch to
    ``data_quality``, until `stop`. A failed write is retried at the next round; writes
    are idempotent (a batch keeps its ``detected_at``), so a retry never doubles a row.

    Args:
        checker: The pure check (give it ``followed={}``).
        feed: Our candles.
        log: Where mismatches are recorded.
        every_s: Seconds between two rounds.
    """

    def __init__(
        self, checker: CrossChecker, feed: CandleFeed, log: DataQualityLog, every_s: float
    ) -> None:
        self.checker = checker
        self.recorded = 0
        self._feed = feed
        self._log = log
        self._every_s = every_s
        self._unwritten: list[tuple[list[Mismatch], datetime]] = []
        self._stopping = asyncio.Event()

    def kline(self, raw: str) -> None:
        """Take a ``kline_1m`` frame (open klines are ignored).

        Raises:
            msgspec.DecodeError: It is not a kline event.
        """
        kline = decode_closed_kline(raw)
        if kline is not None:
            self.checker.add_kline(kline, _monotonic_ms())

    def trade(self, trade: Trade) -> None:
        """Note a published live trade: the first of a symbol starts its coverage."""
        followed = self.checker.followed
        if followed is not None and trade.symbol in followed:
            return  # the common case, once per live trade: keep it to one lookup
        first = trade.first_trade_id
        self.checker.follow(
            trade.symbol, trade.trade_id if first is None else first, trade.time_us // 1000
        )

    def counts(self) -> CheckCounts:
        """A snapshot of the counts."""
        return self.checker.counts(self.recorded)

    async def run(self) -> None:
        """Check every `every_s` seconds until `stop`, then a last round; leave the topic.

        Minutes not settled by then stay unjudged (counted as pending).
        """
        try:
            while not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._every_s)
                await self.check()
        finally:
            self._feed.close()
        counts = self.counts()
        if self._unwritten:
            lost = sum(len(batch) for batch, _ in self._unwritten)
            logger.error("%d kline mismatch(es) counted but not recorded", lost)
        if counts.pending:
            logger.info("%d kline(s) not settled at shutdown: left unjudged", counts.pending)

    def stop(self) -> None:
        """Make `run` do its last round and return."""
        self._stopping.set()

    def close(self) -> None:
        """Leave the candle topic (`run` does on its way out). Idempotent."""
        self._feed.close()

    async def check(self) -> None:
        """One round: take the candles that arrived, judge settled minutes, record."""
        for candle in await asyncio.to_thread(self._feed.poll):
            self.checker.add_candle(candle)
        found = self.checker.due(_monotonic_ms())
        if found:
            for m in found:
                logger.warning("%s %s minute %d: %s", m.market, m.symbol, m.open_time, m.detail)
            self._unwritten.append((found, datetime.now(UTC)))
        while self._unwritten:
            batch, detected_at = self._unwritten[0]
            try:
                await self._log.kline_mismatches(batch, detected_at)
            except Exception:
                # data_quality is a record, not the data: ingest goes on, the batch waits.
                logger.exception("cannot record %d kline mismatch(es); retrying", len(batch))
                return
            self._unwritten.pop(0)
            self.recorded += len(batch)


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000
