import subprocess
import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from kalimera.auth import Scope, bearer_token, parse_scopes
from tests.conftest import Server, Tenant


def cli(settings_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [".venv/bin/kalimera", *args],
        env={**os.environ, **settings_env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


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
    created = cli(
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
    assert len(token) >= 40
    probe = httpx.get(
        f"{server.url}/kalimera/_auth-probe", headers={"Authorization": f"Bearer {token}"}
    )
    assert probe.status_code == 200

    listed = cli(settings_env, "token", "list", "--tenant", str(tenant))
    assert token_id in listed.stdout
    assert "agents:read" in listed.stdout
    assert token not in listed.stdout

    revoked = cli(settings_env, "token", "revoke", token_id)
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
    result = cli(
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


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("abc", "abc"),
        ("", None),
        ("Basic abc", None),
    ],
)
def test_bearer_token_parsing(header: str, token: str | None) -> None:
    assert bearer_token(header) == token


def test_default_scopes_exclude_the_runtime_export() -> None:
    assert Scope.AGENTS_RUNTIME not in parse_scopes("")
