"""``kalimera analysis rerun``: makes a bulk run, follows it to the end with a progress bar,
and says what is wrong with bad input."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

from tests.conftest import Server, Tenant
from tests.support.analysis import drain_with, ended_calls
from tests.support.calls import make_agent
from tests.support.cli import kalimera

TODAY = str(datetime.now(UTC).date())


def test_rerun_follows_the_run_to_the_end(
    server: Server, tenant: Tenant, settings_env: dict[str, str]
) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    ended_calls(server, tenant, agent_id, 3)
    drain_with(server.settings)
    stop = threading.Event()

    def consumer() -> None:  # what `kalimera run` or the queue trigger does meanwhile
        while not stop.is_set():
            drain_with(server.settings)
            stop.wait(0.2)

    worker = threading.Thread(target=consumer)
    worker.start()
    try:
        args = ("--tenant", str(tenant.id), "--agent", str(agent_id), "--since", TODAY)
        done = kalimera(settings_env, "analysis", "rerun", *args)
    finally:
        stop.set()
        worker.join()
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    assert uuid.UUID(run_id)
    assert "3 calls" in done.stderr
    assert "done: 0 done, 0 failed, 3 skipped, 0 cancelled of 3" in done.stderr
    got = tenant.client.get(f"/kalimera/analysis-runs/{run_id}").json()
    assert (got["status"], got["skipped"]) == ("done", 3)


def test_rerun_says_what_is_wrong(
    server: Server, tenant: Tenant, settings_env: dict[str, str]
) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    base = ("analysis", "rerun", "--tenant", str(tenant.id), "--agent", str(agent_id))
    backwards = kalimera(settings_env, *base, "--since", TODAY, "--until", "2020-01-01")
    assert backwards.returncode == 1
    assert "until is before since" in backwards.stderr
    unknown = kalimera(settings_env, *base[:4], "--agent", str(uuid.uuid4()), "--since", TODAY)
    assert unknown.returncode == 1
    assert "AI Agent not found" in unknown.stderr
    bad_day = kalimera(settings_env, *base, "--since", "yesterday")
    assert bad_day.returncode == 2
