"""Every route a key may use needs its scope (403 naming it); the others refuse keys."""

from __future__ import annotations

import uuid

import pytest

from tests.apikeys.helpers import ALL_SCOPES, bot_key, key_headers

Z = str(uuid.UUID(int=1))
# (method, path, body, the scope it needs). Ids that do not exist: a 404 still proves the
# scope check passed (it runs first, in the request's first statement).
ROUTES = [
    ("GET", "/api/v1/items", None, "items:read"),
    ("GET", f"/api/v1/items/{Z}", None, "items:read"),
    ("POST", "/api/v1/items", {"name": "n", "price": "1.00", "stock_quantity": 1}, "items:write"),
    ("POST", "/api/v1/items/bulk", {"items": [{"name": "n2", "price": "1.00", "stock_quantity": 1}]}, "items:write"),
    ("PATCH", f"/api/v1/items/{Z}", {"name": "x"}, "items:write"),
    ("DELETE", f"/api/v1/items/{Z}", None, "items:write"),
    ("POST", f"/api/v1/items/{Z}/transfer", {"owner_id": Z}, "items:write"),
    ("GET", "/api/v1/tags", None, "tags:read"),
    ("POST", "/api/v1/tags", {"name": "t"}, "tags:write"),
    ("DELETE", f"/api/v1/tags/{Z}", None, "tags:write"),
    ("GET", "/api/v1/users/me", None, "users:read"),
    ("PATCH", "/api/v1/users/me", {"full_name": "Bot"}, "users:write"),
    ("GET", "/api/v1/users", None, "users:read"),
    ("GET", f"/api/v1/users/{Z}", None, "users:read"),
    ("POST", "/api/v1/users", {"email": "x@example.com", "password": "long-enough-pw"}, "users:write"),
    ("PATCH", f"/api/v1/users/{Z}", {"full_name": "x"}, "users:write"),
    ("DELETE", f"/api/v1/users/{Z}", None, "users:write"),
    ("GET", "/api/v1/tenant", None, "tenant:read"),
    ("GET", "/api/v1/tenant/usage", None, "tenant:read"),
]
KEYLESS = [
    ("POST", "/api/v1/users/me/password", {"current_password": "a" * 8, "new_password": "b" * 10}),
    ("POST", "/api/v1/api-keys", {"name": "k", "scopes": ["items:read"]}),
    ("GET", "/api/v1/api-keys", None),
    ("POST", f"/api/v1/api-keys/{Z}/revoke", None),
    ("POST", f"/api/v1/api-keys/{Z}/rotate", None),
    ("POST", "/api/v1/service-accounts", {"name": "x"}),
    ("GET", "/api/v1/service-accounts", None),
]


@pytest.fixture(scope="module")
def keys_by_scope():
    return {}


async def _keys(client, factory, cache):
    if not cache:
        t = await factory.tenant()
        cache["all"] = (await bot_key(client, t.owner, ALL_SCOPES, role="admin"))[1]["key"]
        for scope in ALL_SCOPES:
            cache[scope] = (await bot_key(client, t.owner, [s for s in ALL_SCOPES if s != scope], role="admin"))[1]["key"]
    return cache


@pytest.mark.parametrize(("method", "path", "body", "scope"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
async def test_route_needs_its_scope(method, path, body, scope, client, factory, keys_by_scope):
    keys = await _keys(client, factory, keys_by_scope)
    r = await client.request(method, path, json=body, headers=key_headers(keys[scope]))
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "missing_scope" and scope in r.json()["detail"]
    allowed = await client.request(method, path, json=body, headers=key_headers(keys["all"]))
    assert allowed.status_code != 403 and allowed.status_code < 500, allowed.text


@pytest.mark.parametrize(("method", "path", "body"), KEYLESS, ids=[f"{m} {p}" for m, p, _ in KEYLESS])
async def test_credential_routes_refuse_keys(method, path, body, client, factory, keys_by_scope):
    keys = await _keys(client, factory, keys_by_scope)
    r = await client.request(method, path, json=body, headers=key_headers(keys["all"]))
    assert r.status_code == 403 and r.json()["code"] == "api_key_not_allowed", r.text
