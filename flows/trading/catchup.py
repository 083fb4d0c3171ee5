"""The market the paper engine missed while it was down, replayed in market time at its start.

On Binance the exchange keeps matching while a trader's client is down; the paper venue
does too. At start, after the accounts are restored, the engine replays the trades and
marks it missed, from its last market time up to where live reading begins, for the
symbols that matter: those of open orders (trades and, on USDⓈ-M, marks: stops may
trigger on either) and of held perpetuals (marks: funding, mark stops, liquidation).

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from confluent_kafka import Consumer, KafkaException, TopicPartition

from flows.trading.engine import PaperEngine
from flows.trading.state import AccountState
from schemas import topics
from schemas.perps import MarkPrice, mark_decoder
from schemas.topics import symbol_key
from schemas.trades import Trade, trade_decoder
from schemas.trading import AccountEvent

logger = logging.getLogger(__name__)

HOUR_US = 3_600_000_000

SEEK_SLACK_MS = 60_000
"""A partition is read from the first record stamped this long before the window's start:
Kafka's timestamps are the producer's clock, an exchange's times its own."""

_CLOCK = "SELECT toUnixTimestamp64Micro(max(time)) FROM {db:Identifier}.paper_clock"

_TRADES = """
SELECT exchange, market, symbol, trade_id, price, qty, toUnixTimestamp64Micro(time),
       buyer_is_maker, first_trade_id, last_trade_id
FROM {db:Identifier}.trades FINAL
WHERE (exchange, market, symbol) IN {keys:Array(Tuple(String, String, String))}
  AND time > fromUnixTimestamp64Micro({since:Int64})
  AND time < fromUnixTimestamp64Micro({until:Int64})
ORDER BY time, exchange, market, symbol, trade_id
"""

_MARKS = """
SELECT exchange, symbol, toUnixTimestamp64Micro(event_time), mark_price, index_price,
       estimated_settle_price, funding_rate, toUnixTimestamp64Micro(next_funding_time)
FROM {db:Identifier}.marks_1s FINAL
WHERE market = 'usdm' AND (exchange, symbol) IN {keys:Array(Tuple(String, String))}
  AND event_time > fromUnixTimestamp64Micro({since:Int64})
  AND event_time < fromUnixTimestamp64Micro({until:Int64})
ORDER BY event_time, exchange, symbol
"""

Record = Trade | MarkPrice


@dataclass(frozen=True, slots=True)
class Window:
    """What a start replays: records after `since_us` of the symbols keyed in `trades`
    and `marks`, up to where live reading begins (`until_us`: the start's wall time, the
    bound of a ClickHouse read when the topics hold nothing to bound it)."""

    since_us: int
    until_us: int
    trades: frozenset[str]
    marks: frozenset[str]


def needs(accounts: Iterable[AccountState]) -> tuple[frozenset[str], frozenset[str]]:
    """The symbol keys whose missed trades, and whose missed marks, matter to `accounts`:
    trades of every open order's symbol; marks of USDⓈ-M open orders' and held
    positions' symbols."""
    trades: set[str] = set()
    marks: set[str] = set()
    for state in accounts:
        for order in state.orders.values():
            key = symbol_key(state.exchange, state.market, order.request.symbol)
            trades.add(key)
            if state.market == "usdm":
                marks.add(key)
        if state.market == "usdm":
            marks.update(
                symbol_key(state.exchange, "usdm", symbol)
                for symbol, position in state.positions.items()
                if position.qty
            )
    return frozenset(trades), frozenset(marks)


def plan(
    accounts: Iterable[AccountState], since_us: int, now_us: int, max_h: float
) -> Window | None:
    """The window a start replays, or None: no market time yet (nothing ever ran), no
    symbol matters, or the market time is older than `max_h` hours (warned).

    Args:
        accounts: The restored accounts.
        since_us: The engine's last market time (`start_time`).
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


def start_time(client: Any, database: str, log_time_us: int) -> int:
    """Where a catch-up begins: the stored market time (``paper_clock``) or the log's
    latest event time, whichever is later.

    Args:
        client: A clickhouse-connect client.
        database: Database holding ``paper_clock``.
        log_time_us: The restored engine's `now_us` (its latest event's time).
    """
    rows = client.query(_CLOCK, parameters={"db": database}).result_rows
    stored = rows[0][0] if rows and rows[0][0] is not None else 0
    return max(int(stored), log_time_us)


def store_bound(firsts: Sequence[int | None], since_us: int, until_us: int) -> int | None:
    """Up to which time (exclusive) ClickHouse must give a topic's records, or None when
    the topic holds the whole window.

    Args:
        firsts: Per partition, the time of the first record it holds (None: it holds
            none).
        since_us: The window's start (exclusive).
        until_us: The window's end when no partition bounds it.
    """
    if firsts and all(t is not None and t <= since_us for t in firsts):
        return None
    held = [t for t in firsts if t is not None]
    if len(held) < len(firsts) or not held:
        return until_us  # an empty partition: its symbols' records are all in the store
    return max(held)


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
        last = self.trade_ids
        if not last:
            return feed

        def fresh(trade: Trade) -> list[AccountEvent]:
            seen = last.get(trade.key)
            if seen is not None and trade.trade_id <= seen:
                return []
            return feed(trade)

        return fresh

    def marks(
        self, feed: Callable[[MarkPrice], list[AccountEvent]]
    ) -> Callable[[MarkPrice], list[AccountEvent]]:
        """`feed`, skipping the marks replayed already."""
        last = self.mark_times
        if not last:
            return feed

        def fresh(mark: MarkPrice) -> list[AccountEvent]:
            seen = last.get(mark.key)
            if seen is not None and mark.time_us <= seen:
                return []
            return feed(mark)

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


# ---- sources --------------------------------------------------------------------------


@dataclass
class TopicRead:
    """What one topic gave a catch-up.

    Attributes:
        records: Its records of the window's symbols after the window's start.
        ends: Partition → the offset it ended at (where live reading begins).
        store_until_us: Up to which time ClickHouse gives the rest (None: no need).
    """

    records: list[Record]
    ends: dict[int, int]
    store_until_us: int | None


def read_topic(
    config: dict[str, Any],
    topic: str,
    keys: frozenset[str],
    decode: Callable[[bytes], Record],
    window: Window,
    timeout_s: float = 60.0,
) -> TopicRead:
    """Read a market topic's records of `keys` after the window's start, to where each
    partition ends now.

    Args:
        config: confluent-kafka consumer configuration.
        topic: The topic.
        keys: The symbol keys wanted.
        decode: Its records' decoder.
        window: The catch-up's window.
        timeout_s: Most seconds for each broker call, and for the read.

    Raises:
        KafkaException: The topic is missing, or was not read to its end in time.
    """
    consumer = Consumer(config)
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise KafkaException(f"topic {topic!r} not found")
        ends: dict[int, int] = {}
        lows: dict[int, int] = {}
        for partition in sorted(metadata.partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout_s
            )
            ends[partition] = high
            lows[partition] = low
        if not keys:
            return TopicRead([], ends, None)
        wanted = [
            TopicPartition(topic, p, window.since_us // 1000 - SEEK_SLACK_MS)
            for p in sorted(ends)
            if ends[p] > lows[p]
        ]
        starts = {
            tp.partition: tp.offset if tp.offset >= 0 else ends[tp.partition]
            for tp in (consumer.offsets_for_times(wanted, timeout=timeout_s) if wanted else [])
        }
        # A partition read from its first offset holds the window only if that first
        # record is not younger than the window's start; one read from later does.
        firsts: dict[int, int | None] = {p: None for p in ends}
        for partition, start in starts.items():
            if start > lows[partition]:
                firsts[partition] = window.since_us
        records: list[Record] = []
        remaining = {p: ends[p] for p, s in starts.items() if s < ends[p]}
        if remaining:
            consumer.assign([TopicPartition(topic, p, starts[p]) for p in sorted(remaining)])
        raw_keys = {k.encode() for k in keys}
        read = 0
        while remaining:
            messages = consumer.consume(5_000, timeout_s)
            if not messages:
                raise KafkaException(f"topic {topic!r} not read to its end in {timeout_s:.0f} s")
            for message in messages:
                if message.error() is not None:
                    raise KafkaException(message.error())
                partition, offset = message.partition(), message.offset()
                if partition not in remaining:
                    continue
                if offset + 1 >= remaining[partition]:
                    del remaining[partition]
                first = firsts[partition] is None
                if not first and message.key() not in raw_keys:
                    continue
                if topics.is_control(message.headers()):
                    continue
                try:
                    record = decode(message.value())
                except (msgspec.DecodeError, msgspec.ValidationError):
                    continue  # the live loop sends it to the dead letters when read
                read += 1
                if first:
                    firsts[partition] = record.time_us
                if record.key in keys and record.time_us > window.since_us:
                    records.append(record)
        bound = store_bound([firsts[p] for p in sorted(firsts)], window.since_us, window.until_us)
        logger.debug("paper engine: catch-up read %d records of %s", read, topic)
        return TopicRead(records, ends, bound)
    finally:
        consumer.close()


def _split(key: str) -> tuple[str, str, str]:
    exchange, market, symbol = key.split(":", 2)
    return exchange, market, symbol


def load_trades(
    client: Any, database: str, keys: Iterable[str], since_us: int, until_us: int
) -> list[Trade]:
    """Stored trades (``trades``) of the symbol keys after `since_us`, before `until_us`.

    Args:
        client: A clickhouse-connect client.
        database: Database holding ``trades``.
        keys: Symbol keys (`schemas.topics.symbol_key`).
        since_us: Exclusive start (exchange time).
        until_us: Exclusive end.
    """
    wanted = sorted(_split(k) for k in keys)
    if not wanted or until_us <= since_us:
        return []
    params = {"db": database, "keys": wanted, "since": since_us, "until": until_us}
    out = []
    for row in client.query(_TRADES, parameters=params).result_rows:
        exchange, market, symbol, trade_id, price, qty, time_us, maker, first, last = row
        trade = Trade(
            exchange=exchange, market=market, symbol=symbol, trade_id=trade_id, price=price,
            qty=qty, time_us=time_us, buyer_is_maker=bool(maker), first_trade_id=first,
            last_trade_id=last,
        )  # fmt: skip
        out.append(trade)
    return out


def load_marks(
    client: Any, database: str, keys: Iterable[str], since_us: int, until_us: int
) -> list[MarkPrice]:
    """Stored marks (``marks_1s``, the last of each second, at its event time) of the
    USDⓈ-M symbol keys after `since_us`, before `until_us`.

    Args:
        client: A clickhouse-connect client.
        database: Database holding ``marks_1s``.
        keys: Symbol keys of USDⓈ-M symbols.
        since_us: Exclusive start (exchange time).
        until_us: Exclusive end.
    """
    wanted = sorted((e, s) for e, m, s in map(_split, keys) if m == "usdm")
    if not wanted or until_us <= since_us:
        return []
    params = {"db": database, "keys": wanted, "since": since_us, "until": until_us}
    out = []
    for row in client.query(_MARKS, parameters=params).result_rows:
        exchange, symbol, time_us, mark, index, settle, rate, next_funding = row
        stored = MarkPrice(
            exchange=exchange, market="usdm", symbol=symbol, time_us=time_us,
            mark_price=mark, index_price=index, estimated_settle_price=settle,
            next_funding_time_us=next_funding or 0, received_us=time_us, funding_rate=rate,
        )  # fmt: skip
        out.append(stored)
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
    """

    window: Window
    records: list[Record]
    ends: dict[tuple[str, int], int]
    from_store: int
    replayed: Replayed


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
    plans: list[tuple[str, frozenset[str], Callable[[bytes], Any], Callable[..., list[Any]]]] = [
        (trades_topic, window.trades, trade_decoder().decode, load_trades),
        (marks_topic, window.marks, mark_decoder().decode, load_marks),
    ]
    for topic, keys, decode, load in plans:
        read = read_topic(consumer, topic, keys, decode, window)
        ends.update(((topic, p), offset) for p, offset in read.ends.items())
        sources.append(read.records)
        if keys and read.store_until_us is not None:
            stored = load(clickhouse, database, keys, window.since_us, read.store_until_us)
            from_store += len(stored)
            sources.append(stored)
    records = merge(*sources)
    replayed = Replayed()
    replayed.note(records)
    return CatchUp(window, records, ends, from_store, replayed)
