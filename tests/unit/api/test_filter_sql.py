"""The filter compiled to ClickHouse SQL: values only as bound parameters, names only ours.

Running the SQL against ClickHouse, and comparing it with the live selection, is
tests/integration/test_api_scan.py; these tests read the query without a server.
"""

from __future__ import annotations

import json
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


COMPARED = parse_filter(
    {
        "conditions": [
            {"metric": "price", "op": ">", "value": {"metric": "vwap_24h"}},
            {"metric": "rsi_14", "op": "<", "value": 70.5},
        ],
        "groups": [
            {
                "any": [
                    {
                        "metric": "change_pct_5m",
                        "op": ">",
                        "value": {"metric": "change_pct_1h", "factor": 0.0625},
                    },
                    {
                        "metric": "price",
                        "op": "between",
                        "value": {"metric": "low_24h", "factor": 1.125, "offset": -2.5},
                        "value2": {"metric": "high_24h", "offset": 3.75},
                    },
                ]
            },
            {"any": [{"metric": "rvol_5m", "op": ">=", "value": 2.25}]},
        ],
    }
)


def test_groups_are_ors_and_another_metric_is_a_column_with_bound_factor_and_offset() -> None:
    sql, params = history_sql(COMPARED, AT, "tickscan")
    where = sql[sql.index("\nWHERE ") + 7 : sql.index("\nORDER BY")]
    assert where == (
        "r.price > r.vwap_24h AND r.rsi_14 < {v1:Float64}"
        " AND (r.change_pct_5m > (r.change_pct_1h * {v2_factor:Float64})"
        " OR r.price BETWEEN (r.low_24h * {v3_factor:Float64} + {v3_offset:Float64})"
        " AND (r.high_24h + {w3_offset:Float64}))"
        " AND (r.rvol_5m >= {v4:Float64})"
    )
    for text in ("70.5", "0.0625", "1.125", "2.5", "3.75", "2.25"):
        assert text not in sql
    assert params["v1"] == 70.5
    assert (params["v2_factor"], params["v3_factor"], params["v3_offset"]) == (0.0625, 1.125, -2.5)
    assert (params["w3_offset"], params["v4"]) == (3.75, 2.25)
    placeholders = dict(PLACEHOLDER.findall(sql))
    assert set(placeholders) == set(params)
    assert set(re.findall(r"\b[rs]\.(\w+)", sql)) <= KNOWN_NAMES


def test_a_filter_without_thresholds_has_no_outer_where() -> None:
    sql, params = history_sql(ScanFilter(), AT, "db")
    assert "ORDER BY r.change_pct_24h DESC NULLS LAST" in sql
    assert set(params) == {"database", "at_ms", "since_ms", "limit"}
    assert "\nWHERE" not in sql.replace("    WHERE", "")


BAD = {"metric": "rsi_14 OR 1"}


def than(value: object) -> tuple[str, str]:
    """`filter=<JSON>` with a condition in an OR group whose right-hand side is `value`."""
    condition = {"metric": "price", "op": ">", "value": value}
    return ("filter", json.dumps({"groups": [{"any": [condition]}]}))


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
        # another metric on the right, OR groups and the where form
        [than({"metric": "1) OR (1"})],
        [("filter", json.dumps({"conditions": [{"metric": "price", "op": ">", "value": BAD}]}))],
        [than({"metric": "vwap_24h", "window": "24h) OR (1"})],
        [than({"metric": "vwap_24h", "factor": "1) OR (1"})],
        [than({"metric": "vwap_24h", "offset": "0 OR 1"})],
        [than("vwap_24h OR 1")],
        [than({"metric": "symbol"})],
        [than({"metric": "exchange"})],
        [
            (
                "filter",
                json.dumps({"groups": [{"any": [{"metric": "price;--", "op": ">", "value": 0}]}]}),
            )
        ],
        [("filter", '{"groups": [{"or": "1=1"}]}')],
        [("where", "price>vwap_24h) OR (1=1")],
        [("where", "price>vwap_24h OR 1=1")],
        [("where", "price>vwap_24h|symbol>0")],
        [("where", "price>exchange")],
        [("where", "price>vwap_24h*1) OR (1")],
        [("where", "price>rank_snapshots.vwap_24h")],
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


def test_the_premium_over_spot_is_computed_from_the_spot_pairs_snapshot() -> None:
    f = parse_query([("min_premium_bps", "5"), ("sort", "-premium_bps")])
    sql, params = history_sql(f, AT, "db")
    premium = "if(r.market = 'usdm' AND sp.price > 0, (r.price / sp.price - 1) * 10000, NULL)"
    assert f"{premium} AS premium_bps" in sql  # the column returned
    assert f"{premium} >= {{v0:Float64}}" in sql and params["v0"] == 5.0  # the filter
    assert f"ORDER BY {premium} DESC" in sql  # the sort
    assert "WHERE market = 'spot'" in sql  # the pair: the spot snapshot of the same moment
