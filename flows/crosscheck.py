"""Cross-check: our 1m candles against the exchange's own closed klines.

Binance publishes every closed 1m kline on `<symbol>@kline_1m` (`k.x` true). Our candle
for the same minute must equal it on every field the exchange publishes. The check waits
a settle time after both have arrived, because a late trade or a gap repair may still
revise our candle; it then records each mismatch (the fields that differ, ours and
theirs) for the data-quality table and counts it.

Pure logic (no sockets): `flows.live` feeds it klines from the WebSocket and candles
from md.candles.v1.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from schemas.candles import Candle

FIELDS = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
)
"""The kline fields both sides have."""


class _RawKline(msgspec.Struct):
    t: int
    T: int
    s: str
    i: str
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
    return ExchangeKline(k.s, k.i, k.t, (k.o, k.h, k.l, k.c, k.v, k.q, k.n, k.V, k.Q))


def differences(ours: Candle, theirs: ExchangeKline) -> list[str]:
    """Fields on which our candle differs from the exchange's kline, `name: ours != theirs`."""
    out = []
    for name, value in zip(FIELDS, theirs.values, strict=True):
        mine = getattr(ours, name)
        if mine != value:
            out.append(f"{name}: {mine} != {value}")
    return out


@dataclass(frozen=True, slots=True)
class Mismatch:
    """Our candle and the exchange's kline disagree after the settle time."""

    exchange: str
    market: str
    symbol: str
    open_time: int
    fields: list[str]
    missing_ours: bool = False


@dataclass
class CrossChecker:
    """Pairs our 1m candles with the exchange's closed klines and reports mismatches.

    Args:
        exchange: Whose klines these are (e.g. binance).
        market: spot or usdm.
        settle_ms: How long after both sides arrived (or after the kline arrived, if
            ours is missing) to wait before judging: revisions may still come.
        max_pending: Bound on minutes held; the oldest are judged first when it is hit.
    """

    exchange: str
    market: str
    settle_ms: int = 30_000
    max_pending: int = 100_000
    checked: int = 0
    mismatched: int = 0
    _ours: OrderedDict[tuple[str, int], Candle] = field(default_factory=OrderedDict)
    _theirs: OrderedDict[tuple[str, int], tuple[ExchangeKline, int]] = field(
        default_factory=OrderedDict
    )

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
