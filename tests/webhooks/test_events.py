"""Events are written in the transaction of the change they report, with the data the spec
gives: a conversation as GET shows it (its turns without audio URLs), a rejected recording's
name and reason, an import's counts and errors. Erasing a conversation erases its events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kalimera.settings import Settings
from tests.conftest import Tenant
from tests.support.audio_fixtures import wav_bytes
from tests.support.calls import Call, ingest, put_blob, query
from tests.support.receiver import Receiver
from tests.webhooks.conftest import create_endpoint, start_call


def events_of(settings: Settings, tenant: Tenant) -> list[dict[str, Any]]:
    return query(
        settings,
        "SELECT type, subject_id, data FROM kalimera_webhook_events WHERE tenant_id = %(t)s"
        " ORDER BY created_at",
        {"t": tenant.id},
    )


def same_instant(a: object, b: object) -> bool:
    return datetime.fromisoformat(str(a)) == datetime.fromisoformat(str(b))


def assert_is_the_conversation(data: dict[str, Any], read: dict[str, Any]) -> None:
    """``data`` is GET's answer without the signed URLs (the turns' audio, the recordings': null
    in an event), times compared as instants."""
    turns = [{k: v for k, v in t.items() if k != "audio_url"} for t in read.pop("turns", [])]
    read |= dict.fromkeys(("input_file_url", "output_file_url", "conversation_url"))
    assert len(data["turns"]) == len(turns)
    for mine, theirs in zip(data.pop("turns"), turns, strict=True):
        assert same_instant(mine.pop("recorded_at"), theirs.pop("recorded_at"))
        assert mine == theirs
    assert data.keys() == read.keys()
    for key, value in read.items():
        if key.endswith("_at") and value is not None:
            assert same_instant(data[key], value), key
        else:
            assert data[key] == value, key


def test_a_tenant_without_endpoints_writes_no_events(
    dev_tenant: Tenant, dev_settings: Settings
) -> None:
    start_call(dev_tenant)
    assert events_of(dev_settings, dev_tenant) == []


def test_started_and_ended_carry_the_conversation_as_get_shows_it(
    dev_tenant: Tenant, dev_settings: Settings, receiver: Receiver
) -> None:
    create_endpoint(dev_tenant, receiver.url)
    call = Call(dev_settings, dev_tenant)
    name = call.name(1, "input", "wav")
    put_blob(dev_settings, name, wav_bytes(1.2), {"transcript": "Good morning, a table for two."})
    ingest(dev_settings, name)  # the first turn makes the conversation: started
    last = call.name(1, "output", "wav")
    put_blob(dev_settings, last, wav_bytes(0.8), {"transcript": "Certainly.", "final": "true"})
    ingest(dev_settings, last)  # the final turn ends it: ended
    events = events_of(dev_settings, dev_tenant)
    assert [e["type"] for e in events] == ["conversation.started", "conversation.ended"]
    assert {e["subject_id"] for e in events} == {call.conversation_id}
    read = dev_tenant.client.get(f"/kalimera/conversations/{call.conversation_id}").json()
    ended = events[1]["data"]
    assert ended["status"] == "Completed"
    assert [t["transcript"] for t in ended["turns"]] == [
        "Good morning, a table for two.",
        "Certainly.",
    ]
    assert_is_the_conversation(ended, read)


def test_the_api_start_and_patch_write_started_and_ended(
    dev_tenant: Tenant, dev_settings: Settings, receiver: Receiver
) -> None:
    create_endpoint(dev_tenant, receiver.url)
    conversation_id = start_call(dev_tenant)
    patched = dev_tenant.client.patch(
        f"/kalimera/conversations/{conversation_id}", json={"status": "Completed"}
    )
    assert patched.status_code == 200
    types = [e["type"] for e in events_of(dev_settings, dev_tenant)]
    assert types == ["conversation.started", "conversation.ended"]
    # A second PATCH (Completed -> Failed) is no new end.
    dev_tenant.client.patch(f"/kalimera/conversations/{conversation_id}", json={"status": "Failed"})
    assert len(events_of(dev_settings, dev_tenant)) == 2


def test_an_analysis_stored_as_done_writes_analyzed(
    dev_tenant: Tenant, dev_settings: Settings, receiver: Receiver
) -> None:
    create_endpoint(dev_tenant, receiver.url, events=["conversation.analyzed"])
    conversation_id = start_call(dev_tenant)
    query(
        dev_settings,
        "UPDATE kalimera_conversations SET analysis_status = 'done',"
        ' analysis = \'{"status": "done", "summary": "Booked."}\''
        " WHERE tenant_id = %(t)s AND id = %(c)s RETURNING id",
        {"t": dev_tenant.id, "c": conversation_id},
    )
    events = events_of(dev_settings, dev_tenant)
    analyzed = [e for e in events if e["type"] == "conversation.analyzed"]
    assert len(analyzed) == 1
    assert analyzed[0]["data"]["analysis"]["summary"] == "Booked."
    # Its only endpoint takes analyzed alone: the started event has no delivery.
    deliveries = query(
        dev_settings,
        "SELECT e.type FROM kalimera_webhook_deliveries d JOIN kalimera_webhook_events e"
        " ON e.tenant_id = d.tenant_id AND e.id = d.event_id WHERE d.tenant_id = %(t)s",
        {"t": dev_tenant.id},
    )
    assert [d["type"] for d in deliveries] == ["conversation.analyzed"]


def test_a_rejected_recording_writes_its_name_and_reason_once(
    dev_tenant: Tenant, dev_settings: Settings, receiver: Receiver
) -> None:
    create_endpoint(dev_tenant, receiver.url)
    call = Call(dev_settings, dev_tenant)
    name = call.name(1, "input", "wav")
    put_blob(dev_settings, name, b"")
    ingest(dev_settings, name)
    ingest(dev_settings, name)  # a redelivery: the same rejection, no second event
    (event,) = events_of(dev_settings, dev_tenant)
    assert event["type"] == "recording.rejected"
    assert event["data"]["blob_name"] == name
    assert "empty file" in event["data"]["reason"]


def test_a_contacts_import_writes_its_counts_and_errors(
    dev_tenant: Tenant, dev_settings: Settings, receiver: Receiver
) -> None:
    create_endpoint(dev_tenant, receiver.url)
    csv = (
        b"first_name,last_name,contact_no\r\n"
        b"Ann,Papadopoulou,+30 210 123 4567\r\n"
        b"Bob,Nikolaou,not a number\r\n"
    )
    response = dev_tenant.client.post(
        "/kalimera/contact/import", content=csv, headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    (event,) = events_of(dev_settings, dev_tenant)
    assert event["type"] == "contacts.imported"
    data = event["data"]
    assert (data["created"], data["refused"]) == (1, 1)
    assert data["errors"][0]["row"] == 3


def test_erasing_a_conversation_erases_its_events_and_deliveries(
    dev_tenant: Tenant, dev_settings: Settings, receiver: Receiver
) -> None:
    endpoint = create_endpoint(dev_tenant, receiver.url)
    kept = start_call(dev_tenant)
    erased = start_call(dev_tenant)
    assert len(events_of(dev_settings, dev_tenant)) == 2
    response = dev_tenant.client.delete(f"/kalimera/conversations/{erased}")
    assert response.status_code in (200, 202, 204), response.text
    (event,) = events_of(dev_settings, dev_tenant)
    assert str(event["subject_id"]) == kept
    rows = query(
        dev_settings,
        "SELECT count(*) AS n FROM kalimera_webhook_deliveries WHERE endpoint_id = %(e)s",
        {"e": endpoint["id"]},
    )
    assert rows[0]["n"] == 1
