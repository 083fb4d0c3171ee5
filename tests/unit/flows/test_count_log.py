"""When a running count is said: only when it grew, and at most once every so often."""

from __future__ import annotations

from flows.count_log import CountLog
from tests.fakes.clock import Clock


def test_a_count_is_said_when_it_grew_and_the_interval_passed() -> None:
    clock = Clock(100.0)
    log = CountLog(clock)
    assert log.due(0, every_s=60.0) is None  # nothing came
    clock.now += 30.0
    assert log.due(5, every_s=60.0) is None  # too soon
    clock.now += 31.0
    assert log.due(7, every_s=60.0) == (7, 61.0)
    clock.now += 100.0
    assert log.due(7, every_s=60.0) is None  # said already, nothing new
    assert log.due(10, every_s=60.0) == (3, 100.0)  # only what came since


def test_a_summary_line_counts_as_said() -> None:
    clock = Clock(100.0)
    log = CountLog(clock)
    clock.now += 500.0
    log.said_all(40)
    assert log.due(40, every_s=0.0) is None
    clock.now += 10.0
    assert log.due(41, every_s=0.0) == (1, 10.0)
