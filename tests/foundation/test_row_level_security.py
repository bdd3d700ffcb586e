"""Defence in depth: Postgres row-level security on every tenant table, and an app role that can
read and write rows but not change the schema (quality-bars.md, "defence in depth").

The queries go through the app's own pool (``Services``), so they run as the app's role with the
scope ``transaction()`` sets, exactly as the routes, the triggers and the CLI do."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import APIRouter

from kalimera.app import create_app
from kalimera.db import Conn, act_for_tenant, transaction
from kalimera.deps import AgentsRead, ServicesDep
from kalimera.services import Services
from kalimera.settings import Settings
from tests.conftest import make_token, run_async
from tests.support.calls import with_services

APP_ROLE = "kalimera_app"

# Every table of the schema with a tenant_id column, read from the catalog: a table a new
# migration adds is checked the moment it exists.
TENANT_TABLES = """
SELECT c.relname AS name, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
       EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polcmd = '*'
                  AND p.polqual IS NOT NULL AND p.polwithcheck IS NOT NULL) AS has_policy
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
   AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                  AND a.attname = 'tenant_id' AND NOT a.attisdropped)
 ORDER BY 1
"""


def owner(settings: Settings) -> psycopg.Connection[Any]:
    """A connection as the configured user: the owner, who migrates (a superuser here)."""
    assert settings.database_url is not None
    return psycopg.connect(settings.database_url.get_secret_value(), autocommit=True)


def tenant_tables(settings: Settings) -> list[str]:
    with owner(settings) as conn:
        return [row[0] for row in conn.execute(TENANT_TABLES)]


async def rows(conn: Conn, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return list(await (await conn.execute(sql, params)).fetchall())


@pytest.fixture(scope="module")
def two_tenants(settings: Settings) -> tuple[uuid.UUID, uuid.UUID]:
    """Tenants A (3 contacts) and B (2 contacts), each with a token, an agent and its analysis
    plan, a conversation (whose trigger marks a statistics day dirty), a turn, its idempotency
    key and a rejected recording; plus a rejection without a tenant. Written as the owner, past
    the policies."""
    a, b = uuid.uuid4(), uuid.uuid4()
    with owner(settings) as conn:
        for tenant, contacts in ((a, 3), (b, 2)):
            make_token(settings, tenant)
            agent, conversation = uuid.uuid4(), uuid.uuid4()
            for n in range(contacts):
                conn.execute(
                    "INSERT INTO kalimera_contacts (tenant_id, first_name, last_name)"
                    " VALUES (%(t)s, 'Row', %(n)s)",
                    {"t": tenant, "n": f"Level {n}"},
                )
            conn.execute(
                "INSERT INTO kalimera_ai_agents (tenant_id, id, name, profile_type)"
                " VALUES (%(t)s, %(a)s, 'RLS', 'inbound')",
                {"t": tenant, "a": agent},
            )
            conn.execute(
                "INSERT INTO kalimera_analysis_plans (tenant_id, agent_id, version, plan)"
                " VALUES (%(t)s, %(a)s, 1, '{}')",
                {"t": tenant, "a": agent},
            )
            conn.execute(
                "INSERT INTO kalimera_conversations (tenant_id, id, agent_id, profile_type,"
                " started_at, last_activity_at) VALUES (%(t)s, %(c)s, %(a)s, 'inbound',"
                " now() - interval '3 days', now() - interval '3 days')",
                {"t": tenant, "c": conversation, "a": agent},
            )
            conn.execute(
                "INSERT INTO kalimera_recordings (tenant_id, conversation_id, seq, direction,"
                " blob_name, etag, blob_modified_at, duration, recorded_at) VALUES (%(t)s, %(c)s,"
                " 1, 'input', %(n)s, 'e', now(), 1, now())",
                {"t": tenant, "c": conversation, "n": f"{tenant}/x.wav"},
            )
            conn.execute(
                "INSERT INTO kalimera_processed_recordings (tenant_id, blob_name, etag)"
                " VALUES (%(t)s, %(n)s, 'e')",
                {"t": tenant, "n": f"{tenant}/x.wav"},
            )
        conn.execute(
            "INSERT INTO kalimera_ingest_rejections (blob_name, etag, tenant_id, reason)"
            " VALUES (%(a)s, 'e', %(ta)s, 'test'), (%(b)s, 'e', %(tb)s, 'test'),"
            " (%(n)s, 'e', NULL, 'test')",
            {"a": f"{a}/bad", "b": f"{b}/bad", "n": f"no-tenant-{a}", "ta": a, "tb": b},
        )
    return a, b


def test_every_tenant_table_has_row_level_security_forced_and_a_policy(
    settings: Settings,
) -> None:
    with owner(settings) as conn:
        tables = conn.execute(TENANT_TABLES).fetchall()
    assert "kalimera_contacts" in [t[0] for t in tables]  # the migrations ran
    bad = [name for name, enabled, forced, policy in tables if not (enabled and forced and policy)]
    assert bad == [], (
        f"tenant tables without row-level security (enabled, forced, one policy): {bad}."
        " In the migration that creates the table, add:"
        " SELECT kalimera_protect_tenant_table('<table>');"
        " (see kalimera/migrations/0011_row_level_security.sql)"
    )


def test_a_query_without_tenant_id_sees_only_the_current_tenants_rows(
    settings: Settings, two_tenants: tuple[uuid.UUID, uuid.UUID]
) -> None:
    a, b = two_tenants
    tables = tenant_tables(settings)

    async def work(services: Services) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with transaction(await services.db(), tenant_id=a) as conn:
            # What a query that forgot its WHERE tenant_id = ... would read.
            seen["contacts"] = (await rows(conn, "SELECT count(*) AS n FROM kalimera_contacts"))[0][
                "n"
            ]
            for table in tables:
                found = await rows(conn, f"SELECT DISTINCT tenant_id FROM {table}")  # noqa: S608
                seen[table] = {row["tenant_id"] for row in found}
        # B's contact looked up by its id alone, in A's transaction: not there.
        async with transaction(await services.db(), system=True) as conn:
            b_contact = (
                await rows(
                    conn, "SELECT id FROM kalimera_contacts WHERE tenant_id = %(b)s", {"b": b}
                )
            )[0]["id"]
        async with transaction(await services.db(), tenant_id=a) as conn:
            seen["b_by_id"] = await rows(
                conn, "SELECT * FROM kalimera_contacts WHERE id = %(id)s", {"id": b_contact}
            )
        return seen

    seen = with_services(settings, work)
    assert seen["contacts"] == 3
    assert seen["b_by_id"] == []
    others = {table: sorted(map(str, seen[table] - {a})) for table in tables if seen[table] - {a}}
    assert others == {}, f"tenant A's transaction saw other tenants' rows: {others}"
    assert a in seen["kalimera_contacts"]
    assert a in seen["kalimera_api_tokens"]


def test_with_no_tenant_set_a_transaction_sees_no_tenant_rows(
    settings: Settings, two_tenants: tuple[uuid.UUID, uuid.UUID]
) -> None:
    tables = tenant_tables(settings)

    async def counts(services: Services, **scope: Any) -> dict[str, int]:
        async with transaction(await services.db(), **scope) as conn:
            return {
                t: (await rows(conn, f"SELECT count(*) AS n FROM {t}"))[0]["n"]  # noqa: S608
                for t in tables
            }

    async def work(services: Services) -> tuple[dict[str, int], dict[str, int]]:
        return await counts(services), await counts(services, system=True)

    nobody, system = with_services(settings, work)
    assert nobody == dict.fromkeys(tables, 0)
    # The system scope sees them all (and the fixture wrote rows to most tables).
    assert {t for t, n in system.items() if n == 0} <= {
        "kalimera_stats_quarter",
        "kalimera_stats_hour",
        "kalimera_stats_rolled",
        "kalimera_stats_outcome_quarter",
        "kalimera_stats_outcome_day",
        "kalimera_stats_outcome_tail",
        "kalimera_idempotency_keys",
        "kalimera_upload_seqs",
        # Written only by analysis and search: empty when this file runs alone.
        "kalimera_analysis_outbox",
        "kalimera_analysis_results",
        "kalimera_analysis_runs",
        "kalimera_analysis_run_items",
        "kalimera_conversation_terms",
        # Written only by erasures and retention settings (tests/conversations/test_erasure.py).
        "kalimera_retention",
        "kalimera_erasure_pending",
        "kalimera_erasure_log",
        # Written only for a tenant with a webhook endpoint (tests/webhooks).
        "kalimera_webhook_endpoints",
        "kalimera_webhook_events",
        "kalimera_webhook_deliveries",
        "kalimera_webhook_outbox",
    }


def test_the_tenant_of_the_context_applies_and_explicit_arguments_win(
    settings: Settings, two_tenants: tuple[uuid.UUID, uuid.UUID]
) -> None:
    a, b = two_tenants
    query = "SELECT DISTINCT tenant_id FROM kalimera_contacts WHERE tenant_id IN (%(a)s, %(b)s)"

    async def seen(services: Services, **scope: Any) -> set[uuid.UUID]:
        async with transaction(await services.db(), **scope) as conn:
            return {r["tenant_id"] for r in await rows(conn, query, {"a": a, "b": b})}

    async def work(services: Services) -> list[set[uuid.UUID]]:
        nobody = await seen(services)
        act_for_tenant(b)  # what the auth dependency does for a request of B
        return [
            nobody,
            await seen(services),
            await seen(services, tenant_id=a),
            await seen(services, system=True),
        ]

    assert with_services(settings, work) == [set(), {b}, {a}, {a, b}]
    with pytest.raises(ValueError, match="not both"):
        with_services(settings, lambda services: seen(services, tenant_id=a, system=True))


def test_rejections_without_a_tenant_are_the_systems_only(
    settings: Settings, two_tenants: tuple[uuid.UUID, uuid.UUID]
) -> None:
    a, _ = two_tenants
    query = "SELECT count(*) AS n FROM kalimera_ingest_rejections WHERE blob_name = %(n)s"

    async def work(services: Services) -> list[int]:
        found = []
        for scope in ({"tenant_id": a}, {"system": True}):
            async with transaction(await services.db(), **scope) as conn:
                found.append((await rows(conn, query, {"n": f"no-tenant-{a}"}))[0]["n"])
        return found

    assert with_services(settings, work) == [0, 1]


def test_writing_another_tenants_rows_is_refused(
    settings: Settings, two_tenants: tuple[uuid.UUID, uuid.UUID]
) -> None:
    a, b = two_tenants

    async def insert_for_b(services: Services) -> None:
        async with transaction(await services.db(), tenant_id=a) as conn:
            await conn.execute(
                "INSERT INTO kalimera_contacts (tenant_id, first_name, last_name)"
                " VALUES (%(b)s, 'Planted', 'Row')",
                {"b": b},
            )

    async def move_to_b(services: Services) -> None:
        async with transaction(await services.db(), tenant_id=a) as conn:
            await conn.execute(
                "UPDATE kalimera_contacts SET tenant_id = %(b)s WHERE tenant_id = %(a)s",
                {"a": a, "b": b},
            )

    async def no_tenant_insert(services: Services) -> None:
        async with transaction(await services.db()) as conn:
            await conn.execute(
                "INSERT INTO kalimera_contacts (tenant_id, first_name, last_name)"
                " VALUES (%(a)s, 'Planted', 'Row')",
                {"a": a},
            )

    for attempt in (insert_for_b, move_to_b, no_tenant_insert):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            with_services(settings, attempt)

    async def touch_b(services: Services) -> list[int]:
        async with transaction(await services.db(), tenant_id=a) as conn:
            updated = await conn.execute(
                "UPDATE kalimera_contacts SET first_name = 'Changed' WHERE tenant_id = %(b)s",
                {"b": b},
            )
            deleted = await conn.execute(
                "DELETE FROM kalimera_contacts WHERE tenant_id = %(b)s", {"b": b}
            )
            return [updated.rowcount, deleted.rowcount]

    assert with_services(settings, touch_b) == [0, 0]
    with owner(settings) as conn:
        names = conn.execute(
            "SELECT tenant_id, first_name FROM kalimera_contacts WHERE tenant_id IN (%(a)s, %(b)s)",
            {"a": a, "b": b},
        ).fetchall()
    assert sorted(names) == sorted([(a, "Row")] * 3 + [(b, "Row")] * 2)


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE kalimera_planted (id int)",
        "ALTER TABLE kalimera_contacts ADD COLUMN planted int",
        "ALTER TABLE kalimera_contacts DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE kalimera_contacts NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY kalimera_tenant_rows ON kalimera_contacts",
        "DROP TABLE kalimera_contacts",
        "TRUNCATE kalimera_contacts",
        "CREATE INDEX kalimera_planted ON kalimera_contacts (email)",
        "INSERT INTO kalimera_schema_migrations (version) VALUES ('9999_planted')",
        "SELECT kalimera_protect_tenant_table('kalimera_contacts')",
    ],
)
def test_the_app_role_cannot_change_the_schema(settings: Settings, statement: str) -> None:
    async def work(services: Services) -> None:
        async with transaction(await services.db(), system=True) as conn:
            await conn.execute(statement)  # type: ignore[arg-type]

    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with_services(settings, work)


def test_the_app_runs_as_a_plain_role_and_migrations_as_the_owner(settings: Settings) -> None:
    async def work(services: Services) -> dict[str, Any]:
        async with transaction(await services.db()) as conn:
            return (
                await rows(
                    conn,
                    "SELECT current_user AS role, r.rolsuper, r.rolbypassrls, r.rolcanlogin"
                    " FROM pg_roles r WHERE r.rolname = current_user",
                )
            )[0]

    app = with_services(settings, work)
    assert app == {
        "role": APP_ROLE,
        "rolsuper": False,
        "rolbypassrls": False,
        "rolcanlogin": False,
    }
    with owner(settings) as conn:
        me = conn.execute("SELECT current_user").fetchone()
        owners = dict(
            conn.execute(
                "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'S', 'v', 'i')"
            ).fetchall()
        )
    assert me is not None
    assert "kalimera_contacts" in owners
    assert set(owners.values()) == {me[0]}, "every object is the migrating user's"


def test_an_authenticated_request_acts_for_its_tenant_only(
    settings: Settings, two_tenants: tuple[uuid.UUID, uuid.UUID]
) -> None:
    """The auth dependency sets the request's tenant: a route's query without tenant_id (here
    on a probe route) sees the caller's rows and no one else's."""
    a, b = two_tenants
    probe = APIRouter()

    @probe.get("/kalimera/_rls-probe")
    async def rls_probe(principal: AgentsRead, services: ServicesDep) -> dict[str, Any]:
        async with transaction(await services.db()) as conn:
            found = await rows(conn, "SELECT DISTINCT tenant_id FROM kalimera_contacts")
        return {"tenants": sorted(str(r["tenant_id"]) for r in found)}

    @asynccontextmanager
    async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
        ):
            yield c

    tokens = [make_token(settings, tenant) for tenant in (a, b)]

    async def work() -> list[Any]:
        app = create_app(settings)
        app.include_router(probe)
        answers = []
        async with client(app) as c:
            for token in tokens:
                answer = await c.get(
                    "/kalimera/_rls-probe", headers={"Authorization": f"Bearer {token}"}
                )
                answers.append(answer.json())
        return answers

    assert run_async(work()) == [{"tenants": [str(a)]}, {"tenants": [str(b)]}]
