"""CurrentUser and role checks: who is calling, verified against the database every request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select

from app.apikeys.enter import enter_with_key, route_scopes
from app.core.errors import Forbidden, Unauthorized
from app.core.routing import require_principal
from app.core.security import Principal, api_key_scheme, oauth2_scheme
from app.db.session import SessionDep
from app.db.tenancy import TENANT_SET_BY_FIRST_STATEMENT
from app.db.tenant_db import ENTER_SQL, caller_is_current
from app.users.models import Role, User


async def get_principal(
    request: Request,
    _token: Annotated[str | None, Depends(oauth2_scheme)],
    _key: Annotated[object, Depends(api_key_scheme)],  # documents the API-key scheme in OpenAPI
) -> Principal:
    return require_principal(request)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_current_user(principal: PrincipalDep, session: SessionDep, request: Request) -> User:
    """Load the caller in the request's transaction; a token outlives nothing it names.

    A deactivated user, a suspended or deleted tenant, a changed password (token_version)
    or a deleted user all make a still-unexpired token fail here, at once.
    """
    # One round trip sets the tenant for this transaction and loads the user, only if the
    # tenant is active (tenantry_enter, migration 0002); RLS applies to it as to any query.
    session.info[TENANT_SET_BY_FIRST_STATEMENT] = not session.in_transaction()
    if principal.kind == "key":  # tenantry_enter_key instead (migration 0014), same round trip
        return await enter_with_key(session, principal, route_scopes(request))
    user = (
        await session.execute(
            select(User).from_statement(ENTER_SQL),
            {"tenant": principal.tenant_id, "user_id": principal.user_id},
        )
    ).scalar_one_or_none()
    if user is None or not caller_is_current(user.is_active, user.token_version, principal):
        raise Unauthorized("invalid or expired token")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_role(*roles: Role):
    async def check(user: CurrentUser) -> User:
        if user.role not in roles:
            raise Forbidden("your role does not allow this")
        return user

    return check


AdminUser = Annotated[User, Depends(require_role(Role.owner, Role.admin))]
