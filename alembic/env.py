"""Alembic environment (async): runs migrations as the owner role.

The URL comes from the caller (app.db.setup passes it in config.attributes) or, when run as
plain `alembic ...` from the repo root, from Settings: MIGRATION_DATABASE_URL, or the
embedded server (started, with roles and database created) when no DATABASE_URL is set.
"""

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import app.models  # noqa: F401  (register every table on the metadata)
from app.core.config import get_settings
from app.db.base import Base
from app.db.engine import to_async_url

config = context.config
target_metadata = Base.metadata


def owner_url() -> str:
    url = config.attributes.get("owner_url")
    if url:
        return url
    settings = get_settings()
    if settings.migration_database_url or settings.database_url:
        return settings.migration_database_url or settings.database_url
    from app.db import embedded
    from app.db.setup import bootstrap

    admin_url = embedded.start(settings.embedded_pgdata)
    return asyncio.run(bootstrap(admin_url, settings)).owner_url


def do_run_migrations(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
    # The app role gets DML on tables by default privileges; not on Alembic's bookkeeping.
    app_role = get_settings().db_app_role
    connection.execute(text(f'REVOKE ALL ON TABLE alembic_version FROM "{app_role}"'))
    connection.commit()


async def run_async_migrations(url: str) -> None:
    engine = create_async_engine(to_async_url(url))
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=owner_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_async_migrations(owner_url()))
