"""The OpenAPI document tells the truth: how to sign in, which operations need it, the
errors each operation can answer (in the error shape), and the rules on passwords and
times the API enforces."""

from __future__ import annotations

import re
from typing import Any

import pytest

from api.accounts.passwords import MAX_LENGTH, MIN_LENGTH
from api.errors import InvalidRequest
from api.main import create_app
from api.services.filter_sql import parse_at
from api.services.times import parse_time
from tickscan.settings import Settings

SIGNED_IN = [{"bearerAuth": []}, {"sessionCookie": []}]
MAY_SIGN_IN = [*SIGNED_IN, {}]
NOW_MS = 1_800_000_000_000


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return create_app(Settings()).openapi()


def _op(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = doc["paths"][path][method]
    return operation


def _schema(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = doc["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, ops in doc["paths"].items() for m, op in ops.items()]


def test_the_ways_to_sign_in_are_declared(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schemes["bearerAuth"]["description"],
    }
    assert (schemes["sessionCookie"]["type"], schemes["sessionCookie"]["in"]) == (
        "apiKey",
        "cookie",
    )
    assert schemes["sessionCookie"]["name"] == "ts_access"


@pytest.mark.parametrize(
    ("method", "path", "security"),
    [
        ("get", "/api/v1/me", SIGNED_IN),
        ("put", "/api/v1/me/watchlists/{watchlist_id}", SIGNED_IN),
        ("post", "/api/v1/auth/logout", SIGNED_IN),
        ("get", "/api/v1/billing/subscription", SIGNED_IN),
        ("get", "/api/v1/candles", MAY_SIGN_IN),
        *[
            ("get", f"/api/v1/perps/{series}", MAY_SIGN_IN)
            for series in ("open_interest", "funding", "liquidations", "marks")
        ],
        ("get", "/api/v1/scan", MAY_SIGN_IN),
        ("get", "/api/v1/health", None),
        ("post", "/api/v1/auth/login", None),
    ],
)
def test_operations_say_whether_they_need_a_sign_in(
    doc: dict[str, Any], method: str, path: str, security: list[dict[str, Any]] | None
) -> None:
    operation = _op(doc, method, path)
    assert operation.get("security") == security
    if security is not None:
        assert "401" in operation["responses"]


def test_every_error_answer_is_documented_in_the_error_shape(doc: dict[str, Any]) -> None:
    envelope = _schema(doc, doc["components"]["schemas"]["ErrorResponse"])
    assert envelope["required"] == ["error"]
    detail = _schema(doc, envelope["properties"]["error"])
    assert set(detail["required"]) == {"code", "message"}
    errors = 0
    for method, path, operation in _operations(doc):
        for status, response in operation["responses"].items():
            if int(status) < 400 or (method, path, status) == ("get", "/api/v1/health", "503"):
                continue
            errors += 1
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, status)
    assert errors > 100
    assert "HTTPValidationError" not in doc["components"]["schemas"]


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("post", "/api/v1/auth/login", {"400", "401", "403", "413", "422", "429"}),
        ("post", "/api/v1/auth/signup", {"400", "413", "422", "429"}),
        ("put", "/api/v1/me/preferences", {"400", "401", "413", "422"}),
        ("post", "/api/v1/billing/webhook", {"400", "413"}),
        ("get", "/api/v1/me", {"401"}),
        ("get", "/api/v1/candles", {"401", "403", "404", "422", "503"}),
        ("get", "/api/v1/perps/funding", {"401", "404", "422", "503"}),
        (
            "post",
            "/api/v1/paper/accounts/{account_id}/orders",
            {"400", "401", "403", "404", "413", "422", "503", "504"},
        ),
        ("post", "/api/v1/paper/accounts", {"401", "403", "422", "503", "504"}),
        ("get", "/api/v1/paper/accounts/{account_id}/fills", {"401", "404", "422", "503"}),
        ("get", "/api/v1/stream/trading", {"401", "404", "422", "503"}),
        ("get", "/api/v1/auth/oidc/{name}/login", {"404", "422", "429"}),
    ],
)
def test_the_errors_an_operation_can_answer_are_listed(
    doc: dict[str, Any], method: str, path: str, statuses: set[str]
) -> None:
    answered = {s for s in _op(doc, method, path)["responses"] if int(s) >= 400}
    assert statuses <= answered


def test_every_paper_trading_operation_needs_a_sign_in_and_shows_its_answers(
    doc: dict[str, Any],
) -> None:
    paper = [
        (m, p, op)
        for m, p, op in _operations(doc)
        if p.startswith("/api/v1/paper/") or p == "/api/v1/stream/trading"
    ]
    assert len(paper) == 16
    for method, path, operation in paper:
        assert operation.get("security") == SIGNED_IN, (method, path)
    place = _op(doc, "post", "/api/v1/paper/accounts/{account_id}/orders")
    created = place["responses"]["201"]["content"]["application/json"]["schema"]
    order = _schema(doc, created)
    assert order["examples"][0]["request"]["client_order_id"] == "dip-buy-1"
    assert order["properties"]["filled_qty"]["type"] == "string"  # exact decimals
    assert "200" in place["responses"]  # a repeated client order id
    rejected = place["responses"]["400"]["content"]["application/json"]["example"]["error"]
    assert (rejected["code"], rejected["binance_code"]) == ("order_rejected", -1013)
    view = _op(doc, "get", "/api/v1/paper/accounts/{account_id}")["responses"]["200"]
    assert _schema(doc, view["content"]["application/json"]["schema"])["examples"][0]["equity"]
    equity = _op(doc, "get", "/api/v1/paper/accounts/{account_id}/equity")
    assert {p["name"] for p in equity["parameters"]} == {"account_id", "from", "to"}


def test_password_length_rules_are_in_the_schema(doc: dict[str, Any]) -> None:
    for method, path in [("post", "/api/v1/auth/signup"), ("post", "/api/v1/auth/password/reset")]:
        body = _op(doc, method, path)["requestBody"]["content"]["application/json"]["schema"]
        password = _schema(doc, body)["properties"]["password"]
        assert (password["minLength"], password["maxLength"]) == (MIN_LENGTH, MAX_LENGTH)
    body = _op(doc, "post", "/api/v1/auth/login")["requestBody"]["content"]["application/json"]
    assert _schema(doc, body["schema"])["properties"]["password"]["maxLength"] == MAX_LENGTH


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/candles", "start"),
        ("/api/v1/candles", "end"),
        ("/api/v1/signals", "start"),
        ("/api/v1/perps/liquidations", "start"),
        ("/api/v1/perps/open_interest", "end"),
        ("/api/v1/signals", "end"),
        ("/api/v1/scan", "at"),
    ],
)
def test_time_parameters_say_their_format(doc: dict[str, Any], path: str, name: str) -> None:
    (parameter,) = [p for p in _op(doc, "get", path)["parameters"] if p["name"] == name]
    # On the string branch, or beside `anyOf` (a pattern applies to strings only).
    (text,) = [s for s in parameter["schema"]["anyOf"] if s.get("type") == "string"]
    pattern = re.compile(text.get("pattern") or parameter["schema"]["pattern"])
    for good in ("1723161300000", "2024-08-08T23:55:00Z", "2024-08-08T23:55:00.5+02:00"):
        assert pattern.search(good), good
    for bad in ("", "yesterday", "2024-13-01", "-5", "1e12", "2024-0808", "2024-08-08T23"):
        assert not pattern.search(bad), bad
        # And the API refuses what the document refuses (Python's parser takes the last two).
        with pytest.raises(InvalidRequest):
            parse_time(name, bad) if path != "/api/v1/scan" else parse_at(bad, NOW_MS)
    assert "ISO-8601" in parameter["description"]


def test_the_headers_of_401_and_429_are_documented(doc: dict[str, Any]) -> None:
    login = _op(doc, "post", "/api/v1/auth/login")["responses"]
    assert login["429"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    assert "WWW-Authenticate" in login["401"]["headers"]
    assert "WWW-Authenticate" in _op(doc, "get", "/api/v1/me")["responses"]["401"]["headers"]
