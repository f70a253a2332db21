"""RLS for migrations: every tenant table gets it through this one helper, so none forgets it."""

from __future__ import annotations

from alembic import op

POLICY = "tenant_isolation"
# NULLIF: once a transaction-local setting has ended, current_setting(..., true) is '' and
# ''::uuid would raise. The sub-SELECT lets the planner evaluate it once per statement.
TENANT_EXPR = "(SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)"


def enable_tenant_rls(table: str) -> None:
    op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
    # FORCE: the table owner is subject to the policy too.
    op.execute(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
    op.execute(
        f'CREATE POLICY {POLICY} ON "{table}" '
        f"USING (tenant_id = {TENANT_EXPR}) WITH CHECK (tenant_id = {TENANT_EXPR})"
    )


def disable_tenant_rls(table: str) -> None:
    op.execute(f'DROP POLICY IF EXISTS {POLICY} ON "{table}"')
    op.execute(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')
