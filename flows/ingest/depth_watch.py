"""The depth watch sets of one exchange, read live from ``md.depth_watch.v1``.

The paper engine publishes, per (exchange, market), the symbols whose 20-level depth it
needs now (those with open orders): each record is the whole set, repeated every
`schemas.depth.DEPTH_WATCH_EVERY_S`. Whatever publishes depth (the live Binance ingest,
the simulated market) follows the latest record of its markets through a
`DepthWatchFeed` and publishes depth for those symbols only.
"""

from __future__ import annotations

from confluent_kafka import OFFSET_BEGINNING, Consumer

from flows.ingest.topic_feed import TopicFeed
from schemas.depth import DepthWatch, watch_decoder
from schemas.trades import Market


class DepthWatchFeed(TopicFeed[DepthWatch]):
    """The latest watch set of each market of one exchange, from the topic's beginning.

    Partitions are read from their first offset, so a process that starts after the
    engine last published still learns the current set (the latest record read wins; the
    engine repeats it anyway). See `flows.ingest.topic_feed.TopicFeed`.

    Args:
        consumer: A fresh consumer of the cluster (no group, nothing assigned); the feed
            assigns the partitions and closes it.
        topic: The watch topic (``md.depth_watch.v1``).
        partitions: Its partition count.
        exchange: Keep only the records of this exchange (``binance``, ``sim``).
    """

    def __init__(self, consumer: Consumer, topic: str, partitions: int, exchange: str) -> None:
        super().__init__(
            consumer,
            topic,
            partitions,
            f"{exchange}:",
            OFFSET_BEGINNING,
            watch_decoder().decode,
            "watch record",
        )
        self.exchange = exchange

    def poll(self, batch: int = 1_000) -> dict[Market, DepthWatch]:
        """The latest watch record of each market read since the last poll; never waits.

        Returns:
            By market, the last record of this exchange that arrived (markets with no new
            record are absent).
        """
        return {w.market: w for w in self.read(batch) if w.exchange == self.exchange}
