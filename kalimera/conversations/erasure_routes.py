"""HTTP for erasure and retention (docs/retention.md): parse, authorise, call
``kalimera.conversations.erasure``, shape the answer.

A module of its own beside ``routes``: the DELETE is a conversation's (tag ``conversations``,
scope ``conversations:write``), the retention and the erasure log are the tenant's settings
(tag ``settings``, scope ``settings:admin``, granted only by name).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from kalimera.conversations import erasure
from kalimera.conversations.models import ErasureLog, RetentionRead, RetentionUpdate
from kalimera.deps import ConversationsWrite, ServicesDep, SettingsAdmin
from kalimera.problems import problem_responses

router = APIRouter(prefix="/kalimera", tags=["conversations"])
settings_router = APIRouter(prefix="/kalimera/settings", tags=["settings"])

Limit = Annotated[int, Query(ge=1, le=100, description="At most 100")]


@router.delete(
    "/conversations/{conversation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={
        204: {"description": "Erased: the call is gone from every store and every statistic"},
        **problem_responses(401, 403, 404, 422, 503),
    },
)
async def delete_conversation(
    conversation_id: uuid.UUID, principal: ConversationsWrite, services: ServicesDep
) -> None:
    """Erase the conversation: its row, turns, analysis results, recordings (blobs and
    sidecars) and history, and count it no more in the statistics. A repeat answers 404 (it is
    gone, as for an id never seen); the erasure is logged without personal data."""
    await erasure.erase_conversation(
        services=services,
        tenant_id=principal.tenant_id,
        conversation_id=conversation_id,
        token_id=principal.token_id,
    )


@settings_router.get("/retention", responses=problem_responses(401, 403, 503))
async def get_retention(principal: SettingsAdmin, services: ServicesDep) -> RetentionRead:
    """The tenant's retention, and how many conversations it would erase now (``due``)."""
    return await erasure.retention(services=services, tenant_id=principal.tenant_id)


@settings_router.put("/retention", responses=problem_responses(400, 401, 403, 422, 503))
async def set_retention(
    body: RetentionUpdate,
    principal: SettingsAdmin,
    services: ServicesDep,
    dry_run: Annotated[
        bool, Query(description="Only count what this retention would erase; change nothing")
    ] = False,
) -> RetentionRead:
    """Set the retention: every minute the timer erases the conversations older than ``days``
    (with their recordings and history), in bounded batches; ``null`` keeps them. Try it first
    with ``dry_run=true``: ``due`` says how many would go."""
    return await erasure.set_retention(
        services=services,
        tenant_id=principal.tenant_id,
        token_id=principal.token_id,
        body=body,
        dry_run=dry_run,
    )


@settings_router.get("/erasures", responses=problem_responses(401, 403, 422, 503))
async def list_erasures(
    principal: SettingsAdmin, services: ServicesDep, limit: Limit = 50
) -> ErasureLog:
    """The tenant's erasures, newest first: how many calls and recordings went, why, and which
    token asked. The log holds no personal data, so it is kept."""
    return await erasure.erasures(services=services, tenant_id=principal.tenant_id, limit=limit)
