"""Live candle streams: one forming candle per symbol and interval that someone follows,
seeded from ClickHouse and kept current from the candles topic."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from api.errors import InvalidRequest, NotFound, Unavailable
from api.live.candles import Bar, FormingCandle, encode_bar
from api.live.clients import Message, Subscription
from api.store import Store
from schemas.candles import ROLLUP_INTERVAL_MS as INTERVAL_MS
from schemas.candles import Candle
from schemas.topics import symbol_key

logger = logging.getLogger(__name__)

SETTLE_S = 5.0
"""A new stream reads its interval from ClickHouse again after this long: the candles
written between the first read and the feed's first delivery fill in (members merge by
open time and version, so reading one twice changes nothing)."""

_MINUTE_MS = 60_000


@dataclass(eq=False, slots=True)
class CandleStream:
    """The forming candle of one symbol and interval, and who follows it."""

    key: str
    forming: FormingCandle
    subs: set[Subscription] = field(default_factory=set)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    seq: int = 0

    def message(self, bar: Bar) -> Message:
        """The `candle` (forming) or `close` message of a bar, numbered in this stream."""
        self.seq += 1
        return Message("close" if bar.closed else "candle", encode_bar(bar), self.seq)

    def send(self, bars: Iterable[Bar]) -> None:
        """Queue each bar for every subscriber, encoded once."""
        for bar in bars:
            message = self.message(bar)
            for sub in self.subs:
                sub.client.put(sub, message)


class CandleStreams:
    """Every candle stream of the process, fed by the live feed's candles.

    Args:
        store: ClickHouse, to seed new streams and to look up symbols never seen live.
        known: Whether a symbol key is known otherwise (the symbol directory, the board).
        settle_s: When a new stream re-reads its interval from ClickHouse.
    """

    def __init__(
        self,
        store: Store | None,
        known: Callable[[str], bool],
        settle_s: float = SETTLE_S,
    ) -> None:
        self.store = store
        self.known = known
        self.settle_s = settle_s
        self.last_second: dict[str, int] = {}
        """Open time of the latest 1s candle seen live, per symbol key."""
        self._streams: dict[tuple[str, str], CandleStream] = {}
        self._by_key: dict[str, list[CandleStream]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, candles: Iterable[Candle]) -> None:
        """Apply closed candles from the feed to the streams of their symbols."""
        last_second = self.last_second
        by_key = self._by_key
        for candle in candles:
            key = candle.key
            if candle.interval == "1s" and candle.open_time > last_second.get(key, -1):
                last_second[key] = candle.open_time
            for stream in by_key.get(key, ()):
                stream.send(stream.forming.add(candle))

    async def subscribe(
        self,
        sub: Subscription,
        exchange: str,
        market: str,
        symbol: str,
        interval: str,
        ack: Message | None = None,
    ) -> None:
        """Add `sub` to the stream of a symbol and interval (opening it if needed) and
        queue the current bar for it, if there is one, after `ack` if given.

        Raises:
            InvalidRequest: For an unknown interval.
            NotFound: For a symbol that is neither known nor has candles.
            Unavailable: When ClickHouse cannot be read to seed the stream.
        """
        if interval not in INTERVAL_MS:
            raise InvalidRequest(
                f"unknown interval {interval!r}: use one of {', '.join(INTERVAL_MS)}"
            )
        key = symbol_key(exchange, market, symbol)
        stream = self._streams.get((key, interval))
        if stream is None:
            stream = await self._open(exchange, market, symbol, interval)
        else:
            await stream.ready.wait()
            if self._streams.get((key, interval)) is not stream:
                raise Unavailable(f"the {interval} candle stream of {key} failed to start")
        if sub.client.subscriptions.get(sub.id) is not sub or sub.client.closed is not None:
            self._drop_if_idle(stream)  # unsubscribed while the stream was being read
            return
        stream.subs.add(sub)
        sub.target = stream
        if ack is not None:
            sub.client.reply(ack)
        bar = stream.forming.bar()
        if bar is not None:
            sub.client.put(sub, stream.message(bar))

    def unsubscribe(self, sub: Subscription) -> None:
        """Remove `sub` from its stream; a stream nobody follows is closed."""
        stream = sub.target
        if isinstance(stream, CandleStream):
            stream.subs.discard(sub)
            self._drop_if_idle(stream)

    async def aclose(self) -> None:
        """Cancel the streams' pending re-reads."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _open(self, exchange: str, market: str, symbol: str, interval: str) -> CandleStream:
        key = symbol_key(exchange, market, symbol)
        stream = CandleStream(key, FormingCandle(exchange, market, symbol, interval))
        self._streams[(key, interval)] = stream
        self._by_key.setdefault(key, []).append(stream)
        try:
            latest = self.last_second.get(key)
            if latest is None and self.store is not None:
                latest = await self._read(latest_second, exchange, market, symbol)
            if latest is None and not self.known(key):
                raise NotFound(f"unknown symbol {key!r}", code="unknown_symbol")
            if latest is not None:
                await self._seed(stream, latest, send=False)
        except BaseException:
            stream.ready.set()
            self._drop_if_idle(stream)
            raise
        stream.ready.set()
        if self.store is not None:
            task = asyncio.create_task(self._settle(stream))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return stream

    async def _read(self, query: Callable[..., Any], *args: Any) -> Any:
        try:
            return await query(self.store, *args)
        except Exception as exc:  # any driver or engine failure: the stream cannot start
            raise Unavailable(f"cannot read candles from ClickHouse: {exc}") from exc

    async def _seed(self, stream: CandleStream, latest: int, *, send: bool) -> None:
        if self.store is None:
            return
        for candle in await self._read(load_window, stream.forming, latest):
            bars = stream.forming.add(candle)
            if send:
                stream.send(bars)

    async def _settle(self, stream: CandleStream) -> None:
        await asyncio.sleep(self.settle_s)
        latest = self.last_second.get(stream.key)
        if latest is None or self._streams.get((stream.key, stream.forming.interval)) is not stream:
            return
        try:
            await self._seed(stream, latest, send=True)
        except Unavailable as exc:
            logger.warning("candle stream %s %s: %s", stream.key, stream.forming.interval, exc)

    def _drop_if_idle(self, stream: CandleStream) -> None:
        if stream.subs:
            return
        pair = (stream.key, stream.forming.interval)
        if self._streams.get(pair) is stream:
            del self._streams[pair]
        streams = self._by_key.get(stream.key, [])
        if stream in streams:
            streams.remove(stream)
        if not streams:
            self._by_key.pop(stream.key, None)


_DECIMALS = tuple(f.name for f in msgspec.structs.fields(Candle) if f.type is Decimal)

# Decimals as ClickHouse's shortest exact text (no trailing zeros of the column's scale),
# the form the candles topic and the history API use. Aliases differ from the columns:
# an alias named like its column would shadow it in WHERE.
_RENAMED = {"open_ms": "open_time", "close_ms": "close_time"} | {
    f"{name}_text": name for name in _DECIMALS
}
_CANDLE_COLUMNS = ", ".join(
    [
        "exchange",
        "market",
        "symbol",
        "toUnixTimestamp64Milli(open_time) AS open_ms",
        "toUnixTimestamp64Milli(close_time) AS close_ms",
        *(f"toString({name}) AS {name}_text" for name in _DECIMALS),
        "count",
        "first_trade_id",
        "last_trade_id",
        "version",
    ]
)
_WHERE = (
    " WHERE exchange = {exchange:String} AND market = {market:String} AND symbol = {symbol:String}"
)


async def latest_second(store: Store, exchange: str, market: str, symbol: str) -> int | None:
    """Open time of the symbol's latest 1s candle in ClickHouse, or None if it has none.

    Args:
        store: The API's ClickHouse store.
        exchange: The symbol's exchange.
        market: Its market.
        symbol: The symbol.
    """
    params = {"db": store.database, "exchange": exchange, "market": market, "symbol": symbol}
    _, rows = await store.query(
        "SELECT toUnixTimestamp64Milli(open_time) FROM {db:Identifier}.candles_1s"
        + _WHERE
        + " ORDER BY open_time DESC LIMIT 1",
        params,
    )
    return int(rows[0][0]) if rows else None


async def load_window(store: Store, forming: FormingCandle, latest_ms: int) -> list[Candle]:
    """The stored candles of the interval that holds `latest_ms`, to seed a forming candle.

    Closed minutes come from candles_1m and the seconds after the last of them from
    candles_1s, each at its latest version (FINAL).

    Args:
        store: The API's ClickHouse store.
        forming: The forming candle to seed (its symbol and interval).
        latest_ms: Open time of the symbol's latest known 1s candle.

    Returns:
        The candles, minutes first; feed them to `forming.add`.
    """
    start = latest_ms - latest_ms % forming.interval_ms
    end = start + forming.interval_ms
    params: dict[str, Any] = {
        "db": store.database,
        "exchange": forming.exchange,
        "market": forming.market,
        "symbol": forming.symbol,
        "start": start,
        "end": end,
    }
    span = (
        " AND open_time >= fromUnixTimestamp64Milli({start:Int64})"
        " AND open_time < fromUnixTimestamp64Milli({end:Int64}) ORDER BY open_time"
    )
    candles: list[Candle] = []
    if forming.interval_ms >= _MINUTE_MS:
        names, rows = await store.query(
            f"SELECT {_CANDLE_COLUMNS} FROM {{db:Identifier}}.candles_1m FINAL" + _WHERE + span,
            params,
        )
        candles.extend(_candles(names, rows, "1m"))
        if candles:
            params["start"] = candles[-1].open_time + _MINUTE_MS
    names, rows = await store.query(
        f"SELECT {_CANDLE_COLUMNS} FROM {{db:Identifier}}.candles_1s FINAL" + _WHERE + span,
        params,
    )
    candles.extend(_candles(names, rows, "1s"))
    return candles


def _candles(names: Iterable[str], rows: list[tuple[Any, ...]], interval: str) -> list[Candle]:
    columns = [*(_RENAMED.get(name, name) for name in names), "interval"]
    return [
        msgspec.convert(dict(zip(columns, (*row, interval), strict=True)), Candle) for row in rows
    ]
