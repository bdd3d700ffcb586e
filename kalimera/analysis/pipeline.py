"""What a message of the ``kalimera-analysis`` queue does (docs/analysis.md, "When it runs"): the
service behind the queue trigger ``analyse_conversation`` and the dev runner's consumer.

Exactly one result per (conversation, plan version, transcript version) under at-least-once
delivery: a message whose 'done' result exists calls no model (it only makes sure the
conversation shows that result). The model is called with no transaction open; the result and
the conversation's copy of it are written in one short transaction after. An answer for a
transcript that changed meanwhile is kept as a result but does not replace the conversation's
(the change asked for a newer one). ``ModelUnavailable`` is raised out, so the queue delivers the
message again later (and moves it to the poison queue after ``maxDequeueCount`` tries).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import orjson

from kalimera import events, outbox
from kalimera.analysis import repository
from kalimera.analysis.model import (
    AnswerRefused,
    ModelAnswer,
    ModelUnavailable,
    TranscriptLine,
    analyser_for,
)
from kalimera.analysis.models import DEFAULT_PLAN, AnalysisPlan
from kalimera.db import Conn, transaction

if TYPE_CHECKING:
    from kalimera.services import Services

logger = logging.getLogger(__name__)

MAX_DEQUEUE = 5
"""host.json's ``extensions.queues.maxDequeueCount``: the tries a message gets before Functions
moves it to ``kalimera-analysis-poison`` (the dev runner's consumer does the same)."""
FEED_BATCH = 200
"""A run's conversations moved to the outbox per transaction: never a run's thousands at once."""
NO_MODEL = "no model configured"
NO_TRANSCRIPT = "no transcript"
SENTIMENTS = frozenset({"positive", "neutral", "negative"})
LIKERT = frozenset({"strongly_disagree", "disagree", "neutral", "agree", "strongly_agree"})


class Handled(StrEnum):
    ANALYSED = "analysed"  # the model answered; the result is stored
    FAILED = "failed"  # the model's answer was refused: stored as failed
    SKIPPED = "skipped"  # no model, or no transcript: stored as skipped
    EXISTING = "existing"  # a 'done' result existed: no model call
    STALE = "stale"  # stored, but the transcript moved on meanwhile
    FED = "fed"  # a run's next batch went to the outbox
    IGNORED = "ignored"  # cancelled, gone, still Active, or not a message of ours


@dataclass(frozen=True, slots=True)
class Request:
    kind: str
    tenant_id: uuid.UUID
    conversation_id: uuid.UUID | None
    run_id: uuid.UUID | None


def decode(body: bytes | str) -> Request | None:
    """The request a queue message carries (``kalimera.outbox.message``); None if it is not
    one (logged: retrying could not make it one)."""
    try:
        data = orjson.loads(body)
        kind = data["kind"]
        if kind not in ("analyse", "feed"):
            raise ValueError(kind)
        conversation = data.get("conversation_id")
        run = data.get("run_id")
        request = Request(
            kind=kind,
            tenant_id=uuid.UUID(data["tenant_id"]),
            conversation_id=uuid.UUID(conversation) if conversation else None,
            run_id=uuid.UUID(run) if run else None,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        logger.error(
            "not an analysis request, dropped: %r",
            bytes(body[:200]) if isinstance(body, bytes) else body[:200],
        )
        return None
    if (request.kind == "analyse") != (request.conversation_id is not None) or (
        request.kind == "feed" and request.run_id is None
    ):
        logger.error("an incomplete analysis request, dropped: %r", request)
        return None
    return request


async def handle(*, services: Services, body: bytes | str, dequeue_count: int = 1) -> Handled:
    """One queue message: analyse a conversation, or feed a run's next batch. On the message's
    last try (``dequeue_count`` = ``MAX_DEQUEUE``) a model that is still unavailable is stored
    as ``failed`` rather than raised: the call shows why, and a run's count ends."""
    request = decode(body)
    if request is None:
        return Handled.IGNORED
    if request.kind == "feed":
        assert request.run_id is not None
        return await feed(services=services, tenant_id=request.tenant_id, run_id=request.run_id)
    assert request.conversation_id is not None
    return await analyse(
        services=services,
        tenant_id=request.tenant_id,
        conversation_id=request.conversation_id,
        run_id=request.run_id,
        last_try=dequeue_count >= MAX_DEQUEUE,
    )


async def feed(*, services: Services, tenant_id: uuid.UUID, run_id: uuid.UUID) -> Handled:
    """Move the run's next batch to the outbox, with the request for the batch after it, and
    relay them: a run enqueues itself a batch at a time, each a short transaction."""
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        moved = await repository.feed(
            conn=conn, tenant_id=tenant_id, run_id=run_id, limit=FEED_BATCH
        )
        if moved and await repository.waiting(conn=conn, tenant_id=tenant_id, run_id=run_id):
            await repository.add_feed(conn=conn, tenant_id=tenant_id, run_id=run_id)
    if not moved:
        return Handled.IGNORED
    await outbox.relay_after_commit(services=services, tenant_id=tenant_id, run_id=run_id)
    return Handled.FED


@dataclass(frozen=True, slots=True)
class _Job:
    """What the model is asked about, read in the first transaction."""

    plan_version: int
    plan: AnalysisPlan
    transcript_version: int
    lines: list[TranscriptLine]


async def analyse(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    run_id: uuid.UUID | None = None,
    last_try: bool = False,
) -> Handled:
    """Analyse the conversation's current transcript with the agent's current plan (a run's
    item: the run's plan version), unless that result exists."""
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        job = await _prepare(conn, tenant_id, conversation_id, run_id)
    if isinstance(job, Handled):
        return job
    analysis, status = await _ask(services, job, last_try=last_try)
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        stored = await repository.store_result(
            conn=conn,
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            plan_version=job.plan_version,
            transcript_version=job.transcript_version,
            status=status,
            analysis=analysis,
        )
        current = await repository.apply_result(
            conn=conn,
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            transcript_version=job.transcript_version,
            analysis=stored["analysis"],
            columns=_columns(job.plan, stored["analysis"]),
        )
        await _finish_item(conn, tenant_id, conversation_id, run_id, stored["status"])
    if not current:
        return Handled.STALE
    if stored["status"] == "done":  # conversation.analyzed, written by 0023's trigger
        await events.relay_after_commit(services=services, tenant_id=tenant_id)
    return {"done": Handled.ANALYSED, "failed": Handled.FAILED}.get(
        stored["status"], Handled.SKIPPED
    )


async def _prepare(
    conn: Conn, tenant_id: uuid.UUID, conversation_id: uuid.UUID, run_id: uuid.UUID | None
) -> _Job | Handled:
    """The plan and transcript to analyse, or why there is nothing to do."""
    version: int | None = None
    if run_id is not None:
        item = await repository.start_item(
            conn=conn, tenant_id=tenant_id, run_id=run_id, conversation_id=conversation_id
        )
        if item is None:  # cancelled, or finished by an earlier delivery
            return Handled.IGNORED
        version = item["plan_version"]
    conversation = await repository.conversation(
        conn=conn, tenant_id=tenant_id, conversation_id=conversation_id
    )
    if conversation is None or conversation["status"] == "Active":
        return await _finish_ignored(conn, tenant_id, conversation_id, run_id)
    plan = await repository.plan_version(
        conn=conn, tenant_id=tenant_id, agent_id=conversation["agent_id"], version=version
    )
    if plan is None:
        return await _finish_ignored(conn, tenant_id, conversation_id, run_id)
    transcript_version = conversation["transcript_version"]
    existing = await repository.result(
        conn=conn,
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        plan_version=plan["version"],
        transcript_version=transcript_version,
    )
    parsed = DEFAULT_PLAN if plan["plan"] is None else AnalysisPlan.model_validate(plan["plan"])
    if existing is not None and existing["status"] == "done":
        if conversation["analysis_status"] != "done":  # asked again: show the result it has
            await repository.apply_result(
                conn=conn,
                tenant_id=tenant_id,
                conversation_id=conversation_id,
                transcript_version=transcript_version,
                analysis=existing["analysis"],
                columns=_columns(parsed, existing["analysis"]),
            )
        await _finish_item(conn, tenant_id, conversation_id, run_id, "done")
        return Handled.EXISTING
    rows = await repository.transcript(
        conn=conn, tenant_id=tenant_id, conversation_id=conversation_id
    )
    lines = [
        TranscriptLine(
            speaker="Caller" if row["direction"] == "input" else "Agent",
            offset_seconds=round(float(row["offset_seconds"]), 2),
            text=row["text"].strip(),
        )
        for row in rows
    ]
    return _Job(plan["version"], parsed, transcript_version, lines)


async def _finish_item(
    conn: Conn,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    run_id: uuid.UUID | None,
    state: str,
) -> None:
    """Count a run's item as finished (nothing to do for a request that is not a run's)."""
    if run_id is not None:
        await repository.finish_item(
            conn=conn,
            tenant_id=tenant_id,
            run_id=run_id,
            conversation_id=conversation_id,
            state=state,
        )


async def _finish_ignored(
    conn: Conn, tenant_id: uuid.UUID, conversation_id: uuid.UUID, run_id: uuid.UUID | None
) -> Handled:
    await _finish_item(conn, tenant_id, conversation_id, run_id, "skipped")
    return Handled.IGNORED


async def _ask(services: Services, job: _Job, *, last_try: bool) -> tuple[dict[str, Any], str]:
    """The analysis (as the conversation shows it) and its status: the model's answer, its
    refusal, or why no model was asked. Never a made-up result."""
    analysed_at = datetime.now(UTC).isoformat()
    base = {"plan_version": job.plan_version, "analysed_at": analysed_at}
    if not job.lines:
        return {"status": "skipped", "reason": NO_TRANSCRIPT, **base}, "skipped"
    analyser = analyser_for(services)
    if analyser is None:
        return {"status": "skipped", "reason": NO_MODEL, **base}, "skipped"
    try:
        answer = await analyser.analyse(plan=job.plan, lines=job.lines)
    except AnswerRefused as exc:
        return {"status": "failed", "error": str(exc), **base}, "failed"
    except ModelUnavailable as exc:
        if not last_try:
            raise  # the queue delivers the message again later
        error = f"the model was unavailable after {MAX_DEQUEUE} tries: {exc}"
        return {"status": "failed", "error": error, **base}, "failed"
    return {"status": "done", **base, **_answer(answer)}, "done"


def _answer(answer: ModelAnswer) -> dict[str, Any]:
    return {
        "summary": answer.summary,
        "success": answer.success,
        "data": answer.data,
        "sentiment": answer.sentiment,
        "model": answer.model,
        "input_tokens": answer.input_tokens,
        "output_tokens": answer.output_tokens,
        "cost": float(answer.cost),
    }


def _columns(plan: AnalysisPlan, analysis: dict[str, Any]) -> dict[str, Any]:
    """The columns of migration 0016 that the statistics and the listing read, from a result:
    the verdict by rubric, the cost, and the sentiment when the model gave one."""
    columns: dict[str, Any] = {
        "success_rubric": None,
        "success_result": None,
        "success_score": None,
        "analysis_cost": analysis.get("cost"),
    }
    success = analysis.get("success")
    if plan.success.enabled and isinstance(success, dict):
        verdict = success.get("result")
        rubric = plan.success.rubric
        labels = {"pass_fail": ("pass", "fail"), "likert_5": LIKERT}.get(rubric, ())
        if verdict in labels:
            columns.update(success_rubric=rubric, success_result=verdict)
        elif (
            rubric == "score_1_10"
            and isinstance(verdict, int)
            and not isinstance(verdict, bool)
            and 1 <= verdict <= 10
        ):
            columns.update(success_rubric=rubric, success_score=verdict)
    sentiment = analysis.get("sentiment")
    if isinstance(sentiment, dict) and sentiment.get("label") in SENTIMENTS:
        score = sentiment.get("score")
        columns["sentiment"] = sentiment["label"]
        columns["sentiment_score"] = (
            max(-1.0, min(1.0, float(score))) if isinstance(score, int | float) else None
        )
    return columns
