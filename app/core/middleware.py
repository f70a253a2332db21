"""Pure ASGI middleware: request id + access log, and the bearer token → Principal step.

Pure ASGI rather than BaseHTTPMiddleware: no extra task or body buffering per request.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.apikeys.principal import KeyPrincipals
from app.apikeys.secrets import looks_like_key
from app.core.config import Settings
from app.core.security import InvalidToken, VerifiedTokens

access_log = logging.getLogger("tenantry.access")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
# The current request's ASGI scope, for code far from the request (the audit log reads the
# request id, client address and user agent from it only when it writes an event).
current_scope: ContextVar[Scope | None] = ContextVar("current_scope", default=None)


class RequestContextMiddleware:
    """Accept X-Request-ID (or make one), return it, and log one line per request.

    The status logged is the one sent (TenantryAPI makes this the outermost layer, so it also
    sees responses of the catch-all handler); json_logs: one JSON object per line instead.
    """

    def __init__(self, app: ASGIApp, json_logs: bool = False) -> None:
        self.app = app
        self.json_logs = json_logs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                request_id = candidate if _REQUEST_ID_RE.match(candidate) else None
                break
        request_id = request_id or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        scope_token = current_scope.set(scope)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_scope.reset(scope_token)
            if access_log.isEnabledFor(logging.INFO):
                principal = scope["state"].get("principal")
                if self.json_logs:
                    access_log.info("%s", json.dumps({
                        "method": scope["method"], "path": scope["path"], "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                        "request_id": request_id,
                        "tenant_id": str(principal.tenant_id) if principal else None,
                        "user_id": str(principal.user_id) if principal else None,
                    }))
                else:
                    access_log.info(
                        "%s %s %s %.1fms request_id=%s tenant_id=%s user_id=%s",
                        scope["method"], scope["path"], status,
                        (time.perf_counter() - started) * 1000, request_id,
                        principal.tenant_id if principal else "-",
                        principal.user_id if principal else "-",
                    )


class TenantMiddleware:
    """Verify the bearer token (if any) and put an immutable Principal on request.state.

    No token → anonymous (routes that need one answer 401). A bad token is remembered as
    such, so protected routes answer 401 rather than treating the caller as anonymous.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.tokens = VerifiedTokens(settings)
        self.keys = KeyPrincipals(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            state = scope.setdefault("state", {})
            state["principal"] = None
            state["token_error"] = None
            token = _bearer_token(scope["headers"])
            if token is not None:
                try:
                    state["principal"] = (
                        self.keys.decode(token) if looks_like_key(token) else self.tokens.decode(token)
                    )
                except InvalidToken as exc:
                    state["token_error"] = str(exc)
        await self.app(scope, receive, send)


def _bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
            return None
    return None


class _BodyTooLarge(BaseException):
    """BaseException: FastAPI turns any Exception raised while reading a body into a 400."""


class BodySizeLimitMiddleware:
    """Refuse request bodies over a limit with 413 before they are read and parsed whole.

    Content-Length is checked up front; a chunked body is counted as it streams in.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        from app.core.errors import error_response

        response = error_response(413, "payload_too_large", f"request body larger than {self.max_bytes} bytes")
        await response(scope, receive, send)
