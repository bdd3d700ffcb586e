"""Nothing lost: a recording whose trigger event never came (written to Azurite without calling
the trigger or the poller) is found by the timer's sweep and becomes a turn; a recording that
crashes the ingestion on every try ends as a listed rejection through the sweep too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kalimera.conversations import audio
from kalimera.conversations.attempts import MAX_ATTEMPTS
from kalimera.conversations.ingest import Outcome
from kalimera.conversations.sweep import SweepReport, sweep
from tests.support.audio_fixtures import wav_bytes
from tests.support.calls import Call, put_blob, query, with_services

LATER = timedelta(minutes=30)  # the sweep runs as if this much later: past its grace period


@pytest.fixture(autouse=True)
def fresh_watermark(call: Call) -> None:
    """A sweep run "later" leaves its watermark in the future: each test starts without one."""
    query(call.settings, "DELETE FROM kalimera_ingest_sweep RETURNING id", {})


def _sweep(call: Call, *, at: datetime | None = None) -> SweepReport:
    when = at or datetime.now(UTC) + LATER
    return with_services(call.settings, lambda services: sweep(services=services, now=when))


def _turns(call: Call) -> list[dict[str, Any]]:
    return query(
        call.settings,
        "SELECT seq, direction, duration FROM kalimera_recordings"
        " WHERE tenant_id = %(t)s AND conversation_id = %(c)s ORDER BY seq",
        {"t": call.tenant.id, "c": call.conversation_id},
    )


def test_a_recording_whose_event_was_lost_is_recovered_by_the_sweep(call: Call) -> None:
    name = call.name(1, "input", "wav")
    put_blob(call.settings, name, wav_bytes(1.5))  # no trigger, no poller: the event is lost
    assert _turns(call) == []

    early = _sweep(call, at=datetime.now(UTC))  # within the grace period: left to the trigger
    assert name not in [r.blob_name for r in early.ingested]
    assert _turns(call) == []

    report = _sweep(call)
    assert [(r.blob_name, r.outcome) for r in report.ingested if r.blob_name == name] == [
        (name, Outcome.INGESTED)
    ]
    assert [(t["seq"], t["direction"], str(t["duration"])) for t in _turns(call)] == [
        (1, "input", "1.500")
    ]
    conversation = call.conversation()
    assert conversation is not None
    assert conversation["turn_count"] == 1

    again = _sweep(call)  # accounted for: behind the watermark now, and never ingested twice
    assert name not in [r.blob_name for r in again.ingested]
    assert len(_turns(call)) == 1


def test_a_recording_that_crashes_every_time_ends_as_a_listed_rejection(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = call.name(1, "output", "wav")
    put_blob(call.settings, broken, wav_bytes(0.5))
    real_probe = audio.probe

    def probe(ext: str, file: audio.SparseFile) -> audio.AudioInfo:
        if file.size == len(wav_bytes(0.5)):
            raise RuntimeError("an unforeseen fault")
        return real_probe(ext, file)

    monkeypatch.setattr(audio, "probe", probe)
    for _ in range(MAX_ATTEMPTS - 1):
        report = _sweep(call)
        assert broken in report.failed
    report = _sweep(call)
    assert [(r.blob_name, r.outcome) for r in report.ingested if r.blob_name == broken] == [
        (broken, Outcome.REJECTED)
    ]
    assert query(
        call.settings,
        "SELECT reason FROM kalimera_ingest_rejections WHERE blob_name = %(b)s",
        {"b": broken},
    ) == [{"reason": "internal error: RuntimeError: an unforeseen fault"}]
    assert broken not in _sweep(call).failed  # listed now: the sweep leaves it alone
    assert _turns(call) == []


def test_blobs_behind_the_watermark_cost_no_lookup(call: Call) -> None:
    put_blob(call.settings, call.name(1, "input", "wav"), wav_bytes(0.5))
    first = _sweep(call)
    second = _sweep(call)
    assert first.checked >= 1
    assert second.watermark >= first.watermark
    assert second.listed >= 1
    assert second.checked == 0
