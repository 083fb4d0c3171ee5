"""The WebSocket protocol: a connection's JSON operations, checked and applied to the hub.

Client to server, one JSON object per text message (`id` names a subscription; the
server makes one up, `s1`, `s2`, ..., when a subscribe has none):

    {"op": "subscribe", "channel": "ranks", "id": "top", "filter": {...ScanFilter}}
    {"op": "subscribe", "channel": "candles", "id": "c", "exchange": "binance",
     "market": "spot", "symbol": "BTCUSDT", "interval": "1m"}
    {"op": "subscribe", "channel": "signals", "id": "s", "symbol": "BTCUSDT",
     "name": "volume_spike", "timeframe": "1m"}        (every filter field optional)
    {"op": "subscribe", "channel": "perps", "id": "p", "exchange": "binance",
     "market": "usdm", "symbol": "BTCUSDT"}           (open interest, funding, liquidations)
    {"op": "subscribe", "channel": "trading", "id": "t", "account": "<paper account id>"}
        (the signed-in user's own paper account: orders, fills, views, funding,
         liquidations; signing out or in as someone else ends these subscriptions)
    {"op": "filter", "id": "top", "filter": {...}}    (new filter, new snapshot)
    {"op": "unsubscribe", "id": "top"}
    {"op": "ping"}
    {"op": "auth", "token": "<access token>"}          (sign the connection in)
    {"op": "watchlist.add", "watchlist": 3, "symbol": "BTCUSDT", "ref": "r1"}
        (and the other changes of the user's state: `api.live.user_ops`)

A ranks `subscribe` or `filter` may name the user's lists: `"watchlist": <id>` and
`"ignored": "mine"` (signed-in connections only).

Server to client, `{"type": ..., "id": <subscription>, ...}`: `subscribed` (then the
channel's first data), `snapshot`, `diff`, `candle`, `close`, `signal`, `open_interest`,
`funding`, `liquidation` (`api.live.perps`), `order`, `fill`, `account` and, on a
trading subscription, `funding` and `liquidation` (`api.live.trading`), `unsubscribed`,
`pong`, `dropped` (`count` updates lost by a slow connection; ranks subscriptions get a
fresh snapshot after it), `authenticated` (`user`, `version`), `ack` (a change of the
user's state was saved: `op`, `ref`, `version`, `change`), `user_state` (another session
of the user changed it: `version`, `change`), and `error` (`code`, `message`, and the
`id` or `ref` it concerns).
Replies (`subscribed`, `unsubscribed`, `pong`, `authenticated`, `ack`, `error`) are
never lost: they go ahead of queued data. What bounds them is the client's rate:
`MESSAGES_PER_S` a second with bursts of `MESSAGE_BURST`; a message over it is not
served and is answered by an `error` `rate_limited` whose `count` says how many in a row
were refused. A client that keeps exceeding the rate for `RATE_PERSIST_S` is closed.

An error never closes the socket; the server closes it only with a code and a reason:
1008 (too slow, or too many messages for too long), 1013 (too many clients, try again
later), 1011 (server error), 1001 (server shutting down). docs/websocket.md has the full
protocol with examples.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts import paper_accounts, user_state
from api.accounts.deps import Accounts, authenticate_token
from api.accounts.entitlements import (
    Entitlements,
    check_subscription,
    entitlements_for,
    everything,
)
from api.accounts.models import User
from api.accounts.tokens import Access
from api.errors import ApiError, InvalidRequest, Unauthorized
from api.live.clients import Client, Message, control
from api.live.hub import Hub, SignalMatch
from api.live.rate import MessageRate
from api.live.user_ops import USER_OPS, UserOp, user_step
from api.services.filter_eval import compile_filter
from api.services.filters import ScanFilter, parse_filter
from schemas.topics import symbol_key

MAX_MESSAGE = 64 * 1024
"""Longest client message accepted (a filter with a full watch list fits)."""

MAX_SUBSCRIPTIONS = 32
"""Subscriptions one connection may hold."""

MESSAGES_PER_S = 20
"""Messages a connection may send a second, sustained (the UI sends a filter change per
key typed, a few a second, and a ping every 20 s)."""
MESSAGE_BURST = 100
"""Messages a connection may send at once (the UI's opening: a subscription per panel,
32 at most, and a sign-in)."""
RATE_PERSIST_S = 10.0
"""How long a connection may keep exceeding its rate before it is closed."""
RATE_LIMITED = (
    f"too many messages: at most {MESSAGES_PER_S} a second (bursts of {MESSAGE_BURST});"
    " `count` were not served, send them again later"
)


class _Op(msgspec.Struct, forbid_unknown_fields=True):
    op: str


class _Ping(_Op):
    pass


class _Unsubscribe(_Op):
    id: str


class _Filter(_Op):
    id: str
    filter: dict[str, Any]
    watchlist: int | None = None
    ignored: Literal["mine"] | None = None


class _Subscribe(_Op, forbid_unknown_fields=True):
    channel: Literal["ranks", "candles", "signals", "perps", "trading"]
    id: str | None = msgspec.field(default=None)


class _SubscribeRanks(_Subscribe):
    filter: dict[str, Any] = msgspec.field(default_factory=dict)
    watchlist: int | None = None
    ignored: Literal["mine"] | None = None


class _SubscribeCandles(_Subscribe):
    exchange: str = ""
    market: str = ""
    symbol: str = ""
    interval: str = ""


class _SubscribePerps(_Subscribe):
    exchange: str = ""
    market: str = ""
    symbol: str = ""


class _SubscribeTrading(_Subscribe):
    account: Annotated[str, msgspec.Meta(max_length=36)] = ""


class _SubscribeSignals(_Subscribe):
    symbol: str | None = None
    name: str | None = None
    timeframe: str | None = None


class _Auth(_Op):
    token: Annotated[str, msgspec.Meta(max_length=4096)]


_OPS: dict[str, type[_Op] | type[UserOp]] = {
    "ping": _Ping,
    "subscribe": _Subscribe,
    "unsubscribe": _Unsubscribe,
    "filter": _Filter,
    "auth": _Auth,
    **USER_OPS,
}
_CHANNELS: dict[str, type[_Subscribe]] = {
    "ranks": _SubscribeRanks,
    "candles": _SubscribeCandles,
    "signals": _SubscribeSignals,
    "perps": _SubscribePerps,
    "trading": _SubscribeTrading,
}


class Session:
    """One WebSocket connection's operations, applied to the hub.

    Replies take the client's reply path: never lost, ahead of the queued data, so
    `subscribed` comes before the subscription's first snapshot. The client's messages
    are bounded by a `MessageRate` instead: one over it is refused (`rate_limited`), and
    a client that persists is closed (`rate_limited`, 1008).

    A connection signed in (`sign_in`) belongs to its user in `hub.users`: it gets the
    `user_state` changes made by the user's other sessions, and may make changes itself.
    It stays signed in until its session is logged out (checked on each change it makes)
    or another `auth` replaces it.

    Args:
        hub: The process's hub.
        client: The connection's client in the hub.
        accounts: The accounts services (None: no signing in on this connection).
    """

    def __init__(self, hub: Hub, client: Client, accounts: Accounts | None = None) -> None:
        self.hub = hub
        self.client = client
        self.accounts = accounts
        self.user: User | None = None
        self.access: Access | None = None
        self._ids: Callable[[], int] = itertools.count(1).__next__
        self.rate = MessageRate(MESSAGES_PER_S, MESSAGE_BURST, RATE_PERSIST_S, hub.policy.clock)

    async def start(self, token: str | None) -> None:
        """Sign in with the token the handshake carried (cookie or `Authorization`), if
        any; a bad one is answered with an `error` and the connection stays anonymous."""
        if token is not None:
            try:
                await self.sign_in(token)
            except ApiError as exc:
                self.client.reply(error(exc.code, exc.message))

    async def sign_in(self, token: str) -> None:
        """Sign the connection in as the user of an access token; `authenticated` answers.

        Raises:
            Unauthorized: For a token that is not a live session's (the connection is
                then anonymous, whoever it was signed in as before).
        """
        self.sign_out()
        if self.accounts is None:
            raise Unauthorized("this API process has no accounts")
        user, access = await authenticate_token(token, self.accounts)
        async with self.accounts.db.session() as db:
            version = await user_state.state_version(db, user.id)
        self.user, self.access = user, access
        self.hub.users.join(self.client, user.id)
        self.client.reply(control("authenticated", user=user.id, version=version))

    def sign_out(self) -> None:
        """Make the connection anonymous (it stops hearing of the user's changes, and of
        their paper accounts)."""
        self.user = self.access = None
        self.hub.users.leave(self.client)
        for sub in list(self.client.subscriptions.values()):
            if sub.channel == "trading":
                self.hub.unsubscribe(self.client, sub.id)
                self.client.reply(control("unsubscribed", id=sub.id))

    async def handle(self, text: str | bytes) -> None:
        """Apply one client message; a bad one is answered with an `error` message, one
        over the rate limit is refused.

        Args:
            text: The message as received.
        """
        if not self.rate.take():
            if self.rate.persisting:
                self.client.close(
                    "rate_limited",
                    f"too many messages: over {MESSAGES_PER_S} a second for {RATE_PERSIST_S:.0f} s",
                )
            else:
                self.client.refuse(RATE_LIMITED)
            return
        sub_id: str | None = None
        ref: str | None = None
        try:
            op = _parse(text)
            sub_id, ref = getattr(op, "id", None), getattr(op, "ref", None)
            if isinstance(op, _Ping):
                self.client.reply(control("pong"))
            elif isinstance(op, _Unsubscribe):
                self.hub.unsubscribe(self.client, op.id)
                self.client.reply(control("unsubscribed", id=op.id))
            elif isinstance(op, _Filter):
                scan = await self._board_filter(op.filter, op.watchlist, op.ignored)
                self.hub.change_filter(self.client, op.id, compile_filter(scan))
            elif isinstance(op, _Auth):
                await self.sign_in(op.token)
            elif isinstance(op, UserOp):
                await self._change(op)
            else:
                assert isinstance(op, _Subscribe)
                sub_id = await self._subscribe(op)
        except ApiError as exc:
            self.client.reply(error(exc.code, exc.message, sub_id, ref))

    @asynccontextmanager
    async def _user_db(self) -> AsyncIterator[tuple[AsyncSession, int]]:
        """A transaction for the signed-in user, whose session must still be live."""
        if self.accounts is None or self.access is None:
            raise Unauthorized('sign in first: send {"op": "auth", "token": ...}')
        async with self.accounts.db.session() as db:
            try:
                await self.accounts.tokens.check_session(db, self.access)
            except Unauthorized:
                self.sign_out()
                raise
            yield db, self.access.user_id

    async def _board_filter(
        self, data: dict[str, Any], watchlist: int | None, ignored: str | None
    ) -> ScanFilter:
        scan = parse_filter(data)
        if watchlist is None and ignored is None:
            return scan
        async with self._user_db() as (db, user_id):
            return await user_state.apply_lists(
                db, user_id, scan, watchlist=watchlist, ignored=ignored is not None
            )

    async def _change(self, op: UserOp) -> None:
        """Apply a change of the user's state: `ack` here, `user_state` to their other
        sessions once it is committed."""
        if self.accounts is None or self.user is None:
            raise Unauthorized('sign in first: send {"op": "auth", "token": ...}')
        limits = (await entitlements_for(self.accounts, self.user)).limits
        step = user_step(op, limits)
        async with self._user_db() as (db, user_id):
            change = await step(db, user_id)
        fields: dict[str, Any] = {"op": op.op, "version": change.version, "change": change.body()}
        if op.ref is not None:
            fields["ref"] = op.ref
        self.client.reply(control("ack", **fields))
        self.hub.users.publish(user_id, change, origin=self.client)

    async def _subscribe(self, op: _Subscribe) -> str:
        if op.id is not None and not 0 < len(op.id) <= 64:
            raise InvalidRequest("a subscription id is 1 to 64 characters")
        if len(self.client.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise InvalidRequest(
                f"a connection holds at most {MAX_SUBSCRIPTIONS} subscriptions",
                code="too_many_subscriptions",
            )
        entitlements = await self._entitlements()
        check_subscription(entitlements, op.channel, {"interval": getattr(op, "interval", "")})
        sub_id = op.id if op.id is not None else self._new_id()
        ack = control("subscribed", id=sub_id, channel=op.channel)
        if isinstance(op, _SubscribeRanks):
            scan = await self._board_filter(op.filter, op.watchlist, op.ignored)
            self.hub.subscribe_ranks(
                self.client, sub_id, compile_filter(scan), ack, live=entitlements.live_board
            )
        elif isinstance(op, _SubscribeCandles):
            if not (op.exchange and op.market and op.symbol and op.interval):
                raise InvalidRequest("candles need exchange, market, symbol and interval")
            await self.hub.subscribe_candles(
                self.client, sub_id, op.exchange, op.market, op.symbol, op.interval, ack
            )
        elif isinstance(op, _SubscribePerps):
            if not (op.exchange and op.market and op.symbol):
                raise InvalidRequest("perps need exchange, market and symbol")
            key = symbol_key(op.exchange, op.market, op.symbol)
            self.hub.subscribe_perps(self.client, sub_id, key, ack)
        elif isinstance(op, _SubscribeTrading):
            if not op.account:
                raise InvalidRequest("trading needs the account's id")
            async with self._user_db() as (db, user_id):
                await paper_accounts.owned(db, user_id, op.account)
            self.hub.subscribe_trading(self.client, sub_id, op.account, ack)
        else:
            assert isinstance(op, _SubscribeSignals)
            match = SignalMatch.of(op.symbol, op.name, op.timeframe)
            self.hub.subscribe_signals(self.client, sub_id, match, ack)
        return sub_id

    async def _entitlements(self) -> Entitlements:
        """What the connection's user (or an anonymous one) may subscribe to now; a plan
        that changes applies to the subscriptions made after the change."""
        if self.accounts is None:  # no accounts, no billing: everything
            return everything()
        return await entitlements_for(self.accounts, self.user)

    def _new_id(self) -> str:
        while (sub_id := f"s{self._ids()}") in self.client.subscriptions:
            pass
        return sub_id


def error(code: str, message: str, sub_id: str | None = None, ref: str | None = None) -> Message:
    """An `error` message: a stable `code`, a `message` to act on, the subscription `id`
    or the `ref` of the change it answers."""
    fields = {"code": code, "message": message}
    if sub_id is not None:
        fields["id"] = sub_id
    if ref is not None:
        fields["ref"] = ref
    return control("error", **fields)


def _parse(text: str | bytes) -> _Op | UserOp:
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
