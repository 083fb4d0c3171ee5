"""One process's stages (flow threads, servers, the broker) started in order and stopped together.

A long-running process runs several stages at once: `tickscan run` a broker, the flows,
a trade source and the API. Each can fail on its own, and a process that goes on with one
of them dead serves a board that silently stopped moving. So they share one stop path:
the first stage to fail, or a stop asked for by anyone (a signal, a broker that must be
replaced), stops every stage, the last started first, and the process then reports the
failure once.

Two kinds of stage:

- a *thread* runs a function that returns when `Supervisor.stopping` is set (the flows
  and sources watch that one event, so they wind down together and are joined in
  reverse order);
- a *service* was started by the caller (a child process, a server thread) and is
  stopped by calling what it was registered with.

Stopping is bounded: a thread that has not ended `stop_timeout_s` after the stop began
is named at ERROR and left behind (its thread is a daemon) rather than hanging the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Self, TypeVar

from runtime.errors import RuntimeSetupError

logger = logging.getLogger(__name__)

T = TypeVar("T")

STOP_TIMEOUT_S = 60.0
"""How long the stages of a process together may take to stop once asked.

Generous: a live ingest drains its queue, repairs the gaps still open and flushes Kafka
before it returns, and a flow finishes the batch in hand.
"""


class StageStuck(RuntimeSetupError):
    """A stage did not stop within the supervisor's timeout."""


@dataclass
class _Stage:
    name: str
    stop: Callable[[], object] | None = None
    """A service's stop; None for a thread, which watches `Supervisor.stopping`."""
    thread: threading.Thread | None = None


class Supervisor:
    """Runs the stages of one process and stops them all through one path.

    Use it as a context manager: leaving the block stops every stage, and then raises the
    first stage's failure (unless an exception is already on its way out)::

        with Supervisor() as stages:
            broker = stages.enter("broker", EmbeddedBroker(data_dir))
            flow = build_flow(..., stop=stages.stopping)
            stages.thread("candle-flow", lambda: run_main(flow))
            stages.service("api", server, stop=server.stop)
            while not stages.stopping.wait(0.5):
                ...  # report progress

    Stages are started and the supervisor stopped from the thread that owns it; a stage
    may fail, and `stopping` be set, from any thread.

    Args:
        stopping: The event the thread stages watch, when the caller already has one
            (a signal handler's); setting it stops every stage, and stopping sets it.
            None: a fresh one.
        stop_timeout_s: How long the threads together may take to end once stopped.
    """

    def __init__(
        self,
        stopping: threading.Event | None = None,
        *,
        stop_timeout_s: float = STOP_TIMEOUT_S,
    ) -> None:
        self.stopping = stopping if stopping is not None else threading.Event()
        """Set once the stages are being stopped: every thread stage watches it."""
        self._stop_timeout_s = stop_timeout_s
        self._stages: list[_Stage] = []
        self._failures: list[BaseException] = []
        self._lock = threading.Lock()
        self._stopped = False

    # -- starting ------------------------------------------------------------------------

    def thread(self, name: str, target: Callable[[], object]) -> None:
        """Start a thread stage.

        When it ends, every stage is asked to stop; if it raised, the failure is logged
        with its traceback and kept for `failure`.

        Args:
            name: The thread's name, and the stage's in the log.
            target: Runs the stage; it must return once `stopping` is set.
        """

        def body() -> None:
            try:
                target()
            except BaseException as exc:
                logger.exception("%s failed; stopping", name)
                with self._lock:
                    self._failures.append(exc)
            finally:
                # A stage that ends, failed or not, ends the process's work: the others
                # were composed to run beside it.
                self.stopping.set()

        thread = threading.Thread(target=body, name=name, daemon=True)
        self._stages.append(_Stage(name, thread=thread))
        thread.start()

    def service(self, name: str, started: T, *, stop: Callable[[], object]) -> T:
        """Register something already started (a server, a child process) with its stop.

        Args:
            name: The stage's name in the log.
            started: What was started.
            stop: Stops it and waits for it, bounded by its own timeout.

        Returns:
            `started`, so a start and its registration read as one line.
        """
        self._stages.append(_Stage(name, stop=stop))
        return started

    def enter(self, name: str, context: AbstractContextManager[T]) -> T:
        """Enter `context` now (e.g. start the embedded broker) and exit it when stopping.

        Returns:
            What entering it returned.
        """
        value = context.__enter__()
        return self.service(name, value, stop=lambda: context.__exit__(None, None, None))

    # -- running -------------------------------------------------------------------------

    @property
    def failure(self) -> BaseException | None:
        """The first failure of a stage (or a stage stuck at stop); None while all is well."""
        with self._lock:
            return self._failures[0] if self._failures else None

    def stop(self) -> None:
        """Stop every stage, the last started first, and wait for them (bounded).

        Idempotent: a second call returns at once. A service whose stop raises is logged
        and its error kept like a stage's failure; the other stages still stop.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self.stopping.set()
        deadline = time.monotonic() + self._stop_timeout_s
        for stage in reversed(self._stages):
            if stage.thread is not None:
                stage.thread.join(max(0.0, deadline - time.monotonic()))
                if stage.thread.is_alive():
                    self._stuck(stage.name)
            elif stage.stop is not None:
                try:
                    stage.stop()
                except Exception as exc:
                    logger.exception("stopping %s failed", stage.name)
                    with self._lock:
                        self._failures.append(exc)

    def _stuck(self, name: str) -> None:
        logger.error(
            "%s did not stop within %g s of being asked; leaving it behind",
            name,
            self._stop_timeout_s,
        )
        with self._lock:
            self._failures.append(
                StageStuck(f"{name} did not stop within {self._stop_timeout_s:g} s")
            )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        failure = self.failure
        if exc_info[1] is None and failure is not None:
            raise failure


@contextlib.asynccontextmanager
async def relayed(
    stop: threading.Event | None, poll_s: float = 0.1
) -> AsyncIterator[asyncio.Event]:
    """An asyncio event set once `stop` (set from any thread) is, for a coroutine's stop.

    A `threading.Event` cannot wake an event loop, so it is looked at every `poll_s`.
    None gives an event only the caller sets (run until the process is interrupted).
    """
    relay = asyncio.Event()
    if stop is None:
        yield relay
        return

    async def watch() -> None:
        while not stop.is_set():
            await asyncio.sleep(poll_s)
        relay.set()

    watcher = asyncio.create_task(watch(), name="stop-relay")
    try:
        yield relay
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
