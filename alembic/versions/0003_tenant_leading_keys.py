"""Primary keys and unique constraints of tenant tables lead with tenant_id.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Constraints ignore RLS, and Citus requires the distribution column (tenant_id) in every
primary key and unique constraint: items, tags, users and refresh_tokens had `(id)` as their
key beside a second UNIQUE (tenant_id, id), and refresh token hashes were unique across
tenants. The composite foreign keys are re-pointed at the new primary keys, and the tenant_id
indexes that a tenant-leading key makes redundant are dropped. The item counters get their
defaults in the database (the compiled statements never send ORM-side defaults). Runs on a populated database
(every row already satisfies the new keys) and downgrades.
"""
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYED = ("users", "tags", "items", "refresh_tokens")
# (name, table, columns, referred table, on delete): the FKs that lean on (tenant_id, id).
FOREIGN_KEYS = (
    ("fk_items_tenant_id_owner_id_users", "items", ["tenant_id", "owner_id"], "users", "RESTRICT"),
    ("fk_refresh_tokens_tenant_id_user_id_users", "refresh_tokens", ["tenant_id", "user_id"], "users", "CASCADE"),
    ("fk_item_tags_tenant_id_item_id_items", "item_tags", ["tenant_id", "item_id"], "items", "CASCADE"),
    ("fk_item_tags_tenant_id_tag_id_tags", "item_tags", ["tenant_id", "tag_id"], "tags", "CASCADE"),
)
TENANT_ID_INDEXES = ("users", "tags", "items", "refresh_tokens", "login_attempts")


def _drop_foreign_keys() -> None:
    for name, table, *_ in FOREIGN_KEYS:
        op.drop_constraint(name, table, type_="foreignkey")


def _create_foreign_keys() -> None:
    for name, table, columns, referred, on_delete in FOREIGN_KEYS:
        op.create_foreign_key(name, table, referred, columns, ["tenant_id", "id"], ondelete=on_delete)


def upgrade() -> None:
    _drop_foreign_keys()
    for table in KEYED:
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, ["tenant_id", "id"])
        if table != "refresh_tokens":
            op.drop_constraint(f"uq_{table}_tenant_id_id", table, type_="unique")
    _create_foreign_keys()

    op.drop_constraint("uq_refresh_tokens_token_hash", "refresh_tokens", type_="unique")
    op.create_unique_constraint("uq_refresh_tokens_tenant_id_token_hash", "refresh_tokens", ["tenant_id", "token_hash"])
    op.drop_index("ix_refresh_tokens_user_id", table_name="refresh_tokens")
    op.drop_index("ix_refresh_tokens_family_id", table_name="refresh_tokens")
    op.create_index("ix_refresh_tokens_tenant_id_user_id", "refresh_tokens", ["tenant_id", "user_id"])
    op.create_index("ix_refresh_tokens_tenant_id_family_id", "refresh_tokens", ["tenant_id", "family_id"])
    for table in TENANT_ID_INDEXES:
        op.drop_index(f"ix_{table}_tenant_id", table_name=table)
    op.alter_column("items", "version", server_default=sa.text("1"))
    op.alter_column("items", "stock_quantity", server_default=sa.text("0"))


def downgrade() -> None:
    op.alter_column("items", "version", server_default=None)
    op.alter_column("items", "stock_quantity", server_default=None)
    for table in TENANT_ID_INDEXES:
        op.create_index(f"ix_{table}_tenant_id", table, ["tenant_id"])
    op.drop_index("ix_refresh_tokens_tenant_id_family_id", table_name="refresh_tokens")
    op.drop_index("ix_refresh_tokens_tenant_id_user_id", table_name="refresh_tokens")
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"])
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"])
    op.drop_constraint("uq_refresh_tokens_tenant_id_token_hash", "refresh_tokens", type_="unique")
    op.create_unique_constraint("uq_refresh_tokens_token_hash", "refresh_tokens", ["token_hash"])

    _drop_foreign_keys()
    for table in KEYED:
        if table != "refresh_tokens":
            op.create_unique_constraint(f"uq_{table}_tenant_id_id", table, ["tenant_id", "id"])
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, ["id"])
    _create_foreign_keys()
    # Downgraded FKs point at (tenant_id, id) again, now backed by the unique constraints.
