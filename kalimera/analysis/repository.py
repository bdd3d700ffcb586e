"""SQL for analysis plans: one statement per intent, every one scoped by tenant. Never commits.

The agent is checked here, in SQL on ``kalimera_ai_agents`` (the analysis domain does not import
the agents domain): the table's foreign key makes a plan's agent exist, and these statements
tell an unknown agent (404) from an agent without a plan (the default plan).

Over 400 lines because it is the domain's one SQL module (plans, results, runs and their items):
each statement is short, and splitting them by table would split transactions the service
runs across them.
"""

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from kalimera.db import Conn
from kalimera.paging import Page, fetch_page

Row = dict[str, Any]


async def current(*, conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> Row | None:
    """The agent's newest plan (``version``, ``plan``, ``created_at``: all null when it has
    none); None when the tenant has no such agent."""
    cur = await conn.execute(
        "SELECT p.version, p.plan, p.created_at FROM kalimera_ai_agents a"
        " LEFT JOIN LATERAL (SELECT version, plan, created_at FROM kalimera_analysis_plans"
        "   WHERE tenant_id = a.tenant_id AND agent_id = a.id ORDER BY version DESC LIMIT 1) p"
        " ON true"
        " WHERE a.tenant_id = %(tenant_id)s AND a.id = %(agent_id)s",
        {"tenant_id": tenant_id, "agent_id": agent_id},
    )
    return await cur.fetchone()


async def lock_agent(*, conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> bool:
    """Lock the agent's row until the transaction ends, so that plan writes to one agent take
    turns (and a delete of the agent waits for them); False when the tenant has no such agent.

    ``FOR NO KEY UPDATE`` conflicts with itself, not with the foreign key's ``KEY SHARE``
    checks. It is its own statement so that, under READ COMMITTED, the next statement's
    snapshot already sees the plan the previous lock holder committed.
    """
    cur = await conn.execute(
        "SELECT 1 FROM kalimera_ai_agents WHERE tenant_id = %(tenant_id)s AND id = %(agent_id)s"
        " FOR NO KEY UPDATE",
        {"tenant_id": tenant_id, "agent_id": agent_id},
    )
    return await cur.fetchone() is not None


async def latest_version(*, conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> int:
    """The agent's newest plan version; 0 without one."""
    cur = await conn.execute(
        "SELECT coalesce(max(version), 0) AS version FROM kalimera_analysis_plans"
        " WHERE tenant_id = %(tenant_id)s AND agent_id = %(agent_id)s",
        {"tenant_id": tenant_id, "agent_id": agent_id},
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["version"])


async def insert(
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    version: int,
    plan: dict[str, Any],
) -> Row:
    """Store ``plan`` as ``version``; a version taken already raises ``UniqueViolation``."""
    cur = await conn.execute(
        "INSERT INTO kalimera_analysis_plans (tenant_id, agent_id, version, plan)"
        " VALUES (%(tenant_id)s, %(agent_id)s, %(version)s, %(plan)s)"
        " RETURNING version, plan, created_at",
        {"tenant_id": tenant_id, "agent_id": agent_id, "version": version, "plan": Jsonb(plan)},
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def agent_exists(*, conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM kalimera_ai_agents WHERE tenant_id = %(tenant_id)s AND id = %(agent_id)s",
        {"tenant_id": tenant_id, "agent_id": agent_id},
    )
    return await cur.fetchone() is not None


async def list_page(
    *, conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID, limit: int, offset: int
) -> Page:
    """The agent's plan versions, newest first (the primary key, read backwards)."""
    return await fetch_page(
        conn,
        table="kalimera_analysis_plans",
        columns="version, plan, created_at",
        where="tenant_id = %(tenant_id)s AND agent_id = %(agent_id)s",
        order_by="version DESC",
        params={"tenant_id": tenant_id, "agent_id": agent_id},
        limit=limit,
        offset=offset,
    )


# ---- the pipeline: conversations, transcripts, results ----------------------------------------


async def plan_version(
    *, conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID, version: int | None
) -> Row | None:
    """The agent's plan ``version`` (the current one when None): ``version`` and ``plan``
    (``plan`` null for version 0, the default plan); None when there is no such version."""
    cur = await conn.execute(
        "SELECT v.version, p.plan FROM (SELECT coalesce(%(version)s::int, (SELECT max(version)"
        "   FROM kalimera_analysis_plans WHERE tenant_id = %(tenant_id)s"
        "   AND agent_id = %(agent_id)s), 0) AS version) v"
        " LEFT JOIN kalimera_analysis_plans p ON p.tenant_id = %(tenant_id)s"
        "   AND p.agent_id = %(agent_id)s AND p.version = v.version"
        " WHERE v.version = 0 OR p.version IS NOT NULL",
        {"tenant_id": tenant_id, "agent_id": agent_id, "version": version},
    )
    return await cur.fetchone()


async def conversation(
    *, conn: Conn, tenant_id: uuid.UUID, conversation_id: uuid.UUID
) -> Row | None:
    """What the analysis needs of a conversation (None: no such conversation)."""
    cur = await conn.execute(
        "SELECT id, agent_id, status, started_at, transcript_version, analysis_status"
        " FROM kalimera_conversations WHERE tenant_id = %(tenant_id)s AND id = %(c)s",
        {"tenant_id": tenant_id, "c": conversation_id},
    )
    return await cur.fetchone()


async def transcript(*, conn: Conn, tenant_id: uuid.UUID, conversation_id: uuid.UUID) -> list[Row]:
    """The turns with words, in the order they were spoken (a turn starts ``duration`` before it
    was recorded): ``direction``, ``text`` and ``offset_seconds`` from the call's start."""
    cur = await conn.execute(
        "SELECT r.direction, r.transcript AS text,"
        " greatest(0, extract(epoch FROM (r.recorded_at - c.started_at))::float8"
        "   - coalesce(r.duration, 0)::float8) AS offset_seconds"
        " FROM kalimera_recordings r JOIN kalimera_conversations c"
        "   ON c.tenant_id = r.tenant_id AND c.id = r.conversation_id"
        " WHERE r.tenant_id = %(tenant_id)s AND r.conversation_id = %(c)s"
        "   AND btrim(coalesce(r.transcript, '')) <> ''"
        " ORDER BY r.recorded_at - make_interval(secs => coalesce(r.duration, 0)::float8),"
        "   r.seq, r.direction",
        {"tenant_id": tenant_id, "c": conversation_id},
    )
    return await cur.fetchall()


async def result(
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    plan_version: int,
    transcript_version: int,
) -> Row | None:
    """The stored result for this plan and transcript (``status``, ``analysis``), if any."""
    cur = await conn.execute(
        "SELECT status, analysis FROM kalimera_analysis_results WHERE tenant_id = %(tenant_id)s"
        " AND conversation_id = %(c)s AND plan_version = %(p)s AND transcript_version = %(t)s",
        {"tenant_id": tenant_id, "c": conversation_id, "p": plan_version, "t": transcript_version},
    )
    return await cur.fetchone()


async def store_result(
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    plan_version: int,
    transcript_version: int,
    status: str,
    analysis: dict[str, Any],
) -> Row:
    """Store a result; a 'done' one stored meanwhile (a concurrent delivery) wins and is
    returned instead (the first answer is the one kept)."""
    cur = await conn.execute(
        "INSERT INTO kalimera_analysis_results AS r"
        " (tenant_id, conversation_id, plan_version, transcript_version, status, analysis)"
        " VALUES (%(tenant_id)s, %(c)s, %(p)s, %(t)s, %(status)s, %(analysis)s)"
        " ON CONFLICT (tenant_id, conversation_id, plan_version, transcript_version)"
        " DO UPDATE SET status = EXCLUDED.status, analysis = EXCLUDED.analysis,"
        "   created_at = now() WHERE r.status <> 'done'"
        " RETURNING status, analysis",
        {
            "tenant_id": tenant_id,
            "c": conversation_id,
            "p": plan_version,
            "t": transcript_version,
            "status": status,
            "analysis": Jsonb(analysis),
        },
    )
    row = await cur.fetchone()
    if row is not None:
        return row
    kept = await result(
        conn=conn,
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        plan_version=plan_version,
        transcript_version=transcript_version,
    )
    assert kept is not None
    return kept


async def apply_result(
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    transcript_version: int,
    analysis: dict[str, Any],
    columns: dict[str, Any],
) -> bool:
    """Make a result the conversation's, unless its transcript moved on meanwhile (a stale
    answer never overwrites the request for a newer one). ``columns``: ``success_rubric``,
    ``success_result``, ``success_score``, ``analysis_cost`` and, when the answer has one,
    ``sentiment`` and ``sentiment_score``."""
    cur = await conn.execute(
        "UPDATE kalimera_conversations SET analysis = %(analysis)s,"
        " analysis_status = %(status)s, success_rubric = %(success_rubric)s,"
        " success_result = %(success_result)s, success_score = %(success_score)s,"
        " analysis_cost = %(analysis_cost)s,"
        " sentiment = coalesce(%(sentiment)s, sentiment),"
        " sentiment_score = CASE WHEN %(sentiment)s::text IS NULL THEN sentiment_score"
        "   ELSE %(sentiment_score)s END"
        " WHERE tenant_id = %(tenant_id)s AND id = %(c)s AND transcript_version = %(t)s",
        {
            "tenant_id": tenant_id,
            "c": conversation_id,
            "t": transcript_version,
            "analysis": Jsonb(analysis),
            "status": analysis["status"],
            "sentiment": None,
            "sentiment_score": None,
            **columns,
        },
    )
    return cur.rowcount == 1


async def request(*, conn: Conn, tenant_id: uuid.UUID, conversation_id: uuid.UUID) -> bool:
    """Ask for the conversation's analysis again (a re-run): the outbox row, and the
    conversation 'pending'; False when the tenant has no such conversation."""
    cur = await conn.execute(
        'WITH c AS (UPDATE kalimera_conversations SET analysis = \'{"status": "pending"}\','
        "   analysis_status = 'pending', success_rubric = NULL, success_result = NULL,"
        "   success_score = NULL, analysis_cost = NULL"
        "   WHERE tenant_id = %(tenant_id)s AND id = %(c)s RETURNING tenant_id, id)"
        " INSERT INTO kalimera_analysis_outbox (tenant_id, kind, conversation_id, reason)"
        " SELECT tenant_id, 'analyse', id, 'rerun' FROM c RETURNING id",
        {"tenant_id": tenant_id, "c": conversation_id},
    )
    return await cur.fetchone() is not None


# ---- bulk re-runs ------------------------------------------------------------------------------


async def create_run(
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    run_id: uuid.UUID,
    agent_id: uuid.UUID,
    plan_version: int,
    since: date,
    until: date,
) -> int:
    """Make the run and its items: the agent's conversations that ended in [since, until] (UTC
    days) and have no 'done' result for the plan version and their current transcript; a
    Failed call without a transcript is not one. One statement that reads the conversations
    and locks none of them. Returns the total; then the run's first 'feed' request."""
    await conn.execute(
        "INSERT INTO kalimera_analysis_runs"
        " (tenant_id, id, agent_id, plan_version, since, until, total)"
        " VALUES (%(tenant_id)s, %(run)s, %(agent)s, %(p)s, %(since)s, %(until)s, 0)",
        {
            "tenant_id": tenant_id,
            "run": run_id,
            "agent": agent_id,
            "p": plan_version,
            "since": since,
            "until": until,
        },
    )
    cur = await conn.execute(
        "INSERT INTO kalimera_analysis_run_items (tenant_id, run_id, conversation_id)"
        " SELECT c.tenant_id, %(run)s, c.id FROM kalimera_conversations c"
        " WHERE c.tenant_id = %(tenant_id)s AND c.agent_id = %(agent)s"
        # A call ends after it starts: the bound on started_at lets the agent's index serve.
        "   AND c.started_at < %(end)s AND c.ended_at >= %(start)s AND c.ended_at < %(end)s"
        "   AND c.status <> 'Active' AND NOT (c.status = 'Failed' AND c.transcript_version = 0)"
        "   AND NOT EXISTS (SELECT 1 FROM kalimera_analysis_results r"
        "     WHERE r.tenant_id = c.tenant_id AND r.conversation_id = c.id"
        "       AND r.plan_version = %(p)s AND r.transcript_version = c.transcript_version"
        "       AND r.status = 'done')",
        {
            "tenant_id": tenant_id,
            "run": run_id,
            "agent": agent_id,
            "p": plan_version,
            "start": datetime.combine(since, time.min, UTC),
            "end": datetime.combine(until + timedelta(days=1), time.min, UTC),
        },
    )
    total = cur.rowcount
    await conn.execute(
        "UPDATE kalimera_analysis_runs SET total = %(total)s"
        " WHERE tenant_id = %(tenant_id)s AND id = %(run)s",
        {"tenant_id": tenant_id, "run": run_id, "total": total},
    )
    if total:
        await add_feed(conn=conn, tenant_id=tenant_id, run_id=run_id)
    return total


async def add_feed(*, conn: Conn, tenant_id: uuid.UUID, run_id: uuid.UUID) -> None:
    await conn.execute(
        "INSERT INTO kalimera_analysis_outbox (tenant_id, kind, run_id, reason)"
        " VALUES (%(tenant_id)s, 'feed', %(run)s, 'run')",
        {"tenant_id": tenant_id, "run": run_id},
    )


async def feed(*, conn: Conn, tenant_id: uuid.UUID, run_id: uuid.UUID, limit: int) -> int:
    """Move the run's next ``limit`` waiting items to the outbox (they become 'queued'), unless
    the run was cancelled; the number moved. ``SKIP LOCKED``: two feeds of one run (a
    redelivered message) take different items."""
    cur = await conn.execute(
        "WITH next AS ("
        "   SELECT i.conversation_id FROM kalimera_analysis_run_items i"
        "   JOIN kalimera_analysis_runs r ON r.tenant_id = i.tenant_id AND r.id = i.run_id"
        "   WHERE i.tenant_id = %(tenant_id)s AND i.run_id = %(run)s AND i.state = 'waiting'"
        "     AND r.status = 'running'"
        "   LIMIT %(limit)s FOR UPDATE OF i SKIP LOCKED"
        " ), queued AS ("
        "   UPDATE kalimera_analysis_run_items i SET state = 'queued' FROM next"
        "   WHERE i.tenant_id = %(tenant_id)s AND i.run_id = %(run)s"
        "     AND i.conversation_id = next.conversation_id"
        "   RETURNING i.conversation_id"
        " )"
        " INSERT INTO kalimera_analysis_outbox (tenant_id, kind, conversation_id, run_id, reason)"
        " SELECT %(tenant_id)s, 'analyse', conversation_id, %(run)s, 'run' FROM queued",
        {"tenant_id": tenant_id, "run": run_id, "limit": limit},
    )
    return cur.rowcount


async def waiting(*, conn: Conn, tenant_id: uuid.UUID, run_id: uuid.UUID) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM kalimera_analysis_run_items WHERE tenant_id = %(tenant_id)s"
        " AND run_id = %(run)s AND state = 'waiting' LIMIT 1",
        {"tenant_id": tenant_id, "run": run_id},
    )
    return await cur.fetchone() is not None


async def run(*, conn: Conn, tenant_id: uuid.UUID, run_id: uuid.UUID) -> Row | None:
    """The run with its items counted by state (``counts``: {state: n})."""
    cur = await conn.execute(
        "SELECT r.id, r.agent_id, r.plan_version, r.since, r.until, r.status, r.total,"
        " r.created_at, coalesce((SELECT jsonb_object_agg(state, n) FROM (SELECT state,"
        "   count(*) AS n FROM kalimera_analysis_run_items WHERE tenant_id = r.tenant_id"
        "   AND run_id = r.id GROUP BY state) s), '{}') AS counts"
        " FROM kalimera_analysis_runs r WHERE r.tenant_id = %(tenant_id)s AND r.id = %(run)s",
        {"tenant_id": tenant_id, "run": run_id},
    )
    return await cur.fetchone()


async def cancel_run(*, conn: Conn, tenant_id: uuid.UUID, run_id: uuid.UUID) -> bool:
    """Cancel what has not started (waiting and queued items); False: no such run."""
    cur = await conn.execute(
        "UPDATE kalimera_analysis_runs SET status = 'cancelled',"
        " cancelled_at = coalesce(cancelled_at, now())"
        " WHERE tenant_id = %(tenant_id)s AND id = %(run)s RETURNING id",
        {"tenant_id": tenant_id, "run": run_id},
    )
    if await cur.fetchone() is None:
        return False
    await conn.execute(
        "UPDATE kalimera_analysis_run_items SET state = 'cancelled'"
        " WHERE tenant_id = %(tenant_id)s AND run_id = %(run)s AND state IN ('waiting', 'queued')",
        {"tenant_id": tenant_id, "run": run_id},
    )
    return True


async def start_item(
    *, conn: Conn, tenant_id: uuid.UUID, run_id: uuid.UUID, conversation_id: uuid.UUID
) -> Row | None:
    """Mark a run's item 'started' (from 'queued', or 'started' again on a redelivery after a
    crash) and return the run's ``plan_version``; None when it is cancelled, finished or gone.
    A cancel waits for this row, or this finds it cancelled: nothing started is cancelled."""
    cur = await conn.execute(
        "UPDATE kalimera_analysis_run_items i SET state = 'started'"
        " FROM kalimera_analysis_runs r"
        " WHERE r.tenant_id = i.tenant_id AND r.id = i.run_id"
        "   AND i.tenant_id = %(tenant_id)s AND i.run_id = %(run)s AND i.conversation_id = %(c)s"
        "   AND i.state IN ('waiting', 'queued', 'started')"
        " RETURNING r.plan_version",
        {"tenant_id": tenant_id, "run": run_id, "c": conversation_id},
    )
    return await cur.fetchone()


async def finish_item(
    *, conn: Conn, tenant_id: uuid.UUID, run_id: uuid.UUID, conversation_id: uuid.UUID, state: str
) -> None:
    await conn.execute(
        "UPDATE kalimera_analysis_run_items SET state = %(state)s"
        " WHERE tenant_id = %(tenant_id)s AND run_id = %(run)s AND conversation_id = %(c)s"
        "   AND state <> 'cancelled'",
        {"tenant_id": tenant_id, "run": run_id, "c": conversation_id, "state": state},
    )
