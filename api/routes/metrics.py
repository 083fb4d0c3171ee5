"""`GET /metrics`: Prometheus metrics of live delivery (feed lag and rate, clients, drops)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.live.deps import MetricsDep
from api.live.feed import LiveFeed
from api.live.hub import Hub

router = APIRouter(tags=["metrics"])


class LiveCollector(Collector):
    """Reads the hub's and the feed's counters at scrape time (nothing is counted twice
    on the hot path).

    Args:
        hub: The process's hub.
        feed: Its live feed, if it has one.
    """

    def __init__(self, hub: Hub, feed: LiveFeed | None) -> None:
        self.hub = hub
        self.feed = feed

    def collect(self) -> Iterator[Metric]:
        """The current values."""
        hub, feed, stats = self.hub, self.feed, self.hub.stats
        clients = GaugeMetricFamily(
            "tickscan_live_clients", "Connected live clients, by kind.", labels=["kind"]
        )
        kinds = Counter(client.kind for client in hub.clients)
        for kind in ("sse", "ws"):
            clients.add_metric([kind], kinds[kind])
        yield clients
        counters: list[tuple[str, str, float]] = [
            ("queue_drops", "Updates lost from full client queues (slow clients).", stats.drops),
            ("evictions", "Clients cut off for staying too far behind.", stats.evictions),
            ("board_evaluations", "Evaluations of distinct filters.", stats.evaluations),
            ("board_evaluation_seconds", "Time spent evaluating filters.", stats.evaluation_s),
            ("board_diffs", "Board diffs sent (once per filter).", stats.diffs),
            (
                "board_diff_rows",
                "Rows upserted or removed by board diffs; divided by diffs, the mean size.",
                stats.diff_rows,
            ),
            (
                "board_snapshots",
                "Board snapshots sent (new subscriptions, clients that lost updates).",
                stats.snapshots,
            ),
        ]
        gauges: list[tuple[str, str, float]] = [
            ("board_symbols", "Symbols on the live board.", len(hub.board.rows)),
            (
                "board_last_diff_rows",
                "Rows upserted or removed by the latest board diff.",
                stats.last_diff_rows,
            ),
        ]
        if feed is not None:
            counters.append(
                ("decode_errors", "Live records that did not decode (skipped).", feed.decode_errors)
            )
            gauges += [
                ("feed_up", "1 when the feed follows every live topic.", feed.running),
                (
                    "events_per_second",
                    "Records consumed per second, last 10 s.",
                    feed.events_per_s(),
                ),
            ]
        for name, text, value in counters:
            yield CounterMetricFamily(f"tickscan_live_{name}", text, value=value)
        for name, text, value in gauges:
            yield GaugeMetricFamily(f"tickscan_live_{name}", text, value=value)
        if feed is None:
            return
        events = CounterMetricFamily(
            "tickscan_live_events", "Records consumed from the live topics.", labels=["kind"]
        )
        for kind, count in feed.events_total.items():
            events.add_metric([kind], count)
        yield events
        lag = GaugeMetricFamily(
            "tickscan_live_consumer_lag",
            "Records behind the high watermark, summed over partitions.",
            labels=["topic"],
        )
        for topic, behind in feed.lag.items():
            lag.add_metric([topic], behind)
        yield lag


def live_registry(hub: Hub, feed: LiveFeed | None) -> CollectorRegistry:
    """A registry of this app's own (never the process-global one) with the live metrics.

    Args:
        hub: The process's hub.
        feed: Its live feed, if it has one.
    """
    registry = CollectorRegistry()
    registry.register(LiveCollector(hub, feed))
    return registry


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(registry: MetricsDep) -> Response:
    """Consumer lag, events/s, clients by kind, queue drops, board diff sizes (text format)."""
    body = generate_latest(registry) if registry is not None else b""
    return Response(body, media_type=CONTENT_TYPE_LATEST)
