-- Analysis plans (docs/analysis.md): each PUT of an agent's plan adds a version, from 1; the
-- current plan is the highest. Version 0 (the default plan) is never stored. The primary key is
-- the unique (tenant, agent, version) that keeps two concurrent writes from making the same
-- version, and the index the current plan and the newest-first listing read backwards.
CREATE TABLE kalimera_analysis_plans (
    tenant_id uuid NOT NULL,
    agent_id uuid NOT NULL,
    version integer NOT NULL CHECK (version >= 1),
    plan jsonb NOT NULL CHECK (jsonb_typeof(plan) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, agent_id, version),
    -- The agent exists in the same tenant; deleting it removes its plans.
    FOREIGN KEY (tenant_id, agent_id) REFERENCES kalimera_ai_agents (tenant_id, id)
        ON DELETE CASCADE
);

SELECT kalimera_protect_tenant_table('kalimera_analysis_plans');
