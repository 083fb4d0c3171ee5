"""Binance USDⓈ-M perpetuals data, live: mark prices, liquidations and open interest.

Three payloads become `schemas.perps` records, with exact decimals:

- ``<symbol>@markPrice@1s`` (``markPriceUpdate``) -> `MarkPrice` (`MarkPriceDecoder`);
- ``!forceOrder@arr`` (``forceOrder``) -> `Liquidation` (`LiquidationDecoder`);
- the body of ``GET /fapi/v1/openInterest`` -> `OpenInterest` (`parse_open_interest`).

Binance's documented examples (developers.binance.com, USDⓈ-M Futures, WebSocket Market
Streams and Market Data Endpoints)::

    {"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000",
     "i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}

    {"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT",
     "f":"IOC","q":"0.014","p":"9910","ap":"9910","X":"FILLED","l":"0.014","z":"0.014",
     "T":1568014460893}}

    {"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}

Live messages carry more than the examples (``ap``, the mark's moving average, ``ps``,
``st``); what is not read here is ignored. A delivery contract's mark price has an empty
funding rate and a next funding time of 0. Every failure is a `BinanceDecodeError` with a
short reason, so the caller dead-letters the message and goes on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar, Generic, TypeVar

import msgspec

from flows.sources.binance.trades import BinanceDecodeError, time_us_from_binance, to_decimal
from schemas.perps import (
    InvalidPerpData,
    Liquidation,
    MarkPrice,
    OpenInterest,
    check_liquidation,
    check_mark,
    check_open_interest,
)
from schemas.trades import Market

FORCE_ORDER_STREAM = "!forceOrder@arr"
"""Every symbol's liquidation orders, one stream for the whole market."""

MARK_PRICE_STREAM = "markPrice@1s"
"""A symbol's mark price each second, as a stream suffix (``btcusdt@markPrice@1s``)."""


class _Mark(msgspec.Struct, tag_field="e", tag="markPriceUpdate"):
    E: int  # event time
    s: str
    p: str  # mark price
    i: str  # index price
    P: str  # estimated settle price
    T: int  # next funding time; 0 for a delivery contract
    r: str = ""  # funding rate; empty for a delivery contract


class _Order(msgspec.Struct):
    s: str
    S: str  # side
    o: str  # order type
    f: str  # time in force
    q: str  # original quantity
    p: str  # price
    ap: str  # average price
    X: str  # status
    l: str  # noqa: E741 - Binance's own name: last filled quantity
    z: str  # accumulated filled quantity
    T: int  # trade time


class _ForceOrder(msgspec.Struct, tag_field="e", tag="forceOrder"):
    E: int
    o: _Order


T = TypeVar("T")
E = TypeVar("E", bound=msgspec.Struct)
R = TypeVar("R")


class _Wrapped(msgspec.Struct, Generic[T]):
    """The combined-stream wrapper ``{"stream": ..., "data": ...}``."""

    stream: str
    data: T


class _OpenInterest(msgspec.Struct, rename="camel"):
    symbol: str
    open_interest: str
    time: int


def _decode(decoder: msgspec.json.Decoder[T], raw: bytes | str) -> T:
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        reason = "missing_field" if "missing required field" in str(exc) else "bad_type"
        raise BinanceDecodeError(reason, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise BinanceDecodeError("bad_json", str(exc)) from None


def _unwrap(
    raw: bytes | str,
    wrapped: msgspec.json.Decoder[_Wrapped[T]],
    bare: msgspec.json.Decoder[T],
) -> T:
    """The event of a combined-stream message, or of a bare one."""
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    if text.lstrip().startswith('{"stream"'):
        return _decode(wrapped, raw).data
    return _decode(bare, raw)


def _checked(check: Callable[[R], R], record: R) -> R:
    """`record` if it passes `check`; an ``invalid_perp`` decode error otherwise."""
    try:
        return check(record)
    except InvalidPerpData as exc:
        raise BinanceDecodeError("invalid_perp", str(exc)) from None


class _StreamDecoder(ABC, Generic[E, R]):
    """Decodes one kind of stream event, bare or combined-stream, into a record.

    One decoder per consumer (it holds msgspec decoders).

    Args:
        exchange: The exchange name stamped on every record.
    """

    shape: ClassVar[type[msgspec.Struct]]
    """The event it reads (its type ``e`` is the struct's tag)."""

    def __init__(self, *, exchange: str = "binance") -> None:
        self.exchange = exchange
        self.market: Market = "usdm"
        self._wrapped: msgspec.json.Decoder[_Wrapped[E]] = msgspec.json.Decoder(
            _Wrapped[self.shape]  # type: ignore[name-defined]  # a runtime type argument
        )
        self._bare: msgspec.json.Decoder[E] = msgspec.json.Decoder(self.shape)

    def decode(self, raw: bytes | str, received_us: int) -> R:
        """Decode one message.

        Args:
            raw: The message exactly as received.
            received_us: When it was read off the socket, µs since the epoch.

        Raises:
            BinanceDecodeError: ``bad_json``, ``bad_type`` (another event type among
                them), ``missing_field``, ``bad_decimal`` or ``invalid_perp`` (a value no
                exchange publishes).
        """
        return self._record(_unwrap(raw, self._wrapped, self._bare), received_us)

    @abstractmethod
    def _record(self, ev: E, received_us: int) -> R:
        """The record of one decoded event (each kind of stream says how)."""


class MarkPriceDecoder(_StreamDecoder[_Mark, MarkPrice]):
    """Decode ``markPriceUpdate`` messages (bare or combined-stream) into `MarkPrice`."""

    shape = _Mark

    def _record(self, ev: _Mark, received_us: int) -> MarkPrice:
        mark = MarkPrice(
            self.exchange, self.market, ev.s, time_us_from_binance(ev.E),
            mark_price=to_decimal(ev.p, "p"),
            index_price=to_decimal(ev.i, "i"),
            estimated_settle_price=to_decimal(ev.P, "P"),
            # A delivery contract has no funding: "r" is empty and "T" is 0.
            funding_rate=to_decimal(ev.r, "r") if ev.r else None,
            next_funding_time_us=time_us_from_binance(ev.T) if ev.T else 0,
            received_us=received_us,
        )  # fmt: skip
        return _checked(check_mark, mark)


class LiquidationDecoder(_StreamDecoder[_ForceOrder, Liquidation]):
    """Decode ``forceOrder`` messages (bare or combined-stream) into `Liquidation`."""

    shape = _ForceOrder

    def _record(self, ev: _ForceOrder, received_us: int) -> Liquidation:
        o = ev.o
        if o.S not in ("BUY", "SELL"):
            raise BinanceDecodeError("bad_type", f"S={o.S!r}")
        liquidation = Liquidation(
            self.exchange, self.market, o.s, time_us_from_binance(o.T),
            side="BUY" if o.S == "BUY" else "SELL",
            price=to_decimal(o.p, "p"),
            avg_price=to_decimal(o.ap, "ap"),
            qty=to_decimal(o.q, "q"),
            filled_qty=to_decimal(o.z, "z"),
            last_filled_qty=to_decimal(o.l, "l"),
            status=o.X, order_type=o.o, time_in_force=o.f,
            event_time_us=time_us_from_binance(ev.E),
            received_us=received_us,
        )  # fmt: skip
        return _checked(check_liquidation, liquidation)


_open_interest = msgspec.json.Decoder(_OpenInterest)


def parse_open_interest(body: bytes, *, exchange: str = "binance") -> OpenInterest:
    """Parse a ``GET /fapi/v1/openInterest`` response into a polled `OpenInterest`.

    Args:
        body: The 200 response's body.
        exchange: The exchange name stamped on the record.

    Raises:
        BinanceDecodeError: ``bad_json``, ``bad_type``, ``bad_decimal`` or
            ``invalid_perp`` (a negative open interest).
    """
    row = _decode(_open_interest, body)
    sample = OpenInterest(
        exchange, "usdm", row.symbol, time_us_from_binance(row.time),
        to_decimal(row.open_interest, "openInterest"), source="poll",
    )  # fmt: skip
    return _checked(check_open_interest, sample)
