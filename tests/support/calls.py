"""Helpers for the tests that ingest recordings: agents made with SQL (the agents API is another
domain's), blobs put straight into Azurite, and the ingestion called as the trigger calls it.

A plugin (``pytest_plugins`` in tests/conftest.py): its ``call`` fixture serves every folder."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from kalimera.conversations.ingest import IngestResult, ingest_blob
from kalimera.db import transaction
from kalimera.services import Services
from kalimera.settings import Settings
from tests.conftest import Tenant, run_async

T = TypeVar("T")


def with_services(settings: Settings, work: Callable[[Services], Awaitable[T]]) -> T:
    async def main() -> T:
        services = Services(settings)
        try:
            return await work(services)
        finally:
            await services.aclose()

    return run_async(main())  # type: ignore[no-any-return]


def make_agent(
    settings: Settings, tenant_id: uuid.UUID, profile_type: str = "inbound"
) -> uuid.UUID:
    agent_id = uuid.uuid4()

    async def work(services: Services) -> None:
        async with transaction(await services.db(), tenant_id=tenant_id) as conn:
            await conn.execute(
                "INSERT INTO kalimera_ai_agents (tenant_id, id, name, profile_type)"
                " VALUES (%(t)s, %(a)s, 'Test agent', %(p)s)",
                {"t": tenant_id, "a": agent_id, "p": profile_type},
            )

    with_services(settings, work)
    return agent_id


def put_blob(
    settings: Settings, name: str, data: bytes, metadata: dict[str, str] | None = None
) -> str:
    """Upload (or overwrite) a blob as telephony would; returns its ETag."""

    async def work(services: Services) -> str:
        client = services.blobs.get_blob_client(settings.voice_container, name)
        result = await client.upload_blob(data, overwrite=True, metadata=metadata or {})
        return str(result["etag"]).strip('"')

    return with_services(settings, work)


def ingest(settings: Settings, name: str) -> IngestResult:
    return with_services(settings, lambda services: ingest_blob(services=services, blob_name=name))


def query(settings: Settings, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    async def work(services: Services) -> list[dict[str, Any]]:
        async with transaction(await services.db(), system=True) as conn:
            cur = await conn.execute(sql, params)
            return list(await cur.fetchall())

    return with_services(settings, work)


def record_texts(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[str]:
    """Every text passed to ``owner.name`` from now on, in order (the real one still runs): how
    the tests count the work a turn's ingestion does."""
    texts: list[str] = []
    real = getattr(owner, name)

    def recording(text: str) -> Any:
        texts.append(text)
        return real(text)

    monkeypatch.setattr(owner, name, recording)
    return texts


class Call:
    """One tenant's agent and a conversation id, with the blob names of its turns."""

    def __init__(self, settings: Settings, tenant: Tenant) -> None:
        self.settings = settings
        self.tenant = tenant
        self.agent_id = make_agent(settings, tenant.id)
        self.conversation_id = uuid.uuid4()

    def name(self, seq: int, direction: str, ext: str) -> str:
        return (
            f"{self.tenant.id}/{self.agent_id}/{self.conversation_id}/{seq:06d}-{direction}.{ext}"
        )

    def conversation(self) -> dict[str, Any] | None:
        rows = query(
            self.settings,
            "SELECT * FROM kalimera_conversations WHERE tenant_id = %(t)s AND id = %(c)s",
            {"t": self.tenant.id, "c": self.conversation_id},
        )
        return rows[0] if rows else None


@pytest.fixture
def call(settings: Settings, tenant: Tenant) -> Call:
    return Call(settings, tenant)
