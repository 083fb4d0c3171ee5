"""Paper trading through the real API, the real broker and chDB, and the real paper engine
(`flows.trading.engine.PaperEngine`) answering on ``tr.events.v1`` / ``tr.accounts.v1``:
an account opened, a limit order placed, repeated (one order), amended and filled when
the market trades through it, another canceled, a rejection in Binance's words, and the
fill on the owner's live `trading` WebSocket, never on another user's.

The engine runs behind a thread of this test that reads the orders topic and publishes
what the engine returns (events, then the views that changed), as its process does; the
market data it trades on is applied to it by the test.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal as D

import pytest
from websockets.sync.client import ClientConnection, connect

from api.live.trading import TradingRecord
from flows.trading.engine import PaperEngine
from flows.trading.settings import PaperSettings
from schemas.quotes import Quote
from schemas.symbols import SymbolInfo
from schemas.trades import Trade
from schemas.trading import Command
from tests.integration import paper_api as paper
from tests.integration.paper_api import paper_env  # noqa: F401  (its fixture, reused)
from tests.integration.test_api_live import DEADLINE_S, Api

pytestmark = pytest.mark.integration

SYMBOL = "PAPRUSDT"
INFO = SymbolInfo(
    exchange="binance", market="usdm", symbol=SYMBOL, base_asset="PAPR", quote_asset="USDT",
    status="TRADING", kind="perpetual", tick_size=D("0.01"), step_size=D("0.001"),
    min_qty=D("0.001"), max_qty=D("1000"), market_max_qty=D("120"), min_notional=D("5"),
)  # fmt: skip


class Engine:
    """The paper engine behind the topics; market data is applied by the test."""

    def __init__(self) -> None:
        self.engine = PaperEngine(PaperSettings(), [INFO])
        self.lock = threading.Lock()
        self.responder: paper.Responder | None = None
        self._ids = 0

    def apply(self, command: Command) -> list[TradingRecord]:
        with self.lock:
            return [*self.engine.command(command), *self.engine.views()]

    def market(self, record: Quote | Trade) -> None:
        """Apply a quote or a trade and publish what it caused."""
        with self.lock:
            if isinstance(record, Quote):
                events = self.engine.quote(record)
            else:
                events = self.engine.trade(record)
            out = [*events, *self.engine.views()]
        assert self.responder is not None
        self.responder.publish(out)

    def quote(self, bid: str, ask: str) -> None:
        self._ids += 1
        now_us = time.time_ns() // 1000
        self.market(
            Quote(
                "binance", "usdm", SYMBOL, self._ids, D(bid), D("5"), D(ask), D("5"), now_us, now_us
            )
        )

    def trade(self, price: str, qty: str) -> None:
        self._ids += 1
        now_us = time.time_ns() // 1000
        self.market(Trade("binance", "usdm", SYMBOL, self._ids, D(price), D(qty), now_us, True))


@pytest.fixture(scope="module")
def site(request: pytest.FixtureRequest) -> Iterator[tuple[Api, Engine, paper.Users]]:
    engine = Engine()

    def attach(responder: paper.Responder) -> None:
        engine.responder = responder
        engine.quote("99.90", "100.10")

    env: paper.PaperEnv = request.getfixturevalue("paper_env")
    with paper.paper_site(env, engine.apply, [paper.board_row(SYMBOL)], attach) as made:
        yield made.api, engine, made.users


def receive(ws: ClientConnection, count: int) -> list[dict[str, object]]:
    return [json.loads(ws.recv(DEADLINE_S)) for _ in range(count)]


def test_orders_fill_on_the_market_and_reach_the_owners_stream(
    site: tuple[Api, Engine, paper.Users],
) -> None:
    api, engine, users = site
    me, other = users["paid"], users["free"]
    with paper.with_account(api, me) as (http, account):
        assert account["exchange"] == "binance" and account["equity"] == "10000"
        orders = f"{paper.BASE}/{account['account_id']}/orders"
        limit = {"symbol": SYMBOL, "side": "BUY", "type": "limit", "quantity": "1"}

        placed = http.post(orders, json={**limit, "price": "99.00", "client_order_id": "dip"})
        assert placed.status_code == 201, placed.text
        order = placed.json()
        assert order["status"] == "new" and order["request"]["reduce_only"] is False
        again = http.post(orders, json={**limit, "price": "98.00", "client_order_id": "dip"})
        assert again.status_code == 200 and again.json()["order_id"] == order["order_id"]

        tiny = http.post(orders, json={**limit, "price": "99.00", "quantity": "0.0001"})
        assert tiny.status_code == 400
        assert tiny.json()["error"]["message"] == "Filter failure: LOT_SIZE"
        assert tiny.json()["error"]["binance_code"] == -1013
        off_tick = http.post(orders, json={**limit, "price": "99.001"})
        assert off_tick.json()["error"]["message"] == "Filter failure: PRICE_FILTER"

        low = http.post(orders, json={**limit, "price": "95.00", "client_order_id": "low"})
        assert low.status_code == 201
        canceled = http.delete(f"{orders}/low")
        assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
        amended = http.patch(f"{orders}/dip", json={"price": "99.50"})
        assert amended.status_code == 200, amended.text
        assert amended.json()["price"] == "99.50"
        assert [o["request"]["client_order_id"] for o in http.get(orders).json()] == ["dip"]
        assert http.get(orders, headers=other).status_code == 404

        with (
            connect(api.ws, additional_headers=me) as ws,
            connect(api.ws, additional_headers=other) as theirs,
        ):
            subscribe = {"op": "subscribe", "channel": "trading", "account": account["account_id"]}
            assert receive(ws, 1)[0]["type"] == "authenticated"
            ws.send(json.dumps(subscribe))
            assert [m["type"] for m in receive(ws, 2)] == ["subscribed", "account"]
            assert receive(theirs, 1)[0]["type"] == "authenticated"
            theirs.send(json.dumps(subscribe))
            assert receive(theirs, 1)[0]["code"] == "unknown_account"

            engine.trade("99.40", "3")  # through the limit: it fills at its own price
            got = receive(ws, 3)
            assert [m["type"] for m in got] == ["fill", "order", "account"]
            fill = got[0]["fill"]
            assert isinstance(fill, dict)
            assert (fill["price"], fill["qty"], fill["liquidity"]) == ("99.50", "1", "maker")
            assert fill["client_order_id"] == "dip"
            # 0.02 % maker fee of 99.50 USDT
            assert D(str(fill["fee"])) == D("0.0199")
            assert got[1]["order"]["status"] == "filled"  # type: ignore[index]
            view = got[2]["account"]
            assert isinstance(view, dict)
            assert [(p["symbol"], p["qty"], p["entry_price"]) for p in view["positions"]] == [
                (SYMBOL, "1", "99.50")
            ]
        positions = http.get(f"{paper.BASE}/{account['account_id']}/positions").json()
        assert [p["qty"] for p in positions] == ["1"]
        assert http.get(orders).json() == []
