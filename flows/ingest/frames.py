"""Frames off a live ingest's sockets: decoded, sequenced and published.

`flows.sources.binance.ws.StreamPool` puts every message of every socket on one queue as
a `Frame`; `FrameHandler` empties it inside `flows.ingest.market.LiveIngest`. Each frame is
dispatched on its stream's kind:

- a trade (``@trade`` on spot, ``@aggTrade`` on USDⓈ-M) is decoded, passed through the
  `flows.ingest.sequence.TradeSequencer` (a duplicate is dropped; a hole given up on goes to
  `flows.ingest.gaps.GapWatch`) and published to the trades topic;
- a ``@bookTicker`` quote is published to the quotes topic unless it is not newer than
  the last one of its symbol (`flows.ingest.sequence.QuoteFilter`);
- a closed ``@kline_1m`` goes to the cross-check, when it is on;
- on USDⓈ-M, a ``@markPrice@1s`` mark price and a ``!forceOrder@arr`` liquidation are
  published to their topics (`flows.ingest.perps.PerpPublisher`);
- a ``@depth20@100ms`` book (followed for the symbols the paper engine watches) is
  published to the depth topic (`flows.ingest.quotes.DepthPublisher`);
- a frame that does not decode goes to the dead-letter topic with the reason.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import msgspec

from flows.ingest.crosscheck import LiveCrossCheck
from flows.ingest.gaps import GapWatch
from flows.ingest.perps import PerpPublisher
from flows.ingest.quotes import DepthPublisher, QuotePublisher
from flows.ingest.sequence import QuoteFilter, TradeSequencer
from flows.ingest.status import IngestCounts
from flows.ingest.trades import TradePublisher
from flows.sources.binance.book import BookTickerDecoder
from flows.sources.binance.depth import DEPTH_STREAM, DepthDecoder
from flows.sources.binance.markets import binance_market
from flows.sources.binance.perps import (
    FORCE_ORDER_STREAM,
    MARK_PRICE_STREAM,
    LiquidationDecoder,
    MarkPriceDecoder,
)
from flows.sources.binance.streams import KLINE_STREAM
from flows.sources.binance.trades import BinanceDecodeError, BinanceDecoder
from flows.sources.binance.ws import Frame
from flows.sources.files import Rejected
from schemas.trades import Market

_DRAIN_BATCH = 2_000  # frames handled between yields to the event loop


class FrameHandler:
    """Handles the frames of one market's sockets: trades, quotes and klines.

    Args:
        market: ``spot`` or ``usdm``: which trade stream carries the trades.
        exchange: The exchange name stamped on trades and quotes.
        sequencer: Decides which trades to publish and finds the holes.
        gaps: Where holes go, and which symbols are resuming from an earlier run.
        publisher: Publishes trades and dead-letters what does not decode.
        quotes: Publishes quotes.
        counts: The ingest's running counts, updated here frame by frame.
        checker: The cross-check that takes klines and trades; None when off.
        perps: Publishes mark prices and liquidations (USDⓈ-M); None: they are skipped.
        depth: Publishes 20-level books; None: they are skipped.
    """

    def __init__(
        self,
        market: Market,
        *,
        exchange: str,
        sequencer: TradeSequencer,
        gaps: GapWatch,
        publisher: TradePublisher,
        quotes: QuotePublisher,
        counts: IngestCounts,
        checker: LiveCrossCheck | None = None,
        perps: PerpPublisher | None = None,
        depth: DepthPublisher | None = None,
    ) -> None:
        self.counts = counts
        self._trade_kind = binance_market(market).trade_kind
        self._trades = BinanceDecoder(market, exchange=exchange)
        self._quotes = BookTickerDecoder(market, exchange=exchange)
        self._sequencer = sequencer
        self._quote_filter = QuoteFilter()
        self._gaps = gaps
        self._publisher = publisher
        self._quote_producer = quotes
        self._checker = checker
        self._perps = perps
        self._marks = MarkPriceDecoder(exchange=exchange)
        self._liquidations = LiquidationDecoder(exchange=exchange)
        self._depth_producer = depth
        self._depth = DepthDecoder(market, exchange=exchange)

    async def consume(self, queue: asyncio.Queue[Frame]) -> None:
        """Handle frames as they come, until cancelled.

        Up to `_DRAIN_BATCH` frames are handled between yields to the event loop, and the
        producers' delivery reports are served after each batch.
        """
        publisher, quotes = self._publisher, self._quote_producer
        while True:
            self.handle(await queue.get())
            for _ in range(_DRAIN_BATCH):
                try:
                    frame = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                self.handle(frame)
            publisher.poll(0)
            quotes.poll()
            if self._perps is not None:
                self._perps.poll()
            if self._depth_producer is not None:
                self._depth_producer.poll()
            await asyncio.sleep(0)

    def drain(self, queue: asyncio.Queue[Frame]) -> None:
        """Handle every frame still queued (after the sockets closed)."""
        while True:
            try:
                self.handle(queue.get_nowait())
            except asyncio.QueueEmpty:
                return

    def handle(self, frame: Frame) -> None:
        """Decode one frame and publish what it holds (or dead-letter it)."""
        kind = frame.stream.partition("@")[2]
        if kind == self._trade_kind:
            self._trade(frame)
        elif kind == "bookTicker":
            self._quote(frame)
        elif kind == KLINE_STREAM and self._checker is not None:
            self._kline(frame, self._checker)
        elif self._perps is not None and (
            kind == MARK_PRICE_STREAM or frame.stream == FORCE_ORDER_STREAM
        ):
            self._perp(frame, self._perps)
        elif kind == DEPTH_STREAM and self._depth_producer is not None:
            self._book(frame, self._depth_producer)
        else:
            self.counts.skipped[kind] += 1

    def forget(self, symbols: Iterable[str]) -> None:
        """Drop the quote state of symbols no longer followed."""
        self._quote_filter.forget(symbols)

    def _trade(self, frame: Frame) -> None:
        try:
            trade = self._trades.decode(frame.raw)
        except BinanceDecodeError as exc:
            self._reject(frame, exc)
            return
        if trade is None:
            self.counts.skipped[self._trade_kind + ":not_a_trade"] += 1
            return
        if self._gaps.resuming:
            self._gaps.resumed(trade)
        verdict = self._sequencer.accept(
            trade.symbol, trade.trade_id, frame.origin, time.monotonic()
        )
        if verdict.publish:
            self._publisher.publish(trade)
            self.counts.trades += 1
            if self._checker is not None:
                self._checker.trade(trade)
        else:
            self.counts.duplicates += 1
        for gap in verdict.gaps:
            self._gaps.repair(gap)

    def _quote(self, frame: Frame) -> None:
        try:
            quote = self._quotes.decode(frame.raw, frame.received_us)
        except BinanceDecodeError as exc:
            self._reject(frame, exc)
            return
        if self._quote_filter.accept(quote.symbol, quote.update_id):
            self._quote_producer.publish(quote)
            self.counts.quotes += 1
        else:
            self.counts.stale_quotes += 1

    def _perp(self, frame: Frame, perps: PerpPublisher) -> None:
        try:
            if frame.stream == FORCE_ORDER_STREAM:
                perps.liquidation(self._liquidations.decode(frame.raw, frame.received_us))
                self.counts.liquidations += 1
            else:
                perps.mark(self._marks.decode(frame.raw, frame.received_us))
                self.counts.marks += 1
        except BinanceDecodeError as exc:
            self._reject(frame, exc)

    def _book(self, frame: Frame, publisher: DepthPublisher) -> None:
        try:
            depth = self._depth.decode(frame.raw, frame.received_us, frame.stream)
        except BinanceDecodeError as exc:
            self._reject(frame, exc)
            return
        publisher.publish(depth)
        self.counts.depth += 1

    def _kline(self, frame: Frame, checker: LiveCrossCheck) -> None:
        try:
            checker.kline(frame.raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self._reject(frame, BinanceDecodeError("bad_kline", str(exc)))

    def _reject(self, frame: Frame, exc: BinanceDecodeError) -> None:
        self._publisher.reject(
            Rejected(f"ws:{frame.stream}", frame.raw.encode(), exc.reason, exc.detail)
        )
        self.counts.rejected += 1
