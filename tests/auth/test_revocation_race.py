"""Revocation wins over a refresh in flight, whatever the interleaving (issue #12, item 1).

An attacker holding a stolen refresh token rotates it in a loop while the victim revokes:
password change, logout, reuse detection, deactivation followed by re-activation. After
both sides are done, the attacker must hold no working refresh token and no working access
token. Each scenario runs a bounded number of trials; each trial a bounded number of
refreshes. No sleeps: the two sides interleave on the event loop and the database.
"""

from __future__ import annotations

import asyncio

import pytest

from app.users.models import Role
from tests.auth.helpers import LOGOUT, ME, bearer, login_ok, refresh

TRIALS = 12
MAX_REFRESHES = 12
PASSWORD = "/api/v1/users/me/password"


class Attacker:
    """Rotates a stolen token until refused (or MAX_REFRESHES); keeps what it got."""

    def __init__(self, client, slug: str, stolen: dict) -> None:
        self.client, self.slug = client, slug
        self.refresh_token = stolen["refresh_token"]
        self.access_tokens: list[str] = []
        self.rotations = 0
        self.rotated = asyncio.Event()

    async def run(self) -> None:
        for _ in range(MAX_REFRESHES):
            r = await refresh(self.client, self.slug, self.refresh_token)
            if r.status_code != 200:
                return
            body = r.json()
            self.refresh_token = body["refresh_token"]
            self.access_tokens.append(body["access_token"])
            self.rotations += 1
            if self.rotations >= 2:
                self.rotated.set()
        self.rotated.set()

    async def assert_locked_out(self) -> None:
        r = await refresh(self.client, self.slug, self.refresh_token)
        assert r.status_code == 401, f"attacker's refresh token still works after {self.rotations} rotations"
        for token in self.access_tokens:
            me = await self.client.get(ME, headers=bearer(token))
            assert me.status_code == 401, "an access token minted by the attacker still works"


async def _race(client, slug: str, stolen: dict, revoke) -> Attacker:
    attacker = Attacker(client, slug, stolen)
    await asyncio.wait_for(asyncio.gather(attacker.run(), revoke(attacker)), timeout=60)
    return attacker


async def test_password_change_ends_an_attackers_refresh_loop(client, factory):
    t = await factory.tenant()
    for trial in range(TRIALS):
        victim = await factory.user(t, Role.member)
        tokens = await login_ok(client, t.slug, victim)

        async def change_password(attacker: Attacker) -> None:
            if trial % 2:
                await asyncio.sleep(0)  # vary the start a little: half the trials revoke first
            r = await client.post(
                PASSWORD,
                headers=bearer(tokens["access_token"]),
                json={"current_password": victim.password, "new_password": f"new-secret-{trial}"},
            )
            assert r.status_code == 200, r.text

        attacker = await _race(client, t.slug, tokens, change_password)
        await attacker.assert_locked_out()


async def test_logout_ends_an_attackers_refresh_loop(client, factory):
    t = await factory.tenant()
    for _ in range(TRIALS):
        victim = await factory.user(t, Role.member)
        tokens = await login_ok(client, t.slug, victim)

        async def logout(attacker: Attacker) -> None:
            r = await client.post(LOGOUT, json={"tenant": t.slug, "refresh_token": tokens["refresh_token"]})
            assert r.status_code == 204

        attacker = await _race(client, t.slug, tokens, logout)
        await attacker.assert_locked_out()


async def test_reuse_detection_ends_an_attackers_refresh_loop(client, factory):
    t = await factory.tenant()
    for _ in range(TRIALS):
        victim = await factory.user(t, Role.member)
        tokens = await login_ok(client, t.slug, victim)

        async def present_the_spent_token(attacker: Attacker) -> None:
            # Once the attacker has rotated twice, the victim's copy is spent and its successor
            # too: presenting it is theft (not a double-submit) while the loop goes on.
            await attacker.rotated.wait()
            r = await refresh(client, t.slug, tokens["refresh_token"])
            assert r.status_code == 401

        attacker = await _race(client, t.slug, tokens, present_the_spent_token)
        if attacker.rotations >= 2:
            await attacker.assert_locked_out()


async def test_deactivation_and_reactivation_end_an_attackers_refresh_loop(client, factory):
    t = await factory.tenant()
    for _ in range(TRIALS):
        victim = await factory.user(t, Role.member)
        tokens = await login_ok(client, t.slug, victim)

        async def deactivate_then_reactivate(attacker: Attacker) -> None:
            for active in (False, True):
                r = await client.patch(
                    f"/api/v1/users/{victim.id}", headers=t.owner.headers, json={"is_active": active}
                )
                assert r.status_code == 200, r.text

        attacker = await _race(client, t.slug, tokens, deactivate_then_reactivate)
        await attacker.assert_locked_out()


@pytest.mark.parametrize("trial", range(3))
async def test_refresh_still_rotates_without_a_revocation(client, factory, trial):
    """The serialization must not refuse an honest rotation chain."""
    t = await factory.tenant()
    tokens = await login_ok(client, t.slug, t.owner)
    attacker = Attacker(client, t.slug, tokens)
    await attacker.run()
    assert attacker.rotations == MAX_REFRESHES
