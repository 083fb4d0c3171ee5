"""A synthetic, deterministic market of trades for demos, tests and benchmarks."""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from schemas.symbols import SymbolInfo
from schemas.trades import Market, Trade

DEFAULT_START_US = 1_704_067_200_000_000
"""Event time of the first trade when no start is given (2024-01-01T00:00:00Z), so that a
seed alone fixes every field of every trade."""

_ZIPF_EXPONENT = 1.1
_MIN_PRICE_LOG10 = -4.0  # ~0.0001, a meme coin
_MAX_PRICE_LOG10 = math.log10(60_000)  # ~BTC
_PRICE_SIGNIFICANT_DIGITS = 6
_MAX_DECIMALS = 8  # Binance never quotes finer than 1e-8

# A taker order usually fills against one resting order, sometimes sweeps several:
# the real BTCUSDT capture shows runs of prints with one timestamp and consecutive ids.
_FILLS = (1,) * 40 + (2,) * 10 + (3,) * 5 + (4,) * 3 + (5, 6, 8, 13)
# Price change between taker orders, in ticks; symmetric so the walk has no drift.
_STEPS = (-2, -1, -1, -1) + (0,) * 10 + (1, 1, 1, 2)
_SWEEP_MOVE_P = 0.35  # chance that the next fill of a sweep is one tick further away
_LOGNORMAL_SIGMA = 1.1  # spread of trade sizes around a symbol's median notional
_LOGNORMAL_TABLE = 1024

# Activity regimes, in seconds of event time: a symbol trades normally, bursts (news,
# a listing, a liquidation cascade) or goes quiet (halted, illiquid hours).
_NORMAL_MEAN_S = 120.0
_BURST_MEAN_S = 15.0
_QUIET_MEAN_S = 600.0
_BURST_P = 0.15
_QUIET_P = 0.10
_BURST_FACTOR = 25.0
_NORMAL, _BURST, _QUIET = 0, 1, 2


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """What the simulator decided about one symbol.

    Attributes:
        symbol: Its name, e.g. `SYM0001USDT`.
        tick_size: Every price is a multiple of it.
        step_size: Every quantity is a multiple of it.
        initial_price: The price it starts at.
        activity: Its share of the market's trades in the normal regime (all sum to 1).
    """

    symbol: str
    tick_size: Decimal
    step_size: Decimal
    initial_price: Decimal
    activity: float


class SyntheticMarket:
    """A whole exchange of made-up symbols printing trades in exchange-time order.

    Activity follows a Zipf-like law by rank (`SYM0001USDT` is the busiest), and each
    symbol (but the busiest) moves between normal, burst and quiet regimes lasting
    minutes of event time. A taker order prints one or several fills with one timestamp
    and consecutive ids, walking the price one tick at a time; prices random-walk in
    ticks between orders. Prices span ~0.0001 to ~60000 across symbols with about six
    significant digits; quantities are multiples of each symbol's step size.

    The market is deterministic for a seed and keeps its state: successive calls to
    `trades` or `stream` continue where the last one stopped.

    Args:
        symbols: How many symbols to list.
        rate: Trades (prints) per second of event time across the whole market.
        seed: Seed of every random choice.
        start_us: Event time of the first trade, in µs since the epoch (default
            `DEFAULT_START_US`).
        exchange: The `exchange` field of every trade.
        market: The `market` field of every trade.
        agg: Print aggTrade-style: fills of one order at one price fold into one print
            whose `first_trade_id`..`last_trade_id` are the raw trade ids; `trade_id` is
            then the aggregate id. `rate` counts prints either way.

    Raises:
        ValueError: On fewer than one symbol or a non-positive rate.
    """

    def __init__(
        self,
        symbols: int,
        rate: float,
        seed: int = 0,
        start_us: int | None = None,
        exchange: str = "sim",
        market: Market = "spot",
        agg: bool = False,
    ) -> None:
        if symbols < 1:
            raise ValueError(f"symbols must be at least 1, got {symbols}")
        if not rate > 0 or math.isinf(rate):
            raise ValueError(f"rate must be a positive number, got {rate}")
        self.rate = rate
        self.exchange = exchange
        self.market: Market = market
        self.agg = agg
        self.start_us = DEFAULT_START_US if start_us is None else start_us
        self._rng = random.Random(seed)
        self._mean_gap_us = 1e6 / rate
        # One chunk of orders shares one set of activity weights: about a quarter second
        # of event time, so regimes switch promptly without re-weighting every trade.
        self._chunk_orders = min(2048, max(32, int(rate / 4)))
        self._elapsed_us = 0.0
        self._buffer: list[Trade] = []
        self._pos = 0
        self._build_symbols(symbols)

    def _build_symbols(self, n: int) -> None:
        rng = self._rng
        width = max(4, len(str(n)))
        base = [1.0 / (rank + 1) ** _ZIPF_EXPONENT for rank in range(n)]
        total = sum(base)
        self._base = [w / total for w in base]
        top = self._base[0]
        self._names: list[str] = []
        self._ticks: list[int] = []
        self._low: list[int] = []
        self._high: list[int] = []
        self._pdec: list[int] = []
        self._qdec: list[int] = []
        self._median_steps: list[float] = []
        self._next_id: list[int] = []
        self._next_agg_id: list[int] = []
        self._price: list[Decimal] = []
        self._price_ticks: list[int] = []
        specs = []
        for i in range(n):
            name = f"SYM{i + 1:0{width}d}USDT"
            level = rng.uniform(_MIN_PRICE_LOG10, _MAX_PRICE_LOG10)
            magnitude = math.floor(level)
            pdec = min(_MAX_DECIMALS, max(0, _PRICE_SIGNIFICANT_DIGITS - 1 - magnitude))
            qdec = min(_MAX_DECIMALS, max(0, magnitude + 1))
            ticks = max(1, round(10**level * 10**pdec))
            price = Decimal(ticks).scaleb(-pdec)
            # Busy symbols trade bigger tickets, as majors do.
            notional = 20.0 + 2_000.0 * (self._base[i] / top) ** 0.5
            median_steps = max(1.0, notional / float(price) * 10**qdec)
            self._names.append(name)
            self._ticks.append(ticks)
            # Keep the walk within a plausible band so long runs stay realistic.
            self._low.append(max(1, ticks // 20))
            self._high.append(ticks * 20)
            self._pdec.append(pdec)
            self._qdec.append(qdec)
            self._median_steps.append(median_steps)
            self._next_id.append(rng.randrange(1, 10_000_000))
            self._next_agg_id.append(rng.randrange(1, 1_000_000))
            self._price.append(price)
            self._price_ticks.append(ticks)
            specs.append(
                SymbolSpec(
                    symbol=name,
                    tick_size=Decimal(1).scaleb(-pdec),
                    step_size=Decimal(1).scaleb(-qdec),
                    initial_price=price,
                    activity=self._base[i],
                )
            )
        self.symbols: tuple[SymbolSpec, ...] = tuple(specs)
        self._sizes = [math.exp(rng.gauss(0.0, _LOGNORMAL_SIGMA)) for _ in range(_LOGNORMAL_TABLE)]
        self._index = range(n)
        self._regime = [_NORMAL] * n
        self._regime_ends = [
            (self.start_us + int(rng.expovariate(1.0 / _NORMAL_MEAN_S) * 1e6), i)
            for i in range(1, n)
        ]
        heapq.heapify(self._regime_ends)
        self._reweight()

    def _reweight(self) -> None:
        factor = {_NORMAL: 1.0, _BURST: _BURST_FACTOR, _QUIET: 0.0}
        weights = (w * factor[r] for w, r in zip(self._base, self._regime, strict=True))
        self._cum = list(itertools.accumulate(weights))

    def _advance_regimes(self, now_us: int) -> None:
        heap = self._regime_ends
        if not heap or heap[0][0] > now_us:
            return
        rng = self._rng
        while heap and heap[0][0] <= now_us:
            ends, i = heapq.heappop(heap)
            if self._regime[i] != _NORMAL:
                regime, mean_s = _NORMAL, _NORMAL_MEAN_S
            else:
                u = rng.random()
                if u < _QUIET_P:
                    regime, mean_s = _QUIET, _QUIET_MEAN_S
                elif u < _QUIET_P + _BURST_P:
                    regime, mean_s = _BURST, _BURST_MEAN_S
                else:
                    regime, mean_s = _NORMAL, _NORMAL_MEAN_S
            self._regime[i] = regime
            heapq.heappush(heap, (ends + int(rng.expovariate(1.0 / mean_s) * 1e6), i))
        self._reweight()

    def _chunk(self) -> list[Trade]:
        """Generate the trades of the next chunk of taker orders."""
        rng = self._rng
        rand = rng.random
        log = math.log
        start_us = self.start_us
        elapsed = self._elapsed_us
        self._advance_regimes(start_us + int(elapsed))
        orders = rng.choices(self._index, cum_weights=self._cum, k=self._chunk_orders)
        # Per-order randoms drawn in bulk: one list call is far cheaper than many calls.
        u_side = [rand() for _ in orders]
        u_fills = [rand() for _ in orders]
        u_step = [rand() for _ in orders]
        n_fills, n_steps = len(_FILLS), len(_STEPS)
        sizes = self._sizes
        n_table = len(sizes)
        mean_gap = self._mean_gap_us
        exchange, market, agg = self.exchange, self.market, self.agg
        names, tick_list, low, high = self._names, self._ticks, self._low, self._high
        pdecs, qdecs, medians = self._pdec, self._qdec, self._median_steps
        next_id, next_agg = self._next_id, self._next_agg_id
        price_cache, price_cache_ticks = self._price, self._price_ticks
        out: list[Trade] = []
        append = out.append
        for s, us, uf, ust in zip(orders, u_side, u_fills, u_step, strict=True):
            ticks = tick_list[s] + _STEPS[int(ust * n_steps)]
            if ticks < low[s]:
                ticks = 2 * low[s] - ticks
            elif ticks > high[s]:
                ticks = 2 * high[s] - ticks
            buyer_is_maker = us < 0.5
            # A taker sell (the buyer rests on the book) walks the price down, a buy up.
            direction = -1 if buyer_is_maker else 1
            fills = _FILLS[int(uf * n_fills)]
            time_us = start_us + int(elapsed)
            name, pdec, qdec, median = names[s], pdecs[s], qdecs[s], medians[s]
            raw_id = next_id[s]
            level_steps = 0
            level_first = raw_id
            for f in range(fills):
                if f and rand() < _SWEEP_MOVE_P:
                    if agg:
                        # The order reached a new price: print the level it cleared.
                        append(
                            self._print(
                                name,
                                next_agg[s],
                                s,
                                ticks,
                                pdec,
                                level_steps,
                                qdec,
                                time_us,
                                buyer_is_maker,
                                level_first,
                                raw_id - 1,
                            )
                        )
                        next_agg[s] += 1
                        elapsed += -log(1.0 - rand()) * mean_gap
                        level_steps = 0
                        level_first = raw_id
                    ticks += direction
                steps = int(median * sizes[int(rand() * n_table)]) or 1
                if agg:
                    level_steps += steps
                else:
                    if price_cache_ticks[s] != ticks:
                        price_cache_ticks[s] = ticks
                        price_cache[s] = Decimal(ticks).scaleb(-pdec)
                    append(
                        Trade(
                            exchange,
                            market,
                            name,
                            raw_id,
                            price_cache[s],
                            Decimal(steps).scaleb(-qdec),
                            time_us,
                            buyer_is_maker,
                        )
                    )
                    elapsed += -log(1.0 - rand()) * mean_gap
                raw_id += 1
            if agg:
                append(
                    self._print(
                        name,
                        next_agg[s],
                        s,
                        ticks,
                        pdec,
                        level_steps,
                        qdec,
                        time_us,
                        buyer_is_maker,
                        level_first,
                        raw_id - 1,
                    )
                )
                next_agg[s] += 1
                elapsed += -log(1.0 - rand()) * mean_gap
            next_id[s] = raw_id
            tick_list[s] = ticks
        self._elapsed_us = elapsed
        return out

    def _print(
        self,
        name: str,
        agg_id: int,
        s: int,
        ticks: int,
        pdec: int,
        steps: int,
        qdec: int,
        time_us: int,
        buyer_is_maker: bool,
        first_id: int,
        last_id: int,
    ) -> Trade:
        """One aggTrade-style print: the fills `first_id`..`last_id` at one price."""
        if self._price_ticks[s] != ticks:
            self._price_ticks[s] = ticks
            self._price[s] = Decimal(ticks).scaleb(-pdec)
        return Trade(
            self.exchange,
            self.market,
            name,
            agg_id,
            self._price[s],
            Decimal(steps).scaleb(-qdec),
            time_us,
            buyer_is_maker,
            first_id,
            last_id,
        )

    def _take(self, n: int | None) -> Iterator[Trade]:
        remaining = n
        while remaining is None or remaining > 0:
            if self._pos >= len(self._buffer):
                self._buffer = self._chunk()
                self._pos = 0
            buffer = self._buffer
            end = len(buffer)
            if remaining is not None:
                end = min(end, self._pos + remaining)
                remaining -= end - self._pos
            for i in range(self._pos, end):
                # Advance before yielding: a consumer that stops here has taken this one.
                self._pos = i + 1
                yield buffer[i]

    def trades(self, n: int) -> Iterator[Trade]:
        """The market's next `n` trades.

        Args:
            n: How many trades.

        Returns:
            An iterator over them, in exchange-time order.
        """
        return self._take(n)

    def stream(self) -> Iterator[Trade]:
        """The market's trades from here on, without end.

        Returns:
            An infinite iterator, in exchange-time order.
        """
        return self._take(None)


def symbol_infos(market: SyntheticMarket) -> list[SymbolInfo]:
    """What an ``exchangeInfo`` would say of the simulated symbols (see `binance_symbols`).

    Args:
        market: The simulated market.

    Returns:
        One TRADING `SymbolInfo` per symbol, quoted in USDT, with its tick and step
        sizes; perpetual on ``usdm``. Stamped with the market's start time, so a seed
        fixes every field.
    """
    kind = "spot" if market.market == "spot" else "perpetual"
    return [
        SymbolInfo(
            exchange=market.exchange,
            market=market.market,
            symbol=spec.symbol,
            base_asset=spec.symbol.removesuffix("USDT"),  # every name is SYM<n>USDT
            quote_asset="USDT",
            status="TRADING",
            kind=kind,
            tick_size=spec.tick_size,
            step_size=spec.step_size,
            updated_ms=market.start_us // 1000,
        )
        for spec in market.symbols
    ]
