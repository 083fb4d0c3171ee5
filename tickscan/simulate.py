"""`tickscan simulate`: publish a synthetic market's trades (and quotes) to Kafka.

`simulate` builds a fresh market and publishes it, paced or flat out; `prepare_market`
is what `tickscan run` does first: it continues the market stored in ClickHouse, writing
the last day of history it lacks (`flows.sources.simulator.history`), and
`publish_market` then publishes it live from there. `prepare_perpetuals` adds the
market's USDⓈ-M perpetuals (`flows.sources.simulator.perps`) with their generated history
(`flows.sources.simulator.perp_history`); `publish_market` publishes their trades, marks,
funding, open interest and liquidations beside the spot trades. Every book's quotes go out
before the trades that print against them, and the 20-level depth of the symbols the
latest ``md.depth_watch.v1`` records name (`flows.ingest.depth_watch`), every 100 ms.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer

from flows.ingest.depth_watch import DepthWatchFeed
from flows.ingest.perps import PerpPublisher
from flows.ingest.quotes import DepthPublisher, QuotePublisher
from flows.ingest.trades import PublishReport, TradePublisher
from flows.signals.history import MINUTES_KEPT
from flows.sinks.clickhouse import candle_table_writer
from flows.sinks.perps import PerpWriter
from flows.sources.simulator import SyntheticMarket
from flows.sources.simulator.history import (
    HOUR_MS,
    MINUTE_MS,
    HistoryGenerator,
    HistoryReport,
)
from flows.sources.simulator.perp_history import PerpHistory, PerpHistoryReport
from flows.sources.simulator.perp_model import FUNDING_INTERVAL_S, MARKET
from flows.sources.simulator.perps import Perpetuals, PerpRecords
from flows.sources.simulator.stored import read_stored
from runtime.kafka import consumer_config, partition_count
from schemas.topics import PerpTopics
from schemas.trades import Trade

logger = logging.getLogger(__name__)

BOARD_HISTORY_MS = MINUTES_KEPT * MINUTE_MS
"""The simulated history written at first start: the minutes the signals flow holds
(24 h and 5 min), so even a 24h change, which needs the minute before the day, has a value
at once."""

_PROGRESS_EVERY_S = 5.0
_BATCH = 4096  # trades between clock and stop checks when not paced
_MAX_WAIT_S = 0.1  # longest a paced run waits before looking at `stop` again
_WATCH_EVERY_S = 0.2  # how often the depth watch topic is read (wall time)


@dataclass(frozen=True, slots=True)
class SimulateReport:
    """What a simulation published.

    Attributes:
        trades: Trades the broker acknowledged.
        seconds: Wall-clock seconds the run took, flush included.
        rate: Acknowledged trades per wall-clock second.
        first_time_us: Event time of the first trade, None if there was none.
        last_time_us: Event time of the last trade, None if there was none.
        publish: The publisher's report: per-partition offsets, dead letters, failures.
        quotes: Quotes the broker acknowledged.
        perps: Perpetuals records (marks, funding, open interest, liquidations) the
            broker acknowledged; the perpetuals' trades count among `trades`.
        depth: Depth records the broker acknowledged.
    """

    trades: int
    seconds: float
    rate: float
    first_time_us: int | None
    last_time_us: int | None
    publish: PublishReport
    quotes: int = 0
    perps: int = 0
    depth: int = 0


def simulate(
    bootstrap: str,
    symbols: int,
    rate: float,
    duration: float | None,
    seed: int,
    topic: str,
    realtime: bool = True,
    stop: threading.Event | None = None,
    run_id: str | None = None,
    on_start: Callable[[SyntheticMarket], None] | None = None,
    quotes_topic: str | None = None,
) -> SimulateReport:
    """Publish a fresh synthetic market's trades (and quotes) to Kafka.

    Paced (the default), trades go out at RATE per second of wall time and their event
    time is the wall time they go out at, so live flows and the board see fresh data.
    Unpaced, trades go out as fast as the broker takes them, event time starting now
    and advancing at RATE per second of event time.

    Args:
        bootstrap: Kafka bootstrap servers, `host:port[,host:port]`.
        symbols: How many symbols the market lists (`SYM0001USDT`, ...).
        rate: Trades per second across the whole market.
        duration: Seconds to run (of wall time), or None to run until `stop` is set.
        seed: Seed of the market: the same seed gives the same trades (up to start time).
        topic: Topic to publish to, normally `md.trades.v1`.
        realtime: Pace trades to the wall clock; False publishes flat out.
        stop: Set it (e.g. from a signal handler) to end the run early.
        run_id: When given, end the run with an end-of-run marker in every partition.
        on_start: Called with the market before its first trade (e.g. to record its
            symbols' metadata).
        quotes_topic: Also publish each symbol's book ticker there (`md.quotes.v1`).

    Returns:
        What was published, after every trade was flushed.

    Raises:
        ValueError: On a non-positive rate, duration or symbol count.
        flows.ingest.delivery.DeliveryFailed: If any trade was not delivered.
    """
    start_us = time.time_ns() // 1_000
    market = SyntheticMarket(
        symbols, rate, seed=seed, start_us=start_us, quotes=quotes_topic is not None
    )
    if on_start is not None:
        on_start(market)
    return publish_market(bootstrap, market, duration, topic, realtime, stop, run_id, quotes_topic)


def prepare_market(
    client: Any,
    database: str,
    symbols: int,
    rate: float,
    seed: int,
    *,
    now_ms: int | None = None,
    history_ms: int = BOARD_HISTORY_MS,
    seconds_ms: int = HOUR_MS,
    perpetuals: bool = False,
) -> tuple[SyntheticMarket, HistoryReport]:
    """The simulated market, continuing what ClickHouse holds of it, with a day of history.

    Reads where each simulated symbol's stored candles end, writes the candles it lacks
    over the last `history_ms` up to the current minute (1s candles too for the last
    `seconds_ms`), and returns the market resumed at the last close and trade id of
    each symbol, starting at that minute: published paced, it catches up to the wall
    clock at once and then runs live. With `perpetuals`, the perpetuals' candles are
    written too, derived from their twins' (`flows.sources.simulator.perp_candles`), so
    `prepare_perpetuals` continues their trade ids and prices from them.

    Args:
        client: A clickhouse-connect client of the store.
        database: Database holding the candle tables.
        symbols: How many symbols.
        rate: Trades per second across the market.
        seed: The market's seed.
        now_ms: The present, in ms (default: the wall clock).
        history_ms: How much history to hold (the signals flow's whole ring, so the
            24h change has its reference minute from the first second).
        seconds_ms: The most recent part also kept as 1s candles.
        perpetuals: Also write the candles the market's perpetuals lack.

    Returns:
        The market (recording quotes) and what was written.
    """
    if now_ms is None:
        now_ms = time.time_ns() // 1_000_000
    end_ms = now_ms - now_ms % MINUTE_MS
    market = SyntheticMarket(symbols, rate, seed=seed, start_us=end_ms * 1000, quotes=True)
    stored = read_stored(client, database, market.exchange, market.market)
    logger.info("simulated market: %d of %d symbols have stored candles", len(stored), symbols)
    twins = stored_twins = None
    if perpetuals:
        twins = Perpetuals(market)
        stored_twins = read_stored(client, database, market.exchange, MARKET)
    generator = HistoryGenerator(market, history_ms, seconds_ms, twins)
    resume, report = generator.generate(
        end_ms, stored, candle_table_writer(client, database), stored_twins
    )
    # Symbols stored into this minute resume where they end, the others at the minute.
    start_us = min((state.from_us for state in resume.values()), default=end_ms * 1000)
    market.resume(resume, start_us=min(start_us, end_ms * 1000))
    return market, report


def prepare_perpetuals(
    client: Any, database: str, market: SyntheticMarket, funding_every_s: int = FUNDING_INTERVAL_S
) -> tuple[Perpetuals, PerpHistoryReport]:
    """The market's perpetuals, continuing what ClickHouse holds of them, with their history.

    Call it after `prepare_market` with `perpetuals` (their history follows the spot
    candles it wrote, and their own). Their trade ids and last price continue from their
    stored candles; marks and open interest from the stored ones; the marks, funding
    events, open interest and liquidations they lack up to the market's start minute are
    written straight to the perps tables: the board's history (`BOARD_HISTORY_MS`), with
    a mark every second over its last hour.

    Args:
        client: A clickhouse-connect client of the store.
        database: Database holding the tables.
        market: The spot market, as `prepare_market` returned it.
        funding_every_s: Seconds of event time between funding times (8 h as on
            Binance; fewer for a demo).

    Returns:
        The perpetuals, ready to publish from the market's start, and what was written.
    """
    perps = Perpetuals(market, funding_every_s)
    stored = read_stored(client, database, market.exchange, MARKET)
    perps.restore(
        {},
        {
            name: state.last_trade_id + 1
            for name, state in stored.items()
            if state.last_trade_id is not None
        },
        {name: state.close for name, state in stored.items()},
    )
    start_ms = market.start_us // 1000
    end_ms = start_ms - start_ms % MINUTE_MS
    writer = PerpWriter(lambda: client, database, max_rows=1_000_000, max_age_ms=600_000)
    report = PerpHistory(perps, client, database).generate(
        end_ms - BOARD_HISTORY_MS, end_ms - HOUR_MS, end_ms, writer.add
    )
    writer.flush()
    return perps, report


def publish_market(
    bootstrap: str,
    market: SyntheticMarket,
    duration: float | None,
    topic: str,
    realtime: bool = True,
    stop: threading.Event | None = None,
    run_id: str | None = None,
    quotes_topic: str | None = None,
    perps: Perpetuals | None = None,
    perp_topics: PerpTopics | None = None,
    depth_topic: str | None = None,
    watch_topic: str | None = None,
) -> SimulateReport:
    """Publish a market's trades (and quotes) from its start time on.

    Paced, a trade goes out when the wall clock reaches its event time: trades of a
    market that starts in the past (after `prepare_market`) go out at once until it
    has caught up. Flat out, they go out as fast as the broker takes them.

    Args:
        bootstrap: Kafka bootstrap servers.
        market: The market, positioned where it should start.
        duration: Seconds to run (of wall time), or None to run until `stop` is set.
        topic: Topic of the trades.
        realtime: Pace trades to the wall clock; False publishes flat out.
        stop: Set it to end the run early.
        run_id: When given, end the run with an end-of-run marker in every partition.
        quotes_topic: Publish the market's quotes there (it must record them).
        perps: Also publish these perpetuals: their trades to `topic`, their marks,
            funding events, open interest and liquidations to their topics.
        perp_topics: Those topics (default: `schemas.topics`' ``md.marks.v1`` ...).
        depth_topic: With `quotes_topic` and `watch_topic`: publish there the 20-level
            depth of the symbols (spot and perpetual) the latest record of `watch_topic`
            names for each market, every 100 ms of event time.
        watch_topic: The depth watch topic (``md.depth_watch.v1``), read from its start.

    Returns:
        What was published, after everything was flushed.

    Raises:
        ValueError: On a non-positive duration.
        flows.ingest.delivery.DeliveryFailed: If any trade was not delivered.
    """
    if duration is not None and not duration > 0:
        raise ValueError(f"duration must be positive, got {duration}")
    stop = stop or threading.Event()
    logger.info(
        "simulating %d symbols at %.1f trades/s to %s (%s, %s)",
        len(market.symbols), market.rate, topic, "paced" if realtime else "flat out",
        f"{duration:.1f} s" if duration is not None else "until stopped",
    )  # fmt: skip
    wall_start_us = time.time_ns() // 1_000
    started = time.monotonic()
    publisher = TradePublisher(bootstrap, topic=topic)
    quotes = QuotePublisher(bootstrap, quotes_topic) if quotes_topic is not None else None
    feed = _PerpFeed(perps, PerpPublisher(bootstrap, perp_topics)) if perps is not None else None
    books = None
    if quotes is not None:
        depth = watch = None
        if depth_topic is not None and watch_topic is not None:
            depth = DepthPublisher(bootstrap, depth_topic)
            watch = DepthWatchFeed(
                Consumer(consumer_config(bootstrap)),
                watch_topic,
                partition_count(bootstrap, watch_topic),
                market.exchange,
            )
        books = _Books(market, feed, quotes, depth, watch)
    try:
        with publisher:
            if realtime:
                span = _run_paced(
                    market, publisher, books, feed, wall_start_us, started, duration, stop
                )
            else:
                span = _run_flat_out(market, publisher, books, feed, started, duration, stop)
            if run_id is not None:
                publisher.mark_end(run_id)
            publisher.flush()
    finally:
        if books is not None:
            books.close()
        if feed is not None:
            feed.publisher.close()
    seconds = time.monotonic() - started
    report = publisher.report()
    logger.info(
        "simulated %d trades in %.1f s (%.0f/s)",
        report.published, seconds, report.published / seconds,
    )  # fmt: skip
    return SimulateReport(
        trades=report.published,
        seconds=seconds,
        rate=report.published / seconds,
        first_time_us=span[0],
        last_time_us=span[1],
        publish=report,
        quotes=quotes.delivered if quotes is not None else 0,
        perps=feed.publisher.delivered if feed is not None else 0,
        depth=books.depth.delivered if books is not None and books.depth is not None else 0,
    )


class _PerpFeed:
    """Feeds spot trades to the perpetuals, publishing what they print on the way."""

    def __init__(self, perps: Perpetuals, publisher: PerpPublisher) -> None:
        self.perps = perps
        self.publisher = publisher
        self.twins = frozenset(perps.symbols)
        self.due_us = (perps.second + 1) * 1_000_000  # the next second's end

    def _publish(self, records: PerpRecords) -> None:
        publisher = self.publisher
        for liquidation in records.liquidations:
            publisher.liquidation(liquidation)
        for mark in records.marks:
            publisher.mark(mark)
        for sample in records.open_interest:
            publisher.open_interest(sample)
        for event in records.funding:
            publisher.funding(event)
        publisher.poll()

    def advance(self, time_us: int) -> None:
        """Step the perpetuals to `time_us`, publishing the records of the seconds ended."""
        if time_us >= self.due_us:
            self._publish(self.perps.advance(time_us))
            self.due_us = (self.perps.second + 1) * 1_000_000

    def take(self, trade: Trade) -> Trade | None:
        """Step the perpetuals to `trade` (publishing their records); its perp print."""
        self.advance(trade.time_us)
        if trade.symbol not in self.twins:
            return None
        return self.perps.on_trade(trade)


@dataclass
class _Books:
    """Publishes the simulated books: every quote, and the depth of the watched symbols.

    A quote goes out before the trades of its time (the book moved, then they printed
    against it); the spot twins' quotes are fed to the perpetuals on the way, whose books
    follow them. The watch topic is read every `_WATCH_EVERY_S` of wall time; its latest
    record for a market is what that market's book watches.

    Attributes:
        market: The spot market.
        feed: Its perpetuals, if any.
        quotes: Where every book's quotes go.
        depth: Where the watched symbols' depth goes; None: nowhere.
        watch: The watch topic's records; None: nothing is watched.
        published_to: Event time up to which the books' records went out.
    """

    market: SyntheticMarket
    feed: _PerpFeed | None
    quotes: QuotePublisher
    depth: DepthPublisher | None
    watch: DepthWatchFeed | None
    published_to: int = -1
    _watch_due: float = 0.0

    def upto(self, time_us: int) -> None:
        """Publish the books' records up to `time_us` (call it before its trades)."""
        self.published_to = time_us
        quotes, feed = self.quotes, self.feed
        for quote in self.market.take_quotes(time_us):
            quotes.publish(quote)
            if feed is not None:
                feed.advance(quote.update_id)
                feed.perps.on_quote(quote)
        if self.depth is not None:
            for record in self.market.take_depth(time_us):
                self.depth.publish(record)
        self.perps_upto(time_us)

    def perps_upto(self, time_us: int) -> None:
        """Publish the perpetuals' quotes and depth up to `time_us` (before their prints)."""
        if self.feed is None:
            return
        perps = self.feed.perps
        for quote in perps.take_quotes(time_us):
            self.quotes.publish(quote)
        if self.depth is not None:
            for record in perps.take_depth(time_us):
                self.depth.publish(record)

    def follow_watch(self) -> None:
        """Read the watch topic when due, and watch what its latest records name."""
        if self.watch is None or time.monotonic() < self._watch_due:
            return
        self._watch_due = time.monotonic() + _WATCH_EVERY_S
        for market, record in self.watch.poll().items():
            if market == self.market.market:
                watched = self.market.watch_depth(record.symbols)
            elif self.feed is not None and market == self.feed.perps.book.market:
                watched = self.feed.perps.watch_depth(record.symbols)
            else:
                continue
            logger.info(
                "simulated %s depth for %d symbol(s): %s", market, len(watched), watched[:20]
            )

    def poll(self) -> None:
        """Serve the producers' delivery reports."""
        self.quotes.poll()
        if self.depth is not None:
            self.depth.poll()

    def close(self) -> None:
        """Deliver what is queued and close the producers and the watch consumer."""
        self.quotes.close()
        if self.depth is not None:
            self.depth.close()
        if self.watch is not None:
            self.watch.close()


def _publish_trades(
    trades: Iterable[Trade],
    publisher: TradePublisher,
    books: _Books | None,
    feed: _PerpFeed | None,
) -> None:
    """Publish trades in order, each after the book records of its time and followed by
    its perpetual's print, if any."""
    for trade in trades:
        if books is not None and trade.time_us > books.published_to:
            books.upto(trade.time_us)
        publisher.publish(trade)
        if feed is not None and (printed := feed.take(trade)) is not None:
            if books is not None:
                books.perps_upto(trade.time_us)
            publisher.publish(printed)


def _run_paced(
    market: SyntheticMarket,
    publisher: TradePublisher,
    books: _Books | None,
    feed: _PerpFeed | None,
    wall_start_us: int,
    started: float,
    duration: float | None,
    stop: threading.Event,
) -> tuple[int | None, int | None]:
    """Publish each trade when the wall clock reaches its event time."""
    first = last = None
    elapsed = 0.0
    next_progress = _PROGRESS_EVERY_S
    for trade in market.stream():
        due = (trade.time_us - wall_start_us) / 1e6
        if duration is not None and due >= duration:
            break
        if due > elapsed:
            if books is not None:
                books.poll()
                books.follow_watch()
            # Only look at the clock when this trade is later than the last look.
            elapsed = time.monotonic() - started
            while due > elapsed and not stop.is_set():
                publisher.poll(min(due - elapsed, _MAX_WAIT_S))
                elapsed = time.monotonic() - started
            if stop.is_set():
                break
            if elapsed >= next_progress:
                next_progress = elapsed + _PROGRESS_EVERY_S
                _log_progress(publisher, elapsed)
        _publish_trades((trade,), publisher, books, feed)
        if first is None:
            first = trade.time_us
        last = trade.time_us
    return first, last


def _run_flat_out(
    market: SyntheticMarket,
    publisher: TradePublisher,
    books: _Books | None,
    feed: _PerpFeed | None,
    started: float,
    duration: float | None,
    stop: threading.Event,
) -> tuple[int | None, int | None]:
    """Publish trades as fast as the producer takes them, checking the clock per batch."""
    first = last = None
    next_progress = _PROGRESS_EVERY_S
    while not stop.is_set():
        elapsed = time.monotonic() - started
        if duration is not None and elapsed >= duration:
            break
        if elapsed >= next_progress:
            next_progress = elapsed + _PROGRESS_EVERY_S
            _log_progress(publisher, elapsed)
        batch = list(market.trades(_BATCH))
        if books is None and feed is None:
            publisher.publish_many(batch)
        else:
            _publish_trades(batch, publisher, books, feed)
        if books is not None:
            books.poll()
            books.follow_watch()
        if first is None:
            first = batch[0].time_us
        last = batch[-1].time_us
    return first, last


def _log_progress(publisher: TradePublisher, elapsed: float) -> None:
    logger.info(
        "%d trades sent in %.0f s (%.0f/s), %d acknowledged",
        publisher.sent, elapsed, publisher.sent / elapsed, publisher.report().published,
    )  # fmt: skip
