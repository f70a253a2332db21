"""Audit log (append-only for the app role, RLS) and the platform's tenant deletion record.

Revision ID: 0016
Revises: 0002
Create Date: 2026-12-01

Default privileges (app/db/setup.py) grant the app role SELECT, INSERT, UPDATE, DELETE on every
new table; both tables here take UPDATE and DELETE (and TRUNCATE, REFERENCES, TRIGGER, never
granted but revoked to say so) back, so PostgreSQL itself keeps them append-only. Retention
deletes audit rows as the owner role (`tenantry audit prune`).

tenantry_schema_revision(): the export's header names the schema revision, but the app role
may not read alembic_version (env.py revokes it); this narrow SECURITY DEFINER function
returns only that one value.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op
from app.core.config import get_settings
from app.db.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("audit_events", "tenant_deletions")


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor_type", sa.String(length=20), nullable=False),
        sa.Column("actor_id", sa.UUID(), nullable=True),
        sa.Column("actor_key_id", sa.UUID(), nullable=True),
        sa.Column("actor_label", sa.String(length=320), nullable=True),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("target_type", sa.String(length=50), nullable=True),
        sa.Column("target_id", sa.String(length=100), nullable=True),
        sa.Column("details", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("client_addr", sa.String(length=100), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_audit_events_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_audit_events")),
    )
    op.create_index(
        "ix_audit_events_tenant_id_occurred_at_id", "audit_events", ["tenant_id", "occurred_at", "id"]
    )
    op.create_index(
        "ix_audit_events_tenant_id_target_type_target_id", "audit_events", ["tenant_id", "target_type", "target_id"]
    )
    enable_tenant_rls("audit_events")

    op.create_table(
        "tenant_deletions",
        sa.Column("deleted_tenant_id", sa.UUID(), nullable=False),
        sa.Column("slug", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_by", sa.String(length=100), nullable=False),
        sa.Column("row_counts", postgresql.JSONB(), nullable=False),
        sa.Column("export_sha256", sa.String(length=64), nullable=True),
        sa.Column("export_taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant_deletions")),
    )
    op.create_index(op.f("ix_tenant_deletions_deleted_tenant_id"), "tenant_deletions", ["deleted_tenant_id"])
    op.create_index(op.f("ix_tenant_deletions_slug"), "tenant_deletions", ["slug"])

    app_role = get_settings().db_app_role
    for table in APPEND_ONLY:
        op.execute(f'REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON "{table}" FROM "{app_role}"')
        op.execute(f'GRANT SELECT, INSERT ON "{table}" TO "{app_role}"')

    # tenantry_schema_revision() (the export's header) comes from migration 0013.


def downgrade() -> None:
    op.drop_index(op.f("ix_tenant_deletions_slug"), table_name="tenant_deletions")
    op.drop_index(op.f("ix_tenant_deletions_deleted_tenant_id"), table_name="tenant_deletions")
    op.drop_table("tenant_deletions")
    disable_tenant_rls("audit_events")
    op.drop_index("ix_audit_events_tenant_id_target_type_target_id", table_name="audit_events")
    op.drop_index("ix_audit_events_tenant_id_occurred_at_id", table_name="audit_events")
    op.drop_table("audit_events")
