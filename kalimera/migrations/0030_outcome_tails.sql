-- Outcome tail rows in place of 0029's hour rows (docs/statistics.md, "Outcome statistics"):
-- for each busy day (kalimera_stats_rolled.busy) and each of its half hours after midnight,
-- the all-agents outcome sums per currency of the conversations from that half hour to the end
-- of the UTC day, the bucket being the half hour. A local day is then its UTC day row less the
-- tail from the local midnight on plus the day before's tail: three rows and their latency
-- histograms in any whole- or half-hour zone (and a quarter row more in the few others), where
-- the hour rows took seven in Europe/Athens, fifteen in Asia/Kolkata and up to thirteen in the
-- Americas. A tail that would hold no conversation has no row (every later one is empty too).
-- An agent's outcomes keep reading quarter rows.
DROP TABLE kalimera_stats_outcome_hour;

CREATE TABLE kalimera_stats_outcome_tail (
    LIKE kalimera_stats_outcome_quarter INCLUDING CONSTRAINTS
);
ALTER TABLE kalimera_stats_outcome_tail
    DROP COLUMN agent_id,
    DROP COLUMN sole_agent,
    ADD PRIMARY KEY (tenant_id, bucket, currency);

SELECT kalimera_protect_tenant_table('kalimera_stats_outcome_tail');

-- Busy days rolled up before this migration have no tail rows: roll them up again (until then
-- they are read live, as every dirty day is).
INSERT INTO kalimera_stats_dirty (tenant_id, day)
SELECT tenant_id, day FROM kalimera_stats_rolled WHERE busy
ON CONFLICT (tenant_id, day) DO NOTHING;
