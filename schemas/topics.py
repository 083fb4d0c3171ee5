"""Kafka topic names, keys and control markers: the contract between stages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

TRADES = "md.trades.v1"
"""Normalised trades (`schemas.trades.Trade`), keyed by `exchange:market:symbol`."""

QUOTES = "md.quotes.v1"
"""Best bid/offer updates (`schemas.quotes.Quote`), keyed like the trades."""

CANDLES = "md.candles.v1"
"""1s and 1m candles (`schemas.candles.Candle`), keyed like the trades."""

SIGNALS = "md.signals.v1"
"""Signal occurrences (`schemas.signals.Signal`), keyed like the trades."""

RANKS = "md.ranks.v1"
"""Scanner metric rows (`schemas.ranks.RankRow`), keyed like the trades; a symbol's row
is published at most once a second, and only when it changed."""

TICKERS = "md.tickers.v1"
"""The exchange's 24h statistics (`schemas.tickers.Ticker24h`), keyed like the trades:
published once per symbol when live ingest starts on a store without a day of history."""

MARKS = "md.marks.v1"
"""Mark prices and funding estimates of perpetuals (`schemas.perps.MarkPrice`), keyed like
the trades: about one per symbol per second."""

LIQUIDATIONS = "md.liquidations.v1"
"""Liquidation orders (`schemas.perps.Liquidation`), keyed like the trades. Binance samples
them (at most one per symbol per second), so they undercount."""

OPEN_INTEREST = "md.open_interest.v1"
"""Open-interest samples (`schemas.perps.OpenInterest`), keyed like the trades."""

FUNDING = "md.funding.v1"
"""Settled funding events (`schemas.perps.FundingEvent`), keyed like the trades."""

DEPTH = "md.depth.v1"
"""Partial order books (`schemas.depth.BookDepth`), keyed like the trades: only for the
symbols some consumer watches (`DEPTH_WATCH`)."""

DEPTH_WATCH = "md.depth_watch.v1"
"""Which symbols' depth is needed (`schemas.depth.DepthWatch`), keyed by
`exchange:market`; ingest subscribes the depth streams of exactly these."""

ORDERS = "tr.orders.v1"
"""Trading commands (`schemas.trading.Command`), keyed by account id."""

EVENTS = "tr.events.v1"
"""Account events (`schemas.trading.AccountEvent`), keyed by account id: the log an
account's state is a fold of."""

ACCOUNTS = "tr.accounts.v1"
"""Account views (`schemas.trading.AccountView`), keyed by account id: balances,
positions at the mark and open orders, not part of the fold."""

DEADLETTER = "md.deadletter.v1"
"""Messages a stage rejected (`schemas.deadletter.DeadLetter`), keyed by stage."""

ALL = (
    TRADES, QUOTES, CANDLES, SIGNALS, RANKS, TICKERS,
    MARKS, LIQUIDATIONS, OPEN_INTEREST, FUNDING, DEPTH, DEPTH_WATCH,
    ORDERS, EVENTS, ACCOUNTS, DEADLETTER,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PerpTopics:
    """The topics of perpetuals data, by kind (the defaults above unless a test renames them)."""

    marks: str = MARKS
    liquidations: str = LIQUIDATIONS
    open_interest: str = OPEN_INTEREST
    funding: str = FUNDING


@dataclass(frozen=True, slots=True)
class TradingTopics:
    """The topics of trading, by kind (the defaults above unless a test renames them)."""

    orders: str = ORDERS
    events: str = EVENTS
    accounts: str = ACCOUNTS


CONTROL_HEADER = "tickscan-control"
"""Header naming a control record (not data). Its value says which: see `END_OF_RUN`."""

END_OF_RUN = b"end"
"""Control value: the producer of a finite run (a replay) wrote all its records to this
partition before this one. The record's value is the run id; a consumer that follows
that run stops the partition here. Tansu's high watermark can lag the true end of a
partition, so a finite run announces its end in-band instead of relying on it."""


def is_control(headers: Sequence[tuple[str, bytes | None]] | None) -> bool:
    """Whether a record with these headers is a control record (not data).

    Args:
        headers: The record's headers, as `confluent_kafka.Message.headers()` gives them.
    """
    return bool(headers) and any(name == CONTROL_HEADER for name, _ in headers or ())


def symbol_key(exchange: str, market: str, symbol: str) -> str:
    """The key of every per-symbol message: `exchange:market:symbol`."""
    return f"{exchange}:{market}:{symbol}"
