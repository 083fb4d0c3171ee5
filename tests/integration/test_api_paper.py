"""Paper trading through the real API, the real broker and chDB, and the paper engine's
own process loop (`flows.trading.flow.PaperFlow`, as `tickscan paper` runs it): an
account opened, a limit order placed, repeated (one order), amended and filled when the
market trades through it, another canceled, a rejection in Binance's words, the fill on
the owner's live `trading` WebSocket (never on another user's), and the history the
engine stored read back through the API from ``paper_orders``, ``paper_fills`` and
``paper_ledger``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import pytest
from confluent_kafka import Producer
from websockets.sync.client import ClientConnection, connect

from flows.sinks.symbols import SymbolWriter
from flows.trading.flow import PaperFlow
from flows.trading.process import PaperTopics
from flows.trading.settings import PaperSettings
from runtime.kafka import consumer_config, ensure_topics, producer_config
from schemas import topics
from schemas.quotes import Quote, encode_quote
from schemas.symbols import SymbolInfo
from schemas.trades import Trade, encode_trade
from tests.integration import paper_api as paper
from tests.integration.paper_api import paper_env  # noqa: F401  (its fixture, reused)
from tests.integration.test_api_live import DEADLINE_S, Api, eventually

pytestmark = pytest.mark.integration

SYMBOL = "PAPRUSDT"
INFO = SymbolInfo(
    exchange="binance", market="usdm", symbol=SYMBOL, base_asset="PAPR", quote_asset="USDT",
    status="TRADING", kind="perpetual", tick_size=D("0.01"), step_size=D("0.001"),
    updated_ms=time.time_ns() // 1_000_000, min_qty=D("0.001"), max_qty=D("1000"),
    market_max_qty=D("120"), min_notional=D("5"),
)  # fmt: skip


class Market:
    """The market data the engine trades on, produced to its topics."""

    def __init__(self, bootstrap: str, names: PaperTopics) -> None:
        self.names = names
        self.producer = Producer(producer_config(bootstrap))
        self._ids = 0

    def quote(self, bid: str, ask: str) -> None:
        self._ids += 1
        now_us = time.time_ns() // 1000
        quote = Quote(
            "binance", "usdm", SYMBOL, self._ids, D(bid), D("5"), D(ask), D("5"), now_us, now_us
        )
        self.producer.produce(self.names.quotes, encode_quote(quote), quote.key.encode())
        self.producer.flush(10)

    def trade(self, price: str, qty: str) -> None:
        self._ids += 1
        now_us = time.time_ns() // 1000
        trade = Trade("binance", "usdm", SYMBOL, self._ids, D(price), D(qty), now_us, True)
        self.producer.produce(self.names.trades, encode_trade(trade), trade.key.encode())
        self.producer.flush(10)


@pytest.fixture(scope="module")
def site(request: pytest.FixtureRequest) -> Iterator[tuple[Api, Market, paper.Users]]:
    env: paper.PaperEnv = request.getfixturevalue("paper_env")
    SymbolWriter(lambda: env.ch, env.database).write([INFO])  # the engine's and the API's
    with paper.paper_site(env) as made:
        api, prefix, users = made.api, made.prefix, made.users
        names = PaperTopics(
            trades=prefix + topics.TRADES, quotes=prefix + topics.QUOTES,
            depth=prefix + topics.DEPTH, marks=prefix + topics.MARKS,
            depth_watch=prefix + topics.DEPTH_WATCH, dead_letters=prefix + topics.DEADLETTER,
            trading=topics.TradingTopics(
                prefix + topics.ORDERS, prefix + topics.EVENTS, prefix + topics.ACCOUNTS
            ),
        )  # fmt: skip
        ensure_topics(
            env.bootstrap,
            [*names.market, names.depth_watch, names.dead_letters],
            paper.PARTITIONS,
        )
        flow = PaperFlow(
            PaperSettings(),
            consumer=consumer_config(env.bootstrap, **{"fetch.wait.max.ms": 5}),
            producer=producer_config(env.bootstrap, **{"linger.ms": 1}),
            clickhouse=lambda: env.ch,
            database=env.database,
            names=names,
        )
        runner = threading.Thread(target=flow.run, name="paper-engine", daemon=True)
        runner.start()
        try:
            assert flow.ready.wait(DEADLINE_S), "the paper engine did not start"
            market = Market(env.bootstrap, names)
            market.quote("99.90", "100.10")
            yield api, market, users
        finally:
            flow.stop.set()
            runner.join(60)


def receive(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [json.loads(ws.recv(DEADLINE_S)) for _ in range(count)]


def test_orders_fill_on_the_market_reach_the_owners_stream_and_are_stored(
    site: tuple[Api, Market, paper.Users],
) -> None:
    api, market, users = site
    me, other = users["paid"], users["free"]
    with paper.with_account(api, me) as (http, account):
        assert account["exchange"] == "binance" and account["equity"] == "10000"
        base = f"{paper.BASE}/{account['account_id']}"
        orders = f"{base}/orders"
        limit = {"symbol": SYMBOL, "side": "BUY", "type": "limit", "quantity": "1"}

        placed = http.post(orders, json={**limit, "price": "99.00", "client_order_id": "dip"})
        assert placed.status_code == 201, placed.text
        order = placed.json()
        assert order["status"] == "new"
        again = http.post(orders, json={**limit, "price": "98.00", "client_order_id": "dip"})
        assert again.status_code == 200 and again.json()["order_id"] == order["order_id"]

        tiny = http.post(orders, json={**limit, "price": "99.00", "quantity": "0.0001"})
        assert tiny.status_code == 400
        assert tiny.json()["error"]["message"] == "Filter failure: LOT_SIZE"
        assert tiny.json()["error"]["binance_code"] == -1013

        low = http.post(orders, json={**limit, "price": "95.00", "client_order_id": "low"})
        assert low.status_code == 201
        canceled = http.delete(f"{orders}/low")
        assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
        amended = http.patch(f"{orders}/dip", json={"price": "99.50"})
        assert amended.status_code == 200, amended.text
        assert amended.json()["price"] == "99.50"
        assert [o["request"]["client_order_id"] for o in http.get(orders).json()] == ["dip"]
        assert http.get(orders, headers=other).status_code == 404

        subscribe = {"op": "subscribe", "channel": "trading", "account": account["account_id"]}
        with (
            connect(api.ws, additional_headers=me) as ws,
            connect(api.ws, additional_headers=other) as theirs,
        ):
            assert receive(ws, 1)[0]["type"] == "authenticated"
            ws.send(json.dumps(subscribe))
            assert [m["type"] for m in receive(ws, 2)] == ["subscribed", "account"]
            assert receive(theirs, 1)[0]["type"] == "authenticated"
            theirs.send(json.dumps(subscribe))
            assert receive(theirs, 1)[0]["code"] == "unknown_account"

            market.trade("99.40", "3")  # through the limit: it fills at its own price
            got: list[dict[str, Any]] = []
            while not any(m["type"] == "fill" for m in got):
                got += receive(ws, 1)
            fill = next(m["fill"] for m in got if m["type"] == "fill")
            assert (fill["price"], fill["qty"], fill["liquidity"]) == ("99.50", "1", "maker")
            assert fill["client_order_id"] == "dip"
            assert D(fill["fee"]) == D("0.0199")  # 0.02 % maker fee of 99.50 USDT

        def positioned() -> bool:
            positions = http.get(f"{base}/positions").json()
            return [(p["symbol"], p["qty"]) for p in positions] == [(SYMBOL, "1")]

        eventually(positioned, "the position never showed")
        assert http.get(orders).json() == []
        # what the engine stored, read back through the API
        eventually(
            lambda: {(o["request"]["client_order_id"], o["status"]) for o in
                     http.get(orders, params={"status": "all"}).json()}
            >= {("dip", "filled"), ("low", "canceled")},
            "the orders never reached paper_orders",
        )  # fmt: skip
        eventually(
            lambda: [D(f["price"]) for f in http.get(f"{base}/fills").json()] == [D("99.50")],
            "the fill never reached paper_fills",
        )
        # the stored fill is the live one (its decimals without padding zeros)
        (stored,) = http.get(f"{base}/fills").json()
        amounts = ("price", "qty", "quote_qty", "fee")
        assert {k: v for k, v in fill.items() if k not in amounts} == {
            k: stored[k] for k in fill if k not in amounts
        }
        assert [D(stored[k]) for k in amounts] == [D(fill[k]) for k in amounts]
        eventually(
            lambda: bool(http.get(f"{base}/equity").json()),
            "no equity in paper_ledger",
        )
        first = http.get(f"{base}/equity").json()[0]
        assert D(first["equity"]) == D("10000")
