"""Tests of login, tokens, refresh, throttling and the /docs Authorize flow."""
