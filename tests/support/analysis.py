"""Helpers for the analysis pipeline's tests: calls whose turns carry words, ingested as the
trigger ingests them, and the queue drained by the dev runner's consumer (the same code path as
``analyse_conversation``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from kalimera import outbox
from kalimera.dev.poller import consume_message, receive
from kalimera.services import Services
from tests.conftest import Server, Tenant
from tests.support.audio_fixtures import wav_bytes
from tests.support.calls import Call, ingest, put_blob, query, with_services


def meta(**values: Any) -> dict[str, str]:
    """Blob metadata as telephony writes it: URL-encoded text, objects as JSON."""
    return {
        k: quote(v if isinstance(v, str) else json.dumps(v), safe="") for k, v in values.items()
    }


def say(
    call: Call, turns: Sequence[tuple[str, str]], *, final: bool = True, first: int = 1
) -> None:
    """Ingest the turns (direction, words) in order, the last one ``final`` when asked: the
    call ends by its final turn, as telephony ends it."""
    seqs = {"input": first - 1, "output": first - 1}
    for i, (direction, words) in enumerate(turns):
        seqs[direction] += 1
        name = call.name(seqs[direction], direction, "wav")
        last = final and i == len(turns) - 1
        fields = {"transcript": words, **({"final": "true"} if last else {})}
        put_blob(call.settings, name, wav_bytes(0.5), meta(**fields))
        assert ingest(call.settings, name).outcome.value == "ingested"


async def drain(services: Services, *, rounds: int = 50) -> int:
    """Relay the outbox and consume the queue until both are empty; the messages consumed."""
    await outbox.ensure_queues(services.analysis_queue, services.analysis_poison_queue)
    consumed = 0
    idle = 0
    for _ in range(rounds):
        await outbox.sweep(services=services)
        messages = await receive(services, 32)
        for message in messages:
            await consume_message(services, message)
        consumed += len(messages)
        idle = 0 if messages else idle + 1
        if idle >= 2:
            break
    return consumed


def drain_with(settings: Any) -> int:
    """``drain`` on a fresh set of clients made from ``settings`` (a model configured, or not)."""
    return with_services(settings, drain)


def outbox_rows(settings: Any, conversation_id: uuid.UUID) -> list[dict[str, Any]]:
    return query(
        settings,
        "SELECT kind, reason FROM kalimera_analysis_outbox WHERE conversation_id = %(c)s",
        {"c": conversation_id},
    )


def results(settings: Any, conversation_id: uuid.UUID) -> list[dict[str, Any]]:
    return query(
        settings,
        "SELECT plan_version, transcript_version, status, analysis FROM kalimera_analysis_results"
        " WHERE conversation_id = %(c)s ORDER BY transcript_version, plan_version",
        {"c": conversation_id},
    )


def ended_calls(server: Server, tenant: Tenant, agent_id: uuid.UUID, n: int) -> list[str]:
    """``n`` calls of the agent, started and ended (with a transcript: Failed ones need one)."""
    ids = []
    for _ in range(n):
        call = Call(server.settings, tenant)
        call.agent_id = agent_id
        say(call, [("input", "Hello, a table for two tonight?")], final=False)
        ended = tenant.client.patch(
            f"/kalimera/conversations/{call.conversation_id}", json={"status": "Completed"}
        )
        assert ended.status_code == 200, ended.text
        ids.append(str(call.conversation_id))
    return ids


SEED_SQL = """
WITH calls AS (
    INSERT INTO kalimera_conversations (
        tenant_id, id, agent_id, profile_type, status, started_at, ended_at, last_activity_at,
        duration, turn_count, transcript_version)
    SELECT %(tenant_id)s, gen_random_uuid(), %(agent_id)s, 'inbound', 'Completed',
           %(at)s - make_interval(secs => 60 + i), %(at)s - make_interval(secs => i),
           %(at)s - make_interval(secs => i), 40, 2, 2
    FROM generate_series(1, %(n)s) AS i
    RETURNING tenant_id, id, started_at
)
INSERT INTO kalimera_recordings (
    tenant_id, conversation_id, seq, direction, blob_name, etag, blob_modified_at, duration,
    transcript, recorded_at)
SELECT c.tenant_id, c.id, 1, d.direction, c.id || '/' || d.direction, 'seed', now(), 20,
       d.words, c.started_at + make_interval(secs => d.at)
FROM calls c CROSS JOIN (VALUES
    ('input', 'Hello, I would like a table for two tonight, please.', 20),
    ('output', 'Of course: two at eight, under which name?', 40)) AS d(direction, words, at)
"""


async def seed_ended_calls(
    services: Services, *, tenant_id: uuid.UUID, agent_id: uuid.UUID, n: int
) -> None:
    """``n`` calls of the agent that ended in the last hours, each with a caller and an agent
    turn with words, written with SQL (a bulk run's material, not ingestion's)."""
    from datetime import UTC, datetime

    from kalimera.db import transaction

    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        await conn.execute(
            SEED_SQL,
            {"tenant_id": tenant_id, "agent_id": agent_id, "n": n, "at": datetime.now(UTC)},
        )
