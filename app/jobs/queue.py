"""Deferring jobs inside the caller's transaction, and running job work in a tenant's transaction.

procrastinate's own `defer_async` uses its own connection, so a job deferred that way could
exist for a change that then rolled back (or be missing for one that committed). Here the job
row is inserted by procrastinate's SQL function on the *same* connection and transaction as the
change (the request's ORM session): both commit or neither does.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text, cast, func, select
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP, array
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.types import UserDefinedType

from app.db.tenancy import TENANT_KEY

DEFAULT_QUEUE = "default"
# Task names, as registered in app/jobs/tasks.py.
DELIVER_MESSAGE = "tenantry.deliver_message"
PASSWORD_RESET_REQUESTED = "tenantry.password_reset_requested"
PRUNE = "tenantry.prune_expired"
AUDIT_PRUNE = "tenantry.prune_audit"


class _JobToDefer(UserDefinedType):
    """procrastinate's composite type for one job (schema.sql: procrastinate_job_to_defer_v1)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "procrastinate_job_to_defer_v1"


def _job(task: str, args: dict[str, Any], *, lock: str | None, queueing_lock: str | None,
         scheduled_at: datetime | None, queue: str):
    fields = (
        cast(queue, String), cast(task, String), cast(0, Integer), cast(lock, Text), cast(queueing_lock, Text),
        cast(args, JSONB), cast(scheduled_at, TIMESTAMP(timezone=True)),
    )
    return cast(func.row(*fields), _JobToDefer())


async def defer(
    session: AsyncSession,
    task: str,
    args: dict[str, Any],
    *,
    lock: str | None = None,
    queueing_lock: str | None = None,
    scheduled_at: datetime | None = None,
    queue: str = DEFAULT_QUEUE,
) -> int:
    """Insert a job in the session's transaction; returns its id. Args must be JSON values."""
    row = _job(task, args, lock=lock, queueing_lock=queueing_lock, scheduled_at=scheduled_at, queue=queue)
    ids = (await session.execute(select(func.procrastinate_defer_jobs_v1(array([row]))))).scalar_one()
    return ids[0]


def tenant_args(tenant_id: uuid.UUID, **args: Any) -> dict[str, Any]:
    """Every tenant job names its tenant first; the worker runs it bound to that tenant."""
    return {"tenant_id": str(tenant_id), **{k: str(v) if isinstance(v, uuid.UUID) else v for k, v in args.items()}}


@asynccontextmanager
async def tenant_transaction(
    sessionmaker: async_sessionmaker[AsyncSession], tenant_id: str | uuid.UUID | None
) -> AsyncIterator[AsyncSession]:
    """One transaction bound to the job's tenant, exactly like a request's (events + RLS).

    No tenant (or an unparsable one) binds nothing: ORM queries on tenant data raise and RLS
    shows no rows. Committed when the block ends, rolled back if it raises.
    """
    bound = _tenant_uuid(tenant_id)
    async with sessionmaker() as session:
        session.info[TENANT_KEY] = bound
        async with session.begin():
            yield session


def _tenant_uuid(value: str | uuid.UUID | None) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None
