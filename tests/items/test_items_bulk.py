"""POST /items/bulk: up to 500 items in one transaction; any bad item writes nothing."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.items.conftest import ITEMS, TAGS, create_item, create_tag, list_all, unique_name

BULK = f"{ITEMS}/bulk"


def batch(n: int, **overrides) -> list[dict]:
    return [{"name": f"b{i:03d}-{uuid.uuid4().hex[:6]}", "price": f"{i}.25", "stock_quantity": i} | overrides
            for i in range(n)]


async def assert_nothing_written(client, crew) -> None:
    assert await list_all(client, crew.member) == []
    assert (await client.get(TAGS, headers=crew.member.headers)).json()["items"] == []


async def test_bulk_creates_all_items_with_tags(client, crew):
    red = await create_tag(client, crew.member, "red")
    items = batch(3)
    items[0]["tag_ids"] = [red["id"]]
    items[1]["tag_names"] = ["RED", "new"]
    items[2]["tag_names"] = ["New"]
    r = await client.post(BULK, json={"items": items}, headers=crew.member.headers)
    assert r.status_code == 201, r.text
    got = r.json()["items"]
    assert [i["name"] for i in got] == [i["name"] for i in items]  # request order
    assert all(i["owner_id"] == str(crew.member.id) and i["version"] == 1 for i in got)
    assert got[0]["tags"] == [red]
    new_tag = next(t for t in got[1]["tags"] if t["name"] == "new")
    assert got[1]["tags"] == [new_tag, red] and got[2]["tags"] == [new_tag]  # one "new" tag, shared
    for item in got:
        assert (await client.get(f"{ITEMS}/{item['id']}", headers=crew.member.headers)).json() == item


async def test_bulk_accepts_500_and_refuses_501(client, crew):
    r = await client.post(BULK, json={"items": batch(501)}, headers=crew.member.headers)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "items"]
    r = await client.post(BULK, json={"items": []}, headers=crew.member.headers)
    assert r.status_code == 422
    await assert_nothing_written(client, crew)
    items = batch(500)
    items[7]["tag_names"] = ["seven"]
    r = await client.post(BULK, json={"items": items}, headers=crew.member.headers)
    assert r.status_code == 201, r.text
    assert len(r.json()["items"]) == 500
    r = await client.get(ITEMS, params={"include_total": True, "limit": 1}, headers=crew.member.headers)
    assert r.json()["total"] == 500


@pytest.mark.parametrize(
    ("bad", "loc"),
    [
        ({"price": "-1"}, ["body", "items", 3, "price"]),
        ({"price": "NaN"}, ["body", "items", 3, "price"]),
        ({"name": ""}, ["body", "items", 3, "name"]),
        ({"stock_quantity": 2**31}, ["body", "items", 3, "stock_quantity"]),
        ({"owner_id": str(uuid.uuid4())}, ["body", "items", 3, "owner_id"]),
        ({"tag_names": ["x" * 51]}, ["body", "items", 3, "tag_names", 0]),
    ],
)
async def test_one_bad_item_is_422_naming_its_index_and_nothing_is_written(client, crew, bad, loc):
    items = batch(6)
    items[3] |= bad
    items[0]["tag_names"] = ["would-be-created"]
    r = await client.post(BULK, json={"items": items}, headers=crew.member.headers)
    assert r.status_code == 422, r.text
    assert loc in [e["loc"] for e in r.json()["errors"]]
    await assert_nothing_written(client, crew)


async def test_duplicate_names_within_the_batch_are_422_naming_the_later_index(client, crew):
    items = batch(5)
    items[4]["name"] = items[1]["name"]
    items[0]["tag_names"] = ["would-be-created"]
    r = await client.post(BULK, json={"items": items}, headers=crew.member.headers)
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "items", 4, "name"]
    assert "items[1]" in r.json()["errors"][0]["msg"]
    await assert_nothing_written(client, crew)


async def test_name_taken_by_an_existing_item_is_409_naming_the_index(client, crew):
    existing = await create_item(client, crew.admin, name=unique_name())
    items = batch(4)
    items[2]["name"] = existing["name"]
    items[0]["tag_names"] = ["would-be-created"]
    r = await client.post(BULK, json={"items": items}, headers=crew.member.headers)
    assert r.status_code == 409
    assert r.json()["errors"][0]["loc"][-1] == "name" and r.json()["errors"][0]["loc"] == ["body", "items", 2, "name"]
    assert [i["id"] for i in await list_all(client, crew.member)] == [existing["id"]]


async def test_unknown_tag_id_is_404_naming_the_index_and_nothing_is_written(client, crew):
    items = batch(3)
    items[0]["tag_names"] = ["would-be-created"]
    items[2]["tag_ids"] = [str(uuid.uuid4())]
    r = await client.post(BULK, json={"items": items}, headers=crew.member.headers)
    assert r.status_code == 404
    assert r.json()["errors"][0]["loc"] == ["body", "items", 2, "tag_ids"]
    await assert_nothing_written(client, crew)


async def test_a_database_error_late_in_the_batch_rolls_back_everything(client, crew):
    """Two identical batches at once: both may pass the name pre-check, then the unique index
    stops the second one mid-insert. Exactly one batch lands, never half of one."""
    items = batch(50)
    first, second = await asyncio.gather(
        client.post(BULK, json={"items": items}, headers=crew.member.headers),
        client.post(BULK, json={"items": items}, headers=crew.admin.headers),
    )
    assert sorted([first.status_code, second.status_code]) == [201, 409]
    stored = await list_all(client, crew.member)
    assert len(stored) == 50 and len({i["owner_id"] for i in stored}) == 1


async def test_bulk_body_must_be_an_object_with_items(client, crew):
    for body in ([{"name": "x", "price": 1}], {"items": "x"}, {"items": [], "extra": 1}, {}):
        r = await client.post(BULK, json=body, headers=crew.member.headers)
        assert r.status_code == 422, body
    await assert_nothing_written(client, crew)
