"""The API's paper trading plumbing on the real broker: commands produced to
``tr.orders.v1`` keyed by account, answers found on ``tr.events.v1`` by command id, views
read from ``tr.accounts.v1`` (also the ones published before the API started), and the
`trading` channel over a real WebSocket and SSE stream.

The engine here is a scripted stand-in (`tests.unit.api.paper_engine.FakeEngine`) that
reads the orders topic and answers on the events and accounts topics, so what is tested
is the API's side of the contract; tests/integration/test_api_paper.py drives the real
engine.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Producer, TopicPartition
from pydantic import SecretStr
from websockets.sync.client import connect

from api.settings import AccountsSettings
from api.store import Store
from runtime.kafka import consumer_config, ensure_topics, producer_config
from schemas import topics
from schemas.ranks import RankRow
from schemas.trading import AccountView, OpenAccount, command_decoder, encode
from tests.integration.live_api import live_api_settings, live_topics
from tests.integration.test_api_live import DEADLINE_S, Api, eventually
from tests.integration.test_entitlements import SECRET, sign_in
from tests.unit.api.paper_engine import FakeEngine

pytestmark = pytest.mark.integration

BASE = "/api/v1/paper/accounts"
PARTITIONS = 3
EARLY = "early-account"
"""An account whose view was published before the API started."""


class Responder:
    """The stand-in engine: answers each command on the orders topic with its events and
    the account's view, keyed by account id, on a thread."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.names = topics.TradingTopics(
            prefix + topics.ORDERS, prefix + topics.EVENTS, prefix + topics.ACCOUNTS
        )
        self.engine = FakeEngine()
        self.producer = Producer(producer_config(bootstrap))
        self.consumer = Consumer(consumer_config(bootstrap))
        self.consumer.assign([TopicPartition(self.names.orders, p, 0) for p in range(PARTITIONS)])
        self.keys: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="paper-responder", daemon=True)

    def publish(self, records: list[Any]) -> None:
        for record in records:
            topic = self.names.accounts if isinstance(record, AccountView) else self.names.events
            self.producer.produce(topic, encode(record), record.account_id.encode())
        self.producer.flush(10)

    def _run(self) -> None:
        decode = command_decoder().decode
        while not self._stop.is_set():
            message = self.consumer.poll(0.05)
            if message is None or message.error() is not None:
                continue
            self.keys.append(message.key() or b"")
            self.publish(self.engine.apply(decode(message.value() or b"")))

    def __enter__(self) -> Responder:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.consumer.close()


@pytest.fixture(scope="module")
def site(
    kafka_bootstrap: str,
    clickhouse_dsn: str,
    ch: Client,
    database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Api, Responder, dict[str, dict[str, str]]]]:
    prefix = live_topics(kafka_bootstrap, PARTITIONS)
    names = [prefix + t for t in (topics.ORDERS, topics.EVENTS, topics.ACCOUNTS)]
    ensure_topics(kafka_bootstrap, names, PARTITIONS)
    settings = live_api_settings(
        tmp_path_factory.mktemp("paper-api"),
        kafka_bootstrap,
        clickhouse_dsn,
        database,
        prefix,
        PARTITIONS,
        heartbeat_s=60.0,
        accounts=AccountsSettings(
            secret_key=SecretStr(SECRET), argon2_time_cost=1, argon2_memory_kib=8
        ),
    )
    users = sign_in(settings)
    with Responder(kafka_bootstrap, prefix) as responder:
        # Published before the API starts: the API reads it back from the topic's end.
        early = OpenAccount("c0", EARLY, 0, "99", "early", "spot", "binance", {})
        responder.publish(responder.engine.apply(early))
        server = Api(settings, Store(ch, database))
        server.start()
        try:
            health = server.http + "/api/v1/health"
            eventually(lambda: httpx.get(health).json()["live"] is True, "no live feed")
            now_ms = time.time_ns() // 1_000_000
            server.produce(topics.RANKS, [RankRow("binance", "usdm", "SOLUSDT", now_ms, 100.0)])
            board = server.http + "/api/v1/scan"
            eventually(
                lambda: bool(httpx.get(board, params={"watch": "SOLUSDT"}).json()["rows"]),
                "SOLUSDT never reached the board",
            )
            yield server, responder, users
        finally:
            server.stop()


@contextmanager
def with_account(
    api: Api, headers: dict[str, str]
) -> Iterator[tuple[httpx.Client, dict[str, Any]]]:
    """A client signed in with `headers`, and a new USDⓈ-M account of its user."""
    with httpx.Client(base_url=api.http, headers=headers, timeout=DEADLINE_S) as http:
        made = http.post(BASE, json={"name": "live", "market": "usdm"})
        assert made.status_code == 201, made.text
        yield http, made.json()


def test_orders_go_to_the_engine_and_its_answers_come_back(
    site: tuple[Api, Responder, dict[str, dict[str, str]]],
) -> None:
    api, responder, users = site
    with with_account(api, users["free"]) as (http, made):
        account = made["account_id"]
        assert made["exchange"] == "binance" and made["equity"] == "10000"
        order = {"symbol": "SOLUSDT", "side": "BUY", "type": "limit", "quantity": "1"}
        first = http.post(
            f"{BASE}/{account}/orders", json={**order, "price": 90, "client_order_id": "k1"}
        )
        assert first.status_code == 201, first.text
        again = http.post(
            f"{BASE}/{account}/orders", json={**order, "price": 91, "client_order_id": "k1"}
        )
        assert again.status_code == 200 and again.json() == first.json()
        rejected = http.post(
            f"{BASE}/{account}/orders", json={**order, "price": 90, "quantity": "0.0001"}
        )
        assert rejected.status_code == 400 and rejected.json()["error"]["binance_code"] == -1013
        open_orders = http.get(f"{BASE}/{account}/orders").json()
        assert [o["request"]["client_order_id"] for o in open_orders] == ["k1"]
        canceled = http.delete(f"{BASE}/{account}/orders")
        assert [o["status"] for o in canceled.json()] == ["canceled"]
        other = http.get(f"{BASE}/{account}", headers=users["paid"])
        assert other.status_code == 404
    assert set(responder.keys) == {account.encode()}  # every command keyed by its account


def test_a_view_published_before_the_api_started_is_known(
    site: tuple[Api, Responder, dict[str, dict[str, str]]],
) -> None:
    api, _, _ = site
    trading = api.app.state.hub.trading
    eventually(lambda: trading.view(EARLY) is not None, "the early view was not read back")


def test_the_trading_channel_delivers_fills_over_a_websocket_and_sse(
    site: tuple[Api, Responder, dict[str, dict[str, str]]],
) -> None:
    api, _, users = site
    me = users["paid"]
    with with_account(api, me) as (http, made):
        account = made["account_id"]
        token = me["Authorization"].split(" ", 1)[1]
        with (
            connect(api.ws, additional_headers={"Authorization": f"Bearer {token}"}) as ws,
            http.stream("GET", "/api/v1/stream/trading", params={"account": account}) as stream,
        ):
            assert json.loads(ws.recv(DEADLINE_S))["type"] == "authenticated"
            ws.send(
                json.dumps({"op": "subscribe", "channel": "trading", "id": "t", "account": account})
            )
            assert json.loads(ws.recv(DEADLINE_S))["type"] == "subscribed"
            assert json.loads(ws.recv(DEADLINE_S))["type"] == "account"
            lines = stream.iter_lines()
            assert next(lines) == "id: 1" and next(lines) == "event: account"
            market = {"symbol": "SOLUSDT", "side": "BUY", "type": "market", "quantity": "2"}
            assert http.post(f"{BASE}/{account}/orders", json=market).status_code == 201
            got = [json.loads(ws.recv(DEADLINE_S)) for _ in range(4)]
            assert [m["type"] for m in got] == ["order", "fill", "order", "account"]
            assert got[1]["fill"]["qty"] == "2" and got[3]["account"]["positions"][0]["qty"] == "2"
            seen = []
            for line in lines:
                if line.startswith("event: "):
                    seen.append(line.removeprefix("event: "))
                if len(seen) == 4:
                    break
            assert seen == ["order", "fill", "order", "account"]
