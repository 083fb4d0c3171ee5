"""Generated candles as integer arrays: every symbol (rows) by bucket (columns).

Prices are integer ticks and quantities integer steps, so the roll-up of 1s buckets into
1m ones (`minutes_of`) is exact, and `decimal_array` turns them into Arrow decimals
without formatting a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
