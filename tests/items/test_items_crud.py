"""Items CRUD happy paths, ETags, partial updates, tags on items, and bad input (never a 500)."""

from __future__ import annotations

import uuid

import pytest

from tests.items.conftest import ITEMS, create_item, create_tag, unique_name, with_if_match


async def test_create_returns_item_with_etag_and_location(client, crew):
    r = await client.post(
        ITEMS,
        json={"name": "  Lamp  ", "description": "desk lamp", "price": 19.9, "stock_quantity": 3},
        headers=crew.member.headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "Lamp"  # whitespace stripped
    assert body["price"] == "19.90"  # Decimal as a string, always two places
    assert body["stock_quantity"] == 3
    assert body["owner_id"] == str(crew.member.id)  # owner = caller
    assert body["version"] == 1 and body["tags"] == []
    assert body["created_at"] == body["updated_at"]
    assert r.headers["etag"] == '"1"'
    assert r.headers["location"] == f"{ITEMS}/{body['id']}"


async def test_get_returns_the_same_body_and_etag(client, crew):
    created = await create_item(client, crew.member, price="5", tag_names=["b", "A"])
    r = await client.get(f"{ITEMS}/{created['id']}", headers=crew.other_member.headers)
    assert r.status_code == 200
    assert r.json() == created  # POST body == GET body for the same ETag
    assert r.headers["etag"] == '"1"'
    assert [t["name"] for t in r.json()["tags"]] == ["A", "b"]


async def test_get_with_if_none_match_answers_304(client, crew):
    created = await create_item(client, crew.member)
    url = f"{ITEMS}/{created['id']}"
    r = await client.get(url, headers=crew.member.headers | {"If-None-Match": '"1"'})
    assert r.status_code == 304 and r.headers["etag"] == '"1"' and r.content == b""
    r = await client.get(url, headers=crew.member.headers | {"If-None-Match": '"7"'})
    assert r.status_code == 200


async def test_get_missing_item_and_malformed_id_are_404(client, crew):
    r = await client.get(f"{ITEMS}/{uuid.uuid4()}", headers=crew.member.headers)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = await client.get(f"{ITEMS}/not-a-uuid", headers=crew.member.headers)
    # A malformed id matches no route (ids are uuid path segments): the same 404 as a missing item.
    assert r.status_code == 404 and r.json()["code"] == "not_found"


async def test_items_need_a_token(client):
    assert (await client.get(ITEMS)).status_code == 401
    assert (await client.post(ITEMS, json={"name": "x", "price": 1})).status_code == 401


async def test_patch_is_partial_and_bumps_version(client, crew):
    created = await create_item(client, crew.member, description="old", stock_quantity=4)
    url = f"{ITEMS}/{created['id']}"
    r = await client.patch(url, json={"price": "7.5"}, headers=crew.member.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["price"] == "7.50" and body["description"] == "old" and body["stock_quantity"] == 4
    assert body["version"] == 2 and r.headers["etag"] == '"2"'
    assert body["updated_at"] >= created["updated_at"]
    # description may be cleared with null; the non-nullable fields may not.
    r = await client.patch(url, json={"description": None}, headers=crew.member.headers)
    assert r.status_code == 200 and r.json()["description"] is None
    cleared = r.json()
    for field in ("name", "price", "stock_quantity", "tag_ids", "tag_names"):
        r = await client.patch(url, json={field: None}, headers=crew.member.headers)
        assert r.status_code == 422, (field, r.text)
        assert r.json()["errors"][0]["loc"] == ["body", field]
    assert (await client.get(url, headers=crew.member.headers)).json() == cleared


async def test_patch_without_changes_keeps_the_version(client, crew):
    created = await create_item(client, crew.member, price="3.00")
    url = f"{ITEMS}/{created['id']}"
    r = await client.patch(url, json={"price": "3", "name": created["name"]}, headers=crew.member.headers)
    assert r.status_code == 200 and r.json()["version"] == 1
    r = await client.patch(url, json={}, headers=crew.member.headers)
    assert r.status_code == 200 and r.json()["version"] == 1


async def test_patch_replaces_tags_and_a_tag_only_change_bumps_the_version(client, crew):
    red = await create_tag(client, crew.member, "red")
    created = await create_item(client, crew.member, tag_ids=[red["id"]], tag_names=["Blue"])
    assert {t["name"] for t in created["tags"]} == {"red", "Blue"}
    url = f"{ITEMS}/{created['id']}"
    r = await client.patch(url, json={"tag_names": ["RED", "green"]}, headers=crew.member.headers)
    assert r.status_code == 200, r.text
    assert [t["name"] for t in r.json()["tags"]] == ["green", "red"]  # RED matched the existing tag
    assert r.json()["version"] == 2 and r.json()["updated_at"] > created["updated_at"]
    got = (await client.get(url, headers=crew.member.headers)).json()
    assert got == r.json()
    r = await client.patch(url, json={"tag_ids": []}, headers=crew.member.headers)
    assert r.json()["tags"] == [] and r.json()["version"] == 3


async def test_tags_by_name_are_deduplicated_case_insensitively(client, crew):
    created = await create_item(client, crew.member, tag_names=["Sale", "sale", "SALE", "new"])
    assert sorted(t["name"] for t in created["tags"]) == ["Sale", "new"]
    again = await create_item(client, crew.member, tag_names=["sAlE"])
    assert again["tags"] == [t for t in created["tags"] if t["name"] == "Sale"]  # reused, not created
    r = await client.get("/api/v1/tags", headers=crew.member.headers)
    assert [t["name"] for t in r.json()["items"]] == ["new", "Sale"]  # case-insensitive order


async def test_same_tag_by_id_and_by_name_is_linked_once(client, crew):
    tag = await create_tag(client, crew.member, "dup")
    created = await create_item(client, crew.member, tag_ids=[tag["id"], tag["id"]], tag_names=["DUP"])
    assert created["tags"] == [tag]


async def test_delete_item_then_404(client, crew):
    created = await create_item(client, crew.member, tag_names=["keep-me"])
    url = f"{ITEMS}/{created['id']}"
    r = await client.delete(url, headers=crew.member.headers)
    assert r.status_code == 204 and r.content == b""
    assert (await client.get(url, headers=crew.member.headers)).status_code == 404
    assert (await client.delete(url, headers=crew.member.headers)).status_code == 404
    # The tag outlives the item.
    tags = (await client.get("/api/v1/tags", headers=crew.member.headers)).json()["items"]
    assert [t["name"] for t in tags] == ["keep-me"]


async def test_duplicate_item_name_is_409_naming_the_field(client, crew):
    name = unique_name()
    await create_item(client, crew.member, name=name)
    r = await client.post(ITEMS, json={"name": name, "price": 1}, headers=crew.admin.headers)
    assert r.status_code == 409
    assert r.json()["errors"][0]["loc"][-1] == "name"
    other = await create_item(client, crew.member)
    r = await client.patch(f"{ITEMS}/{other['id']}", json={"name": name}, headers=crew.member.headers)
    assert r.status_code == 409 and r.json()["errors"][0]["loc"][-1] == "name"


async def test_names_are_unique_per_tenant_only(client, crew, other_crew):
    name = unique_name()
    await create_item(client, crew.member, name=name)
    await create_item(client, other_crew.member, name=name)


async def test_unknown_tag_id_is_404(client, crew):
    r = await client.post(ITEMS, json={"name": "x", "price": 1, "tag_ids": [str(uuid.uuid4())]}, headers=crew.member.headers)
    assert r.status_code == 404
    assert r.json()["errors"][0]["loc"] == ["body", "tag_ids"]


BAD_BODIES = [
    ({"price": 1}, ["body", "name"]),
    ({"name": "", "price": 1}, ["body", "name"]),
    ({"name": "   ", "price": 1}, ["body", "name"]),
    ({"name": "x" * 201, "price": 1}, ["body", "name"]),
    ({"name": "a\x00b", "price": 1}, ["body", "name"]),
    ({"name": "x", "price": 1, "description": "d" * 5001}, ["body", "description"]),
    ({"name": "x", "price": 1, "description": "nul\x00"}, ["body", "description"]),
    ({"name": "x"}, ["body", "price"]),
    ({"name": "x", "price": -1}, ["body", "price"]),
    ({"name": "x", "price": "-0.01"}, ["body", "price"]),
    ({"name": "x", "price": "NaN"}, ["body", "price"]),
    ({"name": "x", "price": "Infinity"}, ["body", "price"]),
    ({"name": "x", "price": "1.234"}, ["body", "price"]),
    ({"name": "x", "price": "10000000000"}, ["body", "price"]),
    ({"name": "x", "price": "1e10"}, ["body", "price"]),
    ({"name": "x", "price": "abc"}, ["body", "price"]),
    ({"name": "x", "price": True}, ["body", "price"]),
    ({"name": "x", "price": 1, "stock_quantity": -1}, ["body", "stock_quantity"]),
    ({"name": "x", "price": 1, "stock_quantity": 2**31}, ["body", "stock_quantity"]),
    ({"name": "x", "price": 1, "stock_quantity": 1.5}, ["body", "stock_quantity"]),
    ({"name": "x", "price": 1, "tag_ids": ["nope"]}, ["body", "tag_ids", 0]),
    ({"name": "x", "price": 1, "tag_names": [""]}, ["body", "tag_names", 0]),
    ({"name": "x", "price": 1, "tag_names": ["t" * 51]}, ["body", "tag_names", 0]),
    ({"name": "x", "price": 1, "tag_names": [f"t{i}" for i in range(51)]}, ["body", "tag_names"]),
    ({"name": "x", "price": 1, "owner_id": str(uuid.uuid4())}, ["body", "owner_id"]),
    ({"name": "x", "price": 1, "tenant_id": str(uuid.uuid4())}, ["body", "tenant_id"]),
    ({"name": "x", "price": 1, "version": 5}, ["body", "version"]),
]


@pytest.mark.parametrize(("body", "loc"), BAD_BODIES, ids=[str(b[1]) + str(i) for i, b in enumerate(BAD_BODIES)])
async def test_bad_create_input_is_422_naming_the_field(client, crew, body, loc):
    r = await client.post(ITEMS, json=body, headers=crew.member.headers)
    assert r.status_code == 422, r.text
    assert loc in [e["loc"] for e in r.json()["errors"]], r.json()


async def test_nan_literal_and_invalid_json_are_422(client, crew):
    headers = crew.member.headers | {"Content-Type": "application/json"}
    r = await client.post(ITEMS, content=b'{"name": "x", "price": NaN}', headers=headers)
    assert r.status_code == 422
    r = await client.post(ITEMS, content=b'{"name": "x", "price": 1', headers=headers)
    assert r.status_code == 422
    r = await client.post(ITEMS, content=b'[1, 2]', headers=headers)
    assert r.status_code == 422


async def test_bad_patch_input_is_422(client, crew):
    created = await create_item(client, crew.member)
    url = f"{ITEMS}/{created['id']}"
    for body, loc in [
        ({"price": "-1"}, ["body", "price"]),
        ({"owner_id": str(crew.admin.id)}, ["body", "owner_id"]),  # ownership moves by /transfer only
        ({"unknown": 1}, ["body", "unknown"]),
        ({"name": "\x00"}, ["body", "name"]),
    ]:
        r = await client.patch(url, json=body, headers=crew.member.headers)
        assert r.status_code == 422, body
        assert r.json()["errors"][0]["loc"] == loc
    assert (await client.get(url, headers=crew.member.headers)).json()["version"] == 1


async def test_price_zero_and_maximum_are_accepted(client, crew):
    low = await create_item(client, crew.member, price="-0")
    high = await create_item(client, crew.member, price="9999999999.99", stock_quantity=2**31 - 1)
    assert low["price"] == "0.00"
    assert high["price"] == "9999999999.99" and high["stock_quantity"] == 2**31 - 1


async def test_if_match_on_patch_and_delete(client, crew):
    created = await create_item(client, crew.member)
    url = f"{ITEMS}/{created['id']}"
    r = await client.patch(url, json={"stock_quantity": 9}, headers=with_if_match(crew.member, 1))
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    # The old ETag no longer matches: 412 carrying the current ETag, nothing written.
    r = await client.patch(url, json={"stock_quantity": 1}, headers=with_if_match(crew.member, 1))
    assert r.status_code == 412 and r.json()["code"] == "precondition_failed"
    assert r.headers["etag"] == '"2"'
    for header in ('W/"2"', "2", "garbage", '"1", "3"', '"' + "9" * 5000 + '"', '"99999999999999999999"'):
        r = await client.patch(url, json={"stock_quantity": 1}, headers=crew.member.headers | {"If-Match": header})
        assert r.status_code == 412, header
    r = await client.patch(url, json={"stock_quantity": 5}, headers=crew.member.headers | {"If-Match": '"1", "2"'})
    assert r.status_code == 200 and r.json()["version"] == 3
    r = await client.patch(url, json={"stock_quantity": 6}, headers=crew.member.headers | {"If-Match": "*"})
    assert r.status_code == 200 and r.json()["version"] == 4
    r = await client.delete(url, headers=with_if_match(crew.member, 3))
    assert r.status_code == 412
    r = await client.delete(url, headers=with_if_match(crew.member, 4))
    assert r.status_code == 204
    r = await client.patch(url, json={"stock_quantity": 6}, headers=crew.member.headers | {"If-Match": "*"})
    assert r.status_code == 404


async def test_one_patch_is_one_version_even_with_fields_and_tags(client, crew):
    created = await create_item(client, crew.member, tag_names=["a"])
    url = f"{ITEMS}/{created['id']}"
    r = await client.patch(url, json={"price": "2", "stock_quantity": 8, "tag_names": ["b", "new-one"]},
                           headers=with_if_match(crew.member, 1))
    assert r.status_code == 200 and r.json()["version"] == 2 and r.headers["etag"] == '"2"'
    assert (await client.get(url, headers=crew.member.headers)).json() == r.json()
