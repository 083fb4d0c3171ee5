"""Exact decimals as messages show them: the same value without padding zeros or exponent."""

from __future__ import annotations

from decimal import Context, Decimal

_WIDE = Context(prec=80)
"""Wide enough for any Decimal(38, 18) column or message value: nothing here rounds."""


def plain(value: Decimal) -> Decimal:
    """The same value without trailing zeros (``120637`` for ``120637.000``, ``0.01`` for
    a stored ``0.010000000000000000``) and without a positive exponent (``100``, never
    ``1E+2``), so it reads as a trader writes it. Like every `Decimal`, a value under
    10⁻⁶ still reads in exponent form (``1E-7``)."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1), context=_WIDE)
    return value.normalize(context=_WIDE)
