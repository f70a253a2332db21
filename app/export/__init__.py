"""Tenant data export (NDJSON, one consistent snapshot) and the offboarding deletion record."""
