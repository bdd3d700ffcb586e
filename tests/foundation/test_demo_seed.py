"""``kalimera demo seed`` beside a running ``kalimera run``: it finds the run's stack (its Azurite
on the ports of this run) and fills every console page with data the API serves: a call whose
turns' audio URLs download real speech, its analysis, its caller as a contact, webhook
deliveries in the log."""

import io
import os
import signal
import subprocess
import wave
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from kalimera.dev.localstack import free_port
from kalimera.dev.running import RECORD
from tests.support.cli import kalimera, start_run

pytestmark = pytest.mark.slow

CALLS = 2


def test_demo_seed_fills_the_console_of_a_running_stack_with_playable_analysed_calls(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    env = _local_env(tmp_path, database_url, redis_url)
    port = free_port()
    run, token = start_run(env, port, tmp_path / "run.log")
    try:
        assert (tmp_path / RECORD).exists()
        _seed(env)
        _check(port, token)
    finally:
        _stop(run)
    assert not (tmp_path / RECORD).exists()


def test_demo_seed_without_a_run_starts_the_stack_and_the_next_run_serves_its_calls(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    env = _local_env(tmp_path, database_url, redis_url)
    _seed(env)
    assert list(tmp_path.glob("stack-*.pids")) == []  # the seed's Azurite was stopped
    with psycopg.connect(database_url) as conn:  # a bulk load ends with VACUUM (ANALYZE)
        row = conn.execute(
            "SELECT last_vacuum, last_analyze FROM pg_stat_user_tables"
            " WHERE relname = 'kalimera_conversations'"
        ).fetchone()
    assert row is not None
    assert None not in row
    port = free_port()
    run, token = start_run(env, port, tmp_path / "run.log")
    try:
        _check(port, token)
    finally:
        _stop(run)


def _local_env(local: Path, database_url: str, redis_url: str) -> dict[str, str]:
    """A developer's shell: no storage set (``kalimera run`` starts Azurite on free ports)."""
    return {
        **os.environ,
        "KALIMERA_LOCAL_DIR": str(local),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "KALIMERA_ENV": "development",
    }


def _seed(env: dict[str, str]) -> None:
    args = ("--tenants", "1", "--conversations", "40", "--days", "3", "--calls", str(CALLS))
    seeded = kalimera(env, "demo", "seed", *args, timeout=300)
    assert seeded.returncode == 0, seeded.stderr
    assert f"and {CALLS} recorded calls ({4 * CALLS} turns, analysed)" in seeded.stderr


def _check(port: int, token: str) -> None:
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as api:
        _check_calls(api)
        _check_contacts(api)
        _check_webhooks(api)


def _stop(run: subprocess.Popen[bytes]) -> None:
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=30) == 0


def _get(api: httpx.Client, path: str, **params: Any) -> Any:
    answer = api.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _check_calls(api: httpx.Client) -> None:
    """The recorded calls (the statistics rows have no recordings): each has its turns in
    order, each turn's audio is a WAV of speech as long as the turn, and an analysis."""
    listed = _get(api, "/kalimera/conversations", limit=100)["items"]
    recorded = [c for c in listed if c["input_file_url"]]
    assert len(recorded) == CALLS
    for listed_call in recorded:
        call = _get(api, f"/kalimera/conversations/{listed_call['id']}")
        assert call["status"] == "Completed"
        assert [t["direction"] for t in call["turns"]] == ["input", "output"] * 2
        for turn in call["turns"]:
            assert turn["transcript"]
            audio = httpx.get(turn["audio_url"], timeout=30)
            assert audio.status_code == 200
            with wave.open(io.BytesIO(audio.content)) as wav:
                seconds = wav.getnframes() / wav.getframerate()
                assert wav.getframerate() == 8000
                frames = wav.readframes(wav.getnframes())
            assert float(turn["duration"]) == pytest.approx(seconds, abs=0.01)
            assert seconds > 1
            assert max(frames) > 0  # not silence
        analysis = call["analysis"]
        assert analysis["status"] == "done", analysis
        assert analysis["summary"]
        assert analysis["success"]["result"] in ("pass", "fail")
        assert analysis["data"]["intent"] in ("booking", "cancel", "question")
        assert call["ended_reason"]
        assert call["cost"]["total"] > 0
        assert call["latency"]["turns"] == 2


def _check_contacts(api: httpx.Client) -> None:
    """The scripts' callers are contacts, and a recorded call is its caller's."""
    contacts = {c["last_name"]: c for c in _get(api, "/kalimera/contact", per_page=100)["contacts"]}
    assert {"Papadopoulou", "Nikolaou", "Vlachou", "Antoniou"} <= set(contacts)
    maria = contacts["Papadopoulou"]["id"]
    (call,) = _get(api, "/kalimera/conversations", contact_id=maria)["items"]
    assert call["contact_id"] == maria
    assert call["input_file_url"]


def _check_webhooks(api: httpx.Client) -> None:
    """Two endpoints, each with deliveries that were tried: 204s to the one, 503s to the other."""
    endpoints = {e["url"].rsplit("/", 1)[1]: e for e in _get(api, "/kalimera/webhooks")["items"]}
    assert set(endpoints) == {"crm", "legacy"}
    statuses = {}
    for name, endpoint in endpoints.items():
        page = _get(api, f"/kalimera/webhooks/{endpoint['id']}/deliveries", limit=100)
        assert page["items"], name
        statuses[name] = {a["status"] for d in page["items"] for a in d["attempts"]}
    assert statuses["crm"] == {204}
    assert 503 in statuses["legacy"]
