"""Engine and session factory, built from Settings by the app's lifespan (never at import).

One place decides how the app talks to PostgreSQL — pool, timeouts, and what a transaction
pooler in between needs — and every consumer uses it: the ORM session, TenantDB (it checks out
`engine.raw_connection()`, so the same connect arguments apply), the CLI and the migrations
(alembic/env.py builds its engine here too).
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.core.config import DbPooler, Settings
from app.db.tenancy import TenantSession

# asyncpg keyword arguments that may arrive in a URL's query string: as text there, while asyncpg
# wants numbers (`?statement_cache_size=0` raised a TypeError deep inside asyncpg).
_INT_URL_ARGS = ("statement_cache_size", "max_cached_statement_lifetime", "max_cacheable_statement_size")
_FLOAT_URL_ARGS = ("timeout", "command_timeout")


def to_async_url(url: str) -> str:
    """Accept plain postgresql:// URLs in settings; SQLAlchemy needs the asyncpg driver named."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    return url


def _unnamed_statement() -> str:
    """SQLAlchemy's name for each statement it prepares: '' is PostgreSQL's unnamed statement.

    Behind a transaction pooler (PgBouncer 1.18 has no prepared-statement support) a named
    statement lives on one server connection, which other clients' transactions reuse:
    asyncpg's `__asyncpg_stmt_N__` names collide across processes ("already exists", "does
    not exist", "bind message supplies 2 parameters ..."), and unique names pile up on the
    server. The unnamed statement is replaced by the next Parse of the same client, and with
    the statement cache off asyncpg sends Parse again with every Bind (prepared_stmt.pyx:
    mark_unprepared), so it never refers to a statement another server connection holds.
    """
    return ""


def connect_args(settings: Settings, url: str) -> tuple[str, dict]:
    """The URL without asyncpg-only query options, and the asyncpg connect arguments."""
    parsed = make_url(to_async_url(url))
    args: dict = {
        "server_settings": {"application_name": "tenantry"},
        "statement_cache_size": settings.db_statement_cache_size,
        "timeout": settings.db_connect_timeout,
    }
    query = dict(parsed.query)
    for name, kind in [*((n, int) for n in _INT_URL_ARGS), *((n, float) for n in _FLOAT_URL_ARGS)]:
        if name in query:
            args[name] = kind(query.pop(name))
    if settings.db_pooler is DbPooler.pgbouncer:
        # Transaction pooling: no prepared statement may outlive its transaction.
        args["statement_cache_size"] = 0
        args["prepared_statement_name_func"] = _unnamed_statement
    parsed = parsed.set(query=query)
    return parsed.render_as_string(hide_password=False), args


def create_engine(settings: Settings, url: str, *, pooled: bool = True) -> AsyncEngine:
    """The engine for one role. pooled=False (migrations, one-off commands): no pool kept."""
    clean_url, args = connect_args(settings, url)
    options: dict = {"connect_args": args}
    if pooled:
        # As many connections as requests in flight per worker: a smaller pool made tails 7-10x
        # worse under load. A bounded wait turns exhaustion into a clear 503.
        options.update(pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow,
                       pool_timeout=settings.db_pool_timeout)
    else:
        options["poolclass"] = NullPool
    # No pool_pre_ping: with asyncpg it costs three round trips per checkout (BEGIN, ';',
    # ROLLBACK). _drop_closed_connections below catches dead connections for free.
    engine = create_async_engine(clean_url, **options)
    event.listen(engine.sync_engine, "checkout", _drop_closed_connections)
    return engine


def _drop_closed_connections(dbapi_connection, connection_record, connection_proxy) -> None:
    """A liveness check without a round trip: asyncpg marks a connection closed as soon as
    the server drops it (restart, idle kill), so after a database restart the pool discards
    those connections and opens new ones instead of failing requests with them.
    A connection that dies unnoticed fails its request (503) and SQLAlchemy then
    invalidates the whole pool."""
    raw = dbapi_connection.driver_connection
    if raw is None or raw.is_closed():
        raise DisconnectionError("connection closed by the server")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: responses are built after the commit without reloading rows.
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=TenantSession)
