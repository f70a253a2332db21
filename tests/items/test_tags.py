"""Tags: list (keyset pages, case-insensitive order), create (409 on any-case duplicates),
delete (removes the tag from items and gives those items a new version)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.items.conftest import ITEMS, TAGS, create_item, create_tag


async def test_create_and_list_tags_in_case_insensitive_order(client, crew):
    for name in ("beta", "Alpha", "  gamma  "):
        await create_tag(client, crew.member, name)
    r = await client.get(TAGS, headers=crew.member.headers)
    assert r.status_code == 200
    assert [t["name"] for t in r.json()["items"]] == ["Alpha", "beta", "gamma"]
    assert r.json()["next_cursor"] is None


async def test_tag_pages(client, crew):
    names = [f"t{i:02d}" for i in range(7)]
    for name in names:
        await create_tag(client, crew.member, name)
    seen, cursor = [], None
    while True:
        r = await client.get(TAGS, params={"limit": 3} | ({"cursor": cursor} if cursor else {}), headers=crew.member.headers)
        seen += [t["name"] for t in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    assert seen == names
    assert (await client.get(TAGS, params={"cursor": "garbage"}, headers=crew.member.headers)).status_code == 422
    assert (await client.get(TAGS, params={"limit": 101}, headers=crew.member.headers)).status_code == 422


@pytest.mark.parametrize("existing", ["Sale", "sale", "SALE"])
async def test_duplicate_tag_name_in_any_case_is_409_naming_name(client, crew, existing):
    await create_tag(client, crew.member, existing)
    r = await client.post(TAGS, json={"name": "sAlE"}, headers=crew.admin.headers)
    assert r.status_code == 409
    assert r.json()["errors"][0]["loc"][-1] == "name"


@pytest.mark.parametrize(
    "body", [{}, {"name": ""}, {"name": "   "}, {"name": "x" * 51}, {"name": "a\x00"}, {"name": 5}, {"name": "ok", "x": 1}]
)
async def test_bad_tag_input_is_422(client, crew, body):
    r = await client.post(TAGS, json=body, headers=crew.member.headers)
    assert r.status_code == 422


async def test_concurrent_items_creating_the_same_new_tag_share_it(client, crew):
    results = await asyncio.gather(
        *(client.post(ITEMS, json={"name": f"c{i}", "price": 1, "tag_names": ["Fresh"]}, headers=crew.member.headers)
          for i in range(6))
    )
    assert [r.status_code for r in results] == [201] * 6
    assert len({r.json()["tags"][0]["id"] for r in results}) == 1
    assert len((await client.get(TAGS, headers=crew.member.headers)).json()["items"]) == 1


async def test_deleting_a_tag_removes_it_from_items_and_bumps_their_version(client, crew):
    doomed = await create_tag(client, crew.member, "doomed")
    tagged = await create_item(client, crew.member, tag_ids=[doomed["id"]], tag_names=["stays"])
    untagged = await create_item(client, crew.member, tag_names=["stays"])
    r = await client.delete(f"{TAGS}/{doomed['id']}", headers=crew.admin.headers)
    assert r.status_code == 204
    got = (await client.get(f"{ITEMS}/{tagged['id']}", headers=crew.member.headers)).json()
    assert [t["name"] for t in got["tags"]] == ["stays"]
    assert got["version"] == 2 and got["updated_at"] > tagged["updated_at"]  # its ETag changed
    assert (await client.get(f"{ITEMS}/{untagged['id']}", headers=crew.member.headers)).json() == untagged
    # An ETag read before the delete no longer matches.
    r = await client.patch(f"{ITEMS}/{tagged['id']}", json={"stock_quantity": 3},
                           headers=crew.member.headers | {"If-Match": '"1"'})
    assert r.status_code == 412
    assert [t["name"] for t in (await client.get(TAGS, headers=crew.member.headers)).json()["items"]] == ["stays"]
    assert (await client.delete(f"{TAGS}/{doomed['id']}", headers=crew.admin.headers)).status_code == 404
    assert (await client.get(ITEMS, params={"tag": "doomed"}, headers=crew.member.headers)).json()["items"] == []


async def test_tag_routes_validate_ids_and_need_a_token(client, crew):
    assert (await client.delete(f"{TAGS}/nope", headers=crew.admin.headers)).status_code == 404  # not an id: no route
    assert (await client.delete(f"{TAGS}/{uuid.uuid4()}", headers=crew.admin.headers)).status_code == 404
    assert (await client.get(TAGS)).status_code == 401
    assert (await client.post(TAGS, json={"name": "x"})).status_code == 401
