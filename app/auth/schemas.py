"""Auth API schemas: login (JSON and the OAuth2 password form), refresh, logout, token pair."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.schemas import InputSchema

# Bounds only stop absurd payloads; a wrong-but-well-formed credential is a 401, never a 422,
# so the schema reveals nothing about which tenants or emails exist.
SLUG_MAX = 63
EMAIL_MAX = 320
SECRET_MAX = 1024

# Passwords are taken exactly as typed: the schemas strip whitespace elsewhere, never here.
Password = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=SECRET_MAX)]


class LoginRequest(InputSchema):
    tenant: str = Field(min_length=1, max_length=SLUG_MAX, description="the tenant's slug")
    email: str = Field(min_length=1, max_length=EMAIL_MAX)
    password: Password


class TokenForm(BaseModel):
    """The OAuth2 password grant as Swagger UI's Authorize dialog posts it (form-encoded).

    Extra OAuth2 parameters (scope, client_secret, ...) are accepted and ignored.
    """

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    grant_type: Literal["password"] = "password"
    username: str = Field(min_length=1, max_length=EMAIL_MAX, description="the user's email")
    password: Password
    client_id: str = Field(min_length=1, max_length=SLUG_MAX, description="the tenant's slug")
    scope: str = ""
    client_secret: str | None = None


class RefreshRequest(InputSchema):
    tenant: str = Field(min_length=1, max_length=SLUG_MAX, description="the tenant's slug")
    refresh_token: str = Field(min_length=1, max_length=SECRET_MAX)


class LogoutRequest(RefreshRequest):
    pass


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="access token lifetime in seconds")
    refresh_token: str
