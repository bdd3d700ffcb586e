-- Outcome statistics (docs/statistics.md, "Outcome statistics"): rollups of the ended
-- conversations' outcomes, kept by the same rollup runs as 0006's and read the same way (clean
-- closed days from the rollups, the rest live). See kalimera/statistics/rollup_batch.py.
--
-- Two grains, each keyed like kalimera_stats_quarter (an all-agents row, agent_id = the nil UUID,
-- naming its agent in sole_agent when only one had calls; per-agent rows otherwise) and split by
-- currency, so that costs in different currencies are never added up:
-- - a 15-minute UTC bucket: answers the parts of a local period that are not whole UTC days, in
--   any zone whose offsets are multiples of 15 minutes;
-- - a UTC day: answers the whole UTC days inside a local period (every day of a window in UTC),
--   one row a day instead of 96, which keeps a year of the largest tenant within milliseconds.
--
-- Measures, over ended conversations (status Completed or Failed): ended, analysed (analysis
-- status done), evaluated / passed (pass_fail verdicts / passes), score_sum / score_count
-- (score_1_10 verdicts), one count per ended reason (no reason counts as unknown), cost_sum /
-- cost_count (telephony's components plus the analysis cost, over those that have either).
-- currency: cost->>'currency', '' when telephony reported no cost.
--
-- lat_values / lat_cum: the histogram of the output turns' latencies (latency_rounded_ms), the
-- distinct values ascending and the running count of turns up to each, as big-endian int4s (what
-- int4send writes). Percentiles over any set of rows are then exact (percentile_disc over the
-- turns): the reader counts the turns at or below a value with one binary search per row, and
-- bytea reaches Python without parsing an array element by element.
CREATE TABLE kalimera_stats_outcome_quarter (
    tenant_id uuid NOT NULL,
    agent_id uuid NOT NULL,
    bucket timestamptz NOT NULL,
    currency text NOT NULL,
    sole_agent uuid,
    ended integer NOT NULL,
    analysed integer NOT NULL,
    evaluated integer NOT NULL,
    passed integer NOT NULL,
    score_sum integer NOT NULL,
    score_count integer NOT NULL,
    r_customer_ended_call integer NOT NULL,
    r_agent_ended_call integer NOT NULL,
    r_silence_timeout integer NOT NULL,
    r_max_duration_reached integer NOT NULL,
    r_transferred integer NOT NULL,
    r_voicemail integer NOT NULL,
    r_no_answer integer NOT NULL,
    r_busy integer NOT NULL,
    r_failed_to_connect integer NOT NULL,
    r_error integer NOT NULL,
    r_unknown integer NOT NULL,
    r_idle_timeout integer NOT NULL,
    cost_sum numeric NOT NULL,
    cost_count integer NOT NULL,
    lat_values bytea NOT NULL,
    lat_cum bytea NOT NULL,
    PRIMARY KEY (tenant_id, agent_id, bucket, currency)
);

-- The same columns, the day in place of the bucket.
CREATE TABLE kalimera_stats_outcome_day (
    LIKE kalimera_stats_outcome_quarter INCLUDING CONSTRAINTS INCLUDING INDEXES
);
ALTER TABLE kalimera_stats_outcome_day RENAME COLUMN bucket TO day;
ALTER TABLE kalimera_stats_outcome_day ALTER COLUMN day TYPE date;

SELECT kalimera_protect_tenant_table('kalimera_stats_outcome_quarter');
SELECT kalimera_protect_tenant_table('kalimera_stats_outcome_day');

-- The analysis columns of 0016 are counted too: a change marks the conversation's day dirty. A
-- trigger of its own, as 0015 did, so that neither migration's function overwrites the other.
CREATE FUNCTION kalimera_stats_mark_analysis() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kalimera_stats_mark(array_agg(tenant_id), array_agg(day))
    FROM (
        SELECT DISTINCT tenant_id, (started_at AT TIME ZONE 'UTC')::date AS day
        FROM (
            SELECT tenant_id, id, started_at, analysis_status, success_rubric, success_result,
                   success_score, analysis_cost FROM new_rows
            EXCEPT
            SELECT tenant_id, id, started_at, analysis_status, success_rubric, success_result,
                   success_score, analysis_cost FROM old_rows
        ) AS changed
    ) AS t;
    RETURN NULL;
END
$$;

CREATE TRIGGER kalimera_conversations_stats_analysis AFTER UPDATE ON kalimera_conversations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kalimera_stats_mark_analysis();

-- Days rolled up before this migration have no outcome rows: roll them up again.
INSERT INTO kalimera_stats_dirty (tenant_id, day)
SELECT tenant_id, day FROM kalimera_stats_rolled
ON CONFLICT (tenant_id, day) DO NOTHING;
