"""The API with paper trading on the session's broker and chDB, and an engine answering
its commands over Kafka: what tests/integration/test_api_paper*.py share.

`Responder` reads ``tr.orders.v1`` on a thread and publishes what its `apply` makes of
each command (events to ``tr.events.v1``, views to ``tr.accounts.v1``, keyed by account),
as the paper engine's process does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Producer, TopicPartition
from pydantic import SecretStr

from api.live.trading import TradingRecord
from api.settings import AccountsSettings
from api.store import Store
from runtime.kafka import consumer_config, ensure_topics, producer_config
from schemas import topics
from schemas.ranks import RankRow
from schemas.trading import AccountView, Command, command_decoder, encode
from tests.integration.live_api import live_api_settings, live_topics
from tests.integration.test_api_live import DEADLINE_S, Api, eventually
from tests.integration.test_entitlements import SECRET, sign_in

BASE = "/api/v1/paper/accounts"
PARTITIONS = 3

Users = dict[str, dict[str, str]]
"""The auth headers of the two users, `free` and `paid`."""


class Responder:
    """An engine's side of the topics: each command on the orders topic is answered with
    what `apply` returns for it, on a thread.

    Args:
        bootstrap: The broker.
        prefix: The topics' prefix.
        apply: A command's events and the views after them.
    """

    def __init__(
        self, bootstrap: str, prefix: str, apply: Callable[[Command], list[TradingRecord]]
    ) -> None:
        self.names = topics.TradingTopics(
            prefix + topics.ORDERS, prefix + topics.EVENTS, prefix + topics.ACCOUNTS
        )
        self.apply = apply
        self.producer = Producer(producer_config(bootstrap))
        self.consumer = Consumer(consumer_config(bootstrap))
        self.consumer.assign([TopicPartition(self.names.orders, p, 0) for p in range(PARTITIONS)])
        self.keys: list[bytes] = []
        """The key of every command read."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="paper-responder", daemon=True)

    def publish(self, records: list[Any]) -> None:
        """Produce events and views to their topics, keyed by account."""
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
            self.publish(self.apply(decode(message.value() or b"")))

    def __enter__(self) -> Responder:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.consumer.close()


@dataclass(frozen=True)
class PaperEnv:
    """Where a module's API runs: the session's broker and ClickHouse, its database and
    data directory."""

    bootstrap: str
    dsn: str
    ch: Client
    database: str
    data_dir: Path


@pytest.fixture(scope="module")
def paper_env(
    kafka_bootstrap: str,
    clickhouse_dsn: str,
    ch: Client,
    database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> PaperEnv:
    """The module's `PaperEnv` (import it into the test module to use it)."""
    return PaperEnv(kafka_bootstrap, clickhouse_dsn, ch, database, tmp_path_factory.mktemp("api"))


@dataclass(frozen=True)
class PaperSite:
    """A running API, the prefix of its topics, its two users and the stand-in engine."""

    api: Api
    prefix: str
    users: Users
    responder: Responder | None


@contextmanager
def paper_site(
    env: PaperEnv,
    apply: Callable[[Command], list[TradingRecord]] | None = None,
    symbols: Sequence[RankRow] = (),
    before: Callable[[Responder], None] = lambda _: None,
) -> Iterator[PaperSite]:
    """The API on fresh topics, two signed-in users, and `symbols` on the board (paper
    orders may name only what the board or the symbol directory lists).

    Args:
        env: Where it runs.
        apply: A stand-in engine's answer to a command (a `Responder` answers on the
            topics); None: the test runs an engine itself.
        symbols: Rows to put on the board.
        before: Called with the responder before the API starts.
    """
    bootstrap, ch, database = env.bootstrap, env.ch, env.database
    prefix = live_topics(bootstrap, PARTITIONS)
    names = [prefix + t for t in (topics.ORDERS, topics.EVENTS, topics.ACCOUNTS)]
    ensure_topics(bootstrap, names, PARTITIONS)
    settings = live_api_settings(
        env.data_dir,
        bootstrap,
        env.dsn,
        database,
        prefix,
        PARTITIONS,
        heartbeat_s=60.0,
        accounts=AccountsSettings(
            secret_key=SecretStr(SECRET), argon2_time_cost=1, argon2_memory_kib=8
        ),
    )
    users = sign_in(settings)
    with ExitStack() as stack:
        responder = None
        if apply is not None:
            responder = stack.enter_context(Responder(bootstrap, prefix, apply))
            before(responder)
        server = Api(settings, Store(ch, database))
        server.start()
        try:
            health = server.http + "/api/v1/health"
            eventually(lambda: httpx.get(health).json()["live"] is True, "no live feed")
            if symbols:
                server.produce(topics.RANKS, list(symbols))
                board = server.http + "/api/v1/scan"
                watch = ",".join(row.symbol for row in symbols)
                eventually(
                    lambda: (
                        len(httpx.get(board, params={"watch": watch}).json()["rows"])
                        == len(symbols)
                    ),
                    f"{watch} never reached the board",
                )
            yield PaperSite(server, prefix, users, responder)
        finally:
            server.stop()


def board_row(symbol: str, market: str = "usdm") -> RankRow:
    """A board row of a Binance symbol, now."""
    return RankRow("binance", market, symbol, time.time_ns() // 1_000_000, 100.0)  # type: ignore[arg-type]


@contextmanager
def with_account(
    api: Api, headers: dict[str, str], market: str = "usdm"
) -> Iterator[tuple[httpx.Client, dict[str, Any]]]:
    """A client signed in with `headers`, and a new account of its user."""
    with httpx.Client(base_url=api.http, headers=headers, timeout=DEADLINE_S) as http:
        made = http.post(BASE, json={"name": "live", "market": market})
        assert made.status_code == 201, made.text
        yield http, made.json()
