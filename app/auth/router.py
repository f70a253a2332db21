"""Auth routes: login (JSON, and the OAuth2 password form used by /docs), refresh, logout."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.auth import service as auth_service
from app.auth.client import client_id
from app.auth.login import login as login_flow
from app.auth.schemas import LoginRequest, LogoutRequest, RefreshRequest, TokenForm, TokenPair
from app.core.config import Settings
from app.core.errors import AppError, Invalid, error_response
from app.core.openapi import problems
from app.db.session import SessionDep

router = APIRouter(prefix="/auth", tags=["auth"])

LOGIN_ERRORS: dict[int | str, dict[str, Any]] = problems(401, 429, 503)
# RFC 6749 5.1: responses carrying tokens must not be stored by any cache.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_FORM_BYTES = 8192


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def respond(result: Any) -> Any:
    """A service's result, or the error it returned rather than raised.

    Returned errors go out as a normal response, so SessionDep commits the writes made
    before them (a counted failure, a revoked token family); raised errors roll back.
    """
    if isinstance(result, AppError):
        return error_response(result.status_code, result.code, result.detail, result.headers)
    return result


def no_store(response: Response) -> None:
    response.headers.update(NO_STORE)


async def _login(request: Request, response: Response, slug: str, email: str, password: str) -> TokenPair:
    # No SessionDep: the login flow opens its own short transactions around the hash.
    settings = _settings(request)
    no_store(response)
    client = client_id(request, settings)
    return await login_flow(request.app.state.sessionmaker, settings, client, slug, email, password)


@router.post("/login", response_model=TokenPair, responses=LOGIN_ERRORS)
async def login(data: LoginRequest, request: Request, response: Response):
    """Log in to a tenant (by slug) with email and password."""
    return await _login(request, response, data.tenant, data.email, data.password)


@router.post(
    "/token",
    response_model=TokenPair,
    responses=LOGIN_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": TokenForm.model_json_schema()}},
        }
    },
)
async def token(request: Request, response: Response):
    """OAuth2 password grant for the Authorize dialog of /docs: username = email, client_id = tenant slug."""
    form = await read_token_form(request)
    return await _login(request, response, form.client_id, form.username, form.password)


@router.post("/refresh", response_model=TokenPair, responses=problems(401))
async def refresh(data: RefreshRequest, request: Request, response: Response, session: SessionDep):
    """Trade a refresh token for a new pair; the presented one stops working (rotation)."""
    no_store(response)
    return respond(await auth_service.refresh(session, _settings(request), data.tenant, data.refresh_token))


@router.post("/logout", status_code=204)
async def logout(data: LogoutRequest, session: SessionDep) -> Response:
    """Revoke the refresh token (and its rotation family). Unknown tokens also answer 204.

    `everywhere: true` ends every session of the user: all refresh tokens, and every access
    token at its next request. A plain logout leaves the access tokens of the family valid
    until they expire (ACCESS_TOKEN_MINUTES): clients drop them.
    """
    await auth_service.logout(session, data.tenant, data.refresh_token, everywhere=data.everywhere)
    return Response(status_code=204)


# --- the OAuth2 form, parsed here so no multipart dependency is needed ------------------

async def read_token_form(request: Request) -> TokenForm:
    """Parse an application/x-www-form-urlencoded password grant.

    client_id comes from the body, or else from HTTP Basic (client_id:client_secret), the
    other place Swagger UI and OAuth2 clients put it.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise Invalid(["header", "content-type"], "expected application/x-www-form-urlencoded")
    fields = _parse_form(await _read_capped(request))
    if not fields.get("client_id"):
        basic_client_id = _basic_client_id(request.headers.get("authorization"))
        if basic_client_id:
            fields["client_id"] = basic_client_id
    try:
        return TokenForm.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_context=False)]
        ) from exc


async def _read_capped(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise Invalid(["body"], f"form larger than {MAX_FORM_BYTES} bytes")
    return body


def _parse_form(body: bytes) -> dict[str, str]:
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Invalid(["body"], "malformed form body") from exc


def _basic_client_id(header: str | None) -> str | None:
    scheme, _, credentials = (header or "").partition(" ")
    if scheme.lower() != "basic" or not credentials:
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    # RFC 6749 2.3.1: client_id is form-encoded before it goes into the Basic credentials.
    return unquote_plus(decoded.partition(":")[0]) or None
