"""The API keeps the contract its OpenAPI document states, checked by schemathesis.

The whole app (`create_app`, over the session's chDB and broker) runs under uvicorn on a
loopback port. For every documented operation schemathesis sends a bounded number of
generated requests, valid and invalid, once anonymous and once signed in, and checks each
answer: no 5xx, a status code, content type and headers the document lists for the
operation, a body matching the documented schema, and every error in the error envelope.

The SSE streams (`/api/v1/stream/...`) are left out: a valid request opens a stream that
does not end, which a request-response fuzzer cannot read to its end. No paper engine
runs beside this API, and no market data: a paper trading route that needs them answers
its documented 503 (`unavailable`), which is the contract here; the engine's answers are
checked in test_api_paper*.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.accounts import admin
from api.accounts.db import AccountsDb
from api.main import create_app
from api.settings import AccountsSettings
from api.store import Store
from tests.integration.live_api import live_api_settings, live_topics
from tests.integration.threaded_server import ThreadedServer
from tickscan.settings import Settings

pytestmark = pytest.mark.integration

EXAMPLES = 8
"""Generated requests per operation and mode (valid, invalid), per sign-in state: enough to
reach each operation's errors, few enough for a loaded 2-core CI machine (about 600
requests in each test)."""

EMAIL = "contract@example.com"
PASSWORD = "correct horse battery staple"
DEADLINE_S = 30.0
STREAMS = "^/api/v1/stream/"
ENDS_SESSION = ("/api/v1/auth/logout", "/api/v1/auth/logout-all")


class Server(ThreadedServer):
    """The app under uvicorn in a thread of this process (chDB allows one per process)."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.app = create_app(settings, store=store)
        super().__init__(self.app)
        self.url = ""

    def start(self) -> int:
        port = super().start()
        self.url = f"http://127.0.0.1:{port}"
        return port

    def sign_in(self) -> str:
        """A fresh access token of the test's verified account."""
        answer = httpx.post(
            f"{self.url}/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}
        )
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token


@pytest.fixture(scope="module")
def server(
    kafka_bootstrap: str,
    clickhouse_dsn: str,
    ch: Client,
    database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    settings = live_api_settings(
        tmp_path_factory.mktemp("contract-api"),
        kafka_bootstrap,
        clickhouse_dsn,
        database,
        live_topics(kafka_bootstrap, 1),
        1,
        accounts=AccountsSettings(
            argon2_time_cost=1,
            argon2_memory_kib=8,
            # Generous: the fuzzer should reach the handlers behind the limit.
            auth_rate_limit="100000/minute",
        ),
    )
    server = Server(settings, Store(ch, database))
    server.start()
    try:
        deadline = time.monotonic() + DEADLINE_S
        while httpx.get(f"{server.url}/api/v1/health").status_code != 200:
            assert time.monotonic() < deadline, "the API did not become healthy"
            time.sleep(0.2)
        _create_account(server, settings)
        yield server
    finally:
        server.stop()


def _create_account(server: Server, settings: Settings) -> None:
    """Sign up, then verify the address as `tickscan users verify` does."""
    signup = httpx.post(
        f"{server.url}/api/v1/auth/signup", json={"email": EMAIL, "password": PASSWORD}
    )
    assert signup.status_code == 202, signup.text

    async def verify() -> None:
        db = AccountsDb(settings.accounts_url())
        deadline = time.monotonic() + DEADLINE_S
        try:
            while True:  # the sign-up may commit a moment after its answer
                try:
                    async with db.session() as session:
                        await admin.verify(session, EMAIL)
                    return
                except admin.AdminError:
                    assert time.monotonic() < deadline, "the sign-up never committed"
                    await asyncio.sleep(0.1)
        finally:
            await db.aclose()

    asyncio.run(verify())


@pytest.fixture(scope="module")
def operations(server: Server) -> list[Any]:
    """The documented operations, as the running API serves its document."""
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    found = [result.ok() for result in schema.exclude(path_regex=STREAMS).get_all_operations()]
    assert len(found) > 40
    return found


def error_envelope(ctx: CheckContext, response: Response, case: Any) -> bool | None:
    """An error answer is `{"error": {"code": ..., "message": ...}}`."""
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"a {response.status_code} that is not JSON") from None
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert isinstance(body["error"].get("code"), str), body
    assert isinstance(body["error"].get("message"), str), body
    return None


PAPER = "/api/v1/paper/"


def no_server_error(ctx: CheckContext, response: Response, case: Any) -> bool | None:
    """No 5xx, but the paper routes' 503 when there is no engine or market data to serve
    them (see the module's docstring)."""
    if case.operation.path.startswith(PAPER) and response.status_code == 503:
        assert json.loads(response.content)["error"]["code"] == "unavailable"
        return None
    return not_a_server_error(ctx, response, case)


CHECKS = [
    no_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    error_envelope,
]


HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def fuzz(operations: list[Any], call: Callable[[Any], Any]) -> tuple[int, list[str]]:
    """Send each operation's generated requests (valid, then invalid ones) through `call`
    and check each answer; returns the number of requests and one line per failing case."""
    sent = 0
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @HYPOTHESIS
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                nonlocal sent
                sent += 1
                call(case)

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to get wrong: no input
            except (Exception, BaseExceptionGroup) as exc:  # try all operations, report all
                failures.append(f"{operation.label} ({mode.value}): {_describe(exc)}")
    return sent, failures


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return " | ".join(_describe(e) for e in exc.exceptions)
    return " ".join(str(exc).split())[:400]


def test_anonymous_calls_keep_the_documented_contract(
    server: Server, operations: list[Any]
) -> None:
    def call(case: Any) -> None:
        response = case.call(base_url=server.url, timeout=30)
        case.validate_response(response, checks=CHECKS)

    sent, failures = fuzz(operations, call)
    print(f"contract: {sent} requests, {len(failures)} failing cases")
    assert not failures, "\n".join(failures)
    assert sent > len(operations) * 2


def test_signed_in_calls_keep_the_documented_contract(
    server: Server, operations: list[Any]
) -> None:
    token = server.sign_in()

    def call(case: Any) -> None:
        # Logging out ends the session it signs in with: those sign in afresh.
        fresh = server.sign_in() if case.operation.path in ENDS_SESSION else token
        headers = {"Authorization": f"Bearer {fresh}"}
        response = case.call(base_url=server.url, headers=headers, timeout=30)
        case.validate_response(response, checks=CHECKS, headers=headers)

    sent, failures = fuzz(operations, call)
    print(f"contract: {sent} requests, {len(failures)} failing cases")
    assert not failures, "\n".join(failures)
    assert sent > len(operations) * 2
