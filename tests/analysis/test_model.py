"""The model client (docs/analysis.md, "The model") against a real HTTP server that speaks Chat
Completions (``tests/support/fake_openai.py``): what it asks, what it accepts, how it waits and
gives up, how many requests it has in flight, what the answer costs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from kalimera import llm
from kalimera.analysis.model import (
    Analyser,
    AnswerRefused,
    ModelAnswer,
    ModelUnavailable,
    TranscriptLine,
    analyser_for,
)
from kalimera.analysis.models import AnalysisPlan
from kalimera.llm import ChatModel
from kalimera.services import Services
from kalimera.settings import Settings, load_settings
from tests.analysis.conftest import PLAN
from tests.support.fake_openai import FakeOpenAI, tokens

T = TypeVar("T")

ENGLISH = [
    TranscriptLine("Agent", 0.0, "Good evening, Taverna Kalimera, how can I help?"),
    TranscriptLine("Caller", 3.4, "Hi, I'd like to book a table for four on Christmas Eve."),
    TranscriptLine("Agent", 9.0, "Of course. At what time?"),
    TranscriptLine("Caller", 12.7, "Eight o'clock, please. Thank you so much!"),
    TranscriptLine("Agent", 75.2, "Booked: four people, 24 December at 20:00. See you then."),
]
GREEK = [
    TranscriptLine("Agent", 0.0, "Καλησπέρα σας, ταβέρνα Καλημέρα, πώς μπορώ να βοηθήσω;"),
    TranscriptLine("Caller", 2.5, "Θα ήθελα να κλείσω τραπέζι για τέσσερα άτομα την Παραμονή."),
    TranscriptLine("Agent", 8.1, "Βεβαίως. Τι ώρα θα θέλατε;"),
    TranscriptLine("Caller", 11.0, "Στις οκτώ το βράδυ. Ευχαριστώ πολύ!"),
]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def model_settings(fake: FakeOpenAI, *, azure: bool = False, **env: str) -> Settings:
    """The fake as an OpenAI-compatible server with a key, or as an Azure OpenAI resource whose
    deployment is ``analysis`` (no key: the identity's token)."""
    server = (
        {"KALIMERA_LLM_ENDPOINT": fake.endpoint, "KALIMERA_LLM_MODEL": "analysis"}
        if azure
        else {
            "KALIMERA_LLM_BASE_URL": fake.base_url,
            "KALIMERA_LLM_API_KEY": "test-key",
            "KALIMERA_LLM_MODEL": "gpt-4.1-mini",
        }
    )
    return load_settings(**{"KALIMERA_ENV": "development", **server, **env})


def plan(**parts: Any) -> AnalysisPlan:
    return AnalysisPlan.model_validate({**PLAN, **parts})


async def _analyse(
    settings: Settings, p: AnalysisPlan, lines: Sequence[TranscriptLine]
) -> ModelAnswer:
    chat = ChatModel(settings)
    try:
        return await Analyser(chat).analyse(plan=p, lines=lines)
    finally:
        await chat.aclose()


def analyse(fake: FakeOpenAI, p: AnalysisPlan | None = None, **env: str) -> ModelAnswer:
    return run(_analyse(model_settings(fake, **env), p or plan(), ENGLISH))


def test_an_english_call_is_asked_as_ordered_lines_with_a_strict_schema(
    fake_openai: FakeOpenAI,
) -> None:
    answer = analyse(fake_openai)
    (request,) = fake_openai.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.body["model"] == "gpt-4.1-mini"
    system, user = request.body["messages"]
    assert system["role"] == "system"
    assert "at most 80 words" in system["content"]
    assert "Focus on the booking." in system["content"]
    assert "The caller booked a table." in system["content"]
    assert user["content"].endswith(
        "[00:00] Agent: Good evening, Taverna Kalimera, how can I help?\n"
        "[00:03] Caller: Hi, I'd like to book a table for four on Christmas Eve.\n"
        "[00:09] Agent: Of course. At what time?\n"
        "[00:12] Caller: Eight o'clock, please. Thank you so much!\n"
        "[01:15] Agent: Booked: four people, 24 December at 20:00. See you then."
    )
    fmt = request.body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["strict"] is True
    assert request.schema["required"] == ["summary", "success", "data", "sentiment"]
    assert answer.summary == "Hi, I'd like to book a table for four on Christmas Eve."
    assert answer.success == {"rationale": "The rationale, from the call.", "result": "pass"}
    assert answer.data == {"party_size": 1, "date": "2026-12-24", "intent": "booking"}
    assert answer.sentiment == {"label": "positive", "score": 0.5}
    assert answer.model == "gpt-4.1-mini"


def test_a_greek_call_travels_intact_and_gets_a_greek_summary(fake_openai: FakeOpenAI) -> None:
    answer = run(_analyse(model_settings(fake_openai), plan(), GREEK))
    (request,) = fake_openai.requests
    assert "[00:02] Caller: Θα ήθελα να κλείσω τραπέζι για τέσσερα άτομα την Παραμονή." in (
        request.transcript
    )
    assert answer.summary == "Θα ήθελα να κλείσω τραπέζι για τέσσερα άτομα την Παραμονή."


@pytest.mark.parametrize(
    ("rubric", "result_schema", "result"),
    [
        ("pass_fail", {"type": "string", "enum": ["pass", "fail"]}, "pass"),
        ("score_1_10", {"type": "integer", "minimum": 1, "maximum": 10}, 1),
        (
            "likert_5",
            {
                "type": "string",
                "enum": ["strongly_disagree", "disagree", "neutral", "agree", "strongly_agree"],
            },
            "strongly_disagree",
        ),
    ],
)
def test_the_verdict_schema_follows_the_rubric(
    fake_openai: FakeOpenAI, rubric: str, result_schema: dict[str, Any], result: Any
) -> None:
    success = {"enabled": True, "rubric": rubric, "criteria": "The caller booked a table."}
    answer = analyse(fake_openai, plan(success=success))
    verdict = fake_openai.requests[0].schema["properties"]["success"]
    assert verdict["properties"]["result"] == result_schema
    assert verdict["required"] == ["rationale", "result"]
    assert verdict["additionalProperties"] is False
    assert answer.success is not None
    assert answer.success["result"] == result


def test_only_the_enabled_parts_are_asked_for_and_returned(fake_openai: FakeOpenAI) -> None:
    p = plan(success={"enabled": False}, data={"enabled": False}, sentiment={"enabled": False})
    answer = analyse(fake_openai, p)
    schema = fake_openai.requests[0].schema
    assert list(schema["properties"]) == ["summary"]
    assert answer.summary is not None
    assert (answer.success, answer.data, answer.sentiment) == (None, None, None)


def test_a_plan_that_asks_for_nothing_calls_no_model(fake_openai: FakeOpenAI) -> None:
    p = plan(
        summary={"enabled": False},
        success={"enabled": False},
        data={"enabled": False},
        sentiment={"enabled": False},
    )
    answer = analyse(fake_openai, p)
    assert fake_openai.requests == []
    assert (answer.summary, answer.success, answer.data, answer.sentiment) == (None,) * 4
    assert (answer.input_tokens, answer.output_tokens, answer.cost) == (0, 0, 0)


def test_the_data_schema_is_strict_every_field_required_and_nullable(
    fake_openai: FakeOpenAI,
) -> None:
    data = {
        "enabled": True,
        "schema": {
            "type": "object",
            "properties": {
                "party_size": {"type": "integer", "description": "How many people"},
                "email": {"type": "string", "format": "email"},
                "allergies": {"type": "array", "items": {"type": "string"}},
                "intent": {"type": "string", "enum": ["booking", "cancel"]},
            },
            "required": ["party_size"],
        },
    }
    analyse(fake_openai, plan(data=data))
    strict = fake_openai.requests[0].schema["properties"]["data"]
    assert strict == {
        "type": "object",
        "properties": {
            "party_size": {"type": ["integer", "null"], "description": "How many people"},
            "email": {"type": ["string", "null"], "format": "email"},
            "allergies": {"type": ["array", "null"], "items": {"type": "string"}},
            "intent": {"type": ["string", "null"], "enum": ["booking", "cancel", None]},
        },
        "required": ["party_size", "email", "allergies", "intent"],
        "additionalProperties": False,
    }


def _good(**overrides: Any) -> dict[str, Any]:
    return {
        "summary": "The caller booked a table for four on 24 December at 20:00.",
        "success": {"rationale": "A table was booked.", "result": "pass"},
        "data": {"party_size": 4, "date": "2026-12-24", "intent": "booking"},
        "sentiment": {"label": "positive", "score": 0.8},
        **overrides,
    }


def test_a_field_the_call_did_not_give_comes_back_null(fake_openai: FakeOpenAI) -> None:
    fake_openai.answer(_good(data={"party_size": None, "date": None, "intent": "question"}))
    answer = analyse(fake_openai)
    assert answer.data == {"party_size": None, "date": None, "intent": "question"}
    assert len(fake_openai.requests) == 1


@pytest.mark.parametrize(
    ("bad", "fault"),
    [
        (_good(data={"party_size": 4, "date": "2026-12-24", "intent": "booking", "x": 1}), "data"),
        (_good(data={"party_size": "four", "date": None, "intent": None}), "data/party_size"),
        (_good(data={"party_size": 4, "date": "24/12/2026", "intent": None}), "data/date"),
        (_good(sentiment={"label": "positive", "score": 3}), "sentiment/score"),
        (_good(sentiment={"label": "positive", "score": -0.7}), "contradicts"),
        (_good(summary="word " * 200), "over the limit of 80"),
        (_good(success={"rationale": " ", "result": "pass"}), "success/rationale"),
        ({"summary": "Booked."}, "required property"),
    ],
)
def test_an_answer_that_breaks_the_schema_or_the_plan_is_repaired_once(
    fake_openai: FakeOpenAI, bad: dict[str, Any], fault: str
) -> None:
    fake_openai.answer(bad)
    answer = analyse(fake_openai)
    assert answer.data == {"party_size": 1, "date": "2026-12-24", "intent": "booking"}
    first, repair = fake_openai.requests
    assert repair.body["messages"][: len(first.body["messages"])] == first.body["messages"]
    note = repair.body["messages"][-1]["content"]
    assert fault in note
    assert repair.body["messages"][-2]["role"] == "assistant"


def test_invalid_json_then_a_good_answer_succeeds_and_counts_both(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.content('{"summary": "cut off')
    answer = analyse(fake_openai)
    first, repair = fake_openai.requests
    assert "not JSON" in repair.body["messages"][-1]["content"]
    assert repair.body["messages"][-2] == {"role": "assistant", "content": '{"summary": "cut off'}
    assert answer.summary is not None
    prompt_chars = [sum(len(m["content"]) for m in r.body["messages"]) for r in (first, repair)]
    assert answer.input_tokens == sum(tokens(n) for n in prompt_chars)


def test_a_refusal_is_asked_again_once(fake_openai: FakeOpenAI) -> None:
    fake_openai.refuse("I can't help with that.")
    answer = analyse(fake_openai)
    assert answer.summary is not None
    _, repair = fake_openai.requests
    assert "the model refused: I can't help with that." in repair.body["messages"][-1]["content"]


def test_a_second_invalid_answer_is_refused_with_the_reason(fake_openai: FakeOpenAI) -> None:
    fake_openai.content("not json at all")
    fake_openai.violate()
    with pytest.raises(AnswerRefused) as refused:
        analyse(fake_openai)
    assert "invalid twice" in str(refused.value)
    assert "'summary' is a required property" in str(refused.value)
    assert len(fake_openai.requests) == 2


def test_a_429_waits_what_retry_after_asks(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail(429, retry_after="1")
    answer = analyse(fake_openai)
    assert answer.summary is not None
    first, second = fake_openai.requests
    assert first.status == 429
    waited = second.started - first.started
    assert 1.0 <= waited < 2.5  # the server's 1 s, not the first backoff (≤ 0.5 s)


def test_retry_after_ms_is_preferred_to_retry_after(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail(429, retry_after="30", retry_after_ms="250")
    analyse(fake_openai)
    first, second = fake_openai.requests
    assert 0.25 <= second.started - first.started < 5  # 250 ms, not Retry-After's 30 s


def test_a_wait_longer_than_a_minute_is_left_to_the_queue(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail(429, retry_after="600")
    started = time.monotonic()
    with pytest.raises(ModelUnavailable, match="asks to wait 600 s"):
        analyse(fake_openai)
    assert time.monotonic() - started < 2
    assert len(fake_openai.requests) == 1


def test_a_500_is_tried_again_with_backoff(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail(500)
    answer = analyse(fake_openai)
    assert answer.summary is not None
    first, second = fake_openai.requests
    assert (first.status, second.status) == (500, 200)
    assert 0.375 <= second.started - first.started < 2.0  # 0.5 s less up to 25% jitter


def test_a_slow_answer_times_out_and_is_tried_again(fake_openai: FakeOpenAI) -> None:
    fake_openai.slow(3)
    answer = analyse(fake_openai, KALIMERA_LLM_TIMEOUT_SECONDS="0.4")
    assert answer.summary is not None
    first, second = fake_openai.requests
    # 0.4 s, then the first backoff (0.375 to 0.5 s): never the 3 s the slow answer took.
    assert 0.4 + 0.375 <= second.started - first.started < 2.5


def test_five_failures_are_model_unavailable(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail(503, retry_after_ms="20", times=5)
    fake_openai.answer(_good())  # never asked
    with pytest.raises(ModelUnavailable, match="did not answer in 5 attempts: HTTP 503"):
        analyse(fake_openai)
    assert [r.status for r in fake_openai.requests] == [503] * 5


def test_an_unreachable_server_is_model_unavailable(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(llm, "BACKOFF_FIRST", 0.01)  # the backoff is timed by the 500 test
    fake_openai.stop()
    with pytest.raises(ModelUnavailable, match="unreachable"):
        analyse(fake_openai)


def test_a_wrong_key_is_model_unavailable_at_once(fake_openai: FakeOpenAI) -> None:
    with pytest.raises(ModelUnavailable, match="HTTP 401"):
        analyse(fake_openai, KALIMERA_LLM_API_KEY="wrong-key")
    assert len(fake_openai.requests) == 1


def test_never_more_requests_in_flight_than_the_limit(fake_openai: FakeOpenAI) -> None:
    fake_openai.latency = 0.1
    settings = model_settings(fake_openai, KALIMERA_LLM_CONCURRENCY="3")

    async def twenty() -> list[ModelAnswer]:
        chat = ChatModel(settings)
        analyser = Analyser(chat)
        try:
            return await asyncio.gather(
                *(analyser.analyse(plan=plan(), lines=ENGLISH) for _ in range(20))
            )
        finally:
            await chat.aclose()

    started = time.monotonic()
    answers = run(twenty())
    assert len(answers) == len(fake_openai.requests) == 20
    assert fake_openai.max_in_flight == 3
    assert time.monotonic() - started >= 0.1 * 20 / 3


def test_the_cost_is_the_tokens_priced_per_million(fake_openai: FakeOpenAI) -> None:
    answer = analyse(fake_openai, KALIMERA_LLM_PRICE_INPUT="0.40", KALIMERA_LLM_PRICE_OUTPUT="1.60")
    (request,) = fake_openai.requests
    prompt_chars = sum(len(m["content"]) for m in request.body["messages"])
    assert answer.input_tokens == tokens(prompt_chars)
    assert answer.output_tokens > 0
    expected = (answer.input_tokens * Decimal("0.40") + answer.output_tokens * Decimal("1.60")) / (
        Decimal(1_000_000)
    )
    assert answer.cost == expected.quantize(Decimal("0.000001"))
    assert answer.cost > 0


def test_a_long_call_is_cut_keeping_its_start_and_its_end(fake_openai: FakeOpenAI) -> None:
    lines = [
        TranscriptLine("Caller" if i % 2 else "Agent", i * 7.0, f"turn {i} " + "words " * 30)
        for i in range(600)
    ]
    run(_analyse(model_settings(fake_openai, KALIMERA_LLM_MAX_INPUT_CHARS="6000"), plan(), lines))
    transcript = fake_openai.requests[0].body["messages"][1]["content"]
    sent = transcript.split("\n\n", 1)[1]
    assert len(sent) <= 6000
    assert sent.startswith("[00:00] Agent: turn 0 ")
    assert sent.endswith("[69:53] Caller: turn 599 " + " ".join(["words"] * 30))
    assert "characters (" in sent
    assert "cut from the middle of the call" in sent


class FakeEntraCredential:
    """Stands in for the managed identity (Entra is a paid external service): hands out one
    token and remembers the scopes it was asked for."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.extend(scopes)
        return AccessToken("fake-entra", int(time.time()) + 3600)


def test_azure_openai_is_reached_with_the_managed_identitys_token(
    fake_openai: FakeOpenAI,
) -> None:
    settings = model_settings(fake_openai, azure=True, KALIMERA_LLM_API_VERSION="2024-10-21")
    credential = FakeEntraCredential()

    async def go() -> ModelAnswer:
        services = Services(settings, credential=credential)
        try:
            analyser = analyser_for(services)
            assert analyser is not None
            return await analyser.analyse(plan=plan(), lines=GREEK)
        finally:
            await services.aclose()

    answer = run(go())
    (request,) = fake_openai.requests
    assert request.path == "/openai/deployments/analysis/chat/completions"
    assert request.query["api-version"] == "2024-10-21"
    assert request.headers["authorization"] == "Bearer fake-entra"
    assert "api-key" not in request.headers
    assert credential.scopes == ["https://cognitiveservices.azure.com/.default"]
    assert answer.model == "analysis"


def test_an_azure_resource_that_takes_keys_gets_the_key_and_no_token(
    fake_openai: FakeOpenAI,
) -> None:
    settings = model_settings(fake_openai, azure=True, KALIMERA_LLM_API_KEY="test-key")
    run(_analyse(settings, plan(), ENGLISH))
    (request,) = fake_openai.requests
    assert request.path == "/openai/deployments/analysis/chat/completions"
    assert request.headers["api-key"] == "test-key"
    assert "authorization" not in request.headers


def test_without_a_model_the_services_have_no_analyser() -> None:
    services = Services(load_settings(KALIMERA_ENV="development"))
    assert analyser_for(services) is None
    run(services.aclose())
