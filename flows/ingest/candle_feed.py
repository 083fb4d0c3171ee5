"""Our 1m candles of one exchange and market, read live from md.candles.v1 for the cross-check."""

from __future__ import annotations

from confluent_kafka import OFFSET_END, Consumer

from flows.ingest.topic_feed import TopicFeed
from schemas.candles import Candle, candle_decoder

_ONE_MINUTE = b'"interval":"1m"'


class CandleFeed(TopicFeed[Candle]):
    """Our 1m candles of one exchange and market from the candle topic, from its end.

    Partitions are assigned at their end offset: what was published before is of minutes
    ingest was not following (`flows.ingest.topic_feed.TopicFeed`).

    Args:
        consumer: A consumer of the cluster, fresh (no group, nothing assigned); the
            feed assigns the partitions and closes it.
        topic: The candle topic (md.candles.v1).
        partitions: Its partition count.
        exchange: Keep only candles of this exchange ...
        market: ... and market.
    """

    def __init__(
        self, consumer: Consumer, topic: str, partitions: int, exchange: str, market: str
    ) -> None:
        super().__init__(
            consumer,
            topic,
            partitions,
            f"{exchange}:{market}:",
            OFFSET_END,
            candle_decoder().decode,
            "candle",
        )

    def poll(self, batch: int = 10_000) -> list[Candle]:
        """Every 1m candle of ours that has arrived since the last poll; never waits."""
        # The topic carries every market's 1s candles too: skip them undecoded.
        return self.read(batch, lambda value: _ONE_MINUTE in value)
