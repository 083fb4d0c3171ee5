"""A perpetual's open interest, funding and liquidations through the whole API, on chDB and
the real broker: history written by the store's `PerpWriter` and read back per bar, bad
input and sign-in refused in the error shape, and records produced to the perpetuals'
topics pushed to a WebSocket that follows the symbol (and only those of that symbol).

The API runs with billing on, as in production: anonymous callers read the history, a
bad token is a 401 rather than a silent fall to the free tier.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from httpx_sse import connect_sse
from websockets.sync.client import connect

from flows.sinks.perps import PerpRecord, PerpWriter
from runtime.kafka import ensure_topics
from schemas import topics
from schemas.perps import (
    FundingEvent,
    Liquidation,
    MarkKline,
    MarkPrice,
    OpenInterest,
    encode_perp,
)
from schemas.ranks import RankRow
from tests.integration.test_api_live import DEADLINE_S, Api, eventually
from tests.integration.test_entitlements import billed  # noqa: F401  (its fixture, reused)

pytestmark = pytest.mark.integration

SECOND, MINUTE = 1_000, 60_000
# Yesterday's midnight (UTC): marks_1s drops rows past its TTL (30 days).
T0 = int(
    (datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1))
    .timestamp()
) * 1000  # fmt: skip
EIGHT_H = 8 * 3_600_000
D = Decimal
SYMBOL = "PERPUSDT"
REF = {"exchange": "binance", "market": "usdm", "symbol": SYMBOL}


def mark(at_ms: int, price: str, rate: str | None, symbol: str = SYMBOL) -> MarkPrice:
    return MarkPrice(
        "binance", "usdm", symbol, at_ms * 1000, D(price), D(price) - 1, D(price),
        (T0 + EIGHT_H) * 1000, at_ms * 1000 + 5000, None if rate is None else D(rate),
    )  # fmt: skip


def oi(at_ms: int, contracts: str, value: str | None = None, symbol: str = SYMBOL) -> OpenInterest:
    if value is None:
        return OpenInterest("binance", "usdm", symbol, at_ms * 1000, D(contracts), "poll")
    return OpenInterest("binance", "usdm", symbol, at_ms * 1000, D(contracts), "history", D(value))


def liquidation(at_ms: int, side: str, qty: str, avg: str, symbol: str = SYMBOL) -> Liquidation:
    return Liquidation(
        "binance", "usdm", symbol, at_ms * 1000, side, D(avg) - 1, D(avg),  # type: ignore[arg-type]
        D(qty), D(qty), D(qty), "FILLED", "LIMIT", "IOC", at_ms * 1000, at_ms * 1000 + 1000,
    )  # fmt: skip


HISTORY: list[PerpRecord] = [
    mark(T0 + 10 * SECOND, "100.5", "0.0001"),
    mark(T0 + 70 * SECOND, "101", "0.00012"),
    mark(T0 + 75 * SECOND, "101", "0.00015"),  # the same bar, later: the bar's estimate
    oi(T0 + 5 * SECOND, "1000"),
    oi(T0 + 30 * SECOND, "1100"),  # the last sample of bar T0, valued at its mark 100.5
    oi(T0 + 65 * SECOND, "1200", "121200.5"),  # the exchange's own value stands
    oi(T0 + 130 * SECOND, "1300"),  # a bar without a mark: no value
    FundingEvent("binance", "usdm", SYMBOL, T0 * 1000, D("0.00009"), "stream"),
    FundingEvent("binance", "usdm", SYMBOL, T0 * 1000, D("0.00011"), "exchange", D("100.2")),
    liquidation(T0 + 20 * SECOND, "SELL", "2", "100"),
    liquidation(T0 + 80 * SECOND, "BUY", "0.5", "101"),
    # The exchange's mark klines: the minute before the stream's, and one the stream has.
    MarkKline(
        "binance", "usdm", SYMBOL, T0 - MINUTE, D("99"), D("100"), D("98.5"), D("99.5"), T0 - 1
    ),
    MarkKline("binance", "usdm", SYMBOL, T0, D("90"), D("91"), D("89"), D("90"), T0 + MINUTE - 1),
]


@pytest.fixture(scope="module")
def api(
    request: pytest.FixtureRequest, ch: Client, database: str, kafka_bootstrap: str
) -> tuple[Api, dict[str, dict[str, str]]]:
    """The billed API of the entitlements tests (`billed`, a paying and a free user), with
    this module's history and the perpetuals' topics (the feed takes them up once they
    exist)."""
    served: tuple[Api, dict[str, dict[str, str]]] = request.getfixturevalue("billed")
    writer = PerpWriter(lambda: ch, database)
    writer.add(HISTORY)
    writer.flush()
    server, _ = served
    perp_topics = (topics.MARKS, topics.OPEN_INTEREST, topics.FUNDING, topics.LIQUIDATIONS)
    ensure_topics(kafka_bootstrap, [server.prefix + t for t in perp_topics], 3)
    return served


def get(api: Api, what: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    response = httpx.get(
        f"{api.http}/api/v1/perps/{what}", params={**REF, **params}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_open_interest_is_the_last_sample_of_each_bar_valued_at_its_mark(
    api: tuple[Api, Any],
) -> None:
    server, _ = api
    series = get(server, "open_interest", start=T0 - MINUTE)
    assert (series["exchange"], series["market"], series["interval"], series["more"]) == (
        "binance",
        "usdm",
        "1m",
        False,
    )
    assert series["points"] == [
        {
            "time_ms": T0,
            "sample_ms": T0 + 30 * SECOND,
            "open_interest": "1100",
            "open_interest_value": "110550",  # 1100 x 100.5
        },
        {
            "time_ms": T0 + MINUTE,
            "sample_ms": T0 + 65 * SECOND,
            "open_interest": "1200",
            "open_interest_value": "121200.5",
        },
        {
            "time_ms": T0 + 2 * MINUTE,
            "sample_ms": T0 + 130 * SECOND,
            "open_interest": "1300",
            "open_interest_value": None,
        },
    ]
    # One 5m bar: its last sample, at the bar's last mark (101).
    (five,) = get(server, "open_interest", interval="5m")["points"]
    assert (five["time_ms"], five["open_interest"], five["open_interest_value"]) == (
        T0,
        "1300",
        "131300",
    )


def test_the_range_and_the_limit_keep_the_latest_points(api: tuple[Api, Any]) -> None:
    server, _ = api
    latest = get(server, "open_interest", limit=1)
    assert [p["time_ms"] for p in latest["points"]] == [T0 + 2 * MINUTE]
    assert latest["more"] is True
    before = get(server, "open_interest", end=T0 + MINUTE)
    assert [p["time_ms"] for p in before["points"]] == [T0]
    after = get(server, "open_interest", start=datetime.fromtimestamp((T0 + MINUTE) / 1000, UTC)
                .isoformat().replace("+00:00", "Z"))  # fmt: skip
    assert [p["time_ms"] for p in after["points"]] == [T0 + MINUTE, T0 + 2 * MINUTE]
    assert get(server, "open_interest", start=T0 + 10 * MINUTE)["points"] == []


def test_funding_has_the_settled_rate_the_estimate_per_bar_and_the_current_one(
    api: tuple[Api, Any],
) -> None:
    server, _ = api
    series = get(server, "funding", start=T0 - EIGHT_H)
    # The exchange's rate replaced the stream's estimate of the same funding time.
    assert series["settled"] == [
        {"funding_time_ms": T0, "funding_rate": "0.00011", "mark_price": "100.2",
         "source": "exchange"},
    ]  # fmt: skip
    assert series["estimates"] == [
        {"time_ms": T0, "funding_rate": "0.0001"},
        {"time_ms": T0 + MINUTE, "funding_rate": "0.00015"},
    ]
    assert series["current"] == {
        "time_ms": T0 + 75 * SECOND,
        "mark_price": "101",
        "index_price": "100",
        "funding_rate": "0.00015",
        "next_funding_time_ms": T0 + EIGHT_H,
    }
    earlier = get(server, "funding", end=T0 + MINUTE)
    assert earlier["current"]["time_ms"] == T0 + 10 * SECOND
    assert [e["funding_rate"] for e in earlier["estimates"]] == ["0.0001"]


def test_liquidations_come_with_side_and_quote_volume_and_the_undercount_note(
    api: tuple[Api, Any],
) -> None:
    server, _ = api
    series = get(server, "liquidations")
    assert series["liquidations"] == [
        {"time_ms": T0 + 20 * SECOND, "side": "SELL", "price": "99", "avg_price": "100",
         "filled_qty": "2", "quote_volume": "200"},
        {"time_ms": T0 + 80 * SECOND, "side": "BUY", "price": "100", "avg_price": "101",
         "filled_qty": "0.5", "quote_volume": "50.5"},
    ]  # fmt: skip
    assert "undercount" in series["note"]
    assert [x["side"] for x in get(server, "liquidations", start=T0 + MINUTE)["liquidations"]] == [
        "BUY"
    ]


def test_the_mark_price_per_bar_comes_from_the_stream_else_the_exchanges_klines(
    api: tuple[Api, Any],
) -> None:
    server, _ = api
    bars = get(server, "marks")["bars"]
    assert bars == [
        {"time_ms": T0 - MINUTE, "open": "99", "high": "100", "low": "98.5", "close": "99.5",
         "source": "klines"},
        {"time_ms": T0, "open": "100.5", "high": "100.5", "low": "100.5", "close": "100.5",
         "source": "marks"},
        {"time_ms": T0 + MINUTE, "open": "101", "high": "101", "low": "101", "close": "101",
         "source": "marks"},
    ]  # fmt: skip
    five = get(server, "marks", interval="5m")["bars"]
    assert [(b["time_ms"], b["open"], b["high"], b["close"], b["source"]) for b in five] == [
        (T0 - 5 * MINUTE, "99", "100", "99.5", "klines"),
        (T0, "100.5", "101", "101", "marks"),
    ]
    # 1s bars are the stream's seconds only: no kline is that short.
    seconds = get(server, "marks", interval="1s", start=T0 - MINUTE)["bars"]
    assert [b["time_ms"] for b in seconds] == [T0 + 10 * SECOND, T0 + 70 * SECOND, T0 + 75 * SECOND]


@pytest.mark.parametrize(
    ("params", "status", "code", "says"),
    [
        ({"symbol": "NOPEUSDT"}, 404, "not_found", "NOPEUSDT"),
        ({"market": "spot"}, 422, "invalid_request", "only usdm"),
        ({"interval": "7m"}, 422, "invalid_request", "interval"),
        ({"start": T0, "end": T0}, 422, "invalid_request", "must be before"),
        ({"limit": 0}, 422, "invalid_request", "limit"),
        ({"start": "yesterday"}, 422, "invalid_request", "not a time"),
        ({"symbol": "BAD SYMBOL"}, 422, "invalid_request", "not a symbol"),
    ],
)
@pytest.mark.parametrize("what", ["open_interest", "funding", "liquidations", "marks"])
def test_bad_input_is_a_clear_4xx_in_the_error_shape(
    api: tuple[Api, Any], what: str, params: dict[str, Any], status: int, code: str, says: str
) -> None:
    server, _ = api
    response = httpx.get(f"{server.http}/api/v1/perps/{what}", params={**REF, **params})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert says in error["message"]


@pytest.mark.parametrize("what", ["open_interest", "funding", "liquidations", "marks"])
def test_history_is_read_anonymously_or_signed_in_and_a_bad_token_is_a_401(
    api: tuple[Api, Any], what: str
) -> None:
    server, users = api
    anonymous = get(server, what)
    assert get(server, what, headers=users["free"]) == anonymous
    assert get(server, what, headers=users["paid"]) == anonymous
    refused = httpx.get(
        f"{server.http}/api/v1/perps/{what}",
        params=REF,
        headers={"Authorization": "Bearer not-a-token"},
    )
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"


def test_a_followed_perpetuals_records_are_pushed_live(api: tuple[Api, Any]) -> None:
    server, users = api
    now = time.time_ns() // 1_000_000
    # A symbol the hub knows: on the live board (a paying user's: the free one lags).
    server.produce(topics.RANKS, [RankRow("binance", "usdm", SYMBOL, now, 1.0)])
    board = server.http + "/api/v1/scan"

    def listed() -> bool:
        rows = httpx.get(board, params={"watch": SYMBOL}, headers=users["paid"]).json()["rows"]
        return bool(rows)

    eventually(listed, f"{SYMBOL} never reached the board")

    def produce(topic: str, records: list[Any]) -> None:
        for record in records:
            server.producer.produce(server.prefix + topic, encode_perp(record), record.key.encode())
        server.producer.flush(10)

    with connect(server.ws, open_timeout=DEADLINE_S) as ws:
        ws.send(json.dumps({"op": "subscribe", "channel": "perps", "id": "p", **REF}))
        reply = json.loads(ws.recv(timeout=DEADLINE_S))
        assert reply["type"] == "subscribed", reply
        ws.send(json.dumps({"op": "subscribe", "channel": "perps", "id": "x", **REF,
                            "market": "spot"}))  # fmt: skip
        refused = json.loads(ws.recv(timeout=DEADLINE_S))
        assert (refused["type"], refused["id"]) == ("error", "x")
        # The feed follows the perpetuals' topics from their end: produce until it reads one.
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + DEADLINE_S
        while not got:
            assert time.monotonic() < deadline, "no perpetuals record reached the socket"
            produce(topics.MARKS, [mark(now, "102", "0.0002")])
            try:
                got.append(json.loads(ws.recv(timeout=0.5)))
            except TimeoutError:
                continue
        assert got[0]["type"] == "funding"
        # Topics are read side by side, in no order between them: each step waits for its
        # message before the next depends on it.
        produce(topics.MARKS, [mark(now + 1000, "102.5", "0.00021")])
        while json.loads(ws.recv(timeout=DEADLINE_S)).get("funding_rate") != "0.00021":
            pass
        produce(topics.MARKS, [mark(now + 1500, "102.5", "0.00021")])  # same estimate: nothing
        produce(topics.OPEN_INTEREST, [oi(now, "900", symbol="OTHERUSDT"), oi(now, "1500")])
        produce(topics.LIQUIDATIONS, [liquidation(now, "SELL", "3", "102")])
        produce(topics.FUNDING, [FundingEvent("binance", "usdm", SYMBOL, now * 1000,
                                              D("0.0002"), "stream", D("102.4"))])  # fmt: skip
        messages = [json.loads(ws.recv(timeout=DEADLINE_S)) for _ in range(3)]
        produce(topics.MARKS, [mark(now + 2000, "103", "0.00025")])  # after the sample's value
        messages.append(json.loads(ws.recv(timeout=DEADLINE_S)))
        # A reader that comes now (over SSE) starts with the latest estimate.
        with (
            httpx.Client(base_url=server.http, timeout=DEADLINE_S) as http,
            connect_sse(http, "GET", "/api/v1/stream/perps", params=REF) as source,
        ):
            first = next(iter(source.iter_sse()))
        assert (first.event, first.json()["funding_rate"]) == ("funding", "0.00025")
        with pytest.raises(TimeoutError):  # nothing else: OTHERUSDT's sample is not followed
            ws.recv(timeout=1.0)
    messages.sort(key=lambda m: (m["type"], m.get("settled", False)))
    assert messages == [
        {"type": "funding", "id": "p", "settled": False, "time_ms": now + 2000,
         "funding_rate": "0.00025", "next_funding_time_ms": T0 + EIGHT_H, "mark_price": "103",
         "index_price": "102"},
        {"type": "funding", "id": "p", "settled": True, "time_ms": now, "funding_rate": "0.0002",
         "mark_price": "102.4", "source": "stream"},
        {"type": "liquidation", "id": "p", "time_ms": now, "side": "SELL", "price": "101",
         "avg_price": "102", "filled_qty": "3", "quote_volume": "306"},
        {"type": "open_interest", "id": "p", "time_ms": now, "open_interest": "1500",
         "open_interest_value": "153750.0"},  # at the last mark, 102.5
    ]  # fmt: skip
