-- Uploads made safe to retry and to race (issue 11).

-- Idempotency-Key: a request that carries one is answered once; a retry with the same key (same
-- tenant) gets the first answer back. A key is held while its request runs (status NULL,
-- locked_until: a crashed holder frees it after the lease) and kept 24 hours once answered.
-- The fingerprint is a hash of what the request asks for (route, agent, fields, the file's
-- SHA-256), so the same key with another request is refused (422) instead of replayed.
CREATE TABLE kalimera_idempotency_keys (
    tenant_id uuid NOT NULL,
    key text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    operation text NOT NULL,
    fingerprint text,
    status integer,
    body json,  -- json, not jsonb: a replay is byte for byte the first answer (key order kept)
    locked_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

-- Each claim purges its tenant's expired keys through this index.
CREATE INDEX kalimera_idempotency_keys_expiry_idx ON kalimera_idempotency_keys (tenant_id, expires_at);

-- The last seq handed out per conversation and direction, so that uploads without a seq at the
-- same time (multipart or upload-url, whose blob does not exist yet) never get the same one.
-- Allocation takes max(this, the highest seq in Blob Storage) + 1 in one upsert (a row lock).
CREATE TABLE kalimera_upload_seqs (
    tenant_id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    direction text NOT NULL CHECK (direction IN ('input', 'output')),
    last_seq integer NOT NULL CHECK (last_seq BETWEEN 0 AND 999999),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, conversation_id, direction)
);
