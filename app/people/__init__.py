"""People: invitations, password reset and email verification (tokens + emails through the outbox)."""
