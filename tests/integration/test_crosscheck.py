"""The cross-check, live: the fake exchange's closed klines against our candles.

The fake Binance (USDⓈ-M) runs on a clock set a few seconds before a minute boundary
and opens only once ingest is subscribed, so the minute it closes is one whose every
trade ingest followed. The candle flow turns the trades into candles on md.candles.v1.
Two ingests follow the exchange with the cross-check on: one reads the flow's candles
(right: zero mismatches), the other a copy of them in which one candle was doctored by
a higher version (a kline_mismatch row in data_quality names the field).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from bytewax.testing import run_main
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Producer, TopicPartition

from flows.candles.flow import build_kafka_flow
from flows.candles.settings import CandleFlowSettings
from flows.ingest.run import IngestReport
from runtime.clickhouse import connect
from runtime.kafka import consumer_config, ensure_topics, producer_config
from runtime.migrate import migrate
from schemas import topics
from schemas.candles import candle_decoder, encode_candle
from tests.fakes.binance import FakeBinance
from tests.integration.live_run import PARTITIONS, Run, live_ingest, live_settings, open_market

pytestmark = pytest.mark.integration

DOCTORED = "ETHUSDT"
OPEN_S = 8.0
"""Seconds of exchange time from the fake's start to the end of the minute checked."""


class CandleFlow:
    """The candle flow on fresh topics, in a thread, until `stop`, writing its candles
    to a database of its own (other tests count the session database's candles)."""

    def __init__(self, bootstrap: str, dsn: str, topic: Callable[[str], str]):
        self.client = connect(dsn)  # its own: a chdb client is not shared across threads
        self.database = f"crosscheck_{uuid.uuid4().hex[:8]}"
        migrate(self.client, self.database)
        self.stop = threading.Event()
        self.failure: list[BaseException] = []
        flow, _ = build_kafka_flow(
            CandleFlowSettings(),
            bootstrap=bootstrap,
            clickhouse=lambda: self.client,
            database=self.database,
            start="beginning",
            trades_topic=topic(topics.TRADES),
            candles_topic=topic(topics.CANDLES),
            dead_letter_topic=topic(topics.DEADLETTER),
            stop=self.stop,
        )

        def body() -> None:
            try:
                run_main(flow)
            except BaseException as exc:
                self.failure.append(exc)

        self.thread = threading.Thread(target=body, name="candle-flow", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.client.command("DROP DATABASE {db:Identifier}", parameters={"db": self.database})
        self.client.close()
        assert not self.thread.is_alive() and not self.failure, self.failure


class Doctor:
    """Copies every candle from one topic to another; after each 1m candle of `symbol`
    it writes the same candle with one trade more in `count`, as a higher version."""

    def __init__(self, bootstrap: str, source: str, target: str, symbol: str) -> None:
        self.doctored = 0
        self._stop = threading.Event()
        self._consumer = Consumer(consumer_config(bootstrap))
        self._consumer.assign([TopicPartition(source, p, 0) for p in range(PARTITIONS)])
        self._producer = Producer(producer_config(bootstrap))
        self._target, self._symbol = target, symbol
        self._thread = threading.Thread(target=self._run, name="doctor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        decode = candle_decoder().decode
        while not self._stop.is_set():
            for msg in self._consumer.consume(num_messages=1_000, timeout=0.1):
                value = msg.value()
                assert msg.error() is None and value is not None
                self._producer.produce(self._target, value, msg.key())
                candle = decode(value)
                if candle.symbol == self._symbol and candle.interval == "1m":
                    wrong = msgspec.structs.replace(
                        candle, count=candle.count + 1, version=candle.version + 1
                    )
                    self._producer.produce(self._target, encode_candle(wrong), msg.key())
                    self.doctored += 1
            self._producer.poll(0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._producer.flush(10)
        self._consumer.close()


def mismatch_rows(ch: Client, open_time_ms: int) -> list[dict[str, Any]]:
    result = ch.query(
        "SELECT symbol, status, interval, toUnixTimestamp64Milli(open_time) AS open_ms, detail"
        " FROM data_quality FINAL WHERE kind = 'kline_mismatch' AND market = 'usdm'"
        " AND open_time = fromUnixTimestamp64Milli({t:Int64}, 'UTC')",
        parameters={"t": open_time_ms},
    )
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


@pytest.fixture
def minute_fake() -> Iterator[tuple[FakeBinance, int]]:
    """A closed USDⓈ-M exchange whose clock reaches a minute's end `OPEN_S` after start,
    and the open time of that minute."""
    minute_end = (int(time.time() * 1000) // 60_000 + 1) * 60_000
    with FakeBinance(
        "usdm", symbols=3, rate=0.0, seed=21, start_ms=minute_end - int(OPEN_S * 1000)
    ) as fake:
        yield fake, minute_end - 60_000


def test_our_candles_match_the_exchange_klines_and_a_doctored_one_is_recorded(
    minute_fake: tuple[FakeBinance, int],
    kafka_bootstrap: str,
    clickhouse_dsn: str,
    ch_database: str,
    ch: Client,
    fresh_topic: Callable[[str], str],
) -> None:
    fake, minute = minute_fake
    doctored_topic = fresh_topic("doctored." + topics.CANDLES)
    ensure_topics(
        kafka_bootstrap,
        [fresh_topic(n) for n in (topics.TRADES, topics.CANDLES, topics.DEADLETTER)]
        + [doctored_topic],
        PARTITIONS,
    )
    settings = live_settings(
        kafka_bootstrap, clickhouse_dsn, ch_database,
        crosscheck_settle_s=5.0, crosscheck_every_s=0.3,
    )  # fmt: skip
    flow = CandleFlow(kafka_bootstrap, clickhouse_dsn, fresh_topic)
    doctor = Doctor(kafka_bootstrap, fresh_topic(topics.CANDLES), doctored_topic, DOCTORED)

    async def scenario() -> tuple[IngestReport, IngestReport]:
        right = Run(
            live_ingest(
                settings, fake, fresh_topic, crosscheck=True,
                candles_topic=fresh_topic(topics.CANDLES),
            )
        )  # fmt: skip
        # Its trades go to topics of their own, which no candle flow reads.
        wrong = Run(
            live_ingest(
                settings, fake, lambda name: fresh_topic("b." + name), crosscheck=True,
                candles_topic=doctored_topic,
            )
        )  # fmt: skip
        await open_market(fake, right, wrong)
        assert fake.now_ms() < minute + 60_000 - 2_000, "ingest took too long to start"
        for run in (right, wrong):
            await run.until(
                lambda r=run: r.live.status().crosscheck.checked >= 3,  # type: ignore[union-attr]
                OPEN_S + 20,
                "the minute's klines to be judged",
            )
        return await right.finish(fake), await wrong.finish(fake)

    try:
        right, wrong = asyncio.run(scenario())
    finally:
        doctor.close()
        flow.close()
    assert right.crosscheck is not None and wrong.crosscheck is not None
    # Every symbol's minute was followed whole, judged, and equal to the exchange's.
    assert right.crosscheck.checked == 3 and right.crosscheck.unfollowed == 0
    assert right.crosscheck.mismatched == 0, right.crosscheck
    assert doctor.doctored >= 1
    assert (wrong.crosscheck.checked, wrong.crosscheck.mismatched) == (3, 1), wrong.crosscheck
    assert wrong.crosscheck.recorded == 1 and wrong.crosscheck.missing == 0

    rows = mismatch_rows(ch, minute)
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row["symbol"], row["status"], row["interval"], row["open_ms"]) == (
        DOCTORED, "info", "1m", minute,
    )  # fmt: skip
    field, ours, theirs = row["detail"].replace(" != ", ":").split(":")
    assert field == "count" and int(ours) == int(theirs) + 1, row["detail"]


def test_tickscan_ingest_crosscheck_follows_the_klines(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    with FakeBinance("usdm", symbols=2, rate=20.0, seed=22) as fake:
        env = {
            **os.environ,
            "TICKSCAN_KAFKA__BOOTSTRAP": kafka_bootstrap,
            # chdb opens one directory per process: the command gets its own.
            "TICKSCAN_CLICKHOUSE__DSN": f"chdb://{tmp_path / 'clickhouse'}",
        }
        command = [
            sys.executable, "-m", "tickscan", "ingest", "--market", "usdm", "--crosscheck",
            "--rest-url", fake.rest_url, "--ws-base", fake.ws_url,
        ]  # fmt: skip
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            deadline = time.monotonic() + 60
            subscribed: set[str] = set()
            while not {"btcusdt@kline_1m", "ethusdt@kline_1m"} <= subscribed:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, fake.subscribe_messages
                time.sleep(0.2)
                subscribed = {
                    stream
                    for msg in fake.subscribe_messages
                    if isinstance(msg, dict) and msg.get("method") == "SUBSCRIBE"
                    for stream in msg["params"]
                }
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 0, err
    assert "crosscheck=CheckCounts(" in out, out
