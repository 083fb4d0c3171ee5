"""`/api/v1/auth/oidc`: sign in with an OpenID Connect provider (authorization code + PKCE)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import RedirectResponse
from pydantic import BaseModel
from starlette.requests import Request

from api.accounts.deps import AccountsDep, DbDep, ProvidersDep
from api.accounts.oidc import LOGIN_TTL_S, sign_in
from api.accounts.ratelimit import rate_limited
from api.errors import Unauthorized

router = APIRouter(prefix="/api/v1/auth/oidc", tags=["auth"])

STATE_COOKIE = "ts_oidc"
"""HttpOnly cookie with the signed login state, sent only to the OIDC routes."""
STATE_PATH = "/api/v1/auth/oidc"


class ProviderOut(BaseModel):
    """A provider to offer on the sign-in page."""

    name: str
    label: str


def _callback_url(accounts: AccountsDep, name: str) -> str:
    # Built from public_url, not the request: the provider must see the registered URL
    # even behind a proxy that rewrites the host.
    return f"{accounts.settings.accounts.public_url.rstrip('/')}{STATE_PATH}/{name}/callback"


@router.get("", response_model=list[ProviderOut])
async def list_providers(providers: ProvidersDep) -> list[ProviderOut]:
    """The OIDC providers users may sign in with."""
    return [ProviderOut(name=p.name, label=p.label) for p in providers.listed()]


_UNKNOWN: dict[int | str, dict[str, Any]] = {
    404: {"description": "No sign-in provider of that name (`not_found`)"}
}
_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "The provider cannot be reached, or is misconfigured"}
}


@router.get(
    "/{name}/login",
    response_class=RedirectResponse,
    status_code=302,
    responses={**_UNKNOWN, **_UNAVAILABLE},
    dependencies=[Depends(rate_limited("oidc_login"))],
)
async def login(
    name: str,
    accounts: AccountsDep,
    providers: ProvidersDep,
    next_path: Annotated[str | None, Query(alias="next", max_length=2048)] = None,
) -> RedirectResponse:
    """Send the browser to the provider; `next` is where it lands after signing in."""
    start = await providers.begin(name, _callback_url(accounts, name), next_path)
    response = RedirectResponse(start.url, status_code=302)
    response.set_cookie(
        STATE_COOKIE,
        start.state_cookie,
        max_age=LOGIN_TTL_S,
        httponly=True,
        secure=accounts.cookie_secure,
        samesite="lax",  # the provider's redirect back is a top-level GET: Lax sends it
        path=STATE_PATH,
    )
    return response


@router.get(
    "/{name}/callback",
    response_class=RedirectResponse,
    status_code=302,
    responses={
        401: {"description": "The sign-in did not complete, or was refused (`unauthorized`)"},
        **_UNKNOWN,
        **_UNAVAILABLE,
    },
    dependencies=[Depends(rate_limited("oidc_callback"))],
)
async def callback(
    name: str,
    request: Request,
    accounts: AccountsDep,
    providers: ProvidersDep,
    db: DbDep,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    state: Annotated[str | None, Query(max_length=1024)] = None,
    error: Annotated[str | None, Query(max_length=256)] = None,
) -> RedirectResponse:
    """Where the provider sends the browser back: sign the user in, then go to `next`."""
    providers.get(name)
    if error is not None or code is None or state is None:
        raise Unauthorized(f"sign-in with {name} did not complete ({error or 'no code'})")
    identity = await providers.finish(
        name, code, state, request.cookies.get(STATE_COOKIE), _callback_url(accounts, name)
    )
    user = await sign_in(db, identity)
    pair = await accounts.tokens.start(db, user)
    response = RedirectResponse(identity.next, status_code=302)
    accounts.set_cookies(response, pair)
    response.delete_cookie(STATE_COOKIE, path=STATE_PATH)
    return response
