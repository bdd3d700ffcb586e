"""HTTP for conversations and voice: parse, authorise, call the service, shape the answer.

The HTTP the services do not see stays here: the upload's body stream (``multipart.Form``) and
``Idempotency-Key`` with its replayed answers (``idempotency.once``).
"""

from __future__ import annotations

import re
import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
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
    EndedReason,
    ProfileType,
    SuccessResult,
    VoiceStored,
    VoiceUploadUrl,
)
from kalimera.conversations.recording import CONTENT_TYPES, RecordingFields, UploadUrlRequest
from kalimera.conversations.sentiment import SentimentLabel
from kalimera.conversations.upload import FILE_FIELD
from kalimera.deps import (
    ETAG_HEADER,
    LOCATION_HEADER,
    ConversationsRead,
    ConversationsWrite,
    IdempotencyKey,
    IfMatch,
    IfNoneMatch,
    ServicesDep,
    TzQuery,
    answer,
    not_modified,
)
from kalimera.idempotency import Replay
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
MAX_CONTACT_ID = 2**63 - 1  # a contact's id is a bigint

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


NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not Modified: the copy named by If-None-Match is current"}
}


def conversation_path(conversation_id: uuid.UUID | str) -> str:
    return f"{router.prefix}/conversations/{conversation_id}"


def _located(result: VoiceStored | VoiceUploadUrl | Replay, response: Response) -> Any:
    """The answer of a route that stores a recording, replayed or not, with ``Location``: the
    conversation the recording joins (it appears there once the blob trigger has run)."""
    answered = answer(result)
    if isinstance(result, Replay):
        conversation_id = result.body.get("conversation_id")
    else:
        conversation_id = result.conversation_id
    if conversation_id is not None:
        headers = answered.headers if isinstance(answered, JSONResponse) else response.headers
        headers["Location"] = conversation_path(conversation_id)
    return answered


def _tagged(found: service.Tagged[Any], response: Response) -> Any:
    if found.etag is not None:
        response.headers["ETag"] = found.etag
    return found.conversation


@router.post(
    "/conversations",
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {"headers": {**LOCATION_HEADER, **ETAG_HEADER}},
        200: {
            "model": ConversationRead,
            "description": "Already started: unchanged",
            "headers": ETAG_HEADER,
        },
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
    found, created = await service.start(
        services=services, tenant_id=principal.tenant_id, body=body
    )
    if created:
        response.headers["Location"] = conversation_path(found.conversation.id)
    else:
        response.status_code = status.HTTP_200_OK
    return _tagged(found, response)  # type: ignore[no-any-return]


@router.patch(
    "/conversations/{conversation_id}",
    responses={
        200: {"headers": ETAG_HEADER},
        **problem_responses(400, 401, 403, 404, 412, 422, 503),
    },
)
async def update_conversation(
    conversation_id: uuid.UUID,
    body: ConversationUpdate,
    principal: ConversationsWrite,
    services: ServicesDep,
    response: Response,
    if_match: IfMatch = None,
) -> ConversationRead:
    """End a call (``status`` Completed or Failed sets ``ended_at``), rename it, or set its
    language. With ``If-Match`` (an ETag from a read), 412 if it changed since."""
    updated = await service.update(
        services=services,
        tenant_id=principal.tenant_id,
        conversation_id=conversation_id,
        body=body,
        if_match=if_match,
    )
    return _tagged(updated, response)  # type: ignore[no-any-return]


Seconds = Annotated[float, Query(ge=0, le=1_000_000_000, allow_inf_nan=False)]


@router.get(
    "/conversations",
    responses=problem_responses(401, 403, 422, 503),
    description=(
        "Conversations newest first (by `started_at`); with `q`, the best matches first.\n\n"
        "Filters combine (all must hold). Besides the named parameters, "
        "`data.<field>=<value>` keeps the conversations whose analysis extracted that value "
        "for that top-level field of its data (`data.party_size=4`, `data.intent=booking`, "
        '`data.callback=true`, `data.code="42"` for the string): the value is compared as JSON, '
        "a number as a number (4 is 4.0), true/false as booleans, a JSON string in double "
        "quotes as that string, anything else as the text written. The field is a letter or "
        "`_` then up to 63 letters, digits or `_`; at most 5 such filters; a value has at most "
        "100 characters.\n\n"
        "Days: `start` and `end` are local dates in `tz` (an IANA zone, default UTC), "
        "counted as the statistics count them, so a chart's period and this list agree.\n\n"
        "Pages: `page` and `limit` over a total order (newest first; with `q`, the relevance, "
        "then newest first, then the id), so paging through an unchanging result shows each "
        "conversation once."
    ),
)
async def list_conversations(
    request: Request,
    principal: ConversationsRead,
    services: ServicesDep,
    agent_id: uuid.UUID | None = None,
    status: ConversationStatus | None = None,
    profile_type: ProfileType | None = None,
    start: Annotated[
        Day | None, Query(description="Started on or after this local day (in `tz`)")
    ] = None,
    end: Annotated[
        Day | None, Query(description="Started on or before this local day (in `tz`)")
    ] = None,
    tz: TzQuery = "UTC",
    contact_id: Annotated[
        int | None,
        Query(ge=1, le=MAX_CONTACT_ID, description="Only the calls with this contact"),
    ] = None,
    success: Annotated[
        SuccessResult | None,
        Query(
            description="The analysis' pass/fail verdict (plans with the pass_fail rubric)",
            examples=["fail"],
        ),
    ] = None,
    ended_reason: Annotated[
        EndedReason | None, Query(description="Why the call ended", examples=["voicemail"])
    ] = None,
    sentiment: Annotated[
        SentimentLabel | None, Query(description="The call's sentiment", examples=["negative"])
    ] = None,
    min_duration: Annotated[
        Seconds | None, Query(description="At least this long (seconds)", examples=[30])
    ] = None,
    max_duration: Annotated[
        Seconds | None, Query(description="At most this long (seconds)", examples=[600])
    ] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description=(
                "Words, all of which the call's transcripts or its analysis summary hold "
                "(whole words, any language; case and accents ignored: `καλημερα` finds "
                "`Καλημέρα`); the calls where they occur most come first. At most 10 words."
            ),
            examples=["καλημέρα κράτηση", "refund invoice"],
        ),
    ] = None,
    page: Page = 1,
    limit: Limit = 10,
) -> ConversationPage:
    filters = service.Filters(
        agent_id=agent_id,
        status=status.value if status else None,
        profile_type=profile_type.value if profile_type else None,
        start=start,
        end=end,
        success=success.value if success else None,
        ended_reason=ended_reason.value if ended_reason else None,
        sentiment=sentiment.value if sentiment else None,
        min_duration=None if min_duration is None else Decimal(str(min_duration)),
        max_duration=None if max_duration is None else Decimal(str(max_duration)),
        q=q,
        data=service.data_filters(request.query_params.multi_items()),
        contact_id=contact_id,
        tz=tz,
    )
    return await service.page(
        services=services, tenant_id=principal.tenant_id, filters=filters, page=page, limit=limit
    )


@router.get(
    "/contact/{contact_id}/conversations",
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def list_contact_conversations(
    contact_id: Annotated[
        int, Path(ge=1, le=MAX_CONTACT_ID, description="The contact's integer id")
    ],
    principal: ConversationsRead,
    services: ServicesDep,
    page: Page = 1,
    limit: Limit = 10,
) -> ConversationPage:
    """The calls with one contact (its number is the caller's on an inbound call, the
    callee's on an outbound one), newest first, paged as the conversation list is."""
    return await service.contact_page(
        services=services,
        tenant_id=principal.tenant_id,
        contact_id=contact_id,
        number=page,
        limit=limit,
    )


def _detail(
    found: service.Tagged[ConversationDetail], if_none_match: str | None, response: Response
) -> Any:
    """The detail with its ETag, or 304 when the client's copy is current."""
    if found.etag is not None:
        unchanged = not_modified(if_none_match, found.etag)
        if unchanged is not None:
            return unchanged
    return _tagged(found, response)


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationDetail,
    responses={
        200: {"headers": ETAG_HEADER},
        **NOT_MODIFIED,
        **problem_responses(401, 403, 404, 422, 503),
    },
)
async def get_conversation(
    conversation_id: uuid.UUID,
    principal: ConversationsRead,
    services: ServicesDep,
    response: Response,
    if_none_match: IfNoneMatch = None,
) -> Any:
    """The conversation with its turns, each with a read-only download URL valid 15 minutes
    or more. ``If-None-Match`` with its ETag answers 304 while it is unchanged and the URLs
    of that copy are those handed out now (the ETag names their signing window)."""
    found = await service.detail(
        services=services, tenant_id=principal.tenant_id, conversation_id=conversation_id
    )
    return _detail(found, if_none_match, response)


@router.post(
    "/ai-agent/{agent_id}/voice",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=VoiceStored,
    openapi_extra={"requestBody": UPLOAD_BODY},
    responses={
        202: {"headers": LOCATION_HEADER},
        **problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 503),
    },
)
async def upload_voice(
    agent_id: uuid.UUID,
    request: Request,
    principal: ConversationsWrite,
    services: ServicesDep,
    response: Response,
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

    return _located(
        await idempotency.once(
            services=services,
            tenant_id=tenant_id,
            key=idempotency_key,
            operation=f"POST /kalimera/ai-agent/{agent_id}/voice",
            status=202,
            run=run,
            fingerprint=fingerprint,
        ),
        response,
    )


@router.post(
    "/ai-agent/{agent_id}/voice/upload-url",
    status_code=status.HTTP_201_CREATED,
    response_model=VoiceUploadUrl,
    responses={
        201: {"headers": LOCATION_HEADER},
        **problem_responses(400, 401, 403, 404, 409, 422, 503),
    },
)
async def create_voice_upload_url(
    agent_id: uuid.UUID,
    body: UploadUrlRequest,
    principal: ConversationsWrite,
    services: ServicesDep,
    response: Response,
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

    return _located(
        await idempotency.once(
            services=services,
            tenant_id=tenant_id,
            key=idempotency_key,
            operation=f"POST /kalimera/ai-agent/{agent_id}/voice/upload-url",
            status=201,
            run=run,
            fingerprint=same,
        ),
        response,
    )


@router.get(
    "/ai-agent/{agent_id}/voice",
    response_model=ConversationDetail | ConversationPage,
    responses={
        200: {"headers": ETAG_HEADER},
        **NOT_MODIFIED,
        **problem_responses(401, 403, 404, 422, 503),
    },
)
async def get_voice(
    agent_id: uuid.UUID,
    principal: ConversationsRead,
    services: ServicesDep,
    response: Response,
    conversation_id: uuid.UUID | None = None,
    page: Page = 1,
    limit: Limit = 10,
    if_none_match: IfNoneMatch = None,
) -> Any:
    """With ``conversation_id``: that conversation with its turns (with its ETag, and 304 as
    ``GET /kalimera/conversations/{id}`` answers); without: the agent's conversations, newest
    first."""
    await service.require_agent(services=services, tenant_id=principal.tenant_id, agent_id=agent_id)
    if conversation_id is not None:
        found = await service.detail(
            services=services,
            tenant_id=principal.tenant_id,
            conversation_id=conversation_id,
            agent_id=agent_id,
        )
        return _detail(found, if_none_match, response)
    return await service.page(
        services=services,
        tenant_id=principal.tenant_id,
        filters=service.Filters(agent_id=agent_id),
        page=page,
        limit=limit,
    )
