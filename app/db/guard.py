"""Start-up and readiness guard: refuse to serve if RLS could be bypassed.

Checks, as the app's own role: not superuser, not BYPASSRLS, owns no table; every table with
a tenant_id column (and every TenantBase table the code knows) has RLS enabled, forced and
at least one policy. Each problem names its fix.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models import tenant_tables

ROLE_SQL = text("SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
OWNED_SQL = text(
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) "
    "AND c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
)
TENANT_TABLES_SQL = text(
    "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
    "EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid) AS has_policy "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND EXISTS ("
    "  SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' "
    "  AND NOT a.attisdropped)"
)


class UnsafeDatabase(RuntimeError):
    pass


async def isolation_problems(conn: AsyncConnection) -> list[str]:
    problems: list[str] = []
    role, is_super, bypass = (await conn.execute(ROLE_SQL)).one()
    if is_super:
        problems.append(f"role {role} is a superuser (RLS does not apply): connect as a NOSUPERUSER role")
    if bypass:
        problems.append(f"role {role} has BYPASSRLS: ALTER ROLE {role} NOBYPASSRLS")
    owned = [r[0] for r in await conn.execute(OWNED_SQL)]
    if owned:
        problems.append(
            f"role {role} owns tables {owned} (owners can bypass RLS): run migrations as the owner "
            "role and connect the app as a separate role"
        )
    found = {r.relname: r for r in await conn.execute(TENANT_TABLES_SQL)}
    for name in sorted(set(found) | set(tenant_tables())):
        row = found.get(name)
        if row is None:
            problems.append(f"tenant table {name} is missing: run `tenantry migrate`")
            continue
        if not (row.relrowsecurity and row.relforcerowsecurity and row.has_policy):
            problems.append(
                f"tenant table {name} lacks RLS (enabled={row.relrowsecurity}, "
                f"forced={row.relforcerowsecurity}, policy={row.has_policy}): add it in a "
                "migration with app.db.rls.enable_tenant_rls()"
            )
    return problems


async def assert_isolation(conn: AsyncConnection) -> None:
    problems = await isolation_problems(conn)
    if problems:
        raise UnsafeDatabase("refusing to serve: " + "; ".join(problems))
