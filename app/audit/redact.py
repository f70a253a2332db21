"""Which names hold secrets: never written to an audit event's details, never exported.

One rule, by name, so a new column or field is covered without a code change: any name with a
`hash`, `secret`, `password`, `salt` or `private_key` part (password_hash, token_hash,
key_hash, client_secret, new_password, ...). `token_version` is not a secret; a bare `token`
or `*_token` part is treated as one.
"""

from __future__ import annotations

import re
from typing import Any

_SECRET_NAME = re.compile(
    r"(^|_)(hash|hashed|digest|secret|secrets|password|passwd|salt|token|private_key|api_key)(_|$)|_hash$",
    re.IGNORECASE,
)
_NOT_SECRET = frozenset({"token_version"})


def is_secret_name(name: str) -> bool:
    return name.lower() not in _NOT_SECRET and bool(_SECRET_NAME.search(name))


def scrub(value: Any) -> Any:
    """A copy of a JSON-like value without any key that names a secret (at every depth)."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if not is_secret_name(str(k))}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value
