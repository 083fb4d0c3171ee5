"""Ranks subscriptions: each distinct filter's view of the live board, evaluated once per
update for all its subscribers, and the loop that paces the evaluations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from api.live.board import Board, FilteredBoard
from api.live.clients import LiveStats, Message, Subscription
from api.services.filter_eval import CompiledFilter, SymbolLookup
from runtime.process import collect_ahead

logger = logging.getLogger(__name__)

COALESCE_S = 0.02
"""A board evaluation waits at least this long after a change, so that rows arriving a few
ms apart (from several partitions) make one diff."""

COMPLETE_WAIT_S = 0.15
"""...and at most this long for the rest of a second that came split in two (fewer rows
than the second before had): a second's rows can reach the feed in two fetches, ~60 ms
apart on Tansu, and the second part would otherwise wait for the next evaluation."""


@dataclass(eq=False, slots=True)
class View:
    """A filter's view of the board and the ranks subscriptions that share it."""

    board: FilteredBoard
    subs: set[Subscription] = field(default_factory=set)
    resync: bool = False


class Views:
    """The views of the board that ranks subscriptions follow, one per distinct filter.

    Args:
        board: The live board.
        symbols: Returns symbol metadata by key (quote-asset filters read it).
        stats: Where evaluations, diffs and snapshots are counted.
        interval_s: `board_interval_s` of the API settings (see `run`).
        coalesce_s: How long an evaluation waits at least after a change.
        complete_wait_s: How long it waits at most for the rest of a split second.
    """

    def __init__(
        self,
        board: Board,
        symbols: Callable[[], SymbolLookup],
        stats: LiveStats,
        interval_s: float,
        coalesce_s: float = COALESCE_S,
        complete_wait_s: float = COMPLETE_WAIT_S,
    ) -> None:
        self.board = board
        self.symbols = symbols
        self.stats = stats
        self.interval_s = interval_s
        self.coalesce_s = coalesce_s
        self.complete_wait_s = complete_wait_s
        self._views: dict[str, View] = {}
        self._wake = asyncio.Event()

    def join(self, sub: Subscription, compiled: CompiledFilter, ack: Message | None = None) -> None:
        """Add a subscription to the view of its filter (made and evaluated if new) and
        queue the view's snapshot for it, after `ack` if given."""
        view = self._views.get(compiled.key)
        if view is None:
            view = self._views[compiled.key] = View(FilteredBoard(compiled))
            self._evaluate(view)
        view.subs.add(sub)
        sub.target = view
        sub.needs_snapshot = False
        self.stats.snapshots += 1
        if ack is not None:
            sub.client.reply(ack)
        sub.client.put(sub, Message("snapshot", view.board.snapshot(), view.board.seq))

    def leave(self, sub: Subscription) -> None:
        """Remove a subscription from its view; a view nobody follows is dropped."""
        view = sub.target
        assert isinstance(view, View)
        view.subs.discard(sub)
        sub.target = None
        if not view.subs:
            del self._views[view.board.compiled.key]

    def resync(self, sub: Subscription) -> None:
        """A subscription lost an update: it gets a snapshot at the next evaluation."""
        if isinstance(sub.target, View):
            sub.target.resync = True
            self._wake.set()

    def wake(self) -> None:
        """The board changed: evaluate soon."""
        self._wake.set()

    def _evaluate(self, view: View) -> Message | None:
        started = time.perf_counter()
        diff = view.board.evaluate(self.board, self.symbols())
        stats = self.stats
        stats.evaluations += 1
        stats.evaluation_s += time.perf_counter() - started
        if diff is None:
            return None
        stats.diffs += 1
        stats.diff_rows += diff.rows
        stats.last_diff_rows = diff.rows
        return Message("diff", diff.body, view.board.seq)

    def publish(self) -> None:
        """Evaluate each distinct filter once and send every subscriber its update.

        A subscriber that holds the previous state gets the diff; one that lost updates
        gets a snapshot of the new state instead. Nothing is sent for a view that did
        not change.
        """
        for view in list(self._views.values()):
            diff = None
            if view.board.board_version != self.board.version:
                diff = self._evaluate(view)
            if diff is None and not view.resync:
                continue
            view.resync = False
            snapshot = None
            for sub in list(view.subs):
                if sub.needs_snapshot:
                    if snapshot is None:
                        self.stats.snapshots += 1
                        snapshot = Message("snapshot", view.board.snapshot(), view.board.seq)
                    sub.needs_snapshot = False
                    sub.client.put(sub, snapshot)
                elif diff is not None:
                    sub.client.put(sub, diff)

    async def run(self) -> None:
        """The board loop: evaluate soon after the board changes, at most four times an
        interval, once in the common case.

        A second's rows are published together, so the first of them starts an
        evaluation: at once if they all came in one batch (the second has as many rows
        as the second before it), else `coalesce_s` later or once the rest has come (at
        most `complete_wait_s` later). Each second of data then makes one
        diff, soon after it arrives, whatever the phase of the second: a fixed tick would
        add up to a whole interval, and "one interval since the last evaluation" would
        lock onto whatever phase the first evaluation had. Rows that still come late go
        out with an evaluation of their own, never sooner than a quarter of
        `interval_s` after the previous one, rather than wait for the next second.

        Half an interval after the last evaluation, when the loop is idle, it runs any
        garbage collection that is nearly due (`collect_ahead`): left to its thresholds,
        a collection would stop the fan-out of a second for up to a few hundred ms.
        """
        loop = asyncio.get_running_loop()
        min_gap = self.interval_s / 4
        last = -math.inf
        collection: asyncio.TimerHandle | None = None
        while True:
            await self._wake.wait()
            started = loop.time()
            # A second that came whole is evaluated at once; part of one waits a little
            # for the rest (see the docstring).
            pause = 0.0 if self.board.second_complete else self.coalesce_s
            await asyncio.sleep(max(pause, last + min_gap - started))
            deadline = started + self.complete_wait_s
            while not self.board.second_complete and (left := deadline - loop.time()) > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), left)
            self._wake.clear()
            last = loop.time()
            try:
                self.publish()
            except Exception:  # one failed evaluation must not end live delivery
                logger.exception("board evaluation failed")
            # Half an interval on, the fan-out is done and the next second not yet due.
            if collection is not None:
                collection.cancel()
            collection = loop.call_later(self.interval_s / 2, collect_ahead)
