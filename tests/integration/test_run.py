"""`tickscan run`: the embedded platform turns a market into live candles, a board and an API."""

from __future__ import annotations

import re
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from api.settings import ApiSettings
from flows.candles.flow import FlowCounters
from runtime.clickhouse import connect
from runtime.settings import ClickHouseSettings
from tickscan.banner import Endpoints, banner
from tickscan.run import run
from tickscan.run_options import RunOptions
from tickscan.settings import Settings

pytestmark = pytest.mark.integration


def wait_for(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def test_run_turns_the_simulated_market_into_live_candles(
    tmp_path: Path, clickhouse_dsn: str
) -> None:
    database = f"tickscan_run_{uuid.uuid4().hex[:8]}"
    settings = Settings(
        data_dir=tmp_path,  # its own embedded broker: kafka.bootstrap is None
        clickhouse=ClickHouseSettings(dsn=clickhouse_dsn, database=database),
        api=ApiSettings(port=0),  # a free port
    )
    stop = threading.Event()
    ready: list[Endpoints] = []
    result: list[FlowCounters | BaseException] = []

    def target() -> None:
        try:
            result.append(
                run(settings, RunOptions(symbols=20, rate=400), stop, on_ready=ready.append)
            )
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    client: Client = connect(clickhouse_dsn)
    try:
        assert wait_for(lambda: bool(ready), 30), result
        endpoints = ready[0]
        assert endpoints.database == database
        assert database in banner(endpoints, RunOptions()) and "sim" in banner(
            endpoints, RunOptions()
        )

        def closed_seconds() -> int:
            return int(
                client.query(
                    "SELECT count() FROM {db:Identifier}.candles_1s FINAL WHERE exchange = 'sim'",
                    parameters={"db": database},
                ).result_rows[0][0]
            )

        # Live: windows close on event time as trades flow, and are in ClickHouse within
        # the flush interval, while the market keeps running.
        assert wait_for(lambda: closed_seconds() >= 40, 45)
        bad = client.query(
            "SELECT count() FROM {db:Identifier}.candles_1s FINAL"
            " WHERE NOT (low <= least(open, close) AND greatest(open, close) <= high)"
            " OR close_time != open_time + toIntervalMillisecond(999)"
            " OR (count = 0 AND (volume != 0 OR first_trade_id IS NOT NULL))",
            parameters={"db": database},
        ).result_rows[0][0]
        assert bad == 0
        # The simulated symbols are listed, labelled sim, so the board can show them; the
        # busiest fifth are also perpetuals of the same names.
        listed = client.query(
            "SELECT market, count(), uniqExact(quote_asset), any(status), any(kind)"
            " FROM {db:Identifier}.symbols FINAL WHERE exchange = 'sim'"
            " GROUP BY market ORDER BY market",
            parameters={"db": database},
        ).result_rows
        assert listed == [
            ("spot", 20, 1, "TRADING", "spot"),
            ("usdm", 4, 1, "TRADING", "perpetual"),
        ]

        # The API serves beside the flows: healthy, and the live board fills with every
        # simulated symbol, sorted as asked.
        assert endpoints.api is not None and endpoints.api in banner(endpoints, RunOptions())
        api = httpx.Client(base_url=endpoints.api, timeout=10)
        assert wait_for(lambda: api.get("/api/v1/health").status_code == 200, 30)

        def board() -> list[dict[str, object]]:
            response = api.get("/api/v1/scan", params={"sort": "-price", "limit": 50})
            assert response.status_code == 200, response.text
            return list(response.json()["rows"])

        assert wait_for(lambda: len(board()) == 24, 60), board()
        rows = board()
        assert {row["exchange"] for row in rows} == {"sim"}
        assert sum(row["market"] == "usdm" for row in rows) == 4
        prices = [float(str(row["price"])) for row in rows]
        assert prices == sorted(prices, reverse=True) and len(set(prices)) > 1
        assert thread.is_alive(), result
    finally:
        stop.set()
        thread.join(60)
        client.close()
    assert not thread.is_alive()
    counters = result[0]
    assert isinstance(counters, FlowCounters), counters
    assert counters.trades > 0 and counters.dead_letters == 0


def test_binance_source_falls_back_to_the_simulated_market_and_says_so() -> None:
    from tickscan.run_options import binance_reachable, choose_source

    # A closed port: the probe is refused at once, as with no route to Binance.
    probe = binance_reachable("http://127.0.0.1:9", timeout_s=2)
    assert probe("spot") is not None
    assert choose_source(RunOptions(source="binance"), probe) == "sim"
    assert choose_source(RunOptions(source="binance"), lambda market: None) == "binance"
    assert choose_source(RunOptions(source="replay:x.gz"), probe) == "replay:x.gz"


def test_run_follows_binance_live_into_candles(tmp_path: Path, clickhouse_dsn: str) -> None:
    from tests.fakes.binance import FakeBinance

    database = f"tickscan_live_{uuid.uuid4().hex[:8]}"
    settings = Settings(
        data_dir=tmp_path,
        clickhouse=ClickHouseSettings(dsn=clickhouse_dsn, database=database),
        api=ApiSettings(port=0),
    )
    stop = threading.Event()
    ready: list[Endpoints] = []
    result: list[object] = []
    with FakeBinance("usdm", symbols=5, rate=20, seed=4) as fake:
        options = RunOptions(
            source="binance",
            markets=("usdm",),
            rest_url=fake.rest_url,
            ws_base=fake.ws_url,
            crosscheck=True,
        )

        def target() -> None:
            try:
                result.append(run(settings, options, stop, on_ready=ready.append))
            except BaseException as exc:
                result.append(exc)

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        client = connect(clickhouse_dsn)
        try:
            assert wait_for(lambda: bool(ready), 30), result
            assert ready[0].source == "binance"
            assert "live Binance" in banner(ready[0], options)

            def live_seconds() -> int:
                return int(
                    client.query(
                        "SELECT count() FROM {db:Identifier}.candles_1s FINAL"
                        " WHERE exchange = 'binance' AND market = 'usdm' AND count > 0",
                        parameters={"db": database},
                    ).result_rows[0][0]
                )

            assert wait_for(lambda: live_seconds() >= 10, 60), result
            # --crosscheck reaches the live ingest: the exchange's klines are followed.
            subscribed = {
                stream
                for message in fake.subscribe_messages
                if isinstance(message, dict)
                for stream in message.get("params", [])
            }
            assert {s for s in subscribed if s.endswith("@kline_1m")}, subscribed
            # Its perpetuals' mark prices and the liquidations are followed too.
            marks = {s for s in subscribed if s.endswith("@markPrice@1s")}
            assert len(marks) == 5 and "!forceOrder@arr" in subscribed, subscribed
        finally:
            stop.set()
            thread.join(60)
            client.close()
    assert not thread.is_alive()
    assert isinstance(result[0], FlowCounters), result


def test_the_replay_source_skips_a_file_cut_short_and_publishes_the_next(
    tmp_path: Path, kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    import gzip

    from runtime.kafka import ensure_topics
    from schemas import topics
    from tests.shared_data import SHARED_DATA
    from tickscan.run import _publish_files

    capture = SHARED_DATA / "binance-um-btcusdt-20240808" / "hftbacktest_usdm_btcusdt_20240808.gz"
    cut = tmp_path / "cut.gz"
    cut.write_bytes(capture.read_bytes()[:100_000])
    with gzip.open(capture, "rb") as f:
        lines = [next(f) for _ in range(2_000)]
    good = tmp_path / "good.gz"
    good.write_bytes(gzip.compress(b"".join(lines)))
    good_trades = sum(b'"e":"trade"' in line for line in lines)
    ensure_topics(kafka_bootstrap, [topics.TRADES, topics.DEADLETTER], 3)
    with caplog.at_level("INFO", logger="tickscan.run"):
        _publish_files(kafka_bootstrap, [cut, good], "usdm")
    mine = [r for r in caplog.records if r.name == "tickscan.run"]
    errors = [r.getMessage() for r in mine if r.levelname == "ERROR"]
    assert len(errors) == 1 and str(cut) in errors[0] and "truncated" in errors[0], errors
    published = [
        int(m[1]) for r in mine if (m := re.search(r"published (\d+) trades", r.getMessage()))
    ]
    assert published and published[-1] > good_trades, published
