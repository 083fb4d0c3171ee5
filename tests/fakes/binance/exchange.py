"""`FakeBinance`: the fake exchange's state, lifecycle and clock, built from its parts."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from tests.fakes.binance.failures import Failures
from tests.fakes.binance.market import QUOTES, SPECS, SYMBOL_RE, Market, Symbol
from tests.fakes.binance.perp_history import PERP_HISTORY_PATHS, PerpHistoryApi
from tests.fakes.binance.perps import PerpetualMarket, PerpState
from tests.fakes.binance.rest import RestApi
from tests.fakes.binance.streams import MarketStreams
from tests.fakes.binance.ws import Conn, WebSocketServer


class FakeBinance(
    MarketStreams, WebSocketServer, RestApi, Failures, PerpetualMarket, PerpHistoryApi
):
    """A local Binance (spot or USDⓈ-M) for integration tests and benchmarks.

    Attributes:
        max_connection_s: Close each WebSocket this long after it opened (Binance: 24 h);
            None never does. Settable while running.
        ping_interval_s: How often the server pings each socket.
        pong_timeout_s: Disconnect a socket whose ping stays unanswered this long. Spot
            only counts a pong that echoes a ping's payload; USDⓈ-M counts any pong.
        kline_update_s: Least time between two open-kline events of one symbol.
        shutdown_grace_s: Time from the ``serverShutdown`` event to the close.
        weight_limit: REST request weight allowed per minute before 429.
        ban_s: Length of the 418 ban for a client that ignores a 429.
        tick_s: Period of the generator; trades of one tick are spread across it.
        subscribe_messages: Every control message received on any socket, parsed (or the
            raw text when it was not JSON), in arrival order.
        rest_requests: ``(path, params, status)`` of every REST request, in order.
        weight_by_minute: REST weight charged in each minute of the exchange clock
            (``minute = time_ms // 60_000``), refused requests included.
        perp_history_requests: Monotonic times of the recent requests to each
            perpetual-history endpoint with a request window (`perp_history`).
    """

    def __init__(
        self,
        market: Market,
        symbols: int | Sequence[str] = 3,
        *,
        rate: float = 50.0,
        seed: int = 0,
        start_ms: int | None = None,
        history_s: float = 0.0,
        ping_interval_s: float = 5.0,
        pong_timeout_s: float = 15.0,
    ) -> None:
        """Build the exchange; nothing listens until `start` or `start_in_thread`.

        Args:
            market: ``spot`` or ``usdm``.
            symbols: How many symbols (BTCUSDT, ETHUSDT, ... then T0009USDT, ...) or their
                names (upper case, ending in a quote asset such as USDT).
            rate: Trades per second per symbol generated while running.
            seed: Fixes ids, prices, quantities and sides of every trade.
            start_ms: Exchange time at `start`; the clock then runs in real time from it.
                None uses the wall clock.
            history_s: Seconds of trades at `rate` generated before the clock starts, so
                REST has history to backfill from the first request.
            ping_interval_s: Server ping period (Binance: 20 s spot, 180 s USDⓈ-M).
            pong_timeout_s: Disconnect after a ping unanswered this long (60 s / 600 s).
        """
        if market not in SPECS:
            raise ValueError(f"market must be 'spot' or 'usdm', got {market!r}")
        self.market: Market = market
        self._spec = SPECS[market]
        self._spot = market == "spot"
        self.rate = rate
        self.seed = seed
        self.max_connection_s: float | None = None
        self.ping_interval_s = ping_interval_s
        self.pong_timeout_s = pong_timeout_s
        self.kline_update_s = 2.0 if self._spot else 0.25
        self.shutdown_grace_s = 0.5
        self.weight_limit = self._spec.weight_limit
        self.ban_s = 120
        self.tick_s = 0.05
        self.close_timeout_s = 1.0
        self.subscribe_messages: list[Any] = []
        self.rest_requests: list[tuple[str, dict[str, str], int]] = []
        self.weight_by_minute: dict[int, int] = {}
        self.perp_history_requests: dict[str, deque[float]] = {}

        self._symbols: dict[str, Symbol] = {}
        names = self._default_names(symbols) if isinstance(symbols, int) else list(symbols)
        for name in names:
            self._add_symbol(name)
        for i, sym in enumerate(self._symbols.values()):
            sym.carry = i / len(self._symbols)  # spread first trades over the first second

        self._start_ms = start_ms
        self._clock_base: float | None = None  # monotonic time at start, with start_ms
        self._subs: dict[str, set[Conn]] = {}
        self._conns: set[Conn] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._forced: deque[tuple[int, int | None]] = deque()
        self._weight_minute = -1
        self._weight_used = 0
        self._limited_until = 0.0
        self._banned_until = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._port: int | None = None
        self._mono = 0.0
        self._dirty_klines: set[Symbol] = set()
        self._last_minute = -1
        self._depth_sent_ms = 0  # exchange time of the last partial-depth round

        self._perp = PerpState(seed)  # USDⓈ-M: mark prices, liquidations, open interest

        if history_s > 0 and rate > 0:
            self._prefill(history_s)

    # ---------------------------------------------------------------- symbols and clock

    def _default_names(self, count: int) -> list[str]:
        names = [f"{t.base}USDT" for t in self._spec.templates[:count]]
        names += [f"T{i:04d}USDT" for i in range(len(names), count)]
        return names

    def _add_symbol(self, name: str) -> Symbol:
        if not SYMBOL_RE.match(name):
            raise ValueError(f"symbol names are upper case like BTCUSDT, got {name!r}")
        quote = next((q for q in QUOTES if name.endswith(q) and len(name) > len(q)), None)
        if quote is None:
            raise ValueError(f"{name!r} does not end in a known quote asset {QUOTES}")
        base = name[: -len(quote)]
        templates = self._spec.templates
        tpl = next((t for t in templates if t.base == base), None)
        if tpl is None:
            tpl = templates[len(self._symbols) % len(templates)]
        sym = Symbol(name, base, quote, tpl, self._spot, self.seed)
        self._symbols[name] = sym
        return sym

    def _symbol(self, symbol: str) -> Symbol:
        try:
            return self._symbols[symbol.upper()]
        except KeyError:
            raise ValueError(f"unknown symbol {symbol!r}") from None

    def now_ms(self) -> int:
        """The exchange clock in ms: wall time, or `start_ms` plus the time since `start`."""
        if self._start_ms is None:
            return int(time.time() * 1000)
        if self._clock_base is None:
            return self._start_ms
        return self._start_ms + int((time.monotonic() - self._clock_base) * 1000)

    def _prefill(self, seconds: float) -> None:
        end = self.now_ms()
        count = int(seconds * self.rate)
        step = 1000.0 / self.rate
        max_raw = 1 if self._spot else 3
        for sym in self._symbols.values():
            for k in range(count):
                sym.generate(end - int((count - k) * step), max_raw)

    @property
    def symbols(self) -> list[str]:
        """Names of every symbol the exchange lists, whatever its status."""
        return list(self._symbols)

    # ---------------------------------------------------------------- lifecycle

    @property
    def rest_url(self) -> str:
        """``http://127.0.0.1:PORT``; REST paths are /api/v3/... (spot) or /fapi/v1/..."""
        return f"http://127.0.0.1:{self._require_port()}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT``; paths /ws, /stream (spot), /market/..., /public/... (USDⓈ-M)."""
        return f"ws://127.0.0.1:{self._require_port()}"

    def _require_port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeBinance is not started")
        return self._port

    @property
    def connections(self) -> int:
        """WebSockets open right now."""
        return len(self._conns)

    async def start(self) -> None:
        """Listen on 127.0.0.1 (a free port) and start generating trades."""
        if self._runner is not None:
            raise RuntimeError("FakeBinance is already started")
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        app = web.Application()
        for prefix in self._spec.ws_routes:
            serves = self._spec.ws_routes[prefix]
            app.router.add_get(f"{prefix}/ws", self._ws_handler(False, serves))
            app.router.add_get(f"{prefix}/ws/{{stream}}", self._ws_handler(False, serves))
            app.router.add_get(f"{prefix}/stream", self._ws_handler(True, serves))
        for name in (
            "exchangeInfo", "klines", "aggTrades", "trades", "historicalTrades", "ticker/24hr",
        ):  # fmt: skip
            app.router.add_get(self._spec.rest_prefix + name, self._rest)
        if not self._spot:
            app.router.add_get(self._spec.rest_prefix + "openInterest", self._rest)
        app.router.add_get(self._spec.rest_prefix + "time", self._rest)
        if not self._spot:
            for path in PERP_HISTORY_PATHS:
                app.router.add_get(path, self._rest)
        app.router.add_get(self._spec.rest_prefix + "ping", self._rest)
        # Combined-stream URLs with 1,000 streams are ~20 kB long.
        runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=1.0, max_line_size=65536, max_field_size=65536
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = runner.addresses[0][1]
        if self._start_ms is not None:
            self._clock_base = time.monotonic()
        self._mono = self._loop.time()
        self._ticker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Close every socket, stop generating and release the port."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await asyncio.gather(*(self._close(c, 1001, b"") for c in list(self._conns)))
        for task in list(self._tasks):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._port = None

    def start_in_thread(self) -> None:
        """Start on a new event loop in a daemon thread; returns once it listens."""
        started: concurrent.futures.Future[None] = concurrent.futures.Future()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                started.set_exception(exc)
                loop.close()
                return
            started.set_result(None)
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=serve, name="fake-binance", daemon=True)
        self._thread.start()
        started.result(timeout=30)

    def stop_in_thread(self) -> None:
        """Stop a fake started by `start_in_thread` and join its thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        self._thread = None

    def __enter__(self) -> FakeBinance:
        self.start_in_thread()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop_in_thread()

    async def __aenter__(self) -> FakeBinance:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    def _apply(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the server's loop and wait for it: safe from any thread."""
        loop = self._loop
        if loop is None or not loop.is_running() or threading.get_ident() == self._loop_thread:
            fn()
            return
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                fn()
            except BaseException as exc:
                done.set_exception(exc)
            else:
                done.set_result(None)

        loop.call_soon_threadsafe(run)
        done.result(timeout=10)

    def trades(self, symbol: str) -> list[dict[str, Any]]:
        """Every trade generated so far for `symbol`, as REST ``aggTrades`` returns it.

        On spot each aggregate holds one raw trade (``f == l``); on USDⓈ-M it holds 1-3
        contiguous raw ids. `raw_trades` lists the raw trades.
        """
        sym = self._symbol(symbol)
        return [self._agg_row(sym, p) for p in list(sym.prints)]

    def raw_trades(self, symbol: str) -> list[dict[str, Any]]:
        """Every raw trade so far for `symbol`, as REST ``historicalTrades`` returns it."""
        sym = self._symbol(symbol)
        rows: list[dict[str, Any]] = []
        for p in list(sym.prints):
            rows.extend(self._raw_rows(sym, p))
        return rows

    def _clock(self) -> float:
        return self._loop.time() if self._loop is not None else time.monotonic()
