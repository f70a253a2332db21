"""Service accounts and API keys: machine credentials of a tenant (issue #14)."""
