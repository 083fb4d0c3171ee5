"""The scanner's metric row: everything the board shows and filters on, per symbol."""

from __future__ import annotations

from typing import Literal

import msgspec

from schemas.trades import Market

Window = Literal["1m", "5m", "15m", "1h", "4h", "24h"]
"""Rolling windows of price change and quote volume, ending at the row's `time_ms`."""

WINDOWS: tuple[Window, ...] = ("1m", "5m", "15m", "1h", "4h", "24h")

WINDOW_MS: dict[str, int] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "24h": 86_400_000,
}

RVOL_WINDOWS: tuple[Window, ...] = ("1m", "5m", "15m", "1h")
"""Bar intervals of relative volume (10 previous bars of 4h or 1d need days of history)."""


class RankRow(msgspec.Struct, frozen=True, omit_defaults=False):
    """The current metrics of one symbol, as of the end of one second of exchange time.

    Metrics are floats: they rank and filter, they are not booked (candles stay exact
    Decimals). A metric is None until there is history enough to compute it (a 24h
    change needs 24 hours of candles), never a made-up value.

    Published to `md.ranks.v1` (keyed by symbol) at most once a second per symbol, only
    when it changed; snapshotted to ClickHouse `rank_snapshots`.
    """

    exchange: str
    market: Market
    symbol: str
    time_ms: int
    """End of the second these metrics are as of (exchange time, ms since the epoch)."""

    price: float
    """Close of the latest 1s candle."""

    change_pct_1m: float | None = None
    change_pct_5m: float | None = None
    change_pct_15m: float | None = None
    change_pct_1h: float | None = None
    change_pct_4h: float | None = None
    change_pct_24h: float | None = None
    """Percent change of `price` against the price one window earlier. Until the symbol's
    own 1m candles cover the day, `change_pct_24h` is `price` against the `open_price` of
    the exchange's newest 24h ticker (`schemas.tickers.Ticker24h`), if that ticker's
    `close_time_ms` is within 30 min of `time_ms` (else None); its own candles win as soon
    as they cover the day."""

    quote_volume_1m: float | None = None
    quote_volume_5m: float | None = None
    quote_volume_15m: float | None = None
    quote_volume_1h: float | None = None
    quote_volume_4h: float | None = None
    quote_volume_24h: float | None = None
    """Traded quote volume (sum of price * qty) over the window. Until the symbol's own 1m
    candles cover the day, `quote_volume_24h` is the `quote_volume` of the exchange's newest
    24h ticker, under the same 30 min bound as `change_pct_24h` (so its window is the
    exchange's 24 h ending at the ticker's `close_time_ms`)."""

    rvol_1m: float | None = None
    rvol_5m: float | None = None
    rvol_15m: float | None = None
    rvol_1h: float | None = None
    """Relative volume, TradingView's definition: the forming bar's volume over the
    average volume of the previous 10 bars of the same interval."""

    volatility_1h: float | None = None
    """Standard deviation of the last 60 one-minute log returns, in percent."""

    rsi_14: float | None = None
    """RSI(14) of closed 1m candles, Wilder's smoothing, 0..100."""

    vwap_24h: float | None = None
    vwap_distance_pct: float | None = None
    """Percent distance of `price` from the 24h volume-weighted average price."""

    high_24h: float | None = None
    low_24h: float | None = None
    from_high_pct: float | None = None
    """Percent below the 24h high (0 at the high, negative below it)."""
    from_low_pct: float | None = None
    """Percent above the 24h low (0 at the low, positive above it)."""
    new_high: bool = False
    """The latest second traded above the previous 24h high."""
    new_low: bool = False
    """The latest second traded below the previous 24h low."""

    trades_per_min: float | None = None
    """Exchange trades over the last 60 seconds."""

    bid: float | None = None
    ask: float | None = None
    spread_bps: float | None = None
    """(ask - bid) / mid in basis points, from the latest book ticker."""

    history_1s_from_ms: int | None = None
    """Open time of the oldest 1s candle of the unbroken history behind these metrics (not a
    metric: with `METRIC_WARMUP` it says when a metric still None will have a value). At
    most the rings' reach back: 1 h 1 min of 1s candles, 24 h 5 min of minutes; None
    before any candle (1m: while the seconds began inside the forming minute)."""
    history_1m_from_ms: int | None = None
    """Open time of the oldest 1m candle of that history (see `history_1s_from_ms`)."""

    @property
    def key(self) -> str:
        """The symbol's key, the same as its messages'."""
        return f"{self.exchange}:{self.market}:{self.symbol}"


HISTORY_FIELDS: tuple[str, ...] = ("history_1s_from_ms", "history_1m_from_ms")
"""Fields that describe the history behind a row rather than measure the market."""

METRICS: tuple[str, ...] = tuple(
    name
    for name in RankRow.__struct_fields__
    if name not in ("exchange", "market", "symbol", "time_ms", *HISTORY_FIELDS)
)
"""Every metric column of the board, in display order."""

Resolution = Literal["1s", "1m"]

_MINUTE_MS = 60_000
_SECOND_MS = 1_000


def _warmups() -> dict[str, tuple[Resolution, int]]:
    needs: dict[str, tuple[Resolution, int]] = {}
    for window in WINDOWS:
        span = WINDOW_MS[window]
        if span <= 3_600_000:
            needs[f"change_pct_{window}"] = ("1s", span + _SECOND_MS)
            needs[f"quote_volume_{window}"] = ("1s", span)
        else:
            needs[f"change_pct_{window}"] = ("1m", span + _MINUTE_MS)
            needs[f"quote_volume_{window}"] = ("1m", span)
    for window in RVOL_WINDOWS:
        # Ten whole bars before the forming one, which opens with its first second.
        needs[f"rvol_{window}"] = ("1m", 10 * WINDOW_MS[window] + _MINUTE_MS)
    needs["volatility_1h"] = ("1m", 61 * _MINUTE_MS)
    needs["rsi_14"] = ("1m", 15 * _MINUTE_MS)
    for name in ("vwap_24h", "vwap_distance_pct", "high_24h", "low_24h"):
        needs[name] = ("1m", WINDOW_MS["24h"])
    needs["from_high_pct"] = needs["from_low_pct"] = ("1m", WINDOW_MS["24h"])
    needs["trades_per_min"] = ("1s", _MINUTE_MS)
    return needs


METRIC_WARMUP: dict[str, tuple[Resolution, int]] = _warmups()
"""Per metric that needs history: the resolution of the candles it reads and how much
unbroken history (ms) of them it needs before it has a value. A metric still None is
expected at ``history_<resolution>_from_ms + span``: exactly (at 1 s resolution for "1s",
within the minute before for "1m"), tested against `flows.signals.metrics` in
tests/unit/flows/signals/test_metric_warmup.py. Relative volume counts whole bars of its
interval: its span holds from a bar boundary; a history starting inside a bar of i waits
for the next boundary, i.e. add ``ceil(from / i) * i - from``. Metrics absent here need
none (``price``; ``new_high`` / ``new_low`` are False without an hour of history) or come
from book tickers (``bid``, ``ask``, ``spread_bps``). ``quote_volume_24h`` and
``change_pct_24h`` may have a value sooner, from the exchange's 24h ticker."""

_encoder = msgspec.json.Encoder()
encode_rank = _encoder.encode
"""Encode a row to its wire form (JSON)."""


def rank_decoder() -> msgspec.json.Decoder[RankRow]:
    """A decoder from the wire form."""
    return msgspec.json.Decoder(RankRow)
