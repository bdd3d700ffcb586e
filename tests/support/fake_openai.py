"""A small real HTTP server that speaks the OpenAI Chat Completions protocol, for tests, the
analysis benchmark and the ``make run`` demo: never a mock of our own client.

It serves ``POST /v1/chat/completions`` (OpenAI and compatible servers) and
``POST /openai/deployments/{deployment}/chat/completions?api-version=…`` (Azure OpenAI). Each
request is checked as the real services check it: the credential (``Authorization: Bearer`` or
Azure's ``api-key``), the model, the messages, and a ``json_schema`` response format whose schema
is valid JSON Schema and follows strict mode's rules (every object closed, every property
required); a fault is answered 400 or 401 with OpenAI's error body. A good request is answered
with a deterministic answer built from the requested schema (the summary echoes the caller's
first words, so a Greek call gets Greek text back), with token counts.

A test tells it what to do with the next requests (``fail(429, retry_after=…)``, ``fail(500)``,
``slow(seconds)``, ``content("not json")``, ``violate()``, ``refuse(reason)``, ``answer({...})``),
each for one request or ``times=n``; once those are used up it answers well again. It records
every request (``requests``) and the most it ever had in flight (``max_in_flight``).

    python -m tests.support.fake_openai --port 8089 --latency-ms 300
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from kalimera.dev.localstack import free_port

DEFAULT_MODEL = "fake-gpt"
SUMMARY_WORDS = 12


@dataclass
class Recorded:
    """One request as the server got it."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]
    status: int = 200
    started: float = 0.0

    @property
    def schema(self) -> dict[str, Any]:
        return dict(self.body["response_format"]["json_schema"]["schema"])

    @property
    def transcript(self) -> str:
        """The text of the user messages (the transcript, and a repair's note)."""
        return "\n".join(m["content"] for m in self.body["messages"] if m.get("role") == "user")


@dataclass
class _Behaviour:
    kind: str  # fail | slow | content | violate | refuse | answer
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    content: str | None = None
    answer: Any = None


class FakeOpenAI:
    """The server, on ``127.0.0.1`` in a thread of its own (so sync and async tests can use it).

    ``api_key``: the key a request must carry (None: any); ``azure_token``: the Entra token the
    Azure path accepts as ``Authorization: Bearer``; ``latency``: seconds added to every answer.
    """

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        azure_token: str | None = None,
        latency: float = 0.0,
        port: int | None = None,
    ) -> None:
        self.api_key = api_key
        self.azure_token = azure_token
        self.latency = latency
        self.port = port or free_port()
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._script: deque[_Behaviour] = deque()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # --- what the test sees ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """For ``KALIMERA_LLM_BASE_URL``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def endpoint(self) -> str:
        """For ``KALIMERA_LLM_ENDPOINT`` (the Azure OpenAI resource)."""
        return f"http://127.0.0.1:{self.port}"

    def fail(
        self,
        status: int,
        *,
        retry_after: str | None = None,
        retry_after_ms: str | None = None,
        times: int = 1,
    ) -> None:
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        if retry_after_ms is not None:
            headers["retry-after-ms"] = retry_after_ms
        self._add(_Behaviour("fail", status=status, headers=headers), times)

    def slow(self, seconds: float, *, times: int = 1) -> None:
        """Wait ``seconds`` before a good answer."""
        self._add(_Behaviour("slow", seconds=seconds), times)

    def content(self, text: str, *, times: int = 1) -> None:
        """Answer ``text`` as the message content, whatever it is (invalid JSON, say)."""
        self._add(_Behaviour("content", content=text), times)

    def violate(self, *, times: int = 1) -> None:
        """A JSON answer that breaks the requested schema (a required property left out)."""
        self._add(_Behaviour("violate"), times)

    def refuse(self, reason: str, *, times: int = 1) -> None:
        """Refuse as structured output does: no content, the reason in ``message.refusal``."""
        self._add(_Behaviour("refuse", content=reason), times)

    def answer(self, answer: Any, *, times: int = 1) -> None:
        """Answer exactly this (as JSON)."""
        self._add(_Behaviour("answer", answer=answer), times)

    def _add(self, behaviour: _Behaviour, times: int) -> None:
        with self._lock:
            self._script.extend([behaviour] * times)

    def _next(self) -> _Behaviour | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    # --- the server ----------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._azure)
        return app

    async def _openai(self, request: web.Request) -> web.Response:
        return await self._serve(request, deployment=None)

    async def _azure(self, request: web.Request) -> web.Response:
        return await self._serve(request, deployment=request.match_info["deployment"])

    async def _serve(self, request: web.Request, *, deployment: str | None) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request, deployment)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request, deployment: str | None) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        recorded = Recorded(
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body if isinstance(body, dict) else {},
            started=time.monotonic(),
        )
        self.requests.append(recorded)
        refused = self._check_auth(recorded, deployment) or self._check_body(recorded, deployment)
        if refused is not None:
            recorded.status = refused.status
            return refused
        behaviour = self._next()
        if self.latency:
            await asyncio.sleep(self.latency)
        if behaviour is not None and behaviour.kind == "fail":
            recorded.status = behaviour.status
            return _error(behaviour.status, "scripted failure", headers=behaviour.headers)
        if behaviour is not None and behaviour.kind == "slow":
            await asyncio.sleep(behaviour.seconds)
        if behaviour is not None and behaviour.kind == "refuse":
            refusal = _completion(recorded, deployment, "")
            refusal["choices"][0]["message"].update(content=None, refusal=behaviour.content)
            return web.json_response(refusal)
        content = self._content(recorded, behaviour)
        return web.json_response(_completion(recorded, deployment, content))

    def _check_auth(self, r: Recorded, deployment: str | None) -> web.Response | None:
        bearer = r.headers.get("authorization", "")
        if deployment is not None:
            if "api-version" not in r.query:
                return _error(404, "Resource not found (no api-version)")
            if self.azure_token is not None and bearer == f"Bearer {self.azure_token}":
                return None
            if self.api_key is not None and r.headers.get("api-key") == self.api_key:
                return None
            if self.azure_token is None and self.api_key is None:
                return None
            return _error(401, "Access denied due to invalid subscription key or Entra token")
        if self.api_key is not None and bearer != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided")
        return None

    def _check_body(self, r: Recorded, deployment: str | None) -> web.Response | None:
        body = r.body
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _error(400, "you must provide a model parameter")
        if deployment is not None and model != deployment:
            return _error(400, f"the model {model!r} is not the deployment {deployment!r}")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "messages must be a non-empty array")
        for m in messages:
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
                return _error(400, "each message has a role: system, user or assistant")
            if not isinstance(m.get("content"), str):
                return _error(400, "each message has text content")
        fmt = body.get("response_format")
        if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
            return _error(400, "response_format must be of type json_schema")
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not spec.get("name") or spec.get("strict") is not True:
            return _error(400, "json_schema needs a name and strict: true")
        fault = schema_fault(json.dumps(spec.get("schema"), sort_keys=True))
        if fault is not None:
            return _error(400, f"Invalid schema for response_format {spec['name']!r}: {fault}")
        return None

    def _content(self, r: Recorded, behaviour: _Behaviour | None) -> str:
        if behaviour is not None and behaviour.kind == "content":
            return behaviour.content or ""
        if behaviour is not None and behaviour.kind == "answer":
            return json.dumps(behaviour.answer, ensure_ascii=False)
        answer = answer_for(r.schema, r.transcript)
        if behaviour is not None and behaviour.kind == "violate":
            required = r.schema.get("required") or []
            if required:
                answer.pop(required[0], None)
        return json.dumps(answer, ensure_ascii=False)

    # --- running it ----------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._runner = web.AppRunner(self.app(), access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            self._loop.run_until_complete(site.start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-openai", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        """Stop serving (a test may stop it early: the server gone); idempotent."""
        if self._loop.is_closed():
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()


@functools.lru_cache(maxsize=256)
def schema_fault(schema_json: str) -> str | None:
    """What is wrong with a response format's schema (invalid JSON Schema, or not strict), or
    None. Cached by the schema's text, as real servers cache the grammar they compile from it:
    checking a schema takes ~20 ms, which would otherwise queue every request of a benchmark
    behind the one event loop of this server."""
    schema = json.loads(schema_json)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return f"Invalid schema: {exc.message}"
    return strict_fault(schema, "#")


def strict_fault(schema: Any, where: str) -> str | None:
    """The first place the schema breaks strict structured output's rules, or None."""
    if not isinstance(schema, dict):
        return None
    types = schema.get("type")
    kinds = types if isinstance(types, list) else [types]
    if "object" in kinds:
        properties = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False:
            return f"{where}: additionalProperties must be false"
        if sorted(schema.get("required") or []) != sorted(properties):
            return f"{where}: required must list every property"
        for name, sub in properties.items():
            fault = strict_fault(sub, f"{where}/properties/{name}")
            if fault:
                return fault
    if "array" in kinds:
        return strict_fault(schema.get("items"), f"{where}/items")
    return None


def answer_for(schema: dict[str, Any], transcript: str) -> dict[str, Any]:
    """A valid answer to ``schema``, the same for the same request."""
    value = _value(schema, "", transcript)
    assert isinstance(value, dict)
    return value


def _value(schema: dict[str, Any], name: str, transcript: str) -> Any:
    types = schema.get("type")
    kind = next((t for t in types if t != "null"), "null") if isinstance(types, list) else types
    if "enum" in schema:
        return next(v for v in schema["enum"] if v is not None)
    if kind == "object":
        return {k: _value(v, k, transcript) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [_value(schema["items"], name, transcript)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        low, high = schema.get("minimum", 0), schema.get("maximum", 1)
        return (low + high) / 2 + (high - low) / 4
    if kind == "boolean":
        return True
    if kind == "string":
        return _text(schema, name, transcript)
    return None


def _text(schema: dict[str, Any], name: str, transcript: str) -> str:
    fmt = schema.get("format")
    if fmt == "date":
        return "2026-12-24"
    if fmt == "date-time":
        return "2026-12-24T20:00:00+00:00"
    if fmt == "email":
        return "caller@example.com"
    if name == "summary":
        return " ".join(_caller_words(transcript)[:SUMMARY_WORDS]) or "An empty call."
    return f"The {name or 'answer'}, from the call."


def _caller_words(transcript: str) -> list[str]:
    for line in transcript.splitlines():
        _, sep, words = line.partition("Caller: ")
        if sep:
            return words.split()
    return []


def _completion(r: Recorded, deployment: str | None, content: str) -> dict[str, Any]:
    prompt_chars = sum(len(m["content"]) for m in r.body["messages"])
    return {
        "id": f"chatcmpl-fake-{len(r.headers)}-{int(r.started * 1000)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": deployment or r.body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": tokens(prompt_chars),
            "completion_tokens": tokens(len(content)),
            "total_tokens": tokens(prompt_chars) + tokens(len(content)),
        },
    }


def tokens(chars: int) -> int:
    """The fake's token count: one per four characters, at least one."""
    return max(1, chars // 4)


def _error(status: int, message: str, *, headers: dict[str, str] | None = None) -> web.Response:
    kind = {400: "invalid_request_error", 401: "invalid_api_key", 429: "rate_limit_exceeded"}
    body = {"error": {"message": message, "type": kind.get(status, "server_error"), "code": None}}
    return web.json_response(body, status=status, headers=headers)


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A fresh fake model server for one test (key ``test-key``, Entra token ``fake-entra``)."""
    server = FakeOpenAI(api_key="test-key", azure_token="fake-entra").start()
    yield server
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--latency-ms", type=int, default=0, help="added to every answer")
    parser.add_argument("--api-key", default=None, help="the key requests must carry (any)")
    args = parser.parse_args()
    fake = FakeOpenAI(api_key=args.api_key, latency=args.latency_ms / 1000, port=args.port)
    print(f"fake OpenAI-compatible server on {fake.base_url} (model: any name)", flush=True)
    web.run_app(fake.app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
