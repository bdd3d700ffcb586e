"""``kalimera ingest failures`` and ``kalimera ingest replay BLOB`` for operators."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

from tests.conftest import make_token
from tests.support.audio_fixtures import PNG_BYTES, wav_bytes
from tests.support.calls import Call, put_blob
from tests.support.cli import kalimera


def test_an_operator_sees_a_rejection_and_replays_the_fixed_blob(
    call: Call, settings_env: dict[str, str]
) -> None:
    name = call.name(1, "input", "wav")
    put_blob(call.settings, name, PNG_BYTES)
    replayed = kalimera(settings_env, "ingest", "replay", f"kalimera-voice/{name}")
    assert replayed.returncode == 1
    assert "rejected" in replayed.stdout
    assert "looks like PNG" in replayed.stdout

    listed = kalimera(settings_env, "ingest", "failures", "--limit", "1000")
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if str(call.conversation_id) in line)
    assert "content is not WAV" in line

    put_blob(call.settings, name, wav_bytes(0.5))
    replayed = kalimera(settings_env, "ingest", "replay", name)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.startswith("ingested")
    listed = kalimera(settings_env, "ingest", "failures", "--limit", "1000")
    assert str(call.conversation_id) not in listed.stdout


def _on_a_terminal(env: dict[str, str], *args: str, columns: int = 80) -> str:
    """Run the CLI with its stdout on a pseudo-terminal ``columns`` wide; what it printed."""
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "kalimera", *args],
        env={**os.environ, **env, "COLUMNS": str(columns), "LINES": "50"},
        stdout=follower,
        stderr=subprocess.DEVNULL,
    ) as proc:
        os.close(follower)
        out = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        proc.wait(timeout=60)
    os.close(leader)
    return out.decode("utf-8", "replace")


def test_failures_show_whole_names_to_paste_into_replay_filtered_by_tenant_and_time(
    call: Call, settings_env: dict[str, str]
) -> None:
    names = [call.name(seq, "input", "wav") for seq in (1, 2)]
    for name in names:
        put_blob(call.settings, name, PNG_BYTES)
        assert kalimera(settings_env, "ingest", "replay", name).returncode == 1
    tenant = str(call.tenant.id)

    piped = kalimera(settings_env, "ingest", "failures", "--tenant", tenant)
    assert piped.returncode == 0, piped.stderr
    lines = [line.split("\t") for line in piped.stdout.splitlines()]
    assert sorted(line[0] for line in lines) == sorted(names)  # whole names, no heading
    assert {len(line) for line in lines} == {5}
    assert {line[4] for line in lines} == {tenant}

    listed = kalimera(settings_env, "ingest", "failures", "--tenant", tenant, "--json")
    rows = json.loads(listed.stdout)
    assert sorted(r["blob_name"] for r in rows) == sorted(names)
    assert all("content is not WAV" in r["reason"] for r in rows)
    assert all(datetime.fromisoformat(r["rejected_at"]).tzinfo for r in rows)

    later = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")
    earlier = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    for since, expected in ((later, 0), (earlier, 2)):
        found = kalimera(
            settings_env, "ingest", "failures", "--tenant", tenant, "--since", since, "--json"
        )
        assert len(json.loads(found.stdout)) == expected, (since, found.stderr)
    nobody = kalimera(settings_env, "ingest", "failures", "--tenant", str(uuid.uuid4()))
    assert (nobody.returncode, nobody.stdout) == (0, "")
    bad = kalimera(settings_env, "ingest", "failures", "--since", "yesterday")
    assert bad.returncode == 2

    on_terminal = _on_a_terminal(settings_env, "ingest", "failures", "--tenant", tenant)
    assert "┏" in on_terminal  # the table a terminal gets
    assert "…" not in on_terminal
    for name in names:
        assert name in on_terminal  # whole, on one line, though longer than the terminal

    put_blob(call.settings, names[0], wav_bytes(0.5))
    pasted = lines[[line[0] for line in lines].index(names[0])][0]
    replayed = kalimera(settings_env, "ingest", "replay", pasted)
    assert replayed.stdout.startswith("ingested"), replayed.stdout


def test_token_list_prints_tab_separated_lines_json_or_a_table(
    call: Call, settings_env: dict[str, str]
) -> None:
    tenant = uuid.uuid4()
    token = make_token(call.settings, tenant)
    piped = kalimera(settings_env, "token", "list", "--tenant", str(tenant))
    assert piped.returncode == 0, piped.stderr
    [line] = piped.stdout.splitlines()
    fields = line.split("\t")
    assert len(fields) == 8
    uuid.UUID(fields[0])
    assert fields[1] == str(tenant)
    assert "conversations:write" in fields[3].split(",")
    assert fields[6] == "-"  # not revoked
    assert fields[7] == "-"  # never expires

    [row] = json.loads(
        kalimera(settings_env, "token", "list", "--tenant", str(tenant), "--json").stdout
    )
    assert row["id"] == fields[0]
    assert row["tenant_id"] == str(tenant)
    assert row["revoked_at"] is None
    assert row["expires_at"] is None
    assert isinstance(row["scopes"], list)

    on_terminal = _on_a_terminal(settings_env, "token", "list", "--tenant", str(tenant))
    assert "┏" in on_terminal
    assert fields[0] in on_terminal
    assert "…" not in on_terminal
    for output in (piped.stdout, on_terminal):
        assert token not in output
