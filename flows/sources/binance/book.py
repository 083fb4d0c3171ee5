"""Binance bookTicker normaliser: raw WebSocket best bid/offer messages to `Quote`."""

from __future__ import annotations

import msgspec

from flows.sources.binance.trades import (
    BinanceDecodeError,
    decode_message,
    time_us_from_binance,
    to_decimal,
)
from schemas.quotes import Quote
from schemas.trades import Market


class _BookTicker(msgspec.Struct):
    """The fields of a bookTicker event, by their wire names (all optional here)."""

    e: str = ""
    s: str = ""
    u: int | None = None
    b: str | None = None
    B: str | None = None
    a: str | None = None
    A: str | None = None
    T: int | None = None
    E: int | None = None


class _Wrapped(_BookTicker):
    """A bare event, or the combined-stream wrapper around one."""

    stream: str = ""
    data: _BookTicker | None = None


class BookTickerDecoder:
    """Decode Binance ``@bookTicker`` messages (spot and USDⓈ-M) into `Quote`.

    Spot sends no event type and no times; USDⓈ-M adds ``e``, the event time ``E`` and
    the transaction time ``T``, which becomes `Quote.time_us` (falling back to ``E``).
    Real payloads::

        {"stream":"bnbusdt@bookTicker","data":{"u":400900217,"s":"BNBUSDT",
         "b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}

        {"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5123107839020,
         "s":"BTCUSDT","b":"61800.20","B":"2.507","a":"61800.30","A":"2.510",
         "T":1723161256313,"E":1723161256313}}

    One decoder per consumer (it holds a msgspec decoder).
    """

    def __init__(self, market: Market, *, exchange: str = "binance") -> None:
        """Build a decoder for one market.

        Args:
            market: ``spot`` or ``usdm``.
            exchange: The exchange name stamped on every quote.
        """
        self.market: Market = market
        self.exchange = exchange
        self._decoder = msgspec.json.Decoder(_Wrapped)

    def decode(self, raw: bytes | str, received_us: int) -> Quote:
        """Decode one bookTicker message.

        Args:
            raw: The message exactly as received.
            received_us: When it was read off the socket, µs since the epoch.

        Returns:
            The quote.

        Raises:
            BinanceDecodeError: ``bad_json``, ``bad_type``, ``missing_field`` or
                ``bad_decimal`` when the message is not a well-formed bookTicker.
        """
        msg = decode_message(self._decoder, raw)
        ev: _BookTicker = msg.data if msg.data is not None else msg
        if ev.e and ev.e != "bookTicker":
            raise BinanceDecodeError("bad_type", f"not a bookTicker: e={ev.e!r}")
        if not ev.s or ev.u is None or None in (ev.b, ev.B, ev.a, ev.A):
            absent = [n for n in ("s", "u", "b", "B", "a", "A") if getattr(ev, n) in (None, "")]
            raise BinanceDecodeError("missing_field", "missing " + ",".join(absent))
        assert ev.b is not None and ev.B is not None and ev.a is not None and ev.A is not None
        exchange_time = ev.T if ev.T is not None else ev.E
        return Quote(
            exchange=self.exchange,
            market=self.market,
            symbol=ev.s,
            update_id=ev.u,
            bid_price=to_decimal(ev.b, "b"),
            bid_qty=to_decimal(ev.B, "B"),
            ask_price=to_decimal(ev.a, "a"),
            ask_qty=to_decimal(ev.A, "A"),
            received_us=received_us,
            time_us=None if exchange_time is None else time_us_from_binance(exchange_time),
        )
