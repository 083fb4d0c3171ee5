"""What a live ingest asks its process for before it runs (nothing is opened here)."""

from __future__ import annotations

import pytest

from flows.ingest.market import LiveIngest, LiveIngestError
from flows.ingest.settings import IngestSettings
from runtime.settings import KafkaSettings
from tickscan.settings import Settings


def settings(history_h: float, bootstrap: str | None = "127.0.0.1:9092") -> Settings:
    return Settings(
        kafka=KafkaSettings(bootstrap=bootstrap), ingest=IngestSettings(history_h=history_h)
    )


def test_the_topics_asked_for_follow_what_the_ingest_does() -> None:
    plain = LiveIngest(settings(history_h=0), market="spot", trades_topic="t", quotes_topic="q")
    # The depth of the symbols the paper engine watches, and its watch records, always.
    assert plain.topics == ["t", "q", "md.deadletter.v1", "md.depth.v1", "md.depth_watch.v1"]
    assert not plain.fetches_history

    assert not plain.follows_perpetuals

    # USDⓈ-M follows its perpetuals' marks, liquidations and open interest too.
    checking = LiveIngest(settings(history_h=0), market="usdm", crosscheck=True, marks_topic="m")
    assert checking.follows_perpetuals
    assert checking.topics == [
        "md.trades.v1", "md.quotes.v1", "md.deadletter.v1", "md.candles.v1",
        "m", "md.liquidations.v1", "md.open_interest.v1", "md.depth.v1", "md.depth_watch.v1",
    ]  # fmt: skip

    warming = LiveIngest(settings(history_h=24), market="spot", tickers_topic="tk")
    assert warming.fetches_history
    assert warming.topics == [
        "md.trades.v1", "md.quotes.v1", "md.deadletter.v1", "md.candles.v1", "tk",
        "md.depth.v1", "md.depth_watch.v1",
    ]  # fmt: skip


def test_an_ingest_without_a_kafka_cluster_says_so_before_anything_is_opened() -> None:
    live = LiveIngest(settings(history_h=0, bootstrap=None), market="spot")
    with pytest.raises(LiveIngestError, match="needs a Kafka cluster"):
        _ = live.bootstrap
