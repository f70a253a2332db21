"""Tests of /users: self-service, admin management, roles, cross-tenant isolation."""
