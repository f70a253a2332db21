"""Who acted, and from which request: the actor of an event and the request it came with."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from app.core.middleware import current_scope

USER, SERVICE_ACCOUNT, OPERATOR, SYSTEM, ANONYMOUS = "user", "service_account", "operator", "system", "anonymous"
ACTOR_TYPES = (USER, SERVICE_ACCOUNT, OPERATOR, SYSTEM, ANONYMOUS)
MAX_USER_AGENT = 512


@dataclass(frozen=True, slots=True)
class Actor:
    """user (id, email), service_account (id + API key id), operator (platform key or CLI),
    system (a job's name), anonymous (an unauthenticated caller, e.g. a failed login)."""

    type: str
    id: uuid.UUID | None = None
    key_id: uuid.UUID | None = None
    label: str | None = None

    @classmethod
    def user(cls, user: Any) -> Actor:
        return cls(USER, id=user.id, label=user.email)

    @classmethod
    def service_account(cls, account_id: uuid.UUID, key_id: uuid.UUID, label: str | None = None) -> Actor:
        return cls(SERVICE_ACCOUNT, id=account_id, key_id=key_id, label=label)

    @classmethod
    def operator(cls, via: str) -> Actor:
        return cls(OPERATOR, label=via)

    @classmethod
    def system(cls, job: str) -> Actor:
        return cls(SYSTEM, label=job)

    @classmethod
    def anonymous(cls, label: str | None = None) -> Actor:
        return cls(ANONYMOUS, label=label[:320] if label else None)


OPERATOR_CLI = Actor.operator("cli")
OPERATOR_API = Actor.operator("platform_api")


@dataclass(frozen=True, slots=True)
class RequestInfo:
    request_id: str | None = None
    client_addr: str | None = None
    user_agent: str | None = None


NO_REQUEST = RequestInfo()


def request_info() -> RequestInfo:
    """The current request's id, client address and user agent (nothing outside a request)."""
    scope = current_scope.get()
    if scope is None:
        return NO_REQUEST
    client = scope.get("client")
    user_agent = None
    for name, value in scope.get("headers", ()):
        if name == b"user-agent":
            user_agent = value.decode("latin-1")[:MAX_USER_AGENT]
            break
    return RequestInfo(
        request_id=scope.get("state", {}).get("request_id"),
        client_addr=str(client[0])[:100] if client else None,
        user_agent=user_agent,
    )
