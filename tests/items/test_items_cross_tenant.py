"""Cross-tenant matrix: another tenant's items, tags and users answer exactly like missing ids
(404), on every endpoint and for ids inside request bodies and filters, for every role."""

from __future__ import annotations

import uuid

import pytest

from tests.items.conftest import ITEMS, TAGS, create_item, create_tag, list_all, unique_name

ROLES = ["owner", "admin", "member"]


@pytest.fixture
async def theirs(client, other_crew):
    """Another tenant's item (tagged) and tag, owned by their member."""
    tag = await create_tag(client, other_crew.member, "secret")
    item = await create_item(client, other_crew.member, tag_ids=[tag["id"]], description="classified")
    return {"item": item, "tag": tag, "crew": other_crew}


def _endpoints(item_id: str, target_user: str) -> list[tuple[str, str, dict | None]]:
    url = f"{ITEMS}/{item_id}"
    return [
        ("GET", url, None),
        ("PATCH", url, {"stock_quantity": 0}),
        ("DELETE", url, None),
        ("POST", f"{url}/transfer", {"owner_id": target_user}),
    ]


@pytest.mark.parametrize("role", ROLES)
async def test_their_item_is_404_like_a_missing_one(client, crew, theirs, role):
    user = crew.by_role(role)
    for item_id in (theirs["item"]["id"], str(uuid.uuid4())):
        for method, url, body in _endpoints(item_id, str(user.id)):
            for headers in (user.headers, user.headers | {"If-Match": '"1"'}):
                r = await client.request(method, url, json=body, headers=headers)
                assert r.status_code == 404, (method, url, r.text)
                assert (r.json()["code"], r.json()["detail"]) == ("not_found", "item not found")
    # Untouched on their side.
    r = await client.get(f"{ITEMS}/{theirs['item']['id']}", headers=theirs["crew"].member.headers)
    assert r.status_code == 200 and r.json() == theirs["item"]


@pytest.mark.parametrize("role", ROLES)
async def test_their_items_and_tags_never_appear_in_lists(client, crew, theirs, role):
    user = crew.by_role(role)
    mine = await create_item(client, crew.member, description="classified too")
    assert [i["id"] for i in await list_all(client, user)] == [mine["id"]]
    for params in ({"q": "classified"}, {"tag": "secret"}, {"tag": theirs["tag"]["id"]}, {"include_total": True}):
        r = await client.get(ITEMS, params=params, headers=user.headers)
        assert theirs["item"]["id"] not in [i["id"] for i in r.json()["items"]]
    r = await client.get(ITEMS, params={"tag": theirs["tag"]["id"], "include_total": True}, headers=user.headers)
    assert r.json()["items"] == [] and r.json()["total"] == 0
    assert (await client.get(TAGS, headers=user.headers)).json()["items"] == []


async def test_their_user_as_owner_filter_is_404(client, crew, theirs):
    r = await client.get(ITEMS, params={"owner_id": str(theirs["crew"].member.id)}, headers=crew.owner.headers)
    assert r.status_code == 404
    r = await client.get(ITEMS, params={"owner_id": str(uuid.uuid4())}, headers=crew.owner.headers)
    assert r.status_code == 404


@pytest.mark.parametrize("role", ROLES)
async def test_transfer_to_their_user_is_404(client, crew, theirs, role):
    user = crew.by_role(role)
    mine = await create_item(client, user)
    for target in (theirs["crew"].member.id, theirs["crew"].owner.id, uuid.uuid4()):
        r = await client.post(f"{ITEMS}/{mine['id']}/transfer", json={"owner_id": str(target)}, headers=user.headers)
        assert r.status_code == 404
        assert (r.json()["code"], r.json()["detail"]) == ("not_found", "user not found")
    got = (await client.get(f"{ITEMS}/{mine['id']}", headers=user.headers)).json()
    assert got["owner_id"] == str(user.id) and got["version"] == 1


@pytest.mark.parametrize("role", ROLES)
async def test_their_tag_id_in_a_body_is_404(client, crew, theirs, role):
    user = crew.by_role(role)
    their_tag = theirs["tag"]["id"]
    r = await client.post(ITEMS, json={"name": unique_name(), "price": 1, "tag_ids": [their_tag]}, headers=user.headers)
    assert r.status_code == 404 and r.json()["errors"][0]["loc"] == ["body", "tag_ids"]
    mine = await create_item(client, user)
    r = await client.patch(f"{ITEMS}/{mine['id']}", json={"tag_ids": [their_tag]}, headers=user.headers)
    assert r.status_code == 404
    bulk = {"items": [{"name": unique_name(), "price": 1}, {"name": unique_name(), "price": 1, "tag_ids": [their_tag]}]}
    r = await client.post(f"{ITEMS}/bulk", json=bulk, headers=user.headers)
    assert r.status_code == 404 and r.json()["errors"][0]["loc"] == ["body", "items", 1, "tag_ids"]
    # Nothing was written by any of them.
    assert [i["id"] for i in await list_all(client, user)] == [mine["id"]]


async def test_their_tag_name_in_a_body_makes_our_own_tag(client, crew, theirs):
    created = await create_item(client, crew.member, tag_names=["SECRET"])
    assert created["tags"][0]["name"] == "SECRET" and created["tags"][0]["id"] != theirs["tag"]["id"]


@pytest.mark.parametrize("role", ["owner", "admin"])
async def test_their_tag_cannot_be_deleted(client, crew, theirs, role):
    r = await client.delete(f"{TAGS}/{theirs['tag']['id']}", headers=crew.by_role(role).headers)
    assert r.status_code == 404
    assert (await client.delete(f"{TAGS}/{uuid.uuid4()}", headers=crew.by_role(role).headers)).status_code == 404
    r = await client.get(f"{ITEMS}/{theirs['item']['id']}", headers=theirs["crew"].member.headers)
    assert r.json()["tags"] == [theirs["tag"]] and r.json()["version"] == 1


async def test_duplicate_names_do_not_leak_across_tenants(client, crew, theirs):
    """Their item and tag names are free here: a 409 would reveal that they exist."""
    await create_item(client, crew.member, name=theirs["item"]["name"])
    await create_tag(client, crew.member, theirs["tag"]["name"])
    bulk = {"items": [{"name": theirs["item"]["name"] + "-2", "price": 1}]}
    assert (await client.post(f"{ITEMS}/bulk", json=bulk, headers=crew.member.headers)).status_code == 201


async def test_token_of_one_tenant_cannot_be_pointed_at_another(client, crew, theirs, factory):
    """A token signed for our user but naming their tenant id is refused (the user is not there)."""
    forged = factory.token_for(crew.owner.id, theirs["crew"].tenant.id, "owner")
    r = await client.get(f"{ITEMS}/{theirs['item']['id']}", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
