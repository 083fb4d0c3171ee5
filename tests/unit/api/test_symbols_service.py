"""The symbol directory: lookups, filters, refreshes from the store and a refresher that
survives a failing ClickHouse."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import anyio
import pytest

from api.routes.symbols import EXAMPLE
from api.services.symbols import SymbolDirectory, SymbolOut, plain, run_refresher
from schemas.symbols import SymbolInfo

BTC = SymbolInfo("binance", "spot", "BTCUSDT", "BTC", "USDT", "TRADING", "spot")
ETH = SymbolInfo("binance", "spot", "ETHBTC", "ETH", "BTC", "BREAK", "spot")
SOL = SymbolInfo("binance", "usdm", "SOLUSDT", "SOL", "USDT", "TRADING", "perpetual")


def row(info: SymbolInfo, tick: str = "0.010000000000000000") -> tuple[Any, ...]:
    return (
        info.exchange, info.market, info.symbol, info.base_asset, info.quote_asset,
        info.status, info.kind, Decimal(tick), None, 1_700_000_000_000,
        Decimal("0.001"), None, Decimal("120"), Decimal("5.000000000000000000"),
    )  # fmt: skip


class FakeStore:
    database = "tickscan"

    def __init__(self, *answers: list[tuple[Any, ...]] | Exception) -> None:
        self.answers = list(answers)
        self.queries: list[dict[str, Any]] = []

    async def query(
        self, sql: str, parameters: Mapping[str, Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        self.queries.append(dict(parameters or {}))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return [], answer


def test_lookups_and_filters() -> None:
    directory = SymbolDirectory([SOL, ETH, BTC])
    assert directory.get("binance:spot:ETHBTC") == ETH
    assert directory.get("binance:spot:NOPE") is None
    assert directory.all() == [BTC, ETH, SOL]
    assert directory.quote_assets() == ["BTC", "USDT"]
    assert directory.find(quote="usdt") == [BTC, SOL]
    assert directory.find(market="spot", status="trading") == [BTC]
    assert directory.find(exchange="okx") == []
    assert len(directory) == 3


def test_a_refresh_replaces_everything_with_the_stored_rows() -> None:
    store = FakeStore([row(BTC), row(SOL, "0.001000000000000000")])
    directory = SymbolDirectory([ETH])
    assert anyio.run(directory.refresh, store) == 2
    assert store.queries == [{"database": "tickscan"}]
    assert directory.get(ETH.key) is None
    sol = directory.get(SOL.key)
    assert sol is not None
    assert (sol.tick_size, sol.updated_ms, sol.kind) == (
        Decimal("0.001"),
        1_700_000_000_000,
        "perpetual",
    )
    assert (sol.min_qty, sol.max_qty, sol.market_max_qty, sol.min_notional) == (
        Decimal("0.001"), None, Decimal("120"), Decimal("5"),
    )  # fmt: skip


def test_the_refresher_keeps_the_last_good_directory_when_clickhouse_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FakeStore([row(BTC)], RuntimeError("chdb is gone"), [row(BTC), row(ETH)])
    directory = SymbolDirectory()
    seen: list[int] = []  # the directory's size as each refresh begins
    query = store.query

    async def watched(sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        seen.append(len(directory))
        return await query(sql, parameters)

    store.query = watched  # type: ignore[method-assign]

    async def main() -> None:
        with anyio.fail_after(10):  # a guard against a hang, not a timing assertion
            async with anyio.create_task_group() as tg:
                tg.start_soon(run_refresher, directory, store, 0.0)
                while len(directory) < 2:
                    await anyio.sleep(0)
                tg.cancel_scope.cancel()

    anyio.run(main)
    assert seen == [0, 1, 1]  # the failed second refresh left the first one's symbol
    assert [s.symbol for s in directory.all()] == ["BTCUSDT", "ETHBTC"]
    assert "symbol refresh failed, keeping 1 symbols: chdb is gone" in caplog.text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.010000000000000000"), "0.01"),
        (Decimal("1E-8"), "0.00000001"),
        (Decimal("100.000000000000000000"), "100"),
        (None, None),
    ],
)
def test_sizes_are_shown_as_short_exact_text(value: Decimal | None, text: str | None) -> None:
    assert plain(value) == text


def test_the_api_view_of_a_symbol_is_the_documented_one() -> None:
    info = SymbolInfo(
        "binance", "usdm", "BTCUSDT", "BTC", "USDT", "TRADING", "perpetual",
        Decimal("0.10"), Decimal("0.001"), 1_645_233_611_962,
        Decimal("0.001"), Decimal("1000"), Decimal("120"), Decimal("10"),
    )  # fmt: skip
    assert SymbolOut.of(info).model_dump() == EXAMPLE["symbols"][0]
