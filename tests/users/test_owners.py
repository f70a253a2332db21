"""Owner rules: only owners touch the owner role; the last active owner always stays (409)."""

from __future__ import annotations

import asyncio

import pytest

from app.users import service as user_service
from app.users.models import Role
from tests.auth.helpers import load_user

USERS = "/api/v1/users"


@pytest.mark.parametrize(
    "method, body",
    [("PATCH", {"role": "member"}), ("PATCH", {"is_active": False}), ("PATCH", {"full_name": "x"}), ("DELETE", None)],
)
async def test_admins_cannot_change_or_remove_an_owner(method, body, client, factory):
    t = await factory.tenant()
    admin = await factory.user(t, Role.admin)
    r = await client.request(method, f"{USERS}/{t.owner.id}", json=body, headers=admin.headers)
    assert r.status_code == 403, r.text
    owner = await load_user(factory, t.id, t.owner.id)
    assert owner.role is Role.owner and owner.is_active


async def test_admins_cannot_promote_to_owner_even_themselves(client, factory):
    t = await factory.tenant()
    admin = await factory.user(t, Role.admin)
    member = await factory.user(t, Role.member)
    for target in (member, admin):
        r = await client.patch(f"{USERS}/{target.id}", json={"role": "owner"}, headers=admin.headers)
        assert r.status_code == 403, r.text
    # Admins do manage admins and members.
    r = await client.patch(f"{USERS}/{member.id}", json={"role": "admin"}, headers=admin.headers)
    assert r.status_code == 200


async def test_an_owner_grants_and_removes_owner(client, factory):
    t = await factory.tenant()
    member = await factory.user(t, Role.member)
    r = await client.patch(f"{USERS}/{member.id}", json={"role": "owner"}, headers=t.owner.headers)
    assert r.status_code == 200 and r.json()["role"] == "owner"
    r = await client.patch(f"{USERS}/{member.id}", json={"role": "admin"}, headers=t.owner.headers)
    assert r.status_code == 200 and r.json()["role"] == "admin"


@pytest.mark.parametrize(
    "method, body, field",
    [
        ("PATCH", {"role": "admin"}, "role"),
        ("PATCH", {"role": "member", "full_name": "x"}, "role"),
        ("PATCH", {"is_active": False}, "is_active"),
        ("DELETE", None, "id"),
    ],
)
async def test_the_last_active_owner_stays(method, body, field, client, factory):
    t = await factory.tenant()
    await factory.user(t, Role.owner, is_active=False)  # an inactive owner does not count
    r = await client.request(method, f"{USERS}/{t.owner.id}", json=body, headers=t.owner.headers)
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == "the tenant's last active owner cannot be demoted, deactivated or deleted"
    assert r.json()["errors"][0]["loc"][-1] == field
    owner = await load_user(factory, t.id, t.owner.id)
    assert owner.role is Role.owner and owner.is_active and owner.full_name == ""


async def test_the_last_owner_may_still_edit_their_name(client, factory):
    t = await factory.tenant()
    body = {"full_name": "Still Owner", "role": "owner", "is_active": True}
    r = await client.patch(f"{USERS}/{t.owner.id}", json=body, headers=t.owner.headers)
    assert r.status_code == 200, r.text


async def test_with_a_second_owner_one_may_step_down(client, factory):
    t = await factory.tenant()
    second = await factory.user(t, Role.owner)
    r = await client.patch(f"{USERS}/{t.owner.id}", json={"role": "admin"}, headers=t.owner.headers)
    assert r.status_code == 200, r.text
    # Now `second` is the last one.
    r = await client.delete(f"{USERS}/{second.id}", headers=second.headers)
    assert r.status_code == 409


async def test_two_owners_stepping_down_at_once_leave_one(client, factory, monkeypatch):
    """Both would see two owners unless the check locks them: one must win, the other get 409.

    A barrier (around the real function, not a mock) makes both requests reach the owner
    check together, inside their transactions, so the race is forced rather than hoped for.
    """
    t = await factory.tenant()
    second = await factory.user(t, Role.owner)
    barrier, real_lock = asyncio.Barrier(2), user_service._lock_for_change

    async def together(*args, **kwargs):
        await barrier.wait()
        return await real_lock(*args, **kwargs)

    monkeypatch.setattr(user_service, "_lock_for_change", together)
    results = await asyncio.gather(
        client.patch(f"{USERS}/{t.owner.id}", json={"role": "member"}, headers=t.owner.headers),
        client.patch(f"{USERS}/{second.id}", json={"is_active": False}, headers=second.headers),
    )
    assert sorted(r.status_code for r in results) == [200, 409], [r.text for r in results]
    owners = [await load_user(factory, t.id, u) for u in (t.owner.id, second.id)]
    assert sum(u.role is Role.owner and u.is_active for u in owners) == 1


async def test_an_owner_may_delete_another_owner(client, factory):
    t = await factory.tenant()
    second = await factory.user(t, Role.owner)
    assert (await client.delete(f"{USERS}/{second.id}", headers=t.owner.headers)).status_code == 204
