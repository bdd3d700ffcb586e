"""Agents fixtures: bodies with planted secrets, agents made through the API, raw Redis."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
import redis

from kalimera.agents.sections import KEYS
from kalimera.settings import Settings
from tests.conftest import PLANTED, Tenant

SECTION_KEYS = KEYS

# The seed's bodies, as written in the design document.
SEED_CREATE = (
    '{ "name": "AI Assistant", "description": "Virtual AI Agent", "ai_hub": {}, '
    '"audio_server": {}, "azure": {}, "eleven_labs_tts": {}, "call_processing": {}, '
    '"redis": {}, "knowledge_base": {}, "background_audio": {}, "web_talk": {}, '
    '"experimental_features": {}, "serilog": {}, "logging": {}, "allowed_hosts": {}}'
)
SEED_UPDATE = (
    '{ "name": "Updated AI Assistant", "description": "Updated Virtual AI Agent", '
    '"ai_hub": {}, "audio_server": {}, "azure": {}, "eleven_labs_tts": {}, '
    '"call_processing": {}, "redis": {}, "knowledge_base": {}, "background_audio": {}, '
    '"web_talk": {}, "experimental_features": {}, "serilog": {}, "logging": {}, '
    '"allowed_hosts": {}}'
)


def planted() -> str:
    """A secret value unlikely to occur anywhere by chance, checked after the whole suite too."""
    value = f"PLANTED-{secrets.token_hex(12)}"
    PLANTED.add(value)
    return value


def secret_body(value: str) -> dict[str, Any]:
    """A create body with ``value`` in every kind of secret place."""
    return {
        "name": "Secretive",
        "type": "outbound",
        "description": "has secrets",
        "avatar": "https://cdn.example.com/avatars/a.png",
        "ElevenLabsTTS": {"ApiKey": value, "VoiceId": "Rachel", "Stability": 0.4},
        "azure": {"speech_key": value, "Region": "westeurope", "RecognitionLanguage": "el-GR"},
        "Redis": {"ConnectionString": f"host:6380,password={value}"},
        "ai_hub": {"Endpoint": "https://hub.example.com/", "Auth": {"client_secret": value}},
        "knowledge_base": {"SasUrl": f"https://kb.blob.core.windows.net/x?sig={value}"},
        "serilog": {
            "MinimumLevel": "Information",
            "WriteTo": [{"Name": "AppInsights", "Args": {"InstrumentationKey": value}}],
        },
        "web_talk": {"Providers": [{"Name": "p", "Token": value}], "MaxTokens": 4000},
    }


def create(client: httpx.Client, body: dict[str, Any] | None = None) -> str:
    response = client.post("/kalimera/ai-agent", json=body or {"name": "Agent", "type": "inbound"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def agent(tenant: Tenant) -> str:
    return create(tenant.client, {"name": "Agent", "type": "inbound", "azure": {"Region": "x"}})


@pytest.fixture
def raw_redis(settings: Settings) -> Iterator[redis.Redis]:
    assert settings.redis_url is not None
    client = redis.Redis.from_url(settings.redis_url.get_secret_value())
    yield client
    client.close()


def redis_dump(client: redis.Redis) -> bytes:
    """Every key and string value in the test's Redis database."""
    parts = []
    for key in client.scan_iter(count=1000):
        parts.append(key)
        if client.type(key) == b"string":
            parts.append(client.get(key) or b"")
    return b"\n".join(parts)


@pytest.fixture
def other_tenant(new_tenant: Callable[..., Tenant]) -> Tenant:
    return new_tenant()


def random_id() -> str:
    return str(uuid.uuid4())


def stored_configuration(settings: Settings, agent_id: str) -> str:
    """The configuration column as Postgres holds it (to check what is at rest)."""
    assert settings.database_url is not None
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        row = conn.execute(
            "SELECT configuration::text FROM kalimera_ai_agents WHERE id = %s", (agent_id,)
        ).fetchone()
    assert row is not None
    return str(row[0])
