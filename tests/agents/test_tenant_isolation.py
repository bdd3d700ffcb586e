"""Tenant B using tenant A's agent ids gets 404 everywhere and changes nothing."""

import httpx

from tests.agents.conftest import create, planted, secret_body
from tests.conftest import Tenant


def snapshot(client: httpx.Client, agent_id: str) -> tuple[int, object, object]:
    got = client.get(f"/kalimera/ai-agent/{agent_id}")
    runtime = client.get(f"/kalimera/ai-agent/{agent_id}/runtime-config")
    return got.status_code, got.json(), runtime.json()


def test_another_tenant_gets_404_and_changes_nothing(tenant: Tenant, other_tenant: Tenant) -> None:
    secret = planted()
    agent_id = create(tenant.client, secret_body(secret))
    before = snapshot(tenant.client, agent_id)
    path = f"/kalimera/ai-agent/{agent_id}"

    attempts = [
        other_tenant.client.get(path),
        other_tenant.client.get(f"{path}/runtime-config"),
        other_tenant.client.put(path, json={"name": "stolen", "azure": {"Region": "x"}}),
        other_tenant.client.put(path, json={"name": "stolen"}, headers={"If-Match": "*"}),
        other_tenant.client.put(f"{path}/Azure", json={"Region": "stolen"}),
        other_tenant.client.put(f"{path}/azure", json={"SpeechKey": "********"}),
        other_tenant.client.put(f"{path}/NoSuchSection", json={}),
        other_tenant.client.delete(path),
    ]
    for response in attempts:
        assert response.status_code == 404, (response.request.method, response.request.url)
        assert response.headers["content-type"] == "application/problem+json"
        assert secret not in response.text

    listing = other_tenant.client.get("/kalimera/ai-agent", params={"search": "Secretive"})
    assert agent_id not in listing.text
    assert snapshot(tenant.client, agent_id) == before
