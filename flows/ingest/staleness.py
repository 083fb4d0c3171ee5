"""Stale symbols: a followed symbol whose streams went silent while its connection flowed.

A connection silent as a whole is replaced by its shard (``stall``). One symbol's
streams can go silent while the connection carrying them goes on delivering the other
symbols': the exchange dropped the subscription, or stopped publishing the symbol. No
trade id reveals that until trades resume, so the silence itself is watched.

A symbol's bookTicker is its heartbeat: it changes with every change at the top of the
book, and every trade changes it, so it is the stream that may not go quiet. A trade
stream silent while the bookTicker flows is a quiet market, not a fault (and ids it lost
would show as a gap once trades resume), so a symbol is stale when its bookTicker has
been silent for `IngestSettings.stale_after_s` on an open connection whose other streams
flow (`flows.sources.binance.ws.StreamPool.silent`). It is then written to
``data_quality`` (``kind='stale'``, ``open``) with the streams found silent, a warning
is logged and the live status counts it; when the bookTicker delivers again it is
rewritten (``repaired``, version 2) with how long it was silent.

The same watch, judged on another stream, finds a perpetual without mark price: Binance
documents that a ``markPrice`` subscription on the wrong URL path "will not deliver" and
fails silently, so a followed perpetual whose ``@markPrice@1s`` has been silent for
`IngestSettings.mark_missing_after_s` while its connection flows is recorded
``kind='no_mark_price'`` the same way (`MARK_PRICE_WATCH`), ``open`` until marks arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from flows.ingest.data_quality import DataQualityLog
from flows.sources.binance.perps import MARK_PRICE_STREAM
from schemas.trades import Market

logger = logging.getLogger(__name__)

HEARTBEAT = "bookTicker"
"""The stream kind that judges whether a symbol is silent."""


@dataclass(frozen=True, slots=True)
class Watched:
    """What a silence watch judges and how its findings are recorded.

    Attributes:
        heartbeat: The stream kind whose silence makes a finding (``bookTicker``).
        kind: The ``data_quality`` kind of a finding (``stale``).
        label: What a symbol found is, for log lines (``stale``).
    """

    heartbeat: str
    kind: str
    label: str


STALE_WATCH = Watched(HEARTBEAT, "stale", "stale")
"""A symbol whose bookTicker is silent: stale."""

MARK_PRICE_WATCH = Watched(MARK_PRICE_STREAM, "no_mark_price", "without mark price")
"""A perpetual whose ``@markPrice@1s`` is silent: no mark price."""


@dataclass(frozen=True, slots=True)
class Silence:
    """A symbol found stale.

    Attributes:
        symbol: The symbol.
        streams: Its streams silent when it was found, sorted.
        since: `time.monotonic()` of its heartbeat's last message (or of when its
            heartbeat began to be judged on its socket).
        found: `time.monotonic()` when it was found.
        detected_at: The same moment in UTC, to the ms: its ``data_quality`` key.
    """

    symbol: str
    streams: tuple[str, ...]
    since: float
    found: float
    detected_at: datetime


@dataclass(frozen=True, slots=True)
class Resumed:
    """A stale symbol whose heartbeat delivered again.

    Attributes:
        silence: The silence that ended.
        silent_s: Seconds from its last message before to its latest one after.
    """

    silence: Silence
    silent_s: float


def _symbol(stream: str) -> str:
    return stream.partition("@")[0].upper()


# -- pure logic ------------------------------------------------------------------------


class StaleWatch:
    """Turns the silent streams of each check into symbols gone stale and come back.

    Each symbol is reported once when it goes stale, and once when it resumes.

    Args:
        heartbeat: The stream kind whose silence makes a symbol stale.
    """

    def __init__(self, heartbeat: str = HEARTBEAT) -> None:
        self.heartbeat = heartbeat
        self._open: dict[str, Silence] = {}

    @property
    def stale(self) -> list[str]:
        """Symbols stale now, sorted."""
        return sorted(self._open)

    def update(
        self,
        silent: Mapping[str, float],
        last_message: Callable[[str], float | None],
        now: float,
        wall: datetime,
    ) -> tuple[list[Silence], list[Resumed]]:
        """Judge one check.

        Args:
            silent: Streams silent now, with the monotonic time they are silent since
                (`StreamPool.silent`).
            last_message: Monotonic time of a stream's last message (None: none yet).
            now: The monotonic clock now.
            wall: The UTC clock now.

        Returns:
            The symbols gone stale at this check, and those whose heartbeat resumed.
        """
        by_symbol: dict[str, list[str]] = {}
        for stream in silent:
            by_symbol.setdefault(_symbol(stream), []).append(stream)
        detected_at = wall.replace(microsecond=wall.microsecond // 1000 * 1000)
        found: list[Silence] = []
        for symbol, streams in sorted(by_symbol.items()):
            beat = f"{symbol.lower()}@{self.heartbeat}"
            if beat not in silent or symbol in self._open:
                continue
            silence = Silence(symbol, tuple(sorted(streams)), silent[beat], now, detected_at)
            self._open[symbol] = silence
            found.append(silence)
        resumed: list[Resumed] = []
        for symbol, silence in list(self._open.items()):
            beat = f"{symbol.lower()}@{self.heartbeat}"
            heard = last_message(beat)
            if beat not in silent and heard is not None and heard > silence.since:
                del self._open[symbol]
                resumed.append(Resumed(silence, heard - silence.since))
        return found, resumed

    def forget(self, symbols: Iterable[str]) -> None:
        """Stop watching symbols no longer followed (a delisted symbol is not stale)."""
        for symbol in symbols:
            self._open.pop(symbol, None)


# -- running it ------------------------------------------------------------------------


class StaleMonitor:
    """Runs a `StaleWatch` over a stream pool inside a live ingest and records findings.

    Args:
        silent: The pool's silent streams after some seconds (`StreamPool.silent`).
        last_message: The pool's last message time of a stream.
        log: Where stale symbols are recorded.
        market: For log lines.
        after_s: Seconds of silence that make a symbol stale.
        watched: What is judged and recorded: stale symbols by default.
    """

    def __init__(
        self,
        silent: Callable[[float], Mapping[str, float]],
        last_message: Callable[[str], float | None],
        log: DataQualityLog,
        *,
        market: Market,
        after_s: float,
        watched: Watched = STALE_WATCH,
    ) -> None:
        self.watched = watched
        self.watch = StaleWatch(watched.heartbeat)
        self.found = 0
        self._silent = silent
        self._last_message = last_message
        self._log = log
        self._market = market
        self._after_s = after_s
        # Often enough that a silence is found within a few percent of `after_s`.
        self._every_s = min(1.0, after_s / 4)
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Check every second or so until `stop` (a row being written is finished)."""
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._every_s)
                return
            found, resumed = self.watch.update(
                self._silent(self._after_s),
                self._last_message,
                time.monotonic(),
                datetime.now(UTC),
            )
            for silence in found:
                await self._found(silence)
            for back in resumed:
                await self._resumed(back)

    def stop(self) -> None:
        """Make `run` return once the row it may be writing is written."""
        self._stopping.set()

    def forget(self, symbols: Collection[str]) -> None:
        """Stop watching symbols no longer followed."""
        self.watch.forget(symbols)

    async def _found(self, silence: Silence) -> None:
        self.found += 1
        silent_s = silence.found - silence.since
        detail = (
            f"{', '.join(silence.streams)} silent for {silent_s:.1f} s while other streams "
            "on the connection flowed"
        )
        logger.warning("%s %s %s: %s", self._market, silence.symbol, self.watched.label, detail)
        await self._record(silence, "open", 1, detail, None)

    async def _resumed(self, back: Resumed) -> None:
        silence = back.silence
        detail = f"{', '.join(silence.streams)} silent for {back.silent_s:.1f} s, then resumed"
        logger.info("%s %s: %s", self._market, silence.symbol, detail)
        await self._record(silence, "repaired", 2, detail, datetime.now(UTC))

    async def _record(
        self, silence: Silence, status: str, version: int, detail: str, at: datetime | None
    ) -> None:
        try:
            await self._log.stale(
                silence.symbol, silence.detected_at, status, version, detail=detail,
                resolved_at=at, kind=self.watched.kind,
            )  # fmt: skip
        except Exception:
            # A finding that cannot be written is logged (above and here); watching and
            # ingest go on.
            logger.exception(
                "%s %s: cannot record its %s %s row",
                self._market, silence.symbol, status, self.watched.kind,
            )  # fmt: skip
