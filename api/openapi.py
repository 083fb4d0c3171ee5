"""The OpenAPI document, completed where FastAPI cannot know: how to sign in, which operations
need it, and every error an operation can answer, in the one error shape.

FastAPI documents only what a route declares. The rest is read off each route's dependency
tree: a dependency that signs the caller in makes the operation secured (`current_access`)
or optionally secured (`optional_user`, `connection_entitlements`), and one marked with
`api.errors.answers` adds the errors it raises (e.g. 429 of a rate limit) to every
operation that depends on it, however deep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from api.accounts.deps import ACCESS_COOKIE, current_access, optional_user
from api.accounts.entitlements import connection_entitlements
from api.errors import ApiError, ErrorResponse, InvalidRequest, errors_answered
from api.services.times import TIME_SCHEMA

TIME_EXAMPLES = ["2024-08-08T23:55:00Z", "1723161300000"]
"""One time in both forms a time parameter takes (23:55 UTC of the real capture)."""


def time_query(description: str, *, with_examples: bool = False) -> Any:
    """A time parameter's `Query`: its description, and the documented forms (`TIME_SCHEMA`)
    that `parse_time` and `parse_at` check.

    Args:
        description: What the time is (name the forms with `TIME_FORMS`).
        with_examples: Whether the document shows `TIME_EXAMPLES`.
    """
    return Query(
        json_schema_extra=TIME_SCHEMA,
        description=description,
        examples=TIME_EXAMPLES if with_examples else None,
    )


ExchangeQuery = Annotated[str | None, Query(description="Only this exchange.")]
"""A list route's optional exchange filter."""

SymbolQuery = Annotated[str, Query(description="As the exchange spells it.", examples=["BTCUSDT"])]
"""A one-symbol route's symbol."""

SymbolExchangeQuery = Annotated[
    str | None,
    Query(
        description="Exchange, lower case (`binance`, `sim`). Optional when only one "
        "exchange has the symbol; when several do, leaving it out is a 422 "
        "`ambiguous_symbol`.",
    ),
]
"""A one-symbol route's exchange, found from the symbol when left out."""

MarketQuery = Annotated[Literal["spot", "usdm"] | None, Query(description="Only this market.")]
"""A list route's optional market filter."""


BEARER = "bearerAuth"
COOKIE = "sessionCookie"

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The `access_token` of `POST /api/v1/auth/login` (or `/refresh`), sent "
        "as `Authorization: Bearer <token>`.",
    },
    COOKIE: {
        "type": "apiKey",
        "in": "cookie",
        "name": ACCESS_COOKIE,
        "description": "The HttpOnly cookie the same calls set: how a browser signs in "
        "(its EventSource and WebSocket cannot send a header).",
    },
}

SIGNED_IN: list[dict[str, list[str]]] = [{BEARER: []}, {COOKIE: []}]
"""Either way of signing in (a list of alternatives)."""

MAY_SIGN_IN: list[dict[str, list[str]]] = [*SIGNED_IN, {}]
"""Signed in or anonymous: `{}` is the empty requirement."""

_REQUIRED: frozenset[Callable[..., Any]] = frozenset({current_access})
_OPTIONAL: frozenset[Callable[..., Any]] = frozenset({optional_user, connection_entitlements})

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_FASTAPI_422 = {"$ref": "#/components/schemas/HTTPValidationError"}

HEADERS: dict[str, dict[str, Any]] = {
    "401": {
        "WWW-Authenticate": {
            "description": "`Bearer`: how to sign in",
            "schema": {"type": "string"},
            "required": True,
        }
    },
    "429": {
        "Retry-After": {
            "description": "Seconds until a request may succeed again",
            "schema": {"type": "integer", "minimum": 1},
            "required": True,
        }
    },
}
"""Headers every answer of the status carries (`api.errors` sets them)."""

MALFORMED = (400, "The body is not valid JSON (`malformed_body`)")
TOO_LARGE = (
    413,
    "The body is larger than the route takes (`content_too_large`): "
    "`TICKSCAN_API__MAX_BODY_BYTES`, Stripe's webhook `TICKSCAN_API__WEBHOOK_MAX_BODY_BYTES`",
)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
SIGN_IN_REFUSED = "No valid sign-in: a missing, expired or revoked token (`unauthorized`)"
BAD_TOKEN = "A token was sent but is expired or revoked: refresh it, or send none"


HISTORY_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {
        "description": "Unknown symbol",
        "content": {
            "application/json": {
                "example": {
                    "error": {
                        "code": "not_found",
                        "message": "no symbol binance:spot:NOPEUSDT: no metadata, no candles",
                    }
                }
            }
        },
    },
    422: {
        "description": "A parameter the API cannot serve",
        "content": {
            "application/json": {
                "example": {
                    "error": {
                        "code": "invalid_request",
                        "message": "start (1723161600000) must be before end (1723161300000)",
                    }
                }
            }
        },
    },
    503: {"description": "ClickHouse cannot answer now"},
}
"""Error responses of the history routes, for the OpenAPI document."""


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` return FastAPI's document completed by `complete`.

    Call it after every router is included; the document is built on its first request.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            complete(build(), app)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


def complete(doc: dict[str, Any], app: FastAPI) -> None:
    """Add the security schemes, each operation's security and error answers, and the
    error shape as the schema of every error answer, to FastAPI's document in place."""
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    envelope = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(envelope.pop("$defs", {}))
    schemas["ErrorResponse"] = envelope
    components["securitySchemes"] = SECURITY_SCHEMES
    for context in iter_route_contexts(app.routes):  # through included routers
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        calls = set(_calls(context.dependant))  # the router's dependencies too
        for method in context.methods or ():
            operation = doc["paths"][context.path_format][method.lower()]
            _document(operation, route, calls, takes_body=method in _BODY_METHODS)
    if _FASTAPI_422 not in _refs(doc["paths"]):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)


def _document(
    operation: dict[str, Any], route: APIRoute, calls: set[Any], *, takes_body: bool
) -> None:
    responses: dict[str, Any] = operation["responses"]
    if calls & _REQUIRED:
        operation["security"] = SIGNED_IN
        _add(responses, 401, SIGN_IN_REFUSED)
    elif calls & _OPTIONAL:
        operation["security"] = MAY_SIGN_IN
        _add(responses, 401, BAD_TOKEN)
    if route.body_field is not None:
        _add(responses, *MALFORMED)
    if takes_body or route.body_field is not None:  # what api.body_limit answers
        _add(responses, *TOO_LARGE)
    for call in calls:
        for error in errors_answered(call):
            _add(responses, error.status, _describe(error))
    if "422" in responses and responses["422"].get("description") == "Validation Error":
        responses["422"]["description"] = _describe(InvalidRequest)
    for status, header in HEADERS.items():
        if status in responses:
            responses[status].setdefault("headers", {}).update(header)
    for status, response in responses.items():
        if int(status) >= 400:
            content = response.setdefault("content", {}).setdefault("application/json", {})
            if content.get("schema", _FASTAPI_422) == _FASTAPI_422:
                content["schema"] = ERROR_REF


def _add(responses: dict[str, Any], status: int, description: str) -> None:
    response = responses.setdefault(str(status), {"description": description})
    if description not in response["description"]:  # the route said why; this says why too
        response["description"] = f"{response['description']}; or: {description}"


def _describe(error: type[ApiError]) -> str:
    first = (error.__doc__ or error.__name__).strip().split("\n\n")[0]
    return f"{' '.join(first.split())} (`{error.code}`)"


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _refs(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "$ref" in node:
            yield node
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)
