"""paper_accounts: who owns each paper trading account

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "paper_accounts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("market", sa.String(length=8), nullable=False),
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_paper_accounts_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paper_accounts")),
    )
    with op.batch_alter_table("paper_accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_paper_accounts_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("paper_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_paper_accounts_user_id"))
    op.drop_table("paper_accounts")
