"""TenantDB: the lean data path of the hot endpoints — compiled statements on the driver, in one
tenant transaction.

The ORM session (app/db/session.py) costs about 1 ms of Python per request, three times what
the whole request costs without it (see README, Performance). Items and tags use this
instead, with the same two layers of isolation:
- layer 1, the application: every statement is a Core expression checked structurally and
  compiled once by `tenant_statement` (app/db/statements.py); TenantDB fills its `tenant`
  parameter from the caller itself, so a query cannot be given another tenant;
- layer 2, PostgreSQL: the transaction's first statement is `tenantry_enter(tenant, user)`
  (migration 0002), which sets the transaction-local `app.tenant_id` that RLS reads, and
  returns the caller only if the user and the tenant are active (authentication and tenant
  binding in one round trip).
One pooled connection (the engine's pool: same size, same 503 when it is exhausted), one
transaction, committed once when the endpoint's `async with tenant_db(...)` block ends,
rolled back on any error.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from app.apikeys.enter import ENTER_KEY, check_scopes
from app.core.errors import Forbidden, Unauthorized
from app.core.security import Principal
from app.db import faults
from app.db.statements import TenantStatement
from app.db.tenant_rule import TENANT_PARAM
from app.users.models import Role

# The first statement of every request transaction, on both paths (the ORM one maps it to User).
ENTER_SQL = text(f"SELECT * FROM tenantry_enter(:{TENANT_PARAM}, :user_id)")
_ENTER = ENTER_SQL.compile(dialect=PGDialect_asyncpg()).string

log = logging.getLogger("tenantry.tenant_db")


def caller_is_current(is_active: bool, token_version: int, principal: Principal) -> bool:
    """The token still speaks for the user tenantry_enter returned: active, and its version not
    superseded (a changed password, a deactivation or a role change bumps it)."""
    return is_active and token_version == principal.token_version


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated user, as the database confirmed it at the start of this request."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    role: Role
    # An API key's scopes; None for a token (its role alone decides).
    scopes: frozenset[str] | None = None
    # The API key the request came with, and whether its user is a service account (the audit
    # log's actor).
    key_id: uuid.UUID | None = None
    service: bool = False


class TenantDB:
    """One request's tenant-bound transaction; every statement runs with `tenant` = the caller's."""

    __slots__ = ("_conn", "caller")

    def __init__(self, conn: asyncpg.Connection, caller: Caller) -> None:
        self._conn = conn
        self.caller = caller

    async def fetch(self, statement: TenantStatement, **values: Any) -> list[asyncpg.Record]:
        return await self._conn.fetch(statement.sql, *statement.args(self.caller.tenant_id, values))

    async def fetchrow(self, statement: TenantStatement, **values: Any) -> asyncpg.Record | None:
        return await self._conn.fetchrow(statement.sql, *statement.args(self.caller.tenant_id, values))

    async def fetchval(self, statement: TenantStatement, **values: Any) -> Any:
        return await self._conn.fetchval(statement.sql, *statement.args(self.caller.tenant_id, values))

    async def execute(self, statement: TenantStatement, **values: Any) -> int:
        """Run a write; the number of rows it touched."""
        status = await self._conn.execute(statement.sql, *statement.args(self.caller.tenant_id, values))
        return int(status.rsplit(" ", 1)[-1]) if status[-1:].isdigit() else 0


@asynccontextmanager
async def tenant_db(
    engine: AsyncEngine, principal: Principal, *, roles: Collection[Role] = (), scopes: Collection[str] = ()
) -> AsyncIterator[TenantDB]:
    """The request's tenant transaction: `async with tenant_db(engine, principal) as db:`.

    Committed when the block ends without an error (before the response is sent, so a failing
    commit becomes the response), rolled back otherwise. `roles`: 403 unless the caller has one.
    `scopes`: what an API key needs for this route (403 naming the missing one; a route that
    names none refuses keys). Token callers are bound by their role alone.
    A context manager rather than a dependency: FastAPI's machinery for a yield-dependency costs
    ~12% of a GET's instructions, and opening the transaction inside the endpoint also means a
    request that fails validation never touches the database.
    """
    # The pool hands out the asyncpg connection itself. SQLAlchemy never starts a transaction
    # on it, so checking it back in costs no round trip (its reset-on-return has nothing to do).
    # --- ops (issue 13): checkout and BEGIN faults surface as DatabaseUnavailable (503) -----
    try:
        pooled = await engine.raw_connection()
    except Exception as exc:  # SQLAlchemy does not wrap raw_connection()'s errors
        raise faults.unavailable(exc) from exc
    # --- end ops -----------------------------------------------------------------------------
    conn: asyncpg.Connection = pooled.driver_connection
    transaction = conn.transaction()
    try:
        await transaction.start()
        caller = await _enter(conn, principal)
        if roles and caller.role not in roles:
            raise Forbidden("your role does not allow this")
        check_scopes(caller.scopes, scopes)
        yield TenantDB(conn, caller)
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


async def _enter(conn: asyncpg.Connection, principal: Principal) -> Caller:
    """The transaction's first statement: tenantry_enter, or tenantry_enter_key for an API key."""
    if principal.kind == "key":
        row = await conn.fetchrow(ENTER_KEY, principal.tenant_id, principal.key_id, principal.key_digest)
        if row is None:
            raise Unauthorized("invalid or expired token")
        return Caller(row["id"], principal.tenant_id, Role(row["role"]), frozenset(row["scopes"]),
                      key_id=principal.key_id, service=row["kind"] == "service")
    row = await conn.fetchrow(_ENTER, principal.tenant_id, principal.user_id)
    if row is None or not caller_is_current(row["is_active"], row["token_version"], principal):
        raise Unauthorized("invalid or expired token")
    return Caller(row["id"], principal.tenant_id, Role(row["role"]))


async def _abandon(conn: asyncpg.Connection, transaction, pooled) -> None:
    """Roll back; a connection that cannot be rolled back is never handed out again."""
    if not conn.is_closed():
        try:
            await transaction.rollback()
            return
        except Exception:
            pass
    await greenlet_spawn(pooled.invalidate)
