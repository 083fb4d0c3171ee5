"""Depth frames in a live ingest: published when they decode, dead-lettered with the reason
when not, skipped without a depth publisher."""

from __future__ import annotations

from flows.ingest.frames import FrameHandler
from flows.ingest.sequence import TradeSequencer
from flows.ingest.status import IngestCounts
from flows.sources.binance.ws import Frame
from flows.sources.files import Rejected
from schemas.depth import BookDepth
from schemas.trades import Market

SPOT = (
    '{"stream":"bnbbtc@depth20@100ms","data":{"lastUpdateId":160,'
    '"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}}'
)
USDM = (
    '{"stream":"linkusdt@depth20@100ms","data":{"e":"depthUpdate","E":1623494540955,'
    '"T":1623494540947,"s":"LINKUSDT","U":510743911258,"u":510743914224,'
    '"pu":510743910356,"b":[["21.030","12.37"],["21.029","448.68"]],'
    '"a":[["21.031","4.66"],["21.034","20.68"]]}}'
)


class Recorder:
    """Stands in for the trade publisher (dead letters) and the depth publisher."""

    def __init__(self) -> None:
        self.rejected: list[Rejected] = []
        self.books: list[BookDepth] = []

    def reject(self, rejected: Rejected) -> None:
        self.rejected.append(rejected)

    def publish(self, depth: BookDepth) -> None:
        self.books.append(depth)

    def poll(self) -> None:
        pass


def handler(market: Market, recorder: Recorder, counts: IngestCounts, depth: bool) -> FrameHandler:
    return FrameHandler(
        market, exchange="binance", sequencer=TradeSequencer(grace_s=1.0), gaps=None,
        publisher=recorder, quotes=None, counts=counts,
        depth=recorder if depth else None,
    )  # fmt: skip


def frame(stream: str, raw: str) -> Frame:
    return Frame(stream, raw, 1_700_000_000_000_000, 1)


def test_books_are_published_and_bad_ones_dead_lettered() -> None:
    recorder, counts = Recorder(), IngestCounts()
    spot = handler("spot", recorder, counts, depth=True)
    spot.handle(frame("bnbbtc@depth20@100ms", SPOT))
    crossed = SPOT.replace('"0.0026"', '"0.0023"')
    spot.handle(frame("bnbbtc@depth20@100ms", crossed))
    spot.handle(frame("ethbtc@depth20@100ms", "{not json"))
    handler("usdm", recorder, counts, depth=True).handle(frame("linkusdt@depth20@100ms", USDM))
    assert [(b.market, b.symbol, b.update_id) for b in recorder.books] == [
        ("spot", "BNBBTC", 160),
        ("usdm", "LINKUSDT", 510743914224),
    ]
    assert recorder.books[0].received_us == 1_700_000_000_000_000
    assert (counts.depth, counts.rejected) == (2, 2)
    assert [(r.source, r.reason, r.raw) for r in recorder.rejected] == [
        ("ws:bnbbtc@depth20@100ms", "bad_book", crossed.encode()),
        ("ws:ethbtc@depth20@100ms", "bad_json", b"{not json"),
    ]


def test_without_a_depth_publisher_books_are_skipped() -> None:
    recorder, counts = Recorder(), IngestCounts()
    handler("spot", recorder, counts, depth=False).handle(frame("bnbbtc@depth20@100ms", SPOT))
    assert recorder.books == [] and counts.depth == 0
    assert counts.skipped == {"depth20@100ms": 1}
