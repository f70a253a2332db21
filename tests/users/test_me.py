"""/users/me: read, update the full name, change the password (ends every other session)."""

from __future__ import annotations

import pytest

from app.users.models import Role
from tests.auth.helpers import ME, bearer, load_user, login, login_ok, refresh

PASSWORD = "/api/v1/users/me/password"
USER_FIELDS = {"id", "tenant_id", "email", "full_name", "role", "is_active", "created_at", "updated_at"}


async def test_read_me(client, factory):
    t = await factory.tenant(email="Boss@Example.com")
    r = await client.get(ME, headers=t.owner.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == USER_FIELDS  # never password_hash or token_version
    assert body["email"] == "boss@example.com" and body["role"] == "owner" and body["is_active"] is True
    assert "$2b$" not in r.text


async def test_me_needs_a_token(client):
    for method, path in [("GET", ME), ("PATCH", ME), ("POST", PASSWORD)]:
        r = await client.request(method, path, json={})
        assert r.status_code == 401, (method, path)
        assert r.headers["www-authenticate"] == "Bearer"


async def test_update_my_full_name(client, factory):
    t = await factory.tenant()
    member = await factory.user(t, Role.member)
    before = (await client.get(ME, headers=member.headers)).json()
    r = await client.patch(ME, json={"full_name": "  Ada Lovelace "}, headers=member.headers)
    assert r.status_code == 200, r.text
    assert r.json()["full_name"] == "Ada Lovelace"
    assert r.json()["updated_at"] >= before["updated_at"]
    assert (await client.get(ME, headers=member.headers)).json()["full_name"] == "Ada Lovelace"
    assert (await client.patch(ME, json={}, headers=member.headers)).status_code == 200


@pytest.mark.parametrize(
    "body", [{"role": "owner"}, {"is_active": False}, {"email": "x@example.com"}, {"full_name": None}, {"full_name": "x" * 201}]
)
async def test_update_me_refuses_other_fields_and_nulls(body, client, factory):
    t = await factory.tenant()
    member = await factory.user(t, Role.member)
    r = await client.patch(ME, json=body, headers=member.headers)
    assert r.status_code == 422, r.text
    assert (await load_user(factory, t.id, member.id)).role is Role.member


async def test_change_password_ends_every_session_and_returns_a_new_pair(client, factory):
    t = await factory.tenant()
    member = await factory.user(t, Role.member)
    device_a = await login_ok(client, t.slug, member)
    device_b = await login_ok(client, t.slug, member)

    r = await client.post(
        PASSWORD, json={"current_password": member.password, "new_password": "brand-new-secret"},
        headers=bearer(device_a["access_token"]),
    )
    assert r.status_code == 200, r.text
    fresh = r.json()
    assert set(fresh) == {"access_token", "token_type", "expires_in", "refresh_token"}

    # Every token issued before the change is dead, on every device ...
    for tokens in (device_a, device_b):
        assert (await client.get(ME, headers=bearer(tokens["access_token"]))).status_code == 401
        assert (await refresh(client, t.slug, tokens["refresh_token"])).status_code == 401
    assert (await client.get(ME, headers=member.headers)).status_code == 401
    # ... the new pair works, and so does the new password; the old one does not.
    assert (await client.get(ME, headers=bearer(fresh["access_token"]))).status_code == 200
    assert (await refresh(client, t.slug, fresh["refresh_token"])).status_code == 200
    assert (await login(client, t.slug, member.email, "brand-new-secret")).status_code == 200
    assert (await login(client, t.slug, member.email, member.password)).status_code == 401


@pytest.mark.parametrize(
    "current, new, field, message",
    [
        ("wrong-password", "brand-new-secret", "current_password", "is incorrect"),
        (None, "short", "new_password", "must be at least 8 characters"),
        (None, "x" * 73, "new_password", "password must be at most 72 bytes in UTF-8"),
        (None, "é" * 37, "new_password", "password must be at most 72 bytes in UTF-8"),  # 74 bytes, 37 chars
        (None, "nul\x00in-the-middle", "new_password", "Value error, must not contain NUL characters"),
    ],
)
async def test_change_password_422_names_the_field(current, new, field, message, client, factory):
    t = await factory.tenant()
    r = await client.post(
        PASSWORD, json={"current_password": current or t.owner.password, "new_password": new}, headers=t.owner.headers
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [{"loc": ["body", field], "msg": message, "type": "value_error"}]
    # Nothing changed: the old token and password still work.
    assert (await client.get(ME, headers=t.owner.headers)).status_code == 200
    assert (await login(client, t.slug, t.owner.email, t.owner.password)).status_code == 200


async def test_a_72_byte_password_is_accepted_whole(client, factory):
    t = await factory.tenant()
    exactly_72 = "é" * 36  # 72 bytes in UTF-8
    r = await client.post(
        PASSWORD, json={"current_password": t.owner.password, "new_password": exactly_72}, headers=t.owner.headers
    )
    assert r.status_code == 200, r.text
    assert (await login(client, t.slug, t.owner.email, exactly_72)).status_code == 200
    assert (await login(client, t.slug, t.owner.email, "é" * 35)).status_code == 401


async def test_wrong_current_passwords_count_towards_the_login_throttle(client, factory, settings):
    t = await factory.tenant()
    member = await factory.user(t, Role.member)
    for _ in range(settings.login_max_failures):
        r = await client.post(
            PASSWORD, json={"current_password": "guess-guess", "new_password": "brand-new-secret"},
            headers=member.headers,
        )
        assert r.status_code == 422
    r = await client.post(
        PASSWORD, json={"current_password": member.password, "new_password": "brand-new-secret"},
        headers=member.headers,
    )
    assert r.status_code == 429 and "retry-after" in r.headers
    # A separate counter: guesses through a stolen access token do not lock the login (item 4).
    assert (await login(client, t.slug, member.email, member.password)).status_code == 200
