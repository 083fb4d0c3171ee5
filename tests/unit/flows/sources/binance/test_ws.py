"""The connection policy: limits per market, full-jitter backoff, ids."""

from __future__ import annotations

import asyncio
import random

from flows.sources.binance.markets import SPOT
from flows.sources.binance.ws import StreamPool, WsPolicy


def test_market_defaults_stay_well_under_binance_limits() -> None:
    spot, usdm = WsPolicy.for_market("spot"), WsPolicy.for_market("usdm")
    assert (spot.max_streams, spot.messages_per_s) == (200, 5.0)
    assert (usdm.max_streams, usdm.messages_per_s) == (100, 10.0)
    assert spot.max_age_s < 24 * 3600


def test_backoff_is_full_jitter_under_a_doubling_capped_ceiling() -> None:
    policy = WsPolicy(backoff_base_s=0.5, backoff_max_s=8.0)
    rng = random.Random(7)
    for failures, cap in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 8.0), (500, 8.0)]:
        delays = [policy.backoff(failures, rng) for _ in range(2_000)]
        assert all(0.0 <= d <= cap for d in delays)
        # Spread over the whole range, not bunched at the cap: no lockstep reconnects.
        assert min(delays) < cap * 0.05 and max(delays) > cap * 0.95


def test_each_pool_numbers_its_own_connections() -> None:
    # No counter shared through the module: two pools (two markets, or a pool of a
    # second run in the same process) each number from 1, in order.
    first, second = (
        StreamPool("wss://example.invalid", SPOT.stream_path, WsPolicy(), asyncio.Queue(1))
        for _ in range(2)
    )
    assert [first.next_id() for _ in range(3)] == [1, 2, 3]
    assert [second.next_id() for _ in range(2)] == [1, 2]
    assert first.next_id() == 4
