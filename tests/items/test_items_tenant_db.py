"""Items run on TenantDB: compiled Core statements, with both isolation layers, checked on the wire.

Layer 1: every statement gets the caller's tenant as a parameter and filters on it (or writes
it). Layer 2: the transaction's first statement after BEGIN is tenantry_enter, which sets
app.tenant_id for RLS.
"""

from __future__ import annotations

import uuid

import pytest

from app.db.statements import TenantStatement, all_statements
from app.items import queries
from tests.items.conftest import ITEMS, create_item
from tests.sql_log import wire_statements


def _between_begin_and_commit(sent) -> list:
    queries_ = [s.query for s in sent]
    assert queries_[0].startswith("BEGIN") and queries_[-1] == "COMMIT;", queries_
    return sent[1:-1]


@pytest.mark.parametrize("call", ["get", "list", "filtered list", "post", "patch", "transfer", "delete", "bulk"])
async def test_every_statement_is_bound_to_the_callers_tenant(client, crew, engine, call):
    item = await create_item(client, crew.member, tag_names=["a", "b"])
    url = f"{ITEMS}/{item['id']}"
    headers = crew.member.headers
    requests = {
        "get": lambda: client.get(url, headers=headers),
        "list": lambda: client.get(ITEMS, headers=headers),
        "filtered list": lambda: client.get(ITEMS, params={"tag": "a", "q": "i", "min_price": "1", "include_total": True,
                                                           "owner_id": str(crew.member.id)}, headers=headers),
        "post": lambda: client.post(ITEMS, json={"name": "new", "price": "1.00", "tag_names": ["a", "z"]}, headers=headers),
        "patch": lambda: client.patch(url, json={"stock_quantity": 9, "tag_names": ["c"]}, headers=headers),
        "transfer": lambda: client.post(f"{url}/transfer", json={"owner_id": str(crew.owner.id)}, headers=headers),
        "delete": lambda: client.delete(url, headers=headers),
        "bulk": lambda: client.post(f"{ITEMS}/bulk", json={"items": [{"name": "b1", "price": 1, "tag_names": ["q"]}]},
                                    headers=headers),
    }
    async with wire_statements(engine) as sent:
        r = await requests[call]()
    assert r.status_code < 300, r.text
    statements = _between_begin_and_commit(sent)
    enter, rest = statements[0], statements[1:]
    assert "tenantry_enter" in enter.query and enter.args[:2] == (crew.tenant.id, crew.member.id)
    assert rest, "the endpoint ran no statement of its own"
    for s in rest:
        assert crew.tenant.id in s.args, s.query
        n = s.args.index(crew.tenant.id) + 1
        assert f"tenant_id = ${n}::UUID" in s.query or f"(tenant_id, " in s.query and f"${n}::UUID AS" in s.query, s.query


async def test_get_filters_items_and_tags_by_tenant():
    sql = queries.GET_ITEM.sql
    assert "items.tenant_id = $1::UUID" in sql
    # The tags subquery is scoped on its own, so a link can never reach another tenant's tag.
    assert "item_tags.tenant_id = $1::UUID" in sql and "tags.tenant_id = $1::UUID" in sql


def test_every_items_statement_is_registered():
    statements = list(all_statements())
    assert all(isinstance(s, TenantStatement) for s in statements)
    names = {s.name for s in statements}
    assert {"get_item", "insert_item", "insert_items", "upsert_tags", "list_tags", "delete_tag"} <= names
    assert queries.update_item(("name", "price")) in statements


async def test_a_failed_write_leaves_nothing_and_returns_the_connection_clean(client, crew, engine):
    """A 409 half-way through a TenantDB transaction: nothing written, pool not leaking."""
    first = await create_item(client, crew.member, name="taken")
    pool = engine.sync_engine.pool
    before = pool.checkedout()
    r = await client.post(ITEMS, json={"name": "taken", "price": "1.00", "tag_names": ["fresh-tag"]},
                          headers=crew.member.headers)
    assert r.status_code == 409 and r.json()["detail"]["field"] == "name"
    assert pool.checkedout() == before
    tags = (await client.get("/api/v1/tags", headers=crew.member.headers)).json()["items"]
    assert "fresh-tag" not in [t["name"] for t in tags]  # the tag created before the failure rolled back
    assert (await client.get(f"{ITEMS}/{first['id']}", headers=crew.member.headers)).status_code == 200


async def test_unknown_item_ids_are_404_not_500(client, crew):
    r = await client.get(f"{ITEMS}/{uuid.uuid4()}", headers=crew.member.headers)
    assert r.status_code == 404
