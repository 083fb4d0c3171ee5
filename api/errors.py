"""Domain errors of the API's services, and the one handler that maps them to HTTP."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope


class ApiPackageError(Exception):
    """Base of every error the `api` package raises; `ApiError`s are those answered over
    HTTP (and WebSocket) with their status and code."""


class ApiError(ApiPackageError):
    """Base of every error a service raises on purpose; `status` is its HTTP status.

    `code` is a stable machine-readable name (the WebSocket protocol sends the same
    codes), `message` says what was wrong in words a user can act on.
    """

    status = 400
    code = "bad_request"

    def __init__(
        self, message: str, *, code: str | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra: dict[str, Any] = extra or {}
        """Fields the error body carries besides `code` and `message` (e.g. the rejected
        order of a paper trade and Binance's code for it)."""


class InvalidRequest(ApiError):
    """A parameter or body the API cannot serve (a bad filter, an unknown interval)."""

    status = 422
    code = "invalid_request"


class NotFound(ApiError):
    """The thing asked for does not exist (an unknown symbol)."""

    status = 404
    code = "not_found"


class Unavailable(ApiError):
    """A dependency (ClickHouse, the live feed) cannot serve the request now."""

    status = 503
    code = "unavailable"


class TooManyClients(ApiError):
    """This process serves as many live clients as it is configured to."""

    status = 503
    code = "too_many_clients"


class Unauthorized(ApiError):
    """No valid sign-in: a missing, expired or revoked token, or wrong credentials (the
    message never says whether an account exists)."""

    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    """Signed in, but not allowed: a feature outside the plan (`not_entitled`), an
    unverified email, a locked account."""

    status = 403
    code = "forbidden"


class Conflict(ApiError):
    """The request clashes with what exists (a name already taken)."""

    status = 409
    code = "conflict"


class Timeout(ApiError):
    """A component the request waits on (the paper engine) did not answer in time; what
    was asked may still happen, and can be looked up."""

    status = 504
    code = "timeout"


class TooManyRequests(ApiError):
    """Too many requests from one client to a rate-limited endpoint; `retry_after_s` says
    when to try again."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after_s: int = 60) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ErrorDetail(BaseModel):
    """What went wrong: a stable `code` and a `message` a person can act on (some errors add
    a field, e.g. `ref` naming the item of a batch that failed)."""

    model_config = ConfigDict(extra="allow")

    code: str
    message: str


class ErrorResponse(BaseModel):
    """The JSON body of every error answer of the API."""

    error: ErrorDetail


_Call = TypeVar("_Call", bound=Callable[..., Any])

_ANSWERS = "__api_errors__"


def answers(*errors: type[ApiError]) -> Callable[[_Call], _Call]:
    """Mark a FastAPI dependency as one that may answer these errors: the OpenAPI document
    then lists them on every operation that depends on it (see `api.openapi`).

    E.g. ``@answers(TooManyRequests)`` on a rate limit.
    """

    def mark(call: _Call) -> _Call:
        setattr(call, _ANSWERS, (*errors_answered(call), *errors))
        return call

    return mark


def errors_answered(call: Callable[..., Any]) -> tuple[type[ApiError], ...]:
    """The errors a dependency is marked with by `answers` (none if unmarked)."""
    marked: tuple[type[ApiError], ...] = getattr(call, _ANSWERS, ())
    return marked


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """The JSON body of every API error: ``{"error": {"code": ..., "message": ...}}``."""
    return {"error": {"code": code, "message": message}}


MAX_LISTED_ERRORS = 5
"""How many of a request's validation errors a 422 spells out (the rest are counted): a
body with thousands of bad items gets a short answer, not one line per item."""

MAX_MESSAGE_CHARS = 200
"""The longest an error's message may be; a custom validator's message is cut there."""

MALFORMED_BODY = "malformed_body"


def validation_message(exc: RequestValidationError) -> str:
    """FastAPI's parameter errors in one line a person can act on, without the values sent.

    Each error gives where and what, e.g. ``query.limit: Input should be a valid integer,
    unable to parse string as an integer``; the input itself (which may be a password, or
    megabytes) and pydantic's context are never repeated.
    """
    errors = exc.errors()
    parts = []
    for error in errors[:MAX_LISTED_ERRORS]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        what = str(error.get("msg", "invalid"))
        if len(what) > MAX_MESSAGE_CHARS:
            what = what[: MAX_MESSAGE_CHARS - 1] + "…"
        parts.append(f"{where}: {what}")
    if len(errors) > MAX_LISTED_ERRORS:
        parts.append(f"and {len(errors) - MAX_LISTED_ERRORS} more")
    return "; ".join(parts) or "invalid request"


_HTTP_CODES = {
    400: ApiError.code,
    401: Unauthorized.code,
    403: Forbidden.code,
    404: NotFound.code,
    405: "method_not_allowed",
    409: Conflict.code,
    413: "content_too_large",  # as the body limit answers it
    429: TooManyRequests.code,
    503: Unavailable.code,
    504: Timeout.code,
}
"""The `code` of an error Starlette or FastAPI raise themselves, by status."""

_UNPARSED_BODY = "There was an error parsing the body"
"""FastAPI's 400 for a body it cannot decode (e.g. JSON that is not UTF-8)."""


def _http_error_code(status: int) -> str:
    try:
        return _HTTP_CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")
    except ValueError:
        return "http_error"


def allowed_methods(app: Starlette, scope: Scope) -> list[str]:
    """Every method some route of the app answers at the request's path.

    Starlette's 405 names only the methods of the first route matching the path, but
    FastAPI makes one route per method, so its `Allow` would miss the others.
    """
    methods: set[str] = set()
    for route in iter_route_contexts(app.router.routes):  # through included routers
        route_methods = route.methods
        if route_methods and route.matches(scope)[0] is not Match.NONE:
            methods |= route_methods
    order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return sorted(methods, key=lambda m: (order.index(m) if m in order else len(order), m))


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error in one JSON shape, `error_body`: `ApiError`s (raised anywhere in
    a handler), FastAPI's parameter validation errors, a body that is not valid JSON, the
    HTTP errors Starlette raises itself (404 for an unknown path, 405 for a method a path
    does not take, with an `Allow` header listing every method it does), and a crash (500,
    `internal_error`)."""

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        body = {"error": {"code": exc.code, "message": exc.message, **exc.extra}}
        response = JSONResponse(body, status_code=exc.status)
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        elif isinstance(exc, Unauthorized):
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    async def handle_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        if any(error.get("type") == "json_invalid" for error in exc.errors()):
            # Not a value the API refuses but a body it cannot read: 400, like any other
            # body that does not parse as its content type.
            body = error_body(MALFORMED_BODY, "the body is not valid JSON")
            return JSONResponse(body, status_code=400)
        body = error_body(InvalidRequest.code, validation_message(exc))
        return JSONResponse(body, status_code=InvalidRequest.status)

    async def handle_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        status = exc.status_code
        if status < 400:  # e.g. a 304 from a static file
            return Response(status_code=status, headers=headers)
        code, message = _http_error_code(status), str(exc.detail)
        if status == 400 and exc.detail == _UNPARSED_BODY:
            code, message = MALFORMED_BODY, "the body cannot be read as the type it declares"
        elif status == 404:
            message = "no such path in this API"
        elif status == 405:
            methods = allowed_methods(request.app, request.scope) or [
                m.strip() for m in headers.get("Allow", "").split(",") if m.strip()
            ]
            headers["Allow"] = ", ".join(methods)
            message = f"this path takes {', '.join(methods)}"
        return JSONResponse(error_body(code, message), status_code=status, headers=headers)

    async def handle_crash(_: Request, exc: Exception) -> JSONResponse:
        # Starlette still logs the traceback and re-raises to the server; the client is
        # told nothing of the cause.
        body = error_body("internal_error", "something went wrong on our side; try again")
        return JSONResponse(body, status_code=500)

    app.add_exception_handler(ApiError, handle)
    app.add_exception_handler(RequestValidationError, handle_validation)
    app.add_exception_handler(StarletteHTTPException, handle_http)
    app.add_exception_handler(Exception, handle_crash)
