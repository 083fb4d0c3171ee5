"""The simulated listing: drawn from the seed, busiest first, on exact ticks and steps."""

from __future__ import annotations

import random
from decimal import Decimal

from flows.sources.simulator.symbols import list_symbols


def test_the_listing_is_fixed_by_the_seed_and_ranked_by_activity() -> None:
    listing = list_symbols(random.Random(3), 120)
    assert listing == list_symbols(random.Random(3), 120)
    assert listing != list_symbols(random.Random(4), 120)
    specs = listing.specs
    assert [s.symbol for s in specs[:2]] == ["SYM0001USDT", "SYM0002USDT"]
    assert specs[-1].symbol == "SYM0120USDT"
    shares = [s.activity for s in specs]
    assert shares == sorted(shares, reverse=True) and abs(sum(shares) - 1.0) < 1e-9
    # The busiest quote the tightest spreads.
    assert specs[0].spread < specs[-1].spread
    assert len(listing.first_trade_ids) == len(listing.first_agg_ids) == 120
    assert all(1 <= i < 10_000_000 for i in listing.first_trade_ids)
    assert all(1 <= i < 1_000_000 for i in listing.first_agg_ids)


def test_every_price_sits_on_its_tick_with_about_six_significant_digits() -> None:
    for spec in list_symbols(random.Random(0), 500).specs:
        assert spec.initial_price > 0
        assert spec.initial_price % spec.tick_size == 0
        assert spec.tick_size == Decimal(1).scaleb(-spec.price_decimals)
        assert spec.step_size == Decimal(1).scaleb(-spec.qty_decimals)
        assert spec.price_decimals <= 8 and spec.qty_decimals <= 8
        assert len(spec.initial_price.normalize().as_tuple().digits) <= 6
        assert spec.median_steps >= 1.0
