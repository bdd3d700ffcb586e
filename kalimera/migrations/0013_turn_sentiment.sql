-- Each caller turn's own sentiment score (kalimera.conversations.sentiment): scored once when the
-- turn is ingested, NULL for a turn without words. The conversation's sentiment is derived from
-- these (their mean) instead of scoring all its words again on every turn.
--
-- Turns ingested before this migration have words and no score: the ingestion scores those of a
-- conversation, once, when that conversation next receives a turn. Conversations that receive no
-- more turns keep the sentiment they were given.
ALTER TABLE kalimera_recordings
    ADD COLUMN sentiment_score double precision CHECK (sentiment_score BETWEEN -1 AND 1);
