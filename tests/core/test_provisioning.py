"""Tenant provisioning: the operator CLI, scripts/provision_tenant.py and the platform HTTP API."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import text

from app.cli import main as cli_main
from app.core.config import ROOT, get_settings
from app.core.security import verify_password
from tests.conftest import PLATFORM_KEY, make_settings
from tests.core.conftest import seed_tenant, tenant_row_counts
from tests.factories import unique_slug

KEY = {"X-Platform-Key": PLATFORM_KEY}


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out.strip().splitlines()[-1])


def cli_env(settings, db_urls) -> dict[str, str]:
    return {
        "ENVIRONMENT": "test",
        "DATABASE_URL": settings.database_url,
        "MIGRATION_DATABASE_URL": db_urls.owner_url,
        "SECRET_KEY": settings.secret_key,
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def cli(monkeypatch, capsys, settings, db_urls):
    """Run app.cli.main in-process, in a thread (it calls asyncio.run), with its own env."""
    for name, value in cli_env(settings, db_urls).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PLATFORM_API_KEY", raising=False)
    get_settings.cache_clear()

    def call(argv: list[str]) -> int:
        try:
            return cli_main(argv)
        except SystemExit as exc:  # argparse errors exit; report them like a real process would
            return exc.code if isinstance(exc.code, int) else 1

    async def run(*argv: str) -> CliResult:
        capsys.readouterr()
        code = await asyncio.to_thread(call, list(argv))
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    yield run
    get_settings.cache_clear()


async def scalar(engine, sql: str, **params):
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


# --- CLI: create ------------------------------------------------------------------------------


async def test_create_with_json_prints_the_tenant_and_a_generated_password(cli, superuser_engine, client, factory):
    slug = unique_slug("cli")
    r = await cli("tenants", "create", "--name", "Acme Inc", "--slug", slug, "--admin-email", "Boss@Acme.io", "--json")
    assert r.code == 0, r.err
    data = r.json
    assert set(data) == {"tenant_id", "slug", "admin_user_id", "admin_password"}
    assert data["slug"] == slug
    async with superuser_engine.connect() as conn:
        tenant = (await conn.execute(text("SELECT id, name, status FROM tenants WHERE slug = :s"), {"s": slug})).one()
        user = (
            await conn.execute(text("SELECT id, tenant_id, email, role, password_hash FROM users WHERE tenant_id = :t"),
                               {"t": tenant.id})
        ).one()
    assert (str(tenant.id), tenant.name, tenant.status) == (data["tenant_id"], "Acme Inc", "active")
    assert (str(user.id), user.email, user.role) == (data["admin_user_id"], "boss@acme.io", "owner")
    assert (await verify_password(data["admin_password"], user.password_hash, 4))[0]
    # The human-readable lines come first and also show the generated password.
    assert f"generated admin password: {data['admin_password']}" in r.out
    # The new owner can use the API.
    token = factory.token_for(user.id, tenant.id, "owner")
    me = await client.get("/api/v1/tenant", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["slug"] == slug


async def test_create_with_a_given_password_does_not_echo_it(cli, superuser_engine):
    slug = unique_slug("cli")
    r = await cli("tenants", "create", "--name", "Acme", "--slug", slug, "--admin-email", "a@acme.io",
                  "--admin-password", "a-given-password", "--json")
    assert r.code == 0, r.err
    assert "admin_password" not in r.json
    assert "a-given-password" not in r.out
    h = await scalar(superuser_engine, "SELECT u.password_hash FROM users u JOIN tenants t ON t.id = u.tenant_id "
                                       "WHERE t.slug = :s", s=slug)
    assert (await verify_password("a-given-password", h, 4))[0]


BAD_INPUTS = {
    "uppercase slug": (["--slug", "Acme-Corp"], "slug"),
    "too short slug": (["--slug", "ab"], "slug"),
    "too long slug": (["--slug", "a" * 64], "slug"),
    "underscore slug": (["--slug", "acme_corp"], "slug"),
    "leading hyphen": (["--slug", "-acme"], "slug"),
    "space in slug": (["--slug", "acme corp"], "slug"),
    "bad email": (["--admin-email", "not-an-email"], "admin_email"),
    "email without domain": (["--admin-email", "a@"], "admin_email"),
    "short password": (["--admin-password", "short"], "admin_password"),
    "empty name": (["--name", ""], "name"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
async def test_create_refuses_bad_input_with_exit_2_and_writes_nothing(cli, superuser_engine, case):
    overrides, field = BAD_INPUTS[case]
    email = f"bad-{uuid.uuid4().hex[:8]}@example.com"
    args = {"--name": "Bad Co", "--slug": unique_slug("bad"), "--admin-email": email}
    extra: list[str] = []
    for flag, value in zip(overrides[::2], overrides[1::2]):
        if flag in args:
            args[flag] = value
        else:
            extra += [flag, value]
    tenants_before = await scalar(superuser_engine, "SELECT count(*) FROM tenants")
    # --flag=value, so a value starting with "-" reaches our validation rather than argparse's.
    argv = [f"{flag}={value}" for flag, value in args.items()]
    r = await cli("tenants", "create", *argv, *extra, "--json")
    assert r.code == 2, (r.out, r.err)
    assert r.err.startswith("error: ") and field in r.err, r.err
    if field == "slug":  # the rule in words, not a regular expression
        assert "lowercase letters, digits and hyphens" in r.err and "[a-z" not in r.err, r.err
    assert r.out == ""
    assert await scalar(superuser_engine, "SELECT count(*) FROM tenants") == tenants_before
    assert await scalar(superuser_engine, "SELECT count(*) FROM tenants WHERE slug = :s", s=args["--slug"]) == 0
    assert await scalar(superuser_engine, "SELECT count(*) FROM users WHERE email = :e", e=email) == 0


async def test_create_refuses_a_duplicate_slug(cli, superuser_engine, factory):
    existing = await factory.tenant()
    before = await tenant_row_counts(superuser_engine, existing.id)
    email = f"dup-{uuid.uuid4().hex[:8]}@example.com"
    r = await cli("tenants", "create", "--name", "Again", "--slug", existing.slug, "--admin-email", email)
    assert r.code == 2
    assert "slug" in r.err and "taken" in r.err, r.err
    assert await scalar(superuser_engine, "SELECT count(*) FROM users WHERE email = :e", e=email) == 0
    assert await tenant_row_counts(superuser_engine, existing.id) == before
    assert await scalar(superuser_engine, "SELECT name FROM tenants WHERE slug = :s", s=existing.slug) == "Test Co"


async def test_create_without_required_arguments_is_a_usage_error(cli):
    r = await cli("tenants", "create", "--name", "No Slug")
    assert r.code == 2 and "--slug" in r.err


# --- CLI: list, suspend, resume, delete -------------------------------------------------------


async def test_list_shows_tenants_in_text_and_json(cli, factory):
    t = await factory.tenant()
    r = await cli("tenants", "list", "--json")
    assert r.code == 0
    rows = {row["slug"]: row for row in json.loads(r.out)}
    assert rows[t.slug]["id"] == str(t.id) and rows[t.slug]["status"] == "active"
    r = await cli("tenants", "list")
    assert r.code == 0
    line = next(line for line in r.out.splitlines() if line.startswith(t.slug))
    assert "active" in line and str(t.id) in line
    assert r.out.splitlines()[0].split() == ["SLUG", "STATUS", "ID", "NAME"]


async def test_suspend_and_resume(cli, factory, client):
    t = await factory.tenant()
    assert (await client.get("/api/v1/tenant", headers=t.owner.headers)).status_code == 200

    r = await cli("tenants", "suspend", t.slug)
    assert r.code == 0 and "suspended" in r.out
    status = {row["slug"]: row["status"] for row in json.loads((await cli("tenants", "list", "--json")).out)}
    assert status[t.slug] == "suspended"
    # A still-unexpired token of a suspended tenant stops working at once.
    assert (await client.get("/api/v1/tenant", headers=t.owner.headers)).status_code == 401

    r = await cli("tenants", "resume", t.slug)
    assert r.code == 0
    assert (await client.get("/api/v1/tenant", headers=t.owner.headers)).status_code == 200


@pytest.mark.parametrize("command", ["suspend", "resume"])
async def test_suspend_or_resume_of_an_unknown_slug_is_exit_2(cli, command):
    r = await cli("tenants", command, "no-such-tenant-here")
    assert r.code == 2 and "no tenant" in r.err


async def test_delete_without_yes_is_refused(cli, factory, superuser_engine):
    t = await factory.tenant()
    r = await cli("tenants", "delete", t.slug)
    assert r.code == 2 and "--yes" in r.err
    assert await scalar(superuser_engine, "SELECT count(*) FROM tenants WHERE id = :t", t=t.id) == 1


async def test_delete_removes_every_row_of_the_tenant_and_nothing_else(cli, factory, superuser_engine):
    doomed, other = await seed_tenant(factory), await seed_tenant(factory)
    before = await tenant_row_counts(superuser_engine, doomed.id)
    assert all(before[table] > 0 for table in before), before  # the tenant really has data everywhere
    other_before = await tenant_row_counts(superuser_engine, other.id)

    r = await cli("tenants", "delete", doomed.tenant.slug, "--yes")
    assert r.code == 0, r.err
    after = await tenant_row_counts(superuser_engine, doomed.id)
    assert set(after) == set(before) and all(n == 0 for n in after.values()), after
    assert await tenant_row_counts(superuser_engine, other.id) == other_before

    r = await cli("tenants", "delete", doomed.tenant.slug, "--yes")
    assert r.code == 2 and "no tenant" in r.err


# --- the same code from other processes -------------------------------------------------------


def run_process(args: list[str], settings, db_urls) -> subprocess.CompletedProcess:
    env = {**os.environ, **cli_env(settings, db_urls)}
    env.pop("PLATFORM_API_KEY", None)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


async def test_provision_script_creates_a_tenant(settings, db_urls, superuser_engine):
    slug = unique_slug("script")
    r = await asyncio.to_thread(
        run_process,
        ["scripts/provision_tenant.py", "--name", "Scripted", "--slug", slug, "--admin-email", "ops@example.com", "--json"],
        settings, db_urls,
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout.strip().splitlines()[-1])
    assert data["slug"] == slug and data["admin_password"]
    assert await scalar(superuser_engine, "SELECT id::text FROM tenants WHERE slug = :s", s=slug) == data["tenant_id"]

    bad = await asyncio.to_thread(
        run_process,
        ["scripts/provision_tenant.py", "--name", "Scripted", "--slug", slug, "--admin-email", "ops@example.com"],
        settings, db_urls,
    )
    assert bad.returncode == 2 and "taken" in bad.stderr


async def test_delete_from_a_fresh_process_removes_every_table(settings, db_urls, factory, superuser_engine):
    """A CLI process imports few models; delete must still cover every tenant table."""
    doomed = await seed_tenant(factory)
    r = await asyncio.to_thread(run_process, ["-m", "app", "tenants", "delete", doomed.tenant.slug, "--yes"],
                                settings, db_urls)
    assert r.returncode == 0, r.stderr
    assert all(n == 0 for n in (await tenant_row_counts(superuser_engine, doomed.id)).values())


# --- platform HTTP API -------------------------------------------------------------------------


async def test_platform_api_lifecycle(client, superuser_engine, factory):
    slug = unique_slug("api")
    r = await client.post("/api/v1/platform/tenants", headers=KEY,
                          json={"name": "Remote", "slug": slug, "admin_email": "Remote@Example.com"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["slug"] == slug and created["admin_password"]
    tenant_id, user_id = uuid.UUID(created["tenant_id"]), uuid.UUID(created["admin_user_id"])
    owner = {"Authorization": f"Bearer {factory.token_for(user_id, tenant_id, 'owner')}"}

    listed = await client.get("/api/v1/platform/tenants", headers=KEY)
    assert listed.status_code == 200
    assert {"id": str(tenant_id), "slug": slug, "status": "active", "name": "Remote"}.items() <= next(
        t for t in listed.json()["items"] if t["slug"] == slug
    ).items()
    assert listed.json()["next_cursor"] is None and listed.json()["total"] == len(listed.json()["items"])
    assert (await client.get("/api/v1/tenant", headers=owner)).status_code == 200

    r = await client.post(f"/api/v1/platform/tenants/{slug}/suspend", headers=KEY)
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    assert (await client.get("/api/v1/tenant", headers=owner)).status_code == 401

    r = await client.post(f"/api/v1/platform/tenants/{slug}/resume", headers=KEY)
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert (await client.get("/api/v1/tenant", headers=owner)).status_code == 200

    r = await client.delete(f"/api/v1/platform/tenants/{slug}", headers=KEY)
    assert r.status_code == 204
    assert all(n == 0 for n in (await tenant_row_counts(superuser_engine, tenant_id)).values())
    assert (await client.get("/api/v1/tenant", headers=owner)).status_code == 401
    assert slug not in {t["slug"] for t in (await client.get("/api/v1/platform/tenants", headers=KEY)).json()["items"]}


async def test_platform_api_delete_covers_every_table(client, factory, superuser_engine):
    doomed, other = await seed_tenant(factory), await seed_tenant(factory)
    other_before = await tenant_row_counts(superuser_engine, other.id)
    r = await client.delete(f"/api/v1/platform/tenants/{doomed.tenant.slug}", headers=KEY)
    assert r.status_code == 204, r.text
    assert all(n == 0 for n in (await tenant_row_counts(superuser_engine, doomed.id)).values())
    assert await tenant_row_counts(superuser_engine, other.id) == other_before


async def test_platform_api_bad_input(client, factory):
    existing = await factory.tenant()
    dup = await client.post("/api/v1/platform/tenants", headers=KEY,
                            json={"name": "X", "slug": existing.slug, "admin_email": "x@example.com"})
    assert dup.status_code == 409 and dup.json()["code"] == "conflict"
    bad = await client.post("/api/v1/platform/tenants", headers=KEY,
                            json={"name": "X", "slug": "Bad_Slug", "admin_email": "nope"})
    assert bad.status_code == 422
    fields = {e["loc"][-1] for e in bad.json()["errors"]}
    assert fields == {"slug", "admin_email"}
    for path in ("/api/v1/platform/tenants/no-such-tenant/suspend", "/api/v1/platform/tenants/no-such-tenant/resume"):
        assert (await client.post(path, headers=KEY)).status_code == 404
    assert (await client.delete("/api/v1/platform/tenants/no-such-tenant", headers=KEY)).status_code == 404


@pytest.mark.parametrize("headers", [{}, {"X-Platform-Key": "wrong"}, {"X-Platform-Key": PLATFORM_KEY + "x"},
                                     {"X-Platform-Key": ""}], ids=["missing", "wrong", "longer", "empty"])
async def test_platform_api_without_the_right_key_is_401(client, factory, superuser_engine, headers):
    t = await factory.tenant()
    slug = unique_slug("nokey")
    calls = [
        client.get("/api/v1/platform/tenants", headers=headers),
        client.post("/api/v1/platform/tenants", headers=headers, json={"name": "N", "slug": slug, "admin_email": "n@example.com"}),
        client.post(f"/api/v1/platform/tenants/{t.slug}/suspend", headers=headers),
        client.delete(f"/api/v1/platform/tenants/{t.slug}", headers=headers),
    ]
    for call in calls:
        r = await call
        assert r.status_code == 401, r.text
        assert r.json()["code"] == "not_authenticated"
    assert await scalar(superuser_engine, "SELECT count(*) FROM tenants WHERE slug = :s", s=slug) == 0
    assert await scalar(superuser_engine, "SELECT status::text FROM tenants WHERE id = :t", t=t.id) == "active"


async def test_platform_api_is_404_when_no_key_is_configured(db_urls, factory):
    from app.main import create_app

    disabled = create_app(make_settings(db_urls, platform_api_key=None))
    async with disabled.router.lifespan_context(disabled):
        transport = httpx.ASGITransport(app=disabled)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            t = await factory.tenant()
            for headers in ({}, KEY, {"X-Platform-Key": ""}):
                assert (await c.get("/api/v1/platform/tenants", headers=headers)).status_code == 404
                assert (await c.post(f"/api/v1/platform/tenants/{t.slug}/suspend", headers=headers)).status_code == 404
                r = await c.delete(f"/api/v1/platform/tenants/{t.slug}", headers=headers)
                assert r.status_code == 404 and r.json()["code"] == "not_found"
            # The rest of that app works.
            assert (await c.get("/api/v1/tenant", headers=t.owner.headers)).status_code == 200
