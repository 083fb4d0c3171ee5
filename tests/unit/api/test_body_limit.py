"""Request bodies are capped per route before they are read: the JSON routes at a small
limit, Stripe's webhook at what its events need; past it, a 413 in the API's error shape,
whether the body declared its size, declared less than it sent, or declared none.

The app is driven as uvicorn drives it, one ASGI message per chunk, counting the chunks
it pulls: a refused body must stop being read where it crossed the limit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from starlette.types import Message

from api.accounts.billing import Billing
from api.main import create_app
from api.settings import AccountsSettings, ApiSettings, BillingSettings
from tickscan.settings import Settings

WEBHOOK = "/api/v1/billing/webhook"
LOGIN = "/api/v1/auth/login"
KIB, MIB = 1 << 10, 1 << 20
CHUNK = 64 * KIB


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    pulled: int
    """Bytes of the request body the app took from the server."""


def make_app(tmp_path: Path, **api: Any) -> FastAPI:
    """The real app (no lifespan: neither route needs ClickHouse), billing on."""
    settings = Settings(
        data_dir=tmp_path,
        api=ApiSettings(**api),
        accounts=AccountsSettings(
            billing=BillingSettings(
                stripe_api_key=SecretStr("sk_test_unused"),
                stripe_api_base="http://127.0.0.1:9",  # never called: no event is valid
                webhook_secret=SecretStr("whsec_unit"),
            )
        ),
    )
    app = create_app(settings)
    app.state.billing = Billing(settings)
    app.state.accounts = SimpleNamespace()  # the webhook refuses the signature first
    return app


def chunks(total: int) -> Iterator[bytes]:
    """`total` bytes of a JSON string, in chunks of 64 KiB."""
    yield b'"'
    for start in range(0, total - 2, CHUNK):
        yield b"x" * min(CHUNK, total - 2 - start)
    yield b'"'


def post(app: FastAPI, path: str, body: Iterator[bytes], length: int | None) -> Answer:
    """POST `body` the way a server hands it over; `length` is the declared Content-Length."""
    headers = [(b"content-type", b"application/json"), (b"stripe-signature", b"t=1,v1=00")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    pulled = 0
    pending = next(body, None)
    sent: list[Message] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled, pending
        if pending is None:
            await asyncio.sleep(3600)  # the body is over: nothing more until a disconnect
        chunk, pending = pending or b"", next(body, None)
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": pending is not None}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(
        start["status"],
        json.loads(content),
        {k.decode(): v.decode() for k, v in start["headers"]},
        pulled,
    )


def assert_too_large(answer: Answer, limit: int) -> None:
    assert answer.status == 413, answer
    assert answer.body == {
        "error": {
            "code": "content_too_large",
            "message": f"the request body is larger than {limit} bytes",
        }
    }
    assert answer.headers["connection"] == "close"  # and the rest is not read either
    assert answer.pulled <= limit + CHUNK, answer.pulled  # stopped where it crossed


@pytest.mark.parametrize(
    "declared",
    [None, 8 * MIB, 100],
    ids=["streamed without a length", "declared", "declared less than sent"],
)
def test_a_webhook_body_past_its_limit_is_refused_unread(tmp_path: Path, declared: int) -> None:
    answer = post(make_app(tmp_path), WEBHOOK, chunks(8 * MIB), declared)
    assert_too_large(answer, MIB)
    if declared == 8 * MIB:
        assert answer.pulled == 0  # refused on its word, before a byte is read


def test_json_routes_take_less_than_the_webhook(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    assert_too_large(post(app, LOGIN, chunks(512 * KIB), None), 128 * KIB)
    # The webhook takes what its events need: this one is read whole, and judged.
    event = post(app, WEBHOOK, chunks(512 * KIB), 512 * KIB)
    assert event.status == 400 and event.body["error"]["code"] == "invalid_signature"
    assert event.pulled == 512 * KIB


def test_the_limits_are_settings(tmp_path: Path) -> None:
    app = make_app(tmp_path, max_body_bytes=4 * KIB, webhook_max_body_bytes=64 * KIB)
    assert_too_large(post(app, LOGIN, chunks(8 * KIB), None), 4 * KIB)
    assert_too_large(post(app, WEBHOOK, chunks(128 * KIB), 128 * KIB), 64 * KIB)
    under = post(app, WEBHOOK, chunks(32 * KIB), None)
    assert under.status == 400 and under.pulled == 32 * KIB  # read whole, and judged
