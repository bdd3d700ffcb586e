"""What the conversation API does: start, end, list and read conversations, take recordings.

Framework-free: it raises the domain's errors (``kalimera.errors``), and the routes keep the
HTTP (the request's body stream, ``Idempotency-Key`` and its replayed answers).
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any

from kalimera import events, outbox
from kalimera.conversations import history, recording, repository, seqs, upload
from kalimera.conversations.models import (
    ConversationCreate,
    ConversationDetail,
    ConversationPage,
    ConversationRead,
    ConversationStatus,
    ConversationUpdate,
    Turn,
    VoiceUploadUrl,
)
from kalimera.conversations.multipart import Form
from kalimera.conversations.recording import UploadUrlRequest
from kalimera.conversations.signing import Signer
from kalimera.db import transaction
from kalimera.errors import Conflict, NotFound, Unavailable, invalid

if TYPE_CHECKING:
    from kalimera.services import Services


@contextlib.contextmanager
def storage_unavailable() -> Iterator[None]:
    """Blob or Table storage that does not answer is ``Unavailable`` (a 503 with Retry-After,
    like Postgres)."""
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    try:
        yield
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise Unavailable("Storage is unavailable; retry shortly") from exc


def conversation_not_found() -> NotFound:
    return NotFound("Conversation not found")


def agent_not_found() -> NotFound:
    return NotFound("AI agent not found")


async def require_agent(*, services: Services, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> str:
    """The agent's profile type; 404 when the tenant has no such agent."""
    async with transaction(await services.db()) as conn:
        profile = await repository.agent_profile_type(
            conn=conn, tenant_id=tenant_id, agent_id=agent_id
        )
    if profile is None:
        raise agent_not_found()
    return profile


async def start(
    *, services: Services, tenant_id: uuid.UUID, body: ConversationCreate
) -> tuple[ConversationRead, bool]:
    """Create the conversation (True), or return the one with that id unchanged (False)."""
    started_at = body.started_at or datetime.now(UTC)
    conversation_id = body.id or uuid.uuid4()
    async with transaction(await services.db()) as conn:
        agent = await repository.agent_profile_type(
            conn=conn, tenant_id=tenant_id, agent_id=body.agent_id
        )
        if agent is None:
            raise agent_not_found()
        row = await repository.insert_conversation(
            conn=conn,
            tenant_id=tenant_id,
            id=conversation_id,
            agent_id=body.agent_id,
            title=body.title,
            profile_type=body.profile_type.value,
            instance_id=body.instance_id,
            from_number=body.from_number,
            to_number=body.to_number,
            language=body.language,
            started_at=started_at,
        )
        created = row is not None
        if row is None:
            row = await repository.get_conversation(
                conn=conn, tenant_id=tenant_id, conversation_id=conversation_id
            )
    assert row is not None
    if created:  # conversation.started, written by 0023's trigger
        await events.relay_after_commit(services=services, tenant_id=tenant_id)
    return ConversationRead.model_validate(row), created


async def update(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    body: ConversationUpdate,
) -> ConversationRead:
    async with transaction(await services.db()) as conn:
        current = await repository.get_conversation(
            conn=conn, tenant_id=tenant_id, conversation_id=conversation_id, lock=True
        )
        if current is None:
            raise conversation_not_found()
        if body.ended_at is not None and body.ended_at < current["started_at"]:
            raise invalid(["body", "ended_at"], "ended_at is before started_at")
        row = await repository.update_conversation(
            conn=conn,
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            status=body.status.value if body.status else None,
            ended_at=body.ended_at,
            title=body.title,
            language=body.language,
            ended_reason=body.ended_reason.value if body.ended_reason else None,
            cost=body.cost.stored() if body.cost else None,
        )
    assert row is not None
    if row["status"] != ConversationStatus.ACTIVE:  # an end asks for the analysis (0017)
        await outbox.relay_after_commit(
            services=services, tenant_id=tenant_id, conversation_id=conversation_id
        )
        await events.relay_after_commit(services=services, tenant_id=tenant_id)  # ended (0023)
    return ConversationRead.model_validate(row)


DATA_PREFIX = "data."
DATA_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_DATA_FILTERS = 5
MAX_DATA_VALUE = 100  # characters; the index keeps values up to 200 characters of JSON
MAX_WORDS = 10
NUL = "\x00"
NO_NUL = "must not contain NUL characters"  # PostgreSQL text can not hold one
MAX_EXPONENT = 1000  # a data number's: PostgreSQL's numeric holds it exactly


@dataclass(frozen=True, slots=True)
class Filters:
    agent_id: uuid.UUID | None = None
    status: str | None = None
    profile_type: str | None = None
    start: date | None = None  # started on or after this day (UTC)
    end: date | None = None  # started on or before this day (UTC), inclusive
    success: str | None = None  # pass or fail
    ended_reason: str | None = None
    sentiment: str | None = None
    min_duration: Decimal | None = None  # seconds, inclusive
    max_duration: Decimal | None = None  # seconds, inclusive
    q: str | None = None  # words, all of them in the transcripts or the summary
    data: dict[str, str] = field(default_factory=dict)  # field -> the value as JSON text


def data_filters(query: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The ``data.<field>=<value>`` parameters of a query string: field → the value as JSON
    text. A value is a JSON number, ``true``/``false`` or a JSON string in double quotes when it
    reads as one, otherwise the string as written (``data.intent=booking``); ``null``, arrays
    and objects are refused, as are field names outside ``DATA_FIELD``, a field given twice and
    more than ``MAX_DATA_FILTERS`` fields."""
    found: dict[str, str] = {}
    for name, raw in query:
        if not name.startswith(DATA_PREFIX):
            continue
        loc = ("query", name)
        key = name.removeprefix(DATA_PREFIX)
        if not DATA_FIELD.fullmatch(key):
            raise invalid(loc, "a data field is a letter or _, then up to 63 letters, digits or _")
        if key in found:
            raise invalid(loc, "give a data field once")
        if len(raw) > MAX_DATA_VALUE:
            raise invalid(loc, f"a data value has at most {MAX_DATA_VALUE} characters")
        if NUL in raw:
            raise invalid(loc, NO_NUL)
        found[key] = _data_value(raw, loc)
        if len(found) > MAX_DATA_FILTERS:
            raise invalid(loc, f"at most {MAX_DATA_FILTERS} data filters")
    return found


def _data_value(raw: str, loc: tuple[str, str]) -> str:
    """The JSON text of one data filter's value (see ``data_filters``)."""
    try:
        value = json.loads(raw, parse_float=Decimal, parse_int=Decimal, parse_constant=_not_json)
    except ValueError:
        return json.dumps(raw)
    if value is None or isinstance(value, list | dict):
        raise invalid(loc, "a data value is a string, a number or a boolean")
    if isinstance(value, Decimal):
        if abs(value.adjusted()) > MAX_EXPONENT:
            raise invalid(loc, f"a data number is between 1e-{MAX_EXPONENT} and 1e{MAX_EXPONENT}")
        return raw.strip()
    return json.dumps(value)


def _not_json(constant: str) -> Any:
    raise ValueError(constant)  # NaN and Infinity: not JSON, so the text as written


def _day_start(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time.min, UTC)


def _day_after(day: date | None) -> datetime | None:
    if day is None or day == date.max:
        return None
    return datetime.combine(day + timedelta(days=1), time.min, UTC)


def _ms(seconds: Decimal | None, rounding: str) -> int | None:
    """Seconds as whole milliseconds, rounded towards the inside of the range (durations are
    exact to the millisecond, so the comparison is the same)."""
    if seconds is None:
        return None
    return int((seconds * 1000).to_integral_value(rounding=rounding))


async def page(
    *, services: Services, tenant_id: uuid.UUID, filters: Filters, page: int, limit: int
) -> ConversationPage:
    """One page of the tenant's conversations: newest first, or by relevance with ``q``."""
    if (
        filters.min_duration is not None
        and filters.max_duration is not None
        and filters.min_duration > filters.max_duration
    ):
        raise invalid(("query", "max_duration"), "max_duration is below min_duration")
    if filters.q is not None and NUL in filters.q:
        raise invalid(("query", "q"), NO_NUL)
    async with transaction(await services.db()) as conn:
        terms: list[str] = []
        if filters.q is not None or filters.data:
            words, data = await repository.search_terms(conn=conn, q=filters.q, data=filters.data)
            if filters.q is not None and not words:
                raise invalid(("query", "q"), "q has no words to look for")
            if len(words) > MAX_WORDS:
                raise invalid(("query", "q"), f"q has more than {MAX_WORDS} words")
            terms = words + data
        found = await repository.list_conversations(
            conn=conn,
            listing=repository.listing(
                tenant_id=tenant_id,
                agent_id=filters.agent_id,
                status=filters.status,
                profile_type=filters.profile_type,
                start=_day_start(filters.start),
                end_before=_day_after(filters.end),
                success=filters.success,
                ended_reason=filters.ended_reason,
                sentiment=filters.sentiment,
                min_ms=_ms(filters.min_duration, ROUND_CEILING),
                max_ms=_ms(filters.max_duration, ROUND_FLOOR),
                terms=terms,
            ),
            limit=limit,
            offset=(page - 1) * limit,
        )
    return ConversationPage(
        items=[ConversationRead.model_validate(r) for r in found.rows],
        total=found.total,
        page=page,
        limit=limit,
    )


async def detail(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    agent_id: uuid.UUID | None = None,
) -> ConversationDetail:
    """The conversation with its turns from the history table, each with a signed URL."""
    async with transaction(await services.db()) as conn:
        row = await repository.get_conversation(
            conn=conn, tenant_id=tenant_id, conversation_id=conversation_id
        )
    if row is None or (agent_id is not None and row["agent_id"] != agent_id):
        raise conversation_not_found()
    with storage_unavailable():
        turns = await _turns(services, tenant_id, row["id"])
    return ConversationDetail(**ConversationRead.model_validate(row).model_dump(), turns=turns)


async def _turns(
    services: Services, tenant_id: uuid.UUID, conversation_id: uuid.UUID
) -> list[Turn]:
    entities = await history.entities(
        services=services, tenant_id=tenant_id, conversation_id=conversation_id
    )
    signer = await Signer.for_services(services)
    return [
        Turn(
            seq=int(e["Seq"]),
            direction=e["Direction"],
            recorded_at=e["RecordedAt"],
            duration=float(e["Duration"]),
            transcript=e.get("Transcript"),
            latency_ms=e.get("LatencyMs"),
            audio_url=signer.url(e["BlobName"]),
        )
        for e in entities
    ]


async def receive_upload(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    form: Form,
    store: bool,
) -> upload.Received:
    """Store the multipart upload's recording (with ``store=False``, only read what it asks
    for: an idempotent retry's check). The agent is the caller's to check first."""
    with storage_unavailable():
        return await upload.receive(
            services=services, form=form, tenant_id=tenant_id, agent_id=agent_id, store=store
        )


async def issue_upload_url(
    *, services: Services, tenant_id: uuid.UUID, agent_id: uuid.UUID, body: UploadUrlRequest
) -> VoiceUploadUrl:
    """A create-only SAS URL for the recording ``body`` names, and the headers to PUT it with.
    The metadata rules and the blob name are the multipart upload's (``recording``, ``seqs``);
    a long transcript is written to the sidecar now. The agent is the caller's to check first.
    """
    with storage_unavailable():
        return await _upload_url(services, tenant_id, agent_id, body)


async def _upload_url(
    services: Services, tenant_id: uuid.UUID, agent_id: uuid.UUID, body: UploadUrlRequest
) -> VoiceUploadUrl:
    body.check_direction()
    container = services.recordings
    path, allocated = await seqs.resolve_path(
        services=services, tenant_id=tenant_id, agent_id=agent_id, fields=body, ext=body.ext
    )
    if not allocated and await container.get_blob_client(path.blob_name).exists():
        raise Conflict(
            f"A recording is stored at {path.blob_name} already; an upload URL only creates "
            "new recordings (replace one with the multipart upload)"
        )
    metadata, long_transcript = body.metadata()
    await recording.write_sidecar(container, path, long_transcript)
    signer = await Signer.for_services(services)
    url, expires_at = signer.create_url(path.blob_name)
    headers = {
        "x-ms-blob-type": "BlockBlob",
        "Content-Type": recording.CONTENT_TYPES[path.ext],
        **{f"x-ms-meta-{name}": value for name, value in metadata.items()},
    }
    return VoiceUploadUrl(
        url=url,
        blob=path.blob_name,
        conversation_id=path.conversation_id,
        headers=headers,
        expires_at=expires_at,
    )
