"""The auth flow's audit events, one call each, so app/auth/service.py changes by one line a site.

Login failures and refresh-token reuse are answered with a *returned* 401 (the service keeps
their writes), so their events commit with the failure counter and the revocation.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.context import Actor
from app.audit.service import record
from app.core.errors import AppError


def login_succeeded(session: AsyncSession, user: Any) -> None:
    record(session, Actor.user(user), "auth.login_succeeded", "user", user.id)


def login_failed(session: AsyncSession, email: str, user: Any, tenant: Any, *, password_ok: bool) -> None:
    """Why it failed is for auditors only (the caller always gets the same 401)."""
    if user is None:
        reason = "unknown_email"
    elif not password_ok:
        reason = "wrong_password"
    elif not user.is_active:
        reason = "user_inactive"
    else:
        reason = f"tenant_{tenant.status.value}"
    record(session, Actor.anonymous(email), "auth.login_failed", "user" if user else None,
           user.id if user else None, {"email": email, "reason": reason})


def login_throttled(session: AsyncSession, email: str, error: AppError) -> AppError:
    record(session, Actor.anonymous(email), "auth.login_throttled", None, None, {"email": email})
    return error


def refresh_reused(session: AsyncSession, user_id: uuid.UUID, family_id: uuid.UUID) -> None:
    """A spent refresh token came back: its family was revoked (theft suspected)."""
    record(session, Actor.anonymous(), "auth.refresh_reused", "user", user_id, {"family_id": str(family_id)})
