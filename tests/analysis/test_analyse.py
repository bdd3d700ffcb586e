"""The analysis with a model (the fake Chat Completions server, a real HTTP server): Greek and
English calls end to end, one model call per plan and transcript version whatever the queue
redelivers, a refused answer stored as ``failed``, the model's sentiment on the conversation and
its cost in the conversation's total, stale answers kept apart, and bulk runs that skip what is
analysed already."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from kalimera import outbox
from kalimera.analysis.pipeline import MAX_DEQUEUE, handle
from kalimera.dev.poller import consume_message, receive
from kalimera.services import Services
from kalimera.settings import Settings
from tests.analysis.conftest import PLAN, plan_path
from tests.conftest import Server, Tenant
from tests.support.analysis import drain, drain_with, ended_calls, results, say
from tests.support.calls import Call, make_agent, query, with_services
from tests.support.fake_openai import FakeOpenAI
from tests.support.settings import settings_with

COST = {"currency": "EUR", "telephony": 0.012}


@pytest.fixture
def model(fake_openai: FakeOpenAI, settings_env: dict[str, str]) -> Settings:
    """The suite's settings with the fake model configured and priced."""
    return settings_with(
        settings_env,
        KALIMERA_LLM_BASE_URL=fake_openai.base_url,
        KALIMERA_LLM_API_KEY="test-key",
        KALIMERA_LLM_MODEL="fake-gpt",
        KALIMERA_LLM_PRICE_INPUT="400",
        KALIMERA_LLM_PRICE_OUTPUT="1600",
    )


def _mine(fake: FakeOpenAI, words: str) -> int:
    """The model requests about this call (other tests' leftovers may reach the fake too)."""
    return sum(words in r.transcript for r in fake.requests)


def _conversation(tenant: Tenant, conversation_id: object) -> dict[str, Any]:
    response = tenant.client.get(f"/kalimera/conversations/{conversation_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _with_plan(call: Call) -> int:
    put = call.tenant.client.put(plan_path(str(call.agent_id)), json=PLAN)
    assert put.status_code == 200, put.text
    return int(put.json()["version"])


def test_an_english_call_is_analysed_end_to_end(
    call: Call, model: Settings, fake_openai: FakeOpenAI
) -> None:
    version = _with_plan(call)
    words = "Hello, I would like to book a table for four on Christmas Eve."
    say(call, [("input", words), ("output", "Of course, four on the 24th at eight.")], final=False)
    url = f"/kalimera/conversations/{call.conversation_id}"
    assert call.tenant.client.patch(url, json={"status": "Completed", "cost": COST}).is_success
    drain_with(model)
    conv = _conversation(call.tenant, call.conversation_id)
    analysis = conv["analysis"]
    assert analysis["status"] == "done", analysis
    assert analysis["plan_version"] == version
    assert analysis["summary"].startswith("Hello, I would like")
    assert analysis["success"]["result"] in ("pass", "fail")
    assert analysis["success"]["rationale"]
    assert set(analysis["data"]) == {"party_size", "date", "intent"}
    assert analysis["model"] == "fake-gpt"
    assert analysis["input_tokens"] > 0
    assert analysis["output_tokens"] > 0
    assert analysis["cost"] > 0
    # The model's sentiment is the conversation's; its cost joins telephony's in the total.
    assert conv["sentiment"] == analysis["sentiment"]["label"]
    assert conv["cost"]["total"] == pytest.approx(0.012 + analysis["cost"], abs=1e-6)
    # One request, the transcript in order as Caller/Agent lines with their offsets.
    (request,) = [r for r in fake_openai.requests if words in r.transcript]
    caller = request.transcript.index(f"Caller: {words}")
    assert request.transcript.index("Agent: Of course") > caller
    row = call.conversation()
    assert row is not None
    assert (row["success_rubric"], row["success_result"]) == (
        "pass_fail",
        analysis["success"]["result"],
    )
    assert float(row["analysis_cost"]) == pytest.approx(analysis["cost"])


def test_a_greek_call_gets_its_summary_and_sentiment_from_the_model(
    call: Call, model: Settings, fake_openai: FakeOpenAI
) -> None:
    words = "Καλησπέρα, θα ήθελα να κλείσω ένα τραπέζι για τέσσερις αύριο το βράδυ."
    say(call, [("input", words), ("output", "Βεβαίως, για τέσσερις άτομα αύριο στις οκτώ.")])
    before = call.conversation()
    assert before is not None
    assert before["analysis_status"] == "pending"
    drain_with(model)
    conv = _conversation(call.tenant, call.conversation_id)
    analysis = conv["analysis"]
    assert analysis["status"] == "done", analysis
    assert analysis["plan_version"] == 0  # the default plan: summary and sentiment
    assert analysis["summary"].startswith("Καλησπέρα, θα ήθελα")
    assert analysis["success"] is None
    assert analysis["data"] is None
    assert conv["sentiment"] == analysis["sentiment"]["label"] != "unknown"
    assert _mine(fake_openai, words) == 1


def test_a_redelivered_message_calls_no_model_and_a_rerun_shows_the_stored_result(
    call: Call, model: Settings, fake_openai: FakeOpenAI
) -> None:
    words = "Hi, can I move my booking to Saturday?"
    say(call, [("input", words), ("output", "Done, Saturday at seven.")])
    body = outbox.message(
        {
            "kind": "analyse",
            "tenant_id": call.tenant.id,
            "conversation_id": call.conversation_id,
            "run_id": None,
            "reason": "ended",
        }
    ).decode()

    async def twice(services: Services) -> None:
        await drain(services)
        for _ in range(2):  # the same message again, as an at-least-once queue may deliver it
            await services.analysis_queue.send_message(body)
        await drain(services)

    with_services(model, twice)
    assert _mine(fake_openai, words) == 1
    assert [r["status"] for r in results(call.settings, call.conversation_id)] == ["done"]
    done = _conversation(call.tenant, call.conversation_id)["analysis"]

    # Asked again with the same plan and transcript: pending, then the stored result, no call.
    asked = call.tenant.client.post(f"/kalimera/conversations/{call.conversation_id}/analysis")
    assert asked.status_code == 202
    assert _conversation(call.tenant, call.conversation_id)["analysis"]["status"] == "pending"
    drain_with(model)
    assert _conversation(call.tenant, call.conversation_id)["analysis"] == done
    assert _mine(fake_openai, words) == 1


def test_two_invalid_answers_are_stored_as_failed_with_the_reason(
    call: Call, model: Settings, fake_openai: FakeOpenAI
) -> None:
    words = "I need a table, but I am not sure when."
    fake_openai.violate(times=2)
    say(call, [("input", words)])
    drain_with(model)
    analysis = _conversation(call.tenant, call.conversation_id)["analysis"]
    assert analysis["status"] == "failed"
    assert analysis["error"]
    assert analysis["summary"] is None
    assert _mine(fake_openai, words) == 2  # the answer and its one repair
    # A failed result does not block the next try: asked again, it is analysed.
    call.tenant.client.post(f"/kalimera/conversations/{call.conversation_id}/analysis")
    drain_with(model)
    assert _conversation(call.tenant, call.conversation_id)["analysis"]["status"] == "done"
    assert [r["status"] for r in results(call.settings, call.conversation_id)] == ["done"]


def test_a_model_that_is_down_leaves_the_message_for_the_queue_to_retry(
    call: Call, model: Settings, fake_openai: FakeOpenAI
) -> None:
    words = "Is the terrace open tonight?"
    say(call, [("input", words)])
    fake_openai.fail(503, retry_after="0", times=5)

    async def once(services: Services) -> list[bool]:
        settled = []
        for message in await receive(services, 32):
            settled.append(await consume_message(services, message, retry_seconds=0))
        return settled

    with_services(model, once)
    assert _conversation(call.tenant, call.conversation_id)["analysis"]["status"] == "pending"
    drain_with(model)  # redelivered: the model is back
    assert _conversation(call.tenant, call.conversation_id)["analysis"]["status"] == "done"


def test_a_stale_answer_is_kept_but_does_not_replace_the_newer_request(
    call: Call, model: Settings, fake_openai: FakeOpenAI
) -> None:
    words = "Do you have gluten free pasta?"
    say(call, [("input", words)])
    fake_openai.slow(3)
    worker = threading.Thread(target=drain_with, args=(model,))
    worker.start()
    deadline = time.monotonic() + 20
    while not _mine(fake_openai, words):  # the model is answering the first transcript
        assert time.monotonic() < deadline
        time.sleep(0.05)
    say(call, [("output", "Yes, we do, and gluten free pizza too.")], final=False, first=1)
    worker.join()
    drain_with(model)
    stored = results(call.settings, call.conversation_id)
    assert [(r["transcript_version"], r["status"]) for r in stored] == [(1, "done"), (2, "done")]
    row = call.conversation()
    assert row is not None
    assert row["transcript_version"] == 2
    assert row["analysis"] == stored[1]["analysis"]


def test_a_bulk_run_skips_what_the_plan_version_has_analysed(
    server: Server, tenant: Tenant, model: Settings, fake_openai: FakeOpenAI
) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    ended_calls(server, tenant, agent_id, 3)
    drain_with(model)  # analysed at their end with the default plan (version 0)
    runs = f"/kalimera/ai-agent/{agent_id}/analysis-runs"
    today = query(server.settings, "SELECT (now() AT TIME ZONE 'UTC')::date AS d", {})[0]["d"]
    span = {"since": str(today), "until": str(today)}
    assert tenant.client.post(runs, json={**span, "plan_version": 0}).json()["total"] == 0
    put = tenant.client.put(plan_path(str(agent_id)), json=PLAN)
    assert put.status_code == 200, put.text
    before = len(fake_openai.requests)
    run = tenant.client.post(runs, json=span).json()
    assert run["total"] == 3
    drain_with(model)
    got = tenant.client.get(f"/kalimera/analysis-runs/{run['id']}").json()
    assert (got["status"], got["done"], got["failed"]) == ("done", 3, 0)
    assert len(fake_openai.requests) - before == 3
    assert tenant.client.post(runs, json=span).json()["total"] == 0


def test_on_the_last_try_a_model_still_down_is_stored_as_failed(
    call: Call, model: Settings, fake_openai: FakeOpenAI
) -> None:
    say(call, [("input", "Are you open on Sunday?")])
    drain_with(call.settings)  # the request relayed, analysed as skipped without a model
    body = outbox.message(
        {
            "kind": "analyse",
            "tenant_id": call.tenant.id,
            "conversation_id": call.conversation_id,
            "run_id": None,
            "reason": "rerun",
        }
    )
    fake_openai.fail(503, retry_after="0", times=5)

    async def last(services: Services) -> str:
        return await handle(services=services, body=body, dequeue_count=MAX_DEQUEUE)

    assert with_services(model, last) == "failed"
    analysis = _conversation(call.tenant, call.conversation_id)["analysis"]
    assert analysis["status"] == "failed"
    assert "unavailable" in analysis["error"]
