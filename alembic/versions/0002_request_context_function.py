"""tenantry_enter(): set the request's tenant and load the caller in one round trip.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

SECURITY INVOKER (the default): it runs as the app role, so RLS applies to its query exactly
as to any other; it only saves the separate set_config round trip at the start of a request.
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION tenantry_enter(p_tenant uuid, p_user uuid)
        RETURNS SETOF users
        LANGUAGE plpgsql VOLATILE SECURITY INVOKER
        AS $$
        BEGIN
            -- Transaction-local, exactly like the session's after_begin hook.
            PERFORM set_config('app.tenant_id', p_tenant::text, true);
            -- Statements in a plpgsql body run in order, so RLS below sees the setting.
            RETURN QUERY
                SELECT u.* FROM users u JOIN tenants t ON t.id = u.tenant_id
                WHERE u.id = p_user AND u.tenant_id = p_tenant AND t.status = 'active';
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS tenantry_enter(uuid, uuid)")
