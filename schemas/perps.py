"""Perpetual futures data: mark prices, liquidations, open interest and funding events.

Exact decimals as for trades (`Decimal` in memory, decimal strings on the wire); times
are the exchange's own, in microseconds since the epoch. Keys are the symbol's, like the
trades', so one symbol's perpetual data stays ordered in one partition.

- `MarkPrice`: one ``markPriceUpdate`` (Binance pushes one per symbol per second): mark
  price, index price, estimated settle price, the current funding-rate estimate and the
  next funding time.
- `Liquidation`: one ``forceOrder`` event. Binance pushes at most one liquidation per
  symbol per 1000 ms (the latest of that second), so the stream **undercounts**: it is a
  sample of the liquidations, never their total.
- `OpenInterest`: one sample of a symbol's open interest, polled live or read from the
  exchange's history.
- `FundingEvent`: one settled funding time of one symbol and the rate that applied.
- `MarkKline`: one 1m kline of the mark price, from the exchange's history.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

from schemas.errors import SchemaError
from schemas.trades import Market

Side = Literal["BUY", "SELL"]
"""Side of a liquidation order: ``SELL`` closes a long (a long was liquidated), ``BUY``
closes a short."""

OpenInterestSource = Literal["poll", "history", "sim"]
"""Where an open-interest sample came from: the live poll of ``/fapi/v1/openInterest``,
the exchange's history (``/futures/data/openInterestHist``, 30 days only), or the
simulated market."""

FundingSource = Literal["exchange", "stream", "sim"]
"""How a funding event was learnt: the exchange's funding history
(``/fapi/v1/fundingRate``), the live mark-price stream (the last estimate before the
funding time passed), or the simulated market."""


class _SymbolRecord(msgspec.Struct, frozen=True, omit_defaults=True):
    """What every perpetuals record starts with: the symbol it is about."""

    exchange: str
    market: Market
    symbol: str

    @property
    def key(self) -> str:
        """Kafka key, the same as the symbol's trades."""
        return f"{self.exchange}:{self.market}:{self.symbol}"


class MarkPrice(_SymbolRecord, frozen=True, omit_defaults=True):
    """A symbol's mark price and funding estimate at one instant (Binance ``markPriceUpdate``).

    Attributes:
        time_us: The exchange's event time (``E``).
        mark_price: Mark price (``p``): what positions are valued and liquidated at.
        index_price: Index price (``i``): the spot price index the mark tracks.
        estimated_settle_price: Estimated settle price (``P``); only meaningful in the
            last hour before a funding time.
        funding_rate: The current funding-rate estimate (``r``) as a fraction per funding
            interval (0.0001 is 0.01 %); empty for a delivery contract (None here).
        next_funding_time_us: Next funding time (``T``); 0 for a delivery contract.
        received_us: When we read it off the socket.
    """

    time_us: int
    mark_price: Decimal
    index_price: Decimal
    estimated_settle_price: Decimal
    next_funding_time_us: int
    received_us: int
    funding_rate: Decimal | None = None


class Liquidation(_SymbolRecord, frozen=True, omit_defaults=True):
    """One liquidation order (Binance ``forceOrder``), as sampled by the exchange.

    Binance pushes at most one liquidation per symbol per 1000 ms: a second with more
    shows only its latest, so sums over these undercount the true liquidations.

    Attributes:
        time_us: The order's trade time (``o.T``).
        side: ``SELL`` liquidated a long, ``BUY`` a short.
        price: Order price (``o.p``), the bankruptcy price.
        avg_price: Average fill price (``o.ap``).
        qty: Original quantity (``o.q``), in the base asset.
        filled_qty: Accumulated filled quantity (``o.z``).
        last_filled_qty: Quantity filled by the last fill (``o.l``).
        status: Order status (``o.X``), e.g. ``FILLED``.
        order_type: ``LIMIT`` for every liquidation Binance has published.
        time_in_force: ``IOC`` for every liquidation Binance has published.
        event_time_us: Event time (``E``).
        received_us: When we read it off the socket.
    """

    time_us: int
    side: Side
    price: Decimal
    avg_price: Decimal
    qty: Decimal
    filled_qty: Decimal
    last_filled_qty: Decimal
    status: str
    order_type: str
    time_in_force: str
    event_time_us: int
    received_us: int

    @property
    def quote_volume(self) -> Decimal:
        """Filled quantity at its average price, in the quote asset (exact)."""
        return self.filled_qty * self.avg_price

    @property
    def is_long(self) -> bool:
        """Whether a long position was liquidated (the order sells)."""
        return self.side == "SELL"


class OpenInterest(_SymbolRecord, frozen=True, omit_defaults=True):
    """One sample of a symbol's open interest.

    Attributes:
        time_us: The exchange's time of the sample (``time`` of the poll, ``timestamp``
            of the history).
        open_interest: Open contracts, in the base asset.
        open_interest_value: Their value in the quote asset when the exchange gives it
            (history does, the live poll does not: the board values it at the mark).
        source: Where it came from (`OpenInterestSource`).
    """

    time_us: int
    open_interest: Decimal
    source: OpenInterestSource
    open_interest_value: Decimal | None = None


class FundingEvent(_SymbolRecord, frozen=True, omit_defaults=True):
    """A settled funding time of one symbol and the rate that applied.

    Attributes:
        funding_time_us: The funding time (Binance ``fundingTime``).
        funding_rate: The rate paid, a fraction: longs pay shorts when positive.
        mark_price: The mark price at the funding time, when known.
        source: How it was learnt (`FundingSource`).
    """

    funding_time_us: int
    funding_rate: Decimal
    source: FundingSource
    mark_price: Decimal | None = None


class MarkKline(msgspec.Struct, frozen=True):
    """One 1-minute kline of a symbol's mark price (Binance ``markPriceKlines``).

    Times are milliseconds since the epoch, as `schemas.candles.Candle`'s.
    """

    exchange: str
    market: Market
    symbol: str
    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    close_time: int


class InvalidPerpData(SchemaError):
    """A message decoded but breaks a rule no exchange's data breaks."""


def _positive(name: str, value: Decimal) -> None:
    if not value.is_finite() or value <= 0:
        raise InvalidPerpData(f"{name} must be a positive decimal, got {value}")


def _named(exchange: str, symbol: str, time_us: int) -> None:
    if not exchange or not symbol:
        raise InvalidPerpData("exchange and symbol must not be empty")
    if time_us < 0:
        raise InvalidPerpData(f"time must not be negative, got {time_us}")


def check_mark(mark: MarkPrice) -> MarkPrice:
    """Reject a mark price no exchange would publish.

    Raises:
        InvalidPerpData: An empty symbol, a negative time, a non-positive mark or index
            price, a negative settle price or a non-finite funding rate.
    """
    _named(mark.exchange, mark.symbol, mark.time_us)
    _positive("mark_price", mark.mark_price)
    _positive("index_price", mark.index_price)
    if not mark.estimated_settle_price.is_finite() or mark.estimated_settle_price < 0:
        raise InvalidPerpData(
            f"estimated_settle_price must not be negative, got {mark.estimated_settle_price}"
        )
    if mark.funding_rate is not None and not mark.funding_rate.is_finite():
        raise InvalidPerpData(f"funding_rate must be finite, got {mark.funding_rate}")
    if mark.next_funding_time_us < 0:
        raise InvalidPerpData("next_funding_time_us must not be negative")
    return mark


def check_liquidation(liquidation: Liquidation) -> Liquidation:
    """Reject a liquidation no exchange would publish.

    Raises:
        InvalidPerpData: An empty symbol, a negative time, a side other than BUY/SELL, a
            non-positive price or quantity, or a fill larger than the order.
    """
    _named(liquidation.exchange, liquidation.symbol, liquidation.time_us)
    if liquidation.side not in ("BUY", "SELL"):
        raise InvalidPerpData(f"side must be BUY or SELL, got {liquidation.side!r}")
    _positive("price", liquidation.price)
    _positive("qty", liquidation.qty)
    for name, value in (
        ("avg_price", liquidation.avg_price),
        ("filled_qty", liquidation.filled_qty),
        ("last_filled_qty", liquidation.last_filled_qty),
    ):
        if not value.is_finite() or value < 0:
            raise InvalidPerpData(f"{name} must not be negative, got {value}")
    if liquidation.filled_qty > liquidation.qty:
        raise InvalidPerpData("filled_qty is larger than the order's qty")
    return liquidation


def check_open_interest(sample: OpenInterest) -> OpenInterest:
    """Reject an open-interest sample no exchange would publish.

    Raises:
        InvalidPerpData: An empty symbol, a negative time, or a negative or non-finite
            open interest or value.
    """
    _named(sample.exchange, sample.symbol, sample.time_us)
    for name, value in (
        ("open_interest", sample.open_interest),
        ("open_interest_value", sample.open_interest_value),
    ):
        if value is not None and (not value.is_finite() or value < 0):
            raise InvalidPerpData(f"{name} must be a non-negative decimal, got {value}")
    return sample


def check_funding(event: FundingEvent) -> FundingEvent:
    """Reject a funding event no exchange would publish.

    Raises:
        InvalidPerpData: An empty symbol, a negative time, a non-finite rate, or a
            non-positive mark price.
    """
    _named(event.exchange, event.symbol, event.funding_time_us)
    if not event.funding_rate.is_finite():
        raise InvalidPerpData(f"funding_rate must be finite, got {event.funding_rate}")
    if event.mark_price is not None:
        _positive("mark_price", event.mark_price)
    return event


_encoder = msgspec.json.Encoder(decimal_format="string")
encode_perp = _encoder.encode
"""Encode a mark price, liquidation, open-interest sample or funding event (JSON,
decimals as strings)."""


def mark_decoder() -> msgspec.json.Decoder[MarkPrice]:
    """A decoder of `MarkPrice` from the wire form; one per consumer."""
    return msgspec.json.Decoder(MarkPrice)


def liquidation_decoder() -> msgspec.json.Decoder[Liquidation]:
    """A decoder of `Liquidation` from the wire form; one per consumer."""
    return msgspec.json.Decoder(Liquidation)


def open_interest_decoder() -> msgspec.json.Decoder[OpenInterest]:
    """A decoder of `OpenInterest` from the wire form; one per consumer."""
    return msgspec.json.Decoder(OpenInterest)


def funding_decoder() -> msgspec.json.Decoder[FundingEvent]:
    """A decoder of `FundingEvent` from the wire form; one per consumer."""
    return msgspec.json.Decoder(FundingEvent)
