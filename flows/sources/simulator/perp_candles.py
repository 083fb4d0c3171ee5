"""The simulated perpetuals' candles, derived from their spot twins' generated candles.

Live, a quarter of a twin's taker orders (`PRINT_P`) also print on the perpetual, same
side and size, at the spot price times one plus the perpetual's premium, on the twin's
tick (`flows.sources.simulator.perps`). `PerpCandles` does the same per candle while the
history generator (`flows.sources.simulator.history`) draws the twins' candles:

- trades: a binomial draw of `PRINT_P` of the twin's trades, so a quiet twin second is
  a flat perpetual second;
- prices: the twin's open, high, low and close times one plus the premium the model
  (`flows.sources.simulator.perp_model.PerpModel.premium_at`) has at the candle's last
  second, tick-rounded (one print: all four at the close; two: the open and the close);
- volumes: the twin's volume per trade for the trades printed, at least a step each,
  split by taker side as the twin's volume is, at the twin's VWAPs times the premium;
- ids: consecutive from the perpetual's stored or seeded next id.

1m candles over the seconds' span are the roll-up of the 1s ones, as for spot. The live
perpetual then resumes from these stored candles: its next trade id and last price.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import numpy as np

from flows.sources.simulator.buckets import (
    I64,
    MINUTE_MS,
    Array,
    Buckets,
    Prices,
    settle,
    taker_sides,
)
from flows.sources.simulator.perp_model import PRINT_P
from flows.sources.simulator.perps import Perpetuals
from flows.sources.simulator.stored import StoredSymbol


class PerpCandles:
    """The perpetuals' candles, bucket by bucket of their twins' (the first rows).

    Args:
        perps: The perpetuals: their model's premium and their seeded next trade ids.
        seed: Seeds the draws of which trades print (with the history's end).
    """

    def __init__(self, perps: Perpetuals, seed: int) -> None:
        self.model = perps.model
        self.symbols = perps.symbols
        self.k = len(self.symbols)
        self._seed_ids = np.array(list(perps.next_trade_ids().values()), dtype=I64)
        self._pdec = np.array(self.model.pdec, dtype=I64)
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self.start = np.zeros(self.k, dtype=I64)
        self.close = np.full(self.k, -1, dtype=I64)
        self.next_id = self._seed_ids.copy()

    def begin(self, first_ms: int, end_ms: int, stored: Mapping[str, StoredSymbol]) -> None:
        """Start each perpetual where its stored candles end (at most back to `first_ms`).

        Args:
            first_ms: Start of the history of a perpetual with nothing stored.
            end_ms: End of the history (seeds which trades print).
            stored: Where each perpetual's stored candles end (`read_stored` on ``usdm``).
        """
        self._rng = np.random.default_rng([self._seed & 0xFFFFFFFF, end_ms // MINUTE_MS, 0x9E12])
        self.start[:] = first_ms
        self.close[:] = -1
        self.next_id = self._seed_ids.copy()
        for i, name in enumerate(self.symbols):
            known = stored.get(name)
            if known is None:
                continue
            self.close[i] = max(1, int(known.close.scaleb(int(self._pdec[i])).to_integral_value()))
            if known.last_trade_id is not None:
                self.next_id[i] = known.last_trade_id + 1
            self.start[i] = max(first_ms, -(-known.end_ms // MINUTE_MS) * MINUTE_MS)

    def derive(self, spot: Buckets) -> Buckets:
        """The perpetuals' buckets over the same times as `spot`, their twins' buckets.

        Args:
            spot: The market's buckets; its first rows are the perpetuals' twins.

        Returns:
            The perpetuals' buckets (one row each), emitted from each one's start and
            first print on.
        """
        k, rng = self.k, self._rng
        times = spot.times
        shape = (k, len(times))
        active = times[None, :] >= self.start[:, None]
        count = np.where(active, rng.binomial(spot.count[:k], PRINT_P), 0)
        g = 1.0 + self.model.premium_at((times + spot.step_ms - 1) // 1000)

        def scaled(ticks: Array) -> Array:
            return np.maximum(1, np.rint(ticks[:k] * g)).astype(I64)

        open_, high, low, close = (scaled(a) for a in (spot.open, spot.high, spot.low, spot.close))
        one = count == 1
        open_ = np.where(one, close, open_)
        high = np.where(count <= 2, np.maximum(open_, close), high)
        low = np.where(count <= 2, np.minimum(open_, close), low)

        spot_count = np.maximum(spot.count[:k], 1)
        spot_volume = spot.volume[:k]
        volume = np.maximum(count, np.floor(spot_volume * (count / spot_count))).astype(I64)
        bought, bought_quote = spot.buy_volume[:k], spot.buy_quote[:k]
        sold, sold_quote = spot_volume - bought, spot.quote[:k] - bought_quote
        share = np.where(spot_volume > 0, bought / np.maximum(spot_volume, 1), 0.5)
        mid = (open_ + close) / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            buy_vwap = np.where(bought > 0, bought_quote / bought * g, mid)
            sell_vwap = np.where(sold > 0, sold_quote / sold * g, mid)
        split = np.clip(np.rint(volume * rng.random(shape)).astype(I64), 1, volume - 1)
        sides = taker_sides(
            count,
            volume,
            share,
            Prices(open_, high, low, close),
            (buy_vwap, sell_vwap),
            (rng.random(shape) < share, rng.random(shape) < share, split),
        )
        buckets = settle(
            times,
            spot.step_ms,
            active,
            count,
            Prices(open_, high, low, close),
            volume,
            sides,
            self.close,
            self.next_id,
        )
        self.close = buckets.close[:, -1]
        self.next_id = buckets.last_id[:, -1] + 1
        return buckets

    def last_prices(self) -> dict[str, Decimal]:
        """Each perpetual's last close so far (those with a trade)."""
        return {
            name: Decimal(int(self.close[i])).scaleb(-int(self._pdec[i]))
            for i, name in enumerate(self.symbols)
            if self.close[i] > 0
        }
