"""Tokens over the API: an administrator (``tokens:admin``) makes, lists and revokes its tenant's
tokens; no token grants more than the token making it, nor outlives it."""

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from kalimera.auth import DEFAULT_SCOPES, Scope
from tests.conftest import Server, Tenant
from tests.support.problems import assert_problem

ADMIN = (Scope.TOKENS_ADMIN, Scope.AGENTS_READ, Scope.CONTACTS_READ, Scope.CONTACTS_WRITE)


def _client(server: Server, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    )


def _later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def test_an_administrator_makes_a_token_that_can_do_what_it_was_given_and_no_more(
    new_tenant: Callable[..., Tenant], server: Server
) -> None:
    admin = new_tenant(ADMIN)
    made = admin.client.post(
        "/kalimera/tokens", json={"name": "console", "scopes": ["contacts:read"]}
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert made.headers["Location"] == f"/kalimera/tokens/{body['id']}"
    assert body["scopes"] == ["contacts:read"]
    assert body["expires_at"] is None
    assert body["token"].startswith("klm_")
    with _client(server, body["token"]) as console:
        assert console.get("/kalimera/contact").status_code == 200
        assert_problem(console.get("/kalimera/ai-agent"), 403)
        assert_problem(console.get("/kalimera/tokens"), 403)

    shown = admin.client.get(made.headers["Location"])
    assert shown.status_code == 200
    assert "token" not in shown.json()
    listed = admin.client.get("/kalimera/tokens").json()
    assert listed["total"] == 2  # the administrator's own (from the CLI) and the new one
    newest = listed["tokens"][0]
    assert newest["id"] == body["id"]
    assert newest["created_by"] is not None
    assert "token" not in newest
    assert "token_hash" not in newest


def test_a_token_cannot_grant_a_scope_it_lacks_and_the_default_is_what_it_has(
    new_tenant: Callable[..., Tenant],
) -> None:
    admin = new_tenant(ADMIN)
    refused = admin.client.post(
        "/kalimera/tokens", json={"name": "x", "scopes": ["contacts:read", "agents:write"]}
    )
    assert "agents:write" in assert_problem(refused, 403)["detail"]  # type: ignore[operator]
    assert admin.client.get("/kalimera/tokens").json()["total"] == 1  # nothing made

    default = admin.client.post("/kalimera/tokens", json={"name": "d"}).json()
    # The default scopes it has; never tokens:admin, which is granted only by name.
    assert default["scopes"] == ["agents:read", "contacts:read", "contacts:write"]
    assert set(default["scopes"]) <= {s.value for s in DEFAULT_SCOPES}

    only_admin = new_tenant((Scope.TOKENS_ADMIN,))
    assert_problem(only_admin.client.post("/kalimera/tokens", json={"name": "d"}), 422)


def test_an_expired_token_answers_401_and_a_token_never_outlives_its_maker(
    new_tenant: Callable[..., Tenant], server: Server
) -> None:
    admin = new_tenant(ADMIN)
    short = admin.client.post(
        "/kalimera/tokens",
        json={
            "name": "short",
            "scopes": ["tokens:admin", "contacts:read"],
            "expires_at": _later(3),
        },
    ).json()
    with _client(server, short["token"]) as client:
        assert client.get("/kalimera/contact").status_code == 200  # cached from now on
        # What it makes expires with it at the latest.
        child = client.post("/kalimera/tokens", json={"name": "child"}).json()
        assert child["expires_at"] == short["expires_at"]
        longer = client.post("/kalimera/tokens", json={"name": "c", "expires_at": _later(3600)})
        assert_problem(longer, 403)
        time.sleep(3.5)
        assert_problem(client.get("/kalimera/contact"), 401)  # the cache does not outlive it
    with _client(server, child["token"]) as client:
        assert_problem(client.get("/kalimera/contact"), 401)


def test_revoking_stops_the_token_at_once_and_another_tenants_token_is_not_found(
    new_tenant: Callable[..., Tenant], server: Server
) -> None:
    admin = new_tenant(ADMIN)
    other = new_tenant(ADMIN)
    made = admin.client.post("/kalimera/tokens", json={"name": "r", "scopes": ["contacts:read"]})
    token_id, token = made.json()["id"], made.json()["token"]
    with _client(server, token) as client:
        assert client.get("/kalimera/contact").status_code == 200  # now in the auth cache

        assert_problem(other.client.delete(f"/kalimera/tokens/{token_id}"), 404)
        assert_problem(other.client.get(f"/kalimera/tokens/{token_id}"), 404)
        assert client.get("/kalimera/contact").status_code == 200

        assert admin.client.delete(f"/kalimera/tokens/{token_id}").status_code == 200
        assert_problem(client.get("/kalimera/contact"), 401)  # this instance: at once
    assert_problem(admin.client.delete(f"/kalimera/tokens/{token_id}"), 404)
    assert admin.client.get(f"/kalimera/tokens/{token_id}").json()["revoked_at"] is not None
    assert other.client.get("/kalimera/tokens").json()["total"] == 1  # its own only


def test_token_endpoints_need_the_admin_scope_and_refuse_bad_input(
    new_tenant: Callable[..., Tenant], anon: httpx.Client
) -> None:
    plain = new_tenant()
    for response in (
        plain.client.get("/kalimera/tokens"),
        plain.client.post("/kalimera/tokens", json={"name": "x"}),
        plain.client.delete("/kalimera/tokens/00000000-0000-0000-0000-000000000000"),
    ):
        assert_problem(response, 403)
    assert_problem(anon.get("/kalimera/tokens"), 401)

    admin = new_tenant(ADMIN)
    post = admin.client.post
    for body in (
        {},
        {"name": ""},
        {"name": "x" * 101},
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["root"]},
        {"name": "x", "extra": 1},
        {"name": "x", "expires_at": "2030-01-01T00:00:00"},  # no time zone
        {"name": "x", "expires_at": "2001-01-01T00:00:00Z"},  # past
        {"name": "x", "expires_at": "soon"},
    ):
        assert_problem(post("/kalimera/tokens", json=body), 422)
    assert_problem(
        post("/kalimera/tokens", content=b"{", headers={"Content-Type": "application/json"}), 400
    )
    assert_problem(admin.client.get("/kalimera/tokens/not-a-uuid"), 422)
    assert_problem(admin.client.get("/kalimera/tokens", params={"per_page": 0}), 422)
    assert admin.client.get("/kalimera/tokens").json()["total"] == 1  # nothing made
