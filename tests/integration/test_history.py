"""A fresh install against the fake Binance: a day of 1m candles within a minute of start.

`tickscan run` on an empty store fetches the last 24 h of klines of every followed symbol
(behind gap repair, inside the REST weight budget), publishes them and the 24h tickers,
and shows its progress on /api/v1/health; a restart on a complete store fetches nothing.
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from api.settings import ApiSettings
from flows.ingest.settings import IngestSettings
from runtime.clickhouse import connect
from runtime.kafka import consumer_config
from runtime.settings import ClickHouseSettings
from schemas import topics
from schemas.candles import candle_decoder
from schemas.tickers import ticker_decoder
from tests.fakes.binance import FakeBinance
from tickscan.banner import Endpoints
from tickscan.run import run
from tickscan.run_options import RunOptions
from tickscan.settings import Settings

pytestmark = pytest.mark.integration

SYMBOLS = 100
M = 60_000
DAY_MINUTES = 1440


def wait_for(
    predicate: Callable[[], object], timeout: float, what: str, every: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(every)


def read_all(
    bootstrap: str,
    topic: str,
    partitions: int,
    enough: Callable[[list[bytes]], bool] = lambda batch: False,
) -> list[bytes]:
    """The records of `topic` from the start, until 1.5 s pass without one or `enough`.

    `enough` sees each new batch and says when the reader has what it came for: while
    `tickscan run` runs, live candles keep coming and the topic is never quiet. (The
    broker's high watermark can lag by a batch, so it cannot mark the end.)
    """
    consumer = Consumer(consumer_config(bootstrap))
    values: list[bytes] = []
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.monotonic() + 120
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 1.5 and time.monotonic() < deadline:
            batch: list[bytes] = []
            for msg in consumer.consume(num_messages=10_000, timeout=0.3):
                assert msg.error() is None, msg.error()
                value = msg.value()
                assert value is not None
                batch.append(value)
            if batch:
                values.extend(batch)
                quiet_since = time.monotonic()
                if enough(batch):
                    break
    finally:
        consumer.close()
    return values


class Running:
    """`tickscan run` in a thread."""

    def __init__(self, settings: Settings, options: RunOptions) -> None:
        self.stop = threading.Event()
        self.ready: list[Endpoints] = []
        self.result: list[object] = []
        self.thread = threading.Thread(target=self._target, args=(settings, options), daemon=True)
        self.thread.start()
        wait_for(lambda: self.ready or self.result, 60, "tickscan run to start")
        assert self.ready, self.result

    def _target(self, settings: Settings, options: RunOptions) -> None:
        try:
            self.result.append(run(settings, options, self.stop, on_ready=self.ready.append))
        except BaseException as exc:
            self.result.append(exc)

    @property
    def endpoints(self) -> Endpoints:
        return self.ready[0]

    def health(self) -> dict[str, Any]:
        assert self.endpoints.api is not None
        body: dict[str, Any] = httpx.get(self.endpoints.api + "/api/v1/health").json()
        return body

    def close(self) -> None:
        self.stop.set()
        self.thread.join(90)
        assert not self.thread.is_alive()
        assert not any(isinstance(r, BaseException) for r in self.result), self.result


def test_a_fresh_install_has_a_day_of_candles_in_a_minute_and_a_restart_fetches_nothing(
    tmp_path: Path, clickhouse_dsn: str
) -> None:
    database = f"tickscan_history_{uuid.uuid4().hex[:8]}"
    settings = Settings(
        data_dir=tmp_path,  # its own embedded broker
        clickhouse=ClickHouseSettings(dsn=clickhouse_dsn, database=database),
        api=ApiSettings(port=0),
        ingest=IngestSettings(history_progress_every_s=1.0),
    )
    # A day and a bit of trades, a couple a minute, then a livelier market.
    fake = FakeBinance("usdm", symbols=SYMBOLS, rate=1 / 20, seed=21, history_s=86_400 + 600)
    fake.rate = 2.0
    client = connect(clickhouse_dsn)

    def klines_asked(since: int = 0) -> list[dict[str, str]]:
        return [p for path, p, _ in fake.rest_requests[since:] if path.endswith("/klines")]

    def complete_symbols(end_ms: int) -> int:
        """Symbols with a candle in every minute of the day before `end_ms`."""
        return int(
            client.query(
                "SELECT count() FROM (SELECT symbol FROM {db:Identifier}.candles_1m"
                " WHERE exchange = 'binance' AND market = 'usdm'"
                " AND open_time >= fromUnixTimestamp64Milli({start:Int64})"
                " AND open_time < fromUnixTimestamp64Milli({end:Int64})"
                " GROUP BY symbol HAVING uniqExact(open_time) = {n:UInt32})",
                parameters={
                    "db": database, "start": end_ms - DAY_MINUTES * M, "end": end_ms,
                    "n": DAY_MINUTES,
                },
            ).result_rows[0][0]
        )  # fmt: skip

    try:
        with fake:
            started = time.monotonic()
            first = Running(settings, RunOptions(
                source="binance", markets=("usdm",), rest_url=fake.rest_url,
                ws_base=fake.ws_url,
            ))  # fmt: skip
            seen: list[Any] = []

            def history_done() -> bool:
                seen.append(first.health().get("warming"))
                asked = klines_asked()
                if not asked:
                    return False
                end_ms = max(int(p["endTime"]) for p in asked) + 1
                return complete_symbols(end_ms) == SYMBOLS and seen[-1] is None

            wait_for(history_done, 60, "24 h of candles of every symbol")
            elapsed = time.monotonic() - started

            # Then the board shows every symbol's day: the signals flow took the tickers at
            # once and the history candles as they came. (How soon is a figure, printed
            # below; the bound is only there to end a broken run.)
            def board_has_the_day() -> bool:
                assert first.endpoints.api is not None
                rows = httpx.get(
                    first.endpoints.api + "/api/v1/scan", params={"limit": 5000}
                ).json()["rows"]
                day = ("change_pct_24h", "quote_volume_24h", "high_24h", "vwap_24h")
                return len(rows) == SYMBOLS and all(r[c] is not None for r in rows for c in day)

            wait_for(board_has_the_day, 180, "the day on the board", every=0.5)
            board_s = time.monotonic() - started
            asked = klines_asked()
            end_ms = max(int(p["endTime"]) for p in asked) + 1
            assert end_ms % M == 0 and abs(end_ms - time.time() * 1000) < 2 * M

            # Health said how far the warm-up was, then that it was over.
            progress = [w for w in seen if w is not None]
            assert progress, seen
            assert all(w["total"] == SYMBOLS and 0 <= w["done"] <= SYMBOLS for w in progress)
            assert seen[-1] is None

            # Every minute came once, from the exchange, no minute asked twice.
            starts = collections.Counter((p["symbol"], p["startTime"]) for p in asked)
            assert max(starts.values()) == 1
            exchange_rows = client.query(
                "SELECT count(), uniqExact(symbol) FROM {db:Identifier}.candles_1m FINAL"
                " WHERE source = 'exchange' AND version = 0",
                parameters={"db": database},
            ).result_rows[0]
            assert exchange_rows[1] == SYMBOLS
            assert exchange_rows[0] >= SYMBOLS * (DAY_MINUTES - 2)

            # The weight stayed under the budget: 80 % of the exchange's limit, no 429.
            statuses = collections.Counter(status for _, _, status in fake.rest_requests)
            assert set(statuses) == {200}, statuses
            peak = max(fake.weight_by_minute.values())
            assert peak <= 0.8 * fake.weight_limit, fake.weight_by_minute

            # The tickers, one per followed symbol, and the history on md.candles.v1.
            bootstrap = first.endpoints.kafka
            partitions = settings.kafka.topic_partitions()
            tickers = [
                ticker_decoder().decode(v) for v in read_all(bootstrap, topics.TICKERS, partitions)
            ]
            assert sorted(t.symbol for t in tickers) == sorted(fake.symbols)
            assert all(t.count > 0 and t.quote_volume > 0 for t in tickers)
            decode = candle_decoder().decode
            history: collections.Counter[str] = collections.Counter()

            def whole_day(batch: list[bytes]) -> bool:
                history.update(
                    c.symbol for c in map(decode, batch) if c.version == 0 and c.interval == "1m"
                )
                return len(history) == SYMBOLS and min(history.values()) >= DAY_MINUTES - 2

            read_all(bootstrap, topics.CANDLES, partitions, whole_day)
            assert set(history) == set(fake.symbols)
            assert min(history.values()) >= DAY_MINUTES - 2
            print(
                f"\nfresh install: {SYMBOLS} usdm symbols x 24 h in {elapsed:.1f} s from start"
                f" (the board complete after {board_s:.1f} s);"
                f" {len(asked)} klines requests; REST weight per minute"
                f" {sorted(fake.weight_by_minute.values())} (cap {0.8 * fake.weight_limit:.0f})"
            )

            # A restart on a complete store: let the candle flow write the last closed
            # minute, stop and start again within the same minute.
            def store_complete_mid_minute() -> bool:
                second = time.time() % 60
                now_end = int(time.time() // 60) * M
                return 4 <= second <= 25 and complete_symbols(now_end) == SYMBOLS

            wait_for(store_complete_mid_minute, 90, "a complete store early in a minute", 0.5)
            first.close()
            before = len(fake.rest_requests)
            restarted = time.time()
            second = Running(settings, RunOptions(
                source="binance", markets=("usdm",), rest_url=fake.rest_url,
                ws_base=fake.ws_url,
            ))  # fmt: skip
            try:

                def planned() -> bool:
                    rows = client.query(
                        "SELECT total, finished FROM {db:Identifier}.history_progress FINAL"
                        " WHERE market = 'usdm'"
                        " AND started_at >= fromUnixTimestamp64Milli({t:Int64})",
                        parameters={"db": database, "t": int(restarted * 1000)},
                    ).result_rows
                    return bool(rows) and rows[0][1] == 1

                wait_for(planned, 30, "the restart to plan its history")
                assert int(time.time() // 60) == int(restarted // 60), "the minute turned"
                fetched = [path for path, _, _ in fake.rest_requests[before:]]
                assert not [p for p in fetched if p.endswith(("/klines", "/ticker/24hr"))], fetched
                assert second.health().get("warming") is None
            finally:
                second.close()
    finally:
        client.close()
