"""The fake Binance speaks Binance: streams our decoder reads, REST that repairs their gaps."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from flows.sources.binance.trades import BinanceDecoder
from schemas.trades import Market, Trade
from tests.fakes.binance import FakeBinance

pytestmark = pytest.mark.integration

# 2023-11-14 22:14:00 UTC is a minute boundary: starting the clock just before it makes the
# fake close a kline within the first second.
MINUTE_BOUNDARY_MS = 1_700_000_040_000


def run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=30))


async def receive_until(
    ws: aiohttp.ClientWebSocketResponse,
    done: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 5.0,
) -> list[dict[str, Any]]:
    """Collect JSON messages until `done(messages)` holds; fail after `timeout` seconds."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not done(messages):
        left = deadline - time.monotonic()
        assert left > 0, f"timed out after {len(messages)} messages"
        msg = await ws.receive(timeout=left)
        assert msg.type is aiohttp.WSMsgType.TEXT, f"socket ended: {msg}"
        messages.append(json.loads(msg.data))
    return messages


async def wait_closed(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> float:
    """Read until the server ends the socket; return how long it took."""
    start = time.monotonic()
    while True:
        msg = await ws.receive(timeout=timeout)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            return time.monotonic() - start


def get(
    fake: FakeBinance, path: str, headers: dict[str, str] | None = None, **params: Any
) -> tuple[int, dict[str, str], Any]:
    """A blocking REST GET: (status, headers, decoded JSON body)."""
    query = urllib.parse.urlencode(params)
    request = urllib.request.Request(f"{fake.rest_url}{path}?{query}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


def decode_all(decoder: BinanceDecoder, messages: list[dict[str, Any]]) -> list[Trade]:
    trades = [decoder.decode(json.dumps(m)) for m in messages]
    return [t for t in trades if t is not None]


def test_spot_streams_decode_and_agree_with_ground_truth_and_klines() -> None:
    async def scenario() -> None:
        fake = FakeBinance("spot", 2, rate=40, start_ms=MINUTE_BOUNDARY_MS - 800)
        fake.kline_update_s = 0.2
        async with fake, aiohttp.ClientSession() as http:
            streams = "btcusdt@trade/btcusdt@aggTrade/btcusdt@bookTicker/btcusdt@kline_1m"
            async with http.ws_connect(f"{fake.ws_url}/stream?streams={streams}") as ws:
                messages = await receive_until(
                    ws,
                    lambda ms: any(m["data"].get("k", {}).get("x") for m in ms) and len(ms) > 80,
                )
            rest = await http.get(
                f"{fake.rest_url}/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m"}
            )
            rows = await rest.json()

        by_stream: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for m in messages:
            by_stream[m["stream"]].append(m)
        assert set(by_stream) == {
            f"btcusdt@{s}" for s in ("trade", "aggTrade", "bookTicker", "kline_1m")
        }

        decoder = BinanceDecoder("spot")
        trades = decode_all(decoder, by_stream["btcusdt@trade"])
        aggs = decode_all(decoder, by_stream["btcusdt@aggTrade"])
        assert decoder.skipped == {}
        ids = [t.trade_id for t in trades]
        assert ids == list(range(ids[0], ids[0] + len(ids)))
        assert all(a.first_trade_id == a.last_trade_id for a in aggs)
        truth = {row["f"]: row for row in fake.trades("BTCUSDT")}
        for t in trades:
            row = truth[t.trade_id]
            assert (t.price, t.qty, t.time_us, t.buyer_is_maker) == (
                Decimal(row["p"]),
                Decimal(row["q"]),
                row["T"] * 1000,
                row["m"],
            )

        book = by_stream["btcusdt@bookTicker"][0]["data"]
        assert set(book) == {"u", "s", "b", "B", "a", "A"}  # spot bookTicker has no e/E
        assert decoder.decode(json.dumps(by_stream["btcusdt@bookTicker"][0])) is None
        assert decoder.skipped["bookTicker"] == 1

        closed = [m["data"]["k"] for m in by_stream["btcusdt@kline_1m"] if m["data"]["k"]["x"]]
        k = closed[0]
        assert k["T"] == k["t"] + 59_999 and k["i"] == "1m"
        row = next(r for r in rows if r[0] == k["t"])
        fields = ("t", "o", "h", "l", "c", "v", "T", "q", "n", "V", "Q")
        assert row == [*(k[f] for f in fields), "0"]

    run(scenario())


def test_usdm_routes_streams_by_path_and_aggtrades_cover_raw_ids() -> None:
    async def scenario() -> None:
        async with FakeBinance("usdm", 2, rate=40) as fake, aiohttp.ClientSession() as http:
            market = "/market/stream?streams=ethusdt@aggTrade/ethusdt@bookTicker"
            # aggTrade belongs to /market: on /public it is accepted and stays silent.
            public = "/public/stream?streams=ethusdt@trade/ethusdt@aggTrade"
            async with (
                http.ws_connect(fake.ws_url + market) as mws,
                http.ws_connect(fake.ws_url + public) as pws,
            ):
                market_msgs = await receive_until(mws, lambda ms: len(ms) > 60)
                public_msgs = await receive_until(pws, lambda ms: len(ms) > 60)

        assert {m["stream"] for m in public_msgs} == {"ethusdt@trade"}
        decoder = BinanceDecoder("usdm")
        aggs = decode_all(decoder, market_msgs)
        raws = decode_all(decoder, public_msgs)
        assert decoder.skipped["bookTicker"] > 0
        book = next(m["data"] for m in market_msgs if m["stream"].endswith("@bookTicker"))
        assert list(book) == ["e", "u", "s", "b", "B", "a", "A", "T", "E"]
        assert all(m["data"]["X"] == "MARKET" for m in public_msgs)

        assert aggs and raws
        assert any(a.count > 1 for a in aggs), "aggTrades must fold several raw trades"
        for prev, cur in itertools.pairwise(aggs):
            assert cur.trade_id == prev.trade_id + 1
            assert cur.first_trade_id == (prev.last_trade_id or 0) + 1
        raw_ids = [t.trade_id for t in raws]
        assert raw_ids == list(range(raw_ids[0], raw_ids[0] + len(raw_ids)))
        # Every raw trade sits in exactly one aggregate with its price, and quantities add up.
        truth = {row["a"]: row for row in fake.trades("ETHUSDT")}
        raw_qty: dict[int, Decimal] = defaultdict(Decimal)
        for row in truth.values():
            for t in raws:
                if row["f"] <= t.trade_id <= row["l"]:
                    assert t.price == Decimal(row["p"])
                    raw_qty[row["a"]] += t.qty
        full = [row for row in truth.values() if raw_ids[0] <= row["f"] and row["l"] <= raw_ids[-1]]
        assert full and all(raw_qty[row["a"]] == Decimal(row["q"]) for row in full)

    run(scenario())


def test_live_subscribe_list_unsubscribe_and_binance_errors() -> None:
    async def scenario() -> None:
        fake = FakeBinance("spot", 2, rate=30)
        async with (
            fake,
            aiohttp.ClientSession() as http,
            http.ws_connect(fake.ws_url + "/ws") as ws,
        ):
            sent = 0

            async def ask(request: dict[str, Any]) -> dict[str, Any]:
                nonlocal sent
                sent += 1
                await asyncio.sleep(0.25)  # spot allows 5 incoming messages per second
                await ws.send_json(request)
                replies = await receive_until(ws, lambda ms: "id" in ms[-1] if ms else False)
                return replies[-1]

            sub = {"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 1}
            assert await ask(sub) == {"result": None, "id": 1}
            bare = await receive_until(ws, lambda ms: len(ms) >= 3)
            assert all(m["e"] == "aggTrade" and "stream" not in m for m in bare)
            listed = await ask({"method": "LIST_SUBSCRIPTIONS", "id": 2})
            assert listed == {"result": ["btcusdt@aggTrade"], "id": 2}
            unsub = {"method": "UNSUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 3}
            assert await ask(unsub) == {"result": None, "id": 3}
            wrong = await ask({"method": "SUBSCRIB", "params": [], "id": 4})
            assert wrong["id"] == 4 and wrong["error"]["code"] == 2
            assert wrong["error"]["msg"].startswith("Invalid request: unknown variant `SUBSCRIB`")
            bad = await ask({"method": "SUBSCRIBE", "params": ["btcusdt trade"], "id": 5})
            assert bad == {
                "error": {"code": 2, "msg": "Invalid request: invalid stream"},
                "id": 5,
            }
            many = [f"s{i}usdt@trade" for i in range(1025)]
            over = await ask({"method": "SUBSCRIBE", "params": many, "id": 6})
            assert over["id"] == 6 and over["error"]["code"] == 2
            listed = await ask({"method": "LIST_SUBSCRIPTIONS", "id": 7})
            assert listed == {"result": [], "id": 7}
        assert [m["id"] for m in fake.subscribe_messages] == list(range(1, sent + 1))

    run(scenario())


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_skip_ids_leaves_a_gap_that_rest_fills_exactly(market: Market) -> None:
    path = "/ws/btcusdt@aggTrade" if market == "spot" else "/market/ws/btcusdt@aggTrade"
    prefix = "/api/v3" if market == "spot" else "/fapi/v1"
    with FakeBinance(market, 1, rate=50) as fake:

        async def listen() -> list[dict[str, Any]]:
            async with aiohttp.ClientSession() as http, http.ws_connect(fake.ws_url + path) as ws:
                before = await receive_until(ws, lambda ms: len(ms) >= 5)
                fake.skip_ids("BTCUSDT", 7)  # from the test thread, while the loop runs
                after = await receive_until(ws, lambda ms: len(ms) >= 5)
                return before + after

        received: list[dict[str, Any]] = []

        async def collect() -> None:
            received.extend(await listen())

        run(collect())
        ids = [m["a"] for m in received]
        gaps = [(a, b) for a, b in itertools.pairwise(ids) if b != a + 1]
        assert len(gaps) == 1 and gaps[0][1] - gaps[0][0] - 1 == 7
        first_missing, after_gap = gaps[0][0] + 1, gaps[0][1]

        status, headers, rows = get(fake, f"{prefix}/aggTrades", symbol="BTCUSDT",
                                    fromId=first_missing, limit=7)  # fmt: skip
        assert status == 200 and int(headers["X-MBX-USED-WEIGHT-1M"]) > 0
        assert [r["a"] for r in rows] == list(range(first_missing, after_gap))
        truth = [t for t in fake.trades("BTCUSDT") if first_missing <= t["a"] < after_gap]
        assert rows == truth
        # The raw trades behind the gap: from the first raw id of the gap to the last.
        raw_from, raw_to = rows[0]["f"], rows[-1]["l"]
        before = next(m for m in received if m["a"] == first_missing - 1)
        assert raw_from == before["l"] + 1
        params = {"symbol": "BTCUSDT", "fromId": raw_from, "limit": raw_to - raw_from + 1}
        if market == "usdm":
            status, _, body = get(fake, f"{prefix}/historicalTrades", **params)
            assert (status, body["code"]) == (401, -2014)  # USDⓈ-M wants an API key here
        status, _, raws = get(fake, f"{prefix}/historicalTrades", {"X-MBX-APIKEY": "k"}, **params)
        assert status == 200
        assert [r["id"] for r in raws] == list(range(raw_from, raw_to + 1))
        assert sum(Decimal(r["qty"]) for r in raws) == sum(Decimal(r["q"]) for r in rows)


def test_drop_connections_aborts_and_server_shutdown_warns_then_closes() -> None:
    async def scenario() -> None:
        async with FakeBinance("spot", 1, rate=20) as fake, aiohttp.ClientSession() as http:
            url = fake.ws_url + "/stream?streams=btcusdt@trade"
            async with http.ws_connect(url) as a, http.ws_connect(url) as b:
                await receive_until(a, lambda ms: len(ms) >= 1)
                assert fake.connections == 2
                fake.drop_connections()
                for ws in (a, b):
                    await wait_closed(ws)
                    assert ws.close_code in (None, 1006)  # no close frame: an abnormal end
            while fake.connections:
                await asyncio.sleep(0.01)

            async with http.ws_connect(url) as ws:
                await receive_until(ws, lambda ms: len(ms) >= 1)
                fake.server_shutdown()
                messages = await receive_until(
                    ws, lambda ms: bool(ms) and ms[-1].get("stream") == "!serverShutdown"
                )
                assert messages[-1]["data"]["e"] == "serverShutdown"
                assert isinstance(messages[-1]["data"]["E"], int)
                msg = await ws.receive(timeout=5)
                while msg.type is aiohttp.WSMsgType.TEXT:  # data keeps flowing in the grace time
                    msg = await ws.receive(timeout=5)
                assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1001

    run(scenario())


def test_connections_rotate_after_max_connection_s() -> None:
    async def scenario() -> None:
        async with FakeBinance("usdm", 1, rate=5) as fake, aiohttp.ClientSession() as http:
            fake.max_connection_s = 0.5
            async with http.ws_connect(fake.ws_url + "/market/ws/btcusdt@aggTrade") as ws:
                took = await wait_closed(ws)
                assert ws.close_code == 1000
                assert 0.3 < took < 2.0

    run(scenario())


@pytest.mark.parametrize(("market", "allowed"), [("spot", 5), ("usdm", 10)])
def test_too_many_incoming_messages_disconnect(market: Market, allowed: int) -> None:
    path = "/ws" if market == "spot" else "/market/ws"

    async def scenario() -> None:
        fake = FakeBinance(market, 1)
        async with fake, aiohttp.ClientSession() as http, http.ws_connect(fake.ws_url + path) as ws:
            for i in range(allowed + 1):
                await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": i})
            replies = 0
            msg = await ws.receive(timeout=5)
            while msg.type is aiohttp.WSMsgType.TEXT:
                replies += 1
                msg = await ws.receive(timeout=5)
            assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1008
            assert replies == allowed

    run(scenario())


def test_a_client_that_does_not_pong_is_disconnected() -> None:
    async def scenario() -> None:
        fake = FakeBinance("spot", 1, rate=5, ping_interval_s=0.2, pong_timeout_s=0.6)
        async with fake, aiohttp.ClientSession() as http:
            url = fake.ws_url + "/ws/btcusdt@trade"
            async with (
                http.ws_connect(url, autoping=False) as deaf,
                http.ws_connect(url) as polite,  # aiohttp answers the pings it reads
            ):
                reader = asyncio.create_task(wait_closed(polite, timeout=10))
                msg = await deaf.receive(timeout=5)
                while msg.type is aiohttp.WSMsgType.TEXT:
                    msg = await deaf.receive(timeout=5)
                assert msg.type is aiohttp.WSMsgType.PING and msg.data
                took = await wait_closed(deaf)
                assert 0.2 < took < 3.0
                assert not reader.done() and fake.connections == 1
                reader.cancel()

    run(scenario())


def test_rest_weight_limit_answers_429_then_418() -> None:
    with FakeBinance("spot", 1, rate=0) as fake:
        fake.weight_limit = 45  # exchangeInfo weighs 20 on spot
        used = []
        for _ in range(2):
            status, headers, _ = get(fake, "/api/v3/exchangeInfo")
            assert status == 200
            used.append(int(headers["X-MBX-USED-WEIGHT-1M"]))
        assert used == [20, 40]
        status, headers, body = get(fake, "/api/v3/exchangeInfo")
        assert (status, body["code"]) == (429, -1003)
        assert body["msg"].startswith("Too many requests")
        assert 0 < int(headers["Retry-After"]) <= 60
        status, headers, body = get(fake, "/api/v3/klines", symbol="BTCUSDT", interval="1m")
        assert (status, body["code"]) == (418, -1003)  # kept going during the back-off
        assert int(headers["Retry-After"]) == fake.ban_s
        status, _, _ = get(fake, "/api/v3/time")
        assert status == 418
        assert [s for _, _, s in fake.rest_requests] == [200, 200, 429, 418, 418]


def test_fail_rest_injects_429_with_retry_after_and_418() -> None:
    with FakeBinance("usdm", 1, rate=0) as fake:
        fake.fail_rest(429, count=2, retry_after=7)
        fake.fail_rest(418)
        answers = [get(fake, "/fapi/v1/klines", symbol="BTCUSDT", interval="1m") for _ in range(4)]
        assert [a[0] for a in answers] == [429, 429, 418, 200]
        assert [a[1].get("Retry-After") for a in answers[:2]] == ["7", "7"]
        assert answers[2][2]["code"] == -1003 and "banned" in answers[2][2]["msg"]
        assert "Retry-After" not in answers[3][1]


BTC = {"symbol": "BTCUSDT"}
M1 = {"symbol": "BTCUSDT", "interval": "1m"}


@pytest.mark.parametrize(
    ("market", "path", "params", "status", "code"),
    [
        ("spot", "/api/v3/klines", {"interval": "1m"}, 400, -1102),
        ("spot", "/api/v3/klines", {**M1, "symbol": "NOPEUSDT"}, 400, -1121),
        ("spot", "/api/v3/klines", {**M1, "symbol": "btcusdt"}, 400, -1100),
        ("spot", "/api/v3/klines", {**M1, "interval": "7m"}, 400, -1120),
        ("spot", "/api/v3/klines", {**M1, "limit": 1001}, 400, -1130),
        ("spot", "/api/v3/klines", {**M1, "foo": 1}, 400, -1104),
        ("spot", "/api/v3/aggTrades", {**BTC, "fromId": "x"}, 400, -1100),
        ("spot", "/api/v3/aggTrades", {**BTC, "startTime": 0, "endTime": 3_600_000}, 400, -1127),
        ("usdm", "/fapi/v1/klines", {**M1, "interval": "1s"}, 400, -1120),
        ("usdm", "/fapi/v1/klines", {**M1, "limit": 1500}, 200, None),
        ("usdm", "/fapi/v1/klines", {**M1, "limit": 1501}, 400, -1130),
        ("usdm", "/fapi/v1/aggTrades", {**BTC, "limit": 1001}, 400, -1130),
    ],
)
def test_rest_rejects_bad_params_like_binance(
    market: Market, path: str, params: dict[str, Any], status: int, code: int | None
) -> None:
    with FakeBinance(market, 1, rate=0) as fake:
        got, _, body = get(fake, path, **params)
        assert got == status
        if code is not None:
            assert body["code"] == code and isinstance(body["msg"], str)


def _minutes(trades: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Aggregate REST-shaped aggTrades into 1m candles, independently of the fake."""
    out: dict[int, dict[str, Any]] = {}
    for t in trades:
        p, q = Decimal(t["p"]), Decimal(t["q"])
        k = out.setdefault(t["T"] // 60_000 * 60_000, {"o": p, "h": p, "l": p, "v": Decimal(0),
                           "q": Decimal(0), "n": 0, "V": Decimal(0), "Q": Decimal(0)})  # fmt: skip
        k["h"], k["l"], k["c"] = max(k["h"], p), min(k["l"], p), p
        k["v"] += q
        k["q"] += p * q
        k["n"] += t["l"] - t["f"] + 1
        if not t["m"]:
            k["V"] += q
            k["Q"] += p * q
    return out


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_klines_equal_an_aggregation_of_trades(market: Market) -> None:
    prefix = "/api/v3" if market == "spot" else "/fapi/v1"
    fake = FakeBinance(market, 2, rate=4, seed=3, start_ms=MINUTE_BOUNDARY_MS, history_s=330)
    fake.rate = 0  # history only: nothing changes while the test reads
    with fake:
        status, _, rows = get(fake, f"{prefix}/klines", symbol="ETHUSDT", interval="1m")
        assert status == 200
        truth = fake.trades("ETHUSDT")
        # Page through the whole history by id, as a backfill does.
        paged: list[dict[str, Any]] = []
        from_id = truth[0]["a"]
        while True:
            _, _, page = get(
                fake, f"{prefix}/aggTrades", symbol="ETHUSDT", fromId=from_id, limit=1000
            )
            if not page:
                break
            paged += page
            from_id = page[-1]["a"] + 1
        assert paged == truth
        seconds: list[list[Any]] = []
        if market == "spot":
            start = rows[0][0]
            while True:
                _, _, chunk = get(fake, "/api/v3/klines", symbol="ETHUSDT", interval="1s",
                                  startTime=start, limit=1000)  # fmt: skip
                seconds += chunk
                if len(chunk) < 1000:
                    break
                start = chunk[-1][0] + 1

    minutes = _minutes(truth)
    # Five and a half minutes of history, then the minute now open at the clock's start:
    # Binance returns it too, empty, at the last close.
    assert [r[0] for r in rows] == [*sorted(minutes), MINUTE_BOUNDARY_MS]
    *traded, current = rows
    assert current[1:5] == [traded[-1][4]] * 4 and Decimal(current[5]) == 0 and current[8] == 0
    for open_ms, o, h, low, c, v, close_ms, q, n, tv, tq, ignore in traded:
        k = minutes[open_ms]
        assert close_ms == open_ms + 59_999 and ignore == "0"
        assert isinstance(o, str) and isinstance(n, int)
        assert [Decimal(x) for x in (o, h, low, c, v, q, tv, tq)] == [
            k["o"], k["h"], k["l"], k["c"], k["v"], k["q"], k["V"], k["Q"]
        ]  # fmt: skip
        assert n == k["n"]
    if market == "spot":
        rolled: dict[int, tuple[int, Decimal]] = defaultdict(lambda: (0, Decimal(0)))
        for row in seconds:
            n, v = rolled[row[0] // 60_000 * 60_000]
            rolled[row[0] // 60_000 * 60_000] = (n + row[8], v + Decimal(row[5]))
        assert {m: (r[8], Decimal(r[5])) for m, r in ((r[0], r) for r in rows)} == dict(rolled)


def test_1500_symbols_over_two_connections_all_deliver() -> None:
    async def scenario() -> None:
        fake = FakeBinance("usdm", 1500, rate=1.0, seed=1)
        names = [s.lower() for s in fake.symbols]
        half = len(names) // 2
        async with fake, aiohttp.ClientSession() as http:
            first = "/".join(f"{n}@aggTrade" for n in names[:half])
            start = time.monotonic()
            async with (
                http.ws_connect(f"{fake.ws_url}/market/stream?streams={first}") as by_url,
                http.ws_connect(f"{fake.ws_url}/market/ws") as by_request,
            ):
                params = [f"{n}@aggTrade" for n in names[half:]]
                await by_request.send_json({"method": "SUBSCRIBE", "params": params, "id": 1})
                seen: set[str] = set()
                decoder = BinanceDecoder("usdm")

                async def drain(ws: aiohttp.ClientWebSocketResponse, want: int) -> None:
                    mine: set[str] = set()
                    while len(mine) < want:
                        msg = await ws.receive(timeout=10)
                        assert msg.type is aiohttp.WSMsgType.TEXT
                        trade = decoder.decode(msg.data)
                        if trade is not None:
                            mine.add(trade.symbol)
                    seen.update(mine)

                await asyncio.gather(drain(by_url, half), drain(by_request, len(names) - half))
            took = time.monotonic() - start
        assert seen == set(fake.symbols)
        assert took < 10, f"1,500 symbols took {took:.1f}s to all deliver"

    run(scenario())


def test_same_seed_same_trades_and_delisting() -> None:
    def history(seed: int) -> list[dict[str, Any]]:
        fake = FakeBinance("usdm", 3, rate=20, seed=seed, start_ms=MINUTE_BOUNDARY_MS, history_s=5)
        return fake.trades("BNBUSDT")

    assert history(7) == history(7)
    assert history(7) != history(8)

    with FakeBinance("spot", ["BTCUSDT", "ETHBTC"], rate=50) as fake:
        _, _, info = get(fake, "/api/v3/exchangeInfo")
        symbols = {s["symbol"]: s for s in info["symbols"]}
        assert {s: v["status"] for s, v in symbols.items()} == {
            "BTCUSDT": "TRADING",
            "ETHBTC": "TRADING",
        }
        assert (symbols["ETHBTC"]["baseAsset"], symbols["ETHBTC"]["quoteAsset"]) == ("ETH", "BTC")
        filters = {f["filterType"]: f for f in symbols["BTCUSDT"]["filters"]}
        tick, step = (
            Decimal(filters["PRICE_FILTER"]["tickSize"]),
            Decimal(filters["LOT_SIZE"]["stepSize"]),
        )
        fake.delist("BTCUSDT")
        fake.list_symbol("SOLUSDT")
        _, _, info = get(fake, "/api/v3/exchangeInfo", symbols='["BTCUSDT","SOLUSDT"]')
        assert [(s["symbol"], s["status"]) for s in info["symbols"]] == [
            ("BTCUSDT", "BREAK"),
            ("SOLUSDT", "TRADING"),
        ]
        halted = len(fake.trades("BTCUSDT"))
        deadline = time.monotonic() + 5
        while not fake.trades("SOLUSDT") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fake.trades("SOLUSDT"), "a newly listed symbol trades"
        assert len(fake.trades("BTCUSDT")) == halted, "a delisted symbol does not"
        for t in fake.trades("SOLUSDT")[:5] + fake.trades("BTCUSDT")[:50]:
            assert t["p"].count(".") == 1 and len(t["p"].split(".")[1]) == 8  # spot prints 8 places
        assert all(Decimal(t["p"]) % tick == 0 and Decimal(t["q"]) % step == 0
                   for t in fake.trades("BTCUSDT"))  # fmt: skip


def test_stall_silences_open_sockets_while_new_ones_flow() -> None:
    async def scenario() -> None:
        async with FakeBinance("spot", 1, rate=50) as fake, aiohttp.ClientSession() as http:
            url = fake.ws_url + "/ws/btcusdt@aggTrade"
            async with http.ws_connect(url) as stuck:
                await receive_until(stuck, lambda ms: len(ms) >= 3)
                fake.stall(0.6)
                async with http.ws_connect(url) as fresh:
                    await receive_until(fresh, lambda ms: len(ms) >= 3)
                # Frames already in flight arrive; then silence; then data again.
                arrivals: list[tuple[float, int]] = []
                while len(arrivals) < 2 or arrivals[-1][0] - arrivals[-2][0] < 0.4:
                    msg = await stuck.receive(timeout=3)
                    assert msg.type is aiohttp.WSMsgType.TEXT
                    arrivals.append((time.monotonic(), json.loads(msg.data)["a"]))
                assert fake.connections == 1 and not stuck.closed
        # What was traded during the stall never reaches the stalled socket.
        assert arrivals[-1][1] - arrivals[-2][1] > 10

    run(scenario())


def test_silence_quiets_one_symbol_while_the_others_flow() -> None:
    frames: list[dict[str, Any]] = []  # in arrival order, on one connection
    truth: list[int] = []

    def resumed(frames: list[dict[str, Any]]) -> bool:
        """BTC trades and quotes again, after ids it never sent."""
        trades = [f["data"]["t"] for f in frames if f["stream"] == "btcusdt@trade"]
        quotes = [f["data"]["u"] for f in frames if f["stream"] == "btcusdt@bookTicker"]
        return all(any(b > a + 1 for a, b in itertools.pairwise(ids)) for ids in (trades, quotes))

    async def scenario() -> None:
        async with FakeBinance("spot", 2, rate=50) as fake, aiohttp.ClientSession() as http:
            streams = "btcusdt@trade/btcusdt@bookTicker/ethusdt@trade"
            async with http.ws_connect(f"{fake.ws_url}/stream?streams={streams}") as ws:
                frames.extend(
                    await receive_until(ws, lambda ms: len({m["stream"] for m in ms}) == 3)
                )
                fake.silence("BTCUSDT", 0.8)
                frames.extend(await receive_until(ws, lambda ms: resumed(frames + ms)))
            truth.extend(t["id"] for t in fake.raw_trades("BTCUSDT"))

    run(scenario())
    btc = [(i, f["data"]["t"]) for i, f in enumerate(frames) if f["stream"] == "btcusdt@trade"]
    (last_at, last), (back_at, back) = next(
        (a, b) for a, b in itertools.pairwise(btc) if b[1] > a[1] + 1
    )
    # While BTC was silent, ETH went on on the same connection ...
    between = [f["stream"] for f in frames[last_at + 1 : back_at]]
    assert between.count("ethusdt@trade") >= 10
    # ... and what BTC traded meanwhile was never sent, trades nor quotes (one raw trade
    # and one book update per print on spot); REST has the trades.
    assert back - last > 10 and set(range(last + 1, back)) <= set(truth)
    quotes = [f["data"]["u"] for f in frames if f["stream"] == "btcusdt@bookTicker"]
    assert [b - a for a, b in itertools.pairwise(quotes) if b != a + 1] == [back - last]
