"""TenantDB: the lean data path of the hot endpoints — SQL on the driver, in one tenant transaction.

The ORM session (app/db/session.py) costs about 1 ms of Python per request, three times what
the whole request costs without it (see README, Performance). Items and tags use this
instead, with the same two layers of isolation:
- layer 1, the application: every `Statement` takes the tenant as `$1` and is refused at
  import unless it filters on `tenant_id = $1` (or, for an INSERT, writes `$1` as the tenant);
  TenantDB passes the caller's tenant as `$1` itself, so a query cannot be given another;
- layer 2, PostgreSQL: the transaction's first statement is `tenantry_enter(tenant, user)`
  (migration 0002), which sets the transaction-local `app.tenant_id` that RLS reads, and
  returns the caller only if the user and the tenant are active (authentication and tenant
  binding in one round trip).
One pooled connection (the engine's pool: same size, same 503 when it is exhausted), one
transaction, committed once when the endpoint's `async with tenant_db(request)` block ends,
rolled back on any error.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import asyncpg
from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.util import greenlet_spawn

from app.core.errors import Forbidden, Unauthorized
from app.db import faults
from app.core.security import Principal, oauth2_scheme

log = logging.getLogger("tenantry.tenant_db")
ENTER_SQL = "SELECT id, role::text, is_active, token_version FROM tenantry_enter($1, $2)"
_FILTERS_TENANT = re.compile(r"\btenant_id\s*=\s*\$1(?!\d)")
_INSERTS_TENANT = re.compile(r"\bINSERT INTO \w+ \(tenant_id\b[^)]*\)\s*(VALUES \(|SELECT )\$1(?!\d)")


@dataclass(frozen=True, slots=True)
class Statement:
    """SQL whose `$1` is the tenant, filtered on (or, for an INSERT, written) explicitly."""

    sql: str

    def __post_init__(self) -> None:
        if not (_FILTERS_TENANT.search(self.sql) or _INSERTS_TENANT.search(self.sql)):
            raise ValueError(f"statement does not scope itself to tenant_id = $1: {self.sql[:100]!r}")


@lru_cache(maxsize=512)
def statement(sql: str) -> Statement:
    """The Statement for SQL put together per request (a few shapes): each text checked once."""
    return Statement(sql)


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated user, as the database confirmed it at the start of this request."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    role: str


class TenantDB:
    """One request's tenant-bound transaction; every statement runs with `$1` = the tenant."""

    __slots__ = ("_conn", "caller")

    def __init__(self, conn: asyncpg.Connection, caller: Caller) -> None:
        self._conn = conn
        self.caller = caller

    async def fetch(self, statement: Statement, *args: Any) -> list[asyncpg.Record]:
        return await self._conn.fetch(statement.sql, self.caller.tenant_id, *args)

    async def fetchrow(self, statement: Statement, *args: Any) -> asyncpg.Record | None:
        return await self._conn.fetchrow(statement.sql, self.caller.tenant_id, *args)

    async def fetchval(self, statement: Statement, *args: Any) -> Any:
        return await self._conn.fetchval(statement.sql, self.caller.tenant_id, *args)

    async def execute(self, statement: Statement, *args: Any) -> int:
        """Run a write; the number of rows it touched."""
        status = await self._conn.execute(statement.sql, self.caller.tenant_id, *args)
        return int(status.rsplit(" ", 1)[-1]) if status[-1:].isdigit() else 0


def _principal(request: Request) -> Principal:
    principal: Principal | None = request.state.principal
    if principal is None:
        raise Unauthorized("invalid or expired token" if request.state.token_error else "not authenticated")
    return principal


@asynccontextmanager
async def tenant_db(request: Request, *, roles: Collection[str] = ()) -> AsyncIterator[TenantDB]:
    """The request's tenant transaction: `async with tenant_db(request) as db:` in an endpoint.

    Committed when the block ends without an error (before the response is sent, so a failing
    commit becomes the response), rolled back otherwise. `roles`: 403 unless the caller has one.
    A context manager rather than a dependency: FastAPI's machinery for a yield-dependency costs
    ~12% of a GET's instructions, and opening the transaction inside the endpoint also means a
    request that fails validation never touches the database.
    """
    principal = _principal(request)
    # The pool hands out the asyncpg connection itself. SQLAlchemy never starts a transaction
    # on it, so checking it back in costs no round trip (its reset-on-return has nothing to do).
    # --- ops (issue 13): checkout and BEGIN faults surface as DatabaseUnavailable (503) -----
    try:
        pooled = await request.app.state.engine.raw_connection()
    except Exception as exc:  # SQLAlchemy does not wrap raw_connection()'s errors
        raise faults.unavailable(exc) from exc
    # --- end ops -----------------------------------------------------------------------------
    conn: asyncpg.Connection = pooled.driver_connection
    transaction = conn.transaction()
    try:
        await transaction.start()
        row = await conn.fetchrow(ENTER_SQL, principal.tenant_id, principal.user_id)
        if row is None or not row[2] or row[3] != principal.token_version:
            raise Unauthorized("invalid or expired token")
        if roles and row[1] not in roles:
            raise Forbidden("your role does not allow this")
        yield TenantDB(conn, Caller(row[0], principal.tenant_id, row[1]))
        await transaction.commit()
    except BaseException as exc:
        await _abandon(conn, transaction, pooled)
        # --- ops (issue 13): a backend killed at BEGIN/COMMIT/mid-query ("cannot switch to
        # state 15", connection closed) is a 503, not a 500 -----------------------------------
        if isinstance(exc, Exception) and faults.classify(exc) is faults.Fault.UNAVAILABLE:
            raise faults.unavailable(exc) from exc
        raise
    finally:
        # A transaction still open here (its rollback cut short by a second cancellation) still
        # carries this tenant: discard the connection (a local check, no round trip).
        await _release(conn, pooled)


async def _release(conn: asyncpg.Connection, pooled) -> None:
    """Give the connection back; a failure here (the backend is gone) must not replace the
    request's outcome, and such a connection is never handed out again (ops, issue 13)."""
    try:
        if not conn.is_closed() and conn.is_in_transaction():
            await greenlet_spawn(pooled.invalidate)
        # Pool check-in may close an overflow connection, which awaits: SQLAlchemy's pool
        # runs such calls only inside its greenlet bridge.
        await greenlet_spawn(pooled.close)
    except Exception:
        log.warning("could not return a connection to the pool; discarded", exc_info=True)
        try:
            await greenlet_spawn(pooled.invalidate)
        except Exception:
            pass


async def _abandon(conn: asyncpg.Connection, transaction, pooled) -> None:
    """Roll back; a connection that cannot be rolled back is never handed out again."""
    if not conn.is_closed():
        try:
            await transaction.rollback()
            return
        except Exception:
            pass
    await greenlet_spawn(pooled.invalidate)


class TenantDBRoute(APIRoute):
    """The route class of routers on TenantDB.

    - 401 for a caller without a valid token before anything else, validation included: an
      anonymous caller learns nothing about the endpoint (tenant_db() checks again).
    - Documents the bearer scheme in OpenAPI (the Authorize dialog on /docs) without a
      dependency, which FastAPI would resolve on every request only to document it (measured:
      ~7% of a GET's instructions). The scheme's component is registered by the routes that
      depend on oauth2_scheme (app/auth/dependencies.py).
    """

    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        extra = dict(kwargs.get("openapi_extra") or {})
        extra["security"] = [*extra.get("security", []), {oauth2_scheme.scheme_name: []}]
        super().__init__(path, endpoint, **{**kwargs, "openapi_extra": extra})

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def authenticated_first(request: Request) -> Response:
            _principal(request)
            return await handler(request)

        return authenticated_first
