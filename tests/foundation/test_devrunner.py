"""``kalimera run``: serves, prints a working token, SIGTERM stops all it started, and SIGKILL
leaves nothing running that the next run would trip over."""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from kalimera.dev.localstack import LocalStack, free_port
from tests.support.cli import start_run

pytestmark = pytest.mark.slow


def test_run_serves_prints_a_token_and_stops_everything_on_sigterm(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "KALIMERA_LOCAL_DIR": str(tmp_path),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "KALIMERA_ENV": "development",
    }
    log = tmp_path / "run.log"
    proc, _ = start_run(env, port, log)
    try:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/kalimera/health").json()["status"] == "ok"
        assert (tmp_path / "encryption.key").exists()
        azurite = (tmp_path / "azurite.pid").read_text()
        assert azurite == str(proc.pid)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "stopped azurite" in log.read_text()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/kalimera/health")
        assert not (tmp_path / "azurite.pid").exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def _processes_mentioning(text: str) -> list[int]:
    """Pids of the processes whose command line contains ``text`` (read from /proc)."""
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and text in " ".join(_cmdline(int(entry.name))) + " "
    ]


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name; None when gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields


def _children_of(pid: int) -> dict[int, str]:
    """The live children of ``pid`` and their start times (to tell them from a reused pid)."""
    found = {}
    for entry in Path("/proc").iterdir():
        fields = _proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and int(fields[1]) == pid:
            found[int(entry.name)] = fields[19]
    return found


def _alive(pid: int, started: str) -> bool:
    fields = _proc_stat(pid)
    return fields is not None and fields[19] == started


def _wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.fixture
def local_dir() -> Iterator[Path]:
    """A ``.local`` the postgres user can reach (pytest's own temp folders are 0700), so the
    private Postgres lives in it as it does in the repository's ``.local``."""
    path = Path(tempfile.mkdtemp(prefix="kalimera-local-"))
    path.chmod(0o755)
    yield path
    for pid in _processes_mentioning(str(path)):  # what a failing run left behind
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(path, ignore_errors=True)


def test_a_run_killed_with_sigkill_leaves_nothing_running_and_the_next_run_works(
    local_dir: Path,
) -> None:
    """Private Postgres, Redis and Azurite (nothing answers on the URLs given): after SIGKILL
    every one of them stops by itself, and the next run gets `.local/azurite` to itself."""
    tmp_path = local_dir
    closed = free_port()
    env = {
        **os.environ,
        "KALIMERA_LOCAL_DIR": str(tmp_path),
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed}/kalimera",
        "REDIS_URL": f"redis://127.0.0.1:{closed}/0",
        "KALIMERA_ENV": "development",
    }
    azurite_folder = f"--location {tmp_path / 'azurite'} "
    first, first_token = start_run(env, free_port(), tmp_path / "first.log")
    second = None
    try:
        # Azurite, Redis and the Postgres watcher are its children; Postgres itself is a daemon
        # (pg_ctl detaches it), found by the pid in its data folder's postmaster.pid.
        started = _children_of(first.pid)
        assert len(started) >= 2, started  # Azurite, Redis (and the Postgres watcher)
        postmaster = int((tmp_path / "postgres" / "postmaster.pid").read_text().split()[0])
        fields = _proc_stat(postmaster)
        assert fields is not None
        started[postmaster] = fields[19]
        assert len(_processes_mentioning(azurite_folder)) == 1

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        # The kernel's parent-death signal stops Azurite and Redis; the watcher stops Postgres.
        assert _wait_until(lambda: not any(_alive(*p) for p in started.items()), 20), [
            _cmdline(pid) for pid, since in started.items() if _alive(pid, since)
        ]
        assert _processes_mentioning(azurite_folder) == []

        second, token = start_run(env, free_port(), tmp_path / "second.log")
        # The first run's stale lock is taken over: the second run uses .local/azurite itself.
        assert (tmp_path / "azurite.pid").read_text() == str(second.pid)
        assert len(_processes_mentioning(azurite_folder)) == 1
        assert not (tmp_path / f"stack-{first.pid}.pids").exists()
        base = f"http://127.0.0.1:{_port_of(tmp_path / 'second.log')}"
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{base}/kalimera/health").json()["status"] == "ok"
        assert httpx.get(f"{base}/kalimera/ai-agent", headers=headers).status_code == 200
        # Each run revokes the previous run's token, so they do not pile up.
        stale = {"Authorization": f"Bearer {first_token}"}
        assert httpx.get(f"{base}/kalimera/ai-agent", headers=stale).status_code == 401

        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
        assert _processes_mentioning(azurite_folder) == []
        assert list(tmp_path.glob("stack-*.pids")) == []
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)


def _port_of(log: Path) -> int:
    found = re.search(r"serving on http://127\.0\.0\.1:(\d+)", log.read_text())
    assert found, log.read_text()
    return int(found.group(1))


def test_a_new_stack_stops_what_a_dead_stack_left_and_leaves_a_live_one_alone(
    tmp_path: Path,
) -> None:
    """The record is the net under the parent-death signal: a process a killed stack left
    (here a `sleep` it never got to stop) is stopped by the next stack; a live stack's is not."""
    dead_owner = subprocess.Popen(["true"])
    dead_owner.wait()
    orphan = subprocess.Popen(["sleep", "300"], start_new_session=True)
    kept = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:

        def entry(proc: subprocess.Popen[bytes]) -> dict[str, object]:
            stat = Path(f"/proc/{proc.pid}/stat").read_text()
            started = stat.rsplit(")", 1)[1].split()[19]
            return {"name": "sleep", "pid": proc.pid, "started": started, "signal": 15}

        me = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()[19]
        (tmp_path / "stack-1.pids").write_text(
            json.dumps({"owner": dead_owner.pid, "started": "1", "children": [entry(orphan)]})
        )
        (tmp_path / "stack-2.pids").write_text(
            json.dumps({"owner": os.getpid(), "started": me, "children": [entry(kept)]})
        )
        with LocalStack(tmp_path):
            assert orphan.wait(timeout=15) == -signal.SIGTERM
            assert kept.poll() is None
        assert not (tmp_path / "stack-1.pids").exists()
        assert (tmp_path / "stack-2.pids").exists()
    finally:
        for proc in (orphan, kept):
            proc.kill()
            proc.wait()
