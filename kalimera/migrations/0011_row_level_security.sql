-- Defence in depth: row-level security on every tenant table, and a role for the app that can
-- read and write rows but not change the schema. See kalimera/db.py and the README section
-- "Row-level security".

-- The scope of the current transaction, as kalimera.db's transaction() sets it (SET LOCAL):
-- kalimera.tenant_id names the one tenant it acts for; kalimera.scope = 'system' lets it see
-- every tenant. Unset or empty, neither: no tenant rows.
CREATE FUNCTION kalimera_current_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('kalimera.tenant_id', true), '')::uuid $$;

CREATE FUNCTION kalimera_system_scope() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(current_setting('kalimera.scope', true) = 'system', false) $$;

-- Protect one tenant table: RLS enabled and forced (the owner too, unless a superuser), one
-- policy for every command. The settings are read in scalar subqueries, so each is evaluated
-- once per statement (an InitPlan), not once per row. A migration that adds a table with a
-- tenant_id column calls this for it (tests/foundation/test_row_level_security.py checks).
CREATE FUNCTION kalimera_protect_tenant_table(tab regclass) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tab);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tab);
    EXECUTE format(
        'CREATE POLICY kalimera_tenant_rows ON %s'
        ' USING ((SELECT kalimera_system_scope()) OR tenant_id = (SELECT kalimera_current_tenant()))'
        ' WITH CHECK ((SELECT kalimera_system_scope())'
        ' OR tenant_id = (SELECT kalimera_current_tenant()))',
        tab);
END;
$$;
REVOKE EXECUTE ON FUNCTION kalimera_protect_tenant_table(regclass) FROM PUBLIC;

-- Every table with a tenant_id column that exists now (those of the migrations before this one,
-- whichever they are): tokens, agents, contacts, conversations, recordings, processed recordings,
-- the four statistics tables, and the ingest rejections, whose tenant_id may be null (a path with
-- no valid tenant): such rows are the system scope's only.
SELECT kalimera_protect_tenant_table(c.oid::regclass)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
   AND EXISTS (SELECT 1 FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped);

-- The app's role. Roles belong to the whole server, not to this database: several databases
-- (test runs, environments) share it, and two of them may migrate at once, so the creation is
-- idempotent and tolerates losing that race. NOLOGIN: the app logs in as its own user and
-- switches to this role (SET ROLE, kalimera.db.create_pool).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'kalimera_app') THEN
        CREATE ROLE kalimera_app NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN
        NULL;  -- another database's migration created it meanwhile
    WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'the migrating user may not create roles: create kalimera_app (NOLOGIN)'
            ' first, as on Azure scripts/postgres_roles.py does, then migrate again';
END
$$;

-- The migrating user (the owner) may switch to it too, so one login can both migrate and run
-- the app. A superuser always may; a user that may not grant it is told what to do.
DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'kalimera_app', 'MEMBER') THEN
        EXECUTE format('GRANT kalimera_app TO %I', current_user);
    END IF;
EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN
    RAISE NOTICE 'grant kalimera_app to the app''s login role by hand: %', SQLERRM;
END
$$;

-- Rows, not schema: no CREATE on the schema (PostgreSQL 15's default, made explicit for servers
-- upgraded from older versions; only a warning where the migrating user does not own the
-- schema), no ownership, no TRUNCATE, no REFERENCES, no TRIGGER.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO kalimera_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO kalimera_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO kalimera_app;
-- The migration runner's bookkeeping is read-only to the app.
REVOKE INSERT, UPDATE, DELETE ON kalimera_schema_migrations FROM kalimera_app;
-- Tables and sequences later migrations create (as this same owner) get the same grants.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO kalimera_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO kalimera_app;
