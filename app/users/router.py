"""User routes: /users/me for everyone; create, list, read, update, delete for owners and admins."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.auth.client import client_id
from app.auth.dependencies import AdminUser, CurrentUser
from app.auth.router import no_store, respond
from app.auth.schemas import Text, TokenPair
from app.core.openapi import problems
from app.core.routing import require_principal
from app.core.schemas import Page
from app.db.session import SessionDep
from app.idempotency.store import DOC as IDEMPOTENCY_DOC
from app.idempotency.store import Idempotent, json_response, on_session
from app.limits import quotas
from app.users import service as user_service
from app.users.models import Role
from app.users.schemas import MeUpdate, PasswordChange, UserCreate, UserRead, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])


# --- the caller ------------------------------------------------------------------------

@router.get("/me", response_model=UserRead)
async def read_me(user: CurrentUser):
    return user


@router.patch("/me", response_model=UserRead)
async def update_me(data: MeUpdate, user: CurrentUser, session: SessionDep):
    return await user_service.update_me(session, user, data)


@router.post("/me/password", response_model=TokenPair)
async def change_my_password(
    data: PasswordChange, user: CurrentUser, session: SessionDep, request: Request, response: Response
):
    """Change the password: every existing token of the user stops working; a new pair is returned."""
    settings = request.app.state.settings
    no_store(response)
    result = await user_service.change_password(
        session, request.app.state.sessionmaker, settings, client_id(request, settings), user, data
    )
    return respond(result)


# --- tenant admins (owner, admin) ------------------------------------------------------

# Swagger UI's "Try it out" example, valid as sent (the generated one has a too-short password).
CREATE_EXAMPLE = {"requestBody": {"content": {"application/json": {"example": {
    "email": "bob@example.com", "full_name": "Bob", "role": "member", "password": "bob-password-1"}}}}}


@router.post("", response_model=UserRead, status_code=201, responses=problems(403, 409),
             openapi_extra={**CREATE_EXAMPLE, **IDEMPOTENCY_DOC})
async def create_user(data: UserCreate, actor: AdminUser, session: SessionDep, request: Request):
    idem = await Idempotent.of(request, require_principal(request).credential_id)
    if idem and (replayed := await idem.replay(on_session(session, actor.tenant_id))):
        return replayed
    await quotas.reserve(session, actor.tenant_id, "users")
    user = await user_service.create_user(session, request.app.state.settings, actor, data)
    if idem:
        return await idem.store(on_session(session, actor.tenant_id), json_response(UserRead, user, 201))
    return user


@router.get("", response_model=Page[UserRead], responses=problems(403))
async def list_users(
    _actor: AdminUser,
    session: SessionDep,
    role: Role | None = None,
    is_active: bool | None = None,
    q: Annotated[Text | None, Query(max_length=200, description="search email or full name")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
):
    return await user_service.list_users(
        session, role=role, is_active=is_active, q=q, limit=limit, cursor=cursor
    )


@router.get("/{user_id:uuid}", response_model=UserRead, responses=problems(403, 404))
async def read_user(user_id: uuid.UUID, _actor: AdminUser, session: SessionDep):
    return await user_service.get_user(session, user_id)


@router.patch("/{user_id:uuid}", response_model=UserRead, responses=problems(403, 404, 409))
async def update_user(user_id: uuid.UUID, data: UserUpdate, actor: AdminUser, session: SessionDep):
    return await user_service.update_user(session, actor, user_id, data)


@router.delete("/{user_id:uuid}", status_code=204, responses=problems(403, 404, 409))
async def delete_user(user_id: uuid.UUID, actor: AdminUser, session: SessionDep) -> Response:
    await user_service.delete_user(session, actor, user_id)
    return Response(status_code=204)
