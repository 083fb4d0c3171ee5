"""The live hub: clients, their subscriptions, and the fan-out of ranks, candles, signals,
perpetuals data and paper trading.

One hub per API process sits between the live feed and every SSE stream and WebSocket.
Nothing the feed or the board loop does waits on a client (see `api.live.clients` for
the bounded queues). Work that does not depend on the client is done once: a filter's
board diff is evaluated and encoded once for every client that shares the filter, a
candle or a signal is encoded once for all its readers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import get_args

from api.accounts.entitlements import board_delay_s
from api.errors import InvalidRequest, NotFound, TooManyClients, Unavailable
from api.live.board import Board, load_board
from api.live.candle_streams import SETTLE_S, CandleStreams
from api.live.clients import Client, LiveStats, Message, QueuePolicy, Subscription
from api.live.delayed import DelayedBoard
from api.live.feed import FeedBatch, LiveFeed, LiveTopics
from api.live.perps import PerpStreams
from api.live.trading import TradingStreams
from api.live.users import UserClients
from api.live.views import COALESCE_S, COMPLETE_WAIT_S, Views
from api.services.filter_eval import CompiledFilter, SymbolLookup
from api.settings import ApiAppSettings, ApiSettings
from api.store import Store
from schemas.signals import Signal, Timeframe, encode_signal

logger = logging.getLogger(__name__)

TIMEFRAMES: tuple[str, ...] = get_args(Timeframe)

SHUTTING_DOWN = "the server is shutting down"
"""Why a client is closed, or refused, at shutdown."""

EVICT_AFTER_S = 30.0
"""A client that keeps losing updates this long, without once catching up, is dropped."""


@dataclass(frozen=True, slots=True)
class SignalMatch:
    """Which signals a subscription wants; None matches any.

    `symbol` is a symbol (`BTCUSDT`, on any exchange and market) or a symbol key
    (`binance:spot:BTCUSDT`).
    """

    symbol: str | None = None
    name: str | None = None
    timeframe: str | None = None

    @classmethod
    def of(
        cls, symbol: str | None = None, name: str | None = None, timeframe: str | None = None
    ) -> SignalMatch:
        """A checked match; empty strings mean any.

        Raises:
            InvalidRequest: For a timeframe signals are not evaluated on.
        """
        if timeframe and timeframe not in TIMEFRAMES:
            raise InvalidRequest(
                f"unknown timeframe {timeframe!r}: use one of {', '.join(TIMEFRAMES)}"
            )
        return cls(symbol or None, name or None, timeframe or None)

    def __call__(self, signal: Signal) -> bool:
        """Whether `signal` matches."""
        if self.name is not None and signal.name != self.name:
            return False
        if self.timeframe is not None and signal.timeframe != self.timeframe:
            return False
        if self.symbol is None:
            return True
        return (signal.key if ":" in self.symbol else signal.symbol) == self.symbol


class Hub:
    """Clients, their subscriptions, and the fan-out of ranks, candles and signals.

    Args:
        settings: The API settings (queue size, client limit, board interval).
        board: The live board the ranks views read.
        symbols: Returns symbol metadata by key (quote-asset filters read it).
        store: ClickHouse, to seed new candle streams and check unknown symbols.
        evict_after_s: How long a client may keep losing updates before it is dropped.
        coalesce_s: How long a board evaluation waits at least after a change.
        complete_wait_s: How long it waits at most for the rest of a split second.
        settle_s: When a new candle stream re-reads its interval from ClickHouse.
        clock: Monotonic seconds (tests pass a fake).
        free_delay_s: > 0: keep a `DelayedBoard` that far behind (`self.delayed`) for
            ranks subscriptions that may not follow the live board.
    """

    def __init__(
        self,
        settings: ApiSettings,
        board: Board,
        *,
        symbols: Callable[[], SymbolLookup] = dict,
        store: Store | None = None,
        evict_after_s: float = EVICT_AFTER_S,
        coalesce_s: float = COALESCE_S,
        complete_wait_s: float = COMPLETE_WAIT_S,
        settle_s: float = SETTLE_S,
        clock: Callable[[], float] = time.monotonic,
        free_delay_s: float = 0.0,
    ) -> None:
        self.settings = settings
        self.board = board
        self.symbols = symbols
        self.stats = LiveStats()
        views = functools.partial(
            Views,
            symbols=symbols,
            stats=self.stats,
            interval_s=settings.board_interval_s,
            coalesce_s=coalesce_s,
            complete_wait_s=complete_wait_s,
        )
        self.views = views(board)
        self.delayed: DelayedBoard | None = None
        if free_delay_s > 0:
            self.delayed = DelayedBoard(free_delay_s, views, clock)
        self._delayed_subs: set[Subscription] = set()
        self.policy = QueuePolicy(
            settings.client_queue,
            evict_after_s,
            self.stats,
            lambda sub: self._views_of(sub).resync(sub),
            clock,
        )
        self.clients: set[Client] = set()
        self.users = UserClients()
        self.candles = CandleStreams(store, self._known, settle_s)
        self.perps = PerpStreams(self.known_symbol)
        self.trading = TradingStreams()
        self._signal_subs: set[Subscription] = set()
        self._signal_seq = 0
        self.going = False
        self._gone: asyncio.Event | None = None

    # -- clients ---------------------------------------------------------------------

    def connect(self, kind: str) -> Client:
        """Register a new client (`sse` or `ws`).

        Raises:
            Unavailable: When the server is shutting down (`going_away`).
            TooManyClients: When the process serves `max_clients` already.
        """
        if self.going:
            raise Unavailable(SHUTTING_DOWN)
        if len(self.clients) >= self.settings.max_clients:
            raise TooManyClients(
                f"this API process serves {self.settings.max_clients} live clients already;"
                " try again later"
            )
        client = Client(kind, self.policy)
        self.clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        """Forget a client and its subscriptions (safe to call twice)."""
        for sub_id in list(client.subscriptions):
            self.unsubscribe(client, sub_id)
        self.users.leave(client)
        self.clients.discard(client)
        if self._gone is not None and not self.clients:
            self._gone.set()

    def close_all(self, code: str, message: str) -> None:
        """Close every client (the process is shutting down)."""
        for client in list(self.clients):
            client.close(code, message)

    async def going_away(self, timeout_s: float) -> None:
        """Tell every client the server is shutting down, and wait until they are gone.

        Each is closed with `shutdown` (a WebSocket gets close code 1001, an SSE stream
        its last event, an `error` `shutdown`) and new ones are refused. Call it before
        the server closes the connections itself: uvicorn would close WebSockets with
        1012 and cut SSE streams short.

        Args:
            timeout_s: How long to wait at most for the clients' last words to be sent.
        """
        self.going = True
        self._gone = asyncio.Event()
        self.close_all("shutdown", SHUTTING_DOWN)
        if self.clients:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._gone.wait()

    def unsubscribe(self, client: Client, sub_id: str) -> None:
        """End one subscription; its queued messages are discarded.

        Raises:
            NotFound: When the client has no subscription with that id.
        """
        sub = client.subscriptions.pop(sub_id, None)
        if sub is None:
            raise NotFound(f"no subscription {sub_id!r}", code="unknown_subscription")
        client.discard(sub)
        if sub.channel == "ranks":
            self._views_of(sub).leave(sub)
            self._delayed_subs.discard(sub)
        elif sub.channel == "candles":
            self.candles.unsubscribe(sub)
        elif sub.channel == "perps":
            self.perps.unsubscribe(sub)
        elif sub.channel == "trading":
            self.trading.unsubscribe(sub)
        else:
            self._signal_subs.discard(sub)

    def _subscription(self, client: Client, sub_id: str, channel: str) -> Subscription:
        if sub_id in client.subscriptions:
            raise InvalidRequest(f"subscription id {sub_id!r} is in use", code="duplicate_id")
        sub = client.subscriptions[sub_id] = Subscription(sub_id, client, channel)
        return sub

    @contextlib.contextmanager
    def _subscribing(self, client: Client, sub_id: str, channel: str) -> Iterator[Subscription]:
        """A new subscription, forgotten again if setting it up fails."""
        sub = self._subscription(client, sub_id, channel)
        try:
            yield sub
        except BaseException:
            if client.subscriptions.get(sub_id) is sub:
                del client.subscriptions[sub_id]
            raise

    def _views_of(self, sub: Subscription) -> Views:
        if self.delayed is not None and sub in self._delayed_subs:
            return self.delayed.views
        return self.views

    def _known(self, key: str) -> bool:
        return key in self.board.rows or self.symbols().get(key) is not None

    def known_symbol(self, ref: str) -> bool:
        """Whether a symbol key (or a bare symbol) is in the directory or was seen live."""
        if ":" in ref:
            return self._known(ref) or ref in self.candles.last_second
        seen = (*self.board.rows, *self.candles.last_second)
        return any(key.rsplit(":", 1)[-1] == ref for key in seen)

    # -- ranks -----------------------------------------------------------------------

    def subscribe_ranks(
        self,
        client: Client,
        sub_id: str,
        compiled: CompiledFilter,
        ack: Message | None = None,
        *,
        live: bool = True,
    ) -> None:
        """Follow a filtered board: a snapshot now, then a diff whenever it changes.

        Args:
            client: The subscriber.
            sub_id: The subscription's id, unique in the client.
            compiled: The filter.
            ack: Queued just before the snapshot (a WebSocket's `subscribed`).
            live: False: follow the delayed board (`Entitlements.live_board`).

        Raises:
            InvalidRequest: When the client uses `sub_id` already.
            Unavailable: For `live=False` on a hub without a delayed board (the live one
                is never handed out instead).
        """
        if not live and self.delayed is None:
            raise Unavailable("this API process keeps no delayed board")
        sub = self._subscription(client, sub_id, "ranks")
        if live:
            self.views.join(sub, compiled, ack)
        else:
            assert self.delayed is not None
            self._delayed_subs.add(sub)
            self.delayed.views.join(sub, compiled, ack)

    def change_filter(self, client: Client, sub_id: str, compiled: CompiledFilter) -> None:
        """Give a ranks subscription a new filter; a snapshot of the new view follows.

        Raises:
            NotFound: When the client has no such subscription.
            InvalidRequest: When it is not a ranks subscription.
        """
        sub = client.subscriptions.get(sub_id)
        if sub is None:
            raise NotFound(f"no subscription {sub_id!r}", code="unknown_subscription")
        if sub.channel != "ranks":
            raise InvalidRequest(f"subscription {sub_id!r} is not a ranks subscription")
        client.discard(sub)
        views = self._views_of(sub)
        views.leave(sub)
        views.join(sub, compiled)

    # -- the feed, candles and signals -----------------------------------------------

    def deliver(self, batch: FeedBatch) -> None:
        """Take one batch from the feed: apply ranks, update candle and perpetuals streams,
        fan out signals."""
        if batch.ranks and self.board.apply(batch.ranks):
            self.views.wake()
        if batch.ranks and self.delayed is not None:
            self.delayed.push(batch.ranks)
        if batch.candles:
            self.candles.add(batch.candles)
        if batch.perps:
            self.perps.add(batch.perps)
        for signal in batch.signals:
            message: Message | None = None
            for sub in self._signal_subs:
                if sub.target(signal):
                    if message is None:
                        self._signal_seq += 1
                        message = Message("signal", encode_signal(signal), self._signal_seq)
                    sub.client.put(sub, message)

    def subscribe_signals(
        self, client: Client, sub_id: str, match: SignalMatch, ack: Message | None = None
    ) -> None:
        """Follow the signals that match, as they occur (none are replayed).

        Args:
            client: The subscriber.
            sub_id: The subscription's id, unique in the client.
            match: Which signals.
            ack: Queued at once (a WebSocket's `subscribed`).

        Raises:
            InvalidRequest: When the client uses `sub_id` already.
            NotFound: When the match names a symbol neither known nor seen live.
        """
        if match.symbol is not None and not self.known_symbol(match.symbol):
            raise NotFound(f"unknown symbol {match.symbol!r}", code="unknown_symbol")
        sub = self._subscription(client, sub_id, "signals")
        sub.target = match
        self._signal_subs.add(sub)
        if ack is not None:
            client.reply(ack)

    async def subscribe_candles(
        self,
        client: Client,
        sub_id: str,
        exchange: str,
        market: str,
        symbol: str,
        interval: str,
        ack: Message | None = None,
    ) -> None:
        """Follow one symbol's candles of one interval: the current bar now (if any), then
        each change of it (`candle`) and its end (`close`).

        Args:
            client: The subscriber.
            sub_id: The subscription's id, unique in the client.
            exchange: The symbol's exchange.
            market: Its market.
            symbol: The symbol.
            interval: One of `api.services.candles.INTERVAL_MS`.
            ack: Queued just before the first bar (a WebSocket's `subscribed`).

        Raises:
            InvalidRequest: For an unknown interval or a `sub_id` in use.
            NotFound: For a symbol that is neither known nor has candles.
            Unavailable: When ClickHouse cannot be read to seed the stream.
        """
        with self._subscribing(client, sub_id, "candles") as sub:
            await self.candles.subscribe(sub, exchange, market, symbol, interval, ack)

    def subscribe_perps(
        self, client: Client, sub_id: str, key: str, ack: Message | None = None
    ) -> None:
        """Follow one perpetual's open interest, funding and liquidations as they arrive
        (`api.live.perps`); the latest funding estimate seen comes first, if any.

        Args:
            client: The subscriber.
            sub_id: The subscription's id, unique in the client.
            key: The perpetual's symbol key, `exchange:usdm:symbol`.
            ack: Queued at once (a WebSocket's `subscribed`).

        Raises:
            InvalidRequest: For a market without perpetuals or a `sub_id` in use.
            NotFound: For a symbol neither known nor seen live.
        """
        self._follow(client, sub_id, "perps", lambda sub: self.perps.subscribe(sub, key), ack)

    def subscribe_trading(
        self, client: Client, sub_id: str, account_id: str, ack: Message | None = None
    ) -> None:
        """Follow one paper account (`account_id`, which the caller checked the client's
        user owns): its orders, fills, views, funding and liquidations (`api.live.trading`),
        its latest view first, if any. `client`, `sub_id` and `ack` as for
        `subscribe_perps`; a `sub_id` in use is an `InvalidRequest`."""
        subscribe = self.trading.subscribe
        self._follow(client, sub_id, "trading", lambda sub: subscribe(sub, account_id), ack)

    def _follow(
        self,
        client: Client,
        sub_id: str,
        channel: str,
        subscribe: Callable[[Subscription], None],
        ack: Message | None,
    ) -> None:
        """Set up a subscription of `channel` with `subscribe` (which may queue its first
        data), then queue `ack`: replies go ahead of the data all the same."""
        with self._subscribing(client, sub_id, channel) as sub:
            subscribe(sub)
        if ack is not None:
            client.reply(ack)

    async def aclose(self) -> None:
        """Close every client and cancel background work (the process is shutting down)."""
        self.going = True
        self.close_all("shutdown", SHUTTING_DOWN)
        await self.candles.aclose()


@asynccontextmanager
async def live_delivery(
    settings: ApiAppSettings, store: Store, symbols: Callable[[], SymbolLookup]
) -> AsyncIterator[tuple[Hub, LiveFeed | None]]:
    """Live delivery for one API process: the board, the hub and its loop, and the feed.

    The board is loaded from ClickHouse's latest rank snapshots first (a failure there
    is logged: the ranks backlog fills the board anyway), then the feed starts. Without
    a Kafka bootstrap there is no feed; the hub still serves, with nothing live. When
    billing is on, the free tier's delayed board (`hub.delayed`) starts from the loaded
    board and runs `accounts.free_delay_s` behind.

    Args:
        settings: The process's settings (`kafka.bootstrap`, `api`, `accounts`).
        store: The API's ClickHouse store.
        symbols: Returns the symbol directory (it may be set up after this starts).

    Yields:
        The hub (its board is `hub.board`) and the feed, if any.
    """
    board = Board()
    hub = Hub(
        settings.api,
        board,
        symbols=symbols,
        store=store,
        free_delay_s=board_delay_s(settings.accounts),
    )
    try:
        await load_board(board, store)
    except Exception:  # the board still fills from the ranks backlog
        logger.exception("cannot load the board from rank_snapshots")
    if hub.delayed is not None:
        hub.delayed.seed(board.rows.values(), time.time_ns() // 1_000_000)
    loop = asyncio.get_running_loop()
    feed = None
    if settings.kafka.bootstrap:
        topics = LiveTopics.with_prefix(settings.api.topic_prefix)
        feed = LiveFeed(
            settings.kafka.bootstrap, topics, hub.deliver, perp_keys=lambda: hub.perps.keys
        )
        feed.start(loop)
    else:
        logger.warning("no Kafka bootstrap configured: the API serves no live data")
    runners = [loop.create_task(hub.views.run(), name="board-loop")]
    if hub.delayed is not None:
        runners.append(loop.create_task(hub.delayed.run(), name="delayed-board"))
    try:
        yield hub, feed
    finally:
        if feed is not None:
            await asyncio.to_thread(feed.stop)
        for runner in runners:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
        await hub.aclose()
