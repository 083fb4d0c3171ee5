"""Fixtures and hooks for every test: integration tests may fail, never skip."""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Turn a skipped integration test into a failure: a skipped suite proves nothing."""
    report = yield
    if report.skipped and item.get_closest_marker("integration") is not None:
        report.outcome = "failed"
        report.longrepr = f"integration test skipped ({report.longrepr}); they must run"
    return report


@pytest.fixture
def no_tickscan_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset every TICKSCAN_* variable: a developer's own must not leak into a test of
    what settings the environment gives."""
    for name in [k for k in os.environ if k.startswith("TICKSCAN_")]:
        monkeypatch.delenv(name)
