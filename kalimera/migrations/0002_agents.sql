-- AI agents: fixed columns for what the API lists and searches, the thirteen configuration
-- sections in one JSONB document (section name -> object), a version for ETags.
CREATE TABLE kalimera_ai_agents (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    name varchar(255) NOT NULL CHECK (length(name) >= 1),
    description text,
    avatar text,
    profile_type text NOT NULL CHECK (profile_type IN ('inbound', 'outbound')),
    configuration jsonb NOT NULL DEFAULT '{}'::jsonb,
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
