"""A symbol whose streams go silent while its connection flows is recorded stale, then resumed."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest
from clickhouse_connect.driver.client import Client

from flows.ingest.run import IngestReport, LiveStatus
from schemas import topics
from tests.fakes.binance import FakeBinance
from tests.integration import live_run
from tests.integration.live_run import Run, gap_rows, live_ingest
from tickscan.settings import Settings

pytestmark = pytest.mark.integration


def test_a_silent_symbol_is_recorded_stale_until_its_data_resumes(
    make_settings: Callable[..., Settings], ch: Client, fresh_topic: Callable[[str], str]
) -> None:
    # Symbols of its own: data_quality is shared by the session's tests.
    silent, quiet, busy = "STLAUSDT", "STLBUSDT", "STLCUSDT"
    settings = make_settings(stale_after_s=2.0)

    async def scenario(fake: FakeBinance) -> tuple[LiveStatus, IngestReport]:
        run = Run(live_ingest(settings, fake, fresh_topic))
        await live_run.open_market(fake, run)
        await run.until(lambda: run.live.counts.trades > 100, 15, "trades")
        fake.silence(silent, 5.0)  # neither its trades nor its quotes are sent
        fake.skip_ids(quiet, 200)  # its trades stop for 5 s; its quotes go on
        await run.until(lambda: silent in run.live.status().stale_symbols, 15, "the stale symbol")
        while_stale = run.live.status()
        await run.until(lambda: not run.live.status().stale_symbols, 20, "its data to resume")
        # Both symbols' trades came back after ids never sent: gaps, repaired.
        await run.until(lambda: run.live.status().repairs.repaired >= 2, 20, "the repairs")
        return while_stale, await run.finish(fake)

    with FakeBinance("spot", symbols=[silent, quiet, busy], rate=0.0, seed=23) as fake:
        while_stale, report = asyncio.run(scenario(fake))
        bootstrap = settings.kafka.bootstrap
        assert bootstrap is not None
        consumed = live_run.consume_trades(bootstrap, fresh_topic(topics.TRADES), report)
        live_run.assert_no_trade_missing(consumed, fake)

    assert while_stale.stale_symbols == [silent] and while_stale.counts.stale == 1
    assert report.counts.stale == 1
    # One row, rewritten from open to repaired; none for the symbol merely quiet on trades.
    rows = [r for r in gap_rows(ch, "spot", kind="stale") if r["symbol"] in (silent, quiet, busy)]
    assert [(r["symbol"], r["status"], r["version"]) for r in rows] == [(silent, "repaired", 2)]
    row = rows[0]
    assert row["resolved_at"] is not None and row["resolved_at"] > row["detected_at"]
    detail = row["detail"]
    assert "stlausdt@bookTicker" in detail and "stlausdt@trade" in detail, detail
    match = re.search(r"silent for ([0-9.]+) s", detail)
    assert match is not None and float(match.group(1)) > 2.0, detail
