"""VerifiedTokens: a verified access token is reused until its window closes, and only then.

Time is passed in explicitly (`now=`), never waited for.
"""

from __future__ import annotations

import uuid

import pytest

from app.core.security import InvalidToken, VerifiedTokens, create_access_token
from tests.auth.helpers import ME, bearer


def _token(settings) -> str:
    return create_access_token(settings, user_id=uuid.uuid4(), tenant_id=uuid.uuid4(), role="member", token_version=0)


def test_a_verified_token_is_served_from_the_cache_within_its_window(settings):
    tokens = VerifiedTokens(settings)
    token = _token(settings)
    first = tokens.decode(token)
    assert tokens.decode(token) is first  # no second verification
    assert first.valid_until == pytest.approx(first.valid_from + settings.access_token_minutes * 60
                                              + 2 * settings.jwt_leeway_seconds, abs=1)


def test_a_cached_token_is_refused_once_its_window_has_closed(settings):
    tokens = VerifiedTokens(settings)
    token = _token(settings)
    principal = tokens.decode(token)
    with pytest.raises(InvalidToken):
        tokens.decode(token, now=principal.valid_until)
    assert token not in tokens._entries  # dropped: a later use is verified in full again


def test_a_token_differing_by_one_character_is_verified_not_matched(settings):
    tokens = VerifiedTokens(settings)
    token = _token(settings)
    tokens.decode(token)
    head, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(InvalidToken):
        tokens.decode(f"{head}.{payload}.{flipped}")


def test_invalid_tokens_are_not_remembered_and_the_cache_is_bounded(settings):
    tokens = VerifiedTokens(settings, max_entries=3)
    for _ in range(2):
        with pytest.raises(InvalidToken):
            tokens.decode("not.a.token")
    assert len(tokens._entries) == 0
    issued = [_token(settings) for _ in range(5)]
    for token in issued:
        tokens.decode(token)
    assert list(tokens._entries) == issued[2:]  # the oldest went first


def test_another_key_never_hits_this_cache(settings):
    other = settings.model_copy(update={"secret_key": "another-secret-key-of-enough-length-0123456789"})
    with pytest.raises(InvalidToken):
        VerifiedTokens(settings).decode(_token(other))


async def test_revocation_still_applies_to_a_cached_token(client, factory):
    """The cache only skips re-verifying the signature: the database check of every request
    still refuses the token of a user deactivated after the token was first used."""
    t = await factory.tenant()
    member = await factory.user(t)
    assert (await client.get("/api/v1/items", headers=member.headers)).status_code == 200  # now cached
    r = await client.patch(f"/api/v1/users/{member.id}", json={"is_active": False}, headers=t.owner.headers)
    assert r.status_code == 200, r.text
    assert (await client.get("/api/v1/items", headers=member.headers)).status_code == 401
    assert (await client.get(ME, headers=bearer(member.token))).status_code == 401
