"""Server-Sent Events: the live board for a filter, a symbol's candles, signals, a
perpetual's open interest, funding and liquidations, and a paper account's trading."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from sse_starlette import EventSourceResponse
from sse_starlette.sse import SendTimeoutError
from starlette.background import BackgroundTask
from starlette.types import Receive, Scope, Send

from api.accounts.deps import CurrentUser, ListOwnerDep
from api.accounts.entitlements import (
    NOT_ENTITLED,
    SIGNALS,
    Entitled,
    EntitlementsDep,
    require_interval,
)
from api.deps import PaperDep, SettingsDep
from api.errors import Unavailable
from api.live.clients import Client, ClientClosed, control
from api.live.deps import HubDep
from api.live.hub import SHUTTING_DOWN, TIMEFRAMES, Hub, SignalMatch
from api.services.board import FILTER_QUERY_DOC, board_filter, streams_live
from api.services.candles import INTERVAL_MS
from api.services.filter_eval import compile_filter
from schemas.topics import symbol_key

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/stream", tags=["live"])

SUBSCRIPTION = "stream"
"""The id of an SSE stream's one subscription (SSE messages do not carry it)."""

_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "An event stream (`text/event-stream`): each event's name is the "
        "message type, its `id` the message's sequence number, its data a JSON object.",
        "content": {"text/event-stream": {}},
    },
    404: {"description": "Unknown symbol."},
    422: {"description": "Invalid parameters (a bad filter, an unknown interval)."},
    503: {"description": "Too many live clients on this process, or no live feed."},
}

_GATED = {**_RESPONSES, **NOT_ENTITLED}
"""Responses of the streams a plan may not include (1s candles, signals)."""

_ENDINGS = """
A stream ends with an `error` event when the server closes it: `too_slow` (the client
kept losing updates for 30 s without catching up) or `shutdown` (the server is going
away: connect again, to it or another replica, after a moment). After updates are lost
the next event is `dropped` (`{"count": n}`). Comments (`: ping`) keep idle streams open.
"""


async def _open(
    hub: Hub | None,
    heartbeat_s: float,
    subscribe: Callable[[Hub, Client], Awaitable[None] | None],
) -> EventSourceResponse:
    """Connect an SSE client, subscribe it (errors become 4xx before the stream starts)
    and stream what its queue receives."""
    if hub is None:
        raise Unavailable("this API process serves no live data")
    client = hub.connect("sse")
    try:
        pending = subscribe(hub, client)
        if pending is not None:
            await pending
    except BaseException:
        hub.disconnect(client)
        raise
    return _Stream(
        hub,
        client,
        _events(hub, client),
        ping=heartbeat_s,
        # A client stuck in one send for as long as it may lag is gone: end the stream.
        send_timeout=hub.policy.evict_after_s,
        background=BackgroundTask(hub.disconnect, client),
    )


SHUTDOWN_GRACE_S = 2.0
"""How long a stream may take to send its last event once sse-starlette has seen the
server shut down, before it is cut."""


class _Stream(EventSourceResponse):
    """An SSE response that ends with its last event when the hub closes its client, and
    quietly (counting an eviction) when its client stops reading: a send that times out
    means a slow client, not a server error.

    sse-starlette notices a shutdown signal by itself, and would cut the stream without
    a word; here that closes the client like the hub's own shutdown does, so the stream
    still ends with its `error` `shutdown` event.
    """

    def __init__(
        self, hub: Hub, client: Client, content: AsyncIterator[bytes], **kwargs: Any
    ) -> None:
        shutdown = anyio.Event()
        super().__init__(
            content,
            shutdown_event=shutdown,
            shutdown_grace_period=SHUTDOWN_GRACE_S,
            data_sender_callable=functools.partial(_close_on, shutdown, client),
            **kwargs,
        )
        self.hub, self.client = hub, client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            self.client.evict(f"too slow: took no data for {self.send_timeout or 0:.0f} s")
            self.hub.disconnect(self.client)
            logger.info("SSE client took no data for %.0f s: cut off", self.send_timeout or 0)


async def _close_on(shutdown: anyio.Event, client: Client) -> None:
    await shutdown.wait()
    client.close("shutdown", SHUTTING_DOWN)


async def _events(hub: Hub, client: Client) -> AsyncIterator[bytes]:
    try:
        while True:
            try:
                batch = await client.next()
            except ClientClosed as closed:
                yield control("error", code=closed.code, message=closed.message).sse()
                return
            yield b"".join(message.sse() for _, message in batch)
    finally:
        hub.disconnect(client)


@router.get(
    "/ranks",
    summary="The live board for a filter",
    response_class=EventSourceResponse,
    responses=_RESPONSES,
    description="""
The filtered, sorted board, live. First a `snapshot` event:
`{"rows": [RankRow...], "order": [key...], "as_of_ms", "seq"}`; then, at most once per
board interval (1 s) and only when the board changed, a `diff`:
`{"upsert": [{"key", <changed fields>}...], "remove": [key...], "order": [key...]
(only when it changed), "as_of_ms", "seq"}`. `seq` rises by one per diff; after lost
updates (`dropped`) a fresh `snapshot` comes instead of the next diff. A key is
`exchange:market:symbol`.

Examples: `/api/v1/stream/ranks?quote=USDT&min_change_pct_5m=3&sort=-change_pct_5m&limit=20`,
`/api/v1/stream/ranks?watch=BTCUSDT,ETHUSDT`.

Without the `live_board` feature (the free tier when billing is on) the stream follows
the board as it was `delay_s` ago (see `GET /api/v1/me/entitlements`); `as_of_ms` says
how old it is.
"""
    + FILTER_QUERY_DOC
    + _ENDINGS,
)
async def stream_ranks(
    request: Request,
    settings: SettingsDep,
    entitlements: EntitlementsDep,
    owner: ListOwnerDep,
    hub: HubDep,
) -> EventSourceResponse:
    """Snapshot, then diffs, of the board for the filter in the query string (the
    delayed board without `live_board`)."""
    compiled = compile_filter(await board_filter(request.query_params, owner))
    live = streams_live(entitlements)
    return await _open(
        hub,
        settings.api.heartbeat_s,
        lambda hub, client: hub.subscribe_ranks(client, SUBSCRIPTION, compiled, live=live),
    )


@router.get(
    "/candles",
    summary="A symbol's forming candle, live",
    response_class=EventSourceResponse,
    responses=_GATED,
    description="""
The current candle of the interval first (if there is one), then a `candle` event each
time it changes (about once a second) and a `close` event when its interval ends; the
next interval's candles follow. Data: the kline fields (`open_time`, `close_time`,
`open`, `high`, `low`, `close`, `volume`, `quote_volume`, `count`, `taker_buy_volume`,
`taker_buy_quote_volume`, `first_trade_id`, `last_trade_id`), decimals as strings,
plus `interval`, `closed` and `version` (a late trade that revises a closed candle sends
its `close` again with a higher version). Flat seconds and minutes (no trades) never set
the open, high or low; a wholly quiet interval is flat at the previous close. 1s streams
send each second's candle as a `close`, and need the `candles_1s` feature.

Example: `/api/v1/stream/candles?exchange=binance&market=spot&symbol=BTCUSDT&interval=1m`.
"""
    + _ENDINGS,
)
async def stream_candles(
    hub: HubDep,
    settings: SettingsDep,
    exchange: Annotated[str, Query(max_length=32, examples=["binance"])],
    market: Annotated[str, Query(max_length=16, examples=["spot", "usdm"])],
    symbol: Annotated[str, Query(max_length=40, examples=["BTCUSDT"])],
    entitlements: EntitlementsDep,
    interval: Annotated[str, Query(description=f"One of {', '.join(INTERVAL_MS)}.")] = "1m",
) -> EventSourceResponse:
    """The forming candle, its updates and closes, for one symbol and interval."""
    require_interval(entitlements, interval)
    return await _open(
        hub,
        settings.api.heartbeat_s,
        lambda hub, client: hub.subscribe_candles(
            client, SUBSCRIPTION, exchange, market, symbol, interval
        ),
    )


@router.get(
    "/signals",
    summary="Signals as they occur",
    response_class=EventSourceResponse,
    responses=_GATED,
    description="""
A `signal` event per signal occurrence (`exchange`, `market`, `symbol`, `name`,
`timeframe`, `time_ms`, `direction`, `price`, `value`, `details`), optionally only those
of one symbol (`BTCUSDT`, or a key `binance:spot:BTCUSDT`), signal name or timeframe.
Past signals are at `GET /api/v1/signals`. Needs the `signals` feature.
"""
    + _ENDINGS,
    dependencies=[Entitled(SIGNALS)],
)
async def stream_signals(
    hub: HubDep,
    settings: SettingsDep,
    symbol: Annotated[str | None, Query(max_length=80, examples=["BTCUSDT"])] = None,
    name: Annotated[str | None, Query(max_length=64, examples=["volume_spike"])] = None,
    timeframe: Annotated[str | None, Query(description=f"One of {', '.join(TIMEFRAMES)}.")] = None,
) -> EventSourceResponse:
    """Signals, live, optionally for one symbol, name or timeframe."""
    match = SignalMatch.of(symbol, name, timeframe)
    return await _open(
        hub,
        settings.api.heartbeat_s,
        lambda hub, client: hub.subscribe_signals(client, SUBSCRIPTION, match),
    )


@router.get(
    "/perps",
    summary="A perpetual's open interest, funding and liquidations, live",
    response_class=EventSourceResponse,
    responses=_RESPONSES,
    description="""
Events of one perpetual (`market=usdm`) as they arrive: `open_interest` (each new sample:
`time_ms`, `open_interest` in contracts, `open_interest_value` in the quote asset),
`funding` (`settled: false` when the estimate or the next funding time changes, with
`funding_rate`, `next_funding_time_ms`, `mark_price`, `index_price`; `settled: true` for a
settled funding time, with `funding_rate`, `mark_price`, `source`) and `liquidation`
(`time_ms`, `side`: SELL liquidated a long, BUY a short, `price`, `avg_price`,
`filled_qty`, `quote_volume`). The latest funding estimate seen comes first, if any.
Binance publishes at most one liquidation per symbol per second: they undercount. The
history is at `GET /api/v1/perps/...`.

Example: `/api/v1/stream/perps?exchange=binance&market=usdm&symbol=BTCUSDT`.
"""
    + _ENDINGS,
)
async def stream_perps(
    hub: HubDep,
    settings: SettingsDep,
    _: EntitlementsDep,
    exchange: Annotated[str, Query(max_length=32, examples=["binance"])],
    symbol: Annotated[str, Query(max_length=40, examples=["BTCUSDT"])],
    market: Annotated[str, Query(max_length=16, examples=["usdm"])] = "usdm",
) -> EventSourceResponse:
    """Open interest, funding and liquidations of one perpetual, live."""
    return await _open(
        hub,
        settings.api.heartbeat_s,
        lambda hub, client: hub.subscribe_perps(
            client, SUBSCRIPTION, symbol_key(exchange, market, symbol)
        ),
    )


@router.get(
    "/trading",
    summary="A paper account's orders, fills and valuation, live",
    response_class=EventSourceResponse,
    responses={
        **_RESPONSES,
        404: {"description": "No such paper account of yours."},
    },
    description="""
Events of one of the caller's paper accounts: `account` (`{"account": AccountView}`: the
latest view first, then each one the engine publishes: after every change, and at least
once a second while a price that values the account moves), `order` (`{"order": Order}`:
accepted, rejected, amended, canceled, triggered, expired, filled), `fill`
(`{"fill": Fill}`, before the order it changed), `funding` (`{"funding": FundingPaid}`)
and `liquidation` (`{"liquidation": Liquidated}`). Shapes as in
`GET /api/v1/paper/accounts/{id}`; decimals are strings, times microseconds.

Example: `/api/v1/stream/trading?account=6f1c2a9e-0c7b-4f7e-9a51-2b8f3d7e4c10`.
"""
    + _ENDINGS,
)
async def stream_trading(
    hub: HubDep,
    settings: SettingsDep,
    user: CurrentUser,
    service: PaperDep,
    account: Annotated[str, Query(max_length=36, description="The paper account's id.")],
) -> EventSourceResponse:
    """Live orders, fills, views, funding and liquidations of one of the caller's accounts."""
    await service.owned(user.id, account)
    return await _open(
        hub,
        settings.api.heartbeat_s,
        lambda hub, client: hub.subscribe_trading(client, SUBSCRIPTION, account),
    )
