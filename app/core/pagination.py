"""Keyset pagination helpers for every list: opaque cursors (base64url JSON of sort, last key, last id), LIKE escaping.

A cursor names the sort it was made for, so it cannot be replayed under another ordering;
anything that does not decode to exactly what the sort expects is a 422, never a 500. Cursors
are not signed: tampering can only seek to another position in the caller's own tenant.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from app.core.errors import Invalid

KeyKind = Literal["datetime", "decimal", "str"]
CURSOR_LOC = ["query", "cursor"]
MAX_CURSOR_LENGTH = 1024


def encode_cursor(sort: str, value: Any, last_id: uuid.UUID) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    elif isinstance(value, Decimal):
        value = str(value)
    raw = json.dumps({"s": sort, "v": value, "id": str(last_id)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str, sort: str, kind: KeyKind) -> tuple[Any, uuid.UUID]:
    """(sort-key value, id) of the last row already returned; Invalid (422) otherwise."""
    if len(token) > MAX_CURSOR_LENGTH:
        raise Invalid(CURSOR_LOC, "malformed cursor")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        if not isinstance(data, dict) or set(data) != {"s", "v", "id"}:
            raise ValueError("unexpected shape")
        if not isinstance(data["s"], str) or not isinstance(data["id"], str):
            raise TypeError("unexpected types")
        if data["s"] != sort:
            raise Invalid(CURSOR_LOC, "cursor was made for another sort: repeat that sort or drop the cursor")
        last_id = uuid.UUID(data["id"])
        value = _parse_value(data["v"], kind)
    except (ValueError, TypeError, OverflowError, binascii.Error, InvalidOperation, UnicodeDecodeError):
        raise Invalid(CURSOR_LOC, "malformed cursor") from None
    return value, last_id


def _parse_value(value: Any, kind: KeyKind) -> Any:
    if not isinstance(value, str):
        raise TypeError("cursor value must be a string")
    # PostgreSQL cannot take NUL or lone surrogates: refuse them here rather than as a 500.
    if "\x00" in value:
        raise ValueError("NUL in cursor")
    value.encode("utf-8")
    if kind == "datetime":
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive timestamp")
        # asyncpg sends UTC: an offset that pushes the instant past year 1..9999 must fail here.
        return parsed.astimezone(UTC)
    if kind == "decimal":
        number = Decimal(value)
        # Prices are NUMERIC(12,2): anything else cannot come from a real row.
        if not number.is_finite() or abs(number) >= 10**10 or number != number.quantize(Decimal("0.01")):
            raise ValueError("not a price")
        return number
    return value


def escape_like(text: str) -> str:
    """User input matched literally by LIKE/ILIKE: %, _ and the escape character lose their meaning."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
