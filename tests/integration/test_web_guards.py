"""The API's doors under uvicorn, over real sockets: a WebSocket signed in by cookie from
another site's page is refused at the handshake, and a request body past its route's
limit is answered 413 without the server reading (or keeping) the rest.

The app is `create_app`'s, with a lifespan that opens only the accounts, billing and a
hub without a feed (no ClickHouse, no Kafka: these doors stand before them).
"""

from __future__ import annotations

import asyncio
import json
import logging
import select
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from starlette.types import Message, Receive, Scope, Send
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from api.accounts.billing import open_billing
from api.accounts.db import AccountsDb
from api.accounts.deps import ACCESS_COOKIE
from api.accounts.models import User
from api.accounts.tokens import TokenService, load_secret
from api.live.board import Board
from api.live.hub import Hub
from api.main import create_app, open_accounts
from api.settings import AccountsSettings, ApiSettings, BillingSettings, PlanSettings
from tests.integration.threaded_server import ThreadedServer
from tickscan.settings import Settings

pytestmark = pytest.mark.integration

DEADLINE_S = 30.0
"""How long a socket may take to answer before the test gives up (a hang, not a timing)."""
PUBLIC = "https://scan.example.com"
PARTNER = "https://partner.example.org"
EVIL = "https://evil.example.net"
WEBHOOK = "/api/v1/billing/webhook"
MIB = 1 << 20
HUGE = 200 * MIB
"""The body of the attack: it took the API from 623 MB to 1.64 GB."""
CHUNK = 64 * 1024


@dataclass
class Reading:
    """The app behind a counter of the request body bytes uvicorn handed it."""

    app: FastAPI
    received: dict[str, int] = field(default_factory=dict)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        self.received[path] = 0

        async def counting() -> Message:
            message = await receive()
            self.received[path] += len(message.get("body", b""))
            return message

        await self.app(scope, counting, send)


def guarded_app(settings: Settings) -> Reading:
    app = create_app(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_accounts(settings) as accounts, open_billing(settings) as billing:
            app.state.accounts, app.state.billing = accounts, billing
            app.state.hub = hub = Hub(settings.api, Board())
            try:
                yield
            finally:
                await hub.aclose()

    app.router.lifespan_context = lifespan
    return Reading(app)


class Server(ThreadedServer):
    """The app served in a thread, with its WebSocket URL, for a `with` block."""

    def __init__(self, app: Reading) -> None:
        super().__init__(app)
        self.app = app

    def __enter__(self) -> Server:
        self.start()
        self.ws = f"ws://127.0.0.1:{self.port}/api/v1/ws"
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
        assert not self.thread.is_alive(), "uvicorn did not stop"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("guards"),
        api=ApiSettings(cors_origins=[PARTNER]),
        accounts=AccountsSettings(
            secret_key=SecretStr("g" * 48),
            public_url=PUBLIC,
            billing=BillingSettings(
                stripe_api_key=SecretStr("sk_test_unused"),
                stripe_api_base="http://127.0.0.1:9",  # never called: no event is valid
                webhook_secret=SecretStr("whsec_guards"),
                plans=[PlanSettings(id="pro", stripe_price="price_pro", features=[])],
            ),
        ),
    )


@pytest.fixture(scope="module")
def token(settings: Settings) -> str:
    """An access token of a user made in the app's database."""

    async def sign_up() -> str:
        db = AccountsDb(settings.accounts_url())
        try:
            await db.migrate()
            async with db.session() as session:
                user = User(email="ada@example.com", created_at=datetime.now(UTC))
                session.add(user)
                await session.flush()
                tokens = TokenService(load_secret(settings), 900, 3600)
                return (await tokens.start(session, user)).access_token
        finally:
            await db.aclose()

    return asyncio.run(sign_up())


@pytest.fixture(scope="module")
def server(settings: Settings, token: str) -> Iterator[Server]:
    with Server(guarded_app(settings)) as running:
        yield running


def first_message(server: Server, headers: dict[str, str]) -> dict[str, Any]:
    with connect(server.ws, additional_headers=headers, open_timeout=DEADLINE_S) as ws:
        message: dict[str, Any] = json.loads(ws.recv(timeout=DEADLINE_S))
        return message


@pytest.mark.parametrize("origin", [EVIL, "null", "https://scan.example.com.evil.example.net"])
def test_a_foreign_page_with_the_users_cookie_is_refused_at_the_handshake(
    server: Server, token: str, origin: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO), pytest.raises(InvalidStatus) as refused:
        first_message(server, {"Origin": origin, "Cookie": f"{ACCESS_COOKIE}={token}"})
    assert refused.value.response.status_code == 403
    # Said in the log, with the origin and never the cookie.
    said = [r.getMessage() for r in caplog.records if origin in r.getMessage()]
    assert said and all(token not in line for line in said), said


@pytest.mark.parametrize(
    "origin",
    [
        PUBLIC,  # public_url: the site as users reach it, behind its proxy
        "http://127.0.0.1:{port}",  # the Host the request came to
        PARTNER,  # a configured CORS origin
        "HTTPS://Scan.Example.Com:443",  # the site again, spelled otherwise
    ],
)
def test_the_sites_own_pages_and_cors_origins_connect_signed_in(
    server: Server, token: str, origin: str
) -> None:
    headers = {"Origin": origin.format(port=server.port), "Cookie": f"{ACCESS_COOKIE}={token}"}
    assert first_message(server, headers)["type"] == "authenticated"


def test_clients_that_carry_no_cookie_keep_working(server: Server, token: str) -> None:
    # Programs (no Origin) signing in with the header, or with the cookie.
    cookie = {"Cookie": f"{ACCESS_COOKIE}={token}"}
    for headers in ({"Authorization": f"Bearer {token}"}, cookie):
        assert first_message(server, headers)["type"] == "authenticated"
    # A page on another site cannot set a header: a bearer token is no ambient credential.
    signed = {"Origin": EVIL, "Authorization": f"Bearer {token}"}
    assert first_message(server, signed)["type"] == "authenticated"
    # Anonymous from anywhere: public data, nobody's session.
    with connect(server.ws, additional_headers={"Origin": EVIL}) as ws:
        ws.send(json.dumps({"op": "ping"}))
        assert json.loads(ws.recv(timeout=DEADLINE_S)) == {"type": "pong"}


def reset_peak_rss() -> int:
    """Start this process's resident-set high-water mark afresh (the server runs in it, in
    a thread); its resident set now."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # Linux: reset VmHWM to the current RSS
    return _status_kib("VmRSS") * 1024


def peak_rss() -> int:
    """The highest resident set of this process since `reset_peak_rss`."""
    return _status_kib("VmHWM") * 1024


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1])


def upload(port: int, path: str, total: int, content_length: int | None) -> tuple[bytes, int]:
    """POST `total` bytes of body, chunked when `content_length` is None, until the server
    answers or hangs up; the answer and how many bytes of body were sent."""
    framing = "Transfer-Encoding: chunked"
    if content_length is not None:
        framing = f"Content-Length: {content_length}"
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        "Stripe-Signature: t=1,v1=00",
        framing,
    ]
    block = b"x" * CHUNK
    frame = f"{CHUNK:x}\r\n".encode() + block + b"\r\n" if content_length is None else block
    sent, pending = 0, ("\r\n".join(head) + "\r\n\r\n").encode()
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as conn:
        conn.setblocking(False)
        try:
            while True:
                readable, writable, _ = select.select([conn], [conn], [], DEADLINE_S)
                assert readable or writable, "the server neither read nor answered"
                if readable:
                    break
                if not pending:
                    if sent >= total:
                        pending = b"0\r\n\r\n" if content_length is None else b""
                        conn.setblocking(True)
                        conn.sendall(pending)
                        break
                    pending, sent = frame, sent + CHUNK
                pending = pending[conn.send(pending) :]
        except (BrokenPipeError, ConnectionResetError):
            pass  # hung up on: what it answered before is still to be read
        conn.settimeout(DEADLINE_S)
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer, sent


@pytest.mark.parametrize("content_length", [None, HUGE], ids=["streamed", "declared"])
def test_a_huge_webhook_body_is_refused_unread(server: Server, content_length: int | None) -> None:
    before = reset_peak_rss()
    answer, sent = upload(server.port, WEBHOOK, HUGE, content_length)
    grown = peak_rss() - before
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:300]
    assert json.loads(body)["error"]["code"] == "content_too_large"
    # The server stopped reading at the webhook's limit (1 MiB, plus what uvicorn had
    # buffered when it was crossed), not at 200 MiB ...
    read = server.app.received[WEBHOOK]
    assert read < 2 * MIB, read
    if content_length is not None:
        assert read == 0  # a declared size past the limit is refused before any of it
    # ... hung up on the rest (what the client got out is what the kernels buffered) ...
    assert sent < HUGE // 4, sent
    # ... and never held it: the process's peak stayed far below the body's size.
    assert grown < 64 * MIB, grown
