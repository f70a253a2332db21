"""What the operator sees: the access log (status actually sent, JSON option), /metrics, the
connection budget at start-up and in /readyz, and a graceful SIGTERM."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import uuid

import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy.exc import DisconnectionError

from app.main import create_app
from tests.conftest import make_settings
from tests.factories import Factory
from tests.isolation.servers import BOUND, app_env, bounded, uvicorn_server


def _probe_router() -> APIRouter:
    router = APIRouter(prefix="/_obs")

    @router.get("/lost-connection")
    async def lost_connection():
        # Not a registered database exception: it reaches the catch-all, which answers 503.
        raise DisconnectionError("connection lost")

    @router.get("/bug")
    async def bug():
        raise RuntimeError("a bug")

    return router


async def _client_for(settings, *, raise_app_exceptions: bool = True):
    app = create_app(settings)
    app.include_router(_probe_router())
    return app, httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions),
                                  base_url="http://test", timeout=BOUND)


def _access_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tenantry.access"]


async def test_the_access_log_records_the_status_the_client_received(settings, caplog):
    caplog.set_level(logging.INFO, logger="tenantry.access")
    app, client = await _client_for(settings, raise_app_exceptions=False)
    async with app.router.lifespan_context(app), client:
        r = await client.get("/_obs/lost-connection")
        assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
        assert r.headers.get("x-request-id")  # the outermost layer saw this response too
        r = await client.get("/_obs/bug")
        assert r.status_code == 500
    lines = [json.loads(line) for line in _access_lines(caplog)]  # JSON lines: a path cannot forge one
    assert {"path": "/_obs/lost-connection", "status": 503}.items() <= next(
        line for line in lines if line["path"] == "/_obs/lost-connection").items(), lines
    assert any(line["path"] == "/_obs/bug" and line["status"] == 500 for line in lines), lines


async def test_json_access_log(db_urls, caplog):
    caplog.set_level(logging.INFO, logger="tenantry.access")
    settings = make_settings(db_urls, log_format="json")
    app, client = await _client_for(settings)
    async with app.router.lifespan_context(app), client:
        t = await Factory(app.state.sessionmaker, settings).tenant()
        r = await client.get("/api/v1/tenant", headers={**t.owner.headers, "X-Request-ID": "req-42"})
        assert r.status_code == 200
    (record,) = [r for r in caplog.records if r.name == "tenantry.access" and "req-42" in r.getMessage()]
    # What the worker writes with LOG_FORMAT=json: one JSON object per line, fields at the top.
    from app.main import JsonLogFormatter

    line = json.loads(JsonLogFormatter().format(record))
    assert line["method"] == "GET" and line["path"] == "/api/v1/tenant" and line["status"] == 200
    assert line["tenant_id"] == str(t.id) and line["user_id"] == str(t.owner.id) and line["duration_ms"] >= 0
    assert line["level"] == "INFO" and line["ts"]


async def test_metrics_use_route_templates_not_raw_paths(client, factory):
    t = await factory.tenant()
    missing = uuid.uuid4()
    assert (await client.get(f"/api/v1/items/{missing}", headers=t.owner.headers)).status_code == 404
    assert (await client.get(f"/no/such/{missing}")).status_code == 404
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    body = r.text
    assert 'tenantry_http_requests_total{method="GET",route="/api/v1/items/{item_id}",status="404"}' in body, body[:1500]
    assert 'route="<unmatched>"' in body
    assert str(missing) not in body and str(t.id) not in body
    for name in ("tenantry_http_request_duration_seconds_bucket", "tenantry_db_pool_in_use",
                 "tenantry_db_pool_waiting", "tenantry_password_hash_queue", "tenantry_http_requests_in_flight"):
        assert name in body, name


async def test_the_connection_budget_is_logged_and_an_overrun_is_loud(db_urls, caplog):
    caplog.set_level(logging.INFO, logger="tenantry.budget")
    settings = make_settings(db_urls, db_pool_size=64, workers=4, instances=3)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            ready = (await client.get("/readyz")).json()
    budget = ready["connections"]
    assert budget["needed"] == 64 * 4 * 3 and budget["available"] < budget["needed"] and budget["overrun"], budget
    warnings = [r.getMessage() for r in caplog.records if r.name == "tenantry.budget" and r.levelno == logging.WARNING]
    assert warnings and "OVERRUN" in warnings[0] and "768" in warnings[0], warnings

    caplog.clear()
    small = make_settings(db_urls, db_pool_size=2)
    app = create_app(small)
    async with app.router.lifespan_context(app):
        assert app.state.budget.needed == 2 and not app.state.budget.overrun
    infos = [r.getMessage() for r in caplog.records if r.name == "tenantry.budget"]
    assert infos and "2 per worker x 1 workers x 1 instances" in infos[0], infos


@pytest.mark.slow
async def test_sigterm_lets_the_request_in_flight_finish_then_closes_the_pool(settings, factory):
    t = await factory.tenant()  # its hash has 4 rounds: this login re-hashes at 13 (slow, on purpose)
    env = app_env(settings, bcrypt_rounds=13, log_level="INFO")
    async with uvicorn_server(env, workers=1) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=BOUND) as client:
            login = asyncio.create_task(client.post("/api/v1/auth/login", json={
                "tenant": t.slug, "email": t.owner.email, "password": t.owner.password}))
            await bounded(_until_in_flight(client, login))
            server.process.send_signal(signal.SIGTERM)
            r = await bounded(login)
        assert r.status_code == 200, r.text
        # uvicorn re-raises SIGTERM once its graceful shutdown is done (`tenantry serve` turns
        # that into exit code 0).
        assert await asyncio.to_thread(server.process.wait, BOUND) in (0, -signal.SIGTERM)
        log = server.log_text()
    assert "shut down: database pool closed" in log, log[-2000:]


async def _until_in_flight(client: httpx.AsyncClient, login: asyncio.Task) -> None:
    """Until /metrics counts a request in flight besides itself (the login)."""
    while not login.done():
        body = (await client.get("/metrics")).text
        match = re.search(r"^tenantry_http_requests_in_flight (\S+)$", body, re.M)
        if match and float(match.group(1)) >= 2:
            return
        await asyncio.sleep(0.02)  # polling interval only
    raise AssertionError(f"the login finished before SIGTERM could be sent: {login.result().text}")


@pytest.mark.slow
async def test_metrics_add_up_over_serve_workers(settings):
    """`tenantry serve --workers 2`: whichever worker answers /metrics reports both workers' counts."""
    import subprocess
    import sys

    from app.core.config import ROOT
    from tests.isolation.servers import free_loopback_port
    from tests.ops.test_pgbouncer import _ready, _stop

    port = free_loopback_port()
    env = {k: v for k, v in app_env(settings).items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--no-migrate", "--workers", "2", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        async with httpx.AsyncClient(timeout=BOUND) as client:
            await asyncio.wait_for(_ready(client, port, proc), 60)
        # New connections each time, so the kernel spreads them over both workers.
        for _ in range(40):
            async with httpx.AsyncClient(timeout=BOUND) as client:
                assert (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
        totals = set()
        for _ in range(4):
            async with httpx.AsyncClient(timeout=BOUND) as client:
                body = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            match = re.search(r'^tenantry_http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)$',
                              body, re.M)
            assert match, body[:2000]
            totals.add(float(match.group(1)))
        assert totals == {40.0}, totals
    finally:
        _stop(proc)


async def test_pool_gauges_show_connections_in_use_and_requests_waiting(db_urls):
    from tests.isolation.servers import running_app

    settings = make_settings(db_urls, db_pool_size=2, db_pool_timeout=BOUND)
    async with running_app(settings) as (app, client):
        gate = app.state.gate
        t = await Factory(app.state.sessionmaker, settings).tenant()
        gate.reset(target=2)
        holders = [asyncio.create_task(client.get("/_probe/hold", headers=t.owner.headers)) for _ in range(2)]
        await bounded(gate.all_holding.wait())
        gate.target, gate.all_arrived = 1, asyncio.Event()
        waiter = asyncio.create_task(client.get("/_probe/queued", headers=t.owner.headers))
        await bounded(gate.all_arrived.wait())
        for _ in range(20):  # let it reach the pool's queue (it cannot pass it)
            await asyncio.sleep(0)
        body = (await client.get("/metrics")).text
        gate.release.set()
        assert all(r.status_code == 200 for r in await bounded(asyncio.gather(*holders, waiter)))
    assert re.search(r"^tenantry_db_pool_in_use 2\.0$", body, re.M), body
    assert re.search(r"^tenantry_db_pool_waiting 1\.0$", body, re.M), body
    assert re.search(r"^tenantry_db_pool_size 2\.0$", body, re.M), body
