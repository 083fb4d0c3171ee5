"""Binance REST: parsing real responses, and the request-weight budget on a fake clock."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from flows.sources.binance.errors import BinanceResponseError
from flows.sources.binance.responses import Kline, parse_agg_trades, parse_klines, parse_trades
from flows.sources.binance.weight import WeightBudget
from schemas.trades import check_trade
from tests.fakes.clock import Clock
from tests.shared_data import SHARED_DATA

SAMPLES = SHARED_DATA / "ws-samples"
KLINES = SAMPLES / "nautilus_http_spot_market_klines.json"
TRADES = SAMPLES / "nautilus_http_spot_market_trades.json"
AGG_TRADES = SAMPLES / "nautilus_http_spot_market_agg_trades.json"


def test_real_klines_parse_to_exact_decimals_field_for_field() -> None:
    klines = parse_klines(KLINES.read_bytes())
    assert len(klines) == 10
    assert klines[0] == Kline(
        open_time=1634943780000,
        open=Decimal("60685.22000000"),
        high=Decimal("60729.84000000"),
        low=Decimal("60670.90000000"),
        close=Decimal("60719.27000000"),
        volume=Decimal("21.63272000"),
        close_time=1634943839999,
        quote_volume=Decimal("1313200.01340410"),
        count=617,
        taker_buy_volume=Decimal("12.28492000"),
        taker_buy_quote_volume=Decimal("745719.41022840"),
    )
    # Consecutive minutes, each closing 1 ms before the next opens.
    assert [k.open_time for k in klines] == [1634943780000 + i * 60_000 for i in range(10)]
    assert all(k.close_time == k.open_time + 59_999 for k in klines)
    assert klines[-1].count == 7 and klines[-1].taker_buy_volume == klines[-1].volume


def test_every_kline_field_matches_the_raw_row_exactly() -> None:
    raw = json.loads(KLINES.read_text())
    for row, k in zip(raw, parse_klines(KLINES.read_bytes()), strict=True):
        assert [
            k.open_time, str(k.open), str(k.high), str(k.low), str(k.close), str(k.volume),
            k.close_time, str(k.quote_volume), k.count, str(k.taker_buy_volume),
            str(k.taker_buy_quote_volume),
        ] == row[:11]  # fmt: skip


def test_real_agg_trades_keep_aggregate_and_raw_ids_and_microsecond_time() -> None:
    trades = parse_agg_trades(AGG_TRADES.read_bytes(), "spot", "BTCUSDT")
    assert len(trades) == 10
    first = trades[0]
    assert (first.exchange, first.market, first.symbol) == ("binance", "spot", "BTCUSDT")
    assert first.trade_id == 966492862
    assert (first.first_trade_id, first.last_trade_id) == (1111480471, 1111480471)
    assert first.price == Decimal("60759.60000000") and first.qty == Decimal("0.00841000")
    assert first.time_us == 1634944096633_000
    assert first.buyer_is_maker is False
    assert [t.trade_id for t in trades] == list(range(966492862, 966492872))
    assert sum(t.count for t in trades) == 10
    assert sum(1 for t in trades if t.buyer_is_maker) == 3  # m: true rows in the sample
    assert all(check_trade(t) for t in trades)


def test_real_trades_parse_ids_prices_sides_and_time() -> None:
    trades = parse_trades(TRADES.read_bytes(), "spot", "BTCUSDT")
    raw = json.loads(TRADES.read_text())
    assert [t.trade_id for t in trades] == list(range(1111468873, 1111468883))
    for row, t in zip(raw, trades, strict=True):
        assert str(t.price) == row["price"] and str(t.qty) == row["qty"]
        assert t.price * t.qty == Decimal(row["quoteQty"])
        assert t.time_us == row["time"] * 1000
        assert t.buyer_is_maker is row["isBuyerMaker"]
        assert t.first_trade_id is None and t.count == 1


@pytest.mark.parametrize(
    ("parse", "body"),
    [
        (parse_klines, b'[[1634943780000, "60685.22", "x"]]'),
        (parse_klines, b'[[1634943780000, "1", "1", "1", "1", "NaN", 1, "1", 1, "1", "1", "0"]]'),
        (parse_klines, b'{"code": -1121, "msg": "Invalid symbol."}'),
        (lambda b: parse_agg_trades(b, "spot", "X"), b'[{"a": 1, "p": "1"}]'),
        (lambda b: parse_trades(b, "spot", "X"), b"[{"),
    ],
)
def test_a_malformed_body_is_a_response_error(parse, body) -> None:
    with pytest.raises(BinanceResponseError):
        parse(body)


def test_the_budget_waits_for_the_next_minute_once_the_safe_share_is_spent() -> None:
    clock = Clock(1_000_040.0)  # 20 s into a minute (1_000_020 is a minute start)
    budget = WeightBudget(100, safety=0.8, clock=clock)
    assert budget.cap == 80
    for _ in range(4):
        assert budget.delay(20) == 0
        budget.spend(20)
    assert budget.used == 80
    # The fifth request would pass 80: wait out the minute (40 s left of it).
    assert budget.delay(20) == pytest.approx(40.0)
    assert budget.delay(0) == 0
    clock.now += 40.0
    assert budget.used == 0
    assert budget.delay(20) == 0


def test_the_server_figure_raises_our_count_whatever_the_header_case() -> None:
    clock = Clock(6_000_000.0)
    budget = WeightBudget(6000, safety=0.8, clock=clock)
    budget.spend(2)
    budget.observe({"x-mbx-used-weight-1m": "4790", "X-MBX-USED-WEIGHT": "4790"})
    assert budget.used == 4790
    assert budget.delay(2) == 0  # 4792 <= 4800
    assert budget.delay(20) == pytest.approx(60.0)
    # A lower figure (a reply from before our other requests landed) never lowers it.
    budget.observe({"X-MBX-USED-WEIGHT-1M": "10"})
    assert budget.used == 4790
    budget.observe({"X-MBX-USED-WEIGHT-1M": "not a number"})
    assert budget.used == 4790


def test_a_retry_after_holds_every_request_even_with_weight_to_spare() -> None:
    clock = Clock(1_000_000.0)
    budget = WeightBudget(2400, clock=clock)
    budget.hold(3.0)
    assert budget.delay(1) == pytest.approx(3.0)
    clock.now += 3.0
    assert budget.delay(1) == 0


def test_one_request_heavier_than_the_cap_may_still_go_into_an_empty_minute() -> None:
    budget = WeightBudget(10, safety=0.5, clock=Clock(120.0))
    assert budget.delay(50) == 0
