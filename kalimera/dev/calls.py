"""``kalimera demo seed --calls N``: recorded calls a console can play, through the product's paths.

The statistics rows of ``kalimera.dev.seed`` have no recordings; these calls do. For each agent
given, ``N`` recent calls from a few scripts of a restaurant's phone line: each line said by
espeak-ng (``kalimera.dev.speech``), uploaded to the recordings container with telephony's
metadata (transcript, latency, and on the final turn the ended reason and cost) and ingested by
``ingest_blob``, as the blob trigger ingests it. The agent gets an analysis plan (summary,
pass/fail verdict, extracted data, sentiment) through the analysis service, and each call is
analysed by ``pipeline.analyse``, the queue trigger's function, with ``ScriptedModel`` standing in
for the model: it answers what the script's author wrote about that call (checked against the
plan's schema like any answer) and says so in ``model``. Each tenant gets two webhook endpoints
(through the webhooks service): one to a receiver this seed runs while it delivers (204), one to
a receiver that answers 503, so the delivery log shows both; the events are relayed and
delivered by the webhooks worker's own functions. Development stacks only (the endpoints are
local ``http`` URLs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
import wave
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kalimera.analysis import pipeline
from kalimera.analysis import service as plans
from kalimera.analysis.models import AnalysisPlan
from kalimera.contacts import service as contacts
from kalimera.contacts.models import ContactCreate
from kalimera.conversations import recording
from kalimera.conversations.ingest import Outcome, ingest_blob
from kalimera.db import act_for_tenant
from kalimera.dev import speech
from kalimera.dev.poller import WEBHOOKS, consume_message, receive
from kalimera.dev.scripts import LATENCIES_MS, PLAN, SCRIPTS, Script
from kalimera.errors import Conflict
from kalimera.llm import ChatModel, Reply
from kalimera.services import Services
from kalimera.settings import Settings
from kalimera.webhooks import delivery
from kalimera.webhooks import service as webhooks
from kalimera.webhooks.models import WebhookCreate, WebhookUpdate

logger = logging.getLogger(__name__)

DEMO_MODEL = "kalimera-demo-script"
"""The ``model`` the analyses name: the seed's script, not a language model."""
RECEIVER_SECONDS = 60
"""How long the seed waits for every webhook delivery's first attempt."""
CALLER_NUMBER = "+30210555{:04d}"  # one a script: the caller is the same contact in every tenant
LINE_NUMBER = "+302100000000"

ENDPOINTS = {
    # description -> (path on the receiver, events); the description finds them on a re-run
    "CRM sync (demo: a receiver run by kalimera demo seed)": ("/crm", []),
    "Legacy CRM (demo: answers 503)": ("/legacy", ["conversation.ended"]),
}


class ScriptedModel(ChatModel):
    """Stands in for the model: answers each transcript with the analysis its script's author
    wrote (matched by the call's first line). Costs nothing and counts no tokens."""

    def __init__(self) -> None:  # no client: nothing is sent anywhere
        # ChatModel's own __init__ builds an OpenAI client from the settings; none here.
        self.model = DEMO_MODEL
        self.max_input_chars = 48_000
        self.answers: dict[str, dict[str, Any]] = {}

    def cost(self, input_tokens: int, output_tokens: int) -> Decimal:
        return Decimal(0)

    async def aclose(self) -> None:
        return None

    async def ask(self, messages: list[dict[str, str]], fmt: dict[str, Any]) -> Reply:
        transcript = messages[-1]["content"]
        for first_line, answer in self.answers.items():
            if first_line in transcript:
                return Reply(json.dumps(answer), None, self.model, 0, 0)
        return Reply(None, "this call is not one of the demo's scripts", self.model, 0, 0)


class NotReady(RuntimeError):
    """The stack or the machine cannot make the recorded calls; the message says why."""


def preflight(settings: Settings) -> None:
    """Refuse before anything is written: a stack that is not a development one (the webhook
    endpoints are local ``http`` URLs), or a machine without espeak-ng and sox."""
    if not settings.is_development:
        msg = "recorded demo calls are for a development stack (KALIMERA_ENV=development)"
        raise NotReady(msg)
    try:
        speech.require(speech.SPEECH_TOOLS)
    except speech.MissingTools as exc:
        raise NotReady(str(exc)) from None


@dataclass
class CallsReport:
    calls: int = 0
    turns: int = 0
    deliveries: int = 0


async def seed_calls(
    services: Services,
    *,
    agents: Sequence[tuple[uuid.UUID, uuid.UUID]],
    per_agent: int,
    audio: Path,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> CallsReport:
    """``per_agent`` recorded, analysed calls for each (tenant, agent), the last ending a few
    minutes before ``now``, from callers who are the tenant's contacts, and the webhook
    deliveries they cause; ``audio``: the speech cache."""
    preflight(services.settings)
    now = now or datetime.now(UTC)
    model = ScriptedModel()
    services.llm = model  # the analyses of this process are the scripts'
    report = CallsReport()
    async with _receiver() as port:
        for t, (tenant_id, agent_id) in enumerate(agents):
            act_for_tenant(tenant_id)  # the services act for the tenant, as in its request
            await _plan(services, tenant_id, agent_id)
            await _endpoints(services, tenant_id, port)
            await _contacts(services, tenant_id)
            for k in range(per_agent):
                script = SCRIPTS[(t + k) % len(SCRIPTS)]
                started = now - timedelta(minutes=12 + 53 * k + 7 * t)
                model.answers[script.lines[0]] = script.answer(started.date())
                call = Call(tenant_id, agent_id, uuid.uuid4(), started, t * 10 + k)
                report.turns += await _say(services, call, script, audio)
                await pipeline.analyse(
                    services=services, tenant_id=tenant_id, conversation_id=call.id
                )
                report.calls += 1
                if progress is not None:
                    progress(report.calls)
        report.deliveries = await _deliver(services, [tenant for tenant, _ in agents])
    return report


@dataclass(frozen=True)
class Call:
    """One recorded call of the seed; ``number`` varies its latencies."""

    tenant_id: uuid.UUID
    agent_id: uuid.UUID
    id: uuid.UUID
    started: datetime
    number: int


async def _plan(services: Services, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> None:
    """Give the agent the demo's plan, unless it has it already (a re-run adds no version)."""
    current = await plans.current(services=services, tenant_id=tenant_id, agent_id=agent_id)
    parts = set(AnalysisPlan.model_fields)
    if current.plan.model_dump(mode="json", by_alias=True, include=parts) != PLAN.stored():
        await plans.replace(services=services, tenant_id=tenant_id, agent_id=agent_id, plan=PLAN)


async def _endpoints(services: Services, tenant_id: uuid.UUID, port: int) -> None:
    """The demo's endpoints, pointed at this run's receiver (created on the first run)."""
    existing = {
        e.description: e.id
        for e in (await webhooks.list_all(services=services, tenant_id=tenant_id)).items
    }
    for description, (path, events) in ENDPOINTS.items():
        url = f"http://127.0.0.1:{port}{path}"
        if description in existing:
            await webhooks.update(
                services=services,
                tenant_id=tenant_id,
                endpoint_id=existing[description],
                body=WebhookUpdate.model_validate({"url": url, "enabled": True}),
            )
            continue
        body = {"url": url, "description": description, **({"events": events} if events else {})}
        await webhooks.create(
            services=services, tenant_id=tenant_id, body=WebhookCreate.model_validate(body)
        )


async def _contacts(services: Services, tenant_id: uuid.UUID) -> None:
    """The scripts' callers as the tenant's contacts (created before their calls, which then
    become theirs; kept on a re-run)."""
    for i, script in enumerate(SCRIPTS):
        first, last = script.caller
        body = ContactCreate(first_name=first, last_name=last, contact_no=CALLER_NUMBER.format(i))
        with contextlib.suppress(Conflict):  # made by an earlier run
            await contacts.create(services=services, tenant_id=tenant_id, body=body)


def _seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


def _meta(**values: Any) -> dict[str, str]:
    """Blob metadata as telephony writes it: URL-encoded text, objects as JSON."""
    return {
        k: quote(v if isinstance(v, str) else json.dumps(v), safe="") for k, v in values.items()
    }


async def _say(services: Services, call: Call, script: Script, audio: Path) -> int:
    """Upload and ingest the call's turns in order (caller, agent, ...); the last is final."""
    at = call.started
    total = 0.0
    for i, text in enumerate(script.lines):
        direction = recording.Direction.INPUT if i % 2 == 0 else recording.Direction.OUTPUT
        voice = speech.CALLER_VOICE if i % 2 == 0 else speech.AGENT_VOICE
        path = await asyncio.to_thread(speech.spoken, text, voice=voice, folder=audio)
        seconds = _seconds(path)
        total += seconds
        at += timedelta(seconds=seconds + 0.8)
        fields: dict[str, Any] = {
            "transcript": text,
            "recorded_at": at.isoformat(),
            "language": "en",
            "profile_type": "inbound",
            "from_number": CALLER_NUMBER.format(SCRIPTS.index(script)),
            "to_number": LINE_NUMBER,
        }
        if i == 0:
            fields["started_at"] = call.started.isoformat()
        if direction is recording.Direction.OUTPUT:
            fields["latency_ms"] = LATENCIES_MS[(call.number + i) % len(LATENCIES_MS)]
        if i == len(script.lines) - 1:
            minutes = total / 60
            fields |= {
                "final": "true",
                "ended_reason": script.ended_reason,
                "cost": {
                    "currency": "EUR",
                    "telephony": round(0.008 + 0.012 * minutes, 6),
                    "stt": round(0.006 * minutes, 6),
                    "llm": round(0.0004 * len(script.lines), 6),
                    "tts": round(0.004 * minutes, 6),
                },
            }
        name = recording.build(
            tenant_id=call.tenant_id,
            agent_id=call.agent_id,
            conversation_id=call.id,
            seq=i // 2 + 1,
            direction=direction,
            ext="wav",
        ).blob_name
        blob = services.recordings.get_blob_client(name)
        await blob.upload_blob(path.read_bytes(), overwrite=True, metadata=_meta(**fields))
        result = await ingest_blob(services=services, blob_name=name)
        if result.outcome not in (Outcome.INGESTED, Outcome.DUPLICATE):
            msg = f"the demo recording {name} was not ingested: {result.outcome} {result.reason}"
            raise RuntimeError(msg)
    return len(script.lines)


async def _deliver(services: Services, tenants: Sequence[uuid.UUID]) -> int:
    """Relay the events and send them as the webhooks worker does, until every delivery of the
    tenants has had its first attempt (a running ``kalimera run`` may send some of them)."""
    deadline = time.monotonic() + RECEIVER_SECONDS
    while True:
        await delivery.sweep(services=services)
        for message in await receive(services, 16, WEBHOOKS):
            await consume_message(services, message, job=WEBHOOKS)
        waiting, total = await _unattempted(services, tenants)
        if not waiting:
            return total
        if time.monotonic() > deadline:
            logger.warning(
                "%d webhook deliveries not attempted yet; the worker sends them", waiting
            )
            return total
        await asyncio.sleep(0.2)


async def _unattempted(services: Services, tenants: Sequence[uuid.UUID]) -> tuple[int, int]:
    """(deliveries with no attempt yet, all deliveries) of the tenants' endpoints."""
    waiting = total = 0
    for tenant_id in tenants:
        act_for_tenant(tenant_id)
        for endpoint in (await webhooks.list_all(services=services, tenant_id=tenant_id)).items:
            page = await webhooks.deliveries(
                services=services,
                tenant_id=tenant_id,
                endpoint_id=endpoint.id,
                status=None,
                page=1,
                limit=100,
            )
            total += page.total
            waiting += sum(1 for d in page.items if not d.attempts)
    return waiting, total


@contextlib.asynccontextmanager
async def _receiver() -> AsyncIterator[int]:
    """An integrator's server while the seed runs, on a free local port: ``/crm`` answers 204,
    anything else 503. Yields its port."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1] if " " in lines[0] else ""
            length = next(
                (int(v) for k, _, v in (h.partition(":") for h in lines[1:])
                 if k.strip().lower() == "content-length"),
                0,
            )  # fmt: skip
            await reader.readexactly(length)
            status = "204 No Content" if path == "/crm" else "503 Service Unavailable"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, OSError):
            pass  # a broken request: the delivery records the error
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
