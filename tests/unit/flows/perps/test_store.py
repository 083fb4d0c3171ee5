"""The perpetuals store's step and flow: records routed to their tables by topic, funding
derived from the marks, bad records to the dead letters, the state rebuilt from storage."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from bytewax.testing import TestingSink, TestingSource, run_main

from flows.perps.funding import SymbolFunding
from flows.perps.resume import FundingSeeds
from flows.perps.settings import PerpStoreSettings
from flows.perps.store import (
    PartitionFunding,
    PerpStoreCounters,
    build_flow,
    perp_rows,
    readers,
    unstorable,
)
from flows.sources.kafka import Record, RecordBatch
from schemas import topics
from schemas.deadletter import DeadLetter
from schemas.perps import FundingEvent, Liquidation, MarkPrice, OpenInterest, encode_perp
from schemas.topics import PerpTopics

S = 1_000_000
T = 1_767_225_600 * S
NEXT = T + 8 * 3600 * S
KEY = b"binance:usdm:BTCUSDT"
NAMES = PerpTopics()
END_MARKER = [(topics.CONTROL_HEADER, topics.END_OF_RUN)]


def mark(at_s: float, rate: str, due: int = T, price: str = "100.5") -> MarkPrice:
    time_us = T + round(at_s * S)
    return MarkPrice(
        "binance", "usdm", "BTCUSDT", time_us, Decimal(price), Decimal("100.4"),
        Decimal("100.45"), due, time_us + 2_000, Decimal(rate),
    )  # fmt: skip


LIQUIDATION = Liquidation(
    "binance", "usdm", "BTCUSDT", T + 3 * S, "SELL", Decimal("99.5"), Decimal("99.6"),
    Decimal("2"), Decimal("2"), Decimal("2"), "FILLED", "LIMIT", "IOC", T + 3 * S + 5, T + 4 * S,
)  # fmt: skip
OI = OpenInterest("binance", "usdm", "BTCUSDT", T + 5 * S, Decimal("81234.567"), "poll")
SIM_FUNDING = FundingEvent("sim", "usdm", "AAAUSDT", T, Decimal("-0.00002"), "sim")


def rec(topic: str, offset: int, value: bytes, headers: Any = None) -> Record:
    return Record(topic, 0, offset, KEY, value, headers)


def test_records_go_to_their_tables_and_a_crossed_funding_time_adds_its_row() -> None:
    marks = [mark(-1.5, "0.0001"), mark(-0.5, "0.00015"), mark(0.5, "0.00002", due=NEXT)]
    records = [
        *(rec(NAMES.marks, i, encode_perp(m)) for i, m in enumerate(marks)),
        rec(NAMES.liquidations, 0, encode_perp(LIQUIDATION)),
        rec(NAMES.open_interest, 0, encode_perp(OI)),
        rec(NAMES.funding, 0, encode_perp(SIM_FUNDING)),
        rec(NAMES.marks, 3, b"run-1", END_MARKER),  # a control record: skipped
    ]
    out = perp_rows(records, readers(NAMES), PartitionFunding(), 60 * S)
    derived = FundingEvent(
        "binance", "usdm", "BTCUSDT", T, Decimal("0.00015"), "stream", Decimal("100.5")
    )
    assert out.records == [*marks[:2], marks[2], derived, LIQUIDATION, OI, SIM_FUNDING]
    assert (out.read, out.derived, out.dead_letters) == (6, 1, [])


def test_bad_records_become_dead_letters_with_their_reason() -> None:
    too_fine = mark(-1, "0.000100001")  # 9 decimals: Decimal(38, 8) would truncate it
    zeros = mark(-0.5, "0.000100000000")  # only zeros past the 8th decimal: stored exactly
    invalid = encode_perp(mark(-1, "0.0001")).replace(b'"mark_price":"100.5"', b'"mark_price":"-1"')
    records = [
        rec(NAMES.marks, 0, b"{not json"),
        rec(NAMES.marks, 1, invalid),
        rec(NAMES.marks, 2, encode_perp(too_fine)),
        rec(NAMES.marks, 3, encode_perp(zeros)),
        rec(NAMES.liquidations, 4, encode_perp(OI)),  # an open-interest sample on the wrong topic
    ]
    out = perp_rows(records, readers(NAMES), PartitionFunding(), 60 * S)
    assert out.records == [zeros]
    assert [(d.stage, d.reason, d.offset) for d in out.dead_letters] == [
        ("perp_store", "undecodable", 0),
        ("perp_store", "invalid_perp", 1),
        ("perp_store", "unstorable", 2),
        ("perp_store", "undecodable", 4),
    ]


def test_unstorable_knows_each_columns_scale() -> None:
    assert unstorable(OI) is None
    fine_value = OpenInterest(
        "binance", "usdm", "X", 0, Decimal("1"), "history", Decimal("1.0000000000000001")
    )
    assert unstorable(fine_value) is None  # open_interest_value keeps 16 decimals
    finer = OpenInterest(
        "binance", "usdm", "X", 0, Decimal("1"), "history", Decimal("1.00000000000000001")
    )
    assert unstorable(finer) == "1.00000000000000001 does not fit Decimal(38, 16)"
    huge = OpenInterest("binance", "usdm", "X", 0, Decimal("1E30"), "poll")
    assert unstorable(huge) == "1E+30 does not fit Decimal(38, 8)"
    late = FundingEvent("binance", "usdm", "X", 10_413_792_000_000_000, Decimal("0"), "exchange")
    assert unstorable(late) is not None


class StoredState:
    """A client answering the two queries of `load_funding_state` (no socket)."""

    def __init__(self, marks: list[tuple[Any, ...]], settled: list[tuple[Any, ...]]) -> None:
        self.answers = {"marks_1s": marks, "funding": settled}
        self.asked: list[dict[str, Any]] = []

    def query(self, sql: str, parameters: dict[str, Any]) -> SimpleNamespace:
        self.asked.append(parameters)
        table = "marks_1s" if "marks_1s" in sql else "funding"
        return SimpleNamespace(result_rows=self.answers[table])


def run(
    batches: dict[str, list[RecordBatch]], seeds: FundingSeeds | None = None
) -> tuple[list[Any], list[DeadLetter], PerpStoreCounters]:
    rows: list[tuple[str, list[Any]]] = []
    dead: list[tuple[str, list[DeadLetter]]] = []
    counters = PerpStoreCounters()
    sources = {
        topic: TestingSource([(str(b.partition), b) for b in items])
        for topic, items in batches.items()
    }
    run_main(
        build_flow(
            PerpStoreSettings(), sources, TestingSink(rows), TestingSink(dead),
            seeds=seeds, counters=counters,
        )
    )  # fmt: skip
    return [r for _, rs in rows for r in rs], [d for _, ds in dead for d in ds], counters


def test_the_flow_merges_the_topics_and_keeps_funding_state_per_partition() -> None:
    marks = [mark(-1, "0.0001"), mark(0, "0.0003", due=NEXT), mark(1, "0.0002", due=NEXT)]
    batches = {
        NAMES.marks: [
            RecordBatch(0, [rec(NAMES.marks, 0, encode_perp(marks[0]))], 0),
            RecordBatch(0, [], 0, caught_up=True),  # heartbeat
            RecordBatch(
                0, [rec(NAMES.marks, i + 1, encode_perp(m)) for i, m in enumerate(marks[1:])], 0
            ),
        ],
        NAMES.liquidations: [RecordBatch(0, [rec(NAMES.liquidations, 0, b"[]")], 0)],
        NAMES.funding: [RecordBatch(0, [rec(NAMES.funding, 0, encode_perp(SIM_FUNDING))], 0)],
    }
    rows, dead, counters = run(batches)
    funding = [r for r in rows if isinstance(r, FundingEvent)]
    assert sorted(funding, key=lambda e: e.source) == [
        SIM_FUNDING,
        FundingEvent(
            "binance", "usdm", "BTCUSDT", T, Decimal("0.0001"), "stream", Decimal("100.5")
        ),
    ]
    assert [r for r in rows if isinstance(r, MarkPrice)] == marks
    assert [(d.reason, d.source_topic) for d in dead] == [("undecodable", NAMES.liquidations)]
    assert (counters.records, counters.stored, counters.funding_derived) == (5, 5, 1)
    assert counters.dead_letters == 1
    assert counters.by_topic == {NAMES.marks: 3, NAMES.liquidations: 1, NAMES.funding: 1}


def test_a_restarted_flow_takes_its_funding_state_from_storage() -> None:
    """The stored last mark (before T) and the stored settled times seed the state: the
    crossed funding time is derived once, one already in `funding` not at all."""
    stored = StoredState(
        marks=[
            ("binance", "usdm", "BTCUSDT", T - 400_000, Decimal("100.7"), Decimal("100.6"),
             Decimal("100.65"), Decimal("0.00042"), T),
            ("binance", "usdm", "ETHUSDT", T - 300_000, Decimal("3000"), Decimal("3000.1"),
             Decimal("3000.2"), Decimal("0.0001"), T),
        ],
        settled=[("binance", "usdm", "ETHUSDT", T)],
    )  # fmt: skip
    after = mark(0.6, "0.0001", due=NEXT)
    eth_after = MarkPrice(
        "binance", "usdm", "ETHUSDT", T + S, Decimal("3001"), Decimal("3001"), Decimal("3001"),
        NEXT, T + S, Decimal("0.0001"),
    )  # fmt: skip
    seeds = FundingSeeds(lambda: stored, "tickscan", 3600, clock_us=lambda: T + 2 * S)
    rows, _dead, counters = run(
        {
            NAMES.marks: [
                RecordBatch(
                    0,
                    [
                        rec(NAMES.marks, 0, encode_perp(after)),
                        Record(NAMES.marks, 0, 1, b"binance:usdm:ETHUSDT", encode_perp(eth_after)),
                    ],
                    0,
                )
            ]
        },
        seeds,
    )
    assert [r for r in rows if isinstance(r, FundingEvent)] == [
        FundingEvent(
            "binance", "usdm", "BTCUSDT", T, Decimal("0.00042"), "stream", Decimal("100.7")
        )
    ]
    assert counters.funding_derived == 1
    assert stored.asked[0] == {"db": "tickscan", "since_ms": (T + 2 * S - 3600 * S) // 1000}


def test_partition_state_survives_a_recovery_snapshot_without_its_seeds() -> None:
    import pickle

    state = PartitionFunding(FundingSeeds(lambda: None, "db", 60))
    state.symbols["binance:usdm:BTCUSDT"] = SymbolFunding(mark(-1, "0.0001"), settled_us=T - 1)
    restored = pickle.loads(pickle.dumps(state))
    assert restored.seeds is None
    again = restored.symbol("binance:usdm:BTCUSDT")
    assert (again.last, again.before, again.settled_us) == (mark(-1, "0.0001"),) * 2 + (T - 1,)
