"""Items-test helpers: a tenant with one user per role, and short API helpers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.users.models import Role
from tests.factories import Factory, TenantCtx, UserCtx

ITEMS = "/api/v1/items"
TAGS = "/api/v1/tags"


@dataclass
class Crew:
    """A tenant with an owner, an admin and two members."""

    tenant: TenantCtx
    owner: UserCtx
    admin: UserCtx
    member: UserCtx
    other_member: UserCtx

    def by_role(self, role: str) -> UserCtx:
        return {"owner": self.owner, "admin": self.admin, "member": self.member}[role]


async def make_crew(factory: Factory) -> Crew:
    tenant = await factory.tenant()
    return Crew(
        tenant=tenant,
        owner=tenant.owner,
        admin=await factory.user(tenant, Role.admin),
        member=await factory.user(tenant, Role.member),
        other_member=await factory.user(tenant, Role.member),
    )


@pytest.fixture
async def crew(factory: Factory) -> Crew:
    return await make_crew(factory)


@pytest.fixture
async def other_crew(factory: Factory) -> Crew:
    """A second tenant, for cross-tenant checks."""
    return await make_crew(factory)


def unique_name(prefix: str = "item") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def create_item(client: httpx.AsyncClient, user: UserCtx, **fields: Any) -> dict[str, Any]:
    body = {"name": unique_name(), "price": "10.00", "stock_quantity": 1} | fields
    r = await client.post(ITEMS, json=body, headers=user.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def create_tag(client: httpx.AsyncClient, user: UserCtx, name: str | None = None) -> dict[str, Any]:
    r = await client.post(TAGS, json={"name": name or unique_name("tag")}, headers=user.headers)
    assert r.status_code == 201, r.text
    return r.json()


def with_if_match(user: UserCtx, version: int | str) -> dict[str, str]:
    return user.headers | {"If-Match": f'"{version}"'}


async def list_all(client: httpx.AsyncClient, user: UserCtx, **params: Any) -> list[dict[str, Any]]:
    """Every page of GET /items, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        r = await client.get(ITEMS, params=query, headers=user.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
