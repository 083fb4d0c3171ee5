"""`tickscan run` as a user runs it: bad options refused before anything starts, and every
way it stops (Ctrl-C, SIGTERM, a failure while starting) ends the process cleanly."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.stack import free_port

pytestmark = pytest.mark.integration

START_S = 120.0
STOP_S = 60.0


def environment(data_dir: Path, port: int) -> dict[str, str]:
    """The caller's environment without its TICKSCAN_* settings, on a data dir and port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKSCAN_")}
    env.update(TICKSCAN_DATA_DIR=str(data_dir), TICKSCAN_API__PORT=str(port))
    return env


def tickscan(*args: str) -> list[str]:
    return [sys.executable, "-m", "tickscan", "run", *args]


def assert_clean_exit(stderr: str) -> None:
    """No crash of the interpreter, whatever the exit code says."""
    for crash in ("Fatal Python error", "FATAL:", "Segmentation fault", "core dumped"):
        assert crash not in stderr, stderr[-3000:]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--source", "bogus"), "--source 'bogus' is not a source"),
        (("--source", "replay:/nonexistent/trades.csv"), "/nonexistent/trades.csv not found"),
        (("--source", "sim", "--markets", "futures"), "--markets takes spot, usdm or both"),
    ],
)
def test_bad_options_are_refused_before_anything_starts(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    data_dir = tmp_path / "data"
    done = subprocess.run(
        tickscan(*args),
        env=environment(data_dir, free_port()),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert_clean_exit(done.stderr)
    # No broker was started and no store created: nothing was written anywhere.
    assert not data_dir.exists(), list(data_dir.iterdir())


def healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/api/v1/health", timeout=5).is_success
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_running_tickscan_stops_cleanly_on_a_signal(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    err_path = tmp_path / "stderr.log"
    with err_path.open("w") as err:
        process = subprocess.Popen(
            tickscan("--source", "sim", "--symbols", "20", "--rate", "200"),
            env=environment(tmp_path / "data", port),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            # Its own process group, which gets the signal as a terminal's Ctrl-C would.
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_S
        while not healthy(url):
            assert process.poll() is None, err_path.read_text()[-3000:]
            assert time.monotonic() < deadline, err_path.read_text()[-3000:]
            time.sleep(0.5)
        # A self-hosted sign-up: no mail service, so the link must reach the log.
        account = {"email": "ada@example.com", "password": "correct horse battery"}
        signup = httpx.post(f"{url}/api/v1/auth/signup", json=account, timeout=30)
        assert signup.status_code == 202, signup.text
        os.killpg(process.pid, stop_signal)
        stdout, _ = process.communicate(timeout=STOP_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = err_path.read_text()
    assert process.returncode == 0, stderr[-3000:]
    assert stdout.splitlines()[0].startswith(f"tickscan is running: open {url}/")
    assert "stopped:" in stdout
    # At the log level `tickscan run` has by default, the verification link is shown.
    assert re.search(
        r" INFO api\.accounts\.email: no mail service configured: email '[^']+' to "
        r"ada@example\.com not sent; open http://\S+/verify-email\?token=\S+",
        stderr,
    ), stderr[-3000:]
    assert_clean_exit(stderr)
    stopping = stderr[stderr.index(f"signal {int(stop_signal)}: stopping") :]
    assert "Traceback" not in stopping, stopping[-3000:]
    assert " ERROR " not in stopping, stopping[-3000:]


def test_a_failure_while_starting_stops_what_had_started_cleanly(tmp_path: Path) -> None:
    with socket.socket() as taken:  # the API's port is in use
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            tickscan("--source", "sim", "--symbols", "5", "--rate", "50"),
            env=environment(tmp_path / "data", port),
            capture_output=True,
            text=True,
            timeout=START_S,
        )
    assert done.returncode == 1, done.stderr[-3000:]
    assert "run failed: the API server could not start" in done.stderr
    assert "TICKSCAN_API__PORT" in done.stderr
    assert_clean_exit(done.stderr)
