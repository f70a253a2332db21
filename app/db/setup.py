"""Database setup: roles, the database, migrations; shared by the CLI, env.py and tests.

Two roles, as DESIGN.md requires: the owner role runs migrations and owns every table; the
app role logs in for requests, NOSUPERUSER NOBYPASSRLS, owns nothing, holds only DML grants
(given by default privileges, so tables added later are covered too).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from app.core.config import ROOT, Settings

log = logging.getLogger("tenantry.setup")


@dataclass(frozen=True)
class DatabaseUrls:
    owner_url: str
    app_url: str


def _plain(url: str) -> str:
    """asyncpg wants postgresql:// (no +driver)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def role_url(admin_url: str, *, user: str, database: str, password: str | None = None) -> str:
    url = make_url(_plain(admin_url)).set(username=user, password=password, database=database)
    return url.render_as_string(hide_password=False)


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe role or database name: {name!r}")
    return f'"{name}"'


async def bootstrap(
    admin_url: str,
    settings: Settings,
    *,
    database: str | None = None,
    owner_password: str | None = None,
    app_password: str | None = None,
    recreate: bool = False,
) -> DatabaseUrls:
    """Create (idempotently) the two roles and the database, as a superuser/CREATEROLE admin."""
    database = database or settings.db_name
    owner, app = _ident(settings.db_owner_role), _ident(settings.db_app_role)
    conn = await asyncpg.connect(_plain(admin_url))
    try:
        for role, password in ((settings.db_owner_role, owner_password), (settings.db_app_role, app_password)):
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
            verb = "ALTER" if exists else "CREATE"
            await conn.execute(
                f"{verb} ROLE {_ident(role)} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
            )
            if password:
                await conn.execute(f"ALTER ROLE {_ident(role)} PASSWORD {_literal(password)}")
        if recreate:
            await conn.execute(f"DROP DATABASE IF EXISTS {_ident(database)} WITH (FORCE)")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            await conn.execute(f"CREATE DATABASE {_ident(database)} OWNER {owner}")
    finally:
        await conn.close()

    admin_in_db = make_url(_plain(admin_url)).set(database=database).render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin_in_db)
    try:
        await conn.execute(f"ALTER SCHEMA public OWNER TO {owner}")
        await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        await conn.execute(f"GRANT USAGE ON SCHEMA public TO {app}")
        await conn.execute(f"REVOKE ALL ON DATABASE {_ident(database)} FROM PUBLIC")
        await conn.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {_ident(database)} TO {app}")
        await conn.execute(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}"
        )
        await conn.execute(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {app}"
        )
    finally:
        await conn.close()
    return DatabaseUrls(
        owner_url=role_url(admin_url, user=settings.db_owner_role, database=database, password=owner_password),
        app_url=role_url(admin_url, user=settings.db_app_role, database=database, password=app_password),
    )


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def migrations_dir() -> Path:
    """alembic/ of a checkout, else the copy the wheel ships inside the package (setup.py)."""
    checkout = ROOT / "alembic"
    return checkout if (checkout / "env.py").exists() else Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(owner_url: str, settings: Settings | None = None):
    from alembic.config import Config

    cfg = Config()  # no alembic.ini or pyproject.toml needed: an installed wheel has neither
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["owner_url"] = owner_url
    if settings is not None:
        cfg.attributes["settings"] = settings
    return cfg


def head_revisions() -> set[str]:
    """The revisions the code expects the schema at (from alembic/versions, no database)."""
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config("")).get_heads())


async def schema_revisions(app_url: str, settings: Settings) -> set[str] | None:
    """The schema's revisions, read as the app role (tenantry_schema_revision(), migration
    0013); None when that function is missing (an older schema: it needs migrating)."""
    from app.db.engine import connect_args

    url, args = connect_args(settings, app_url)
    conn = await asyncpg.connect(_plain(url), **{k: v for k, v in args.items() if k != "prepared_statement_name_func"})
    try:
        exists = await conn.fetchval("SELECT to_regprocedure('tenantry_schema_revision()') IS NOT NULL")
        if not exists:
            return None
        value = await conn.fetchval("SELECT tenantry_schema_revision()")
    finally:
        await conn.close()
    return set(value.split(",")) if value else set()


def schema_at_head(app_url: str, settings: Settings) -> bool:
    return asyncio.run(schema_revisions(app_url, settings)) == head_revisions()


def run_migrations(owner_url: str, revision: str = "head", *, downgrade: bool = False,
                   settings: Settings | None = None) -> None:
    """Alembic upgrade/downgrade. env.py runs its own event loop, so never on a running one."""
    from alembic import command

    def work() -> None:
        cfg = alembic_config(owner_url, settings)
        (command.downgrade if downgrade else command.upgrade)(cfg, revision)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        work()
        return
    errors: list[BaseException] = []

    def in_thread() -> None:
        try:
            work()
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def prepare_database(settings: Settings, *, stop_at_exit: bool = True, skip_if_at_head: bool = False) -> DatabaseUrls:
    """What `serve` and `migrate` need: URLs for both roles, with the schema at head.

    Embedded (no DATABASE_URL): start the server, create roles and database, migrate.
    External: use DATABASE_URL / MIGRATION_DATABASE_URL as given and migrate with the latter;
    with skip_if_at_head (serve), a schema already at head is left alone after one check as
    the app role, so instances need no owner credentials once the migrations have run.
    Concurrent migrators are serialized by an advisory lock (alembic/env.py).
    """
    if settings.uses_embedded_db:
        from app.db import embedded

        admin_url = embedded.start(settings.embedded_pgdata, stop_at_exit=stop_at_exit)
        urls = asyncio.run(bootstrap(admin_url, settings))
    else:
        assert settings.database_url is not None  # not embedded
        urls = DatabaseUrls(
            owner_url=settings.migration_database_url or settings.database_url,
            app_url=settings.database_url,
        )
        if skip_if_at_head and schema_at_head(urls.app_url, settings):
            log.info("schema at head: not migrating")
            return urls
    run_migrations(urls.owner_url, settings=settings)
    return urls
