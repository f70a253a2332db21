"""User routes: /users/me for everyone; create, list, read, update, delete for owners and admins."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.auth.dependencies import AdminUser, CurrentUser
from app.auth.client import client_id
from app.auth.router import no_store, respond
from app.auth.schemas import Text, TokenPair
from app.core.schemas import Page
from app.db.session import SessionDep
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

@router.post("", response_model=UserRead, status_code=201)
async def create_user(data: UserCreate, actor: AdminUser, session: SessionDep, request: Request):
    return await user_service.create_user(session, request.app.state.settings, actor, data)


@router.get("", response_model=Page[UserRead])
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


@router.get("/{user_id}", response_model=UserRead)
async def read_user(user_id: uuid.UUID, _actor: AdminUser, session: SessionDep):
    return await user_service.get_user(session, user_id)


@router.patch("/{user_id}", response_model=UserRead)
async def update_user(user_id: uuid.UUID, data: UserUpdate, actor: AdminUser, session: SessionDep):
    return await user_service.update_user(session, actor, user_id, data)


@router.delete("/{user_id}", status_code=204)
async def delete_user(user_id: uuid.UUID, actor: AdminUser, session: SessionDep) -> Response:
    await user_service.delete_user(session, actor, user_id)
    return Response(status_code=204)
