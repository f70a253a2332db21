"""Operator mistakes print one line saying what is wrong and how to fix it, and exit 1;
`--debug` shows the traceback. `db bootstrap` without passwords generates strong ones."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import asyncpg
from sqlalchemy.engine import make_url

from app.core.config import ROOT
from tests.isolation.servers import free_loopback_port

TENANTRY = [sys.executable, "-m", "app"]


def run_cli(*argv: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    base.update({"ENVIRONMENT": "test", "LOG_LEVEL": "WARNING", **env})
    return subprocess.run([*TENANTRY, *argv], capture_output=True, text=True, env=base, cwd=ROOT, timeout=120)


def assert_one_clear_line(result: subprocess.CompletedProcess, *words: str) -> str:
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 2 and lines[0].startswith("error: ") and "--debug" in lines[1], result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_unreachable_server(settings):
    url = f"postgresql://tenantry_app@127.0.0.1:{free_loopback_port()}/tenantry"
    assert_one_clear_line(run_cli("tenants", "list", DATABASE_URL=url), "cannot reach the database server")


def test_unknown_role(settings):
    url = make_url(settings.database_url).set(username="no_such_role_" + uuid.uuid4().hex[:6], password=None)
    assert_one_clear_line(run_cli("tenants", "list", DATABASE_URL=url.render_as_string(hide_password=False)),
                          "does not exist", "db bootstrap")


def test_guard_refusal_before_serving(admin_url):
    # A superuser as the app role: serve refuses in one line before any worker starts.
    line = assert_one_clear_line(run_cli("serve", "--no-migrate", "--port", "0", DATABASE_URL=admin_url),
                                 "refusing to serve", "superuser")
    assert "DATABASE_URL" in line


def test_weak_production_secret(settings):
    assert_one_clear_line(run_cli("tenants", "list", ENVIRONMENT="prod", DATABASE_URL=settings.database_url),
                          "configuration error", "SECRET_KEY")


def test_debug_shows_the_traceback(settings):
    url = f"postgresql://tenantry_app@127.0.0.1:{free_loopback_port()}/tenantry"
    result = run_cli("--debug", "tenants", "list", DATABASE_URL=url)
    assert result.returncode != 0 and "Traceback" in result.stderr


async def test_bootstrap_without_passwords_generates_them(admin_url):
    suffix = uuid.uuid4().hex[:8]
    owner, app, db = f"t_owner_{suffix}", f"t_app_{suffix}", f"t_boot_{suffix}"
    env = {"DB_OWNER_ROLE": owner, "DB_APP_ROLE": app, "DB_NAME": db}
    try:
        result = await asyncio.to_thread(run_cli, "db", "bootstrap", "--admin-url", admin_url, **env)
        assert result.returncode == 0, result.stderr
        assert "shown only this once" in result.stdout
        urls = dict(line.strip().split("=", 1) for line in result.stdout.splitlines() if "_URL=" in line)
        for key, role in (("MIGRATION_DATABASE_URL", owner), ("DATABASE_URL", app)):
            url = make_url(urls[key])
            assert url.username == role and url.database == db
            assert url.password and len(url.password) >= 32 and url.password != "***"
        conn = await asyncpg.connect(admin_url)
        try:
            stored = await conn.fetch(
                "SELECT rolname FROM pg_authid WHERE rolname = ANY($1) AND rolpassword IS NOT NULL", [owner, app])
            assert len(stored) == 2
        finally:
            await conn.close()
    finally:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            for role in (owner, app):
                await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            await conn.close()


def test_bootstrap_masks_chosen_passwords(admin_url):
    suffix = uuid.uuid4().hex[:8]
    env = {"DB_OWNER_ROLE": f"t_owner_{suffix}", "DB_APP_ROLE": f"t_app_{suffix}", "DB_NAME": f"t_boot_{suffix}"}
    try:
        result = run_cli("db", "bootstrap", "--admin-url", admin_url, "--owner-password", "chosen-owner-pw-1",
                         "--app-password", "chosen-app-pw-1", **env)
        assert result.returncode == 0, result.stderr
        assert "chosen-" not in result.stdout and "***" in result.stdout
    finally:
        async def drop() -> None:
            conn = await asyncpg.connect(admin_url)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{env["DB_NAME"]}" WITH (FORCE)')
                for role in (env["DB_OWNER_ROLE"], env["DB_APP_ROLE"]):
                    await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
            finally:
                await conn.close()

        asyncio.run(drop())
