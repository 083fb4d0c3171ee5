"""Domain errors of the API's services, and the one handler that maps them to HTTP."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


class ApiError(Exception):
    """Base of every error a service raises on purpose; `status` is its HTTP status.

    `code` is a stable machine-readable name (the WebSocket protocol sends the same
    codes), `message` says what was wrong in words a user can act on.
    """

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


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


class TooManyRequests(ApiError):
    """Too many requests from one client to a rate-limited endpoint; `retry_after_s` says
    when to try again."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after_s: int = 60) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """The JSON body of every API error: ``{"error": {"code": ..., "message": ...}}``."""
    return {"error": {"code": code, "message": message}}


def validation_message(exc: RequestValidationError) -> str:
    """FastAPI's parameter errors in one line a person can act on.

    E.g. ``query.limit: Input should be a valid integer, unable to parse string as an
    integer (got 'abc')``.
    """
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()))
        value = error.get("input")
        got = f" (got {value!r})" if value is not None else ""
        parts.append(f"{where}: {error.get('msg', 'invalid')}{got}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Map `ApiError`s (raised anywhere in a handler) and FastAPI's own parameter
    validation errors to one JSON shape, `error_body`."""

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        response = JSONResponse(error_body(exc.code, exc.message), status_code=exc.status)
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        elif isinstance(exc, Unauthorized):
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    async def handle_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        body = error_body(InvalidRequest.code, validation_message(exc))
        return JSONResponse(body, status_code=InvalidRequest.status)

    app.add_exception_handler(ApiError, handle)
    app.add_exception_handler(RequestValidationError, handle_validation)
