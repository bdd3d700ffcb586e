"""What the conversation API does: start, end, list and read conversations, sign recordings."""

from __future__ import annotations

import contextlib
import uuid
import weakref
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from kalimera import idempotency
from kalimera.conversations import recording, repository, upload
from kalimera.conversations.ingest import partition_key, storage_clients
from kalimera.conversations.models import (
    ConversationCreate,
    ConversationDetail,
    ConversationPage,
    ConversationRead,
    ConversationUpdate,
    Turn,
    VoiceStored,
    VoiceUploadUrl,
)
from kalimera.conversations.recording import UploadUrlRequest
from kalimera.db import transaction
from kalimera.problems import RETRY_AFTER_SECONDS, NotFound, Problem

if TYPE_CHECKING:
    from azure.storage.blob.aio import BlobServiceClient

    from kalimera.services import Services

SAS_LIFETIME = timedelta(minutes=15)
CLOCK_SKEW = timedelta(minutes=5)
DELEGATION_KEY_LIFETIME = timedelta(hours=2)


@contextlib.contextmanager
def storage_unavailable_is_503() -> Iterator[None]:
    """Blob or Table storage that does not answer is a 503 with Retry-After, like Postgres."""
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    try:
        yield
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise Problem(
            503,
            "Storage is unavailable; retry shortly",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        ) from exc


def conversation_not_found() -> NotFound:
    return NotFound("Conversation not found")


def agent_not_found() -> NotFound:
    return NotFound("AI agent not found")


async def require_agent(services: Services, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> str:
    """The agent's profile type; 404 when the tenant has no such agent."""
    async with transaction(await services.db()) as conn:
        profile = await repository.agent_profile_type(
            conn=conn, tenant_id=tenant_id, agent_id=agent_id
        )
    if profile is None:
        raise agent_not_found()
    return profile


async def start(
    services: Services, *, tenant_id: uuid.UUID, body: ConversationCreate
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
    return ConversationRead.model_validate(row), created


async def update(
    services: Services,
    *,
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
            raise Problem(
                422,
                "The request is not valid",
                errors=[{"loc": ["body", "ended_at"], "msg": "ended_at is before started_at"}],
            )
        row = await repository.update_conversation(
            conn=conn,
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            status=body.status.value if body.status else None,
            ended_at=body.ended_at,
            title=body.title,
            language=body.language,
        )
    assert row is not None
    return ConversationRead.model_validate(row)


@dataclass(frozen=True, slots=True)
class Filters:
    agent_id: uuid.UUID | None = None
    status: str | None = None
    profile_type: str | None = None
    start: date | None = None  # started on or after this day (UTC)
    end: date | None = None  # started on or before this day (UTC), inclusive


def _day_start(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time.min, UTC)


def _day_after(day: date | None) -> datetime | None:
    if day is None or day == date.max:
        return None
    return datetime.combine(day + timedelta(days=1), time.min, UTC)


async def page(
    services: Services, *, tenant_id: uuid.UUID, filters: Filters, page: int, limit: int
) -> ConversationPage:
    async with transaction(await services.db()) as conn:
        found = await repository.list_conversations(
            conn=conn,
            tenant_id=tenant_id,
            agent_id=filters.agent_id,
            status=filters.status,
            profile_type=filters.profile_type,
            start=_day_start(filters.start),
            end_before=_day_after(filters.end),
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
    services: Services,
    *,
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
    with storage_unavailable_is_503():
        turns = await _turns(services, tenant_id, row["id"])
    return ConversationDetail(**ConversationRead.model_validate(row).model_dump(), turns=turns)


async def _turns(
    services: Services, tenant_id: uuid.UUID, conversation_id: uuid.UUID
) -> list[Turn]:
    _, table = storage_clients(services)
    pk = partition_key(tenant_id, conversation_id)
    entities = [
        e
        async for e in table.query_entities(
            "PartitionKey eq @pk",
            parameters={"pk": pk},
            select=[
                "RowKey",
                "Seq",
                "Direction",
                "RecordedAt",
                "Duration",
                "Transcript",
                "BlobName",
            ],
        )
    ]
    entities.sort(key=lambda e: (int(e["Seq"]), e["Direction"] != "input"))
    signer = await Signer.for_services(services)
    return [
        Turn(
            seq=int(e["Seq"]),
            direction=e["Direction"],
            recorded_at=e["RecordedAt"],
            duration=float(e["Duration"]),
            transcript=e.get("Transcript"),
            audio_url=signer.url(e["BlobName"]),
        )
        for e in entities
    ]


async def store_upload(
    services: Services,
    *,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    stream: AsyncIterator[bytes],
    content_type: str | None,
    idempotency_key: str | None,
) -> VoiceStored | idempotency.Replay:
    """Store the multipart upload's recording (once per ``Idempotency-Key``)."""
    await require_agent(services, tenant_id, agent_id)

    async def receive(*, store: bool) -> upload.Received:
        with storage_unavailable_is_503():
            return await upload.receive(
                services=services,
                stream=stream,
                content_type=content_type,
                tenant_id=tenant_id,
                agent_id=agent_id,
                store=store,
            )

    async def run() -> tuple[VoiceStored, str]:
        received = await receive(store=True)
        assert received.stored is not None
        return received.stored, received.fingerprint

    async def fingerprint() -> str:
        return (await receive(store=False)).fingerprint

    return await idempotency.once(
        services=services,
        tenant_id=tenant_id,
        key=idempotency_key,
        operation=f"POST /kalimera/ai-agent/{agent_id}/voice",
        status=202,
        run=run,
        fingerprint=fingerprint,
    )


async def issue_upload_url(
    services: Services,
    *,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    body: UploadUrlRequest,
    idempotency_key: str | None,
) -> VoiceUploadUrl | idempotency.Replay:
    """A create-only SAS URL for the recording ``body`` names, and the headers to PUT it with
    (once per ``Idempotency-Key``). The metadata rules and the blob name are the multipart
    upload's (``recording``); a long transcript is written to the sidecar now."""
    await require_agent(services, tenant_id, agent_id)
    fingerprint = idempotency.fingerprint(body.model_dump(mode="json"))

    async def run() -> tuple[VoiceUploadUrl, str]:
        with storage_unavailable_is_503():
            return await _upload_url(services, tenant_id, agent_id, body), fingerprint

    async def same() -> str:
        return fingerprint

    return await idempotency.once(
        services=services,
        tenant_id=tenant_id,
        key=idempotency_key,
        operation=f"POST /kalimera/ai-agent/{agent_id}/voice/upload-url",
        status=201,
        run=run,
        fingerprint=same,
    )


async def _upload_url(
    services: Services, tenant_id: uuid.UUID, agent_id: uuid.UUID, body: UploadUrlRequest
) -> VoiceUploadUrl:
    container, _ = storage_clients(services)
    path, allocated = await recording.resolve_path(
        services, container, tenant_id=tenant_id, agent_id=agent_id, fields=body, ext=body.ext
    )
    if not allocated and await container.get_blob_client(path.blob_name).exists():
        raise Problem(
            409,
            f"A recording is stored at {path.blob_name} already; an upload URL only creates "
            "new recordings (replace one with the multipart upload)",
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


class Signer:
    """Signed URLs for recordings, valid ``SAS_LIFETIME``: with the account key where
    the connection string has one (Azurite, key-based accounts), else with a user delegation key
    (identity-based connections on Azure), which is fetched once and reused while it is valid."""

    # One user delegation key per blob client (i.e. per process), reused while it is valid.
    _delegation: ClassVar[weakref.WeakKeyDictionary[Any, tuple[Any, datetime]]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(
        self,
        blobs: BlobServiceClient,
        container: str,
        *,
        account_key: str | None,
        delegation_key: Any = None,
    ) -> None:
        self.blobs = blobs
        self.container = container
        self.account_key = account_key
        self.delegation_key = delegation_key

    @classmethod
    async def for_services(cls, services: Services) -> Signer:
        blobs = services.blobs
        container = services.settings.voice_container
        account_key = getattr(blobs.credential, "account_key", None)
        if account_key:
            return cls(blobs, container, account_key=account_key)
        now = datetime.now(UTC)
        cached = cls._delegation.get(blobs)
        if cached is None or cached[1] - now < SAS_LIFETIME + CLOCK_SKEW:
            expiry = now + DELEGATION_KEY_LIFETIME
            key = await blobs.get_user_delegation_key(now - CLOCK_SKEW, expiry)
            cached = (key, expiry)
            cls._delegation[blobs] = cached
        return cls(blobs, container, account_key=None, delegation_key=cached[0])

    def url(self, blob_name: str) -> str:
        """A read-only download URL."""
        from azure.storage.blob import BlobSasPermissions

        return self._signed(blob_name, BlobSasPermissions(read=True))[0]

    def create_url(self, blob_name: str) -> tuple[str, datetime]:
        """A URL that can create this blob and do nothing else (no overwrite, read, list or
        delete), and when it expires."""
        from azure.storage.blob import BlobSasPermissions

        return self._signed(blob_name, BlobSasPermissions(create=True))

    def _signed(self, blob_name: str, permission: Any) -> tuple[str, datetime]:
        from azure.storage.blob import generate_blob_sas

        now = datetime.now(UTC)
        expiry = now + SAS_LIFETIME
        token = generate_blob_sas(
            account_name=str(self.blobs.account_name),
            container_name=self.container,
            blob_name=blob_name,
            account_key=self.account_key,
            user_delegation_key=self.delegation_key,
            permission=permission,
            start=now - CLOCK_SKEW,
            expiry=expiry,
        )
        base = self.blobs.url.rstrip("/")
        return f"{base}/{self.container}/{quote(blob_name)}?{token}", expiry
