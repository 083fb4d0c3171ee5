"""Candle history without ClickHouse: time parsing, refusals before any query, the windows
a page asks ClickHouse for, and candles as exact JSON text."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import pytest

from api.errors import InvalidRequest, NotFound
from api.services.candles import candles, encode_page
from api.services.times import MAX_TIME_MS, iso_ms, parse_time

MINUTE = 60_000
T0 = 1_723_161_300_000  # 2024-08-08T23:55:00Z


class FakeStore:
    """Answers each query with `answer(sql, params)` and records what was asked."""

    database = "tickscan"

    def __init__(self, answer: Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]) -> None:
        self.answer = answer
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def query(
        self, sql: str, parameters: Mapping[str, Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        params = dict(parameters or {})
        self.calls.append((sql, params))
        return [], self.answer(sql, params)


def row(open_time: int, step: int = MINUTE) -> tuple[Any, ...]:
    """A row as the page query returns it: HistoryCandle's fields, decimals as text."""
    return (
        open_time, open_time + step - 1, "61807.7", "61839.9", "61760.3", "61760.3", "0",
        "0", 0, "0", "0", None, None, 2, "trades",
    )  # fmt: skip


def probe(sql: str) -> bool:
    """Whether `sql` looks for where a candle is (not for the candles themselves)."""
    return sql.lstrip().startswith("SELECT toUnixTimestamp64Milli(open_time) FROM")


def run(store: FakeStore, **kwargs: Any) -> Any:
    args = {
        "exchange": "binance",
        "market": "usdm",
        "symbol": "BTCUSDT",
        "interval": "1m",
        "start_ms": None,
        "end_ms": None,
    } | kwargs

    async def call() -> Any:
        return await candles(store, **args)  # type: ignore[arg-type]

    return anyio.run(call)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1723161300000", T0),
        ("2024-08-08T23:55:00Z", T0),
        ("2024-08-08T23:55:00", T0),  # no offset: UTC
        ("2024-08-09T01:55:00+02:00", T0),
        (" 0 ", 0),
    ],
)
def test_times_are_ms_or_iso_8601(text: str, ms: int) -> None:
    assert parse_time("start", text) == ms


@pytest.mark.parametrize("text", ["2024-08-08T23", "2024-02-30T00:00:00Z", "last tuesday"])
def test_iso_ms_refuses_undocumented_forms_and_days_that_do_not_exist(text: str) -> None:
    """Python's parser takes `2024-08-08T23`; the API's documented forms do not."""
    with pytest.raises(ValueError):
        iso_ms(text)


def test_iso_ms_reads_a_time_without_offset_as_utc() -> None:
    assert iso_ms("2024-08-08T23:55:00") == iso_ms("2024-08-09T01:55:00+02:00") == T0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("last tuesday", "start: 'last tuesday' is not a time"),
        ("1969-12-31T23:59:59Z", "outside 1970 .. 2200"),
        ("9" * 16, "outside 1970 .. 2200"),
        ("-5", "is not a time"),
    ],
)
def test_other_times_are_refused_with_the_parameter_named(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_time("start", text)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval": "2m"}, "interval: '2m' is not one of 1s, 1m, 5m, 15m, 1h, 4h, 1d"),
        ({"market": "coinm"}, "market: 'coinm' is not one of spot, usdm"),
        ({"exchange": "Binance"}, "exchange: 'Binance' is not an exchange name"),
        ({"symbol": "BTC'; DROP TABLE candles_1m"}, "is not a symbol"),
        ({"symbol": ""}, "is not a symbol"),
        ({"limit": 0}, "limit: 0 is not between 1 and 1000"),
        ({"limit": 1001}, "limit: 1001 is not between 1 and 1000"),
        ({"start_ms": T0, "end_ms": T0}, "must be before end"),
        ({"cursor": MAX_TIME_MS + 1}, "outside 1970 .. 2200"),
    ],
)
def test_unservable_requests_are_refused_before_any_query(
    kwargs: dict[str, Any], message: str
) -> None:
    store = FakeStore(lambda sql, params: pytest.fail("queried"))
    with pytest.raises(InvalidRequest, match=message):
        run(store, **kwargs)
    assert store.calls == []


def test_a_symbol_with_letters_of_any_script_is_served() -> None:
    store = FakeStore(lambda sql, params: [row(T0)])
    page = run(store, symbol="币安人生USDT", limit=1)
    assert [c.open_time for c in page.candles] == [T0]


def test_the_latest_page_asks_for_the_last_limit_intervals() -> None:
    last = T0 + 2 * 3_600_000 + 17 * MINUTE  # inside the 01:00 hour of the 9th

    def answer(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        if probe(sql):
            assert "DESC" in sql
            if params["table"] == "candles_1s":
                return []  # no second after the last minute: nothing is forming
            assert (params["table"], params["end"]) == ("candles_1m", MAX_TIME_MS)
            return [(last,)]
        return [row(params["start"], 3_600_000)]

    store = FakeStore(answer)
    page = run(store, interval="1h", limit=3)
    hour = last // 3_600_000 * 3_600_000
    window = next(params for sql, params in store.calls if not probe(sql))
    assert (window["table"], window["start"], window["end"], window["limit"]) == (
        "candles_1h",
        hour - 2 * 3_600_000,
        hour + 3_600_000,
        3,
    )
    assert page.next_cursor is None
    assert page.interval == "1h"


def test_a_forward_page_is_one_query_when_no_candle_is_missing() -> None:
    store = FakeStore(
        lambda sql, params: [row(t) for t in range(params["start"], params["end"], MINUTE)]
    )
    page = run(store, start_ms=T0 + 1, limit=3)  # start rounds up to the next minute
    ((sql, params),) = store.calls
    assert (params["table"], params["start"], params["end"], params["limit"]) == (
        "candles_1m",
        T0 + MINUTE,
        T0 + 5 * MINUTE,
        4,
    )
    assert "FINAL" in sql
    assert [c.open_time for c in page.candles] == [T0 + MINUTE * i for i in (1, 2, 3)]
    assert page.next_cursor == T0 + 4 * MINUTE


def test_a_halt_moves_the_window_on_and_the_end_stops_it() -> None:
    present = {T0, T0 + 30 * MINUTE}  # halted in between

    def answer(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        if params["table"] == "candles_1s":
            return []  # the last page looks for a forming candle: none here
        inside = sorted(t for t in present if params["start"] <= t < params["end"])
        if probe(sql):
            return [(t,) for t in inside[:1]]
        return [row(t) for t in inside]

    store = FakeStore(answer)
    page = run(store, interval="5m", start_ms=T0, end_ms=T0 + 31 * MINUTE, limit=5)
    assert [c.open_time for c in page.candles] == [T0, T0 + 30 * MINUTE]
    assert page.next_cursor is None
    asked = [(p["table"], p.get("start"), p["end"]) for _, p in store.calls]
    assert asked == [
        ("candles_5m", T0, T0 + 30 * MINUTE),  # six buckets, one candle
        ("candles_1m", T0 + 30 * MINUTE, T0 + 31 * MINUTE),  # where is the next one?
        ("candles_5m", T0 + 30 * MINUTE, T0 + 31 * MINUTE),
        ("candles_1s", None, T0 + 31 * MINUTE),  # the last page: is a candle forming?
    ]
    assert "FINAL" not in store.calls[0][0]  # the view reads candles_1m FINAL itself


def test_a_page_is_json_with_the_documented_fields() -> None:
    store = FakeStore(lambda sql, params: [row(T0), row(T0 + MINUTE)])
    page = run(store, start_ms=T0, limit=1)
    assert json.loads(encode_page(page)) == {
        "exchange": "binance",
        "market": "usdm",
        "symbol": "BTCUSDT",
        "interval": "1m",
        "candles": [
            {
                "open_time": T0,
                "close_time": T0 + MINUTE - 1,
                "open": "61807.7",
                "high": "61839.9",
                "low": "61760.3",
                "close": "61760.3",
                "volume": "0",
                "quote_volume": "0",
                "count": 0,
                "taker_buy_volume": "0",
                "taker_buy_quote_volume": "0",
                "first_trade_id": None,
                "last_trade_id": None,
                "version": 2,
                "source": "trades",
            }
        ],
        "next_cursor": T0 + MINUTE,
    }


def test_an_unknown_symbol_is_not_found_and_a_known_one_an_empty_page() -> None:
    def answer(known: bool) -> Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]:
        return lambda sql, params: [(1,)] if known and "UNION ALL" in sql else []

    with pytest.raises(NotFound, match="no symbol binance:usdm:BTCUSDT"):
        run(FakeStore(answer(False)))
    assert run(FakeStore(answer(True))).candles == []


def test_without_an_exchange_the_one_that_has_the_symbol_is_used() -> None:
    def answer(exchanges: list[str]) -> Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]:
        def reply(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
            if "DISTINCT exchange" in sql:
                assert (params["market"], params["symbol"]) == ("usdm", "BTCUSDT")
                return [(e,) for e in exchanges]
            assert params["exchange"] == exchanges[0]
            return [row(T0)] if not probe(sql) else [(T0,)]

        return reply

    assert run(FakeStore(answer(["sim"])), exchange=None).exchange == "sim"
    with pytest.raises(InvalidRequest, match="usdm BTCUSDT is on binance, sim: say which") as e:
        run(FakeStore(answer(["binance", "sim"])), exchange=None)
    assert e.value.code == "ambiguous_symbol"
    with pytest.raises(NotFound, match=r"no symbol \*:usdm:BTCUSDT"):
        run(FakeStore(answer([])), exchange=None)
