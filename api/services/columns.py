"""The board's columns, as `RankRow` has them: what a condition names, with its windows,
and what a sort orders by."""

from __future__ import annotations

from typing import get_args

import msgspec

from schemas.ranks import WINDOWS, RankRow, Window


def _columns_of(kind: type) -> tuple[str, ...]:
    """RankRow's metric columns whose values are `kind` (or `kind | None`), in display order."""
    return tuple(
        field.name
        for field in msgspec.structs.fields(RankRow)
        if field.name != "time_ms" and (field.type is kind or kind in get_args(field.type))
    )


NUMERIC_COLUMNS: tuple[str, ...] = _columns_of(float)
"""Every number column of `RankRow` a condition or a sort may name."""

FLAG_COLUMNS: tuple[str, ...] = _columns_of(bool)
"""The true/false columns of `RankRow` (``new_high``, ``new_low``)."""


def _window_of(column: str) -> Window | None:
    """The window a column's name ends with (``change_pct_5m`` -> ``5m``), if any."""
    return next((w for w in WINDOWS if column.endswith(f"_{w}")), None)


def _metric_windows() -> dict[str, tuple[Window, ...]]:
    """Metric name -> its windows: a prefix with columns for several windows (``rvol_1m``,
    ``rvol_5m`` ...) is one windowed metric; any other column is a metric of its own, even
    one whose name ends like a window (``volatility_1h``, ``high_24h``)."""
    windows: dict[str, list[Window]] = {}
    for column in NUMERIC_COLUMNS:
        window = _window_of(column)
        if window is not None:
            windows.setdefault(column.removesuffix(f"_{window}"), []).append(window)
    metrics: dict[str, tuple[Window, ...]] = {}
    for column in NUMERIC_COLUMNS:
        window = _window_of(column)
        base = column.removesuffix(f"_{window}") if window is not None else column
        if len(windows.get(base, ())) > 1:
            metrics.setdefault(base, tuple(windows[base]))
        else:
            metrics[column] = ()
    return metrics


METRIC_WINDOWS: dict[str, tuple[Window, ...]] = _metric_windows()
"""Every metric a condition may name, with its windows (empty: the metric has none)."""

SORT_COLUMNS: tuple[str, ...] = ("symbol", *NUMERIC_COLUMNS, *FLAG_COLUMNS)
"""What the board can be sorted by."""
