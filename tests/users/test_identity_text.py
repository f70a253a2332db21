"""One normalization of identity strings (issue #12, item 6): the string an account was
created with logs in; look-alikes collide or are refused; invisible characters are 422."""

from __future__ import annotations

import pytest

from app.core.text import identity_key, normalize_email
from tests.auth.helpers import login

USERS = "/api/v1/users"
TAGS = "/api/v1/tags"
ITEMS = "/api/v1/items"


@pytest.mark.parametrize(
    "email",
    [
        "jose\u0301@example.com",  # decomposed é (NFD)
        "jos\u00e9@example.com",  # composed é (NFC)
        "carol@\uff58.io",  # fullwidth x
        "erin@xn--bcher-kva.de",  # an A-label domain
        "erin2@b\u00fccher.de",  # the same domain as a U-label
        "bo\u0301b@example.com",
        "Mixed.Case@Example.COM",
    ],
)
async def test_an_account_logs_in_with_the_string_it_was_created_with(client, factory, email):
    t = await factory.tenant()
    r = await client.post(USERS, headers=t.owner.headers, json={"email": email, "password": "a-long-password"})
    assert r.status_code == 201, r.text
    assert r.json()["email"] == normalize_email(email)
    assert (await login(client, t.slug, email, "a-long-password")).status_code == 200


async def test_a_u_label_and_an_a_label_domain_are_one_address(client, factory):
    t = await factory.tenant()
    first = await client.post(USERS, headers=t.owner.headers, json={"email": "erin@xn--bcher-kva.de", "password": "a-long-password"})
    assert first.status_code == 201, first.text
    assert (await login(client, t.slug, "ERIN@bücher.de", "a-long-password")).status_code == 200
    again = await client.post(USERS, headers=t.owner.headers, json={"email": "erin@bücher.de", "password": "a-long-password"})
    assert again.status_code == 409


@pytest.mark.parametrize(("first", "second"), [("\ufb01ona@example.com", "fiona@example.com"), ("STRASSE@example.com", "stra\u00dfe@example.com")])
async def test_look_alike_emails_collide(client, factory, first, second):
    t = await factory.tenant()
    r = await client.post(USERS, headers=t.owner.headers, json={"email": first, "password": "a-long-password"})
    assert r.status_code == 201, r.text
    r = await client.post(USERS, headers=t.owner.headers, json={"email": second, "password": "a-long-password"})
    assert r.status_code == 409, r.text


async def test_mixed_script_emails_are_refused(client, factory):
    t = await factory.tenant()
    r = await client.post(USERS, headers=t.owner.headers, json={"email": "b\u043eb@example.com", "password": "a-long-password"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"][-1] == "email"


BAD = ["tab\there", "line\nfeed", "evil\u202ename", "zero\u200bwidth", "bell\u0007", "iso\u2066late"]


@pytest.mark.parametrize("name", BAD)
async def test_invisible_and_control_characters_in_names_are_422_naming_the_field(client, factory, name):
    t = await factory.tenant()
    r = await client.post(USERS, headers=t.owner.headers, json={"email": "n@example.com", "full_name": name, "password": "a-long-password"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][-1] == "full_name", r.text
    r = await client.patch("/api/v1/users/me", headers=t.owner.headers, json={"full_name": name})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][-1] == "full_name", r.text
    r = await client.post(TAGS, headers=t.owner.headers, json={"name": name})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][-1] == "name", r.text
    r = await client.post(ITEMS, headers=t.owner.headers, json={"name": name, "price": "1.00"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][-1] == "name", r.text


async def test_joiners_stay_allowed_in_display_names(client, factory):
    t = await factory.tenant()
    r = await client.patch("/api/v1/users/me", headers=t.owner.headers, json={"full_name": "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("first", "second"), [("Caf\u00e9", "Cafe\u0301"), ("\ufb01le", "file")])
async def test_tags_unique_ignoring_case_also_ignore_normalization_forms(client, factory, first, second):
    t = await factory.tenant()
    assert (await client.post(TAGS, headers=t.owner.headers, json={"name": first})).status_code == 201
    r = await client.post(TAGS, headers=t.owner.headers, json={"name": second})
    assert r.status_code == 409, r.text


async def test_mixed_script_tags_are_refused(client, factory):
    t = await factory.tenant()
    r = await client.post(TAGS, headers=t.owner.headers, json={"name": "\u0441afe"})  # Cyrillic с + Latin
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][-1] == "name"


def test_identity_key_folds_compatibility_case_and_composition():
    assert identity_key("\ufb01ONA") == identity_key("fiona")
    assert identity_key("Cafe\u0301") == identity_key("CAF\u00c9")
    assert normalize_email("Erin@B\u00dcCHER.de") == "erin@xn--bcher-kva.de"
