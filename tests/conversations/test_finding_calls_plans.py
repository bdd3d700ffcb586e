"""Finding calls stays on indexes in a large tenant (docs/conversations.md, "Finding calls").

The listing's own statements (``repository.listing`` through ``paging.statements``, the terms from
``repository.search_terms``) are explained as the app role under row-level security, acting for
one tenant with many conversations among other tenants' ones: none may read
kalimera_conversations, kalimera_recordings or kalimera_conversation_terms with a Seq Scan (a
scan of every row: the tenant-wide scan the indexes exist to avoid).

The data is made in a database of its own, with plain SQL: conversations with outcomes and
analyses, turns with English and Greek words (drawn from a pool of texts, the common words far
more often than the rare ones), and the terms index built as migration 0019's function builds
it, checked against that function on a sample. ``KALIMERA_SEARCH_PLAN_CALLS`` sets the tenant's
size (default 20,000, so the test stays under a minute on a busy machine; at 200,000 the plans
are the same, see docs/conversations.md)."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from kalimera import paging
from kalimera.conversations import repository
from kalimera.dev.localstack import drop_database, ensure_database
from kalimera.migrate import migrate
from tests.conftest import run_async

pytestmark = pytest.mark.slow

CALLS = int(os.environ.get("KALIMERA_SEARCH_PLAN_CALLS", "20000"))
OTHERS = 20  # other tenants, with as many calls between them
TABLES = {"kalimera_conversations", "kalimera_recordings", "kalimera_conversation_terms"}

VOCABULARY = [
    "the",
    "and",
    "to",
    "you",
    "a",
    "I",
    "is",
    "for",
    "booking",
    "table",
    "please",
    "thank",
    "yes",
    "no",
    "call",
    "order",
    "refund",
    "invoice",
    "delivery",
    "tomorrow",
    "και",
    "το",
    "να",
    "θα",
    "για",
    "με",
    "ευχαριστώ",
    "Καλημέρα",
    "κράτηση",
    "τραπέζι",
    "παρακαλώ",
    "ναι",
    "όχι",
    "αύριο",
    "παραγγελία",
    "επιστροφή",
    "τιμολόγιο",
    "ΟΔΟΣ",
    "Αθήνα",
    "ώρα",
]

GENERATE = """
-- A bulk load: no triggers (the terms are built below, in one go).
SET session_replication_role = replica;
SET LOCAL work_mem = '128MB';
SET LOCAL jit = off;
CREATE TEMP TABLE pool AS
WITH vocab AS (
    SELECT %(vocabulary)s::text[] || array(
        SELECT CASE WHEN g %% 2 = 0 THEN 'word' || g ELSE 'λέξη' || g END
        FROM generate_series(1, 4960) g) AS w)
SELECT s AS n, string_agg(vocab.w[1 + floor(power(random(), 3) * 5000)::int], ' ') AS text
FROM vocab, generate_series(0, 2999) s, generate_series(1, 12) k GROUP BY s;
CREATE TEMP TABLE pool_terms AS
SELECT p.text, w.term, w.hits FROM pool p, kalimera_search_words(p.text) w;
CREATE INDEX ON pool_terms (text);
INSERT INTO kalimera_conversations (tenant_id, id, agent_id, profile_type, started_at,
    last_activity_at, status, duration, sentiment, ended_reason, success_rubric, success_result,
    analysis, analysis_status)
SELECT t.tenant, gen_random_uuid(), t.agent, 'inbound',
       now() - make_interval(secs => g * 37), now() - make_interval(secs => g * 37),
       'Completed', round((random() * 900)::numeric, 3),
       (ARRAY['positive', 'neutral', 'negative', 'unknown'])[1 + g %% 4],
       (ARRAY['customer-ended-call', 'agent-ended-call', 'silence-timeout',
              'max-duration-reached', 'transferred', 'voicemail', 'no-answer', 'busy',
              'failed-to-connect', 'error', 'unknown', 'idle-timeout'])[1 + g %% 12],
       CASE WHEN g %% 2 = 0 THEN 'pass_fail' END,
       CASE WHEN g %% 2 = 0 THEN (ARRAY['pass', 'fail'])[1 + g %% 3 %% 2] END,
       CASE WHEN g %% 2 = 0 THEN jsonb_build_object('status', 'done', 'summary', p.text,
            'data', jsonb_build_object('party_size', g %% 9,
                'intent', (ARRAY['booking', 'complaint', 'question'])[1 + g %% 3],
                'callback', g %% 5 = 0)) END,
       CASE WHEN g %% 2 = 0 THEN 'done' END
FROM (SELECT %(tenant)s::uuid AS tenant, %(agent)s::uuid AS agent) t,
     generate_series(1, %(calls)s) g JOIN pool p ON p.n = (g * 7919) %% 3000;
INSERT INTO kalimera_conversations (tenant_id, id, agent_id, profile_type, started_at,
    last_activity_at, status, duration, sentiment, ended_reason)
SELECT t[1 + g %% %(others)s], gen_random_uuid(), gen_random_uuid(), 'inbound',
       now() - make_interval(secs => g * 11), now() - make_interval(secs => g * 11),
       'Completed', round((random() * 900)::numeric, 3),
       (ARRAY['positive', 'neutral', 'negative', 'unknown'])[1 + g %% 4],
       (ARRAY['customer-ended-call', 'agent-ended-call', 'voicemail'])[1 + g %% 3]
FROM (SELECT array(SELECT gen_random_uuid() FROM generate_series(1, %(others)s)) AS t) o,
     generate_series(1, %(calls)s) g;
-- Six calls in ten have two turns with words, the tenant's and the others' alike.
INSERT INTO kalimera_recordings (tenant_id, conversation_id, seq, direction, blob_name, etag,
    blob_modified_at, duration, transcript, recorded_at)
SELECT c.tenant_id, c.id, 1, d.direction, 'b', 'e', now(), 1, p.text, c.started_at
FROM kalimera_conversations c CROSS JOIN (VALUES ('input', 1), ('output', 2)) d(direction, k)
JOIN pool p ON p.n = abs(hashtext(c.id::text) + d.k) %% 3000
WHERE abs(hashtext(c.id::text)) %% 10 < 6;
-- In the primary key's order: appended to the index, not scattered over it.
INSERT INTO kalimera_conversation_terms (tenant_id, term, conversation_id, hits)
SELECT tenant_id, term, id, sum(hits) FROM (
    SELECT r.tenant_id, t.term, r.conversation_id AS id, t.hits
    FROM kalimera_recordings r JOIN pool_terms t ON t.text = r.transcript
    UNION ALL
    SELECT c.tenant_id, t.term, c.id, t.hits
    FROM kalimera_conversations c JOIN pool_terms t ON t.text = c.analysis->>'summary'
    UNION ALL
    SELECT c.tenant_id, '=' || d.key || '=' || kalimera_search_value(d.value), c.id, 0
    FROM kalimera_conversations c, jsonb_each(c.analysis->'data') d
    WHERE c.analysis IS NOT NULL
) AS x GROUP BY tenant_id, term, id
ORDER BY tenant_id, term, id;
SET session_replication_role = origin;
"""

# A sample's terms, as the load made them and as the migration's function makes them.
SAMPLE_TERMS = """
SELECT conversation_id, term, hits FROM kalimera_conversation_terms
WHERE tenant_id = %(tenant)s AND conversation_id = ANY(%(ids)s) ORDER BY 1, 2
"""


@pytest.fixture(scope="module")
def large(database_url: str) -> Iterator[tuple[str, uuid.UUID]]:
    """A database of its own holding the large tenant (its id returned) among others, reached
    directly: it is migrated, and the plans are read in sessions set up as the app role."""
    params = psycopg.conninfo.conninfo_to_dict(database_url)
    params["dbname"] = f"kalimera_plans_{secrets.token_hex(4)}"
    url = psycopg.conninfo.make_conninfo(**params)  # type: ignore[arg-type]
    ensure_database(url)
    try:
        migrate(url)
        tenant = uuid.uuid4()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET kalimera.scope = 'system'")
            values = {
                "tenant": tenant,
                "agent": uuid.uuid4(),
                "calls": CALLS,
                "others": OTHERS,
                "vocabulary": VOCABULARY,
            }
            with conn.transaction():
                for statement in GENERATE.split(";\n"):
                    if statement.strip():
                        conn.execute(statement, values)  # type: ignore[arg-type]
            sample = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM kalimera_conversations WHERE tenant_id = %(t)s"
                    " ORDER BY id LIMIT 200",
                    {"t": tenant},
                )
            ]
            loaded = conn.execute(SAMPLE_TERMS, {"tenant": tenant, "ids": sample}).fetchall()
            conn.execute(
                "SELECT kalimera_search_reindex("
                "array_fill(%(t)s::uuid, ARRAY[cardinality(%(ids)s::uuid[])]), %(ids)s)",
                {"t": tenant, "ids": sample},
            )
            rebuilt = conn.execute(SAMPLE_TERMS, {"tenant": tenant, "ids": sample}).fetchall()
            assert loaded == rebuilt
            assert len(loaded) > 1000
            for table in sorted(TABLES):
                conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
        yield url, tenant
    finally:
        drop_database(url)


def _scans(plan: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if "Relation Name" in plan:
        yield plan["Node Type"], plan["Relation Name"]
    for child in plan.get("Plans", []):
        yield from _scans(child)


CASES: dict[str, dict[str, Any]] = {
    "no filter": {},
    "success": {"success": "pass"},
    "ended_reason": {"ended_reason": "voicemail"},
    "sentiment": {"sentiment": "negative"},
    "min_duration": {"min_duration": 600},
    "max_duration": {"max_duration": 30},
    "duration range": {"min_duration": 100, "max_duration": 120},
    "q, a rare word": {"q": "λεξη4001"},
    "q, the commonest word": {"q": "the"},
    "q, two Greek words": {"q": "Καλημέρα κράτηση"},
    "data.intent": {"data": {"intent": '"booking"'}},
    "data.party_size and q": {"q": "refund", "data": {"party_size": "4"}},
    "q and success": {"q": "invoice", "success": "fail"},
    "success and sentiment": {"success": "pass", "sentiment": "positive"},
    "sentiment and min_duration": {"sentiment": "positive", "min_duration": 300},
}


async def _plans(url: str, tenant: uuid.UUID, case: dict[str, Any]) -> list[tuple[str, str]]:
    """Every scan of the listing's page and count statements, explained as the app role."""
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row
    ) as conn:
        await conn.execute("SET ROLE kalimera_app")  # as kalimera.db's pool does
        async with conn.transaction():
            await conn.execute(
                "SELECT set_config('kalimera.tenant_id', %(t)s, true)", {"t": str(tenant)}
            )
            terms: list[str] = []
            if "q" in case or "data" in case:
                words, data = await repository.search_terms(
                    conn=conn, q=case.get("q"), data=case.get("data", {})
                )
                assert words or data
                terms = words + data
            minimum, maximum = case.get("min_duration"), case.get("max_duration")
            listing = repository.listing(
                tenant_id=tenant,
                success=case.get("success"),
                ended_reason=case.get("ended_reason"),
                sentiment=case.get("sentiment"),
                min_ms=None if minimum is None else minimum * 1000,
                max_ms=None if maximum is None else maximum * 1000,
                terms=terms,
            )
            statements = paging.statements(
                table=listing.table,
                columns=repository.CONVERSATION_COLUMNS,
                where=listing.where,
                order_by=listing.order_by,
            )
            scans = []
            for statement in statements:
                cur = await conn.execute(
                    sql.SQL("EXPLAIN (FORMAT JSON) {}").format(statement),
                    {**listing.params, "limit": 10, "offset": 0},
                )
                row = await cur.fetchone()
                assert row is not None
                scans += list(_scans(row["QUERY PLAN"][0]["Plan"]))
            return scans


@pytest.mark.parametrize("name", list(CASES))
def test_the_listing_never_scans_the_tenant(large: tuple[str, uuid.UUID], name: str) -> None:
    url, tenant = large
    scans = run_async(_plans(url, tenant, CASES[name]))
    assert scans, name
    assert [s for s in scans if s[0] == "Seq Scan" and s[1] in TABLES] == [], scans
