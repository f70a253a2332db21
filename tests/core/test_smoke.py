"""The app starts against the migrated database and answers health checks."""


async def test_healthz(client):
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_readyz_reports_safe_database(client):
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ready"
    assert r.json()["connections"]["needed"] >= 1  # the connection budget (app/db/budget.py)


async def test_my_tenant_needs_a_token(client):
    r = await client.get("/api/v1/tenant")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


async def test_my_tenant_with_token(client, factory):
    t = await factory.tenant()
    r = await client.get("/api/v1/tenant", headers=t.owner.headers)
    assert r.status_code == 200, r.text
    assert r.json()["slug"] == t.slug


async def test_request_id_is_echoed_or_generated(client):
    r = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await client.get("/healthz")
    assert len(r.headers["x-request-id"]) == 32
