"""The fake Binance's perpetuals data speaks USDⓈ-M: formats, paths, weight and faults."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal

import aiohttp
import pytest

from flows.sources.binance.perps import LiquidationDecoder, MarkPriceDecoder, parse_open_interest
from tests.fakes.binance import FakeBinance
from tests.integration.test_fake_binance import get, receive_until, run

pytestmark = pytest.mark.integration

STREAMS = "btcusdt@markPrice@1s/ethusdt@markPrice@1s/!forceOrder@arr"


def test_marks_and_liquidations_come_on_market_only_in_binance_format() -> None:
    async def scenario() -> None:
        async with FakeBinance("usdm", 2, rate=20) as fake, aiohttp.ClientSession() as http:
            fake._perp.liquidation_rate = 1.0
            async with (
                http.ws_connect(f"{fake.ws_url}/market/stream?streams={STREAMS}") as mws,
                http.ws_connect(f"{fake.ws_url}/public/stream?streams={STREAMS}") as pws,
            ):
                got = await receive_until(
                    mws, lambda ms: sum(m["stream"].endswith("@1s") for m in ms) >= 6, 8.0
                )
                # /public accepted the subscription and delivers nothing of it.
                with pytest.raises(TimeoutError):
                    await pws.receive(timeout=1.5)
            last = {s: Decimal(fake.trades(s)[-1]["p"]) for s in ("BTCUSDT", "ETHUSDT")}

        marks = [m for m in got if m["stream"].endswith("@markPrice@1s")]
        assert list(marks[0]["data"]) == ["e", "E", "s", "p", "i", "P", "r", "T"]
        decoded = [MarkPriceDecoder().decode(str_of(m), 1) for m in marks]
        for symbol in ("BTCUSDT", "ETHUSDT"):
            times = [d.time_us for d in decoded if d.symbol == symbol]
            # One a second, on the second.
            assert all(b - a == 1_000_000 for a, b in itertools.pairwise(times))
            assert all(t % 1_000_000 == 0 for t in times)
        for mark in decoded:
            assert abs(mark.mark_price / last[mark.symbol] - 1) < Decimal("0.01")
            assert abs(mark.index_price / last[mark.symbol] - 1) < Decimal("0.01")
            assert mark.next_funding_time_us % (8 * 3600 * 1_000_000) == 0
            assert 0 < mark.next_funding_time_us - mark.time_us <= 8 * 3600 * 1_000_000
            assert mark.funding_rate is not None and abs(mark.funding_rate) < Decimal("0.001")
        forced = [m for m in got if m["stream"] == "!forceOrder@arr"]
        assert forced and list(forced[0]["data"]["o"]) == [
            "s", "S", "o", "f", "q", "p", "ap", "X", "l", "z", "T"
        ]  # fmt: skip
        for message in forced:
            liquidation = LiquidationDecoder().decode(str_of(message), 1)
            assert liquidation.symbol in last and liquidation.last_filled_qty > 0

    run(scenario())


def test_open_interest_answers_with_weight_and_its_429_fault() -> None:
    with FakeBinance("usdm", 1, rate=50, history_s=2) as fake:
        status, headers, body = get(fake, "/fapi/v1/openInterest", symbol="BTCUSDT")
        assert status == 200 and list(body) == ["openInterest", "symbol", "time"]
        assert headers["X-MBX-USED-WEIGHT-1M"] == "1"
        sample = parse_open_interest(str_of(body).encode())
        assert sample.symbol == "BTCUSDT" and sample.open_interest > 0
        fake.fail_open_interest(count=1, retry_after=3)
        # The fault is the poll's: other requests are answered.
        assert get(fake, "/fapi/v1/exchangeInfo")[0] == 200
        refused = get(fake, "/fapi/v1/openInterest", symbol="BTCUSDT")
        assert refused[0] == 429 and refused[1]["Retry-After"] == "3"
        assert refused[2]["code"] == -1003
        again = get(fake, "/fapi/v1/openInterest", symbol="BTCUSDT")
        assert again[0] == 200 and Decimal(again[2]["openInterest"]) >= sample.open_interest
        assert get(fake, "/fapi/v1/openInterest")[2]["code"] == -1102


def test_a_stopped_mark_price_stops_that_symbol_only() -> None:
    async def scenario() -> None:
        async with FakeBinance("usdm", 2, rate=20) as fake, aiohttp.ClientSession() as http:
            fake.stop_mark_price("BTCUSDT")
            url = f"{fake.ws_url}/market/stream?streams={STREAMS}/btcusdt@aggTrade"
            async with http.ws_connect(url) as ws:
                got = await receive_until(
                    ws, lambda ms: sum(m["stream"] == "ethusdt@markPrice@1s" for m in ms) >= 3
                )
        streams = {m["stream"] for m in got}
        assert "btcusdt@markPrice@1s" not in streams
        assert {"ethusdt@markPrice@1s", "btcusdt@aggTrade"} <= streams

    run(scenario())


def str_of(message: object) -> str:
    """A decoded JSON message as text again."""
    return json.dumps(message, separators=(",", ":"))
