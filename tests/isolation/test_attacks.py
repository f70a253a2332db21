"""Token and session attacks, each its own test: every forged, stale or misplaced credential
answers 401 on every protected route, never a 500 and never a byte of the victim's data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from jose import jwt
from sqlalchemy import delete, select

from app.api import include_api
from app.tenants import service as tenant_service
from app.users.models import Role, User, UserKind
from tests.factories import DEFAULT_PASSWORD
from tests.isolation.conftest import World, build_world, leaks, snapshot
from tests.isolation.discovery import Spec, endpoints

_STATIC_APP = FastAPI()
include_api(_STATIC_APP)
_SPEC = Spec(_STATIC_APP.openapi())
# Every protected GET without path parameters: where a forged token would show data.
PROTECTED = [e.path for e in endpoints(_STATIC_APP)
             if e.method == "GET" and not e.path_params and _SPEC.is_protected(e)]


# --- helpers -----------------------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_for(settings, user, **overrides) -> dict:
    """The claims create_access_token would put in a token for `user`, with overrides."""
    now = int(time.time())
    claims = {
        "sub": str(user.id), "tid": str(user.tenant_id), "role": str(user.role), "ver": 0,
        "iat": now, "nbf": now, "exp": now + 600, "jti": uuid.uuid4().hex,
        "iss": settings.jwt_issuer, "aud": settings.jwt_audience,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign(settings, claims: dict, key: str | None = None) -> str:
    return jwt.encode(claims, key or settings.secret_key, algorithm="HS256")


def unsigned(claims: dict, alg: str = "none") -> str:
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


async def assert_rejected(client, token: str, *victims: World) -> None:
    """401 with WWW-Authenticate on every protected list route, and no victim data."""
    assert PROTECTED, "no protected GET routes discovered"
    for path in PROTECTED:
        # Bytes: a non-ASCII token goes over the wire as raw UTF-8 octets, as a real client might.
        r = await client.get(path, headers={"Authorization": f"Bearer {token}".encode()})
        assert r.status_code == 401, f"GET {path} → {r.status_code} {r.text[:300]}"
        assert r.headers.get("www-authenticate", "").lower().startswith("bearer"), path
        for victim in victims:
            assert not leaks(r.text, victim), f"GET {path} leaked {leaks(r.text, victim)}"


async def login(client, world: World, user=None) -> dict:
    user = user or world.owner
    r = await client.post("/api/v1/auth/login",
                          json={"tenant": world.tenant.slug, "email": user.email, "password": DEFAULT_PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()


# --- JWT forgeries -----------------------------------------------------------------------

async def test_sanity_a_real_token_works(client, worlds):
    a, _ = worlds
    for path in PROTECTED:
        r = await client.get(path, headers=a.owner.headers)
        assert r.status_code == 200, f"{path}: {r.text[:200]}"


async def test_alg_none_is_refused(client, settings, worlds):
    a, b = worlds
    for alg in ("none", "None", "NONE", "nOnE"):
        await assert_rejected(client, unsigned(claims_for(settings, a.owner), alg), a, b)


async def test_hs256_with_a_wrong_key_is_refused(client, settings, worlds):
    a, b = worlds
    await assert_rejected(client, sign(settings, claims_for(settings, a.owner), "not-the-key-" * 4), a, b)


def _rsa_pair() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


async def test_rs256_token_is_refused(client, settings, worlds):
    a, b = worlds
    private, _ = _rsa_pair()
    token = jwt.encode(claims_for(settings, a.owner), private.decode(), algorithm="RS256")
    await assert_rejected(client, token, a, b)


async def test_hs256_signed_with_a_public_key_pem_is_refused(client, settings, worlds):
    """Algorithm confusion: HMAC keyed with a public key PEM (jose won't build it; do it by hand)."""
    a, b = worlds
    _, public = _rsa_pair()
    for pem in (public, public.strip()):
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims_for(settings, a.owner)).encode())
        signature = _b64(hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
        await assert_rejected(client, f"{header}.{body}.{signature}", a, b)


async def test_expired_token_is_refused(client, settings, worlds):
    a, b = worlds
    past = int(time.time()) - settings.jwt_leeway_seconds - 3600
    await assert_rejected(client, sign(settings, claims_for(settings, a.owner, iat=past - 600, nbf=past - 600,
                                                            exp=past)), a, b)


async def test_not_before_in_the_future_is_refused(client, settings, worlds):
    a, b = worlds
    future = int(time.time()) + settings.jwt_leeway_seconds + 3600
    await assert_rejected(client, sign(settings, claims_for(settings, a.owner, nbf=future, exp=future + 600)), a, b)


async def test_issued_in_the_future_is_refused(client, settings, worlds):
    a, b = worlds
    future = int(time.time()) + settings.jwt_leeway_seconds + 3600
    await assert_rejected(client, sign(settings, claims_for(settings, a.owner, iat=future, exp=future + 600)), a, b)


async def test_wrong_audience_is_refused(client, settings, worlds):
    a, b = worlds
    for aud in ("someone-else", [settings.jwt_audience + "x"], ""):
        await assert_rejected(client, sign(settings, claims_for(settings, a.owner, aud=aud)), a, b)


async def test_wrong_issuer_is_refused(client, settings, worlds):
    a, b = worlds
    for iss in ("evil", settings.jwt_issuer.upper(), ""):
        await assert_rejected(client, sign(settings, claims_for(settings, a.owner, iss=iss)), a, b)


async def test_missing_or_malformed_claims_are_refused(client, settings, worlds):
    a, b = worlds
    for override in ({"tid": None}, {"sub": None}, {"ver": None}, {"exp": None}, {"jti": None},
                     {"tid": "not-a-uuid"}, {"sub": "1 OR 1=1"}, {"ver": "zero"}, {"tid": ""}):
        await assert_rejected(client, sign(settings, claims_for(settings, a.owner, **override)), a, b)


async def test_tid_switched_to_b_with_the_signature_kept_is_refused(client, settings, worlds):
    a, b = worlds
    header, payload, signature = a.owner.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["tid"] = str(b.id)
    await assert_rejected(client, f"{header}.{_b64(json.dumps(claims).encode())}.{signature}", a, b)


async def test_validly_signed_token_pairing_a_user_with_b_is_refused(client, settings, worlds):
    """Even with the signing key, tid=B + sub=A's user finds no user in B (database layer)."""
    a, b = worlds
    await assert_rejected(client, sign(settings, claims_for(settings, a.owner, tid=str(b.id))), a, b)
    await assert_rejected(client, sign(settings, claims_for(settings, b.owner, tid=str(a.id))), a, b)


async def test_role_claim_is_not_trusted(client, settings, worlds):
    """A member's token claiming role=owner (validly signed) still acts as the member."""
    a, _ = worlds
    token = sign(settings, claims_for(settings, a.member, role="owner"))
    r = await client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403, r.text
    r = await client.post("/api/v1/users", headers={"Authorization": f"Bearer {token}"},
                          json={"email": f"x{uuid.uuid4().hex[:6]}@example.com", "password": DEFAULT_PASSWORD})
    assert r.status_code == 403, r.text


async def test_token_of_a_deleted_tenant_is_refused(client, iso_factory, worlds):
    a, b = worlds
    doomed = await build_world(iso_factory, "doomed")
    assert (await client.get("/api/v1/tenant", headers=doomed.owner.headers)).status_code == 200
    async with iso_factory.sessionmaker() as session, session.begin():
        await tenant_service.delete_tenant(session, doomed.tenant.slug)
    for user in doomed.users:
        await assert_rejected(client, user.token, doomed, a, b)


async def test_token_of_a_deleted_user_is_refused(client, iso_factory, worlds):
    a, b = worlds
    gone = await iso_factory.user(a.tenant, Role.admin)
    assert (await client.get("/api/v1/users/me", headers=gone.headers)).status_code == 200
    async with iso_factory.session_for(a.id) as session, session.begin():
        await session.execute(delete(User).where(User.id == gone.id))
    await assert_rejected(client, gone.token, a, b)


async def test_enormous_token_is_refused(client, settings, worlds):
    a, b = worlds
    padding = "x" * 100_000
    forged = sign(settings, claims_for(settings, a.owner, pad=padding))
    assert len(forged) >= 100_000
    await assert_rejected(client, forged, a, b)
    await assert_rejected(client, "A" * 200_000, a, b)


async def test_garbage_bearer_values_are_refused(client, worlds):
    a, b = worlds
    for token in ("a.b.c", "....", "null", "Bearer", "\u00e9\u00e9.\u00e9.\u00e9", a.owner.token + "x",
                  a.owner.token[:-3], a.owner.token.replace(".", "..", 1)):
        await assert_rejected(client, token, a, b)


async def test_token_outside_the_authorization_header_is_ignored(client, worlds):
    a, _ = worlds
    for path in PROTECTED:
        for kwargs in ({"params": {"access_token": a.owner.token}},
                       {"headers": {"Authorization": f"Basic {a.owner.token}"}},
                       {"headers": {"Cookie": f"access_token={a.owner.token}"}}):
            r = await client.get(path, **kwargs)
            assert r.status_code == 401, f"{path} {kwargs} → {r.status_code}"


# --- refresh tokens ------------------------------------------------------------------------

async def test_refresh_token_presented_twice_is_refused_and_revokes_the_family(client, iso_factory, worlds):
    a, _ = worlds
    user = await iso_factory.user(a.tenant, Role.member)
    first = await login(client, a, user)
    r = await client.post("/api/v1/auth/refresh", json={"tenant": a.tenant.slug, "refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    # Its successor is used too: presenting the first again is theft, not a double-submit
    # (an immediate retry while the successor is unused gets that successor: issue #12 item 11).
    r = await client.post("/api/v1/auth/refresh", json={"tenant": a.tenant.slug, "refresh_token": r.json()["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    replay = await client.post("/api/v1/auth/refresh",
                               json={"tenant": a.tenant.slug, "refresh_token": first["refresh_token"]})
    assert replay.status_code == 401, replay.text
    assert "access_token" not in replay.text
    # Theft detected: the family is dead, and so are the access tokens issued from it.
    r = await client.post("/api/v1/auth/refresh", json={"tenant": a.tenant.slug, "refresh_token": second["refresh_token"]})
    assert r.status_code == 401, r.text
    await assert_rejected(client, second["access_token"])


async def test_refresh_token_of_a_with_the_slug_of_b_is_refused(client, iso_factory, worlds):
    a, b = worlds
    user = await iso_factory.user(a.tenant, Role.member)
    pair = await login(client, a, user)
    before = await snapshot(iso_factory, b.id)
    r = await client.post("/api/v1/auth/refresh", json={"tenant": b.tenant.slug, "refresh_token": pair["refresh_token"]})
    assert r.status_code == 401, r.text
    assert not leaks(r.text, b) and "access_token" not in r.text
    # Logging it out under B's slug touches nothing: not B, and not the token itself.
    r = await client.post("/api/v1/auth/logout", json={"tenant": b.tenant.slug, "refresh_token": pair["refresh_token"]})
    assert r.status_code in (204, 401), r.text
    assert await snapshot(iso_factory, b.id) == before
    r = await client.post("/api/v1/auth/refresh", json={"tenant": a.tenant.slug, "refresh_token": pair["refresh_token"]})
    assert r.status_code == 200, r.text


async def test_login_to_b_with_a_credentials_looks_like_an_unknown_tenant(client, worlds):
    a, b = worlds
    body = {"email": a.owner.email, "password": DEFAULT_PASSWORD}
    wrong = await client.post("/api/v1/auth/login", json={**body, "tenant": b.tenant.slug})
    unknown = await client.post("/api/v1/auth/login", json={**body, "tenant": "no-such-tenant-" + uuid.uuid4().hex[:6]})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


async def test_uniqueness_is_per_tenant_so_b_values_are_no_oracle(client, iso_factory, worlds):
    """A can create a user, tag and item named exactly like B's: no 409 reveals B's data."""
    _, b = worlds
    a = await build_world(iso_factory, "oracle")  # its own caller: the shared A stays free of B's names
    r = await client.post("/api/v1/users", headers=a.owner.headers,
                          json={"email": b.member.email.upper(), "password": DEFAULT_PASSWORD})
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/tags", headers=a.owner.headers, json={"name": b.tag_names[0]})
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/items", headers=a.owner.headers, json={"name": b.item_names[0], "price": "1.00"})
    assert r.status_code == 201, r.text
    async with iso_factory.session_for(b.id) as session, session.begin():
        emails = set((await session.execute(select(User.email).where(User.kind == UserKind.human))).scalars())
    assert emails == {u.email for u in b.users}  # (B's service account has a reserved address)
