"""Re-running analyses (docs/analysis.md, "Re-runs"): one call again, and an agent's calls over a
date range in bulk, with progress and cancel; bad input answered as problem+json."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from kalimera.auth import Scope
from tests.conftest import Server, Tenant
from tests.support.analysis import drain_with, ended_calls, outbox_rows, say
from tests.support.calls import Call, make_agent, query
from tests.support.problems import assert_problem

TODAY = datetime.now(UTC).date()


def run_path(agent_id: object) -> str:
    return f"/kalimera/ai-agent/{agent_id}/analysis-runs"


def start_run(tenant: Tenant, agent_id: object, **body: Any) -> dict[str, Any]:
    body = {"since": str(TODAY), "until": str(TODAY), **body}
    response = tenant.client.post(run_path(agent_id), json=body)
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def progress(tenant: Tenant, run_id: str) -> dict[str, Any]:
    response = tenant.client.get(f"/kalimera/analysis-runs/{run_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_one_call_is_analysed_again_on_request(call: Call) -> None:
    say(call, [("input", "I want to cancel my booking."), ("output", "Done, it is cancelled.")])
    drain_with(call.settings)
    url = f"/kalimera/conversations/{call.conversation_id}/analysis"
    asked = call.tenant.client.post(url)
    assert asked.status_code == 202, asked.text
    assert asked.json() == {"conversation_id": str(call.conversation_id), "status": "pending"}
    conv = call.tenant.client.get(f"/kalimera/conversations/{call.conversation_id}").json()
    assert conv["analysis"] == {**conv["analysis"], "status": "pending"}
    assert outbox_rows(call.settings, call.conversation_id) == []  # relayed after the commit
    drain_with(call.settings)
    conv = call.tenant.client.get(f"/kalimera/conversations/{call.conversation_id}").json()
    assert (conv["analysis"]["status"], conv["analysis"]["reason"]) == (
        "skipped",
        "no model configured",
    )


def test_a_rerun_of_an_unknown_or_active_call_is_refused(call: Call) -> None:
    client = call.tenant.client
    assert_problem(client.post(f"/kalimera/conversations/{uuid.uuid4()}/analysis"), 404)
    assert_problem(client.post("/kalimera/conversations/not-a-uuid/analysis"), 422)
    say(call, [("input", "Hello?")], final=False)
    assert_problem(client.post(f"/kalimera/conversations/{call.conversation_id}/analysis"), 409)


def test_a_bulk_run_analyses_the_range_and_reports_progress(server: Server, tenant: Tenant) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    ids = ended_calls(server, tenant, agent_id, 5)
    drain_with(server.settings)  # their end-of-call analyses
    other_agent = make_agent(server.settings, tenant.id)
    ended_calls(server, tenant, other_agent, 1)
    created = start_run(tenant, agent_id)
    # No model: none has a 'done' result, so every call of the agent is in the run, no other.
    assert created["total"] == len(ids)
    first = progress(tenant, created["id"])
    assert (first["status"], first["total"], first["plan_version"]) == ("running", 5, 0)
    drain_with(server.settings)
    done = progress(tenant, created["id"])
    assert {k: done[k] for k in ("status", "total", "done", "failed", "skipped", "cancelled")} == {
        "status": "done",
        "total": 5,
        "done": 0,
        "failed": 0,
        "skipped": 5,
        "cancelled": 0,
    }
    # A range with no calls makes an empty run, done at once.
    empty = start_run(
        tenant,
        agent_id,
        since=str(TODAY - timedelta(days=30)),
        until=str(TODAY - timedelta(days=20)),
    )
    assert empty["total"] == 0
    assert progress(tenant, empty["id"])["status"] == "done"


def test_cancel_stops_what_has_not_started(server: Server, tenant: Tenant) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    ended_calls(server, tenant, agent_id, 4)
    drain_with(server.settings)
    created = start_run(tenant, agent_id)
    cancelled = tenant.client.delete(f"/kalimera/analysis-runs/{created['id']}")
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["cancelled"]) == ("cancelled", 4)
    drain_with(server.settings)  # the messages already sent find their items cancelled
    after = progress(tenant, created["id"])
    assert {k: after[k] for k in ("status", "done", "skipped", "cancelled")} == {
        "status": "cancelled",
        "done": 0,
        "skipped": 0,
        "cancelled": 4,
    }
    results = query(
        server.settings,
        "SELECT count(*) AS n FROM kalimera_analysis_results WHERE tenant_id = %(t)s",
        {"t": tenant.id},
    )
    assert results[0]["n"] == 4  # the end-of-call analyses only: the run added none


def test_bad_run_requests_are_problems(server: Server, tenant: Tenant) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    client = tenant.client
    path = run_path(agent_id)

    def locs(response: Any) -> list[list[Any]]:
        return [e["loc"] for e in assert_problem(response, 422)["errors"]]  # type: ignore[attr-defined]

    assert locs(client.post(path, json={"since": "2026-12-02", "until": "2026-12-01"})) == [
        ["body", "until"]
    ]
    assert ["body", "since"] in locs(
        client.post(path, json={"since": "yesterday", "until": "2026-12-01"})
    )
    assert ["body", "until"] in locs(client.post(path, json={"since": "2026-12-01"}))
    assert locs(
        client.post(path, json={"since": "2026-12-01", "until": "2026-12-01", "plan_version": 7})
    ) == [["body", "plan_version"]]
    assert ["body", "plan_version"] in locs(
        client.post(path, json={"since": "2026-12-01", "until": "2026-12-01", "plan_version": -1})
    )
    assert ["body", "extra"] in locs(
        client.post(path, json={"since": "2026-12-01", "until": "2026-12-01", "extra": 1})
    )
    assert_problem(
        client.post(run_path(uuid.uuid4()), json={"since": "2026-12-01", "until": "2026-12-01"}),
        404,
    )
    assert_problem(client.get(f"/kalimera/analysis-runs/{uuid.uuid4()}"), 404)
    assert_problem(client.delete(f"/kalimera/analysis-runs/{uuid.uuid4()}"), 404)
    assert_problem(client.get("/kalimera/analysis-runs/nope"), 422)


def test_runs_are_the_tenants_own_and_need_their_scopes(
    server: Server, tenant: Tenant, new_tenant: Any
) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    created = start_run(tenant, agent_id)
    other = new_tenant()
    assert_problem(other.client.get(f"/kalimera/analysis-runs/{created['id']}"), 404)
    assert_problem(other.client.delete(f"/kalimera/analysis-runs/{created['id']}"), 404)
    assert_problem(
        other.client.post(run_path(agent_id), json={"since": str(TODAY), "until": str(TODAY)}), 404
    )
    reader = new_tenant(scopes=(Scope.AGENTS_READ, Scope.CONVERSATIONS_READ))
    assert_problem(
        reader.client.post(run_path(agent_id), json={"since": str(TODAY), "until": str(TODAY)}), 403
    )
    assert_problem(reader.client.delete(f"/kalimera/analysis-runs/{created['id']}"), 403)
    assert_problem(reader.client.post(f"/kalimera/conversations/{uuid.uuid4()}/analysis"), 403)
    writer = new_tenant(scopes=(Scope.CONVERSATIONS_WRITE,))
    assert_problem(writer.client.get(f"/kalimera/analysis-runs/{created['id']}"), 403)
