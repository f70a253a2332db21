"""Forged, broken and stale access tokens: always 401 with WWW-Authenticate: Bearer, never 500."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from functools import lru_cache

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt

from app.core.config import Environment, Settings
from app.core.security import InvalidToken, create_access_token, decode_access_token
from tests.auth.helpers import ME, bearer, load_user, login_ok, set_tenant_status


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(settings: Settings, user_id: uuid.UUID, tenant_id: uuid.UUID, **overrides) -> dict:
    now = int(time.time())
    claims = {
        "sub": str(user_id), "tid": str(tenant_id), "role": "owner", "ver": 0,
        "iat": now, "nbf": now, "exp": now + 600, "jti": uuid.uuid4().hex,
        "iss": settings.jwt_issuer, "aud": settings.jwt_audience,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


@lru_cache(maxsize=1)
def _rsa_pems() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def _forge(kind: str, settings: Settings, user_id: uuid.UUID, tenant_id: uuid.UUID, good: str) -> str:
    key = settings.secret_key
    sign = lambda claims, k=key, alg="HS256": jwt.encode(claims, k, algorithm=alg)  # noqa: E731
    c = lambda **o: _claims(settings, user_id, tenant_id, **o)  # noqa: E731
    header, payload, signature = good.split(".")
    if kind == "tampered_signature":
        return f"{header}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    if kind == "tampered_payload":  # claims changed to another role, old signature kept
        forged = _b64(json.dumps(c(role="admin", ver=0)).encode())
        return f"{header}.{forged}.{signature}"
    if kind == "expired":
        past = int(time.time()) - 3600
        return sign(c(iat=past - 900, nbf=past - 900, exp=past))
    if kind == "not_yet_valid":
        future = int(time.time()) + 3600
        return sign(c(iat=future, nbf=future, exp=future + 900))
    if kind == "alg_none":
        head = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        return f"{head}.{_b64(json.dumps(c()).encode())}."
    if kind == "alg_none_with_signature":
        head = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        return f"{head}.{_b64(json.dumps(c()).encode())}.{signature}"
    if kind == "wrong_key":
        return sign(c(), "another-secret-key-that-is-long-enough-0123456789")
    if kind == "rs256_signed":  # an asymmetric token sent to an HS256 verifier
        private, _ = _rsa_pems()
        return sign(c(), private.decode(), "RS256")
    if kind == "hs256_with_public_key":  # classic RS/HS confusion: the public key used as HMAC secret
        _, public = _rsa_pems()
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(c()).encode())
        # Signed by hand: jose refuses a PEM as an HMAC key, an attacker's tool would not.
        mac = hmac.new(public, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{_b64(mac)}"
    if kind == "hs512":
        return sign(c(), key, "HS512")
    if kind == "wrong_audience":
        return sign(c(aud="someone-else"))
    if kind == "wrong_issuer":
        return sign(c(iss="evil"))
    if kind in ("missing_tid", "missing_ver", "missing_sub", "missing_exp", "missing_jti", "missing_aud"):
        return sign(c(**{kind.removeprefix("missing_"): None}))
    if kind == "sub_not_uuid":
        return sign(c(sub="admin"))
    if kind == "ver_not_int":
        return sign(c(ver="x"))
    if kind == "unknown_user":
        return sign(c(sub=str(uuid.uuid4())))
    if kind == "unknown_tenant":
        return sign(c(tid=str(uuid.uuid4())))
    if kind == "garbage":
        return "not.a.jwt"
    if kind == "huge":
        return "a" * 10_000
    if kind == "bad_base64":
        return "@@@.###.$$$"
    raise AssertionError(kind)


ATTACKS = [
    "tampered_signature", "tampered_payload", "expired", "not_yet_valid", "alg_none",
    "alg_none_with_signature", "wrong_key", "rs256_signed", "hs256_with_public_key", "hs512",
    "wrong_audience", "wrong_issuer", "missing_tid", "missing_ver", "missing_sub", "missing_exp",
    "missing_jti", "missing_aud", "sub_not_uuid", "ver_not_int", "unknown_user", "unknown_tenant",
    "garbage", "huge", "bad_base64",
]


@pytest.mark.parametrize("kind", ATTACKS)
async def test_bad_access_token_is_401(kind, client, factory, settings):
    t = await factory.tenant()
    forged = _forge(kind, settings, t.owner.id, t.id, t.owner.token)
    assert (await client.get(ME, headers=t.owner.headers)).status_code == 200  # the genuine one works
    r = await client.get(ME, headers=bearer(forged))
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["code"] == "not_authenticated"


async def test_token_naming_another_tenant_reads_nothing(client, factory, settings):
    """A validly signed token whose tid is B but whose sub is A's user finds no user: 401."""
    a, b = await factory.tenant(), await factory.tenant()
    token = create_access_token(settings, user_id=a.owner.id, tenant_id=b.id, role="owner", token_version=0)
    assert (await client.get(ME, headers=bearer(token))).status_code == 401


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Basic Zm9vOmJhcg==", "Token abc"])
async def test_missing_or_other_scheme_is_401(header, client):
    r = await client.get(ME, headers={"Authorization": header})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


# jose verifies RS256 with the private key here (the app has one key setting); it warns about it.
@pytest.mark.filterwarnings("ignore:Attempting to verify a message with a private key")
def test_hs_rs_confusion_refused_when_configured_for_rs256():
    """With RS256 configured, an HS256 token MACed with the public key is refused (alg pinned)."""
    private, public = _rsa_pems()
    rs = Settings(_env_file=None, environment=Environment.test, secret_key=private.decode(), jwt_algorithm="RS256")
    genuine = create_access_token(rs, user_id=uuid.uuid4(), tenant_id=uuid.uuid4(), role="member", token_version=0)
    assert decode_access_token(rs, genuine).role == "member"

    forged = _forge("hs256_with_public_key", rs, uuid.uuid4(), uuid.uuid4(), genuine)
    with pytest.raises(InvalidToken):
        decode_access_token(rs, forged)
    with pytest.raises(InvalidToken):
        decode_access_token(rs, _forge("alg_none", rs, uuid.uuid4(), uuid.uuid4(), genuine))


async def test_suspending_the_tenant_cuts_live_tokens(client, factory):
    t = await factory.tenant()
    tokens = await login_ok(client, t.slug, t.owner)
    await set_tenant_status(client, t.slug, "suspend")
    assert (await client.get(ME, headers=bearer(tokens["access_token"]))).status_code == 401
    assert (await client.post("/api/v1/auth/refresh", json={"tenant": t.slug, "refresh_token": tokens["refresh_token"]})).status_code == 401
    await set_tenant_status(client, t.slug, "resume")
    assert (await client.get(ME, headers=bearer(tokens["access_token"]))).status_code == 200


async def test_token_of_a_deleted_user_is_401(client, factory):
    t = await factory.tenant()
    member = await factory.user(t)
    assert (await client.delete(f"/api/v1/users/{member.id}", headers=t.owner.headers)).status_code == 204
    assert await load_user(factory, t.id, member.id) is None
    assert (await client.get(ME, headers=member.headers)).status_code == 401
