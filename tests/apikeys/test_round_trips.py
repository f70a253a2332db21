"""A key costs the round trips a token costs: tenantry_enter_key is the first statement, and
nothing else is added (both data paths), and RLS beneath it is the tenant's."""

from __future__ import annotations

from tests.apikeys.helpers import bot_key, key_headers
from tests.core.test_request_path import recorded_sql
from tests.sql_log import wire_statements


def _inner(sent) -> list:
    queries = [s.query for s in sent]
    assert queries[0].startswith("BEGIN") and queries[-1] == "COMMIT;", queries
    return sent[1:-1]


async def test_core_path_get_by_id_same_statements_as_a_token(client, factory, engine):
    t = await factory.tenant()
    _, key = await bot_key(client, t.owner)
    item = (await client.post("/api/v1/items", json={"name": "rt", "price": "1.00"}, headers=t.owner.headers)).json()
    url = f"/api/v1/items/{item['id']}"
    await client.get(url, headers=key_headers(key["key"]))  # last_used_at touched now, not below
    async with wire_statements(engine) as by_token:
        assert (await client.get(url, headers=t.owner.headers)).status_code == 200
    async with wire_statements(engine) as by_key:
        assert (await client.get(url, headers=key_headers(key["key"]))).status_code == 200
    token_stmts, key_stmts = _inner(by_token), _inner(by_key)
    assert "tenantry_enter(" in token_stmts[0].query and "tenantry_enter_key(" in key_stmts[0].query
    assert key_stmts[0].args[:2] == (t.id, __import__("uuid").UUID(key["id"]))
    assert len(key_stmts) == len(token_stmts)
    assert [s.query for s in key_stmts[1:]] == [s.query for s in token_stmts[1:]]


async def test_orm_path_enters_with_the_key_in_one_statement(client, factory, engine):
    t = await factory.tenant()
    _, key = await bot_key(client, t.owner)
    await client.get("/api/v1/tenant", headers=key_headers(key["key"]))
    with recorded_sql(engine) as statements:
        r = await client.get("/api/v1/tenant", headers=key_headers(key["key"]))
    assert r.status_code == 200 and r.json()["id"] == str(t.id)
    assert "tenantry_enter_key(" in statements[0] and len(statements) == 2, statements  # enter + the tenant row
    assert not any("set_config" in s for s in statements)
