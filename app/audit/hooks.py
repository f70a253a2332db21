"""The auth flow's audit events, one call each, so app/auth/service.py changes by one line a site.

Login failures and refresh-token reuse are answered with a *returned* 401 (the service keeps
their writes), so their events commit with the failure counter and the revocation.
"""

from __future__ import annotations

import typing
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.context import Actor
from app.audit.service import record


def login_succeeded(session: AsyncSession, user: Any) -> None:
    record(session, Actor.user(user), "auth.login_succeeded", "user", user.id)


def refresh_reused(session: AsyncSession, user_id: uuid.UUID, family_id: uuid.UUID) -> None:
    """A spent refresh token came back: its family was revoked (theft suspected)."""
    record(session, Actor.anonymous(), "auth.refresh_reused", "user", user_id, {"family_id": str(family_id)})


def login_attempt_event(
    tenant_id: uuid.UUID, email: str, action: str, user_id: uuid.UUID | None = None, reason: str | None = None
) -> Any:
    """A failed or throttled login's event, written only if `tenant_id` names a tenant.

    An INSERT ... SELECT ... WHERE EXISTS: a login to an unknown tenant sends the very same
    statement and writes nothing, so the two cannot be told apart by what reaches the
    database (issue #12: unknown tenants are indistinguishable).
    """
    from sqlalchemy import Table, exists, literal, select

    from app.audit.context import request_info
    from app.audit.models import AuditEvent, uuid7
    from app.audit.service import _row
    from app.tenants.models import Tenant

    details = {"email": email, **({"reason": reason} if reason else {})}
    row = {"tenant_id": tenant_id, "id": uuid7(),
           **_row(Actor.anonymous(email), action, "user" if user_id else None, user_id, details, request_info())}
    table = typing.cast(Table, AuditEvent.__table__)
    values = [literal(value, type_=table.c[name].type).label(name) for name, value in row.items()]
    return table.insert().from_select(
        list(row), select(*values).where(exists().where(Tenant.id == tenant_id))
    )
