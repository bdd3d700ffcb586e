"""Secrets are write-only: masked in every answer, encrypted at rest, never in Redis or logs."""

import logging

import httpx
import pytest
import redis

from kalimera.agents.secrets import MASK
from kalimera.auth import DEFAULT_SCOPES
from kalimera.settings import Settings
from tests.agents.conftest import (
    create,
    planted,
    redis_dump,
    secret_body,
    stored_configuration,
)
from tests.conftest import Tenant, make_token


def test_a_planted_secret_appears_only_in_the_runtime_export(
    tenant: Tenant,
    settings: Settings,
    raw_redis: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = planted()
    agent_id = create(tenant.client, secret_body(secret))
    path = f"/kalimera/ai-agent/{agent_id}"

    responses = [
        tenant.client.get(path),
        tenant.client.get(path),  # the cache hit
        tenant.client.get("/kalimera/ai-agent", params={"search": "secretive"}),
        tenant.client.put(f"{path}/azure", json={"SpeechKey": MASK, "Region": "northeurope"}),
        tenant.client.put(path, json={"redis": {"ConnectionString": MASK}}),
        tenant.client.put(f"{path}/web_talk", json={"Token": secret, "Nested": [{"key": secret}]}),
        tenant.client.get(path),
        tenant.client.post(
            "/kalimera/ai-agent", json={"name": "x", "azure": {"SpeechKey": 5}, "bad": secret}
        ),
        tenant.client.put(f"{path}/Logging", json={"LogLevel": {"Default": secret}}),
    ]
    for response in responses:
        assert secret not in response.text, response.request.url
    agent = responses[0].json()
    assert agent["eleven_labs_tts"] == {"ApiKey": MASK, "VoiceId": "Rachel", "Stability": 0.4}
    assert agent["redis"] == {"ConnectionString": MASK}
    assert agent["ai_hub"]["Auth"] == {"client_secret": MASK}
    assert agent["knowledge_base"] == {"SasUrl": MASK}
    assert agent["serilog"]["WriteTo"][0]["Args"] == {"InstrumentationKey": MASK}
    assert agent["web_talk"] == {"Providers": [{"Name": "p", "Token": MASK}], "MaxTokens": MASK}

    exported = tenant.client.get(f"{path}/runtime-config")
    assert exported.status_code == 200
    runtime = exported.json()
    # The mask round trip kept the stored values; the other fields changed.
    assert runtime["Azure"] == {"SpeechKey": secret, "Region": "northeurope"}
    assert runtime["Redis"] == {"ConnectionString": f"host:6380,password={secret}"}
    assert runtime["ElevenLabsTTS"]["ApiKey"] == secret
    assert runtime["WebTalk"] == {"Token": secret, "Nested": [{"key": secret}]}
    assert runtime["Serilog"]["WriteTo"][0]["Args"]["InstrumentationKey"] == secret

    assert secret.encode() not in redis_dump(raw_redis)
    assert raw_redis.exists(f"kalimera:agent:{tenant.id}:{agent_id}")
    assert secret not in caplog.text

    assert secret not in stored_configuration(settings, agent_id)


def test_a_mask_with_nothing_stored_sets_nothing(tenant: Tenant) -> None:
    agent_id = create(tenant.client, {"name": "m", "Redis": {"ConnectionString": MASK}})
    runtime = tenant.client.get(f"/kalimera/ai-agent/{agent_id}/runtime-config")
    assert runtime.status_code == 200
    assert runtime.json() == {"Redis": {}}
    response = tenant.client.put(
        f"/kalimera/ai-agent/{agent_id}/ElevenLabsTTS", json={"ApiKey": MASK, "VoiceId": "v"}
    )
    assert response.status_code == 200
    assert response.json()["configuration"]["eleven_labs_tts"] == {"VoiceId": "v"}


def test_the_runtime_export_needs_the_runtime_scope(tenant: Tenant, settings: Settings) -> None:
    agent_id = create(tenant.client)
    console_token = make_token(settings, tenant.id, DEFAULT_SCOPES)
    response = httpx.get(
        f"{tenant.client.base_url}/kalimera/ai-agent/{agent_id}/runtime-config",
        headers={"Authorization": f"Bearer {console_token}"},
    )
    assert response.status_code == 403
