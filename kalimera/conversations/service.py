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
from datetime import UTC, date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from kalimera import days, events, outbox
from kalimera.conversations import history, recording, repository, seqs, upload
from kalimera.conversations.models import (
    ConversationCreate,
    ConversationDetail,
    ConversationPage,
    ConversationRead,
    ConversationUpdate,
    Turn,
    VoiceUploadUrl,
)
from kalimera.conversations.multipart import Form
from kalimera.conversations.recording import UploadUrlRequest
from kalimera.conversations.signing import Signer
from kalimera.db import transaction
from kalimera.errors import Conflict, NotFound, Stale, Unavailable, invalid
from kalimera.etags import etag, parse_if_match
from kalimera.phones import e164_or_none

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


STALE = "The conversation changed since it was read (If-Match is stale)"
T = TypeVar("T", ConversationRead, ConversationDetail)


@dataclass(frozen=True, slots=True)
class Tagged(Generic[T]):
    """A conversation as read, and its ETag (None while its turns are still being written)."""

    conversation: T
    etag: str | None


def _read(row: Any, signer: Signer) -> ConversationRead:
    """The row as the API answers it: its recordings as signed URLs (the row holds container
    URLs, which no browser can fetch); ``conversation_url`` is never written."""
    read = ConversationRead.model_validate(row)
    return read.model_copy(
        update={
            "input_file_url": signer.stored_url(read.input_file_url),
            "output_file_url": signer.stored_url(read.output_file_url),
            "conversation_url": None,
        }
    )


def _tag(row: Any, signer: Signer) -> str:
    """The version (the row's ``xmin``: any write to the row moves it, ingestion and analysis
    included) and the window its URLs were signed in (``kalimera.etags``)."""
    return etag(int(row["row_version"]), signer.window)


async def _tagged(services: Services, row: Any) -> Tagged[ConversationRead]:
    signer = await Signer.for_services(services)
    return Tagged(_read(row, signer), _tag(row, signer))


async def start(
    *, services: Services, tenant_id: uuid.UUID, body: ConversationCreate
) -> tuple[Tagged[ConversationRead], bool]:
    """Create the conversation (True), or return the one with that id unchanged (False)."""
    started_at = body.started_at or datetime.now(UTC)
    conversation_id = body.id or uuid.uuid4()
    counterpart = body.from_number if body.profile_type == "inbound" else body.to_number
    contact_number = e164_or_none(counterpart, services.settings.default_phone_region)
    async with transaction(await services.db()) as conn:
        agent = await repository.agent_profile_type(
            conn=conn, tenant_id=tenant_id, agent_id=body.agent_id
        )
        if agent is None:
            raise agent_not_found()
        if contact_number is not None:
            await repository.share_contact_numbers(conn=conn, tenant_id=tenant_id)
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
            contact_number=contact_number,
        )
        created = row is not None
        if row is None:
            row = await repository.get_conversation(
                conn=conn, tenant_id=tenant_id, conversation_id=conversation_id
            )
        written = await outbox.queued(conn)
    assert row is not None
    if written.webhooks:  # conversation.started, written by 0023's trigger for a tenant's endpoints
        await events.relay_after_commit(services=services, tenant_id=tenant_id)
    return await _tagged(services, row), created


async def update(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    body: ConversationUpdate,
    if_match: str | None = None,
) -> Tagged[ConversationRead]:
    """Apply a PATCH; with ``If-Match``, only to the version it names (else ``Stale``)."""
    version = parse_if_match(if_match)
    async with transaction(await services.db()) as conn:
        current = await repository.get_conversation(
            conn=conn, tenant_id=tenant_id, conversation_id=conversation_id, lock=True
        )
        if current is None:
            raise conversation_not_found()
        if version is not None and version != current["row_version"]:
            raise Stale(STALE)
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
        written = await outbox.queued(conn)
    assert row is not None
    # Only the outboxes this PATCH wrote to (migration 0027's flags): an end asks for the
    # analysis (0017) and is an event for the tenant's endpoints (0023); a new title is neither.
    if written.analysis:
        await outbox.relay_after_commit(
            services=services, tenant_id=tenant_id, conversation_id=conversation_id
        )
    if written.webhooks:
        await events.relay_after_commit(services=services, tenant_id=tenant_id)
    return await _tagged(services, row)


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
    start: date | None = None  # started on or after this local day
    end: date | None = None  # started on or before this local day, inclusive
    success: str | None = None  # pass or fail
    ended_reason: str | None = None
    sentiment: str | None = None
    min_duration: Decimal | None = None  # seconds, inclusive
    max_duration: Decimal | None = None  # seconds, inclusive
    q: str | None = None  # words, all of them in the transcripts or the summary
    data: dict[str, str] = field(default_factory=dict)  # field -> the value as JSON text
    contact_id: int | None = None
    tz: str = "UTC"  # the zone of start and end's days (kalimera.days)


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


def _bounds(filters: Filters) -> tuple[datetime | None, datetime | None]:
    """Where ``start``'s local day begins and ``end``'s ends, in UTC, as the statistics count
    days in ``tz``; a bound beyond the calendar's ends bounds nothing."""
    zone = days.zone(filters.tz)
    try:
        lo = None if filters.start is None else days.local_midnight(filters.start, zone)
    except OverflowError:
        lo = None
    try:
        hi = None if filters.end is None else days.day_after(filters.end, zone)
    except OverflowError:
        hi = None
    return lo, hi


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
    start, end_before = _bounds(filters)
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
                start=start,
                end_before=end_before,
                success=filters.success,
                ended_reason=filters.ended_reason,
                sentiment=filters.sentiment,
                min_ms=_ms(filters.min_duration, ROUND_CEILING),
                max_ms=_ms(filters.max_duration, ROUND_FLOOR),
                contact_id=filters.contact_id,
                terms=terms,
            ),
            limit=limit,
            offset=(page - 1) * limit,
        )
    signer = await Signer.for_services(services)
    return ConversationPage(
        items=[_read(r, signer) for r in found.rows],
        total=found.total,
        page=page,
        limit=limit,
    )


async def contact_page(
    *, services: Services, tenant_id: uuid.UUID, contact_id: int, number: int, limit: int
) -> ConversationPage:
    """One page of the calls with one of the tenant's contacts, newest first; 404 when the
    tenant has no such contact."""
    async with transaction(await services.db()) as conn:
        found = await repository.contact_exists(
            conn=conn, tenant_id=tenant_id, contact_id=contact_id
        )
    if not found:
        raise NotFound("Contact not found")
    return await page(
        services=services,
        tenant_id=tenant_id,
        filters=Filters(contact_id=contact_id),
        page=number,
        limit=limit,
    )


async def detail(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    agent_id: uuid.UUID | None = None,
) -> Tagged[ConversationDetail]:
    """The conversation with its turns from the history table, each with a signed URL. Its
    ETag is the row's; none while the history lags the row (a turn committed, its entity not
    yet written): a 304 must not hide a turn."""
    async with transaction(await services.db()) as conn:
        row = await repository.get_conversation(
            conn=conn, tenant_id=tenant_id, conversation_id=conversation_id
        )
    if row is None or (agent_id is not None and row["agent_id"] != agent_id):
        raise conversation_not_found()
    signer = await Signer.for_services(services)
    with storage_unavailable():
        turns = await _turns(services, tenant_id, row["id"], signer)
    conversation = ConversationDetail(**_read(row, signer).model_dump(), turns=turns)
    return Tagged(conversation, _tag(row, signer) if len(turns) == row["turn_count"] else None)


async def _turns(
    services: Services, tenant_id: uuid.UUID, conversation_id: uuid.UUID, signer: Signer
) -> list[Turn]:
    entities = await history.entities(
        services=services, tenant_id=tenant_id, conversation_id=conversation_id
    )
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
