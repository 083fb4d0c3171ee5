"""Figures from samples, for status lines and benches."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The `q` quantile (0..1) of `values` by the nearest rank below (the element at
    ``int(q * n)`` of the sorted values, the last for q = 1); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
