"""`pip install` of the built wheel, in a fresh virtualenv, migrates and serves.

Builds the wheel from this checkout, installs it (pinned by constraints.txt, from pip's cache
when warm) into a new venv, and runs that venv's `tenantry` from a directory outside the
checkout against a fresh database on the test server: migrations come from inside the
installed package, /docs from its own assets, nothing is written into site-packages, and
without DATABASE_URL the missing `embedded` extra is named in one line. Bounded in time.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from app.core.config import ROOT
from app.db.setup import bootstrap
from tests.isolation.servers import UvicornServer, _wait_ready, free_loopback_port

pytestmark = pytest.mark.slow
STEP_SECONDS = 480


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=STEP_SECONDS, **kwargs)
    assert result.returncode == 0, f"{cmd}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    # Built from a copy of what the wheel is made of: the build leaves nothing in the checkout.
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("app", "alembic"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"), str(source)])
    wheel = next((work / "dist").glob("tenantry-*.whl"))
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
          "-c", str(ROOT / "constraints.txt"), str(wheel)])
    return venv


@pytest.fixture
async def fresh_database(admin_url, settings):
    name = f"tenantry_wheel_{uuid.uuid4().hex[:8]}"
    urls = await bootstrap(admin_url, settings, database=name)
    yield urls
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _env(home: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL") and k != "PYTHONPATH"}
    env.update({"HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "ENVIRONMENT": "test",
                "SECRET_KEY": "wheel-test-secret-key-long-enough-0123456789", "LOG_LEVEL": "WARNING", **values})
    return env


async def test_installed_wheel_migrates_and_serves(wheel_venv, fresh_database, tmp_path):
    tenantry, python = str(wheel_venv / "bin" / "tenantry"), str(wheel_venv / "bin" / "python")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = _env(tmp_path / "home", DATABASE_URL=fresh_database.app_url, MIGRATION_DATABASE_URL=fresh_database.owner_url)

    where = _run([python, "-c", "import app, app.db.setup as s; print(app.__file__); print(s.migrations_dir())"],
                 cwd=outside, env=env).stdout.split()
    site = str(wheel_venv)
    assert where[0].startswith(site) and where[1].startswith(site) and where[1].endswith("migrations"), where

    migrated = await asyncio.to_thread(_run, [tenantry, "migrate"], cwd=outside, env=env)
    assert "migrations applied" in migrated.stdout

    port = free_loopback_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen([tenantry, "serve", "--no-migrate", "--port", str(port)], cwd=outside, env=env,
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    server = UvicornServer(base_url=f"http://127.0.0.1:{port}", process=process, log_path=log)
    try:
        await _wait_ready(server, 90)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            assert (await client.get("/docs")).status_code == 200
            assert (await client.get("/static/swagger-ui/swagger-ui-bundle.js")).status_code == 200
            r = await client.get("/api/v1/items")
            assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    assert not list(wheel_venv.rglob(".tenantry")), "runtime data written into the venv"


def test_without_database_url_the_missing_extra_is_named(wheel_venv, tmp_path):
    result = subprocess.run([str(wheel_venv / "bin" / "tenantry"), "migrate"], capture_output=True, text=True,
                            cwd=tmp_path, env=_env(tmp_path / "home"), timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "tenantry[embedded]" in result.stderr.splitlines()[0]


def test_the_wheel_ships_migrations_and_assets(wheel_venv):
    site = next(wheel_venv.glob("lib/python*/site-packages"))
    assert (site / "app" / "migrations" / "env.py").exists()
    versions = {p.name for p in (site / "app" / "migrations" / "versions").glob("*.py")}
    assert versions == {p.name for p in (ROOT / "alembic" / "versions").glob("*.py")}
    assert (site / "app" / "static" / "redoc" / "redoc.standalone.js").exists()
