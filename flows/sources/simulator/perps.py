"""The simulated market's USDⓈ-M perpetuals, live: their trades, and each second's marks,
funding, open interest and liquidations.

The busiest fifth of the spot symbols (`PERP_SHARE`, at least one) are also listed as
perpetuals under the same names on market ``usdm``, as on Binance, where the majors have
both. So every perpetual has a spot twin and the perp premium over spot has data.

A quarter of the twin's taker fills (`PRINT_P`) also print on the perpetual, at the same
time, side and size, on the twin's tick, under the perpetual's own trade ids. The
perpetual has a book of its own (`flows.sources.simulator.book`): the twin's quoted book
times one plus the premium, moved when the twin's quotes (`on_quote`) or the premium
move. A print lands as deep in it as the spot fill landed in the twin's: a buy filled at
the spot ask prints at the perpetual's ask, one a tick above it a tick above. Fed no spot
quotes, a print is the spot price times one plus the premium. Once a second of event time the model
(`flows.sources.simulator.perp_model`) steps: every perpetual's mark, its open interest
every `OPEN_INTEREST_EVERY_S`, funding events at funding times, and the second's
liquidations.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from flows.sources.simulator.book import TOP_DEPTH, SimBook
from flows.sources.simulator.market import SyntheticMarket
from flows.sources.simulator.perp_model import (
    FUNDING_INTERVAL_S,
    MARKET,
    PRINT_P,
    Array,
    Draws,
    PerpModel,
    PerpState,
    funding_times_between,
)
from schemas.depth import BookDepth
from schemas.perps import FundingEvent, Liquidation, MarkPrice, OpenInterest
from schemas.quotes import Quote
from schemas.symbols import SymbolInfo
from schemas.trades import Trade

PERP_SHARE = 0.2
"""Share of the spot symbols (the busiest ones) also listed as perpetuals."""

OPEN_INTEREST_EVERY_S = 5
"""Open interest is published live this often (the exchange's poll is slower)."""

_DRAWS_AHEAD_S = 60  # the per-second draws are made a minute at a time


def perp_count(symbols: int) -> int:
    """How many of a market's `symbols` spot symbols are also listed as perpetuals."""
    return max(1, round(symbols * PERP_SHARE))


@dataclass
class PerpRecords:
    """What the perpetuals published over a stretch of event time, by kind."""

    marks: list[MarkPrice]
    funding: list[FundingEvent]
    open_interest: list[OpenInterest]
    liquidations: list[Liquidation]

    def __len__(self) -> int:
        return (
            len(self.marks) + len(self.funding) + len(self.open_interest) + len(self.liquidations)
        )

    def extend(self, other: PerpRecords) -> None:
        """Append `other`'s records."""
        self.marks.extend(other.marks)
        self.funding.extend(other.funding)
        self.open_interest.extend(other.open_interest)
        self.liquidations.extend(other.liquidations)


def _empty() -> PerpRecords:
    return PerpRecords([], [], [], [])


class Perpetuals:
    """The live perpetuals of a simulated market, fed its spot trades in time order.

    `on_trade` takes each spot trade and returns the perpetual's print of it, if any;
    `advance` steps the per-second model over the whole seconds that ended and returns
    their marks, funding events, open-interest samples and liquidations.

    Args:
        market: The spot market (positioned where it starts, e.g. resumed).
        funding_every_s: Seconds of event time between funding times (8 h; fewer for
            demos).
    """

    def __init__(self, market: SyntheticMarket, funding_every_s: int = FUNDING_INTERVAL_S) -> None:
        k = perp_count(len(market.symbols))
        self.exchange = market.exchange
        self.model = PerpModel(market.seed, market.symbols[:k], market.rate, funding_every_s)
        self.specs = self.model.specs
        self._slot = {spec.symbol: i for i, spec in enumerate(self.specs)}
        self._rng = random.Random(market.seed + 0x9E12)
        self._next_id = [self._rng.randrange(1, 10_000_000) for _ in range(k)]
        self.second = market.start_us // 1_000_000
        """The second of event time being gathered (the model has stepped up to it)."""
        prices = market.prices()
        # Per-trade state in Python lists: the last spot price (converted once a second),
        # the last perp price, the second's perp volume, one plus the premium.
        self._spot_price = [prices[spec.symbol] for spec in self.specs]
        spot = self._spot()
        self.model.index = spot.copy()
        self.model.mark = spot.copy()
        self._perp = spot.tolist()
        self._volume = [0.0] * k
        self._draws = self.model.draws(self.second, _DRAWS_AHEAD_S)
        self._premium = (1.0 + self._draws.premium[:, 0]).tolist()
        self._pdec = self.model.pdec
        self._scale = [10**p for p in self._pdec]
        self._cache: list[dict[int, Decimal]] = [{} for _ in range(k)]
        self.book = SimBook(
            self.exchange,
            MARKET,
            self.symbols,
            self._pdec,
            self.model.qdec,
            [spec.median_steps * TOP_DEPTH for spec in self.specs],
            market.book.sizes,
            market.seed + 0x9E13,
        )
        self._spot_bid = [0] * k  # the twin's quoted book, in ticks (0: no quote yet)
        self._spot_ask = [0] * k
        self._now_us = market.start_us

    def _spot(self) -> Array:
        return np.array([float(price) for price in self._spot_price])

    @property
    def symbols(self) -> list[str]:
        """The perpetuals' names (the same as their spot twins')."""
        return [spec.symbol for spec in self.specs]

    def restore(
        self,
        states: dict[str, PerpState],
        next_trade_ids: dict[str, int],
        last_prices: dict[str, Decimal] | None = None,
    ) -> None:
        """Continue from the store: marks, index and open interest, trade ids and prices.

        Args:
            states: Last stored values by symbol; unknown names are ignored.
            next_trade_ids: Next trade id by symbol (one more than the last stored).
            last_prices: Last stored trade price by symbol (the close of its newest
                candle): the basis moves from it until the perpetual prints again.
        """
        self.model.restore({self._slot[n]: s for n, s in states.items() if n in self._slot})
        for name, next_id in next_trade_ids.items():
            i = self._slot.get(name)
            if i is not None:
                self._next_id[i] = next_id
        for name, price in (last_prices or {}).items():
            i = self._slot.get(name)
            if i is not None:
                self._perp[i] = float(price)

    def next_trade_ids(self) -> dict[str, int]:
        """Each perpetual's next trade id."""
        return dict(zip(self.symbols, self._next_id, strict=True))

    def on_quote(self, quote: Quote) -> None:
        """Take a quote of a spot twin: the perpetual's book follows it (times the premium).

        Feed a twin's quotes in time order with its trades, a quote before the trades of
        its time (and `advance` first, like `on_trade`).
        """
        i = self._slot.get(quote.symbol)
        if i is None:
            return
        time_us = quote.update_id
        self._at(time_us)
        scale = self._scale[i]
        self._spot_bid[i] = int(quote.bid_price * scale)
        self._spot_ask[i] = int(quote.ask_price * scale)
        self._requote(i, time_us)

    def _at(self, time_us: int) -> None:
        """Market time reaches `time_us`: the depth due before it is recorded first."""
        if time_us > self._now_us:
            self._now_us = time_us
        if time_us > self.book.next_depth_us:
            self.book.catch_up(time_us)

    def _requote(self, i: int, time_us: int) -> None:
        """Place perpetual `i`'s book at its twin's times one plus the premium."""
        premium = self._premium[i]
        bid = max(1, round(self._spot_bid[i] * premium))
        ask = max(bid + 1, round(self._spot_ask[i] * premium))
        self.book.place(i, bid, ask, time_us)

    def watch_depth(self, symbols: Iterable[str]) -> list[str]:
        """Record the 20-level depth of exactly these perpetuals from now on, every 100 ms.

        Returns:
            The names watched (unknown ones are ignored).
        """
        return self.book.watch(symbols, self._now_us)

    def take_quotes(self, until_us: int) -> list[Quote]:
        """The perpetuals' quotes up to event time `until_us`, oldest first."""
        return self.book.take_quotes(until_us)

    def take_depth(self, until_us: int) -> list[BookDepth]:
        """The watched perpetuals' depth up to event time `until_us`, oldest first."""
        return self.book.take_depth(until_us)

    def on_trade(self, trade: Trade) -> Trade | None:
        """Take a spot trade; return the perpetual's print of it, if it prints one.

        Call `advance` up to the trade's time first, so it lands in its own second. Per
        trade only Python scalars are touched (numpy scalars cost more than the trade).
        """
        i = self._slot.get(trade.symbol)
        if i is None:
            return None
        self._spot_price[i] = trade.price
        if self._rng.random() >= PRINT_P:
            return None
        scale = self._scale[i]
        spot_ticks = int(trade.price * scale)
        if self._spot_ask[i]:
            time_us = trade.time_us
            self._at(time_us)
            self._requote(i, time_us)
            # As deep into the perpetual's book as the fill went into the twin's.
            book = self.book
            if trade.buyer_is_maker:
                ticks = max(1, book.bid[i] - max(0, self._spot_bid[i] - spot_ticks))
            else:
                ticks = book.ask[i] + max(0, spot_ticks - self._spot_ask[i])
        else:
            ticks = max(1, round(spot_ticks * self._premium[i]))
        cache = self._cache[i]
        price = cache.get(ticks)
        if price is None:
            if len(cache) > 4096:
                cache.clear()
            price = cache[ticks] = Decimal(ticks).scaleb(-self._pdec[i])
        self._perp[i] = ticks / scale
        self._volume[i] += float(trade.qty)
        trade_id = self._next_id[i]
        self._next_id[i] = trade_id + 1
        return Trade(
            trade.exchange,
            MARKET,
            trade.symbol,
            trade_id,
            price,
            trade.qty,
            trade.time_us,
            trade.buyer_is_maker,
        )

    def advance(self, until_us: int) -> PerpRecords:
        """Step the model over every whole second that ended by `until_us`.

        Each second publishes every perpetual's mark at its end, an open-interest sample
        every `OPEN_INTEREST_EVERY_S`, the funding events of a funding time, and its
        liquidations (pumps and dumps only, one per symbol at most).

        Args:
            until_us: Event time reached, in µs.

        Returns:
            The records, in time order per kind.
        """
        out = _empty()
        model = self.model
        exchange = self.exchange
        while (self.second + 1) * 1_000_000 <= until_us:
            t = self.second
            end_us = (t + 1) * 1_000_000
            draws, col = self._draws_at(t)
            liquidated = model.liquidated_qty(draws, slice(col, col + 1))[:, 0]
            model.step(
                draws,
                col,
                1.0,
                self._spot(),
                np.array(self._perp),
                np.array(self._volume),
                liquidated,
            )
            for i in np.flatnonzero(draws.hit[:, col]).tolist():
                out.liquidations.append(
                    model.liquidation(
                        exchange,
                        i,
                        t * 1_000_000 + int(draws.offset_us[i, col]),
                        bool(draws.buy[i, col]),
                        float(liquidated[i]),
                    )
                )
            rates = model.funding_rate()
            out.marks.extend(model.marks(exchange, end_us, rates))
            if (t + 1) % OPEN_INTEREST_EVERY_S == 0:
                out.open_interest.extend(model.open_interests(exchange, end_us))
            for funding_s in funding_times_between(t, t + 1, model.funding_every_s):
                out.funding.extend(model.funding(exchange, funding_s, rates))
                model.settle()
            self._volume = [0.0] * model.k
            self.second = t + 1
            draws, col = self._draws_at(t + 1)
            self._premium = (1.0 + draws.premium[:, col]).tolist()
            # The premium moved: so do the books (those whose twin has quoted).
            self._at(end_us)
            for i in range(model.k):
                if self._spot_ask[i]:
                    self._requote(i, end_us)
        return out

    def _draws_at(self, t_s: int) -> tuple[Draws, int]:
        """The draws holding second `t_s`, and its column (drawn a minute at a time)."""
        col = t_s - self._draws.start_s
        if not 0 <= col < self._draws.seconds:
            self._draws = self.model.draws(t_s, _DRAWS_AHEAD_S)
            col = 0
        return self._draws, col

    def symbol_infos(self, updated_ms: int) -> list[SymbolInfo]:
        """The perpetuals as ``exchangeInfo`` would list them: market usdm, kind perpetual."""
        return [spec.info(self.exchange, MARKET, "perpetual", updated_ms) for spec in self.specs]
