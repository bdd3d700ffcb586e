"""Bad input is refused with a 4xx problem+json, and nothing is written."""

from typing import Any

import httpx
import pytest

from tests.agents.conftest import create
from tests.conftest import Tenant

MIB_SECTION = {"Blob": "x" * (1024 * 1024)}


def assert_problem(response: httpx.Response, *statuses: int) -> None:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert "Traceback" not in response.text


def count(tenant: Tenant) -> int:
    return int(tenant.client.get("/kalimera/ai-agent").json()["total"])


BAD_CREATES: list[tuple[str, Any, int]] = [
    ("missing name", {"type": "inbound"}, 422),
    ("empty name", {"name": "", "type": "inbound"}, 422),
    ("long name", {"name": "n" * 256, "type": "inbound"}, 422),
    ("name of wrong type", {"name": 5, "type": "inbound"}, 422),
    ("unknown profile type", {"name": "a", "type": "inbount"}, 422),
    ("null profile type", {"name": "a", "profile_type": None}, 422),
    ("section not an object", {"name": "a", "azure": "westeurope"}, 422),
    ("section field of wrong type", {"name": "a", "AudioServer": {"Port": "eighty"}}, 422),
    ("out of range", {"name": "a", "eleven_labs_tts": {"Stability": 3}}, 422),
    ("bad log level", {"name": "a", "Logging": {"LogLevel": {"Default": "Loud"}}}, 422),
    ("mass assignment", {"name": "a", "tenant_id": "00000000-0000-0000-0000-000000000000"}, 422),
    ("id in body", {"name": "a", "id": "00000000-0000-0000-0000-000000000000"}, 422),
    ("avatar not an image", {"name": "a", "avatar": "https://example.com/page.html"}, 422),
    ("avatar not http", {"name": "a", "avatar": "ftp://example.com/a.png"}, 422),
    ("avatar not a url", {"name": "a", "avatar": "a.png"}, 422),
    ("1 MiB section", {"name": "a", "web_talk": MIB_SECTION}, 413),
    ("body not an object", [1, 2], 422),
]


@pytest.mark.parametrize(("case", "body", "status"), BAD_CREATES, ids=[c[0] for c in BAD_CREATES])
def test_a_bad_create_is_refused_and_writes_nothing(
    tenant: Tenant, case: str, body: Any, status: int
) -> None:
    assert_problem(tenant.client.post("/kalimera/ai-agent", json=body), status)
    assert count(tenant) == 0


def test_malformed_json_is_400(tenant: Tenant) -> None:
    for payload in ('{"name": "a",', "not json", '{"name": "a"} trailing'):
        response = tenant.client.post(
            "/kalimera/ai-agent", content=payload, headers={"Content-Type": "application/json"}
        )
        assert_problem(response, 400, 422)
    assert count(tenant) == 0


def test_bad_updates_are_refused_and_change_nothing(tenant: Tenant) -> None:
    agent_id = create(tenant.client)
    path = f"/kalimera/ai-agent/{agent_id}"
    before = tenant.client.get(path).json()

    assert_problem(tenant.client.put(path, json={"type": "sideways"}), 422)
    assert_problem(tenant.client.put(path, json={"name": None}), 422)
    assert_problem(tenant.client.put(path, json={"avatar": "https://x.com/a.exe"}), 422)
    assert_problem(tenant.client.put(path, json={"redis": MIB_SECTION}), 413)
    assert_problem(tenant.client.put(f"{path}/web_talk", json=MIB_SECTION), 413)
    assert_problem(tenant.client.put(f"{path}/AudioServer", json={"Port": 70000}), 422)
    assert_problem(tenant.client.put(f"{path}/AudioServer", json=[1]), 422)
    assert_problem(tenant.client.put(f"{path}/Azure", json=5), 422)
    assert_problem(
        tenant.client.put(
            f"{path}/Azure", content="{", headers={"Content-Type": "application/json"}
        ),
        400,
    )
    unknown = tenant.client.put(f"{path}/Nope", json={"a": 1})
    assert_problem(unknown, 404)
    assert unknown.json()["detail"] == "Invalid section name"

    assert tenant.client.get(path).json() == before


def test_bad_ids_and_pages_are_refused(tenant: Tenant) -> None:
    for path in ("/kalimera/ai-agent/not-a-uuid", "/kalimera/ai-agent/123"):
        assert_problem(tenant.client.get(path), 422)
        assert_problem(tenant.client.put(path, json={"name": "a"}), 422)
        assert_problem(tenant.client.delete(path), 422)
        assert_problem(tenant.client.get(f"{path}/runtime-config"), 422)
    for params in ({"limit": 101}, {"limit": 0}, {"page": 0}, {"page": "x"}):
        assert_problem(tenant.client.get("/kalimera/ai-agent", params=params), 422)
    missing = "/kalimera/ai-agent/00000000-0000-4000-8000-000000000000"
    assert_problem(tenant.client.get(missing), 404)


def test_image_avatars_and_string_allowed_hosts_are_accepted(tenant: Tenant) -> None:
    for url in ("https://cdn.example.com/a.PNG", "http://x.org/p/face.webp?size=64"):
        body = {"name": "ok", "avatar": url, "allowed_hosts": "*.example.com"}
        response = tenant.client.post("/kalimera/ai-agent", json=body)
        assert response.status_code == 201, response.text
        agent = tenant.client.get(f"/kalimera/ai-agent/{response.json()['id']}").json()
        assert agent["avatar"] == url
        assert agent["allowed_hosts"] == "*.example.com"


RAW_BAD_BODIES = [
    ('{"name": "a\\u0000b"}', 422),
    ('{"name": "\\ud800"}', 422),
    ('{"name": "a", "web_talk": {"Note": "x\\u0000"}}', 422),
    ('{"name": "a", "web_talk": {"k\\u0000": 1}}', 422),
    ('{"name": "a", "web_talk": {"Lone": "\\udc00"}}', 422),
    ('{"name": "a", "web_talk": {"N": NaN}}', 422),
    ('{"name": "a", "web_talk": {"N": 1e400}}', 422),
    ('{"name": "a", "web_talk": {"N": 123456789012345678901234567890}}', 422),
    ('{"name": "a", "web_talk": {"N": ' + "[" * 40 + "]" * 40 + "}}", 422),
    ('{"name": "a", "web_talk": {"N": ' + "[" * 50_000 + "]" * 50_000 + "}}", 400),
    ('{"name": "a", "allowed_hosts": "\\u0000"}', 422),
]


@pytest.mark.parametrize(("raw", "status"), RAW_BAD_BODIES)
def test_values_postgres_cannot_store_are_refused(tenant: Tenant, raw: str, status: int) -> None:
    headers = {"Content-Type": "application/json"}
    assert_problem(tenant.client.post("/kalimera/ai-agent", content=raw, headers=headers), status)
    agent_id = create(tenant.client)
    prefix = '{"name": "a", "web_talk": '
    if raw.startswith(prefix):
        section = raw.removeprefix(prefix).removesuffix("}")
        response = tenant.client.put(
            f"/kalimera/ai-agent/{agent_id}/web_talk", content=section, headers=headers
        )
        assert_problem(response, status, 413)
    assert count(tenant) == 1


def test_odd_headers_and_queries_are_4xx(tenant: Tenant) -> None:
    agent_id = create(tenant.client)
    path = f"/kalimera/ai-agent/{agent_id}"
    for tag in ("²".encode(), "9" * 40, '"-1"', "W/", ""):
        response = tenant.client.put(path, json={"name": "b"}, headers={"If-Match": tag})
        assert_problem(response, 412)
    assert_problem(tenant.client.get("/kalimera/ai-agent", params={"search": "a\x00"}), 422)
    assert tenant.client.get(path).json()["name"] == "Agent"


def test_large_and_tiny_numbers_are_served_back(tenant: Tenant) -> None:
    raw = '{"name": "n", "web_talk": {"Big": 1e300, "Neg": -4.2e30, "Tiny": 2.2e-311, "I": -5}}'
    created = tenant.client.post(
        "/kalimera/ai-agent", content=raw, headers={"Content-Type": "application/json"}
    )
    assert created.status_code == 201
    path = f"/kalimera/ai-agent/{created.json()['id']}"
    for url in (path, f"{path}/runtime-config", "/kalimera/ai-agent"):
        assert tenant.client.get(url).status_code == 200, url
    web_talk = tenant.client.get(path).json()["web_talk"]
    assert web_talk["Big"] == 1e300
    assert web_talk["Neg"] == -4.2e30
    assert web_talk["I"] == -5
