"""The audit log: append-only events written in the same transaction as the change they record."""
