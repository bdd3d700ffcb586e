-- Conversation statistics: rollups at a 15-minute UTC grain, dirty-day marks kept by a trigger,
-- and a record of what has been rolled up. See kalimera/statistics/rollup.py.
--
-- Why 15 minutes: every UTC offset in use (whole hours, +05:30, +05:45, +08:45, -03:30, ...) is a
-- multiple of 15 minutes and every DST change happens on a 15-minute mark, so each bucket lies in
-- exactly one local hour of any such zone: the rollups answer local days, weeks, months, hours
-- and weekdays exactly. A window in a zone whose offset is not a multiple of 15 minutes (local
-- mean time before ~1970) is answered live.

-- One row per tenant and 15-minute bucket with at least one conversation, for all its agents
-- (agent_id = the nil UUID), so that tenant-wide queries read one row per bucket however many
-- agents the tenant has; plus one row per agent for the buckets where two or more agents had
-- conversations. When a single agent did, the all-agents row names it in sole_agent and is that
-- agent's row too: most buckets of most tenants hold one call, and this nearly halves the rows.
-- Derived counts are not stored: outbound = total - inbound; Active = total - completed -
-- failed; unknown sentiment = total - positive - neutral - negative; 10m+ = duration_count -
-- d_0_30 - ... - d_5_10; unknown duration = total - duration_count.
CREATE TABLE kalimera_stats_quarter (
    tenant_id uuid NOT NULL,
    agent_id uuid NOT NULL,
    bucket timestamptz NOT NULL,
    sole_agent uuid,
    total integer NOT NULL,
    inbound integer NOT NULL,
    completed integer NOT NULL,
    failed integer NOT NULL,
    positive integer NOT NULL,
    neutral integer NOT NULL,
    negative integer NOT NULL,
    duration_sum numeric NOT NULL,
    duration_count integer NOT NULL,
    d_0_30 integer NOT NULL,
    d_30_60 integer NOT NULL,
    d_1_3 integer NOT NULL,
    d_3_5 integer NOT NULL,
    d_5_10 integer NOT NULL,
    PRIMARY KEY (tenant_id, agent_id, bucket)
);

-- Hour rows for all agents, kept for busy days only (96 conversations or more, more than one a
-- quarter on average): a window in a zone whose offsets are whole hours (most of them) reads a
-- quarter of the rows for a busy tenant. Same measures as kalimera_stats_quarter.
CREATE TABLE kalimera_stats_hour (
    tenant_id uuid NOT NULL,
    bucket timestamptz NOT NULL,
    total integer NOT NULL,
    inbound integer NOT NULL,
    completed integer NOT NULL,
    failed integer NOT NULL,
    positive integer NOT NULL,
    neutral integer NOT NULL,
    negative integer NOT NULL,
    duration_sum numeric NOT NULL,
    duration_count integer NOT NULL,
    d_0_30 integer NOT NULL,
    d_30_60 integer NOT NULL,
    d_1_3 integer NOT NULL,
    d_3_5 integer NOT NULL,
    d_5_10 integer NOT NULL,
    PRIMARY KEY (tenant_id, bucket)
);

-- What has been rolled up: one row per tenant and UTC day with conversations, with the agents
-- that have rows (so that recomputing a day deletes its rows by primary key) and the languages
-- of that day, {language: count} (a null language is "unknown"), and per agent in
-- agent_languages, {agent id: {language: count}} (apart, so that the tenant-wide read does not
-- unpack every agent's map). Languages
-- are kept per UTC day: the partial UTC days at the edges of a window in another zone are
-- counted live (at most two days). busy: the day has hour rows.
CREATE TABLE kalimera_stats_rolled (
    tenant_id uuid NOT NULL,
    day date NOT NULL,
    agent_ids uuid[] NOT NULL,
    languages jsonb NOT NULL,
    agent_languages jsonb NOT NULL,
    busy boolean NOT NULL,
    -- The day's totals for all agents (what call-breakdown sums over whole days).
    total integer NOT NULL,
    inbound integer NOT NULL,
    completed integer NOT NULL,
    failed integer NOT NULL,
    positive integer NOT NULL,
    neutral integer NOT NULL,
    negative integer NOT NULL,
    duration_sum numeric NOT NULL,
    duration_count integer NOT NULL,
    d_0_30 integer NOT NULL,
    d_30_60 integer NOT NULL,
    d_1_3 integer NOT NULL,
    d_3_5 integer NOT NULL,
    d_5_10 integer NOT NULL,
    rolled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, day)
);

-- A tenant's UTC day whose rollup is missing or out of date. Written by the triggers below on
-- every change of kalimera_conversations; claimed (FOR UPDATE SKIP LOCKED) and deleted by the
-- rollup; read by the queries, which answer dirty days live.
CREATE TABLE kalimera_stats_dirty (
    tenant_id uuid NOT NULL,
    day date NOT NULL,
    marked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, day)
);

-- The last run, for operators: every closed day up to rolled_through was clean when it ended.
CREATE TABLE kalimera_stats_watermark (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    rolled_through date,
    last_run_at timestamptz,
    last_run_days integer NOT NULL DEFAULT 0
);
INSERT INTO kalimera_stats_watermark (singleton) VALUES (true);

-- Mark (tenant, day) pairs dirty. A mark that already exists and is not being claimed by a rollup
-- is share-locked instead of rewritten (KEY SHARE: writers do not queue behind each other, and a
-- rollup cannot claim it until this transaction ends, by when its rows are visible). A mark that
-- a rollup holds is upserted: that waits for the rollup to commit (it deletes the mark) and then
-- inserts a fresh one, so a write the rollup could not see always leaves its day dirty.
CREATE FUNCTION kalimera_stats_mark(tenants uuid[], days date[]) RETURNS void
LANGUAGE sql AS $$
    WITH pairs AS (
        SELECT DISTINCT t AS tenant_id, d AS day FROM unnest(tenants, days) AS p(t, d)
    ),
    held AS (
        SELECT m.tenant_id, m.day
        FROM kalimera_stats_dirty m JOIN pairs USING (tenant_id, day)
        ORDER BY m.tenant_id, m.day
        FOR KEY SHARE OF m SKIP LOCKED
    )
    INSERT INTO kalimera_stats_dirty AS m (tenant_id, day)
    SELECT p.tenant_id, p.day FROM pairs p
    WHERE NOT EXISTS (SELECT 1 FROM held h WHERE h.tenant_id = p.tenant_id AND h.day = p.day)
    ORDER BY p.tenant_id, p.day
    ON CONFLICT (tenant_id, day) DO UPDATE SET marked_at = now()
$$;

-- Inserts and deletes: the days of the rows (the transition table is named changed_rows in both
-- triggers). Statement-level, so a COPY of a million rows marks its days in one statement.
CREATE FUNCTION kalimera_stats_mark_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kalimera_stats_mark(array_agg(tenant_id), array_agg(day))
    FROM (SELECT DISTINCT tenant_id, (started_at AT TIME ZONE 'UTC')::date AS day
          FROM changed_rows) AS t;
    RETURN NULL;
END
$$;

-- Updates mark only the rows whose counted columns changed (a new turn that only moves
-- last_activity_at or turn_count changes no statistic), on the old day and on the new one.
CREATE FUNCTION kalimera_stats_mark_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kalimera_stats_mark(array_agg(tenant_id), array_agg(day))
    FROM (
        SELECT DISTINCT tenant_id, (started_at AT TIME ZONE 'UTC')::date AS day
        FROM (
            (SELECT tenant_id, id, agent_id, status, profile_type, language, duration,
                    started_at, sentiment FROM new_rows
             EXCEPT
             SELECT tenant_id, id, agent_id, status, profile_type, language, duration,
                    started_at, sentiment FROM old_rows)
            UNION ALL
            (SELECT tenant_id, id, agent_id, status, profile_type, language, duration,
                    started_at, sentiment FROM old_rows
             EXCEPT
             SELECT tenant_id, id, agent_id, status, profile_type, language, duration,
                    started_at, sentiment FROM new_rows)
        ) AS changed
    ) AS t;
    RETURN NULL;
END
$$;

CREATE TRIGGER kalimera_conversations_stats_insert AFTER INSERT ON kalimera_conversations
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kalimera_stats_mark_rows();
CREATE TRIGGER kalimera_conversations_stats_update AFTER UPDATE ON kalimera_conversations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kalimera_stats_mark_updated();
CREATE TRIGGER kalimera_conversations_stats_delete AFTER DELETE ON kalimera_conversations
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kalimera_stats_mark_rows();

-- Conversations written before this migration: every day they fall on is missing.
INSERT INTO kalimera_stats_dirty (tenant_id, day)
SELECT DISTINCT tenant_id, (started_at AT TIME ZONE 'UTC')::date FROM kalimera_conversations;
