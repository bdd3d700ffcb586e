-- Erasure and retention (issue 16, item 6; docs/retention.md): erasing conversations on request
-- or by age, the storage each one leaves to delete, the tenant's retention, and a log of every
-- erasure that holds counts, never personal data.

-- A tenant's retention: its conversations older than `days` (by started_at) are erased by the
-- timer (kalimera/conversations/erasure.py). No row: conversations are kept until deleted.
CREATE TABLE kalimera_retention (
    tenant_id uuid PRIMARY KEY,
    days integer NOT NULL CHECK (days BETWEEN 1 AND 3650),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- The token that set it (NULL: the CLI); no foreign key, a token's rows may go before this.
    updated_by uuid
);
SELECT kalimera_protect_tenant_table('kalimera_retention');

-- The storage outside Postgres that an erased conversation leaves: its recordings and sidecars
-- in Blob Storage (under {tenant}/{agent}/{conversation}/, and by their exact names, which may
-- be written in upper case) and its history partition in Table storage. Written in the
-- transaction that deletes the conversation's rows, deleted by the first cleanup that finds
-- nothing left at or after settle_at (a turn ingested while the erasure ran may write its
-- history entity just after: the settle time lets the last pass find it). Until then the
-- ingestion refuses recordings of this conversation, so it cannot come back meanwhile.
-- Blob names hold ids only (no numbers, no words).
CREATE TABLE kalimera_erasure_pending (
    tenant_id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    agent_id uuid NOT NULL,
    blob_names text[] NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    available_at timestamptz NOT NULL DEFAULT now(),
    settle_at timestamptz NOT NULL DEFAULT now() + interval '10 minutes',
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, conversation_id)
);
-- The sweeper takes the oldest available rows of every tenant.
CREATE INDEX kalimera_erasure_pending_available_idx
    ON kalimera_erasure_pending (available_at, tenant_id, conversation_id);
SELECT kalimera_protect_tenant_table('kalimera_erasure_pending');

-- One row per erasure (a DELETE, a contact's calls, a retention batch): what went, why, and
-- which token asked (NULL: the retention timer or the CLI). Counts only: no conversation ids,
-- no numbers, names or words, so the log itself never needs erasing.
CREATE TABLE kalimera_erasure_log (
    tenant_id uuid NOT NULL,
    id bigint GENERATED ALWAYS AS IDENTITY,
    reason text NOT NULL CHECK (reason IN ('api', 'contact', 'retention')),
    token_id uuid,
    conversations integer NOT NULL CHECK (conversations >= 0),
    recordings integer NOT NULL CHECK (recordings >= 0),
    erased_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX kalimera_erasure_log_recent_idx ON kalimera_erasure_log (tenant_id, erased_at DESC);
SELECT kalimera_protect_tenant_table('kalimera_erasure_log');

-- An erasure finds a conversation's re-run items by it (the key leads with the run).
CREATE INDEX kalimera_analysis_run_items_conversation_idx
    ON kalimera_analysis_run_items (tenant_id, conversation_id);

-- Erase a tenant's conversations, in the caller's transaction: lock them, note the storage
-- they leave (kalimera_erasure_pending), delete what refers to them without a foreign key (the
-- analysis requests, the upload seqs, the processed blob versions), finish their re-run items,
-- delete the rows (their turns, search terms and analysis results go by cascade; the statistics
-- triggers mark their days dirty), and log the erasure when it erased anything. One function,
-- so that a DELETE, a contact's erasure (another domain: kalimera/contacts) and the retention
-- timer erase alike. Returns how many conversations and recordings went.
CREATE FUNCTION kalimera_erase_conversations(
    tenant uuid, ids uuid[], why text, token uuid, OUT conversations integer,
    OUT recordings integer
) LANGUAGE plpgsql AS $$
DECLARE
    erased uuid[];
    names text[];
BEGIN
    -- Locked in id order, so two erasures of overlapping sets cannot deadlock; a turn being
    -- ingested holds the row until it commits, and is then erased with the rest.
    SELECT coalesce(array_agg(k.id ORDER BY k.id), '{}') INTO erased
      FROM (SELECT c.id FROM kalimera_conversations c
             WHERE c.tenant_id = tenant AND c.id = ANY(ids)
             ORDER BY c.id FOR UPDATE) AS k;
    conversations := cardinality(erased);
    recordings := 0;
    IF conversations = 0 THEN
        RETURN;
    END IF;
    SELECT coalesce(array_agg(r.blob_name), '{}') INTO names
      FROM kalimera_recordings r WHERE r.tenant_id = tenant AND r.conversation_id = ANY(erased);
    recordings := cardinality(names);
    INSERT INTO kalimera_erasure_pending (tenant_id, conversation_id, agent_id, blob_names)
    SELECT c.tenant_id, c.id, c.agent_id,
           coalesce((SELECT array_agg(r.blob_name ORDER BY r.blob_name) FROM kalimera_recordings r
                      WHERE r.tenant_id = c.tenant_id AND r.conversation_id = c.id), '{}')
      FROM kalimera_conversations c WHERE c.tenant_id = tenant AND c.id = ANY(erased)
    ON CONFLICT (tenant_id, conversation_id) DO UPDATE
        SET blob_names = kalimera_erasure_pending.blob_names || EXCLUDED.blob_names,
            available_at = now(), settle_at = now() + interval '10 minutes';
    DELETE FROM kalimera_analysis_outbox
     WHERE tenant_id = tenant AND conversation_id = ANY(erased);
    -- A re-run's items for them finish as skipped (their requests just went): the run ends.
    UPDATE kalimera_analysis_run_items SET state = 'skipped'
     WHERE tenant_id = tenant AND conversation_id = ANY(erased)
       AND state IN ('waiting', 'queued', 'started');
    DELETE FROM kalimera_upload_seqs WHERE tenant_id = tenant AND conversation_id = ANY(erased);
    DELETE FROM kalimera_processed_recordings WHERE tenant_id = tenant AND blob_name = ANY(names);
    DELETE FROM kalimera_conversations WHERE tenant_id = tenant AND id = ANY(erased);
    INSERT INTO kalimera_erasure_log (tenant_id, reason, token_id, conversations, recordings)
    VALUES (tenant, why, token, conversations, recordings);
END
$$;
