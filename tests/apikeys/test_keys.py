"""Service accounts and API keys: issue, use, list, revoke, rotate; what a key cannot do."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update

from app.apikeys.models import ApiKey
from app.apikeys.secrets import KEY_LENGTH, PREFIX, parse_key
from app.users.models import Role
from tests.apikeys.helpers import ACCOUNTS, ITEMS, KEYS, bot_key, issue_key, key_headers, service_account

ITEM = {"name": "widget", "price": "1.50", "stock_quantity": 2}


async def test_a_service_account_key_creates_items_it_owns(client, factory):
    t = await factory.tenant()
    account, key = await bot_key(client, t.owner)
    secret = key["key"]
    assert secret.startswith(PREFIX) and len(secret) == KEY_LENGTH
    parsed = parse_key(secret)
    assert parsed and parsed.tenant_id == t.id and str(parsed.key_id) == key["id"]
    r = await client.post(ITEMS, json=ITEM, headers=key_headers(secret))
    assert r.status_code == 201, r.text
    assert r.json()["owner_id"] == account["id"]
    r = await client.get(f"{ITEMS}/{r.json()['id']}", headers=key_headers(secret))
    assert r.status_code == 200
    me = await client.get("/api/v1/users/me", headers=key_headers(secret))
    assert me.status_code == 200 and me.json()["id"] == account["id"], me.text


async def test_only_the_hash_is_stored_and_list_never_shows_secrets(client, factory):
    t = await factory.tenant()
    _, key = await bot_key(client, t.owner)
    listed = await client.get(KEYS, headers=t.owner.headers)
    assert listed.status_code == 200
    assert key["key"] not in listed.text and all("key" not in k for k in listed.json())
    async with factory.session_for(t.id) as session, session.begin():
        row = (await session.execute(select(ApiKey).where(ApiKey.id == uuid.UUID(key["id"])))).scalar_one()
    assert len(row.secret_hash) == 32 and key["key"].split("_")[-1].encode() not in row.secret_hash


async def test_a_personal_key_acts_as_its_user(client, factory):
    t = await factory.tenant()
    member = await factory.user(t, Role.member)
    key = await issue_key(client, member, ["items:write", "items:read"])
    r = await client.post(ITEMS, json=ITEM, headers=key_headers(key["key"]))
    assert r.status_code == 201 and r.json()["owner_id"] == str(member.id)
    # A member lists only their own keys.
    await bot_key(client, t.owner)
    mine = (await client.get(KEYS, headers=member.headers)).json()
    assert [k["id"] for k in mine] == [key["id"]]


async def test_members_cannot_make_service_accounts_or_keys_for_them(client, factory):
    t = await factory.tenant()
    member = await factory.user(t, Role.member)
    assert (await client.post(ACCOUNTS, json={"name": "x"}, headers=member.headers)).status_code == 403
    account = await service_account(client, t.owner)
    r = await client.post(KEYS, json={"name": "k", "scopes": ["items:read"], "service_account_id": account["id"]},
                          headers=member.headers)
    assert r.status_code == 403


async def test_bad_input_names_the_field(client, factory):
    t = await factory.tenant()
    r = await client.post(KEYS, json={"name": "k", "scopes": ["items:delete"]}, headers=t.owner.headers)
    assert r.status_code == 422 and "scopes" in r.text
    r = await client.post(KEYS, json={"name": "k", "scopes": ["items:read"], "expires_at": "2001-01-01T00:00:00Z"},
                          headers=t.owner.headers)
    assert r.status_code == 422 and "expires_at" in r.text
    r = await client.post(KEYS, json={"name": "k", "scopes": ["items:read"], "service_account_id": str(t.owner.id)},
                          headers=t.owner.headers)
    assert r.status_code == 404  # a human is not a service account


async def test_a_key_cannot_manage_credentials(client, factory):
    t = await factory.tenant()
    _, key = await bot_key(client, t.owner, role="admin")
    for method, path, body in (("POST", KEYS, {"name": "k", "scopes": ["items:read"]}), ("GET", KEYS, None),
                               ("POST", ACCOUNTS, {"name": "x"}), ("GET", ACCOUNTS, None)):
        r = await client.request(method, path, json=body, headers=key_headers(key["key"]))
        assert r.status_code == 403 and r.json()["code"] == "api_key_not_allowed", (method, path, r.text)


async def test_a_service_account_cannot_log_in(client, factory):
    t = await factory.tenant()
    account = await service_account(client, t.owner)
    users = (await client.get("/api/v1/users", headers=t.owner.headers)).json()["items"]
    email = next(u["email"] for u in users if u["id"] == account["id"])
    r = await client.post("/api/v1/auth/token", data={"username": email, "password": "!service-account",
                                                       "client_id": t.slug})
    assert r.status_code in (401, 422), r.text


async def test_malformed_and_unknown_keys_are_the_same_401(client, factory):
    t = await factory.tenant()
    _, key = await bot_key(client, t.owner)
    forged = key["key"][:-4] + "AAAA"
    other_id = key["key"].replace(uuid.UUID(key["id"]).hex, uuid.uuid4().hex)
    bad_jwt = await client.get(ITEMS, headers=key_headers("not.a.jwt"))
    for token in (forged, other_id, PREFIX + "short", key["key"] + "x"):
        r = await client.get(ITEMS, headers=key_headers(token))
        assert r.status_code == 401, token
        assert r.json() == bad_jwt.json() and r.headers["www-authenticate"] == "Bearer"


async def test_last_used_at_is_touched_at_most_once_a_minute(client, factory):
    t = await factory.tenant()
    _, key = await bot_key(client, t.owner)
    kid = uuid.UUID(key["id"])
    assert (await client.get(ITEMS, headers=key_headers(key["key"]))).status_code == 200

    async def last_used():
        async with factory.session_for(t.id) as session, session.begin():
            return (await session.execute(select(ApiKey.last_used_at).where(ApiKey.id == kid))).scalar_one()

    first = await last_used()
    assert first is not None
    assert (await client.get(ITEMS, headers=key_headers(key["key"]))).status_code == 200
    assert await last_used() == first  # within the minute: no write
    async with factory.session_for(t.id) as session, session.begin():
        await session.execute(update(ApiKey).where(ApiKey.id == kid).values(
            last_used_at=ApiKey.last_used_at - __import__("datetime").timedelta(minutes=2)))
    assert (await client.get(ITEMS, headers=key_headers(key["key"]))).status_code == 200
    assert await last_used() > first


async def test_openapi_documents_the_api_key_scheme(app):
    doc = app.openapi()
    scheme = doc["components"]["securitySchemes"]["APIKey"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer" and scheme["bearerFormat"].startswith("tnt_")
    for path, method in (("/api/v1/items/{item_id}", "get"), ("/api/v1/users/me", "get")):
        assert {"APIKey": []} in doc["paths"][path][method]["security"]
    params = doc["paths"]["/api/v1/items"]["post"]["parameters"]
    assert any(p["name"] == "Idempotency-Key" for p in params)


async def test_a_key_never_crosses_tenants(client, factory):
    """A's key with B's tenant id spliced in finds nothing: the lookup is by (tenant, key id)."""
    a, b = await factory.tenant(), await factory.tenant()
    _, key = await bot_key(client, a.owner)
    item = (await client.post(ITEMS, json=ITEM, headers=b.owner.headers)).json()
    spliced = key["key"].replace(a.id.hex, b.id.hex)
    assert (await client.get(f"{ITEMS}/{item['id']}", headers=key_headers(spliced))).status_code == 401
    assert (await client.get(f"{ITEMS}/{item['id']}", headers=key_headers(key["key"]))).status_code == 404
    listed = await client.get(ITEMS, headers=key_headers(key["key"]))
    assert item["id"] not in listed.text
