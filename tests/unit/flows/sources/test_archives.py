"""What a data.binance.vision archive's name and rows say, without opening a file."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flows.sources.archives import ArchiveName, columns_detail, parse_archive_name, row_trade
from flows.sources.binance.trades import BinanceDecodeError
from schemas.trades import Trade


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("BTCUSDT-trades-2024-08-08.zip", ArchiveName("BTCUSDT", "trades", "2024-08-08")),
        ("ETHUSDT-aggTrades-2025-01.csv", ArchiveName("ETHUSDT", "aggTrades", "2025-01")),
        ("BTCUSDT-1m-2024-08-08.zip", None),  # klines, not trades
        ("btcusdt-trades-2024-08-08.zip", None),
        ("BTCUSDT-trades-2024-08-08.csv.gz", None),
    ],
)
def test_an_archive_name_says_its_symbol_kind_and_period(
    name: str, expected: ArchiveName | None
) -> None:
    assert parse_archive_name(name) == expected


def test_a_wrong_column_count_names_the_layout_it_has() -> None:
    assert columns_detail(7, "usdm", "trades") == (
        "7 columns, usdm trades has 6; 7 columns is the layout of spot trades or usdm aggTrades"
    )
    assert columns_detail(3, "spot", "trades") == "3 columns, spot trades has 7"


def test_rows_read_as_trades_by_kind() -> None:
    spot = [
        "3812315236",
        "61751.99000000",
        "0.00016000",
        "9.88031840",
        "1723161599986",
        "True",
        "True",
    ]
    assert row_trade(spot, "trades", "binance", "spot", "BTCUSDT") == Trade(
        "binance", "spot", "BTCUSDT", 3812315236, Decimal("61751.99"), Decimal("0.00016"),
        1723161599986000, True,
    )  # fmt: skip
    agg = ["2302815133", "61659.80", "0.004", "5266605246", "5266605247", "1723161599643", "false"]
    trade = row_trade(agg, "aggTrades", "binance", "usdm", "BTCUSDT")
    assert (trade.trade_id, trade.first_trade_id, trade.last_trade_id) == (
        2302815133,
        5266605246,
        5266605247,
    )
    assert trade.buyer_is_maker is False
    with pytest.raises(BinanceDecodeError) as bad:
        row_trade(["1", "2", "3", "4", "5", "maybe"], "trades", "binance", "usdm", "X")
    assert bad.value.reason == "bad_bool"
