-- Foundation: API tokens and the extensions later migrations rely on.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Tokens are looked up by hash before the tenant is known, so this table is not distributed by
-- tenant (on Citus it is a reference table); `tenant_id` still leads its tenant index.
CREATE TABLE kalimera_api_tokens (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    name text NOT NULL,
    token_hash bytea NOT NULL UNIQUE,
    scopes text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX kalimera_api_tokens_tenant_idx ON kalimera_api_tokens (tenant_id, created_at);
