-- Conversations: one call between a caller and an agent. Written by the blob-triggered
-- ingestion and by telephony's start/end reports; read by the API and the statistics.
CREATE TABLE kalimera_conversations (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    agent_id uuid NOT NULL,
    title varchar(255) NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'Active' CHECK (status IN ('Active', 'Completed', 'Failed')),
    profile_type text NOT NULL CHECK (profile_type IN ('inbound', 'outbound')),
    instance_id uuid,
    from_number varchar(32),
    to_number varchar(32),
    language varchar(50),
    -- Seconds, exact (numeric, not float): sums in rollups equal sums over rows, to the digit.
    duration numeric(12, 3),
    input_file_url text,
    output_file_url text,
    conversation_url text,
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    last_activity_at timestamptz NOT NULL,
    sentiment text NOT NULL DEFAULT 'unknown'
        CHECK (sentiment IN ('positive', 'neutral', 'negative', 'unknown')),
    sentiment_score double precision CHECK (sentiment_score BETWEEN -1 AND 1),
    turn_count integer NOT NULL DEFAULT 0 CHECK (turn_count >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

-- Listing newest first, per tenant and per agent; the realtime count of Active ones.
CREATE INDEX kalimera_conversations_started_idx
    ON kalimera_conversations (tenant_id, started_at DESC, id);
CREATE INDEX kalimera_conversations_agent_idx
    ON kalimera_conversations (tenant_id, agent_id, started_at DESC, id);
CREATE INDEX kalimera_conversations_active_idx
    ON kalimera_conversations (tenant_id, last_activity_at) WHERE status = 'Active';

CREATE TRIGGER kalimera_conversations_touch BEFORE UPDATE ON kalimera_conversations
    FOR EACH ROW EXECUTE FUNCTION kalimera_touch_row();
