"""Percentiles by the nearest rank below, as status lines and benches report them."""

from __future__ import annotations

import math

from runtime.figures import percentile


def test_the_nearest_rank_below_and_nan_for_nothing() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # unsorted: 100 .. 1
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile(values, 1)) == (
        51.0, 100.0, 100.0,
    )  # fmt: skip
    assert percentile([7.0], 0.99) == 7.0
    assert math.isnan(percentile([], 0.5))
