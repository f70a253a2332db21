"""GET /items/{id} reads plain columns, yet keeps the ORM tenant criteria on items and tags."""

from sqlalchemy import event


async def test_read_item_sql_keeps_tenant_criteria(client, factory, engine):
    t = await factory.tenant()
    created = await client.post(
        "/api/v1/items", json={"name": "lamp", "price": "1.00", "tag_names": ["a", "b"]}, headers=t.owner.headers
    )
    seen: list[str] = []

    def record(conn, cursor, statement, params, ctx, many):
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        r = await client.get(f"/api/v1/items/{created.json()['id']}", headers=t.owner.headers)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert r.status_code == 200
    assert [tag["name"] for tag in r.json()["tags"]] == ["a", "b"]
    assert r.json() == created.json()
    read = seen[-1]
    # Layer 1 still filters both tenant tables of the join (RLS is layer 2).
    assert "items.tenant_id = $" in read and "tags.tenant_id = $" in read


async def test_list_sql_keeps_tenant_criteria(client, factory, engine):
    t = await factory.tenant()
    await client.post("/api/v1/items", json={"name": "lamp", "price": "1.00", "tag_names": ["a"]}, headers=t.owner.headers)
    seen: list[str] = []

    def record(conn, cursor, statement, params, ctx, many):
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        r = await client.get("/api/v1/items", headers=t.owner.headers)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert [i["name"] for i in r.json()["items"]] == ["lamp"]
    assert r.json()["items"][0]["tags"][0]["name"] == "a"
    page, tags = seen[-2], seen[-1]
    assert "items.tenant_id = $" in page
    assert "tags.tenant_id = $" in tags
