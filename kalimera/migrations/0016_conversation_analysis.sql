-- The conversation's current post-call analysis (docs/analysis.md): the result the API shows, and
-- the few values of it that the outcome statistics count and the listing filters on, as columns of
-- their own so that both read them without opening the JSON.
--
-- transcript_version: counts the changes of the conversation's transcript (a turn ingested, or a
-- turn's words replaced by a re-uploaded recording). A result belongs to one (plan version,
-- transcript version); a newer transcript makes the stored result stale and asks for a new one.
ALTER TABLE kalimera_conversations
    ADD COLUMN transcript_version integer NOT NULL DEFAULT 0 CHECK (transcript_version >= 0),
    -- The result as the API writes it: {"status", "plan_version", "summary", "success", "data",
    -- "sentiment", "model", "input_tokens", "output_tokens", "cost", "analysed_at", "error" |
    -- "reason"}. NULL until an analysis is first asked for.
    ADD COLUMN analysis jsonb CHECK (analysis IS NULL OR jsonb_typeof(analysis) = 'object'),
    ADD COLUMN analysis_status text CHECK (
        analysis_status IN ('pending', 'done', 'failed', 'skipped')),
    -- The verdict of the plan's success part, by rubric: pass_fail gives success_result 'pass' or
    -- 'fail'; likert_5 gives success_result its label; score_1_10 gives success_score. The
    -- statistics' success_evaluated / success_pass count pass_fail verdicts, avg_score the scores.
    ADD COLUMN success_rubric text CHECK (success_rubric IN ('pass_fail', 'score_1_10', 'likert_5')),
    ADD COLUMN success_result text CHECK (success_result IN (
        'pass', 'fail',
        'strongly_disagree', 'disagree', 'neutral', 'agree', 'strongly_agree')),
    ADD COLUMN success_score smallint CHECK (success_score BETWEEN 1 AND 10),
    -- What the model's answer cost (tokens priced by KALIMERA_LLM_PRICE_*), in the tenant's
    -- currency; part of the conversation's cost.total and of the statistics' cost_total.
    ADD COLUMN analysis_cost numeric(14, 6) CHECK (analysis_cost >= 0),
    ADD CONSTRAINT kalimera_conversations_success_shape CHECK (
        (success_rubric IS NULL AND success_result IS NULL AND success_score IS NULL)
        OR (success_rubric = 'pass_fail' AND success_result IN ('pass', 'fail')
            AND success_score IS NULL)
        OR (success_rubric = 'likert_5' AND success_result IN (
                'strongly_disagree', 'disagree', 'neutral', 'agree', 'strongly_agree')
            AND success_score IS NULL)
        OR (success_rubric = 'score_1_10' AND success_result IS NULL
            AND success_score IS NOT NULL));
