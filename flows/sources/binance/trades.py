"""Binance normaliser: raw WebSocket trade and aggTrade messages to `Trade`."""

from __future__ import annotations

import logging
from collections import Counter
from decimal import Decimal, InvalidOperation
from typing import TypeVar

import msgspec

from flows.errors import FlowError
from schemas.trades import InvalidTrade, Market, Trade, check_trade

logger = logging.getLogger(__name__)

# Binance trade times are ms since the epoch (~1.7e12 today); a spot stream subscribed with
# timeUnit=MICROSECOND and spot archives since 2025-01-01 carry µs (~1.7e15). 1e14 is the
# year 5138 in ms and 1973 in µs, so one threshold separates the two for any real trade.
_MICROS_THRESHOLD = 100_000_000_000_000


class BinanceDecodeError(FlowError, ValueError):
    """A Binance message or archive row that cannot become a trade.

    Attributes:
        reason: A short machine reason for the dead-letter topic: ``bad_json``,
            ``bad_type``, ``missing_field``, ``bad_decimal``, ``bad_int``, ``bad_bool``,
            ``bad_columns`` or ``invalid_trade``.
        detail: What exactly was wrong, for a human.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def time_us_from_binance(t: int) -> int:
    """Convert a Binance trade time to microseconds, whether it was sent in ms or µs.

    Args:
        t: Binance `T` (WebSocket) or `time`/`transact_time` (archive), in ms or µs.

    Returns:
        The same instant in microseconds since the epoch.
    """
    return t if t >= _MICROS_THRESHOLD else t * 1000


_M = TypeVar("_M")


def decode_message(decoder: msgspec.json.Decoder[_M], raw: bytes | str) -> _M:
    """Decode one stream message with `decoder`, failures as `BinanceDecodeError`.

    Raises:
        BinanceDecodeError: ``bad_json`` when `raw` is not JSON, ``bad_type`` when it
            does not have the decoder's shape.
    """
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise BinanceDecodeError("bad_type", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise BinanceDecodeError("bad_json", str(exc)) from None


def to_decimal(text: str, field: str) -> Decimal:
    """Parse a Binance decimal string exactly.

    Args:
        text: The decimal as Binance prints it, e.g. ``"61800.30"``.
        field: The field name, for the error detail.

    Returns:
        The exact decimal.

    Raises:
        BinanceDecodeError: ``bad_decimal`` when `text` is not a finite decimal.
    """
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError, ValueError):
        raise BinanceDecodeError("bad_decimal", f"{field}={text!r}") from None
    if not value.is_finite():
        raise BinanceDecodeError("bad_decimal", f"{field}={text!r}")
    return value


def wire_trade(
    market: Market,
    symbol: str,
    trade_id: int,
    price: str,
    qty: str,
    time: int,
    buyer_is_maker: bool,
    *,
    first_trade_id: int | None = None,
    last_trade_id: int | None = None,
    exchange: str = "binance",
    names: tuple[str, str] = ("p", "q"),
) -> Trade:
    """A `Trade` from a Binance trade's values as they come on the wire, stream or REST.

    Args:
        market: ``spot`` or ``usdm``.
        symbol: The exchange symbol.
        trade_id: The trade id, or the aggregate id of an aggTrade.
        price: The price as Binance prints it.
        qty: The quantity as Binance prints it.
        time: The trade time, ms or µs (see `time_us_from_binance`).
        buyer_is_maker: Binance's ``m``.
        first_trade_id: An aggTrade's first raw trade id.
        last_trade_id: An aggTrade's last raw trade id.
        exchange: The exchange name stamped on the trade.
        names: The wire names of price and quantity, for an error's detail.

    Raises:
        BinanceDecodeError: ``bad_decimal`` when price or quantity is not a decimal.
    """
    return Trade(
        exchange=exchange,
        market=market,
        symbol=symbol,
        trade_id=trade_id,
        price=to_decimal(price, names[0]),
        qty=to_decimal(qty, names[1]),
        time_us=time_us_from_binance(time),
        buyer_is_maker=buyer_is_maker,
        first_trade_id=first_trade_id,
        last_trade_id=last_trade_id,
    )


def checked(trade: Trade) -> Trade:
    """Apply `check_trade`, turning its error into a `BinanceDecodeError`.

    Args:
        trade: A freshly decoded trade.

    Returns:
        The same trade.

    Raises:
        BinanceDecodeError: ``invalid_trade`` on a value no exchange would print.
    """
    try:
        return check_trade(trade)
    except InvalidTrade as exc:
        raise BinanceDecodeError("invalid_trade", str(exc)) from None


class _Event(msgspec.Struct):
    """The fields of a Binance stream event that trades use, by their wire names.

    Every field is optional and typed loosely where Binance reuses a letter (``a`` is the
    aggregate id of an aggTrade, the best ask of a bookTicker and the ask levels of a
    depth update; ``l`` is an aggTrade's last id but a ticker's low price), so that one
    decoder reads every stream and only trades are checked strictly. `msgspec.Raw` keeps
    the depth levels unparsed: skipping a depth update costs a scan, not a list build.
    """

    e: str = ""
    s: str = ""
    t: int | None = None
    a: msgspec.Raw = msgspec.Raw()
    p: str | None = None
    q: str | None = None
    f: int | str | None = None
    l: int | str | None = None  # noqa: E741 - Binance's own field name
    T: int | None = None
    m: bool | None = None
    X: str | None = None


class _Message(_Event):
    """A whole message: a combined-stream wrapper, a bare event or a REST snapshot."""

    stream: str = ""
    data: _Event | None = None
    lastUpdateId: int | None = None


class _Envelope(msgspec.Struct):
    """Only what tells a trade from anything else; used when the full decode failed."""

    e: str = ""
    stream: str = ""
    data: msgspec.Raw = msgspec.Raw()


class BinanceDecoder:
    """Decode raw Binance WebSocket messages (spot and USDⓈ-M) into `Trade`.

    Reads a bare event or the combined-stream wrapper ``{"stream": ..., "data": ...}``.
    `trade` and `aggTrade` events become trades; every other message (bookTicker, depth,
    kline, tickers, REST depth snapshots, subscription replies) is recognised and
    skipped, counted in `skipped` by kind, never mistaken for a trade.

    A USDⓈ-M ``@trade`` event carries ``X``: ``MARKET`` for an order-book fill, or
    ``INSURANCE_FUND``, ``ADL`` or ``NA`` for a liquidation taken over by the insurance
    fund, an auto-deleveraging fill or an unclassified print. Only ``MARKET`` prints are
    kept; the others are skipped as ``non_market:<X>``. Why: the candle flow must equal
    Binance's klines, which are built from market trades. Binance documents that its
    aggTrade stream and endpoint aggregate "only market trades ... the insurance fund
    trades and ADL trades won't be aggregated"; users on its developer forum report
    insurance-fund prints off the tick grid and percents away from the book, spikes that
    Binance's own 1m charts do not show. The shared 2024-08-08 BTCUSDT capture cannot
    settle it alone: all of its 21,313 prints are ``MARKET`` (with contiguous ids), and
    their per-minute aggregation equals the official 1m klines on every field, count
    included. Spot trades and aggTrades carry no ``X`` and are always kept.

    Examples of the payloads it reads (real messages)::

        {"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256322,"T":1723161256322,
         "s":"BTCUSDT","t":5266583935,"p":"61800.30","q":"0.006","X":"MARKET","m":false}}

        {"stream":"ctkusdt@aggTrade","data":{"e":"aggTrade","E":1626992741575,"a":16599292,
         "s":"CTKUSDT","p":"1.01100","q":"10","f":23961322,"l":23961322,"T":1626992741421,
         "m":false}}

        {"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT",
         "a":15683430,"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,
         "T":1633998523963,"m":false,"M":true}}

    and skips, for instance::

        {"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5123107839020,
         "s":"BTCUSDT","b":"61800.20","B":"2.507","a":"61800.30","A":"2.510",
         "T":1723161256313,"E":1723161256313}}

        {"lastUpdateId":5123107852948,"E":1723161256501,"T":1723161256493,
         "bids":[["61800.20","2.909"], ...],"asks":[...]}

    ``m: true`` means the buyer was the maker (the taker sold). ``T`` is ms, or µs on a
    spot stream opened with ``timeUnit=MICROSECOND``; see `time_us_from_binance`.

    One decoder per consumer: it keeps counters and a msgspec decoder that is not shared.

    Attributes:
        skipped: Messages recognised and skipped, by kind (``bookTicker``,
            ``depthUpdate``, ``kline``, ``rest_snapshot``, ``non_market:ADL``, ...).
    """

    def __init__(self, market: Market, *, exchange: str = "binance", symbol: str | None = None):
        """Build a decoder for one market.

        Args:
            market: ``spot`` or ``usdm``; the payload does not say which.
            exchange: The exchange name stamped on every trade.
            symbol: Overrides the event's ``s`` when given.
        """
        self.market: Market = market
        self.exchange = exchange
        self.symbol = symbol
        self.skipped: Counter[str] = Counter()
        self._decoder = msgspec.json.Decoder(_Message | list[msgspec.Raw])
        self._envelope = msgspec.json.Decoder(_Envelope | list[msgspec.Raw])

    def decode(self, raw: bytes | bytearray | memoryview | str) -> Trade | None:
        """Decode one raw message.

        Args:
            raw: The message exactly as received (JSON text).

        Returns:
            The trade, or None when the message is not a trade (counted in `skipped`).

        Raises:
            BinanceDecodeError: When the message is not JSON, or is a trade event with a
                missing, mistyped or impossible field.
        """
        try:
            msg = self._decoder.decode(raw)
        except msgspec.ValidationError as exc:
            self._mistyped(raw, exc)
            return None
        except msgspec.DecodeError as exc:
            raise BinanceDecodeError("bad_json", str(exc)) from None
        if isinstance(msg, list):
            self.skipped["rest_array"] += 1
            return None
        event: _Event = msg.data if msg.data is not None else msg
        kind = event.e
        if kind == "trade":
            return self._trade(event)
        if kind == "aggTrade":
            return self._agg_trade(event)
        if not kind:
            # Spot bookTicker has no "e"; the stream name says what it is.
            if msg.stream:
                kind = msg.stream.partition("@")[2] or "unknown"
            elif msg.lastUpdateId is not None:
                kind = "rest_snapshot"
            else:
                kind = "unknown"
        self.skipped[kind] += 1
        return None

    def _mistyped(self, raw: bytes | bytearray | memoryview | str, exc: Exception) -> None:
        """Skip a non-trade message whose fields clash with ours; reject a mistyped trade."""
        try:
            env = self._envelope.decode(raw)
        except msgspec.DecodeError:
            raise BinanceDecodeError("bad_type", str(exc)) from None
        if isinstance(env, list):
            raise BinanceDecodeError("bad_type", str(exc))
        kind = env.e
        if not kind and env.data:
            try:
                kind = msgspec.json.decode(env.data, type=_Envelope).e
            except msgspec.DecodeError:
                raise BinanceDecodeError("bad_type", str(exc)) from None
        if kind in ("trade", "aggTrade") or env.stream.endswith(("@trade", "@aggTrade")):
            raise BinanceDecodeError("bad_type", str(exc))
        self.skipped[kind or "unknown"] += 1

    def _trade(self, ev: _Event) -> Trade | None:
        if ev.t is None or ev.p is None or ev.q is None or ev.T is None or ev.m is None:
            raise BinanceDecodeError("missing_field", _missing(ev, "stpqTm"))
        if not ev.s and not self.symbol:
            raise BinanceDecodeError("missing_field", "missing s")
        if ev.X is not None and ev.X != "MARKET":
            self.skipped["non_market:" + ev.X] += 1
            return None
        return checked(
            wire_trade(
                self.market, self.symbol or ev.s, ev.t, ev.p, ev.q, ev.T, ev.m,
                exchange=self.exchange,
            )
        )  # fmt: skip

    def _agg_trade(self, ev: _Event) -> Trade:
        if not ev.a or ev.p is None or ev.q is None or ev.T is None or ev.m is None:
            raise BinanceDecodeError("missing_field", _missing(ev, "sapqTmfl"))
        if ev.f is None or ev.l is None:
            raise BinanceDecodeError("missing_field", _missing(ev, "fl"))
        if not ev.s and not self.symbol:
            raise BinanceDecodeError("missing_field", "missing s")
        if not isinstance(ev.f, int) or not isinstance(ev.l, int):
            raise BinanceDecodeError("bad_type", f"f={ev.f!r} l={ev.l!r}")
        try:
            agg_id = int(bytes(ev.a))
        except ValueError:
            raise BinanceDecodeError("bad_type", f"a={bytes(ev.a)!r}") from None
        return checked(
            wire_trade(
                self.market, self.symbol or ev.s, agg_id, ev.p, ev.q, ev.T, ev.m,
                first_trade_id=ev.f, last_trade_id=ev.l, exchange=self.exchange,
            )
        )  # fmt: skip


def _missing(ev: _Event, fields: str) -> str:
    """Name the required fields an event lacks."""
    absent = [
        name
        for name in fields
        if (not getattr(ev, name) if name in "as" else getattr(ev, name) is None)
    ]
    return "missing " + ",".join(absent)
