"""Re-running analyses (docs/analysis.md, "Re-runs"): one conversation again, or an agent's
conversations over a date range in bulk, with progress and cancel.

A run never enqueues its conversations in one go: it is made in one transaction (the run, its
items chosen by one INSERT ... SELECT that locks no conversation, and a 'feed' request in the
outbox), and each 'feed' message moves the next ``pipeline.FEED_BATCH`` items to the outbox in a
short transaction of its own, with the request for the batch after. The model sees no more of a
run at once than the queue consumer's batch and the analyser's concurrency limit let through.
"""

from __future__ import annotations

import logging
import uuid
from datetime import date
from typing import TYPE_CHECKING, Any

from kalimera import outbox
from kalimera.analysis import repository
from kalimera.analysis.models import AnalysisRunCreated, AnalysisRunRead
from kalimera.db import transaction
from kalimera.errors import Conflict, NotFound, invalid

if TYPE_CHECKING:
    from kalimera.services import Services

logger = logging.getLogger(__name__)

RUN_NOT_FOUND = "Analysis run not found"
MAX_DAYS = 366
"""The longest range one run takes: a year; more is several runs."""


async def request_one(
    *, services: Services, tenant_id: uuid.UUID, conversation_id: uuid.UUID
) -> None:
    """Analyse the conversation again with its agent's current plan (it shows ``pending`` until
    then). ``Conflict`` while the call is still Active: it is analysed when it ends."""
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        found = await repository.conversation(
            conn=conn, tenant_id=tenant_id, conversation_id=conversation_id
        )
        if found is None:
            raise NotFound("Conversation not found")
        if found["status"] == "Active":
            raise Conflict("The call has not ended; it is analysed when it ends")
        await repository.request(conn=conn, tenant_id=tenant_id, conversation_id=conversation_id)
    await outbox.relay_after_commit(
        services=services, tenant_id=tenant_id, conversation_id=conversation_id
    )


async def start_run(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    since: date,
    until: date,
    plan_version: int | None,
) -> AnalysisRunCreated:
    """Make a run over the agent's conversations that ended in [since, until] and have no
    result for the plan version (the current one by default)."""
    if since > until:
        raise invalid(("body", "until"), "until is before since")
    if (until - since).days >= MAX_DAYS:
        raise invalid(("body", "until"), f"a run covers at most {MAX_DAYS} days")
    run_id = uuid.uuid4()
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        if not await repository.agent_exists(conn=conn, tenant_id=tenant_id, agent_id=agent_id):
            raise NotFound("AI Agent not found")
        plan = await repository.plan_version(
            conn=conn, tenant_id=tenant_id, agent_id=agent_id, version=plan_version
        )
        if plan is None:
            raise invalid(("body", "plan_version"), "the agent's plan has no such version")
        total = await repository.create_run(
            conn=conn,
            tenant_id=tenant_id,
            run_id=run_id,
            agent_id=agent_id,
            plan_version=plan["version"],
            since=since,
            until=until,
        )
    logger.info(
        "analysis run %r: agent=%r plan_version=%r total=%d",
        str(run_id),
        str(agent_id),
        plan["version"],
        total,
    )
    if total:
        await outbox.relay_after_commit(services=services, tenant_id=tenant_id, run_id=run_id)
    return AnalysisRunCreated(id=run_id, total=total)


async def get_run(
    *, services: Services, tenant_id: uuid.UUID, run_id: uuid.UUID
) -> AnalysisRunRead:
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        row = await repository.run(conn=conn, tenant_id=tenant_id, run_id=run_id)
    if row is None:
        raise NotFound(RUN_NOT_FOUND)
    return _read(row)


async def cancel_run(
    *, services: Services, tenant_id: uuid.UUID, run_id: uuid.UUID
) -> AnalysisRunRead:
    """Cancel what has not started; what has started finishes and is counted."""
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        if not await repository.cancel_run(conn=conn, tenant_id=tenant_id, run_id=run_id):
            raise NotFound(RUN_NOT_FOUND)
        row = await repository.run(conn=conn, tenant_id=tenant_id, run_id=run_id)
    assert row is not None
    return _read(row)


def _read(row: dict[str, Any]) -> AnalysisRunRead:
    counts: dict[str, int] = row["counts"]
    left = sum(counts.get(state, 0) for state in ("waiting", "queued", "started"))
    status = "cancelled" if row["status"] == "cancelled" else "running" if left else "done"
    return AnalysisRunRead(
        id=row["id"],
        agent_id=row["agent_id"],
        plan_version=row["plan_version"],
        since=row["since"],
        until=row["until"],
        status=status,
        total=row["total"],
        done=counts.get("done", 0),
        failed=counts.get("failed", 0),
        skipped=counts.get("skipped", 0),
        cancelled=counts.get("cancelled", 0),
        created_at=row["created_at"],
    )
