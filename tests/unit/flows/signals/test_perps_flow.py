"""Perpetuals records in the signals flow: they meet their symbol's candles, show in its
rows, refresh a row whose candles lag, and survive a recovery snapshot."""

from __future__ import annotations

import pickle
from decimal import Decimal

import msgspec
import pytest
from bytewax.testing import TestingSink, TestingSource, run_main

from flows.signals.flow import ScannerSinks, SignalCounters, build_flow
from flows.signals.scanner import PartitionScanner, ScanContext, ScannerOutput, SymbolScanner
from flows.signals.settings import SignalFlowSettings
from flows.sources.kafka import Record, RecordBatch
from schemas import topics
from schemas.candles import Candle, encode_candle
from schemas.perps import FundingEvent, Liquidation, MarkPrice, OpenInterest, encode_perp
from schemas.ranks import RankRow
from tests.perps_records import funding, liquidation, mark, open_interest, perp_candle
from tests.unit.flows.signals.test_metrics import candle
from tests.unit.flows.signals.test_rules import RULES, SMALL, T0

S = 1_000
H = 3_600_000
_TOPIC = {
    MarkPrice: topics.MARKS,
    OpenInterest: topics.OPEN_INTEREST,
    Liquidation: topics.LIQUIDATIONS,
    FundingEvent: topics.FUNDING,
}
Item = Candle | MarkPrice | OpenInterest | Liquidation | FundingEvent


def records(items: list[Item]) -> list[Record]:
    out = []
    for offset, item in enumerate(items):
        if isinstance(item, Candle):
            out.append(Record(topics.CANDLES, 0, offset, item.key.encode(), encode_candle(item)))
        else:
            value = encode_perp(item)
            out.append(Record(_TOPIC[type(item)], 0, offset, item.key.encode(), value))
    return out


def second(s: int, close: str = "100", symbol: str = "AAA") -> Candle:
    return perp_candle(candle("1s", T0 + s * S, close, symbol=symbol))


class Scan:
    """One partition's scanner, fed batch by batch."""

    def __init__(self) -> None:
        self.scanner = PartitionScanner()
        self.context = ScanContext(SMALL, RULES, topics.QUOTES)
        self.ranks: list[RankRow] = []
        self.snapshots: list[RankRow] = []
        self.rejected: list[str] = []

    def fold(self, items: list[Item]) -> None:
        out = ScannerOutput()
        self.scanner.fold(
            records(items), self.context, out, lambda _r, reason, _d: self.rejected.append(reason)
        )
        self.ranks += out.ranks
        self.snapshots += out.snapshots


def test_records_before_the_first_candle_show_in_its_row() -> None:
    scan = Scan()
    scan.fold(
        [
            mark(T0 + 500, "100.2", "100", "0.0001", next_funding_ms=T0 + 8 * H),
            open_interest(T0, "5000"),
            liquidation(T0 + 200, "SELL", "2", "100"),
            funding(T0, "0.0003"),
        ]
    )
    assert scan.ranks == []  # no candle, no row
    scan.fold([second(0)])
    (row,) = scan.ranks
    assert row.time_ms == T0 + S
    assert row.mark_price == 100.2 and row.index_price == 100.0
    assert row.basis_bps == pytest.approx((100.2 - 100) / 100 * 10_000, rel=1e-12)
    assert row.funding_rate_pct == pytest.approx(0.01) and row.funding_last_pct == pytest.approx(
        0.03
    )
    assert row.funding_annual_pct == pytest.approx(0.01 * 1095, rel=1e-12)
    assert row.next_funding_s == 8 * 3600 - 1
    assert row.open_interest == 5000.0
    assert row.open_interest_value == pytest.approx(5000 * 100.2, rel=1e-12)
    assert row.liq_long_5m == 200.0 and row.liq_short_5m == 0.0
    assert row.premium_bps is None  # the API's board sets it


def test_a_spot_row_has_no_perpetuals_figures() -> None:
    scan = Scan()
    scan.fold([mark(T0, "10", "10"), candle("1s", T0, "10")])  # the spot AAA: another key
    (row,) = scan.ranks
    assert row.market == "spot" and row.mark_price is None and row.liq_long_5m is None


def test_a_row_only_the_countdown_moved_on_is_not_news() -> None:
    scan = Scan()
    scan.fold([mark(T0, "100", "100", next_funding_ms=T0 + 8 * H), second(0), second(1)])
    assert [r.time_ms - T0 for r in scan.ranks] == [S]  # second 1: same figures, 1 s less
    scan.fold([mark(T0 + 1_500, "101", "100", next_funding_ms=T0 + 8 * H), second(2)])
    assert [r.time_ms - T0 for r in scan.ranks] == [S, 3 * S]
    assert scan.ranks[-1].mark_price == 101.0 and scan.ranks[-1].next_funding_s == 8 * 3600 - 3


def test_perpetuals_data_refreshes_a_row_whose_candles_lag() -> None:
    scan = Scan()
    scan.fold([mark(T0 + 500, "100", "100"), second(0)])
    assert len(scan.ranks) == 1
    # candles stop; a mark 1.5 s after the last row's second: not yet
    scan.fold([mark(T0 + 2_500, "100.5", "100")])
    assert len(scan.ranks) == 1
    # 2 s after it: the row is refreshed, as of the same candle time
    scan.fold([mark(T0 + 3_000, "100.7", "100")])
    assert len(scan.ranks) == 2
    refreshed = scan.ranks[-1]
    assert refreshed.time_ms == T0 + S and refreshed.mark_price == 100.7
    # then at most once per 2 s of its data, and only when it changed: 4 s is too soon
    # after 3 s, 5 s changed nothing, 7 s did
    scan.fold([mark(T0 + 4_000, "100.9", "100")])
    scan.fold([mark(T0 + 5_000, "100.7", "100")])
    scan.fold([mark(T0 + 7_000, "101.1", "100")])
    assert [r.mark_price for r in scan.ranks] == [100.0, 100.7, 101.1]
    assert scan.snapshots == []  # refreshed rows are not minute snapshots


def test_an_invalid_perpetuals_record_is_rejected() -> None:
    scan = Scan()
    bad = msgspec.structs.replace(mark(T0, "1", "1"), mark_price=Decimal(0))
    scan.fold([bad, second(0)])
    assert scan.rejected == ["invalid_perp"]
    assert scan.ranks[0].mark_price is None


def test_a_snapshot_from_before_perpetuals_resumes() -> None:
    scan = Scan()
    scan.fold([second(0)])
    state = scan.scanner.symbols["sim:usdm:AAA"]
    del state.stamp_ms  # as a pickled SymbolScanner of the last release has none
    del scan.scanner.perps
    resumed = pickle.loads(pickle.dumps(scan.scanner))
    assert resumed.perps == {}
    symbol: SymbolScanner = resumed.symbols["sim:usdm:AAA"]
    assert symbol.stamp_ms == -1
    del symbol.metrics.__dict__["perps"]
    assert symbol.metrics.perps is None  # the class default
    out = ScannerOutput()
    resumed.fold(records([mark(T0, "101", "100"), second(1, "101")]), scan.context, out, print)
    assert out.ranks[-1].mark_price == 101.0


def test_the_dataflow_reads_the_perpetuals_topics() -> None:
    sinks: dict[str, list[tuple[str, list[object]]]] = {"ranks": [], "t": [], "s": [], "d": []}
    counters = SignalCounters()
    candles = [second(s) for s in range(3)]
    perps = [
        [mark(T0 + 100, "100.1", "100")],
        [open_interest(T0, "10")],
        [liquidation(T0, "BUY", "1", "100")],
        [funding(T0, "0.0001")],
    ]
    flow = build_flow(
        SignalFlowSettings(rules=SMALL),
        TestingSource([("0", RecordBatch(0, records(candles), 0))]),
        None,
        ScannerSinks(
            ranks=TestingSink(sinks["ranks"]),
            signals=TestingSink(sinks["s"]),
            tables=TestingSink(sinks["t"]),
            dead_letters=TestingSink(sinks["d"]),
        ),
        perps=[TestingSource([("0", RecordBatch(0, records(items), 0))]) for items in perps],
        counters=counters,
    )
    run_main(flow)
    last = [r for _, rows in sinks["ranks"] for r in rows][-1]
    assert isinstance(last, RankRow)
    assert counters.perps == 4 and counters.dead_letters == 0
    assert (last.mark_price, last.open_interest, last.liq_short_24h) == (100.1, 10.0, 100.0)
    assert last.funding_last_pct == pytest.approx(0.01)
