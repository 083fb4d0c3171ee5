"""The shared USDⓈ-M capture as the paper engine's market: trades, quotes and a 20-level book.

The capture (``binance-um-btcusdt-20240808``, see its README) holds BTCUSDT trades,
``bookTicker`` updates, ``depth@0ms`` diffs and a REST depth snapshot, in receive order.
The book is rebuilt the way Binance documents for USDⓈ-M: from the snapshot
(``lastUpdateId``), drop diffs with ``u`` < lastUpdateId, apply the first with
``U`` <= lastUpdateId <= ``u``, then each whose ``pu`` is the previous ``u``. Its 20 best
levels are published as a `BookDepth` every 100 ms of exchange time, like
``<symbol>@depth20@100ms``.
"""

from __future__ import annotations

import gzip
import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import msgspec

from schemas.depth import BookDepth
from schemas.quotes import Quote
from schemas.trades import Trade
from tests.shared_data import SHARED_DATA

CAPTURE = SHARED_DATA / "binance-um-btcusdt-20240808" / "hftbacktest_usdm_btcusdt_20240808.gz"
EXCHANGE, MARKET, SYMBOL = "binance", "usdm", "BTCUSDT"
DEPTH_EVERY_US = 100_000

MarketRecord = Trade | Quote | BookDepth


@dataclass
class Book:
    """One side-by-side order book: price → quantity per side."""

    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    last_u: int = 0

    def apply(self, bids: list[list[str]], asks: list[list[str]]) -> None:
        """Set levels (a quantity of 0 removes one)."""
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, qty in levels:
                p, q = Decimal(price), Decimal(qty)
                if q:
                    side[p] = q
                else:
                    side.pop(p, None)

    def top(
        self, n: int = 20
    ) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """The `n` best bids (highest first) and asks (lowest first)."""
        return heapq.nlargest(n, self.bids.items()), heapq.nsmallest(n, self.asks.items())


def _depth(book: Book, time_us: int, received_us: int) -> BookDepth:
    bids, asks = book.top()
    return BookDepth(EXCHANGE, MARKET, SYMBOL, book.last_u, bids, asks, received_us, time_us)  # type: ignore[arg-type]


def read_market(path: Path = CAPTURE) -> Iterator[MarketRecord]:
    """The capture's trades, quotes and 20-level depth, in receive order.

    Depth starts once the book is synced to the snapshot; a depth record goes out when a
    diff's exchange time (``T``) reaches 100 ms past the previous one.
    """
    decode = msgspec.json.decode
    book = Book()
    snapshot_id: int | None = None
    pending: list[dict] = []
    synced = False
    next_depth_us = 0
    with gzip.open(path, "rb") as f:
        for line in f:
            received_ns, _, raw = line.partition(b" ")
            received_us = int(received_ns) // 1000
            message = decode(raw)
            stream = message.get("stream")
            if stream is None:  # a REST snapshot
                if snapshot_id is None:
                    book.apply(message["bids"], message["asks"])
                    snapshot_id = book.last_u = message["lastUpdateId"]
                continue
            data = message["data"]
            if stream.endswith("@trade"):
                if data.get("X", "MARKET") != "MARKET":
                    continue
                yield Trade(
                    EXCHANGE, MARKET, SYMBOL, data["t"], Decimal(data["p"]), Decimal(data["q"]),
                    data["T"] * 1000, data["m"],
                )  # fmt: skip
            elif stream.endswith("@bookTicker"):
                yield Quote(
                    EXCHANGE, MARKET, SYMBOL, data["u"], Decimal(data["b"]), Decimal(data["B"]),
                    Decimal(data["a"]), Decimal(data["A"]), received_us, data["T"] * 1000,
                )  # fmt: skip
            elif "@depth" in stream:
                if snapshot_id is None:
                    pending.append(data)
                    continue
                diffs = [*pending, data]
                pending = []
                for diff in diffs:
                    if not synced:
                        if diff["u"] < snapshot_id:
                            continue
                        if not diff["U"] <= snapshot_id <= diff["u"]:
                            raise ValueError(f"the capture's diffs miss {snapshot_id}")
                        synced = True
                    elif diff["pu"] != book.last_u:
                        raise ValueError(f"diff gap: pu {diff['pu']} after u {book.last_u}")
                    book.apply(diff["b"], diff["a"])
                    book.last_u = diff["u"]
                    time_us = diff["T"] * 1000
                    if time_us >= next_depth_us:
                        next_depth_us = time_us + DEPTH_EVERY_US
                        yield _depth(book, time_us, received_us)
