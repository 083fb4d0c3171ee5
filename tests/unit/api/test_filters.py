"""The scanner filter: its columns, validation, query-string form and live selection."""

from __future__ import annotations

import functools
import json
import math
import random
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec
import pytest
from starlette.datastructures import QueryParams

from api.errors import InvalidRequest
from api.services.columns import FLAG_COLUMNS, METRIC_WINDOWS, NUMERIC_COLUMNS
from api.services.filter_eval import compile_filter
from api.services.filter_query import parse_query
from api.services.filters import Condition, MetricRef, ScanFilter, parse_filter
from schemas.ranks import METRICS, RVOL_WINDOWS, WINDOWS, RankRow
from schemas.symbols import SymbolInfo

T0 = 1_723_161_300_000


def row(symbol: str, market: str = "spot", exchange: str = "binance", **metrics: Any) -> RankRow:
    return RankRow(exchange, market, symbol, T0, metrics.pop("price", 1.0), **metrics)  # type: ignore[arg-type]


def info(r: RankRow, quote: str) -> SymbolInfo:
    return SymbolInfo(
        r.exchange, r.market, r.symbol, r.symbol.removesuffix(quote), quote, "TRADING", "spot"
    )


def keys(rows: list[RankRow]) -> list[str]:
    return [r.key for r in rows]


def select(
    f: ScanFilter, rows: list[RankRow], symbols: dict[str, SymbolInfo] | None = None
) -> list[str]:
    return keys(compile_filter(f).select(rows, symbols or {}))


# --- columns: derived from schemas.ranks -------------------------------------------------


def test_windowed_metrics_have_the_windows_the_schema_keeps() -> None:
    assert METRIC_WINDOWS["change_pct"] == WINDOWS
    assert METRIC_WINDOWS["quote_volume"] == WINDOWS
    assert METRIC_WINDOWS["rvol"] == RVOL_WINDOWS
    # a name that merely ends like a window is a metric of its own
    assert METRIC_WINDOWS["volatility_1h"] == ()
    assert METRIC_WINDOWS["high_24h"] == ()


def test_every_metric_column_is_reachable_by_exactly_one_metric_and_window() -> None:
    columns = [
        f"{metric}_{window}" if window else metric
        for metric, windows in METRIC_WINDOWS.items()
        for window in (windows or (None,))
    ]
    assert sorted(columns) == sorted(NUMERIC_COLUMNS)
    assert set(NUMERIC_COLUMNS) | set(FLAG_COLUMNS) == set(METRICS)
    assert FLAG_COLUMNS == ("new_high", "new_low")


# --- validation -------------------------------------------------------------------------


def cond(**fields: Any) -> dict[str, Any]:
    return {"conditions": [{"op": ">", "value": 1, **fields}]}


INVALID = [
    (cond(metric="momentum"), "unknown metric 'momentum'"),
    (cond(metric="rvol", window="4h"), "window 4h is not kept for rvol; use 1m, 5m, 15m, 1h"),
    (cond(metric="change_pct"), "change_pct needs a window"),
    (cond(metric="rsi_14", window="1h"), "rsi_14 has no window"),
    (cond(metric="rsi_14", op="between"), "between needs value2"),
    (cond(metric="rsi_14", op="between", value=70, value2=30), "between needs value <= value2"),
    (cond(metric="rsi_14", value2=30), "value2 belongs to between only"),
    (cond(metric="rsi_14", op="=="), "conditions.0.op"),
    (cond(metric="rsi_14", value="inf"), "finite number"),
    (cond(metric="rsi_14", value=float("nan")), "finite number"),
    ({"conditions": [cond(metric="price")["conditions"][0]] * 33}, "at most 32"),
    ({"watch": [f"S{i}USDT" for i in range(1001)]}, "at most 1000"),
    ({"ignore": ["BTC'; DROP TABLE rank_snapshots; --"]}, "is not a symbol"),
    ({"watch": ["binance:margin:BTCUSDT"]}, "is not a symbol"),
    ({"quotes": ["US DT"]}, "is not an asset name"),
    ({"quotes": [f"Q{i}" for i in range(65)]}, "at most 64"),
    ({"exchanges": ["Binance.com"]}, "is not an exchange name"),
    ({"markets": ["futures"]}, "markets.0"),
    ({"sort": "change_pct"}, "sort by change_pct needs a window"),
    ({"sort": "price DESC, (SELECT 1)"}, "cannot sort by"),
    ({"order": "up"}, "order"),
    ({"limit": 0}, "greater than or equal to 1"),
    ({"limit": 5001}, "less than or equal to 5000"),
    ({"volume": {"window": "24h"}}, "needs min, max or both"),
    ({"volume": {"min": 10, "max": 5}}, "min <= max"),
    ({"volume": {"min": -1}}, "volume.min"),
    ({"colour": "red"}, "colour: Extra inputs are not permitted"),
    # another metric on the right, and OR groups
    (cond(metric="price", value={"metric": "vwap"}), "conditions.0.value: unknown metric 'vwap'"),
    (cond(metric="price", value={"metric": "price) OR (1"}), "unknown metric 'price) OR (1'"),
    (cond(metric="price", value={"metric": "change_pct"}), "value: change_pct needs a window"),
    (cond(metric="price", value={"metric": "rvol_4h"}), "unknown metric 'rvol_4h'"),
    (cond(metric="price", value={"metric": "new_high"}), "unknown metric 'new_high'"),
    (cond(metric="price", value={"metric": "symbol"}), "unknown metric 'symbol'"),
    (cond(metric="price", value={"metric": "vwap_24h", "factor": "inf"}), "value.factor: "),
    (cond(metric="price", value={"metric": "vwap_24h", "offset": "nan"}), "finite number"),
    (cond(metric="price", value={"metric": "vwap_24h", "sql": "1"}), "value.sql: Extra inputs"),
    (cond(metric="price", value="3%"), "value: '3%' is neither a number nor another metric"),
    (cond(metric="price", value=["vwap_24h"]), "is neither a number nor another metric"),
    (
        cond(metric="price", op="between", value2={"metric": "high_24h", "window": "1h"}),
        "value2: high_24h has no window",
    ),
    (cond(metric="price", value2={"metric": "high_24h"}), "value2 belongs to between only"),
    ({"groups": [{"any": []}]}, "groups.0.any: Tuple should have at least 1 item"),
    ({"groups": [{"all": cond(metric="price")["conditions"]}]}, "groups.0.any: Field required"),
    ({"groups": [{"any": cond(metric="price) OR (1")["conditions"]}]}, "unknown metric"),
    ({"groups": [{"any": cond(metric="rsi_14")["conditions"]}] * 9}, "at most 8 items"),
    ({"groups": [{"any": cond(metric="rsi_14")["conditions"] * 17}]}, "at most 16 items"),
    (
        {"conditions": cond(metric="price")["conditions"] * 20}
        | {"groups": [{"any": cond(metric="rsi_14")["conditions"] * 13}]},
        "33 conditions: at most 32 in all, those of groups included",
    ),
]


@pytest.mark.parametrize(("data", "message"), INVALID, ids=[m for _, m in INVALID])
def test_an_invalid_filter_says_what_is_wrong(data: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_filter(data)
    assert message in caught.value.message
    assert caught.value.status == 422


def test_a_column_name_is_a_metric_and_its_window() -> None:
    condition = Condition.model_validate({"metric": "rvol_5m", "op": ">=", "value": 2})
    assert (condition.metric, condition.window, condition.column) == ("rvol", "5m", "rvol_5m")


def test_lists_are_normalised_so_equal_filters_share_a_key() -> None:
    a = parse_filter(
        {
            "quotes": ["usdt", "USDC", "USDT"],
            "markets": ["perpetual", "spot"],
            "watch": ["btcusdt", "Binance:Perpetual:ethusdt"],
            "conditions": [
                {"metric": "rsi_14", "op": "<", "value": 30},
                {"metric": "change_pct", "window": "5m", "op": ">", "value": 1},
            ],
        }
    )
    b = parse_filter(
        {
            "quotes": ["USDC", "USDT"],
            "markets": ["spot", "usdm"],
            "watch": ["binance:usdm:ETHUSDT", "BTCUSDT"],
            "conditions": [
                {"metric": "change_pct_5m", "op": ">", "value": 1.0},
                {"metric": "rsi_14", "op": "<", "value": 30},
            ],
        }
    )
    assert a.quotes == ("USDC", "USDT")
    assert a.markets == ("spot", "usdm")
    assert a.watch == ("BTCUSDT", "binance:usdm:ETHUSDT")
    assert compile_filter(a).key == compile_filter(b).key
    assert compile_filter(a).key != compile_filter(b.model_copy(update={"limit": 99})).key


def test_a_filter_round_trips_through_its_json() -> None:
    f = parse_filter(cond(metric="change_pct_1h") | {"quotes": ["USDT"], "new_high": True})
    assert parse_filter(f.model_dump_json()) == f
    assert parse_filter(json.dumps(f.model_dump(mode="json"))) == f


def test_a_filter_with_groups_and_metrics_round_trips_through_its_json() -> None:
    f = parse_filter(
        {
            "conditions": [{"metric": "price", "op": ">", "value": {"metric": "vwap_24h"}}],
            "groups": [
                {
                    "any": [
                        {
                            "metric": "change_pct_5m",
                            "op": ">",
                            "value": {"metric": "change_pct_1h", "factor": 1 / 12},
                        },
                        {"metric": "rvol_5m", "op": ">=", "value": 3},
                        {
                            "metric": "price",
                            "op": "between",
                            "value": {"metric": "low_24h", "offset": -1},
                            "value2": 60_000,
                        },
                    ]
                }
            ],
        }
    )
    [condition] = f.conditions
    assert condition.value == MetricRef(metric="vwap_24h")
    assert condition.columns() == ("price", "vwap_24h")
    first = f.groups[0].any[0]
    assert first.value == MetricRef(metric="change_pct", window="1h", factor=1 / 12)
    assert first.columns() == ("change_pct_5m", "change_pct_1h")
    assert f.groups[0].any[1].value == 3.0
    assert parse_filter(f.model_dump_json()) == f
    assert parse_filter(json.dumps(f.model_dump(mode="json"))) == f
    # a filter of before groups and metric comparisons reads as it always did
    old = '{"conditions":[{"metric":"rsi_14","window":null,"op":"<","value":30,"value2":null}]}'
    assert parse_filter(old).conditions == (Condition(metric="rsi_14", op="<", value=30),)
    assert parse_filter(old).groups == ()


def test_the_order_of_groups_and_their_conditions_does_not_change_the_key() -> None:
    a, b, c = (
        cond(metric=m, value=v)["conditions"][0]
        for m, v in [("rvol_5m", 2), ("price", 1), ("rsi_14", 3)]
    )
    one = parse_filter({"groups": [{"any": [a, b]}, {"any": [c]}]})
    other = parse_filter({"groups": [{"any": [c]}, {"any": [b, a]}]})
    assert compile_filter(one).key == compile_filter(other).key
    # but which conditions share a group does
    regrouped = parse_filter({"groups": [{"any": [a]}, {"any": [b, c]}]})
    assert compile_filter(one).key != compile_filter(regrouped).key
    # and a group of one is not the same JSON as a plain condition (the same rows, though)
    assert compile_filter(parse_filter({"groups": [{"any": [a]}]})).key != (
        compile_filter(parse_filter({"conditions": [a]})).key
    )


def test_filter_json_that_is_malformed_or_too_long_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="Invalid JSON"):
        parse_filter('{"limit": 5')
    with pytest.raises(InvalidRequest, match="longer than"):
        parse_filter(json.dumps({"watch": ["BTCUSDT"] * 10_000}))


# --- the query-string form --------------------------------------------------------------


def test_the_simple_parameters_of_the_issue() -> None:
    f = parse_query(
        QueryParams(
            "min_change_pct_5m=3&quote=usdt&quote=USDC&market=spot&sort=-change_pct_5m"
            "&limit=50&watch=&ignore=ethusdt,SOLUSDT"
        )
    )
    assert f.conditions == (Condition(metric="change_pct", window="5m", op=">=", value=3),)
    assert (f.quotes, f.markets, f.watch, f.ignore) == (
        ("USDC", "USDT"),
        ("spot",),
        (),
        ("ETHUSDT", "SOLUSDT"),
    )
    assert (f.sort, f.order, f.limit) == ("change_pct_5m", "desc", 50)


def test_query_thresholds_flags_bands_and_ascending_sort() -> None:
    f = parse_query(
        [
            ("max_rsi_14", "30"),
            ("min_quote_volume_1h", "1.5M"),
            ("min_volume", "250k"),
            ("max_volume", "2b"),
            ("volume_window", "1h"),
            ("new_high", "true"),
            ("new_low", "no"),
            ("market", "perpetual"),
            ("exchange", "Binance"),
            ("sort", "symbol"),
        ]
    )
    assert [(c.column, c.op, c.value) for c in f.all_conditions()] == [
        ("rsi_14", "<=", 30),
        ("quote_volume_1h", ">=", 1_500_000),
        ("quote_volume_1h", ">=", 250_000),
        ("quote_volume_1h", "<=", 2_000_000_000),
    ]
    assert (f.new_high, f.new_low, f.markets, f.exchanges) == (True, False, ("usdm",), ("binance",))
    assert (f.sort, f.order) == ("symbol", "asc")


def test_query_filter_json_route_parameters_and_blank_values() -> None:
    text = json.dumps({"conditions": [{"metric": "rvol_1m", "op": ">", "value": 2}], "limit": 5})
    f = parse_query([("filter", text), ("at", "1723161300000"), ("watch", "")], exclude=("at",))
    assert (f.conditions[0].column, f.limit) == ("rvol_1m", 5)
    blank = parse_query([("min_rsi_14", ""), ("limit", " "), ("sort", ""), ("quote", ",")])
    assert blank == ScanFilter()


def test_where_compares_with_a_number_or_another_column() -> None:
    f = parse_query(
        [
            ("where", "price>vwap_24h"),
            ("where", "change_pct_5m > change_pct_1h/12"),
            ("where", "price>=1.02*vwap_24h-0.5"),
            ("where", "rsi_14 between 30 and 70"),
            ("where", "Price <= High_24h * 0.5k + 1M"),
            ("min_rvol_5m", "2"),
        ]
    )
    assert [(c.column, c.op, c.value, c.value2) for c in f.conditions] == [
        ("price", ">", MetricRef(metric="vwap_24h"), None),
        ("change_pct_5m", ">", MetricRef(metric="change_pct", window="1h", factor=1 / 12), None),
        ("price", ">=", MetricRef(metric="vwap_24h", factor=1.02, offset=-0.5), None),
        ("rsi_14", "between", 30, 70),
        ("price", "<=", MetricRef(metric="high_24h", factor=500, offset=1e6), None),
        ("rvol_5m", ">=", 2, None),
    ]
    assert f.groups == ()


def test_where_with_or_is_a_group_and_each_where_must_hold() -> None:
    f = parse_query(
        [
            ("where", "rvol_5m>=3|change_pct_5m>change_pct_1h/12"),
            ("where", "rsi_14<30 or rsi_14>70"),
            ("where", "price between low_24h+1 and -2*high_24h"),
        ]
    )
    assert f.conditions == (
        Condition(
            metric="price",
            op="between",
            value=MetricRef(metric="low_24h", offset=1),
            value2=MetricRef(metric="high_24h", factor=-2),
        ),
    )
    assert [[(c.column, c.op, c.value) for c in g.any] for g in f.groups] == [
        [
            ("rvol_5m", ">=", 3),
            ("change_pct_5m", ">", MetricRef(metric="change_pct", window="1h", factor=1 / 12)),
        ],
        [("rsi_14", "<", 30), ("rsi_14", ">", 70)],
    ]
    # the same filter as JSON
    assert parse_query([("filter", f.model_dump_json())]) == f


README = Path(__file__).parents[3] / "README.md"


def curl_query(command: str) -> list[tuple[str, str]]:
    """The query parameters a README curl command sends, as the server decodes them:
    ``-g URL?query`` (`+` is a space there) or ``-G URL --data-urlencode name=value``."""
    words = shlex.split(command)
    url = next(word for word in words if word.startswith("http"))
    pairs = parse_qsl(urlsplit(url).query)
    encoded = [words[at + 1] for at, word in enumerate(words) if word == "--data-urlencode"]
    return pairs + [tuple(value.split("=", 1)) for value in encoded]  # type: ignore[misc]


def test_the_readmes_filter_commands_say_what_they_mean() -> None:
    commands = [
        line
        for line in README.read_text().splitlines()
        if line.startswith("curl") and ("where=" in line or "groups" in line)
    ]
    filters = [parse_query(curl_query(command)) for command in commands]
    assert len(filters) == 4
    vwap, swing, high, json_form = filters
    assert [(c.column, c.value) for c in vwap.conditions] == [
        ("price", MetricRef(metric="vwap_24h")),
        ("change_pct_5m", MetricRef(metric="change_pct", window="1h", factor=1 / 12)),
    ]
    assert [[(c.op, c.value) for c in g.any] for g in swing.groups] == [[("<", 30), (">", 70)]]
    assert high.groups[0].any[0].value == MetricRef(metric="vwap_24h", factor=1.01)
    assert json_form.conditions == vwap.conditions[:1]
    assert len(json_form.groups[0].any) == 2


BAD_QUERIES = [
    ([("colour", "red")], "unknown parameter 'colour'"),
    ([("limit", "5"), ("limit", "6")], "limit is given more than once"),
    ([("limit", "ten")], "limit: 'ten' is not a whole number"),
    ([("limit", "-1")], "not a whole number"),
    ([("limit", "9" * 5000)], "less than or equal to 5000"),
    ([("min_change_pct_5m", "3%")], "min_change_pct_5m: '3%' is not a number"),
    ([("min_rsi_14", "nan")], "finite number"),
    ([("min_change_pct", "3")], "'min_change_pct': no such column"),
    ([("max_price;DROP", "1")], "no such column"),
    ([("new_high", "maybe")], "new_high: 'maybe' is not true or false"),
    ([("filter", "{}"), ("limit", "3")], "either filter=<JSON> or simple parameters"),
    ([("filter", "[1, 2")], "Invalid JSON"),
    ([("sort", "-price;DROP TABLE x")], "cannot sort by"),
    ([("watch", "BTCUSDT' OR '1'='1")], "is not a symbol"),
    ([("volume_window", "2h"), ("min_volume", "1")], "volume.window"),
    ([("where", "price>vwap")], "where: 'vwap': no such column"),
    ([("where", "price>vwap_24h) OR (1=1")], "is not a condition (')' is not understood)"),
    ([("where", "price>vwap_24h; DROP TABLE rank_snapshots")], "(';' is not understood)"),
    ([("where", "price>vwap_24h OR 1=1 --")], "('=' is not understood)"),
    ([("where", "price>vwap_24h OR x>1")], "where: 'x': no such column"),
    ([("where", "price>'1'")], '("\'" is not understood)'),
    ([("where", "price>toFloat64(1)")], "('(' is not understood)"),
    ([("where", "price`>1")], "('`' is not understood)"),
    ([("where", "price=1")], "('=' is not understood)"),
    ([("where", "price 1")], "a comparison (>, >=, <, <=) is missing"),
    ([("where", "price>")], "a number is missing"),
    ([("where", "new_high>0")], "'new_high': no such column"),
    ([("where", "price>1|")], "a clause is empty"),
    ([("where", "price>1 1")], "'1' is not expected"),
    ([("where", "price>vwap_24h/0")], "division by zero"),
    ([("where", "rsi_14 between 30")], "between needs and"),
    ([("where", "rsi_14 between 70 and 30")], "between needs value <= value2"),
    ([("where", "price>1e999")], "finite number"),
    ([("where", "price>1"), ("filter", "{}")], "either filter=<JSON> or simple parameters"),
    ([("where", "|".join(["price>1"] * 17))], "at most 16 items"),
    ([("where", "price>1|price>2")] * 9, "at most 8 items"),
]


@pytest.mark.parametrize(("pairs", "message"), BAD_QUERIES, ids=[m for _, m in BAD_QUERIES])
def test_a_bad_query_says_what_is_wrong(pairs: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_query(pairs)
    assert message in caught.value.message


# --- live selection ---------------------------------------------------------------------


def test_sort_puts_rows_without_a_value_last_either_way_and_ties_go_by_key() -> None:
    rows = [
        row("AUSDT", change_pct_5m=None),
        row("BUSDT", change_pct_5m=2.0),
        row("CUSDT", change_pct_5m=5.0),
        row("DUSDT", change_pct_5m=2.0, market="usdm"),
        row("DUSDT", change_pct_5m=2.0),
        row("EUSDT", change_pct_5m=float("nan")),
    ]
    desc = ScanFilter(sort="change_pct_5m", order="desc")
    assert select(desc, rows) == [
        "binance:spot:CUSDT",
        "binance:spot:BUSDT",
        "binance:spot:DUSDT",
        "binance:usdm:DUSDT",
        "binance:spot:EUSDT",  # NaN after numbers, before missing: as ClickHouse sorts
        "binance:spot:AUSDT",
    ]
    asc = desc.model_copy(update={"order": "asc"})
    assert select(asc, rows)[:4] == [
        "binance:spot:BUSDT",
        "binance:spot:DUSDT",
        "binance:usdm:DUSDT",
        "binance:spot:CUSDT",
    ]
    assert select(asc, rows)[-1] == "binance:spot:AUSDT"


def test_limit_keeps_the_top_rows_after_sorting() -> None:
    rows = [row(f"S{i}USDT", price=float(i)) for i in range(10)]
    f = ScanFilter(sort="price", limit=3)
    assert select(f, rows) == ["binance:spot:S9USDT", "binance:spot:S8USDT", "binance:spot:S7USDT"]


def test_quote_filter_needs_metadata_and_no_quote_filter_does_not() -> None:
    rows = [row("BTCUSDT"), row("ETHBTC"), row("NEWUSDT")]
    symbols = {rows[0].key: info(rows[0], "USDT"), rows[1].key: info(rows[1], "BTC")}
    assert select(ScanFilter(quotes=("USDT",)), rows, symbols) == ["binance:spot:BTCUSDT"]
    assert len(select(ScanFilter(sort="symbol"), rows, symbols)) == 3


def test_market_exchange_watch_and_ignore() -> None:
    rows = [
        row("BTCUSDT"),
        row("BTCUSDT", market="usdm"),
        row("BTCUSDT", exchange="okx"),
        row("ETHUSDT", market="usdm"),
    ]
    assert select(parse_query([("market", "perpetual"), ("sort", "symbol")]), rows) == [
        "binance:usdm:BTCUSDT",
        "binance:usdm:ETHUSDT",
    ]
    assert select(ScanFilter(exchanges=("okx",)), rows) == ["okx:spot:BTCUSDT"]
    # a bare symbol names it on every market and exchange, a key names one
    assert len(select(ScanFilter(watch=("btcusdt",)), rows)) == 3
    assert select(
        ScanFilter(watch=("binance:usdm:BTCUSDT", "ETHUSDT"), sort="symbol", order="asc"), rows
    ) == [
        "binance:usdm:BTCUSDT",
        "binance:usdm:ETHUSDT",
    ]
    assert select(ScanFilter(ignore=("BTCUSDT",)), rows) == ["binance:usdm:ETHUSDT"]
    assert "okx:spot:BTCUSDT" not in select(ScanFilter(ignore=("okx:spot:BTCUSDT",)), rows)


def test_thresholds_are_inclusive_where_they_say_so_and_missing_values_fail() -> None:
    rows = [
        row("AUSDT", rsi_14=30.0),
        row("BUSDT", rsi_14=29.9),
        row("CUSDT"),
        row("DUSDT", rsi_14=70.0),
    ]
    at_most = parse_query([("max_rsi_14", "30"), ("sort", "symbol")])
    assert select(at_most, rows) == ["binance:spot:AUSDT", "binance:spot:BUSDT"]
    below = ScanFilter(conditions=(Condition(metric="rsi_14", op="<", value=30),))
    assert select(below, rows) == ["binance:spot:BUSDT"]
    between = Condition(metric="rsi_14", op="between", value=30, value2=70)
    assert select(ScanFilter(conditions=(between,), sort="symbol", order="asc"), rows) == [
        "binance:spot:AUSDT",
        "binance:spot:DUSDT",
    ]


def test_new_high_flags_and_volume_band() -> None:
    rows = [
        row("AUSDT", new_high=True, quote_volume_24h=5e6),
        row("BUSDT", quote_volume_24h=2e7),
        row("CUSDT", new_high=True, quote_volume_24h=9e7),
    ]
    assert select(ScanFilter(new_high=True, sort="symbol", order="asc"), rows) == [
        "binance:spot:AUSDT",
        "binance:spot:CUSDT",
    ]
    assert select(ScanFilter(new_high=False), rows) == ["binance:spot:BUSDT"]
    band = parse_query([("min_volume", "10M"), ("max_volume", "50M")])
    assert select(band, rows) == ["binance:spot:BUSDT"]


def test_a_metric_compared_with_another_and_a_side_without_a_value() -> None:
    rows = [
        row("AUSDT", price=10.0, vwap_24h=9.0, change_pct_5m=1.0, change_pct_1h=6.0),
        row("BUSDT", price=10.0, vwap_24h=10.0, change_pct_5m=0.5, change_pct_1h=6.0),
        row("CUSDT", price=10.0, vwap_24h=None, change_pct_5m=1.0, change_pct_1h=None),
        row("DUSDT", price=10.0, vwap_24h=12.0, change_pct_5m=None, change_pct_1h=-24.0),
        row("EUSDT", price=10.0, vwap_24h=None, change_pct_5m=0.1, change_pct_1h=None),
    ]
    ordered = {"sort": "symbol", "order": "asc"}
    above_vwap = parse_query([("where", "price>vwap_24h"), ("sort", "symbol")])
    assert select(above_vwap, rows) == ["binance:spot:AUSDT"]
    at_least = parse_filter(
        {"conditions": [{"metric": "price", "op": ">=", "value": {"metric": "vwap_24h"}}]} | ordered
    )
    assert select(at_least, rows) == ["binance:spot:AUSDT", "binance:spot:BUSDT"]
    # 5m change above the 1h change / 12: a None on either side is false, never a guess
    pace = parse_query([("where", "change_pct_5m>change_pct_1h/12"), ("sort", "symbol")])
    assert select(pace, rows) == ["binance:spot:AUSDT"]
    # and so inside a group: the OR of a None and a true is true, of a None and false false
    either = parse_query([("where", "price<vwap_24h|change_pct_5m>0.75"), ("sort", "symbol")])
    assert select(either, rows) == [
        "binance:spot:AUSDT",
        "binance:spot:CUSDT",
        "binance:spot:DUSDT",
    ]
    between = parse_query([("where", "price between vwap_24h and vwap_24h*1.2")])
    assert select(between.model_copy(update=ordered), rows) == [
        "binance:spot:AUSDT",
        "binance:spot:BUSDT",
    ]


def test_groups_are_anded_with_the_conditions_and_each_other() -> None:
    rows = [
        row("AUSDT", rsi_14=20.0, rvol_5m=3.0, spread_bps=1.0),
        row("BUSDT", rsi_14=50.0, rvol_5m=3.0, spread_bps=1.0),
        row("CUSDT", rsi_14=80.0, rvol_5m=1.0, spread_bps=1.0),
        row("DUSDT", rsi_14=80.0, rvol_5m=1.0, spread_bps=9.0, change_pct_5m=5.0),
        row("EUSDT", rsi_14=10.0, change_pct_5m=5.0, spread_bps=1.0),
    ]
    f = parse_query(
        [
            ("where", "rsi_14<30|rsi_14>70"),
            ("where", "rvol_5m>=2|change_pct_5m>=5"),
            ("max_spread_bps", "5"),
            ("sort", "symbol"),
        ]
    )
    assert select(f, rows) == ["binance:spot:AUSDT", "binance:spot:EUSDT"]


# --- property: select() equals a brute-force reading of the filter -----------------------

VALUES = [-5.0, -1.0, 0.0, 0.5, 1.0, 3.0, 10.0, 250.0]


def random_rows(rng: random.Random, n: int) -> list[RankRow]:
    rows = []
    for i in range(n):
        metrics: dict[str, Any] = {}
        for column in NUMERIC_COLUMNS:
            draw = rng.random()
            if column == "price":
                metrics[column] = rng.choice(VALUES[3:])
            elif draw < 0.15:
                metrics[column] = None
            elif draw < 0.18:
                metrics[column] = math.nan
            else:
                metrics[column] = rng.choice(VALUES)
        for flag in FLAG_COLUMNS:
            metrics[flag] = rng.random() < 0.3
        symbol = f"S{i % (n // 3)}{rng.choice(['USDT', 'USDC', 'BTC'])}"
        rows.append(
            row(
                symbol,
                market=rng.choice(["spot", "usdm"]),
                exchange=rng.choice(["binance", "okx"]),
                **metrics,
            )
        )
    # a board holds one row per key
    return list({r.key: r for r in rows}.values())


FACTORS = [1.0, 1.0, 1 / 12, 0.5, -1.0, 2.0, 1 / 3]
OFFSETS = [0.0, 0.0, 0.0, 1.5, -1.0]


def random_side(rng: random.Random, number: float) -> float | dict[str, Any]:
    """A right-hand side: the number, or (as often) another metric, scaled and shifted."""
    if rng.random() < 0.5:
        return number
    metric = rng.choice(list(METRIC_WINDOWS))
    side: dict[str, Any] = {"metric": metric, "factor": rng.choice(FACTORS)}
    if METRIC_WINDOWS[metric]:
        side["window"] = rng.choice(METRIC_WINDOWS[metric])
    offset = rng.choice(OFFSETS)
    return side | ({"offset": offset} if offset else {})


def random_condition(rng: random.Random) -> dict[str, Any]:
    metric = rng.choice(list(METRIC_WINDOWS))
    window = rng.choice(METRIC_WINDOWS[metric]) if METRIC_WINDOWS[metric] else None
    op = rng.choice([">", ">=", "<", "<=", "between"])
    low, high = sorted(rng.sample(VALUES, 2))
    condition = {"metric": metric, "window": window, "op": op, "value": random_side(rng, low)}
    return condition | ({"value2": random_side(rng, high)} if op == "between" else {})


def random_filter(rng: random.Random, rows: list[RankRow]) -> ScanFilter:
    conditions = [random_condition(rng) for _ in range(rng.choice([0, 1, 1, 2, 3]))]
    groups = [
        {"any": [random_condition(rng) for _ in range(rng.choice([1, 2, 2, 3, 4]))]}
        for _ in range(rng.choice([0, 0, 1, 1, 2]))
    ]
    named = [r.symbol if rng.random() < 0.5 else r.key for r in rng.sample(rows, 6)]
    data: dict[str, Any] = {
        "conditions": conditions,
        "groups": groups,
        "new_high": rng.choice([None, None, True, False]),
        "new_low": rng.choice([None, None, True, False]),
        "quotes": rng.choice([[], [], ["USDT"], ["USDC", "BTC"]]),
        "markets": rng.choice([[], ["spot"], ["usdm"], ["spot", "usdm"]]),
        "exchanges": rng.choice([[], ["okx"]]),
        "watch": named[:3] if rng.random() < 0.2 else [],
        "ignore": named[3:] if rng.random() < 0.4 else [],
        "sort": rng.choice(["symbol", *NUMERIC_COLUMNS, *FLAG_COLUMNS]),
        "order": rng.choice(["asc", "desc"]),
        "limit": rng.choice([1, 5, 20, 5000]),
    }
    if rng.random() < 0.3:
        data["volume"] = {
            "window": rng.choice(WINDOWS),
            "min": 0.5,
            "max": rng.choice([None, 10.0]),
        }
    return parse_filter(data)


OPS = {
    ">": lambda v, a, b: v > a,
    ">=": lambda v, a, b: v >= a,
    "<": lambda v, a, b: v < a,
    "<=": lambda v, a, b: v <= a,
    "between": lambda v, a, b: a <= v <= b,
}


def reference(f: ScanFilter, rows: list[RankRow], symbols: dict[str, SymbolInfo]) -> list[str]:
    """What the filter says, read literally: no predicates, no tricks."""
    tests = [(c.column, c.op, c.value, c.value2) for c in f.conditions]
    if f.volume is not None:
        column = f"quote_volume_{f.volume.window}"
        tests += [(column, ">=", f.volume.min, None)] if f.volume.min is not None else []
        tests += [(column, "<=", f.volume.max, None)] if f.volume.max is not None else []
    groups = [[(c.column, c.op, c.value, c.value2) for c in group.any] for group in f.groups]

    def side(values: dict[str, Any], operand: Any) -> float | None:
        """A number as it is; another metric times its factor plus its offset."""
        if not isinstance(operand, MetricRef):
            return operand  # type: ignore[no-any-return]
        other = values[operand.column]
        return None if other is None else other * operand.factor + operand.offset

    def holds(values: dict[str, Any], test: tuple[str, str, Any, Any]) -> bool:
        column, op, a, b = test
        v, a, b = values[column], side(values, a), side(values, b)
        return (
            v is not None
            and a is not None
            and (op != "between" or b is not None)
            and (OPS[op](v, a, b))
        )

    def named(r: RankRow, refs: tuple[str, ...]) -> bool:
        return r.symbol in refs or f"{r.exchange}:{r.market}:{r.symbol}" in refs

    def passes(r: RankRow) -> bool:
        values = msgspec.structs.asdict(r)
        meta = symbols.get(r.key)
        return (
            all(holds(values, test) for test in tests)
            and all(any(holds(values, test) for test in group) for group in groups)
            and (f.new_high is None or r.new_high == f.new_high)
            and (f.new_low is None or r.new_low == f.new_low)
            and (not f.quotes or (meta is not None and meta.quote_asset in f.quotes))
            and (not f.markets or r.market in f.markets)
            and (not f.exchanges or r.exchange in f.exchanges)
            and (not f.watch or named(r, f.watch))
            and not named(r, f.ignore)
        )

    def compare(a: RankRow, b: RankRow) -> int:
        va, vb = getattr(a, f.sort), getattr(b, f.sort)
        rank_a = 2 if va is None else 1 if va != va else 0
        rank_b = 2 if vb is None else 1 if vb != vb else 0
        if rank_a != rank_b:
            return rank_a - rank_b
        if rank_a == 0 and va != vb:
            sign = -1 if f.order == "desc" else 1
            return sign * (-1 if va < vb else 1)
        ka, kb = (a.exchange, a.market, a.symbol), (b.exchange, b.market, b.symbol)
        return -1 if ka < kb else 1 if ka > kb else 0

    kept = sorted(filter(passes, rows), key=functools.cmp_to_key(compare))
    return keys(kept[: f.limit])


def test_select_returns_exactly_the_rows_the_filter_describes() -> None:
    rng = random.Random(20240808)
    rows = random_rows(rng, 300)
    symbols = {
        r.key: info(r, next(q for q in ("USDT", "USDC", "BTC") if r.symbol.endswith(q)))
        for r in rows
        if rng.random() < 0.9  # some symbols have no metadata yet
    }
    nonempty = grouped = compared = 0
    for _ in range(400):
        f = random_filter(rng, rows)
        expected = reference(f, rows, symbols)
        assert select(f, rows, symbols) == expected, f.model_dump_json()
        nonempty += bool(expected)
        grouped += bool(expected) and expected != reference(
            f.model_copy(update={"groups": ()}), rows, symbols
        )
        compared += bool(expected) and expected != reference(numbers_only(f), rows, symbols)
    assert nonempty > 150  # the generated filters mostly select something
    # and OR groups and comparisons with other metrics often decide what
    assert grouped > 40
    assert compared > 80


def numbers_only(f: ScanFilter) -> ScanFilter:
    """The filter without its conditions that compare with another metric."""

    def plain(conditions: tuple[Condition, ...]) -> tuple[Condition, ...]:
        return tuple(c for c in conditions if len(c.columns()) == 1)

    groups = [g.model_copy(update={"any": plain(g.any)}) for g in f.groups]
    return f.model_copy(
        update={"conditions": plain(f.conditions), "groups": tuple(g for g in groups if g.any)}
    )
