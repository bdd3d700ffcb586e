"""Secrets stay where they were sent (quality-bars.md, "secret exfiltration"): changing a
section's endpoint, URL or host while sending its secret back masked is refused with 422 that
names the secret to re-enter; the stored secret is never paired with a new destination."""

from __future__ import annotations

from typing import Any

from kalimera.agents.secrets import MASK
from tests.agents.conftest import create, planted
from tests.conftest import Tenant
from tests.support.problems import assert_problem


def _runtime(tenant: Tenant, agent_id: str) -> dict[str, Any]:
    response = tenant.client.get(f"/kalimera/ai-agent/{agent_id}/runtime-config")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_masked_key_with_a_new_endpoint_is_422_and_the_key_stays_home(tenant: Tenant) -> None:
    key = planted()
    home = "https://hub.example.com/"
    agent_id = create(
        tenant.client,
        {"name": "a", "type": "inbound", "ai_hub": {"Endpoint": home, "ApiKey": key}},
    )
    path = f"/kalimera/ai-agent/{agent_id}"
    read = tenant.client.get(path).json()["ai_hub"]
    assert read["ApiKey"] == MASK

    evil = {**read, "Endpoint": "https://attacker.example.net/"}
    for response in (
        tenant.client.put(f"{path}/ai_hub", json=evil),
        tenant.client.put(f"{path}/AIHub", json={"endpoint": evil["Endpoint"], "api_key": MASK}),
        tenant.client.put(path, json={"ai_hub": evil}),
    ):
        problem = assert_problem(response, 422)
        assert "re-enter ApiKey: the endpoint changed" in str(problem["detail"])
        assert problem["errors"][0]["loc"][-1] == "ApiKey"  # type: ignore[index]
    # Dropping the endpoint (the runtime would fall back to a default) is a change too.
    assert_problem(tenant.client.put(f"{path}/ai_hub", json={"ApiKey": MASK}), 422)
    assert _runtime(tenant, agent_id)["AIHub"] == {"Endpoint": home, "ApiKey": key}

    # The same endpoint with the mask keeps the key; a new endpoint with the key entered works.
    same = tenant.client.put(f"{path}/ai_hub", json={**read, "DeploymentName": "gpt"})
    assert same.status_code == 200, same.text
    assert _runtime(tenant, agent_id)["AIHub"]["ApiKey"] == key
    new_key = planted()
    moved = tenant.client.put(
        f"{path}/ai_hub", json={"Endpoint": "https://hub2.example.com/", "ApiKey": new_key}
    )
    assert moved.status_code == 200, moved.text
    assert _runtime(tenant, agent_id)["AIHub"] == {
        "Endpoint": "https://hub2.example.com/",
        "ApiKey": new_key,
    }


def test_every_kind_of_destination_guards_its_secrets(tenant: Tenant) -> None:
    key = planted()
    agent_id = create(
        tenant.client,
        {
            "name": "a",
            "type": "inbound",
            "azure": {"SpeechEndpoint": "https://speech.example.com/", "SpeechKey": key},
            "audio_server": {"Host": "audio.internal", "Port": 9000, "Credentials": {"u": key}},
            "knowledge_base": {
                "Endpoint": "https://kb.example.com/",
                "SasUrl": f"https://s/?{key}",
            },
            "serilog": {
                "WriteTo": [
                    {"Name": "Seq", "Args": {"serverUrl": "https://seq.a/", "apiKey": key}},
                    {"Name": "Seq", "Args": {"serverUrl": "https://seq.b/", "apiKey": key}},
                ]
            },
        },
    )
    path = f"/kalimera/ai-agent/{agent_id}"
    masked = tenant.client.get(path).json()
    changes = {
        "azure": ({**masked["azure"], "SpeechEndpoint": "https://x.example/"}, "SpeechKey"),
        "audio_server": ({**masked["audio_server"], "Host": "evil.example"}, "Credentials"),
        "knowledge_base": ({**masked["knowledge_base"], "Endpoint": "https://x/"}, "SasUrl"),
        # Two sinks swapped: each masked key would follow its index to the other server.
        "serilog": (
            {"WriteTo": list(reversed(masked["serilog"]["WriteTo"]))},
            "WriteTo.0.Args.apiKey",
        ),
    }
    before = _runtime(tenant, agent_id)
    for section, (body, secret) in changes.items():
        problem = assert_problem(tenant.client.put(f"{path}/{section}", json=body), 422)
        assert f"re-enter {secret}: the endpoint changed" in str(problem["detail"]), problem
    assert _runtime(tenant, agent_id) == before
    # Unchanged destinations: the masked round trip still works for every section.
    for section in changes:
        response = tenant.client.put(f"{path}/{section}", json=masked[section])
        assert response.status_code == 200, response.text
    assert _runtime(tenant, agent_id) == before
