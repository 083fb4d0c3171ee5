"""Process tuning: collections run ahead of their thresholds when the caller is idle."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from runtime.process import collect_ahead


@pytest.fixture
def thresholds() -> Iterator[None]:
    """Restore the collector's thresholds (and collect) after the test."""
    saved = gc.get_threshold()
    gc.collect()
    yield
    gc.set_threshold(*saved)
    gc.collect()


def test_nothing_is_collected_while_no_generation_is_near_its_threshold(
    thresholds: None,
) -> None:
    gc.set_threshold(100_000, 10, 10)
    gc.collect()
    assert collect_ahead() is None


def test_the_young_generation_is_collected_once_past_the_share(thresholds: None) -> None:
    gc.set_threshold(100_000, 10, 10)
    gc.collect()
    kept = [[] for _ in range(60_000)]  # 60% of the young threshold, still alive
    assert gc.get_count()[0] >= 60_000
    assert collect_ahead(share=0.5) == 0
    assert gc.get_count()[0] < 1_000
    assert len(kept) == 60_000


def test_the_oldest_due_generation_is_collected(thresholds: None) -> None:
    gc.set_threshold(100_000, 10, 4)
    gc.collect()
    for _ in range(3):  # three young collections and three middle ones
        gc.collect(1)
    assert gc.get_count()[2] == 3
    assert collect_ahead(share=0.5) == 2
    assert gc.get_count()[2] == 0
