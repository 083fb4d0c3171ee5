"""How USDⓈ-M margin arithmetic is done exactly and where it is rounded.

Every margin function runs its arithmetic in `EXACT` (60 significant digits, half-even,
traps on invalid operations), so results never depend on the caller's decimal context
and sums and products of prices, quantities and rates are exact. Only a division (an
average entry price, initial margin, a liquidation or bankruptcy price) or an explicit
rounding below loses digits:

- USDT amounts that move a balance (realised P&L, funding) and unrealised P&L are
  rounded to 8 decimals half-even (`USDT_PLACES`), as Binance books them;
- initial margin is rounded up to 8 decimals, so a reservation is never short;
- an average entry price keeps 18 decimals (`ENTRY_PLACES`, the scale of our ClickHouse
  decimals), far below any tick, so P&L from it is right to the 8th decimal;
- a liquidation price is rounded to 8 decimals half-even, a bankruptcy price to 8
  decimals in the trader's favour.

A value already short enough is returned as it is (``100`` stays ``100``, not
``100.00000000``), and a rounded zero is ``Decimal(0)`` (never ``-0E-8``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import ParamSpec, TypeVar

MARGIN_ASSET = "USDT"
"""The asset USDⓈ-M accounts hold margin, P&L, fees and funding in."""

USDT_PLACES = 8
"""Decimals of a USDT amount (Binance's precision for P&L, fees and funding)."""

ENTRY_PLACES = 18
"""Decimals kept of an average entry price."""

PRICE_PLACES = 8
"""Decimals of a computed price (liquidation, bankruptcy)."""

EXACT = Context(
    prec=60, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)
"""The context margin arithmetic runs in: wide enough that products and sums of
18-decimal prices and quantities are exact."""

_P = ParamSpec("_P")
_R = TypeVar("_R")


def exact(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run `fn` in the `EXACT` decimal context, whatever the caller's context is."""

    @functools.wraps(fn)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with localcontext(EXACT):
            return fn(*args, **kwargs)

    return run


def round_places(value: Decimal, places: int, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """`value` rounded to `places` decimals with `rounding` (a ``decimal.ROUND_*``).

    A value with no more decimals than that comes back unchanged, and a zero result is
    ``Decimal(0)``.
    """
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -places:
        rounded = value
    else:
        rounded = value.quantize(Decimal(1).scaleb(-places), rounding=rounding, context=EXACT)
    return rounded if rounded else Decimal(0)


def round_usdt(value: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """A USDT amount rounded to `USDT_PLACES` decimals (half-even unless told)."""
    return round_places(value, USDT_PLACES, rounding)
