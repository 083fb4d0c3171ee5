"""`tickscan users`: the accounts of this site from the command line (list, verify, disable,
enable, reset), on the accounts store the API uses (TICKSCAN_ACCOUNTS__DATABASE_URL, else
SQLite in <data_dir>/accounts.db)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from api.settings import ApiAppSettings

if TYPE_CHECKING:  # imported when a command runs: every other command starts faster
    from sqlalchemy.ext.asyncio import AsyncSession

    from api.accounts.admin import UserRow

T = TypeVar("T")

app = typer.Typer(
    name="users",
    help="List, verify, disable, enable and reset accounts (works while tickscan runs).",
    no_args_is_help=True,
)

UserArgument = Annotated[str, typer.Argument(metavar="USER", help="Email, id or wallet address.")]


def _apply(settings: ApiAppSettings, action: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one action in one transaction on the migrated accounts store."""
    from api.accounts.admin import AdminError
    from api.accounts.db import AccountsDb

    async def run() -> T:
        db = AccountsDb(settings.accounts_url())
        try:
            await db.migrate()
            async with db.session() as session:
                return await action(session)
        finally:
            await db.aclose()

    try:
        return asyncio.run(run())
    except AdminError as exc:
        typer.echo(f"users: {exc}", err=True)
        raise typer.Exit(code=1) from None


def _settings() -> ApiAppSettings:
    settings = ApiAppSettings()
    if not settings.accounts.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def _state(row: UserRow) -> str:
    if row.disabled_at is not None:
        return f"disabled since {_when(row.disabled_at)}"
    if row.locked_until is not None and row.locked_until > datetime.now(row.locked_until.tzinfo):
        return f"locked until {_when(row.locked_until)}"
    return "active"


def describe(row: UserRow) -> str:
    """One line per account: id, who, whether the email is confirmed, its state."""
    who = row.email or row.wallet_address or "-"
    verified = "verified" if row.email_verified else "unverified"
    return f"{row.id:>6}  {who:<40}  {verified:<10}  {_state(row)}"


@app.command("list")
def list_command() -> None:
    """Every account: id, email (or wallet), verified or not, active/locked/disabled."""
    from api.accounts import admin

    rows = _apply(_settings(), admin.list_users)
    if not rows:
        typer.echo("no accounts yet")
        return
    typer.echo(f"{'id':>6}  {'email or wallet':<40}  {'email':<10}  state")
    for row in rows:
        typer.echo(describe(row))


@app.command("verify")
def verify_command(user: UserArgument) -> None:
    """Confirm an account's email, as the link of its verification email would."""
    from api.accounts import admin

    typer.echo(describe(_apply(_settings(), lambda db: admin.verify(db, user))))


@app.command("disable")
def disable_command(user: UserArgument) -> None:
    """Disable an account: its sessions end now and it cannot sign in until enabled."""
    from api.accounts import admin

    typer.echo(describe(_apply(_settings(), lambda db: admin.disable(db, user))))


@app.command("enable")
def enable_command(user: UserArgument) -> None:
    """Let a disabled account sign in again."""
    from api.accounts import admin

    typer.echo(describe(_apply(_settings(), lambda db: admin.enable(db, user))))


@app.command("reset")
def reset_command(
    user: UserArgument,
    link: Annotated[
        bool,
        typer.Option(
            "--link",
            help="Print a password reset link to hand over, instead of setting a password.",
        ),
    ] = False,
) -> None:
    """Set a new password (asked twice, not echoed), ending every session; or with --link
    print a reset link for the user to choose one."""
    from api.accounts import admin

    settings = _settings()
    if link:
        url = _apply(settings, lambda db: admin.reset_link(db, settings, user))
        minutes = max(1, settings.accounts.email_token_ttl_s // 60)
        typer.echo(f"{url}\n(works once, for {minutes} minutes)")
        return
    password: str = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    row = _apply(settings, lambda db: admin.set_password(db, settings, user, password))
    typer.echo(f"{describe(row)}\npassword set; every session of the account has ended")
