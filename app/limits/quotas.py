"""Quotas: a tenant's plan limits, enforced atomically when something is created.

The creating transaction locks the tenant's quota row (tenant_quotas, only when that limit is
set), then counts. Creations of
one tenant are serialized only while a limit is set; under READ COMMITTED each statement
sees what committed before it, so the count after the lock includes every earlier creation
and the limit is never overshot. No quota row or a NULL limit: no extra work beyond the lock
statement. Both data paths: the ORM session (users, service accounts, keys) and TenantDB
(items, through compiled statements).
"""

from __future__ import annotations

import typing
import uuid

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.apikeys.models import ApiKey
from app.core.errors import AppError
from app.db.statements import tenant_statement
from app.db.tenant_db import TenantDB
from app.db.tenant_rule import TENANT
from app.items.models import Item
from app.limits.models import TenantQuota
from app.users.models import User, UserKind

RESOURCES = ("users", "service_accounts", "api_keys", "items")


class QuotaExceeded(AppError):
    status_code, code = 403, "quota_exceeded"


def _count(resource: str):
    """What counts against a quota: human users, service accounts, live keys, items."""
    if resource == "users":
        return select(func.count()).select_from(User).where(User.kind == UserKind.human)
    if resource == "service_accounts":
        return select(func.count()).select_from(User).where(User.kind == UserKind.service)
    if resource == "api_keys":
        return select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))
    return select(func.count()).select_from(Item)


def _limit_column(resource: str):
    return getattr(TenantQuota, f"max_{resource}")


async def reserve(session: AsyncSession, tenant_id: uuid.UUID, resource: str, n: int = 1) -> None:
    """403 quota_exceeded unless `n` more of `resource` fit the tenant's quota (ORM path).

    `key_share=True` renders FOR NO KEY UPDATE (the row is never referenced by a foreign key).
    """
    limit = (
        await session.execute(
            select(_limit_column(resource)).where(TenantQuota.tenant_id == tenant_id, _limit_column(resource).is_not(None))
            .with_for_update(key_share=True)
        )
    ).scalar_one_or_none()
    if limit is None:
        return
    used = (await session.execute(_count(resource))).scalar_one()
    _check(resource, used, n, limit)


def _check(resource: str, used: int, n: int, limit: int) -> None:
    if used + n > limit:
        raise QuotaExceeded(
            {"message": f"the tenant's quota of {limit} {resource} would be exceeded", "resource": resource,
             "limit": limit, "used": used, "requested": n},
            code="quota_exceeded",
        )


# --- the TenantDB path (items) -------------------------------------------------------------

_quotas = typing.cast(Table, TenantQuota.__table__)
_items = typing.cast(Table, Item.__table__)
LOCK_ITEMS_LIMIT = tenant_statement(
    select(_quotas.c.max_items).where(_quotas.c.tenant_id == TENANT, _quotas.c.max_items.is_not(None)).with_for_update(key_share=True), "lock_items_limit"
)
COUNT_ITEMS = tenant_statement(
    select(func.count()).select_from(_items).where(_items.c.tenant_id == TENANT), "count_items"
)


async def reserve_items(db: TenantDB, n: int) -> None:
    limit = await db.fetchval(LOCK_ITEMS_LIMIT)
    if limit is None:
        return
    _check("items", await db.fetchval(COUNT_ITEMS), n, limit)


async def usage(session: AsyncSession, tenant_id: uuid.UUID) -> dict[str, dict[str, int | None]]:
    """Current counts and limits of every quota (GET /tenant/usage)."""
    plan = await session.get(TenantQuota, tenant_id)
    result: dict[str, dict[str, int | None]] = {}
    for resource in RESOURCES:
        used = (await session.execute(_count(resource))).scalar_one()
        result[resource] = {"used": used, "limit": getattr(plan, f"max_{resource}") if plan else None}
    return result
