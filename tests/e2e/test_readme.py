"""The README's curl commands, run as written against a running tickscan (its simulated
market): each is a command curl accepts and a request the API serves."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.site import Site

README = Path(__file__).resolve().parents[2] / "README.md"
DOCUMENTED_BASE = "http://127.0.0.1:8000"
SSE_S = 5
"""How long a streaming command (`curl -N`) is listened to."""


def readme_curls() -> list[str]:
    """Every line of the README that is a curl command."""
    lines = [line.strip() for line in README.read_text().splitlines()]
    return [line for line in lines if line.startswith("curl ")]


def test_the_readme_has_curl_examples() -> None:
    # Guards the parametrisation below against an extraction that finds nothing.
    assert len(readme_curls()) >= 5
    assert any("filter={" in line for line in readme_curls())


@pytest.mark.parametrize("line", readme_curls())
def test_a_readme_curl_command_works(site: Site, line: str, tmp_path: Path) -> None:
    curl = shutil.which("curl")
    assert curl is not None, "curl is needed to run the README's commands"
    args = shlex.split(line, comments=True)
    assert args[0] == "curl"
    args = [a.replace(DOCUMENTED_BASE, site.url) for a in args[1:]]
    streaming = "-N" in args
    body = tmp_path / "body"
    command = [curl, "-sS", "-o", str(body), "-w", "%{http_code}", "--max-time"]
    command += [str(SSE_S if streaming else 30), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    # A stream is cut off by --max-time (28); anything else is curl refusing the command
    # (3: "nested brace in URL") or failing to talk to the API.
    assert done.returncode == (28 if streaming else 0), (line, done.returncode, done.stderr)
    status = int(done.stdout)
    text = body.read_text()
    if streaming:
        assert status == 200, text
        assert re.search(r"^data: ", text, re.MULTILINE), text[:500]
        return
    answer = json.loads(text)
    if status == 404:
        # The README's symbols are Binance's; this tickscan runs the simulated market.
        assert "/api/v1/candles" in line, (line, answer)
        assert answer["error"]["code"] == "not_found"
        assert "BTCUSDT" in answer["error"]["message"]
        return
    assert status == 200, (line, answer)
    if "/api/v1/scan" in line and "at=" not in line:
        assert "rows" in answer
