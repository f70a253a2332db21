"""Shared steps for the people tests: invite, read the email that arrived, spend its token."""

from __future__ import annotations

import uuid

from app.users.models import Role
from tests.jobs.mailserver import Inbox, run_jobs, token_in

V1 = "/api/v1"
INVITATIONS = f"{V1}/invitations"
ACCEPT = f"{V1}/auth/invitations/accept"
RESET = f"{V1}/auth/password-reset"
RESET_COMPLETE = f"{V1}/auth/password-reset/complete"
VERIFY = f"{V1}/auth/verify-email"
MY_VERIFICATION = f"{V1}/users/me/verification"
LOGIN_POLICY = f"{V1}/tenant/login-policy"
NEW_PASSWORD = "a-brand-new-password-1"


def new_email(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


async def invite(client, actor, email: str, role: Role = Role.member):
    return await client.post(INVITATIONS, json={"email": email, "role": role.value}, headers=actor.headers)


async def mailed_token(inbox: Inbox, settings, to: str, index: int = -1) -> str:
    await run_jobs(settings)
    messages = inbox.to(to)
    assert messages, f"no email arrived for {to}"
    return token_in(messages[index])


async def accept(client, slug: str, token: str, password: str = "invited-password-1", name: str = "New Person"):
    return await client.post(ACCEPT, json={"tenant": slug, "token": token, "full_name": name, "password": password})
