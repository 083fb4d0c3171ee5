"""The perpetuals decoders on Binance's documented examples and on live captures.

The documented examples are those of developers.binance.com (USDⓈ-M Futures: Mark Price
Stream, Liquidation Order Streams, Open Interest). The live frames were recorded from
``fstream.binance.com`` in 2026 (published in open-source projects' test suites): they
carry fields the examples lack (``ap``, ``ps``, ``st``) and a partial last fill.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from flows.sources.binance.perps import (
    LiquidationDecoder,
    MarkPriceDecoder,
    parse_open_interest,
)
from flows.sources.binance.trades import BinanceDecodeError
from schemas.perps import OpenInterest
from tests.unit.schemas.test_perps import LIQUIDATION, MARK

DOC_MARK = (
    '{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000",'
    '"i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}'
)
LIVE_MARK = (
    b'{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1790526539000,'
    b'"s":"BTCUSDT","p":"84551.10762319","ap":"84551.10762319","P":"84559.09090930",'
    b'"i":"84590.87304348","r":"0.00000801","T":1790553600000,"st":1}}'
)
DOC_FORCE_ORDER = (
    '{"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT",'
    '"f":"IOC","q":"0.014","p":"9910","ap":"9910","X":"FILLED","l":"0.014","z":"0.014",'
    '"T":1568014460893}}'
)
LIVE_FORCE_ORDER = (
    '{"stream":"!forceOrder@arr","data":{"e":"forceOrder","E":1791391083124,"o":{'
    '"s":"ILVUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"116.5","p":"3.80300",'
    '"ap":"3.85642","X":"FILLED","l":"25.2","z":"116.5","T":1791391082119,"ps":"ILVUSDT",'
    '"st":1}}}'
)
DOC_OPEN_INTEREST = b'{"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}'


def test_the_documented_mark_price_keeps_every_figure_exactly() -> None:
    mark = MarkPriceDecoder().decode(DOC_MARK, received_us=MARK.received_us)
    assert mark == MARK and mark.key == "binance:usdm:BTCUSDT"


def test_a_live_mark_price_frame_is_read_through_its_wrapper_and_extra_fields() -> None:
    mark = MarkPriceDecoder().decode(LIVE_MARK, received_us=1)
    assert (mark.symbol, mark.mark_price, mark.index_price) == (
        "BTCUSDT", Decimal("84551.10762319"), Decimal("84590.87304348")
    )  # fmt: skip
    assert mark.estimated_settle_price == Decimal("84559.09090930")
    assert mark.funding_rate == Decimal("0.00000801")
    # 2026-09-28 00:00 UTC: a funding time, as every next funding time is.
    assert mark.next_funding_time_us == 1_790_553_600_000_000
    assert mark.next_funding_time_us // 1_000_000 % (8 * 3600) == 0


def test_a_delivery_contract_has_no_funding() -> None:
    delivery = DOC_MARK.replace('"r":"0.00038167","T":1562306400000', '"r":"","T":0')
    mark = MarkPriceDecoder().decode(delivery, received_us=1)
    assert mark.funding_rate is None and mark.next_funding_time_us == 0


def test_the_documented_liquidation_is_a_long_closed() -> None:
    liquidation = LiquidationDecoder().decode(DOC_FORCE_ORDER, LIQUIDATION.received_us)
    assert liquidation == LIQUIDATION
    assert liquidation.is_long and liquidation.quote_volume == Decimal("138.740")


def test_a_live_liquidation_keeps_its_whole_fill_apart_from_its_last_one() -> None:
    liquidation = LiquidationDecoder().decode(LIVE_FORCE_ORDER, received_us=1)
    assert (liquidation.symbol, liquidation.side) == ("ILVUSDT", "SELL")
    assert (liquidation.filled_qty, liquidation.last_filled_qty) == (
        Decimal("116.5"), Decimal("25.2")
    )  # fmt: skip
    # Filled at a better price than its bankruptcy price; valued at the fill.
    assert liquidation.price == Decimal("3.80300") and liquidation.avg_price > liquidation.price
    assert liquidation.quote_volume == Decimal("116.5") * Decimal("3.85642")
    assert liquidation.time_us == 1_791_391_082_119_000
    assert liquidation.event_time_us == 1_791_391_083_124_000


def test_a_short_closed_is_a_buy() -> None:
    short = DOC_FORCE_ORDER.replace('"S":"SELL"', '"S":"BUY"')
    liquidation = LiquidationDecoder().decode(short, received_us=1)
    assert liquidation.side == "BUY" and not liquidation.is_long


def test_the_documented_open_interest_is_a_polled_sample() -> None:
    assert parse_open_interest(DOC_OPEN_INTEREST) == OpenInterest(
        exchange="binance",
        market="usdm",
        symbol="BTCUSDT",
        time_us=1_589_437_530_011_000,
        open_interest=Decimal("10659.509"),
        source="poll",
    )


MARKS, LIQUIDATIONS = MarkPriceDecoder(), LiquidationDecoder()


@pytest.mark.parametrize(
    ("decoder", "raw", "reason"),
    [
        (MARKS, "not json", "bad_json"),
        (MARKS, '{"e":"bookTicker","s":"BTCUSDT","u":1}', "bad_type"),  # another event
        (MARKS, DOC_MARK.replace('"p":"11794.15000000",', ""), "missing_field"),
        (MARKS, DOC_MARK.replace('"E":1562305380000', '"E":"soon"'), "bad_type"),
        (MARKS, DOC_MARK.replace('"11794.15000000"', '"lots"'), "bad_decimal"),
        (MARKS, DOC_MARK.replace('"11794.15000000"', '"-1"'), "invalid_perp"),
        (MARKS, DOC_MARK.replace('"11784.62659091"', '"0"'), "invalid_perp"),
        (MARKS, DOC_MARK.replace('"0.00038167"', '"NaN"'), "bad_decimal"),
        (MARKS, DOC_MARK.replace('"s":"BTCUSDT"', '"s":""'), "invalid_perp"),
        (LIQUIDATIONS, DOC_MARK, "bad_type"),  # a mark price on the liquidation stream
        (LIQUIDATIONS, DOC_FORCE_ORDER.replace('"S":"SELL"', '"S":"HOLD"'), "bad_type"),
        (LIQUIDATIONS, DOC_FORCE_ORDER.replace('"ap":"9910",', ""), "missing_field"),
        # More filled than ordered; nothing ordered.
        (LIQUIDATIONS, DOC_FORCE_ORDER.replace('"z":"0.014"', '"z":"0.020"'), "invalid_perp"),
        (LIQUIDATIONS, DOC_FORCE_ORDER.replace('"q":"0.014"', '"q":"0"'), "invalid_perp"),
        (LIQUIDATIONS, '{"e":"forceOrder","E":1568014460893}', "missing_field"),
    ],
)
def test_a_bad_stream_message_is_a_decode_error_with_its_reason(
    decoder: MarkPriceDecoder | LiquidationDecoder, raw: str, reason: str
) -> None:
    with pytest.raises(BinanceDecodeError) as caught:
        decoder.decode(raw, received_us=1)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>", "bad_json"),
        (b'{"symbol":"BTCUSDT","time":1589437530011}', "missing_field"),
        (DOC_OPEN_INTEREST.replace(b'"10659.509"', b'"-5"'), "invalid_perp"),
        (DOC_OPEN_INTEREST.replace(b'"10659.509"', b"10659.509"), "bad_type"),
    ],
)
def test_a_bad_open_interest_answer_is_a_decode_error(body: bytes, reason: str) -> None:
    with pytest.raises(BinanceDecodeError) as caught:
        parse_open_interest(body)
    assert caught.value.reason == reason
