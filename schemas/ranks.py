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

    # Perpetuals (USD-M): from md.marks.v1, md.open_interest.v1, md.liquidations.v1 and
    # md.funding.v1 (`flows.signals.perps`); None on spot rows and until there is data.
    mark_price: float | None = None
    """Mark price of the newest mark-price update: what positions are valued at."""
    index_price: float | None = None
    """Index price of the newest mark-price update: the spot index the mark tracks."""
    basis_bps: float | None = None
    """(mark_price - index_price) / index_price in basis points."""
    premium_bps: float | None = None
    """Perp premium over spot: (this perpetual's `price` / the same exchange's spot pair's
    `price` - 1) in basis points, both the latest trade prices. The two are different
    symbols' rows (different keys and partitions), so the API's board computes it where
    it holds both (`api.live.board.Board`, and the historical scan from both snapshots);
    None without the spot pair, and never set by the signals flow (see `DERIVED_FIELDS`)."""
    funding_rate_pct: float | None = None
    """The current funding-rate estimate of the newest mark-price update, in percent per
    funding interval (Binance's 0.0001 is 0.01)."""
    funding_last_pct: float | None = None
    """The rate of the last settled funding time, in percent."""
    funding_annual_pct: float | None = None
    """`funding_rate_pct` x fundings per year: 365 x 24 h over the symbol's funding
    interval (next funding time - last settled funding time when that is a whole number of
    hours up to 8, else Binance's standard 8 h)."""
    next_funding_s: float | None = None
    """Seconds from `time_ms` to the next funding time (a countdown as of the row)."""
    open_interest: float | None = None
    """Open interest of the newest sample, in contracts (base asset)."""
    open_interest_value: float | None = None
    """`open_interest` x `mark_price`, in the quote asset (None without a mark)."""
    oi_change_pct_5m: float | None = None
    oi_change_pct_1h: float | None = None
    oi_change_pct_4h: float | None = None
    oi_change_pct_24h: float | None = None
    """Percent change of the newest open-interest sample against the newest sample at or
    before its own time minus the window, if that one is at most `OI_REF_SLACK_MS` older
    than the window's start (else None: the samples have a gap there)."""
    liq_long_5m: float | None = None
    liq_long_1h: float | None = None
    liq_long_24h: float | None = None
    liq_short_5m: float | None = None
    liq_short_1h: float | None = None
    liq_short_24h: float | None = None
    """Quote volume (filled qty x average price) of the liquidations of longs (orders
    that sell) / shorts (orders that buy) with a time in ``[end - w, end)``, where end is
    `time_ms`, or the newest perpetuals record's time when that is later. Binance's
    stream UNDERCOUNTS: it pushes at most one liquidation per symbol per second (the
    latest of that second), so these are lower bounds; 0 once any perpetuals data of the
    symbol was read."""

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

DERIVED_FIELDS: tuple[str, ...] = ("premium_bps",)
"""Metrics of one symbol's row that need another symbol's (the spot pair's): the API's
board fills them; the signals flow leaves them None and `rank_snapshots` does not store
them (the historical scan computes them from both snapshots)."""

OI_REF_SLACK_MS = 300_000
"""How much older than its window's start an open-interest reference sample may be (the
exchange's history has one sample per 5 min; the live poll about one a minute)."""

PERP_METRICS: tuple[str, ...] = (
    "mark_price",
    "index_price",
    "basis_bps",
    "funding_rate_pct",
    "funding_last_pct",
    "funding_annual_pct",
    "next_funding_s",
    "open_interest",
    "open_interest_value",
    "oi_change_pct_5m",
    "oi_change_pct_1h",
    "oi_change_pct_4h",
    "oi_change_pct_24h",
    "liq_long_5m",
    "liq_long_1h",
    "liq_long_24h",
    "liq_short_5m",
    "liq_short_1h",
    "liq_short_24h",
)
"""The metrics the signals flow computes from a perpetual's own perpetuals data, in
`RankRow` order (`flows.signals.perps.PerpState.values` yields them so)."""

OI_WINDOWS: tuple[Window, ...] = ("5m", "1h", "4h", "24h")
LIQ_WINDOWS: tuple[Window, ...] = ("5m", "1h", "24h")

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
from book tickers (``bid``, ``ask``, ``spread_bps``) or perpetuals data
(`PERP_METRICS`, `DERIVED_FIELDS`). ``quote_volume_24h`` and
``change_pct_24h`` may have a value sooner, from the exchange's 24h ticker."""

_encoder = msgspec.json.Encoder()
encode_rank = _encoder.encode
"""Encode a row to its wire form (JSON)."""


def rank_decoder() -> msgspec.json.Decoder[RankRow]:
    """A decoder from the wire form."""
    return msgspec.json.Decoder(RankRow)
