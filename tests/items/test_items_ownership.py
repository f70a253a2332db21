"""Ownership rules, for every role: all read; members write only their own items; owners and
admins write every item of the tenant; only owners/admins delete tags."""

from __future__ import annotations

import uuid

import pytest

from app.users.models import Role
from tests.items.conftest import ITEMS, TAGS, create_item, create_tag, list_all

ROLES = ["owner", "admin", "member"]


@pytest.mark.parametrize("role", ROLES)
async def test_every_role_reads_every_item_and_tag(client, crew, role):
    mine = await create_item(client, crew.other_member, tag_names=["shared"])
    user = crew.by_role(role)
    r = await client.get(f"{ITEMS}/{mine['id']}", headers=user.headers)
    assert r.status_code == 200
    assert [i["id"] for i in await list_all(client, user)] == [mine["id"]]
    tags = (await client.get(TAGS, headers=user.headers)).json()["items"]
    assert [t["name"] for t in tags] == ["shared"]


@pytest.mark.parametrize("role", ROLES)
async def test_every_role_creates_items_it_owns(client, crew, role):
    user = crew.by_role(role)
    item = await create_item(client, user)
    assert item["owner_id"] == str(user.id)


@pytest.mark.parametrize("role", ROLES)
async def test_every_role_changes_its_own_items(client, crew, role):
    user = crew.by_role(role)
    item = await create_item(client, user)
    url = f"{ITEMS}/{item['id']}"
    r = await client.patch(url, json={"stock_quantity": 7}, headers=user.headers)
    assert r.status_code == 200
    r = await client.post(f"{url}/transfer", json={"owner_id": str(crew.other_member.id)}, headers=user.headers)
    assert r.status_code == 200 and r.json()["owner_id"] == str(crew.other_member.id)
    item = await create_item(client, user)
    r = await client.delete(f"{ITEMS}/{item['id']}", headers=user.headers)
    assert r.status_code == 204


@pytest.mark.parametrize(("role", "allowed"), [("owner", True), ("admin", True), ("member", False)])
async def test_changing_someone_elses_item(client, crew, role, allowed):
    user = crew.by_role(role)
    item = await create_item(client, crew.other_member)
    url = f"{ITEMS}/{item['id']}"

    r = await client.patch(url, json={"stock_quantity": 42}, headers=user.headers)
    assert r.status_code == (200 if allowed else 403), r.text
    r = await client.post(f"{url}/transfer", json={"owner_id": str(user.id)}, headers=user.headers)
    assert r.status_code == (200 if allowed else 403)
    if allowed:  # give it back, so the delete below is again on someone else's item
        r = await client.post(f"{url}/transfer", json={"owner_id": str(crew.other_member.id)}, headers=user.headers)
        assert r.status_code == 200
    r = await client.delete(url, headers=user.headers)
    assert r.status_code == (204 if allowed else 403)

    after = await client.get(url, headers=crew.other_member.headers)
    if allowed:
        assert after.status_code == 404
    else:  # a refused member changed nothing
        assert after.status_code == 200 and after.json() == item


async def test_member_gets_403_not_412_on_someone_elses_item(client, crew):
    """Permission is checked before the precondition: the error does not depend on the ETag."""
    item = await create_item(client, crew.other_member)
    headers = crew.member.headers | {"If-Match": '"99"'}
    assert (await client.patch(f"{ITEMS}/{item['id']}", json={}, headers=headers)).status_code == 403


@pytest.mark.parametrize(("role", "allowed"), [("owner", True), ("admin", True), ("member", False)])
async def test_only_owners_and_admins_delete_tags(client, crew, role, allowed):
    tag = await create_tag(client, crew.member)
    r = await client.delete(f"{TAGS}/{tag['id']}", headers=crew.by_role(role).headers)
    assert r.status_code == (204 if allowed else 403)


@pytest.mark.parametrize("role", ROLES)
async def test_every_role_creates_tags(client, crew, role):
    tag = await create_tag(client, crew.by_role(role))
    assert tag["name"].startswith("tag-")


async def test_a_deactivated_user_can_do_nothing(client, crew, factory):
    gone = await factory.user(crew.tenant, Role.admin, is_active=False)
    item = await create_item(client, crew.member)
    assert (await client.get(f"{ITEMS}/{item['id']}", headers=gone.headers)).status_code == 401
    assert (await client.get(ITEMS, headers=gone.headers)).status_code == 401
    assert (await client.delete(f"{ITEMS}/{item['id']}", headers=gone.headers)).status_code == 401


async def test_transfer_needs_an_active_user_of_the_tenant(client, crew, factory):
    item = await create_item(client, crew.member)
    url = f"{ITEMS}/{item['id']}/transfer"
    inactive = await factory.user(crew.tenant, Role.member, is_active=False)
    r = await client.post(url, json={"owner_id": str(inactive.id)}, headers=crew.member.headers)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "owner_id"]
    r = await client.post(url, json={"owner_id": str(uuid.uuid4())}, headers=crew.member.headers)
    assert r.status_code == 404
    r = await client.post(url, json={"owner_id": "nope"}, headers=crew.member.headers)
    assert r.status_code == 422
    r = await client.post(url, json={"owner_id": str(crew.admin.id), "extra": 1}, headers=crew.member.headers)
    assert r.status_code == 422
    # Still the member's, still version 1.
    got = (await client.get(f"{ITEMS}/{item['id']}", headers=crew.member.headers)).json()
    assert got["owner_id"] == str(crew.member.id) and got["version"] == 1


async def test_transfer_bumps_version_and_honours_if_match(client, crew):
    item = await create_item(client, crew.member)
    url = f"{ITEMS}/{item['id']}/transfer"
    body = {"owner_id": str(crew.admin.id)}
    r = await client.post(url, json=body, headers=crew.member.headers | {"If-Match": '"5"'})
    assert r.status_code == 412
    r = await client.post(url, json=body, headers=crew.member.headers | {"If-Match": '"1"'})
    assert r.status_code == 200 and r.headers["etag"] == '"2"' and r.json()["owner_id"] == str(crew.admin.id)
    # The former owner (a member) no longer may change it.
    r = await client.patch(f"{ITEMS}/{item['id']}", json={"stock_quantity": 3}, headers=crew.member.headers)
    assert r.status_code == 403
    # Transferring to the current owner changes nothing.
    r = await client.post(url, json=body, headers=crew.admin.headers)
    assert r.status_code == 200 and r.json()["version"] == 2
