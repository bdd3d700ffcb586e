-- Erasure (0024) erases a conversation's webhook events (0023) too: an event's data is the
-- conversation, words and numbers included. The function as 0024 made it, with that one
-- statement added; 0024's comment describes the rest.
CREATE OR REPLACE FUNCTION kalimera_erase_conversations(
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
    -- Their webhook events (0023) go too, and with them their deliveries (by cascade).
    DELETE FROM kalimera_webhook_events
     WHERE tenant_id = tenant AND subject_id = ANY(erased);
    DELETE FROM kalimera_upload_seqs WHERE tenant_id = tenant AND conversation_id = ANY(erased);
    DELETE FROM kalimera_processed_recordings WHERE tenant_id = tenant AND blob_name = ANY(names);
    DELETE FROM kalimera_conversations WHERE tenant_id = tenant AND id = ANY(erased);
    INSERT INTO kalimera_erasure_log (tenant_id, reason, token_id, conversations, recordings)
    VALUES (tenant, why, token, conversations, recordings);
END
$$;
