"""POST /api/v1/auth/login: token pair, tenant by slug, one 401 for every bad credential."""

from __future__ import annotations

import json

import pytest
from jose import jwt

from app.auth import service as auth_service
from app.core.security import hash_password
from app.users.models import Role
from tests.auth.helpers import ME, bearer, load_user, login, login_ok, set_password_hash, set_tenant_status


async def test_login_returns_a_token_pair(client, factory, settings):
    t = await factory.tenant()
    r = await login(client, t.slug, t.owner.email, t.owner.password)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_minutes * 60
    assert body["refresh_token"] and body["refresh_token"] != body["access_token"]

    claims = jwt.get_unverified_claims(body["access_token"])
    assert claims["sub"] == str(t.owner.id)
    assert claims["tid"] == str(t.id)
    assert claims["role"] == "owner"
    assert claims["ver"] == 0
    assert claims["iss"] == settings.jwt_issuer and claims["aud"] == settings.jwt_audience
    assert claims["exp"] - claims["iat"] == settings.access_token_minutes * 60
    assert claims["jti"]
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"

    me = await client.get(ME, headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == str(t.owner.id)


async def test_login_email_is_case_insensitive(client, factory):
    t = await factory.tenant(email="Mixed.Case@Example.com")
    r = await login(client, t.slug, "  MIXED.case@example.COM ", t.owner.password)
    assert r.status_code == 200, r.text


async def test_same_email_in_two_tenants_logs_in_to_its_own_tenant(client, factory):
    a = await factory.tenant(email="shared@example.com", password="password-of-a")
    b = await factory.tenant(email="shared@example.com", password="password-of-b")

    tokens_a = (await login(client, a.slug, "shared@example.com", "password-of-a")).json()
    tokens_b = (await login(client, b.slug, "shared@example.com", "password-of-b")).json()
    me_a = (await client.get(ME, headers=bearer(tokens_a["access_token"]))).json()
    me_b = (await client.get(ME, headers=bearer(tokens_b["access_token"]))).json()
    assert me_a["tenant_id"] == str(a.id) and me_b["tenant_id"] == str(b.id)
    assert me_a["id"] != me_b["id"]

    # Each password only opens its own tenant's account.
    assert (await login(client, a.slug, "shared@example.com", "password-of-b")).status_code == 401
    assert (await login(client, b.slug, "shared@example.com", "password-of-a")).status_code == 401


async def _failure_case(case: str, client, factory) -> tuple[str, str, str]:
    t = await factory.tenant()
    if case == "unknown_tenant":
        return "no-such-tenant-slug", t.owner.email, t.owner.password
    if case == "unknown_email":
        return t.slug, "nobody@example.com", t.owner.password
    if case == "wrong_password":
        return t.slug, t.owner.email, "wrong-password"
    if case == "inactive_user":
        u = await factory.user(t, Role.member, is_active=False)
        return t.slug, u.email, u.password
    if case == "suspended_tenant":
        await set_tenant_status(client, t.slug, "suspend")
        return t.slug, t.owner.email, t.owner.password
    raise AssertionError(case)


FAILURES = ["unknown_tenant", "unknown_email", "wrong_password", "inactive_user", "suspended_tenant"]


@pytest.mark.parametrize("case", FAILURES)
async def test_every_bad_credential_gets_the_same_401(case, client, factory):
    slug, email, password = await _failure_case(case, client, factory)
    r = await login(client, slug, email, password)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert (r.json()["code"], r.json()["detail"]) == ("invalid_credentials", "invalid tenant, email or password")


@pytest.mark.parametrize("case", ["unknown_tenant", "unknown_email", "wrong_password"])
async def test_every_bad_credential_costs_one_bcrypt_verify(case, client, factory, monkeypatch):
    """The timing property, asserted without a clock: a miss still runs exactly one bcrypt verify."""
    slug, email, password = await _failure_case(case, client, factory)
    calls = []
    real_verify = auth_service.security.verify_password

    async def counting_verify(*args, **kwargs):
        calls.append(args[1])
        return await real_verify(*args, **kwargs)

    monkeypatch.setattr(auth_service.security, "verify_password", counting_verify)
    assert (await login(client, slug, email, password)).status_code == 401
    assert len(calls) == 1 and calls[0].startswith("$2b$")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"tenant": "x", "email": "a@example.com"},
        {"tenant": "", "email": "a@example.com", "password": "p"},
        {"tenant": "x", "email": "a@example.com", "password": "p", "role": "owner"},
        {"tenant": "x" * 64, "email": "a@example.com", "password": "p"},
    ],
)
async def test_malformed_login_is_422(body, client):
    r = await client.post("/api/v1/auth/login", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"


@pytest.mark.parametrize("password", ["é" * 40, "x" * 73])
async def test_passwords_bcrypt_cannot_take_are_a_plain_401(password, client, factory):
    t = await factory.tenant()
    r = await login(client, t.slug, t.owner.email, password)
    assert r.status_code == 401, r.text


async def test_password_is_not_stripped(client, factory):
    t = await factory.tenant()
    u = await factory.user(t, password="  spaced password  ")
    assert (await login(client, t.slug, u.email, "spaced password")).status_code == 401
    assert (await login(client, t.slug, u.email, "  spaced password  ")).status_code == 200


async def test_login_upgrades_a_hash_with_another_cost(client, factory, settings):
    t = await factory.tenant()
    old = await hash_password(t.owner.password, settings.bcrypt_rounds + 1)
    await set_password_hash(factory, t.id, t.owner.id, old)

    await login_ok(client, t.slug, t.owner)
    stored = (await load_user(factory, t.id, t.owner.id)).password_hash
    assert stored != old
    assert stored.startswith(f"$2b${settings.bcrypt_rounds:02d}$")
    await login_ok(client, t.slug, t.owner)  # the upgraded hash still matches


async def test_login_ignores_a_bearer_of_another_tenant(client, factory):
    """Swagger keeps sending the last bearer; logging in to another tenant must still work."""
    a, b = await factory.tenant(), await factory.tenant()
    r = await client.post(
        "/api/v1/auth/login",
        json={"tenant": b.slug, "email": b.owner.email, "password": b.owner.password},
        headers=a.owner.headers,
    )
    assert r.status_code == 200, r.text
    assert (await client.get(ME, headers=bearer(r.json()["access_token"]))).json()["tenant_id"] == str(b.id)


@pytest.mark.parametrize("field", ["tenant", "email"])
@pytest.mark.parametrize("raw", ["a\\u0000b", "\\ud800"])
async def test_text_postgresql_cannot_store_is_422_not_500(field, raw, client):
    """NUL and lone surrogates never reach the database (they would be a driver error)."""
    body = {"tenant": "acme", "email": "a@example.com", "password": "whatever-pw"}
    text = json.dumps(body).replace(f'"{body[field]}"', f'"{raw}"')
    r = await client.post("/api/v1/auth/login", content=text, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["body", field]


@pytest.mark.parametrize("raw", ["nul\\u0000inside", "\\ud800"])
async def test_password_that_is_not_text_is_422(raw, client, factory):
    """Refused by the schema like any other field (no tenant or user is looked up first)."""
    t = await factory.tenant()
    text = json.dumps({"tenant": t.slug, "email": t.owner.email, "password": "PW"}).replace('"PW"', f'"{raw}"')
    r = await client.post("/api/v1/auth/login", content=text, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["body", "password"]
