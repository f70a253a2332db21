"""The secrets rule, by name: what is never exported and never written into an audit event."""

from __future__ import annotations

import pytest

from app.audit.redact import is_secret_name, scrub
from app.db.base import Base
from app.export.catalog import split_columns


@pytest.mark.parametrize("name", [
    "password_hash", "token_hash", "key_hash", "api_key_hash", "client_secret", "webhook_secret", "secret",
    "password", "new_password", "current_password", "refresh_token", "token", "salt", "totp_secret",
    "private_key", "api_key", "PASSWORD_HASH", "hashed_password", "signing_digest",
])
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", [
    "id", "tenant_id", "email", "token_version", "name", "description", "family_id", "hashtag_count",
    "secretary", "tokens_issued", "keyboard",
])
def test_ordinary_names(name):
    # Whole name parts only: "hashtag" or "secretary" is not a secret (a part named exactly
    # password/token/... is, conservatively, even in e.g. password_changed_at).
    assert not is_secret_name(name)


def test_scrub_drops_secret_keys_at_every_depth():
    value = {"email": "a@b.c", "password": "x", "changes": {"password_hash": {"old": "h", "new": "g"},
                                                           "role": {"old": "member", "new": "admin"}},
             "list": [{"token": "t", "ok": 1}]}
    assert scrub(value) == {"email": "a@b.c", "changes": {"role": {"old": "member", "new": "admin"}},
                            "list": [{"ok": 1}]}


def test_every_model_column_holding_a_secret_is_excluded():
    """The model columns we know are secrets are caught by the generic rule, nothing else is."""
    import app.models  # noqa: F401

    excluded = {(t.name, c) for t in Base.metadata.sorted_tables for c in split_columns(t).excluded}
    assert excluded == {("users", "password_hash"), ("refresh_tokens", "token_hash"),
                        ("invitations", "token_hash"), ("user_tokens", "token_hash"),
                        ("api_keys", "secret_hash"), ("api_keys", "previous_hash")}
