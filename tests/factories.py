"""Factories that build tenants, users and tokens through the app's own code (no overrides).

Tokens are signed with app.core.security.create_access_token, exactly as login does, so the
middleware, CurrentUser and RLS all run for real in every test.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.security import create_access_token, hash_password
from app.db.tenancy import TENANT_KEY
from app.tenants import service as tenant_service
from app.tenants.schemas import TenantCreate
from app.users.models import Role, User

DEFAULT_PASSWORD = "correct-horse-battery"


@dataclass
class UserCtx:
    id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    password: str
    role: Role
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class TenantCtx:
    id: uuid.UUID
    slug: str
    name: str
    owner: UserCtx
    users: list[UserCtx] = field(default_factory=list)


def unique_slug(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Factory:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings):
        self.sessionmaker = sessionmaker
        self.settings = settings

    def token_for(self, user_id: uuid.UUID, tenant_id: uuid.UUID, role: Role | str, token_version: int = 0) -> str:
        return create_access_token(
            self.settings, user_id=user_id, tenant_id=tenant_id, role=str(role), token_version=token_version
        )

    async def tenant(self, slug: str | None = None, *, name: str = "Test Co", email: str = "owner@example.com",
                     password: str = DEFAULT_PASSWORD) -> TenantCtx:
        slug = slug or unique_slug()
        async with self.sessionmaker() as session, session.begin():
            result = await tenant_service.create_tenant(
                session, self.settings, TenantCreate(name=name, slug=slug, admin_email=email, admin_password=password)
            )
        owner = UserCtx(
            id=result.admin_user_id, tenant_id=result.tenant_id, email=email.lower(), password=password,
            role=Role.owner, token=self.token_for(result.admin_user_id, result.tenant_id, Role.owner),
        )
        return TenantCtx(id=result.tenant_id, slug=slug, name=name, owner=owner, users=[owner])

    async def user(self, tenant: TenantCtx, role: Role = Role.member, *, email: str | None = None,
                   password: str = DEFAULT_PASSWORD, full_name: str = "Test User", is_active: bool = True) -> UserCtx:
        email = (email or f"{role.value}-{uuid.uuid4().hex[:8]}@example.com").lower()
        password_hash = await hash_password(password, self.settings.bcrypt_rounds)
        async with self.sessionmaker() as session:
            session.info[TENANT_KEY] = tenant.id
            async with session.begin():
                user = User(email=email, full_name=full_name, role=role, password_hash=password_hash,
                            is_active=is_active)
                session.add(user)
                await session.flush()
                user_id = user.id
        ctx = UserCtx(id=user_id, tenant_id=tenant.id, email=email, password=password, role=role,
                      token=self.token_for(user_id, tenant.id, role))
        tenant.users.append(ctx)
        return ctx

    def session_for(self, tenant_id: uuid.UUID | None) -> AsyncSession:
        """A session bound to a tenant (or to none), as a request would get."""
        session = self.sessionmaker()
        session.info[TENANT_KEY] = tenant_id
        return session
