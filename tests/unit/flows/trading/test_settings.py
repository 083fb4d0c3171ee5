"""The paper engine's settings: Binance's defaults, and tables that cannot be used."""

from __future__ import annotations

import itertools
from decimal import Decimal as D

import pytest
from pydantic import ValidationError

from flows.trading.settings import PaperSettings


def tier(floor: int, rate: str = "0.004", amount: int = 0, leverage: int = 125) -> dict:
    return {"floor": floor, "max_leverage": leverage, "rate": rate, "amount": amount}


def test_defaults_are_binances_base_tier_and_btcusdt_brackets() -> None:
    s = PaperSettings()
    assert (s.spot_fees.maker, s.spot_fees.taker) == (D("0.001"), D("0.001"))
    assert (s.usdm_fees.maker, s.usdm_fees.taker) == (D("0.0002"), D("0.0005"))
    assert (s.max_leverage, s.default_leverage) == (125, 20)
    assert [(t.floor, t.max_leverage, t.rate) for t in s.margin_tiers[:3]] == [
        (D(0), 125, D("0.004")),
        (D(50000), 100, D("0.005")),
        (D(600000), 75, D("0.0065")),
    ]


def test_default_maintenance_amounts_make_the_margin_continuous() -> None:
    # Binance's rule: amount_n = floor_n × (rate_n − rate_n−1) + amount_n−1
    for a, b in itertools.pairwise(PaperSettings().margin_tiers):
        assert b.amount == b.floor * (b.rate - a.rate) + a.amount, b


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"margin_tiers": []}, "start at a floor of 0"),
        ({"margin_tiers": [tier(100)]}, "start at a floor of 0"),
        ({"margin_tiers": [tier(0), tier(50000), tier(50000)]}, "floors must rise"),
        ({"margin_tiers": [tier(0), tier(600000), tier(50000)]}, "floors must rise"),
        ({"default_leverage": 50, "max_leverage": 20}, "default_leverage must not exceed"),
        ({"max_leverage": 126}, "less than or equal to 125"),
        ({"margin_tiers": [tier(0, rate="1")]}, "less than 1"),
        ({"catchup_max_h": 0}, "greater than 0"),
    ],
)
def test_unusable_settings_are_refused(overrides: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PaperSettings.model_validate(overrides)


def test_a_custom_table_and_leverage_are_taken() -> None:
    s = PaperSettings.model_validate(
        {"margin_tiers": [tier(0), tier(1000, "0.01", 6, 50)], "max_leverage": 50,
         "default_leverage": 50}
    )  # fmt: skip
    assert [t.floor for t in s.margin_tiers] == [D(0), D(1000)]
    assert s.default_leverage == 50
    assert PaperSettings().catchup_max_h == 24  # a day of missed market is caught up
