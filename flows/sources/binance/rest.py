"""Binance REST market data (spot `/api/v3`, USDⓈ-M `/fapi/v1`) within the weight budget.

Binance limits each IP by request *weight* per minute (spot 6000, USDⓈ-M 2400, as
``exchangeInfo``'s ``REQUEST_WEIGHT`` says), reports the weight used so far in the
``X-MBX-USED-WEIGHT-1M`` header of every response, answers 429 (error -1003) with a
``Retry-After`` in seconds when the limit is broken, and bans an IP that keeps going with
418 and a ``Retry-After`` until the ban ends (2 minutes to 3 days). So the client:

- keeps its own count of the minute's weight, raised to the server's figure on every
  response, and waits for the next minute before a request that would pass
  ``safety * limit``;
- on 429 holds every request for ``Retry-After`` (plus jitter) and retries a few times;
- on 418 raises `BinanceBanned` at once and refuses every request until the ban is over;
- retries 5xx and network errors with jittered exponential backoff, and raises
  `BinanceApiError` with Binance's ``{"code", "msg"}`` for any other 4xx.

Gap repair must not wait for history: `BinanceRest.background` gives history a client
that shares the budget and the ban through one `WeightGate`, yields to every other
request and leaves part of each minute's weight to them.

Rows are parsed into typed structs with exact Decimals. A real ``/api/v3/klines`` row::

    [1634943780000, "60685.22000000", "60729.84000000", "60670.90000000",
     "60719.27000000", "21.63272000", 1634943839999, "1313200.01340410", 617,
     "12.28492000", "745719.41022840", "0"]
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal, Self

import aiohttp
import msgspec

from flows.errors import FlowError
from flows.sources.binance.trades import BinanceDecodeError, time_us_from_binance, to_decimal
from flows.sources.binance.weight import (
    WEIGHT_LIMITS_1M,
    WEIGHTS,
    WeightBudget,
    WeightGate,
    klines_weight,
)
from schemas.tickers import Ticker24h
from schemas.trades import Market, Trade

logger = logging.getLogger(__name__)

DEFAULT_URLS: dict[str, str] = {
    "spot": "https://api.binance.com",
    "usdm": "https://fapi.binance.com",
}
"""Binance's production REST hosts per market."""

_PREFIX = {"spot": "/api/v3", "usdm": "/fapi/v1"}

# Page size limits per endpoint and market (Binance docs).
MAX_KLINES = {"spot": 1000, "usdm": 1500}
MAX_TRADES = {"spot": 1000, "usdm": 1000}
MAX_HISTORICAL_TRADES = {"spot": 1000, "usdm": 500}
MAX_AGG_TRADES = {"spot": 1000, "usdm": 1000}

DEFAULT_BAN_S = 120.0
"""A 418 without a usable Retry-After: Binance's shortest ban."""

_BANNED_UNTIL = re.compile(r"banned until (\d{12,})")

TradeKind = Literal["trade", "aggTrade"]
"""What the ids of a trade range count: raw trade ids or aggregate trade ids."""


class BinanceRestError(FlowError):
    """Base of every error the Binance REST client raises."""


class BinanceApiError(BinanceRestError):
    """Binance refused a request with a 4xx and (usually) its ``{"code", "msg"}`` body.

    Attributes:
        status: The HTTP status.
        code: Binance's error code (e.g. -1121 invalid symbol), or None without one.
        msg: Binance's message, or the body's text.
    """

    def __init__(self, status: int, code: int | None, msg: str) -> None:
        super().__init__(f"HTTP {status}, Binance error {code}: {msg}")
        self.status = status
        self.code = code
        self.msg = msg


class BinanceBanned(BinanceRestError):
    """Binance banned this IP (HTTP 418); no request may be sent before `until`.

    Attributes:
        until: When the ban ends (UTC).
    """

    def __init__(self, until: datetime, detail: str = "") -> None:
        super().__init__(
            f"Binance banned this IP until {until:%Y-%m-%d %H:%M:%S} UTC"
            + (f" ({detail})" if detail else "")
        )
        self.until = until


class BinanceUnavailable(BinanceRestError):
    """Retries ran out: rate limited (429), server errors (5xx) or network errors."""


class BinanceResponseError(BinanceRestError):
    """A 200 response whose body is not what the endpoint documents."""


class IncompleteTradeRange(BinanceRestError):
    """Binance could not return every id of a trade range.

    Attributes:
        trades: The trades of the range that were returned, in id order.
        missing: The ids of the range that were not.
    """

    def __init__(self, symbol: str, first_id: int, last_id: int, trades: list[Trade]) -> None:
        have = {t.trade_id for t in trades}
        self.trades = trades
        self.missing = [i for i in range(first_id, last_id + 1) if i not in have]
        super().__init__(
            f"{symbol}: {len(self.missing)} of ids {first_id}..{last_id} not available "
            f"from Binance (first missing {self.missing[0] if self.missing else None})"
        )


class Kline(msgspec.Struct, frozen=True):
    """One Binance kline row, with exact decimals; times in ms since the epoch (UTC)."""

    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    close_time: int
    quote_volume: Decimal
    count: int
    taker_buy_volume: Decimal
    taker_buy_quote_volume: Decimal


class _AggTradeRow(msgspec.Struct):
    a: int
    p: str
    q: str
    f: int
    l: int  # noqa: E741 - Binance's own field name
    T: int
    m: bool


class _TradeRow(msgspec.Struct, rename="camel"):
    id: int
    price: str
    qty: str
    time: int
    is_buyer_maker: bool


class _TickerRow(msgspec.Struct, rename="camel"):
    symbol: str
    open_price: str
    high_price: str
    low_price: str
    last_price: str
    volume: str
    quote_volume: str
    open_time: int
    close_time: int
    count: int


_decode_rows = msgspec.json.Decoder(list[list[Any]]).decode
_decode_tickers = msgspec.json.Decoder(list[_TickerRow]).decode
_decode_agg = msgspec.json.Decoder(list[_AggTradeRow]).decode
_decode_trades = msgspec.json.Decoder(list[_TradeRow]).decode


def parse_klines(body: bytes) -> list[Kline]:
    """Parse a ``klines`` response body.

    Raises:
        BinanceResponseError: The body is not a list of kline rows.
    """
    try:
        rows = _decode_rows(body)
        return [
            Kline(
                open_time=_int(r[0]),
                open=to_decimal(r[1], "open"),
                high=to_decimal(r[2], "high"),
                low=to_decimal(r[3], "low"),
                close=to_decimal(r[4], "close"),
                volume=to_decimal(r[5], "volume"),
                close_time=_int(r[6]),
                quote_volume=to_decimal(r[7], "quote_volume"),
                count=_int(r[8]),
                taker_buy_volume=to_decimal(r[9], "taker_buy_volume"),
                taker_buy_quote_volume=to_decimal(r[10], "taker_buy_quote_volume"),
            )
            for r in rows
        ]
    except (msgspec.DecodeError, BinanceDecodeError, IndexError, TypeError) as exc:
        raise BinanceResponseError(f"bad klines response: {exc}") from None


def parse_agg_trades(body: bytes, market: Market, symbol: str) -> list[Trade]:
    """Parse an ``aggTrades`` response body into aggregate `Trade`s.

    Raises:
        BinanceResponseError: The body is not a list of aggregate trades.
    """
    try:
        return [
            Trade(
                exchange="binance",
                market=market,
                symbol=symbol,
                trade_id=r.a,
                price=to_decimal(r.p, "p"),
                qty=to_decimal(r.q, "q"),
                time_us=time_us_from_binance(r.T),
                buyer_is_maker=r.m,
                first_trade_id=r.f,
                last_trade_id=r.l,
            )
            for r in _decode_agg(body)
        ]
    except (msgspec.DecodeError, BinanceDecodeError) as exc:
        raise BinanceResponseError(f"bad aggTrades response: {exc}") from None


def parse_trades(body: bytes, market: Market, symbol: str) -> list[Trade]:
    """Parse a ``trades`` or ``historicalTrades`` response body into `Trade`s.

    Raises:
        BinanceResponseError: The body is not a list of trades.
    """
    try:
        return [
            Trade(
                exchange="binance",
                market=market,
                symbol=symbol,
                trade_id=r.id,
                price=to_decimal(r.price, "price"),
                qty=to_decimal(r.qty, "qty"),
                time_us=time_us_from_binance(r.time),
                buyer_is_maker=r.is_buyer_maker,
            )
            for r in _decode_trades(body)
        ]
    except (msgspec.DecodeError, BinanceDecodeError) as exc:
        raise BinanceResponseError(f"bad trades response: {exc}") from None


def parse_tickers(body: bytes, market: Market) -> list[Ticker24h]:
    """Parse a ``ticker/24hr`` response for every symbol into `Ticker24h` rows.

    A real USDⓈ-M row (spot adds ``prevClosePrice``, bid and ask)::

        {"symbol":"BTCUSDT","priceChange":"-94.99999800","priceChangePercent":"-95.960",
         "weightedAvgPrice":"0.29628482","lastPrice":"4.00000200","lastQty":"200.00000000",
         "openPrice":"99.00000000","highPrice":"100.00000000","lowPrice":"0.10000000",
         "volume":"8913.30000000","quoteVolume":"15.30000000","openTime":1499783499040,
         "closeTime":1499869899040,"firstId":28385,"lastId":28460,"count":76}

    Raises:
        BinanceResponseError: The body is not a list of tickers.
    """
    try:
        return [
            Ticker24h(
                exchange="binance",
                market=market,
                symbol=r.symbol,
                open_time_ms=r.open_time,
                close_time_ms=r.close_time,
                open_price=to_decimal(r.open_price, "openPrice"),
                last_price=to_decimal(r.last_price, "lastPrice"),
                high_price=to_decimal(r.high_price, "highPrice"),
                low_price=to_decimal(r.low_price, "lowPrice"),
                volume=to_decimal(r.volume, "volume"),
                quote_volume=to_decimal(r.quote_volume, "quoteVolume"),
                count=r.count,
            )
            for r in _decode_tickers(body)
        ]
    except (msgspec.DecodeError, BinanceDecodeError) as exc:
        raise BinanceResponseError(f"bad ticker/24hr response: {exc}") from None


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


@dataclass
class RestStats:
    """What a client has sent and waited for."""

    requests: int = 0
    weight: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    network_errors: int = 0
    throttled_s: float = 0.0
    max_used_weight: int = 0


class BinanceRest:
    """Async Binance REST client for market data, kept within the request-weight budget.

    Use it as ``async with BinanceRest("spot") as rest: ...``. Requests made concurrently
    share one budget and one ban; those of its `background` client wait behind them.

    Args:
        market: ``spot`` (``/api/v3``) or ``usdm`` (``/fapi/v1``).
        base_url: Scheme and host, e.g. a local fake; Binance's production host by default.
        session: An aiohttp session to use (not closed here); one of our own otherwise.
        weight_limit_1m: ``REQUEST_WEIGHT`` per minute; 6000 on spot, 2400 on USDⓈ-M.
        safety: Fraction of the limit to stay under.
        max_retries: Retries of a request after 429, 5xx or network errors.
        backoff_s: First backoff after a 5xx or network error; doubles each retry.
        api_key: Sent as ``X-MBX-APIKEY`` when given (USDⓈ-M ``historicalTrades``
            is a MARKET_DATA endpoint).
        clock: Seconds since the epoch, for the budget.
        background_reserve: Share of the budget's cap that `background` requests leave
            to the others.
    """

    def __init__(
        self,
        market: Market,
        base_url: str | None = None,
        *,
        session: aiohttp.ClientSession | None = None,
        weight_limit_1m: int | None = None,
        safety: float = 0.8,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        api_key: str | None = None,
        clock: Callable[[], float] = time.time,
        background_reserve: float = 0.25,
    ) -> None:
        if market not in _PREFIX:
            raise ValueError(f"market must be spot or usdm, not {market!r}")
        self.market: Market = market
        self.base_url = (base_url or DEFAULT_URLS[market]).rstrip("/")
        self.budget = WeightBudget(weight_limit_1m or WEIGHT_LIMITS_1M[market], safety, clock)
        self.gate = WeightGate(self.budget, background_reserve)
        self.stats = RestStats()
        self._session = session
        self._own_session = session is None
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._headers = {"X-MBX-APIKEY": api_key} if api_key else {}
        self._clock = clock
        self._background = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if the client opened it."""
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def banned_until(self) -> datetime | None:
        """When the current ban ends, or None when not banned."""
        if self._clock() >= self.gate.banned_until:
            return None
        return datetime.fromtimestamp(self.gate.banned_until, UTC)

    def background(self) -> BinanceRest:
        """A client for work that may wait (history), beside this one.

        It shares this client's session, weight budget and ban; each of its requests
        waits while one of this client's is waiting and leaves ``background_reserve`` of
        the minute's cap to them. Its `stats` are its own. Close only this client.
        """
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        view = copy.copy(self)
        view._own_session = False
        view._background = True
        view.stats = RestStats()
        return view

    async def exchange_info(self) -> dict[str, Any]:
        """The market's exchange information: rate limits and every symbol."""
        body = await self._get("exchangeInfo", {})
        info = msgspec.json.decode(body)
        if not isinstance(info, dict) or not isinstance(info.get("symbols"), list):
            raise BinanceResponseError("bad exchangeInfo response: no symbols list")
        return info

    async def tickers_24h(self) -> list[Ticker24h]:
        """The exchange's rolling 24h statistics of every symbol, in one request."""
        return parse_tickers(await self._get("ticker/24hr", {}), self.market)

    async def klines(
        self,
        symbol: str,
        interval: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[Kline]:
        """Klines of `symbol` opening in ``[start_ms, end_ms]``, oldest first, at most `limit`."""
        limit = _clamp(limit, MAX_KLINES[self.market])
        params: dict[str, str | int] = {"symbol": symbol, "interval": interval, "limit": limit}
        if start_ms is not None:
            params["startTime"] = start_ms
        if end_ms is not None:
            params["endTime"] = end_ms
        body = await self._get("klines", params, klines_weight(self.market, limit))
        return parse_klines(body)

    async def agg_trades(
        self,
        symbol: str,
        *,
        from_id: int | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 1000,
    ) -> list[Trade]:
        """Aggregate trades from aggregate id `from_id`, or in ``[start_ms, end_ms]``.

        Binance requires less than an hour between `start_ms` and `end_ms`.
        """
        limit = _clamp(limit, MAX_AGG_TRADES[self.market])
        params: dict[str, str | int] = {"symbol": symbol, "limit": limit}
        if from_id is not None:
            params["fromId"] = from_id
        if start_ms is not None:
            params["startTime"] = start_ms
        if end_ms is not None:
            params["endTime"] = end_ms
        return parse_agg_trades(await self._get("aggTrades", params), self.market, symbol)

    async def trades(
        self, symbol: str, *, from_id: int | None = None, limit: int = 1000
    ) -> list[Trade]:
        """Raw trades from id `from_id` (``historicalTrades``), or the most recent (``trades``)."""
        params: dict[str, str | int] = {"symbol": symbol}
        if from_id is None:
            endpoint = "trades"
            params["limit"] = _clamp(limit, MAX_TRADES[self.market])
        else:
            endpoint = "historicalTrades"
            params["limit"] = _clamp(limit, MAX_HISTORICAL_TRADES[self.market])
            params["fromId"] = from_id
        return parse_trades(await self._get(endpoint, params), self.market, symbol)

    async def fetch_trade_range(
        self, symbol: str, first_id: int, last_id: int, *, kind: TradeKind = "trade"
    ) -> list[Trade]:
        """Every trade with an id in ``first_id..last_id``, paging until none is missing.

        Gap repair: a spot ``@trade`` stream counts raw trade ids (``kind="trade"``,
        ``historicalTrades``); a USDⓈ-M ``@aggTrade`` stream counts aggregate ids
        (``kind="aggTrade"``, ``aggTrades``).

        Returns:
            The trades in id order, one per id.

        Raises:
            IncompleteTradeRange: Binance stopped returning trades before `last_id`
                (e.g. older than it keeps), or skipped ids.
        """
        if last_id < first_id:
            return []
        got: dict[int, Trade] = {}
        cursor = first_id
        while cursor <= last_id:
            want = last_id - cursor + 1
            if kind == "aggTrade":
                page = await self.agg_trades(symbol, from_id=cursor, limit=want)
            else:
                page = await self.trades(symbol, from_id=cursor, limit=want)
            fresh = [t for t in page if cursor <= t.trade_id <= last_id]
            if not fresh:
                break
            for t in fresh:
                got[t.trade_id] = t
            cursor = max(t.trade_id for t in fresh) + 1
        trades = [got[i] for i in sorted(got)]
        if len(trades) != last_id - first_id + 1:
            raise IncompleteTradeRange(symbol, first_id, last_id, trades)
        return trades

    async def _get(
        self, endpoint: str, params: Mapping[str, str | int], weight: int | None = None
    ) -> bytes:
        """GET an endpoint within the budget, retrying what Binance says may be retried."""
        if weight is None:
            weight = WEIGHTS[(self.market, endpoint)]
        url = f"{self.base_url}{_PREFIX[self.market]}/{endpoint}"
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        failure = ""
        for attempt in range(self._max_retries + 1):
            await self._wait_for_room(weight)
            self.stats.requests += 1
            self.stats.weight += weight
            try:
                async with self._session.get(url, params=params, headers=self._headers) as resp:
                    body = await resp.read()
                    status = resp.status
                    self.budget.observe(resp.headers)
                    retry_after = resp.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.stats.network_errors += 1
                failure = f"{type(exc).__name__}: {exc}"
                await self._backoff(attempt, endpoint, failure)
                continue
            self.stats.max_used_weight = max(self.stats.max_used_weight, self.budget.used)
            if status == 200:
                return body
            if status == 418:
                self._ban(retry_after, body)
            if status == 429:
                self.stats.rate_limited += 1
                wait = _seconds(retry_after)
                if wait is None:
                    wait = self._backoff_s * 2**attempt
                wait *= 1 + random.uniform(0.05, 0.25)
                logger.info(
                    "Binance %s rate limit (429 on %s): holding requests for %.1f s",
                    self.market,
                    endpoint,
                    wait,
                )
                self.budget.hold(wait)
                failure = f"HTTP 429: {_message(body)}"
                continue
            if status >= 500:
                self.stats.server_errors += 1
                failure = f"HTTP {status}: {_message(body)}"
                await self._backoff(attempt, endpoint, failure)
                continue
            code, msg = _error(body)
            raise BinanceApiError(status, code, msg)
        raise BinanceUnavailable(
            f"{endpoint} failed after {self._max_retries + 1} attempts; last: {failure}"
        )

    async def _wait_for_room(self, weight: int) -> None:
        """Wait until the budget has room for `weight` (raise while banned)."""
        await self.gate.admit(
            weight, background=self._background, check=self._not_banned, on_wait=self._waiting
        )

    def _not_banned(self) -> None:
        until = self.banned_until
        if until is not None:
            raise BinanceBanned(until, "refusing to send until the ban is over")

    def _waiting(self, delay: float) -> None:
        self.stats.throttled_s += delay
        logger.log(
            logging.DEBUG if self._background else logging.INFO,
            "Binance %s request weight %d/%d of the minute (cap %d): %swaiting %.1f s",
            self.market,
            self.budget.used,
            self.budget.limit,
            self.budget.cap,
            "history " if self._background else "",
            delay,
        )

    def _ban(self, retry_after: str | None, body: bytes) -> None:
        seconds = _seconds(retry_after)
        text = _message(body)
        if seconds is None:
            found = _BANNED_UNTIL.search(text)
            seconds = (
                int(found.group(1)) / 1000 - self._clock() if found is not None else DEFAULT_BAN_S
            )
        gate = self.gate
        gate.banned_until = max(gate.banned_until, self._clock() + max(seconds, 0.0))
        until = datetime.fromtimestamp(gate.banned_until, UTC)
        logger.warning(
            "Binance %s banned this IP (418) until %s",
            self.market,
            f"{until:%Y-%m-%d %H:%M:%S} UTC",
        )
        raise BinanceBanned(until, text)

    async def _backoff(self, attempt: int, endpoint: str, failure: str) -> None:
        if attempt >= self._max_retries:
            return
        wait = self._backoff_s * 2**attempt * random.uniform(0.8, 1.2)
        logger.info("Binance %s %s: %s; retrying in %.1f s", self.market, endpoint, failure, wait)
        await asyncio.sleep(wait)


def _clamp(limit: int, most: int) -> int:
    return max(1, min(limit, most))


def _seconds(header: str | None) -> float | None:
    """A Retry-After value in seconds (Binance sends an integer), or None."""
    if header is None:
        return None
    try:
        value = float(header)
    except ValueError:
        return None
    return value if value >= 0 else None


def _error(body: bytes) -> tuple[int | None, str]:
    """Binance's ``{"code", "msg"}`` from an error body, or the body's text."""
    try:
        payload = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None, _message(body)
    if isinstance(payload, dict) and isinstance(payload.get("code"), int):
        return payload["code"], str(payload.get("msg", ""))
    return None, _message(body)


def _message(body: bytes) -> str:
    return body[:500].decode("utf-8", "replace").strip()
