"""Auth hardening (issue #12): the login throttle's counters.

Revision ID: 0012
Revises: 0002
Create Date: 2026-12-01

login_throttle is not a tenant table: its keys are HMACs of what a caller sent (client, slug,
email), so unknown tenants are counted like real ones. It holds no tenant data; the app role
gets DML through the default privileges (app/db/setup.py), nothing more.
"""
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0012"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.LargeBinary(32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_login_throttle"),
    )
    op.create_index("ix_login_throttle_last_attempt_at", "login_throttle", ["last_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_login_throttle_last_attempt_at", table_name="login_throttle")
    op.drop_table("login_throttle")
