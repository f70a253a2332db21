"""Tenant admins manage users: create, list (filters, search, cursor), read, update, delete."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest

from app.items.models import Item
from app.users.models import Role
from tests.auth.helpers import ME, bearer, load_user, login, login_ok, refresh

USERS = "/api/v1/users"


def new_user(**overrides) -> dict:
    body = {"email": f"new-{uuid.uuid4().hex[:8]}@example.com", "full_name": "New Person",
            "role": "member", "password": "a-good-password"}
    body.update(overrides)
    return body


# --- create ----------------------------------------------------------------------------

@pytest.mark.parametrize("actor_role", [Role.owner, Role.admin])
async def test_admins_create_users_who_can_log_in(actor_role, client, factory):
    t = await factory.tenant()
    actor = t.owner if actor_role is Role.owner else await factory.user(t, Role.admin)
    body = new_user(email="Fresh.Person@Example.COM", role="admin")
    r = await client.post(USERS, json=body, headers=actor.headers)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["email"] == "fresh.person@example.com" and created["role"] == "admin"
    assert created["tenant_id"] == str(t.id) and created["is_active"] is True
    assert "password" not in r.text and "$2b$" not in r.text
    assert (await login(client, t.slug, "fresh.person@example.com", body["password"])).status_code == 200


async def test_member_is_the_default_role(client, factory):
    t = await factory.tenant()
    body = new_user()
    del body["role"], body["full_name"]
    r = await client.post(USERS, json=body, headers=t.owner.headers)
    assert r.status_code == 201, r.text
    assert r.json()["role"] == "member" and r.json()["full_name"] == ""


@pytest.mark.parametrize("email", ["dup@example.com", "DUP@Example.com"])
async def test_duplicate_email_in_the_tenant_is_409(email, client, factory):
    t = await factory.tenant()
    assert (await client.post(USERS, json=new_user(email="dup@example.com"), headers=t.owner.headers)).status_code == 201
    r = await client.post(USERS, json=new_user(email=email), headers=t.owner.headers)
    assert r.status_code == 409, r.text
    assert r.json()["errors"][0]["loc"][-1] == "email"


async def test_same_email_in_another_tenant_is_fine(client, factory):
    a, b = await factory.tenant(), await factory.tenant()
    assert (await client.post(USERS, json=new_user(email="x@example.com"), headers=a.owner.headers)).status_code == 201
    assert (await client.post(USERS, json=new_user(email="x@example.com"), headers=b.owner.headers)).status_code == 201


@pytest.mark.parametrize(
    "override, field, message",
    [
        ({"password": "short"}, "password", "must be at least 8 characters"),
        ({"password": "x" * 73}, "password", "password must be at most 72 bytes in UTF-8"),
        ({"password": "€" * 25}, "password", "password must be at most 72 bytes in UTF-8"),  # 75 bytes
        ({"email": "not-an-email"}, "email", None),
        ({"role": "superuser"}, "role", None),
        ({"full_name": "x" * 201}, "full_name", None),
        ({"full_name": "nul\x00"}, "full_name", "Value error, must not contain NUL characters"),
        ({"password": "nul\x00-in-password"}, "password", "Value error, must not contain NUL characters"),
        ({"tenant_id": str(uuid.uuid4())}, "tenant_id", None),
    ],
)
async def test_create_user_422_names_the_field(override, field, message, client, factory):
    t = await factory.tenant()
    r = await client.post(USERS, json=new_user(**override), headers=t.owner.headers)
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert ["body", field] in [e["loc"] for e in errors]
    if message:
        assert errors[0]["msg"] == message


async def test_lone_surrogate_password_is_422(client, factory):
    t = await factory.tenant()
    text = json.dumps(new_user(password="PW")).replace('"PW"', '"\\ud800-long-enough"')
    r = await client.post(USERS, content=text, headers={**t.owner.headers, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["body", "password"]


async def test_only_an_owner_grants_owner(client, factory):
    t = await factory.tenant()
    admin = await factory.user(t, Role.admin)
    r = await client.post(USERS, json=new_user(role="owner"), headers=admin.headers)
    assert r.status_code == 403
    r = await client.post(USERS, json=new_user(role="owner"), headers=t.owner.headers)
    assert r.status_code == 201


# --- members and anonymous callers -----------------------------------------------------

async def _admin_calls(t, target_id):
    return [
        ("POST", USERS, new_user()),
        ("GET", USERS, None),
        ("GET", f"{USERS}/{target_id}", None),
        ("PATCH", f"{USERS}/{target_id}", {"full_name": "x"}),
        ("DELETE", f"{USERS}/{target_id}", None),
    ]


async def test_members_get_403_on_admin_endpoints(client, factory):
    t = await factory.tenant()
    member = await factory.user(t, Role.member)
    for method, path, body in await _admin_calls(t, t.owner.id):
        r = await client.request(method, path, json=body, headers=member.headers)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["code"] == "forbidden"
    assert (await load_user(factory, t.id, t.owner.id)).full_name == ""


async def test_admin_endpoints_need_a_token(client, factory):
    t = await factory.tenant()
    for method, path, body in await _admin_calls(t, t.owner.id):
        r = await client.request(method, path, json=body)
        assert r.status_code == 401, (method, path)


# --- list ------------------------------------------------------------------------------

async def _populate(client, t) -> None:
    people = [
        ("alice@example.com", "Alice Admin", "admin"),
        ("bob@example.com", "Bob 100% Member", "member"),
        ("carol@example.com", "Carol a_b", "member"),
        ("dave@example.com", "Dave axb", "member"),
    ]
    for email, name, role in people:
        r = await client.post(USERS, json=new_user(email=email, full_name=name, role=role), headers=t.owner.headers)
        assert r.status_code == 201, r.text


async def test_list_users_paginates_by_cursor(client, factory):
    t = await factory.tenant(email="owner@example.com")
    await _populate(client, t)
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(USERS, params=params, headers=t.owner.headers)).json()
        assert page["total"] == 5 and len(page["items"]) <= 2
        seen += [u["email"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen) and len(seen) == 5 and seen[0] == "alice@example.com"
    assert all("password_hash" not in u for u in page["items"])


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"role": "member"}, ["bob", "carol", "dave"]),
        ({"role": "owner"}, ["owner"]),
        ({"is_active": "false"}, ["dave"]),
        ({"is_active": "true", "role": "member"}, ["bob", "carol"]),
        ({"q": "ALI"}, ["alice"]),
        ({"q": "example.com"}, ["alice", "bob", "carol", "dave", "owner"]),
        ({"q": "%"}, ["bob"]),  # a literal %, not "anything"
        ({"q": "a_b"}, ["carol"]),  # _ is literal too: "axb" does not match
        ({"q": "\\"}, []),
    ],
)
async def test_list_users_filters_and_search(params, expected, client, factory):
    t = await factory.tenant(email="owner@example.com")
    await _populate(client, t)
    dave = (await client.get(USERS, params={"q": "dave"}, headers=t.owner.headers)).json()["items"][0]
    assert (await client.patch(f"{USERS}/{dave['id']}", json={"is_active": False}, headers=t.owner.headers)).status_code == 200
    page = (await client.get(USERS, params=params, headers=t.owner.headers)).json()
    assert [u["email"].split("@")[0] for u in page["items"]] == expected
    assert page["total"] == len(expected)


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 201}, {"role": "boss"}, {"cursor": "!!!"}, {"cursor": "AA"},
     {"is_active": "maybe"}, {"q": "a\x00b"}, {"q": "x" * 201}],
)
async def test_list_users_bad_query_is_422(params, client, factory):
    t = await factory.tenant()
    r = await client.get(USERS, params=params, headers=t.owner.headers)
    assert r.status_code == 422, r.text


# --- read, update, delete --------------------------------------------------------------

async def test_read_user(client, factory):
    t = await factory.tenant()
    member = await factory.user(t, Role.member, full_name="Read Me")
    r = await client.get(f"{USERS}/{member.id}", headers=t.owner.headers)
    assert r.status_code == 200 and r.json()["full_name"] == "Read Me"
    assert (await client.get(f"{USERS}/{uuid.uuid4()}", headers=t.owner.headers)).status_code == 404
    assert (await client.get(f"{USERS}/not-a-uuid", headers=t.owner.headers)).status_code == 404


async def test_update_user_fields(client, factory):
    t = await factory.tenant()
    member = await factory.user(t, Role.member)
    r = await client.patch(f"{USERS}/{member.id}", json={"full_name": "Renamed", "role": "admin"}, headers=t.owner.headers)
    assert r.status_code == 200, r.text
    assert r.json()["full_name"] == "Renamed" and r.json()["role"] == "admin"
    # The role is in the token: a role change cuts live tokens; a fresh login carries the new role.
    assert (await client.get(ME, headers=member.headers)).status_code == 401
    tokens = await login_ok(client, t.slug, member)
    assert (await client.get(USERS, headers=bearer(tokens["access_token"]))).status_code == 200
    # A name-only change leaves tokens alone.
    assert (await client.patch(f"{USERS}/{member.id}", json={"full_name": "Again"}, headers=t.owner.headers)).status_code == 200
    assert (await client.get(ME, headers=bearer(tokens["access_token"]))).status_code == 200


@pytest.mark.parametrize("body", [{"role": None}, {"is_active": None}, {"email": "x@example.com"}, {"password_hash": "x"}, {"token_version": 9}])
async def test_update_user_refuses_nulls_and_other_fields(body, client, factory):
    t = await factory.tenant()
    member = await factory.user(t, Role.member)
    r = await client.patch(f"{USERS}/{member.id}", json=body, headers=t.owner.headers)
    assert r.status_code == 422, r.text


async def test_deactivation_cuts_live_tokens_at_once(client, factory):
    t = await factory.tenant()
    member = await factory.user(t, Role.member)
    tokens = await login_ok(client, t.slug, member)
    r = await client.patch(f"{USERS}/{member.id}", json={"is_active": False}, headers=t.owner.headers)
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert (await client.get(ME, headers=bearer(tokens["access_token"]))).status_code == 401
    assert (await client.get(ME, headers=member.headers)).status_code == 401
    assert (await refresh(client, t.slug, tokens["refresh_token"])).status_code == 401
    assert (await login(client, t.slug, member.email, member.password)).status_code == 401
    # Reactivated: a new login works (old tokens stay dead).
    assert (await client.patch(f"{USERS}/{member.id}", json={"is_active": True}, headers=t.owner.headers)).status_code == 200
    assert (await login(client, t.slug, member.email, member.password)).status_code == 200
    assert (await client.get(ME, headers=bearer(tokens["access_token"]))).status_code == 401


async def test_delete_user(client, factory):
    t = await factory.tenant()
    member = await factory.user(t, Role.member)
    tokens = await login_ok(client, t.slug, member)
    assert (await client.delete(f"{USERS}/{member.id}", headers=t.owner.headers)).status_code == 204
    assert (await client.get(f"{USERS}/{member.id}", headers=t.owner.headers)).status_code == 404
    assert (await client.delete(f"{USERS}/{member.id}", headers=t.owner.headers)).status_code == 404
    assert (await refresh(client, t.slug, tokens["refresh_token"])).status_code == 401
    assert (await login(client, t.slug, member.email, member.password)).status_code == 401


async def test_deleting_a_user_who_owns_items_is_409(client, factory):
    t = await factory.tenant()
    member = await factory.user(t, Role.member)
    async with factory.session_for(t.id) as session, session.begin():
        session.add(Item(name="widget", price=Decimal("1.00"), stock_quantity=1, owner_id=member.id))
    r = await client.delete(f"{USERS}/{member.id}", headers=t.owner.headers)
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == "the user still owns items: reassign or delete them first"
    assert r.json()["errors"][0]["loc"][-1] == "id"
    assert await load_user(factory, t.id, member.id) is not None
