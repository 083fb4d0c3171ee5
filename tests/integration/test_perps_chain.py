"""Perpetuals data through the whole chain: `tickscan run --source binance` against the fake
USDⓈ-M Binance, on the real broker and chDB.

The fake's mark prices, liquidations and open-interest answers go through the live ingest,
the broker, the store (marks_1s, liquidations, open_interest) and the signals flow to the
run's board (`GET /api/v1/scan`). Once the fake's perpetuals data has stopped, each
perpetual's board row is checked against the metrics recomputed here from what the fake
emitted, by the definitions of `flows.signals.perps.PerpState.values`; and every record
the fake emitted is checked to be in its table exactly once.
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from api.settings import ApiSettings
from flows.candles.flow import FlowCounters
from flows.ingest.settings import IngestSettings
from runtime.clickhouse import connect
from runtime.settings import ClickHouseSettings
from schemas.ranks import LIQ_WINDOWS, OI_WINDOWS, PERP_METRICS, WINDOW_MS
from tests.fakes.binance import FakeBinance
from tests.integration.test_run import wait_for
from tickscan.banner import Endpoints
from tickscan.run import run
from tickscan.run_options import RunOptions
from tickscan.settings import Settings

pytestmark = pytest.mark.integration

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
MARK_STREAM_SUFFIX = "@markPrice@1s"
FORCE_ORDER_STREAM = "!forceOrder@arr"


class RecordingBinance(FakeBinance):
    """The fake USDⓈ-M Binance, keeping every perpetuals message it delivered: the mark
    prices and liquidations sent to a subscriber, and the open-interest answers given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.marks_sent: list[dict[str, Any]] = []
        self.liquidations_sent: list[dict[str, Any]] = []
        self.open_interest_sent: list[dict[str, Any]] = []

    def _emit(self, stream: str, payload: dict[str, Any]) -> None:
        if self._subs.get(stream):
            if stream.endswith(MARK_STREAM_SUFFIX):
                self.marks_sent.append(payload)
            elif stream == FORCE_ORDER_STREAM:
                self.liquidations_sent.append(payload["o"])
        super()._emit(stream, payload)

    def _open_interest(self, params: dict[str, str]) -> dict[str, Any]:
        answer = super()._open_interest(params)
        self.open_interest_sent.append(answer)
        return answer

    def quiesce(self) -> int:
        """Stop the perpetuals data at once: no more trades (so open interest stays put),
        liquidations or mark prices; the open-interest polls go on being answered.

        Returns:
            How many open-interest answers had been given before.
        """

        def stop() -> None:
            self.rate = 0.0
            self._perp.liquidation_rate = 0.0
            for name in self._symbols:
                self._perp.marks_stopped[name] = float("inf")

        self._apply(stop)
        return len(self.open_interest_sent)


def test_the_board_shows_the_fakes_perpetuals_data_as_recomputed(
    tmp_path: Path, clickhouse_dsn: str
) -> None:
    database = f"tickscan_pchain_{uuid.uuid4().hex[:8]}"
    settings = Settings(
        data_dir=tmp_path,
        clickhouse=ClickHouseSettings(dsn=clickhouse_dsn, database=database),
        api=ApiSettings(port=0),
        ingest=IngestSettings(history_h=0.0, open_interest_every_s=1.5),
    )
    fake = RecordingBinance("usdm", symbols=list(SYMBOLS), rate=10, seed=14)
    fake._perp.liquidation_rate = 0.3
    with fake, live_run(settings, fake) as api, closing(connect(clickhouse_dsn)) as client:

        def board() -> dict[str, dict[str, Any]]:
            response = httpx.get(f"{api}/api/v1/scan", params={"limit": 100}, timeout=10)
            response.raise_for_status()
            return {
                row["symbol"]: row
                for row in response.json()["rows"]
                if row["market"] == "usdm" and row["symbol"] in SYMBOLS
            }

        def filled() -> bool:
            rows = board()
            return len(rows) == len(SYMBOLS) and all(
                row["funding_rate_pct"] is not None and row["open_interest"] is not None
                for row in rows.values()
            )

        # The board shows every perpetual's funding and open interest, and some
        # liquidations have been made on both sides.
        assert wait_for(filled, 60), board()
        assert wait_for(lambda: sides(fake.liquidations_sent) == {"BUY", "SELL"}, 60)
        # A few seconds of marks and a few open-interest polls of each perpetual.
        assert wait_for(lambda: flowed(fake, "s", fake.marks_sent) >= 5, 30)
        assert wait_for(lambda: flowed(fake, "symbol", fake.open_interest_sent) >= 3, 30)
        polled = fake.quiesce()
        # The open interest stays put from the first answer after the trades stopped.
        assert wait_for(lambda: flowed(fake, "symbol", fake.open_interest_sent[polled:]) >= 1, 30)
        marks = list(fake.marks_sent)
        liquidations = list(fake.liquidations_sent)
        expected = {s: recompute(s, marks, liquidations, fake) for s in SYMBOLS}

        def settled() -> bool:
            rows = board()
            return all(
                len(rows) == len(SYMBOLS) and perps_of(rows[s]) == expected[s](rows[s])
                for s in SYMBOLS
            )

        # The board settles on the recomputed figures (the last records have to go
        # through the broker and the flows first).
        wait_for(settled, 60)  # if it never does, the comparison below shows how not
        rows = board()
        for s in SYMBOLS:
            assert perps_of(rows[s]) == expected[s](rows[s])
        assert any(rows[s]["liq_long_5m"] for s in SYMBOLS)
        assert any(rows[s]["liq_short_5m"] for s in SYMBOLS)

        # The store has every record the fake emitted, exactly once.
        # The polls go on: the answers given so far, up to the newest's time.
        answers = list(fake.open_interest_sent)
        cutoff = max(a["time"] for a in answers)
        assert wait_for(
            lambda: count(client, database, "open_interest", cutoff) == len(answers), 30
        )
        assert wait_for(lambda: count(client, database, "liquidations") == len(liquidations), 30)
        assert wait_for(lambda: count(client, database, "marks_1s") == len(marks), 30)
        check_store(client, database, marks, liquidations, answers)


@contextmanager
def live_run(settings: Settings, fake: FakeBinance) -> Iterator[str]:
    """`tickscan run --source binance` on the fake's market, in a thread: yields the URL
    of its API, then stops it and checks that it ended with its counters."""
    stop = threading.Event()
    ready: list[Endpoints] = []
    outcome: list[object] = []
    options = RunOptions(
        source="binance", markets=("usdm",), rest_url=fake.rest_url, ws_base=fake.ws_url
    )
    thread = threading.Thread(
        target=run_into,
        args=(outcome, settings, options, stop),
        kwargs={"on_ready": ready.append},
        daemon=True,
    )
    thread.start()
    try:
        assert wait_for(lambda: bool(ready), 30), outcome
        api = ready[0].api
        assert api is not None
        yield api
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive()
    assert isinstance(outcome[0], FlowCounters), outcome


def run_into(outcome: list[object], *args: Any, **kwargs: Any) -> None:
    """`tickscan.run.run(*args, **kwargs)`, its result or exception appended to `outcome`."""
    try:
        outcome.append(run(*args, **kwargs))
    except BaseException as exc:
        outcome.append(exc)


def flowed(fake: FakeBinance, key: str, sent: list[dict[str, Any]]) -> int:
    """The fewest messages of one symbol in `sent` (a copy: the fake appends to it)."""
    names = [message[key] for message in list(sent)]
    return min(names.count(name) for name in fake.symbols)


def sides(liquidations: list[dict[str, Any]]) -> set[str]:
    return {o["S"] for o in liquidations}


def perps_of(row: dict[str, Any]) -> dict[str, float | None]:
    """A board row's perpetuals metrics."""
    return {name: row[name] for name in PERP_METRICS}


def recompute(
    symbol: str,
    marks: list[dict[str, Any]],
    liquidations: list[dict[str, Any]],
    fake: RecordingBinance,
) -> Any:
    """The symbol's perpetuals metrics as a function of its board row (for the row's
    time), recomputed with exact decimals from what the fake emitted, by the definitions
    of `flows.signals.perps.PerpState.values`."""
    own = [m for m in marks if m["s"] == symbol]
    assert own, symbol
    last = max(own, key=lambda m: m["E"])
    mark, index, rate = Decimal(last["p"]), Decimal(last["i"]), Decimal(last["r"])
    # A funding time passed during the run (00, 08 or 16 UTC) settled at the estimate of
    # the last mark before it (flows.perps.funding); else none has settled.
    before = [m for m in own if m["T"] < last["T"]]
    settled = max(before, key=lambda m: m["E"]) if before else None
    orders = [o for o in liquidations if o["s"] == symbol]
    newest_liq = max((o["T"] for o in orders), default=-1)

    def liquidated(side: str, window_ms: int, end: int) -> float:
        return float(
            sum(
                (
                    Decimal(o["z"]) * Decimal(o["ap"])
                    for o in orders
                    if o["S"] == side and end - window_ms <= o["T"] < end
                ),
                Decimal(0),
            )
        )

    def at(row: dict[str, Any]) -> dict[str, float | None]:
        time_ms = row["time_ms"]
        # The newest open interest the fake answered (after the trades stopped).
        answers = [a for a in list(fake.open_interest_sent) if a["symbol"] == symbol]
        contracts = Decimal(answers[-1]["openInterest"])
        # The window's end: the row's time, or past the newest record folded in, which
        # is at least the last liquidation (the run is shorter than every window).
        end = max(time_ms, newest_liq + 1)
        rate_pct = rate * 100
        values: dict[str, float | None] = {
            "mark_price": float(mark),
            "index_price": float(index),
            "basis_bps": float((mark - index) / index * 10_000),
            "funding_rate_pct": float(rate_pct),
            "funding_last_pct": None if settled is None else float(Decimal(settled["r"]) * 100),
            "funding_annual_pct": float(rate_pct * 365 * 24 / 8),  # Binance's 8 h interval
            "next_funding_s": (last["T"] - time_ms) / 1000,
            "open_interest": float(contracts),
            "open_interest_value": float(contracts * mark),
        }
        # The run is shorter than the shortest window: no open-interest change yet.
        values.update({f"oi_change_pct_{w}": None for w in OI_WINDOWS})
        for name, side in (("long", "SELL"), ("short", "BUY")):
            values.update(
                {f"liq_{name}_{w}": liquidated(side, WINDOW_MS[w], end) for w in LIQ_WINDOWS}
            )
        return {name: approx(name, values[name]) for name in PERP_METRICS}

    return at


def approx(name: str, value: float | None) -> Any:
    """An exact figure turned to a float once, to compare with the flow's, which computes
    in floats: a derived figure may differ in its last bits. The basis subtracts two
    prices a few bps apart, each rounded to a float (~1e-16 of itself): its float can be
    off by ~1e-12 bps, so it gets an absolute tolerance of 1e-10 bps too."""
    if value is None:
        return None
    return pytest.approx(value, rel=1e-12, abs=1e-10 if name == "basis_bps" else 0.0)


def count(client: Client, database: str, table: str, until_ms: int | None = None) -> int:
    """Rows of the fake's market in `table` (FINAL), up to `until_ms` if given."""
    return int(
        client.query(
            "SELECT count() FROM {db:Identifier}.{table:Identifier} FINAL"
            " WHERE exchange = 'binance' AND market = 'usdm'"
            " AND time <= fromUnixTimestamp64Milli({until:Int64}, 'UTC')",
            parameters={"db": database, "table": table, "until": until_ms or 2**62},
        ).result_rows[0][0]
    )


def check_store(
    client: Client,
    database: str,
    marks: list[dict[str, Any]],
    liquidations: list[dict[str, Any]],
    answers: list[dict[str, Any]],
) -> None:
    """Every record the fake emitted (open interest: every answer in `answers`, up to the
    newest's time) is in its table, once, with its exact figures; marks_1s
    holds one row per second per symbol over the seconds the marks flowed."""

    def rows(sql: str, until_ms: int = 0) -> list[tuple[Any, ...]]:
        found = client.query(sql, parameters={"db": database, "until": until_ms}).result_rows
        return [tuple(row) for row in found]

    def ms(value: Any) -> int:
        return int(value.timestamp() * 1000 + 0.5)

    got_marks = rows(
        "SELECT symbol, time, mark_price, index_price, funding_rate"
        " FROM {db:Identifier}.marks_1s FINAL WHERE market = 'usdm'"
    )
    assert sorted((s, ms(t), p, i, r) for s, t, p, i, r in got_marks) == sorted(
        (m["s"], m["E"], Decimal(m["p"]), Decimal(m["i"]), Decimal(m["r"])) for m in marks
    )
    # One row per second per symbol: each second the fake sent a mark in (once a second,
    # though it skips a second when its own loop lags), and no other.
    seconds: dict[str, list[int]] = defaultdict(list)
    for s, t, *_ in got_marks:
        seconds[s].append(ms(t) // 1000)
    assert set(seconds) == set(SYMBOLS)
    for s, held in seconds.items():
        sent = [m["E"] // 1000 for m in marks if m["s"] == s]
        assert sorted(held) == sorted(set(sent)) == sorted(sent), s
        assert len(held) >= 5 and len(held) >= (max(held) - min(held) + 1) // 2, s

    got_liquidations = rows(
        "SELECT symbol, time, side, avg_price, filled_qty, quote_volume"
        " FROM {db:Identifier}.liquidations FINAL WHERE market = 'usdm'"
    )
    assert sorted((s, ms(t), side, ap, z, q) for s, t, side, ap, z, q in got_liquidations) == (
        sorted(
            (
                o["s"], o["T"], o["S"], Decimal(o["ap"]), Decimal(o["z"]),
                Decimal(o["z"]) * Decimal(o["ap"]),
            )
            for o in liquidations
        )
    )  # fmt: skip

    got_samples = rows(
        "SELECT symbol, time, open_interest FROM {db:Identifier}.open_interest FINAL"
        " WHERE market = 'usdm' AND time <= fromUnixTimestamp64Milli({until:Int64}, 'UTC')",
        max(a["time"] for a in answers),
    )
    assert sorted((s, ms(t), oi) for s, t, oi in got_samples) == sorted(
        (a["symbol"], a["time"], Decimal(a["openInterest"])) for a in answers
    )
