"""Pure ASGI middleware: header limits, HEAD, request id + access log, bearer token → Principal.

Pure ASGI rather than BaseHTTPMiddleware: no extra task or body buffering per request.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from contextvars import ContextVar
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.apikeys.principal import KeyPrincipals
from app.apikeys.secrets import looks_like_key
from app.core.config import Settings
from app.core.security import MAX_TOKEN_LENGTH, InvalidToken, VerifiedTokens

access_log = logging.getLogger("tenantry.access")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
# The current request's ASGI scope, for code far from the request (the audit log reads the
# request id, client address and user agent from it only when it writes an event).
current_scope: ContextVar[Scope | None] = ContextVar("current_scope", default=None)


class RequestContextMiddleware:
    """Accept X-Request-ID (or make one), return it, and log one line per request.

    The status logged is the one sent (TenantryAPI makes this the outermost layer, so it also
    sees responses of the catch-all handler). The line is one JSON object (access_line) in
    either LOG_FORMAT; with json, the formatter lifts its fields to the top level.
    """

    def __init__(self, app: ASGIApp, json_logs: bool = False) -> None:
        self.app = app
        self.json_logs = json_logs  # kept for the caller's signature; the line is JSON either way

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
                access_log.info("%s", access_line(scope, status, started, request_id))


def access_line(scope: Scope, status: int, started: float, request_id: str) -> str:
    """One JSON object per request: a path with %0a or quotes cannot forge a second line or
    a field (json.dumps escapes every control character)."""
    principal = scope["state"].get("principal")
    return json.dumps(
        {
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            "request_id": request_id,
            "tenant_id": str(principal.tenant_id) if principal else None,
            "user_id": str(principal.user_id) if principal else None,
        },
        ensure_ascii=True,
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
            if len(value) > MAX_AUTHORIZATION_BYTES:
                return _OVERSIZED  # refused by decode() at once, never decoded or split
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
            return None
    return None


MAX_AUTHORIZATION_BYTES = MAX_TOKEN_LENGTH + 16
_OVERSIZED = "x" * (MAX_TOKEN_LENGTH + 1)


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


# Headers the application parses itself: each is bounded on its own, below the total.
# Authorization is bounded too, but by TenantMiddleware: any bad token, however long, is the
# same 401 (MAX_TOKEN_LENGTH, checked before any decoding), so it is left out of the 431s here.
PARSED_HEADERS = (b"if-match", b"if-none-match", b"x-request-id", b"x-forwarded-for", b"content-type")


class HeaderLimitMiddleware:
    """431 for too many headers, too many header bytes, or an oversized header we parse.

    Runs first, before routing and before anything reads a header, so the parsing done later
    (ETag lists, bearer tokens) only ever sees bounded input. The HTTP server bounds what it
    buffers before this (app/core/server.py); this is the application's own, exact limit.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_bytes = settings.max_header_bytes
        self.max_count = settings.max_header_count
        self.max_parsed = settings.max_parsed_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = self._problem(scope["headers"])
            if problem is not None:
                from app.core.errors import error_response

                response = error_response(431, "request_header_fields_too_large", problem, {"Connection": "close"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _problem(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        if len(headers) > self.max_count:
            return f"more than {self.max_count} request headers"
        total = 0
        for name, value in headers:
            if name == b"authorization":
                continue
            total += len(name) + len(value) + 4  # ": " and CRLF, as on the wire
            if len(value) > self.max_parsed and name in PARSED_HEADERS:
                return f"header {name.decode('latin-1')} larger than {self.max_parsed} bytes"
        if total > self.max_bytes:
            return f"request headers larger than {self.max_bytes} bytes"
        return None


class HeadMiddleware:
    """HEAD answers as GET would, without the body (RFC 9110 9.3.2), on every GET route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)


class RelativeRedirectMiddleware:
    """Redirects (the trailing-slash ones) point at a path, never at the Host header's value.

    Starlette builds the Location of its slash redirects from the request's Host header, which
    the client controls: anyone could make the API redirect to another site. A relative
    reference (RFC 9110 10.2.2) lands on the same origin whatever Host said.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_relative(message: Message) -> None:
            if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
                message = {**message, "headers": [_relative(n, v) for n, v in message.get("headers", [])]}
            await send(message)

        await self.app(scope, receive, send_relative)


def _relative(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    if name.lower() != b"location":
        return name, value
    parts = urlsplit(value.decode("latin-1"))
    path = parts.path or "/"
    if not path.startswith("/") or path.startswith("//"):
        path = "/" + path.lstrip("/")  # never a scheme-relative //host reference
    return name, (path + (f"?{parts.query}" if parts.query else "")).encode("latin-1")


LOGIN_PATHS = frozenset({"/api/v1/auth/login", "/api/v1/auth/token"})


class LoginAdmissionMiddleware:
    """Refuse a login at once (503) while this process's hashing queue is full.

    Checked before routing and before the body is read or validated: under a login flood the
    refused requests cost the event loop as little as possible, so other tenants' requests
    keep their share. The login flow itself checks the queue again (the authoritative place).
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.limit = settings.login_hash_queue

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from app.core.security import login_hashes

        if (
            scope["type"] == "http"
            and login_hashes.pending >= self.limit
            and scope["method"] == "POST"
            and scope["path"] in LOGIN_PATHS
        ):
            from app.core.errors import error_response

            response = error_response(
                503, "service_unavailable", "too many logins in progress; try again shortly", {"Retry-After": "1"}
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
