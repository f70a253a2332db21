"""The catalog check: RLS on every tenant table, a restricted app role, and a guard that notices."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from app.models import tenant_tables
from app.db.guard import isolation_problems
from app.db.rls import POLICY
from tests.core.conftest import SEEDED_TABLES

TENANT_TABLES_SQL = text(
    "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner) AS owner "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND EXISTS ("
    "  SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped) "
    "ORDER BY 1"
)
POLICIES_SQL = text(
    "SELECT policyname, permissive, roles, cmd, qual, with_check FROM pg_policies "
    "WHERE schemaname = 'public' AND tablename = :t"
)


async def catalog_tenant_tables(conn) -> dict[str, tuple]:
    return {r.relname: r for r in await conn.execute(TENANT_TABLES_SQL)}


async def test_every_tenant_table_has_rls_enabled_forced_and_a_tenant_policy(engine, settings):
    async with engine.connect() as conn:
        tables = await catalog_tenant_tables(conn)
        assert tables, "no table with a tenant_id column found"
        for name, row in tables.items():
            assert row.relrowsecurity, f"{name}: RLS not enabled"
            assert row.relforcerowsecurity, f"{name}: RLS not forced (the owner would bypass it)"
            assert row.owner == settings.db_owner_role, f"{name} is owned by {row.owner}"
            policies = (await conn.execute(POLICIES_SQL, {"t": name})).all()
            assert [p.policyname for p in policies] == [POLICY], name
            policy = policies[0]
            # One permissive policy for every command and role, filtering reads and checking writes.
            assert (policy.permissive, policy.cmd, list(policy.roles)) == ("PERMISSIVE", "ALL", ["public"])
            for expr in (policy.qual, policy.with_check):
                assert expr is not None and "tenant_id" in expr and "app.tenant_id" in expr, (name, expr)
                assert "NULLIF" in expr.upper(), (name, expr)


async def test_the_catalog_and_the_models_agree_on_the_tenant_tables(engine):
    async with engine.connect() as conn:
        in_db = set(await catalog_tenant_tables(conn))
    assert in_db == set(tenant_tables())
    # The seed in tests/core/conftest.py covers them all, so the RLS tests do too.
    assert in_db == set(SEEDED_TABLES), "a new tenant table: add a row of it to seed_tenant() in tests/core/conftest.py"


async def test_the_app_role_is_restricted(engine, settings):
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT current_user AS name, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, "
                    "has_schema_privilege(current_user, 'public', 'CREATE') AS can_create, "
                    "pg_has_role(current_user, :owner, 'MEMBER') AS in_owner_role "
                    "FROM pg_roles WHERE rolname = current_user"
                ),
                {"owner": settings.db_owner_role},
            )
        ).one()
        owned = (
            await conn.execute(
                text("SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)")
            )
        ).scalar_one()
    assert row.name == settings.db_app_role
    assert not row.rolsuper
    assert not row.rolbypassrls
    assert not (row.rolcreaterole or row.rolcreatedb)
    # Could it create a table (which it would own, so RLS would not apply) or become the owner?
    assert not row.can_create
    assert not row.in_owner_role
    assert owned == 0


async def test_the_app_role_has_only_dml_on_tenant_tables(engine):
    async with engine.connect() as conn:
        privileges = (
            await conn.execute(
                text(
                    "SELECT DISTINCT privilege_type FROM information_schema.table_privileges "
                    "WHERE grantee = current_user AND table_schema = 'public'"
                )
            )
        ).scalars().all()
        alembic = (
            await conn.execute(text("SELECT has_table_privilege(current_user, 'alembic_version', 'SELECT')"))
        ).scalar_one()
    assert set(privileges) == {"SELECT", "INSERT", "UPDATE", "DELETE"}
    assert not alembic


async def test_the_guard_passes_on_the_migrated_database(engine):
    async with engine.connect() as conn:
        assert await isolation_problems(conn) == []


def _rogue_name() -> str:
    return f"rogue_{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize(
    "rls_sql, flagged",
    [
        ([], True),
        (["ENABLE"], True),
        (["ENABLE", "FORCE"], True),  # no policy
        (["ENABLE", "POLICY"], True),  # not forced
        (["ENABLE", "FORCE", "POLICY"], False),
    ],
    ids=["none", "enabled-only", "no-policy", "not-forced", "complete"],
)
async def test_a_new_tenant_table_without_full_rls_fails_the_check(owner_engine, rls_sql, flagged):
    """A table added (as the owner, like a migration would) without RLS makes the guard fail.

    The table exists only inside a transaction that is rolled back.
    """
    name = _rogue_name()
    async with owner_engine.connect() as conn:
        tx = await conn.begin()
        try:
            await conn.execute(text(f"CREATE TABLE {name} (id uuid PRIMARY KEY, tenant_id uuid NOT NULL)"))
            for step in rls_sql:
                if step == "POLICY":
                    await conn.execute(text(f"CREATE POLICY p ON {name} USING (tenant_id IS NOT NULL)"))
                else:
                    await conn.execute(text(f"ALTER TABLE {name} {step} ROW LEVEL SECURITY"))
            problems = await isolation_problems(conn)
            # The owner role itself is also reported (it owns tables), which is right.
            assert any("owns tables" in p for p in problems)
            about_rogue = [p for p in problems if name in p and "lacks RLS" in p]
            assert bool(about_rogue) is flagged, problems
        finally:
            await tx.rollback()
    # Rolled back: the real schema is untouched.
    async with owner_engine.connect() as conn:
        assert (await conn.execute(text("SELECT to_regclass(:n)"), {"n": name})).scalar_one() is None


async def test_the_guard_flags_a_superuser(superuser_engine):
    async with superuser_engine.connect() as conn:
        problems = await isolation_problems(conn)
    assert any("superuser" in p for p in problems), problems


async def test_the_guard_flags_a_bypassrls_role(superuser_engine):
    role = f"bypass_{uuid.uuid4().hex[:8]}"
    async with superuser_engine.connect() as conn:
        tx = await conn.begin()
        try:
            # Role creation is transactional: the rollback below leaves no role behind.
            await conn.execute(text(f'CREATE ROLE "{role}" NOLOGIN BYPASSRLS'))
            await conn.execute(text(f'SET LOCAL ROLE "{role}"'))
            problems = await isolation_problems(conn)
        finally:
            await tx.rollback()
    assert any("BYPASSRLS" in p for p in problems), problems
    assert not any("superuser" in p for p in problems), problems


async def test_the_guard_flags_an_app_role_that_owns_a_table(superuser_engine, settings):
    async with superuser_engine.connect() as conn:
        tx = await conn.begin()
        try:
            await conn.execute(text(f'ALTER TABLE tags OWNER TO "{settings.db_app_role}"'))
            await conn.execute(text(f'SET LOCAL ROLE "{settings.db_app_role}"'))
            problems = await isolation_problems(conn)
        finally:
            await tx.rollback()
    assert problems and all("tags" in p for p in problems), problems
    assert any("owns tables ['tags']" in p for p in problems), problems


async def test_the_guard_flags_a_missing_tenant_table(superuser_engine, settings):
    async with superuser_engine.connect() as conn:
        tx = await conn.begin()
        try:
            await conn.execute(text("ALTER TABLE login_attempts RENAME TO login_attempts_old"))
            await conn.execute(text(f'SET LOCAL ROLE "{settings.db_app_role}"'))
            problems = await isolation_problems(conn)
        finally:
            await tx.rollback()
    assert any("login_attempts is missing" in p for p in problems), problems
