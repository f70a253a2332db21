"""The README's walk-through runs, exactly as written, against a served app.

The fenced block that starts with "# The walk-through" is taken from README.md and run by bash
(-euo pipefail) against uvicorn serving the test database; its `tenantry tenants create`
reaches the same database through the environment. Any failing call stops it (curl
--fail-with-body), so a README that drifts from the API fails here.
"""

from __future__ import annotations

import asyncio
import re
import shutil

import pytest

from app.core.config import ROOT
from tests.isolation.servers import app_env, uvicorn_server

MARKER = "# The walk-through"
BOUND_SECONDS = 180


def walkthrough_block() -> str:
    blocks = re.findall(r"^```sh\n(.*?)^```$", (ROOT / "README.md").read_text(), flags=re.S | re.M)
    found = [b for b in blocks if b.startswith(MARKER)]
    assert len(found) == 1, f"README.md needs exactly one ```sh block starting with {MARKER!r}"
    return found[0]


async def test_readme_walkthrough_runs_top_to_bottom(settings):
    for tool in ("bash", "curl", "python3"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed: the README walk-through needs it")
    if not (ROOT / ".venv" / "bin" / "tenantry").exists():
        pytest.skip("no .venv/bin/tenantry: the walk-through provisions with it (run scripts/test.py)")
    script = walkthrough_block()
    # The session's database is fresh, and no other test provisions the slug "acme".
    env = app_env(settings, log_level="WARNING")
    async with uvicorn_server(env, workers=1) as server:
        process = await asyncio.create_subprocess_exec(
            "bash", "-euo", "pipefail", "-c", script, cwd=ROOT, env={**env, "API": server.base_url},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), BOUND_SECONDS)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
    assert '"code":"conflict"' in text and '"code":"not_found"' in text, text[-6000:]
    assert text.count("HTTP/1.1 204") == 3, text[-6000:]
