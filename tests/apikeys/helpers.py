"""API-key test helpers: service accounts and keys made through the public API."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import UserCtx

ACCOUNTS = "/api/v1/service-accounts"
KEYS = "/api/v1/api-keys"
ITEMS = "/api/v1/items"
ALL_SCOPES = ["items:read", "items:write", "tags:read", "tags:write", "users:read", "users:write", "tenant:read"]


def key_headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def service_account(client: httpx.AsyncClient, admin: UserCtx, role: str = "member", name: str = "ci-bot") -> dict:
    r = await client.post(ACCOUNTS, json={"name": name, "role": role}, headers=admin.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def issue_key(client: httpx.AsyncClient, actor: UserCtx, scopes: list[str] | None = None,
                    account: dict | None = None, **extra: Any) -> dict:
    body: dict[str, Any] = {"name": "key", "scopes": scopes or ALL_SCOPES, **extra}
    if account is not None:
        body["service_account_id"] = account["id"]
    r = await client.post(KEYS, json=body, headers=actor.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def bot_key(client: httpx.AsyncClient, admin: UserCtx, scopes: list[str] | None = None,
                  role: str = "member") -> tuple[dict, dict]:
    account = await service_account(client, admin, role=role)
    return account, await issue_key(client, admin, scopes, account)
