"""The fake Binance's perpetuals data (USDⓈ-M): mark prices, liquidations, open interest.

Served the way Binance serves them, on the ``/market`` path only (a ``/public``
connection that subscribes them is accepted and gets nothing, as Binance's "will not
deliver"):

- ``<symbol>@markPrice@1s``: one ``markPriceUpdate`` per TRADING symbol each second of
  the exchange clock, with the mark and index price a few basis points around the
  symbol's last trade price, the estimated settle price, a funding-rate estimate that
  follows the mark's premium over the index, and the next funding time (00, 08, 16 UTC)::

    {"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000",
     "i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}

- ``!forceOrder@arr``: now and then a liquidation of one symbol (at most one per symbol
  per second, as Binance samples them), a long (``SELL``) or a short (``BUY``) closed at
  its bankruptcy price around the last trade::

    {"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT",
     "f":"IOC","q":"0.014","p":"9910","ap":"9910","X":"FILLED","l":"0.014","z":"0.014",
     "T":1568014460893}}

- ``GET /fapi/v1/openInterest?symbol=``: the symbol's open contracts now (weight 1),
  ``{"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}``, growing
  with the taker volume it has traded.

Everything is drawn from a generator of its own per symbol, so the trades stay the pure
function of the seed they are. Faults: `stop_mark_price` (one symbol's mark price stops;
its trades go on) and `fail_open_interest` (the next open-interest polls answer 429 with
a ``Retry-After``).
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.fakes.binance.market import Symbol, fmt
from tests.fakes.binance.params import ApiError, check_params

if TYPE_CHECKING:
    from tests.fakes.binance.exchange import FakeBinance

FUNDING_MS = 8 * 3_600_000
"""Binance's funding interval on most perpetuals: funding at 00:00, 08:00 and 16:00 UTC."""

MARK_DECIMALS = 8
"""Decimals of the mark, index and settle prices Binance prints."""

MARK_STREAM = "markPrice@1s"
FORCE_ORDER_STREAM = "!forceOrder@arr"
MAX_CATCH_UP_S = 10
"""Most seconds of marks a late tick sends: a longer stall is a gap, as on Binance."""
MARKET_PATH_STREAMS = frozenset({MARK_STREAM, FORCE_ORDER_STREAM})
"""Perpetuals streams the ``/market`` path delivers (and ``/public`` does not)."""


@dataclass
class PerpState:
    """The fake's perpetuals state: generators, faults and the last second served.

    Attributes:
        liquidation_rate: Chance per symbol per second of a liquidation.
        marks_stopped: Symbols whose mark price stopped, with the clock time it resumes
            (infinity: never).
        forced_open_interest: Retry-After of each coming forced 429 on ``openInterest``.
        open_interest_served: Open-interest answers given (200 only), by symbol.
    """

    seed: int
    liquidation_rate: float = 0.2
    marks_stopped: dict[str, float] = field(default_factory=dict)
    forced_open_interest: deque[int] = field(default_factory=deque)
    open_interest_served: dict[str, int] = field(default_factory=dict)
    last_second: int = -1
    rngs: dict[str, random.Random] = field(default_factory=dict)

    def rng(self, sym: Symbol) -> random.Random:
        """The symbol's own generator of perpetuals data (its trades' stays untouched)."""
        rng = self.rngs.get(sym.name)
        if rng is None:
            rng = self.rngs[sym.name] = random.Random(f"{self.seed}:{sym.name}:perp")
        return rng


def next_funding_ms(now_ms: int) -> int:
    """The next funding time after `now_ms`: the next 00:00, 08:00 or 16:00 UTC."""
    return (now_ms // FUNDING_MS + 1) * FUNDING_MS


def _mark_units(sym: Symbol) -> int:
    """The symbol's last trade price in units of 1e-8."""
    return sym.price * 10 ** (MARK_DECIMALS - sym.price_dec)


def _bps(units: int, bps: float) -> int:
    return units + int(units * bps / 10_000)


class PerpetualMarket:
    """FakeBinance's perpetuals data (a part of it: it reads the exchange's state)."""

    # -- streams ---------------------------------------------------------------------

    def _perp_tick(self: FakeBinance, now: int) -> None:
        """Each new second of the exchange clock: mark prices, maybe liquidations.

        Binance pushes a mark every second: a tick that comes late (the loop lagged under
        load) sends the seconds it missed too, up to `MAX_CATCH_UP_S` of them.
        """
        state = self._perp
        second = now // 1000
        if self._spot or second == state.last_second:
            return
        first = second if state.last_second < 0 else state.last_second + 1
        state.last_second = second
        for missed in range(max(first, second - MAX_CATCH_UP_S + 1), second + 1):
            self._perp_second(missed * 1000)

    def _perp_second(self: FakeBinance, event_ms: int) -> None:
        state = self._perp
        for sym in self._symbols.values():
            if sym.status != "TRADING" or sym.silent_until > self._mono:
                continue
            rng = state.rng(sym)
            if state.marks_stopped.get(sym.name, 0.0) <= self._mono:
                self._emit(f"{sym.stream}@{MARK_STREAM}", self._mark_event(sym, rng, event_ms))
            if sym.prints and rng.random() < state.liquidation_rate:
                self._emit(FORCE_ORDER_STREAM, self._force_order(sym, rng, event_ms))

    def _mark_event(self, sym: Symbol, rng: random.Random, now: int) -> dict[str, Any]:
        last = _mark_units(sym)
        index = _bps(last, rng.uniform(-3.0, 3.0))
        mark = _bps(index, rng.uniform(-5.0, 5.0))
        settle = _bps(index, rng.uniform(-1.0, 1.0))
        # Funding follows the premium, within Binance's usual clamp around 0.01 %.
        premium = (mark - index) / index
        rate = max(-0.00075, min(0.00075, 0.0001 + premium / 3))
        return {
            "e": "markPriceUpdate", "E": now, "s": sym.name,
            "p": fmt(mark, MARK_DECIMALS, MARK_DECIMALS),
            "i": fmt(index, MARK_DECIMALS, MARK_DECIMALS),
            "P": fmt(settle, MARK_DECIMALS, MARK_DECIMALS),
            "r": f"{rate:.8f}", "T": next_funding_ms(now),
        }  # fmt: skip

    def _force_order(self, sym: Symbol, rng: random.Random, now: int) -> dict[str, Any]:
        side = "SELL" if rng.random() < 0.5 else "BUY"  # SELL closes a long
        avg = sym.price
        # The bankruptcy price lies past the fill: below it for a long, above for a short.
        ticks = max(1, avg // 500)
        price = max(1, avg - ticks) if side == "SELL" else avg + ticks
        qty = rng.randint(1, sym.max_qty)
        last = rng.randint(1, qty)
        return {
            "e": "forceOrder", "E": now,
            "o": {
                "s": sym.name, "S": side, "o": "LIMIT", "f": "IOC", "q": sym.qty(qty),
                "p": sym.px(price), "ap": sym.px(avg), "X": "FILLED", "l": sym.qty(last),
                "z": sym.qty(qty), "T": now - rng.randint(0, 999),
            },
        }  # fmt: skip

    # -- REST ------------------------------------------------------------------------

    def _open_interest(self: FakeBinance, params: dict[str, str]) -> dict[str, Any]:
        check_params(params, ("symbol",))
        if self._spot:
            raise ApiError(404, -1000, "Unknown endpoint openInterest")
        sym = self._param_symbol(params)
        # Open contracts start at a few thousand of the largest trade and grow with the
        # taker volume traded; exact in the symbol's quantity steps.
        contracts = sym.max_qty * 2_000 + sum(p.qty for p in sym.prints) // 3
        served = self._perp.open_interest_served
        served[sym.name] = served.get(sym.name, 0) + 1
        return {"openInterest": sym.qty(contracts), "symbol": sym.name, "time": self.now_ms()}

    def _open_interest_refusal(self: FakeBinance, name: str) -> ApiError | None:
        """The forced 429 of the next open-interest poll, if one is due."""
        forced = self._perp.forced_open_interest
        if name != "openInterest" or not forced:
            return None
        return self._too_many_requests(forced.popleft())

    # -- faults ----------------------------------------------------------------------

    def stop_mark_price(self: FakeBinance, symbol: str, seconds: float | None = None) -> None:
        """Stop sending `symbol`'s mark price (for `seconds`, or for good); its trades,
        quotes and liquidations go on, and so does every other symbol's mark price."""
        sym = self._symbol(symbol)

        def stop() -> None:
            until = float("inf") if seconds is None else self._clock() + seconds
            self._perp.marks_stopped[sym.name] = until

        self._apply(stop)

    def resume_mark_price(self: FakeBinance, symbol: str) -> None:
        """Send `symbol`'s mark price again."""
        sym = self._symbol(symbol)
        self._apply(lambda: self._perp.marks_stopped.pop(sym.name, None))

    def fail_open_interest(self: FakeBinance, count: int = 1, retry_after: int = 1) -> None:
        """Answer the next `count` ``openInterest`` requests with 429 and `retry_after`."""

        def fail() -> None:
            self._perp.forced_open_interest.extend([retry_after] * count)

        self._apply(fail)

    @property
    def open_interest_served(self: FakeBinance) -> dict[str, int]:
        """Open-interest answers given (200 only), by symbol."""
        return dict(self._perp.open_interest_served)
