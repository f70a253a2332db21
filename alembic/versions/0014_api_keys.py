"""Service accounts, API keys (tenantry_enter_key), idempotency keys, quotas, rate-limit overrides.

Revision ID: 0014
Revises: 0003
Create Date: 2026-12-01

tenantry_enter_key() is the API-key twin of tenantry_enter() (migration 0002): SECURITY
INVOKER, so it runs as the app role under RLS like any query; it only merges what a request
needs into its first round trip: set the transaction-local tenant, find the key by
(tenant_id, id) (no index across tenants), check its keyed hash (compared through a second hash, constant time in effect), expiry,
revocation, the user's and the tenant's state, touch last_used_at at most once a minute
(SKIP LOCKED: a request never waits for another's touch) and return the principal.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op
from app.db.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

USER_KIND = postgresql.ENUM("human", "service", name="user_kind", create_type=False)

DIGEST_EQUAL = """
CREATE FUNCTION tenantry_digest_equal(a bytea, b bytea) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
-- Compared through a second hash ("double hashing"): however early `=` stops, its time depends
-- only on sha256 of the two digests, which a caller cannot steer byte by byte; constant time in
-- effect, at the cost of two C hash calls (a plpgsql byte loop costs far more per request).
AS $$ SELECT sha256(a) = sha256(b) $$
"""

ENTER_KEY = """
CREATE FUNCTION tenantry_enter_key(p_tenant uuid, p_key uuid, p_hash bytea)
RETURNS TABLE (u users, scopes text[])
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
DECLARE
    found_key record;
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant::text, true);
    FOR found_key IN
        SELECT usr, k.scopes AS key_scopes,
               (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute') AS stale
        FROM api_keys k
        JOIN users usr ON usr.tenant_id = k.tenant_id AND usr.id = k.user_id
        JOIN tenants t ON t.id = k.tenant_id
        WHERE k.tenant_id = p_tenant AND k.id = p_key
          AND k.revoked_at IS NULL
          AND (k.expires_at IS NULL OR k.expires_at > now())
          AND (tenantry_digest_equal(k.secret_hash, p_hash)
               OR (k.previous_valid_until > now() AND tenantry_digest_equal(k.previous_hash, p_hash)))
          AND usr.is_active AND t.status = 'active'
    LOOP
        u := found_key.usr;
        scopes := found_key.key_scopes;
        RETURN NEXT;
        -- At most about once a minute per key; SKIP LOCKED: never wait for another request's touch.
        IF found_key.stale THEN
            UPDATE api_keys SET last_used_at = now()
            WHERE tenant_id = p_tenant AND id = (
                SELECT id FROM api_keys
                WHERE tenant_id = p_tenant AND id = p_key
                  AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
                FOR UPDATE SKIP LOCKED);
        END IF;
    END LOOP;
END
$$
"""


def upgrade() -> None:
    USER_KIND.create(op.get_bind(), checkfirst=False)
    op.add_column("users", sa.Column("kind", USER_KIND, nullable=False, server_default="human"))

    op.create_table(
        "api_keys",
        sa.Column("tenant_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("previous_hash", sa.LargeBinary(32)),
        sa.Column("previous_valid_until", sa.DateTime(timezone=True)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("created_by", postgresql.UUID(as_uuid=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_api_keys_tenant_id_tenants", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id", "user_id"], ["users.tenant_id", "users.id"],
                                name="fk_api_keys_tenant_id_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_api_keys"),
    )
    op.create_index("ix_api_keys_tenant_id_user_id", "api_keys", ["tenant_id", "user_id"])
    enable_tenant_rls("api_keys")

    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("credential_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(32), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.LargeBinary(), nullable=False),
        sa.Column("response_headers", postgresql.JSONB(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_idempotency_keys_tenant_id_tenants",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "credential_id", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_tenant_id_expires_at", "idempotency_keys", ["tenant_id", "expires_at"])
    enable_tenant_rls("idempotency_keys")

    op.create_table(
        "platform_idempotency_keys",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(32), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.LargeBinary(), nullable=False),
        sa.Column("response_headers", postgresql.JSONB(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_platform_idempotency_keys"),
    )
    op.create_table(
        "tenant_quotas",
        sa.Column("tenant_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("max_users", sa.Integer()),
        sa.Column("max_service_accounts", sa.Integer()),
        sa.Column("max_api_keys", sa.Integer()),
        sa.Column("max_items", sa.Integer()),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_tenant_quotas_tenant_id_tenants",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_tenant_quotas"),
    )
    enable_tenant_rls("tenant_quotas")
    op.create_table(
        "tenant_rate_limits",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("tenant_rate_per_minute", sa.Integer()),
        sa.Column("credential_rate_per_minute", sa.Integer()),
        sa.ForeignKeyConstraint(["id"], ["tenants.id"], name="fk_tenant_rate_limits_id_tenants", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_tenant_rate_limits"),
    )
    op.execute(DIGEST_EQUAL)
    op.execute(ENTER_KEY)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS tenantry_enter_key(uuid, uuid, bytea)")
    op.execute("DROP FUNCTION IF EXISTS tenantry_digest_equal(bytea, bytea)")
    op.drop_table("tenant_rate_limits")
    op.drop_table("platform_idempotency_keys")
    disable_tenant_rls("tenant_quotas")
    op.drop_table("tenant_quotas")
    disable_tenant_rls("idempotency_keys")
    op.drop_table("idempotency_keys")
    disable_tenant_rls("api_keys")
    op.drop_table("api_keys")
    op.drop_column("users", "kind")
    USER_KIND.drop(op.get_bind(), checkfirst=False)
