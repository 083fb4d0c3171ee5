"""The process supervisor: one stop path for every stage, bounded, reported once."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from runtime.supervisor import StageStuck, Supervisor, relayed


class Boom(Exception):
    pass


def test_a_failing_stage_stops_the_others_and_its_error_surfaces(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ended: list[str] = []
    go = threading.Event()

    def steady() -> None:
        stages.stopping.wait()
        ended.append("steady")

    def failing() -> None:
        go.wait()
        raise Boom("the broker went away")

    with pytest.raises(Boom, match="the broker went away"):  # noqa: SIM117
        with Supervisor(stop_timeout_s=10) as stages:
            stages.thread("steady", steady)
            stages.thread("failing", failing)
            go.set()
            assert stages.stopping.wait(10), "a failure must stop the process's stages"
    assert ended == ["steady"]
    failed = [r for r in caplog.records if r.getMessage() == "failing failed; stopping"]
    assert len(failed) == 1 and failed[0].exc_info is not None


def test_stages_stop_in_reverse_order_threads_before_what_they_run_on() -> None:
    order: list[str] = []

    @contextmanager
    def broker() -> Iterator[str]:
        order.append("broker up")
        yield "127.0.0.1:9092"
        order.append("broker down")

    def flow() -> None:
        stages.stopping.wait()
        order.append("flow joined")

    with Supervisor(stop_timeout_s=10) as stages:
        assert stages.enter("broker", broker()) == "127.0.0.1:9092"
        stages.thread("flow", flow)
        stages.service("api", object(), stop=lambda: order.append("api down"))
    assert order == ["broker up", "api down", "flow joined", "broker down"]


def test_stop_is_idempotent() -> None:
    stops: list[str] = []
    stages = Supervisor(stop_timeout_s=10)
    stages.service("api", None, stop=lambda: stops.append("api"))
    stages.thread("flow", stages.stopping.wait)
    stages.stop()
    stages.stop()
    with stages:
        pass
    assert stops == ["api"]
    assert stages.failure is None


def test_a_stage_that_ignores_stop_is_reported_after_the_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()
    stopped: list[str] = []
    stages = Supervisor(stop_timeout_s=0.2)
    stages.service("broker", None, stop=lambda: stopped.append("broker"))
    stages.thread("deaf", release.wait)  # never looks at `stopping`
    try:
        with pytest.raises(StageStuck, match=r"deaf did not stop within 0\.2 s"), stages:
            pass
        stages.stop()  # a second stop reports nothing more
    finally:
        release.set()
    stuck = [r for r in caplog.records if "deaf did not stop" in r.getMessage()]
    assert len(stuck) == 1 and stuck[0].levelno == logging.ERROR
    assert stopped == ["broker"], "what the stuck stage ran on still stops"


def test_an_error_while_starting_stops_what_had_started_and_is_the_one_raised() -> None:
    ran: list[str] = []

    def flow() -> None:
        stages.stopping.wait()
        ran.append("flow stopped")

    with pytest.raises(OSError, match="port in use"):  # noqa: SIM117
        with Supervisor(stop_timeout_s=10) as stages:
            stages.thread("flow", flow)
            raise OSError("port in use")
    assert ran == ["flow stopped"]


def test_a_stage_that_ends_ends_the_others_and_the_callers_event_stops_them() -> None:
    outer = threading.Event()
    with Supervisor(outer, stop_timeout_s=10) as stages:
        stages.thread("replay", lambda: None)  # publishes its files once, then returns
        assert stages.stopping.wait(10)
    assert outer.is_set(), "the caller's event is the one the stages watch"

    outer = threading.Event()
    seen = threading.Event()
    with Supervisor(outer, stop_timeout_s=10) as stages:
        stages.thread("flow", lambda: seen.set() if stages.stopping.wait(10) else None)
        outer.set()  # e.g. SIGTERM
    assert seen.is_set()


def test_a_service_whose_stop_fails_is_reported_and_the_rest_still_stop() -> None:
    stopped: list[str] = []

    def fail() -> None:
        raise Boom("api would not stop")

    with pytest.raises(Boom), Supervisor(stop_timeout_s=10) as stages:
        stages.service("broker", None, stop=lambda: stopped.append("broker"))
        stages.service("api", None, stop=fail)
    assert stopped == ["broker"]


def test_relayed_sets_the_loops_event_once_the_thread_event_is_set() -> None:
    stop = threading.Event()

    async def main() -> bool:
        async with relayed(stop, poll_s=0.01) as relay:
            assert not relay.is_set()
            threading.Timer(0.05, stop.set).start()
            await asyncio.wait_for(relay.wait(), 5)
            return relay.is_set()

    assert asyncio.run(main())


def test_relayed_without_a_thread_event_waits_for_the_caller() -> None:
    async def main() -> bool:
        async with relayed(None) as relay:
            await asyncio.sleep(0.05)
            return relay.is_set()

    assert asyncio.run(main()) is False
