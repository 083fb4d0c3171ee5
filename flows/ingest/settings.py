"""The live ingest's settings: how it uses Binance's WebSockets and REST API (`ingest`)."""

from __future__ import annotations

from pydantic import (
    BaseModel,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)

from runtime.settings import RuntimeSettings


class IngestSettings(BaseModel):
    """How live ingestion uses the exchange's WebSockets and REST API.

    Times are seconds; tests shorten them. Defaults are for production against Binance.
    """

    max_streams: int | None = Field(default=None, ge=1, le=1024)
    """Streams per WebSocket connection; None: 200 on spot, 100 on USDⓈ-M (Binance: 1024)."""

    max_connection_age_s: PositiveFloat = 23 * 3600.0
    """Rotate each connection before this age (Binance disconnects at 24 h)."""

    rotation_overlap_s: NonNegativeFloat = 1.0
    """How long the old connection keeps delivering once its replacement receives."""

    open_timeout_s: PositiveFloat = 10.0
    """Connecting, a subscription's reply, and a replacement's first message."""

    stall_s: PositiveFloat = 60.0
    """A connection silent (not even a ping) this long is replaced."""

    behind_s: PositiveFloat = 30.0
    """A socket blocked this long on a full queue is dropped; gap repair fills in."""

    queue_size: PositiveInt = 10_000
    """Messages buffered between the sockets and the publisher."""

    backoff_base_s: PositiveFloat = 0.5
    """First reconnect delay cap (full jitter); doubles per failure."""

    backoff_max_s: PositiveFloat = 30.0
    """Largest reconnect delay cap."""

    refresh_s: PositiveFloat = 600.0
    """How often the symbol universe is re-read from exchangeInfo."""

    depth_watch_poll_s: PositiveFloat = 0.5
    """How often ``md.depth_watch.v1`` is read for the symbols whose 20-level depth
    (``@depth20@100ms``) to follow."""

    gap_grace_s: NonNegativeFloat = 2.0
    """How long a hole in a symbol's trade ids may wait to be filled by an overlapping
    connection before it is repaired from REST."""

    repair_concurrency: PositiveInt = 4
    """Gap repairs running at once (REST requests share one weight budget)."""

    repair_attempts: PositiveInt = 3
    """Attempts at a repair before the gap is recorded unrepairable."""

    status_every_s: PositiveFloat = 30.0
    """How often the live status is logged."""

    max_restart_gap_trades: NonNegativeInt = 50_000
    """Largest restart gap (trades printed while ingest was down) fetched from REST; a
    larger one is recorded unrepairable, with the `tickscan backfill` to run."""

    max_restart_gap_s: NonNegativeFloat = 300.0
    """Oldest restart gap fetched from REST: the candle flow's revision horizon, before
    which repaired trades could only be dead-lettered as too late."""

    resume_scan_records: NonNegativeInt = 200_000
    """Records read back from the end of each trades partition at start, to find where
    each symbol left off (ClickHouse `trades` covers the symbols not found)."""

    stale_after_s: PositiveFloat = 60.0
    """A symbol whose bookTicker (and trade) streams are silent this long, while other
    streams on its connection flow, is recorded stale in data_quality."""

    release_memory_every_s: PositiveFloat = 300.0
    """How often cyclic garbage is collected and free heap pages handed back to the
    system (`runtime.process.release_memory`), so RSS stays flat over days."""

    crosscheck_settle_s: NonNegativeFloat = 30.0
    """Cross-check: how long after a closed kline (and our candle) arrived to wait before
    judging, since a late trade or a gap repair may still revise our candle."""

    crosscheck_every_s: PositiveFloat = 5.0
    """Cross-check: how often our candles are read, minutes judged and mismatches recorded."""

    history_h: float = Field(default=24.0, ge=0, le=24 * 30)
    """At start, fetch the exchange's 1m klines of this many hours back for the minutes
    candles_1m lacks (and the 24h tickers), so the board is complete at once; 0: none."""

    history_concurrency: PositiveInt = 8
    """History: symbols fetched at once (they share the REST weight budget)."""

    history_reserve: float = Field(default=0.25, ge=0, lt=1)
    """History: share of each minute's REST weight cap it leaves to gap repair."""

    history_progress_every_s: PositiveFloat = 10.0
    """History: how often progress is logged and written for `/api/v1/health`."""

    mark_missing_after_s: PositiveFloat = 30.0
    """USDⓈ-M: a followed perpetual whose ``@markPrice@1s`` (one message a second) is
    silent this long while its connection flows is recorded ``no_mark_price`` in
    data_quality (Binance: a subscription on the wrong path fails silently)."""

    open_interest_every_s: PositiveFloat = 60.0
    """USDⓈ-M: each followed perpetual's open interest is polled once per this many
    seconds, the polls spread evenly over it; 0 is not allowed (see `open_interest`)."""

    open_interest_share: float = Field(default=0.25, gt=0, le=0.75)
    """USDⓈ-M: most share of each minute's REST weight cap the open-interest polls may
    use; with more perpetuals than that pays for at `open_interest_every_s`, the round
    is stretched (at weight 1 a poll: 480 perpetuals a minute of USDⓈ-M's 1920 cap)."""

    open_interest: bool = True
    """USDⓈ-M: poll open interest at all (gap repair and history then have the budget)."""


class LiveIngestSettings(RuntimeSettings):
    """What the live ingest reads: the plumbing (`kafka.bootstrap` required) and `ingest`.

    E.g. `TICKSCAN_INGEST__MAX_STREAMS=50`, `TICKSCAN_INGEST__HISTORY_H=0`.
    """

    ingest: IngestSettings = Field(default_factory=IngestSettings)
