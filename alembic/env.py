"""Alembic environment (async): runs migrations as the owner role.

The URL comes from the caller (app.db.setup passes it in config.attributes) or, when run as
plain `alembic ...` from the repo root, from Settings: MIGRATION_DATABASE_URL, or the
embedded server (started, with roles and database created) when no DATABASE_URL is set.

The engine is the app's (app.db.engine.create_engine), so what the app needs to run behind a
transaction pooler (DB_POOLER=pgbouncer) holds here too. Every migration runs in one
transaction that first takes a transaction-level advisory lock: instances started together
migrate one after the other, and the later ones find the schema at head and do nothing.
A transaction-level lock (not a session one) because behind PgBouncer in transaction mode a
session lock would stay on a server connection other clients then use.
"""

import asyncio

from sqlalchemy import text

import app.models  # noqa: F401  (register every table on the metadata)
from alembic import context
from app.core.config import get_settings
from app.db.base import Base
from app.db.engine import create_engine

config = context.config
target_metadata = Base.metadata
# pg_advisory_xact_lock key: "tenantry migrations" (advisory locks are per database).
MIGRATION_LOCK_KEY = 7_406_111_013


def settings():
    return config.attributes.get("settings") or get_settings()


def owner_url() -> str:
    url = config.attributes.get("owner_url")
    if url:
        return url
    current = settings()
    if current.migration_database_url or current.database_url:
        return current.migration_database_url or current.database_url
    from app.db import embedded
    from app.db.setup import bootstrap

    admin_url = embedded.start(current.embedded_pgdata)
    return asyncio.run(bootstrap(admin_url, current)).owner_url


def do_run_migrations(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        # Before Alembic reads or creates alembic_version: a second migrator waits here, then
        # (READ COMMITTED: each statement sees what committed before it) finds the head.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()
        # The app role gets DML on tables by default privileges; not on Alembic's bookkeeping
        # (it reads the revision through tenantry_schema_revision()). Under the lock: two
        # concurrent REVOKEs on one table can fail with "tuple concurrently updated".
        app_role = settings().db_app_role
        connection.execute(text(f'REVOKE ALL ON TABLE alembic_version FROM "{app_role}"'))


async def run_async_migrations(url: str) -> None:
    engine = create_engine(settings(), url, pooled=False)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=owner_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_async_migrations(owner_url()))
