"""The endpoints API: secrets shown once and sealed at rest, 20 a tenant, scopes, rotation, and
the address rules of production (the session's server runs as production)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from kalimera.auth import Scope
from kalimera.settings import Settings
from tests.conftest import Tenant
from tests.support.calls import query
from tests.webhooks.conftest import create_endpoint

PUBLIC = "https://192.0.32.10/hook"  # a literal public address: checked without DNS


def test_the_secret_is_shown_once_and_stored_sealed(tenant: Tenant, settings: Settings) -> None:
    created = create_endpoint(tenant, PUBLIC, events=["conversation.ended"], description="CRM")
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert created["events"] == ["conversation.ended"]
    read = tenant.client.get(f"/kalimera/webhooks/{created['id']}").json()
    assert "secret" not in read
    listed = tenant.client.get("/kalimera/webhooks").json()["items"]
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0]
    (row,) = query(
        settings,
        "SELECT secret FROM kalimera_webhook_endpoints WHERE id = %(id)s",
        {"id": created["id"]},
    )
    assert row["secret"].startswith("enc:v1:")
    assert secret not in row["secret"]


def test_patch_changes_what_is_given_and_delete_answers_200_then_404(tenant: Tenant) -> None:
    created = create_endpoint(tenant, PUBLIC)
    path = f"/kalimera/webhooks/{created['id']}"
    changed = tenant.client.patch(path, json={"enabled": False, "description": "paused"})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["enabled"], changed.json()["description"]) == (False, "paused")
    assert changed.json()["url"] == PUBLIC
    deleted = tenant.client.delete(path)
    assert deleted.status_code == 200
    assert tenant.client.get(path).status_code == 404
    assert tenant.client.delete(path).status_code == 404


def test_a_tenant_has_at_most_20_endpoints(tenant: Tenant) -> None:
    for n in range(20):
        create_endpoint(tenant, f"{PUBLIC}/{n}")
    refused = tenant.client.post("/kalimera/webhooks", json={"url": PUBLIC})
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert "20" in refused.json()["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",  # loopback
        "https://10.1.2.3/hook",  # private
        "https://169.254.169.254/latest/meta-data",  # link-local (cloud metadata)
        "https://100.64.0.1/hook",  # shared (carrier-grade NAT)
        "https://224.0.0.1/hook",  # multicast
        "https://240.0.0.1/hook",  # reserved
        "https://0.0.0.0/hook",
        "https://[::1]/hook",
        "https://[fd00::1]/hook",  # unique local
        "https://[fe80::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
        "https://localhost/hook",  # a name resolving to loopback
        "http://192.0.32.10/hook",  # not https
        "ftp://192.0.32.10/hook",
        "https://user:pw@192.0.32.10/hook",
        "not a url",
    ],
)
def test_production_refuses_what_is_not_https_to_a_public_address(tenant: Tenant, url: str) -> None:
    response = tenant.client.post("/kalimera/webhooks", json={"url": url})
    assert response.status_code == 422, (url, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == ["body", "url"]
    # A PATCH to such a URL is refused alike.
    created = create_endpoint(tenant, PUBLIC)
    patched = tenant.client.patch(f"/kalimera/webhooks/{created['id']}", json={"url": url})
    assert patched.status_code == 422, (url, patched.text)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"url": PUBLIC, "events": ["call.ended"]},
        {"url": PUBLIC, "extra": 1},
        {"url": PUBLIC, "description": "x" * 501},
        {"url": PUBLIC, "enabled": "maybe"},
    ],
)
def test_bad_bodies_are_422_problems(tenant: Tenant, body: dict[str, object]) -> None:
    response = tenant.client.post("/kalimera/webhooks", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_bad_paging_and_replay_bodies_are_422(tenant: Tenant) -> None:
    created = create_endpoint(tenant, PUBLIC)
    base = f"/kalimera/webhooks/{created['id']}"
    assert tenant.client.get(f"{base}/deliveries", params={"status": "lost"}).status_code == 422
    assert tenant.client.get(f"{base}/deliveries", params={"limit": 101}).status_code == 422
    for since in ("yesterday", "2026-12-01T00:00:00"):  # no time zone
        response = tenant.client.post(f"{base}/replay", json={"since": since})
        assert response.status_code == 422, response.text
    assert tenant.client.get("/kalimera/webhooks/not-a-uuid").status_code == 422


def test_scopes_read_and_write(new_tenant: Callable[..., Tenant]) -> None:
    reader = new_tenant((Scope.WEBHOOKS_READ,))
    assert reader.client.get("/kalimera/webhooks").status_code == 200
    refused = reader.client.post("/kalimera/webhooks", json={"url": PUBLIC})
    assert refused.status_code == 403
    none = new_tenant((Scope.AGENTS_READ,))
    assert none.client.get("/kalimera/webhooks").status_code == 403


def test_rotation_returns_a_new_secret_once_and_keeps_the_old_one_24_hours(
    tenant: Tenant, settings: Settings
) -> None:
    created = create_endpoint(tenant, PUBLIC)
    rotated = tenant.client.post(f"/kalimera/webhooks/{created['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["secret"].startswith("whsec_")
    assert body["secret"] != created["secret"]
    read = tenant.client.get(f"/kalimera/webhooks/{created['id']}").json()
    assert read["previous_secret_expires_at"] == body["previous_secret_expires_at"]
    (row,) = query(
        settings,
        "SELECT previous_secret_expires_at - now() > interval '23 hours 59 minutes' AS ok"
        " FROM kalimera_webhook_endpoints WHERE id = %(id)s",
        {"id": created["id"]},
    )
    assert row["ok"]
