-- Events and webhooks (docs/webhooks.md): a tenant's endpoints, the events written in the
-- transaction of the change they report, one delivery per event and endpoint with its attempts,
-- and the outbox that moves deliveries to the `kalimera-webhooks` queue.

-- An endpoint: where a tenant's events go. The secret is AES-GCM at rest like the agents'
-- (kalimera/agents/secrets.py's format, bound to tenant and endpoint); during a rotation the
-- previous one signs beside it until previous_secret_expires_at. failing_since: the first failed
-- attempt since the last delivered one (NULL while deliveries succeed); five days of it disable.
CREATE TABLE kalimera_webhook_endpoints (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    url text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    -- The event types sent; empty: every type.
    events text[] NOT NULL DEFAULT '{}',
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    enabled boolean NOT NULL DEFAULT true,
    disabled_reason text,
    secret text NOT NULL,
    previous_secret text,
    previous_secret_expires_at timestamptz,
    failing_since timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CHECK ((previous_secret IS NULL) = (previous_secret_expires_at IS NULL))
);
SELECT kalimera_protect_tenant_table('kalimera_webhook_endpoints');

-- An event, kept for the delivery log and replay. subject_id: the conversation it reports (NULL
-- for the others), so that erasing a conversation erases its events (0026). Written only for a
-- tenant with an endpoint: a tenant that never asked for webhooks pays nothing per call.
CREATE TABLE kalimera_webhook_events (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    type text NOT NULL CHECK (type IN (
        'conversation.started', 'conversation.ended', 'conversation.analyzed',
        'recording.rejected', 'contacts.imported', 'webhook.test')),
    subject_id uuid,
    data jsonb NOT NULL CHECK (jsonb_typeof(data) = 'object'),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX kalimera_webhook_events_recent_idx
    ON kalimera_webhook_events (tenant_id, created_at);
CREATE INDEX kalimera_webhook_events_subject_idx
    ON kalimera_webhook_events (tenant_id, subject_id) WHERE subject_id IS NOT NULL;
SELECT kalimera_protect_tenant_table('kalimera_webhook_events');

-- One event to one endpoint: msg_id is its `webhook-id`, the same on every retry and replay.
-- tries: the attempts since it was last (re)started (the retry schedule counts these);
-- attempts: every attempt ever made, [{"at", "status", "latency_ms", "error"}]. generation:
-- bumped each time a message is queued for it, so a stale or duplicated queue message is
-- recognised and dropped. claimed_until: a worker is sending it (no other one may).
CREATE TABLE kalimera_webhook_deliveries (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    endpoint_id uuid NOT NULL,
    event_id uuid NOT NULL,
    msg_id text NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    tries integer NOT NULL DEFAULT 0 CHECK (tries >= 0),
    attempts jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(attempts) = 'array'),
    generation bigint NOT NULL DEFAULT 1,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, endpoint_id, event_id),
    FOREIGN KEY (tenant_id, endpoint_id) REFERENCES kalimera_webhook_endpoints (tenant_id, id)
        ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, event_id) REFERENCES kalimera_webhook_events (tenant_id, id)
        ON DELETE CASCADE
);
-- The deliveries log, newest first; the rescue of pending deliveries whose message was lost.
CREATE INDEX kalimera_webhook_deliveries_log_idx
    ON kalimera_webhook_deliveries (tenant_id, endpoint_id, created_at DESC, id);
CREATE INDEX kalimera_webhook_deliveries_event_idx
    ON kalimera_webhook_deliveries (tenant_id, event_id);
CREATE INDEX kalimera_webhook_deliveries_pending_idx
    ON kalimera_webhook_deliveries (next_attempt_at) WHERE status = 'pending';
SELECT kalimera_protect_tenant_table('kalimera_webhook_deliveries');

-- Messages to queue, written in the transaction that makes a delivery due (an event, a retry,
-- a replay) and moved to `kalimera-webhooks` by the relay (kalimera/outbox.py, as the analysis
-- outbox), which deletes a row once the queue has it. delay_seconds: the message's visibility
-- delay (a retry's wait is the queue's, not a sleeping worker's).
CREATE TABLE kalimera_webhook_outbox (
    tenant_id uuid NOT NULL,
    id bigint GENERATED ALWAYS AS IDENTITY,
    delivery_id uuid NOT NULL,
    generation bigint NOT NULL,
    delay_seconds integer NOT NULL DEFAULT 0 CHECK (delay_seconds BETWEEN 0 AND 604800),
    available_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX kalimera_webhook_outbox_available_idx
    ON kalimera_webhook_outbox (available_at, id);
CREATE INDEX kalimera_webhook_outbox_delivery_idx
    ON kalimera_webhook_outbox (tenant_id, delivery_id);
SELECT kalimera_protect_tenant_table('kalimera_webhook_outbox');

-- Write an event and its deliveries (one per enabled endpoint taking its type) and queue them,
-- in the caller's transaction. Nothing when the tenant has no endpoint at all. The event's id.
CREATE FUNCTION kalimera_webhook_emit(tenant uuid, kind text, subject uuid, body jsonb)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    event uuid;
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
    RETURN event;
END
$$;

-- A conversation as GET /kalimera/conversations/{id} shows it (ConversationRead), with its turns
-- from the recordings but without the short-lived signed URLs (the turns' audio_url, and the
-- recordings' input_file_url / output_file_url, null here): an event's `data`. In SQL so that the
-- trigger below writes it in the change's transaction, whichever path made the change;
-- tests/webhooks/test_events.py holds it equal to the API's answer.
CREATE FUNCTION kalimera_conversation_document(c kalimera_conversations) RETURNS jsonb
LANGUAGE sql STABLE AS $$
SELECT jsonb_build_object(
    'id', c.id, 'agent_id', c.agent_id, 'title', c.title, 'status', c.status,
    'profile_type', c.profile_type, 'instance_id', c.instance_id,
    'from_number', c.from_number, 'to_number', c.to_number, 'language', c.language,
    'duration', c.duration::float8, 'input_file_url', NULL, 'output_file_url', NULL,
    'conversation_url', NULL, 'contact_id', c.contact_id,
    'started_at', c.started_at, 'ended_at', c.ended_at, 'last_activity_at', c.last_activity_at,
    'sentiment', c.sentiment, 'sentiment_score', c.sentiment_score, 'turn_count', c.turn_count,
    'ended_reason', c.ended_reason,
    'cost', CASE WHEN c.cost IS NULL THEN NULL ELSE c.cost || jsonb_build_object('total', (
        coalesce((c.cost ->> 'telephony')::numeric, 0) + coalesce((c.cost ->> 'stt')::numeric, 0)
        + coalesce((c.cost ->> 'llm')::numeric, 0) + coalesce((c.cost ->> 'tts')::numeric, 0)
        + coalesce((c.cost ->> 'other')::numeric, 0) + coalesce(c.analysis_cost, 0))::float8)
    END,
    'latency', jsonb_build_object('p50_ms', c.latency_p50_ms, 'p90_ms', c.latency_p90_ms,
                                  'max_ms', c.latency_max_ms, 'turns', c.latency_turns),
    -- The analysis's fields as ConversationAnalysis names them, the absent ones null.
    'analysis', CASE WHEN c.analysis IS NOT NULL THEN jsonb_build_object(
        'status', c.analysis -> 'status', 'plan_version', c.analysis -> 'plan_version',
        'summary', c.analysis -> 'summary', 'success', c.analysis -> 'success',
        'data', c.analysis -> 'data', 'sentiment', c.analysis -> 'sentiment',
        'model', c.analysis -> 'model', 'input_tokens', c.analysis -> 'input_tokens',
        'output_tokens', c.analysis -> 'output_tokens', 'cost', c.analysis -> 'cost',
        'analysed_at', c.analysis -> 'analysed_at', 'error', c.analysis -> 'error',
        'reason', c.analysis -> 'reason') END,
    'created_at', c.created_at, 'updated_at', c.updated_at,
    'turns', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'seq', r.seq, 'direction', r.direction, 'recorded_at', r.recorded_at,
                   'duration', r.duration::float8, 'transcript', r.transcript,
                   'latency_ms', r.latency_ms) ORDER BY r.seq, r.direction)
          FROM kalimera_recordings r
         WHERE r.tenant_id = c.tenant_id AND r.conversation_id = c.id), '[]'))
$$;

-- conversation.started (a conversation made, by telephony's start report or its first turn),
-- conversation.ended (it leaves Active: a final turn, a PATCH, the idle timer),
-- conversation.analyzed (its analysis is stored as done). A trigger, like the analysis request
-- (0017): the paths are several, in several domains, and a trigger cannot be forgotten by the next.
CREATE FUNCTION kalimera_conversation_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM kalimera_webhook_endpoints WHERE tenant_id = NEW.tenant_id) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM kalimera_webhook_emit(NEW.tenant_id, 'conversation.started', NEW.id,
                                      kalimera_conversation_document(NEW));
        IF NEW.status <> 'Active' THEN
            PERFORM kalimera_webhook_emit(NEW.tenant_id, 'conversation.ended', NEW.id,
                                          kalimera_conversation_document(NEW));
        END IF;
        RETURN NULL;
    END IF;
    IF OLD.status = 'Active' AND NEW.status <> 'Active' THEN
        PERFORM kalimera_webhook_emit(NEW.tenant_id, 'conversation.ended', NEW.id,
                                      kalimera_conversation_document(NEW));
    END IF;
    IF NEW.analysis_status = 'done' AND OLD.analysis_status IS DISTINCT FROM 'done' THEN
        PERFORM kalimera_webhook_emit(NEW.tenant_id, 'conversation.analyzed', NEW.id,
                                      kalimera_conversation_document(NEW));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER kalimera_conversations_events_insert
    AFTER INSERT ON kalimera_conversations
    FOR EACH ROW EXECUTE FUNCTION kalimera_conversation_events();
CREATE TRIGGER kalimera_conversations_events_update
    AFTER UPDATE OF status, analysis_status ON kalimera_conversations
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.analysis_status IS DISTINCT FROM NEW.analysis_status)
    EXECUTE FUNCTION kalimera_conversation_events();
