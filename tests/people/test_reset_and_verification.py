"""Password reset and email verification through the real SMTP server, and token misuse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from app.people.models import UserToken
from app.users.models import Role
from tests.auth.helpers import ME, bearer, login, login_ok, refresh
from tests.jobs.mailserver import run_jobs
from tests.people.helpers import (
    LOGIN_POLICY,
    MY_VERIFICATION,
    NEW_PASSWORD,
    RESET,
    RESET_COMPLETE,
    VERIFY,
    accept,
    invite,
    mailed_token,
    new_email,
)


async def _request(client, slug: str, email: str):
    return await client.post(RESET, json={"tenant": slug, "email": email})


async def _complete(client, slug: str, token: str, password: str = NEW_PASSWORD):
    return await client.post(RESET_COMPLETE, json={"tenant": slug, "token": token, "new_password": password})


async def test_reset_answers_the_same_for_unknown_accounts_and_mails_only_real_ones(client, factory, inbox, mail_settings):
    tenant = await factory.tenant(name="Initech")
    user = await factory.user(tenant, email=new_email("real"))
    ghost = new_email("ghost")
    real, missing = await _request(client, tenant.slug, user.email), await _request(client, tenant.slug, ghost)
    assert real.status_code == missing.status_code == 202
    assert real.json() == missing.json()
    await run_jobs(mail_settings)  # the request's job runs, then the email's
    await run_jobs(mail_settings)
    assert inbox.to(ghost) == []
    [message] = inbox.to(user.email)
    assert message["Subject"] == "Reset your Initech password"


async def test_completing_a_reset_ends_every_session_and_logs_in(client, factory, inbox, mail_settings):
    tenant = await factory.tenant()
    user = await factory.user(tenant, email=new_email("reset"))
    old = await login_ok(client, tenant.slug, user)
    await _request(client, tenant.slug, user.email)
    await run_jobs(mail_settings)
    token = await mailed_token(inbox, mail_settings, user.email)

    r = await _complete(client, tenant.slug, token)
    assert r.status_code == 200, r.text
    assert (await client.get(ME, headers=bearer(r.json()["access_token"]))).status_code == 200
    assert (await client.get(ME, headers=bearer(old["access_token"]))).status_code == 401  # token_version
    assert (await refresh(client, tenant.slug, old["refresh_token"])).status_code == 401  # families revoked
    assert (await login(client, tenant.slug, user.email, user.password)).status_code == 401
    assert (await login(client, tenant.slug, user.email, NEW_PASSWORD)).status_code == 200
    assert (await _complete(client, tenant.slug, token, "yet-another-pass-1")).status_code == 422  # single use


async def test_reset_tokens_expire_and_only_the_newest_works(client, factory, inbox, mail_settings):
    tenant = await factory.tenant()
    user = await factory.user(tenant, email=new_email("newest"))
    for _ in range(2):
        await _request(client, tenant.slug, user.email)
        await run_jobs(mail_settings)
    await run_jobs(mail_settings)
    first, second = await mailed_token(inbox, mail_settings, user.email, 0), await mailed_token(inbox, mail_settings, user.email, 1)
    assert (await _complete(client, tenant.slug, first)).status_code == 422
    async with factory.session_for(tenant.id) as session, session.begin():
        await session.execute(update(UserToken).where(UserToken.user_id == user.id)
                              .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    r = await _complete(client, tenant.slug, second)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "token"]


async def test_tokens_are_bound_to_their_tenant_and_purpose(client, factory, inbox, mail_settings):
    a, b = await factory.tenant(), await factory.tenant()
    user = await factory.user(a, email=new_email("bound"))
    await _request(client, a.slug, user.email)
    await run_jobs(mail_settings)
    reset_token = await mailed_token(inbox, mail_settings, user.email)
    invitee = new_email("inv")
    await invite(client, a.owner, invitee)
    invitation_token = await mailed_token(inbox, mail_settings, invitee)

    assert (await _complete(client, b.slug, reset_token)).status_code == 422  # another tenant
    assert (await _complete(client, a.slug, invitation_token)).status_code == 422  # another purpose
    verify = await client.post(VERIFY, json={"tenant": a.slug, "token": reset_token})
    assert verify.status_code == 422
    assert (await accept(client, a.slug, reset_token)).status_code == 422
    assert (await _complete(client, a.slug, reset_token)).status_code == 200  # still good where it belongs


async def test_reset_requests_are_limited_per_account_and_per_client(client, factory):
    tenant = await factory.tenant()
    email = new_email("flood")
    limit = client._transport.app.state.settings.password_reset_max_per_account
    for _ in range(limit):
        assert (await _request(client, tenant.slug, email)).status_code == 202
    r = await _request(client, tenant.slug, email)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert (await _request(client, tenant.slug, email.replace("flood", "other"))).status_code == 202
    # Per client: many accounts from one address (the test client's) hit the client limit.
    per_client = client._transport.app.state.settings.password_reset_max_per_client
    statuses = [(await _request(client, tenant.slug, new_email("spray"))).status_code for _ in range(per_client)]
    assert statuses[-1] == 429 and 202 in statuses


async def test_email_verification_link_sets_the_flag(client, factory, inbox, mail_settings):
    tenant = await factory.tenant(name="Hooli")
    user = await factory.user(tenant, email=new_email("verify"))
    assert (await client.get(MY_VERIFICATION, headers=user.headers)).json()["email_verified"] is False
    assert (await client.post(MY_VERIFICATION, headers=user.headers)).status_code == 202
    token = await mailed_token(inbox, mail_settings, user.email)
    assert inbox.to(user.email)[-1]["Subject"] == "Confirm your email address for Hooli"
    r = await client.post(VERIFY, json={"tenant": tenant.slug, "token": token})
    assert r.status_code == 200 and r.json()["email_verified"] is True
    assert (await client.get(MY_VERIFICATION, headers=user.headers)).json()["email_verified"] is True
    assert (await client.post(VERIFY, json={"tenant": tenant.slug, "token": token})).status_code == 422
    assert (await client.post(MY_VERIFICATION, headers=user.headers)).status_code == 409


async def test_the_tenant_decides_whether_unverified_users_may_log_in(client, factory, inbox, mail_settings):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, Role.admin)
    user = await factory.user(tenant, email=new_email("unverified"))
    assert (await client.get(LOGIN_POLICY, headers=admin.headers)).json() == {"allow_unverified_login": True}
    assert (await login(client, tenant.slug, user.email, user.password)).status_code == 200  # default: may
    denied = await client.patch(LOGIN_POLICY, json={"allow_unverified_login": False}, headers=admin.headers)
    assert denied.status_code == 403  # owners only
    r = await client.patch(LOGIN_POLICY, json={"allow_unverified_login": False}, headers=tenant.owner.headers)
    assert r.status_code == 200
    r = await login(client, tenant.slug, user.email, user.password)
    assert r.status_code == 403 and r.json()["code"] == "email_not_verified"
    # A wrong password still gets the plain 401: the 403 only follows a correct one.
    assert (await login(client, tenant.slug, user.email, "wrong-password-1")).status_code == 401
    await client.post(MY_VERIFICATION, headers=user.headers)
    token = await mailed_token(inbox, mail_settings, user.email)
    await client.post(VERIFY, json={"tenant": tenant.slug, "token": token})
    assert (await login(client, tenant.slug, user.email, user.password)).status_code == 200
    # Another tenant's policy is its own.
    other = await factory.tenant()
    assert (await client.get(LOGIN_POLICY, headers=other.owner.headers)).json() == {"allow_unverified_login": True}
