"""Hostile requests (issue #12, items 7, 9, 12): bounded headers (431), HEAD, relative
redirects, no-store on token responses, access-log lines that cannot be forged."""

from __future__ import annotations

import json
import logging

import pytest

from tests.auth.helpers import LOGIN, REFRESH, login_ok


@pytest.mark.parametrize("name", ["If-None-Match", "If-Match", "X-Request-ID", "X-Forwarded-For"])
async def test_an_oversized_parsed_header_is_431_before_routing(client, factory, settings, name):
    t = await factory.tenant()
    headers = {**t.owner.headers, name: "W/\"" + "a" * (settings.max_parsed_header_bytes + 1) + "\""}
    r = await client.get("/api/v1/items", headers=headers)
    assert r.status_code == 431
    assert r.json()["code"] == "request_header_fields_too_large"
    assert name.lower() in r.json()["detail"].lower()


@pytest.mark.parametrize("size", [5_000, 100_000, 2_000_000])
async def test_an_oversized_authorization_is_the_same_401_as_any_bad_token(client, size):
    r = await client.get("/api/v1/users/me", headers={"Authorization": "Bearer " + "a" * size})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


async def test_total_header_bytes_are_bounded(client, settings):
    per = 1000
    headers = {f"X-Filler-{i}": "v" * per for i in range(settings.max_header_bytes // per + 1)}
    r = await client.get("/healthz", headers=headers)
    assert r.status_code == 431


async def test_header_count_is_bounded(client, settings):
    headers = [(f"X-Many-{i}", "1") for i in range(settings.max_header_count + 1)]
    r = await client.get("/healthz", headers=headers)
    assert r.status_code == 431


async def test_ordinary_requests_pass_the_header_limits(client, factory):
    t = await factory.tenant()
    r = await client.get("/api/v1/items", headers={**t.owner.headers, "If-None-Match": '"abc", W/"def"'})
    assert r.status_code in (200, 304), r.text


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/users/me"])
async def test_head_answers_like_get_without_a_body(client, factory, path):
    t = await factory.tenant()
    get = await client.get(path, headers=t.owner.headers)
    head = await client.head(path, headers=t.owner.headers)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


async def test_the_trailing_slash_redirect_ignores_the_host_header(client, factory):
    t = await factory.tenant()
    r = await client.get("/api/v1/users/me/", headers={**t.owner.headers, "Host": "evil.example"})
    assert r.status_code in (307, 308)
    assert r.headers["location"] == "/api/v1/users/me"


@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/api/v1/auth/token", "/api/v1/auth/refresh", "/api/v1/users/me/password"])
async def test_token_responses_are_not_stored_by_caches(client, factory, path):
    t = await factory.tenant()
    if path.endswith("/login"):
        r = await client.post(LOGIN, json={"tenant": t.slug, "email": t.owner.email, "password": t.owner.password})
    elif path.endswith("/token"):
        r = await client.post(path, data={"grant_type": "password", "username": t.owner.email,
                                          "password": t.owner.password, "client_id": t.slug})
    elif path.endswith("/refresh"):
        tokens = await login_ok(client, t.slug, t.owner)
        r = await client.post(REFRESH, json={"tenant": t.slug, "refresh_token": tokens["refresh_token"]})
    else:
        r = await client.post(path, headers=t.owner.headers,
                              json={"current_password": t.owner.password, "new_password": "another-long-one"})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["pragma"] == "no-cache"


async def test_a_newline_in_the_url_cannot_forge_an_access_log_line(client, caplog):
    forged = "/healthz%0a2026-01-01 GET /admin 200 request_id=x tenant_id=forged user_id=forged"
    with caplog.at_level(logging.INFO, logger="tenantry.access"):
        await client.get(forged)
    records = [r.getMessage() for r in caplog.records if r.name == "tenantry.access"]
    assert records, "no access-log line"
    for line in records:
        assert "\n" not in line and "\r" not in line
        entry = json.loads(line)
        assert entry["tenant_id"] is None and entry["user_id"] is None
        assert "\n" in entry["path"]  # the path is kept, as data, escaped
