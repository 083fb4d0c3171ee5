"""The filter compiled to ClickHouse SQL: values only as bound parameters, names only ours.

Running the SQL against ClickHouse, and comparing it with the live selection, is
tests/integration/test_api_scan.py; these tests read the query without a server.
"""

from __future__ import annotations

import re

import pytest

from api.errors import InvalidRequest
from api.services.filter_query import parse_query
from api.services.filter_sql import SNAPSHOT_MAX_AGE_MS, history_rows, history_sql, parse_at
from api.services.filters import ScanFilter, parse_filter
from schemas.ranks import RankRow

AT = 1_723_161_300_000
PLACEHOLDER = re.compile(r"\{(\w+):([\w()]+)\}")
KNOWN_NAMES = set(RankRow.__struct_fields__) | {"time", "base_asset", "quote_asset"}

EVERYTHING = parse_filter(
    {
        "conditions": [
            {"metric": "change_pct", "window": "5m", "op": ">=", "value": 3.25},
            {"metric": "rsi_14", "op": "between", "value": 12.5, "value2": 31.75},
            {"metric": "spread_bps", "op": "<", "value": 7.125},
        ],
        "new_high": True,
        "new_low": False,
        "volume": {"window": "1h", "min": 123456.5},
        "quotes": ["USDT", "FDUSD"],
        "markets": ["perpetual"],
        "exchanges": ["binance"],
        "watch": ["PEPEUSDT", "binance:usdm:WIFUSDT"],
        "ignore": ["binance:usdm:DOGEUSDT"],
        "sort": "rvol_15m",
        "order": "asc",
        "limit": 42,
    }
)


def test_every_value_is_a_bound_parameter_and_never_in_the_text() -> None:
    sql, params = history_sql(EVERYTHING, AT, "tickscan")
    for text in ("3.25", "12.5", "31.75", "7.125", "123456.5", "USDT", "FDUSD", "PEPE", "WIF"):
        assert text not in sql
    for text in ("DOGE", "binance", "tickscan", "42", str(AT)):
        assert text not in sql
    assert params["v0"] == 3.25
    assert (params["v1"], params["w1"]) == (12.5, 31.75)
    assert params["v3"] == 123456.5  # the volume band, after the three conditions
    assert params["quotes"] == ["FDUSD", "USDT"]
    assert params["markets"] == ["usdm"]
    assert params["exchanges"] == ["binance"]
    assert (params["watch_symbols"], params["watch_keys"]) == (
        ["PEPEUSDT"],
        ["binance:usdm:WIFUSDT"],
    )
    assert (params["ignore_symbols"], params["ignore_keys"]) == ([], ["binance:usdm:DOGEUSDT"])
    assert (params["database"], params["limit"], params["at_ms"]) == ("tickscan", 42, AT)
    assert params["since_ms"] == AT - SNAPSHOT_MAX_AGE_MS


def test_placeholders_and_parameters_match_one_to_one_with_their_types() -> None:
    sql, params = history_sql(EVERYTHING, AT, "tickscan")
    placeholders = dict(PLACEHOLDER.findall(sql))
    assert set(placeholders) == set(params)
    assert placeholders["database"] == "Identifier"
    assert placeholders["v0"] == placeholders["w1"] == "Float64"
    assert placeholders["quotes"] == placeholders["watch_keys"] == "Array(String)"
    assert placeholders["limit"] == "UInt32"


def test_the_only_names_in_the_text_are_columns_of_the_schema() -> None:
    sql, _ = history_sql(EVERYTHING, AT, "tickscan")
    qualified = set(re.findall(r"\b[rs]\.(\w+)", sql))
    assert qualified <= KNOWN_NAMES
    assert {"change_pct_5m", "rsi_14", "spread_bps", "quote_volume_1h", "new_high"} <= qualified
    assert "ORDER BY r.rvol_15m ASC NULLS LAST, r.exchange, r.market, r.symbol" in sql
    assert "r.new_high AND NOT r.new_low" in sql


def test_a_filter_without_thresholds_has_no_outer_where() -> None:
    sql, params = history_sql(ScanFilter(), AT, "db")
    assert "ORDER BY r.change_pct_24h DESC NULLS LAST" in sql
    assert set(params) == {"database", "at_ms", "since_ms", "limit"}
    assert "\nWHERE" not in sql.replace("    WHERE", "")


@pytest.mark.parametrize(
    "pairs",
    [
        [("sort", "price); DROP TABLE rank_snapshots; --")],
        [("min_change_pct_5m) OR (1", "1")],
        [("watch", "BTCUSDT') OR 1=1 --")],
        [("quote", "USDT' UNION SELECT")],
        [("exchange", "binance`")],
        [("filter", '{"conditions": [{"metric": "price) OR (1", "op": ">", "value": 0}]}')],
        [("filter", '{"conditions": [{"metric": "price", "op": "> 0 OR", "value": 0}]}')],
    ],
)
def test_hostile_input_never_reaches_the_sql(pairs: list[tuple[str, str]]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        history_sql(parse_query(pairs), AT, "db")
    assert caught.value.status == 422


NOW = AT + 1_000
"""The tests' present: the board of AT exists, one of a second later than AT does not."""


def test_parse_at_takes_milliseconds_or_iso_8601() -> None:
    assert parse_at("1723161300000", NOW) == AT
    assert parse_at("2024-08-08T23:55:00Z", NOW) == AT
    assert parse_at("2024-08-09T01:55:00+02:00", NOW) == AT
    assert parse_at("2024-08-08T23:55:00", NOW) == AT  # no offset: UTC
    assert parse_at("2024-08-08T23:55:00.123Z", NOW) == AT + 123


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", "'yesterday' is not a time"),
        ("1969-12-31T00:00:00Z", "before 1970"),
        ("9" * 19, "too far in the future"),
        ("1e12", "is not a time"),
    ],
)
def test_parse_at_says_what_it_takes(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_at(text, NOW)
    assert message in caught.value.message
    assert "milliseconds since the epoch or ISO-8601" in caught.value.message


@pytest.mark.parametrize("text", ["1723161301001", "2024-08-08T23:55:01.001Z"])
def test_parse_at_refuses_a_board_of_the_future(text: str) -> None:
    assert parse_at(str(NOW), NOW) == NOW
    with pytest.raises(InvalidRequest) as caught:
        parse_at(text, NOW)
    assert "is in the future; leave `at` out for the live board" in caught.value.message


def test_history_rows_become_rank_rows_with_their_assets() -> None:
    columns = [*RankRow.__struct_fields__, "base_asset", "quote_asset"]
    values = {name: None for name in RankRow.__struct_fields__} | {
        "exchange": "binance",
        "market": "usdm",
        "symbol": "BTCUSDT",
        "time_ms": AT,
        "price": 60_000.5,
        "rsi_14": 71.5,
        "new_high": 1,  # ClickHouse may hand a flag back as UInt8
        "new_low": False,
    }
    metrics = [values[name] for name in RankRow.__struct_fields__]
    known, unknown = (*metrics, "BTC", "USDT"), (*metrics, "", "")
    [(first, base, quote), (_, no_base, no_quote)] = history_rows(columns, [known, unknown])
    assert first == RankRow("binance", "usdm", "BTCUSDT", AT, 60_000.5, rsi_14=71.5, new_high=True)
    assert (base, quote, no_base, no_quote) == ("BTC", "USDT", None, None)
