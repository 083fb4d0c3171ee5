"""USDⓈ-M live ingest of perpetuals data, on the real broker and chDB through the fake Binance.

Mark prices and liquidations are read off the /market sockets and published; open
interest is polled for each perpetual and published; a perpetual whose mark price stops
while its connection flows is recorded ``no_mark_price`` until it resumes; a 429 on the
open-interest poll is waited out and the polls go on.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

import pytest
from clickhouse_connect.driver.client import Client

from flows.ingest.run import IngestReport, LiveStatus
from schemas import topics
from schemas.perps import liquidation_decoder, mark_decoder, open_interest_decoder
from tests.fakes.binance import FakeBinance
from tests.integration import live_run
from tests.integration.live_run import Run, gap_rows, live_ingest
from tickscan.settings import Settings

pytestmark = pytest.mark.integration

ROUND_S = 3.0
"""Open-interest round of the test: each perpetual polled every 3 s."""


def test_marks_liquidations_and_open_interest_are_published_and_their_faults_survived(
    make_settings: Callable[..., Settings], ch: Client, fresh_topic: Callable[[str], str]
) -> None:
    # Symbols of their own: data_quality is shared by the session's tests.
    steady, stopping, third = "PRPAUSDT", "PRPBUSDT", "PRPCUSDT"
    symbols = [steady, stopping, third]
    settings = make_settings(
        mark_missing_after_s=2.0, open_interest_every_s=ROUND_S, stale_after_s=30.0
    )
    names = (topics.MARKS, topics.LIQUIDATIONS, topics.OPEN_INTEREST)
    perp_topics = {name: fresh_topic(name) for name in names}

    async def scenario(fake: FakeBinance) -> tuple[LiveStatus, LiveStatus, IngestReport]:
        run = Run(
            live_ingest(
                settings, fake, fresh_topic,
                marks_topic=perp_topics[topics.MARKS],
                liquidations_topic=perp_topics[topics.LIQUIDATIONS],
                open_interest_topic=perp_topics[topics.OPEN_INTEREST],
            )
        )  # fmt: skip
        await live_run.open_market(fake, run)
        await run.until(lambda: run.live.counts.marks >= 3 * len(symbols), 15, "marks")
        await run.until(lambda: run.live.counts.liquidations >= 2, 20, "liquidations")
        # The next two polls answer 429 (Retry-After 1 s): waited out, then answered.
        polled = published(run.live.status())
        fake.fail_open_interest(count=2, retry_after=1)
        await run.until(lambda: published(run.live.status()) >= polled + 4, 20, "polls after 429")
        fake.stop_mark_price(stopping)
        await run.until(
            lambda: run.live.status().no_mark_price == [stopping], 15, "the missing mark price"
        )
        missing = run.live.status()
        await asyncio.sleep(1.5)  # still missing a moment after it was found
        assert run.live.status().no_mark_price == [stopping]
        fake.resume_mark_price(stopping)
        await run.until(lambda: not run.live.status().no_mark_price, 15, "marks to resume")
        status = run.live.status()
        return missing, status, await run.finish(fake)

    with FakeBinance("usdm", symbols=symbols, rate=0.0, seed=31) as fake:
        fake._perp.liquidation_rate = 0.3
        missing, status, report = asyncio.run(scenario(fake))
        served = fake.open_interest_served
        refused = [r for r in fake.rest_requests if r[0].endswith("/openInterest") and r[2] == 429]
        last_prices = {s: Decimal(fake.trades(s)[-1]["p"]) for s in symbols}
    bootstrap = settings.kafka.bootstrap
    assert bootstrap is not None

    # Marks: every perpetual's, each second, near its trades' price, funding at 00/08/16.
    assert report.counts.marks > 0 and report.counts.rejected == 0
    marks = [
        mark_decoder().decode(v)
        for _, v in live_run.read_topic(bootstrap, perp_topics[topics.MARKS], report.counts.marks)
    ]
    assert len(marks) == report.counts.marks
    assert Counter(m.symbol for m in marks).keys() == set(symbols)
    for mark in marks:
        assert (mark.exchange, mark.market) == ("binance", "usdm")
        assert mark.time_us % 1_000_000 == 0
        assert mark.next_funding_time_us % (8 * 3600 * 1_000_000) == 0
        assert abs(mark.mark_price / last_prices[mark.symbol] - 1) < Decimal("0.05")
        assert mark.funding_rate is not None
    # The stopped mark price left a hole of a few seconds in that symbol's marks only.
    gaps = {s: max_gap_s([m.time_us for m in marks if m.symbol == s]) for s in symbols}
    assert gaps[stopping] >= 3.0 and gaps[steady] <= 2.0 and gaps[third] <= 2.0, gaps

    liquidations = [
        liquidation_decoder().decode(v)
        for _, v in live_run.read_topic(
            bootstrap, perp_topics[topics.LIQUIDATIONS], report.counts.liquidations
        )
    ]
    assert len(liquidations) == report.counts.liquidations >= 2
    assert {liq.symbol for liq in liquidations} <= set(symbols)
    for liq in liquidations:
        assert liq.filled_qty <= liq.qty and liq.status == "FILLED"
        # The bankruptcy price lies past the fill: below it for a long, above for a short.
        assert liq.price < liq.avg_price if liq.is_long else liq.price > liq.avg_price

    # Open interest: polled for every perpetual, each answer published once.
    polls = report.open_interest
    assert polls is not None and polls.polls["published"] == sum(served.values())
    samples = [
        open_interest_decoder().decode(v)
        for _, v in live_run.read_topic(
            bootstrap, perp_topics[topics.OPEN_INTEREST], polls.polls["published"]
        )
    ]
    assert len(samples) == polls.polls["published"]
    assert {s.symbol for s in samples} == set(symbols)
    assert all(s.source == "poll" and s.open_interest > 0 for s in samples)
    # The 429s were answered, held and retried by the client: no poll was lost.
    assert len(refused) == 2 and polls.polls["failed"] == 0
    # Its weight: one a poll, three perpetuals every 3 s.
    assert (polls.round_s, polls.weight_per_minute) == (ROUND_S, 60.0)
    assert polls.weight == len(refused) + polls.polls["published"]
    assert status.open_interest is not None and status.open_interest.weight_per_minute == 60.0

    # The missing mark price: open while missing, then repaired, for that symbol only.
    assert missing.no_mark_price == [stopping] and missing.counts.no_mark == 1
    assert report.counts.no_mark == 1 and missing.stale_symbols == []
    rows = [r for r in gap_rows(ch, "usdm", kind="no_mark_price") if r["symbol"] in symbols]
    assert [(r["symbol"], r["status"], r["version"]) for r in rows] == [(stopping, "repaired", 2)]
    assert f"{stopping.lower()}@markPrice@1s" in rows[0]["detail"]
    assert rows[0]["resolved_at"] > rows[0]["detected_at"]


def published(status: LiveStatus) -> int:
    """Open-interest samples published so far."""
    return status.open_interest.polls["published"] if status.open_interest else 0


def max_gap_s(times_us: list[int]) -> float:
    """The longest time between two consecutive samples, in seconds."""
    ordered = sorted(times_us)
    return max((b - a for a, b in itertools.pairwise(ordered)), default=0) / 1e6
