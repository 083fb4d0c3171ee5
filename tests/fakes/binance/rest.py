"""The fake Binance's REST market data: weights, 429/418, klines and trades."""

from __future__ import annotations

import bisect
import math
from typing import Any

import msgspec
from aiohttp import web

from tests.fakes.binance.exchange_info import exchange_info
from tests.fakes.binance.market import MINUTE_MS, SYMBOL_RE, KlineAcc, Print, Symbol
from tests.fakes.binance.params import ApiError, check_params, int_param, limit_param
from tests.fakes.binance.perp_history import DATA_PREFIX, ENDPOINTS, perp_history_weight
from tests.fakes.binance.ticker import ticker_24hr, ticker_weight

_INTERVALS_MS = {"1s": 1_000, "1m": 60_000}

_encode = msgspec.json.Encoder().encode


class RestApi:
    """FakeBinance's REST endpoints (a part of it: it reads the exchange's state)."""

    async def _rest(self, request: web.Request) -> web.Response:
        path = request.path
        name = path.removeprefix(self._spec.rest_prefix).removeprefix(DATA_PREFIX)
        params = {k: v for k, v in request.query.items()}
        status, body, retry_after = 200, b"", None
        try:
            if len(params) != len(request.query):
                raise ApiError(400, -1101, "Duplicate values for a parameter detected.")
            self._admit(name, params)
            body = _encode(self._answer(name, params, request))
        except ApiError as exc:
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
        if name in ENDPOINTS:
            return perp_history_weight(name, params)
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
        minute = now // MINUTE_MS
        if minute != self._weight_minute:
            self._weight_minute, self._weight_used = minute, 0
        to_next_minute = math.ceil(((minute + 1) * MINUTE_MS - now) / 1000)
        if (refusal := self._open_interest_refusal(name)) is not None:
            raise refusal
        if self._forced:
            status, retry_after = self._forced.popleft()
            if status == 418:
                raise self._banned(retry_after if retry_after is not None else self.ban_s)
            if status == 429:
                raise self._too_many_requests(
                    retry_after if retry_after is not None else to_next_minute
                )
            if status >= 500:
                raise ApiError(status, -1001, "Internal error; unable to process your request. "
                                "Please try again.", retry_after)  # fmt: skip
            raise ApiError(
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

    def _too_many_requests(self, retry_after: int) -> ApiError:
        return ApiError(
            429, -1003,
            f"Too many requests; current limit of IP(127.0.0.1) is {self.weight_limit} requests "
            "per minute. Please use the websocket for live updates to avoid polling the API.",
            retry_after,
        )  # fmt: skip

    def _banned(self, retry_after: int) -> ApiError:
        until = self.now_ms() + retry_after * 1000
        return ApiError(
            418, -1003,
            f"Way too many requests; IP(127.0.0.1) banned until {until}. Please use the "
            "websocket for live updates to avoid bans.",
            retry_after,
        )  # fmt: skip

    def _answer(self, name: str, params: dict[str, str], request: web.Request) -> Any:
        if name == "ping":
            check_params(params, ())
            return {}
        if name == "time":
            check_params(params, ())
            return {"serverTime": self.now_ms()}
        if name == "exchangeInfo":
            return self._exchange_info(params)
        if name == "klines":
            check_params(params, ("symbol", "interval", "startTime", "endTime", "limit"))
            return self._klines(params)
        if name == "aggTrades":
            check_params(params, ("symbol", "fromId", "startTime", "endTime", "limit"))
            return self._agg_trades(params)
        if name == "ticker/24hr":
            check_params(params, ("symbol",))
            return ticker_24hr(self, params)
        if name == "openInterest":
            return self._open_interest(params)
        if name == "trades":
            check_params(params, ("symbol", "limit"))
            sym = self._param_symbol(params)
            limit = limit_param(params, 500, 1000)
            rows = self._raw_rows_from(sym, max(0, sym.next_raw - limit), limit)
            return [self._raw_row(sym, r) for r in rows]
        if name == "historicalTrades":
            check_params(params, ("symbol", "limit", "fromId"))
            if not self._spot and not request.headers.get("X-MBX-APIKEY"):
                raise ApiError(401, -2014, "API-key format invalid.")
            sym = self._param_symbol(params)
            default, most = self._spec.historical_limit
            limit = limit_param(params, default, most)
            from_id = int_param(params, "fromId", 0, None)
            start = sym.next_raw - limit if from_id is None else from_id
            return [self._raw_row(sym, r) for r in self._raw_rows_from(sym, max(0, start), limit)]
        if name in ENDPOINTS:
            return self._perp_history(name, params)
        raise ApiError(404, -1000, f"Unknown endpoint {name}")

    def _param_symbol(self, params: dict[str, str]) -> Symbol:
        raw = params.get("symbol")
        if not raw:
            raise ApiError(
                400,
                -1102,
                "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
            )
        if not SYMBOL_RE.match(raw):
            raise ApiError(400, -1100, "Illegal characters found in parameter 'symbol'; legal "
                            "range is '^[A-Z0-9-_.]{1,20}$'.")  # fmt: skip
        sym = self._symbols.get(raw)
        if sym is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        return sym

    def _exchange_info(self, params: dict[str, str]) -> dict[str, Any]:
        return exchange_info(self, params)

    def _klines(self, params: dict[str, str]) -> list[list[Any]]:
        sym = self._param_symbol(params)
        interval = params.get("interval")
        if not interval:
            raise ApiError(
                400,
                -1102,
                "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.",
            )
        if interval not in self._spec.intervals:
            raise ApiError(400, -1120, "Invalid interval.")
        iv = _INTERVALS_MS[interval]
        start = int_param(params, "startTime", 0, None)
        end = int_param(params, "endTime", 0, None)
        limit = limit_param(params, 500, self._spec.kline_limit)
        if start is not None and end is not None and start > end:
            raise ApiError(400, -1023, "Start time is greater than end time.")
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
            acc = KlineAcc(t, iv, prev_close)
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
        limit = limit_param(params, 500, 1000)
        from_id = int_param(params, "fromId", 0, None)
        start = int_param(params, "startTime", 0, None)
        end = int_param(params, "endTime", 0, None)
        if start is not None and end is not None:
            if start > end:
                raise ApiError(400, -1023, "Start time is greater than end time.")
            if end - start >= 3_600_000:
                raise ApiError(400, -1127, "More than 1 hours between startTime and endTime.")
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

    def _agg_row(self, sym: Symbol, p: Print) -> dict[str, Any]:
        row: dict[str, Any] = {
            "a": p.agg_id, "p": sym.px(p.price), "q": sym.qty(p.qty), "f": p.first_id,
            "l": p.last_id, "T": p.time_ms, "m": p.buyer_is_maker,
        }  # fmt: skip
        if self._spot:
            row["M"] = True
        return row

    def _raw_rows_from(self, sym: Symbol, from_id: int, limit: int) -> list[tuple[int, int, Print]]:
        """Up to `limit` raw trades from raw id `from_id`: ``(id, qty, print)``."""
        if not sym.prints:
            return []
        i = max(0, bisect.bisect_right(sym.firsts, from_id) - 1)
        out: list[tuple[int, int, Print]] = []
        for p in sym.prints[i:]:
            for k, q in enumerate(p.raw_qtys):
                rid = p.first_id + k
                if rid >= from_id:
                    out.append((rid, q, p))
                    if len(out) == limit:
                        return out
        return out

    def _raw_row(self, sym: Symbol, raw: tuple[int, int, Print]) -> dict[str, Any]:
        rid, q, p = raw
        row: dict[str, Any] = {
            "id": rid, "price": sym.px(p.price), "qty": sym.qty(q),
            "quoteQty": sym.quote_amount(p.price * q), "time": p.time_ms,
            "isBuyerMaker": p.buyer_is_maker,
        }  # fmt: skip
        if self._spot:
            row["isBestMatch"] = True
        return row

    def _raw_rows(self, sym: Symbol, p: Print) -> list[dict[str, Any]]:
        return [self._raw_row(sym, (p.first_id + k, q, p)) for k, q in enumerate(p.raw_qtys)]
