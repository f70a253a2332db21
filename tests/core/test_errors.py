"""Every error leaves as {"error": code, "detail": ...} with the right status, never a traceback."""

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
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error", "detail"}, body
    assert body["error"] == code
    return body


# --- the real app ---------------------------------------------------------------------------


async def test_unknown_route_is_a_json_404(client):
    body = assert_error_body(await client.get("/api/v1/no-such-thing"), 404, "not_found")
    assert body["detail"] == "Not Found"


async def test_wrong_method_is_a_json_405(client):
    assert_error_body(await client.delete("/healthz"), 405, "method_not_allowed")


async def test_malformed_json_is_a_422(client):
    r = await client.post(
        "/api/v1/platform/tenants", headers={**KEY, "Content-Type": "application/json"}, content=b'{"name": "x",'
    )
    body = assert_error_body(r, 422, "validation_error")
    assert body["detail"][0]["type"] == "json_invalid"
    assert body["detail"][0]["loc"][0] == "body"


async def test_a_body_that_is_not_an_object_is_a_422(client):
    r = await client.post("/api/v1/platform/tenants", headers=KEY, json=["not", "an", "object"])
    assert_error_body(r, 422, "validation_error")


async def test_validation_errors_name_the_field(client):
    r = await client.post("/api/v1/platform/tenants", headers=KEY,
                          json={"name": "x", "slug": "ok-slug", "admin_email": "a@example.com", "surprise": 1})
    body = assert_error_body(r, 422, "validation_error")
    # InputSchema forbids unknown fields rather than silently dropping them.
    assert [e["loc"] for e in body["detail"]] == [["body", "surprise"]]
    assert {"loc", "msg", "type"} == set(body["detail"][0])


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
    "path, status, code, detail",
    [
        ("/not-found", 404, "not_found", "no such thing"),
        ("/conflict", 409, "conflict", {"field": "slug", "message": "slug already exists"}),
        ("/forbidden", 403, "forbidden", "forbidden"),
        ("/unauthorized", 401, "not_authenticated", "token expired"),
        ("/precondition", 412, "precondition_failed", "changed meanwhile"),
        ("/invalid", 422, "validation_error",
         [{"loc": ["body", "price"], "msg": "must not be negative", "type": "value_error"}]),
        ("/throttled", 429, "too_many_requests", "slow down"),
        ("/unavailable", 503, "service_unavailable", "service unavailable"),
        ("/custom", 400, "teapot", "teapot"),
    ],
)
async def test_app_errors_render_code_and_detail(bare, path, status, code, detail):
    body = assert_error_body(await bare.get(path), status, code)
    assert body["detail"] == detail


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
    assert r.status_code == 413
    assert r.json()["error"] == "payload_too_large"


async def test_oversized_chunked_body_is_413(client, settings, factory):
    async def chunks():
        for _ in range(settings.max_body_bytes // 65536 + 2):
            yield b"x" * 65536

    # Authenticated: an anonymous caller gets 401 before its body is read at all.
    t = await factory.tenant()
    r = await client.post("/api/v1/items", content=chunks(),
                          headers={"Content-Type": "application/json", **t.owner.headers})
    assert r.status_code == 413
