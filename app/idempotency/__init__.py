"""Idempotency-Key on creating POSTs: a retried request replays the first one's response."""
