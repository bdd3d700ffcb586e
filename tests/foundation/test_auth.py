import time
import uuid
from collections.abc import Callable

import httpx

from kalimera.auth import (
    Scope,
    hash_token,
    new_token,
    well_formed,
)
from tests.conftest import Server, Tenant
from tests.support.cli import kalimera


def test_no_token_and_an_unknown_token_are_401(anon: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer klm_nope"}, {"Authorization": "klm_nope"}):
        response = anon.get("/kalimera/_auth-probe", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"


def test_a_valid_token_without_the_scope_is_403(new_tenant: Callable[..., Tenant]) -> None:
    tenant = new_tenant(scopes=(Scope.CONTACTS_READ,))
    response = tenant.client.get("/kalimera/_auth-probe")
    assert response.status_code == 403
    assert "agents:read" in response.json()["detail"]


def test_a_token_with_the_scope_is_admitted_bare_or_bearer(tenant: Tenant) -> None:
    assert tenant.client.get("/kalimera/_auth-probe").json() == {"tenant_id": str(tenant.id)}
    bare = tenant.client.get("/kalimera/_auth-probe", headers={"Authorization": tenant.token})
    assert bare.status_code == 200


def test_cli_creates_lists_and_revokes_tokens(settings_env: dict[str, str], server: Server) -> None:
    tenant = uuid.uuid4()
    created = kalimera(
        settings_env,
        "token",
        "create",
        "--tenant",
        str(tenant),
        "--name",
        "ci",
        "--scopes",
        "agents:read",
    )
    assert created.returncode == 0, created.stderr
    lines = created.stdout.strip().splitlines()
    token = lines[-1]
    token_id = lines[0].removeprefix("id: ")
    uuid.UUID(token_id)
    assert token.startswith("klm_")
    assert len(token) == 53
    assert well_formed(token)
    probe = httpx.get(
        f"{server.url}/kalimera/_auth-probe", headers={"Authorization": f"Bearer {token}"}
    )
    assert probe.status_code == 200

    listed = kalimera(settings_env, "token", "list", "--tenant", str(tenant))
    assert token_id in listed.stdout
    assert "agents:read" in listed.stdout
    assert token not in listed.stdout

    revoked = kalimera(settings_env, "token", "revoke", token_id)
    assert revoked.returncode == 0, revoked.stderr
    deadline = time.monotonic() + 10  # the test server's auth cache lives 1 s
    status = 200
    while status != 401 and time.monotonic() < deadline:
        time.sleep(0.2)
        status = httpx.get(
            f"{server.url}/kalimera/_auth-probe", headers={"Authorization": f"Bearer {token}"}
        ).status_code
    assert status == 401


def test_cli_refuses_unknown_scopes(settings_env: dict[str, str]) -> None:
    result = kalimera(
        settings_env, "token", "create", "--tenant", str(uuid.uuid4()), "--scopes", "admin"
    )
    assert result.returncode == 2
    assert "unknown scope" in result.stderr


def test_the_hot_path_does_not_query_postgres(tenant: Tenant, server: Server) -> None:
    tenant.client.get("/kalimera/_auth-probe")
    pool = server.app.state.services.pool
    before = pool.get_stats().get("requests_num", 0)
    for _ in range(20):
        assert tenant.client.get("/kalimera/_auth-probe").status_code == 200
    after = pool.get_stats().get("requests_num", 0)
    assert after - before <= 1  # at most one refresh when the 1 s test cache expires


def test_a_malformed_token_is_refused_without_a_database_round_trip(
    anon: httpx.Client, server: Server
) -> None:
    pool = server.app.state.services.pool
    before = pool.get_stats().get("requests_num", 0)
    token = new_token()
    for forged in ("klm_nope", token[:-1] + ("0" if token[-1] != "0" else "1"), "x" * 5000):
        response = anon.get("/kalimera/_auth-probe", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401
    assert pool.get_stats().get("requests_num", 0) == before


def test_a_token_of_the_earlier_format_keeps_working(
    settings_env: dict[str, str], server: Server
) -> None:
    """Tokens issued before the checksum (klm_ + 43 URL-safe base64 characters) stay valid."""
    import secrets

    import psycopg

    legacy = "klm_" + secrets.token_urlsafe(32)
    tenant = uuid.uuid4()
    with psycopg.connect(settings_env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(
            "INSERT INTO kalimera_api_tokens (id, tenant_id, name, token_hash, scopes)"
            " VALUES (%s, %s, 'legacy', %s, %s)",
            (uuid.uuid4(), tenant, hash_token(legacy), [Scope.AGENTS_READ.value]),
        )
    assert well_formed(legacy)
    probe = httpx.get(
        f"{server.url}/kalimera/_auth-probe", headers={"Authorization": f"Bearer {legacy}"}
    )
    assert probe.json() == {"tenant_id": str(tenant)}
