"""Tenant isolation for the ORM path: TenantSession (PostgreSQL RLS is the second layer).

The rule itself (what "scoped to the tenant" means) is app/db/tenant_rule.py, shared with the
compiled Core path. A TenantSession is bound to a tenant through `session.info["tenant_id"]`;
three events on the TenantSession class (not on every Session) enforce it:
- after_begin: `set_config('app.tenant_id', <tenant>, true)`, transaction-local, so a pooled
  connection can never carry a tenant into the next transaction; RLS policies read it;
- do_orm_execute: every ORM SELECT/UPDATE/DELETE touching a TenantBase entity gets
  `tenant_id = <tenant>`; with no tenant bound it raises instead (fail closed);
- before_flush: new TenantBase rows get the session's tenant_id; a row naming another tenant,
  or a tenant-owned row in a session without a tenant, is refused.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, event, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.sql import visitors

from app.db.base import TenantBase
from app.db.tenant_rule import TENANT_COLUMN, is_tenant_table, tenant_predicate

TENANT_KEY = TENANT_COLUMN
# Set by a caller whose first statement sets the tenant itself (tenantry_enter(), see
# app/auth/dependencies.py): after_begin then skips its own set_config round trip. If that
# statement never runs, no tenant is set and RLS shows nothing: this fails closed.
TENANT_SET_BY_FIRST_STATEMENT = "tenant_set_by_first_statement"
SET_TENANT_SQL = text("SELECT set_config('app.tenant_id', :tenant, true)")


class TenantContextError(RuntimeError):
    """Tenant-owned data was touched without a tenant, or across tenants. A bug, never input."""


class TenantSession(Session):
    """The ORM session of the app: its events below add the tenant rule to every query."""


def session_tenant(session: Session) -> uuid.UUID | None:
    return session.info.get(TENANT_KEY)


async def bind_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Bind a session to a tenant, also inside an already-open transaction.

    Used by the few platform flows that learn the tenant mid-request (login by slug,
    provisioning). Request sessions are bound before their first statement instead.
    """
    session.info[TENANT_KEY] = tenant_id
    if session.in_transaction():
        await session.execute(SET_TENANT_SQL, {"tenant": str(tenant_id)})


@event.listens_for(TenantSession, "after_begin")
def _set_tenant_setting(session: Session, transaction, connection) -> None:
    if session.info.pop(TENANT_SET_BY_FIRST_STATEMENT, False):
        return
    tenant = session_tenant(session)
    # '' (not a skipped call) when unbound: RLS then matches nothing, whatever came before.
    connection.execute(SET_TENANT_SQL, {"tenant": str(tenant) if tenant else ""})


def _touches_tenant_data(state: ORMExecuteState) -> bool:
    # Cheapest first: the statement's lead entity (memoized), then every mapper involved.
    mapper = state.bind_mapper
    if mapper is not None and issubclass(mapper.class_, TenantBase):
        return True
    if any(issubclass(m.class_, TenantBase) for m in state.all_mappers):
        return True
    # all_mappers misses entities named only in select_from(), joins or subqueries
    # (`select(func.count()).select_from(Item)`): look for tenant tables in the statement itself.
    return any(isinstance(el, Table) and is_tenant_table(el) for el in visitors.iterate(cast(Any, state.statement)))


@event.listens_for(TenantSession, "do_orm_execute")
def _add_tenant_criteria(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    # Relationship and column loads inherit the criteria from the statement that started them.
    if state.is_column_load or state.is_relationship_load:
        return
    if not _touches_tenant_data(state):
        return
    tenant = session_tenant(state.session)
    if tenant is None:
        raise TenantContextError("query on tenant-owned data in a session without a tenant")
    if state.is_from_statement:
        return  # textual SQL: its own WHERE and RLS scope it; criteria cannot be added
    statement: Any = state.statement
    mapper = state.bind_mapper
    if state.is_update and state.is_executemany and mapper is not None and issubclass(mapper.class_, TenantBase):
        # ORM bulk UPDATE by primary key ignores loader criteria: filter it explicitly.
        # SQLAlchemy cannot synchronize the identity map for it then; callers re-load.
        statement = statement.where(tenant_predicate(mapper.class_, tenant))
        state.update_execution_options(synchronize_session=None)
    state.statement = statement.options(_tenant_criteria(tenant))


@lru_cache(maxsize=4096)
def _tenant_criteria(tenant: uuid.UUID):
    """The loader-criteria option for one tenant, built once and reused by its requests.

    Building it analyses the lambda each time (a measurable share of every query); the
    option is immutable, so one per tenant is safe to share.
    """
    return with_loader_criteria(TenantBase, lambda cls: tenant_predicate(cls, tenant), include_aliases=True)


@event.listens_for(TenantSession, "before_flush")
def _stamp_tenant(session: Session, flush_context, instances) -> None:
    tenant = session_tenant(session)
    for obj in session.new:
        if not isinstance(obj, TenantBase):
            continue
        if tenant is None:
            raise TenantContextError(f"new {type(obj).__name__} in a session without a tenant")
        if obj.tenant_id is None:
            obj.tenant_id = tenant
        elif obj.tenant_id != tenant:
            raise TenantContextError(f"new {type(obj).__name__} names another tenant")
    for obj in session.dirty:
        if isinstance(obj, TenantBase) and obj.tenant_id != tenant:
            raise TenantContextError(f"{type(obj).__name__} moved to another tenant")
