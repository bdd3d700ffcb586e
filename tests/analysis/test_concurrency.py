"""Concurrent PUTs of one agent's plan: each gets a version of its own, consecutive, none twice;
with the same If-Match exactly one wins and the rest answer 412."""

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.analysis.conftest import plan_path
from tests.conftest import Tenant


def put(
    tenant: Tenant, agent: str, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    auth = {"Authorization": f"Bearer {tenant.token}", **headers}
    with httpx.Client(base_url=str(tenant.client.base_url), headers=auth, timeout=30) as client:
        # Writers queue on the agent's row while holding pool connections: on a loaded machine
        # some wait past the pool timeout and get 503 + Retry-After, which commits nothing.
        for _ in range(20):
            response = client.put(plan_path(agent), json=body)
            if response.status_code != 503:
                return response
            time.sleep(float(response.headers.get("retry-after", "1")))
    return response


def test_concurrent_puts_make_consecutive_versions_never_the_same_twice(
    tenant: Tenant, agent: str
) -> None:
    def write(i: int) -> tuple[int, int]:
        response = put(tenant, agent, {"summary": {"enabled": True, "max_words": 10 + i}}, {})
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == f'"{response.json()["version"]}"'
        return response.json()["version"], i

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(write, range(40)))

    assert sorted(version for version, _ in results) == list(range(1, 41))
    listing = tenant.client.get(f"{plan_path(agent)}/versions", params={"limit": 100}).json()
    assert listing["total"] == 40
    # Each stored version is the body of the request that was answered that version.
    words = {version: 10 + i for version, i in results}
    assert {item["version"]: item["summary"]["max_words"] for item in listing["items"]} == words


def test_concurrent_puts_with_the_same_if_match_let_exactly_one_win(
    tenant: Tenant, agent: str
) -> None:
    tag = tenant.client.get(plan_path(agent)).headers["etag"]

    def write(i: int) -> int:
        body = {"summary": {"enabled": True, "max_words": 10 + i}}
        return put(tenant, agent, body, {"If-Match": tag}).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = sorted(pool.map(write, range(12)))

    assert statuses == [200] + [412] * 11
    assert tenant.client.get(plan_path(agent)).json()["version"] == 1
