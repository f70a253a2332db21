"""User API schemas: admin create/update, self-service update and password change, UserRead."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, EmailStr, Field, StrictBool, field_validator

from app.auth.schemas import Password, Text
from app.core.schemas import InputSchema, OutputSchema, drop_null_from_properties
from app.users.models import Role

# Emails are compared case-insensitively by storing them lower-cased.
Email = Annotated[EmailStr, Field(max_length=320), AfterValidator(str.lower)]
FullName = Annotated[Text, Field(max_length=200)]


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
