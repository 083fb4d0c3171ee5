"""Perpetual futures records: the wire form round-trips exactly, and the checks refuse
what no exchange publishes."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from schemas.perps import (
    FundingEvent,
    InvalidPerpData,
    Liquidation,
    MarkPrice,
    OpenInterest,
    check_funding,
    check_liquidation,
    check_mark,
    check_open_interest,
    encode_perp,
    funding_decoder,
    liquidation_decoder,
    mark_decoder,
    open_interest_decoder,
)

MARK = MarkPrice(
    exchange="binance",
    market="usdm",
    symbol="BTCUSDT",
    time_us=1_562_305_380_000_000,
    mark_price=Decimal("11794.15000000"),
    index_price=Decimal("11784.62659091"),
    estimated_settle_price=Decimal("11784.25641265"),
    next_funding_time_us=1_562_306_400_000_000,
    received_us=1_562_305_380_002_000,
    funding_rate=Decimal("0.00038167"),
)

LIQUIDATION = Liquidation(
    exchange="binance",
    market="usdm",
    symbol="BTCUSDT",
    time_us=1_568_014_460_893_000,
    side="SELL",
    price=Decimal("9910"),
    avg_price=Decimal("9910"),
    qty=Decimal("0.014"),
    filled_qty=Decimal("0.014"),
    last_filled_qty=Decimal("0.014"),
    status="FILLED",
    order_type="LIMIT",
    time_in_force="IOC",
    event_time_us=1_568_014_460_893_000,
    received_us=1_568_014_460_900_000,
)


def test_records_round_trip_with_exact_decimals() -> None:
    oi = OpenInterest(
        "binance", "usdm", "BTCUSDT", 1_589_437_530_011_000, Decimal("10659.509"), "poll"
    )
    funding = FundingEvent(
        "binance", "usdm", "BTCUSDT", 1_570_608_000_000_000, Decimal("-0.03750000"), "exchange",
        mark_price=Decimal("34287.54619963"),
    )  # fmt: skip
    assert mark_decoder().decode(encode_perp(MARK)) == MARK
    assert liquidation_decoder().decode(encode_perp(LIQUIDATION)) == LIQUIDATION
    assert open_interest_decoder().decode(encode_perp(oi)) == oi
    assert funding_decoder().decode(encode_perp(funding)) == funding
    assert b'"mark_price":"11794.15000000"' in encode_perp(MARK)
    assert MARK.key == LIQUIDATION.key == oi.key == funding.key == "binance:usdm:BTCUSDT"


def test_liquidation_value_and_side() -> None:
    assert LIQUIDATION.quote_volume == Decimal("138.740")
    assert LIQUIDATION.is_long
    assert not msgspec_replace(LIQUIDATION, side="BUY").is_long


def msgspec_replace(record: Liquidation, **changes: object) -> Liquidation:
    return msgspec.structs.replace(record, **changes)


def test_checks_accept_real_records() -> None:
    assert check_mark(MARK) is MARK
    assert check_liquidation(LIQUIDATION) is LIQUIDATION
    delivery = MarkPrice(
        "binance", "usdm", "BTCUSDT_250328", 1, Decimal(1), Decimal(1), Decimal(0), 0, 1
    )
    assert check_mark(delivery).funding_rate is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mark_price": Decimal(0)}, "mark_price"),
        ({"index_price": Decimal("-1")}, "index_price"),
        ({"funding_rate": Decimal("NaN")}, "funding_rate"),
        ({"symbol": ""}, "symbol"),
        ({"time_us": -1}, "time"),
    ],
)
def test_check_mark_refuses(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidPerpData, match=message):
        check_mark(msgspec.structs.replace(MARK, **changes))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"side": "SHORT"}, "side"),
        ({"qty": Decimal(0)}, "qty"),
        ({"filled_qty": Decimal("0.02")}, "larger"),
        ({"avg_price": Decimal("-1")}, "avg_price"),
    ],
)
def test_check_liquidation_refuses(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidPerpData, match=message):
        check_liquidation(msgspec_replace(LIQUIDATION, **changes))


def test_check_open_interest_and_funding_refuse() -> None:
    with pytest.raises(InvalidPerpData, match="open_interest"):
        check_open_interest(OpenInterest("binance", "usdm", "X", 1, Decimal("-1"), "poll"))
    with pytest.raises(InvalidPerpData, match="funding_rate"):
        check_funding(FundingEvent("binance", "usdm", "X", 1, Decimal("Infinity"), "stream"))
    with pytest.raises(InvalidPerpData, match="mark_price"):
        check_funding(
            FundingEvent("binance", "usdm", "X", 1, Decimal("0.0001"), "stream", Decimal(0))
        )
