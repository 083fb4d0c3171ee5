"""A fake Binance exchange (spot or USDⓈ-M) serving real HTTP and WebSocket on 127.0.0.1.

`FakeBinance` generates trades for its symbols while it runs and serves them the way
Binance does: market streams (``trade``, ``aggTrade``, ``bookTicker``, ``kline_1m``) as
raw or combined streams with live SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS, and the
REST market-data endpoints (``exchangeInfo``, ``klines``, ``aggTrades``, ``trades``,
``historicalTrades``, and ``ticker/24hr`` from `tests.fakes.binance_ticker`) with
Binance's field names, decimal strings, error JSON, request weights and
``X-MBX-USED-WEIGHT-1M`` header. Everything it sends is computed from one
list of trades per symbol, so REST agrees with the sockets and `trades` is ground truth.

It also misbehaves on request, like the real exchange does on a bad day: abrupt
disconnects, ``serverShutdown``, connections closed after `max_connection_s`, stalled
sockets, one symbol's streams gone quiet (`silence`), trades that never reach a socket
(`skip_ids`), 429/418 answers, delistings.

Payloads are byte-for-byte in Binance's shapes, e.g. a USDⓈ-M aggTrade on
``/market/stream``::

    {"stream":"ctkusdt@aggTrade","data":{"e":"aggTrade","E":1626992741575,"a":16599292,
     "s":"CTKUSDT","p":"1.01100","q":"10","f":23961322,"l":23961322,"T":1626992741421,
     "m":false}}

Use it from async code (``async with FakeBinance("spot") as fake``) or from a sync test,
where it runs its own event loop in a daemon thread (``with FakeBinance("usdm") as fake``).
Trade contents (ids, prices, quantities, sides) are a pure function of the seed and the
symbol; trade times follow the fake's clock (wall time, or `start_ms` plus elapsed time).
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import contextlib
import itertools
import json
import logging
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal, NamedTuple

import msgspec
from aiohttp import WSMsgType, web

from tests.fakes.binance_ticker import ticker_24hr, ticker_weight

logger = logging.getLogger(__name__)

Market = Literal["spot", "usdm"]

_MINUTE_MS = 60_000
_INTERVALS_MS = {"1s": 1_000, "1m": 60_000}
_ALL_INTERVALS = (
    "1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M"  # every kline interval Binance knows
)
# What a market-data stream name may look like; anything else is "invalid stream".
_STREAM_RE = re.compile(
    r"^[A-Za-z0-9_]{1,30}@(?:trade|aggTrade|bookTicker|ticker|miniTicker|avgPrice"
    r"|markPrice(?:@1s)?|forceOrder|depth(?:5|10|20)?(?:@(?:0|100|250|500|1000)ms)?"
    rf"|kline_(?:{_ALL_INTERVALS})|continuousKline_\w+)$"
)
_SYMBOL_PARAM_RE = re.compile(r"^[A-Z0-9\-_.]{1,20}$")
_INT_PARAM_RE = re.compile(r"^-?[0-9]{1,20}$")
_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_QUOTES = ("FDUSD", "USDT", "USDC", "BTC", "ETH", "BNB", "EUR", "TRY")
_OUTBOX_LIMIT = 200_000  # frames queued for one client before it counts as too slow

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class _Template:
    """Price level and precisions of a symbol, modelled on a real listing."""

    base: str
    price: str
    price_dec: int  # tick size = 10**-price_dec
    qty_dec: int  # step size = 10**-qty_dec
    max_qty: int  # largest trade, in steps


# Spot prints every decimal with 8 places, so price_dec + qty_dec stays <= 8 and the quote
# volume (price * qty) is exact in 8 places too.
_SPOT_TEMPLATES = (
    _Template("BTC", "60000", 2, 5, 50_000),
    _Template("ETH", "3000", 2, 4, 20_000),
    _Template("BNB", "550", 2, 3, 5_000),
    _Template("SOL", "150", 2, 3, 20_000),
    _Template("XRP", "0.5", 4, 1, 20_000),
    _Template("DOGE", "0.12", 5, 0, 20_000),
    _Template("ADA", "0.35", 4, 1, 20_000),
    _Template("LINK", "14", 2, 2, 10_000),
    _Template("PEPE", "0.00001", 8, 0, 10_000_000),
)
_USDM_TEMPLATES = (
    _Template("BTC", "60000", 1, 3, 500),
    _Template("ETH", "3000", 2, 3, 5_000),
    _Template("BNB", "550", 2, 2, 1_000),
    _Template("SOL", "150", 2, 0, 100),
    _Template("XRP", "0.5", 4, 1, 20_000),
    _Template("DOGE", "0.12", 5, 0, 20_000),
    _Template("ADA", "0.35", 4, 0, 20_000),
    _Template("LINK", "14", 3, 2, 10_000),
    _Template("1000PEPE", "0.01", 7, 0, 1_000_000),
)


@dataclass(frozen=True)
class _MarketSpec:
    """What differs between spot and USDⓈ-M, per Binance's documentation."""

    rest_prefix: str
    weight_limit: int
    incoming_per_s: int  # control messages, pings and pongs a client may send per second
    max_streams: int
    kline_limit: int
    historical_limit: tuple[int, int]  # (default, max) of historicalTrades
    intervals: tuple[str, ...]
    ws_routes: dict[str, frozenset[str] | None]  # URL prefix -> stream kinds it carries
    delisted_status: str
    templates: tuple[_Template, ...]


_SPECS: dict[str, _MarketSpec] = {
    "spot": _MarketSpec(
        rest_prefix="/api/v3/",
        weight_limit=6000,
        incoming_per_s=5,
        max_streams=1024,
        kline_limit=1000,
        historical_limit=(500, 1000),
        intervals=("1s", "1m"),
        ws_routes={"": None},
        delisted_status="BREAK",
        templates=_SPOT_TEMPLATES,
    ),
    "usdm": _MarketSpec(
        rest_prefix="/fapi/v1/",
        weight_limit=2400,
        incoming_per_s=10,
        max_streams=1024,
        kline_limit=1500,
        historical_limit=(100, 500),
        intervals=("1m",),
        # Since 2026 USDⓈ-M routes streams by path; a stream on the wrong path is accepted
        # and stays silent (Binance: "this fails silently rather than erroring").
        ws_routes={
            "/market": frozenset({"aggTrade", "kline_1m", "bookTicker"}),
            "/public": frozenset({"trade", "bookTicker"}),
        },
        # A delisted perpetual settles; spot pairs go to BREAK.
        delisted_status="SETTLING",
        templates=_USDM_TEMPLATES,
    ),
}


def _fmt(units: int, dec: int, width: int) -> str:
    """Print ``units * 10**-dec`` with `width` decimals, like Binance's decimal strings."""
    sign = "-" if units < 0 else ""
    digits = str(abs(units)).rjust(dec + 1, "0")
    whole, frac = (digits[:-dec], digits[-dec:]) if dec else (digits, "")
    frac = frac.ljust(width, "0")
    return f"{sign}{whole}.{frac}" if width else f"{sign}{whole}"


class _Print(NamedTuple):
    """One generated aggregate trade; spot aggregates always hold one raw trade."""

    agg_id: int
    first_id: int
    last_id: int
    price: int  # ticks
    qty: int  # steps
    time_ms: int
    buyer_is_maker: bool
    raw_qtys: tuple[int, ...]  # quantity of each raw trade first_id..last_id, in steps


class _KlineAcc:
    """One kline being built from prints; the same code feeds REST rows and WS events."""

    __slots__ = (
        "c",
        "close_ms",
        "first",
        "h",
        "l",
        "last",
        "n",
        "o",
        "open_ms",
        "q",
        "tq",
        "tv",
        "v",
    )

    def __init__(self, open_ms: int, interval_ms: int, price: int) -> None:
        self.open_ms = open_ms
        self.close_ms = open_ms + interval_ms - 1
        self.o = self.h = self.l = self.c = price
        self.v = self.q = self.n = self.tv = self.tq = 0
        self.first = self.last = -1

    def add(self, p: _Print) -> None:
        if self.n == 0:
            self.o = self.h = self.l = p.price
            self.first = p.first_id
        self.h = max(self.h, p.price)
        self.l = min(self.l, p.price)
        self.c = p.price
        self.last = p.last_id
        self.n += p.last_id - p.first_id + 1
        self.v += p.qty
        self.q += p.price * p.qty
        if not p.buyer_is_maker:  # the taker bought
            self.tv += p.qty
            self.tq += p.price * p.qty


class _Symbol:
    """One listed symbol: its parameters, its trade history and its live state."""

    def __init__(self, name: str, base: str, quote: str, tpl: _Template, spot: bool, seed: int):
        self.name = name
        self.stream = name.lower()
        self.base, self.quote = base, quote
        self.price_dec, self.qty_dec, self.max_qty = tpl.price_dec, tpl.qty_dec, tpl.max_qty
        self.px_w = 8 if spot else tpl.price_dec
        self.qty_w = 8 if spot else tpl.qty_dec
        self.quote_w = 8 if spot else tpl.price_dec + tpl.qty_dec
        # Seeded by text: str seeds hash deterministically, unlike hash() of a tuple.
        self.rng = random.Random(f"{seed}:{name}")
        self.price = int(Decimal(tpl.price).scaleb(tpl.price_dec))
        self.floor = max(1, self.price // 4)
        self.next_raw = self.rng.randrange(10**8, 5 * 10**9)
        self.next_agg = self.next_raw * 4 // 5
        self.book_id = self.rng.randrange(10**9, 10**12)
        self.status = "TRADING"
        self.prints: list[_Print] = []
        self.times: list[int] = []
        self.firsts: list[int] = []
        self.skip = 0
        self.silent_until = 0.0
        self.carry = 0.0
        self.kline: _KlineAcc | None = None
        self.kline_sent = -math.inf

    def px(self, units: int) -> str:
        return _fmt(units, self.price_dec, self.px_w)

    def qty(self, units: int) -> str:
        return _fmt(units, self.qty_dec, self.qty_w)

    def quote_amount(self, units: int) -> str:
        return _fmt(units, self.price_dec + self.qty_dec, self.quote_w)

    def generate(self, time_ms: int, max_raw: int) -> _Print:
        """Make the next print: a random-walk price, contiguous ids, time never going back."""
        rng = self.rng
        self.price = max(self.floor, self.price + rng.randint(-2, 2))
        qty = rng.randint(1, self.max_qty)
        raws = rng.randint(1, max_raw) if max_raw > 1 else 1
        qty = max(qty, raws)
        if raws == 1:
            raw_qtys: tuple[int, ...] = (qty,)
        else:
            cuts = sorted(rng.sample(range(1, qty), raws - 1))
            bounds = [0, *cuts, qty]
            raw_qtys = tuple(b - a for a, b in itertools.pairwise(bounds))
        if self.times:
            time_ms = max(time_ms, self.times[-1])
        p = _Print(
            agg_id=self.next_agg,
            first_id=self.next_raw,
            last_id=self.next_raw + raws - 1,
            price=self.price,
            qty=qty,
            time_ms=time_ms,
            buyer_is_maker=rng.random() < 0.5,
            raw_qtys=raw_qtys,
        )
        self.next_agg += 1
        self.next_raw += raws
        self.book_id += 1
        self.prints.append(p)
        self.times.append(time_ms)
        self.firsts.append(p.first_id)
        return p


@dataclass(eq=False)
class _Conn:
    """One client WebSocket and what the server knows about it."""

    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    combined: bool
    serves: frozenset[str] | None  # stream kinds this URL path delivers; None = all
    opened: float
    subs: dict[str, None] = field(default_factory=dict)  # ordered set, as LIST_SUBSCRIPTIONS shows
    outbox: list[str] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    incoming: deque[float] = field(default_factory=deque)
    stalled_until: float = 0.0
    shutdown_at: float | None = None
    closing: bool = False
    last_ping: float = 0.0
    ping_due: bool = False
    ping_payloads: deque[bytes] = field(default_factory=lambda: deque(maxlen=4))
    unanswered_since: float | None = None

    def push(self, frame: str) -> None:
        self.outbox.append(frame)


class _ApiError(Exception):
    """A REST error answered in Binance's shape: HTTP status and ``{"code", "msg"}``."""

    def __init__(self, status: int, code: int, msg: str, retry_after: int | None = None):
        super().__init__(msg)
        self.status, self.code, self.msg, self.retry_after = status, code, msg, retry_after


class _ControlError(Exception):
    """A WebSocket control request rejected with Binance's ``{"error": {code, msg}}``."""

    def __init__(self, code: int, msg: str):
        super().__init__(msg)
        self.code, self.msg = code, msg


class FakeBinance:
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
        if market not in _SPECS:
            raise ValueError(f"market must be 'spot' or 'usdm', got {market!r}")
        self.market: Market = market
        self._spec = _SPECS[market]
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

        self._symbols: dict[str, _Symbol] = {}
        names = self._default_names(symbols) if isinstance(symbols, int) else list(symbols)
        for name in names:
            self._add_symbol(name)
        for i, sym in enumerate(self._symbols.values()):
            sym.carry = i / len(self._symbols)  # spread first trades over the first second

        self._start_ms = start_ms
        self._clock_base: float | None = None  # monotonic time at start, with start_ms
        self._subs: dict[str, set[_Conn]] = {}
        self._conns: set[_Conn] = set()
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
        self._dirty_klines: set[_Symbol] = set()
        self._last_minute = -1

        if history_s > 0 and rate > 0:
            self._prefill(history_s)

    # ---------------------------------------------------------------- symbols and clock

    def _default_names(self, count: int) -> list[str]:
        names = [f"{t.base}USDT" for t in self._spec.templates[:count]]
        names += [f"T{i:04d}USDT" for i in range(len(names), count)]
        return names

    def _add_symbol(self, name: str) -> _Symbol:
        if not _SYMBOL_PARAM_RE.match(name):
            raise ValueError(f"symbol names are upper case like BTCUSDT, got {name!r}")
        quote = next((q for q in _QUOTES if name.endswith(q) and len(name) > len(q)), None)
        if quote is None:
            raise ValueError(f"{name!r} does not end in a known quote asset {_QUOTES}")
        base = name[: -len(quote)]
        templates = self._spec.templates
        tpl = next((t for t in templates if t.base == base), None)
        if tpl is None:
            tpl = templates[len(self._symbols) % len(templates)]
        sym = _Symbol(name, base, quote, tpl, self._spot, self.seed)
        self._symbols[name] = sym
        return sym

    def _symbol(self, symbol: str) -> _Symbol:
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
        app.router.add_get(self._spec.rest_prefix + "time", self._rest)
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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_in_thread()

    async def __aenter__(self) -> FakeBinance:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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

    # ---------------------------------------------------------------- control

    def drop_connections(self) -> None:
        """Abort every WebSocket's TCP connection: no close frame, like a network cut."""

        def drop() -> None:
            for conn in list(self._conns):
                conn.closing = True
                if conn.transport is not None:
                    conn.transport.abort()

        self._apply(drop)

    def server_shutdown(self) -> None:
        """Send each socket the ``serverShutdown`` event; close it `shutdown_grace_s` later."""

        def shutdown() -> None:
            now = self.now_ms()
            data = _encode({"e": "serverShutdown", "E": now}).decode()
            for conn in self._conns:
                if conn.closing or conn.shutdown_at is not None:
                    continue
                frame = f'{{"stream":"!serverShutdown","data":{data}}}' if conn.combined else data
                conn.push(frame)
                conn.wake.set()
                conn.shutdown_at = self._clock() + self.shutdown_grace_s

        self._apply(shutdown)

    def skip_ids(self, symbol: str, count: int) -> None:
        """Generate the next `count` trades of `symbol` (REST has them) but send none of them.

        They are missing from the ``trade`` and ``aggTrade`` streams only: klines and
        bookTicker still reflect them, as the exchange's state does.
        """
        sym = self._symbol(symbol)

        def skip() -> None:
            sym.skip += count

        self._apply(skip)

    def stall(self, seconds: float) -> None:
        """Silence every socket open now for `seconds`: no data and no pings, sockets stay open.

        Trades keep being generated; those due on a stalled socket are never sent on it
        (a client must notice the silence and repair the gap). Sockets opened during the
        stall are served normally, so reconnecting is a cure.
        """

        def silence() -> None:
            until = self._clock() + seconds
            for conn in self._conns:
                conn.stalled_until = until

        self._apply(silence)

    def silence(self, symbol: str, seconds: float) -> None:
        """Send nothing of `symbol` for `seconds`: no trade, aggTrade, bookTicker or kline.

        The symbol keeps trading (REST has its trades) and every other symbol, and every
        connection, goes on as before: only this symbol's streams go quiet, as when the
        exchange stops publishing one symbol. Its trades made meanwhile are never sent.
        """
        sym = self._symbol(symbol)

        def mute() -> None:
            sym.silent_until = self._clock() + seconds

        self._apply(mute)

    def fail_rest(self, status: int, count: int = 1, retry_after: int | None = None) -> None:
        """Answer the next `count` REST requests with `status` (429 and 418 as Binance does).

        Args:
            status: 429 (``-1003`` too many requests), 418 (``-1003`` IP banned) or any
                other 4xx/5xx (``-1000``/``-1001``).
            count: How many requests fail.
            retry_after: The ``Retry-After`` seconds; default to the end of the current
                minute (429) or `ban_s` (418).
        """
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error, got {status}")

        def fail() -> None:
            self._forced.extend([(status, retry_after)] * count)

        self._apply(fail)

    def delist(self, symbol: str) -> None:
        """Halt `symbol`: exchangeInfo shows BREAK (spot) or SETTLING (USDⓈ-M), no new trades."""
        sym = self._symbol(symbol)
        status = self._spec.delisted_status

        def halt() -> None:
            sym.status = status

        self._apply(halt)

    def list_symbol(self, symbol: str) -> None:
        """Set `symbol` TRADING again, or list it as a new symbol."""

        def resume() -> None:
            name = symbol.upper()
            sym = self._symbols.get(name) or self._add_symbol(name)
            sym.status = "TRADING"

        self._apply(resume)

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

    # ---------------------------------------------------------------- generation

    def _clock(self) -> float:
        return self._loop.time() if self._loop is not None else time.monotonic()

    async def _run(self) -> None:
        assert self._loop is not None
        last = self._loop.time()
        while True:
            await asyncio.sleep(self.tick_s)
            mono = self._loop.time()
            self._mono = mono
            try:
                self._tick(mono - last, mono)
            except Exception:  # a bug here must not silently stop the market
                logger.exception("fake Binance tick failed")
            last = mono

    def _tick(self, dt: float, mono: float) -> None:
        now = self.now_ms()
        expected = self.rate * dt
        if expected > 0:
            max_raw = 1 if self._spot else 3
            dt_ms = dt * 1000
            for sym in self._symbols.values():
                if sym.status != "TRADING":
                    continue
                sym.carry += expected
                n = int(sym.carry)
                if not n:
                    continue
                sym.carry -= n
                for k in range(n):
                    p = sym.generate(now - int((n - 1 - k) * dt_ms / n), max_raw)
                    self._publish(sym, p, now)
        minute = now // _MINUTE_MS
        if minute != self._last_minute:
            self._last_minute = minute
            for sym in self._symbols.values():
                if sym.kline is not None and sym.kline.close_ms < now:
                    self._emit_kline(sym, sym.kline, True, now)
                    sym.kline = None
                    self._dirty_klines.discard(sym)
        for sym in list(self._dirty_klines):
            if mono - sym.kline_sent >= self.kline_update_s and sym.kline is not None:
                self._emit_kline(sym, sym.kline, False, now)
                sym.kline_sent = mono
                self._dirty_klines.discard(sym)
        self._housekeep(mono)
        for conn in self._conns:
            if conn.outbox or conn.ping_due:
                conn.wake.set()

    def _publish(self, sym: _Symbol, p: _Print, now: int) -> None:
        acc = sym.kline
        open_ms = p.time_ms // _MINUTE_MS * _MINUTE_MS
        if acc is None or acc.open_ms != open_ms:
            if acc is not None:
                self._emit_kline(sym, acc, True, now)
            acc = sym.kline = _KlineAcc(open_ms, _MINUTE_MS, p.price)
        acc.add(p)
        self._dirty_klines.add(sym)
        subs, s = self._subs, sym.stream
        if sym.silent_until > self._mono:
            return
        if sym.skip:
            sym.skip -= 1
        else:
            if s + "@aggTrade" in subs:
                self._emit(s + "@aggTrade", self._agg_event(sym, p, now))
            if s + "@trade" in subs:
                for row in self._trade_events(sym, p, now):
                    self._emit(s + "@trade", row)
        if s + "@bookTicker" in subs:
            self._emit(s + "@bookTicker", self._book_event(sym, p, now))

    def _agg_event(self, sym: _Symbol, p: _Print, now: int) -> dict[str, Any]:
        if self._spot:
            return {
                "e": "aggTrade", "E": now, "s": sym.name, "a": p.agg_id, "p": sym.px(p.price),
                "q": sym.qty(p.qty), "f": p.first_id, "l": p.last_id, "T": p.time_ms,
                "m": p.buyer_is_maker, "M": True,
            }  # fmt: skip
        return {
            "e": "aggTrade", "E": now, "a": p.agg_id, "s": sym.name, "p": sym.px(p.price),
            "q": sym.qty(p.qty), "f": p.first_id, "l": p.last_id, "T": p.time_ms,
            "m": p.buyer_is_maker,
        }  # fmt: skip

    def _trade_events(self, sym: _Symbol, p: _Print, now: int) -> Iterable[dict[str, Any]]:
        px = sym.px(p.price)
        for i, q in enumerate(p.raw_qtys):
            if self._spot:
                yield {
                    "e": "trade", "E": now, "s": sym.name, "t": p.first_id + i, "p": px,
                    "q": sym.qty(q), "T": p.time_ms, "m": p.buyer_is_maker, "M": True,
                }  # fmt: skip
            else:
                yield {
                    "e": "trade", "E": now, "T": p.time_ms, "s": sym.name, "t": p.first_id + i,
                    "p": px, "q": sym.qty(q), "X": "MARKET", "m": p.buyer_is_maker,
                }  # fmt: skip

    def _book_event(self, sym: _Symbol, p: _Print, now: int) -> dict[str, Any]:
        # The taker sold into the bid (m) or bought the ask; the book sits one tick around.
        bid, ask = (p.price, p.price + 1) if p.buyer_is_maker else (max(1, p.price - 1), p.price)
        bid_qty = p.qty * 7919 % (sym.max_qty * 5) + 1
        ask_qty = p.qty * 104729 % (sym.max_qty * 5) + 1
        event: dict[str, Any] = {} if self._spot else {"e": "bookTicker"}
        event.update(
            u=sym.book_id, s=sym.name, b=sym.px(bid), B=sym.qty(bid_qty), a=sym.px(ask),
            A=sym.qty(ask_qty),
        )  # fmt: skip
        if not self._spot:
            event.update(T=p.time_ms, E=now)
        return event

    def _emit_kline(self, sym: _Symbol, acc: _KlineAcc, closed: bool, now: int) -> None:
        stream = sym.stream + "@kline_1m"
        if stream not in self._subs or sym.silent_until > self._mono:
            return
        k = {
            "t": acc.open_ms, "T": acc.close_ms, "s": sym.name, "i": "1m", "f": acc.first,
            "L": acc.last, "o": sym.px(acc.o), "c": sym.px(acc.c), "h": sym.px(acc.h),
            "l": sym.px(acc.l), "v": sym.qty(acc.v), "n": acc.n, "x": closed,
            "q": sym.quote_amount(acc.q), "V": sym.qty(acc.tv), "Q": sym.quote_amount(acc.tq),
            "B": "0",
        }  # fmt: skip
        self._emit(stream, {"e": "kline", "E": now, "s": sym.name, "k": k})

    def _emit(self, stream: str, payload: dict[str, Any]) -> None:
        conns = self._subs.get(stream)
        if not conns:
            return
        data = _encode(payload).decode()
        wrapped: str | None = None
        mono = self._mono
        for conn in conns:
            if conn.stalled_until > mono or conn.closing:
                continue
            if conn.combined:
                if wrapped is None:
                    wrapped = f'{{"stream":"{stream}","data":{data}}}'
                conn.push(wrapped)
            else:
                conn.push(data)

    def _housekeep(self, mono: float) -> None:
        for conn in list(self._conns):
            if conn.closing:
                continue
            if len(conn.outbox) > _OUTBOX_LIMIT:
                logger.warning("fake Binance: client too slow, %d frames queued", len(conn.outbox))
                self._begin_close(conn, 1008, b"Client too slow")
            elif self.max_connection_s is not None and mono - conn.opened >= self.max_connection_s:
                self._begin_close(conn, 1000, b"")
            elif conn.shutdown_at is not None and mono >= conn.shutdown_at:
                self._begin_close(conn, 1001, b"Server shutdown")
            elif (
                conn.unanswered_since is not None
                and mono - conn.unanswered_since > self.pong_timeout_s
            ):
                self._begin_close(conn, 1008, b"Pong timeout")
            elif conn.stalled_until <= mono and mono - conn.last_ping >= self.ping_interval_s:
                conn.last_ping = mono
                conn.ping_due = True
                if conn.unanswered_since is None:
                    conn.unanswered_since = mono

    # ---------------------------------------------------------------- WebSocket

    def _ws_handler(
        self, combined: bool, serves: frozenset[str] | None
    ) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._serve_ws(request, combined, serves)

        return handler

    async def _serve_ws(
        self, request: web.Request, combined: bool, serves: frozenset[str] | None
    ) -> web.StreamResponse:
        if combined:
            initial = [s for s in request.query.get("streams", "").split("/") if s]
        else:
            initial = [request.match_info["stream"]] if "stream" in request.match_info else []
        if any(not _STREAM_RE.match(s) for s in initial):
            return web.json_response(
                {"code": 2, "msg": "Invalid request: invalid stream"}, status=400
            )
        if len(set(initial)) > self._spec.max_streams:
            return web.json_response(
                {"code": 2, "msg": f"Invalid request: more than {self._spec.max_streams} streams"},
                status=400,
            )
        ws = web.WebSocketResponse(
            autoping=False, timeout=self.close_timeout_s, max_msg_size=1 << 22
        )
        await ws.prepare(request)
        assert self._loop is not None
        mono = self._loop.time()
        conn = _Conn(ws=ws, transport=request.transport, combined=combined, serves=serves,
                     opened=mono, last_ping=mono)  # fmt: skip
        self._conns.add(conn)
        for stream in initial:
            self._subscribe(conn, stream)
        writer = asyncio.create_task(self._writer(conn))
        try:
            async for msg in ws:
                if self._too_many(conn):
                    # Answer what came within the limit, then hang up like Binance does.
                    conn.closing = True
                    await self._flush(conn)
                    await ws.close(code=1008, message=b"Too many requests")
                    break
                if msg.type is WSMsgType.TEXT:
                    self._control(conn, msg.data)
                elif msg.type is WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type is WSMsgType.PONG:
                    if not self._spot or msg.data in conn.ping_payloads:
                        conn.unanswered_since = None
                elif msg.type is WSMsgType.BINARY:
                    self._reply(conn, None, _ControlError(3, "Invalid JSON: binary frame"))
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass
        finally:
            self._conns.discard(conn)
            for stream in conn.subs:
                self._unindex(conn, stream)
            writer.cancel()
        return ws

    def _too_many(self, conn: _Conn) -> bool:
        assert self._loop is not None
        now = self._loop.time()
        window = conn.incoming
        window.append(now)
        while window and window[0] <= now - 1.0:
            window.popleft()
        return len(window) > self._spec.incoming_per_s

    async def _writer(self, conn: _Conn) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while not conn.ws.closed:
                await conn.wake.wait()
                conn.wake.clear()
                await self._flush(conn)

    async def _flush(self, conn: _Conn) -> None:
        """Send what is queued for `conn`, in order, whoever calls (writer or closer)."""
        ws = conn.ws
        async with conn.send_lock:
            if conn.ping_due:
                conn.ping_due = False
                payload = str(self.now_ms()).encode()
                conn.ping_payloads.append(payload)
                await ws.ping(payload)
            batch, conn.outbox = conn.outbox, []
            for frame in batch:
                await ws.send_str(frame)

    def _begin_close(self, conn: _Conn, code: int, message: bytes) -> None:
        conn.closing = True
        task = asyncio.create_task(self._close(conn, code, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close(self, conn: _Conn, code: int, message: bytes) -> None:
        conn.closing = True
        try:
            await asyncio.wait_for(self._flush(conn), self.close_timeout_s)
            await asyncio.wait_for(conn.ws.close(code=code, message=message), self.close_timeout_s)
        except (TimeoutError, ConnectionError, RuntimeError):
            pass
        finally:
            if conn in self._conns and conn.transport is not None:
                conn.transport.abort()

    def _subscribe(self, conn: _Conn, stream: str) -> None:
        conn.subs[stream] = None
        kind = stream.partition("@")[2]
        if conn.serves is None or kind in conn.serves:
            self._subs.setdefault(stream, set()).add(conn)

    def _unindex(self, conn: _Conn, stream: str) -> None:
        conns = self._subs.get(stream)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self._subs[stream]

    def _reply(self, conn: _Conn, rid: Any, result: Any) -> None:
        if isinstance(result, _ControlError):
            body = {"error": {"code": result.code, "msg": result.msg}, "id": rid}
        else:
            body = {"result": result, "id": rid}
        conn.push(_encode(body).decode())
        conn.wake.set()

    def _control(self, conn: _Conn, text: str) -> None:
        try:
            req = json.loads(text)
        except json.JSONDecodeError as exc:
            self.subscribe_messages.append(text)
            detail = f"{exc.msg.lower()} at line {exc.lineno} column {exc.colno}"
            self._reply(conn, None, _ControlError(3, f"Invalid JSON: {detail}"))
            return
        self.subscribe_messages.append(req)
        rid = req.get("id") if isinstance(req, dict) else None
        try:
            result = self._execute(conn, req)
        except _ControlError as exc:
            self._reply(conn, rid if _valid_id(rid) else None, exc)
        else:
            self._reply(conn, rid, result)

    def _execute(self, conn: _Conn, req: Any) -> Any:
        if not isinstance(req, dict):
            raise _ControlError(2, "Invalid request: expected a JSON object")
        if not _valid_id(req.get("id")):
            raise _ControlError(2, "Invalid request: request ID must be an unsigned integer")
        method = req.get("method")
        if method is None:
            raise _ControlError(2, "Invalid request: missing field `method`")
        if method not in _METHODS:
            expected = ", ".join(f"`{m}`" for m in _METHODS)
            raise _ControlError(
                2, f"Invalid request: unknown variant `{method}`, expected one of {expected}"
            )
        params = req.get("params", [])
        if not isinstance(params, list):
            raise _ControlError(2, "Invalid request: params must be an array")
        if method == "LIST_SUBSCRIPTIONS":
            return list(conn.subs)
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            return self._property(conn, method, params)
        if not all(isinstance(s, str) and _STREAM_RE.match(s) for s in params):
            raise _ControlError(2, "Invalid request: invalid stream")
        if method == "SUBSCRIBE":
            new = [s for s in dict.fromkeys(params) if s not in conn.subs]
            if len(conn.subs) + len(new) > self._spec.max_streams:
                raise _ControlError(
                    2, f"Invalid request: more than {self._spec.max_streams} streams"
                )
            for stream in new:
                self._subscribe(conn, stream)
        else:
            for stream in params:
                if conn.subs.pop(stream, False) is None:
                    self._unindex(conn, stream)
        return None

    def _property(self, conn: _Conn, method: str, params: list[Any]) -> Any:
        if not params or not isinstance(params[0], str):
            raise _ControlError(2, "Invalid request: property name must be a string")
        if params[0] != "combined":
            raise _ControlError(0, "Unknown property")
        if method == "GET_PROPERTY":
            return conn.combined
        if len(params) != 2:
            raise _ControlError(2, "Invalid request: too many parameters")
        if not isinstance(params[1], bool):
            raise _ControlError(1, "Invalid value type: expected Boolean")
        conn.combined = params[1]
        return None

    # ---------------------------------------------------------------- REST

    async def _rest(self, request: web.Request) -> web.Response:
        path = request.path
        name = path.removeprefix(self._spec.rest_prefix)
        params = {k: v for k, v in request.query.items()}
        status, body, retry_after = 200, b"", None
        try:
            if len(params) != len(request.query):
                raise _ApiError(400, -1101, "Duplicate values for a parameter detected.")
            self._admit(name, params)
            body = _encode(self._answer(name, params, request))
        except _ApiError as exc:
            status, retry_after = exc.status, exc.retry_after
            body = _encode({"code": exc.code, "msg": exc.msg})
        self.rest_requests.append((path, params, status))
        headers = {"X-MBX-USED-WEIGHT-1M": str(self._weight_used)}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return web.Response(
            body=body, status=status, content_type="application/json", headers=headers
        )

    def _weight(self, name: str, params: dict[str, str]) -> int:
        if name == "ticker/24hr":
            return ticker_weight(self._spot, params)
        if self._spot:
            return {
                "exchangeInfo": 20,
                "klines": 2,
                "aggTrades": 4,
                "trades": 25,
                "historicalTrades": 25,
            }.get(name, 1)
        if name == "klines":
            raw = params.get("limit", "500")
            limit = int(raw) if raw.isdigit() else 500
            return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10
        return {"exchangeInfo": 1, "aggTrades": 20, "trades": 5, "historicalTrades": 20}.get(
            name, 1
        )

    def _admit(self, name: str, params: dict[str, str]) -> None:
        """Charge the request's weight; raise the 429/418 Binance would answer instead."""
        mono = self._clock()
        now = self.now_ms()
        minute = now // _MINUTE_MS
        if minute != self._weight_minute:
            self._weight_minute, self._weight_used = minute, 0
        to_next_minute = math.ceil(((minute + 1) * _MINUTE_MS - now) / 1000)
        if self._forced:
            status, retry_after = self._forced.popleft()
            if status == 418:
                raise self._banned(retry_after if retry_after is not None else self.ban_s)
            if status == 429:
                raise self._too_many_requests(
                    retry_after if retry_after is not None else to_next_minute
                )
            if status >= 500:
                raise _ApiError(status, -1001, "Internal error; unable to process your request. "
                                "Please try again.", retry_after)  # fmt: skip
            raise _ApiError(
                status,
                -1000,
                "An unknown error occurred while processing the request.",
                retry_after,
            )
        if mono < self._banned_until:
            raise self._banned(math.ceil(self._banned_until - mono))
        if mono < self._limited_until:
            # Kept going after a 429: Binance bans the IP (2 minutes to 3 days).
            self._banned_until = mono + self.ban_s
            raise self._banned(self.ban_s)
        self._weight_used += self._weight(name, params)
        self.weight_by_minute[minute] = self._weight_used
        if self._weight_used > self.weight_limit:
            self._limited_until = mono + to_next_minute
            raise self._too_many_requests(to_next_minute)

    def _too_many_requests(self, retry_after: int) -> _ApiError:
        return _ApiError(
            429, -1003,
            f"Too many requests; current limit of IP(127.0.0.1) is {self.weight_limit} requests "
            "per minute. Please use the websocket for live updates to avoid polling the API.",
            retry_after,
        )  # fmt: skip

    def _banned(self, retry_after: int) -> _ApiError:
        until = self.now_ms() + retry_after * 1000
        return _ApiError(
            418, -1003,
            f"Way too many requests; IP(127.0.0.1) banned until {until}. Please use the "
            "websocket for live updates to avoid bans.",
            retry_after,
        )  # fmt: skip

    def _answer(self, name: str, params: dict[str, str], request: web.Request) -> Any:
        if name == "ping":
            _check_params(params, ())
            return {}
        if name == "time":
            _check_params(params, ())
            return {"serverTime": self.now_ms()}
        if name == "exchangeInfo":
            return self._exchange_info(params)
        if name == "klines":
            _check_params(params, ("symbol", "interval", "startTime", "endTime", "limit"))
            return self._klines(params)
        if name == "aggTrades":
            _check_params(params, ("symbol", "fromId", "startTime", "endTime", "limit"))
            return self._agg_trades(params)
        if name == "ticker/24hr":
            _check_params(params, ("symbol",))
            return ticker_24hr(self, params)
        if name == "trades":
            _check_params(params, ("symbol", "limit"))
            sym = self._param_symbol(params)
            limit = _limit(params, 500, 1000)
            rows = self._raw_rows_from(sym, max(0, sym.next_raw - limit), limit)
            return [self._raw_row(sym, r) for r in rows]
        if name == "historicalTrades":
            _check_params(params, ("symbol", "limit", "fromId"))
            if not self._spot and not request.headers.get("X-MBX-APIKEY"):
                raise _ApiError(401, -2014, "API-key format invalid.")
            sym = self._param_symbol(params)
            default, most = self._spec.historical_limit
            limit = _limit(params, default, most)
            from_id = _int_param(params, "fromId", 0, None)
            start = sym.next_raw - limit if from_id is None else from_id
            return [self._raw_row(sym, r) for r in self._raw_rows_from(sym, max(0, start), limit)]
        raise _ApiError(404, -1000, f"Unknown endpoint {name}")

    def _param_symbol(self, params: dict[str, str]) -> _Symbol:
        raw = params.get("symbol")
        if not raw:
            raise _ApiError(
                400,
                -1102,
                "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
            )
        if not _SYMBOL_PARAM_RE.match(raw):
            raise _ApiError(400, -1100, "Illegal characters found in parameter 'symbol'; legal "
                            "range is '^[A-Z0-9-_.]{1,20}$'.")  # fmt: skip
        sym = self._symbols.get(raw)
        if sym is None:
            raise _ApiError(400, -1121, "Invalid symbol.")
        return sym

    def _exchange_info(self, params: dict[str, str]) -> dict[str, Any]:
        if self._spot:
            _check_params(params, ("symbol", "symbols"))
            chosen = list(self._symbols.values())
            if "symbol" in params and "symbols" in params:
                raise _ApiError(400, -1106, "Parameter 'symbols' sent when not required.")
            if "symbol" in params:
                chosen = [self._param_symbol(params)]
            elif "symbols" in params:
                try:
                    names = json.loads(params["symbols"])
                except ValueError:
                    names = None
                if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                    raise _ApiError(400, -1100, "Illegal characters found in parameter 'symbols'; "
                                    "legal range is '^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]"
                                    "{1,20}\"){0,}){0,1}\\]$'.")  # fmt: skip
                chosen = [self._param_symbol({"symbol": n}) for n in names]
            return {
                "timezone": "UTC",
                "serverTime": self.now_ms(),
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": self.weight_limit,
                    },
                    {
                        "rateLimitType": "ORDERS",
                        "interval": "SECOND",
                        "intervalNum": 10,
                        "limit": 100,
                    },
                    {
                        "rateLimitType": "ORDERS",
                        "interval": "DAY",
                        "intervalNum": 1,
                        "limit": 200000,
                    },
                    {
                        "rateLimitType": "RAW_REQUESTS",
                        "interval": "MINUTE",
                        "intervalNum": 5,
                        "limit": 61000,
                    },
                ],
                "exchangeFilters": [],
                "symbols": [self._spot_symbol_info(s) for s in chosen],
            }
        _check_params(params, ())
        return {
            "timezone": "UTC",
            "serverTime": self.now_ms(),
            "futuresType": "U_MARGINED",
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.weight_limit,
                },
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
            ],
            "exchangeFilters": [],
            "assets": [
                {"asset": q, "marginAvailable": True, "autoAssetExchange": "-10000"}
                for q in sorted({s.quote for s in self._symbols.values()})
            ],
            "symbols": [self._usdm_symbol_info(s) for s in self._symbols.values()],
        }

    def _spot_symbol_info(self, s: _Symbol) -> dict[str, Any]:
        tick, step = _fmt(1, s.price_dec, 8), _fmt(1, s.qty_dec, 8)
        return {
            "symbol": s.name, "status": s.status, "baseAsset": s.base, "baseAssetPrecision": 8,
            "quoteAsset": s.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT",
                           "TAKE_PROFIT_LIMIT"],
            "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": True,
            "cancelReplaceAllowed": True, "amendAllowed": True, "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": tick,
                 "maxPrice": _fmt(10**6 * 10**s.price_dec, s.price_dec, 8), "tickSize": tick},
                {"filterType": "LOT_SIZE", "minQty": step,
                 "maxQty": _fmt(9 * 10**6 * 10**s.qty_dec, s.qty_dec, 8), "stepSize": step},
                {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
                 "maxNotional": "9000000.00000000", "applyMaxToMarket": False,
                 "avgPriceMins": 5},
            ],
            "permissions": [], "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }  # fmt: skip

    def _usdm_symbol_info(self, s: _Symbol) -> dict[str, Any]:
        tick, step = _fmt(1, s.price_dec, s.price_dec), _fmt(1, s.qty_dec, s.qty_dec)
        return {
            "symbol": s.name, "pair": s.name, "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000, "onboardDate": 1569398400000, "status": s.status,
            "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
            "baseAsset": s.base, "quoteAsset": s.quote, "marginAsset": s.quote,
            "pricePrecision": s.price_dec, "quantityPrecision": s.qty_dec,
            "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
            "underlyingSubType": [], "triggerProtect": "0.0500", "liquidationFee": "0.012500",
            "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": tick,
                 "maxPrice": _fmt(10**7 * 10**s.price_dec, s.price_dec, s.price_dec),
                 "tickSize": tick},
                {"filterType": "LOT_SIZE", "minQty": step,
                 "maxQty": _fmt(10**6 * 10**s.qty_dec, s.qty_dec, s.qty_dec), "stepSize": step},
                {"filterType": "MARKET_LOT_SIZE", "minQty": step,
                 "maxQty": _fmt(10**5 * 10**s.qty_dec, s.qty_dec, s.qty_dec), "stepSize": step},
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MIN_NOTIONAL", "notional": "5"},
                {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500",
                 "multiplierDown": "0.9500", "multiplierDecimal": "4"},
            ],
            "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                           "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        }  # fmt: skip

    def _klines(self, params: dict[str, str]) -> list[list[Any]]:
        sym = self._param_symbol(params)
        interval = params.get("interval")
        if not interval:
            raise _ApiError(
                400,
                -1102,
                "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.",
            )
        if interval not in self._spec.intervals:
            raise _ApiError(400, -1120, "Invalid interval.")
        iv = _INTERVALS_MS[interval]
        start = _int_param(params, "startTime", 0, None)
        end = _int_param(params, "endTime", 0, None)
        limit = _limit(params, 500, self._spec.kline_limit)
        if start is not None and end is not None and start > end:
            raise _ApiError(400, -1023, "Start time is greater than end time.")
        prints, times = sym.prints, sym.times
        if not prints:
            return []
        first_open = times[0] // iv * iv
        hi = self.now_ms() // iv * iv
        if end is not None:
            hi = min(hi, end // iv * iv)
        if start is not None:
            lo = max(first_open, -(-start // iv) * iv)  # klines opening at or after startTime
            hi = min(hi, lo + (limit - 1) * iv)
        else:
            lo = max(first_open, hi - (limit - 1) * iv)
        rows: list[list[Any]] = []
        j = bisect.bisect_left(times, lo)
        prev_close = prints[j - 1].price if j else prints[0].price
        t = lo
        while t <= hi:
            acc = _KlineAcc(t, iv, prev_close)
            while j < len(prints) and prints[j].time_ms < t + iv:
                acc.add(prints[j])
                j += 1
            prev_close = acc.c
            rows.append(
                [
                    acc.open_ms,
                    sym.px(acc.o),
                    sym.px(acc.h),
                    sym.px(acc.l),
                    sym.px(acc.c),
                    sym.qty(acc.v),
                    acc.close_ms,
                    sym.quote_amount(acc.q),
                    acc.n,
                    sym.qty(acc.tv),
                    sym.quote_amount(acc.tq),
                    "0",
                ]
            )
            t += iv
        return rows

    def _agg_trades(self, params: dict[str, str]) -> list[dict[str, Any]]:
        sym = self._param_symbol(params)
        limit = _limit(params, 500, 1000)
        from_id = _int_param(params, "fromId", 0, None)
        start = _int_param(params, "startTime", 0, None)
        end = _int_param(params, "endTime", 0, None)
        if start is not None and end is not None:
            if start > end:
                raise _ApiError(400, -1023, "Start time is greater than end time.")
            if end - start >= 3_600_000:
                raise _ApiError(400, -1127, "More than 1 hours between startTime and endTime.")
        prints, times = sym.prints, sym.times
        if not prints:
            return []
        lo, hi = 0, len(prints)
        if from_id is not None:
            lo = max(lo, min(len(prints), from_id - prints[0].agg_id))
        if start is not None:
            lo = max(lo, bisect.bisect_left(times, start))
        if end is not None:
            hi = min(hi, bisect.bisect_right(times, end))
        if from_id is None and start is None:
            lo = max(lo, hi - limit)  # the most recent ones (before endTime)
        return [self._agg_row(sym, p) for p in prints[lo : min(hi, lo + limit)]]

    def _agg_row(self, sym: _Symbol, p: _Print) -> dict[str, Any]:
        row: dict[str, Any] = {
            "a": p.agg_id, "p": sym.px(p.price), "q": sym.qty(p.qty), "f": p.first_id,
            "l": p.last_id, "T": p.time_ms, "m": p.buyer_is_maker,
        }  # fmt: skip
        if self._spot:
            row["M"] = True
        return row

    def _raw_rows_from(
        self, sym: _Symbol, from_id: int, limit: int
    ) -> list[tuple[int, int, _Print]]:
        """Up to `limit` raw trades from raw id `from_id`: ``(id, qty, print)``."""
        if not sym.prints:
            return []
        i = max(0, bisect.bisect_right(sym.firsts, from_id) - 1)
        out: list[tuple[int, int, _Print]] = []
        for p in sym.prints[i:]:
            for k, q in enumerate(p.raw_qtys):
                rid = p.first_id + k
                if rid >= from_id:
                    out.append((rid, q, p))
                    if len(out) == limit:
                        return out
        return out

    def _raw_row(self, sym: _Symbol, raw: tuple[int, int, _Print]) -> dict[str, Any]:
        rid, q, p = raw
        row: dict[str, Any] = {
            "id": rid, "price": sym.px(p.price), "qty": sym.qty(q),
            "quoteQty": sym.quote_amount(p.price * q), "time": p.time_ms,
            "isBuyerMaker": p.buyer_is_maker,
        }  # fmt: skip
        if self._spot:
            row["isBestMatch"] = True
        return row

    def _raw_rows(self, sym: _Symbol, p: _Print) -> list[dict[str, Any]]:
        return [self._raw_row(sym, (p.first_id + k, q, p)) for k, q in enumerate(p.raw_qtys)]


def _valid_id(rid: Any) -> bool:
    """Binance takes an unsigned int, a string of up to 36 characters, or null as `id`."""
    if rid is None:
        return True
    if isinstance(rid, bool):
        return False
    if isinstance(rid, int):
        return 0 <= rid < 2**63
    return isinstance(rid, str) and 0 < len(rid) <= 36 and rid.isalnum()


def _check_params(params: dict[str, str], allowed: Sequence[str]) -> None:
    read = sum(1 for k in params if k in allowed)
    if read != len(params):
        raise _ApiError(400, -1104, f"Not all sent parameters were read; read '{read}' "
                        f"parameter(s) but was sent '{len(params)}'.")  # fmt: skip


def _limit(params: dict[str, str], default: int, most: int) -> int:
    value = _int_param(params, "limit", 1, most)
    return default if value is None else value


def _int_param(params: dict[str, str], name: str, lo: int, hi: int | None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not _INT_PARAM_RE.match(raw):
        raise _ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; legal "
                        "range is '^[0-9]{1,20}$'.")  # fmt: skip
    value = int(raw)
    if value < lo or (hi is not None and value > hi):
        raise _ApiError(400, -1130, f"Data sent for parameter '{name}' is not valid.")
    return value
