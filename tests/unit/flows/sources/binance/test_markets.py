"""The market descriptions: hosts and paths, stream routing, weights, pages, symbol kinds."""

from __future__ import annotations

import pytest

from flows.sources.binance.markets import SPOT, USDM, binance_market
from flows.sources.binance.rest import BinanceRest


def test_each_market_is_found_by_its_name_and_no_other_is() -> None:
    assert binance_market("spot") is SPOT and binance_market("usdm") is USDM
    assert (SPOT.trade_kind, USDM.trade_kind) == ("trade", "aggTrade")
    with pytest.raises(ValueError, match="spot or usdm"):
        binance_market("coinm")


def test_usdm_streams_are_routed_to_market_and_public() -> None:
    usdm = USDM.stream_path
    assert usdm("btcusdt@aggTrade") == "/market/stream"
    assert usdm("btcusdt@kline_1m") == "/market/stream"
    assert usdm("btcusdt@bookTicker") == "/public/stream"
    assert usdm("btcusdt@depth@100ms") == "/public/stream"
    # Mark prices and liquidations: /market only (on /public they "will not deliver").
    assert usdm("btcusdt@markPrice@1s") == "/market/stream"
    assert usdm("!forceOrder@arr") == "/market/stream"
    assert usdm("btcusdt@forceOrder") == "/market/stream"
    spot = SPOT.stream_path
    assert {spot("btcusdt@trade"), spot("btcusdt@bookTicker")} == {"/stream"}
    assert USDM.ws_url == "wss://fstream.binance.com"
    assert SPOT.ws_url == "wss://stream.binance.com:9443"


@pytest.mark.parametrize(
    ("market", "limit", "weight"),
    [
        ("spot", 1, 2),
        ("spot", 1000, 2),
        ("usdm", 99, 1),
        ("usdm", 100, 2),
        ("usdm", 499, 2),
        ("usdm", 500, 5),
        ("usdm", 1000, 5),
        ("usdm", 1500, 10),
    ],
)
def test_kline_weights_follow_binance_tables(market, limit, weight) -> None:
    assert binance_market(market).klines_weight(limit) == weight


@pytest.mark.parametrize("facts", [SPOT, USDM], ids=lambda m: m.market)
def test_the_kline_page_gives_the_most_klines_per_unit_of_weight(facts) -> None:
    def per_weight(limit: int) -> float:
        return limit / facts.klines_weight(limit)

    best = max(per_weight(n) for n in range(1, facts.max_klines + 1))
    assert facts.kline_page <= facts.max_klines
    assert per_weight(facts.kline_page) == best


@pytest.mark.parametrize("facts", [SPOT, USDM], ids=lambda m: m.market)
def test_every_endpoint_the_client_calls_has_a_weight(facts) -> None:
    for endpoint in ("exchangeInfo", "aggTrades", "trades", "historicalTrades", "ticker/24hr"):
        assert facts.weights[endpoint] >= 1


def test_symbol_kinds_are_spot_or_the_contract_type() -> None:
    assert SPOT.symbol_kind(None) == "spot"
    assert USDM.symbol_kind("PERPETUAL") == "perpetual"
    assert USDM.symbol_kind(None) == "unknown"


def test_the_rest_client_takes_its_market_defaults_unless_given_others() -> None:
    # No request is made: the client opens its session on the first one.
    usdm = BinanceRest("usdm")
    assert (usdm.base_url, usdm.budget.limit) == ("https://fapi.binance.com", 2400)
    fake = BinanceRest("spot", "http://127.0.0.1:1/", weight_limit_1m=50)
    assert (fake.base_url, fake.budget.limit) == ("http://127.0.0.1:1", 50)
    with pytest.raises(ValueError, match="spot or usdm"):
        BinanceRest("coinm")  # type: ignore[arg-type]
