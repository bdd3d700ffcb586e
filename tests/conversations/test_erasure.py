"""Erasure (docs/retention.md): a DELETE takes the conversation from every store, a contact's
calls go with it on request, a storage outage mid-erasure leaves no row pointing at deleted blobs
and no blob behind for good, and every erasure is logged without personal data."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx

from kalimera.auth import DEFAULT_SCOPES, Scope
from kalimera.conversations import erasure
from kalimera.conversations.history import partition_key
from kalimera.conversations.ingest import Outcome
from kalimera.services import Services
from kalimera.settings import Settings
from tests.conftest import Server, Tenant
from tests.support.audio_fixtures import wav_bytes
from tests.support.calls import ingest, make_agent, put_blob, query, with_services
from tests.support.problems import assert_problem
from tests.support.settings import settings_with

PHONE = "+302101234567"
WORDS = "My card number is four four four four"


def _upload(tenant: Tenant, agent_id: uuid.UUID, conversation_id: str, **fields: str) -> str:
    response = tenant.client.post(
        f"/kalimera/ai-agent/{agent_id}/voice",
        data={"conversation_id": conversation_id, "from_number": PHONE, **fields},
        files={"voice_file": ("turn.wav", wav_bytes(0.5), "audio/wav")},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["blob"])


def _call(server: Server, tenant: Tenant, turns: int = 2) -> tuple[uuid.UUID, str, list[str]]:
    """A call of ``turns`` uploaded recordings (the last with a sidecar: a long transcript),
    ingested, with its history written: (agent, conversation id, blob names)."""
    agent_id = make_agent(server.settings, tenant.id)
    conversation_id = str(uuid.uuid4())
    blobs = []
    for seq in range(1, turns + 1):
        long = seq == turns
        transcript = WORDS * (200 if long else 1)
        blob = _upload(
            tenant,
            agent_id,
            conversation_id,
            seq=str(seq),
            direction="input",
            transcript=transcript,
        )
        assert ingest(server.settings, blob).outcome is Outcome.INGESTED
        blobs.append(blob)
    return agent_id, conversation_id, blobs


def blobs_under(settings: Settings, prefix: str) -> list[str]:
    async def work(services: Services) -> list[str]:
        return [b.name async for b in services.recordings.list_blobs(name_starts_with=prefix)]

    return with_services(settings, work)


def history(settings: Settings, tenant_id: uuid.UUID, conversation_id: str) -> list[str]:
    async def work(services: Services) -> list[str]:
        pk = partition_key(tenant_id, uuid.UUID(conversation_id))
        return [
            e["RowKey"]
            async for e in services.turns.query_entities(
                "PartitionKey eq @pk", parameters={"pk": pk}
            )
        ]

    return with_services(settings, work)


def rows(
    settings: Settings, table: str, tenant_id: uuid.UUID, **where: Any
) -> list[dict[str, Any]]:
    assert re.fullmatch(r"kalimera_[a-z_]+", table)
    conditions = "".join(f" AND {column} = %({column})s" for column in where)
    return query(
        settings,
        f"SELECT * FROM {table} WHERE tenant_id = %(tenant_id)s{conditions}",  # noqa: S608
        {"tenant_id": tenant_id, **where},
    )


def sweep(settings: Settings, tenant_id: uuid.UUID, *, settled: bool = True) -> None:
    """The timer's sweeper; with ``settled``, as if the tenant's settle times had passed."""
    if settled:
        query(
            settings,
            "UPDATE kalimera_erasure_pending SET settle_at = now(), available_at = now()"
            " WHERE tenant_id = %(t)s RETURNING 1",
            {"t": tenant_id},
        )
    with_services(settings, lambda services: erasure.sweep(services=services))


def test_a_deleted_conversation_leaves_no_row_turn_blob_sidecar_or_history(
    server: Server, tenant: Tenant
) -> None:
    settings = server.settings
    agent_id, conversation_id, blobs = _call(server, tenant)
    prefix = f"{tenant.id}/{agent_id}/{conversation_id}/"
    stored = blobs_under(settings, prefix)
    assert any(name.endswith(".json") for name in stored)  # the long transcript's sidecar
    assert len(history(settings, tenant.id, conversation_id)) == 2

    response = tenant.client.delete(f"/kalimera/conversations/{conversation_id}")
    assert response.status_code == 204, response.text
    assert response.content == b""

    assert_problem(tenant.client.get(f"/kalimera/conversations/{conversation_id}"), 404)
    assert blobs_under(settings, prefix) == []
    assert history(settings, tenant.id, conversation_id) == []
    c = uuid.UUID(conversation_id)
    assert rows(settings, "kalimera_conversations", tenant.id, id=c) == []
    assert rows(settings, "kalimera_recordings", tenant.id, conversation_id=c) == []
    assert rows(settings, "kalimera_conversation_terms", tenant.id, conversation_id=c) == []
    assert rows(settings, "kalimera_upload_seqs", tenant.id, conversation_id=c) == []
    for blob in blobs:
        assert rows(settings, "kalimera_processed_recordings", tenant.id, blob_name=blob) == []
    # The log says how many and why, and who asked: nothing of the call itself.
    (entry,) = rows(settings, "kalimera_erasure_log", tenant.id)
    assert (entry["reason"], entry["conversations"], entry["recordings"]) == ("api", 1, 2)
    assert entry["token_id"] is not None
    logged = repr(entry)
    assert PHONE not in logged
    assert "card" not in logged
    assert conversation_id not in logged
    # The last pass, after the settle time, finds nothing and drops the pending row.
    sweep(settings, tenant.id)
    assert rows(settings, "kalimera_erasure_pending", tenant.id) == []


def test_deleting_again_answers_404_and_logs_nothing_more(server: Server, tenant: Tenant) -> None:
    _, conversation_id, _ = _call(server, tenant, turns=1)
    assert tenant.client.delete(f"/kalimera/conversations/{conversation_id}").status_code == 204
    assert_problem(tenant.client.delete(f"/kalimera/conversations/{conversation_id}"), 404)
    assert len(rows(server.settings, "kalimera_erasure_log", tenant.id)) == 1


def test_a_conversation_started_by_telephony_without_recordings_is_erased_too(
    server: Server, tenant: Tenant
) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    started = tenant.client.post(
        "/kalimera/conversations",
        json={"agent_id": str(agent_id), "profile_type": "inbound", "from_number": PHONE},
    )
    assert started.status_code == 201, started.text
    conversation_id = started.json()["id"]
    assert tenant.client.delete(f"/kalimera/conversations/{conversation_id}").status_code == 204
    (entry,) = rows(server.settings, "kalimera_erasure_log", tenant.id)
    assert (entry["conversations"], entry["recordings"]) == (1, 0)


def test_bad_ids_unknown_ids_and_other_tenants_calls(
    server: Server, new_tenant: Callable[..., Tenant]
) -> None:
    a, b = new_tenant(), new_tenant()
    _, conversation_id, _ = _call(server, a, turns=1)
    body = assert_problem(b.client.delete("/kalimera/conversations/not-a-uuid"), 422)
    assert body["errors"][0]["loc"] == ["path", "conversation_id"]  # type: ignore[index]
    assert_problem(b.client.delete(f"/kalimera/conversations/{uuid.uuid4()}"), 404)
    assert_problem(b.client.delete(f"/kalimera/conversations/{conversation_id}"), 404)
    assert a.client.get(f"/kalimera/conversations/{conversation_id}").status_code == 200
    assert rows(server.settings, "kalimera_erasure_log", b.id) == []


def test_erasing_takes_the_write_scope(server: Server, new_tenant: Callable[..., Tenant]) -> None:
    reader = new_tenant(tuple(s for s in DEFAULT_SCOPES if s is not Scope.CONVERSATIONS_WRITE))
    response = reader.client.delete(f"/kalimera/conversations/{uuid.uuid4()}")
    assert_problem(response, 403)
    anonymous = httpx.delete(f"{server.url}/kalimera/conversations/{uuid.uuid4()}")
    assert_problem(anonymous, 401)


def test_a_storage_outage_mid_erasure_leaves_the_rest_to_the_sweeper(
    server: Server, tenant: Tenant, settings_env: dict[str, str]
) -> None:
    """Blobs deleted, then Table storage down: the call is gone from Postgres at once (nothing
    points at the deleted blobs), the history entities wait in the pending row, and the sweeper
    deletes them once storage is back."""
    settings = server.settings
    agent_id, conversation_id, _ = _call(server, tenant)
    table_port = re.search(
        r"TableEndpoint=http://127\.0\.0\.1:(\d+)", settings_env["KALIMERA_STORAGE"]
    )
    assert table_port is not None
    dead = settings_env["KALIMERA_STORAGE"].replace(f":{table_port[1]}/", ":9/")  # discard: refused
    broken = settings_with(settings_env, KALIMERA_STORAGE=dead)

    async def erase(services: Services) -> Any:
        return await erasure.erase_conversation(
            services=services,
            tenant_id=tenant.id,
            conversation_id=uuid.UUID(conversation_id),
            token_id=None,
        )

    erased = with_services(broken, erase)
    assert (erased.conversations, erased.recordings) == (1, 2)
    assert tenant.client.get(f"/kalimera/conversations/{conversation_id}").status_code == 404
    assert blobs_under(settings, f"{tenant.id}/{agent_id}/{conversation_id}/") == []
    assert len(history(settings, tenant.id, conversation_id)) == 2
    (left,) = rows(settings, "kalimera_erasure_pending", tenant.id)
    assert left["attempts"] == 1
    assert left["last_error"]

    # A recording of the erased call arriving late is refused, and does not bring it back.
    late = f"{tenant.id}/{agent_id}/{conversation_id}/000009-output.wav"
    put_blob(settings, late, wav_bytes(0.3))
    result = ingest(settings, late)
    assert result.outcome is Outcome.REJECTED
    assert "erased" in result.reason
    assert tenant.client.get(f"/kalimera/conversations/{conversation_id}").status_code == 404

    sweep(settings, tenant.id)
    assert history(settings, tenant.id, conversation_id) == []
    assert blobs_under(settings, f"{tenant.id}/{agent_id}/{conversation_id}/") == []
    assert rows(settings, "kalimera_erasure_pending", tenant.id) == []


def test_the_sweeper_keeps_the_pending_row_until_the_settle_time(
    server: Server, tenant: Tenant
) -> None:
    _, conversation_id, _ = _call(server, tenant, turns=1)
    assert tenant.client.delete(f"/kalimera/conversations/{conversation_id}").status_code == 204
    (left,) = rows(server.settings, "kalimera_erasure_pending", tenant.id)
    assert left["available_at"] == left["settle_at"]  # cleaned; one more look at settle time
    sweep(server.settings, tenant.id, settled=False)
    assert len(rows(server.settings, "kalimera_erasure_pending", tenant.id)) == 1


def _contact(tenant: Tenant) -> int:
    # Not the calls' number (they would all be hers, test_contacts_on_calls.py): these tests
    # link the calls they mean by hand.
    response = tenant.client.post(
        "/kalimera/contact",
        json={"first_name": "Maria", "last_name": "P", "contact_no": "+302109999999"},
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _link(settings: Settings, tenant_id: uuid.UUID, conversation_id: str, contact_id: int) -> None:
    query(
        settings,
        "UPDATE kalimera_conversations SET contact_id = %(k)s"
        " WHERE tenant_id = %(t)s AND id = %(c)s RETURNING 1",
        {"k": contact_id, "t": tenant_id, "c": conversation_id},
    )


def test_deleting_a_contact_with_erase_conversations_erases_its_calls_only(
    server: Server, tenant: Tenant
) -> None:
    settings = server.settings
    contact_id = _contact(tenant)
    agent_id, first, _ = _call(server, tenant)
    _, second, _ = _call(server, tenant, turns=1)
    _, stranger, _ = _call(server, tenant, turns=1)
    _link(settings, tenant.id, first, contact_id)
    _link(settings, tenant.id, second, contact_id)

    response = tenant.client.delete(
        f"/kalimera/contact/{contact_id}", params={"erase_conversations": "true"}
    )
    assert response.status_code == 200, response.text
    assert tenant.client.get(f"/kalimera/contact/{contact_id}").status_code == 404
    for gone in (first, second):
        assert tenant.client.get(f"/kalimera/conversations/{gone}").status_code == 404
    assert tenant.client.get(f"/kalimera/conversations/{stranger}").status_code == 200
    (entry,) = rows(settings, "kalimera_erasure_log", tenant.id)
    assert (entry["reason"], entry["conversations"], entry["recordings"]) == ("contact", 2, 3)
    # The recordings and history go by the sweeper (the contacts domain does not reach storage).
    assert len(rows(settings, "kalimera_erasure_pending", tenant.id)) == 2
    sweep(settings, tenant.id)
    assert rows(settings, "kalimera_erasure_pending", tenant.id) == []
    assert blobs_under(settings, f"{tenant.id}/{agent_id}/{first}/") == []
    assert history(settings, tenant.id, first) == []


def test_deleting_a_contact_without_the_flag_keeps_its_calls_unlinked(
    server: Server, tenant: Tenant
) -> None:
    contact_id = _contact(tenant)
    _, conversation_id, _ = _call(server, tenant, turns=1)
    _link(server.settings, tenant.id, conversation_id, contact_id)
    assert tenant.client.delete(f"/kalimera/contact/{contact_id}").status_code == 200
    (row,) = rows(server.settings, "kalimera_conversations", tenant.id, id=conversation_id)
    assert row["contact_id"] is None
    assert rows(server.settings, "kalimera_erasure_log", tenant.id) == []


def test_a_failed_contact_delete_erases_nothing(server: Server, tenant: Tenant) -> None:
    contact_id = _contact(tenant)
    _, conversation_id, _ = _call(server, tenant, turns=1)
    _link(server.settings, tenant.id, conversation_id, contact_id)
    stale = tenant.client.delete(
        f"/kalimera/contact/{contact_id}",
        params={"erase_conversations": "true"},
        headers={"If-Match": '"999"'},
    )
    assert_problem(stale, 412)
    assert tenant.client.get(f"/kalimera/conversations/{conversation_id}").status_code == 200
    bad = tenant.client.delete(
        f"/kalimera/contact/{contact_id}", params={"erase_conversations": "perhaps"}
    )
    assert_problem(bad, 422)
    assert rows(server.settings, "kalimera_erasure_log", tenant.id) == []


def test_an_erased_calls_analysis_requests_go_and_its_rerun_item_is_skipped(
    server: Server, tenant: Tenant
) -> None:
    settings = server.settings
    agent_id, conversation_id, _ = _call(server, tenant, turns=1)
    run_id = uuid.uuid4()
    query(
        settings,
        "WITH r AS (INSERT INTO kalimera_analysis_runs (tenant_id, id, agent_id, plan_version,"
        "  since, until, total) VALUES (%(t)s, %(r)s, %(a)s, 1, '2026-01-01', '2026-12-31', 1)"
        "  RETURNING 1),"
        " i AS (INSERT INTO kalimera_analysis_run_items (tenant_id, run_id, conversation_id, state)"
        "  SELECT %(t)s, %(r)s, %(c)s, 'queued' FROM r RETURNING 1)"
        " INSERT INTO kalimera_analysis_outbox (tenant_id, kind, conversation_id, run_id, reason)"
        " SELECT %(t)s, 'analyse', %(c)s, %(r)s, 'run' FROM i RETURNING 1",
        {"t": tenant.id, "r": run_id, "a": agent_id, "c": conversation_id},
    )
    assert tenant.client.delete(f"/kalimera/conversations/{conversation_id}").status_code == 204
    c = uuid.UUID(conversation_id)
    assert rows(settings, "kalimera_analysis_outbox", tenant.id, conversation_id=c) == []
    (item,) = rows(settings, "kalimera_analysis_run_items", tenant.id, run_id=run_id)
    assert item["state"] == "skipped"


def test_recordings_named_in_upper_case_are_erased_too(server: Server, tenant: Tenant) -> None:
    """Telephony may write the ids of a name in upper case; the ingestion keeps the name as
    written, and the erasure deletes it by that name (and a rejected one by its prefix)."""
    settings = server.settings
    agent_id = make_agent(settings, tenant.id)
    conversation_id = uuid.uuid4()
    prefix = f"{tenant.id}/{agent_id}/{conversation_id}/".upper()
    put_blob(settings, f"{prefix}000001-input.wav", wav_bytes(0.4))
    assert ingest(settings, f"{prefix}000001-input.wav").outcome is Outcome.INGESTED
    put_blob(settings, f"{prefix}000002-input.wav", b"not audio at all")
    assert ingest(settings, f"{prefix}000002-input.wav").outcome is Outcome.REJECTED
    assert len(blobs_under(settings, prefix)) == 2
    assert tenant.client.delete(f"/kalimera/conversations/{conversation_id}").status_code == 204
    assert blobs_under(settings, prefix) == []


def test_a_hung_blob_store_holds_a_delete_for_at_most_the_inline_bound(
    server: Server, tenant: Tenant, settings_env: dict[str, str], blackhole: int
) -> None:
    settings = server.settings
    agent_id, conversation_id, _ = _call(server, tenant, turns=1)
    blob_port = re.search(
        r"BlobEndpoint=http://127\.0\.0\.1:(\d+)", settings_env["KALIMERA_STORAGE"]
    )
    assert blob_port is not None
    hung = settings_env["KALIMERA_STORAGE"].replace(f":{blob_port[1]}/", f":{blackhole}/")
    broken = settings_with(settings_env, KALIMERA_STORAGE=hung)

    async def erase(services: Services) -> float:
        started = time.monotonic()
        await erasure.erase_conversation(
            services=services,
            tenant_id=tenant.id,
            conversation_id=uuid.UUID(conversation_id),
            token_id=None,
        )
        return time.monotonic() - started

    took = with_services(broken, erase)
    assert erasure.INLINE_SECONDS <= took < erasure.INLINE_SECONDS + 5
    assert tenant.client.get(f"/kalimera/conversations/{conversation_id}").status_code == 404
    (left,) = rows(settings, "kalimera_erasure_pending", tenant.id)
    assert left["available_at"] <= left["created_at"] + timedelta(seconds=1)  # the sweeper's now
    sweep(settings, tenant.id)
    assert blobs_under(settings, f"{tenant.id}/{agent_id}/{conversation_id}/") == []
    assert rows(settings, "kalimera_erasure_pending", tenant.id) == []
