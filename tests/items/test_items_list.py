"""GET /items: search, every filter, every sort, keyset pagination (also while items are being
inserted), cursor validation, include_total, and a constant number of SQL statements."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from decimal import Decimal

import pytest

from tests.sql_log import wire_statements
from tests.items.conftest import ITEMS, create_item, create_tag, list_all

SORTS = ["created_at", "-created_at", "name", "-name", "price", "-price"]


async def names(client, user, **params) -> list[str]:
    r = await client.get(ITEMS, params={"limit": 100} | params, headers=user.headers)
    assert r.status_code == 200, r.text
    return [i["name"] for i in r.json()["items"]]


@pytest.fixture
async def catalog(client, crew):
    """Five items with known names, prices, stock, tags and owners."""
    specs = [
        ("apple", "1.00", 0, ["fruit", "red"], crew.member, "crisp 100% organic"),
        ("banana", "2.50", 5, ["fruit"], crew.member, "yellow_curved"),
        ("cherry", "2.50", 0, ["fruit", "red"], crew.other_member, None),
        ("drill", "99.99", 2, ["tool"], crew.admin, "cordless, back\\slash"),
        ("easel", "45.00", 1, [], crew.owner, "Wooden"),
    ]
    items = {}
    for name, price, stock, tags, owner, description in specs:
        items[name] = await create_item(
            client, owner, name=name, price=price, stock_quantity=stock, tag_names=tags, description=description
        )
    return items


async def test_default_list_is_oldest_first_with_tags(client, crew, catalog):
    r = await client.get(ITEMS, headers=crew.member.headers)
    page = r.json()
    assert [i["name"] for i in page["items"]] == ["apple", "banana", "cherry", "drill", "easel"]
    assert page["next_cursor"] is None and page["total"] is None
    assert page["items"][0] == catalog["apple"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("BAN", ["banana"]),  # case-insensitive, on the name
        ("wooden", ["easel"]),  # on the description
        ("R", ["apple", "banana", "cherry", "drill"]),
        ("100%", ["apple"]),  # % is matched literally ...
        ("%", ["apple"]),
        ("_", ["banana"]),  # ... and so is _
        ("e_l", []),  # would match "yellow" if _ were a wildcard
        ("back\\slash", ["drill"]),  # and the escape character itself
        ("\\", ["drill"]),
        ("zzz", []),
        ("", ["apple", "banana", "cherry", "drill", "easel"]),  # empty q: no filter
    ],
)
async def test_search_q(client, crew, catalog, q, expected):
    assert await names(client, crew.member, q=q, sort="name") == expected


async def test_price_stock_owner_filters(client, crew, catalog):
    u = crew.member
    assert await names(client, u, min_price="2.5", sort="name") == ["banana", "cherry", "drill", "easel"]
    assert await names(client, u, max_price="2.50", sort="name") == ["apple", "banana", "cherry"]
    assert await names(client, u, min_price="2", max_price="50", sort="name") == ["banana", "cherry", "easel"]
    assert await names(client, u, in_stock="true", sort="name") == ["banana", "drill", "easel"]
    assert await names(client, u, in_stock="false", sort="name") == ["apple", "cherry"]
    assert await names(client, u, owner_id=str(crew.member.id), sort="name") == ["apple", "banana"]
    assert await names(client, u, owner_id=str(crew.owner.id)) == ["easel"]
    assert await names(client, u, owner_id=str(crew.member.id), in_stock="true", q="A") == ["banana"]


async def test_tag_filter_by_name_or_id_every_tag_required(client, crew, catalog):
    u = crew.member
    red_id = next(t["id"] for t in catalog["apple"]["tags"] if t["name"] == "red")
    assert await names(client, u, tag="fruit", sort="name") == ["apple", "banana", "cherry"]
    assert await names(client, u, tag="FRUIT", sort="name") == ["apple", "banana", "cherry"]
    assert await names(client, u, tag=red_id, sort="name") == ["apple", "cherry"]
    assert await names(client, u, tag=["fruit", "red"], sort="name") == ["apple", "cherry"]  # all of them
    assert await names(client, u, tag=["fruit", red_id], sort="-name") == ["cherry", "apple"]
    assert await names(client, u, tag=["fruit", "tool"]) == []
    assert await names(client, u, tag="no-such-tag") == []
    assert await names(client, u, tag=str(uuid.uuid4())) == []


async def test_include_total_counts_the_filtered_set_not_the_page(client, crew, catalog):
    r = await client.get(ITEMS, params={"tag": "fruit", "limit": 2, "include_total": "true"}, headers=crew.member.headers)
    page = r.json()
    assert len(page["items"]) == 2 and page["total"] == 3 and page["next_cursor"]
    r = await client.get(ITEMS, params={"cursor": page["next_cursor"], "tag": "fruit", "include_total": True},
                         headers=crew.member.headers)
    assert len(r.json()["items"]) == 1 and r.json()["total"] == 3


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0}, {"limit": 101}, {"limit": "x"},
        {"sort": "owner_id"}, {"sort": "price desc"},
        {"min_price": "-1"}, {"max_price": "NaN"}, {"min_price": "1.001"}, {"max_price": "inf"},
        {"min_price": "5", "max_price": "4"},
        {"in_stock": "maybe"}, {"owner_id": "nope"},
        {"q": "x" * 201}, {"q": "nul\x00"}, {"tag": "t" * 51}, {"tag": [f"t{i}" for i in range(21)]},
        {"include_total": "perhaps"},
    ],
)
async def test_bad_list_parameters_are_422(client, crew, params):
    r = await client.get(ITEMS, params=params, headers=crew.member.headers)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"][0] == "query"


def _b64(data) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!", "abc", _b64(b"\xff\xfe"), _b64(b"not json"), _b64([1, 2]), _b64({"s": "created_at"}),
        _b64({"s": "created_at", "v": "yesterday", "id": str(uuid.uuid4())}),
        _b64({"s": "created_at", "v": "2024-01-01T00:00:00", "id": str(uuid.uuid4())}),  # naive
        _b64({"s": "created_at", "v": "2024-01-01T00:00:00+00:00", "id": "nope"}),
        _b64({"s": "created_at", "v": 5, "id": str(uuid.uuid4())}),
        _b64({"s": "created_at", "v": "2024-01-01T00:00:00+00:00", "id": 5}),
        _b64({"s": 5, "v": "2024-01-01T00:00:00+00:00", "id": str(uuid.uuid4())}),
        _b64({"s": "\ud800", "v": "x", "id": str(uuid.uuid4())}),
        _b64({"s": "created_at", "v": "2024-01-01T00:00:00+00:00", "id": str(uuid.uuid4()), "x": 1}),
        _b64({"s": "created_at", "v": "a\x00", "id": str(uuid.uuid4())}),
        _b64({"s": "created_at", "v": "9999-12-31T23:59:59-23:00", "id": str(uuid.uuid4())}),
        _b64({"s": "created_at", "v": "0001-01-01T00:00:00+23:00", "id": str(uuid.uuid4())}),
        _b64({"s": "created_at", "v": "\ud800", "id": str(uuid.uuid4())}),
        "A" * 2000,
    ],
)
async def test_malformed_cursor_is_422(client, crew, cursor):
    r = await client.get(ITEMS, params={"cursor": cursor}, headers=crew.member.headers)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["query", "cursor"]


@pytest.mark.parametrize("value", ["NaN", "1e400", "1.001", "-Infinity", "12345678901"])
async def test_malformed_price_cursor_is_422(client, crew, value):
    cursor = _b64({"s": "price", "v": value, "id": str(uuid.uuid4())})
    r = await client.get(ITEMS, params={"cursor": cursor, "sort": "price"}, headers=crew.member.headers)
    assert r.status_code == 422


async def test_cursor_is_bound_to_its_sort(client, crew):
    for i in range(3):
        await create_item(client, crew.member, name=f"s{i}")
    r = await client.get(ITEMS, params={"limit": 1, "sort": "name"}, headers=crew.member.headers)
    cursor = r.json()["next_cursor"]
    r = await client.get(ITEMS, params={"limit": 1, "sort": "price", "cursor": cursor}, headers=crew.member.headers)
    assert r.status_code == 422 and "sort" in r.json()["errors"][0]["msg"]
    r = await client.get(ITEMS, params={"limit": 1, "sort": "-name", "cursor": cursor}, headers=crew.member.headers)
    assert r.status_code == 422
    r = await client.get(ITEMS, params={"limit": 1, "sort": "name", "cursor": cursor}, headers=crew.member.headers)
    assert r.status_code == 200 and [i["name"] for i in r.json()["items"]] == ["s1"]


def _sort_key(sort: str):
    field = sort.lstrip("-")

    def key(item):
        value = Decimal(item["price"]) if field == "price" else item[field]
        return value, uuid.UUID(item["id"])

    return key


@pytest.fixture
async def ties(client, crew):
    """Items with shared created_at (one bulk transaction) and shared prices: the id tie-break
    decides. Names use lowercase ASCII only, so PostgreSQL's collation and Python agree."""
    r = await client.post(
        f"{ITEMS}/bulk",
        json={"items": [{"name": f"k{i:02d}", "price": str(i % 3), "tag_names": ["t"]} for i in range(13)]},
        headers=crew.member.headers,
    )
    assert r.status_code == 201
    extra = [await create_item(client, crew.member, name=f"z{i}", price="1") for i in range(3)]
    return r.json()["items"] + extra


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("limit", [1, 4, 16, 100])
async def test_every_sort_pages_through_everything_in_order(client, crew, ties, sort, limit):
    got = await list_all(client, crew.member, sort=sort, limit=limit)
    expected = sorted(ties, key=_sort_key(sort), reverse=sort.startswith("-"))
    assert [i["id"] for i in got] == [i["id"] for i in expected]


@pytest.mark.parametrize("sort", SORTS)
async def test_filters_and_sort_combine_with_paging(client, crew, ties, sort):
    got = await list_all(client, crew.member, sort=sort, limit=2, max_price="1", tag="t", q="k")
    expected = sorted((i for i in ties if Decimal(i["price"]) <= 1 and i["name"].startswith("k")),
                      key=_sort_key(sort), reverse=sort.startswith("-"))
    assert [i["id"] for i in got] == [i["id"] for i in expected]


@pytest.mark.parametrize("sort", SORTS)
async def test_no_duplicates_or_gaps_while_items_are_inserted(client, crew, ties, sort):
    """Between and during page fetches, other requests insert items whose keys fall before,
    inside and after the pages already read. Every pre-existing item is returned exactly once."""
    before = {i["id"] for i in ties}
    seen: list[str] = []
    cursor = None
    for page_number in range(100):  # bounded: inserts stop below, so the pages run out
        params = {"sort": sort, "limit": 3} | ({"cursor": cursor} if cursor else {})
        # Inserts run during the first pages only: with inserts landing after the cursor on
        # every page, a client could never reach the end (that is correct, not a bug).
        inserts = [
            create_item(client, crew.other_member, name=f"{prefix}{page_number}-{uuid.uuid4().hex[:6]}", price=price)
            for prefix, price in (("a", "0"), ("k05", "1"), ("zz", "9"))
        ] if page_number < 4 else []
        page, *_ = await asyncio.gather(client.get(ITEMS, params=params, headers=crew.member.headers), *inserts)
        assert page.status_code == 200, page.text
        seen += [i["id"] for i in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    else:
        pytest.fail("pagination did not end")
    assert len(seen) == len(set(seen)), "an item was returned twice"
    assert before <= set(seen), "a pre-existing item was skipped"


async def test_listing_uses_a_constant_number_of_statements(client, crew, engine):
    """The page and its tags are one statement, whatever the page size."""
    await client.post(
        f"{ITEMS}/bulk",
        json={"items": [{"name": f"n{i}", "price": 1, "tag_names": [f"t{i % 7}", "all"]} for i in range(60)]},
        headers=crew.member.headers,
    )
    counts = {}
    for limit in (1, 5, 50):
        async with wire_statements(engine) as sent:
            r = await client.get(ITEMS, params={"limit": limit}, headers=crew.member.headers)
        assert len(r.json()["items"]) == limit
        assert all(len(i["tags"]) == 2 for i in r.json()["items"])
        counts[limit] = len(sent)
    async with wire_statements(engine) as with_filters:
        await client.get(ITEMS, params={"limit": 50, "tag": "all", "q": "n", "include_total": True},
                         headers=crew.member.headers)
    item_id = r.json()["items"][0]["id"]
    async with wire_statements(engine) as by_id:
        await client.get(f"{ITEMS}/{item_id}", headers=crew.member.headers)
    # BEGIN, tenantry_enter (tenant + caller), the page with its tags, COMMIT.
    assert counts == {1: 4, 5: 4, 50: 4}, counts
    assert len(with_filters) == 5  # + COUNT(*)
    assert len(by_id) == 4  # BEGIN, enter, the item with its tags, COMMIT


async def test_unicode_names_sort_and_search(client, crew):
    for name in ("Zoë", "Ångström", "naïve"):
        await create_item(client, crew.member, name=name)
    assert await names(client, crew.member, q="NGSTR") == ["Ångström"]
    assert await names(client, crew.member, q="Ï") in (["naïve"], [])  # depends on the DB's ctype
    got = await list_all(client, crew.member, sort="name", limit=1)
    assert sorted(i["name"] for i in got) == sorted(["Zoë", "Ångström", "naïve"]) and len(got) == 3


async def test_tag_names_with_uuid_shape_are_still_names(client, crew):
    odd = str(uuid.uuid4())
    tag = await create_tag(client, crew.member, odd[:36])
    item = await create_item(client, crew.member, tag_ids=[tag["id"]])
    assert await names(client, crew.member, tag=odd) == [item["name"]]
