"""Binance partial-depth normaliser: ``<symbol>@depth20@100ms`` messages to `BookDepth`."""

from __future__ import annotations

import msgspec

from flows.sources.binance.trades import (
    BinanceDecodeError,
    decode_message,
    time_us_from_binance,
    to_decimal,
)
from schemas.depth import BookDepth, Level
from schemas.trades import Market

DEPTH_STREAM = "depth20@100ms"
"""The partial-depth stream of watched symbols, as a suffix (``btcusdt@depth20@100ms``)."""

_RawLevel = tuple[str, str]


class _Depth(msgspec.Struct):
    """The fields of a partial-depth payload, spot's and USDⓈ-M's, by their wire names."""

    lastUpdateId: int | None = None
    bids: list[_RawLevel] | None = None
    asks: list[_RawLevel] | None = None
    e: str = ""
    E: int | None = None
    T: int | None = None
    s: str = ""
    u: int | None = None
    b: list[_RawLevel] | None = None
    a: list[_RawLevel] | None = None


class _Wrapped(msgspec.Struct):
    """The combined-stream wrapper: the stream's name and its payload."""

    stream: str = ""
    data: _Depth | None = None


class DepthDecoder:
    """Decode Binance ``@depth20@100ms`` messages (spot and USDⓈ-M) into `BookDepth`.

    Spot's partial depth carries neither symbol nor time: the symbol comes from the
    stream's name (``btcusdt@depth20@100ms``), the update id from ``lastUpdateId``, and
    `BookDepth.time_us` stays None. USDⓈ-M sends a ``depthUpdate`` event with the
    symbol ``s``, the event time ``E``, the transaction time ``T`` (which becomes
    `BookDepth.time_us`, falling back to ``E``) and the final update id ``u``. Real
    payloads (shortened to their first levels)::

        {"stream":"btcusdt@depth20@100ms","data":{"lastUpdateId":11655824136,
         "bids":[["35496.06000000","0.29859300"],["35494.02000000","0.00056300"]],
         "asks":[["35496.07000000","0.34867100"],["35496.66000000","0.26443500"]]}}

        {"stream":"linkusdt@depth20@100ms","data":{"e":"depthUpdate","E":1623494540955,
         "T":1623494540947,"s":"LINKUSDT","U":510743911258,"u":510743914224,
         "pu":510743910356,"b":[["21.030","12.37"],["21.029","448.68"]],
         "a":[["21.031","4.66"],["21.034","20.68"]]}}

    Levels are put in book order (bids from the highest price down, asks from the lowest
    up) whatever order they came in. A book is refused when a level is not a positive
    price with a positive quantity (a zero quantity belongs to the diff-depth stream,
    whose events look the same on USDⓈ-M) or when its best bid is not below its best ask.
    One decoder per consumer (it holds msgspec decoders).

    Args:
        market: ``spot`` or ``usdm``.
        exchange: The exchange name stamped on every book.
    """

    def __init__(self, market: Market, *, exchange: str = "binance") -> None:
        self.market: Market = market
        self.exchange = exchange
        self._wrapped, self._bare = msgspec.json.Decoder(_Wrapped), msgspec.json.Decoder(_Depth)

    def decode(self, raw: bytes | str, received_us: int, stream: str = "") -> BookDepth:
        """Decode one partial-depth message.

        Args:
            raw: The message exactly as received: the combined-stream wrapper, or the
                bare payload of a single-stream connection.
            received_us: When it was read off the socket, µs since the epoch.
            stream: The stream it came on, when `raw` is a bare payload (spot's names
                its symbol only there).

        Returns:
            The book.

        Raises:
            BinanceDecodeError: ``bad_json``, ``bad_type``, ``missing_field``,
                ``bad_decimal`` or ``bad_book`` when the message is not a well-formed
                partial depth.
        """
        wrapped = decode_message(self._wrapped, raw)
        if wrapped.data is not None:
            data, stream = wrapped.data, wrapped.stream or stream
        else:  # a single-stream connection's bare payload
            data = decode_message(self._bare, raw)
        if data.e and data.e != "depthUpdate":
            raise BinanceDecodeError("bad_type", f"not a depth update: e={data.e!r}")
        if data.e:  # USDⓈ-M
            symbol, update_id, bids, asks = data.s, data.u, data.b, data.a
            names = ("s", "u", "b", "a")
            exchange_time = data.T if data.T is not None else data.E
        else:
            symbol = stream.partition("@")[0].upper()
            update_id, bids, asks = data.lastUpdateId, data.bids, data.asks
            names = ("stream", "lastUpdateId", "bids", "asks")
            exchange_time = None
        values = (symbol, update_id, bids, asks)
        if any(v is None or v == "" for v in values):
            absent = [n for n, v in zip(names, values, strict=True) if v is None or v == ""]
            raise BinanceDecodeError("missing_field", "missing " + ",".join(absent))
        assert update_id is not None and bids is not None and asks is not None
        book_bids = sorted(_levels(bids, "bid"), reverse=True)
        book_asks = sorted(_levels(asks, "ask"))
        if book_bids and book_asks and book_bids[0][0] >= book_asks[0][0]:
            raise BinanceDecodeError(
                "bad_book", f"crossed: best bid {book_bids[0][0]} >= best ask {book_asks[0][0]}"
            )
        return BookDepth(
            exchange=self.exchange,
            market=self.market,
            symbol=symbol,
            update_id=update_id,
            bids=book_bids,
            asks=book_asks,
            received_us=received_us,
            time_us=None if exchange_time is None else time_us_from_binance(exchange_time),
        )


def _levels(raw: list[_RawLevel], side: str) -> list[Level]:
    """One side's levels as exact decimals, each a positive price and quantity."""
    out: list[Level] = []
    for price_text, qty_text in raw:
        price, qty = to_decimal(price_text, side), to_decimal(qty_text, side)
        if price <= 0 or qty <= 0:
            raise BinanceDecodeError("bad_book", f"{side} level {price_text}, {qty_text}")
        out.append((price, qty))
    return out


def depth_stream(symbol: str) -> str:
    """The partial-depth stream of a symbol: ``btcusdt@depth20@100ms``."""
    return f"{symbol.lower()}@{DEPTH_STREAM}"
