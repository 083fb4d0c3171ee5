"""A USDⓈ-M perpetual's history over REST into its tables, one recorded chunk at a time.

`backfill_perp_history` fetches what ``tickscan backfill --data`` asks for besides
candles, for each symbol, with the klines' chunks (one symbol, one UTC day of the range;
`flows.candles.backfill.plan_chunks`), resume and progress:

- ``funding``: ``/fapi/v1/fundingRate`` into ``funding`` (`FundingEvent`, source
  ``exchange``, with the mark price at the funding time). A day holds a few funding times,
  so consecutive days not yet done are fetched together (1000 a request): the endpoint
  allows 500 requests per 5 minutes per IP, shared with ``fundingInfo``.
- ``open-interest``: ``/futures/data/openInterestHist`` every 5 minutes into
  ``open_interest`` (source ``history``, with the value in the quote asset). Binance keeps
  **30 days** of it: the part of the range before that is left out, with a warning.
- ``mark-klines``: ``/fapi/v1/markPriceKlines`` 1m into ``mark_klines_1m``.

Rows go through `flows.sinks.perps.PerpWriter`; every table is a ReplacingMergeTree on the
record's key, so a rerun or a forced rerun writes identical rows. A chunk is recorded in
``backfill_progress`` (kind ``funding``, ``open_interest`` or ``mark_klines``) once its rows
are written; a chunk reaching into the present is written but not recorded.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from flows.candles.backfill import BackfillError, Chunk, plan_chunks
from flows.candles.kline_backfill import (
    DoneChunks,
    RestRun,
    check_symbols,
    done_chunks,
    epoch_ms,
    is_done,
    record_chunk,
    rest_failures,
    utc_datetime,
)
from flows.candles.reports import BackfillReport, HistoryCounts
from flows.sinks.perps import PerpWriter
from flows.sources.binance.perp_history import (
    FUNDING,
    MARK_KLINES,
    OPEN_INTEREST,
    HistoryEndpoint,
    fetch_history,
    open_interest_floor,
)
from flows.sources.binance.perp_responses import HISTORY_DAYS, OPEN_INTEREST_PERIOD_MS

__all__ = ["HISTORY", "HistoryKind", "backfill_perp_history"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HistoryKind:
    """One kind of perpetual history a backfill can fetch.

    Attributes:
        name: Its name on the command line (``--data``).
        progress_kind: ``backfill_progress.kind`` of its chunks.
        interval: ``backfill_progress.interval`` of its chunks: the sampling period.
        table: The table written.
        unit: What it counts, for progress and the summary.
        step_ms: Time between two records, to size the progress bar (0: not regular).
        run_days: Most consecutive days fetched together.
        endpoint: Where the records come from.
    """

    name: str
    progress_kind: str
    interval: str
    table: str
    unit: str
    step_ms: int
    run_days: int
    endpoint: HistoryEndpoint


HISTORY: dict[str, HistoryKind] = {
    kind.name: kind
    for kind in (
        HistoryKind(
            "funding", "funding", "", "funding", "funding events", 0, 300, FUNDING
        ),
        HistoryKind(
            "open-interest", "open_interest", "5m", "open_interest", "open-interest samples",
            OPEN_INTEREST_PERIOD_MS, 1, OPEN_INTEREST,
        ),
        HistoryKind(
            "mark-klines", "mark_klines", "1m", "mark_klines_1m", "mark klines", 60_000, 1,
            MARK_KLINES,
        ),
    )
}  # fmt: skip
"""Each kind by its ``--data`` name."""


async def backfill_perp_history(run: RestRun, *, now_ms: int | None = None) -> None:
    """Fetch and write the perpetual history the report asks for, chunk by chunk.

    The symbols share the REST client's weight budget and request windows; the report's
    `history` counts each kind as it goes; the progress shows one task per symbol and kind.

    Args:
        run: The backfill's REST work (a USDⓈ-M client).
        now_ms: The present (what is closed, what the 30 days count from); the wall clock
            by default.

    Raises:
        BackfillError: An unknown symbol or one that is not a perpetual, a Binance ban
            (with the time it ends) or another refusal. Completed chunks stay recorded.
    """
    client, rest, report = run.client, run.rest, run.report
    kinds = [HISTORY[name] for name in report.data if name in HISTORY]
    if not kinds:
        return
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    start_ms, end_ms = epoch_ms(report.start), epoch_ms(report.end)
    writer = PerpWriter(lambda: client, report.database, max_rows=1 << 30, max_age_ms=1 << 30)
    for kind in kinds:
        report.history[kind.name] = HistoryCounts()

    def finished() -> int:
        return report.chunks_written + sum(c.written for c in report.history.values())

    with rest_failures(rest, report, finished):
        _check_perpetuals(await check_symbols(rest, report.symbols, report.market))
        plans = {}
        for kind in kinds:
            done = (
                {} if run.force else done_chunks(client, report, kind.progress_kind, kind.interval)
            )
            plans[kind.name] = _plan(kind, report, start_ms, end_ms, now_ms, done)

        async def symbol_history(symbol: str) -> None:
            for kind in kinds:
                chunks, skipped = plans[kind.name]
                await _backfill_symbol(
                    run, writer, kind, symbol, chunks[symbol], skipped.get(symbol, 0), now_ms
                )

        await run.for_each_symbol(symbol_history)


def _check_perpetuals(entries: dict[str, dict[str, Any]]) -> None:
    """Raise `BackfillError` naming the symbols that are not perpetual contracts."""
    other = {s: e.get("contractType") for s, e in entries.items() if e.get("contractType")}
    delivery = sorted(s for s, kind in other.items() if kind != "PERPETUAL")
    if delivery:
        raise BackfillError(
            f"not perpetual contracts ({', '.join(f'{s} is {other[s]}' for s in delivery)}): "
            "funding and open-interest history exist for perpetuals only"
        )


def _plan(
    kind: HistoryKind,
    report: BackfillReport,
    start_ms: int,
    end_ms: int,
    now_ms: int,
    done: DoneChunks,
) -> tuple[dict[str, list[Chunk]], dict[str, int]]:
    """The chunks of one kind still to fetch per symbol, and those already done.

    Open interest starts no earlier than Binance keeps it; what is older is counted as
    clipped and warned about once.
    """
    counts = report.history[kind.name]
    floor = open_interest_floor(now_ms) if kind.name == "open-interest" else start_ms
    todo: dict[str, list[Chunk]] = {s: [] for s in report.symbols}
    skipped: dict[str, int] = {}
    for chunk in plan_chunks(report.symbols, start_ms, end_ms):
        counts.chunks += 1
        if chunk.end_ms <= floor:
            counts.clipped += 1
            continue
        if chunk.start_ms < floor:
            counts.clipped += 1
            chunk = Chunk(chunk.symbol, chunk.day, floor, chunk.end_ms)
        if is_done(done, chunk):
            counts.skipped += 1
            skipped[chunk.symbol] = skipped.get(chunk.symbol, 0) + _units(kind, chunk)
            continue
        todo[chunk.symbol].append(chunk)
    if floor > start_ms:
        kept_from = utc_datetime(min(floor, end_ms))
        warning = (
            f"open-interest history: Binance keeps only the last {HISTORY_DAYS} days, so "
            f"{report.start:%Y-%m-%d %H:%M} .. {kept_from:%Y-%m-%d %H:%M} UTC "
            f"was left out ({len(report.symbols)} symbol(s))"
        )
        logger.warning("%s", warning)
        report.warnings.append(warning)
    return todo, skipped


async def _backfill_symbol(
    run: RestRun,
    writer: PerpWriter,
    kind: HistoryKind,
    symbol: str,
    chunks: list[Chunk],
    skipped_units: int,
    now_ms: int,
) -> None:
    """Fetch one symbol's pending chunks of one kind, a run of consecutive days at a time."""
    client, report = run.client, run.report
    counts = report.history[kind.name]
    total = sum(_units(kind, c) for c in chunks) + skipped_units if kind.step_ms else None
    task = run.progress.task(f"{symbol} {kind.unit}", total=total)
    if total is not None:
        task.advance(skipped_units)
    fetched = 0
    for days in _runs(chunks, kind.run_days):
        span = (days[0].start_ms, days[-1].end_ms)
        records = await fetch_history(
            run.rest, kind.endpoint, symbol, span, now_ms=now_ms, on_page=task.advance
        )
        writer.add(records)
        writer.flush()
        counts.rows += len(records)
        fetched += len(records)
        for chunk in days:
            if chunk.end_ms > now_ms:
                # Reaches into the present: what exists is written, the rest is not yet.
                counts.open += 1
                continue
            time_ms = kind.endpoint.time_ms
            rows = sum(1 for r in records if chunk.start_ms <= time_ms(r) < chunk.end_ms)
            record_chunk(client, report, kind.progress_kind, kind.interval, chunk, rows)
            counts.written += 1
    if total is None:
        task.update(total=fetched, completed=fetched)


def _runs(chunks: list[Chunk], most: int) -> list[list[Chunk]]:
    """Consecutive chunks grouped, at most `most` to a group."""
    runs: list[list[Chunk]] = []
    for chunk in chunks:
        last = runs[-1] if runs else None
        if last and len(last) < most and last[-1].end_ms == chunk.start_ms:
            last.append(chunk)
        else:
            runs.append([chunk])
    return runs


def _units(kind: HistoryKind, chunk: Chunk) -> int:
    """Records a chunk holds at most, for the progress bar."""
    if not kind.step_ms:
        return 0
    step = kind.step_ms
    return -(-chunk.end_ms // step) + (-chunk.start_ms // step)  # multiples of step in it
