-- Finding calls (docs/conversations.md, "Finding calls"): the listing's filters on success,
-- ended_reason, sentiment, duration, the words of the transcripts and summary (q) and the
-- extracted data's fields, each served by an index that the app role can use under row-level
-- security.
--
-- Under RLS the planner gives an index only conditions whose functions are leakproof (the
-- policy's check must come first otherwise), and only superusers may mark a function leakproof.
-- Equality and ordering of uuid, text, bigint and timestamptz are leakproof; numeric
-- comparison, the full-text match (@@), LIKE/ILIKE (the trigram index's operators) and every
-- jsonb operator are not. So a GIN index over a tsvector, a trigram index or a jsonb_path_ops
-- index would never be used by the app's queries: each would be a scan of the whole tenant.
-- The words and the data's fields therefore go to an inverted index of plain text terms,
-- searched by text equality, and the duration gets a bigint copy.

CREATE EXTENSION IF NOT EXISTS unaccent;

-- The duration in whole milliseconds (duration is numeric(12, 3): exact), so that a range on it
-- is a leakproof bigint comparison. A stored generated column: always equal to duration.
ALTER TABLE kalimera_conversations
    ADD COLUMN duration_ms bigint GENERATED ALWAYS AS ((duration * 1000)::bigint) STORED;

-- One filter each, newest first within it (the listing's order), and the count of its matches.
CREATE INDEX kalimera_conversations_success_idx
    ON kalimera_conversations (tenant_id, success_result, started_at DESC, id);
CREATE INDEX kalimera_conversations_ended_reason_idx
    ON kalimera_conversations (tenant_id, ended_reason, started_at DESC, id);
CREATE INDEX kalimera_conversations_sentiment_idx
    ON kalimera_conversations (tenant_id, sentiment, started_at DESC, id);
CREATE INDEX kalimera_conversations_duration_idx
    ON kalimera_conversations (tenant_id, duration_ms);

-- The inverted index: one row per conversation and term, the term being
-- - a word of its transcripts or of its analysis summary: a lexeme of the 'simple' text search
--   configuration (split on the parser's word boundaries, lower-cased, no stemming and no stop
--   words, so any language), without accents (unaccent: "Καλημέρα" is "καλημερα", "café" is
--   "cafe") and with the Greek final sigma as σ (lower('ΟΔΟΣ') is 'οδοσ', typed 'οδος');
--   hits: how many times it occurs (to_tsvector keeps at most 256 positions a word), the rank;
-- - a top-level field of its analysis' extracted data with a string, number or boolean value:
--   '=' || field || '=' || kalimera_search_value(value), hits 0. No word starts with '=' (the
--   parser never makes one), so the two kinds never meet.
-- Maintained by the triggers below from the rows they come from; never written by the app.
CREATE TABLE kalimera_conversation_terms (
    tenant_id uuid NOT NULL,
    term text NOT NULL,
    conversation_id uuid NOT NULL,
    hits integer NOT NULL CHECK (hits >= 0),
    PRIMARY KEY (tenant_id, term, conversation_id),
    FOREIGN KEY (tenant_id, conversation_id)
        REFERENCES kalimera_conversations (tenant_id, id) ON DELETE CASCADE
);
-- A conversation's terms, replaced whole when it changes.
CREATE INDEX kalimera_conversation_terms_conversation_idx
    ON kalimera_conversation_terms (tenant_id, conversation_id);
SELECT kalimera_protect_tenant_table('kalimera_conversation_terms');

-- A data value as a term: numbers without trailing zeros (4, 4.0 and 4e0 are one), strings as
-- their JSON text (quoted: never equal to a number or a boolean), booleans as true/false; NULL
-- for any other kind (null, arrays, objects are not indexed).
CREATE FUNCTION kalimera_search_value(v jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE jsonb_typeof(v)
                     WHEN 'number' THEN trim_scale(v::numeric)::text
                     WHEN 'string' THEN v::text
                     WHEN 'boolean' THEN v::text
                 END $$;

-- The words of a text as terms, with their counts; the listing's q goes through the same
-- function, so a query and a transcript are folded alike. At most the first 100,000 characters
-- of one text (a turn's transcript, the summary), and words of at most 100 characters.
CREATE FUNCTION kalimera_search_words(doc text) RETURNS TABLE (term text, hits integer)
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT lexeme, coalesce(array_length(positions, 1), 1)
            FROM unnest(to_tsvector('simple'::regconfig,
                 translate(unaccent('unaccent'::regdictionary, left(doc, 100000)), 'ς', 'σ')))
           WHERE length(lexeme) <= 100 AND left(lexeme, 1) <> '=' $$;

-- Rebuild the terms of these conversations from their turns and their analysis, whole: the
-- migration's backfill below, and the reference the triggers' changes must keep equal to (the
-- tests compare them).
CREATE FUNCTION kalimera_search_reindex(tenants uuid[], ids uuid[]) RETURNS void
    LANGUAGE sql AS $$
    DELETE FROM kalimera_conversation_terms t
     USING unnest(tenants, ids) AS k(tenant_id, id)
     WHERE t.tenant_id = k.tenant_id AND t.conversation_id = k.id;
    INSERT INTO kalimera_conversation_terms (tenant_id, term, conversation_id, hits)
    SELECT c.tenant_id, w.term, c.id, sum(w.hits)
      FROM unnest(tenants, ids) AS k(tenant_id, id)
      JOIN kalimera_conversations c ON c.tenant_id = k.tenant_id AND c.id = k.id
     CROSS JOIN LATERAL (
            SELECT s.term, s.hits
              FROM kalimera_recordings r, kalimera_search_words(r.transcript) s
             WHERE r.tenant_id = c.tenant_id AND r.conversation_id = c.id
            UNION ALL
            SELECT s.term, s.hits FROM kalimera_search_words(c.analysis->>'summary') s
            UNION ALL
            SELECT '=' || d.key || '=' || kalimera_search_value(d.value), 0
              FROM jsonb_each(CASE WHEN jsonb_typeof(c.analysis->'data') = 'object'
                                   THEN c.analysis->'data' END) AS d
             WHERE kalimera_search_value(d.value) IS NOT NULL
               AND length(d.key) <= 64 AND length(d.value::text) <= 200
           ) AS w
     GROUP BY c.tenant_id, w.term, c.id
    ON CONFLICT (tenant_id, term, conversation_id) DO UPDATE SET hits = EXCLUDED.hits;
$$;

-- The triggers below change only what a statement changed: a text's words are added to its
-- call's counts or taken from them (a word whose count falls to 0 goes), and a changed data
-- object replaces the call's data terms. So a turn costs the words of that turn, however long
-- the call (rebuilding the call on each turn made the 200th turn of a call cost 200 turns).
-- The counts stay what kalimera_search_reindex would make (tests/conversations check it).
CREATE FUNCTION kalimera_search_add(tenants uuid[], ids uuid[], docs text[]) RETURNS void
    LANGUAGE sql AS $$
    INSERT INTO kalimera_conversation_terms AS t (tenant_id, term, conversation_id, hits)
    SELECT k.tenant_id, w.term, k.id, sum(w.hits)
      FROM unnest(tenants, ids, docs) AS k(tenant_id, id, doc), kalimera_search_words(k.doc) w
     GROUP BY k.tenant_id, w.term, k.id
    ON CONFLICT (tenant_id, term, conversation_id) DO UPDATE SET hits = t.hits + EXCLUDED.hits;
$$;

CREATE FUNCTION kalimera_search_remove(tenants uuid[], ids uuid[], docs text[]) RETURNS void
    LANGUAGE sql AS $$
    UPDATE kalimera_conversation_terms t SET hits = greatest(t.hits - o.hits, 0)
      FROM (SELECT k.tenant_id, k.id, w.term, sum(w.hits) AS hits
              FROM unnest(tenants, ids, docs) AS k(tenant_id, id, doc),
                   kalimera_search_words(k.doc) w
             GROUP BY k.tenant_id, k.id, w.term) AS o
     WHERE t.tenant_id = o.tenant_id AND t.term = o.term AND t.conversation_id = o.id;
    DELETE FROM kalimera_conversation_terms t
     USING (SELECT DISTINCT k.tenant_id, k.id, w.term
              FROM unnest(tenants, ids, docs) AS k(tenant_id, id, doc),
                   kalimera_search_words(k.doc) w) AS o
     WHERE t.tenant_id = o.tenant_id AND t.term = o.term AND t.conversation_id = o.id
       AND t.hits = 0;
$$;

CREATE FUNCTION kalimera_search_set_data(tenants uuid[], ids uuid[], datas jsonb[]) RETURNS void
    LANGUAGE sql AS $$
    DELETE FROM kalimera_conversation_terms t
     USING unnest(tenants, ids) AS k(tenant_id, id)
     WHERE t.tenant_id = k.tenant_id AND t.conversation_id = k.id AND left(t.term, 1) = '=';
    INSERT INTO kalimera_conversation_terms (tenant_id, term, conversation_id, hits)
    SELECT DISTINCT k.tenant_id, '=' || d.key || '=' || kalimera_search_value(d.value), k.id, 0
      FROM unnest(tenants, ids, datas) AS k(tenant_id, id, data),
           jsonb_each(CASE WHEN jsonb_typeof(k.data) = 'object' THEN k.data END) AS d
     WHERE kalimera_search_value(d.value) IS NOT NULL
       AND length(d.key) <= 64 AND length(d.value::text) <= 200;
$$;

-- A turn written, replaced or removed: its words join or leave its call's. One function per
-- event, as each names the transition tables its event has.
CREATE FUNCTION kalimera_search_turns_inserted() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kalimera_search_add(
                array_agg(n.tenant_id), array_agg(n.conversation_id), array_agg(n.transcript))
       FROM new_rows n WHERE n.transcript IS NOT NULL;
    RETURN NULL;
END
$$;

CREATE FUNCTION kalimera_search_turns_updated() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kalimera_search_remove(
                array_agg(o.tenant_id), array_agg(o.conversation_id), array_agg(o.transcript))
       FROM new_rows n JOIN old_rows o USING (tenant_id, conversation_id, seq, direction)
      WHERE o.transcript IS NOT NULL AND n.transcript IS DISTINCT FROM o.transcript;
    PERFORM kalimera_search_add(
                array_agg(n.tenant_id), array_agg(n.conversation_id), array_agg(n.transcript))
       FROM new_rows n JOIN old_rows o USING (tenant_id, conversation_id, seq, direction)
      WHERE n.transcript IS NOT NULL AND n.transcript IS DISTINCT FROM o.transcript;
    RETURN NULL;
END
$$;

CREATE FUNCTION kalimera_search_turns_deleted() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kalimera_search_remove(
                array_agg(o.tenant_id), array_agg(o.conversation_id), array_agg(o.transcript))
       FROM old_rows o WHERE o.transcript IS NOT NULL;
    RETURN NULL;
END
$$;

CREATE TRIGGER kalimera_recordings_search_insert AFTER INSERT ON kalimera_recordings
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kalimera_search_turns_inserted();
CREATE TRIGGER kalimera_recordings_search_update AFTER UPDATE ON kalimera_recordings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kalimera_search_turns_updated();
CREATE TRIGGER kalimera_recordings_search_delete AFTER DELETE ON kalimera_recordings
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kalimera_search_turns_deleted();

-- The analysis written (by the pipeline, as a plain UPDATE of the column): its summary's words
-- join or leave the call's, its data replaces the call's data terms. Conversations are created
-- without one, except by a bulk load.
CREATE FUNCTION kalimera_search_analysis_inserted() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kalimera_search_add(
                array_agg(tenant_id), array_agg(id), array_agg(analysis->>'summary'))
       FROM new_rows WHERE analysis->>'summary' IS NOT NULL;
    PERFORM kalimera_search_set_data(
                array_agg(tenant_id), array_agg(id), array_agg(analysis->'data'))
       FROM new_rows WHERE analysis->'data' IS NOT NULL;
    RETURN NULL;
END
$$;

CREATE FUNCTION kalimera_search_analysis_updated() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kalimera_search_remove(
                array_agg(o.tenant_id), array_agg(o.id), array_agg(o.analysis->>'summary'))
       FROM new_rows n JOIN old_rows o USING (tenant_id, id)
      WHERE o.analysis->>'summary' IS NOT NULL
        AND n.analysis->'summary' IS DISTINCT FROM o.analysis->'summary';
    PERFORM kalimera_search_add(
                array_agg(n.tenant_id), array_agg(n.id), array_agg(n.analysis->>'summary'))
       FROM new_rows n JOIN old_rows o USING (tenant_id, id)
      WHERE n.analysis->>'summary' IS NOT NULL
        AND n.analysis->'summary' IS DISTINCT FROM o.analysis->'summary';
    PERFORM kalimera_search_set_data(
                array_agg(n.tenant_id), array_agg(n.id), array_agg(n.analysis->'data'))
       FROM new_rows n JOIN old_rows o USING (tenant_id, id)
      WHERE n.analysis->'data' IS DISTINCT FROM o.analysis->'data';
    RETURN NULL;
END
$$;

CREATE TRIGGER kalimera_conversations_search_insert AFTER INSERT ON kalimera_conversations
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kalimera_search_analysis_inserted();
CREATE TRIGGER kalimera_conversations_search_update AFTER UPDATE ON kalimera_conversations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kalimera_search_analysis_updated();

-- The conversations there are now (the migration runs in the system scope: every tenant), when
-- they are few enough to index within this transaction, which holds kalimera_conversations
-- (rewritten above) until it commits: about 2 ms a call, so at most 20,000 calls (tens of
-- seconds). A larger database is indexed after the migration by `kalimera ingest
-- reindex-words`, a batch a transaction, while the app runs.
DO $$
BEGIN
    IF (SELECT count(*) FROM (SELECT FROM kalimera_conversations LIMIT 20001) AS c) <= 20000 THEN
        PERFORM kalimera_search_reindex(array_agg(tenant_id), array_agg(id))
           FROM kalimera_conversations;
    ELSE
        RAISE WARNING 'calls are not yet searchable by their words: run kalimera ingest reindex-words';
    END IF;
END
$$;
