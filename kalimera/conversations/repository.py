"""SQL for conversations, recordings and ingestion bookkeeping. Never commits: the caller's
``transaction`` is the unit of work.

Over 400 lines, one statement per intent: the listing's filters and word search, the ingestion's
claims and recomputation, and the API's reads share the conversation row's columns. The next
split is the listing's SQL into a module of its own (noted in the session's closing note).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

from psycopg import sql
from psycopg.rows import DictRow

from kalimera.conversations import sentiment
from kalimera.db import Conn
from kalimera.paging import Page, fetch_page

CONVERSATION_COLUMNS = """
    id, agent_id, title, status, profile_type, instance_id, from_number, to_number, language,
    duration, input_file_url, output_file_url, conversation_url, started_at, ended_at,
    last_activity_at, sentiment, sentiment_score, turn_count, ended_reason, cost,
    latency_p50_ms, latency_p90_ms, latency_max_ms, latency_turns, created_at, updated_at,
    analysis, analysis_cost, contact_id,
    kalimera_conversations.xmin::text::bigint AS row_version
"""


async def agent_profile_type(
    *, conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID
) -> str | None:
    """The agent's profile type, or None when the tenant has no such agent."""
    cur = await conn.execute(
        "SELECT profile_type FROM kalimera_ai_agents"
        " WHERE tenant_id = %(tenant_id)s AND id = %(a)s",
        {"tenant_id": tenant_id, "a": agent_id},
    )
    row = await cur.fetchone()
    return None if row is None else str(row["profile_type"])


async def share_contact_numbers(*, conn: Conn, tenant_id: uuid.UUID) -> None:
    """Hold the tenant's contact-numbers lock, shared, to the commit: taken before a call looks
    its contact up, and before its conversation row is locked (migration 0025 says why)."""
    await conn.execute(
        "SELECT kalimera_lock_contact_numbers(%(tenant_id)s, false)", {"tenant_id": tenant_id}
    )


async def contact_exists(*, conn: Conn, tenant_id: uuid.UUID, contact_id: int) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM kalimera_contacts WHERE tenant_id = %(tenant_id)s AND id = %(id)s",
        {"tenant_id": tenant_id, "id": contact_id},
    )
    return await cur.fetchone() is not None


async def insert_conversation(*, conn: Conn, tenant_id: uuid.UUID, **values: Any) -> DictRow | None:
    """Insert a conversation unless one with its id exists (then None: the caller decides),
    with the contact whose number is its ``contact_number``, if any."""
    cur = await conn.execute(
        f"""
        INSERT INTO kalimera_conversations (
            tenant_id, id, agent_id, title, profile_type, instance_id, from_number, to_number,
            language, started_at, last_activity_at, contact_number, contact_id)
        VALUES (
            %(tenant_id)s, %(id)s, %(agent_id)s, %(title)s, %(profile_type)s, %(instance_id)s,
            %(from_number)s, %(to_number)s, %(language)s, %(started_at)s, %(started_at)s,
            %(contact_number)s::text, (SELECT id FROM kalimera_contacts
                                 WHERE tenant_id = %(tenant_id)s
                                 AND contact_no = %(contact_number)s::text))
        ON CONFLICT (tenant_id, id) DO NOTHING
        RETURNING {CONVERSATION_COLUMNS}
        """,  # noqa: S608 - a fixed column list, no values
        {
            "tenant_id": tenant_id,
            "title": "",
            "instance_id": None,
            "from_number": None,
            "to_number": None,
            "language": None,
            "contact_number": None,
            **values,
        },
    )
    return await cur.fetchone()


async def get_conversation(
    *, conn: Conn, tenant_id: uuid.UUID, conversation_id: uuid.UUID, lock: bool = False
) -> DictRow | None:
    cur = await conn.execute(
        f"SELECT {CONVERSATION_COLUMNS} FROM kalimera_conversations"  # noqa: S608
        " WHERE tenant_id = %(tenant_id)s AND id = %(c)s" + (" FOR UPDATE" if lock else ""),
        {"tenant_id": tenant_id, "c": conversation_id},
    )
    return await cur.fetchone()


async def update_conversation(
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    status: str | None,
    ended_at: datetime | None,
    title: str | None,
    language: str | None,
    ended_reason: str | None,
    cost: str | None,
) -> DictRow | None:
    """Apply a PATCH: a status change sets ``ended_at`` (the given one, else now); a ``cost``
    (JSON) replaces the stored one whole."""
    cur = await conn.execute(
        f"""
        UPDATE kalimera_conversations SET
            status = coalesce(%(status)s, status),
            ended_at = CASE
                WHEN %(ended_at)s::timestamptz IS NOT NULL THEN %(ended_at)s::timestamptz
                WHEN %(status)s::text IS NOT NULL AND %(status)s::text <> status THEN now()
                ELSE ended_at END,
            title = coalesce(%(title)s, title),
            language = coalesce(%(language)s, language),
            ended_reason = coalesce(%(ended_reason)s, ended_reason),
            cost = coalesce(%(cost)s::jsonb, cost)
        WHERE tenant_id = %(tenant_id)s AND id = %(c)s
        RETURNING {CONVERSATION_COLUMNS}
        """,  # noqa: S608
        {
            "tenant_id": tenant_id,
            "c": conversation_id,
            "status": status,
            "ended_at": ended_at,
            "title": title,
            "language": language,
            "ended_reason": ended_reason,
            "cost": cost,
        },
    )
    return await cur.fetchone()


@dataclass(frozen=True, slots=True)
class Listing:
    """What the conversation listing selects: constant SQL and its named parameters."""

    table: sql.Composable
    where: LiteralString
    order_by: LiteralString
    params: dict[str, Any]


_FILTERED = """
    tenant_id = %(tenant_id)s
    AND (%(agent)s::uuid IS NULL OR agent_id = %(agent)s::uuid)
    AND (%(status)s::text IS NULL OR status = %(status)s::text)
    AND (%(profile)s::text IS NULL OR profile_type = %(profile)s::text)
    AND (%(start)s::timestamptz IS NULL OR started_at >= %(start)s::timestamptz)
    AND (%(end)s::timestamptz IS NULL OR started_at < %(end)s::timestamptz)
    AND (%(success)s::text IS NULL OR success_result = %(success)s::text)
    AND (%(ended_reason)s::text IS NULL OR ended_reason = %(ended_reason)s::text)
    AND (%(sentiment)s::text IS NULL OR sentiment = %(sentiment)s::text)
    AND (%(min_ms)s::bigint IS NULL OR duration_ms >= %(min_ms)s::bigint)
    AND (%(max_ms)s::bigint IS NULL OR duration_ms <= %(max_ms)s::bigint)
    AND (%(contact)s::bigint IS NULL OR contact_id = %(contact)s::bigint)
"""

# The conversations holding every one of the terms (migration 0019), ranked by how often the
# words occur. Only equality of uuid and text reaches the index: leakproof, so usable under RLS.
_MATCHED = sql.SQL("""
    kalimera_conversations JOIN (
        SELECT conversation_id, sum(hits) AS rank FROM kalimera_conversation_terms
        WHERE tenant_id = %(tenant_id)s AND term = ANY(%(terms)s::text[])
        GROUP BY conversation_id HAVING count(*) = cardinality(%(terms)s::text[])
    ) AS matched ON id = matched.conversation_id
""")


def listing(
    *,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID | None = None,
    status: str | None = None,
    profile_type: str | None = None,
    start: datetime | None = None,
    end_before: datetime | None = None,
    success: str | None = None,
    ended_reason: str | None = None,
    sentiment: str | None = None,
    min_ms: int | None = None,
    max_ms: int | None = None,
    contact_id: int | None = None,
    terms: list[str] | None = None,
) -> Listing:
    """The listing's SQL: newest first; with ``terms`` (``search_terms``), only the
    conversations that hold them all, the most hits of the words first, then newest first. The
    order is total (the id last), so pages of it neither repeat nor skip a row."""
    params = {
        "tenant_id": tenant_id,
        "agent": agent_id,
        "status": status,
        "profile": profile_type,
        "start": start,
        "end": end_before,
        "success": success,
        "ended_reason": ended_reason,
        "sentiment": sentiment,
        "min_ms": min_ms,
        "max_ms": max_ms,
        "contact": contact_id,
    }
    if not terms:
        return Listing(
            sql.Identifier("kalimera_conversations"),
            _FILTERED,
            "started_at DESC, id DESC",
            params,
        )
    return Listing(
        _MATCHED,
        _FILTERED,
        "matched.rank DESC, started_at DESC, id DESC",
        {**params, "terms": terms},
    )


async def list_conversations(*, conn: Conn, listing: Listing, limit: int, offset: int) -> Page:
    """One page of ``listing``, and the total matching (one indexed query each)."""
    return await fetch_page(
        conn,
        table=listing.table,
        columns=CONVERSATION_COLUMNS,
        where=listing.where,
        order_by=listing.order_by,
        params=listing.params,
        limit=limit,
        offset=offset,
    )


async def search_terms(
    *, conn: Conn, q: str | None, data: dict[str, str]
) -> tuple[list[str], list[str]]:
    """The terms the index holds for the words of ``q`` and for the data's fields and values
    (``data``: field name → the value as JSON text), folded as the index folds them
    (``kalimera_search_words``, ``kalimera_search_value``). Words repeated in ``q`` count
    once."""
    cur = await conn.execute(
        "SELECT array(SELECT DISTINCT term FROM kalimera_search_words(%(q)s::text)) AS words,"
        " array(SELECT '=' || d.field || '=' || kalimera_search_value(d.value::jsonb)"
        "       FROM unnest(%(fields)s::text[], %(values)s::text[]) AS d(field, value)) AS data",
        {"q": q, "fields": list(data), "values": list(data.values())},
    )
    row = await cur.fetchone()
    assert row is not None
    return list(row["words"]), list(row["data"])


async def reindex_words(
    *, conn: Conn, after: tuple[uuid.UUID, uuid.UUID] | None, limit: int
) -> tuple[tuple[uuid.UUID, uuid.UUID] | None, int]:
    """Rebuild the search terms (migration 0019) of the next ``limit`` conversations after
    ``after`` in (tenant, id) order, each locked as the ingestion and the analysis lock it, so a
    turn or an analysis written meanwhile waits and is counted once. The last one's key (None
    when there were none) and how many. The caller's transaction is one batch."""
    cur = await conn.execute(
        """
        WITH batch AS (
            SELECT tenant_id, id FROM kalimera_conversations
            WHERE %(tenant)s::uuid IS NULL OR (tenant_id, id) > (%(tenant)s::uuid, %(id)s::uuid)
            ORDER BY tenant_id, id LIMIT %(limit)s FOR UPDATE
        ), done AS (
            SELECT kalimera_search_reindex(array_agg(tenant_id), array_agg(id)) FROM batch
        )
        SELECT last.tenant_id, last.id, (SELECT count(*) FROM batch) AS n
        FROM done, LATERAL (
            SELECT tenant_id, id FROM batch ORDER BY tenant_id DESC, id DESC LIMIT 1) AS last
        """,
        {
            "tenant": after[0] if after else None,
            "id": after[1] if after else None,
            "limit": limit,
        },
    )
    row = await cur.fetchone()
    if row is None:
        return None, 0
    return (row["tenant_id"], row["id"]), int(row["n"])


# ---- ingestion -------------------------------------------------------------------------------


async def take_seq(
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    direction: str,
    seq: int | None,
    highest_stored: int,
) -> int:
    """Record a given seq, or allocate the next one: above both the highest stored in Blob
    Storage and the last handed out. One upsert, so concurrent uploads queue on the row."""
    params = {"tenant_id": tenant_id, "c": conversation_id, "d": direction}
    if seq is not None:
        await conn.execute(
            "INSERT INTO kalimera_upload_seqs AS s"
            " (tenant_id, conversation_id, direction, last_seq)"
            " VALUES (%(tenant_id)s, %(c)s, %(d)s, %(seq)s)"
            " ON CONFLICT (tenant_id, conversation_id, direction) DO UPDATE"
            " SET last_seq = greatest(s.last_seq, EXCLUDED.last_seq), updated_at = now()",
            {**params, "seq": seq},
        )
        return seq
    cur = await conn.execute(
        "INSERT INTO kalimera_upload_seqs AS s (tenant_id, conversation_id, direction, last_seq)"
        " VALUES (%(tenant_id)s, %(c)s, %(d)s, %(highest)s + 1)"
        " ON CONFLICT (tenant_id, conversation_id, direction) DO UPDATE"
        " SET last_seq = greatest(s.last_seq, %(highest)s) + 1, updated_at = now()"
        " RETURNING last_seq",
        {**params, "highest": highest_stored},
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["last_seq"])


async def release_seq(
    *, conn: Conn, tenant_id: uuid.UUID, conversation_id: uuid.UUID, direction: str, seq: int
) -> None:
    await conn.execute(
        "UPDATE kalimera_upload_seqs SET last_seq = last_seq - 1, updated_at = now()"
        " WHERE tenant_id = %(tenant_id)s AND conversation_id = %(c)s AND direction = %(d)s"
        " AND last_seq = %(seq)s",
        {"tenant_id": tenant_id, "c": conversation_id, "d": direction, "seq": seq},
    )


async def claim_version(*, conn: Conn, tenant_id: uuid.UUID, blob_name: str, etag: str) -> bool:
    """Take the idempotency key of one blob version; False when it was processed already (a
    concurrent holder makes this wait for its commit, then answer False)."""
    cur = await conn.execute(
        "INSERT INTO kalimera_processed_recordings (tenant_id, blob_name, etag)"
        " VALUES (%(tenant_id)s, %(b)s, %(e)s) ON CONFLICT DO NOTHING RETURNING 1 AS claimed",
        {"tenant_id": tenant_id, "b": blob_name, "e": etag},
    )
    return await cur.fetchone() is not None


async def upsert_recording(*, conn: Conn, tenant_id: uuid.UUID, **values: Any) -> DictRow | None:
    """Write the turn unless a newer blob version already holds it; the row written, or None
    when this version lost to a newer one."""
    cur = await conn.execute(
        """
        INSERT INTO kalimera_recordings AS r (
            tenant_id, conversation_id, seq, direction, blob_name, etag, blob_modified_at,
            duration, transcript, sentiment_score, language, final, recorded_at, latency_ms)
        VALUES (
            %(tenant_id)s, %(conversation_id)s, %(seq)s, %(direction)s, %(blob_name)s, %(etag)s,
            %(blob_modified_at)s, %(duration)s, %(transcript)s, %(sentiment_score)s,
            %(language)s, %(final)s, %(recorded_at)s, %(latency_ms)s)
        ON CONFLICT (tenant_id, conversation_id, seq, direction) DO UPDATE SET
            blob_name = EXCLUDED.blob_name, etag = EXCLUDED.etag,
            blob_modified_at = EXCLUDED.blob_modified_at, duration = EXCLUDED.duration,
            transcript = EXCLUDED.transcript, sentiment_score = EXCLUDED.sentiment_score,
            language = EXCLUDED.language, latency_ms = EXCLUDED.latency_ms,
            final = EXCLUDED.final, recorded_at = EXCLUDED.recorded_at, ingested_at = now()
        WHERE r.blob_modified_at <= EXCLUDED.blob_modified_at
        RETURNING seq, direction, blob_name, etag, duration, transcript, language, recorded_at,
            latency_ms
        """,
        {"tenant_id": tenant_id, **values},
    )
    return await cur.fetchone()


async def turn(
    *, conn: Conn, tenant_id: uuid.UUID, conversation_id: uuid.UUID, seq: int, direction: str
) -> DictRow | None:
    """The turn as stored: the version that holds it (blob name, ETag, last-modified) and its
    values, or None."""
    cur = await conn.execute(
        "SELECT blob_name, etag, blob_modified_at, duration, transcript, language, recorded_at,"
        " latency_ms FROM kalimera_recordings WHERE tenant_id = %(tenant_id)s"
        " AND conversation_id = %(c)s AND seq = %(s)s AND direction = %(d)s",
        {"tenant_id": tenant_id, "c": conversation_id, "s": seq, "d": direction},
    )
    return await cur.fetchone()


# Caller turns with words and no score ingested before scores were kept per turn (migration 0013).
_UNSCORED = (
    "tenant_id = %(tenant_id)s AND conversation_id = %(c)s AND direction = 'input'"
    " AND sentiment_score IS NULL AND btrim(transcript) <> '' AND ingested_at < (SELECT"
    " applied_at FROM kalimera_schema_migrations WHERE version = '0013_turn_sentiment')"
)


async def turn_context(
    *, conn: Conn, tenant_id: uuid.UUID, conversation_id: uuid.UUID, seq: int, direction: str
) -> DictRow:
    """What the ingestion checks once it holds the conversation's lock, in one statement:
    ``erased`` (an erasure's storage is not yet confirmed gone), ``unscored`` (it has caller
    turns from before migration 0013: ``unscored_input_turns``), and the turn as stored
    (``turn``'s columns, all NULL when no version holds it)."""
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM kalimera_erasure_pending"  # noqa: S608 - a fixed condition
        "   WHERE tenant_id = %(tenant_id)s AND conversation_id = %(c)s) AS erased,"
        f" EXISTS (SELECT 1 FROM kalimera_recordings WHERE {_UNSCORED}) AS unscored,"
        " r.blob_name, r.etag, r.blob_modified_at, r.duration, r.transcript, r.language,"
        " r.recorded_at, r.latency_ms"
        " FROM (SELECT) AS one LEFT JOIN kalimera_recordings r ON r.tenant_id = %(tenant_id)s"
        " AND r.conversation_id = %(c)s AND r.seq = %(s)s AND r.direction = %(d)s",
        {"tenant_id": tenant_id, "c": conversation_id, "s": seq, "d": direction},
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def unscored_input_turns(
    *, conn: Conn, tenant_id: uuid.UUID, conversation_id: uuid.UUID
) -> list[DictRow]:
    """Caller turns with words and no score ingested before scores were kept per turn
    (migration 0013), each scored once by the next turn of its conversation. A later turn
    without a score has words that are not English (``sentiment.score_turn``): looking at it
    again on every new turn would make a long Greek call quadratic work."""
    cur = await conn.execute(
        f"SELECT seq, transcript FROM kalimera_recordings WHERE {_UNSCORED}",  # noqa: S608
        {"tenant_id": tenant_id, "c": conversation_id},
    )
    return await cur.fetchall()


async def score_input_turns(
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    scores: dict[int, float | None],
) -> None:
    """Store the scores of turns from before migration 0013; ``ingested_at`` moves to now, as
    the turn is processed now, so one left without a score (not English) is not picked again."""
    await conn.execute(
        "UPDATE kalimera_recordings AS r SET sentiment_score = s.score, ingested_at = now()"
        " FROM unnest(%(seqs)s::int[], %(scores)s::double precision[]) AS s(seq, score)"
        " WHERE r.tenant_id = %(tenant_id)s AND r.conversation_id = %(c)s AND r.direction = 'input'"
        " AND r.seq = s.seq",
        {
            "tenant_id": tenant_id,
            "c": conversation_id,
            "seqs": list(scores),
            "scores": list(scores.values()),
        },
    )


async def lock_conversation_for_turn(
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    agent_id: uuid.UUID,
    profile_type: str | None,
    started_at: datetime,
) -> DictRow | None:
    """Create the conversation (Active) if it does not exist, and lock it, in one statement;
    None when the tenant has no such agent. An existing conversation keeps every field."""
    cur = await conn.execute(
        """
        INSERT INTO kalimera_conversations AS c (
            tenant_id, id, agent_id, profile_type, started_at, last_activity_at)
        SELECT a.tenant_id, %(c)s, a.id, coalesce(%(profile)s, a.profile_type),
               %(started)s, %(started)s
        FROM kalimera_ai_agents a
        WHERE a.tenant_id = %(tenant_id)s AND a.id = %(a)s
        ON CONFLICT (tenant_id, id) DO UPDATE SET agent_id = c.agent_id
        RETURNING c.agent_id
        """,
        {
            "tenant_id": tenant_id,
            "c": conversation_id,
            "a": agent_id,
            "profile": profile_type,
            "started": started_at,
        },
    )
    return await cur.fetchone()


# The analysis's sentiment (any language) is the conversation's while the transcript it was made
# from is the current one: a turn without words does not put VADER's back.
KEEP_ANALYSED_SENTIMENT = (
    "(NOT %(changed)s AND c.analysis_status = 'done'"
    " AND coalesce(c.analysis -> 'sentiment', 'null') <> 'null')"
)


# The call's counterpart in E.164 after a turn: the number it first brought (telephony's stays
# as first sent, so the normalised one does too).
COUNTERPART = """(CASE
    WHEN c.profile_type = 'inbound' AND c.from_number IS NULL THEN %(from_e164)s::text
    WHEN c.profile_type = 'outbound' AND c.to_number IS NULL THEN %(to_e164)s::text
    ELSE c.contact_number END)"""


async def recompute_conversation(
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    blob_name: str,
    blob_base_url: str,
    from_number: str | None,
    to_number: str | None,
    from_e164: str | None,
    to_e164: str | None,
    ended_reason: str | None,
    cost: str | None,
    transcript_changed: bool,
) -> None:
    """Derive the conversation's totals from its recordings (never by adding to them, so a
    replay can not double anything); a ``final`` turn completes an Active conversation; phone
    numbers fill in where unset, and the counterpart's (``from_e164`` inbound, ``to_e164``
    outbound, normalised by the caller) with its contact, whose lock the caller holds
    (``share_contact_numbers``); the sentiment is the mean of the caller turns' scores, labelled
    by ``sentiment``'s thresholds; the latency summary is over the output turns' ``latency_ms``
    (percentiles of the values rounded down to 10 ms, as the outcome statistics take them). The
    turn's ``ended_reason`` and ``cost`` (JSON), when it carries them, replace the
    conversation's. A good version of a blob also clears the rejections of its earlier
    versions.

    ``transcript_changed`` (the turn has words) moves ``transcript_version`` on, which asks for
    an analysis once the call has ended (the trigger of migration 0017). The analysis's own
    sentiment (any language) stays while the transcript it was made from does."""
    await conn.execute(
        f"""
        WITH agg AS (
            SELECT sum(duration) AS duration, count(*) AS turns,
                   max(recorded_at) AS last_recorded, bool_or(final) AS final,
                   avg(sentiment_score) FILTER (WHERE direction = 'input') AS score,
                   percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms / 10 * 10)
                       FILTER (WHERE direction = 'output') AS latency_p50,
                   percentile_disc(0.9) WITHIN GROUP (ORDER BY latency_ms / 10 * 10)
                       FILTER (WHERE direction = 'output') AS latency_p90,
                   max(latency_ms) FILTER (WHERE direction = 'output') AS latency_max,
                   count(latency_ms) FILTER (WHERE direction = 'output') AS latency_turns,
                   coalesce(array_agg(latency_ms / 10 * 10 ORDER BY latency_ms)
                       FILTER (WHERE direction = 'output' AND latency_ms IS NOT NULL),
                       '{{}}') AS latency_rounded,
                   (array_agg(language ORDER BY seq DESC, direction)
                        FILTER (WHERE language IS NOT NULL))[1] AS language,
                   (array_agg(blob_name ORDER BY seq DESC)
                        FILTER (WHERE direction = 'input'))[1] AS input_blob,
                   (array_agg(blob_name ORDER BY seq DESC)
                        FILTER (WHERE direction = 'output'))[1] AS output_blob
            FROM kalimera_recordings
            WHERE tenant_id = %(tenant_id)s AND conversation_id = %(c)s
        ), cleared AS (
            DELETE FROM kalimera_ingest_rejections WHERE blob_name = %(blob)s
        )
        UPDATE kalimera_conversations AS c SET
            duration = agg.duration,
            turn_count = agg.turns,
            last_activity_at = greatest(c.started_at, agg.last_recorded),
            language = coalesce(c.language, agg.language),
            input_file_url = %(base)s || agg.input_blob,
            output_file_url = %(base)s || agg.output_blob,
            from_number = coalesce(c.from_number, %(from)s),
            to_number = coalesce(c.to_number, %(to)s),
            contact_number = {COUNTERPART},
            contact_id = CASE WHEN {COUNTERPART} IS NOT DISTINCT FROM c.contact_number
                              THEN c.contact_id
                              ELSE (SELECT k.id FROM kalimera_contacts k
                                    WHERE k.tenant_id = c.tenant_id
                                    AND k.contact_no = {COUNTERPART})
                              END,
            sentiment = CASE WHEN {KEEP_ANALYSED_SENTIMENT} THEN c.sentiment
                             WHEN agg.score IS NULL THEN 'unknown'
                             WHEN agg.score >= %(positive_at)s THEN 'positive'
                             WHEN agg.score <= %(negative_at)s THEN 'negative'
                             ELSE 'neutral' END,
            sentiment_score = CASE WHEN {KEEP_ANALYSED_SENTIMENT} THEN c.sentiment_score
                                   ELSE agg.score END,
            transcript_version = c.transcript_version + %(changed)s::int,
            latency_p50_ms = agg.latency_p50,
            latency_p90_ms = agg.latency_p90,
            latency_max_ms = agg.latency_max,
            latency_turns = agg.latency_turns,
            latency_rounded_ms = agg.latency_rounded,
            ended_reason = coalesce(%(ended_reason)s, c.ended_reason),
            cost = coalesce(%(cost)s::jsonb, c.cost),
            status = CASE WHEN agg.final AND c.status = 'Active' THEN 'Completed' ELSE c.status END,
            ended_at = CASE WHEN agg.final AND c.status = 'Active'
                            THEN coalesce(c.ended_at, agg.last_recorded) ELSE c.ended_at END
        FROM agg
        WHERE c.tenant_id = %(tenant_id)s AND c.id = %(c)s
        """,  # noqa: S608 - a fixed condition, no values
        {
            "tenant_id": tenant_id,
            "c": conversation_id,
            "blob": blob_name,
            "base": blob_base_url,
            "positive_at": sentiment.POSITIVE_AT,
            "negative_at": sentiment.NEGATIVE_AT,
            "from": from_number,
            "to": to_number,
            "from_e164": from_e164,
            "to_e164": to_e164,
            "ended_reason": ended_reason,
            "cost": cost,
            "changed": transcript_changed,
        },
    )


async def record_rejection(
    *, conn: Conn, blob_name: str, etag: str, tenant_id: uuid.UUID | None, reason: str
) -> bool:
    """Note the rejection; True the first time this blob version is rejected."""
    cur = await conn.execute(
        "INSERT INTO kalimera_ingest_rejections (blob_name, etag, tenant_id, reason)"
        " VALUES (%(b)s, %(e)s, %(tenant_id)s, %(r)s)"
        " ON CONFLICT (blob_name, etag) DO UPDATE SET reason = EXCLUDED.reason,"
        " rejected_at = now() RETURNING (xmax = 0) AS first",
        {"b": blob_name, "e": etag, "tenant_id": tenant_id, "r": reason},
    )
    row = await cur.fetchone()
    return bool(row and row["first"])


async def list_rejections(
    *, conn: Conn, limit: int, tenant_id: uuid.UUID | None = None, since: datetime | None = None
) -> list[DictRow]:
    cur = await conn.execute(
        "SELECT blob_name, etag, tenant_id, reason, rejected_at FROM kalimera_ingest_rejections"
        " WHERE (%(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s)"
        " AND (%(since)s::timestamptz IS NULL OR rejected_at >= %(since)s)"
        " ORDER BY rejected_at DESC LIMIT %(n)s",
        {"n": limit, "tenant_id": tenant_id, "since": since},
    )
    return await cur.fetchall()
