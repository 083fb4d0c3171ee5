"""A perpetual's REST history: Binance's documented answers decoded, paging, request windows."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from flows.sinks.perps import funding_rows, mark_kline_rows, open_interest_rows
from flows.sources.binance.errors import BinanceResponseError
from flows.sources.binance.perp_history import (
    FUNDING,
    MARK_KLINES,
    OPEN_INTEREST,
    fetch_history,
    open_interest_floor,
)
from flows.sources.binance.perp_responses import (
    parse_funding_rates,
    parse_mark_klines,
    parse_open_interest_hist,
)
from flows.sources.binance.weight import RequestWindow
from schemas.perps import (
    FundingEvent,
    MarkKline,
    OpenInterest,
    check_funding,
    check_open_interest,
)
from tests.fakes.clock import Clock

# Binance's documented answers (developers.binance.com, USDⓈ-M Futures Market Data),
# comments removed; the last open-interest row is a live answer ccxt recorded (its
# timestamp a number, as live answers have it).
FUNDING_DOC = b"""[
  {"symbol": "BTCUSDT", "fundingRate": "-0.03750000", "fundingTime": 1570608000000,
   "markPrice": "34287.54619963"},
  {"symbol": "BTCUSDT", "fundingRate": "0.00010000", "fundingTime": 1570636800000,
   "markPrice": "34287.54619963"}
]"""
OPEN_INTEREST_DOC = b"""[
  {"symbol": "BTCUSDT", "sumOpenInterest": "20403.63700000",
   "sumOpenInterestValue": "150570784.07809979", "CMCCirculatingSupply": "165880.538",
   "timestamp": "1583127900000"},
  {"symbol": "BTCUSDT", "sumOpenInterest": "20401.36700000",
   "sumOpenInterestValue": "149940752.14464448", "CMCCirculatingSupply": "165900.14853",
   "timestamp": "1583128200000"},
  {"symbol": "BTCUSDT", "sumOpenInterest": "75375.61700000",
   "sumOpenInterestValue": "3248828883.71251440", "timestamp": 1642179900000}
]"""
MARK_KLINES_DOC = b"""[
  [1591256400000, "9653.69440000", "9653.69640000", "9651.38600000", "9651.55200000",
   "0 ", 1591256459999, "0", 60, "0", "0", "0"]
]"""


def test_documented_funding_history_decodes_to_exact_events() -> None:
    events = parse_funding_rates(FUNDING_DOC, "BTCUSDT")
    assert events == [
        FundingEvent(
            exchange="binance", market="usdm", symbol="BTCUSDT",
            funding_time_us=1570608000000_000, funding_rate=Decimal("-0.03750000"),
            source="exchange", mark_price=Decimal("34287.54619963"),
        ),
        FundingEvent(
            exchange="binance", market="usdm", symbol="BTCUSDT",
            funding_time_us=1570636800000_000, funding_rate=Decimal("0.00010000"),
            source="exchange", mark_price=Decimal("34287.54619963"),
        ),
    ]  # fmt: skip
    assert all(check_funding(e) for e in events)
    # Written as the funding table's rows: times in ms, the exchange's version (2).
    assert funding_rows(events[:1]) == (
        b"binance\tusdm\tBTCUSDT\t1570608000000\t-0.03750000\t34287.54619963\texchange\t2\n"
    )


def test_a_funding_row_without_a_mark_price_has_none() -> None:
    body = (
        b'[{"symbol":"ETHUSDT","fundingRate":"0.00010000","fundingTime":1568102400000,'
        b'"markPrice":""}]'
    )
    [event] = parse_funding_rates(body, "ETHUSDT")
    assert event.mark_price is None and event.funding_rate == Decimal("0.0001")


def test_documented_open_interest_history_decodes_string_and_number_timestamps() -> None:
    samples = parse_open_interest_hist(OPEN_INTEREST_DOC, "BTCUSDT")
    assert [s.time_us for s in samples] == [
        1583127900000_000, 1583128200000_000, 1642179900000_000,
    ]  # fmt: skip
    assert samples[0] == OpenInterest(
        exchange="binance", market="usdm", symbol="BTCUSDT", time_us=1583127900000_000,
        open_interest=Decimal("20403.63700000"), source="history",
        open_interest_value=Decimal("150570784.07809979"),
    )  # fmt: skip
    assert str(samples[2].open_interest_value) == "3248828883.71251440"
    assert all(check_open_interest(s) for s in samples)
    assert open_interest_rows(samples[1:2]) == (
        b"binance\tusdm\tBTCUSDT\t1583128200000\t20401.36700000\t149940752.14464448\thistory\n"
    )


def test_documented_mark_price_klines_decode_and_ignore_the_volume_fields() -> None:
    [kline] = parse_mark_klines(MARK_KLINES_DOC, "BTCUSDT")
    assert kline == MarkKline(
        exchange="binance", market="usdm", symbol="BTCUSDT", open_time=1591256400000,
        open=Decimal("9653.69440000"), high=Decimal("9653.69640000"),
        low=Decimal("9651.38600000"), close=Decimal("9651.55200000"), close_time=1591256459999,
    )  # fmt: skip
    assert mark_kline_rows([kline]) == (
        b"binance\tusdm\tBTCUSDT\t1591256400000\t9653.69440000\t9653.69640000\t"
        b"9651.38600000\t9651.55200000\t1591256459999\n"
    )


@pytest.mark.parametrize(
    ("parse", "body"),
    [
        (parse_funding_rates, b'{"code":-1121,"msg":"Invalid symbol."}'),
        (parse_funding_rates, b'[{"symbol":"BTCUSDT","fundingRate":"x","fundingTime":1}]'),
        (parse_funding_rates, b'[{"symbol":"ETHUSDT","fundingRate":"0.1","fundingTime":1}]'),
        (parse_open_interest_hist, b'[{"symbol":"BTCUSDT","sumOpenInterest":"1",'
         b'"sumOpenInterestValue":"2","timestamp":"soon"}]'),
        (parse_open_interest_hist, b'[{"symbol":"BTCUSDT","sumOpenInterest":"NaN",'
         b'"sumOpenInterestValue":"2","timestamp":1}]'),
        (parse_mark_klines, b'[[1591256400000, "1", "1", "1"]]'),
        (parse_mark_klines, b'[["1591256400000", "1", "1", "1", "1", "0", 1, "0", 60]]'),
    ],
)  # fmt: skip
def test_an_answer_that_is_not_what_binance_documents_is_refused(parse: Any, body: bytes) -> None:
    with pytest.raises(BinanceResponseError):
        parse(body, "BTCUSDT")


# ------------------------------------------------------------------------- paging


class History:
    """A stand-in REST client answering from lists, recording every request."""

    market = "usdm"

    def __init__(self, funding: int = 0, samples: int = 0, klines: int = 0) -> None:
        self.asked: list[tuple[str, int, int, int]] = []
        self.funding = [_event(i * 8 * 3_600_000) for i in range(funding)]
        self.samples = [_sample(i * 300_000) for i in range(samples)]
        self.klines = [_kline(i * 60_000) for i in range(klines)]

    async def funding_rates(self, symbol: str, start: int, end: int, limit: int) -> Any:
        self.asked.append(("fundingRate", start, end, limit))
        return [e for e in self.funding if start <= e.funding_time_us // 1000 <= end][:limit]

    async def open_interest_hist(
        self, symbol: str, period: str, start: int, end: int, limit: int
    ) -> Sequence[OpenInterest]:
        assert period == "5m"
        self.asked.append(("openInterestHist", start, end, limit))
        rows = [s for s in self.samples if start <= s.time_us // 1000 <= end]
        return rows[-limit:]  # the latest of the window, whichever end Binance answers from

    async def mark_price_klines(
        self, symbol: str, interval: str, start: int, end: int, limit: int
    ) -> Sequence[MarkKline]:
        self.asked.append(("markPriceKlines", start, end, limit))
        return [k for k in self.klines if start <= k.open_time <= end][:limit]


def _event(ms: int) -> FundingEvent:
    return FundingEvent("binance", "usdm", "BTCUSDT", ms * 1000 + 3000, Decimal("0.0001"),
                        "exchange")  # fmt: skip


def _sample(ms: int) -> OpenInterest:
    return OpenInterest("binance", "usdm", "BTCUSDT", ms * 1000, Decimal(ms), "history")


def _kline(ms: int) -> MarkKline:
    one = Decimal(1)
    return MarkKline("binance", "usdm", "BTCUSDT", ms, one, one, one, one, ms + 59_999)


def test_funding_pages_on_from_the_last_event_of_a_full_page() -> None:
    rest: Any = History(funding=2500)
    events = asyncio.run(fetch_history(rest, FUNDING, "BTCUSDT", (0, 2500 * 8 * 3_600_000)))
    assert events == rest.funding
    assert [a[1] for a in rest.asked] == [0, 999 * 8 * 3_600_000 + 4, 1999 * 8 * 3_600_000 + 4]
    assert all(a[3] == 1000 for a in rest.asked)


def test_open_interest_asks_one_window_a_page_can_hold_at_a_time() -> None:
    rest: Any = History(samples=1200)
    got = asyncio.run(fetch_history(rest, OPEN_INTEREST, "BTCUSDT", (0, 1200 * 300_000)))
    assert got == rest.samples  # nothing lost though the stand-in answers from the end
    window = 500 * 300_000
    assert [(a[1], a[2]) for a in rest.asked] == [
        (0, window - 1), (window, 2 * window - 1), (2 * window, 1200 * 300_000 - 1),
    ]  # fmt: skip


def test_mark_klines_page_by_499_and_leave_out_the_open_kline() -> None:
    rest: Any = History(klines=1000)
    pages: list[int] = []
    now = 999 * 60_000 + 30_000
    got = asyncio.run(
        fetch_history(
            rest, MARK_KLINES, "BTCUSDT", (0, 1000 * 60_000), now_ms=now, on_page=pages.append
        )
    )
    assert got == rest.klines[:999]  # the last one is still open
    assert pages == [499, 499, 2]
    assert [a[3] for a in rest.asked] == [499, 499, 499]


def test_the_open_interest_floor_is_30_days_back_plus_a_margin_on_a_sample_time() -> None:
    now = 1_800_000_123_456
    floor = open_interest_floor(now)
    assert floor % 300_000 == 0
    assert now - 30 * 86_400_000 + 15 * 60_000 <= floor < now - 30 * 86_400_000 + 20 * 60_000


# ------------------------------------------------------------------------- windows


def test_a_request_window_waits_for_its_oldest_request_to_leave_it() -> None:
    clock = Clock(1000.0)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        clock.now += seconds

    window = RequestWindow(500, 300.0, safety=0.8, clock=clock, sleep=sleep)
    assert window.cap == 400

    async def send(count: int) -> None:
        for _ in range(count):
            await window.admit(waits.append)
            clock.now += 0.5

    asyncio.run(send(400))
    assert waits == [] and window.used == 400
    asyncio.run(send(1))
    # The first request went at 1000.0: the 401st waits until it is 300 s old.
    assert waits == [pytest.approx(1000.0 + 300.0 - (1000.0 + 400 * 0.5))]
    # Half a second later (1300.5) the first two (sent at 1000.0 and 1000.5) have left.
    assert window.used == 399


def test_the_rest_client_shares_one_window_between_funding_rate_and_funding_info() -> None:
    from flows.sources.binance.rest import BinanceRest

    rest = BinanceRest("usdm", "http://unused.invalid")
    assert rest.windows["fundingRate"] is rest.windows["fundingInfo"]
    assert rest.windows["fundingRate"].limit == 500
    assert rest.windows["openInterestHist"].limit == 1000
