"""Live delivery end to end: RankRows, candles and signals produced to the real broker reach
SSE and WebSocket clients of the API served by uvicorn on a loopback port, over chDB.

The API runs in a thread of this process (chDB allows one directory per process, so it
shares the session's), on topics with a prefix of this module's own and a database of
its own (the board loads every recent snapshot of its database at start).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Producer
from httpx_sse import ServerSentEvent, connect_sse
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from api.main import create_app
from api.server import Server
from api.store import Store
from runtime.kafka import producer_config
from schemas import topics
from schemas.candles import Candle, encode_candle
from schemas.ranks import RankRow, encode_rank
from schemas.signals import Signal, encode_signal
from tests.integration.live_api import live_api_settings, live_topics
from tests.integration.threaded_server import ThreadedServer
from tickscan.settings import Settings

pytestmark = pytest.mark.integration

NOW = time.time_ns() // 1_000_000
MINUTE = 60_000
M0 = (NOW // MINUTE - 10) * MINUTE
"""A whole minute of the recent past: the candles stream's minute."""
CNDL = {"exchange": "binance", "market": "spot", "symbol": "CNDLUSDT"}
MAX_CLIENTS = 4
DEADLINE_S = 30.0


class Api(ThreadedServer):
    """The app under uvicorn in a thread, its base URLs, and a producer to its topics."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.app = create_app(settings, store=store)
        super().__init__(
            self.app,
            server_class=Server,
            log_config=None,  # uvicorn's records reach the root logger (and caplog)
        )
        assert settings.kafka.bootstrap is not None
        self.producer = Producer(producer_config(settings.kafka.bootstrap))
        self.prefix = settings.api.topic_prefix

    def start(self) -> int:
        port = super().start()
        self.http = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}/api/v1/ws"
        return port

    def produce(self, topic: str, items: list[Any]) -> None:
        for item in items:
            if isinstance(item, RankRow):
                value = encode_rank(item)
            elif isinstance(item, Signal):
                value = encode_signal(item)
            else:
                value = encode_candle(item)
            self.producer.produce(self.prefix + topic, value, item.key.encode())
        self.producer.flush(10)

    def metric(self, name: str) -> float:
        text = httpx.get(self.http + "/metrics").text
        return sum(
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name)
        )


@pytest.fixture(scope="module")
def api(
    kafka_bootstrap: str,
    clickhouse_dsn: str,
    ch: Client,
    database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Api]:
    prefix = live_topics(kafka_bootstrap, 3)
    # The board's start: one symbol known only from ClickHouse's latest snapshot.
    ch.insert(
        f"{database}.rank_snapshots",
        [["binance", "spot", "SNAPUSDT", utc(NOW // MINUTE * MINUTE), 5.0, 1.25]],
        column_names=["exchange", "market", "symbol", "time", "price", "change_pct_5m"],
    )
    # The candles stream's seed: the first 10 seconds of minute M0 in candles_1s.
    seed = [candle(M0 + i * 1000, "100", high="101" if i == 3 else None) for i in range(10)]
    ch.insert(
        f"{database}.candles_1s",
        [
            [
                utc(getattr(c, name)) if name.endswith("_time") else getattr(c, name)
                for name in CANDLE_COLUMNS
            ]
            for c in seed
        ],
        column_names=list(CANDLE_COLUMNS),
    )
    settings = api_settings(
        tmp_path_factory, kafka_bootstrap, clickhouse_dsn, database, prefix, MAX_CLIENTS
    )
    server = Api(settings, Store(ch, database))
    # ...and one only in the ranks topic's recent past (the feed reads it back at start).
    server.produce(topics.RANKS, [rank("BACKUSDT", -5, 0.5)])
    server.start()
    try:
        ready_deadline = time.monotonic() + DEADLINE_S
        while httpx.get(server.http + "/api/v1/health").json()["live"] is not True:
            assert time.monotonic() < ready_deadline, "the live feed did not start"
            time.sleep(0.1)
        # The feed starts candles at their end: wait until it reads what comes next.
        while server.metric('tickscan_live_events_total{kind="candles"}') == 0:
            assert time.monotonic() < ready_deadline, "the feed never read a candle"
            server.produce(topics.CANDLES, [candle(NOW, "1", symbol="WARMUSDT")])
            time.sleep(0.2)
        yield server
    finally:
        server.stop()


def api_settings(
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    clickhouse_dsn: str,
    database: str,
    prefix: str,
    max_clients: int,
) -> Settings:
    return live_api_settings(
        tmp_path_factory.mktemp("live-api"),
        kafka_bootstrap,
        clickhouse_dsn,
        database,
        prefix,
        3,
        max_clients=max_clients,
        heartbeat_s=60.0,
        board_interval_s=0.2,
    )


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def eventually(check: Any, what: str) -> None:
    """Wait until `check()` holds (the server notices a closed client a moment later)."""
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


CANDLE_COLUMNS = tuple(name for name in Candle.__struct_fields__ if name != "interval")


def row(c: Candle) -> list[tuple[str, Any]]:
    return [(name, getattr(c, name)) for name in CANDLE_COLUMNS]


def candle(
    t: int,
    price: str,
    *,
    high: str | None = None,
    symbol: str = "CNDLUSDT",
    interval: str = "1s",
    qty: str = "1",
) -> Candle:
    p, q = Decimal(price), Decimal(qty)
    return Candle(
        "binance",
        "spot",
        symbol,
        interval,
        t,
        t + 999,
        p,
        Decimal(high or price),
        p,
        p,
        q,  # type: ignore[arg-type]
        q * p,
        1,
        q,
        q * p,
        t // 1000,
        t // 1000,
        1,
    )


def rank(symbol: str, second: int, change: float, price: float = 1.0) -> RankRow:
    return RankRow("binance", "spot", symbol, NOW + second * 1000, price, change_pct_5m=change)


@contextmanager
def sse(api: Api, path: str, params: dict[str, str]) -> Iterator[Iterator[ServerSentEvent]]:
    """A stream's events; a read that waits `DEADLINE_S` fails the test (SSE keep-alive
    pings are a minute apart here, so they never hide a stall)."""
    with (
        httpx.Client(base_url=api.http, timeout=DEADLINE_S) as http,
        connect_sse(http, "GET", path, params=params) as source,
    ):
        yield iter(source.iter_sse())


def wait_for_board(api: Api, keys: set[str]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        rows = httpx.get(api.http + "/api/v1/scan", params={"limit": 5000}).json()["rows"]
        if keys <= {f"{r['exchange']}:{r['market']}:{r['symbol']}" for r in rows}:
            return
        assert time.monotonic() < deadline, f"{keys} never reached the board"
        time.sleep(0.1)


def test_sse_ranks_stream_sends_the_snapshot_then_diffs(api: Api) -> None:
    api.produce(topics.RANKS, [rank("AAAUSDT", 0, 1.0), rank("BBBUSDT", 0, 2.0)])
    wait_for_board(api, {"binance:spot:AAAUSDT", "binance:spot:BBBUSDT"})
    params = {"watch": "AAAUSDT,BBBUSDT,SNAPUSDT,BACKUSDT", "sort": "-change_pct_5m"}
    with sse(api, "/api/v1/stream/ranks", params) as stream:
        first = next(stream)
        assert first.event == "snapshot"
        snapshot = first.json()
        # BBB and AAA from the topic, SNAP only from ClickHouse's rank_snapshots, BACK
        # from the topic's records before the API started
        assert snapshot["order"] == [
            "binance:spot:BBBUSDT",
            "binance:spot:SNAPUSDT",
            "binance:spot:AAAUSDT",
            "binance:spot:BACKUSDT",
        ]
        assert snapshot["rows"][1]["change_pct_5m"] == 1.25
        assert first.id == str(snapshot["seq"])
        api.produce(topics.RANKS, [rank("AAAUSDT", 1, 3.0, price=1.5)])
        diff = next(stream)
        assert diff.event == "diff"
        body = diff.json()
        assert body["seq"] == snapshot["seq"] + 1
        assert body["upsert"] == [
            {
                "key": "binance:spot:AAAUSDT",
                "time_ms": NOW + 1000,
                "price": 1.5,
                "change_pct_5m": 3.0,
            }
        ]
        assert body["remove"] == []
        assert body["order"][0] == "binance:spot:AAAUSDT"
        assert api.metric('tickscan_live_clients{kind="sse"}') == 1


def test_websocket_subscribes_changes_filters_and_answers_errors_as_messages(api: Api) -> None:
    api.produce(topics.RANKS, [rank("WSAUSDT", 0, 1.0), rank("WSBUSDT", 0, -1.0)])
    wait_for_board(api, {"binance:spot:WSAUSDT", "binance:spot:WSBUSDT"})
    with connect(api.ws, open_timeout=DEADLINE_S) as ws:

        def ask(message: Any) -> dict[str, Any]:
            ws.send(message if isinstance(message, str) else msgspec.json.encode(message).decode())
            return receive(ws)

        filt = {"watch": ["WSAUSDT", "WSBUSDT"], "sort": "change_pct_5m", "order": "desc"}
        sub = {"op": "subscribe", "channel": "ranks", "id": "b", "filter": filt}
        assert ask(sub) == {"type": "subscribed", "id": "b", "channel": "ranks"}
        snapshot = receive(ws)
        assert (snapshot["type"], snapshot["id"]) == ("snapshot", "b")
        assert snapshot["order"] == ["binance:spot:WSAUSDT", "binance:spot:WSBUSDT"]

        api.produce(topics.RANKS, [rank("WSBUSDT", 1, 5.0)])
        diff = receive(ws)
        assert (diff["type"], diff["id"], diff["seq"]) == ("diff", "b", snapshot["seq"] + 1)
        assert diff["order"] == ["binance:spot:WSBUSDT", "binance:spot:WSAUSDT"]

        assert ask("{oops")["code"] == "bad_json"
        assert ask({"op": "launch"})["code"] == "unknown_op"
        hostile = ask({"op": "filter", "id": "b", "filter": {"watch": ["x'; DROP TABLE t;--"]}})
        assert (hostile["type"], hostile["code"], hostile["id"]) == (
            "error",
            "invalid_request",
            "b",
        )
        unknown = ask(
            {
                "op": "subscribe",
                "channel": "candles",
                "id": "c",
                "exchange": "binance",
                "market": "spot",
                "symbol": "NOSUCHUSDT",
                "interval": "1m",
            }
        )
        assert (unknown["code"], unknown["id"]) == ("unknown_symbol", "c")
        assert ask({"op": "ping"}) == {"type": "pong"}  # the socket is still open

        changed = ask({"op": "filter", "id": "b", "filter": {"watch": ["WSBUSDT"]}})
        assert (changed["type"], changed["order"]) == ("snapshot", ["binance:spot:WSBUSDT"])
        assert ask({"op": "unsubscribe", "id": "b"}) == {"type": "unsubscribed", "id": "b"}


def receive(ws: ClientConnection) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.json.decode(ws.recv(timeout=DEADLINE_S))
    return data


def test_a_burst_of_subscribes_and_pings_loses_no_reply(api: Api) -> None:
    eventually(lambda: not api.app.state.hub.clients, "earlier clients never went away")
    with connect(api.ws, open_timeout=DEADLINE_S, max_queue=None) as ws:
        for i in range(32):
            ws.send(msgspec.json.encode({"op": "subscribe", "channel": "ranks", "id": f"r{i}"}))
        ping = msgspec.json.encode({"op": "ping"}).decode()
        for _ in range(10_000):
            ws.send(ping)
        subscribed: list[str] = []
        pongs = refused = 0
        while len(subscribed) < 32 or pongs + refused < 10_000:
            try:  # a reply lost would leave this waiting: silence ends it
                message = msgspec.json.decode(ws.recv(timeout=10))
            except TimeoutError:
                break
            if message["type"] == "subscribed":
                subscribed.append(message["id"])
            elif message["type"] == "pong":
                pongs += 1
            elif message["type"] == "error":
                assert message["code"] == "rate_limited", message
                refused += message["count"]
        assert subscribed == [f"r{i}" for i in range(32)]
        assert (pongs + refused, bool(refused)) == (10_000, True)
        time.sleep(0.2)  # the rate refills: the socket stays open and is served again
        ws.send(ping)
        assert receive(ws) == {"type": "pong"}


def test_shutdown_closes_websockets_1001_and_ends_sse_streams_with_their_event(
    kafka_bootstrap: str,
    clickhouse_dsn: str,
    ch: Client,
    database: str,
    tmp_path_factory: pytest.TempPathFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    prefix = live_topics(kafka_bootstrap, 3)
    settings = api_settings(tmp_path_factory, kafka_bootstrap, clickhouse_dsn, database, prefix, 8)
    server = Api(settings, Store(ch, database))
    server.start()
    caplog.set_level(logging.INFO)
    with (
        ExitStack() as stack,
        httpx.Client(base_url=server.http, timeout=DEADLINE_S) as http,
    ):
        streams = [
            stack.enter_context(connect_sse(http, "GET", "/api/v1/stream/ranks")).iter_sse()
            for _ in range(3)
        ]
        for events in streams:
            assert next(events).event == "snapshot"
        sockets = [
            stack.enter_context(connect(server.ws, open_timeout=DEADLINE_S)) for _ in range(3)
        ]
        for ws in sockets:
            ws.send(msgspec.json.encode({"op": "subscribe", "channel": "ranks", "id": "b"}))
            assert receive(ws)["type"] == "subscribed" and receive(ws)["type"] == "snapshot"
        stopping = threading.Thread(target=server.stop)
        stopping.start()
        for events in streams:
            rest = list(events)  # the stream ends cleanly: no truncated body
            assert [e.event for e in rest] == ["error"]
            assert rest[0].json()["code"] == "shutdown"
        for ws in sockets:
            with pytest.raises(ConnectionClosed):
                while True:
                    ws.recv(timeout=DEADLINE_S)
            assert (ws.close_code, ws.close_reason) == (1001, "the server is shutting down")
        stopping.join()
    assert not server.thread.is_alive()
    failures = [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.exc_info or r.levelno >= logging.ERROR or "Traceback" in r.getMessage()
    ]
    assert failures == []


def test_a_hostile_filter_or_unknown_symbol_is_a_clear_4xx_before_any_stream(api: Api) -> None:
    with httpx.Client(base_url=api.http, timeout=DEADLINE_S) as http:
        hostile = http.get("/api/v1/stream/ranks", params={"sort": "price; DROP TABLE x"})
        assert hostile.status_code == 422
        assert hostile.headers["content-type"].startswith("application/json")
        assert hostile.json()["error"]["code"] == "invalid_request"
        assert "sort" in hostile.json()["error"]["message"]
        column = http.get("/api/v1/stream/ranks", params={"min_1=1 OR 1=1": "1"})
        assert column.status_code == 422
        unknown = http.get(
            "/api/v1/stream/candles",
            params={"exchange": "binance", "market": "spot", "symbol": "NOSUCHUSDT"},
        )
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "unknown_symbol"
        interval = http.get(
            "/api/v1/stream/candles",
            params={
                "exchange": "binance",
                "market": "spot",
                "symbol": "CNDLUSDT",
                "interval": "7m",
            },
        )
        assert interval.status_code == 422 and "interval" in interval.json()["error"]["message"]
        signals = http.get("/api/v1/stream/signals", params={"symbol": "NOSUCHUSDT"})
        assert signals.status_code == 404
    assert not [c for c in api.app.state.hub.clients if c.subscriptions]  # none was kept


def test_candles_stream_shows_the_forming_candle_then_its_close(api: Api) -> None:
    params = {**CNDL, "interval": "1m"}
    with sse(api, "/api/v1/stream/candles", params) as stream:
        first = next(stream)
        assert first.event == "candle"
        seeded = first.json()  # from candles_1s in ClickHouse: seconds 0..9 of M0
        assert (seeded["open_time"], seeded["closed"]) == (M0, False)
        assert (seeded["open"], seeded["high"], seeded["volume"]) == ("100", "101", "10")
        api.produce(topics.CANDLES, [candle(M0 + 10_000, "102", qty="2")])
        update = next(stream)
        assert update.event == "candle"
        assert (update.json()["close"], update.json()["volume"]) == ("102", "12")
        rest = [candle(M0 + i * 1000, "99" if i == 59 else "100.5") for i in range(11, 60)]
        api.produce(topics.CANDLES, rest)
        while (event := next(stream)).event == "candle":
            pass
        assert event.event == "close"
        closed = event.json()
        assert closed["closed"] is True and closed["open_time"] == M0
        assert closed["close_time"] == M0 + MINUTE - 1
        assert (closed["open"], closed["high"], closed["low"]) == ("100", "102", "99")
        assert (closed["close"], closed["volume"], closed["count"]) == ("99", "61", 60)


def test_signals_stream_delivers_matching_signals(api: Api) -> None:
    api.produce(topics.RANKS, [rank("SIGUSDT", 0, 0.0)])
    wait_for_board(api, {"binance:spot:SIGUSDT"})
    params = {"symbol": "SIGUSDT", "name": "breakout"}
    with sse(api, "/api/v1/stream/signals", params) as stream:
        spike = Signal("binance", "spot", "SIGUSDT", "volume_spike", "1m", M0, "up", 1.0, 4.0)
        breakout = Signal("binance", "spot", "SIGUSDT", "breakout", "5m", M0, "down", 0.9, 0.8)
        api.produce(topics.SIGNALS, [spike, breakout])
        event = next(stream)
        assert event.event == "signal"
        assert (event.json()["name"], event.json()["direction"]) == ("breakout", "down")


def test_clients_beyond_the_limit_get_503_and_close_1013(api: Api) -> None:
    eventually(lambda: not api.app.state.hub.clients, "earlier clients never went away")
    with httpx.Client(base_url=api.http, timeout=DEADLINE_S) as http:
        streams = [
            http.stream("GET", "/api/v1/stream/ranks", params={"watch": "AAAUSDT"})
            for _ in range(MAX_CLIENTS)
        ]
        opened = [s.__enter__() for s in streams]
        try:
            assert all(r.status_code == 200 for r in opened)
            refused = http.get("/api/v1/stream/ranks")
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "too_many_clients"
            with connect(api.ws, open_timeout=DEADLINE_S) as ws, pytest.raises(ConnectionClosed):
                ws.recv(timeout=DEADLINE_S)
            assert ws.close_code == 1013 and "live clients" in (ws.close_reason or "")
        finally:
            for s in streams:
                s.__exit__(None, None, None)
