-- Whether a transaction wrote to an outbox, for the code that commits it: the two functions that
-- write outbox rows (0017's analysis request, 0023's webhook events) also set a transaction-local
-- flag, `kalimera.queued_analysis` / `kalimera.queued_webhooks` ('on'), which the writer reads
-- before its commit (kalimera/outbox.py, `queued`). So a change that wrote nothing to an outbox
-- (most ingested turns: neither the call's start nor its end, or a tenant without webhook
-- endpoints) skips the relay after its commit, a transaction of its own each. The functions are
-- 0017's and 0023's as they were, with the flag added; their comments there say the rest.

CREATE OR REPLACE FUNCTION kalimera_analysis_request() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'Active' OR (NEW.status = 'Failed' AND NEW.transcript_version = 0) THEN
        RETURN NEW;
    END IF;
    IF OLD.status <> 'Active' AND OLD.transcript_version = NEW.transcript_version
       AND NOT (OLD.status = 'Failed' AND OLD.transcript_version = 0) THEN
        RETURN NEW;  -- Completed <-> Failed by a PATCH: a call already asked for, same words
    END IF;
    INSERT INTO kalimera_analysis_outbox (tenant_id, kind, conversation_id, reason)
    VALUES (NEW.tenant_id, 'analyse', NEW.id,
            CASE WHEN OLD.status = 'Active' OR OLD.transcript_version = 0
                 THEN 'ended' ELSE 'transcript' END);
    PERFORM set_config('kalimera.queued_analysis', 'on', true);
    NEW.analysis := jsonb_build_object('status', 'pending');
    NEW.analysis_status := 'pending';
    NEW.success_rubric := NULL;
    NEW.success_result := NULL;
    NEW.success_score := NULL;
    NEW.analysis_cost := NULL;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION kalimera_webhook_emit(tenant uuid, kind text, subject uuid, body jsonb)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    event uuid;
    queued integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM kalimera_webhook_endpoints WHERE tenant_id = tenant) THEN
        RETURN NULL;
    END IF;
    INSERT INTO kalimera_webhook_events (tenant_id, type, subject_id, data)
    VALUES (tenant, kind, subject, body) RETURNING id INTO event;
    WITH made AS (
        INSERT INTO kalimera_webhook_deliveries (tenant_id, id, endpoint_id, event_id, msg_id)
        SELECT tenant, d.id, e.id, event, 'msg_' || replace(d.id::text, '-', '')
          FROM kalimera_webhook_endpoints e, LATERAL (SELECT gen_random_uuid() AS id) d
         WHERE e.tenant_id = tenant AND e.enabled
           AND (cardinality(e.events) = 0 OR kind = ANY(e.events))
           AND kind <> 'webhook.test'  -- a test goes to the one endpoint asked (the service)
        RETURNING id, generation
    )
    INSERT INTO kalimera_webhook_outbox (tenant_id, delivery_id, generation)
    SELECT tenant, id, generation FROM made;
    GET DIAGNOSTICS queued = ROW_COUNT;
    IF queued > 0 THEN
        PERFORM set_config('kalimera.queued_webhooks', 'on', true);
    END IF;
    RETURN event;
END
$$;
