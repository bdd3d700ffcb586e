"""A Chat Completions model, as the app reaches it (docs/analysis.md, "Choosing a model").

Through the official ``openai`` package: Azure OpenAI with the app's managed identity (an Entra
token for the Cognitive Services scope, refreshed before it expires) when
``KALIMERA_LLM_ENDPOINT`` is set, any OpenAI-compatible server (vLLM, Ollama, LiteLLM, Azure AI
Foundry) at ``KALIMERA_LLM_BASE_URL`` with ``KALIMERA_LLM_API_KEY`` otherwise.

The retries are ours, not the SDK's (its ``max_retries`` is 0): timeouts, connection failures,
429 and 5xx are tried at most ``ATTEMPTS`` times, waiting what ``retry-after-ms`` /
``Retry-After`` ask (up to ``MAX_RETRY_AFTER``; a longer wait is the queue's to make) or an
exponential backoff with jitter, then ``ModelUnavailable``. Doing it here keeps the concurrency
slot (an ``asyncio.Semaphore`` of ``KALIMERA_LLM_CONCURRENCY``) held only while a request is in
flight, never during a wait, and bounds each attempt as a whole (``asyncio.timeout``), not only
each socket read. What is asked and what an answer must be are the caller's
(``kalimera.analysis.model``); this module knows no plan.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import openai

from kalimera.entra import cached_token
from kalimera.settings import Settings

logger = logging.getLogger(__name__)

COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"
ATTEMPTS = 5
BACKOFF_FIRST = 0.5  # seconds, doubled each attempt, with up to 25% jitter off
BACKOFF_MAX = 8.0
MAX_RETRY_AFTER = 60.0  # seconds: a server asking for longer is left to the queue's retry
PER_MILLION = Decimal(1_000_000)
COST_PLACES = Decimal("0.000001")  # the stored cost's precision (numeric(14, 6))
UNCHECKED_KEY = "unused"  # servers that check no key (Ollama, a local vLLM) still get a header


class ModelUnavailable(Exception):
    """The model did not answer within the attempts (timeouts, 429, 5xx, unreachable) or refuses
    the app's credentials: the queue retries the analysis later."""


class RequestRefused(Exception):
    """The server finds the request malformed (400, 413, 422): asking again will not help."""


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


@dataclass(frozen=True)
class Reply:
    content: str | None
    refusal: str | None  # the model's own refusal (a safety refusal in structured output)
    model: str
    input_tokens: int
    output_tokens: int


class ChatModel:
    """The configured model, for any number of requests of one process (one event loop)."""

    def __init__(self, settings: Settings, *, credential: Any = None) -> None:
        assert settings.llm_model is not None
        self.model = settings.llm_model
        self.max_input_chars = settings.llm_max_input_chars
        self._timeout = settings.llm_timeout_seconds
        self._price_in = settings.llm_price_input
        self._price_out = settings.llm_price_output
        self._slots = asyncio.Semaphore(settings.llm_concurrency)
        self._client = _client(settings, credential)

    def cost(self, input_tokens: int, output_tokens: int) -> Decimal:
        """Tokens priced per million (``KALIMERA_LLM_PRICE_INPUT`` / ``_OUTPUT``)."""
        total = (input_tokens * self._price_in + output_tokens * self._price_out) / PER_MILLION
        return total.quantize(COST_PLACES)

    async def aclose(self) -> None:
        await self._client.close()

    async def ask(self, messages: list[dict[str, str]], fmt: dict[str, Any]) -> Reply:
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

    async def _request(self, messages: list[dict[str, str]], fmt: dict[str, Any]) -> Reply:
        try:
            async with asyncio.timeout(self._timeout):
                # Plain dicts, as the wire has them: the SDK's TypedDicts add nothing here.
                completion = await self._client.chat.completions.create(  # type: ignore[call-overload]
                    model=self.model, messages=messages, response_format=fmt
                )
        except (TimeoutError, openai.APITimeoutError):  # ours (the whole request), the SDK's
            raise _Retry(f"no answer within {self._timeout:g} s", None) from None
        except openai.APIConnectionError as exc:
            raise _Retry(f"the model server is unreachable ({exc})", None) from None
        except openai.APIStatusError as exc:
            raise _status_error(exc) from None
        usage = completion.usage
        choice = completion.choices[0] if completion.choices else None
        return Reply(
            content=choice.message.content if choice is not None else None,
            refusal=getattr(choice.message, "refusal", None) if choice is not None else None,
            model=completion.model or self.model,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
        )


def _status_error(exc: openai.APIStatusError) -> Exception:
    """429 and 5xx are tried again; a request the server finds malformed (400, 413, 422) will
    not get better, so it is refused with the server's words; anything else (401, 403, 404: a
    credential, a role or a deployment missing) is the operator's to fix, and the queue's to
    try again later."""
    status = exc.status_code
    if status == 429 or status >= 500:
        return _Retry(f"HTTP {status}", retry_after(exc.response.headers))
    detail = shorten(exc.message)
    if status in (400, 413, 422):
        return RequestRefused(f"the model server refused the request (HTTP {status}): {detail}")
    return ModelUnavailable(f"the model server answered HTTP {status}: {detail}")


def shorten(text: str, limit: int = 300) -> str:
    """At most ``limit`` characters of a server's or model's words, for a stored reason."""
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


def build_chat_model(settings: Settings, *, credential: Any = None) -> ChatModel | None:
    """The configured model; None when none is configured (an analysis is then ``skipped``,
    never made up)."""
    if not settings.llm_configured:
        return None
    return ChatModel(settings, credential=credential)
