"""Perpetuals frames in a live ingest: published when they decode, dead-lettered when not."""

from __future__ import annotations

from typing import Any

from flows.ingest.frames import FrameHandler
from flows.ingest.sequence import TradeSequencer
from flows.ingest.status import IngestCounts
from flows.sources.binance.ws import Frame
from flows.sources.files import Rejected
from schemas.perps import Liquidation, MarkPrice

MARK = (
    '{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1562305380000,'
    '"s":"BTCUSDT","p":"11794.15000000","i":"11784.62659091","P":"11784.25641265",'
    '"r":"0.00038167","T":1562306400000}}'
)
FORCE_ORDER = (
    '{"stream":"!forceOrder@arr","data":{"e":"forceOrder","E":1568014460893,"o":{'
    '"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"0.014","p":"9910","ap":"9910",'
    '"X":"FILLED","l":"0.014","z":"0.014","T":1568014460893}}}'
)


class Recorder:
    """Stands in for the trade publisher (dead letters) and the perpetuals publisher."""

    def __init__(self) -> None:
        self.rejected: list[Rejected] = []
        self.marks: list[MarkPrice] = []
        self.liquidations: list[Liquidation] = []

    def reject(self, rejected: Rejected) -> None:
        self.rejected.append(rejected)

    def mark(self, mark: MarkPrice) -> None:
        self.marks.append(mark)

    def liquidation(self, liquidation: Liquidation) -> None:
        self.liquidations.append(liquidation)


def handler(recorder: Recorder, counts: IngestCounts, **perps: Any) -> FrameHandler:
    return FrameHandler(
        "usdm", exchange="binance", sequencer=TradeSequencer(grace_s=1.0),
        gaps=None, publisher=recorder, quotes=None, counts=counts, **perps,
    )  # fmt: skip


def frame(stream: str, raw: str) -> Frame:
    return Frame(stream, raw, 1_700_000_000_000_000, 1)


def test_marks_and_liquidations_are_published_and_bad_ones_dead_lettered() -> None:
    recorder, counts = Recorder(), IngestCounts()
    frames = handler(recorder, counts, perps=recorder)
    frames.handle(frame("btcusdt@markPrice@1s", MARK))
    frames.handle(frame("!forceOrder@arr", FORCE_ORDER))
    frames.handle(frame("btcusdt@markPrice@1s", MARK.replace('"11794.15000000"', '"-3"')))
    frames.handle(frame("!forceOrder@arr", FORCE_ORDER.replace('"S":"SELL"', '"S":"?"')))
    frames.handle(frame("ethusdt@markPrice@1s", "{not json"))
    assert [str(m.mark_price) for m in recorder.marks] == ["11794.15000000"]
    assert recorder.marks[0].received_us == 1_700_000_000_000_000
    assert [liq.side for liq in recorder.liquidations] == ["SELL"]
    assert (counts.marks, counts.liquidations, counts.rejected) == (1, 1, 3)
    assert [(r.source, r.reason) for r in recorder.rejected] == [
        ("ws:btcusdt@markPrice@1s", "invalid_perp"),
        ("ws:!forceOrder@arr", "bad_type"),
        ("ws:ethusdt@markPrice@1s", "bad_json"),
    ]


def test_without_a_perpetuals_publisher_they_are_skipped() -> None:
    recorder, counts = Recorder(), IngestCounts()
    frames = handler(recorder, counts)
    frames.handle(frame("btcusdt@markPrice@1s", MARK))
    frames.handle(frame("!forceOrder@arr", FORCE_ORDER))
    assert recorder.marks == [] and recorder.liquidations == [] and counts.marks == 0
    assert counts.skipped == {"markPrice@1s": 1, "arr": 1}
