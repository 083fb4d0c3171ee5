"""The fake USDⓈ-M exchange's perpetual history: funding, open interest, mark-price klines.

Three REST endpoints, in Binance's exact shapes (USDⓈ-M only):

- ``GET /fapi/v1/fundingRate``: ``[{"symbol", "fundingRate", "fundingTime", "markPrice"}]``,
  a funding time every 8 hours (00:00, 08:00, 16:00 UTC, a few ms late as Binance's are),
  from startTime forwards (or the latest `limit`), at most 1000; no weight, but 500
  requests per 5 minutes per IP (`funding_request_limit`), else 429.
- ``GET /futures/data/openInterestHist``: ``[{"symbol", "sumOpenInterest",
  "sumOpenInterestValue", "CMCCirculatingSupply", "timestamp"}]`` every `period`, at most
  500; only the last 30 days exist: a startTime or endTime older than that is refused
  (400, -1130) as Binance does; weight 0, 1000 requests per 5 minutes
  (`open_interest_request_limit`).
- ``GET /fapi/v1/markPriceKlines``: kline arrays with the volume fields zero, weighed by
  limit as ``klines``.

Every value is a pure function of the seed, the symbol and the time (`funding_history`,
`open_interest_history`, `mark_klines` give them as the endpoints do), so any range can be
asked for and checked against; the mark price of a minute is the one the funding and the
open interest's value use.
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import Any

from tests.fakes.binance.market import MINUTE_MS, Symbol, fmt
from tests.fakes.binance.params import ApiError, check_params, int_param, limit_param

DATA_PREFIX = "/futures/data/"
"""Path of ``openInterestHist`` below the host (not the ``/fapi/v1/`` prefix)."""

PERP_HISTORY_PATHS = ("/fapi/v1/fundingRate", "/fapi/v1/markPriceKlines",
                      DATA_PREFIX + "openInterestHist")  # fmt: skip
"""The URL paths served here."""

ENDPOINTS = frozenset({"fundingRate", "markPriceKlines", "openInterestHist"})

FUNDING_INTERVAL_MS = 8 * 3_600_000
DAY_MS = 86_400_000
HISTORY_DAYS = 30
OI_PERIODS_MS = {
    "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000, "2h": 7_200_000,
    "4h": 14_400_000, "6h": 21_600_000, "12h": 43_200_000, "1d": DAY_MS,
}  # fmt: skip
WINDOW_S = 300.0


def perp_history_weight(name: str, params: dict[str, str]) -> int:
    """Request weight Binance charges: by limit for mark klines, none for the other two."""
    if name != "markPriceKlines":
        return 0
    raw = params.get("limit", "500")
    limit = int(raw) if raw.isdigit() else 500
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


def _digest(seed: int, symbol: str, kind: str, time_ms: int) -> int:
    text = f"{seed}:{symbol}:{kind}:{time_ms}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


class PerpHistoryApi:
    """FakeBinance's perpetual-history endpoints (a part of it: it reads its symbols)."""

    funding_request_limit = 500
    """Requests to ``fundingRate`` allowed per 5 minutes (Binance: 500, with fundingInfo)."""
    open_interest_request_limit = 1000
    """Requests to ``openInterestHist`` allowed per 5 minutes (Binance: 1000)."""

    # ------------------------------------------------------------------ ground truth

    def mark_klines(self, symbol: str, start_ms: int, end_ms: int) -> list[list[Any]]:
        """The 1m mark-price klines opening in ``[start_ms, end_ms)``, as REST gives them."""
        sym = self._symbol(symbol)
        first = -(-start_ms // MINUTE_MS) * MINUTE_MS
        return [_mark_row(self.seed, sym, t) for t in range(first, end_ms, MINUTE_MS)]

    def funding_history(self, symbol: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """The funding events with a funding time in ``[start_ms, end_ms)``, as REST gives them."""
        sym = self._symbol(symbol)
        rows = []
        slot = start_ms // FUNDING_INTERVAL_MS * FUNDING_INTERVAL_MS
        while slot < end_ms:
            row = _funding_row(self.seed, sym, slot)
            if start_ms <= row["fundingTime"] < end_ms:
                rows.append(row)
            slot += FUNDING_INTERVAL_MS
        return rows

    def open_interest_history(
        self, symbol: str, start_ms: int, end_ms: int, period: str = "5m"
    ) -> list[dict[str, Any]]:
        """The open-interest samples every `period` in ``[start_ms, end_ms)``, as REST
        gives them (whatever the 30-day limit)."""
        sym = self._symbol(symbol)
        step = OI_PERIODS_MS[period]
        first = -(-start_ms // step) * step
        return [_open_interest_row(self.seed, sym, t) for t in range(first, end_ms, step)]

    # ------------------------------------------------------------------ endpoints

    def _perp_history(self, name: str, params: dict[str, str]) -> Any:
        if self._spot:
            raise ApiError(404, -1000, f"Unknown endpoint {name}")
        if name == "fundingRate":
            check_params(params, ("symbol", "startTime", "endTime", "limit"))
            self._count_request(name, self.funding_request_limit)
            return self._funding_rate(params)
        if name == "openInterestHist":
            check_params(params, ("symbol", "period", "startTime", "endTime", "limit"))
            self._count_request(name, self.open_interest_request_limit)
            return self._open_interest_hist(params)
        check_params(params, ("symbol", "interval", "startTime", "endTime", "limit"))
        return self._mark_price_klines(params)

    def _count_request(self, name: str, limit: int) -> None:
        """Count a request in its 5-minute window; 429 beyond the window's limit."""
        sent = self.perp_history_requests.setdefault(name, deque())
        now = self._clock()
        while sent and sent[0] <= now - WINDOW_S:
            sent.popleft()
        if len(sent) >= limit:
            raise ApiError(
                429, -1003, f"Too many requests; {name} allows {limit} requests per 5 minutes.",
                int(sent[0] + WINDOW_S - now) + 1,
            )  # fmt: skip
        sent.append(now)

    def _funding_rate(self, params: dict[str, str]) -> list[dict[str, Any]]:
        sym = self._param_symbol(params)
        start, end = _range(params)
        limit = limit_param(params, 100, 1000)
        now = self.now_ms()
        end = now if end is None else min(end, now)
        if start is None:
            rows = self.funding_history(sym.name, end - (limit + 1) * FUNDING_INTERVAL_MS, end + 1)
            return rows[-limit:]
        return self.funding_history(sym.name, start, end + 1)[:limit]

    def _open_interest_hist(self, params: dict[str, str]) -> list[dict[str, Any]]:
        sym = self._param_symbol(params)
        period = _required(params, "period")
        if period not in OI_PERIODS_MS:
            raise ApiError(400, -1130, "Data sent for parameter 'period' is not valid.")
        step = OI_PERIODS_MS[period]
        start, end = _range(params)
        limit = limit_param(params, 30, 500)
        now = self.now_ms()
        oldest = now - HISTORY_DAYS * DAY_MS
        for name, value in (("startTime", start), ("endTime", end)):
            if value is not None and value < oldest:
                # Binance keeps 30 days of statistics and refuses to be asked for more.
                raise ApiError(400, -1130, f"Data sent for parameter '{name}' is not valid.")
        latest = now // step * step
        end = latest if end is None else min(end, latest)
        if start is None:
            first = max(-(-oldest // step) * step, end // step * step - (limit - 1) * step)
        else:
            first = start
        return self.open_interest_history(sym.name, first, end + 1, period)[:limit]

    def _mark_price_klines(self, params: dict[str, str]) -> list[list[Any]]:
        sym = self._param_symbol(params)
        interval = _required(params, "interval")
        if interval != "1m":
            raise ApiError(400, -1120, "Invalid interval.")
        start, end = _range(params)
        limit = limit_param(params, 500, 1500)
        hi = self.now_ms() // MINUTE_MS * MINUTE_MS
        if end is not None:
            hi = min(hi, end // MINUTE_MS * MINUTE_MS)
        lo = hi - (limit - 1) * MINUTE_MS if start is None else -(-start // MINUTE_MS) * MINUTE_MS
        return self.mark_klines(sym.name, lo, min(hi, lo + (limit - 1) * MINUTE_MS) + 1)


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise ApiError(
            400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )
    return value


def _range(params: dict[str, str]) -> tuple[int | None, int | None]:
    start = int_param(params, "startTime", 0, None)
    end = int_param(params, "endTime", 0, None)
    if start is not None and end is not None and start > end:
        raise ApiError(400, -1023, "Start time is greater than end time.")
    return start, end


def _mark_ticks(seed: int, sym: Symbol, minute_ms: int) -> tuple[int, int, int, int]:
    """Open, high, low and close of the mark price in a minute, in ticks."""
    d = _digest(seed, sym.name, "mark", minute_ms)
    hour = _digest(seed, sym.name, "mark", minute_ms // 3_600_000)
    level = sym.floor * 4  # the template's price
    level += (hour % 100_001 - 50_000) * level // 1_000_000  # the hour within 5 % of it
    level += (d % 2_001 - 1_000) * level // 1_000_000  # the minute within 0.1 % of that
    o = max(2, level)
    c = max(2, o + ((d >> 16) % 21 - 10))
    h = max(o, c) + (d >> 32) % 5
    low = max(1, min(o, c) - (d >> 40) % 5)
    return o, h, low, c


def _mark_row(seed: int, sym: Symbol, open_ms: int) -> list[Any]:
    o, h, low, c = _mark_ticks(seed, sym, open_ms)
    return [
        open_ms, fmt(o, sym.price_dec, 8), fmt(h, sym.price_dec, 8), fmt(low, sym.price_dec, 8),
        fmt(c, sym.price_dec, 8), "0", open_ms + MINUTE_MS - 1, "0", 60, "0", "0", "0",
    ]  # fmt: skip


def _funding_row(seed: int, sym: Symbol, slot_ms: int) -> dict[str, Any]:
    d = _digest(seed, sym.name, "funding", slot_ms)
    time_ms = slot_ms + d % 7  # Binance's funding times are a few ms late
    rate = (d >> 8) % 40_001 - 10_000  # -0.0001 .. 0.0003, in 1e-8
    mark = _mark_ticks(seed, sym, time_ms // MINUTE_MS * MINUTE_MS)[0]
    return {
        "symbol": sym.name,
        "fundingRate": fmt(rate, 8, 8),
        "fundingTime": time_ms,
        "markPrice": fmt(mark, sym.price_dec, 8),
    }


def _open_interest_row(seed: int, sym: Symbol, time_ms: int) -> dict[str, Any]:
    d = _digest(seed, sym.name, "open_interest", time_ms)
    contracts = (50_000 + d % 10_000) * 10**sym.qty_dec + (d >> 20) % 10**sym.qty_dec
    mark = _mark_ticks(seed, sym, time_ms // MINUTE_MS * MINUTE_MS)[0]
    return {
        "symbol": sym.name,
        "sumOpenInterest": fmt(contracts, sym.qty_dec, 8),
        "sumOpenInterestValue": fmt(contracts * mark, sym.qty_dec + sym.price_dec, 8),
        "CMCCirculatingSupply": fmt(
            contracts * 3, sym.qty_dec, 3
        ),  # in Binance's documented answer
        "timestamp": time_ms,
    }
