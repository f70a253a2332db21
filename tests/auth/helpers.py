"""Helpers shared by the auth and users tests: log in through the API, read rows back."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from app.auth.models import LoginAttempt, RefreshToken
from app.users.models import User
from tests.conftest import PLATFORM_KEY
from tests.factories import Factory, UserCtx

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(client: httpx.AsyncClient, slug: str, email: str, password: str) -> httpx.Response:
    return await client.post(LOGIN, json={"tenant": slug, "email": email, "password": password})


async def login_ok(client: httpx.AsyncClient, slug: str, user: UserCtx) -> dict:
    r = await login(client, slug, user.email, user.password)
    assert r.status_code == 200, r.text
    return r.json()


async def refresh(client: httpx.AsyncClient, slug: str, token: str) -> httpx.Response:
    return await client.post(REFRESH, json={"tenant": slug, "refresh_token": token})


async def set_tenant_status(client: httpx.AsyncClient, slug: str, action: str) -> None:
    r = await client.post(f"/api/v1/platform/tenants/{slug}/{action}", headers={"X-Platform-Key": PLATFORM_KEY})
    assert r.status_code == 200, r.text


async def load_user(factory: Factory, tenant_id: uuid.UUID, user_id: uuid.UUID) -> User | None:
    async with factory.session_for(tenant_id) as session, session.begin():
        return await session.get(User, user_id)


async def set_password_hash(factory: Factory, tenant_id: uuid.UUID, user_id: uuid.UUID, password_hash: str) -> None:
    async with factory.session_for(tenant_id) as session, session.begin():
        user = await session.get(User, user_id)
        user.password_hash = password_hash


async def refresh_rows(factory: Factory, tenant_id: uuid.UUID, user_id: uuid.UUID) -> list[RefreshToken]:
    async with factory.session_for(tenant_id) as session, session.begin():
        stmt = select(RefreshToken).where(RefreshToken.user_id == user_id).order_by(RefreshToken.created_at)
        return list((await session.execute(stmt)).scalars())


async def attempt_row(factory: Factory, tenant_id: uuid.UUID, email: str) -> LoginAttempt | None:
    async with factory.session_for(tenant_id) as session, session.begin():
        stmt = select(LoginAttempt).where(LoginAttempt.email == email)
        return (await session.execute(stmt)).scalar_one_or_none()
