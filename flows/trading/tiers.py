"""USDⓈ-M leverage and margin tiers: maintenance and initial margin, leverage limits.

A tier (`flows.trading.settings.MarginTier`) covers the notionals from its `floor` up to
(not including) the next tier's floor. Maintenance margin is ``notional × rate −
amount`` of the notional's tier; with Binance's amounts (each tier's amount is
``floor × (rate − previous rate) + previous amount``) it is continuous across tiers.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from flows.trading.amounts import exact, round_usdt
from flows.trading.settings import MarginTier

INVALID_LEVERAGE = -4028
"""Binance's code for a leverage outside 1 … the symbol's maximum."""

POSITION_TOO_LARGE = -2027
"""Binance's code for a position larger than the leverage allows."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why Binance would refuse a leverage or an order: its code and its words."""

    code: int
    reason: str


def tier_of(notional: Decimal, tiers: Sequence[MarginTier]) -> MarginTier:
    """The tier a position notional (|qty| × price, USDT) falls in.

    Args:
        notional: Non-negative notional in USDT.
        tiers: Ascending floors from 0 (`PaperSettings.margin_tiers`).

    Raises:
        ValueError: A negative notional.
    """
    if notional < 0:
        raise ValueError(f"a notional is not negative, got {notional}")
    return tiers[bisect.bisect_right(tiers, notional, key=lambda t: t.floor) - 1]


@exact
def maintenance_margin(notional: Decimal, tiers: Sequence[MarginTier]) -> Decimal:
    """Maintenance margin of a position notional: ``notional × rate − amount`` of its tier.

    Exact (a product and a difference of decimals, no rounding); 0 for a flat position.
    """
    if not notional:
        return Decimal(0)
    tier = tier_of(notional, tiers)
    return notional * tier.rate - tier.amount


@exact
def initial_margin(notional: Decimal, leverage: int) -> Decimal:
    """Margin a notional needs at `leverage`: ``notional / leverage``, rounded up to 8
    decimals so a reservation never falls short."""
    if leverage < 1:
        raise ValueError(f"leverage is at least 1, got {leverage}")
    return round_usdt(notional / leverage, ROUND_CEILING)


def max_leverage(notional: Decimal, tiers: Sequence[MarginTier], cap: int) -> int:
    """The highest leverage a position of this notional may use: its tier's, at most
    `cap` (`PaperSettings.max_leverage`)."""
    return min(tier_of(notional, tiers).max_leverage, cap)


def max_notional(leverage: int, tiers: Sequence[MarginTier]) -> Decimal | None:
    """The notional a position at `leverage` must stay below: the floor of the first tier
    that does not allow that leverage; None when every tier allows it."""
    floors = [t.floor for t in tiers if t.max_leverage < leverage]
    return min(floors) if floors else None


def leverage_error(
    leverage: int, notional: Decimal, tiers: Sequence[MarginTier], cap: int
) -> Refusal | None:
    """Why `leverage` is refused for a position (or order) of `notional`, in Binance's
    words; None when it is allowed.

    Returns:
        ``-4028 "Leverage 150 is not valid"`` for a leverage outside 1 … min(`cap`, the
        first tier's maximum); ``-2027 "Exceeded the maximum allowable position at
        current leverage."`` when `notional` reaches a tier that does not allow it.
    """
    if not 1 <= leverage <= min(cap, tiers[0].max_leverage):
        return Refusal(INVALID_LEVERAGE, f"Leverage {leverage} is not valid")
    limit = max_notional(leverage, tiers)
    if limit is not None and notional >= limit:
        return Refusal(
            POSITION_TOO_LARGE, "Exceeded the maximum allowable position at current leverage."
        )
    return None
