-- The analysis pipeline (docs/analysis.md, "When it runs", "Re-runs"): the outbox that asks for an
-- analysis in the same transaction as the change that needs one, the results (at most one per
-- conversation, plan version and transcript version), and the bulk re-runs.

-- Requests to analyse, written in the transaction of the change that asks for one and moved to
-- the `kalimera-analysis` queue by the relay (kalimera/outbox.py), which deletes a row once the
-- queue has its message. A relay claims rows by moving available_at a minute on (no transaction
-- is held while it talks to the queue): a relay that dies after the claim leaves rows that the
-- next relay sends again, so a request is sent at least once and never lost.
--   kind 'analyse': analyse conversation_id (with run_id: as an item of that run);
--   kind 'feed': move the run's next waiting items here (a run enqueues itself in batches).
CREATE TABLE kalimera_analysis_outbox (
    tenant_id uuid NOT NULL,
    id bigint GENERATED ALWAYS AS IDENTITY,
    kind text NOT NULL CHECK (kind IN ('analyse', 'feed')),
    conversation_id uuid,
    run_id uuid,
    -- Why: 'ended', 'transcript' (a turn changed after the end), 'rerun' (one call), 'run'.
    reason text NOT NULL CHECK (reason IN ('ended', 'transcript', 'rerun', 'run')),
    available_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'analyse') = (conversation_id IS NOT NULL)),
    CHECK (kind = 'analyse' OR run_id IS NOT NULL),
    -- Led by the tenant like every tenant table's key (tests/infra/test_tenant_keys.py).
    PRIMARY KEY (tenant_id, id)
);
-- The sweeper takes the oldest available rows; the request that wrote rows relays its own.
CREATE INDEX kalimera_analysis_outbox_available_idx
    ON kalimera_analysis_outbox (available_at, id);
CREATE INDEX kalimera_analysis_outbox_conversation_idx
    ON kalimera_analysis_outbox (tenant_id, conversation_id);
CREATE INDEX kalimera_analysis_outbox_run_idx
    ON kalimera_analysis_outbox (tenant_id, run_id) WHERE run_id IS NOT NULL;
SELECT kalimera_protect_tenant_table('kalimera_analysis_outbox');

-- Every analysis stored, by (conversation, plan version, transcript version): a redelivered
-- message finds its 'done' row and calls no model. A 'failed' or 'skipped' row is replaced by the
-- next attempt (a model configured later, a repaired plan); a 'done' one never is. The
-- conversation's own `analysis` (0016) is the result for its current transcript.
CREATE TABLE kalimera_analysis_results (
    tenant_id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    plan_version integer NOT NULL CHECK (plan_version >= 0),
    transcript_version integer NOT NULL CHECK (transcript_version >= 0),
    status text NOT NULL CHECK (status IN ('done', 'failed', 'skipped')),
    analysis jsonb NOT NULL CHECK (jsonb_typeof(analysis) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, conversation_id, plan_version, transcript_version),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES kalimera_conversations (tenant_id, id)
        ON DELETE CASCADE
);
SELECT kalimera_protect_tenant_table('kalimera_analysis_results');

-- A bulk re-run: an agent's conversations that ended in [since, until] with no 'done' result for
-- plan_version, chosen when the run is made (its items). status: 'running' until every item is
-- finished ('done' is derived from the items), or 'cancelled'.
CREATE TABLE kalimera_analysis_runs (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    agent_id uuid NOT NULL,
    plan_version integer NOT NULL CHECK (plan_version >= 0),
    since date NOT NULL,
    until date NOT NULL CHECK (until >= since),
    status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'cancelled')),
    total integer NOT NULL CHECK (total >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    cancelled_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES kalimera_ai_agents (tenant_id, id)
        ON DELETE CASCADE
);
SELECT kalimera_protect_tenant_table('kalimera_analysis_runs');

-- A run's conversations: 'waiting' (not yet in the outbox), 'queued' (sent, not started),
-- 'started' (the model was asked), then 'done', 'failed', 'skipped', or 'cancelled' (by DELETE
-- before it started).
CREATE TABLE kalimera_analysis_run_items (
    tenant_id uuid NOT NULL,
    run_id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    state text NOT NULL DEFAULT 'waiting' CHECK (
        state IN ('waiting', 'queued', 'started', 'done', 'failed', 'skipped', 'cancelled')),
    PRIMARY KEY (tenant_id, run_id, conversation_id),
    FOREIGN KEY (tenant_id, run_id) REFERENCES kalimera_analysis_runs (tenant_id, id)
        ON DELETE CASCADE
);
-- The next batch to feed: the waiting items only.
CREATE INDEX kalimera_analysis_run_items_waiting_idx
    ON kalimera_analysis_run_items (tenant_id, run_id) WHERE state = 'waiting';
SELECT kalimera_protect_tenant_table('kalimera_analysis_run_items');

-- Ask for an analysis when a conversation ends (Completed by a final turn, a PATCH or the idle
-- timer; Failed once it has a transcript) or when its transcript changes after the end. A
-- trigger rather than a call in each of those paths: they are four (ingestion, PATCH, the idle
-- timer, and whatever ends calls tomorrow), in two domains, and a trigger cannot be forgotten by
-- the next one; the request is in the change's transaction by construction. BEFORE, so the row
-- says 'pending' in the same write (the previous result's verdict and cost are cleared: they
-- described another transcript or another ending).
CREATE FUNCTION kalimera_analysis_request() RETURNS trigger
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
    NEW.analysis := jsonb_build_object('status', 'pending');
    NEW.analysis_status := 'pending';
    NEW.success_rubric := NULL;
    NEW.success_result := NULL;
    NEW.success_score := NULL;
    NEW.analysis_cost := NULL;
    RETURN NEW;
END
$$;

CREATE TRIGGER kalimera_conversations_analysis_request
    BEFORE UPDATE OF status, transcript_version ON kalimera_conversations
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.transcript_version IS DISTINCT FROM NEW.transcript_version)
    EXECUTE FUNCTION kalimera_analysis_request();
