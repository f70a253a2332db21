"""Every error leaves as an RFC 9457 problem (application/problem+json) with the right status and
a stable `code`, never a traceback; 405 names every method of the path."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.core.errors import (
    AppError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PreconditionFailed,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    install_error_handlers,
)
from tests.conftest import PLATFORM_KEY

KEY = {"X-Platform-Key": PLATFORM_KEY}


def assert_error_body(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert {"type", "title", "status", "detail", "instance", "code"} <= set(body) <= {
        "type", "title", "status", "detail", "instance", "code", "errors"}, body
    assert body["code"] == code and body["status"] == status
    assert body["type"] == f"urn:tenantry:problem:{code}"
    assert body["instance"] == r.request.url.path
    assert isinstance(body["detail"], str)
    return body


# --- the real app ---------------------------------------------------------------------------


async def test_unknown_route_is_a_json_404(client):
    body = assert_error_body(await client.get("/api/v1/no-such-thing"), 404, "not_found")
    assert body["detail"] == "Not Found" and body["title"] == "Not Found"


async def test_wrong_method_is_a_json_405(client):
    r = await client.delete("/healthz")
    assert_error_body(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "GET"


@pytest.mark.parametrize("method, path, allow", [
    ("PUT", "/api/v1/items/00000000-0000-0000-0000-000000000000", "DELETE, GET, PATCH"),
    ("PATCH", "/api/v1/items/bulk", "POST"),
    ("DELETE", "/api/v1/users/me", "GET, PATCH"),
    ("PUT", "/api/v1/items", "GET, POST"),
])
async def test_405_lists_every_method_of_the_path(client, method, path, allow):
    # "bulk" and "me" are not ids: an undeclared method there is a 405, never a 422 about a uuid.
    r = await client.request(method, path)
    assert_error_body(r, 405, "method_not_allowed")
    assert r.headers["allow"] == allow


async def test_a_malformed_id_is_a_404(client):
    assert_error_body(await client.get("/api/v1/items/not-a-uuid"), 404, "not_found")


async def test_json_that_is_not_utf8_is_a_422(client):
    r = await client.post("/api/v1/platform/tenants", headers={**KEY, "Content-Type": "application/json"},
                          content=b'{"name": "\xff"}')
    body = assert_error_body(r, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body"]


async def test_malformed_json_is_a_422(client):
    r = await client.post(
        "/api/v1/platform/tenants", headers={**KEY, "Content-Type": "application/json"}, content=b'{"name": "x",'
    )
    body = assert_error_body(r, 422, "validation_error")
    assert body["errors"][0]["type"] == "json_invalid"
    assert body["errors"][0]["loc"][0] == "body"


async def test_a_body_that_is_not_an_object_is_a_422(client):
    r = await client.post("/api/v1/platform/tenants", headers=KEY, json=["not", "an", "object"])
    assert_error_body(r, 422, "validation_error")


async def test_validation_errors_name_the_field(client):
    r = await client.post("/api/v1/platform/tenants", headers=KEY,
                          json={"name": "x", "slug": "ok-slug", "admin_email": "a@example.com", "surprise": 1})
    body = assert_error_body(r, 422, "validation_error")
    # InputSchema forbids unknown fields rather than silently dropping them.
    assert [e["loc"] for e in body["errors"]] == [["body", "surprise"]]
    assert {"loc", "msg", "type"} == set(body["errors"][0])
    assert body["detail"].startswith("body.surprise: ")


async def test_missing_token_is_401_with_the_bearer_challenge(client):
    r = await client.get("/api/v1/tenant")
    assert_error_body(r, 401, "not_authenticated")
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("token", ["garbage", "a.b.c", ""], ids=["garbage", "three-parts", "empty"])
async def test_bad_token_is_401(client, token):
    r = await client.get("/api/v1/tenant", headers={"Authorization": f"Bearer {token}"})
    assert_error_body(r, 401, "not_authenticated")


# --- the handlers, on a bare app --------------------------------------------------------------


def bare_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    cases = {
        "not-found": NotFound("no such thing"),
        "conflict": Conflict({"field": "slug", "message": "slug already exists"}),
        "forbidden": Forbidden(),
        "unauthorized": Unauthorized("token expired"),
        "precondition": PreconditionFailed("changed meanwhile"),
        "invalid": Invalid("price", "must not be negative"),
        "throttled": TooManyRequests("slow down", headers={"Retry-After": "30"}),
        "unavailable": ServiceUnavailable(),
        "custom": AppError("teapot", code="teapot"),
    }
    def raiser(exc: AppError):
        async def raise_it():
            raise exc

        return raise_it

    for name, exc in cases.items():
        app.add_api_route(f"/{name}", raiser(exc))

    @app.get("/crash")
    async def crash():
        raise ValueError("secret internals: password=hunter2")

    return app


@pytest.fixture
async def bare():
    # raise_app_exceptions=False: the server-error middleware re-raises after responding.
    transport = httpx.ASGITransport(app=bare_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.mark.parametrize(
    "path, status, code, detail, errors",
    [
        ("/not-found", 404, "not_found", "no such thing", None),
        ("/conflict", 409, "conflict", "slug already exists",
         [{"loc": ["body", "slug"], "msg": "slug already exists", "type": "conflict"}]),
        ("/forbidden", 403, "forbidden", "forbidden", None),
        ("/unauthorized", 401, "not_authenticated", "token expired", None),
        ("/precondition", 412, "precondition_failed", "changed meanwhile", None),
        ("/invalid", 422, "validation_error", "body.price: must not be negative",
         [{"loc": ["body", "price"], "msg": "must not be negative", "type": "value_error"}]),
        ("/throttled", 429, "too_many_requests", "slow down", None),
        ("/unavailable", 503, "service_unavailable", "service unavailable", None),
        ("/custom", 400, "teapot", "teapot", None),
    ],
)
async def test_app_errors_render_code_and_detail(bare, path, status, code, detail, errors):
    body = assert_error_body(await bare.get(path), status, code)
    assert body["detail"] == detail
    assert body.get("errors") == errors


async def test_error_headers_are_kept(bare):
    assert (await bare.get("/throttled")).headers["retry-after"] == "30"
    assert (await bare.get("/unauthorized")).headers["www-authenticate"] == "Bearer"


async def test_an_unexpected_exception_is_a_500_without_internals(bare):
    r = await bare.get("/crash")
    body = assert_error_body(r, 500, "internal_error")
    assert "hunter2" not in r.text and "Traceback" not in r.text
    assert body["detail"] == "internal error"


async def test_oversized_body_is_413_before_parsing(client, settings):
    body = b'{"name": "' + b"x" * (settings.max_body_bytes + 10) + b'"}'
    r = await client.post("/api/v1/items", content=body, headers={"Content-Type": "application/json"})
    body = assert_error_body(r, 413, "payload_too_large")
    assert body["instance"] == "/api/v1/items"


async def test_oversized_chunked_body_is_413(client, settings, factory):
    async def chunks():
        for _ in range(settings.max_body_bytes // 65536 + 2):
            yield b"x" * 65536

    # Authenticated: an anonymous caller gets 401 before its body is read at all.
    t = await factory.tenant()
    r = await client.post("/api/v1/items", content=chunks(),
                          headers={"Content-Type": "application/json", **t.owner.headers})
    assert r.status_code == 413
