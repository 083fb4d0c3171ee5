"""The WebSocket protocol: a connection's JSON operations, checked and applied to the hub.

Client to server, one JSON object per text message (`id` names a subscription; the
server makes one up, `s1`, `s2`, ..., when a subscribe has none):

    {"op": "subscribe", "channel": "ranks", "id": "top", "filter": {...ScanFilter}}
    {"op": "subscribe", "channel": "candles", "id": "c", "exchange": "binance",
     "market": "spot", "symbol": "BTCUSDT", "interval": "1m"}
    {"op": "subscribe", "channel": "signals", "id": "s", "symbol": "BTCUSDT",
     "name": "volume_spike", "timeframe": "1m"}        (every filter field optional)
    {"op": "filter", "id": "top", "filter": {...}}    (new filter, new snapshot)
    {"op": "unsubscribe", "id": "top"}
    {"op": "ping"}

Server to client, `{"type": ..., "id": <subscription>, ...}`: `subscribed` (then the
channel's first data), `snapshot`, `diff`, `candle`, `close`, `signal`, `unsubscribed`,
`pong`, `dropped` (`count` updates lost by a slow connection; ranks subscriptions get a
fresh snapshot after it), and `error` (`code`, `message`, and the `id` it concerns).
An error never closes the socket; the server closes it only with a code and a reason:
1008 (too slow), 1013 (too many clients, try again later), 1011 (server error),
1001 (server shutting down). docs/websocket.md has the full protocol with examples.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Literal

import msgspec

from api.errors import ApiError, InvalidRequest
from api.live.clients import Client, Message, control
from api.live.hub import Hub, SignalMatch
from api.services.filter_eval import compile_filter
from api.services.filters import parse_filter

MAX_MESSAGE = 64 * 1024
"""Longest client message accepted (a filter with a full watch list fits)."""

MAX_SUBSCRIPTIONS = 32
"""Subscriptions one connection may hold."""


class _Op(msgspec.Struct, forbid_unknown_fields=True):
    op: str


class _Ping(_Op):
    pass


class _Unsubscribe(_Op):
    id: str


class _Filter(_Op):
    id: str
    filter: dict[str, Any]


class _Subscribe(_Op, forbid_unknown_fields=True):
    channel: Literal["ranks", "candles", "signals"]
    id: str | None = msgspec.field(default=None)


class _SubscribeRanks(_Subscribe):
    filter: dict[str, Any] = msgspec.field(default_factory=dict)


class _SubscribeCandles(_Subscribe):
    exchange: str = ""
    market: str = ""
    symbol: str = ""
    interval: str = ""


class _SubscribeSignals(_Subscribe):
    symbol: str | None = None
    name: str | None = None
    timeframe: str | None = None


_OPS: dict[str, type[_Op]] = {
    "ping": _Ping,
    "subscribe": _Subscribe,
    "unsubscribe": _Unsubscribe,
    "filter": _Filter,
}
_CHANNELS: dict[str, type[_Subscribe]] = {
    "ranks": _SubscribeRanks,
    "candles": _SubscribeCandles,
    "signals": _SubscribeSignals,
}


class Session:
    """One WebSocket connection's operations, applied to the hub.

    Replies go through the client's queue, so they stay in order with the data they
    announce (`subscribed` comes before the subscription's first snapshot).

    Args:
        hub: The process's hub.
        client: The connection's client in the hub.
    """

    def __init__(self, hub: Hub, client: Client) -> None:
        self.hub = hub
        self.client = client
        self._ids: Callable[[], int] = itertools.count(1).__next__

    async def handle(self, text: str | bytes) -> None:
        """Apply one client message; a bad one is answered with an `error` message.

        Args:
            text: The message as received.
        """
        sub_id: str | None = None
        try:
            op = _parse(text)
            sub_id = getattr(op, "id", None)
            if isinstance(op, _Ping):
                self.client.put(None, control("pong"))
            elif isinstance(op, _Unsubscribe):
                self.hub.unsubscribe(self.client, op.id)
                self.client.put(None, control("unsubscribed", id=op.id))
            elif isinstance(op, _Filter):
                compiled = compile_filter(parse_filter(op.filter))
                self.hub.change_filter(self.client, op.id, compiled)
            else:
                assert isinstance(op, _Subscribe)
                sub_id = await self._subscribe(op)
        except ApiError as exc:
            self.client.put(None, error(exc.code, exc.message, sub_id))

    async def _subscribe(self, op: _Subscribe) -> str:
        if op.id is not None and not 0 < len(op.id) <= 64:
            raise InvalidRequest("a subscription id is 1 to 64 characters")
        if len(self.client.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise InvalidRequest(
                f"a connection holds at most {MAX_SUBSCRIPTIONS} subscriptions",
                code="too_many_subscriptions",
            )
        sub_id = op.id if op.id is not None else self._new_id()
        ack = control("subscribed", id=sub_id, channel=op.channel)
        if isinstance(op, _SubscribeRanks):
            compiled = compile_filter(parse_filter(op.filter))
            self.hub.subscribe_ranks(self.client, sub_id, compiled, ack)
        elif isinstance(op, _SubscribeCandles):
            if not (op.exchange and op.market and op.symbol and op.interval):
                raise InvalidRequest("candles need exchange, market, symbol and interval")
            await self.hub.subscribe_candles(
                self.client, sub_id, op.exchange, op.market, op.symbol, op.interval, ack
            )
        else:
            assert isinstance(op, _SubscribeSignals)
            match = SignalMatch.of(op.symbol, op.name, op.timeframe)
            self.hub.subscribe_signals(self.client, sub_id, match, ack)
        return sub_id

    def _new_id(self) -> str:
        while (sub_id := f"s{self._ids()}") in self.client.subscriptions:
            pass
        return sub_id


def error(code: str, message: str, sub_id: str | None = None) -> Message:
    """An `error` message: a stable `code`, a `message` to act on, the subscription `id`."""
    if sub_id is None:
        return control("error", code=code, message=message)
    return control("error", code=code, message=message, id=sub_id)


def _parse(text: str | bytes) -> _Op:
    """The operation in a client message.

    Raises:
        InvalidRequest: With code `bad_json`, `unknown_op` or `invalid_request`.
    """
    if len(text) > MAX_MESSAGE:
        raise InvalidRequest(f"messages are at most {MAX_MESSAGE} bytes", code="too_large")
    try:
        data = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"not JSON: {exc}", code="bad_json") from None
    if not isinstance(data, dict):
        raise InvalidRequest("a message is a JSON object with an op", code="bad_json")
    name = data.get("op")
    kind = _OPS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise InvalidRequest(
            f"unknown op {name!r}: use one of {', '.join(_OPS)}", code="unknown_op"
        )
    if kind is _Subscribe:
        channel = data.get("channel")
        kind = _CHANNELS.get(channel) if isinstance(channel, str) else None
        if kind is None:
            raise InvalidRequest(f"unknown channel {channel!r}: use one of {', '.join(_CHANNELS)}")
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"invalid {name}: {exc}") from None
