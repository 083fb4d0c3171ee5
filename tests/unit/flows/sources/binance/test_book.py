"""The bookTicker normaliser on real payloads, spot (no times) and USDⓈ-M."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flows.sources.binance.book import BookTickerDecoder
from flows.sources.binance.trades import BinanceDecodeError
from schemas.quotes import Quote

SPOT = (
    '{"stream":"bnbusdt@bookTicker","data":{"u":400900217,"s":"BNBUSDT",'
    '"b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}'
)
USDM = (
    b'{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5123107839020,'
    b'"s":"BTCUSDT","b":"61800.20","B":"2.507","a":"61800.30","A":"2.510",'
    b'"T":1723161256313,"E":1723161256314}}'
)


def test_spot_book_ticker_has_no_exchange_time() -> None:
    quote = BookTickerDecoder("spot").decode(SPOT, received_us=1_700_000_000_000_001)
    assert quote == Quote(
        exchange="binance",
        market="spot",
        symbol="BNBUSDT",
        update_id=400900217,
        bid_price=Decimal("25.35190000"),
        bid_qty=Decimal("31.21000000"),
        ask_price=Decimal("25.36520000"),
        ask_qty=Decimal("40.66000000"),
        received_us=1_700_000_000_000_001,
        time_us=None,
    )
    assert quote.key == "binance:spot:BNBUSDT"


def test_usdm_book_ticker_takes_the_transaction_time() -> None:
    quote = BookTickerDecoder("usdm").decode(USDM, received_us=1)
    assert quote.time_us == 1_723_161_256_313_000
    assert (quote.bid_price, quote.ask_qty) == (Decimal("61800.20"), Decimal("2.510"))
    assert quote.update_id == 5123107839020


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ('{"stream":"x@bookTicker","data":{"u":1,"s":"X"', "bad_json"),
        (
            '{"stream":"x@bookTicker","data":{"u":1,"s":"X","b":"1","B":"1","a":"1"}}',
            "missing_field",
        ),
        (
            '{"stream":"x@bookTicker","data":{"u":"1","s":"X","b":"1","B":"1","a":"1","A":"1"}}',
            "bad_type",
        ),
        (
            '{"stream":"x@bookTicker","data":{"u":1,"s":"X","b":"NaN","B":"1","a":"1","A":"1"}}',
            "bad_decimal",
        ),
        ('{"e":"trade","s":"X","u":1,"b":"1","B":"1","a":"1","A":"1"}', "bad_type"),
    ],
)
def test_malformed_book_tickers_are_rejected_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(BinanceDecodeError) as err:
        BookTickerDecoder("spot").decode(raw, received_us=0)
    assert err.value.reason == reason
