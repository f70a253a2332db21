"""Fixtures for the people tests (invitations, reset, verification): the outbox tests' real SMTP
server and the settings pointing at it, shared rather than written twice."""

from tests.jobs.conftest import inbox, mail_settings, smtp_server

__all__ = ["inbox", "mail_settings", "smtp_server"]
