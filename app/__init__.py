"""Tenantry: a multi-tenant SaaS backend with tenant isolation in the app and in PostgreSQL."""
