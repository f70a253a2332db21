"""Per-tenant rate limits (the `limits` library) and quotas (plan limits enforced at creation)."""
