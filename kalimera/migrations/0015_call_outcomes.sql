-- Outcomes reported by telephony (docs/conversations.md, "Outcomes"): why a call ended, what it
-- cost, and how fast the agent answered.
--
-- ended_reason: set by PATCH or by a turn's metadata/sidecar; 'idle-timeout' only by the idle
-- timer (kalimera/statistics/rollup.py), which never overwrites a reason telephony gave.
ALTER TABLE kalimera_conversations
    ADD COLUMN ended_reason text CHECK (ended_reason IN (
        'customer-ended-call', 'agent-ended-call', 'silence-timeout', 'max-duration-reached',
        'transferred', 'voicemail', 'no-answer', 'busy', 'failed-to-connect', 'error', 'unknown',
        'idle-timeout')),
    -- Telephony's cost, as reported: {"currency", "telephony", "stt", "llm", "tts", "other"}, the
    -- components numbers >= 0 (validated by the app; the check keeps the shape). JSONB rather than
    -- columns: it is written and read whole, and its total is computed where it is read (with the
    -- analysis cost, when there is one).
    ADD COLUMN cost jsonb CHECK (
        cost IS NULL OR (jsonb_typeof(cost) = 'object' AND cost->>'currency' ~ '^[A-Z]{3}$')),
    -- The latency summary over the output turns' latency_ms, derived from kalimera_recordings by
    -- the ingestion (recompute_conversation), like duration and turn_count: percentiles are
    -- percentile_disc over the values rounded down to 10 ms; the maximum is exact.
    ADD COLUMN latency_p50_ms integer CHECK (latency_p50_ms >= 0),
    ADD COLUMN latency_p90_ms integer CHECK (latency_p90_ms >= 0),
    ADD COLUMN latency_max_ms integer CHECK (latency_max_ms >= 0),
    ADD COLUMN latency_turns integer NOT NULL DEFAULT 0 CHECK (latency_turns >= 0),
    -- Every output turn's latency rounded down to 10 ms, in order: the histogram the outcome
    -- statistics roll up (percentiles over a period's turns, exact from the conversations alone),
    -- and what makes a turn's changed latency a change of the conversation row, which marks its
    -- day dirty (below) even when the summary stays the same.
    ADD COLUMN latency_rounded_ms integer[] NOT NULL DEFAULT '{}';

-- An output turn's latency: from the end of the caller's speech to the agent's first audio, as
-- the voice runtime measured it (a turn's metadata or sidecar).
ALTER TABLE kalimera_recordings
    ADD COLUMN latency_ms integer CHECK (latency_ms >= 0),
    ADD CONSTRAINT kalimera_recordings_latency_output
        CHECK (latency_ms IS NULL OR direction = 'output');

-- The outcome statistics count these: a change marks the conversation's day dirty, as the
-- counted columns of 0006 do. A trigger of its own (not a new version of 0006's function), so
-- that another migration may extend that one without the two overwriting each other.
CREATE FUNCTION kalimera_stats_mark_outcomes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kalimera_stats_mark(array_agg(tenant_id), array_agg(day))
    FROM (
        SELECT DISTINCT tenant_id, (started_at AT TIME ZONE 'UTC')::date AS day
        FROM (
            (SELECT tenant_id, id, started_at, ended_reason, cost, latency_max_ms,
                    latency_rounded_ms FROM new_rows
             EXCEPT
             SELECT tenant_id, id, started_at, ended_reason, cost, latency_max_ms,
                    latency_rounded_ms FROM old_rows)
        ) AS changed
    ) AS t;
    RETURN NULL;
END
$$;

CREATE TRIGGER kalimera_conversations_stats_outcomes AFTER UPDATE ON kalimera_conversations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kalimera_stats_mark_outcomes();
