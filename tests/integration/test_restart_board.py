"""`tickscan run` stopped (Ctrl-C, then kill -9) and started again: the board shows the same
metrics at once, without waiting for new history, and every 1m candle stays the roll-up of
its stored 1s candles across the crash.

The whole platform runs in a child process, as a user runs it (`python -m tickscan run
--source sim`), on the real embedded broker and chDB; the test reads the board through the
API, and the store (one process per chDB directory) once the child has ended.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flows.sources.simulator.perps import perp_count
from tests.integration.candle_crash import check_apart
from tests.integration.sim_run import sim_run_command

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = 20
ROWS = SYMBOLS + perp_count(SYMBOLS)
"""The board's rows: the spot symbols and the perpetuals listed beside the busiest."""
HISTORY_COLUMNS = (
    "change_pct_1h",
    "change_pct_24h",
    "quote_volume_1h",
    "quote_volume_24h",
    "rsi_14",
    "vwap_24h",
    "high_24h",
    "low_24h",
)
"""Columns that need an hour or a day of history: a cold restart would show them empty."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Platform:
    """`tickscan run --source sim` in a child process on one data directory."""

    def __init__(self, data_dir: Path, rate: int = 400, **env: str) -> None:
        self.data_dir = data_dir
        self.rate = rate
        self.env = env
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[str] | None = None
        self.log = data_dir.parent / "run.log"

    def start(self) -> float:
        """Start it; returns the monotonic time its API answered health."""
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TICKSCAN_DATA_DIR": str(self.data_dir),
            "TICKSCAN_API__PORT": str(self.port),
            **self.env,
        }
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                sim_run_command(SYMBOLS, self.rate),
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        return self.healthy()

    def healthy(self) -> float:
        """Wait until the API answers health; returns the monotonic time it did."""
        assert self.process is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.tail()
            try:
                if httpx.get(f"{self.base}/api/v1/health", timeout=2).status_code == 200:
                    return time.monotonic()
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"no health within 120 s\n{self.tail()}")

    def stop(self, sig: signal.Signals) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(60)
        self.process = None
        return code

    def board(self) -> dict[str, dict[str, Any]]:
        rows = httpx.get(f"{self.base}/api/v1/scan", params={"limit": 5000}, timeout=10).json()
        # A simulated perpetual shares its spot twin's name: rows are keyed by market too.
        return {f"{row['market']}:{row['symbol']}": row for row in rows["rows"]}

    def warm_board(self, timeout: float) -> dict[str, dict[str, Any]]:
        """The board once every symbol has every history column (or fail after `timeout`)."""
        deadline = time.monotonic() + timeout
        board: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            board = self.board()
            if len(board) == ROWS and all(
                row.get(c) is not None for row in board.values() for c in HISTORY_COLUMNS
            ):
                return board
            time.sleep(1)
        missing = {s: [c for c in HISTORY_COLUMNS if r.get(c) is None] for s, r in board.items()}
        raise AssertionError(f"board not warm within {timeout} s: {missing}\n{self.tail()}")

    def tail(self) -> str:
        return "\n".join(self.log.read_text().splitlines()[-40:]) if self.log.exists() else ""


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    run = Platform(tmp_path / "data")
    yield run
    if run.process is not None:
        run.process.kill()
        run.process.wait(30)


@pytest.fixture
def bounded_platform(tmp_path: Path) -> Iterator[Platform]:
    # A broker bound a few seconds of this market above an empty broker's ~15 MB.
    run = Platform(tmp_path / "data", rate=2000, TICKSCAN_KAFKA__EMBEDDED_MAX_MB="40")
    yield run
    if run.process is not None:
        run.process.kill()
        run.process.wait(30)


def same_board(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> None:
    """The board after a restart holds the values before it, moved only by the seconds that
    passed: every history column present, a day's volume and VWAP within a few percent."""
    assert after.keys() == before.keys()
    for symbol, old in before.items():
        new = after[symbol]
        for column in HISTORY_COLUMNS:
            assert new[column] is not None, (symbol, column)
        for column in ("quote_volume_24h", "vwap_24h", "high_24h", "low_24h"):
            assert new[column] == pytest.approx(old[column], rel=0.05), (symbol, column)


def unlike_minutes(data_dir: Path, upto_ms: int) -> dict[str, Any]:
    """What the stopped platform's store holds, read in a process of its own."""
    dsn = f"chdb://{(data_dir / 'clickhouse').resolve()}"
    return check_apart(dsn, "tickscan", upto_ms)


def test_a_restart_shows_the_same_board_at_once_and_a_crash_keeps_minutes_whole(
    platform: Platform,
) -> None:
    # A fresh install: the simulated market writes its last day at first start, so the
    # board has its hour and day columns within a minute.
    platform.start()
    before = platform.warm_board(60)

    # Ctrl-C, and a start on the same store: the same board without waiting for history.
    assert platform.stop(signal.SIGINT) == 0, platform.tail()
    platform.start()
    after_stop = platform.warm_board(30)
    same_board(before, after_stop)

    # Let the market trade into the middle of a minute, then crash and start again.
    time.sleep(max(0.0, 30 - time.time() % 60) + 5)
    crashed_at_ms = int(time.time() * 1000)
    assert platform.stop(signal.SIGKILL) == -signal.SIGKILL
    platform.start()
    after_crash = platform.warm_board(30)
    same_board(after_stop, after_crash)

    # Trade on past the crash minute, stop, and read the store.
    time.sleep(max(0.0, 60 - time.time() % 60) + 3)
    stopped_minute_ms = int(time.time() // 60 * 60_000)
    assert platform.stop(signal.SIGINT) == 0, platform.tail()
    held = unlike_minutes(platform.data_dir, stopped_minute_ms)
    assert held["unlike"] == [], held["unlike"][:10]
    assert held["trades_in_1m"] >= held["trades_in_1s"] > 0
    assert crashed_at_ms < stopped_minute_ms


def test_the_embedded_broker_is_replaced_at_its_memory_bound_and_the_board_carries_on(
    bounded_platform: Platform,
) -> None:
    platform = bounded_platform
    platform.start()
    before = platform.warm_board(60)

    def rotations() -> int:
        return platform.log.read_text().count("pipeline running again on a fresh embedded broker")

    deadline = time.monotonic() + 150
    while rotations() < 1:
        assert time.monotonic() < deadline, f"no rotation within 150 s\n{platform.tail()}"
        assert platform.process is not None and platform.process.poll() is None, platform.tail()
        time.sleep(1)
    assert "the embedded broker holds" in platform.log.read_text()  # said at WARNING
    platform.healthy()  # the same port answers again
    same_board(before, platform.warm_board(30))

    # Across the rotation, every minute is still the roll-up of its seconds.
    time.sleep(max(0.0, 60 - time.time() % 60) + 3)
    stopped_minute_ms = int(time.time() // 60 * 60_000)
    assert platform.stop(signal.SIGINT) == 0, platform.tail()
    held = unlike_minutes(platform.data_dir, stopped_minute_ms)
    assert held["unlike"] == [], held["unlike"][:10]
