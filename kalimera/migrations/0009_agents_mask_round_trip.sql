-- Agents, second file (same reserved number): added after 0002_agents had reached local
-- databases, so it is a file of its own rather than an edit of that one.

ALTER TABLE kalimera_ai_agents
    ADD CONSTRAINT kalimera_ai_agents_configuration_is_object
    CHECK (jsonb_typeof(configuration) = 'object');

-- The mask round trip, inside the UPDATE that writes a section: every "********" in `new` takes
-- the value stored at the same path of `old` (dropped when nothing is stored there). Doing this in
-- SQL keeps a section write one statement, evaluated on the row as locked, so it cannot lose a
-- concurrent write to another section or read a stale secret.
CREATE OR REPLACE FUNCTION kalimera_keep_masked(new jsonb, old jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    k text;
    v jsonb;
    result jsonb;
BEGIN
    IF new = '"********"'::jsonb THEN
        RETURN old;
    ELSIF jsonb_typeof(new) = 'object' THEN
        result := '{}'::jsonb;
        FOR k, v IN SELECT * FROM jsonb_each(new) LOOP
            v := kalimera_keep_masked(v, CASE WHEN jsonb_typeof(old) = 'object' THEN old -> k END);
            IF v IS NOT NULL THEN
                result := result || jsonb_build_object(k, v);
            END IF;
        END LOOP;
        RETURN result;
    ELSIF jsonb_typeof(new) = 'array' THEN
        SELECT coalesce(jsonb_agg(
                   coalesce(kalimera_keep_masked(
                       e.value,
                       CASE WHEN jsonb_typeof(old) = 'array' THEN old -> (e.n - 1)::int END
                   ), 'null'::jsonb) ORDER BY e.n), '[]'::jsonb)
            INTO result
            FROM jsonb_array_elements(new) WITH ORDINALITY AS e(value, n);
        RETURN result;
    END IF;
    RETURN new;
END;
$$;
