"""Auth API schemas: login (JSON and the OAuth2 password form), refresh, logout, token pair."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.core.schemas import InputSchema

# Bounds only stop absurd payloads; a wrong-but-well-formed credential is a 401, never a 422,
# so the schema reveals nothing about which tenants or emails exist.
SLUG_MAX = 63
EMAIL_MAX = 320
SECRET_MAX = 1024


def clean_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL and UTF-8 cannot encode a lone surrogate: 422, not 500.

    InputSchema already refuses NUL in JSON bodies; this also covers the OAuth2 form, query
    parameters and values decoded from a cursor.
    """
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


Text = Annotated[str, AfterValidator(clean_text)]
# Passwords are taken exactly as typed: the schemas strip whitespace elsewhere, never here.
Password = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=SECRET_MAX)]


class LoginRequest(InputSchema):
    tenant: Text = Field(min_length=1, max_length=SLUG_MAX, description="the tenant's slug")
    email: Text = Field(min_length=1, max_length=EMAIL_MAX)
    password: Password


class TokenForm(BaseModel):
    """The OAuth2 password grant as Swagger UI's Authorize dialog posts it (form-encoded).

    Extra OAuth2 parameters (scope, client_secret, ...) are accepted and ignored.
    """

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    grant_type: Literal["password"] = "password"
    username: Text = Field(min_length=1, max_length=EMAIL_MAX, description="the user's email")
    password: Password
    client_id: Text = Field(min_length=1, max_length=SLUG_MAX, description="the tenant's slug")
    scope: str = ""
    client_secret: str | None = None


class RefreshRequest(InputSchema):
    tenant: Text = Field(min_length=1, max_length=SLUG_MAX, description="the tenant's slug")
    refresh_token: Text = Field(min_length=1, max_length=SECRET_MAX)


class LogoutRequest(RefreshRequest):
    everywhere: bool = Field(False, description="end every session of the user, access tokens included")


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="access token lifetime in seconds")
    refresh_token: str
