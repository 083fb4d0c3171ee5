"""Generated candles as integer arrays: every symbol (rows) by bucket (columns).

Prices are integer ticks and quantities integer steps, so the roll-up of 1s buckets into
1m ones (`minutes_of`) is exact, and `decimal_array` turns them into Arrow decimals
without formatting a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa

MINUTE_MS = 60_000
I64 = np.int64
Array = npt.NDArray[Any]


@dataclass
class Buckets:
    """Candles of every symbol (rows) and bucket (columns), in integer ticks and steps."""

    times: Array
    step_ms: int
    emit: Array
    count: Array
    open: Array
    high: Array
    low: Array
    close: Array
    volume: Array
    quote: Array
    buy_volume: Array
    buy_quote: Array
    first_id: Array
    last_id: Array


class Prices(NamedTuple):
    """Open, high, low and close of every bucket with trades, in ticks."""

    open: Array
    high: Array
    low: Array
    close: Array


class Sides(NamedTuple):
    """Taker-buy volume and quote, and taker-sell quote, of every bucket."""

    buy_volume: Array
    buy_quote: Array
    sell_quote: Array


def taker_sides(
    count: Array,
    volume: Array,
    share: Array,
    prices: Prices,
    vwaps: tuple[Array, Array],
    small: tuple[Array, Array, Array],
) -> Sides:
    """Split each bucket's volume into taker buys and sells, with their quote volumes.

    Three trades or more: a `share` of the volume is bought at about the buy VWAP and
    the rest sold at about the sell VWAP (`vwaps`), each quote kept within the bucket's
    low and high. One trade is exact: all at the close, on the close's side. Two are
    exact too: `small` holds whether the open and the close trade were buys and the
    open trade's quantity.

    Args:
        count: Trades per bucket.
        volume: Quantity per bucket, in steps (at least one per trade).
        share: Share of the volume bought, for three trades or more.
        prices: The buckets' prices, in ticks.
        vwaps: Buy and sell VWAPs, in ticks (floats).
        small: (open was a buy, close was a buy, open trade's steps) for one or two trades.

    Returns:
        The volumes by side.
    """
    low, high, open_, close = prices.low, prices.high, prices.open, prices.close
    buy_open, buy_close, split = small
    buy_volume = np.rint(volume * share).astype(I64)
    buy_quote = np.clip(
        np.rint(buy_volume * np.clip(vwaps[0], low, high)).astype(I64),
        buy_volume * low,
        buy_volume * high,
    )
    sell_volume = volume - buy_volume
    sell_quote = np.clip(
        np.rint(sell_volume * np.clip(vwaps[1], low, high)).astype(I64),
        sell_volume * low,
        sell_volume * high,
    )
    one, two = count == 1, count == 2
    buy_volume = np.where(one, np.where(buy_close, volume, 0), buy_volume)
    buy_quote = np.where(one, np.where(buy_close, volume * close, 0), buy_quote)
    sell_quote = np.where(one, np.where(buy_close, 0, volume * close), sell_quote)
    q_open, q_close = split, volume - split
    two_buy = np.where(buy_open, q_open, 0) + np.where(buy_close, q_close, 0)
    two_buy_quote = np.where(buy_open, q_open * open_, 0) + np.where(buy_close, q_close * close, 0)
    return Sides(
        np.where(two, two_buy, buy_volume),
        np.where(two, two_buy_quote, buy_quote),
        np.where(two, q_open * open_ + q_close * close - two_buy_quote, sell_quote),
    )


def settle(
    times: Array,
    step_ms: int,
    active: Array,
    count: Array,
    prices: Prices,
    volume: Array,
    sides: Sides,
    last_close: Array,
    next_id: Array,
) -> Buckets:
    """The buckets, with trade ids and the flat candles filled in.

    Trade ids run consecutively across buckets from each symbol's `next_id`; a bucket
    without trades carries the close before it (`last_close` before the first, -1 for
    none: such a bucket, before a symbol's first trade, is not emitted).

    Args:
        times: Each bucket's open time, ms.
        step_ms: The buckets' length, ms.
        active: Where each symbol's history has begun.
        count: Trades per bucket (0 where not active).
        prices: Prices of the buckets with trades, in ticks.
        volume: Quantity per bucket, in steps.
        sides: Its split by taker side.
        last_close: Each symbol's close before the first bucket, in ticks (-1: none).
        next_id: Each symbol's next trade id.

    Returns:
        The buckets.
    """
    b = count.shape[1]
    ids_to = next_id[:, None] + np.cumsum(count, axis=1)
    real = count > 0
    last_real = np.maximum.accumulate(np.where(real, np.arange(b), -1), axis=1)
    carried = np.take_along_axis(prices.close, np.maximum(last_real, 0), axis=1)
    close_all = np.where(last_real >= 0, carried, last_close[:, None])
    return Buckets(
        times=times,
        step_ms=step_ms,
        emit=active & (close_all > 0),
        count=count,
        open=np.where(real, prices.open, close_all),
        high=np.where(real, prices.high, close_all),
        low=np.where(real, prices.low, close_all),
        close=close_all,
        volume=np.where(real, volume, 0),
        quote=np.where(real, sides.buy_quote + sides.sell_quote, 0),
        buy_volume=np.where(real, sides.buy_volume, 0),
        buy_quote=np.where(real, sides.buy_quote, 0),
        first_id=ids_to - count,
        last_id=ids_to - 1,
    )


def minutes_of(seconds: Buckets) -> Buckets:
    """Roll 1s buckets (whole minutes of them) up into 1m buckets, as the flow does.

    Only seconds with trades count; a minute without any is flat at the close its last
    second carries.
    """
    n, b = seconds.count.shape
    m = b // 60

    def fold(a: Array) -> Array:
        return a.reshape(n, m, 60)

    count = fold(seconds.count)
    real = count > 0
    any_real = real.any(axis=2)
    sec = np.arange(60)
    first_real = np.where(real, sec, 60).min(axis=2)
    last_real = np.where(real, sec, -1).max(axis=2)

    def pick(a: Array, at: Array) -> Array:
        return np.take_along_axis(fold(a), np.clip(at, 0, 59)[:, :, None], axis=2)[:, :, 0]

    close = fold(seconds.close)[:, :, -1]
    big = np.iinfo(I64).max
    return Buckets(
        times=seconds.times[::60],
        step_ms=MINUTE_MS,
        emit=fold(seconds.emit)[:, :, 0],
        count=count.sum(axis=2),
        open=np.where(any_real, pick(seconds.open, first_real), close),
        high=np.where(any_real, np.where(real, fold(seconds.high), 0).max(axis=2), close),
        low=np.where(any_real, np.where(real, fold(seconds.low), big).min(axis=2), close),
        close=close,
        volume=fold(seconds.volume).sum(axis=2),
        quote=fold(seconds.quote).sum(axis=2),
        buy_volume=fold(seconds.buy_volume).sum(axis=2),
        buy_quote=fold(seconds.buy_quote).sum(axis=2),
        first_id=pick(seconds.first_id, first_real),
        last_id=pick(seconds.last_id, last_real),
    )


_LOW32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)


def decimal_array(units: Array, shift: Array, scale: int) -> pa.Array:
    """Non-negative integers `units` times 10**`shift` as an Arrow decimal128(38, scale).

    The product can pass 2**63 (a meme coin's volume in 1e-8 steps), so it is computed
    in 128 bits from 32-bit halves: exact, vectorised.
    """
    x = units.astype(np.uint64)
    m = (10 ** shift.astype(np.uint64)).astype(np.uint64)
    xh, xl = x >> _SHIFT32, x & _LOW32
    mh, ml = m >> _SHIFT32, m & _LOW32
    low = xl * ml
    middle = xh * ml + xl * mh + (low >> _SHIFT32)  # < 2**64: m < 2**54, x < 2**63
    lo = (low & _LOW32) | ((middle & _LOW32) << _SHIFT32)
    hi = xh * mh + (middle >> _SHIFT32)
    words = np.empty((len(x), 2), dtype=np.uint64)
    words[:, 0], words[:, 1] = lo, hi
    return pa.Array.from_buffers(
        pa.decimal128(38, scale), len(x), [None, pa.py_buffer(words.tobytes())]
    )
