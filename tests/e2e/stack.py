"""A whole tickscan in a child process, as a user runs it, for the browser tests and
bench/ui.py.

`tickscan run --source sim` starts the embedded broker, chdb, the candle and signals
flows, the simulated market and the API, which serves the built UI (`ui/dist`) at `/`.
The child gets its own data directory and a free port, and no TICKSCAN_* setting of the
caller's environment but those passed in.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from api.ui import DIST

START_S = 120.0
"""Broker, chdb and migrations, then the first ranks of every symbol (on 2 busy cores)."""


class StackError(AssertionError):
    """The stack did not come up; the message ends with the tail of its log."""


def free_port() -> int:
    """A port nothing listens on now (the child binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _wait(
    ready: Callable[[], bool], what: str, process: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + START_S
    while not ready():
        if process.poll() is not None:
            raise StackError(f"tickscan exited ({process.returncode}) before {what}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise StackError(f"no {what} within {START_S:.0f} s:\n{_tail(log)}")
        time.sleep(0.5)


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return None


def _healthy(url: str) -> bool:
    response = _get(url + "/api/v1/health")
    return response is not None and response.is_success


def board_rows(url: str, limit: int) -> int:
    """How many rows the (anonymous) board lists, up to `limit`."""
    response = _get(f"{url}/api/v1/scan?limit={limit}")
    return len(response.json()["rows"]) if response is not None and response.is_success else 0


@contextmanager
def running_stack(
    data_dir: Path,
    *,
    symbols: int,
    rate: float,
    env: dict[str, str] | None = None,
    min_rows: int | None = None,
) -> Iterator[str]:
    """Run tickscan on a simulated market until the board lists every symbol.

    Args:
        data_dir: The child's data directory; its output goes to `tickscan.log` there.
        symbols: Symbols of the simulated market.
        rate: Its trades per second, whole market.
        env: Further TICKSCAN_* settings (accounts, billing, email).
        min_rows: Enough rows on the board to start (default: every symbol; a large
            market's quietest symbols may take minutes to print their first trade).

    Yields:
        The base URL, e.g. ``http://127.0.0.1:41234``.

    Raises:
        StackError: ui/dist is not built, or tickscan did not come up.
    """
    if not (DIST / "index.html").is_file():
        raise StackError(f"{DIST} is not built: run `make ui`")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TICKSCAN_")}
    environment.update(
        TICKSCAN_DATA_DIR=str(data_dir),
        TICKSCAN_API__PORT=str(port),
        TICKSCAN_ACCOUNTS__PUBLIC_URL=url,
        **(env or {}),
    )
    log = data_dir / "tickscan.log"
    command = [sys.executable, "-m", "tickscan", "run", "--source", "sim"]
    command += ["--symbols", str(symbols), "--rate", str(rate)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=environment, stdout=output, stderr=output)
    try:
        _wait(lambda: _healthy(url), "health", process, log)
        want = symbols if min_rows is None else min_rows
        _wait(lambda: board_rows(url, symbols) >= want, f"{want} rows on the board", process, log)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
