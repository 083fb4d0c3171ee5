"""The simulated market itself: symbols printing trades and quotes through their regimes."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal

from flows.sources.simulator.book import QUOTE_GAP_US, TOP_DEPTH, SimBook
from flows.sources.simulator.regimes import REVERSION_PER_S, Regimes
from flows.sources.simulator.symbols import SymbolSpec, list_symbols
from schemas.depth import BookDepth
from schemas.quotes import Quote
from schemas.symbols import SymbolInfo
from schemas.trades import Market, Trade

DEFAULT_START_US = 1_704_067_200_000_000
"""Event time of the first trade when no start is given (2024-01-01T00:00:00Z), so that a
seed alone fixes every field of every trade."""

# A taker order usually fills against one resting order, sometimes sweeps several:
# the real BTCUSDT capture shows runs of prints with one timestamp and consecutive ids.
_FILLS = (1,) * 40 + (2,) * 10 + (3,) * 5 + (4,) * 3 + (5, 6, 8, 13)
_SWEEP_MOVE_P = 0.35  # chance that the next fill of a sweep is one tick further away
SIZE_SIGMA = 1.1
"""Spread (sigma of the log) of trade sizes around a symbol's median."""
_LOGNORMAL_TABLE = 1024

MEAN_FILLS = sum(_FILLS) / len(_FILLS)
"""Prints per taker order, on average."""
MEAN_SIZE = math.exp(SIZE_SIGMA**2 / 2)
"""Mean of a trade's size in median sizes (of the lognormal factor)."""

_REFRESH_EVERY_US = 5_000_000  # how often the regimes are looked up again
_PRICE_CACHE = 4096  # Decimal prices remembered per symbol


@dataclass(frozen=True, slots=True)
class SymbolResume:
    """Where a symbol's trading picks up again, e.g. after a restart or generated history.

    Attributes:
        price: Its last price (rounded to the tick size if it is finer).
        next_trade_id: Id of its next trade: one more than the last one stored.
        from_us: It prints no trade before this event time (its stored candles reach it).
    """

    price: Decimal
    next_trade_id: int
    from_us: int = 0


class SyntheticMarket:
    """A whole exchange of made-up symbols printing trades (and quotes) in time order.

    Activity follows a Zipf-like law by rank (`SYM0001USDT` is the busiest). Each symbol
    lives through regimes (`flows.sources.simulator.regimes`): mostly quiet or normal, sometimes a
    volume burst, a pump or a dump of several percent (then a fade), with trends of a few
    percent an hour; the regimes set its share of the trades, its volatility and drift,
    its trade sizes, its spread and how often takers buy. Its fair price follows a log
    random walk in event time; a taker buy prints at the ask and a sell at the bid, and
    a taker order prints one or several fills with one timestamp and consecutive ids,
    sweeping one tick further now and then. Prices span ~0.0001 to ~60000 across symbols
    with about six significant digits; quantities are multiples of each symbol's step.

    Every taker order prints against the symbol's quoted book (`flows.sources.simulator.book`):
    a buy at the ask (a sweep one tick higher per level), a sell at the bid; the book
    follows the fair price, moving at most once per `QUOTE_GAP_US` of event time. With
    `quotes`, each move's book ticker is recorded, timed at the move (before the trade
    that follows it): `take_quotes` hands them out. The symbols `watch_depth` names get
    their 20 levels every 100 ms of event time too (`take_depth`).

    The market is deterministic for a seed and keeps its state: successive calls to
    `trades` or `stream` continue where the last one stopped. `resume` continues each
    symbol's price and trade ids from where stored data ends.

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
        quotes: Record book tickers for `take_quotes` (they draw from their own random
            stream, so the trades are the same either way).

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
        quotes: bool = False,
    ) -> None:
        if symbols < 1:
            raise ValueError(f"symbols must be at least 1, got {symbols}")
        if not rate > 0 or math.isinf(rate):
            raise ValueError(f"rate must be a positive number, got {rate}")
        self.rate = rate
        self.seed = seed
        self.exchange = exchange
        self.market: Market = market
        self.agg = agg
        self.start_us = DEFAULT_START_US if start_us is None else start_us
        self._rng = random.Random(seed)
        self._record_quotes = quotes
        self._mean_gap_us = 1e6 / rate
        # One chunk of orders shares one set of activity weights: about a quarter second
        # of event time.
        self._chunk_orders = min(2048, max(32, int(rate / 4)))
        self._elapsed_us = 0.0
        self._buffer: list[Trade] = []
        self._pos = 0
        self.regimes = Regimes(seed, symbols)
        self._build_symbols(symbols)

    def _build_symbols(self, n: int) -> None:
        listing = list_symbols(self._rng, n)
        specs = listing.specs
        self._base = [spec.activity for spec in specs]
        self._names = [spec.symbol for spec in specs]
        self._pdec = [spec.price_decimals for spec in specs]
        self._qdec = [spec.qty_decimals for spec in specs]
        self._median_steps = [spec.median_steps for spec in specs]
        self._next_id = listing.first_trade_ids
        self._next_agg_id = listing.first_agg_ids
        ticks = [int(spec.initial_price.scaleb(spec.price_decimals)) for spec in specs]
        # Decimal prices by ticks, per symbol: building a Decimal costs more than a lookup.
        self._price_cache = [{t: spec.initial_price} for t, spec in zip(ticks, specs, strict=True)]
        self._price_ticks = ticks
        self._log_ticks = [math.log(t) for t in ticks]  # log of the fair price, in ticks
        self._anchor = list(self._log_ticks)  # what the walk is pulled back to
        self._spread_rel = [spec.spread for spec in specs]
        self.symbols: tuple[SymbolSpec, ...] = specs
        self._sizes = [math.exp(self._rng.gauss(0.0, SIZE_SIGMA)) for _ in range(_LOGNORMAL_TABLE)]
        self._index = range(n)
        self._last_us = [self.start_us] * n  # event time of each fair price
        self._from_us = [0] * n
        self._refresh_at_us = -1
        self.book = SimBook(
            self.exchange,
            self.market,
            self._names,
            self._pdec,
            self._qdec,
            [steps * TOP_DEPTH for steps in self._median_steps],
            self._sizes,
            self.seed,
            quotes=self._record_quotes,
        )

    def next_trade_ids(self) -> dict[str, int]:
        """Each symbol's next raw trade id."""
        return dict(zip(self._names, self._next_id, strict=True))

    def prices(self) -> dict[str, Decimal]:
        """Each symbol's last printed price (its initial price before any trade)."""
        return {
            name: Decimal(ticks).scaleb(-pdec)
            for name, ticks, pdec in zip(self._names, self._price_ticks, self._pdec, strict=True)
        }

    def resume(self, states: Mapping[str, SymbolResume], start_us: int | None = None) -> None:
        """Continue symbols from stored data: their last price and the ids after theirs.

        Call it before taking trades. Symbols not named keep the seed's start.

        Args:
            states: By symbol name; unknown names are ignored.
            start_us: Move the market's start (its first event time) there.
        """
        if start_us is not None:
            self.start_us = start_us
            self._last_us = [start_us] * len(self._names)
        index = {name: i for i, name in enumerate(self._names)}
        for name, state in states.items():
            i = index.get(name)
            if i is None:
                continue
            ticks = max(1, int(state.price.scaleb(self._pdec[i]).to_integral_value()))
            self._price_ticks[i] = ticks
            self._log_ticks[i] = math.log(ticks)
            self._next_id[i] = state.next_trade_id
            self._from_us[i] = state.from_us
            self._last_us[i] = max(self.start_us, state.from_us)

    def take_quotes(self, until_us: int) -> list[Quote]:
        """The recorded book tickers up to event time `until_us`, oldest first.

        Args:
            until_us: Event time, in µs.

        Returns:
            The quotes not taken yet with `time_us <= until_us` (none without `quotes`).
        """
        return self.book.take_quotes(until_us)

    @property
    def now_us(self) -> int:
        """Event time the market has generated up to."""
        return self.start_us + int(self._elapsed_us)

    def watch_depth(self, symbols: Iterable[str]) -> list[str]:
        """Record the 20-level depth of exactly these symbols from now on, every 100 ms.

        Args:
            symbols: Names (a ``md.depth_watch.v1`` record's set); unknown ones are ignored.

        Returns:
            The names watched.
        """
        return self.book.watch(symbols, self.now_us)

    def take_depth(self, until_us: int) -> list[BookDepth]:
        """The recorded depth of the watched symbols up to event time `until_us`, oldest first."""
        return self.book.take_depth(until_us)

    def _refresh(self, now_us: int) -> None:
        """Take the regimes at `now_us`: weights of the symbols, drifts, spreads.

        Regimes last minutes, so they are looked up every few seconds of event time
        only: a whole market's lookup costs milliseconds.
        """
        self._refresh_at_us = now_us + _REFRESH_EVERY_US
        state = self.regimes.at(now_us / 1e6)
        self._drift = state.drift[:, 0].tolist()
        self._vol = state.vol[:, 0].tolist()
        self._size = state.size[:, 0].tolist()
        self._buy_p = state.buy_p[:, 0].tolist()
        exp = math.exp
        self._spread_ticks = [
            max(1, int(rel * mult * exp(y) + 0.5))
            for rel, mult, y in zip(
                self._spread_rel, state.spread[:, 0].tolist(), self._log_ticks, strict=True
            )
        ]
        self._cum = list(
            itertools.accumulate(
                w * a for w, a in zip(self._base, state.activity[:, 0].tolist(), strict=True)
            )
        )

    def _chunk(self) -> list[Trade]:
        """Generate the trades of the next chunk of taker orders."""
        rng = self._rng
        rand = rng.random
        gauss = rng.gauss
        log = math.log
        exp = math.exp
        sqrt = math.sqrt
        start_us = self.start_us
        elapsed = self._elapsed_us
        now_us = start_us + int(elapsed)
        if now_us >= self._refresh_at_us:
            self._refresh(now_us)
        orders = rng.choices(self._index, cum_weights=self._cum, k=self._chunk_orders)
        # Per-order randoms drawn in bulk: one list call is far cheaper than many calls.
        u_side = [rand() for _ in orders]
        u_fills = [rand() for _ in orders]
        z_walk = [gauss(0.0, 1.0) for _ in orders]
        n_fills = len(_FILLS)
        sizes = self._sizes
        n_table = len(sizes)
        mean_gap = self._mean_gap_us
        exchange, market, agg = self.exchange, self.market, self.agg
        names, qdecs, medians = self._names, self._qdec, self._median_steps
        next_id = self._next_id
        price_cache, price_ticks = self._price_cache, self._price_ticks
        log_ticks, anchor, last_us, from_us = (
            self._log_ticks,
            self._anchor,
            self._last_us,
            self._from_us,
        )
        drift, vol, size_mult, buy_p = self._drift, self._vol, self._size, self._buy_p
        spread_ticks = self._spread_ticks
        book = self.book
        book_bid, book_ask, moved_us = book.bid, book.ask, book.moved_us
        gap_us = QUOTE_GAP_US
        out: list[Trade] = []
        append = out.append
        for s, us, uf, z in zip(orders, u_side, u_fills, z_walk, strict=True):
            time_us = start_us + int(elapsed)
            if time_us < from_us[s]:
                # Stored candles reach past this moment: the symbol has not resumed yet.
                elapsed += -log(1.0 - rand()) * mean_gap * MEAN_FILLS
                continue
            dt = (time_us - last_us[s]) * 1e-6
            y = log_ticks[s]
            if dt > 0.0:
                y += (drift[s] - REVERSION_PER_S * (y - anchor[s])) * dt + vol[s] * sqrt(dt) * z
                log_ticks[s] = y
                last_us[s] = time_us
            spread = spread_ticks[s]
            bid = int(exp(y) - spread * 0.5)
            if bid < 1:
                bid = 1
            ask = bid + spread
            if time_us > book.next_depth_us:
                book.catch_up(time_us)
            if time_us - moved_us[s] >= gap_us and (bid != book_bid[s] or ask != book_ask[s]):
                book.place(s, bid, ask, time_us)
            # The book as last quoted: a taker buy lifts its ask and a sweep walks up; a
            # taker sell hits its bid.
            bid = book_bid[s]
            ask = book_ask[s]
            buyer_is_maker = us >= buy_p[s]
            direction = -1 if buyer_is_maker else 1
            ticks = bid if buyer_is_maker else ask
            fills = _FILLS[int(uf * n_fills)]
            name, qdec = names[s], qdecs[s]
            median = medians[s] * size_mult[s]
            raw_id = next_id[s]
            level_steps = 0
            level_first = raw_id
            for f in range(fills):
                if f and rand() < _SWEEP_MOVE_P and ticks + direction >= 1:
                    if agg:
                        # The order reached a new price: print the level it cleared.
                        append(
                            self._print(
                                s, ticks, level_steps, time_us, buyer_is_maker, level_first, raw_id
                            )
                        )
                        elapsed += -log(1.0 - rand()) * mean_gap
                        level_steps = 0
                        level_first = raw_id
                    ticks += direction
                steps = int(median * sizes[int(rand() * n_table)]) or 1
                if agg:
                    level_steps += steps
                else:
                    price = price_cache[s].get(ticks)
                    if price is None:
                        price = self._cache_price(s, ticks)
                    price_ticks[s] = ticks
                    append(
                        Trade(
                            exchange,
                            market,
                            name,
                            raw_id,
                            price,
                            Decimal(steps).scaleb(-qdec),
                            time_us,
                            buyer_is_maker,
                        )
                    )
                    elapsed += -log(1.0 - rand()) * mean_gap
                raw_id += 1
            if agg:
                append(
                    self._print(s, ticks, level_steps, time_us, buyer_is_maker, level_first, raw_id)
                )
                elapsed += -log(1.0 - rand()) * mean_gap
            next_id[s] = raw_id
        self._elapsed_us = elapsed
        return out

    def _cache_price(self, s: int, ticks: int) -> Decimal:
        """Symbol `s`'s price of `ticks` as a Decimal, remembered (a bounded number)."""
        cache = self._price_cache[s]
        if len(cache) >= _PRICE_CACHE:
            cache.clear()
        price = cache[ticks] = Decimal(ticks).scaleb(-self._pdec[s])
        return price

    def _print(
        self,
        s: int,
        ticks: int,
        steps: int,
        time_us: int,
        buyer_is_maker: bool,
        first_id: int,
        end_id: int,
    ) -> Trade:
        """Symbol `s`'s next aggTrade-style print: the fills `first_id`..`end_id - 1` at one
        price, under the symbol's next aggregate id."""
        price = self._price_cache[s].get(ticks)
        if price is None:
            price = self._cache_price(s, ticks)
        self._price_ticks[s] = ticks
        agg_id = self._next_agg_id[s]
        self._next_agg_id[s] = agg_id + 1
        return Trade(
            self.exchange,
            self.market,
            self._names[s],
            agg_id,
            price,
            Decimal(steps).scaleb(-self._qdec[s]),
            time_us,
            buyer_is_maker,
            first_id,
            end_id - 1,
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
    """What an ``exchangeInfo`` would say of the simulated symbols.

    The same `SymbolInfo` rows `flows.sources.binance.symbols` reads from Binance.

    Args:
        market: The simulated market.

    Returns:
        One TRADING `SymbolInfo` per symbol, quoted in USDT, with its tick and step
        sizes and order filters (`SymbolSpec.info`); perpetual on ``usdm``. Stamped
        with the market's start time, so a seed fixes every field.
    """
    kind = "spot" if market.market == "spot" else "perpetual"
    updated_ms = market.start_us // 1000
    return [spec.info(market.exchange, market.market, kind, updated_ms) for spec in market.symbols]
