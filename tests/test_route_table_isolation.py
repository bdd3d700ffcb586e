"""Tenant isolation over the whole route table (quality-bars.md): for every documented operation
with an id in its path, tenant B using tenant A's ids gets 404 and changes nothing.

The operations come from the app's own OpenAPI document, so a new route with a path id fails
here until it is listed in ``PATH_IDS`` (and so until someone has thought about its tenancy).
"""

import json
from collections.abc import Callable
from typing import Any

from kalimera.auth import DEFAULT_SCOPES, Scope
from tests.conftest import Server, Tenant
from tests.support.audio_fixtures import wav_bytes

Resources = dict[str, str]

# Path template → the path parameters that name tenant A's resources.
PATH_IDS: dict[str, Callable[[Resources], dict[str, str]]] = {
    "/kalimera/ai-agent/{agent_id}": lambda r: {"agent_id": r["agent"]},
    "/kalimera/ai-agent/{agent_id}/{section}": lambda r: {
        "agent_id": r["agent"],
        "section": "AIHub",
    },
    "/kalimera/ai-agent/{agent_id}/runtime-config": lambda r: {"agent_id": r["agent"]},
    "/kalimera/ai-agent/{agent_id}/analysis-plan": lambda r: {"agent_id": r["agent"]},
    "/kalimera/ai-agent/{agent_id}/analysis-plan/versions": lambda r: {"agent_id": r["agent"]},
    "/kalimera/ai-agent/{agent_id}/voice": lambda r: {"agent_id": r["agent"]},
    "/kalimera/ai-agent/{agent_id}/voice/upload-url": lambda r: {"agent_id": r["agent"]},
    "/kalimera/contact/{contact_id}": lambda r: {"contact_id": r["contact"]},
    "/kalimera/contact/{contact_id}/conversations": lambda r: {"contact_id": r["contact"]},
    "/kalimera/conversations/{conversation_id}": lambda r: {"conversation_id": r["conversation"]},
    "/kalimera/conversations/{conversation_id}/analysis": lambda r: {
        "conversation_id": r["conversation"]
    },
    "/kalimera/ai-agent/{agent_id}/analysis-runs": lambda r: {"agent_id": r["agent"]},
    "/kalimera/analysis-runs/{run_id}": lambda r: {"run_id": r["run"]},
    "/kalimera/tokens/{token_id}": lambda r: {"token_id": r["token"]},
    "/kalimera/webhooks/{webhook_id}": lambda r: {"webhook_id": r["webhook"]},
    "/kalimera/webhooks/{webhook_id}/rotate-secret": lambda r: {"webhook_id": r["webhook"]},
    "/kalimera/webhooks/{webhook_id}/test": lambda r: {"webhook_id": r["webhook"]},
    "/kalimera/webhooks/{webhook_id}/deliveries": lambda r: {"webhook_id": r["webhook"]},
    "/kalimera/webhooks/{webhook_id}/deliveries/{delivery_id}/retry": lambda r: {
        "webhook_id": r["webhook"],
        "delivery_id": r["delivery"],
    },
    "/kalimera/webhooks/{webhook_id}/replay": lambda r: {"webhook_id": r["webhook"]},
}
# Both tenants may manage tokens and settings, so that only tenancy can refuse B (not a missing
# scope).
SCOPES = (*DEFAULT_SCOPES, Scope.AGENTS_RUNTIME, Scope.TOKENS_ADMIN, Scope.SETTINGS_ADMIN)

# Valid requests (so that only tenancy can refuse them), by method and path template.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("put", "/kalimera/ai-agent/{agent_id}"): {"json": {"name": "hijacked"}},
    ("put", "/kalimera/ai-agent/{agent_id}/{section}"): {"json": {"Endpoint": "https://evil"}},
    ("put", "/kalimera/ai-agent/{agent_id}/analysis-plan"): {
        "json": {"summary": {"enabled": False}}
    },
    ("put", "/kalimera/contact/{contact_id}"): {"json": {"first_name": "Hijacked"}},
    ("patch", "/kalimera/conversations/{conversation_id}"): {"json": {"status": "Failed"}},
    ("post", "/kalimera/ai-agent/{agent_id}/analysis-runs"): {
        "json": {"since": "2026-01-01", "until": "2026-12-31"}
    },
    ("post", "/kalimera/ai-agent/{agent_id}/voice"): {
        "data": {"direction": "input", "seq": "1"},
        "files": {"voice_file": ("turn.wav", wav_bytes(0.2), "audio/wav")},
    },
    ("post", "/kalimera/ai-agent/{agent_id}/voice/upload-url"): {
        "json": {"ext": "wav", "direction": "input", "seq": 1}
    },
    ("patch", "/kalimera/webhooks/{webhook_id}"): {"json": {"url": "https://192.0.32.10/b"}},
    ("post", "/kalimera/webhooks/{webhook_id}/replay"): {"json": {"since": "2026-01-01T00:00:00Z"}},
}


def documented_operations(server: Server) -> list[tuple[str, str]]:
    paths = server.app.openapi()["paths"]
    return [
        (method, path)
        for path, operations in paths.items()
        if "{" in path
        for method in operations
        if method in {"get", "put", "patch", "post", "delete"}
    ]


def make_resources(a: Tenant) -> Resources:
    agent = a.client.post("/kalimera/ai-agent", json={"name": "A's agent", "type": "inbound"})
    assert agent.status_code == 201, agent.text
    agent_id = agent.json()["id"]
    contact = a.client.post("/kalimera/contact", json={"first_name": "Ann", "last_name": "A"})
    assert contact.status_code == 201, contact.text
    conversation = a.client.post(
        "/kalimera/conversations", json={"agent_id": agent_id, "profile_type": "inbound"}
    )
    assert conversation.status_code == 201, conversation.text
    run = a.client.post(
        f"/kalimera/ai-agent/{agent_id}/analysis-runs",
        json={"since": "2026-01-01", "until": "2026-12-31"},
    )
    assert run.status_code == 202, run.text
    token = a.client.post("/kalimera/tokens", json={"name": "A's console"})
    assert token.status_code == 201, token.text
    # A literal public address: production mode checks it without a DNS lookup.
    webhook = a.client.post("/kalimera/webhooks", json={"url": "https://192.0.32.10/a"})
    assert webhook.status_code == 201, webhook.text
    webhook_id = webhook.json()["id"]
    assert a.client.post(f"/kalimera/webhooks/{webhook_id}/test").status_code == 202
    (delivery,) = a.client.get(f"/kalimera/webhooks/{webhook_id}/deliveries").json()["items"]
    return {
        "agent": agent_id,
        "contact": str(contact.json()["id"]),
        "conversation": conversation.json()["id"],
        "run": run.json()["id"],
        "token": token.json()["id"],
        "webhook": webhook_id,
        "delivery": delivery["id"],
    }


def snapshot(a: Tenant, r: Resources) -> str:
    """Everything A can read about its resources, as one comparable text."""
    reads = [
        f"/kalimera/ai-agent/{r['agent']}",
        f"/kalimera/ai-agent/{r['agent']}/runtime-config",
        f"/kalimera/ai-agent/{r['agent']}/analysis-plan",
        f"/kalimera/ai-agent/{r['agent']}/analysis-plan/versions",
        f"/kalimera/contact/{r['contact']}",
        f"/kalimera/conversations/{r['conversation']}",
        f"/kalimera/analysis-runs/{r['run']}",
        f"/kalimera/tokens/{r['token']}",
        f"/kalimera/webhooks/{r['webhook']}",
        f"/kalimera/webhooks/{r['webhook']}/deliveries",
        "/kalimera/webhooks",
        "/kalimera/ai-agent",
        "/kalimera/contact",
        "/kalimera/conversations",
    ]
    return json.dumps({path: a.client.get(path).json() for path in reads}, sort_keys=True)


def test_every_path_id_is_accounted_for(server: Server) -> None:
    unknown = sorted({path for _, path in documented_operations(server)} - PATH_IDS.keys())
    assert unknown == [], f"routes with path ids and no tenancy check here: {unknown}"


def test_another_tenant_gets_404_on_every_id_bearing_operation_and_changes_nothing(
    server: Server, new_tenant: Callable[..., Tenant]
) -> None:
    a, b = new_tenant(SCOPES), new_tenant(SCOPES)
    resources = make_resources(a)
    before = snapshot(a, resources)
    checked = []
    for method, template in documented_operations(server):
        path = template.format(**PATH_IDS[template](resources))
        response = b.client.request(method.upper(), path, **BODIES.get((method, template), {}))
        assert response.status_code == 404, (method, template, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        checked.append(f"{method.upper()} {template}")
    assert snapshot(a, resources) == before
    assert len(checked) >= 12, checked


def test_b_never_sees_a_in_its_lists(new_tenant: Callable[..., Tenant]) -> None:
    a, b = new_tenant(SCOPES), new_tenant(SCOPES)
    resources = make_resources(a)
    for path in ("/kalimera/ai-agent", "/kalimera/contact", "/kalimera/conversations"):
        body = b.client.get(path).json()
        assert body.get("total") == 0, (path, body)
    assert b.client.get("/kalimera/webhooks").json()["items"] == []
    # B's own token (its fixture's) is all it lists.
    tokens = b.client.get("/kalimera/tokens").json()["tokens"]
    assert resources["token"] not in {t["id"] for t in tokens}
    assert len(tokens) == 1


def test_a_tenants_settings_are_its_own(new_tenant: Callable[..., Tenant]) -> None:
    """Routes without a path id act on the caller's tenant only: B's retention is not A's, and
    erasing with B's token leaves A's calls (the DELETEs above already answered 404)."""
    a, b = new_tenant(SCOPES), new_tenant(SCOPES)
    assert a.client.put("/kalimera/settings/retention", json={"days": 30}).status_code == 200
    assert b.client.get("/kalimera/settings/retention").json()["days"] is None
    assert b.client.put("/kalimera/settings/retention", json={"days": 1}).status_code == 200
    assert a.client.get("/kalimera/settings/retention").json()["days"] == 30
