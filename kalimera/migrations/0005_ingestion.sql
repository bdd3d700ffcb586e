-- Voice ingestion: one row per recording (a turn), the idempotency keys of processed blob
-- versions, and the rejected ones. kalimera_conversations itself is in 0004.

-- A turn is one recording: one side (input = caller, output = agent) of one exchange (seq).
-- The conversation's duration, turn_count, sentiment and last_activity_at are recomputed from
-- these rows in the transaction that writes one, so a count can never double.
CREATE TABLE kalimera_recordings (
    tenant_id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    seq integer NOT NULL CHECK (seq >= 1),
    direction text NOT NULL CHECK (direction IN ('input', 'output')),
    blob_name text NOT NULL,
    etag text NOT NULL,
    -- The blob version's last-modified time: an older version arriving late never wins.
    blob_modified_at timestamptz NOT NULL,
    duration numeric(12, 3) NOT NULL CHECK (duration >= 0),
    transcript text,
    language varchar(50),
    final boolean NOT NULL DEFAULT false,
    recorded_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, conversation_id, seq, direction),
    FOREIGN KEY (tenant_id, conversation_id)
        REFERENCES kalimera_conversations (tenant_id, id) ON DELETE CASCADE
);

-- Every blob version (name + ETag) processed into a turn. When the recording has a JSON sidecar,
-- the version is the audio's ETag, '+', the sidecar's ETag: a sidecar written after its audio
-- makes a new version, which the sidecar's event ingests. The insert of this key is the first
-- statement of the ingestion transaction: a second delivery of the same version, concurrent or
-- later, finds the key taken (or waits for the first transaction and then finds it) and changes
-- nothing. Not a check-then-write.
CREATE TABLE kalimera_processed_recordings (
    tenant_id uuid NOT NULL,
    blob_name text NOT NULL,
    etag text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, blob_name, etag)
);

-- Rejected blob versions, for `kalimera ingest failures`. Keyed by blob name and ETag, not by
-- tenant: a rejected blob may have no valid tenant at all (a path outside the naming contract),
-- so tenant_id is informative only and may be null.
CREATE TABLE kalimera_ingest_rejections (
    blob_name text NOT NULL,
    etag text NOT NULL,
    tenant_id uuid,
    reason text NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blob_name, etag)
);

CREATE INDEX kalimera_ingest_rejections_recent_idx ON kalimera_ingest_rejections (rejected_at DESC);
