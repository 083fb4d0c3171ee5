"""Depth frames in a live ingest: published when they decode, dead-lettered with the reason
when not, skipped without a depth publisher."""

from __future__ import annotations

from types import SimpleNamespace

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


def handler(
    market: Market, counts: IngestCounts, depth: bool
) -> tuple[FrameHandler, list[BookDepth], list[Rejected]]:
    """A frame handler whose dead letters and books (when it has a depth publisher) are
    recorded in the lists it returns."""
    books: list[BookDepth] = []
    rejected: list[Rejected] = []
    recorder = SimpleNamespace(reject=rejected.append, publish=books.append, poll=lambda: None)
    frames = FrameHandler(
        market, exchange="binance", sequencer=TradeSequencer(grace_s=1.0), gaps=None,
        publisher=recorder, quotes=None, counts=counts, depth=recorder if depth else None,
    )  # fmt: skip
    return frames, books, rejected


def frame(stream: str, raw: str) -> Frame:
    return Frame(stream, raw, 1_700_000_000_000_000, 1)


def test_books_are_published_and_bad_ones_dead_lettered() -> None:
    counts = IngestCounts()
    spot, books, rejected = handler("spot", counts, depth=True)
    spot.handle(frame("bnbbtc@depth20@100ms", SPOT))
    crossed = SPOT.replace('"0.0026"', '"0.0023"')
    spot.handle(frame("bnbbtc@depth20@100ms", crossed))
    spot.handle(frame("ethbtc@depth20@100ms", "{not json"))
    usdm, usdm_books, _ = handler("usdm", counts, depth=True)
    usdm.handle(frame("linkusdt@depth20@100ms", USDM))
    assert [(b.market, b.symbol, b.update_id) for b in books + usdm_books] == [
        ("spot", "BNBBTC", 160),
        ("usdm", "LINKUSDT", 510743914224),
    ]
    assert books[0].received_us == 1_700_000_000_000_000
    assert usdm_books[0].time_us == 1_623_494_540_947_000
    assert (counts.depth, counts.rejected) == (2, 2)
    assert [(r.source, r.reason, r.raw) for r in rejected] == [
        ("ws:bnbbtc@depth20@100ms", "bad_book", crossed.encode()),
        ("ws:ethbtc@depth20@100ms", "bad_json", b"{not json"),
    ]


def test_without_a_depth_publisher_books_are_skipped() -> None:
    counts = IngestCounts()
    frames, books, _ = handler("spot", counts, depth=False)
    frames.handle(frame("bnbbtc@depth20@100ms", SPOT))
    assert books == [] and counts.depth == 0
    assert counts.skipped == {"depth20@100ms": 1}
