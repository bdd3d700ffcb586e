-- AI agents: fixed columns for what the API lists and searches, the thirteen configuration
-- sections in one JSONB document (section name -> object), a version for ETags.
CREATE TABLE kalimera_ai_agents (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    name varchar(255) NOT NULL CHECK (length(name) >= 1),
    description text,
    avatar text,
    profile_type text NOT NULL CHECK (profile_type IN ('inbound', 'outbound')),
    configuration jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(configuration) = 'object'),
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX kalimera_ai_agents_list_idx ON kalimera_ai_agents (tenant_id, created_at DESC, id);
CREATE INDEX kalimera_ai_agents_search_idx ON kalimera_ai_agents
    USING gin ((name || ' ' || coalesce(description, '') || ' ' || profile_type) gin_trgm_ops);

-- updated_at and version move on every update, whoever writes the row.
CREATE FUNCTION kalimera_touch_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    IF TG_TABLE_NAME = 'kalimera_ai_agents' THEN
        NEW.version := OLD.version + 1;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER kalimera_ai_agents_touch BEFORE UPDATE ON kalimera_ai_agents
    FOR EACH ROW EXECUTE FUNCTION kalimera_touch_row();

-- The mask round trip, inside the UPDATE that writes a section: every "********" in `new` takes
-- the value stored at the same path of `old` (dropped when nothing is stored there). Doing this in
-- SQL keeps a section write one statement, evaluated on the row as locked, so it cannot lose a
-- concurrent write to another section or read a stale secret.
CREATE FUNCTION kalimera_keep_masked(new jsonb, old jsonb) RETURNS jsonb
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
