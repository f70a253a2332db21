"""A client generated from the app's OpenAPI by a standard generator reads every error it gets.

openapi-python-client (PyPI) generates a package from app.openapi() into a temporary
directory; the test imports it and runs a short scenario against uvicorn serving the app:
log in, create and list items, then a 404, a 409 and a 422 that the client parses into its
Problem model (RFC 9457, application/problem+json), field path included.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import uuid

import pytest

from app.core.config import ROOT
from app.main import create_app
from tests.isolation.servers import app_env, uvicorn_server

GENERATOR = ROOT / ".venv" / "bin" / "openapi-python-client"
PACKAGE = "tenantry_generated_client"


@pytest.fixture(scope="module")
def generated(settings, tmp_path_factory):
    """The generated package, imported (removed from sys.modules afterwards)."""
    if not GENERATOR.exists():
        pytest.skip(f"openapi-python-client not found at {GENERATOR} (install the dev extra)")
    work = tmp_path_factory.mktemp("client")
    spec = work / "openapi.json"
    spec.write_text(json.dumps(create_app(settings).openapi()))
    import subprocess

    out = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(spec), "--output-path", str(work / PACKAGE), "--meta", "none"],
        capture_output=True, text=True, timeout=120, cwd=work,
    )
    assert (work / PACKAGE / "__init__.py").exists(), out.stdout + out.stderr
    sys.path.insert(0, str(work))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(work))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]
        shutil.rmtree(work, ignore_errors=True)


def _api(name: str):
    return importlib.import_module(f"{PACKAGE}.api.{name}")


async def test_generated_client_parses_404_409_and_422(generated, settings, factory):
    models = importlib.import_module(f"{PACKAGE}.models")
    t = await factory.tenant()
    async with uvicorn_server(app_env(settings), workers=1) as server:
        anonymous = generated.Client(base_url=server.base_url)
        pair = await _api("auth.login").asyncio(client=anonymous, body=models.LoginRequest(
            tenant=t.slug, email=t.owner.email, password=t.owner.password))
        assert isinstance(pair, models.TokenPair), pair
        client = generated.AuthenticatedClient(base_url=server.base_url, token=pair.access_token)

        name = f"lamp-{uuid.uuid4().hex[:8]}"
        item = await _api("items.create_item").asyncio(client=client, body=models.ItemCreate(
            name=name, price="19.90", tag_names=["lighting"]))
        assert isinstance(item, models.ItemRead) and item.name == name
        page = await _api("items.list_items").asyncio(client=client)
        assert isinstance(page, models.PageItemRead) and [i.name for i in page.items] == [name]

        missing = await _api("items.get_item").asyncio(client=client, item_id=uuid.uuid4())
        assert isinstance(missing, models.Problem), missing
        assert (missing.status, missing.code) == (404, "not_found")

        duplicate = await _api("items.create_item").asyncio(client=client, body=models.ItemCreate(
            name=name, price="1.00"))
        assert isinstance(duplicate, models.Problem), duplicate
        assert (duplicate.status, duplicate.code) == (409, "conflict")
        assert duplicate.errors[0].loc == ["body", "name"]

        invalid = await _api("items.create_item").asyncio(client=client, body=models.ItemCreate(
            name=name + "-2", price="-1"))
        assert isinstance(invalid, models.Problem), invalid
        assert (invalid.status, invalid.code) == (422, "validation_error")
        assert ["body", "price"] in [e.loc for e in invalid.errors]
        assert invalid.instance == "/api/v1/items" and invalid.type_ == "urn:tenantry:problem:validation_error"
