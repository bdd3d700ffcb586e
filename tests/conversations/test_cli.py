"""``kalimera ingest failures`` and ``kalimera ingest replay BLOB`` for operators."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conversations.audio_fixtures import PNG_BYTES, wav_bytes
from tests.conversations.conftest import Call, put_blob


def _kalimera(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kalimera", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_operator_sees_a_rejection_and_replays_the_fixed_blob(
    call: Call, settings_env: dict[str, str]
) -> None:
    name = call.name(1, "input", "wav")
    put_blob(call.settings, name, PNG_BYTES)
    replayed = _kalimera(settings_env, "ingest", "replay", f"kalimera-voice/{name}")
    assert replayed.returncode == 1
    assert "rejected" in replayed.stdout
    assert "looks like PNG" in replayed.stdout

    listed = _kalimera(settings_env, "ingest", "failures", "--limit", "1000")
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if str(call.conversation_id) in line)
    assert "content is not WAV" in line

    put_blob(call.settings, name, wav_bytes(0.5))
    replayed = _kalimera(settings_env, "ingest", "replay", name)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.startswith("ingested")
    listed = _kalimera(settings_env, "ingest", "failures", "--limit", "1000")
    assert str(call.conversation_id) not in listed.stdout
