"""A token of tenant A never reads or changes tenant B's users: 404 exactly like a missing id."""

from __future__ import annotations

import uuid

from app.users.models import Role
from tests.auth.helpers import load_user

USERS = "/api/v1/users"


async def _two_tenants(factory):
    a = await factory.tenant(email="owner@example.com")
    b = await factory.tenant(email="owner@example.com")
    b_member = await factory.user(b, Role.member, full_name="B Member")
    return a, b, b_member


async def test_list_shows_only_my_tenant(client, factory):
    a, b, _ = await _two_tenants(factory)
    await factory.user(a, Role.member, email="a-only@example.com")
    page = (await client.get(USERS, headers=a.owner.headers)).json()
    assert {u["tenant_id"] for u in page["items"]} == {str(a.id)}
    assert page["total"] == 2
    assert all(u["id"] != str(b.owner.id) for u in page["items"])
    # Searching for B's data finds nothing either.
    assert (await client.get(USERS, params={"q": "B Member"}, headers=a.owner.headers)).json()["total"] == 0


async def test_get_update_delete_of_another_tenants_user_are_404(client, factory):
    a, b, b_member = await _two_tenants(factory)
    missing = await client.get(f"{USERS}/{uuid.uuid4()}", headers=a.owner.headers)
    for method, body in [("GET", None), ("PATCH", {"full_name": "hijacked"}), ("PATCH", {"is_active": False}),
                         ("PATCH", {"role": "owner"}), ("DELETE", None)]:
        r = await client.request(method, f"{USERS}/{b_member.id}", json=body, headers=a.owner.headers)
        assert r.status_code == 404, (method, body, r.text)
        # Indistinguishable from an id that does not exist (instance is the path, so it names the id).
        assert {**r.json(), "instance": ""} == {**missing.json(), "instance": ""}
    # B's owner too (the last-owner guard must not leak B's owners into A's check).
    r = await client.delete(f"{USERS}/{b.owner.id}", headers=a.owner.headers)
    assert r.status_code == 404

    untouched = await load_user(factory, b.id, b_member.id)
    assert untouched.full_name == "B Member" and untouched.is_active and untouched.role is Role.member
    assert (await client.get(f"{USERS}/{b_member.id}", headers=b.owner.headers)).status_code == 200


async def test_b_can_create_the_email_a_already_has(client, factory):
    a, b, _ = await _two_tenants(factory)
    body = {"email": "owner@example.com", "full_name": "", "role": "member", "password": "a-good-password"}
    # In A it is a duplicate; B already has its own owner@example.com as well.
    assert (await client.post(USERS, json=body, headers=a.owner.headers)).status_code == 409
    body["email"] = "fresh@example.com"
    assert (await client.post(USERS, json=body, headers=a.owner.headers)).status_code == 201
    assert (await client.post(USERS, json=body, headers=b.owner.headers)).status_code == 201
