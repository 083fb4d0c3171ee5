"""The web UI's pure modules (countdowns, flashes, URLs, chart labels) under node's test
runner: `npm test` in ui/ bundles each src/**/*.test.ts and runs it, no browser, no socket."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

UI = Path(__file__).resolve().parents[3] / "ui"


def test_the_ui_unit_tests_pass() -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js is needed to build and test the UI (make ui)"
    run = subprocess.run(
        [node, "scripts/test.mjs"], cwd=UI, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "# fail 0" in run.stdout and "# pass " in run.stdout
