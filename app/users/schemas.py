"""User API schemas: admin create/update, self-service update and password change, UserRead."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, EmailStr, Field, StrictBool, field_validator

from app.auth.schemas import Password, Text
from app.core.schemas import InputSchema, OutputSchema, drop_null_from_properties
from app.core.text import check_name, check_single_script, clean_display_name, normalize_email
from app.users.models import Role

MAX_EMAIL_LENGTH = 320


def _email_key(value: str) -> str:
    """Stored as its comparison key (app/core/text.py), the form login looks it up by.

    The local part must be of one script (no Cyrillic "о" in a Latin name); the result must
    still fit the column (NFKC and casefold can lengthen it).
    """
    local = value.rpartition("@")[0]
    check_name(local, identifier=True)
    check_single_script(local)
    key = normalize_email(value)
    if len(key) > MAX_EMAIL_LENGTH:
        raise ValueError(f"must be at most {MAX_EMAIL_LENGTH} characters once normalized")
    return key


# Emails are compared by their normalized key (NFKC + casefold, IDNA domain), stored as such.
Email = Annotated[EmailStr, Field(max_length=MAX_EMAIL_LENGTH), AfterValidator(_email_key)]
FullName = Annotated[Text, Field(max_length=200), AfterValidator(clean_display_name)]


class _PatchSchema(InputSchema):
    """PATCH bodies: a field may be left out, but an explicit null is refused (422 naming it)."""

    model_config = ConfigDict(json_schema_extra=drop_null_from_properties)  # documented as such

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class UserCreate(InputSchema):
    email: Email
    full_name: FullName = ""
    role: Role = Role.member
    # Length rules come from settings and are checked by the service (422 naming the field).
    password: Password


class UserUpdate(_PatchSchema):
    role: Role | None = None
    is_active: StrictBool | None = None  # true/false only, as documented (not 0/1 or "yes")
    full_name: FullName | None = None


class MeUpdate(_PatchSchema):
    full_name: FullName | None = None


class PasswordChange(InputSchema):
    current_password: Password
    new_password: Password


class UserRead(OutputSchema):
    id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    full_name: str
    role: Role
    is_active: bool
    created_at: datetime
    updated_at: datetime
