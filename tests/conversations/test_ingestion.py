"""The blob-triggered ingestion: recordings become turns of conversations, exactly once."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import pytest
from azure.core.exceptions import AzureError
from pydantic import SecretStr

from kalimera.conversations import attempts, audio, reading, recording
from kalimera.conversations import ingest as ingest_module
from kalimera.conversations.ingest import Outcome, ingest_blob
from kalimera.db import DatabaseUnavailable, transaction
from kalimera.services import Services
from tests.conftest import Server, Tenant
from tests.support.audio_fixtures import DURATIONS, PNG_BYTES, fixture, wav_bytes
from tests.support.calls import Call, ingest, put_blob, query, with_services
from tests.support.cli import kalimera


def _turns(call: Call) -> list[dict]:
    return query(
        call.settings,
        "SELECT * FROM kalimera_recordings WHERE tenant_id = %(t)s AND conversation_id = %(c)s"
        " ORDER BY seq, direction",
        {"t": call.tenant.id, "c": call.conversation_id},
    )


def _rejections(call: Call, name: str) -> list[dict]:
    return query(
        call.settings,
        "SELECT * FROM kalimera_ingest_rejections WHERE blob_name = %(b)s",
        {"b": name},
    )


def test_each_format_is_ingested_with_its_exact_duration(call: Call) -> None:
    names = []
    for seq, (fname, _) in enumerate(DURATIONS.items(), start=1):
        name = call.name(seq, "input", fname.rsplit(".", 1)[1])
        put_blob(call.settings, name, fixture(fname))
        names.append(name)
    wav = call.name(4, "input", "wav")
    put_blob(call.settings, wav, wav_bytes(1.5))
    names.append(wav)
    for name in names:
        assert ingest(call.settings, name).outcome is Outcome.INGESTED
    turns = _turns(call)
    assert [t["duration"] for t in turns] == [*DURATIONS.values(), Decimal("1.500")]
    conv = call.conversation()
    assert conv is not None
    assert conv["duration"] == sum(DURATIONS.values()) + Decimal("1.500")
    assert conv["turn_count"] == 4
    assert conv["status"] == "Active"


def test_the_same_blob_event_twenty_times_ten_concurrently_makes_one_turn(call: Call) -> None:
    name = call.name(1, "input", "wav")
    put_blob(call.settings, name, wav_bytes(2.0), {"transcript": "Thank%20you%2C%20great"})

    async def deliver(services: Services) -> list[Outcome]:
        outcomes = [
            (await ingest_blob(services=services, blob_name=name)).outcome for _ in range(5)
        ]
        outcomes += [
            r.outcome
            for r in await asyncio.gather(
                *(ingest_blob(services=services, blob_name=name) for _ in range(10))
            )
        ]
        outcomes += [
            (await ingest_blob(services=services, blob_name=name)).outcome for _ in range(5)
        ]
        return outcomes

    outcomes = with_services(call.settings, deliver)
    assert outcomes.count(Outcome.INGESTED) == 1
    assert outcomes.count(Outcome.DUPLICATE) == 19
    assert len(_turns(call)) == 1
    conv = call.conversation()
    assert conv is not None
    assert (conv["turn_count"], conv["duration"]) == (1, Decimal("2.000"))
    assert conv["sentiment"] == "positive"


def test_an_overwritten_blob_replaces_that_turns_values(call: Call) -> None:
    name = call.name(1, "input", "wav")
    put_blob(call.settings, name, wav_bytes(1.0), {"transcript": "terrible%20awful%20service"})
    assert ingest(call.settings, name).outcome is Outcome.INGESTED
    first = call.conversation()
    assert first is not None
    assert (first["duration"], first["sentiment"]) == (Decimal("1.000"), "negative")

    put_blob(call.settings, name, wav_bytes(3.25), {"transcript": "wonderful%2C%20thank%20you"})
    assert ingest(call.settings, name).outcome is Outcome.INGESTED
    assert ingest(call.settings, name).outcome is Outcome.DUPLICATE
    turns = _turns(call)
    assert len(turns) == 1
    assert (turns[0]["duration"], turns[0]["transcript"]) == (
        Decimal("3.250"),
        "wonderful, thank you",
    )
    conv = call.conversation()
    assert conv is not None
    assert (conv["duration"], conv["turn_count"], conv["sentiment"]) == (
        Decimal("3.250"),
        1,
        "positive",
    )


def test_bad_recordings_are_rejected_with_reasons_and_change_nothing(call: Call) -> None:
    good = call.name(1, "input", "wav")
    put_blob(call.settings, good, wav_bytes(1.5), {"transcript": "hello"})
    assert ingest(call.settings, good).outcome is Outcome.INGESTED
    before = call.conversation()

    flac = fixture("tone-2250ms.flac")
    other_tenant_agent = f"{call.tenant.id}/{call.agent_id}".replace(
        str(call.agent_id), "00000000-0000-4000-8000-000000000000"
    )
    bad = {
        call.name(2, "input", "wav"): (b"", "empty file"),
        call.name(2, "output", "flac"): (flac[: len(flac) // 2], "truncated"),
        call.name(3, "input", "wav"): (PNG_BYTES, "content is not WAV (it looks like PNG image)"),
        f"{call.tenant.id}/loose/recording.wav": (wav_bytes(1), "outside the naming contract"),
        f"{other_tenant_agent}/{call.conversation_id}/000004-input.wav": (
            wav_bytes(1),
            "unknown agent",
        ),
    }
    for name, (data, _) in bad.items():
        put_blob(call.settings, name, data)
    for _ in range(2):  # a redelivery changes nothing either
        for name, (_, reason) in bad.items():
            result = ingest(call.settings, name)
            assert result.outcome is Outcome.REJECTED, name
            assert reason in result.reason
    for name, (_, reason) in bad.items():
        rows = _rejections(call, name)
        assert len(rows) == 1
        assert reason in rows[0]["reason"]
    assert call.conversation() == before
    assert len(_turns(call)) == 1

    nxt = call.name(2, "output", "mp3")
    put_blob(call.settings, nxt, fixture("tone-1250ms.mp3"))
    assert ingest(call.settings, nxt).outcome is Outcome.INGESTED
    conv = call.conversation()
    assert conv is not None
    assert (conv["turn_count"], conv["duration"]) == (2, Decimal("2.750"))


def test_a_good_version_of_a_rejected_blob_is_processed_and_clears_the_rejection(
    call: Call,
) -> None:
    name = call.name(1, "output", "wav")
    put_blob(call.settings, name, PNG_BYTES)
    assert ingest(call.settings, name).outcome is Outcome.REJECTED
    put_blob(call.settings, name, wav_bytes(0.5))
    assert ingest(call.settings, name).outcome is Outcome.INGESTED
    assert _rejections(call, name) == []


def test_a_final_turn_completes_the_conversation_with_numbers_from_metadata(call: Call) -> None:
    meta = {"from_number": "+302101234567", "to_number": "+302107654321"}
    first = call.name(1, "input", "wav")
    put_blob(call.settings, first, wav_bytes(1), meta)
    ingest(call.settings, first)
    last = call.name(1, "output", "wav")
    put_blob(call.settings, last, wav_bytes(1), {"final": "true"})
    ingest(call.settings, last)
    conv = call.conversation()
    assert conv is not None
    assert conv["status"] == "Completed"
    assert conv["ended_at"] is not None
    assert (conv["from_number"], conv["to_number"]) == ("+302101234567", "+302107654321")
    assert conv["started_at"] <= conv["last_activity_at"]


def test_a_table_storage_outage_raises_until_the_history_is_written(call: Call) -> None:
    """The Table write comes after the commit (no network call under the row lock): an outage
    raises every time, so the host retries; the retry finds the turn committed (a duplicate,
    counted once) and writes the history entity."""
    name = call.name(1, "input", "wav")
    put_blob(call.settings, name, wav_bytes(1.0))
    assert call.settings.storage_connection_string is not None
    broken = call.settings.storage_connection_string.get_secret_value().replace(
        "TableEndpoint=http://127.0.0.1:", "TableEndpoint=http://127.0.0.1:1#"
    )
    assert broken != call.settings.storage_connection_string.get_secret_value()
    down = call.settings.model_copy(update={"storage_connection_string": SecretStr(broken)})
    for _ in range(attempts.MAX_ATTEMPTS + 1):  # a transient fault is never given up on
        with pytest.raises(AzureError):
            with_services(down, lambda services: ingest_blob(services=services, blob_name=name))
    assert _rejections(call, name) == []
    assert len(_turns(call)) == 1
    assert ingest(call.settings, name).outcome is Outcome.DUPLICATE  # the host's retry
    conversation = call.conversation()
    assert conversation is not None
    assert conversation["turn_count"] == 1
    history = call.tenant.client.get(f"/kalimera/conversations/{call.conversation_id}").json()
    assert [t["seq"] for t in history["turns"]] == [1]


def test_a_postgres_outage_raises_so_the_host_retries(call: Call) -> None:
    name = call.name(1, "input", "wav")
    put_blob(call.settings, name, wav_bytes(1.0))
    down = call.settings.model_copy(
        update={"database_url": SecretStr("postgresql://postgres@127.0.0.1:1/none")}
    )
    with pytest.raises(DatabaseUnavailable):
        with_services(down, lambda services: ingest_blob(services=services, blob_name=name))
    assert ingest(call.settings, name).outcome is Outcome.INGESTED


def test_an_older_version_read_late_does_not_replace_a_newer_one(call: Call) -> None:
    name = call.name(1, "input", "wav")
    put_blob(call.settings, name, wav_bytes(1.0))

    async def read_then_lose(services: Services) -> Outcome:
        # Read version 1 fully (as a slow worker would), let version 2 be written and ingested,
        # then let the slow worker write what it read.
        path = recording.parse(name)
        container = services.recordings
        blob = container.get_blob_client(name)
        head = await reading.head(blob)
        sidecar = recording.read_sidecar(container, path)
        old = await reading.read(blob, path, head, sidecar)
        await blob.upload_blob(wav_bytes(4.0), overwrite=True)
        assert (await ingest_blob(services=services, blob_name=name)).outcome is Outcome.INGESTED
        current = await reading.current_etag(blob)
        async with transaction(await services.db(), tenant_id=path.tenant_id) as conn:
            written = await ingest_module._write(services, conn, old, container.url, current or "")
        return written.outcome

    assert with_services(call.settings, read_then_lose) is Outcome.SUPERSEDED
    conv = call.conversation()
    assert conv is not None
    assert (conv["duration"], conv["turn_count"]) == (Decimal("4.000"), 1)


def test_a_sidecar_written_after_its_recording_updates_the_turn_once(call: Call) -> None:
    audio = call.name(1, "input", "wav")
    put_blob(call.settings, audio, wav_bytes(1.0), {"transcript": "hello"})
    assert ingest(call.settings, audio).outcome is Outcome.INGESTED
    sidecar = call.name(1, "input", "json")
    assert ingest(call.settings, call.name(2, "input", "json")).outcome is Outcome.IGNORED
    put_blob(call.settings, sidecar, b'{"transcript": "This is awful, I am angry."}')
    for _ in range(3):  # the sidecar's event, redelivered, and the audio's event again
        ingest(call.settings, sidecar)
        ingest(call.settings, audio)
    turns = _turns(call)
    assert [t["transcript"] for t in turns] == ["This is awful, I am angry."]
    conv = call.conversation()
    assert conv is not None
    assert (conv["turn_count"], conv["duration"], conv["sentiment"]) == (
        1,
        Decimal("1.000"),
        "negative",
    )
    processed = query(
        call.settings,
        "SELECT etag FROM kalimera_processed_recordings WHERE blob_name = %(b)s",
        {"b": audio},
    )
    assert len(processed) == 2  # the audio alone, then the audio with its sidecar


def test_an_error_nobody_expected_is_retried_a_few_times_then_a_listed_rejection(
    call: Call, settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fault in the probe that no check foresaw (as Ogg Opus once raised AttributeError): the
    # probe is replaced, the stores are the real ones.
    def broken_probe(ext: str, file: object) -> None:
        raise RuntimeError("an unforeseen fault")

    name = call.name(1, "input", "wav")
    put_blob(call.settings, name, wav_bytes(1.0))
    monkeypatch.setattr(audio, "probe", broken_probe)
    for _ in range(attempts.MAX_ATTEMPTS - 1):  # the host retries: the fault may pass
        with pytest.raises(RuntimeError, match="an unforeseen fault"):
            ingest(call.settings, name)
    result = ingest(call.settings, name)
    assert result.outcome is Outcome.REJECTED
    assert result.reason == "internal error: RuntimeError: an unforeseen fault"
    assert [r["reason"] for r in _rejections(call, name)] == [result.reason]
    assert ingest(call.settings, name).outcome is Outcome.REJECTED  # a redelivery: no raise
    assert call.conversation() is None

    listed = kalimera(settings_env, "ingest", "failures", "--limit", "1000")
    assert listed.returncode == 0, listed.stderr
    assert "internal error: RuntimeError" in listed.stdout  # (its only source in the suite)

    monkeypatch.undo()  # the fix is deployed; the operator replays the blob
    replayed = kalimera(settings_env, "ingest", "replay", name)
    assert replayed.returncode == 0, replayed.stderr
    assert _rejections(call, name) == []
    conv = call.conversation()
    assert conv is not None
    assert conv["duration"] == Decimal("1.000")


def test_a_name_with_upper_case_uuids_works_end_to_end_under_the_name_as_written(
    server: Server, tenant: Tenant
) -> None:
    call = Call(server.settings, tenant)
    name = call.name(1, "input", "wav").upper().replace("-INPUT.WAV", "-input.wav")
    sidecar = name.replace(".wav", ".json")
    put_blob(call.settings, name, wav_bytes(2.0))
    put_blob(call.settings, sidecar, b'{"transcript": "Thank you, that was wonderful."}')
    assert ingest(call.settings, name).outcome is Outcome.INGESTED
    turns = _turns(call)
    assert [(t["blob_name"], t["transcript"]) for t in turns] == [
        (name, "Thank you, that was wonderful.")
    ]
    conv = call.conversation()
    assert conv is not None
    assert conv["input_file_url"].endswith(f"/kalimera-voice/{name}")

    # A new version of the blob replaces the turn (the staleness check reads the blob by the
    # name as written; a rebuilt lower-case name would find no blob and drop the new version).
    put_blob(call.settings, name, wav_bytes(3.0))
    assert ingest(call.settings, name).outcome is Outcome.INGESTED
    assert [t["duration"] for t in _turns(call)] == [Decimal("3.000")]

    response = tenant.client.get(f"/kalimera/conversations/{call.conversation_id}")
    assert response.status_code == 200, response.text
    [turn] = response.json()["turns"]
    assert turn["transcript"] == "Thank you, that was wonderful."
    downloaded = httpx.get(turn["audio_url"], timeout=30)
    assert downloaded.status_code == 200
    assert downloaded.content == wav_bytes(3.0)


@pytest.mark.parametrize(
    ("last_part", "reason"),
    [
        ("1-input.wav", "seq must be six digits, zero-padded (000001), not '1'"),
        ("000001-INPUT.wav", "direction must be lower case (input or output), not 'INPUT'"),
        ("000001-caller.wav", "direction must be input or output, not 'caller'"),
        ("000001-input.WAV", "the extension must be lower case (.wav), not .WAV"),
    ],
)
def test_a_name_in_another_non_canonical_form_is_a_rejection_that_says_why(
    call: Call, last_part: str, reason: str
) -> None:
    name = call.name(1, "input", "wav").rsplit("/", 1)[0] + "/" + last_part
    put_blob(call.settings, name, wav_bytes(1.0))
    result = ingest(call.settings, name)
    assert (result.outcome, result.reason) == (Outcome.REJECTED, reason)
    assert [r["reason"] for r in _rejections(call, name)] == [reason]
    assert call.conversation() is None
