"""The API's paper trading plumbing on the real broker: commands produced to
``tr.orders.v1`` keyed by account, answers found on ``tr.events.v1`` by command id, views
read from ``tr.accounts.v1`` (also the ones published before the API started), and the
`trading` channel over a real WebSocket and SSE stream.

The engine here is a scripted stand-in (`tests.unit.api.paper_engine.FakeEngine`) that
reads the orders topic and answers on the events and accounts topics, so what is tested
is the API's side of the contract; tests/integration/test_api_paper.py drives the real
engine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from websockets.sync.client import connect

from schemas.trading import OpenAccount
from tests.integration.paper_api import (
    BASE,
    PaperEnv,
    Responder,
    Users,
    board_row,
    paper_env,  # noqa: F401  (its fixture, reused)
    paper_site,
    with_account,
)
from tests.integration.test_api_live import DEADLINE_S, Api, eventually
from tests.unit.api.paper_engine import FakeEngine

pytestmark = pytest.mark.integration

EARLY = "early-account"
"""An account whose view was published before the API started."""


@pytest.fixture(scope="module")
def site(request: pytest.FixtureRequest) -> Iterator[tuple[Api, Responder, Users]]:
    engine = FakeEngine()

    def early(responder: Responder) -> None:
        # Published before the API starts: the API reads it back from the topic's end.
        opened = OpenAccount("c0", EARLY, 0, "99", "early", "spot", "binance", {})
        responder.publish(engine.apply(opened))

    env: PaperEnv = request.getfixturevalue("paper_env")
    with paper_site(env, engine.apply, [board_row("SOLUSDT")], early) as made:
        assert made.responder is not None
        yield made.api, made.responder, made.users


def test_orders_go_to_the_engine_and_its_answers_come_back(
    site: tuple[Api, Responder, Users],
) -> None:
    api, responder, users = site
    with with_account(api, users["free"]) as (http, made):
        account = made["account_id"]
        assert made["exchange"] == "binance" and made["equity"] == "10000"
        order = {"symbol": "SOLUSDT", "side": "BUY", "type": "limit", "quantity": "1"}
        first = http.post(
            f"{BASE}/{account}/orders", json={**order, "price": 90, "client_order_id": "k1"}
        )
        assert first.status_code == 201, first.text
        again = http.post(
            f"{BASE}/{account}/orders", json={**order, "price": 91, "client_order_id": "k1"}
        )
        assert again.status_code == 200 and again.json() == first.json()
        rejected = http.post(
            f"{BASE}/{account}/orders", json={**order, "price": 90, "quantity": "0.0001"}
        )
        assert rejected.status_code == 400 and rejected.json()["error"]["binance_code"] == -1013
        open_orders = http.get(f"{BASE}/{account}/orders").json()
        assert [o["request"]["client_order_id"] for o in open_orders] == ["k1"]
        canceled = http.delete(f"{BASE}/{account}/orders")
        assert [o["status"] for o in canceled.json()] == ["canceled"]
        other = http.get(f"{BASE}/{account}", headers=users["paid"])
        assert other.status_code == 404
    assert set(responder.keys) == {account.encode()}  # every command keyed by its account


def test_a_view_published_before_the_api_started_is_known(
    site: tuple[Api, Responder, Users],
) -> None:
    api, _, _ = site
    trading = api.app.state.hub.trading
    eventually(lambda: trading.view(EARLY) is not None, "the early view was not read back")


def test_the_trading_channel_delivers_fills_over_a_websocket_and_sse(
    site: tuple[Api, Responder, Users],
) -> None:
    api, _, users = site
    me = users["paid"]
    with with_account(api, me) as (http, made):
        account = made["account_id"]
        token = me["Authorization"].split(" ", 1)[1]
        with (
            connect(api.ws, additional_headers={"Authorization": f"Bearer {token}"}) as ws,
            http.stream("GET", "/api/v1/stream/trading", params={"account": account}) as stream,
        ):
            assert json.loads(ws.recv(DEADLINE_S))["type"] == "authenticated"
            ws.send(
                json.dumps({"op": "subscribe", "channel": "trading", "id": "t", "account": account})
            )
            assert json.loads(ws.recv(DEADLINE_S))["type"] == "subscribed"
            assert json.loads(ws.recv(DEADLINE_S))["type"] == "account"
            lines = stream.iter_lines()
            assert next(lines) == "id: 1" and next(lines) == "event: account"
            market = {"symbol": "SOLUSDT", "side": "BUY", "type": "market", "quantity": "2"}
            assert http.post(f"{BASE}/{account}/orders", json=market).status_code == 201
            got = [json.loads(ws.recv(DEADLINE_S)) for _ in range(4)]
            assert [m["type"] for m in got] == ["order", "fill", "order", "account"]
            assert got[1]["fill"]["qty"] == "2" and got[3]["account"]["positions"][0]["qty"] == "2"
            seen = []
            for line in lines:
                if line.startswith("event: "):
                    seen.append(line.removeprefix("event: "))
                if len(seen) == 4:
                    break
            assert seen == ["order", "fill", "order", "account"]
