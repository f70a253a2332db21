"""Schema-driven fuzzing (schemathesis) of every operation with a real owner token.

Checks: no 5xx, and every documented response matches its schema. Bounded by FUZZ_EXAMPLES
(default 8 per operation, derandomized, no deadline) so it stays cheap in the normal suite;
scripts/fuzz.py runs the same test with many more examples.

The fuzzed app is a second instance of the app (same database) started by schemathesis on its
own event loop thread: its engine lives on that loop, never on the test session's.
"""

from __future__ import annotations

import asyncio
import os

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error, response_schema_conformance

from app.api import include_api
from app.core.config import ROOT
from app.core.openapi import install_openapi, operation_id
from tests.isolation.conftest import PLATFORM_KEY, World, build_world
from tests.isolation.servers import app_env, uvicorn_server

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def fuzz_world(iso_factory) -> World:
    """A tenant of its own (a DELETE /platform/tenants/{slug} can only hit tenants it knows)."""
    return await build_world(iso_factory, "fuzz")


@pytest.fixture(scope="module")
def fuzz_app(settings, fuzz_world):
    """The real app (middleware, error handlers, lifespan) that every generated case calls."""
    from schemathesis.python import asgi

    from app.main import create_app

    application = create_app(settings)
    assert application.openapi()["paths"] == _STATIC_APP.openapi()["paths"]
    yield application
    # Stop its lifespan (disposes its engine) before the test database is dropped.
    asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
def fuzz_headers(fuzz_world) -> dict[str, str]:
    return {**fuzz_world.owner.headers, "X-Platform-Key": PLATFORM_KEY}


# The schema must exist at collection time (schemathesis' fixture-based lazy loader breaks on
# pytest 9: it writes Node._nodeid). The routes alone give the same OpenAPI document without a
# database; fuzz_app checks that the real app serves exactly these paths.
_STATIC_APP = FastAPI(generate_unique_id_function=operation_id)
include_api(_STATIC_APP)
install_openapi(_STATIC_APP)
schema = schemathesis.openapi.from_dict(_STATIC_APP.openapi())


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
def test_api_fuzz(case, fuzz_app, fuzz_headers):
    # The real token (and platform key) override whatever the generator put in those headers.
    case.headers = {**(case.headers or {}), **fuzz_headers}
    case.call_and_validate(app=fuzz_app, checks=[not_a_server_error, response_schema_conformance])


# --- the schemathesis command line against a served app: every check, the stateful phase too ---

CLI_EXAMPLES = int(os.environ.get("FUZZ_CLI_EXAMPLES", "10"))
CLI_MAX_SECONDS = int(os.environ.get("FUZZ_CLI_SECONDS", "150"))
CLI_CONFIG = ROOT / "tests" / "isolation" / "schemathesis.toml"
SCHEMATHESIS = ROOT / ".venv" / "bin" / "schemathesis"


async def test_schemathesis_all_checks_find_nothing(settings, fuzz_world, tmp_path):
    """`schemathesis run --checks all` (examples, coverage, fuzzing and stateful phases) against
    uvicorn serving the real app: zero failures. Bounded by --max-examples and --max-time."""
    if not SCHEMATHESIS.exists():
        pytest.skip(f"schemathesis command not found at {SCHEMATHESIS} (install the dev extra)")
    async with uvicorn_server(app_env(settings), workers=1) as server:
        command = [
            str(SCHEMATHESIS), "--config-file", str(CLI_CONFIG), "run", f"{server.base_url}/openapi.json",
            "--checks", "all",
            "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", str(CLI_EXAMPLES),
            "--max-time", str(CLI_MAX_SECONDS), "--seed", "17", "--generation-deterministic",
            "--no-color", "--workers", "1", "--request-timeout", "30",
            "-H", f"Authorization: {fuzz_world.owner.headers['Authorization']}",
            "-H", f"X-Platform-Key: {PLATFORM_KEY}",
        ]
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path)  # its .schemathesis/ cache stays out of the checkout: every run starts equal
        try:
            output, _ = await asyncio.wait_for(process.communicate(), CLI_MAX_SECONDS + 120)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-12000:]
