"""Invitations end to end through the real SMTP server: invite, email, accept, roles, 409s, resend, revoke."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from app.people.models import Invitation
from app.users.models import Role
from tests.auth.helpers import ME, bearer, login
from tests.jobs.mailserver import html_of, text_of
from tests.people.helpers import INVITATIONS, accept, invite, mailed_token, new_email


async def test_invite_email_accept_and_log_in(client, factory, inbox, mail_settings):
    tenant = await factory.tenant(name="Globex Corp")
    email = new_email("invitee")
    r = await invite(client, tenant.owner, email, Role.admin)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "pending" and body["role"] == "admin" and body["expired"] is False
    token = await mailed_token(inbox, mail_settings, email)
    [message] = inbox.to(email)
    assert message["Subject"] == "You are invited to join Globex Corp"
    assert f"tenant={tenant.slug}" in text_of(message) and "Globex Corp" in html_of(message)

    r = await accept(client, tenant.slug, token, name="Ivy Invitee")
    assert r.status_code == 201, r.text
    me = (await client.get(ME, headers=bearer(r.json()["access_token"]))).json()
    assert me["email"] == email and me["role"] == "admin" and me["full_name"] == "Ivy Invitee"
    assert (await login(client, tenant.slug, email, "invited-password-1")).status_code == 200
    # Single use: the same token again is refused, naming the field.
    again = await accept(client, tenant.slug, token)
    assert again.status_code == 422 and again.json()["errors"][0]["loc"] == ["body", "token"]
    listed = (await client.get(INVITATIONS, headers=tenant.owner.headers)).json()["items"]
    assert [i["status"] for i in listed if i["email"] == email] == ["accepted"]


async def test_roles_never_above_the_inviters_and_only_owners_invite_owners(client, factory):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, Role.admin)
    member = await factory.user(tenant, Role.member)
    assert (await invite(client, admin, new_email(), Role.owner)).status_code == 403
    assert (await invite(client, admin, new_email(), Role.admin)).status_code == 201
    assert (await invite(client, member, new_email(), Role.member)).status_code == 403
    assert (await invite(client, tenant.owner, new_email(), Role.owner)).status_code == 201
    owner_invite = (await client.get(INVITATIONS, headers=admin.headers)).json()["items"]
    owner_id = next(i["id"] for i in owner_invite if i["role"] == "owner")
    assert (await client.post(f"{INVITATIONS}/{owner_id}/resend", headers=admin.headers)).status_code == 403
    assert (await client.delete(f"{INVITATIONS}/{owner_id}", headers=admin.headers)).status_code == 403


async def test_existing_account_or_pending_invitation_is_a_409_naming_email(client, factory):
    tenant = await factory.tenant()
    r = await invite(client, tenant.owner, tenant.owner.email)
    assert r.status_code == 409 and r.json()["errors"][0]["loc"] == ["body", "email"]
    email = new_email()
    assert (await invite(client, tenant.owner, email)).status_code == 201
    r = await invite(client, tenant.owner, email.upper())
    assert r.status_code == 409 and "pending" in r.json()["detail"]
    # Another tenant may invite the same address.
    other = await factory.tenant()
    assert (await invite(client, other.owner, email)).status_code == 201


async def test_resend_kills_the_old_link_and_revives_an_expired_invitation(client, factory, inbox, mail_settings):
    tenant = await factory.tenant()
    email = new_email("expired")
    invitation_id = (await invite(client, tenant.owner, email)).json()["id"]
    first = await mailed_token(inbox, mail_settings, email)
    async with factory.session_for(tenant.id) as session, session.begin():
        await session.execute(
            update(Invitation).where(Invitation.id == invitation_id)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    listed = (await client.get(INVITATIONS, headers=tenant.owner.headers)).json()["items"]
    assert next(i for i in listed if i["id"] == invitation_id)["expired"] is True
    assert (await accept(client, tenant.slug, first)).status_code == 422  # expired

    r = await client.post(f"{INVITATIONS}/{invitation_id}/resend", headers=tenant.owner.headers)
    assert r.status_code == 200 and r.json()["expired"] is False
    second = await mailed_token(inbox, mail_settings, email)
    assert second != first
    assert (await accept(client, tenant.slug, first)).status_code == 422  # the old link is dead
    assert (await accept(client, tenant.slug, second)).status_code == 201


async def test_revoked_invitation_cannot_be_accepted_or_resent(client, factory, inbox, mail_settings):
    tenant = await factory.tenant()
    email = new_email("revoked")
    invitation_id = (await invite(client, tenant.owner, email)).json()["id"]
    token = await mailed_token(inbox, mail_settings, email)
    assert (await client.delete(f"{INVITATIONS}/{invitation_id}", headers=tenant.owner.headers)).status_code == 204
    assert (await accept(client, tenant.slug, token)).status_code == 422
    assert (await client.post(f"{INVITATIONS}/{invitation_id}/resend", headers=tenant.owner.headers)).status_code == 409
    assert (await client.delete(f"{INVITATIONS}/{invitation_id}", headers=tenant.owner.headers)).status_code == 409
    # Revoked, the email may be invited again.
    assert (await invite(client, tenant.owner, email)).status_code == 201


async def test_another_tenants_invitation_is_not_found_and_its_token_does_nothing(client, factory, inbox, mail_settings):
    a, b = await factory.tenant(), await factory.tenant()
    email = new_email("cross")
    invitation_id = (await invite(client, a.owner, email)).json()["id"]
    token = await mailed_token(inbox, mail_settings, email)
    assert (await client.post(f"{INVITATIONS}/{invitation_id}/resend", headers=b.owner.headers)).status_code == 404
    assert (await client.delete(f"{INVITATIONS}/{invitation_id}", headers=b.owner.headers)).status_code == 404
    assert all(i["id"] != invitation_id for i in (await client.get(INVITATIONS, headers=b.owner.headers)).json()["items"])
    assert (await accept(client, b.slug, token)).status_code == 422
    assert (await accept(client, a.slug, token)).status_code == 201


async def test_accept_checks_the_password_and_unknown_fields(client, factory, inbox, mail_settings):
    tenant = await factory.tenant()
    email = new_email()
    await invite(client, tenant.owner, email)
    token = await mailed_token(inbox, mail_settings, email)
    short = await accept(client, tenant.slug, token, password="short")
    assert short.status_code == 422 and short.json()["errors"][0]["loc"] == ["body", "password"]
    smuggled = await client.post(
        "/api/v1/auth/invitations/accept",
        json={"tenant": tenant.slug, "token": token, "full_name": "X", "password": "long-enough-1", "role": "owner"},
    )
    assert smuggled.status_code == 422
    assert (await accept(client, tenant.slug, token)).status_code == 201  # still unspent after those


async def test_two_concurrent_accepts_of_one_invitation_create_one_account(client, factory, inbox, mail_settings):
    import asyncio

    tenant = await factory.tenant()
    email = new_email("race")
    await invite(client, tenant.owner, email)
    token = await mailed_token(inbox, mail_settings, email)
    results = await asyncio.wait_for(
        asyncio.gather(accept(client, tenant.slug, token, name="One"), accept(client, tenant.slug, token, name="Two")),
        timeout=30,
    )
    assert sorted(r.status_code for r in results) == [201, 422]
    users = (await client.get("/api/v1/users", params={"q": email}, headers=tenant.owner.headers)).json()
    assert users["total"] == 1
