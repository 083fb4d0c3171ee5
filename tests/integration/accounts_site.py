"""The auth routes of the API served by uvicorn as `tickscan run` serves them (`ApiServer`),
on a loopback port, for tests that need real concurrent HTTP clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.main import open_accounts
from api.routes import auth
from api.settings import AccountsSettings, ApiSettings
from tickscan.serve import ApiServer
from tickscan.settings import Settings

PASSWORD = "correct horse battery"
WRONG = "wrong horse battery"
SITE = "https://scan.example.com"
ATTEMPTS = 5


@dataclass
class Outbox:
    """Keeps the emails the site sends (template and link) instead of sending them."""

    sent: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    async def send(self, to: str, template: str, **context: Any) -> None:
        self.sent.append((to, template, context))

    def templates(self, to: str) -> list[str]:
        return [template for address, template, _ in self.sent if address == to]

    def token(self, to: str, template: str) -> str:
        link = next(c["link"] for a, t, c in reversed(self.sent) if (a, t) == (to, template))
        return parse_qs(urlsplit(link).query)["token"][0]


def accounts_app(settings: Settings, outbox: Outbox) -> FastAPI:
    """The auth routes of the API over the accounts store of `settings`, as `create_app`
    opens it (migrated at start), with `outbox` as the mailer."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_accounts(settings) as accounts:
            accounts.mailer = outbox
            app.state.accounts = accounts
            yield

    app = FastAPI(lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(auth.router)
    app.include_router(auth.me_router)
    return app


def site_settings(tmp_path: Path, database_url: str, **api: Any) -> Settings:
    """Cheap password hashing, a lock-out at `ATTEMPTS` failures, no rate limit to speak of."""
    return Settings(
        data_dir=tmp_path,
        api=ApiSettings(host="127.0.0.1", port=0, **api),
        accounts=AccountsSettings(
            database_url=database_url,
            public_url=SITE,
            argon2_time_cost=1,
            argon2_memory_kib=8,
            login_attempts=ATTEMPTS,
            lockout_s=600,
            auth_rate_limit="10000/minute",
        ),
    )


@contextmanager
def served(settings: Settings) -> Iterator[tuple[str, Outbox]]:
    """The auth routes under uvicorn (`ApiServer`) on a free loopback port.

    Tests assert after the server stopped: a failure is then reported with no server
    thread still at work (pytest's source parsing is not safe beside it on Python 3.11).
    """
    outbox = Outbox()
    server = ApiServer(settings, app=accounts_app(settings, outbox))
    url = server.start()
    try:
        yield url, outbox
    finally:
        server.stop()
