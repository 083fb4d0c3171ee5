"""Live perpetuals streams: only followed symbols' records are decoded and sent, a funding
estimate only when it changes, open interest valued at the last mark."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from api.errors import InvalidRequest, NotFound
from api.live.feed import FeedBatch, LiveFeed, LiveTopics
from flows.sources.kafka import Record
from schemas.perps import (
    FundingEvent,
    Liquidation,
    MarkPrice,
    OpenInterest,
    encode_perp,
)
from tests.unit.api.test_hub import hub, row, take

D = Decimal
T0_US = 1_723_161_300_000_000
KEY = "binance:usdm:BTCUSDT"


def mark(second: int, price: str, rate: str | None, symbol: str = "BTCUSDT") -> MarkPrice:
    t = T0_US + second * 1_000_000
    return MarkPrice(
        "binance", "usdm", symbol, t, D(price), D(price) - 1, D(price),
        T0_US + 8 * 3_600_000_000, t, None if rate is None else D(rate),
    )  # fmt: skip


def oi(second: int, contracts: str, symbol: str = "BTCUSDT") -> OpenInterest:
    return OpenInterest("binance", "usdm", symbol, T0_US + second * 1_000_000, D(contracts), "poll")


def followed() -> tuple[Any, Any]:
    h = hub(queue=64)
    h.board.apply([row("BTCUSDT", market="usdm"), row("ETHUSDT", market="usdm")])
    client = h.connect("ws")
    h.subscribe_perps(client, "p", KEY)
    return h, client


def test_a_funding_estimate_is_sent_only_when_it_changes() -> None:
    h, client = followed()
    h.deliver(FeedBatch(perps=[mark(0, "100", "0.0001"), mark(1, "101", "0.0001")]))
    h.deliver(FeedBatch(perps=[mark(2, "102", "0.0002"), mark(1, "99", "0.0003")]))  # 1: older
    sent = take(client)
    assert [(kind, body["funding_rate"], body["time_ms"]) for kind, body in sent] == [
        ("funding", "0.0001", T0_US // 1000),
        ("funding", "0.0002", T0_US // 1000 + 2000),
    ]
    assert sent[0][1]["next_funding_time_ms"] == T0_US // 1000 + 8 * 3_600_000
    assert sent[0][1]["settled"] is False


def test_a_new_follower_gets_the_latest_estimate_first() -> None:
    h, _ = followed()
    h.deliver(FeedBatch(perps=[mark(0, "100", "0.0001")]))
    second = h.connect("ws")
    h.subscribe_perps(second, "q", KEY)
    assert [(kind, body["funding_rate"]) for kind, body in take(second)] == [("funding", "0.0001")]


def test_open_interest_is_valued_at_the_last_mark_and_others_symbols_are_not_sent() -> None:
    h, client = followed()
    h.deliver(FeedBatch(perps=[oi(0, "10")]))  # no mark yet: no value
    h.deliver(FeedBatch(perps=[mark(1, "100.5", None), oi(2, "10"), oi(2, "99", "ETHUSDT")]))
    h.deliver(
        FeedBatch(
            perps=[
                FundingEvent("binance", "usdm", "BTCUSDT", T0_US, D("0.0001"), "stream"),
                Liquidation(
                    "binance",
                    "usdm",
                    "BTCUSDT",
                    T0_US,
                    "BUY",
                    D("99"),
                    D("100"),
                    D("2"),
                    D("1.5"),
                    D("1.5"),
                    "FILLED",
                    "LIMIT",
                    "IOC",
                    T0_US,
                    T0_US,
                ),
            ]
        )
    )
    sent = take(client)
    assert [kind for kind, _ in sent] == [
        "open_interest", "funding", "open_interest", "funding", "liquidation"
    ]  # fmt: skip
    assert sent[0][1]["open_interest_value"] is None
    assert (sent[2][1]["open_interest"], sent[2][1]["open_interest_value"]) == ("10", "1005.0")
    assert (sent[3][1]["settled"], sent[3][1]["source"]) == (True, "stream")
    assert (sent[4][1]["side"], sent[4][1]["quote_volume"]) == ("BUY", "150.0")


def test_the_feed_is_told_which_keys_to_decode_and_forgets_unfollowed_ones() -> None:
    h, client = followed()
    assert h.perps.keys == {KEY.encode()}
    other = h.connect("ws")
    h.subscribe_perps(other, "p", KEY)
    h.unsubscribe(client, "p")
    assert h.perps.keys == {KEY.encode()}  # still followed by the other
    h.disconnect(other)
    assert h.perps.keys == frozenset()


@pytest.mark.parametrize(
    ("key", "error"),
    [("binance:spot:BTCUSDT", InvalidRequest), ("binance:usdm:NOPEUSDT", NotFound)],
)
def test_a_spot_or_unknown_symbol_is_refused_and_leaves_no_subscription(
    key: str, error: type[Exception]
) -> None:
    h, _ = followed()
    client = h.connect("ws")
    with pytest.raises(error):
        h.subscribe_perps(client, "p", key)
    assert client.subscriptions == {}
    assert h.perps.keys == {KEY.encode()}


class _Fetched(Record):
    """A fetched record that answers `error()` as a confluent-kafka Message does."""

    def error(self) -> None:
        return None


def _record(topic: str, key: str, value: bytes) -> _Fetched:
    return _Fetched(topic, 0, 0, key.encode(), value)


def test_the_feed_decodes_only_the_followed_perpetuals_records() -> None:
    topics = LiveTopics.with_prefix("t-")
    feed = LiveFeed(
        "unused:9092", topics, lambda batch: None, perp_keys=lambda: frozenset({KEY.encode()})
    )
    followed_mark = mark(0, "100", "0.0001")
    batch = feed._decode(
        [
            _record(topics.marks, KEY, encode_perp(followed_mark)),
            _record(topics.marks, "binance:usdm:ETHUSDT", b"not even JSON"),
            _record(topics.open_interest, KEY, encode_perp(oi(1, "10"))),
        ]
    )
    assert batch.perps == [followed_mark, oi(1, "10")]
    assert feed.decode_errors == 0
