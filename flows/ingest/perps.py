"""Publishing perpetuals data: mark prices, liquidations and open interest, keyed like trades.

`PerpPublisher` is one producer for the three topics (md.marks.v1, md.liquidations.v1,
md.open_interest.v1). A mark price is superseded the next second and an open-interest
sample the next poll; a liquidation is itself a sample (Binance pushes at most one per
symbol per second), so like quotes a failed delivery is counted and logged, never retried
(`flows.ingest.quotes.SamplePublisher`).
"""

from __future__ import annotations

from flows.ingest.quotes import SamplePublisher
from schemas import topics
from schemas.perps import Liquidation, MarkPrice, OpenInterest, encode_perp


class PerpPublisher(SamplePublisher):
    """Publishes mark prices, liquidations and open-interest samples.

    Args:
        bootstrap: Kafka bootstrap servers.
        marks_topic: Topic of the mark prices.
        liquidations_topic: Topic of the liquidations.
        open_interest_topic: Topic of the open-interest samples.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        marks_topic: str = topics.MARKS,
        liquidations_topic: str = topics.LIQUIDATIONS,
        open_interest_topic: str = topics.OPEN_INTEREST,
    ) -> None:
        super().__init__(bootstrap, "perpetuals record")
        self.marks_topic = marks_topic
        self.liquidations_topic = liquidations_topic
        self.open_interest_topic = open_interest_topic

    def mark(self, mark: MarkPrice) -> None:
        """Queue one mark price."""
        self.produce(self.marks_topic, encode_perp(mark), mark.key)

    def liquidation(self, liquidation: Liquidation) -> None:
        """Queue one liquidation."""
        self.produce(self.liquidations_topic, encode_perp(liquidation), liquidation.key)

    def open_interest(self, sample: OpenInterest) -> None:
        """Queue one open-interest sample."""
        self.produce(self.open_interest_topic, encode_perp(sample), sample.key)
