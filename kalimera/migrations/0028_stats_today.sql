-- Today's closed quarters from the rollups (docs/statistics.md, "Today"): a dirty day whose
-- quarters up to some instant were rolled up, and what changed below that instant since.
--
-- rolled_to: the day's rollup rows (written by an intraday run, kalimera stats rollup --today)
--   count its conversations that started before this instant, as they were when it ran; NULL
--   when no run has rolled up part of the day since it was marked.
-- changed_from: the earliest started_at of a conversation of the day changed since then (NULL:
--   none). Readers take the quarters before least(rolled_to, changed_from), floored to a
--   quarter, from the rollups and read the rest of the day live.
ALTER TABLE kalimera_stats_dirty
    ADD COLUMN rolled_to timestamptz,
    ADD COLUMN changed_from timestamptz;

-- Mark the days of these conversations' start instants dirty. As 0006's function (which now
-- calls this one), and besides: a mark whose day was partly rolled up and that does not yet
-- record a change as early as this one's is upserted, lowering changed_from. A write that only
-- touches what started after rolled_to (the calls of the last minutes, the usual write) or after
-- a change already recorded share-locks the mark as before, so writers do not queue behind each
-- other; and an intraday run, which claims a mark FOR UPDATE, skips a mark a writer holds, so it
-- never records a rolled_to past a write it could not see.
CREATE FUNCTION kalimera_stats_mark(tenants uuid[], starts timestamptz[]) RETURNS void
LANGUAGE sql AS $$
    WITH pairs AS (
        SELECT t AS tenant_id, (s AT TIME ZONE 'UTC')::date AS day, min(s) AS start
        FROM unnest(tenants, starts) AS p(t, s)
        GROUP BY 1, 2
    ),
    held AS (
        SELECT m.tenant_id, m.day
        FROM kalimera_stats_dirty m JOIN pairs p USING (tenant_id, day)
        WHERE m.rolled_to IS NULL OR p.start >= m.rolled_to OR m.changed_from <= p.start
        ORDER BY m.tenant_id, m.day
        FOR KEY SHARE OF m SKIP LOCKED
    )
    INSERT INTO kalimera_stats_dirty AS m (tenant_id, day, changed_from)
    SELECT p.tenant_id, p.day, p.start FROM pairs p
    WHERE NOT EXISTS (SELECT 1 FROM held h WHERE h.tenant_id = p.tenant_id AND h.day = p.day)
    ORDER BY p.tenant_id, p.day
    ON CONFLICT (tenant_id, day) DO UPDATE
    SET marked_at = now(), changed_from = least(m.changed_from, excluded.changed_from)
$$;

-- A whole day (kalimera stats rollup --since): changed from its first instant.
CREATE OR REPLACE FUNCTION kalimera_stats_mark(tenants uuid[], days date[]) RETURNS void
LANGUAGE sql AS $$
    SELECT kalimera_stats_mark(
        tenants, (SELECT array_agg(d::timestamp AT TIME ZONE 'UTC' ORDER BY i)
                  FROM unnest(days) WITH ORDINALITY AS u(d, i)))
$$;

CREATE OR REPLACE FUNCTION kalimera_stats_mark_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kalimera_stats_mark(array_agg(tenant_id), array_agg(started_at))
    FROM changed_rows;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION kalimera_stats_mark_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kalimera_stats_mark(array_agg(tenant_id), array_agg(started_at))
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
    ) AS changed;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION kalimera_stats_mark_outcomes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kalimera_stats_mark(array_agg(tenant_id), array_agg(started_at))
    FROM (
        SELECT tenant_id, id, started_at, ended_reason, cost, latency_max_ms,
               latency_rounded_ms FROM new_rows
        EXCEPT
        SELECT tenant_id, id, started_at, ended_reason, cost, latency_max_ms,
               latency_rounded_ms FROM old_rows
    ) AS changed;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION kalimera_stats_mark_analysis() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kalimera_stats_mark(array_agg(tenant_id), array_agg(started_at))
    FROM (
        SELECT tenant_id, id, started_at, analysis_status, success_rubric, success_result,
               success_score, analysis_cost FROM new_rows
        EXCEPT
        SELECT tenant_id, id, started_at, analysis_status, success_rubric, success_result,
               success_score, analysis_cost FROM old_rows
    ) AS changed;
    RETURN NULL;
END
$$;
