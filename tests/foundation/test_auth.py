import subprocess
import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from kalimera.auth import (
    Principal,
    Scope,
    TokenCache,
    bearer_token,
    hash_token,
    new_token,
    parse_scopes,
    well_formed,
)
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
    assert len(token) == 53
    assert well_formed(token)
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


def test_a_new_token_carries_a_checksum_that_catches_any_one_changed_character() -> None:
    token = new_token()
    assert well_formed(token)
    assert len({new_token() for _ in range(100)}) == 100
    for i in range(4, len(token)):
        changed = "A" if token[i] != "A" else "B"
        assert not well_formed(token[:i] + changed + token[i + 1 :])
    for malformed in ("", "klm_", "klm_nope", token[:-1], token + "x", "ghp_" + token[4:]):
        assert not well_formed(malformed)


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


def test_the_token_cache_evicts_the_least_recent_unknown_tokens_and_keeps_known_ones() -> None:
    cache = TokenCache(60)
    cache.MAX_UNKNOWN = 100
    known = Principal(token_id=uuid.uuid4(), tenant_id=uuid.uuid4(), scopes=frozenset())
    cache.put(b"known", known)
    cache.put(b"unknown-0", None)
    for i in range(1, 1_000):
        cache.put(f"unknown-{i}".encode(), None)
        assert cache.get(b"unknown-0") == (True, None)  # seen again: most recent, never evicted
    assert cache.get(b"known") == (True, known)
    assert len(cache) == 101
    assert cache.get(b"unknown-1") == (False, None)
    assert cache.get(b"unknown-999") == (True, None)
