"""`tickscan simulate`: publish a synthetic market's trades to Kafka, paced or flat out."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flows.ingest import PublishReport, TradePublisher
from flows.sources.simulator import SyntheticMarket

logger = logging.getLogger(__name__)

_PROGRESS_EVERY_S = 5.0
_BATCH = 4096  # trades between clock and stop checks when not paced
_MAX_WAIT_S = 0.1  # longest a paced run waits before looking at `stop` again


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
    """

    trades: int
    seconds: float
    rate: float
    first_time_us: int | None
    last_time_us: int | None
    publish: PublishReport


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
) -> SimulateReport:
    """Publish a synthetic market's trades to Kafka.

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

    Returns:
        What was published, after every trade was flushed.

    Raises:
        ValueError: On a non-positive rate, duration or symbol count.
        flows.ingest.DeliveryFailed: If any trade was not delivered.
    """
    if duration is not None and not duration > 0:
        raise ValueError(f"duration must be positive, got {duration}")
    start_us = time.time_ns() // 1_000
    market = SyntheticMarket(symbols, rate, seed=seed, start_us=start_us)
    stop = stop or threading.Event()
    if on_start is not None:
        on_start(market)
    logger.info(
        "simulating %d symbols at %.1f trades/s to %s (%s, %s)",
        symbols, rate, topic, "paced" if realtime else "flat out",
        f"{duration:.1f} s" if duration is not None else "until stopped",
    )  # fmt: skip
    started = time.monotonic()
    publisher = TradePublisher(bootstrap, topic=topic)
    with publisher:
        if realtime:
            span = _run_paced(market, publisher, start_us, started, duration, stop)
        else:
            span = _run_flat_out(market, publisher, started, duration, stop)
        if run_id is not None:
            publisher.mark_end(run_id)
        publisher.flush()
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
    )


def _run_paced(
    market: SyntheticMarket,
    publisher: TradePublisher,
    start_us: int,
    started: float,
    duration: float | None,
    stop: threading.Event,
) -> tuple[int | None, int | None]:
    """Publish each trade when the wall clock reaches its event time."""
    first = last = None
    elapsed = 0.0
    next_progress = _PROGRESS_EVERY_S
    for trade in market.stream():
        due = (trade.time_us - start_us) / 1e6
        if duration is not None and due >= duration:
            break
        if due > elapsed:
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
        publisher.publish(trade)
        if first is None:
            first = trade.time_us
        last = trade.time_us
    return first, last


def _run_flat_out(
    market: SyntheticMarket,
    publisher: TradePublisher,
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
        publisher.publish_many(batch)
        if first is None:
            first = batch[0].time_us
        last = batch[-1].time_us
    return first, last


def _log_progress(publisher: TradePublisher, elapsed: float) -> None:
    logger.info(
        "%d trades sent in %.0f s (%.0f/s), %d acknowledged",
        publisher.sent, elapsed, publisher.sent / elapsed, publisher.report().published,
    )  # fmt: skip
