"""The Authorize dialog of /docs: the OAuth2 password form exactly as Swagger UI posts it."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest

from tests.auth.helpers import ME, bearer

TOKEN = "/api/v1/auth/token"
# Swagger UI's authorizeRequest headers.
SWAGGER_HEADERS = {"Accept": "application/json, text/plain, */*", "Content-Type": "application/x-www-form-urlencoded"}


def swagger_body(**fields: str) -> str:
    """Swagger UI's buildFormData: encodeURIComponent, %20 → +, empty values left out."""
    return "&".join(f"{k}={quote(v, safe='')}".replace("%20", "+") for k, v in fields.items() if v)


async def test_openapi_advertises_the_password_flow(client):
    spec = (await client.get("/openapi.json")).json()
    scheme = spec["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    assert scheme["flows"]["password"]["tokenUrl"] == TOKEN
    for path, method in [(ME, "get"), ("/api/v1/users", "post"), ("/api/v1/tenant", "get"),
                         ("/api/v1/items", "get"), ("/api/v1/items/{item_id}", "patch"), ("/api/v1/tags", "post")]:
        assert {"OAuth2PasswordBearer": []} in spec["paths"][path][method]["security"]
    form = spec["paths"][TOKEN]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
    assert {"username", "password", "client_id"} <= set(form["schema"]["properties"])


async def test_swagger_request_body_form_logs_in(client, factory):
    """Client credentials location "Request body": client_id travels in the form."""
    t = await factory.tenant(email="docs.user@example.com", password="p@ss word+&=?")
    body = swagger_body(grant_type="password", scope="", username="docs.user@example.com",
                        password="p@ss word+&=?", client_id=t.slug)
    assert body == f"grant_type=password&username=docs.user%40example.com&password=p%40ss+word%2B%26%3D%3F&client_id={t.slug}"
    r = await client.post(TOKEN, content=body, headers=SWAGGER_HEADERS)
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert tokens["token_type"] == "bearer" and tokens["refresh_token"]
    assert "error" not in tokens  # Swagger UI treats a truthy "error" key as a failed login
    me = await client.get(ME, headers=bearer(tokens["access_token"]))
    assert me.status_code == 200 and me.json()["email"] == "docs.user@example.com"


async def test_swagger_basic_header_form_logs_in(client, factory):
    """Client credentials location "Basic auth header": Basic base64(client_id:client_secret)."""
    t = await factory.tenant()
    body = swagger_body(grant_type="password", username=t.owner.email, password=t.owner.password)
    basic = base64.b64encode(f"{t.slug}:".encode()).decode()
    r = await client.post(TOKEN, content=body, headers={**SWAGGER_HEADERS, "Authorization": f"Basic {basic}"})
    assert r.status_code == 200, r.text
    assert (await client.get(ME, headers=bearer(r.json()["access_token"]))).status_code == 200


async def test_form_client_id_wins_over_basic(client, factory):
    t = await factory.tenant()
    body = swagger_body(grant_type="password", username=t.owner.email, password=t.owner.password, client_id=t.slug)
    basic = base64.b64encode(b"some-other-tenant:secret").decode()
    r = await client.post(TOKEN, content=body, headers={**SWAGGER_HEADERS, "Authorization": f"Basic {basic}"})
    assert r.status_code == 200, r.text


async def test_form_wrong_password_is_the_same_401(client, factory):
    t = await factory.tenant()
    body = swagger_body(grant_type="password", username=t.owner.email, password="nope-nope", client_id=t.slug)
    r = await client.post(TOKEN, content=body, headers=SWAGGER_HEADERS)
    assert r.status_code == 401
    assert (r.json()["code"], r.json()["detail"]) == ("invalid_credentials", "invalid tenant, email or password")


@pytest.mark.parametrize(
    "body, field",
    [
        ("grant_type=password&username=a%40example.com&password=x", "client_id"),
        ("grant_type=password&password=x&client_id=acme", "username"),
        ("grant_type=client_credentials&username=a%40example.com&password=x&client_id=acme", "grant_type"),
    ],
)
async def test_incomplete_form_is_422_naming_the_field(body, field, client):
    r = await client.post(TOKEN, content=body, headers=SWAGGER_HEADERS)
    assert r.status_code == 422, r.text
    assert ["body", field] in [e["loc"] for e in r.json()["errors"]]


async def test_json_to_the_form_endpoint_is_422(client):
    r = await client.post(TOKEN, json={"username": "a@example.com", "password": "x", "client_id": "acme"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["header", "content-type"]


async def test_oversized_form_is_422(client):
    r = await client.post(TOKEN, content="password=" + "x" * 20_000, headers=SWAGGER_HEADERS)
    assert r.status_code == 422
