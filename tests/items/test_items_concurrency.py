"""Optimistic concurrency: of two concurrent writers of one version, exactly one wins."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import text

from tests.items.conftest import ITEMS, create_item, with_if_match


@pytest.fixture
async def two_clients(app):
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://test") as first,
        httpx.AsyncClient(transport=transport, base_url="http://test") as second,
    ):
        yield first, second


@pytest.mark.parametrize("round_", range(5))
async def test_two_concurrent_patches_with_the_same_etag_one_200_one_412(client, two_clients, crew, round_):
    item = await create_item(client, crew.member, tag_names=["a"])
    url = f"{ITEMS}/{item['id']}"
    first, second = two_clients
    results = await asyncio.gather(
        first.patch(url, json={"stock_quantity": 100}, headers=with_if_match(crew.member, 1)),
        second.patch(url, json={"price": "1.00", "tag_names": ["b"]}, headers=with_if_match(crew.admin, 1)),
    )
    assert sorted(r.status_code for r in results) == [200, 412], [r.text for r in results]
    winner = next(r for r in results if r.status_code == 200)
    got = (await client.get(url, headers=crew.member.headers)).json()
    assert got == winner.json() and got["version"] == 2  # the loser wrote nothing


async def test_concurrent_patches_without_if_match_never_both_silently_win(client, two_clients, crew):
    """Without If-Match each PATCH still writes WHERE version = <what it read>: if both read
    version 1, the second UPDATE matches no row and answers 412; if they ran one after the
    other, both succeed and the version counts both writes. Either way no write is lost unseen."""
    item = await create_item(client, crew.member)
    url = f"{ITEMS}/{item['id']}"
    first, second = two_clients
    results = await asyncio.gather(
        first.patch(url, json={"stock_quantity": 5}, headers=crew.member.headers),
        second.patch(url, json={"stock_quantity": 6}, headers=crew.admin.headers),
    )
    codes = sorted(r.status_code for r in results)
    assert codes in ([200, 200], [200, 412]), [r.text for r in results]
    got = (await client.get(url, headers=crew.member.headers)).json()
    assert got["version"] == 1 + codes.count(200)


async def test_concurrent_delete_and_patch_with_the_same_etag(client, two_clients, crew):
    item = await create_item(client, crew.member)
    url = f"{ITEMS}/{item['id']}"
    first, second = two_clients
    deleted, patched = await asyncio.gather(
        first.delete(url, headers=with_if_match(crew.member, 1)),
        second.patch(url, json={"stock_quantity": 9}, headers=with_if_match(crew.member, 1)),
    )
    # Either the delete won (the patch then finds a changed or missing row) or the patch did.
    assert (deleted.status_code, patched.status_code) in ((204, 412), (204, 404), (412, 200))


async def test_concurrent_transfer_and_patch_with_the_same_etag(client, two_clients, crew):
    item = await create_item(client, crew.member)
    url = f"{ITEMS}/{item['id']}"
    first, second = two_clients
    results = await asyncio.gather(
        first.post(f"{url}/transfer", json={"owner_id": str(crew.admin.id)}, headers=with_if_match(crew.member, 1)),
        second.patch(url, json={"stock_quantity": 9}, headers=with_if_match(crew.member, 1)),
    )
    assert sorted(r.status_code for r in results) == [200, 412]


async def _wait_until_blocked_on_a_lock(factory, crew) -> None:
    """Poll (a condition, not a timer) until some app connection waits on a row lock."""
    for _ in range(2000):
        async with factory.session_for(crew.tenant.id) as session:
            waiting = await session.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            ))
        if waiting:
            return
        await asyncio.sleep(0.005)
    pytest.fail("the PATCH never reached its UPDATE")


async def test_a_writer_that_read_a_version_another_then_committed_gets_412(client, factory, crew):
    """Deterministic version of the race, without If-Match: another transaction holds the row
    (version 1 → 2, uncommitted) while the PATCH reads version 1 and blocks in
    UPDATE ... WHERE version = 1; once the other commits, that UPDATE matches no row → 412."""
    item = await create_item(client, crew.member)
    url = f"{ITEMS}/{item['id']}"
    async with factory.session_for(crew.tenant.id) as other:
        await other.execute(
            text("UPDATE items SET version = version + 1, stock_quantity = 77 WHERE id = :id"), {"id": item["id"]}
        )
        patch = asyncio.create_task(client.patch(url, json={"stock_quantity": 5}, headers=crew.member.headers))
        await _wait_until_blocked_on_a_lock(factory, crew)
        await other.commit()
    r = await patch
    assert r.status_code == 412, r.text
    got = (await client.get(url, headers=crew.member.headers)).json()
    assert got["stock_quantity"] == 77 and got["version"] == 2  # the other write was not overwritten
