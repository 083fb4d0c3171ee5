"""Publishing perpetuals data: mark prices, liquidations, open interest (and the simulated
market's funding events), keyed like trades.

`PerpPublisher` is one producer for the four topics (md.marks.v1, md.liquidations.v1,
md.open_interest.v1, md.funding.v1). A mark price is superseded the next second and an
open-interest sample the next poll; a liquidation is itself a sample (Binance pushes at most one per
symbol per second), so like quotes a failed delivery is counted and logged, never retried
(`flows.ingest.quotes.SamplePublisher`).
"""

from __future__ import annotations

from flows.ingest.quotes import SamplePublisher
from schemas.perps import FundingEvent, Liquidation, MarkPrice, OpenInterest, encode_perp
from schemas.topics import PerpTopics


class PerpPublisher(SamplePublisher):
    """Publishes mark prices, liquidations, open-interest samples and funding events, each
    kind to its topic.

    Args:
        bootstrap: Kafka bootstrap servers.
        to: The topics (default: ``md.marks.v1``, ``md.liquidations.v1``,
            ``md.open_interest.v1``, ``md.funding.v1``).
    """

    def __init__(self, bootstrap: str, to: PerpTopics | None = None) -> None:
        super().__init__(bootstrap, "perpetuals record")
        self.to = to or PerpTopics()

    def mark(self, mark: MarkPrice) -> None:
        """Queue one mark price."""
        self.produce(self.to.marks, encode_perp(mark), mark.key)

    def liquidation(self, liquidation: Liquidation) -> None:
        """Queue one liquidation."""
        self.produce(self.to.liquidations, encode_perp(liquidation), liquidation.key)

    def open_interest(self, sample: OpenInterest) -> None:
        """Queue one open-interest sample."""
        self.produce(self.to.open_interest, encode_perp(sample), sample.key)

    def funding(self, event: FundingEvent) -> None:
        """Queue one funding event."""
        self.produce(self.to.funding, encode_perp(event), event.key)
