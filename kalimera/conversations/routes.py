"""HTTP for conversations and voice: parse, authorise, call the service, shape the answer.

The HTTP the services do not see stays here: the upload's body stream (``multipart.Form``) and
``Idempotency-Key`` with its replayed answers (``idempotency.once``).
"""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BeforeValidator

from kalimera import idempotency
from kalimera.conversations import multipart, service
from kalimera.conversations.models import (
    ConversationCreate,
    ConversationDetail,
    ConversationPage,
    ConversationRead,
    ConversationStatus,
    ConversationUpdate,
    ProfileType,
    VoiceStored,
    VoiceUploadUrl,
)
from kalimera.conversations.recording import CONTENT_TYPES, RecordingFields, UploadUrlRequest
from kalimera.conversations.upload import FILE_FIELD
from kalimera.deps import (
    ConversationsRead,
    ConversationsWrite,
    IdempotencyKey,
    ServicesDep,
    answer,
)
from kalimera.problems import problem_responses

router = APIRouter(prefix="/kalimera", tags=["conversations"])

Page = Annotated[int, Query(ge=1, le=1_000_000, description="From 1")]


def _iso_day(value: object) -> object:
    # pydantic would also read "0" as 1970-01-01 (a Unix time): only YYYY-MM-DD is a day here.
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        msg = "an ISO date (YYYY-MM-DD) is required"
        raise ValueError(msg)
    return value


Day = Annotated[date, BeforeValidator(_iso_day)]
Limit = Annotated[int, Query(ge=1, le=100, description="At most 100")]

_FIELDS_SCHEMA = RecordingFields.model_json_schema(ref_template="#/components/schemas/{model}")
UPLOAD_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FILE_FIELD],
                "properties": {
                    FILE_FIELD: {
                        "type": "string",
                        "format": "binary",
                        "description": "mp3, wav, ogg or flac; at most 25 MiB",
                    },
                    **_FIELDS_SCHEMA["properties"],
                },
            },
            "encoding": {
                FILE_FIELD: {"contentType": ", ".join(CONTENT_TYPES.values())},
                "cost": {"contentType": "application/json"},  # a JSON object as a form field
            },
        }
    },
}


@router.post(
    "/conversations",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": ConversationRead, "description": "Already started: unchanged"},
        **problem_responses(400, 401, 403, 404, 422, 503),
    },
)
async def start_conversation(
    body: ConversationCreate,
    principal: ConversationsWrite,
    services: ServicesDep,
    response: Response,
) -> ConversationRead:
    """Telephony reports a call start; posting the same ``id`` again changes nothing (200)."""
    conversation, created = await service.start(
        services=services, tenant_id=principal.tenant_id, body=body
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return conversation


@router.patch(
    "/conversations/{conversation_id}", responses=problem_responses(400, 401, 403, 404, 422, 503)
)
async def update_conversation(
    conversation_id: uuid.UUID,
    body: ConversationUpdate,
    principal: ConversationsWrite,
    services: ServicesDep,
) -> ConversationRead:
    """End a call (``status`` Completed or Failed sets ``ended_at``), rename it, or set its
    language."""
    return await service.update(
        services=services, tenant_id=principal.tenant_id, conversation_id=conversation_id, body=body
    )


@router.get("/conversations", responses=problem_responses(401, 403, 422, 503))
async def list_conversations(
    principal: ConversationsRead,
    services: ServicesDep,
    agent_id: uuid.UUID | None = None,
    status: ConversationStatus | None = None,
    profile_type: ProfileType | None = None,
    start: Annotated[Day | None, Query(description="Started on or after this day (UTC)")] = None,
    end: Annotated[Day | None, Query(description="Started on or before this day (UTC)")] = None,
    page: Page = 1,
    limit: Limit = 10,
) -> ConversationPage:
    """Conversations newest first (by ``started_at``)."""
    filters = service.Filters(
        agent_id=agent_id,
        status=status.value if status else None,
        profile_type=profile_type.value if profile_type else None,
        start=start,
        end=end,
    )
    return await service.page(
        services=services, tenant_id=principal.tenant_id, filters=filters, page=page, limit=limit
    )


@router.get(
    "/conversations/{conversation_id}", responses=problem_responses(401, 403, 404, 422, 503)
)
async def get_conversation(
    conversation_id: uuid.UUID, principal: ConversationsRead, services: ServicesDep
) -> ConversationDetail:
    """The conversation with its turns, each with a read-only download URL valid 15 minutes."""
    return await service.detail(
        services=services, tenant_id=principal.tenant_id, conversation_id=conversation_id
    )


@router.post(
    "/ai-agent/{agent_id}/voice",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=VoiceStored,
    openapi_extra={"requestBody": UPLOAD_BODY},
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 503),
)
async def upload_voice(
    agent_id: uuid.UUID,
    request: Request,
    principal: ConversationsWrite,
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Store one recording under the naming contract; the conversation appears when the blob
    trigger has processed it. 409: another upload of the same recording was stored meanwhile,
    or a request with the same ``Idempotency-Key`` is in progress."""
    tenant_id = principal.tenant_id
    await service.require_agent(services=services, tenant_id=tenant_id, agent_id=agent_id)
    form = multipart.Form(request.stream(), request.headers.get("content-type"))

    async def receive(*, store: bool) -> tuple[VoiceStored | None, str]:
        received = await service.receive_upload(
            services=services, tenant_id=tenant_id, agent_id=agent_id, form=form, store=store
        )
        return received.stored, idempotency.fingerprint(received.request)

    async def run() -> tuple[VoiceStored, str]:
        stored, fingerprint = await receive(store=True)
        assert stored is not None
        return stored, fingerprint

    async def fingerprint() -> str:
        return (await receive(store=False))[1]

    return answer(
        await idempotency.once(
            services=services,
            tenant_id=tenant_id,
            key=idempotency_key,
            operation=f"POST /kalimera/ai-agent/{agent_id}/voice",
            status=202,
            run=run,
            fingerprint=fingerprint,
        )
    )


@router.post(
    "/ai-agent/{agent_id}/voice/upload-url",
    status_code=status.HTTP_201_CREATED,
    response_model=VoiceUploadUrl,
    responses=problem_responses(400, 401, 403, 404, 409, 422, 503),
)
async def create_voice_upload_url(
    agent_id: uuid.UUID,
    body: UploadUrlRequest,
    principal: ConversationsWrite,
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """A URL to PUT one recording straight to Blob Storage (any size; the multipart upload
    stops at 25 MiB): it can create that one blob for 15 minutes and do nothing else. Send the
    ``headers`` with the PUT. 409: a recording is stored at that name already."""
    tenant_id = principal.tenant_id
    await service.require_agent(services=services, tenant_id=tenant_id, agent_id=agent_id)
    fingerprint = idempotency.fingerprint(body.model_dump(mode="json"))

    async def run() -> tuple[VoiceUploadUrl, str]:
        issued = await service.issue_upload_url(
            services=services, tenant_id=tenant_id, agent_id=agent_id, body=body
        )
        return issued, fingerprint

    async def same() -> str:
        return fingerprint

    return answer(
        await idempotency.once(
            services=services,
            tenant_id=tenant_id,
            key=idempotency_key,
            operation=f"POST /kalimera/ai-agent/{agent_id}/voice/upload-url",
            status=201,
            run=run,
            fingerprint=same,
        )
    )


@router.get("/ai-agent/{agent_id}/voice", responses=problem_responses(401, 403, 404, 422, 503))
async def get_voice(
    agent_id: uuid.UUID,
    principal: ConversationsRead,
    services: ServicesDep,
    conversation_id: uuid.UUID | None = None,
    page: Page = 1,
    limit: Limit = 10,
) -> ConversationDetail | ConversationPage:
    """With ``conversation_id``: that conversation with its turns; without: the agent's
    conversations, newest first."""
    await service.require_agent(services=services, tenant_id=principal.tenant_id, agent_id=agent_id)
    if conversation_id is not None:
        return await service.detail(
            services=services,
            tenant_id=principal.tenant_id,
            conversation_id=conversation_id,
            agent_id=agent_id,
        )
    return await service.page(
        services=services,
        tenant_id=principal.tenant_id,
        filters=service.Filters(agent_id=agent_id),
        page=page,
        limit=limit,
    )
