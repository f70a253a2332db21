"""Which changes write which events, with actor, target, diff and request context; no secrets.

Every change goes through the API (or the CLI / platform plane) exactly as a client makes it.
"""

from __future__ import annotations

import json

from app.audit.redact import is_secret_name
from app.users.models import Role
from tests.audit.conftest import events_of
from tests.auth.helpers import bearer, login, login_ok, refresh
from tests.conftest import PLATFORM_KEY
from tests.factories import unique_slug

KEY = {"X-Platform-Key": PLATFORM_KEY}
UA = {"User-Agent": "audit-test/1.0", "X-Request-ID": "req-audit-123"}


def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def _no_secrets(events, *secrets: str) -> None:
    """Neither the secret values nor any secret-named key (password*, *_hash, ...) in details."""
    text = json.dumps([e.details for e in events])
    for secret in secrets:
        assert secret not in text
    assert not {k for e in events for k in _keys(e.details) if is_secret_name(k)}


async def test_user_lifecycle_events(client, factory):
    t = await factory.tenant()
    h = {**t.owner.headers, **UA}
    r = await client.post("/api/v1/users", headers=h, json={
        "email": "bob@example.com", "full_name": "Bob", "role": "member", "password": "bob-password-1"})
    assert r.status_code == 201, r.text
    bob = r.json()["id"]
    assert (await client.patch(f"/api/v1/users/{bob}", headers=h, json={"role": "admin"})).status_code == 200
    assert (await client.patch(f"/api/v1/users/{bob}", headers=h,
                               json={"is_active": False, "full_name": "Robert"})).status_code == 200
    assert (await client.patch(f"/api/v1/users/{bob}", headers=h, json={"is_active": True})).status_code == 200
    assert (await client.delete(f"/api/v1/users/{bob}", headers=h)).status_code == 204

    events = [e for e in await events_of(factory, t.id) if e.target_id == bob]
    assert [e.action for e in events] == [
        "user.created", "user.role_changed", "user.deactivated", "user.updated", "user.activated", "user.deleted",
    ]
    created, role, deactivated, renamed, _, deleted = events
    assert created.details == {"email": "bob@example.com", "role": "member", "full_name": "Bob"}
    assert role.details == {"changes": {"role": {"old": "member", "new": "admin"}}}
    assert deactivated.details == {"changes": {"is_active": {"old": True, "new": False}}}
    assert renamed.details == {"changes": {"full_name": {"old": "Bob", "new": "Robert"}}}
    assert deleted.details == {"email": "bob@example.com", "role": "admin"}
    for e in events:
        assert (e.actor_type, e.actor_id, e.actor_label) == ("user", t.owner.id, t.owner.email)
        assert e.target_type == "user"
        assert e.request_id == "req-audit-123"
        assert e.user_agent == "audit-test/1.0"
        assert e.client_addr  # httpx's ASGI transport reports 127.0.0.1
    _no_secrets(events, "bob-password-1")


async def test_an_unchanged_field_writes_no_event(client, factory):
    t = await factory.tenant()
    member = await factory.user(t, Role.member, full_name="Same")
    before = len(await events_of(factory, t.id))
    r = await client.patch(f"/api/v1/users/{member.id}", headers=t.owner.headers, json={"full_name": "Same"})
    assert r.status_code == 200
    assert len(await events_of(factory, t.id)) == before


async def test_password_change_is_recorded_without_the_password(client, factory):
    t = await factory.tenant()
    r = await client.post("/api/v1/users/me/password", headers=t.owner.headers,
                          json={"current_password": "wrong-password-0", "new_password": "new-password-1"})
    assert r.status_code == 422
    r = await client.post("/api/v1/users/me/password", headers=t.owner.headers,
                          json={"current_password": t.owner.password, "new_password": "new-password-1"})
    assert r.status_code == 200
    events = await events_of(factory, t.id)
    actions = [e.action for e in events]
    assert "user.password_change_failed" in actions and actions[-1] == "user.password_changed"
    assert events[-1].details == {}
    _no_secrets(events, "new-password-1", "wrong-password-0", t.owner.password)


async def test_logins_success_failure_and_throttle(client, factory, settings):
    t = await factory.tenant()
    await login_ok(client, t.slug, t.owner)
    assert (await login(client, t.slug, t.owner.email, "wrong-password")).status_code == 401
    assert (await login(client, t.slug, "ghost@example.com", "whatever-1")).status_code == 401
    for _ in range(settings.login_max_failures):
        await login(client, t.slug, "victim@example.com", "guess-password")
    r = await login(client, t.slug, "victim@example.com", "guess-password")
    assert r.status_code == 429 and r.headers["Retry-After"]

    events = await events_of(factory, t.id)
    ok = [e for e in events if e.action == "auth.login_succeeded"]
    assert [(e.actor_id, e.target_id) for e in ok] == [(t.owner.id, str(t.owner.id))]
    failed = {(e.details["email"], e.details["reason"]) for e in events if e.action == "auth.login_failed"}
    assert {(t.owner.email, "wrong_password"), ("ghost@example.com", "unknown_email")} <= failed
    throttled = [e for e in events if e.action == "auth.login_throttled"]
    assert len(throttled) >= 1 and throttled[-1].details == {"email": "victim@example.com"}
    assert throttled[-1].actor_type == "anonymous"
    _no_secrets(events, "wrong-password", "guess-password", "whatever-1")


async def test_refresh_reuse_is_recorded(client, factory):
    t = await factory.tenant()
    first = await login_ok(client, t.slug, t.owner)
    second = await refresh(client, t.slug, first["refresh_token"])
    assert second.status_code == 200
    # Rotated on: the first token's successor is spent, so presenting the first again is reuse
    # (an immediate double-submit of one token is a retry, not theft: see tests/auth).
    assert (await refresh(client, t.slug, second.json()["refresh_token"])).status_code == 200
    assert (await refresh(client, t.slug, first["refresh_token"])).status_code == 401  # replayed
    reused = await events_of(factory, t.id, "auth.refresh_reused")
    assert len(reused) == 1 and reused[0].target_id == str(t.owner.id)
    assert set(reused[0].details) == {"family_id"}
    _no_secrets(reused, first["refresh_token"])


async def test_platform_plane_events(client, factory):
    r = await client.post("/api/v1/platform/tenants", headers={**KEY, **UA}, json={
        "name": "Audited", "slug": unique_slug("audited"),
        "admin_email": "boss@example.com", "admin_password": "boss-password-1"})
    assert r.status_code == 201, r.text
    slug, tenant_id = r.json()["slug"], r.json()["tenant_id"]
    for action in ("suspend", "suspend", "resume"):  # the second suspend changes nothing
        assert (await client.post(f"/api/v1/platform/tenants/{slug}/{action}", headers=KEY)).status_code == 200
    events = await events_of(factory, tenant_id)
    assert [e.action for e in events] == ["tenant.created", "tenant.suspended", "tenant.resumed"]
    for e in events:
        assert (e.actor_type, e.actor_label, e.target_type, e.target_id) == (
            "operator", "platform_api", "tenant", tenant_id)
    assert events[0].details["slug"] == slug and events[0].request_id == "req-audit-123"
    assert events[1].details == {"changes": {"status": {"old": "active", "new": "suspended"}}}
    _no_secrets(events, "boss-password-1")


async def test_cli_events(cli, factory):
    t = await factory.tenant()
    assert (await cli("tenants", "suspend", t.slug)).code == 0
    assert (await cli("tenants", "resume", t.slug)).code == 0
    events = await events_of(factory, t.id)
    assert [e.action for e in events] == ["tenant.created", "tenant.suspended", "tenant.resumed"]
    assert {(e.actor_type, e.actor_label, e.request_id) for e in events} == {("operator", "cli", None)}


async def test_a_tokens_user_is_the_actor_not_the_target(client, factory):
    t = await factory.tenant()
    admin = await factory.user(t, Role.admin)
    member = await factory.user(t, Role.member)
    r = await client.patch(f"/api/v1/users/{member.id}", headers=bearer(admin.token), json={"role": "admin"})
    assert r.status_code == 200
    (event,) = await events_of(factory, t.id, "user.role_changed")
    assert (event.actor_id, event.target_id) == (admin.id, str(member.id))
