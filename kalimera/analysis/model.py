"""The model client: one conversation's transcript in, the plan's answer out (docs/analysis.md).

Through the official ``openai`` package, Chat Completions with a strict ``json_schema`` response
format (``prompt.py`` builds it from the plan's enabled parts): Azure OpenAI with the app's
managed identity (an Entra token for the Cognitive Services scope, refreshed before it expires)
when ``KALIMERA_LLM_ENDPOINT`` is set, any OpenAI-compatible server (vLLM, Ollama, LiteLLM,
Azure AI Foundry) at ``KALIMERA_LLM_BASE_URL`` with ``KALIMERA_LLM_API_KEY`` otherwise.

The retries are ours, not the SDK's (its ``max_retries`` is 0): timeouts, connection failures,
429 and 5xx are tried at most ``ATTEMPTS`` times, waiting what ``retry-after-ms`` /
``Retry-After`` ask (up to ``MAX_RETRY_AFTER``; a longer wait is the queue's to make) or an
exponential backoff with jitter, then ``ModelUnavailable``. Doing it here keeps the concurrency
slot (an ``asyncio.Semaphore`` of ``KALIMERA_LLM_CONCURRENCY``) held only while a request is in
flight, never during a wait, and bounds each attempt as a whole (``asyncio.timeout``), not only
each socket read. An answer that fails the check gets one repair request carrying the fault; a
second invalid answer is ``AnswerRefused``.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import openai

from kalimera.analysis import prompt
from kalimera.analysis.models import AnalysisPlan
from kalimera.analysis.prompt import TranscriptLine
from kalimera.entra import cached_token
from kalimera.settings import Settings

__all__ = [
    "Analyser",
    "AnswerRefused",
    "ModelAnswer",
    "ModelUnavailable",
    "TranscriptLine",
    "build_analyser",
]

logger = logging.getLogger(__name__)

COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"
ATTEMPTS = 5
BACKOFF_FIRST = 0.5  # seconds, doubled each attempt, with up to 25% jitter off
BACKOFF_MAX = 8.0
MAX_RETRY_AFTER = 60.0  # seconds: a server asking for longer is left to the queue's retry
PER_MILLION = Decimal(1_000_000)
COST_PLACES = Decimal("0.000001")  # the stored cost's precision (numeric(14, 6))
UNCHECKED_KEY = "unused"  # servers that check no key (Ollama, a local vLLM) still get a header


@dataclass(frozen=True)
class ModelAnswer:
    """The plan's enabled parts as the model answered them (a disabled part is None), and what
    the answer cost, over the request and its repair."""

    summary: str | None
    success: dict[str, Any] | None  # {"result": "pass"|"fail" | 1..10 | likert label, "rationale"}
    data: dict[str, Any] | None  # the plan's data schema; null for a field the call did not give
    sentiment: dict[str, Any] | None  # {"label": positive|neutral|negative, "score": -1..1}
    model: str
    input_tokens: int
    output_tokens: int
    cost: Decimal


class ModelUnavailable(Exception):
    """The model did not answer within the attempts (timeouts, 429, 5xx, unreachable) or refuses
    the app's credentials: the queue retries the analysis later."""


class AnswerRefused(Exception):
    """No valid answer after the one repair (or a request the server refuses as malformed);
    ``str(e)`` is the reason stored with the failed analysis."""


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


@dataclass(frozen=True)
class _Reply:
    content: str | None
    refusal: str | None  # the model's own refusal (a safety refusal in structured output)
    model: str
    input_tokens: int
    output_tokens: int


class Analyser:
    """The configured model, for any number of conversations of one process (one event loop)."""

    def __init__(self, settings: Settings, *, credential: Any = None) -> None:
        assert settings.llm_model is not None
        self._model = settings.llm_model
        self._max_chars = settings.llm_max_input_chars
        self._timeout = settings.llm_timeout_seconds
        self._price_in = settings.llm_price_input
        self._price_out = settings.llm_price_output
        self._slots = asyncio.Semaphore(settings.llm_concurrency)
        self._client = _client(settings, credential)

    async def analyse(self, *, plan: AnalysisPlan, lines: Sequence[TranscriptLine]) -> ModelAnswer:
        """Ask for the plan's enabled parts over the transcript; one repair if the answer is not
        valid. Raises ``ModelUnavailable`` (try later) or ``AnswerRefused`` (store the reason).
        A plan with every part disabled asks nothing and costs nothing."""
        if not prompt.wants_anything(plan):
            return ModelAnswer(None, None, None, None, self._model, 0, 0, Decimal(0))
        first = prompt.messages(plan, prompt.transcript_text(lines, self._max_chars))
        fmt = prompt.response_format(plan)
        replies = [await self._ask(first, fmt)]
        try:
            answer = _parse(plan, replies[0])
        except prompt.InvalidAnswer as first_error:
            logger.info("invalid model answer, asking once more: %s", first_error)
            repair = prompt.repair_messages(first, replies[0].content, str(first_error))
            replies.append(await self._ask(repair, fmt))
            try:
                answer = _parse(plan, replies[1])
            except prompt.InvalidAnswer as second_error:
                msg = f"the model's answer was invalid twice: {second_error}"
                raise AnswerRefused(msg) from None
        input_tokens = sum(r.input_tokens for r in replies)
        output_tokens = sum(r.output_tokens for r in replies)
        return ModelAnswer(
            summary=answer.get("summary"),
            success=answer.get("success"),
            data=answer.get("data"),
            sentiment=answer.get("sentiment"),
            model=replies[-1].model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost=self.cost(input_tokens, output_tokens),
        )

    def cost(self, input_tokens: int, output_tokens: int) -> Decimal:
        """Tokens priced per million (``KALIMERA_LLM_PRICE_INPUT`` / ``_OUTPUT``)."""
        total = (input_tokens * self._price_in + output_tokens * self._price_out) / PER_MILLION
        return total.quantize(COST_PLACES)

    async def aclose(self) -> None:
        await self._client.close()

    async def _ask(self, messages: list[dict[str, str]], fmt: dict[str, Any]) -> _Reply:
        """One answer, retried as the module says; ``ModelUnavailable`` when none came."""
        reason = ""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with self._slots:
                    return await self._request(messages, fmt)
            except _Retry as retry:
                reason = retry.reason
                if attempt == ATTEMPTS:
                    break
                if retry.wait is not None and retry.wait > MAX_RETRY_AFTER:
                    msg = f"the model asks to wait {retry.wait:.0f} s ({reason})"
                    raise ModelUnavailable(msg) from None
                wait = retry.wait if retry.wait is not None else _backoff(attempt)
                logger.info("model attempt %d failed (%s); next in %.2f s", attempt, reason, wait)
                await asyncio.sleep(wait)
        msg = f"the model did not answer in {ATTEMPTS} attempts: {reason}"
        raise ModelUnavailable(msg)

    async def _request(self, messages: list[dict[str, str]], fmt: dict[str, Any]) -> _Reply:
        try:
            async with asyncio.timeout(self._timeout):
                # Plain dicts, as the wire has them: the SDK's TypedDicts add nothing here.
                completion = await self._client.chat.completions.create(  # type: ignore[call-overload]
                    model=self._model, messages=messages, response_format=fmt
                )
        except (TimeoutError, openai.APITimeoutError):  # ours (the whole request), the SDK's
            raise _Retry(f"no answer within {self._timeout:g} s", None) from None
        except openai.APIConnectionError as exc:
            raise _Retry(f"the model server is unreachable ({exc})", None) from None
        except openai.APIStatusError as exc:
            raise _status_error(exc) from None
        usage = completion.usage
        choice = completion.choices[0] if completion.choices else None
        return _Reply(
            content=choice.message.content if choice is not None else None,
            refusal=getattr(choice.message, "refusal", None) if choice is not None else None,
            model=completion.model or self._model,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
        )


def _parse(plan: AnalysisPlan, reply: _Reply) -> dict[str, Any]:
    if reply.refusal:
        raise prompt.InvalidAnswer(f"the model refused: {_short(reply.refusal)}")
    return prompt.parse_answer(plan, reply.content)


def _status_error(exc: openai.APIStatusError) -> Exception:
    """429 and 5xx are tried again; a request the server finds malformed (400, 413, 422) will
    not get better, so it is refused with the server's words; anything else (401, 403, 404: a
    credential, a role or a deployment missing) is the operator's to fix, and the queue's to
    try again later."""
    status = exc.status_code
    if status == 429 or status >= 500:
        return _Retry(f"HTTP {status}", retry_after(exc.response.headers))
    detail = _short(exc.message)
    if status in (400, 413, 422):
        return AnswerRefused(f"the model server refused the request (HTTP {status}): {detail}")
    return ModelUnavailable(f"the model server answered HTTP {status}: {detail}")


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retry_after(headers: Any) -> float | None:
    """The wait the server asks for, in seconds: ``retry-after-ms`` (Azure OpenAI), then
    ``Retry-After`` as seconds or as an HTTP date; None when it asks for nothing readable."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        seconds = None if value is None else _seconds(value, scale, date=name == "retry-after")
        if seconds is not None and seconds >= 0:
            return seconds
    return None


def _seconds(value: str, scale: float, *, date: bool) -> float | None:
    try:
        return float(value) / scale
    except ValueError:
        pass
    if not date:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None


def _backoff(attempt: int) -> float:
    delay = min(BACKOFF_FIRST * 2 ** (attempt - 1), BACKOFF_MAX)
    return delay * (1 - 0.25 * random.random())  # noqa: S311 - jitter, not a secret


def _client(settings: Settings, credential: Any) -> openai.AsyncOpenAI:
    common: dict[str, Any] = {"max_retries": 0, "timeout": settings.llm_timeout_seconds}
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    if settings.llm_endpoint:
        azure: dict[str, Any] = {
            "azure_endpoint": settings.llm_endpoint,
            "azure_deployment": settings.llm_model,
            "api_version": settings.llm_api_version,
        }
        if key is not None:  # a resource that still takes keys (not the one infra/ creates)
            return openai.AsyncAzureOpenAI(api_key=key, **azure, **common)
        if credential is None:
            msg = "an Azure OpenAI endpoint needs an Entra credential (the managed identity)"
            raise ValueError(msg)
        token = cached_token(credential, COGNITIVE_SCOPE)
        return openai.AsyncAzureOpenAI(azure_ad_token_provider=token, **azure, **common)
    return openai.AsyncOpenAI(
        base_url=settings.llm_base_url, api_key=key or UNCHECKED_KEY, **common
    )


def build_analyser(settings: Settings, *, credential: Any = None) -> Analyser | None:
    """The analyser of the configured model; None when none is configured (the analysis is
    then ``skipped``, never made up)."""
    if not settings.llm_configured:
        return None
    return Analyser(settings, credential=credential)
