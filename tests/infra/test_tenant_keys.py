"""Every tenant table's primary key and unique constraints lead with tenant_id.

That is what distributing the schema by tenant on Azure Cosmos DB for PostgreSQL (Citus) needs
(a unique constraint must include the distribution column; leading with it also keeps each
tenant's rows together in every index). Read from the catalog of the migrated test database, so
a new migration is checked the moment it exists."""

import psycopg

# Tables that are not distributed by tenant, each with the reason (infra/README.md, "Past one
# Postgres server"). A new entry needs a reason a reviewer accepts.
NOT_DISTRIBUTED = {
    # Looked up by token hash before the tenant is known: a Citus reference table.
    "kalimera_api_tokens": "reference table: looked up by hash before the tenant is known",
    "kalimera_schema_migrations": "bookkeeping of the migration runner, no tenant data",
    "kalimera_stats_watermark": "one row: how far the timer has rolled up; no tenant data",
    "kalimera_ingest_rejections": (
        "operator log of blobs refused before a tenant could be trusted (a path outside the"
        " naming contract has none): a reference-style table keyed by blob name"
    ),
    "kalimera_ingest_sweep": "one row: the sweep's watermark over the recordings; no tenant data",
    "kalimera_ingest_attempts": (
        "failed attempts per blob version, counted before the blob's path (and so its tenant)"
        " is trusted: keyed by blob name like the rejections"
    ),
}

KEYS = """
SELECT c.relname AS table_name, con.conname AS name, con.contype::text AS kind,
       (SELECT array_agg(a.attname::text ORDER BY k.ord)
          FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum) AS columns
  FROM pg_constraint con
  JOIN pg_class c ON c.oid = con.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND con.contype IN ('p', 'u')
UNION ALL
SELECT c.relname, i.relname, 'unique index',
       (SELECT array_agg(a.attname::text ORDER BY k.ord)
          FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
          LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum)
  FROM pg_index ix
  JOIN pg_class c ON c.oid = ix.indrelid
  JOIN pg_class i ON i.oid = ix.indexrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND ix.indisunique
   AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = ix.indexrelid)
"""

TABLES = """
SELECT c.relname AS table_name,
       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                  AND a.attname = 'tenant_id' AND NOT a.attisdropped) AS has_tenant
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
"""


def test_every_tenant_table_key_leads_with_tenant_id(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        tables = dict(conn.execute(TABLES).fetchall())
        keys = conn.execute(KEYS).fetchall()
    assert "kalimera_conversations" in tables  # the migrations ran
    without_tenant = sorted(t for t, has in tables.items() if not has and t not in NOT_DISTRIBUTED)
    assert without_tenant == [], (
        f"tables without tenant_id: {without_tenant}; add the column, or list the table in "
        "NOT_DISTRIBUTED with the reason it is not distributed by tenant"
    )
    bad = [
        f"{table}.{name} ({kind}) on {columns}"
        for table, name, kind, columns in keys
        if table not in NOT_DISTRIBUTED and (not columns or columns[0] != "tenant_id")
    ]
    assert bad == [], f"keys that do not lead with tenant_id: {bad}"


def test_every_tenant_table_has_a_primary_key(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        tables = dict(conn.execute(TABLES).fetchall())
        keys = conn.execute(KEYS).fetchall()
    with_pk = {table for table, _, kind, _ in keys if kind == "p"}
    missing = sorted(t for t in tables if t not in NOT_DISTRIBUTED and t not in with_pk)
    assert missing == [], f"tenant tables without a primary key: {missing}"
