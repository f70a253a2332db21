"""Run a request again when its transaction lost a deadlock (40P01) or a serialization check (40001).

Such a transaction was rolled back by PostgreSQL and committed nothing, so running the whole
request again is safe and usually succeeds (the other transaction has finished by then).

Why a pure ASGI middleware rather than a wrapper around the route handler: the ORM session
(SessionDep, scope="function") commits in FastAPI's exit stack *outside* the route handler, so
a deadlock at COMMIT never passes through the handler; and the failed attempt's session and
connection must be closed before the next attempt opens its own. Here each attempt is a whole
trip through the routing (dependencies solved, transaction opened, committed or rolled back,
connection returned) and the exception handler has already turned the error into a 503:
  1. the handler (app/core/errors.py) marks the scope retryable (`mark_retryable`);
  2. this middleware sees that response start with the mark, swallows it, waits a short
     jittered backoff and runs the request again with the same body (recorded from the first
     attempt and replayed: the app's `receive` can be read only once);
  3. after DB_RETRY_ATTEMPTS re-runs the 503 (with Retry-After) goes to the client.
Nothing is sent to the client before the final attempt, so nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import logging
import random

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core import metrics

log = logging.getLogger("tenantry.retry")
_MARK = "tenantry.db_retryable"
BACKOFF_BASE = 0.01  # seconds: 10, 20, 40 ms ... (+ jitter), only long enough to let the winner finish


def mark_retryable(scope: Scope) -> None:
    scope.setdefault("state", {})[_MARK] = True


def _take_mark(scope: Scope) -> bool:
    return bool(scope.get("state", {}).pop(_MARK, False))


def backoff(attempt: int) -> float:
    """Full jitter: uniform in [0, base * 2^attempt], so the losers do not collide again."""
    return random.uniform(0, BACKOFF_BASE * (2 ** attempt))


class RetryMiddleware:
    """Re-run a request whose transaction hit a deadlock/serialization failure (bounded)."""

    def __init__(self, app: ASGIApp, attempts: int) -> None:
        self.app = app
        self.attempts = attempts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.attempts <= 0:
            await self.app(scope, receive, send)
            return
        recorded: list[Message] = []

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                recorded.append(message)
            return message

        for attempt in range(self.attempts + 1):
            last = attempt == self.attempts
            swallowed = False

            async def guarded_send(message: Message, last: bool = last) -> None:
                nonlocal swallowed
                if message["type"] == "http.response.start" and not last and _take_mark(scope):
                    swallowed = True
                if not swallowed:
                    await send(message)

            await self.app(scope, recording_receive if attempt == 0 else _replay(recorded, receive), guarded_send)
            if not swallowed:
                return
            metrics.db_retry()
            log.info("retrying %s %s after a deadlock/serialization failure (attempt %d)",
                     scope["method"], scope["path"], attempt + 1)
            await asyncio.sleep(backoff(attempt))


def _replay(recorded: list[Message], receive: Receive) -> Receive:
    """The first attempt's body messages again (a body the first attempt did not read is
    one the route does not take), then the real channel (disconnects)."""
    queue = list(recorded) or [{"type": "http.request", "body": b"", "more_body": False}]

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay
