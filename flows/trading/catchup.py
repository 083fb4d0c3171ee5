"""The market the paper engine missed while it was down, replayed in market time at its start.

On Binance the exchange keeps matching while a trader's client is down; the paper venue
does too. At start, after the accounts are restored, the engine replays the trades and
marks it missed, from its last market time up to where live reading begins, for the
symbols that matter: those of open orders (trades and, on USDⓈ-M, marks: stops may
trigger on either) and of held perpetuals (marks: funding, mark stops, liquidation). Of
the trades, only those at prices that can fill or trigger an open order (`Band`).

- Where it starts: the engine's market time, `paper_clock` (written once a market-time
  minute and at stop, after the events caused by then are stored) or the log's latest
  event time, whichever is later. The log alone is not enough: it moves only when some
  account has an event, so an engine that ran quiet for hours would replay those hours
  again, or skip the catch-up as too old. Older than `PaperSettings.catchup_max_h`, the
  catch-up is skipped with a warning (a book that old is not one to fill against).
- Where it ends: the offsets each trades and marks partition ended at when the engine
  started; live reading begins at exactly those offsets, so nothing is missed or read
  twice.
- The source: the topics, from the offset of the window's start (`offsets_for_times`),
  when every partition still holds that time; else (the embedded broker keeps nothing
  over a restart, Kafka's retention is finite) ClickHouse, the durable record
  (``trades``, ``marks_1s``), up to the first record the topics hold. A record both hold
  is applied once (trades by id, marks by time); `Replayed` keeps a live record that
  ClickHouse already gave from being applied again.
- No quote or depth is replayed: no book is fresh during the catch-up, so resting limits
  fill only on trades through or at their price (the live rule), and a stop that
  triggers becomes a market order that waits for a fresh book, as live, never filling at
  a stale price. Each funding time that passed is paid once, at the mark and rate of the
  mark before it (marks carry both, and the next funding time).

The replay is a pure function of the restored accounts and the records (sorted by time,
then kind, symbol and id), so a crash during it and another start give the same events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any, TypeVar

from flows.trading import rules
from flows.trading.backlog import MARKS, TRADES, Record, Stored, read_topic
from flows.trading.engine import PaperEngine
from flows.trading.orders import is_waiting_stop
from flows.trading.state import AccountState
from schemas.perps import MarkPrice, mark_decoder
from schemas.topics import symbol_key
from schemas.trades import Trade, trade_decoder
from schemas.trading import AccountEvent, Order

logger = logging.getLogger(__name__)

HOUR_US = 3_600_000_000

R = TypeVar("R", Trade, MarkPrice)


@dataclass(frozen=True, slots=True)
class Band:
    """The trade prices that can touch a symbol's open orders: at or below `below` (buy
    limits, stops that trigger on a fall) or at or above `above` (sell limits, stops that
    trigger on a rise); None: no order on that side. A trade between the two touches none
    of them (it would only move market time, as the next record does), so it is not
    replayed: 24 h of a busy symbol's trades would not fit in memory (about 500 bytes
    each, decoded). The catch-up places no order, so the band it starts with holds
    throughout (a fill only takes orders away; a stop-limit's limit side is in it from the
    start)."""

    below: Decimal | None = None
    above: Decimal | None = None

    def holds(self, price: Decimal) -> bool:
        """Whether a trade at `price` may touch an order."""
        return (self.below is not None and price <= self.below) or (
            self.above is not None and price >= self.above
        )

    def reaching(self, price: Decimal, *, falling: bool) -> Band:
        """This band, also holding the prices at or below (`falling`) or at or above
        `price`."""
        if falling:
            below = price if self.below is None else max(self.below, price)
            return Band(below, self.above)
        above = price if self.above is None else min(self.above, price)
        return Band(self.below, above)


def order_band(band: Band, order: Order) -> Band:
    """`band` widened to the trades that can fill or trigger `order`: a limit price (of a
    limit or stop-limit) on its side, and a stop on the last price the way it triggers."""
    request = order.request
    if order.price is not None and request.type in ("limit", "stop_limit"):
        band = band.reaching(order.price, falling=request.side == "BUY")
    if is_waiting_stop(order) and order.stop_price is not None and request.trigger == "last":
        stop = order.stop_price
        # A stop that triggers above its stop price triggers on a rise.
        rising = rules.stop_reached(request.type, request.side, stop, stop + 1)
        band = band.reaching(stop, falling=not rising)
    return band


@dataclass(frozen=True, slots=True)
class Window:
    """What a start replays: records after `since_us` of the symbols keyed in `trades`
    (those in its `Band`) and `marks`, up to where live reading begins (`until_us`: the
    start's wall time, the bound of a ClickHouse read when the topics hold nothing to
    bound it)."""

    since_us: int
    until_us: int
    trades: Mapping[str, Band]
    marks: frozenset[str]

    def keeps(self, record: Record) -> bool:
        """Whether a record of the window's symbols is replayed (a trade in its band)."""
        return not isinstance(record, Trade) or self.trades[record.key].holds(record.price)


def needs(accounts: Iterable[AccountState]) -> tuple[dict[str, Band], frozenset[str]]:
    """The symbols whose missed trades, and whose missed marks, matter to `accounts`: the
    trades (in each symbol's `Band`) of every open order's symbol; the marks of USDⓈ-M
    open orders' and held positions' symbols. Keyed by `schemas.topics.symbol_key`."""
    trades: dict[str, Band] = {}
    marks: set[str] = set()
    for state in accounts:
        for order in state.orders.values():
            key = symbol_key(state.exchange, state.market, order.request.symbol)
            trades[key] = order_band(trades.get(key, Band()), order)
            if state.market == "usdm":
                marks.add(key)
        if state.market == "usdm":
            marks.update(
                symbol_key(state.exchange, "usdm", symbol)
                for symbol, position in state.positions.items()
                if position.qty
            )
    return trades, frozenset(marks)


def plan(
    accounts: Iterable[AccountState], since_us: int, now_us: int, max_h: float
) -> Window | None:
    """The window a start replays, or None: no market time yet (nothing ever ran), no
    symbol matters, or the market time is older than `max_h` hours (warned).

    Args:
        accounts: The restored accounts.
        since_us: The engine's last market time (`flows.trading.backlog.start_time`).
        now_us: Wall time now: where live reading begins.
        max_h: `PaperSettings.catchup_max_h`.
    """
    if since_us <= 0 or since_us >= now_us:
        return None
    trades, marks = needs(accounts)
    if not trades and not marks:
        return None
    if now_us - since_us > max_h * HOUR_US:
        logger.warning(
            "paper engine: the market was last seen %.1f h ago, more than catchup_max_h "
            "(%g h): what traded since is not replayed, resting orders wait for the live "
            "market",
            (now_us - since_us) / HOUR_US,
            max_h,
        )
        return None
    return Window(since_us, now_us, trades, marks)


def _identity(record: Record) -> tuple[int, int, str, int]:
    if isinstance(record, Trade):
        return (record.time_us, 0, record.key, record.trade_id)
    return (record.time_us, 1, record.key, 0)


def merge(*sources: Iterable[Record]) -> list[Record]:
    """The records of every source in market time order (trades before marks of the
    same time, then by symbol and trade id), each once."""
    unique = {_identity(r): r for source in sources for r in source}
    return [unique[k] for k in sorted(unique)]


@dataclass
class Replayed:
    """The last trade id and mark time replayed per symbol key: a live record at or
    before them was applied already (a ClickHouse read can reach past the offset live
    reading begins at) and is dropped."""

    trade_ids: dict[str, int] = field(default_factory=dict)
    mark_times: dict[str, int] = field(default_factory=dict)

    def note(self, records: Iterable[Record]) -> None:
        """Remember what was replayed."""
        for record in records:
            if isinstance(record, Trade):
                self.trade_ids[record.key] = record.trade_id
            else:
                self.mark_times[record.key] = record.time_us

    def trades(
        self, feed: Callable[[Trade], list[AccountEvent]]
    ) -> Callable[[Trade], list[AccountEvent]]:
        """`feed`, skipping the trades replayed already."""
        return _unseen(feed, self.trade_ids, attrgetter("trade_id"))

    def marks(
        self, feed: Callable[[MarkPrice], list[AccountEvent]]
    ) -> Callable[[MarkPrice], list[AccountEvent]]:
        """`feed`, skipping the marks replayed already."""
        return _unseen(feed, self.mark_times, attrgetter("time_us"))


def _unseen(
    feed: Callable[[R], list[AccountEvent]], last: dict[str, int], place: Callable[[R], int]
) -> Callable[[R], list[AccountEvent]]:
    """`feed`, dropping a record placed (by trade id or time) at or before the last one of
    its symbol replayed; `feed` itself when nothing was replayed."""
    if not last:
        return feed

    def fresh(record: R) -> list[AccountEvent]:
        seen = last.get(record.key)
        if seen is not None and place(record) <= seen:
            return []
        return feed(record)

    return fresh


def replay(engine: PaperEngine, records: Iterable[Record]) -> list[AccountEvent]:
    """Apply the records to the engine in the order given; the events they caused."""
    out: list[AccountEvent] = []
    for record in records:
        if isinstance(record, Trade):
            out.extend(engine.trade(record))
        else:
            out.extend(engine.mark(record))
    return out


@dataclass
class CatchUp:
    """A start's catch-up: what it read, from where, and where live reading begins.

    Attributes:
        window: What was replayed.
        records: The records, merged in market time order.
        ends: (topic, partition) → the offset live reading begins at.
        from_store: Records that came from ClickHouse.
        replayed: The guard for live records ClickHouse gave already.
        events: The events the replay caused (`catch_up` fills them in).
    """

    window: Window
    records: list[Record]
    ends: dict[tuple[str, int], int]
    from_store: int
    replayed: Replayed
    events: list[AccountEvent] = field(default_factory=list)


def gather(
    window: Window,
    *,
    consumer: dict[str, Any],
    clickhouse: Any,
    database: str,
    trades_topic: str,
    marks_topic: str,
) -> CatchUp:
    """Read the window's records from the topics and, where they no longer hold it, from
    ClickHouse.

    Args:
        window: What to replay.
        consumer: confluent-kafka consumer configuration.
        clickhouse: A clickhouse-connect client.
        database: Database holding ``trades`` and ``marks_1s``.
        trades_topic: The trades topic.
        marks_topic: The marks topic.
    """
    sources: list[list[Record]] = []
    ends: dict[tuple[str, int], int] = {}
    from_store = 0
    plans: list[tuple[str, frozenset[str], Callable[[bytes], Any], Stored]] = [
        (trades_topic, frozenset(window.trades), trade_decoder().decode, TRADES),
        (marks_topic, window.marks, mark_decoder().decode, MARKS),
    ]
    since_us, until_us, keeps = window.since_us, window.until_us, window.keeps
    for topic, keys, decode, table in plans:
        read = read_topic(consumer, topic, keys, decode, since_us, until_us, keeps)
        ends.update(((topic, p), offset) for p, offset in read.ends.items())
        sources.append(read.records)
        if keys and read.store_until_us is not None:
            stored = table.load(clickhouse, database, keys, since_us, read.store_until_us, keeps)
            from_store += len(stored)
            sources.append(stored)
    records = merge(*sources)
    replayed = Replayed()
    replayed.note(records)
    return CatchUp(window, records, ends, from_store, replayed)


def catch_up(
    engine: PaperEngine,
    accounts: Iterable[str],
    since_us: int,
    max_h: float,
    *,
    consumer: dict[str, Any],
    clickhouse: Any,
    database: str,
    trades_topic: str,
    marks_topic: str,
) -> CatchUp | None:
    """Plan, gather and replay a start's catch-up (see the module docstring); None when
    there is nothing to replay.

    Args:
        engine: The restored engine.
        accounts: The ids of the accounts it holds.
        since_us: Its last market time (`flows.trading.backlog.start_time`).
        max_h: `PaperSettings.catchup_max_h`.
        consumer: confluent-kafka consumer configuration.
        clickhouse: A clickhouse-connect client.
        database: Database holding ``trades`` and ``marks_1s``.
        trades_topic: The trades topic.
        marks_topic: The marks topic.
    """
    states = list(filter(None, map(engine.account, accounts)))
    window = plan(states, since_us, time.time_ns() // 1000, max_h)
    if window is None:
        return None
    caught = gather(
        window, consumer=consumer, clickhouse=clickhouse, database=database,
        trades_topic=trades_topic, marks_topic=marks_topic,
    )  # fmt: skip
    caught.events = replay(engine, caught.records)
    logger.info(
        "paper engine: caught up on %d records (%d from ClickHouse) of %d symbols (%s) "
        "after market time %s (%.1f min before the start): %d events",
        len(caught.records),
        caught.from_store,
        len(window.trades.keys() | window.marks),
        ", ".join(sorted(window.trades.keys() | window.marks)),
        datetime.fromtimestamp(window.since_us / 1e6, UTC).isoformat(timespec="milliseconds"),
        (window.until_us - window.since_us) / 60e6,
        len(caught.events),
    )
    return caught
