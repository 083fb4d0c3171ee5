"""A candle flow killed mid-minute (SIGKILL) and restarted: every 1m candle still equals the
roll-up of its stored 1s candles, the crash minute included, and no stored trade is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from flows.candles.resume import partition_of
from flows.ingest.trades import TradePublisher
from runtime.kafka import ensure_topics, producer_config
from schemas.trades import Trade
from tests.integration.candle_crash import check_apart

pytestmark = pytest.mark.integration

T0 = 1_700_000_040_000  # a minute boundary (ms)
SYMBOLS = [f"R{i:02d}USDT" for i in range(8)]
STEP_MS = 97  # one trade every 97 ms, symbols in turn: uneven seconds, some quiet


def trades(from_ms: int, to_ms: int) -> list[Trade]:
    """The market's trades in `[from_ms, to_ms)`, the same whoever asks."""
    out = []
    for n in range((from_ms - T0) // STEP_MS, (to_ms - T0) // STEP_MS):
        symbol = SYMBOLS[n % len(SYMBOLS)]
        time_ms = T0 + n * STEP_MS
        if time_ms < from_ms:
            continue
        price = Decimal(100 + (n * 37) % 23) + Decimal(n % 7) / 100
        qty = Decimal(1 + n % 5) / 4
        out.append(Trade("sim", "spot", symbol, n + 1, price, qty, time_ms * 1000, n % 3 == 0))
    return out


class FlowProcess:
    """The candle flow and trade store in a child process, with its progress lines."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(cwd)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.candle_crash", "run", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.progress: dict[str, int] = {}

    def wait(self, done: Any, timeout: float = 90) -> None:
        """Read progress until `done(progress)` holds."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        for line in self.process.stdout:
            self.progress = json.loads(line)
            if done(self.progress):
                return
            if time.monotonic() > deadline:
                break
        self.process.kill()
        _, err = self.process.communicate()
        raise AssertionError(f"no progress to the expected point: {self.progress}\n{err}")

    def settle(self, key: str, quiet_s: float = 2.5) -> None:
        """Read progress until `key` has not changed for `quiet_s`."""
        value, since = self.progress.get(key), time.monotonic()
        while time.monotonic() - since < quiet_s:
            self.wait(lambda p: True)
            if self.progress.get(key) != value:
                value, since = self.progress.get(key), time.monotonic()


@pytest.fixture
def children() -> Iterator[list[FlowProcess]]:
    """Child processes a test starts; any still running at its end are killed."""
    started: list[FlowProcess] = []
    yield started
    for child in started:
        if child.process.poll() is None:
            child.process.kill()
            child.process.wait(30)


def test_a_crash_mid_minute_leaves_minutes_equal_to_their_stored_seconds(
    tmp_path: Path, kafka_bootstrap: str, fresh_topic, children: list[FlowProcess]
) -> None:
    root = Path(__file__).resolve().parents[2]
    dsn, database = f"chdb://{tmp_path / 'chdb'}", "crash"
    # The embedded broker loses its messages on restart: each run reads a topic of its own.
    before, after = fresh_topic("md.trades.v1.a"), fresh_topic("md.trades.v1.b")
    candles, dead = fresh_topic("md.candles.v1"), fresh_topic("md.deadletter.v1")
    ensure_topics(kafka_bootstrap, [before, after, candles, dead], 3)

    # Resumed state is taken per partition: ours must be where the producer puts a symbol.
    placed: dict[bytes, int] = {}

    def delivered(error: Any, message: Any) -> None:
        placed[message.key()] = message.partition()

    producer = Producer(producer_config(kafka_bootstrap))
    for symbol in SYMBOLS:
        producer.produce(dead, b"{}", f"sim:spot:{symbol}".encode(), on_delivery=delivered)
    producer.flush(10)
    assert placed == {key: partition_of(key, 3) for key in placed} and len(placed) == 8

    # Run 1: a minute and a half of trades, then SIGKILL in the middle of the second minute.
    first = trades(T0, T0 + 90_000)
    with TradePublisher(kafka_bootstrap, topic=before, deadletter_topic=dead) as pub:
        pub.publish_many(first)
    run = FlowProcess([kafka_bootstrap, dsn, database, before, candles, dead], root)
    children.append(run)
    run.wait(lambda p: p["trades"] == len(first) and p["stored_trades"] == len(first))
    run.wait(lambda p: p["candles_1m"] >= len(SYMBOLS))  # the first minute closed
    run.settle("candles_1s")  # what was emitted is in ClickHouse, the open windows are not
    run.process.send_signal(signal.SIGKILL)
    run.process.wait(30)

    # Run 2 on an empty topic: the rest of the crash minute and the next, then a clean stop.
    second = trades(T0 + 90_000, T0 + 150_000)
    with TradePublisher(kafka_bootstrap, topic=after, deadletter_topic=dead) as pub:
        pub.publish_many(second)
    run = FlowProcess([kafka_bootstrap, dsn, database, after, candles, dead], root)
    children.append(run)
    run.wait(lambda p: p["trades"] >= len(second) and p["candles_1m"] >= len(SYMBOLS))
    run.settle("candles_1s")
    run.process.send_signal(signal.SIGTERM)
    _, err = run.process.communicate(timeout=60)
    assert run.process.returncode == 0, err

    store = check_apart(dsn, database, T0 + 120_000)
    # Every minute, the crash minute (T0 + 60 s) included, equals the roll-up of its 1s
    # candles in every field, and none is missing.
    assert store["unlike"] == []
    # Minutes T0 and T0 + 60 s for every symbol were written; the trades of windows that
    # were open at the kill came back from the trades table: nothing stored is lost.
    published = first + second
    assert store["stored_trades"] == len(published)
    assert store["trades_in_1s"] == len(published)
    whole_minutes = [t for t in published if t.time_us // 1000 < T0 + 120_000]
    assert store["minutes"] >= 2 * len(SYMBOLS)
    assert store["trades_in_1m"] >= len(whole_minutes)
