"""Operator CLI: keys create/list/revoke and tenants limits, against the real database."""

from __future__ import annotations

import json

from tests.apikeys.helpers import key_headers
from tests.core.test_provisioning import cli  # noqa: F401  (the in-process CLI fixture)

ITEMS = "/api/v1/items"


async def test_keys_create_list_revoke(cli, client, factory):  # noqa: F811
    t = await factory.tenant()
    r = await cli("keys", "create", "--tenant", t.slug, "--service-account", "importer", "--role", "admin",
                  "--scopes", "items:read,items:write", "--json")
    assert r.code == 0, r.err
    created = r.json
    assert created["key"].startswith("tnt_") and created["scopes"] == ["items:read", "items:write"]
    assert (await client.get(ITEMS, headers=key_headers(created["key"]))).status_code == 200
    listed = await cli("keys", "list", "--tenant", t.slug, "--json")
    assert listed.code == 0 and created["key"] not in listed.out
    assert [k["id"] for k in json.loads(listed.out)] == [created["id"]]
    assert (await cli("keys", "revoke", "--tenant", t.slug, created["id"])).code == 0
    assert (await client.get(ITEMS, headers=key_headers(created["key"]))).status_code == 401


async def test_bad_input_exits_2_with_the_reason(cli, factory):  # noqa: F811
    t = await factory.tenant()
    r = await cli("keys", "create", "--tenant", t.slug, "--service-account", "x", "--scopes", "root")
    assert r.code == 2 and "scope" in r.err
    r = await cli("keys", "create", "--tenant", "no-such", "--service-account", "x", "--scopes", "items:read")
    assert r.code == 2 and "no tenant" in r.err
    r = await cli("keys", "revoke", "--tenant", t.slug, "not-a-uuid")
    assert r.code == 2


async def test_tenants_limits_sets_and_shows(cli, factory):  # noqa: F811
    t = await factory.tenant()
    r = await cli("tenants", "limits", t.slug, "--max-items", "7", "--credential-rate-per-minute", "30")
    assert r.code == 0, r.err
    assert json.loads(r.out)["max_items"] == 7
    r = await cli("tenants", "limits", t.slug, "--max-items", "none")
    shown = json.loads(r.out)
    assert shown["max_items"] is None and shown["credential_rate_per_minute"] == 30
    assert (await cli("tenants", "limits", t.slug, "--max-items", "-3")).code == 2
