"""tenantry_schema_revision(): the schema's Alembic revision, readable by the app role.

Revision ID: 0013
Revises: 0003
Create Date: 2026-12-01

`tenantry serve` asks it whether the schema is already at head, so an instance can start with
only the app role's credentials and skip migrating. The app role has no grant on
alembic_version (env.py revokes it); this one narrow SECURITY DEFINER function returns the
revision and nothing else, with a pinned search_path.
"""
from collections.abc import Sequence

from alembic import op
from app.core.config import get_settings

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _app_role() -> str:
    config = op.get_context().config
    settings = (config.attributes.get("settings") if config is not None else None) or get_settings()
    return settings.db_app_role


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION tenantry_schema_revision()
        RETURNS text
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$ SELECT string_agg(version_num, ',' ORDER BY version_num) FROM public.alembic_version $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION tenantry_schema_revision() FROM PUBLIC")
    op.execute(f'GRANT EXECUTE ON FUNCTION tenantry_schema_revision() TO "{_app_role()}"')


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS tenantry_schema_revision()")
