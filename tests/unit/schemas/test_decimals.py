"""Decimals as messages show them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from schemas.decimals import plain


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("120637.000000000000000000", "120637"),
        ("0.010000000000000000", "0.01"),
        ("1E+2", "100"),
        ("0E-18", "0"),
        ("-2.50", "-2.5"),
        # a full Decimal(38, 18): the default 28-digit context would round it
        ("12345678901234567890.123456789012345678", "12345678901234567890.123456789012345678"),
    ],
)
def test_a_value_reads_as_written_and_exactly(value: str, text: str) -> None:
    shown = plain(Decimal(value))
    assert str(shown) == text and shown == Decimal(value)
