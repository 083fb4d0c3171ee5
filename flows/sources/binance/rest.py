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

Responses are parsed into typed rows by `flows.sources.binance.responses` (a
perpetual's history by `flows.sources.binance.perp_responses`, which also gives the
request-count windows of ``fundingRate`` and ``openInterestHist``); the errors
raised and the reading of an error reply live in `flows.sources.binance.errors`; hosts,
paths, weights and page sizes come from the market's description,
`flows.sources.binance.markets`.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import aiohttp
import msgspec

from flows.sources.binance.errors import (
    BinanceApiError,
    BinanceBanned,
    BinanceResponseError,
    BinanceRestError,
    BinanceUnavailable,
    IncompleteTradeRange,
    ban_s,
    error_of,
    reply_text,
    retry_after_s,
)
from flows.sources.binance.markets import TradeKind, binance_market
from flows.sources.binance.perp_responses import (
    DATA_PREFIX,
    FUNDING_PAGE,
    OPEN_INTEREST_PAGE,
    REQUEST_WINDOWS,
    WEIGHTS,
    parse_funding_rates,
    parse_mark_klines,
    parse_open_interest_hist,
)
from flows.sources.binance.perps import parse_open_interest
from flows.sources.binance.responses import (
    Kline,
    parse_agg_trades,
    parse_klines,
    parse_tickers,
    parse_trades,
)
from flows.sources.binance.weight import RequestWindow, WeightBudget, WeightGate
from schemas.perps import FundingEvent, MarkKline, OpenInterest
from schemas.tickers import Ticker24h
from schemas.trades import Market, Trade

# The client with what it raises and returns: a caller needs to import only this module.
__all__ = [
    "BinanceApiError",
    "BinanceBanned",
    "BinanceRest",
    "BinanceRestError",
    "BinanceUnavailable",
    "IncompleteTradeRange",
    "Kline",
    "RestStats",
    "TradeKind",
]

logger = logging.getLogger(__name__)


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
    Hosts, paths, weights and page sizes are its market's, `facts`
    (`flows.sources.binance.markets`).

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
        self.facts = binance_market(market)
        self.market: Market = market
        self.base_url = (base_url or self.facts.rest_url).rstrip("/")
        self.budget = WeightBudget(weight_limit_1m or self.facts.weight_limit_1m, safety, clock)
        self.gate = WeightGate(self.budget, background_reserve)
        windows: dict[str, RequestWindow] = {}
        self.windows = {
            endpoint: windows.setdefault(name, RequestWindow(limit, span_s, safety))
            for endpoint, (name, limit, span_s) in REQUEST_WINDOWS.items()
        }
        """The request-count windows of the endpoints that have one, shared like the budget."""
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

    async def open_interest(self, symbol: str) -> OpenInterest:
        """A perpetual's open interest now (USDⓈ-M ``openInterest``, weight 1).

        Raises:
            flows.sources.binance.trades.BinanceDecodeError: The body is not the
                documented ``{"openInterest", "symbol", "time"}``.
        """
        return parse_open_interest(await self._get("openInterest", {"symbol": symbol}))

    async def klines(
        self,
        symbol: str,
        interval: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[Kline]:
        """Klines of `symbol` opening in ``[start_ms, end_ms]``, oldest first, at most `limit`."""
        limit = _clamp(limit, self.facts.max_klines)
        params: dict[str, str | int] = {"symbol": symbol, "interval": interval, "limit": limit}
        if start_ms is not None:
            params["startTime"] = start_ms
        if end_ms is not None:
            params["endTime"] = end_ms
        body = await self._get("klines", params, self.facts.klines_weight(limit))
        return parse_klines(body)

    async def mark_price_klines(
        self, symbol: str, interval: str, start_ms: int, end_ms: int, limit: int = 500
    ) -> list[MarkKline]:
        """Mark-price klines of `symbol` opening in ``[start_ms, end_ms]``, oldest first
        (USDⓈ-M ``markPriceKlines``, weighed by `limit` as ``klines``)."""
        limit = _clamp(limit, self.facts.max_klines)
        params: dict[str, str | int] = {
            "symbol": symbol, "interval": interval, "startTime": start_ms, "endTime": end_ms,
            "limit": limit,
        }  # fmt: skip
        body = await self._get("markPriceKlines", params, self.facts.klines_weight(limit))
        return parse_mark_klines(body, symbol)

    async def funding_rates(
        self, symbol: str, start_ms: int, end_ms: int, limit: int = FUNDING_PAGE
    ) -> list[FundingEvent]:
        """Settled funding times of `symbol` in ``[start_ms, end_ms]``, oldest first, at most
        `limit` (USDⓈ-M ``fundingRate``, within its own 500 requests per 5 minutes)."""
        params: dict[str, str | int] = {
            "symbol": symbol, "startTime": start_ms, "endTime": end_ms,
            "limit": _clamp(limit, FUNDING_PAGE),
        }  # fmt: skip
        body = await self._get("fundingRate", params, WEIGHTS["fundingRate"])
        return parse_funding_rates(body, symbol)

    async def open_interest_hist(
        self, symbol: str, period: str, start_ms: int, end_ms: int, limit: int = OPEN_INTEREST_PAGE
    ) -> list[OpenInterest]:
        """Open interest of `symbol` every `period` in ``[start_ms, end_ms]`` (USDⓈ-M
        ``/futures/data/openInterestHist``; Binance keeps the last 30 days only and refuses
        an older `start_ms`)."""
        params: dict[str, str | int] = {
            "symbol": symbol, "period": period, "startTime": start_ms, "endTime": end_ms,
            "limit": _clamp(limit, OPEN_INTEREST_PAGE),
        }  # fmt: skip
        body = await self._get(
            "openInterestHist", params, WEIGHTS["openInterestHist"], prefix=DATA_PREFIX
        )
        return parse_open_interest_hist(body, symbol)

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
        limit = _clamp(limit, self.facts.max_agg_trades)
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
            params["limit"] = _clamp(limit, self.facts.max_trades)
        else:
            endpoint = "historicalTrades"
            params["limit"] = _clamp(limit, self.facts.max_historical_trades)
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
        self,
        endpoint: str,
        params: Mapping[str, str | int],
        weight: int | None = None,
        *,
        prefix: str | None = None,
    ) -> bytes:
        """GET an endpoint within the budget (and its request window, if it has one),
        retrying what Binance says may be retried; `prefix` replaces the market's API path."""
        if weight is None:
            weight = self.facts.weights[endpoint]
        url = f"{self.base_url}{prefix or self.facts.rest_prefix}/{endpoint}"
        window = self.windows.get(endpoint)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        failure = ""
        for attempt in range(self._max_retries + 1):
            if window is not None:
                await window.admit(self._waiting_for(endpoint, window))
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
                wait = retry_after_s(retry_after)
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
                failure = f"HTTP 429: {reply_text(body)}"
                continue
            if status >= 500:
                self.stats.server_errors += 1
                failure = f"HTTP {status}: {reply_text(body)}"
                await self._backoff(attempt, endpoint, failure)
                continue
            code, msg = error_of(body)
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

    def _waiting_for(self, endpoint: str, window: RequestWindow) -> Callable[[float], None]:
        def waiting(delay: float) -> None:
            self.stats.throttled_s += delay
            logger.info(
                "Binance %s %s: %d of %d requests in %.0f s used: waiting %.1f s",
                self.market, endpoint, window.used, window.limit, window.span_s, delay,
            )  # fmt: skip

        return waiting

    def _ban(self, retry_after: str | None, body: bytes) -> None:
        text = reply_text(body)
        seconds = ban_s(retry_after, text, self._clock())
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
