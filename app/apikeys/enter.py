"""The API-key enter statement (both data paths) and the scope rule.

tenantry_enter_key() (migration 0014) replaces tenantry_enter() as the first statement of a
key-authenticated request: one round trip, as for a token.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from fastapi import Request
from sqlalchemy import ARRAY, Text, column, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Forbidden, Unauthorized
from app.core.security import Principal

if TYPE_CHECKING:
    from app.users.models import User

# TenantDB path: what a Caller needs.
ENTER_KEY = (
    "SELECT (e.u).id AS id, (e.u).role AS role, (e.u).kind AS kind, e.scopes AS scopes "
    "FROM tenantry_enter_key($1, $2, $3) AS e"
)
# ORM path: the whole user row (mapped to User) and the key's scopes.
ENTER_KEY_SQL = text("SELECT (e.u).*, e.scopes AS key_scopes FROM tenantry_enter_key(:tenant, :key_id, :key_digest) AS e")


def check_scopes(granted: frozenset[str] | None, needed: Collection[str]) -> None:
    """403 naming the first scope an API key lacks. `granted` None = a token (role rules only)."""
    if granted is None:
        return
    if not needed:
        raise Forbidden("API keys cannot use this route; sign in as a user", code="api_key_not_allowed")
    for scope in needed:
        if scope not in granted:
            raise Forbidden(f"this API key lacks the scope {scope}", code="missing_scope")


# The ORM routes keys may use, by the first path segment under /api/v1: read for GET/HEAD,
# write otherwise. Anything else (credentials management, password change) refuses keys.
_ORM_RESOURCES = ("users", "tenant")
_KEYLESS_PATHS = frozenset({"/api/v1/users/me/password"})


def route_scopes(request: Request) -> tuple[str, ...]:
    # The request path, not the route's: included routers keep their routes unprefixed.
    path = request.scope["path"]
    if path in _KEYLESS_PATHS or not path.startswith("/api/v1/"):
        return ()
    resource = path[len("/api/v1/"):].split("/", 1)[0]
    if resource not in _ORM_RESOURCES:
        return ()
    return (f"{resource}:{'read' if request.method in ('GET', 'HEAD') else 'write'}",)


async def enter_with_key(session: AsyncSession, principal: Principal, needed: Collection[str]) -> User:
    """The ORM path's first statement for a key: the user row, only if the key checks out."""
    from app.users.models import User

    row = (
        await session.execute(
            select(User, column("key_scopes", ARRAY(Text))).from_statement(ENTER_KEY_SQL),
            {"tenant": principal.tenant_id, "key_id": principal.key_id, "key_digest": principal.key_digest},
        )
    ).first()
    if row is None:
        raise Unauthorized("invalid or expired token")
    user, scopes = row
    check_scopes(frozenset(scopes), needed)
    return user
