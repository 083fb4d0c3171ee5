"""Alembic's entry: runs migrations on the connection `AccountsDb.migrate` passes in."""

from __future__ import annotations

from alembic import context

from api.accounts.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("accounts migrations run through AccountsDb.migrate(), with a connection")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
