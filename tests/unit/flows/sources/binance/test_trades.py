"""The Binance normaliser on real payloads: trades, aggTrades, and everything it skips."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flows.sources.binance.trades import BinanceDecodeError, BinanceDecoder, time_us_from_binance
from flows.sources.files import ReadStats, Rejected, read_trades
from schemas.trades import Trade
from tests.shared_data import SHARED_DATA

DATA = SHARED_DATA
SAMPLES = DATA / "ws-samples"
SPOT_SAMPLE = SAMPLES / "cryptofeed_BINANCE.ws.1.0"
USDM_SAMPLE = SAMPLES / "cryptofeed_BINANCE_FUTURES.ws.1.0"

USDM_TRADE = (
    b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256322,"T":1723161256322,'
    b'"s":"BTCUSDT","t":5266583935,"p":"61800.30","q":"0.006","X":"MARKET","m":false}}'
)
SPOT_AGG = (
    b'{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT",'
    b'"a":15683430,"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862795,'
    b'"T":1633998523963,"m":true,"M":true}}'
)
# Spot trade stream, bare (no combined wrapper), opened with timeUnit=MICROSECOND.
SPOT_TRADE_US = (
    b'{"e":"trade","E":1735689600123456,"s":"BTCUSDT","t":4370000000,"p":"93576.00000000",'
    b'"q":"0.00012000","T":1735689600123400,"m":true,"M":true}'
)


def test_futures_trade_event():
    trade = BinanceDecoder("usdm").decode(USDM_TRADE)
    assert trade == Trade(
        exchange="binance",
        market="usdm",
        symbol="BTCUSDT",
        trade_id=5266583935,
        price=Decimal("61800.30"),
        qty=Decimal("0.006"),
        time_us=1_723_161_256_322_000,
        buyer_is_maker=False,
    )
    assert trade.count == 1


def test_agg_trade_keeps_its_trade_id_range():
    trade = BinanceDecoder("spot", exchange="binance").decode(SPOT_AGG)
    assert trade is not None
    assert (trade.trade_id, trade.first_trade_id, trade.last_trade_id) == (
        15683430,
        19862790,
        19862795,
    )
    assert trade.count == 6
    assert trade.buyer_is_maker is True
    assert trade.price == Decimal("0.35280000")
    assert trade.time_us == 1_633_998_523_963_000


def test_microsecond_timestamps_are_kept_as_is():
    trade = BinanceDecoder("spot").decode(SPOT_TRADE_US)
    assert trade is not None
    assert trade.time_us == 1_735_689_600_123_400
    assert time_us_from_binance(1_735_689_600_123) == 1_735_689_600_123_000
    assert time_us_from_binance(1_735_689_600_123_456) == 1_735_689_600_123_456


def test_symbol_override_and_str_input():
    trade = BinanceDecoder("usdm", symbol="BTC-PERP").decode(USDM_TRADE.decode())
    assert trade is not None
    assert trade.symbol == "BTC-PERP"


@pytest.mark.parametrize("kind", ["INSURANCE_FUND", "ADL", "NA"])
def test_non_market_futures_prints_are_skipped_and_counted(kind):
    decoder = BinanceDecoder("usdm")
    raw = USDM_TRADE.replace(b'"X":"MARKET"', b'"X":"%s"' % kind.encode())
    assert decoder.decode(raw) is None
    assert decoder.skipped == {f"non_market:{kind}": 1}


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (
            b'{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5123107839020,'
            b'"s":"BTCUSDT","b":"61800.20","B":"2.507","a":"61800.30","A":"2.510",'
            b'"T":1723161256313,"E":1723161256313}}',
            "bookTicker",
        ),
        (
            b'{"stream":"nknusdt@bookTicker","data":{"u":499869768,"s":"NKNUSDT",'
            b'"b":"0.35210000","B":"672.00000000","a":"0.35260000","A":"3199.00000000"}}',
            "bookTicker",
        ),
        (
            b'{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1723161256299,'
            b'"T":1723161256298,"s":"BTCUSDT","U":5123107832006,"u":5123107837557,'
            b'"pu":5123107831937,"b":[["58710.20","0.014"]],"a":[["61800.30","3.330"]]}}',
            "depthUpdate",
        ),
        (
            b'{"lastUpdateId":5123107852948,"E":1723161256501,"T":1723161256493,'
            b'"bids":[["61800.20","2.909"]],"asks":[["61800.30","3.330"]]}',
            "rest_snapshot",
        ),
        (
            b'{"e":"24hrTicker","E":1672515782136,"s":"BNBBTC","p":"0.0015","P":"250.00",'
            b'"c":"0.0025","o":"0.0010","h":"0.0025","l":"0.0010","v":"10000","q":"18",'
            b'"O":0,"C":86400000,"F":0,"L":18150,"n":18151}',
            "24hrTicker",
        ),
        # A stream whose letters clash with the trade fields' types is still just skipped.
        (
            b'{"stream":"btcusdt@markPrice","data":{"e":"markPriceUpdate","E":1562305380000,'
            b'"s":"BTCUSDT","p":11794.15,"T":1562306400000,"m":"x"}}',
            "markPriceUpdate",
        ),
        (b'[{"a":966492862,"p":"60759.6","q":"0.008","f":1,"l":1,"T":1,"m":false}]', "rest_array"),
        (b'{"result":null,"id":1}', "unknown"),
    ],
)
def test_other_messages_are_skipped_never_trades(raw, kind):
    decoder = BinanceDecoder("usdm")
    assert decoder.decode(raw) is None
    assert decoder.skipped == {kind: 1}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (USDM_TRADE[:-20], "bad_json"),
        (USDM_TRADE.replace(b'"p":"61800.30"', b'"p":"61,800.30"'), "bad_decimal"),
        (USDM_TRADE.replace(b'"p":"61800.30"', b'"p":"NaN"'), "bad_decimal"),
        (USDM_TRADE.replace(b',"q":"0.006"', b""), "missing_field"),
        (USDM_TRADE.replace(b'"p":"61800.30"', b'"p":"-61800.30"'), "invalid_trade"),
        (USDM_TRADE.replace(b'"q":"0.006"', b'"q":"0"'), "invalid_trade"),
        (USDM_TRADE.replace(b'"t":5266583935', b'"t":"5266583935"'), "bad_type"),
        (USDM_TRADE.replace(b'"m":false', b'"m":"false"'), "bad_type"),
        (SPOT_AGG.replace(b'"l":19862795', b'"l":19862780'), "invalid_trade"),
        (SPOT_AGG.replace(b',"f":19862790', b""), "missing_field"),
    ],
)
def test_bad_trades_raise_with_a_machine_reason(raw, reason):
    with pytest.raises(BinanceDecodeError) as caught:
        BinanceDecoder("usdm").decode(raw)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)


def test_spot_sample_capture():
    stats = ReadStats()
    trades = list(read_trades(SPOT_SAMPLE, market="spot", stats=stats))
    assert trades == [
        Trade("binance", "spot", "NKNUSDT", 15683430, Decimal("0.35280000"),
              Decimal("58.00000000"), 1_633_998_523_963_000, False, 19862790, 19862790),
        Trade("binance", "spot", "LRCBTC", 9213679, Decimal("0.00000638"),
              Decimal("177.00000000"), 1_633_998_534_486_000, False, 12368013, 12368013),
    ]  # fmt: skip
    assert stats.skipped == {
        "depthUpdate": 177,
        "bookTicker": 84,
        "kline": 2,
        "header": 1,
        "blank": 1,
    }
    assert (stats.lines, stats.rejected) == (267, 0)


def test_futures_sample_capture():
    stats = ReadStats()
    out = list(read_trades(USDM_SAMPLE, market="usdm", stats=stats))
    assert not [r for r in out if isinstance(r, Rejected)]
    trades = [t for t in out if isinstance(t, Trade)]
    assert len(trades) == 91
    assert {t.symbol for t in trades} <= {"SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT"}
    assert all(t.market == "usdm" and t.first_trade_id is not None for t in trades)
    assert trades[0] == Trade(
        "binance", "usdm", "CTKUSDT", 16599292, Decimal("1.01100"), Decimal("10"),
        1_626_992_741_421_000, False, 23961322, 23961322,
    )  # fmt: skip
    assert stats.skipped == {"depthUpdate": 764, "bookTicker": 613, "kline": 67, "header": 1}
    assert stats.trades + stats.skipped_non_trade == stats.lines == 1536
