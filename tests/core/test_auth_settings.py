"""Production-safe configuration (issue #12, item 13): bounded token lifetimes, a minimum
PLATFORM_API_KEY length, the throttle's delays below its window, no public key on a public
interface, and an image that starts in prod mode."""

from __future__ import annotations

import argparse

import pytest
from pydantic import ValidationError

from app.core.config import MAX_ACCESS_TOKEN_MINUTES, MAX_REFRESH_TOKEN_DAYS, MIN_PLATFORM_KEY_LENGTH, ROOT, Settings


@pytest.fixture(autouse=True)
def _no_settings_from_env(monkeypatch):
    for name in ("ENVIRONMENT", "SECRET_KEY", "DATABASE_URL", "PLATFORM_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    "values",
    [
        {"access_token_minutes": MAX_ACCESS_TOKEN_MINUTES + 1},
        {"refresh_token_days": MAX_REFRESH_TOKEN_DAYS + 1},
        {"platform_api_key": "k" * (MIN_PLATFORM_KEY_LENGTH - 1)},
        {"login_max_delay_seconds": 900, "login_window_seconds": 900},
    ],
    ids=["access-lifetime", "refresh-lifetime", "short-platform-key", "delay-beyond-window"],
)
def test_weak_or_unbounded_values_are_refused(values):
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None, **values)
    assert str(info.value).count("\n") < 6  # one short message, not a dump


def test_an_empty_platform_key_means_disabled():
    assert Settings(_env_file=None, platform_api_key="").platform_api_key is None


def test_serving_on_a_public_interface_with_the_default_key_is_refused(monkeypatch, capsys):
    from app import cli

    monkeypatch.delenv("SECRET_KEY", raising=False)
    cli.get_settings.cache_clear()
    try:
        code = cli.cmd_serve(argparse.Namespace(host="0.0.0.0", port=8000, workers=1, no_migrate=True))
    finally:
        cli.get_settings.cache_clear()
    assert code == cli.EXIT_BAD_INPUT
    assert "default SECRET_KEY" in capsys.readouterr().err


def test_the_image_starts_in_prod_mode():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ENVIRONMENT=prod" in dockerfile
