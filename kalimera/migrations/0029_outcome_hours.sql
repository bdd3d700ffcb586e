-- Outcome hour rows for busy days (docs/statistics.md, "Outcome statistics"), as 0006's
-- kalimera_stats_hour for the history: all agents, per currency, one row per UTC hour of a day
-- that kalimera_stats_rolled marks busy. A local day in a whole-hour zone is then its UTC day row
-- less the hours that lie in the next local day plus those of the day before: 7 rows (and their
-- latency histograms) instead of 25 in Europe/Athens; in a half-hour zone the moved parts' whole
-- hours come from here too. An agent's outcomes keep reading quarter rows (no hour row is per
-- agent, as in kalimera_stats_hour).
CREATE TABLE kalimera_stats_outcome_hour (
    LIKE kalimera_stats_outcome_quarter INCLUDING CONSTRAINTS
);
ALTER TABLE kalimera_stats_outcome_hour
    DROP COLUMN agent_id,
    DROP COLUMN sole_agent,
    ADD PRIMARY KEY (tenant_id, bucket, currency);

SELECT kalimera_protect_tenant_table('kalimera_stats_outcome_hour');

-- Busy days rolled up before this migration have no outcome hour rows: roll them up again
-- (until then they are read live, as every dirty day is).
INSERT INTO kalimera_stats_dirty (tenant_id, day)
SELECT tenant_id, day FROM kalimera_stats_rolled WHERE busy
ON CONFLICT (tenant_id, day) DO NOTHING;
