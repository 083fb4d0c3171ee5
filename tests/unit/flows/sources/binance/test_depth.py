"""The partial-depth normaliser on real payloads: spot (no symbol, no time) and USDⓈ-M."""

from __future__ import annotations

import gzip
import itertools
from decimal import Decimal

import pytest

from flows.sources.binance.depth import DepthDecoder, depth_stream
from flows.sources.binance.trades import BinanceDecodeError
from tests.shared_data import SHARED_DATA

# A real spot frame (BTCUSDT, 2021), 20 levels a side.
SPOT = (
    '{"stream":"btcusdt@depth20@100ms","data":{"lastUpdateId":11655824136,'
    '"bids":[["35496.06000000","0.29859300"],["35494.02000000","0.00056300"],'
    '["35492.76000000","0.29281400"],["35492.74000000","0.33317500"],'
    '["35492.69000000","0.24197100"],["35490.13000000","0.31000000"],'
    '["35488.55000000","0.11438100"],["35487.72000000","0.43845000"],'
    '["35487.71000000","2.32424100"],["35487.70000000","0.00400000"],'
    '["35487.69000000","0.30708800"],["35487.68000000","0.04250000"],'
    '["35487.35000000","0.13353700"],["35487.21000000","3.94000000"],'
    '["35486.50000000","0.30708400"],["35486.48000000","0.10000000"],'
    '["35486.01000000","0.75000000"],["35485.93000000","0.04225100"],'
    '["35485.90000000","2.88000000"],["35484.70000000","0.35200000"]],'
    '"asks":[["35496.07000000","0.34867100"],["35496.66000000","0.26443500"],'
    '["35496.67000000","0.00112600"],["35497.04000000","0.00095000"],'
    '["35497.27000000","1.08723100"],["35499.61000000","0.23423000"],'
    '["35499.62000000","0.10000000"],["35499.83000000","0.00155500"],'
    '["35500.00000000","0.06332300"],["35500.15000000","0.01127600"],'
    '["35500.51000000","0.77017700"],["35500.52000000","0.25000000"],'
    '["35500.69000000","0.01289800"],["35500.84000000","0.00947400"],'
    '["35500.94000000","0.00400000"],["35500.95000000","0.32000000"],'
    '["35501.09000000","0.30707600"],["35501.10000000","0.89300000"],'
    '["35501.77000000","0.30126300"],["35502.92000000","0.30707600"]]}}'
)
# A real USDⓈ-M frame (LINKUSDT, 2021, five levels: the depth5 stream's, same shape).
USDM = (
    b'{"stream":"linkusdt@depth5@100ms","data":{"e":"depthUpdate","E":1623494540955,'
    b'"T":1623494540947,"s":"LINKUSDT","U":510743911258,"u":510743914224,'
    b'"pu":510743910356,"b":[["21.030","12.37"],["21.029","448.68"],["21.027","2.12"],'
    b'["21.024","240.12"],["21.022","47.62"]],"a":[["21.031","4.66"],["21.034","20.68"],'
    b'["21.036","7.17"],["21.038","20.53"],["21.039","251.82"]]}}'
)
# Binance's documented USDⓈ-M example (Partial Book Depth Streams), bids as printed there:
# lowest first.
USDM_DOCS = (
    '{"e":"depthUpdate","E":1571889248277,"T":1571889248276,"s":"BTCUSDT",'
    '"U":390497796,"u":390497878,"pu":390497794,'
    '"b":[["7403.89","0.002"],["7403.90","3.906"],["7404.00","1.428"],'
    '["7404.85","5.239"],["7405.43","2.562"]],'
    '"a":[["7405.96","3.340"],["7406.63","4.525"],["7407.08","2.475"],'
    '["7407.15","4.800"],["7407.20","0.175"]]}'
)
# Binance's documented spot example, on a single-stream connection (bare payload).
SPOT_DOCS = '{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}'


def test_spot_depth_takes_its_symbol_from_the_stream_and_has_no_time() -> None:
    depth = DepthDecoder("spot").decode(SPOT, received_us=1_633_998_512_063_356)
    assert (depth.exchange, depth.market, depth.symbol) == ("binance", "spot", "BTCUSDT")
    assert depth.update_id == 11655824136
    assert (depth.time_us, depth.received_us) == (None, 1_633_998_512_063_356)
    assert len(depth.bids) == len(depth.asks) == 20
    assert depth.bids[0] == (Decimal("35496.06000000"), Decimal("0.29859300"))
    assert depth.asks[0] == (Decimal("35496.07000000"), Decimal("0.34867100"))
    assert depth.bids[-1] == (Decimal("35484.70000000"), Decimal("0.35200000"))
    assert str(depth.asks[-1][0]) == "35502.92000000"  # exact, as printed
    assert depth.key == "binance:spot:BTCUSDT"


def test_a_bare_spot_payload_names_its_symbol_by_the_stream_given() -> None:
    depth = DepthDecoder("spot").decode(SPOT_DOCS, 5, stream="bnbbtc@depth20@100ms")
    assert (depth.symbol, depth.update_id, depth.bids, depth.asks) == (
        "BNBBTC",
        160,
        [(Decimal("0.0024"), Decimal("10"))],
        [(Decimal("0.0026"), Decimal("100"))],
    )
    with pytest.raises(BinanceDecodeError) as err:
        DepthDecoder("spot").decode(SPOT_DOCS, 5)
    assert err.value.reason == "missing_field" and "stream" in err.value.detail


def test_usdm_depth_is_timed_by_its_transaction_time() -> None:
    depth = DepthDecoder("usdm").decode(USDM, received_us=7)
    assert (depth.market, depth.symbol, depth.update_id) == ("usdm", "LINKUSDT", 510743914224)
    assert depth.time_us == 1_623_494_540_947_000  # T, not E
    assert [p for p, _ in depth.bids] == [Decimal(p) for p in ("21.030", "21.029", "21.027",
                                                                "21.024", "21.022")]  # fmt: skip
    assert depth.asks[0] == (Decimal("21.031"), Decimal("4.66"))


def test_levels_are_put_in_book_order() -> None:
    depth = DepthDecoder("usdm").decode(USDM_DOCS, received_us=1)
    assert [p for p, _ in depth.bids] == sorted((p for p, _ in depth.bids), reverse=True)
    assert depth.bids[0] == (Decimal("7405.43"), Decimal("2.562"))
    assert depth.asks[0] == (Decimal("7405.96"), Decimal("3.340"))
    assert depth.time_us == 1_571_889_248_276_000


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("not json", "bad_json"),
        ('{"stream":"x@depth20@100ms","data":{"lastUpdateId":"7","bids":[],"asks":[]}}',
         "bad_type"),
        ('{"stream":"x@depth20@100ms","data":{"e":"aggTrade","s":"X","u":1,"b":[],"a":[]}}',
         "bad_type"),
        ('{"stream":"x@depth20@100ms","data":{"lastUpdateId":7,"bids":[]}}', "missing_field"),
        ('{"stream":"x@depth20@100ms","data":{"e":"depthUpdate","u":1,"b":[],"a":[]}}',
         "missing_field"),
        ('{"stream":"x@depth20@100ms","data":{"lastUpdateId":7,"bids":[["1.0","x"]],'
         '"asks":[]}}', "bad_decimal"),
        ('{"stream":"x@depth20@100ms","data":{"lastUpdateId":7,"bids":[["1.0","1","2"]],'
         '"asks":[]}}', "bad_type"),
        ('{"stream":"x@depth20@100ms","data":{"lastUpdateId":7,"bids":[["2.0","1"]],'
         '"asks":[["1.9","1"]]}}', "bad_book"),
    ],
)  # fmt: skip
def test_malformed_payloads_are_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(BinanceDecodeError) as err:
        DepthDecoder("spot" if "lastUpdateId" in raw else "usdm").decode(raw, 1)
    assert err.value.reason == reason


def test_real_diff_depth_events_are_not_taken_for_a_book() -> None:
    """USDⓈ-M's diff-depth events carry the same fields; their zero quantities (levels
    removed) give them away, and they are refused rather than read as a 20-level book."""
    capture = SHARED_DATA / "binance-um-btcusdt-20240808" / "hftbacktest_usdm_btcusdt_20240808.gz"
    with gzip.open(capture, "rt") as lines:
        diffs = [
            line.split(" ", 1)[1] for line in itertools.islice(lines, 2_000) if "@depth@" in line
        ]
    assert len(diffs) > 50
    decoder = DepthDecoder("usdm")
    refused = 0
    for raw in diffs:
        try:
            decoder.decode(raw, 1)
        except BinanceDecodeError as exc:
            assert exc.reason == "bad_book"
            refused += 1
    assert refused > len(diffs) * 0.9


def test_the_stream_name() -> None:
    assert depth_stream("BTCUSDT") == "btcusdt@depth20@100ms"
