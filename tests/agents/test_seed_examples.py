"""The seed design document's request bodies and curl examples work as written (with a token)."""

import httpx

from kalimera.auth import Scope
from kalimera.settings import Settings
from tests.agents.conftest import SECTION_KEYS, SEED_CREATE, SEED_UPDATE
from tests.conftest import Server, Tenant, make_token


def seed_client(server: Server, tenant: Tenant) -> httpx.Client:
    # The seed's header: `Authorization: api-token-generated` (the bare token).
    return httpx.Client(
        base_url=server.url,
        headers={"Authorization": tenant.token, "Content-Type": "application/json"},
        timeout=30,
    )


def test_seed_create_get_update_delete_work_as_written(server: Server, tenant: Tenant) -> None:
    with seed_client(server, tenant) as client:
        created = client.post("/kalimera/ai-agent", content=SEED_CREATE)
        assert created.status_code == 201, created.text
        assert created.json()["message"] == "AI Agent created successfully"
        agent_id = created.json()["id"]

        got = client.get(f"/kalimera/ai-agent/{agent_id}")
        assert got.status_code == 200
        agent = got.json()
        assert agent["id"] == agent_id
        assert agent["name"] == "AI Assistant"
        assert agent["description"] == "Virtual AI Agent"
        assert agent["profile_type"] == "inbound"
        assert {key: agent[key] for key in SECTION_KEYS} == {key: {} for key in SECTION_KEYS}
        assert got.headers["etag"]

        updated = client.put(f"/kalimera/ai-agent/{agent_id}", content=SEED_UPDATE)
        assert updated.status_code == 200, updated.text
        assert updated.json() == {"id": agent_id, "message": "AI Agent updated successfully"}
        again = client.get(f"/kalimera/ai-agent/{agent_id}").json()
        assert again["name"] == "Updated AI Assistant"
        assert again["description"] == "Updated Virtual AI Agent"

        deleted = client.delete(f"/kalimera/ai-agent/{agent_id}")
        assert deleted.status_code == 200
        assert deleted.json() == {"message": "AI Agent deleted successfully"}


def test_sections_are_accepted_by_name_and_by_key(tenant: Tenant) -> None:
    body = {"name": "Both", "type": "outbound", "ElevenLabsTTS": {"VoiceId": "v1"}}
    agent_id = tenant.client.post("/kalimera/ai-agent", json=body).json()["id"]
    writes = (("AudioServer", {"Port": 8080}), ("call_processing", {"RecordCalls": True}))
    for path, value in writes:
        response = tenant.client.put(f"/kalimera/ai-agent/{agent_id}/{path}", json=value)
        assert response.status_code == 200, response.text
        assert response.json()["message"] == "Configuration updated successfully"
    agent = tenant.client.get(f"/kalimera/ai-agent/{agent_id}").json()
    assert agent["eleven_labs_tts"] == {"VoiceId": "v1"}
    assert agent["audio_server"] == {"Port": 8080}
    assert agent["call_processing"] == {"RecordCalls": True}
    assert agent["profile_type"] == "outbound"


def test_runtime_export_uses_section_names(tenant: Tenant) -> None:
    body = {
        "name": "Runtime",
        "profile_type": "inbound",
        "logging": {"LogLevel": {"Default": "Information"}},
        "allowed_hosts": "*",
        "experimental_features": {"BargeIn": True},
    }
    agent_id = tenant.client.post("/kalimera/ai-agent", json=body).json()["id"]
    exported = tenant.client.get(f"/kalimera/ai-agent/{agent_id}/runtime-config")
    assert exported.status_code == 200
    assert exported.json() == {
        "Logging": {"LogLevel": {"Default": "Information"}},
        "AllowedHosts": "*",
        "ExperimentalFeatures": {"BargeIn": True},
    }


def test_the_fast_read_path_keeps_the_contract(
    anon: httpx.Client, tenant: Tenant, settings: Settings
) -> None:
    agent_id = tenant.client.post("/kalimera/ai-agent", json={"name": "Fast"}).json()["id"]
    path = f"/kalimera/ai-agent/{agent_id}"
    assert anon.get(path).status_code == 401
    assert anon.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
    writer = make_token(settings, tenant.id, (Scope.AGENTS_WRITE,))
    assert anon.get(path, headers={"Authorization": writer}).status_code == 403
    bad = tenant.client.get("/kalimera/ai-agent/not-a-uuid")
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["path", "agent_id"]
    doc = anon.get("/kalimera/openapi.json").json()
    read = doc["paths"]["/kalimera/ai-agent/{agent_id}"]["get"]
    assert read["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "AgentRead"
    )
    assert {"put", "delete"} <= doc["paths"]["/kalimera/ai-agent/{agent_id}"].keys()
    assert "put" in doc["paths"]["/kalimera/ai-agent/{agent_id}/{section}"]
    assert "get" in doc["paths"]["/kalimera/ai-agent/{agent_id}/runtime-config"]
