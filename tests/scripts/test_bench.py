"""The benchmark still measures what it claims: both apps serve every scenario without an error,
the cross-tenant checks pass before any load, the response shapes match, and scale mode reports
its four figures. Smoke runs on a tiny data set; no figure is asserted, only that each exists."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import asyncpg
import pytest

from app.core.config import ROOT

BENCH_DB = f"tenantry_benchsmoke_{os.getpid()}"
TINY = ["--bcrypt-rounds", "4", "--workers", "1", "--pool-size", "4", "--no-statements"]


@pytest.fixture(scope="module")
def bench(admin_url: str, tmp_path_factory):
    work = tmp_path_factory.mktemp("bench")
    # The apps under test take their settings from the bench alone, never from this shell.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "MIGRATION_", "TENANTRY_"))}

    def run(*args: str) -> dict:
        out = work / "result.json"
        cmd = [sys.executable, str(ROOT / "scripts" / "bench.py"), "--admin-url", admin_url,
               "--database", BENCH_DB, "--work-dir", str(work), "--json", str(out), *TINY, *args]
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return json.loads(out.read_text())

    yield run
    asyncio.run(_drop_bench_databases(admin_url))


async def _drop_bench_databases(admin_url: str) -> None:
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        names = await conn.fetch("SELECT datname FROM pg_database WHERE starts_with(datname, $1)", BENCH_DB)
        for (name,) in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def test_every_scenario_runs_clean_on_both_apps(bench):
    doc = bench("--tenants", "3", "--items", "30", "--users", "2", "--loadgen", "builtin",
                "--duration", "0.5", "--warmup", "0.1", "--connections", "4", "--login-connections", "2",
                "--flood-connections", "4", "--order", "grouped")

    assert doc["scenarios"] == [
        "get_by_id", "get_by_id_key", "list_20", "post_item", "patch_item", "login", "get_by_id+logins", "login_flood"
    ]
    # Preflight: every scenario answered as expected in both apps (None = available), and the
    # cross-tenant GET/PATCH/list checks passed (a failure aborts the run: returncode != 0).
    for app in ("tenantry", "reference"):
        kinds = [*doc["scenarios"][:6], "login_flood"]  # the composite scenarios add no kind of their own
        assert doc["preflight"][app] == dict.fromkeys(kinds), doc["preflight"]
    assert doc["warnings"] == []  # e.g. the two apps' item or page shapes differ
    for scenario, by_app in doc["results"].items():
        for app in ("tenantry", "reference"):
            run = by_app[app]
            assert run["errors"] == 0 and run["requests"] > 0, (scenario, app, run)
            assert all(status.startswith("2") for status in run["statuses"]), (scenario, app, run["statuses"])
    assert doc["machine"]["cpu_count"] == os.cpu_count()


def test_scale_mode_reports_the_four_figures(bench):
    doc = bench("--scale", "--scale-total", "30000", "--scale-requests", "5", "--scale-page", "5")

    scale = doc["scale"]
    assert scale["apps"] == ["tenantry", "reference"]
    assert scale["rows"]["small"] < scale["rows"]["big"]
    for app in scale["apps"]:
        # Every request answered 200 (the run aborts otherwise), page 5 was reached by cursor and
        # started at the right row (checked by the bench), and each figure has its requests.
        figures = scale["results"][app]
        assert set(figures) == {"small", "big", "deep_page1", "deep_page1000"}
        assert all(f["requests"] == 5 and f["p50_ms"] > 0 for f in figures.values()), figures
